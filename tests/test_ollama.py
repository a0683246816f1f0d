"""OllamaProvider against the loopback server: the exact request, response parsing, NDJSON
streams, error bodies, the health check with its model-pulled test, and configuration
including ``OLLAMA_HOST`` (PROTOCOLS.md §C and §D.12).

Timeouts, retries, redirects, thread safety and secret redaction belong to test_transport.py.
"""

from __future__ import annotations

import json
import socket
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import requests
from _support import KEY as SUITE_KEY
from _support import assert_model_status, raises

from provider_kit import Message, OllamaProvider, StreamChunk, Usage
from provider_kit.errors import (
    ConfigError,
    InvalidRequestError,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from provider_kit.providers.ollama import normalise_ollama_host
from provider_kit.testing import LoopbackServer, Reply

CHAT_PATH = "/api/chat"
TAGS_PATH = "/api/tags"

MakeProvider = Callable[..., OllamaProvider]


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer("ollama", models=["llama3.2:latest", "qwen3:8b"]) as server:
        yield server
    assert server.errors == []


@pytest.fixture
def make(server: LoopbackServer, provider_factory: Callable[..., MakeProvider]) -> MakeProvider:
    """Build providers pointed at ``server`` (fail fast: no retries); closed after the test."""
    return provider_factory(OllamaProvider, base_url=server.base_url, max_retries=0, timeout=10)


def line(obj: Any) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def part(text: str, **extra: Any) -> Dict[str, Any]:
    """An intermediate NDJSON line of /api/chat (§C.4)."""
    return {"model": "llama3.2", "created_at": "2023-08-04T08:52:19.385406455-07:00",
            "message": {"role": "assistant", "content": text, **extra}, "done": False}


def final(done_reason: Optional[str] = "stop", content: str = "", **metrics: Any) -> Dict[str, Any]:
    body: Dict[str, Any] = {
        "model": "llama3.2", "created_at": "2023-08-04T19:22:45.499127Z",
        "message": {"role": "assistant", "content": content}, "done": True,
        "total_duration": 4883583458, "load_duration": 1334875, "prompt_eval_count": 26,
        "prompt_eval_duration": 342546000, "eval_count": 282, "eval_duration": 4535599000,
    }
    if done_reason is not None:
        body["done_reason"] = done_reason
    body.update(metrics)
    return {key: value for key, value in body.items() if value is not None}


def ndjson(parts: List[bytes]) -> Reply:
    return Reply(chunks=parts, content_type="application/x-ndjson")


# -- the request -------------------------------------------------------------------------------


def test_complete_sends_exactly_the_chat_request(server: LoopbackServer, make: MakeProvider) -> None:
    completion = make().complete("Say hello.", system="You are terse.")

    assert completion.text == "echo: Say hello."
    request = server.last_request
    assert (request.method, request.path) == ("POST", CHAT_PATH)
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers and "x-api-key" not in request.headers
    # "stream": false always (the server streams by default); no options unless asked for.
    assert request.json() == {
        "model": "llama3.2",
        "messages": [{"role": "system", "content": "You are terse."},
                     {"role": "user", "content": "Say hello."}],
        "stream": False,
    }


def test_messages_are_sent_in_order(server: LoopbackServer, make: MakeProvider) -> None:
    make().complete([{"role": "user", "content": "hi"}, Message("assistant", "hello"),
                     {"role": "system", "content": "late system"}, Message("user", "again")],
                    system="first")
    sent = server.last_request.json()["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("system", "first"), ("user", "hi"), ("assistant", "hello"), ("system", "late system"),
        ("user", "again")]


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"temperature": 0}, {"temperature": 0}),
        ({"max_tokens": 64}, {"num_predict": 64}),
        ({"stop": "\n\n"}, {"stop": ["\n\n"]}),
        ({"temperature": 0.2, "max_tokens": 3, "stop": ["a", "b"]},
         {"temperature": 0.2, "num_predict": 3, "stop": ["a", "b"]}),
    ],
)
def test_sampling_goes_in_options_only_when_given(
    server: LoopbackServer, make: MakeProvider, kwargs: Dict[str, Any], expected: Dict[str, Any]
) -> None:
    make().complete("hi", **kwargs)
    body = server.last_request.json()
    assert body["options"] == expected
    assert not {"temperature", "max_tokens", "num_predict", "stop"} & set(body)


