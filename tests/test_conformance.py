"""Conformance of provider_kit against the official SDKs (issue 3; PROTOCOLS.md §A, §B, §C, §D.12).

For each protocol the official SDK (``openai``, ``anthropic``, ``ollama``: test-only
dependencies, imported with ``pytest.importorskip``) and provider_kit talk to the same
``LoopbackServer``:

* requests: the same logical call must reach the server as the same method, path, auth
  header(s), ``anthropic-version`` and JSON meaning. Where the SDK's bytes differ on purpose,
  the difference is asserted explicitly (see ``_body_deltas`` and the Anthropic auth check);
* responses and streams: both clients read the same scripted bytes, and provider_kit's text,
  usage and finish reason must equal what the SDK parsed, mapped through the §D.12 table
  written out independently below;
* errors: the same error body gives corresponding exception classes, the same status code and
  request id, and provider_kit's message contains the SDK's.

Every SDK client is built with ``max_retries=0`` (provider_kit likewise), so error cases make
exactly one request per client.
"""

from __future__ import annotations

import contextlib
import functools
import json
import ssl
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest

import provider_kit as pk
from provider_kit.testing import LoopbackServer, RecordedRequest, Reply

KEY = "sk-conformance-0123456789abcdef"
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "ollama": "llama3.2"}
SDK_MODULES = {"openai": "openai", "anthropic": "anthropic", "ollama": "ollama"}
SYSTEM = "Be terse."
PROMPT = "Say hi"
UNICODE = "héllo 👋 世界 — ok\u2028next"  # U+2028 is a line break to str.splitlines(), not to SSE

# -- §D.12 written out again, independently of provider_kit's own tables -----------------------
FINISH = {
    "openai": {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
               "function_call": "tool_calls", "content_filter": "content_filter"},
    "anthropic": {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                  "model_context_window_exceeded": "length", "tool_use": "tool_calls",
                  "refusal": "content_filter"},
    "ollama": {"stop": "stop", "length": "length"},
}


def _finish(protocol: str, value: Optional[str]) -> Optional[str]:
    """A provider's finish reason, normalised; an unknown value passes through unchanged."""
    return None if value is None else FINISH[protocol].get(value, value)


Triple = Tuple[Optional[int], Optional[int], Optional[int]]


def _triple(inputs: Optional[int], outputs: Optional[int], total: Optional[int] = None) -> Triple:
    if total is None and inputs is not None and outputs is not None:
        total = inputs + outputs
    return (inputs, outputs, total)


class Seen(NamedTuple):
    """What one client made of a reply: the text, (input, output, total) tokens, finish reason."""

    text: str
    usage: Triple
    finish: Optional[str]


def _sdk(protocol: str) -> Any:
    module = SDK_MODULES[protocol]
    return pytest.importorskip(
        module, reason=f"the official {module!r} SDK is not installed (pip install -e '.[test]')"
    )


@functools.cache
def _tls() -> ssl.SSLContext:
    """One default TLS context for every SDK client. The SDKs' httpx clients would each build
    their own and load the CA bundle again (~30 ms apiece); every call here is plain http."""
    return ssl.create_default_context()


#: Stands for the anthropic-version the installed SDK sends by default.
SDK_DEFAULT_VERSION = "<the SDK's default>"


def _sdk_anthropic_version(sdk: Any) -> str:
    constants = getattr(sdk, "_constants", None)
    return str(getattr(constants, "ANTHROPIC_API_VERSION", "2023-06-01"))


def _sdk_major(sdk: Any) -> int:
    return int(str(getattr(sdk, "__version__", "0")).split(".")[0] or 0)


# -- the SDK side, one adapter per protocol -----------------------------------------------------

class _OpenAI:
    protocol = "openai"

    @staticmethod
    @contextlib.contextmanager
    def client(sdk: Any, server: LoopbackServer, **options: Any) -> Iterator[Any]:
        with sdk.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0,
                        http_client=sdk.DefaultHttpxClient(verify=_tls()), **options) as client:
            yield client

    @staticmethod
    def send(client: Any, kwargs: Dict[str, Any], stream: bool) -> None:
        if not stream:
            client.chat.completions.create(**kwargs)
            return
        with client.chat.completions.create(**kwargs, stream=True,
                                            stream_options={"include_usage": True}) as events:
            for _ in events:
                pass

    @staticmethod
    def call(model: str) -> Dict[str, Any]:
        return {"model": model, "messages": [{"role": "system", "content": SYSTEM},
                                             {"role": "user", "content": PROMPT}], "max_tokens": 64}

    @staticmethod
    def usage(usage: Any) -> Triple:
        if usage is None:
            return (None, None, None)
        return (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)

    @classmethod
    def complete(cls, client: Any, model: str) -> Seen:
        reply = client.chat.completions.create(**cls.call(model))
        choice = reply.choices[0]
        finish = _finish("openai", choice.finish_reason)
        return Seen(choice.message.content or "", cls.usage(reply.usage), finish)

    @classmethod
    def stream(cls, client: Any, model: str, pieces: List[str]) -> Seen:
        usage: Triple = (None, None, None)
        finish = None
        with client.chat.completions.create(**cls.call(model), stream=True,
                                            stream_options={"include_usage": True}) as events:
            for chunk in events:
                for choice in chunk.choices:
                    if choice.index == 0:
                        pieces.append(choice.delta.content or "")
                        finish = choice.finish_reason or finish
                if chunk.usage is not None:
                    usage = cls.usage(chunk.usage)
        return Seen("".join(pieces), usage, _finish("openai", finish))

    @staticmethod
    def error_message(exc: Any) -> str:
        # The SDK unwraps body["error"] into exc.body (openai/_client.py _make_status_error).
        return str(exc.body["message"]) if isinstance(exc.body, dict) else str(exc.message)


class _Anthropic:
    protocol = "anthropic"

    @staticmethod
    @contextlib.contextmanager
    def client(sdk: Any, server: LoopbackServer, **options: Any) -> Iterator[Any]:
        with sdk.Anthropic(base_url=server.url, api_key=KEY, max_retries=0,
                           http_client=sdk.DefaultHttpxClient(verify=_tls()), **options) as client:
            yield client

    @staticmethod
    def send(client: Any, kwargs: Dict[str, Any], stream: bool) -> None:
        if not stream:
            client.messages.create(**kwargs)
            return
        with client.messages.create(**kwargs, stream=True) as events:
            for _ in events:
                pass

    @staticmethod
    def call(model: str) -> Dict[str, Any]:
        return {"model": model, "max_tokens": 64, "system": SYSTEM,
                "messages": [{"role": "user", "content": PROMPT}]}

    @staticmethod
    def seen(message: Any, text: Optional[str] = None) -> Seen:
        usage = message.usage
        # §B.4: total input = input_tokens + cache_creation_input_tokens + cache_read_input_tokens.
        inputs = (usage.input_tokens + (usage.cache_creation_input_tokens or 0)
                  + (usage.cache_read_input_tokens or 0))
        if text is None:
            text = "".join(block.text for block in message.content if block.type == "text")
        return Seen(text, _triple(inputs, usage.output_tokens), _finish("anthropic", message.stop_reason))

    @classmethod
    def complete(cls, client: Any, model: str) -> Seen:
        return cls.seen(client.messages.create(**cls.call(model)))

    @classmethod
    def stream(cls, client: Any, model: str, pieces: List[str]) -> Seen:
        # The SDK's own accumulator: it applies message_delta's cumulative usage as the API says.
        with client.messages.stream(**cls.call(model)) as events:
            for text in events.text_stream:
                pieces.append(text)
            final = events.get_final_message()
        return cls.seen(final, "".join(pieces))

    @staticmethod
    def error_message(exc: Any) -> str:
        message = getattr(exc, "api_message", None)  # anthropic >= 2
        if message is None and isinstance(exc.body, dict):
            message = exc.body["error"]["message"]
        return str(message)


class _Ollama:
    protocol = "ollama"

    @staticmethod
    @contextlib.contextmanager
    def client(sdk: Any, server: LoopbackServer, **options: Any) -> Iterator[Any]:
        client = sdk.Client(host=server.url, verify=_tls(), **options)
        try:
            yield client
        finally:
            client.close()

    @staticmethod
    def send(client: Any, kwargs: Dict[str, Any], stream: bool) -> None:
        if not stream:
            client.chat(**kwargs)
            return
        for _ in client.chat(**kwargs, stream=True):
            pass

    @staticmethod
    def call(model: str) -> Dict[str, Any]:
        return {"model": model, "messages": [{"role": "system", "content": SYSTEM},
                                             {"role": "user", "content": PROMPT}],
                "options": {"num_predict": 64}}

    @staticmethod
    def usage(part: Any) -> Triple:
        # §C.3/§D.12: every metric is omitempty; a missing prompt_eval_count (a cached prompt)
        # counts as 0 when the reply carries counts at all.
        prompt, output = part.prompt_eval_count, part.eval_count
        if prompt is None and output is None:
            return (None, None, None)
        return _triple(prompt or 0, output)

    @classmethod
    def complete(cls, client: Any, model: str) -> Seen:
        reply = client.chat(**cls.call(model))
        return Seen(reply.message.content or "", cls.usage(reply), _finish("ollama", reply.done_reason))

    @classmethod
    def stream(cls, client: Any, model: str, pieces: List[str]) -> Seen:
        usage: Triple = (None, None, None)
        finish = None
        for part in client.chat(**cls.call(model), stream=True):
            pieces.append(part.message.content or "")
            if part.done:
                usage, finish = cls.usage(part), part.done_reason
        return Seen("".join(pieces), usage, _finish("ollama", finish))

    @staticmethod
    def error_message(exc: Any) -> str:
        return str(exc.error)


ADAPTERS: Dict[str, Any] = {"openai": _OpenAI, "anthropic": _Anthropic, "ollama": _Ollama}
PROVIDERS = {"openai": pk.OpenAIProvider, "anthropic": pk.AnthropicProvider, "ollama": pk.OllamaProvider}


# -- the provider_kit side ---------------------------------------------------------------------

def _provider(protocol: str, server: LoopbackServer, **options: Any) -> Any:
    options.setdefault("model", MODELS[protocol])
    if protocol != "ollama":
        options.setdefault("api_key", KEY)
    return PROVIDERS[protocol](protocol, base_url=server.base_url, max_retries=0, timeout=10, **options)


def _pk_seen(usage: Optional[pk.Usage]) -> Triple:
    if usage is None:
        return (None, None, None)
    return (usage.input_tokens, usage.output_tokens, usage.total_tokens)


def _pk_complete(provider: Any) -> Seen:
    reply = provider.complete(PROMPT, system=SYSTEM, max_tokens=64)
    return Seen(reply.text, _pk_seen(reply.usage), reply.finish_reason)