@pytest.mark.parametrize("keep_alive", ["10m", "1h30m", -1, 0, 300])
def test_keep_alive_is_passed_through(server: LoopbackServer, make: MakeProvider, keep_alive: Any) -> None:
    make(keep_alive=keep_alive).complete("hi")
    assert server.last_request.json()["keep_alive"] == keep_alive


def test_stream_sends_stream_true(server: LoopbackServer, make: MakeProvider) -> None:
    chunks = list(make().stream("hello there"))
    assert server.last_request.json()["stream"] is True
    assert "".join(c.text for c in chunks) == "echo: hello there"


def test_ollama_api_key_is_sent_as_a_bearer_token_to_the_ollama_host_server(
    server: LoopbackServer, make: MakeProvider, provider_factory: Callable[..., MakeProvider],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "ollama-cloud-key-0123456789")
    monkeypatch.setenv("OLLAMA_HOST", server.url)  # ollama.com, say
    provider_factory(OllamaProvider, max_retries=0)().complete("hi")
    assert server.last_request.headers["Authorization"] == "Bearer ollama-cloud-key-0123456789"
    # A base_url given in code or a file is another server: it gets its own api_key_env only.
    make().complete("hi")
    assert server.last_request.headers.get("Authorization") is None
    make(api_key_env="OLLAMA_API_KEY").complete("hi")
    assert server.last_request.headers["Authorization"] == "Bearer ollama-cloud-key-0123456789"


def test_extra_headers_are_sent_on_every_call(server: LoopbackServer, make: MakeProvider) -> None:
    provider = make(headers={"X-Proxy-Route": "gpu-2"})
    provider.complete("hi")
    assert provider.health_check().ok
    assert [r.path for r in server.requests] == [CHAT_PATH, TAGS_PATH]
    assert all(r.headers["X-Proxy-Route"] == "gpu-2" for r in server.requests)


# -- parsing the answer --------------------------------------------------------------------------


def test_complete_parses_a_real_response(server: LoopbackServer, make: MakeProvider) -> None:
    body = {
        "model": "llama3.2", "created_at": "2023-12-12T14:13:43.416799Z",
        "message": {"role": "assistant", "content": "Hello! How are you today?",
                    "thinking": "The user greets me."},
        "done": True, "done_reason": "stop", "total_duration": 5191566416, "load_duration": 2154458,
        "prompt_eval_count": 26, "prompt_eval_duration": 383809000, "eval_count": 298,
        "eval_duration": 4799921000,
    }
    server.enqueue(Reply(json=body))
    completion = make(name="local").complete("hi")

    assert completion.text == "Hello! How are you today?"  # thinking stays out of the text
    assert (completion.model, completion.provider, completion.finish_reason) == ("llama3.2", "local", "stop")
    assert completion.usage == Usage(26, 298, 324)
    assert completion.raw == body


@pytest.mark.parametrize(
    "counts, usage",
    [
        ({"prompt_eval_count": None}, Usage(0, 282, 282)),  # prompt served from cache
        ({"prompt_eval_count": None, "eval_count": None}, Usage(None, None, None)),
        ({"prompt_eval_count": 7, "eval_count": 0}, Usage(7, 0, 7)),
    ],
    ids=["no-prompt-count", "no-counts", "zero-output"],
)
@pytest.mark.parametrize("mode", ["complete", "stream"])
def test_missing_metrics(
    server: LoopbackServer, make: MakeProvider, mode: str, counts: Dict[str, Any], usage: Usage
) -> None:
    if mode == "complete":
        server.enqueue(Reply(json=final(content="hi", **counts)))
        assert make().complete("hi").usage == usage
    else:
        server.enqueue(ndjson([line(part("hi")), line(final(**counts))]))
        assert list(make().stream("hi"))[-1].usage == usage


@pytest.mark.parametrize(
    "raw, normalised",
    [("stop", "stop"), ("length", "length"), ("load", "load"), ("unload", "unload"),
     ("something_new", "something_new"), (None, None)],
)
@pytest.mark.parametrize("mode", ["complete", "stream"])
def test_done_reason_is_normalised(
    server: LoopbackServer, make: MakeProvider, mode: str, raw: Optional[str], normalised: Optional[str]
) -> None:
    provider = make()
    if mode == "complete":
        server.enqueue(Reply(json=final(raw, content="x")))
        assert provider.complete("hi").finish_reason == normalised
    else:
        server.enqueue(ndjson([line(part("x")), line(final(raw))]))
        assert list(provider.stream("hi"))[-1].finish_reason == normalised


def test_an_error_object_in_a_200_body_is_an_error(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(Reply(json={"error": "an error was encountered while running the model"}))
    with pytest.raises(ServerError, match="an error was encountered while running the model") as info:
        make().complete("hi")
    assert "in stream" not in str(info.value)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(json=[]),
        Reply(json={}),
        Reply(json={"message": None, "done": True}),
        Reply(json={"message": "Hello", "done": True}),
        Reply(json={"message": {"content": 5}, "done": True}),
        Reply(body="Ollama is running"),
    ],
    ids=["list", "empty-object", "null-message", "message-str", "int-content", "text"],
)
def test_a_2xx_body_of_the_wrong_shape_is_a_format_error(
    server: LoopbackServer, make: MakeProvider, reply: Reply
) -> None:
    server.enqueue(reply)
    with pytest.raises(ResponseFormatError) as info:
        make().complete("hi")
    assert info.value.provider == "ollama"


# -- streaming -----------------------------------------------------------------------------------


def test_stream_reads_real_ndjson(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(ndjson([
        line(part("", thinking="Sky colour?")),  # a thinking fragment: reasoning, no text
        line(part("The")),
        line(part(" sky")) + line(part(" is")),  # two lines in one read
        line(part(" blue"))[:10], line(part(" blue"))[10:],  # one line over two reads
        b"\n",
        line(final()),
    ]))
    chunks = list(make().stream("hi"))

    assert [c.text for c in chunks] == ["", "The", " sky", " is", " blue", ""]
    assert [c.reasoning for c in chunks] == ["Sky colour?", "", "", "", "", ""]
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])
    assert chunks[-1] == StreamChunk("", "stop", Usage(26, 282, 308), "ollama",
                                     provider_state={"ollama": {"thinking": "Sky colour?"}})