def _pk_stream(provider: Any, pieces: List[str]) -> Seen:
    last: Optional[pk.StreamChunk] = None
    for chunk in provider.stream(PROMPT, system=SYSTEM, max_tokens=64):
        pieces.append(chunk.text)
        last = chunk
    assert last is not None, "provider_kit's stream yielded nothing"
    return Seen("".join(pieces), _pk_seen(last.usage), last.finish_reason)


@contextlib.contextmanager
def _server(protocol: str) -> Iterator[LoopbackServer]:
    with LoopbackServer(protocol, api_key=None if protocol == "ollama" else KEY) as server:
        yield server
    assert server.errors == []


# ================================================================================================
# 1. Requests: the same logical call sends the same thing
# ================================================================================================

class RequestCase(NamedTuple):
    protocol: str
    id: str
    pk_options: Dict[str, Any]
    pk_call: Dict[str, Any]
    sdk_options: Dict[str, Any]
    sdk_call: Dict[str, Any]


def _messages(*, system: bool = True, turns: Tuple[str, ...] = (PROMPT,)) -> List[Dict[str, str]]:
    roles = ["user", "assistant"]
    out = [{"role": "system", "content": SYSTEM}] if system else []
    return out + [{"role": roles[i % 2], "content": text} for i, text in enumerate(turns)]


_TURNS = ("Say hi", "Hi!", "Now in French, with an émoji 👋")
_ALL = dict(max_tokens=16, temperature=0.2, stop=["\n\n"])  # every option a call can set
_MULTI_TURN = _messages(system=False, turns=_TURNS)

REQUEST_CASES = [
    # OpenAI (§A.1, §A.2). provider_kit's max_tokens_field="auto" sends max_tokens to a server
    # that is not api.openai.com, unless the model is a reasoning model.
    RequestCase("openai", "all-options", {}, dict(system=SYSTEM, **_ALL),
                {}, dict(model="gpt-4o-mini", messages=_messages(), **_ALL)),
    RequestCase("openai", "minimal", {}, {},
                {}, dict(model="gpt-4o-mini", messages=_messages(system=False))),
    RequestCase("openai", "multi-turn-unicode", {}, dict(prompt=_MULTI_TURN, system=SYSTEM),
                {}, dict(model="gpt-4o-mini", messages=_messages(turns=_TURNS))),
    RequestCase("openai", "reasoning-model-auto-field", {"model": "o3-mini"}, dict(max_tokens=32),
                {}, dict(model="o3-mini", messages=_messages(system=False), max_completion_tokens=32)),
    RequestCase("openai", "max-completion-tokens-configured", {"max_tokens_field": "max_completion_tokens"},
                dict(max_tokens=32), {},
                dict(model="gpt-4o-mini", messages=_messages(system=False), max_completion_tokens=32)),
    RequestCase("openai", "organization-project", {"organization": "org-abc", "project": "proj_def"}, {},
                {"organization": "org-abc", "project": "proj_def"},
                dict(model="gpt-4o-mini", messages=_messages(system=False))),
    RequestCase("openai", "stop-as-string", {}, dict(stop="END"),
                {}, dict(model="gpt-4o-mini", messages=_messages(system=False), stop="END")),
    # Anthropic (§B.2, §B.3). anthropic-python >= 1 has no temperature argument and >= 2 sends
    # anthropic-version 2026-10-21, which rejects it; provider_kit is pinned to whatever version the
    # installed SDK sends (0.x, the last line for Python 3.9, still sends 2023-06-01).
    RequestCase("anthropic", "sdk-default-version", {"anthropic_version": SDK_DEFAULT_VERSION},
                dict(system=SYSTEM, max_tokens=16, stop=["\n\nHuman:"]), {},
                dict(model="claude-haiku-4-5", max_tokens=16, system=SYSTEM,
                     messages=_messages(system=False), stop_sequences=["\n\nHuman:"])),
    RequestCase("anthropic", "2023-06-01-with-temperature", {},
                dict(system=SYSTEM, max_tokens=16, temperature=0.2, stop=["\n\nHuman:"]),
                {"default_headers": {"anthropic-version": "2023-06-01"}},
                dict(model="claude-haiku-4-5", max_tokens=16, system=SYSTEM, messages=_messages(system=False),
                     stop_sequences=["\n\nHuman:"], extra_body={"temperature": 0.2})),
    RequestCase("anthropic", "default-max-tokens", {"anthropic_version": SDK_DEFAULT_VERSION}, {},
                {}, dict(model="claude-haiku-4-5", max_tokens=4096, messages=_messages(system=False))),
    RequestCase("anthropic", "multi-turn-unicode", {"anthropic_version": SDK_DEFAULT_VERSION},
                dict(prompt=_MULTI_TURN, system=SYSTEM, max_tokens=16), {},
                dict(model="claude-haiku-4-5", max_tokens=16, system=SYSTEM,
                     messages=_messages(system=False, turns=_TURNS))),
    # Ollama (§C.2): sampling settings go in options; num_predict is the output limit.
    RequestCase("ollama", "all-options", {}, dict(system=SYSTEM, **_ALL),
                {}, dict(model="llama3.2", messages=_messages(),
                         options={"temperature": 0.2, "num_predict": 16, "stop": ["\n\n"]})),
    RequestCase("ollama", "minimal", {}, {}, {}, dict(model="llama3.2", messages=_messages(system=False))),
    RequestCase("ollama", "multi-turn-unicode", {}, dict(prompt=_MULTI_TURN, system=SYSTEM),
                {}, dict(model="llama3.2", messages=_messages(turns=_TURNS))),
    RequestCase("ollama", "keep-alive", {"keep_alive": "10m"}, {},
                {}, dict(model="llama3.2", messages=_messages(system=False), keep_alive="10m")),
]


def _pk_send(provider: Any, call: Dict[str, Any], stream: bool) -> None:
    call = dict(call)
    prompt = call.pop("prompt", PROMPT)
    if stream:
        for _ in provider.stream(prompt, **call):
            pass
    else:
        provider.complete(prompt, **call)


def _body_deltas(case: RequestCase, sdk_body: Dict[str, Any], pk_body: Dict[str, Any]) -> None:
    """Remove the documented, meaning-preserving differences from the SDK's body, asserting each."""
    if case.protocol == "ollama":
        # ollama-python always sends "tools": [] (ollama/_client.py chat); an empty list and no
        # list mean the same to the server (tools are used only when len(req.Tools) > 0).
        assert sdk_body.pop("tools") == []
        assert "tools" not in pk_body
    if case.id == "stop-as-string":
        # §A.2: stop is "string, or array of 1 to 4 strings"; provider_kit always sends the array.
        assert sdk_body["stop"] == "END" and pk_body["stop"] == ["END"]
        sdk_body["stop"] = ["END"]


def _assert_same_auth(protocol: str, sdk_req: RecordedRequest, pk_req: RecordedRequest) -> None:
    if protocol == "openai":
        assert sdk_req.headers.get("Authorization") == f"Bearer {KEY}"
        assert pk_req.headers.get("Authorization") == sdk_req.headers.get("Authorization")
    elif protocol == "anthropic":
        if "x-api-key" in sdk_req.headers:  # anthropic-python 0.x
            assert pk_req.headers.get("x-api-key") == sdk_req.headers["x-api-key"] == KEY
        else:
            # Known delta, PROTOCOLS.md §B.2: anthropic-python >= 2.0 sends the key as
            # "Authorization: Bearer <key>"; provider_kit sends the documented x-api-key header,
            # which every API version accepts. Same key either way.
            assert sdk_req.headers.get("Authorization") == f"Bearer {KEY}"
            assert pk_req.headers.get("x-api-key") == KEY
        assert "Authorization" not in pk_req.headers
    else:
        assert "Authorization" not in sdk_req.headers and "Authorization" not in pk_req.headers


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("case", REQUEST_CASES, ids=lambda c: f"{c.protocol}-{c.id}")
def test_request_matches_sdk(case: RequestCase, stream: bool) -> None:
    sdk = _sdk(case.protocol)
    adapter = ADAPTERS[case.protocol]
    pk_options = dict(case.pk_options)
    if pk_options.get("anthropic_version") == SDK_DEFAULT_VERSION:
        pk_options["anthropic_version"] = _sdk_anthropic_version(sdk)
    with _server(case.protocol) as server:
        with adapter.client(sdk, server, **case.sdk_options) as client:
            adapter.send(client, dict(case.sdk_call), stream)
        with _provider(case.protocol, server, **pk_options) as provider:
            _pk_send(provider, case.pk_call, stream)
        sdk_req, pk_req = server.requests

    assert (pk_req.method, pk_req.path, pk_req.query) == (sdk_req.method, sdk_req.path, sdk_req.query)
    assert pk_req.headers.get("Content-Type") == sdk_req.headers.get("Content-Type") == "application/json"
    _assert_same_auth(case.protocol, sdk_req, pk_req)
    for header in ("anthropic-version", "OpenAI-Organization", "OpenAI-Project"):
        assert pk_req.headers.get(header) == sdk_req.headers.get(header), header
    sdk_body, pk_body = sdk_req.json(), pk_req.json()
    _body_deltas(case, sdk_body, pk_body)
    assert pk_body == sdk_body
    assert pk_body.get("stream", False) is stream


def test_ollama_api_key_from_environment_matches_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """§C.1: both send $OLLAMA_API_KEY as a bearer token to the $OLLAMA_HOST server (ollama.com).

    A deliberate difference: the SDK sends it to any host, provider_kit not to a ``base_url``
    configured in code or a file, which gets its own ``api_key_env`` only (keys go only where
    they belong)."""
    sdk = _sdk("ollama")
    monkeypatch.setenv("OLLAMA_API_KEY", KEY)
    with _server("ollama") as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        with _Ollama.client(sdk, server) as client:
            _Ollama.send(client, dict(model="llama3.2", messages=_messages()), False)
        with PROVIDERS["ollama"]("ollama", model=MODELS["ollama"], max_retries=0, timeout=10) as provider:
            provider.complete(PROMPT, system=SYSTEM)
        with _provider("ollama", server) as provider:
            provider.complete(PROMPT, system=SYSTEM)
        sdk_req, pk_req, configured_req = server.requests
    assert sdk_req.headers.get("Authorization") == f"Bearer {KEY}"
    assert pk_req.headers.get("Authorization") == sdk_req.headers.get("Authorization")
    assert configured_req.headers.get("Authorization") is None