def test_text_on_the_done_line_is_not_lost(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(ndjson([line(part("Hel")), line(final(content="lo"))]))
    chunks = list(make().stream("hi"))
    assert [c.text for c in chunks] == ["Hel", "lo", ""]
    assert chunks[-1].finish_reason == "stop"


def test_utf8_split_inside_a_character(server: LoopbackServer, make: MakeProvider) -> None:
    text = "h\u00e9llo \U0001f44b \u2028 \u4f60\u597d"
    raw = json.dumps(part(text), ensure_ascii=False).encode() + b"\n"
    cut = raw.index("\U0001f44b".encode()) + 1
    server.enqueue(ndjson([raw[:cut], raw[cut:], line(final())]))
    assert [c.text for c in make().stream("hi")] == [text, ""]


def test_crlf_line_ends(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(ndjson([line(part("a"))[:-1] + b"\r\n", line(final())[:-1] + b"\r", b"\n"]))
    chunks = list(make().stream("hi"))
    assert [c.text for c in chunks] == ["a", ""]


@pytest.mark.parametrize(
    "error_line",
    [
        {"error": "an error was encountered while running the model"},
        {"error": "an error was encountered while running the model", "done": False},
    ],
    ids=["bare", "with-done-false"],
)
def test_mid_stream_error_line(
    server: LoopbackServer, make: MakeProvider, error_line: Dict[str, Any]
) -> None:
    server.enqueue(ndjson([line(part("I")), line(error_line)]))
    stream = make().stream("hi")
    assert next(stream).text == "I"
    with pytest.raises(ServerError) as info:
        next(stream)
    assert "an error was encountered while running the model" in str(info.value)
    assert (info.value.provider, info.value.request_id) == ("ollama", None)


def test_mid_stream_error_from_the_simulator(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(server.stream_reply(["I", "am"], error_after=1, error_message="out of memory"))
    with pytest.raises(ServerError, match="out of memory"):
        list(make().stream("hi"))


@pytest.mark.parametrize(
    "parts",
    [
        [line(part("The")), line(part(" sky"))],
        [line(part("The")), line(dict(final(), done=False))],
        [line(part("The")), line(final())[:40]],  # the done line cut in half
        [],
    ],
    ids=["mid-text", "metrics-but-not-done", "done-line-cut", "empty-body"],
)
def test_stream_without_done_is_a_format_error(
    server: LoopbackServer, make: MakeProvider, parts: List[bytes]
) -> None:
    server.enqueue(ndjson(parts))
    with pytest.raises(ResponseFormatError):
        list(make().stream("hi"))


@pytest.mark.parametrize(
    "bad",
    [b'{"message": {"content": "x"\n', b"[1, 2]\n", b'"just a string"\n',
     b'{"message": "x", "done": false}\n'],
    ids=["broken-json", "list", "string", "message-str"],
)
def test_malformed_line_is_a_format_error(server: LoopbackServer, make: MakeProvider, bad: bytes) -> None:
    server.enqueue(ndjson([line(part("ok")), bad, line(final())]))
    stream = make().stream("hi")
    assert next(stream).text == "ok"
    with pytest.raises(ResponseFormatError):
        next(stream)


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["complete", "stream"])
@pytest.mark.parametrize(
    "reply, expected_class, expected_text",
    [
        (Reply(404, json={"error": "model 'nope' not found"}), InvalidRequestError, "model 'nope' not found"),
        (Reply(400, json={"error": "\"all-minilm\" does not support chat"}), InvalidRequestError,
         "does not support chat"),
        (Reply(400, json={"error": "\"llama3.2\" does not support thinking"}), InvalidRequestError,
         "does not support thinking"),
        (Reply(404, body="404 page not found"), InvalidRequestError, "404 page not found"),
        (Reply(429, json={"error": "too many requests"}), RateLimitError, "too many requests"),
        (Reply(500, json={"error": "llama runner process has terminated: exit status 2"}), ServerError,
         "llama runner process has terminated"),
        (Reply(503, json={"error": "server busy, please try again.  maximum pending requests exceeded"}),
         ServerError, "server busy"),
    ],
    ids=["404-model", "400-no-chat", "400-no-thinking", "404-plain-text", "429", "500", "503-busy"],
)
def test_error_responses(
    server: LoopbackServer, make: MakeProvider, mode: str, reply: Reply, expected_class: type,
    expected_text: str,
) -> None:
    server.enqueue(reply)
    provider = make()
    with pytest.raises(ProviderError) as info:
        if mode == "complete":
            provider.complete("hi")
        else:
            list(provider.stream("hi"))
    error = info.value
    assert type(error) is expected_class
    assert expected_text in str(error)
    assert (error.provider, error.status_code, error.request_id) == ("ollama", reply.status, None)


@pytest.mark.parametrize("mode", ["complete", "stream"])
def test_a_model_that_is_not_pulled(server: LoopbackServer, make: MakeProvider, mode: str) -> None:
    provider = make(model="mistral")
    with pytest.raises(InvalidRequestError, match='model "mistral" not found, try pulling it first') as info:
        if mode == "complete":
            provider.complete("hi")
        else:
            list(provider.stream("hi"))
    assert info.value.status_code == 404


# -- health --------------------------------------------------------------------------------------


def test_health_ok_without_a_key(server: LoopbackServer, make: MakeProvider) -> None:
    provider = make(name="local")
    provider.validate_config()
    status = provider.health_check()
    assert (status.name, status.ok, status.error) == ("local", True, None)
    request = server.last_request
    assert (request.method, request.path) == ("GET", TAGS_PATH)
    assert "Authorization" not in request.headers


def test_health_model_not_pulled(make: MakeProvider) -> None:
    status = make(model="mistral:7b").health_check()
    assert not status.ok
    assert status.error is not None
    assert "'mistral:7b'" in status.error
    assert "ollama pull mistral:7b" in status.error


def tag(name: str, model: Optional[str] = None) -> Dict[str, Any]:
    return {"name": name, "model": model or name, "modified_at": "2025-05-04T17:37:44.706015396-07:00",
            "size": 2019393189, "digest": "a80c4f17acd5",
            "details": {"format": "gguf", "family": "llama", "parameter_size": "3.2B"}}


@pytest.mark.parametrize(
    "configured, listed, ok",
    [
        ("llama3.2", [tag("llama3.2:latest")], True),
        ("llama3.2:latest", [tag("llama3.2:latest")], True),
        ("llama3.2:latest", [tag("llama3.2")], True),
        ("llama3.2:1b", [tag("llama3.2:latest")], False),
        ("llama3.2", [tag("llama3.2:1b")], False),
        ("llama3", [tag("llama3.2:latest")], False),
        ("qwen3:8b", [tag("llama3.2:latest"), tag("qwen3:8b")], True),
        ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF",
         [tag("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:latest")], True),
        ("localhost:5000/team/model", [tag("localhost:5000/team/model:latest")], True),
        ("alias", [tag("other:latest", model="alias:latest")], True),
        ("llama3.2", [], False),
    ],
)
def test_health_model_names_follow_the_latest_tag_rule(
    server: LoopbackServer, make: MakeProvider, configured: str, listed: List[Dict[str, Any]], ok: bool
) -> None:
    server.enqueue(Reply(json={"models": listed}), path=TAGS_PATH)
    status = make(model=configured).health_check()
    assert status.ok is ok
    if not ok:
        assert status.error is not None and f"ollama pull {configured}" in status.error


@pytest.mark.parametrize(
    "reply",
    [Reply(json={"models": "llama3.2"}), Reply(json={}), Reply(json=[]), Reply(json={"models": ["llama3.2"]}),
     Reply(body="<html>proxy login</html>", content_type="text/html")],
    ids=["models-str", "no-models", "list", "names-only", "html"],
)
def test_health_unexpected_answer_is_not_ok(server: LoopbackServer, make: MakeProvider, reply: Reply) -> None:
    server.enqueue(reply, path=TAGS_PATH)
    status = make().health_check()
    assert not status.ok
    assert status.error is not None and status.error.startswith("error: ")


def test_health_error_status(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(Reply(403, json={"error": "remote access is disabled"}), path=TAGS_PATH)
    status = make().health_check()
    assert not status.ok
    assert status.error is not None and status.error.startswith("unauthorised: ")
    assert "remote access is disabled" in status.error


def test_health_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = sock.getsockname()[1]
        with OllamaProvider(base_url=f"http://127.0.0.1:{port}") as provider:
            status = provider.health_check(timeout=5)
    assert not status.ok
    assert status.error is not None and status.error.startswith("unreachable: ")


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0.0.0.0", "http://0.0.0.0:11434"),
        (":5000", "http://127.0.0.1:5000"),
        ("1.2.3.4", "http://1.2.3.4:11434"),
        ("1.2.3.4:56789", "http://1.2.3.4:56789"),
        ("http://example.com", "http://example.com:80"),
        ("https://example.com", "https://example.com:443"),
        ("https://example.com:56789", "https://example.com:56789"),
        ("example.com", "http://example.com:11434"),
        ("example.com/", "http://example.com:11434"),
        ("example.com:56789/path/", "http://example.com:56789/path"),
        ("https://example.com/ollama", "https://example.com:443/ollama"),
        ("[0001:002:003:0004::1]", "http://[0001:002:003:0004::1]:11434"),
        ("[0001:002:003:0004::1]:56789", "http://[0001:002:003:0004::1]:56789"),
        ("http://[0001:002:003:0004::1]", "http://[0001:002:003:0004::1]:80"),
        ("https://[::1]:56789/path", "https://[::1]:56789/path"),
        ("::1", "http://[::1]:11434"),
        ("  localhost:8080  ", "http://localhost:8080"),
    ],
)
def test_ollama_host_normalisation(monkeypatch: pytest.MonkeyPatch, value: str, expected: str) -> None:
    assert normalise_ollama_host(value) == expected
    monkeypatch.setenv("OLLAMA_HOST", value)
    with OllamaProvider() as provider:
        assert provider.base_url == expected


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", ":{port}", "http://127.0.0.1:{port}/"])
def test_ollama_host_reaches_the_server(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", host.format(port=server.port))
    with OllamaProvider(max_retries=0) as provider:
        assert provider.base_url == server.url
        assert provider.complete("hi").text == "echo: hi"


def test_default_base_url_without_ollama_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "")
    with OllamaProvider() as provider:
        assert provider.base_url == "http://localhost:11434"