def test_anthropic_temperature_under_2026_10_21_is_refused_by_both_before_sending() -> None:
    """§B.2: version 2026-10-21 removed temperature; neither client lets one reach the wire."""
    sdk = _sdk("anthropic")
    if _sdk_major(sdk) < 1:
        pytest.skip("anthropic-python < 1 still accepts temperature")
    with _server("anthropic") as server:
        with _Anthropic.client(sdk, server) as client, pytest.raises(TypeError, match="temperature"):
            client.messages.create(**_Anthropic.call(MODELS["anthropic"]), temperature=0.2)
        with _provider("anthropic", server, anthropic_version="2026-10-21") as provider, \
                pytest.raises(pk.InvalidRequestError, match="temperature"):
            provider.complete(PROMPT, temperature=0.2)
        assert server.requests == []


def _sdk_list_models(protocol: str, client: Any) -> List[str]:
    if protocol == "ollama":
        return [m.model for m in client.list().models]
    if protocol == "anthropic":
        # provider_kit asks for the API's largest page (1000 ids) where the SDK's default is 20:
        # the whole listing in one request, as the SDK's pager would fetch it.
        return [m.id for m in client.models.list(limit=1000)]
    return [m.id for m in client.models.list()]


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "ollama"])
def test_health_check_requests_what_the_sdk_model_listing_requests(protocol: str) -> None:
    """§A.7, §B.8, §C.6: the health check is the SDK's model listing (same method, path, auth)."""
    sdk = _sdk(protocol)
    adapter = ADAPTERS[protocol]
    # Pinned on the SDK side: its default version depends on its major version (§B.2).
    sdk_options = {"default_headers": {"anthropic-version": "2023-06-01"}} if protocol == "anthropic" else {}
    with _server(protocol) as server:
        with adapter.client(sdk, server, **sdk_options) as client:
            listed = _sdk_list_models(protocol, client)
        with _provider(protocol, server, model=listed[0]) as provider:
            status = provider.health_check()
        sdk_req, pk_req = server.requests
    assert status.ok, status.error
    assert (pk_req.method, pk_req.path, pk_req.query) == (sdk_req.method, sdk_req.path, sdk_req.query)
    _assert_same_auth(protocol, sdk_req, pk_req)
    assert pk_req.headers.get("anthropic-version") == sdk_req.headers.get("anthropic-version")


@pytest.mark.parametrize("count", [0, 3, 1000, 2345])
@pytest.mark.parametrize("protocol", ["openai", "anthropic", "ollama"])
def test_models_lists_what_the_sdk_lists(protocol: str, count: int) -> None:
    """provider.models() and the SDK's listing (every page) read the simulator alike: the
    simulator's listing is the API's shape, Anthropic's paginated (``limit``, ``after_id``,
    ``has_more``, ``last_id``)."""
    sdk = _sdk(protocol)
    adapter = ADAPTERS[protocol]
    names = [f"model-{number:04d}" + (":latest" if protocol == "ollama" else "") for number in range(count)]
    sdk_options = {"default_headers": {"anthropic-version": "2023-06-01"}} if protocol == "anthropic" else {}
    with LoopbackServer(protocol, api_key=None if protocol == "ollama" else KEY, models=names) as server:
        with adapter.client(sdk, server, **sdk_options) as client:
            sdk_listed = _sdk_list_models(protocol, client)
            sdk_default_pages = [m.id for m in client.models.list()] if protocol == "anthropic" else sdk_listed
        sdk_requests = len(server.requests)
        with _provider(protocol, server) as provider:
            listed = provider.models()
        pk_requests = server.requests[sdk_requests:]
    assert listed == sdk_listed == sdk_default_pages == names
    if protocol == "anthropic":  # one request per 1000 ids, as the SDK's pager at limit=1000
        assert [r.query for r in pk_requests] == [r.query for r in server.requests[:len(pk_requests)]]
        assert len(pk_requests) == max(1, -(-count // 1000))
    else:
        assert len(pk_requests) == 1


# ================================================================================================
# 2. Responses and streams: the same bytes are read the same way
# ================================================================================================

ReplyFactory = Callable[[LoopbackServer], Reply]


class ResponseCase(NamedTuple):
    protocol: str
    id: str
    reply: Optional[ReplyFactory]  # None: the simulator answers
    expect: Optional[Seen]  # what both must see; None for the simulator


REQUEST_ID_HEADERS = {"openai": "x-request-id", "anthropic": "request-id"}  # Ollama sends none


def _json(protocol: str, body: Dict[str, Any]) -> ReplyFactory:
    header = REQUEST_ID_HEADERS.get(protocol)
    return lambda server: Reply(200, json=body, headers={header: "req_conf"} if header else {})


def _openai_body(content: Optional[str], finish: str, usage: Optional[Triple] = (5, 16, 21),
                 **message: Any) -> Dict[str, Any]:
    body: Dict[str, Any] = {
        "id": "chatcmpl-conf", "object": "chat.completion", "created": 1741570283, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "logprobs": None, "finish_reason": finish,
                     "message": {"role": "assistant", "content": content, "refusal": None, **message}}],
    }
    if usage is not None:
        body["usage"] = dict(zip(("prompt_tokens", "completion_tokens", "total_tokens"), usage))
    return body


def _anthropic_body(content: List[Dict[str, Any]], stop_reason: str, **usage: int) -> Dict[str, Any]:
    return {"id": "msg_conf", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": content, "stop_reason": stop_reason, "stop_sequence": None,
            "usage": usage or {"input_tokens": 12, "output_tokens": 6}}


def _ollama_body(content: str, **fields: Any) -> Dict[str, Any]:
    return {"model": "llama3.2", "created_at": "2023-12-12T14:13:43.416799123Z",
            "message": {"role": "assistant", "content": content}, "done": True, **fields}


_TOOL_CALL = [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]
_BLOCKS: List[Dict[str, Any]] = [
    {"type": "thinking", "thinking": "The user wants a greeting.", "signature": "sig=="},
    {"type": "text", "text": "Hello"},
    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    {"type": "text", "text": " world 👋"},
]

COMPLETE_CASES = [
    ResponseCase("openai", "simulator", None, None),
    ResponseCase("openai", "unicode", lambda s: s.completion_reply(UNICODE, input_tokens=11, output_tokens=7),
                 Seen(UNICODE, (11, 7, 18), "stop")),
    ResponseCase("openai", "null-content-length", _json("openai", _openai_body(None, "length")),
                 Seen("", (5, 16, 21), "length")),
    ResponseCase("openai", "tool-calls",
                 _json("openai", _openai_body(None, "tool_calls", tool_calls=_TOOL_CALL)),
                 Seen("", (5, 16, 21), "tool_calls")),
    ResponseCase("openai", "function-call", _json("openai", _openai_body(None, "function_call")),
                 Seen("", (5, 16, 21), "tool_calls")),
    ResponseCase("openai", "content-filter", _json("openai", _openai_body("I can", "content_filter")),
                 Seen("I can", (5, 16, 21), "content_filter")),
    ResponseCase("openai", "no-usage", _json("openai", _openai_body("Hi", "stop", usage=None)),
                 Seen("Hi", (None, None, None), "stop")),
    ResponseCase("openai", "unknown-finish", _json("openai", _openai_body("Hi", "eos")),
                 Seen("Hi", (5, 16, 21), "eos")),
    ResponseCase("anthropic", "simulator", None, None),
    ResponseCase("anthropic", "multi-block-with-cache",
                 _json("anthropic", _anthropic_body(_BLOCKS, "tool_use", input_tokens=10, output_tokens=20,
                                                    cache_creation_input_tokens=3,
                                                    cache_read_input_tokens=7)),
                 Seen("Hello world 👋", (20, 20, 40), "tool_calls")),
    ResponseCase("anthropic", "empty-content", _json("anthropic", _anthropic_body([], "end_turn")),
                 Seen("", (12, 6, 18), "stop")),
    ResponseCase("anthropic", "unicode",
                 lambda s: s.completion_reply(UNICODE, input_tokens=9, output_tokens=7),
                 Seen(UNICODE, (9, 7, 16), "stop")),
] + [
    ResponseCase("anthropic", f"stop-{reason}",
                 _json("anthropic", _anthropic_body([{"type": "text", "text": "Hi"}], reason)),
                 Seen("Hi", (12, 6, 18), _finish("anthropic", reason)))
    for reason in ("stop_sequence", "max_tokens", "refusal", "pause_turn", "model_context_window_exceeded")
] + [
    ResponseCase("ollama", "simulator", None, None),
    ResponseCase("ollama", "unicode", lambda s: s.completion_reply(UNICODE, input_tokens=9, output_tokens=7),
                 Seen(UNICODE, (9, 7, 16), "stop")),
    ResponseCase("ollama", "no-prompt-eval-count",
                 _json("ollama", _ollama_body("Hi", done_reason="stop", eval_count=3, eval_duration=3000)),
                 Seen("Hi", (0, 3, 3), "stop")),
    ResponseCase("ollama", "no-metrics", _json("ollama", _ollama_body("Hi", done_reason="stop")),
                 Seen("Hi", (None, None, None), "stop")),
    ResponseCase("ollama", "length", _json("ollama", _ollama_body("Hi", done_reason="length",
                                                                  prompt_eval_count=4, eval_count=1)),
                 Seen("Hi", (4, 1, 5), "length")),
    ResponseCase("ollama", "no-done-reason",
                 _json("ollama", _ollama_body("Hi", prompt_eval_count=4, eval_count=1)),
                 Seen("Hi", (4, 1, 5), None)),
]


@pytest.mark.parametrize("case", COMPLETE_CASES, ids=lambda c: f"{c.protocol}-{c.id}")
def test_completion_response_matches_sdk(case: ResponseCase) -> None:
    sdk = _sdk(case.protocol)
    adapter = ADAPTERS[case.protocol]
    with _server(case.protocol) as server:
        if case.reply is not None:
            server.enqueue(case.reply(server), times=2)
        with adapter.client(sdk, server) as client:
            sdk_seen = adapter.complete(client, MODELS[case.protocol])
        with _provider(case.protocol, server) as provider:
            pk_seen = _pk_complete(provider)
        assert server.pending == 0
    if case.expect is not None:
        assert sdk_seen == case.expect  # the scripted reply is what the SDK read, too
    else:
        assert sdk_seen.text.startswith("echo: ") and sdk_seen.usage[1]
    assert pk_seen == sdk_seen


# -- streams -------------------------------------------------------------------------------------

def _sse(data: Dict[str, Any], event: Optional[str] = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _anthropic_event(name: str, **data: Any) -> str:
    return _sse(dict({"type": name}, **data), name)


def _anthropic_stream(final_usage: Dict[str, int], *, extra_deltas: Tuple[Dict[str, int], ...] = (),
                      stop_reason: str = "tool_use") -> ReplyFactory:
    """A thinking block, two text blocks around a tool_use block, pings, then message_delta(s)."""
    start: Dict[str, Any] = {
        "id": "msg_conf", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1,
                  "cache_creation_input_tokens": 3, "cache_read_input_tokens": 7},
    }

    def block(index: int, content: Dict[str, Any], *deltas: Dict[str, Any]) -> List[str]:
        return ([_anthropic_event("content_block_start", index=index, content_block=content)]
                + [_anthropic_event("content_block_delta", index=index, delta=d) for d in deltas]
                + [_anthropic_event("content_block_stop", index=index)])

    events = [_anthropic_event("message_start", message=start), _anthropic_event("ping")]
    events += block(0, {"type": "thinking", "thinking": "", "signature": ""},
                    {"type": "thinking_delta", "thinking": "A greeting."},
                    {"type": "signature_delta", "signature": "sig=="})
    events += block(1, {"type": "text", "text": ""}, {"type": "text_delta", "text": "Hel"},
                    {"type": "text_delta", "text": "lo"})
    events += [_anthropic_event("ping")]
    events += block(2, {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
                    {"type": "input_json_delta", "partial_json": '{"city": "Paris"}'})
    events += block(3, {"type": "text", "text": ""}, {"type": "text_delta", "text": " world 👋"})
    for usage in (*extra_deltas, final_usage):
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        events.append(_anthropic_event("message_delta", delta=delta, usage=usage))
    events.append(_anthropic_event("message_stop"))
    return lambda server: Reply(200, chunks=events, content_type="text/event-stream; charset=utf-8",
                                headers={"request-id": "req_conf"})


def _openai_stream_with_comments() -> ReplyFactory:
    """OpenRouter-style comment lines (§A.8) and a role-only first delta."""
    head = {"id": "chatcmpl-conf", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}

    def chunk(delta: Dict[str, Any], finish: Optional[str] = None) -> str:
        return _sse(dict(head, choices=[{"index": 0, "delta": delta, "finish_reason": finish}], usage=None))

    events = [": OPENROUTER PROCESSING\n\n", chunk({"role": "assistant"}), chunk({"content": None}),
              chunk({"content": "Hi "}), ": keep-alive\n\n", chunk({"content": "there"}), chunk({}, "length"),
              _sse(dict(head, choices=[],
                        usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})),
              "data: [DONE]\n\n"]
    return lambda server: Reply(200, chunks=events, content_type="text/event-stream")


def _rechunked(factory: ReplyFactory, size: int, crlf: bool = False) -> ReplyFactory:
    """The same stream re-cut into ``size``-byte HTTP chunks (splitting UTF-8 sequences), and with
    CRLF line ends for SSE (§D.3 rule 1)."""
    def build(server: LoopbackServer) -> Reply:
        original = factory(server)
        body = original.body_bytes.replace(b"\n", b"\r\n") if crlf else original.body_bytes
        chunks = [body[i:i + size] for i in range(0, len(body), size)]
        return Reply(200, chunks=chunks, headers=original.headers)
    return build


_PIECES = ["héllo ", "👋 ", "世界\u2028", "next"]
_PIECES_TEXT = "".join(_PIECES)
# Ollama's Go encoder always escapes U+2028 as \u2028, so a raw one never appears in its NDJSON
# (and ollama-python, which splits lines with str.splitlines, would break on it).
_OLLAMA_PIECES = ["héllo ", "👋 ", "世界 ", "next"]
_OLLAMA_TEXT = "".join(_OLLAMA_PIECES)

STREAM_CASES = [
    ResponseCase("openai", "simulator", None, None),
    ResponseCase("openai", "unicode", lambda s: s.stream_reply(_PIECES, input_tokens=5, output_tokens=4),
                 Seen(_PIECES_TEXT, (5, 4, 9), "stop")),
    ResponseCase("openai", "unicode-3-byte-chunks-crlf",
                 _rechunked(lambda s: s.stream_reply(_PIECES, input_tokens=5, output_tokens=4), 3, crlf=True),
                 Seen(_PIECES_TEXT, (5, 4, 9), "stop")),
    ResponseCase("openai", "length", lambda s: s.stream_reply(["a ", "b"], finish_reason="length"),
                 Seen("a b", (5, 2, 7), "length")),
    ResponseCase("openai", "no-usage-chunk", lambda s: s.stream_reply(["a"], include_usage=False),
                 Seen("a", (None, None, None), "stop")),
    ResponseCase("openai", "comments-null-deltas", _openai_stream_with_comments(),
                 Seen("Hi there", (3, 2, 5), "length")),
    ResponseCase("anthropic", "simulator", None, None),
    ResponseCase("anthropic", "unicode", lambda s: s.stream_reply(_PIECES, input_tokens=5, output_tokens=4),
                 Seen(_PIECES_TEXT, (5, 4, 9), "stop")),
    ResponseCase("anthropic", "unicode-3-byte-chunks-crlf",
                 _rechunked(lambda s: s.stream_reply(_PIECES, input_tokens=5, output_tokens=4), 3, crlf=True),
                 Seen(_PIECES_TEXT, (5, 4, 9), "stop")),
    ResponseCase("anthropic", "max-tokens", lambda s: s.stream_reply(["a"], finish_reason="max_tokens"),
                 Seen("a", (5, 1, 6), "length")),
    ResponseCase("anthropic", "multi-block-cache", _anthropic_stream({"output_tokens": 20}),
                 Seen("Hello world 👋", (20, 20, 40), "tool_calls")),
    ResponseCase("anthropic", "cumulative-usage-all-fields",
                 _anthropic_stream({"input_tokens": 12, "cache_creation_input_tokens": 3,
                                    "cache_read_input_tokens": 8, "output_tokens": 20},
                                   extra_deltas=({"output_tokens": 9},)),
                 Seen("Hello world 👋", (23, 20, 43), "tool_calls")),
    # All MessageDeltaUsage fields are optional: input_tokens may come without the cache fields,
    # and then message_start's cache counts still hold (the SDK merges field by field).
    ResponseCase("anthropic", "cumulative-input-without-cache-fields",
                 _anthropic_stream({"input_tokens": 12, "output_tokens": 20}),
                 Seen("Hello world 👋", (22, 20, 42), "tool_calls")),
    ResponseCase("ollama", "simulator", None, None),
    ResponseCase("ollama", "unicode",
                 lambda s: s.stream_reply(_OLLAMA_PIECES, input_tokens=5, output_tokens=4),
                 Seen(_OLLAMA_TEXT, (5, 4, 9), "stop")),
    ResponseCase("ollama", "unicode-3-byte-chunks",
                 _rechunked(lambda s: s.stream_reply(_OLLAMA_PIECES, input_tokens=5, output_tokens=4), 3),
                 Seen(_OLLAMA_TEXT, (5, 4, 9), "stop")),
    ResponseCase("ollama", "length", lambda s: s.stream_reply(["a"], finish_reason="length"),
                 Seen("a", (5, 1, 6), "length")),
    ResponseCase("ollama", "no-prompt-eval-count",
                 lambda s: Reply(200, content_type="application/x-ndjson", chunks=[
                     json.dumps({"model": "llama3.2", "message": {"role": "assistant", "content": "Hi"},
                                 "done": False}) + "\n",
                     json.dumps({"model": "llama3.2", "message": {"role": "assistant", "content": ""},
                                 "done": True, "done_reason": "stop", "eval_count": 1}) + "\n"]),
                 Seen("Hi", (0, 1, 1), "stop")),
]

@pytest.mark.parametrize("case", STREAM_CASES, ids=lambda c: f"{c.protocol}-{c.id}")
def test_stream_matches_sdk(case: ResponseCase) -> None:
    sdk = _sdk(case.protocol)
    adapter = ADAPTERS[case.protocol]
    with _server(case.protocol) as server:
        if case.reply is not None:
            server.enqueue(case.reply(server), times=2)
        with adapter.client(sdk, server) as client:
            sdk_seen = adapter.stream(client, MODELS[case.protocol], [])
        with _provider(case.protocol, server) as provider:
            pk_seen = _pk_stream(provider, [])
        assert server.pending == 0
    if case.expect is not None:
        assert sdk_seen == case.expect
    else:
        assert sdk_seen.text.startswith("echo: ") and sdk_seen.usage[1]
    assert pk_seen == sdk_seen


# ================================================================================================
# 3. Errors: the same error body gives corresponding errors
# ================================================================================================

class ErrorCase(NamedTuple):
    protocol: str
    status: int
    sdk_class: Tuple[str, ...]  # the first name the installed SDK has
    pk_class: type
    reply: Optional[ReplyFactory] = None  # default: server.error_reply(status)
    label: str = ""


def _error(status: int, **kwargs: Any) -> ReplyFactory:
    return lambda server: server.error_reply(status, **kwargs)


ERROR_CASES = [
    ErrorCase("openai", 400, ("BadRequestError",), pk.InvalidRequestError),
    ErrorCase("openai", 401, ("AuthenticationError",), pk.AuthenticationError,
              _error(401, code="invalid_api_key")),
    ErrorCase("openai", 403, ("PermissionDeniedError",), pk.AuthenticationError),
    ErrorCase("openai", 404, ("NotFoundError",), pk.InvalidRequestError,
              _error(404, message="The model `gpt-9` does not exist or you do not have access to it.",
                     code="model_not_found")),
    ErrorCase("openai", 409, ("ConflictError",), pk.ServerError, _error(409, message="Conflict.")),
    ErrorCase("openai", 422, ("UnprocessableEntityError",), pk.InvalidRequestError,
              _error(422, message="Unprocessable.")),
    ErrorCase("openai", 429, ("RateLimitError",), pk.RateLimitError, _error(429, retry_after=1)),
    ErrorCase("openai", 429, ("RateLimitError",), pk.RateLimitError, _error(429, code="insufficient_quota"),
              "insufficient-quota"),
    ErrorCase("openai", 500, ("InternalServerError",), pk.ServerError),
    ErrorCase("openai", 503, ("InternalServerError",), pk.ServerError),
    ErrorCase("anthropic", 400, ("BadRequestError",), pk.InvalidRequestError,
              _error(400, message="max_tokens: Field required")),
    ErrorCase("anthropic", 401, ("AuthenticationError",), pk.AuthenticationError),
    ErrorCase("anthropic", 402, ("PaymentRequiredError", "APIStatusError"), pk.AuthenticationError),
    ErrorCase("anthropic", 403, ("PermissionDeniedError",), pk.AuthenticationError),
    ErrorCase("anthropic", 404, ("NotFoundError",), pk.InvalidRequestError,
              _error(404, message="model: claude-nope")),
    ErrorCase("anthropic", 409, ("ConflictError",), pk.ServerError),
    ErrorCase("anthropic", 413, ("ContentTooLargeError", "RequestTooLargeError"), pk.InvalidRequestError),
    ErrorCase("anthropic", 429, ("RateLimitError",), pk.RateLimitError, _error(429, retry_after=1)),
    ErrorCase("anthropic", 429, ("RateLimitError",), pk.RateLimitError,
              _error(429, message="You have reached your spend limit.", code="enforced_spend_limit_reached"),
              "spend-cap"),
    ErrorCase("anthropic", 500, ("InternalServerError",), pk.ServerError),
    ErrorCase("anthropic", 504, ("InternalServerError",), pk.ServerError),
    ErrorCase("anthropic", 529, ("OverloadedError", "InternalServerError"), pk.ServerError),
    ErrorCase("ollama", 400, ("ResponseError",), pk.InvalidRequestError,
              _error(400, message="model is required")),
    ErrorCase("ollama", 401, ("ResponseError",), pk.AuthenticationError,
              lambda s: Reply(401, json={"error": "unauthorized", "signin_url": "https://ollama.com/connect"})),
    ErrorCase("ollama", 404, ("ResponseError",), pk.InvalidRequestError,
              _error(404, message='model "llama9" not found, try pulling it first')),
    ErrorCase("ollama", 404, ("ResponseError",), pk.InvalidRequestError,
              lambda s: Reply(404, body="404 page not found"), "plain-text"),
    ErrorCase("ollama", 429, ("ResponseError",), pk.RateLimitError),
    ErrorCase("ollama", 500, ("ResponseError",), pk.ServerError),
    ErrorCase("ollama", 503, ("ResponseError",), pk.ServerError),
]