@pytest.mark.parametrize("value", ["ftp://example.com", "example.com:port", "unix:///run/ollama.sock"])
def test_a_bad_ollama_host_is_a_config_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("OLLAMA_HOST", value)
    with pytest.raises(ConfigError, match="OLLAMA_HOST"):
        OllamaProvider()


def test_base_url_option_beats_ollama_host(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")
    with OllamaProvider(base_url=server.url, max_retries=0) as provider:
        assert provider.complete("hi").text == "echo: hi"


def test_from_config_builds_a_working_provider(server: LoopbackServer) -> None:
    options = {"base_url": server.url + "/", "model": "qwen3:8b", "keep_alive": "5m", "timeout": 30,
               "max_retries": 0}
    with OllamaProvider.from_config("local", options, where="provider_kit.toml: [providers.local]") as p:
        assert (p.name, p.model, p.base_url, p.keep_alive) == ("local", "qwen3:8b", server.url, "5m")
        assert p.complete("hi").model == "qwen3:8b"
        assert p.health_check().ok
    assert server.requests[0].json()["keep_alive"] == "5m"


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"keepalive": "5m"}, "did you mean 'keep_alive'"),
        ({"modle": "llama3.2"}, "did you mean 'model'"),
        ({"keep_alive": "300"}, "keep_alive must be a number of seconds or a duration"),
        ({"keep_alive": True}, "keep_alive must be a number of seconds or a duration"),
        ({"keep_alive": float("inf")}, "keep_alive must be a number of seconds or a duration"),
        ({"model": ""}, "model must not be empty"),
        ({"headers": ["X-A: b"]}, "headers must be a table of strings"),
    ],
)
def test_from_config_rejects_bad_options(options: Dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        OllamaProvider.from_config("x", options, where="cfg: [providers.x]")
    assert str(info.value).startswith("cfg: [providers.x]: ")
    assert fragment in str(info.value)


def test_no_key_is_ever_required(monkeypatch: pytest.MonkeyPatch) -> None:
    with OllamaProvider(base_url="https://ollama.example.com") as remote:
        remote.validate_config()
        assert remote.require_api_key is False and not remote.has_api_key


def test_repr_never_shows_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "ollama-cloud-key-0123456789"
    monkeypatch.setenv("OLLAMA_API_KEY", key)
    with OllamaProvider() as provider:
        shown = " ".join([repr(provider), str(provider), json.dumps(provider.describe())])
    assert key not in shown
    assert "api_key='***'" in repr(provider)


# -- the model check (moved from test_listing.py) ------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "served", "ok"),
    [
        ("llama3.2", ["llama3.2:latest"], True),
        ("mistral:7b", ["llama3.2:latest"], False),
    ],
)
def test_health_reports_a_model_the_server_does_not_serve(
    provider_factory: Callable[..., Any], configured: str, served: List[str], ok: bool
) -> None:
    with LoopbackServer("ollama", models=served) as server:
        provider = provider_factory(OllamaProvider, base_url=server.base_url, model=configured)()
        status = provider.health_check()
    assert_model_status(status, configured, served, ok, f"run: ollama pull {configured}")