def _sdk_class(sdk: Any, names: Tuple[str, ...]) -> Any:
    for name in names:
        if hasattr(sdk, name):
            return getattr(sdk, name)
    raise AssertionError(f"{sdk.__name__} has none of {names}")


def _error_id(case: ErrorCase) -> str:
    return f"{case.protocol}-{case.status}" + (f"-{case.label}" if case.label else "")


#: An error status before a stream starts takes the same transport path as for complete();
#: one representative per error class is enough to show the stream side maps it the same way.
_STREAMED_ERROR_STATUSES = {401, 404, 429, 503, 529}


@pytest.mark.parametrize("case, stream", [
    *(pytest.param(c, False, id=f"{_error_id(c)}-complete") for c in ERROR_CASES),
    *(pytest.param(c, True, id=f"{_error_id(c)}-stream") for c in ERROR_CASES
      if c.status in _STREAMED_ERROR_STATUSES and not c.label),
])
def test_error_matches_sdk(case: ErrorCase, stream: bool) -> None:
    sdk = _sdk(case.protocol)
    adapter = ADAPTERS[case.protocol]
    with _server(case.protocol) as server:
        reply = (case.reply or _error(case.status))(server)
        server.enqueue(reply, times=2)
        sdk_class = _sdk_class(sdk, case.sdk_class)
        with adapter.client(sdk, server) as client, pytest.raises(sdk_class) as sdk_info:
            adapter.send(client, adapter.call(MODELS[case.protocol]), stream)
        with _provider(case.protocol, server) as provider, pytest.raises(case.pk_class) as pk_info:
            if stream:
                next(iter(provider.stream(PROMPT, system=SYSTEM, max_tokens=64)))
            else:
                provider.complete(PROMPT, system=SYSTEM, max_tokens=64)
        assert len(server.requests) == 2  # one attempt each: no retries were configured
    sdk_exc: Any = sdk_info.value
    pk_exc: Any = pk_info.value
    assert pk_exc.status_code == sdk_exc.status_code == case.status
    sdk_request_id = getattr(sdk_exc, "request_id", None)  # ollama-python has none
    assert pk_exc.request_id == sdk_request_id
    if case.protocol != "ollama":
        assert sdk_request_id and sdk_request_id.startswith("req_")
    message = adapter.error_message(sdk_exc)
    # The same message, on one line in str() (runs of whitespace collapsed); verbatim in .body.
    assert message and " ".join(message.split()) in str(pk_exc)
    assert pk_exc.body == reply.body_bytes.decode("utf-8")
    if case.label in ("insufficient-quota", "spend-cap"):
        assert pk_exc.retryable is False  # §D.8: the SDKs would retry these; waiting cannot help


class MidStreamCase(NamedTuple):
    protocol: str
    sdk_class: str
    sdk_status: Optional[int]
    pk_status: int  # provider_kit classes an in-stream error as if it had this status


MID_STREAM_CASES = [
    # openai/_streaming.py: an event with an "error" key raises APIError (no status).
    MidStreamCase("openai", "APIError", None, 500),
    # §B.5: the SDK builds its error from the 200 response, so its status is 200 and the class is
    # APIStatusError; provider_kit classes the event by error.type (overloaded_error -> 529).
    MidStreamCase("anthropic", "APIStatusError", 200, 529),
    # §C.5: ollama-python raises ResponseError(err) with status_code -1 for an error line.
    MidStreamCase("ollama", "ResponseError", -1, 500),
]


@pytest.mark.parametrize("case", MID_STREAM_CASES, ids=lambda c: c.protocol)
def test_mid_stream_error_matches_sdk(case: MidStreamCase) -> None:
    sdk = _sdk(case.protocol)
    adapter = ADAPTERS[case.protocol]
    sdk_pieces: List[str] = []
    pk_pieces: List[str] = []
    with _server(case.protocol) as server:
        server.enqueue(server.stream_reply(["Hel", "lo"], error_after=1), times=2)
        with adapter.client(sdk, server) as client, pytest.raises(getattr(sdk, case.sdk_class)) as sdk_info:
            adapter.stream(client, MODELS[case.protocol], sdk_pieces)
        with _provider(case.protocol, server) as provider, pytest.raises(pk.ServerError) as pk_info:
            _pk_stream(provider, pk_pieces)
    assert "".join(pk_pieces) == "".join(sdk_pieces) == "Hel"
    assert getattr(sdk_info.value, "status_code", None) == case.sdk_status
    assert pk_info.value.status_code == case.pk_status
    message = adapter.error_message(sdk_info.value)
    assert message and message in str(pk_info.value)


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "ollama"])
def test_truncated_stream_same_text_but_provider_kit_raises(protocol: str) -> None:
    """A deliberate difference (issue 3; §A.4 rule 5, §B.5, §C.4): a stream that ends before its
    terminator ([DONE] / message_stop / done:true). The SDKs stop quietly; provider_kit delivers
    the same text, then raises ResponseFormatError instead of pretending the reply finished."""
    sdk = _sdk(protocol)
    adapter = ADAPTERS[protocol]
    pk_pieces: List[str] = []
    with _server(protocol) as server:
        server.enqueue(server.stream_reply(["Hel", "lo"], terminate=False), times=2)
        with adapter.client(sdk, server) as client:
            sdk_seen = adapter.stream(client, MODELS[protocol], [])
        with _provider(protocol, server) as provider, pytest.raises(pk.ResponseFormatError, match="end"):
            _pk_stream(provider, pk_pieces)
    assert "".join(pk_pieces) == sdk_seen.text == "Hello"


# ================================================================================================
# 4. OpenAI beyond text (issue 11; PROTOCOLS-2.md §E.1, §F.1, §H, §I.1): images, response_format,
#    reasoning_effort, top_p/seed; parse()'s data, refusals, reasoning fields and usage details
# ================================================================================================

_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
_PERSON_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                  "required": ["name", "age"], "additionalProperties": False}


def _openai_user(content: Any) -> List[Dict[str, Any]]:
    return [{"role": "user", "content": content}]