# -- its simulator (moved from test_loopback_server.py) ------------------------------------------

def test_ollama_chat_streams_ndjson_by_default_and_json_when_asked(session: requests.Session) -> None:
    chat = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi there"}]}
    with LoopbackServer("ollama") as server:
        assert server.models == ["llama3.2:latest"] and server.base_url == server.url
        stream = session.post(server.url + "/api/chat", json=chat)
        single = session.post(server.url + "/api/chat", json=dict(chat, stream=False))
        limited = session.post(server.url + "/api/chat",
                               json=dict(chat, stream=False, options={"num_predict": 1})).json()
    assert stream.headers["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in stream.content.splitlines()]
    assert [line["done"] for line in lines] == [False, False, False, True]
    assert "".join(line["message"]["content"] for line in lines) == "echo: hi there"
    assert lines[-1]["done_reason"] == "stop"
    assert (lines[-1]["prompt_eval_count"], lines[-1]["eval_count"]) == (2, 3)
    assert lines[-1]["created_at"].endswith("Z")
    body = single.json()
    assert single.headers["Content-Type"] == "application/json; charset=utf-8"
    assert body["message"] == {"role": "assistant", "content": "echo: hi there"} and body["done"] is True
    assert isinstance(body["total_duration"], int)
    assert limited["message"]["content"] == "echo: " and limited["done_reason"] == "length"


def test_ollama_health_endpoints_and_unknown_model(session: requests.Session) -> None:
    with LoopbackServer("ollama", models=["llama3.2", "qwen3:8b"]) as server:
        root = session.get(server.url + "/")
        head = session.head(server.url + "/")
        version = session.get(server.url + "/api/version").json()
        tags = session.get(server.url + "/api/tags").json()
        missing = session.post(server.url + "/api/chat", json={"model": "nope", "messages": []})
        unknown = session.get(server.url + "/v2/nothing")
    assert (root.status_code, root.text) == (200, "Ollama is running")
    assert head.status_code == 200 and head.content == b"" and head.headers["Content-Length"] == "17"
    assert set(version) == {"version"}
    assert [m["name"] for m in tags["models"]] == ["llama3.2:latest", "qwen3:8b"]
    assert missing.status_code == 404
    assert missing.json() == {"error": 'model "nope" not found, try pulling it first'}
    assert (unknown.status_code, unknown.text) == (404, "404 page not found")


def test_error_replies_have_each_protocols_exact_shape(session: requests.Session) -> None:
    with LoopbackServer("ollama") as ollama:
        ollama.enqueue(ollama.error_reply(503))
        busy = session.post(ollama.url + "/api/chat", json={})
    assert busy.status_code == 503 and set(busy.json()) == {"error"}


def test_stream_reply_mid_stream_errors_and_truncation(session: requests.Session) -> None:
    with LoopbackServer("ollama") as ollama:
        ollama.enqueue(ollama.stream_reply(["a", "b"], error_after=1))
        ollama.enqueue(ollama.stream_reply(["a", "b"], terminate=False))
        ollama_error, ollama_cut = [session.get(ollama.url).content for _ in range(2)]
    assert [json.loads(line) for line in ollama_error.splitlines()][-1] == {
        "error": "an error was encountered while running the model"}
    assert all(json.loads(line)["done"] is False for line in ollama_cut.splitlines())


def test_completion_reply_in_each_protocol(session: requests.Session) -> None:
    with LoopbackServer("ollama") as ollama:
        ollama.enqueue(ollama.completion_reply("Hi you", include_usage=False))
        ollama_body = session.get(ollama.url).json()
    assert ollama_body["message"]["content"] == "Hi you" and ollama_body["done_reason"] == "stop"
    assert "eval_count" not in ollama_body and "prompt_eval_count" not in ollama_body


# -- moved from test_transport.py (its fixtures: the suite's KEY, no key in any log record) ------


def test_key_echoed_in_an_ollama_200_error_body_is_redacted(
    provider_factory: Callable[..., Any], no_key_in_logs: Any
) -> None:
    with LoopbackServer("ollama") as server:
        server.enqueue(Reply(200, json={"error": f"bad key {SUITE_KEY}"}))
        provider = provider_factory(OllamaProvider, base_url=server.base_url, api_key=SUITE_KEY)()
        error = raises(ProviderError, provider.complete, "hi")
    assert "bad key ***" in str(error)


# -- a JSON error body with 200 for a stream (moved from test_odd_answers.py) --------------------


def test_a_json_error_body_with_200_for_a_stream_is_the_error(provider_factory: Callable[..., Any]) -> None:
    with LoopbackServer("ollama") as server:
        server.enqueue(Reply(200, json={"error": "an error was encountered while running the model"}))
        provider = provider_factory(OllamaProvider, base_url=server.base_url)()
        with pytest.raises(ServerError, match="in a 200 response"):
            list(provider.stream("hi"))
    assert server.errors == []


def test_ollama_ndjson_labelled_as_json_is_still_a_stream() -> None:
    with LoopbackServer("ollama") as server, OllamaProvider(base_url=server.base_url) as provider:
        streamed = server.stream_reply(["Hel", "lo"])
        server.enqueue(Reply(200, chunks=list(streamed._parts), content_type="application/json"))
        assert "".join(chunk.text for chunk in provider.stream("hi")) == "Hello"