def _openai_feature_cases() -> List[RequestCase]:
    import base64

    data_url = "data:image/png;base64," + base64.b64encode(_PNG).decode()
    image = pk.Image.from_bytes(_PNG, detail="low")
    url = "https://example.com/a.jpg"
    return [
        RequestCase("openai", "image-bytes", {}, dict(prompt=["What is this?", image]), {}, dict(
            model="gpt-4o-mini", messages=_openai_user([
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": data_url, "detail": "low"}}]))),
        RequestCase("openai", "image-url", {}, dict(prompt=[pk.Image.from_url(url), "Describe"]), {}, dict(
            model="gpt-4o-mini", messages=_openai_user([
                {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "Describe"}]))),
        RequestCase("openai", "json-object", {}, dict(prompt="Reply in JSON", json=True), {}, dict(
            model="gpt-4o-mini", messages=_openai_user("Reply in JSON"), response_format={"type": "json_object"})),
        RequestCase("openai", "json-schema-strict", {}, dict(schema=_PERSON_SCHEMA), {}, dict(
            model="gpt-4o-mini", messages=_messages(system=False), response_format={
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": _PERSON_SCHEMA, "strict": True}})),
        RequestCase("openai", "reasoning-effort", {"model": "o4-mini"}, dict(reasoning="high", max_tokens=64), {},
                    dict(model="o4-mini", messages=_messages(system=False), reasoning_effort="high",
                         max_completion_tokens=64)),
        RequestCase("openai", "reasoning-off", {"model": "o4-mini"}, dict(reasoning=False), {},
                    dict(model="o4-mini", messages=_messages(system=False), reasoning_effort="none")),
        RequestCase("openai", "top-p-seed", {}, dict(top_p=0.25, seed=11), {},
                    dict(model="gpt-4o-mini", messages=_messages(system=False), top_p=0.25, seed=11)),
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("case", _openai_feature_cases(), ids=lambda c: c.id)
def test_openai_feature_request_matches_sdk(case: RequestCase, stream: bool) -> None:
    sdk = _sdk("openai")
    with LoopbackServer("openai", api_key=KEY, models=["gpt-4o-mini", "o4-mini"]) as server:
        with _OpenAI.client(sdk, server) as client:
            _OpenAI.send(client, dict(case.sdk_call), stream)
        with _provider("openai", server, **case.pk_options) as provider:
            _pk_send(provider, case.pk_call, stream)
        sdk_req, pk_req = server.requests
        assert server.errors == []
    assert (pk_req.method, pk_req.path) == (sdk_req.method, sdk_req.path)
    assert pk_req.json() == sdk_req.json()


def test_openai_schema_class_request_matches_sdk_parse() -> None:
    # parse(response_format=Model) makes the class's schema strict (openai/lib/_pydantic.py);
    # provider_kit does the same for a class, so both ask for the same strict json_schema.
    sdk = _sdk("openai")
    pydantic = pytest.importorskip("pydantic")

    class Address(pydantic.BaseModel):
        city: str

    class Person(pydantic.BaseModel):
        name: str
        nickname: Optional[str] = None
        home: Address
        tags: List[str] = []

    with _server("openai") as server:
        with _OpenAI.client(sdk, server) as client:
            client.chat.completions.parse(model="gpt-4o-mini", messages=_messages(system=False),
                                          response_format=Person)
        with _provider("openai", server) as provider:
            provider.complete(PROMPT, schema=Person)
        sdk_body, pk_body = (request.json() for request in server.requests)
    assert sdk_body.pop("stream") is False  # the SDK says so explicitly; no "stream" means the same
    assert pk_body == sdk_body


def _openai_stream_of(*deltas: Dict[str, Any], finish: str = "stop", usage: Optional[Dict[str, Any]] = None,
                      ) -> ReplyFactory:
    head = {"id": "chatcmpl-conf", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    events = [_sse(dict(head, choices=[{"index": 0, "delta": delta, "finish_reason": None}])) for delta in deltas]
    events.append(_sse(dict(head, choices=[{"index": 0, "delta": {}, "finish_reason": finish}])))
    if usage is not None:
        events.append(_sse(dict(head, choices=[], usage=usage)))
    body = "".join(events) + "data: [DONE]\n\n"
    return lambda server: Reply(200, body=body.encode(), content_type="text/event-stream")


_DETAILED_USAGE = {"prompt_tokens": 2000, "completion_tokens": 300, "total_tokens": 2300,
                   "prompt_tokens_details": {"cached_tokens": 1536, "cache_write_tokens": 64},
                   "completion_tokens_details": {"reasoning_tokens": 256}}


def _sdk_usage_details(usage: Any) -> Tuple[Any, ...]:
    prompt = getattr(usage, "prompt_tokens_details", None)
    completion = getattr(usage, "completion_tokens_details", None)
    return (usage.prompt_tokens, getattr(prompt, "cached_tokens", None),
            (getattr(prompt, "model_extra", None) or {}).get("cache_write_tokens",
                                                             getattr(prompt, "cache_write_tokens", None)),
            getattr(completion, "reasoning_tokens", None))


def _pk_usage_details(usage: pk.Usage) -> Tuple[Any, ...]:
    return (usage.input_tokens, usage.cached_input_tokens, usage.cache_creation_input_tokens, usage.reasoning_tokens)


def test_openai_parse_data_reasoning_and_usage_match_sdk() -> None:
    sdk = _sdk("openai")
    pydantic = pytest.importorskip("pydantic")

    class Person(pydantic.BaseModel):
        name: str
        age: int

    answer = json.dumps({"name": "Ada", "age": 36})
    body = _openai_body(answer, "stop", None, reasoning_content="She is 36.")
    body["usage"] = _DETAILED_USAGE
    with _server("openai") as server:
        server.enqueue(_json("openai", body)(server), times=2)
        with _OpenAI.client(sdk, server) as client:
            reply = client.chat.completions.parse(model="gpt-4o-mini", messages=_messages(), response_format=Person)
        with _provider("openai", server) as provider:
            ours = provider.complete(PROMPT, schema=Person)
    message = reply.choices[0].message
    assert ours.parsed == message.parsed and ours.data == message.parsed.model_dump()
    assert ours.reasoning == message.model_extra["reasoning_content"]
    assert _pk_usage_details(ours.usage) == _sdk_usage_details(reply.usage)


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_openai_refusal_matches_sdk_parse(stream: bool) -> None:
    sdk = _sdk("openai")
    refusal = "I'm sorry, I can't help with that."
    with _server("openai") as server:
        if stream:
            reply = _openai_stream_of({"role": "assistant", "content": None, "refusal": ""}, {"refusal": "I'm sorry, "},
                                      {"refusal": "I can't help with that."})
        else:
            reply = _json("openai", _openai_body(None, "stop", refusal=refusal))
        server.enqueue(reply(server), times=2)
        with _OpenAI.client(sdk, server) as client:
            if stream:
                with client.chat.completions.stream(model="gpt-4o-mini", messages=_messages(),
                                                    response_format=_person_class()) as events:
                    final = events.get_final_completion()
            else:
                final = client.chat.completions.parse(model="gpt-4o-mini", messages=_messages(),
                                                      response_format=_person_class())
        with _provider("openai", server) as provider:
            if stream:
                chunks = list(provider.stream(PROMPT, schema=_PERSON_SCHEMA))
                text, last = "".join(chunk.text for chunk in chunks), chunks[-1]
            else:
                last = provider.complete(PROMPT, schema=_PERSON_SCHEMA)
                text = last.text
    message = final.choices[0].message
    assert message.refusal == text == refusal
    assert message.parsed is None and last.data is None and last.parsed is None
    assert last.finish_reason == "content_filter"


def _person_class() -> Any:  # the pydantic class parse() and stream() need
    pydantic = pytest.importorskip("pydantic")

    class Person(pydantic.BaseModel):
        name: str
        age: int

    return Person


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_openai_streamed_reasoning_and_usage_details_match_sdk(field: str) -> None:
    sdk = _sdk("openai")
    reply = _openai_stream_of({"role": "assistant", "content": ""}, {field: "Let me "}, {field: "think."},
                              {"content": "Hi"}, {"content": "!"}, usage=_DETAILED_USAGE)
    with _server("openai") as server:
        server.enqueue(reply(server), times=2)
        reasoning: List[str] = []
        text: List[str] = []
        usage = None
        with _OpenAI.client(sdk, server) as client:
            for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=_messages(), stream=True,
                                                        stream_options={"include_usage": True}):
                for choice in chunk.choices:
                    reasoning.append((choice.delta.model_extra or {}).get(field) or "")
                    text.append(choice.delta.content or "")
                usage = chunk.usage or usage
        with _provider("openai", server) as provider:
            chunks = list(provider.stream(PROMPT))
    assert "".join(chunk.reasoning for chunk in chunks) == "".join(reasoning)
    assert "".join(chunk.text for chunk in chunks) == "".join(text)
    assert _pk_usage_details(chunks[-1].usage) == _sdk_usage_details(usage)


def test_openai_json_cut_short_is_an_error_for_both() -> None:
    sdk = _sdk("openai")
    with _server("openai") as server:
        server.enqueue(_json("openai", _openai_body('{"name": "A', "length"))(server), times=2)
        with _OpenAI.client(sdk, server) as client, pytest.raises(sdk.LengthFinishReasonError):
            client.chat.completions.parse(model="gpt-4o-mini", messages=_messages(),
                                          response_format=_person_class())
        with _provider("openai", server) as provider, pytest.raises(pk.errors.ResponseFormatError, match="max_tokens"):
            provider.complete(PROMPT, schema=_PERSON_SCHEMA)

# ================================================================================================
# 4. Ollama beyond plain text (issue 11; PROTOCOLS-2.md §E.4, §F.4, §H.4, §I.3): ollama-python's
#    images=, format=, think= and options= against provider_kit's parts, schema=/json=,
#    reasoning=, top_p/seed, extra_body and cache=True; then the answers both read.
# ================================================================================================

OLLAMA_THINKER = "qwen3:8b"  # thinking-capable in the simulator
_PNG_SAMPLE = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
_JPEG = b"\xff\xd8\xff\xe0" + b"\x11" * 30
_INVOICE = {"title": "Invoice", "type": "object", "required": ["total", "currency"],
            "properties": {"total": {"type": "number"}, "currency": {"type": "string", "enum": ["EUR", "USD"]}}}


class OllamaFeatureCase(NamedTuple):
    id: str
    model: str
    pk_prompt: Any
    pk_call: Dict[str, Any]
    sdk_call: Dict[str, Any]  # chat() arguments besides the model


def _ollama_feature_cases() -> List[OllamaFeatureCase]:
    user = {"role": "user", "content": "What is this?"}
    cases = [
        OllamaFeatureCase("image", "llama3.2", ["What is this?", pk.Image.from_bytes(_PNG_SAMPLE)], {},
                          dict(messages=[{**user, "images": [_PNG_SAMPLE]}])),
        OllamaFeatureCase("images-and-system", "llama3.2",
                          [pk.Message("system", SYSTEM), pk.Message("user", [
                              "What is this?", pk.Image.from_bytes(_JPEG), pk.Image.from_bytes(_PNG_SAMPLE)])],
                          {}, dict(messages=[{"role": "system", "content": SYSTEM},
                                             {**user, "images": [_JPEG, _PNG_SAMPLE]}])),
        OllamaFeatureCase("schema", "llama3.2", "Total?", dict(schema=_INVOICE),
                          dict(messages=[{"role": "user", "content": "Total?"}], format=_INVOICE)),
        OllamaFeatureCase("json", "llama3.2", "Total?", dict(json=True),
                          dict(messages=[{"role": "user", "content": "Total?"}], format="json")),
        OllamaFeatureCase("sampling", "llama3.2", PROMPT, dict(temperature=0.1, top_p=0.9, seed=42),
                          dict(messages=_messages(system=False),
                               options={"temperature": 0.1, "top_p": 0.9, "seed": 42})),
        OllamaFeatureCase("extra-body-options", "llama3.2", PROMPT,
                          dict(max_tokens=8, extra_body={"options": {"num_ctx": 8192}}),
                          dict(messages=_messages(system=False), options={"num_predict": 8, "num_ctx": 8192})),
        OllamaFeatureCase("cache-sends-nothing", "llama3.2", PROMPT, dict(cache=True),
                          dict(messages=_messages(system=False))),
        OllamaFeatureCase("think-off", OLLAMA_THINKER, PROMPT, dict(reasoning=False),
                          dict(messages=_messages(system=False), think=False)),
    ]
    cases += [OllamaFeatureCase(f"think-{level}", OLLAMA_THINKER, PROMPT, dict(reasoning=level),
                                dict(messages=_messages(system=False), think=level))
              for level in ("low", "medium", "high")]
    return cases


@contextlib.contextmanager
def _ollama_server() -> Iterator[LoopbackServer]:
    with LoopbackServer("ollama", models=["llama3.2:latest", OLLAMA_THINKER]) as server:
        yield server
    assert server.errors == []


def _ollama_bodies_agree(sdk_req: RecordedRequest, pk_req: RecordedRequest) -> None:
    assert (pk_req.method, pk_req.path) == (sdk_req.method, sdk_req.path)
    sdk_body, pk_body = sdk_req.json(), pk_req.json()
    assert sdk_body.pop("tools") == [] and "tools" not in pk_body  # as in _body_deltas
    assert pk_body == sdk_body


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("case", _ollama_feature_cases(), ids=lambda c: c.id)
def test_ollama_feature_request_matches_sdk(case: OllamaFeatureCase, stream: bool) -> None:
    sdk = _sdk("ollama")
    with _ollama_server() as server:
        with _Ollama.client(sdk, server) as client:
            _Ollama.send(client, dict(case.sdk_call, model=case.model), stream)
        with _provider("ollama", server, model=case.model) as provider:
            _pk_send(provider, dict(case.pk_call, prompt=case.pk_prompt), stream)
        sdk_req, pk_req = server.requests
    _ollama_bodies_agree(sdk_req, pk_req)


def test_ollama_pydantic_schema_and_image_path_match_sdk(tmp_path: Any) -> None:
    """The SDK's documented ways: format=Model.model_json_schema() and images=[path]; provider_kit's
    schema=Model and Image.from_path(path) send the same."""
    sdk = _sdk("ollama")
    pydantic = pytest.importorskip("pydantic")

    class Receipt(pydantic.BaseModel):
        shop: str
        total: float

    path = tmp_path / "receipt.png"
    path.write_bytes(_PNG_SAMPLE)
    with _ollama_server() as server:
        with _Ollama.client(sdk, server) as client:
            reply = client.chat(model="llama3.2", format=Receipt.model_json_schema(),
                                messages=[{"role": "user", "content": "Read it", "images": [str(path)]}])
        with _provider("ollama", server) as provider:
            completion = provider.complete(["Read it", pk.Image.from_path(path)], schema=Receipt)
        sdk_req, pk_req = server.requests
    _ollama_bodies_agree(sdk_req, pk_req)
    assert completion.parsed == Receipt.model_validate_json(reply.message.content)


def test_ollama_appended_assistant_turn_sends_what_the_sdk_sends() -> None:
    """ollama-python's round trip (messages.append(response.message)) sends the thinking back;
    appending provider_kit's completion.message sends the same turn."""
    sdk = _sdk("ollama")
    first_user, second_user = {"role": "user", "content": "Plan a trip"}, {"role": "user", "content": "Shorter"}
    with _ollama_server() as server:
        with _Ollama.client(sdk, server) as client:
            reply = client.chat(model=OLLAMA_THINKER, messages=[first_user], think="low")
            client.chat(model=OLLAMA_THINKER, messages=[first_user, reply.message, second_user], think="low")
        with _provider("ollama", server, model=OLLAMA_THINKER) as provider:
            first = provider.complete("Plan a trip", reasoning="low")
            provider.complete([pk.Message(**first_user), first.message, pk.Message(**second_user)], reasoning="low")
        _, sdk_req, _, pk_req = server.requests
    _ollama_bodies_agree(sdk_req, pk_req)
    assert pk_req.json()["messages"][1]["thinking"] == reply.message.thinking == first.reasoning


# -- the answers: the same bytes give the same thinking, text, data and usage ---------------------

def _ollama_thinking_stream(server: LoopbackServer) -> Reply:
    def line(message: Dict[str, Any], **fields: Any) -> str:
        body = {"model": OLLAMA_THINKER, "created_at": "2026-08-21T10:00:00.1Z",
                "message": {"role": "assistant", "content": "", **message}, **fields}
        return json.dumps(body, ensure_ascii=False) + "\n"

    return Reply(200, content_type="application/x-ndjson", chunks=[
        line({"thinking": "Need the "}, done=False),
        line({"thinking": "total 👋."}, done=False),
        line({"content": '{"total": 12.5, '}, done=False),
        line({"content": '"currency": "EUR"}'}, done=False),
        line({}, done=True, done_reason="stop", prompt_eval_count=18, eval_count=9),
    ])


def _ollama_thinking_body(server: LoopbackServer) -> Reply:
    body = _ollama_body('{"total": 12.5, "currency": "EUR"}', done_reason="stop", prompt_eval_count=18, eval_count=9)
    body["message"]["thinking"] = "Need the total 👋."
    return Reply(200, json=body)


class _OllamaRead(NamedTuple):
    reasoning: Optional[str]
    text: str
    data: Any
    usage: Triple
    finish: Optional[str]


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("source", ["scripted", "simulator"])
def test_ollama_thinking_and_json_answers_are_read_as_the_sdk_reads_them(source: str, stream: bool) -> None:
    sdk = _sdk("ollama")
    call = dict(model=OLLAMA_THINKER, messages=[{"role": "user", "content": "Total?"}], format=_INVOICE,
                think="high")
    with _ollama_server() as server:
        if source == "scripted":
            server.enqueue(_ollama_thinking_stream(server) if stream else _ollama_thinking_body(server), times=2)
        with _Ollama.client(sdk, server) as client:
            if stream:
                parts = list(client.chat(**call, stream=True))
                sdk_text = "".join(part.message.content or "" for part in parts)
                sdk_seen = _OllamaRead("".join(part.message.thinking or "" for part in parts) or None, sdk_text,
                                       json.loads(sdk_text), _Ollama.usage(parts[-1]),
                                       _finish("ollama", parts[-1].done_reason))
            else:
                reply = client.chat(**call)
                sdk_seen = _OllamaRead(reply.message.thinking, reply.message.content, json.loads(reply.message.content),
                                       _Ollama.usage(reply), _finish("ollama", reply.done_reason))
        with _provider("ollama", server, model=OLLAMA_THINKER) as provider:
            if stream:
                chunks = list(provider.stream("Total?", schema=_INVOICE, reasoning="high"))
                pk_seen = _OllamaRead("".join(c.reasoning for c in chunks) or None, "".join(c.text for c in chunks),
                                      chunks[-1].data, _pk_seen(chunks[-1].usage), chunks[-1].finish_reason)
            else:
                completion = provider.complete("Total?", schema=_INVOICE, reasoning="high")
                pk_seen = _OllamaRead(completion.reasoning, completion.text, completion.data,
                                      _pk_seen(completion.usage), completion.finish_reason)
        assert server.pending == 0
    assert sdk_seen.reasoning and sdk_seen.data  # there was thinking and JSON to read
    if source == "scripted":
        assert sdk_seen == _OllamaRead("Need the total 👋.", '{"total": 12.5, "currency": "EUR"}',
                                       {"total": 12.5, "currency": "EUR"}, (18, 9, 27), "stop")
    assert pk_seen == sdk_seen


# ================================================================================================
# 4. Anthropic beyond plain text (issue 11; PROTOCOLS-2 §E.3, §F.3, §H.3, §I.2): image blocks,
#    structured outputs, thinking, prompt caching, top_p; and the answers' thinking, data, usage
# ================================================================================================

_A_PNG = b"\x89PNG\r\n\x1a\n" + bytes(40)
_A_URL = "https://example.com/receipt.jpg"


def _a_thinking_block(text: str) -> Dict[str, Any]:
    """A thinking block as the simulator signs it (its check of the echo accepts only these)."""
    from provider_kit.testing.wires._anthropic_features import sign

    return {"type": "thinking", "thinking": text, "signature": sign("thinking", text)}


def _a_invoice() -> Any:
    pydantic = pytest.importorskip("pydantic")

    class Invoice(pydantic.BaseModel):  # type: ignore[misc, name-defined]
        number: str = pydantic.Field(description="As printed")
        total: float = pydantic.Field(ge=0)
        lines: List[str] = pydantic.Field(default_factory=list, max_length=20)

    return Invoice


class AnthropicCall(NamedTuple):
    id: str
    pk_options: Dict[str, Any]
    pk_call: Callable[[], Dict[str, Any]]  # built lazily: pydantic is imported only when run
    sdk_call: Callable[[Any], Dict[str, Any]]  # given the SDK module
    sdk_method: str = "create"  # or "parse" (messages.parse / messages.stream with output_format)
    sdk_headers: Optional[Dict[str, str]] = None


_A_SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "minLength": 1},
                                              "email": {"type": "string", "format": "email"},
                                              "tags": {"type": "array", "items": {"type": "string"},
                                                       "minItems": 2}},
             "required": ["name"]}
_A_CACHED = {"type": "ephemeral"}

ANTHROPIC_CALLS = [
    AnthropicCall(
        "images-base64-and-url", {},
        lambda: dict(prompt=["Describe", pk.Image.from_bytes(_A_PNG), pk.Image.from_url(_A_URL)], max_tokens=64),
        lambda sdk: dict(max_tokens=64, messages=[{"role": "user", "content": [
            {"type": "text", "text": "Describe"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": __import__("base64").b64encode(_A_PNG).decode()}},
            {"type": "image", "source": {"type": "url", "url": _A_URL}}]}])),
    # messages.parse(output_format=Model) rewrites the model's schema (transform_schema): so does provider_kit.
    AnthropicCall(
        "schema-pydantic-model", {}, lambda: dict(schema=_a_invoice(), max_tokens=256),
        lambda sdk: dict(max_tokens=256, messages=_messages(system=False), output_format=_a_invoice()),
        sdk_method="parse"),
    AnthropicCall(
        "schema-dict", {}, lambda: dict(schema=_A_SCHEMA, max_tokens=256),
        lambda sdk: dict(max_tokens=256, messages=_messages(system=False), output_config={
            "format": {"type": "json_schema", "schema": sdk.transform_schema(_A_SCHEMA)}})),
    AnthropicCall(
        "thinking-budget", {}, lambda: dict(reasoning="medium", max_tokens=8192),
        lambda sdk: dict(max_tokens=8192, messages=_messages(system=False),
                         thinking={"type": "enabled", "budget_tokens": 4096})),
    AnthropicCall(
        "thinking-adaptive-effort", {"model": "claude-opus-4-8"}, lambda: dict(reasoning="high", max_tokens=8192),
        lambda sdk: dict(model="claude-opus-4-8", max_tokens=8192, messages=_messages(system=False),
                         thinking={"type": "adaptive"}, output_config={"effort": "high"})),
    AnthropicCall(
        "thinking-and-schema", {"model": "claude-opus-4-8"},
        lambda: dict(reasoning="low", schema=_A_SCHEMA, max_tokens=4096),
        lambda sdk: dict(model="claude-opus-4-8", max_tokens=4096, messages=_messages(system=False),
                         thinking={"type": "adaptive"}, output_config={
                             "effort": "low", "format": {"type": "json_schema",
                                                         "schema": sdk.transform_schema(_A_SCHEMA)}})),
    AnthropicCall(
        "thinking-blocks-sent-back", {},
        lambda: dict(prompt=[pk.Message("user", PROMPT),
                             pk.Message("assistant", "Hi!", {"thinking_blocks": [_a_thinking_block("Greet.")]}),
                             pk.Message("user", "Again")], reasoning="low", max_tokens=2048),
        lambda sdk: dict(max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024}, messages=[
            {"role": "user", "content": PROMPT},
            {"role": "assistant", "content": [_a_thinking_block("Greet."), {"type": "text", "text": "Hi!"}]},
            {"role": "user", "content": "Again"}])),
    AnthropicCall(
        "prompt-caching", {}, lambda: dict(system=SYSTEM, cache=True, max_tokens=64),
        lambda sdk: dict(max_tokens=64, system=[{"type": "text", "text": SYSTEM, "cache_control": _A_CACHED}],
                         messages=[{"role": "user", "content": [
                             {"type": "text", "text": PROMPT, "cache_control": _A_CACHED}]}])),
    # anthropic-python >= 1 has no top_p argument (and its default version refuses it): extra_body.
    AnthropicCall(
        "top-p", {"anthropic_version": "2023-06-01"}, lambda: dict(top_p=0.9, max_tokens=64),
        lambda sdk: dict(max_tokens=64, messages=_messages(system=False), extra_body={"top_p": 0.9}),
        sdk_headers={"anthropic-version": "2023-06-01"}),
]


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("case", ANTHROPIC_CALLS, ids=lambda c: c.id)
def test_anthropic_feature_request_matches_sdk(case: AnthropicCall, stream: bool) -> None:
    sdk = _sdk("anthropic")
    pk_options = {"anthropic_version": _sdk_anthropic_version(sdk), **case.pk_options}
    sdk_call = {"model": MODELS["anthropic"], **case.sdk_call(sdk)}
    with _server("anthropic") as server:
        options = {"default_headers": case.sdk_headers} if case.sdk_headers else {}
        with _Anthropic.client(sdk, server, **options) as client:
            if case.sdk_method == "parse":
                if stream:
                    with client.messages.stream(**sdk_call) as events:
                        events.get_final_message()
                else:
                    client.messages.parse(**sdk_call)
            else:
                _Anthropic.send(client, sdk_call, stream)
        with _provider("anthropic", server, **pk_options) as provider:
            _pk_send(provider, case.pk_call(), stream)
        sdk_req, pk_req = server.requests
    assert pk_req.headers.get("anthropic-version") == sdk_req.headers.get("anthropic-version")
    assert "anthropic-beta" not in sdk_req.headers and "anthropic-beta" not in pk_req.headers  # GA: no beta header
    assert pk_req.json() == sdk_req.json()


def _a_message(content: List[Dict[str, Any]], stop_reason: str = "end_turn", **usage: Any) -> Dict[str, Any]:
    return _anthropic_body(content, stop_reason, **(usage or {
        "input_tokens": 10, "output_tokens": 30, "cache_creation_input_tokens": 4, "cache_read_input_tokens": 50,
        "output_tokens_details": {"thinking_tokens": 21}}))


def _a_stream_of(body: Dict[str, Any]) -> ReplyFactory:
    """``body`` streamed as the API streams it: thinking deltas and one signature_delta per
    thinking block, redacted blocks whole, text in two deltas, the usage split between
    message_start (input and cache counts) and message_delta (output counts)."""
    usage = dict(body["usage"])
    start = dict(body, content=[], stop_reason=None,
                 usage={k: v for k, v in usage.items() if k != "output_tokens_details"} | {"output_tokens": 1})
    events = [_anthropic_event("message_start", message=start), _anthropic_event("ping")]
    for index, block in enumerate(body["content"]):
        if block["type"] == "thinking":
            events.append(_anthropic_event("content_block_start", index=index,
                                           content_block={"type": "thinking", "thinking": "", "signature": ""}))
            text = block["thinking"]
            for piece in (text[: len(text) // 2], text[len(text) // 2:]):
                if piece:
                    events.append(_anthropic_event("content_block_delta", index=index,
                                                   delta={"type": "thinking_delta", "thinking": piece}))
            events.append(_anthropic_event("content_block_delta", index=index,
                                           delta={"type": "signature_delta", "signature": block["signature"]}))
        elif block["type"] == "text":
            events.append(_anthropic_event("content_block_start", index=index,
                                           content_block={"type": "text", "text": ""}))
            text = block["text"]
            for piece in (text[:3], text[3:]):
                events.append(_anthropic_event("content_block_delta", index=index,
                                               delta={"type": "text_delta", "text": piece}))
        else:
            events.append(_anthropic_event("content_block_start", index=index, content_block=block))
        events.append(_anthropic_event("content_block_stop", index=index))
    final = {k: v for k, v in usage.items() if k in ("output_tokens", "output_tokens_details")}
    events.append(_anthropic_event("message_delta", delta={"stop_reason": body["stop_reason"],
                                                           "stop_sequence": None}, usage=final))
    events.append(_anthropic_event("message_stop"))
    return lambda server: Reply(200, chunks=events, content_type="text/event-stream; charset=utf-8")


class AnthropicSeen(NamedTuple):
    """What a client made of an answer beyond its text: the thinking, the blocks to send back,
    the usage details, and the structured data."""

    text: str
    reasoning: Optional[str]
    thinking_blocks: List[Dict[str, Any]]
    usage: Tuple[Optional[int], ...]  # input (all), output, cache read, cache creation, thinking
    finish: Optional[str]
    data: Any = None


def _sdk_anthropic_seen(message: Any, data: Any = None) -> AnthropicSeen:
    usage = message.usage
    details = usage.output_tokens_details
    blocks = [block.model_dump(exclude_none=True) for block in message.content
              if block.type in ("thinking", "redacted_thinking")]
    thoughts = [block.thinking for block in message.content if block.type == "thinking" and block.thinking]
    return AnthropicSeen(
        "".join(block.text for block in message.content if block.type == "text"),
        "\n\n".join(thoughts) or None,
        blocks,
        (usage.input_tokens + (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0),
         usage.output_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens,
         details.thinking_tokens if details is not None else None),
        _finish("anthropic", message.stop_reason),
        data,
    )


def _pk_anthropic_seen(text: str, reasoning: Optional[str], state: Optional[Dict[str, Any]], usage: pk.Usage,
                       finish: Optional[str], data: Any = None) -> AnthropicSeen:
    return AnthropicSeen(text, reasoning or None, (state or {}).get("thinking_blocks", []),
                         (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens,
                          usage.cache_creation_input_tokens, usage.reasoning_tokens), finish, data)


_A_ANSWERS = {
    "thinking-then-text": _a_message([{"type": "thinking", "thinking": "Let me add it up.", "signature": "EqQB=="},
                                      {"type": "text", "text": "The total is 42."}]),
    "redacted-and-two-thinking-blocks": _a_message([
        {"type": "thinking", "thinking": "First.", "signature": "s1"},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
        {"type": "thinking", "thinking": "Second.", "signature": "s2"},
        {"type": "text", "text": "Done here."}]),
    "omitted-thinking": _a_message([{"type": "thinking", "thinking": "", "signature": "only-sig"},
                                    {"type": "text", "text": "Short."}]),
    "no-details": _a_message([{"type": "text", "text": "Plain text."}], input_tokens=3, output_tokens=2),
    "zero-cache-counts": _a_message([{"type": "text", "text": "Plain text."}], input_tokens=3, output_tokens=2,
                                    cache_creation_input_tokens=0, cache_read_input_tokens=0),
    "cache-read-only": _a_message([{"type": "text", "text": "Plain text."}], input_tokens=3, output_tokens=2,
                                  cache_creation_input_tokens=0, cache_read_input_tokens=90),
    "refusal": _a_message([{"type": "text", "text": "I can't help."}], "refusal"),
}


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("case", list(_A_ANSWERS), ids=list(_A_ANSWERS))
def test_anthropic_thinking_and_usage_are_read_as_the_sdk_reads_them(case: str, stream: bool) -> None:
    sdk = _sdk("anthropic")
    body = _A_ANSWERS[case]
    reply = _a_stream_of(body) if stream else _json("anthropic", body)
    call = _Anthropic.call(MODELS["anthropic"])
    with _server("anthropic") as server:
        server.enqueue(reply(server), times=2)
        with _Anthropic.client(sdk, server) as client:
            if stream:
                with client.messages.stream(**call) as events:
                    sdk_thinking = "".join(e.thinking for e in events if e.type == "thinking")
                    message = events.get_final_message()
            else:
                message = client.messages.create(**call)
        with _provider("anthropic", server) as provider:
            if stream:
                chunks = list(provider.stream(PROMPT, system=SYSTEM, max_tokens=64))
                last = chunks[-1]
                pk_seen = _pk_anthropic_seen("".join(c.text for c in chunks), "".join(c.reasoning for c in chunks),
                                             last.provider_state, last.usage, last.finish_reason)
            else:
                done = provider.complete(PROMPT, system=SYSTEM, max_tokens=64)
                pk_seen = _pk_anthropic_seen(done.text, done.reasoning, done.provider_state, done.usage,
                                             done.finish_reason)
    sdk_seen = _sdk_anthropic_seen(message)
    assert pk_seen == sdk_seen
    if stream:  # the SDK's streamed thinking pieces (each block's own) are ours, blocks apart
        assert sdk_thinking.replace("\n\n", "") == (pk_seen.reasoning or "").replace("\n\n", "")


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("case", ["fits", "cut-short", "refusal"])
def test_anthropic_structured_answer_is_parsed_as_the_sdk_parses_it(case: str, stream: bool) -> None:
    sdk = _sdk("anthropic")
    invoice = _a_invoice()
    text = {"fits": '{"number": "INV-7", "total": 12.5, "lines": ["tea"]}', "cut-short": '{"number": "INV-7", "to',
            "refusal": "I can't read invoices."}[case]
    stop = {"fits": "end_turn", "cut-short": "max_tokens", "refusal": "refusal"}[case]
    body = _a_message([{"type": "thinking", "thinking": "Reading.", "signature": "s"},
                       {"type": "text", "text": text}], stop)
    reply = _a_stream_of(body) if stream else _json("anthropic", body)
    call = dict(model=MODELS["anthropic"], max_tokens=256, messages=_messages(system=False), output_format=invoice)
    with _server("anthropic") as server:
        server.enqueue(reply(server), times=2)
        with _Anthropic.client(sdk, server) as client:
            sdk_error: Optional[BaseException] = None
            try:
                if stream:
                    with client.messages.stream(**call) as events:
                        message = events.get_final_message()
                else:
                    message = client.messages.parse(**call)
                sdk_parsed = message.parsed_output
            except Exception as error:  # pydantic's ValidationError on cut-short JSON
                sdk_error = error
        with _provider("anthropic", server) as provider:
            try:
                if stream:
                    last = list(provider.stream(PROMPT, schema=invoice, max_tokens=256))[-1]
                    pk_parsed, pk_finish = last.parsed, last.finish_reason
                else:
                    done = provider.complete(PROMPT, schema=invoice, max_tokens=256)
                    pk_parsed, pk_finish = done.parsed, done.finish_reason
            except pk.ResponseFormatError as error:
                assert sdk_error is not None, "provider_kit refused a reply the SDK parsed"
                assert error.finish_reason == "length" and "max_tokens" in str(error)
                return
    if case == "refusal":
        # A deliberate difference (issue 11): the SDK parses a refusal's text anyway and raises
        # pydantic's ValidationError; provider_kit reports the refusal (content_filter, no data).
        assert sdk_error is not None and "json_invalid" in str(sdk_error)
        assert pk_parsed is None and pk_finish == "content_filter"
    else:
        assert sdk_error is None, f"the SDK failed where provider_kit parsed: {sdk_error!r}"
        assert pk_parsed == sdk_parsed and isinstance(pk_parsed, invoice)
