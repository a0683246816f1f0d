"""OpenAIProvider against the loopback server: the exact request, response parsing, streams,
error bodies, health checks and configuration (PROTOCOLS.md §A and §D.12).

Timeouts, retries, redirects, thread safety and secret redaction belong to test_transport.py.
"""

from __future__ import annotations

import json
import socket
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import requests
from _support import CHECK_MODEL_HINT, assert_model_status, raises, sse_events
from _support import KEY as SUITE_KEY

from provider_kit import Message, OpenAIProvider, StreamChunk, Usage
from provider_kit.errors import (
    AuthenticationError,
    ConfigError,
    InvalidRequestError,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from provider_kit.providers._calls import ChatCall
from provider_kit.testing import LoopbackServer, Reply

KEY = "sk-test-abcdefgh12345678"
CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"

MakeProvider = Callable[..., OpenAIProvider]


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer("openai", api_key=KEY) as server:
        yield server
    assert server.errors == []


@pytest.fixture
def make(server: LoopbackServer, provider_factory: Callable[..., MakeProvider]) -> MakeProvider:
    """Build providers pointed at ``server`` (fail fast: no retries); closed after the test."""
    return provider_factory(OpenAIProvider, base_url=server.base_url, api_key=KEY, max_retries=0, timeout=10)


def data(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def chunk(delta: Optional[Dict[str, Any]] = None, finish: Optional[str] = None) -> Dict[str, Any]:
    """A ``chat.completion.chunk`` as the real API sends it with include_usage (§A.4)."""
    return {
        "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}],
        "usage": None, "obfuscation": "r4N7vQ2m",
    }


USAGE_CHUNK = {"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
               "model": "gpt-4o-mini", "choices": [],
               "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}
DONE = b"data: [DONE]\n\n"


def completion_body(message: Dict[str, Any], finish: Optional[str] = "stop", **extra: Any) -> Dict[str, Any]:
    body = {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG", "object": "chat.completion",
        "created": 1741570283, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {"prompt_tokens": 19, "completion_tokens": 2, "total_tokens": 21,
                  "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                "accepted_prediction_tokens": 0,
                                                "rejected_prediction_tokens": 0}},
        "service_tier": "default",
    }
    body.update(extra)
    return body


# -- the request -------------------------------------------------------------------------------


def test_complete_sends_exactly_the_chat_request(server: LoopbackServer, make: MakeProvider) -> None:
    completion = make().complete("Say hello.", system="You are terse.")

    assert completion.text == "echo: Say hello."
    request = server.last_request
    assert (request.method, request.path) == ("POST", CHAT_PATH)
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"] == "application/json"
    for absent in ("OpenAI-Organization", "OpenAI-Project", "x-api-key"):
        assert absent not in request.headers
    # No max_tokens, temperature, stop, stream or stream_options unless asked for.
    assert request.json() == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "You are terse."},
                     {"role": "user", "content": "Say hello."}],
    }


@pytest.mark.parametrize(
    "given, system, expected",
    [
        ([Message("user", "hi")], None, [("user", "hi")]),
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
          Message("user", "again")], None,
         [("user", "hi"), ("assistant", "hello"), ("user", "again")]),
        ([{"role": "system", "content": "dict system"}, {"role": "user", "content": "q"}], "first",
         [("system", "first"), ("system", "dict system"), ("user", "q")]),
    ],
    ids=["message", "mixed", "system-arg-and-dict"],
)
def test_messages_are_sent_in_order(
    server: LoopbackServer, make: MakeProvider, given: Any, system: Optional[str], expected: Any
) -> None:
    make().complete(given, system=system)
    sent = server.last_request.json()["messages"]
    assert [(m["role"], m["content"]) for m in sent] == expected


@pytest.mark.parametrize(
    "model, field_option, expected",
    [
        ("gpt-4o-mini", None, "max_tokens"),
        ("mistral-large", None, "max_tokens"),
        ("llama-o1-clone", None, "max_tokens"),
        ("o1", None, "max_completion_tokens"),
        ("o3-mini", None, "max_completion_tokens"),
        ("gpt-5-mini", None, "max_completion_tokens"),
        ("openai/o4-mini", None, "max_completion_tokens"),
        ("gpt-4o", "max_completion_tokens", "max_completion_tokens"),
        ("o3", "max_tokens", "max_tokens"),
    ],
)
def test_max_tokens_field_on_a_compatible_server(
    server: LoopbackServer, make: MakeProvider, model: str, field_option: Optional[str], expected: str
) -> None:
    provider = make(model=model, **({"max_tokens_field": field_option} if field_option else {}))
    provider.complete("hi", max_tokens=7)
    body = server.last_request.json()
    other = {"max_tokens", "max_completion_tokens"} - {expected}
    assert body[expected] == 7
    assert not other & set(body)


@pytest.mark.parametrize("base_url", ["https://api.openai.com/v1", "https://api.openai.com/v1/"])
def test_max_completion_tokens_for_api_openai_com(base_url: str) -> None:
    # The real host cannot be reached from a test: check the body the provider would send.
    with OpenAIProvider(base_url=base_url, api_key=KEY) as provider:
        request = provider._build_request(ChatCall([Message("user", "hi")], "gpt-4o-mini", max_tokens=5))
    assert (request.method, request.target) == ("POST", "/chat/completions")
    body = request.body
    assert body["max_completion_tokens"] == 5
    assert "max_tokens" not in body
    assert "stream_options" not in body


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"temperature": 0}, {"temperature": 0}),
        ({"temperature": 0.2}, {"temperature": 0.2}),
        ({"stop": "\n\n"}, {"stop": ["\n\n"]}),
        ({"stop": ["END", "STOP"]}, {"stop": ["END", "STOP"]}),
        ({"stop": ("END",)}, {"stop": ["END"]}),
        ({"temperature": 1.5, "stop": ["x"], "max_tokens": 3},
         {"temperature": 1.5, "stop": ["x"], "max_tokens": 3}),
    ],
)
def test_sampling_fields_only_when_given(
    server: LoopbackServer, make: MakeProvider, kwargs: Dict[str, Any], expected: Dict[str, Any]
) -> None:
    make().complete("hi", **kwargs)
    body = server.last_request.json()
    optional = {"temperature", "stop", "max_tokens", "max_completion_tokens", "stream", "stream_options"}
    assert {key: body[key] for key in optional & set(body)} == expected


def test_stream_asks_for_usage_and_complete_does_not(server: LoopbackServer, make: MakeProvider) -> None:
    provider = make()
    chunks = list(provider.stream("hello there"))
    streamed = server.last_request.json()
    provider.complete("hello there")
    completed = server.last_request.json()

    assert streamed["stream"] is True
    assert streamed["stream_options"] == {"include_usage": True}
    assert "stream_options" not in completed and "stream" not in completed
    assert "".join(c.text for c in chunks) == "echo: hello there"


def test_organization_project_and_extra_headers(server: LoopbackServer, make: MakeProvider) -> None:
    provider = make(organization="org-abc", project="proj_123",
                    headers={"HTTP-Referer": "https://example.org", "X-Title": "demo"})
    provider.complete("hi")
    assert provider.health_check().ok

    for request in server.requests:  # the chat call and the health check alike
        assert request.headers["OpenAI-Organization"] == "org-abc"
        assert request.headers["OpenAI-Project"] == "proj_123"
        assert request.headers["HTTP-Referer"] == "https://example.org"
        assert request.headers["X-Title"] == "demo"
    assert [r.path for r in server.requests] == [CHAT_PATH, MODELS_PATH]


def test_org_and_project_env_only_for_api_openai_com(
    server: LoopbackServer, make: MakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_env")
    make().complete("hi")
    assert "OpenAI-Organization" not in server.last_request.headers
    assert "OpenAI-Project" not in server.last_request.headers
    with OpenAIProvider(api_key=KEY) as official:
        assert (official.organization, official.project) == ("org-env", "proj_env")
        assert official._headers(None) == ({
            "OpenAI-Organization": "org-env", "OpenAI-Project": "proj_env"}, {})


# -- parsing the answer --------------------------------------------------------------------------


def test_complete_parses_a_real_response(server: LoopbackServer, make: MakeProvider) -> None:
    body = completion_body({"role": "assistant", "content": "Hello!", "refusal": None, "annotations": []})
    server.enqueue(Reply(json=body, headers={"x-request-id": "req_abc"}))
    completion = make(name="gpt").complete("hi")

    assert completion.text == "Hello!"
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert completion.provider == "gpt"
    assert completion.finish_reason == "stop"
    # The details the body reports (cached 0, reasoning 0) are reported, not left unknown.
    assert completion.usage == Usage(19, 2, 21, cached_input_tokens=0, reasoning_tokens=0)
    assert completion.raw == body
    assert completion.latency_s > 0


@pytest.mark.parametrize(
    "raw, normalised",
    [("stop", "stop"), ("length", "length"), ("content_filter", "content_filter"),
     ("tool_calls", "tool_calls"), ("function_call", "tool_calls"), ("error", "error"),
     ("something_new", "something_new")],
)
@pytest.mark.parametrize("mode", ["complete", "stream"])
def test_finish_reason_is_normalised(
    server: LoopbackServer, make: MakeProvider, mode: str, raw: str, normalised: str
) -> None:
    provider = make()
    if mode == "complete":
        server.enqueue(server.completion_reply("x", finish_reason=raw))
        assert provider.complete("hi").finish_reason == normalised
    else:
        server.enqueue(server.stream_reply(["x"], finish_reason=raw))
        assert list(provider.stream("hi"))[-1].finish_reason == normalised


def test_missing_finish_reason_and_usage(server: LoopbackServer, make: MakeProvider) -> None:
    # Some compatible servers send neither (usage is optional in the schema).
    body = completion_body({"role": "assistant", "content": "ok"}, finish=None)
    del body["usage"]
    server.enqueue(Reply(json=body))
    completion = make().complete("hi")
    assert (completion.text, completion.finish_reason) == ("ok", None)
    assert completion.usage == Usage(None, None, None)


@pytest.mark.parametrize(
    "message, finish, expected_finish",
    [
        ({"role": "assistant", "content": None, "refusal": None,
          "tool_calls": [{"id": "call_1", "type": "function",
                          "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
         "tool_calls", "tool_calls"),
        ({"role": "assistant", "content": None, "refusal": "I'm sorry, I can't help with that."},
         "stop", "content_filter"),
    ],
    ids=["tool-calls", "refusal"],
)
def test_null_content_is_empty_text_or_the_refusal(
    server: LoopbackServer, make: MakeProvider, message: Dict[str, Any], finish: str, expected_finish: str
) -> None:
    server.enqueue(Reply(json=completion_body(message, finish)))
    completion = make().complete("hi")
    assert completion.text == (message["refusal"] or "")  # a refusal is the answer's text
    assert completion.finish_reason == expected_finish
    assert completion.raw["choices"][0]["message"] == message  # the details stay reachable


@pytest.mark.parametrize(
    "error, expected_class, expected_text",
    [
        ({"code": 502, "message": "Provider returned error", "metadata": {"provider_name": "x"}},
         ServerError, "Provider returned error"),
        ({"message": "This model's maximum context length is 128000 tokens.", "type": "invalid_request_error",
          "param": "messages", "code": "context_length_exceeded"},
         InvalidRequestError, "maximum context length"),
    ],
    ids=["openrouter-502", "invalid-request"],
)
def test_an_error_object_in_a_200_body(
    server: LoopbackServer, make: MakeProvider, error: Dict[str, Any], expected_class: type,
    expected_text: str,
) -> None:
    # OpenRouter answers 200 with an error body when generation fails after it started (§A.8).
    server.enqueue(Reply(json={"error": error}, headers={"x-request-id": "req_200error"}))
    with pytest.raises(ProviderError) as info:
        make().complete("hi")
    assert type(info.value) is expected_class
    assert expected_text in str(info.value) and "in stream" not in str(info.value)
    assert info.value.request_id == "req_200error"


@pytest.mark.parametrize("mode", ["complete", "stream"])
def test_content_as_a_list_of_parts(server: LoopbackServer, make: MakeProvider, mode: str) -> None:
    # Mistral's reasoning models send a list of parts; only the text parts are the answer.
    thinking = {"type": "thinking", "thinking": [{"type": "text", "text": "Let me see."}]}
    parts = [thinking, {"type": "text", "text": "Hello"}, {"type": "text", "text": "!"}]
    provider = make()
    if mode == "complete":
        server.enqueue(Reply(json=completion_body({"role": "assistant", "content": parts})))
        assert provider.complete("hi").text == "Hello!"
    else:
        server.enqueue(Reply(chunks=[
            data(chunk({"role": "assistant", "content": [thinking]})),
            data(chunk({"content": parts[1:]})),
            data(chunk({}, "stop")), DONE,
        ], content_type="text/event-stream"))
        assert [c.text for c in provider.stream("hi")] == ["Hello!", ""]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(json=[]),
        Reply(json={}),
        Reply(json={"choices": []}),
        Reply(json={"choices": "nope"}),
        Reply(json={"choices": [{}]}),
        Reply(json={"choices": [{"message": None}]}),
        Reply(json={"choices": [{"message": {"content": 5}}]}),
        Reply(json={"choices": [{"message": {"content": [{"type": "text"}]}}]}),
        Reply(body="<html><body>Bad gateway page served with 200</body></html>", content_type="text/html"),
        Reply(body=b"", content_type="application/json"),
    ],
    ids=["list", "empty-object", "no-choices", "choices-str", "no-message", "null-message",
         "int-content", "part-without-text", "html", "empty"],
)
def test_a_2xx_body_of_the_wrong_shape_is_a_format_error(
    server: LoopbackServer, make: MakeProvider, reply: Reply
) -> None:
    reply.headers["x-request-id"] = "req_shape"
    server.enqueue(reply)
    with pytest.raises(ResponseFormatError) as info:
        make().complete("hi")
    assert info.value.provider == "openai"
    assert info.value.request_id == "req_shape"


# -- streaming -----------------------------------------------------------------------------------


def test_stream_reads_a_real_stream(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(Reply(chunks=[
        data(chunk({"role": "assistant", "content": ""})),
        data(chunk({"content": "Hello"})),
        data(chunk({"content": " world"})),
        data(chunk({}, "stop")),
        data(USAGE_CHUNK),  # after the finish chunk, before [DONE]
        DONE,
    ], content_type="text/event-stream"))
    chunks = list(make().stream("hi"))

    assert [c.text for c in chunks] == ["Hello", " world", ""]
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])
    assert chunks[-1] == StreamChunk("", "stop", Usage(9, 2, 11), "openai")
    assert {c.provider for c in chunks} == {"openai"}  # a direct stream says who answers


def test_stream_without_usage_chunk_ends_with_empty_usage(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(server.stream_reply(["a", "b"], include_usage=False))
    chunks = list(make().stream("hi"))
    assert chunks[-1] == StreamChunk("", "stop", Usage(), "openai")


def test_stream_is_lazy_but_checks_arguments_at_once(server: LoopbackServer, make: MakeProvider) -> None:
    provider = make()
    with pytest.raises(ConfigError):
        provider.stream("hi", temperature=5)
    stream = provider.stream("hi")
    assert server.requests == []
    stream.close()
    assert server.requests == []


def test_comments_and_crlf_split_across_reads(server: LoopbackServer, make: MakeProvider) -> None:
    def crlf(obj: Any) -> bytes:
        return b"data: " + json.dumps(obj).encode() + b"\r\n\r\n"

    hello = crlf(chunk({"content": "Hello"}))
    server.enqueue(Reply(chunks=[
        b": OPENROUTER PROCESSING\r\n\r\n",
        crlf(chunk({"role": "assistant", "content": ""})),
        hello[:-3], hello[-3:-2], hello[-2:],  # a CRLF split between two reads
        b": OPENROUTER PROCESSING\r\n\r\n",
        crlf(chunk({"content": " world"}))[:-1], b"\n",
        crlf(chunk({}, "stop")), crlf(USAGE_CHUNK), b"data: [DONE]\r\n\r\n",
    ], content_type="text/event-stream"))
    chunks = list(make().stream("hi"))
    assert [c.text for c in chunks] == ["Hello", " world", ""]
    assert chunks[-1].usage == Usage(9, 2, 11)


def test_utf8_both_ways_even_split_inside_a_character(server: LoopbackServer, make: MakeProvider) -> None:
    text = "h\u00e9llo \U0001f44b \u2028 \u4f60\u597d"  # é, an emoji, LINE SEPARATOR, CJK
    provider = make()
    assert provider.complete(text).text == f"echo: {text}"
    assert server.last_request.json()["messages"][0]["content"] == text

    raw = b"data: " + json.dumps(chunk({"content": text}), ensure_ascii=False).encode() + b"\n\n"
    cut = raw.index("\U0001f44b".encode()) + 2
    server.enqueue(Reply(chunks=[raw[:cut], raw[cut:], data(chunk({}, "stop")), DONE],
                         content_type="text/event-stream"))  # no charset: must still be UTF-8
    assert [c.text for c in provider.stream("hi")] == [text, ""]


@pytest.mark.parametrize(
    "error, expected_class, expected_text",
    [
        ({"message": "The server had an error while processing your request. Sorry about that!",
          "type": "server_error", "param": None, "code": None},
         ServerError, "The server had an error while processing your request"),
        ({"message": "This model's maximum context length is 128000 tokens.",
          "type": "invalid_request_error", "param": None, "code": None},
         InvalidRequestError, "maximum context length"),
        ({"code": 429, "message": "Rate limit exceeded: free-models-per-min", "metadata": {}},
         RateLimitError, "Rate limit exceeded: free-models-per-min"),  # OpenRouter: an int code
        ({"code": 502, "message": "Provider returned error", "metadata": {"provider_name": "x"}},
         ServerError, "Provider returned error"),
        ("upstream connection lost", ServerError, "upstream connection lost"),
    ],
    ids=["server_error", "invalid_request", "openrouter-429", "openrouter-502", "string"],
)
def test_mid_stream_error(
    server: LoopbackServer, make: MakeProvider, error: Any, expected_class: type, expected_text: str
) -> None:
    server.enqueue(Reply(chunks=[
        data(chunk({"role": "assistant", "content": ""})),
        data(chunk({"content": "Hel"})),
        data({"error": error}),
    ], content_type="text/event-stream", headers={"x-request-id": "req_midstream"}))
    stream = make().stream("hi")
    assert next(stream).text == "Hel"
    with pytest.raises(ProviderError) as info:
        next(stream)
    assert type(info.value) is expected_class
    assert expected_text in str(info.value)
    assert info.value.provider == "openai"
    assert info.value.request_id == "req_midstream"


def test_mid_stream_error_from_the_simulator(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(server.stream_reply(["Hel", "lo"], error_after=1))
    with pytest.raises(ServerError, match="Sorry about that"):
        list(make().stream("hi"))


@pytest.mark.parametrize(
    "chunks",
    [
        [data(chunk({"content": "Hel"}))],
        [data(chunk({"content": "Hel"})), data(chunk({}, "stop")), data(USAGE_CHUNK)],
        [data(chunk({"content": "Hel"})), b"data: [DO"],  # the terminator itself cut short
        [],
    ],
    ids=["mid-text", "after-usage", "partial-done", "empty-body"],
)
def test_stream_without_done_is_a_format_error(
    server: LoopbackServer, make: MakeProvider, chunks: List[bytes]
) -> None:
    server.enqueue(Reply(chunks=chunks, content_type="text/event-stream"))
    with pytest.raises(ResponseFormatError, match="ended before"):
        list(make().stream("hi"))


@pytest.mark.parametrize(
    "event",
    [b'data: {"choices": [\n\n', b"data: [1, 2]\n\n", b'data: {"choices": [{"delta": "x"}]}\n\n'],
    ids=["broken-json", "not-an-object", "delta-not-object"],
)
def test_malformed_event_is_a_format_error(server: LoopbackServer, make: MakeProvider, event: bytes) -> None:
    server.enqueue(Reply(chunks=[data(chunk({"content": "ok"})), event, DONE],
                         content_type="text/event-stream"))
    stream = make().stream("hi")
    assert next(stream).text == "ok"
    with pytest.raises(ResponseFormatError):
        next(stream)


# -- errors --------------------------------------------------------------------------------------

ERRORS = [
    (401, dict(message="Incorrect API key provided: sk-abc***xyz. You can find your API key at "
                       "https://platform.openai.com/account/api-keys.",
               type="invalid_request_error", code="invalid_api_key"),
     AuthenticationError, "Incorrect API key provided"),
    (403, dict(message="Country, region, or territory not supported", type="request_forbidden",
               code="unsupported_country_region_territory"),
     AuthenticationError, "Country, region, or territory not supported"),
    (404, dict(message="The model `gpt-4o` does not exist or you do not have access to it.",
               type="invalid_request_error", code="model_not_found"),
     InvalidRequestError, "The model `gpt-4o` does not exist"),
    (400, dict(message="Unsupported parameter: 'max_tokens' is not supported with this model. "
                       "Use 'max_completion_tokens' instead.",
               type="invalid_request_error", param="max_tokens", code="unsupported_parameter"),
     InvalidRequestError, "Use 'max_completion_tokens' instead"),
    (429, dict(message="Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): "
                       "Limit 30000, Used 29937, Requested 385. Please try again in 644ms.",
               type="tokens", code="rate_limit_exceeded", retry_after=1),
     RateLimitError, "Please try again in 644ms"),
    (429, dict(code="insufficient_quota"), RateLimitError, "You exceeded your current quota"),
    (500, dict(message="The server had an error while processing your request. Sorry about that!",
               type="server_error"),
     ServerError, "Sorry about that"),
    (503, dict(message="The engine is currently overloaded, please try again later", type="server_error"),
     ServerError, "currently overloaded"),
]


@pytest.mark.parametrize("mode", ["complete", "stream"])
@pytest.mark.parametrize(
    "status, options, expected_class, expected_text", ERRORS,
    ids=["401", "403", "404", "400", "429-rate", "429-quota", "500", "503"],
)
def test_error_responses(
    server: LoopbackServer, make: MakeProvider, mode: str, status: int, options: Dict[str, Any],
    expected_class: type, expected_text: str,
) -> None:
    reply = server.error_reply(status, **options)
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
    assert (error.provider, error.status_code) == ("openai", status)
    assert error.request_id == reply.headers["x-request-id"]
    if isinstance(error, RateLimitError):
        quota = options.get("code") == "insufficient_quota"
        assert error.retryable is not quota
        assert error.retry_after == (None if quota else 1.0)


def test_exhausted_quota_is_not_retried(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(server.error_reply(429, code="insufficient_quota"), times=3)
    with pytest.raises(RateLimitError):
        make(max_retries=2).complete("hi")
    assert len(server.requests) == 1


def test_missing_key_against_a_server_that_wants_one(server: LoopbackServer, make: MakeProvider) -> None:
    # A loopback base_url needs no key by default; a local vLLM started with --api-key does.
    provider = make(api_key=None)
    with pytest.raises(AuthenticationError, match="You didn't provide an API key"):
        provider.complete("hi")
    assert "Authorization" not in server.last_request.headers


# -- health --------------------------------------------------------------------------------------


def test_health_ok(server: LoopbackServer, make: MakeProvider) -> None:
    status = make(name="main").health_check()
    assert (status.name, status.ok, status.error) == ("main", True, None)
    assert status.latency_s is not None and status.latency_s >= 0
    request = server.last_request
    assert (request.method, request.path) == ("GET", MODELS_PATH)
    assert request.headers["Authorization"] == f"Bearer {KEY}"


def test_health_wrong_key_is_unauthorised(make: MakeProvider) -> None:
    status = make(api_key="sk-wrong-key-000000000000").health_check()
    assert not status.ok
    assert status.error is not None and status.error.startswith("unauthorised: ")
    assert "Incorrect API key provided" in status.error
    assert "sk-wrong-key-000000000000" not in status.error


def test_health_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = sock.getsockname()[1]
        with OpenAIProvider(base_url=f"http://127.0.0.1:{port}/v1") as provider:
            status = provider.health_check(timeout=5)
    assert not status.ok
    assert status.error is not None and status.error.startswith("unreachable: ")


def test_health_timeout(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(Reply(hang=True), path=MODELS_PATH)
    status = make().health_check(timeout=0.3)
    assert not status.ok
    assert status.error is not None and status.error.startswith("timeout: ")


@pytest.mark.parametrize(
    "reply",
    [Reply(json={"object": "list"}), Reply(body="Ollama is running"), Reply(json=["gpt-4o"])],
    ids=["no-data", "not-json", "a-list"],
)
def test_health_unexpected_answer_is_not_ok(server: LoopbackServer, make: MakeProvider, reply: Reply) -> None:
    server.enqueue(reply, path=MODELS_PATH)
    status = make().health_check()
    assert not status.ok
    assert status.error is not None and status.error.startswith("error: ")


def test_health_without_key_for_a_remote_server_is_misconfigured() -> None:
    with OpenAIProvider(base_url="https://llm.example.com/v1") as provider:
        status = provider.health_check()
    assert not status.ok
    assert status.error is not None and status.error.startswith("misconfigured: ")
    assert "OPENAI_API_KEY" in status.error


@pytest.mark.parametrize("timeout", [0, -1, "5", True])
def test_health_never_raises_for_a_bad_timeout(make: MakeProvider, timeout: Any) -> None:
    status = make().health_check(timeout=timeout)
    assert not status.ok
    assert status.error is not None and status.error.startswith("misconfigured: ")


# -- configuration -------------------------------------------------------------------------------


def test_from_config_builds_a_working_provider(server: LoopbackServer) -> None:
    options = {"base_url": server.base_url + "/", "api_key": KEY, "model": "gpt-4o", "timeout": 5,
               "max_retries": 0, "organization": "org-1", "max_tokens_field": "max_completion_tokens"}
    with OpenAIProvider.from_config("work", options, where="provider_kit.toml: [providers.work]") as p:
        assert (p.name, p.model, p.base_url, p.timeout, p.max_retries) == (
            "work", "gpt-4o", server.base_url, 5.0, 0)
        assert p.complete("hi", max_tokens=3).model == "gpt-4o"
    body = server.last_request.json()
    assert body["max_completion_tokens"] == 3
    assert server.last_request.headers["OpenAI-Organization"] == "org-1"


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"modle": "gpt-4o"}, "did you mean 'model'"),
        ({"base_ur": "http://127.0.0.1:1/v1"}, "did you mean 'base_url'"),
        ({"timeout": "5"}, "timeout must be a number"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"max_retries": -1}, "max_retries must not be negative"),
        ({"max_retries": True}, "max_retries must be an integer"),
        ({"headers": {"X-Title": 1}}, "headers entry 'X-Title' must be a string"),
        ({"base_url": "ftp://example.org"}, "base_url must be an http:// or https:// URL"),
        ({"max_tokens_field": "both"}, "max_tokens_field must be one of"),
        ({"organization": 5}, "organization must be a string"),
        ({"api_key": ""}, "api_key must not be empty"),
        ({"require_api_key": "yes"}, "require_api_key must be true or false"),
    ],
)
def test_from_config_rejects_bad_options(options: Dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        OpenAIProvider.from_config("x", options, where="cfg: [providers.x]")
    assert str(info.value).startswith("cfg: [providers.x]: ")
    assert fragment in str(info.value)


def test_a_bad_api_key_value_is_never_shown() -> None:
    with pytest.raises(ConfigError) as info:
        OpenAIProvider.from_config("x", {"api_key": ["sk-secret-in-a-list"]}, where="cfg")
    assert "sk-secret-in-a-list" not in str(info.value)
    assert "api_key" in str(info.value)


def test_env_base_url_and_key(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url + "/")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with OpenAIProvider(max_retries=0) as provider:
        assert provider.base_url == server.base_url
        assert provider.complete("hi").text == "echo: hi"
    assert server.last_request.headers["Authorization"] == f"Bearer {KEY}"


def test_options_beat_the_environment(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-0000000000000")
    with OpenAIProvider(base_url=server.base_url, api_key=KEY, max_retries=0) as provider:
        provider.complete("hi")
    assert server.last_request.headers["Authorization"] == f"Bearer {KEY}"


def test_api_key_env_names_the_variable(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-this-one-000000000")
    monkeypatch.setenv("GATEWAY_TOKEN", KEY)
    with OpenAIProvider(base_url=server.base_url, api_key_env="GATEWAY_TOKEN") as provider:
        assert provider.api_key_env == "GATEWAY_TOKEN"
        provider.complete("hi")
    assert server.last_request.headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("value", ["localhost:8000/v1", "ftp://h/v1", "http://h:port/v1"])
def test_a_bad_env_base_url_is_a_config_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", value)
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        OpenAIProvider(api_key=KEY)


OWN_KEY_ONLY = (
    r"no API key for .*: \$OPENAI_API_KEY is sent only to api\.openai\.com or to the server "
    r"\$OPENAI_BASE_URL names; set api_key_env"
)


@pytest.mark.parametrize(
    "options, missing",
    [
        ({"base_url": "https://llm.example.com/v1"}, OWN_KEY_ONLY),
        ({}, r"no API key \(set \$OPENAI_API_KEY"),  # api.openai.com
        ({"base_url": "https://api.openai.com/v1"}, r"no API key \(set \$OPENAI_API_KEY"),
        ({"base_url": "http://127.0.0.1:8000/v1"}, None),
        ({"base_url": "http://localhost:1234/v1"}, None),
        ({"base_url": "http://[::1]:8000/v1"}, None),
        ({"base_url": "http://127.0.0.1:8000/v1", "require_api_key": True}, OWN_KEY_ONLY),
        ({"base_url": "https://llm.example.com/v1", "require_api_key": False}, None),
        ({"base_url": "http://127.0.0.1:8000/v1", "api_key_env": "PROXY_KEY"},
         r"no API key: \$PROXY_KEY is not set \(its config names it in api_key_env"),
        ({"base_url": "http://127.0.0.1:8000/v1", "api_key_env": "PROXY_KEY", "require_api_key": False}, None),
    ],
)
def test_validate_config_without_key(options: Dict[str, Any], missing: Optional[str]) -> None:
    with OpenAIProvider(**options) as provider:
        if missing:
            with pytest.raises(ConfigError, match=missing):
                provider.validate_config()
        else:
            provider.validate_config()


def test_complete_without_key_sends_nothing() -> None:
    with OpenAIProvider(base_url="https://llm.example.com/v1") as provider:
        with pytest.raises(ConfigError, match="no API key"):
            provider.complete("hi")
        with pytest.raises(ConfigError, match="no API key"):
            provider.stream("hi")


def test_repr_and_describe_never_show_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with OpenAIProvider(name="gpt") as from_env, OpenAIProvider(api_key=KEY) as given:
        for provider in (from_env, given):
            shown = " ".join([repr(provider), str(provider), json.dumps(provider.describe())])
            assert KEY not in shown and KEY[3:] not in shown
            assert "api_key='***'" in repr(provider)
            assert provider.describe()["api_key"] == "set"
    monkeypatch.delenv("OPENAI_API_KEY")
    with OpenAIProvider(base_url="http://127.0.0.1:1/v1") as keyless:
        assert "api_key=None" in repr(keyless)


# -- listings and the model check (moved from test_listing.py) -----------------------------------


@pytest.mark.parametrize(
    ("configured", "served", "ok"),
    [
        ("gpt-4o", ["gpt-4o-mini", "gpt-4o"], True),
        ("gpt-5", ["gpt-4o-mini", "gpt-4o"], False),
        ("gpt-4o", ["gpt-4o-mini"], False),  # a prefix of another id is not that id
        ("llama3.2", ["llama3.2:latest"], True),  # Ollama's /v1 lists the tag
        ("openai/gpt-4o", ["openai/*", "anthropic/*"], True),  # a LiteLLM wildcard route
        ("mistral/large", ["openai/*"], False),
        ("anything", [], False),
    ],
)
def test_health_reports_a_model_the_server_does_not_serve(
    provider_factory: Callable[..., Any], configured: str, served: List[str], ok: bool
) -> None:
    with LoopbackServer("openai", api_key=KEY, models=served) as server:
        provider = provider_factory(OpenAIProvider, base_url=server.base_url, api_key=KEY, model=configured)()
        status = provider.health_check()
    assert_model_status(status, configured, served, ok, CHECK_MODEL_HINT)


@pytest.mark.parametrize(
    "body", [{"object": "list"}, {"data": "gpt-4o"}, {"data": [{"name": "gpt-4o"}]}, ["gpt-4o"]],
    ids=["no-data", "data-str", "no-id", "a-list"],
)
def test_models_refuses_a_listing_of_another_shape(provider_factory: Callable[..., Any], body: Any) -> None:
    with LoopbackServer("openai", api_key=KEY, models=[]) as server:
        server.enqueue(Reply(json=body))
        provider = provider_factory(OpenAIProvider, base_url=server.base_url, api_key=KEY)()
        with pytest.raises(ResponseFormatError, match="did not answer with a model list"):
            provider.models()


# -- its simulator (moved from test_loopback_server.py) ------------------------------------------

OPENAI_KEY = "sk-test-0123456789abcdef"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "Be terse."},
                                              {"role": "user", "content": "hello there world"}]}

def test_openai_completion_echoes_the_last_user_message(session: requests.Session) -> None:
    with LoopbackServer("openai", api_key=OPENAI_KEY) as server:
        assert server.base_url == server.url + "/v1"
        assert server.url.startswith("http://127.0.0.1:")
        resp = session.post(server.base_url + "/chat/completions", json=CHAT,
                            headers={"Authorization": f"Bearer {OPENAI_KEY}"})
    assert resp.status_code == 200
    assert resp.headers["x-request-id"].startswith("req_")
    body = resp.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-") and isinstance(body["created"], int)
    assert body["model"] == "gpt-4o-mini"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "echo: hello there world",
                                             "refusal": None, "annotations": []}
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (5, 4, 9)


@pytest.mark.parametrize("include_usage", [True, False])
def test_openai_stream_has_role_deltas_finish_usage_and_done(session: requests.Session,
                                                             include_usage: bool) -> None:
    with LoopbackServer("openai") as server:
        resp = session.post(server.base_url + "/chat/completions",
                            json=dict(CHAT, stream=True, stream_options={"include_usage": include_usage}))
    assert resp.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert resp.headers["Transfer-Encoding"] == "chunked"
    events = sse_events(resp.content)
    assert all(name is None for name, _ in events)
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "echo: hello there world"
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert [c["choices"][0]["finish_reason"] for c in finish] == ["stop"]
    if include_usage:
        assert chunks[-1]["choices"] == []
        usage = chunks[-1]["usage"]
        assert {key: usage[key] for key in ("prompt_tokens", "completion_tokens", "total_tokens")} == {
            "prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
        # The details come in the streamed usage too, as the real API sends them.
        assert usage["prompt_tokens_details"]["cached_tokens"] == 0
        assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
    else:
        assert all(c["choices"] and "usage" not in c for c in chunks)


def test_openai_limit_auth_validation_and_unknown_paths(session: requests.Session) -> None:
    with LoopbackServer("openai", api_key=OPENAI_KEY, models=["m1", "m2"]) as server:
        auth = {"Authorization": f"Bearer {OPENAI_KEY}"}
        url = server.base_url + "/chat/completions"
        short = session.post(url, json=dict(CHAT, max_completion_tokens=2), headers=auth).json()
        missing = session.post(url, json=CHAT)
        wrong = session.post(url, json=CHAT, headers={"Authorization": "Bearer sk-wrong-key-0000"})
        options = session.post(url, json=dict(CHAT, stream_options={"include_usage": True}), headers=auth)
        unknown = session.post(server.url + "/chat/completions", json=CHAT, headers=auth)
        models = session.get(server.base_url + "/models", headers=auth).json()
        gone = session.get(server.base_url + "/models/nope", headers=auth)
    assert short["choices"][0]["message"]["content"] == "echo: hello "
    assert short["choices"][0]["finish_reason"] == "length"
    assert missing.status_code == 401 and "didn't provide an API key" in missing.json()["error"]["message"]
    error = wrong.json()["error"]
    assert wrong.status_code == 401 and error["code"] == "invalid_api_key"
    assert set(error) == {"message", "type", "param", "code"}
    assert "sk-wrong-key-0000" not in error["message"]
    assert options.status_code == 400 and options.json()["error"]["param"] == "stream_options"
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "Invalid URL (POST /chat/completions)"
    assert [m["id"] for m in models["data"]] == ["m1", "m2"] and models["object"] == "list"
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "model_not_found"



def test_error_replies_have_each_protocols_exact_shape(session: requests.Session) -> None:
    with LoopbackServer("openai") as openai:
        openai.enqueue(openai.error_reply(429, code="insufficient_quota", retry_after=7))
        quota = session.post(openai.base_url + "/chat/completions", json=CHAT)
    assert quota.status_code == 429 and quota.headers["retry-after"] == "7"
    assert quota.json()["error"]["type"] == quota.json()["error"]["code"] == "insufficient_quota"
    assert quota.headers["x-request-id"].startswith("req_")


def test_stream_reply_mid_stream_errors_and_truncation(session: requests.Session) -> None:
    with LoopbackServer("openai") as openai:
        openai.enqueue(openai.stream_reply(["a", "b"], error_after=1))
        openai.enqueue(openai.stream_reply(["a", "b"], terminate=False, finish_reason="length"))
        openai_error, openai_cut = [session.get(openai.url).content for _ in range(2)]
    last = sse_events(openai_error)[-1]
    assert json.loads(last[1])["error"]["type"] == "server_error"
    assert sum("content" in data for _, data in sse_events(openai_error)) == 2  # the role chunk and "a"
    assert sse_events(openai_cut)[-1][1] != "[DONE]"
    assert '"finish_reason":"length"' in openai_cut.decode()


def test_completion_reply_in_each_protocol(session: requests.Session) -> None:
    with LoopbackServer("openai") as openai:
        openai.enqueue(openai.completion_reply("Hi you", finish_reason="length", include_usage=False))
        openai_body = session.get(openai.url).json()
    assert openai_body["choices"][0]["message"]["content"] == "Hi you" and "usage" not in openai_body
    assert openai_body["choices"][0]["finish_reason"] == "length" and openai_body["model"] == "gpt-4o-mini"


def test_the_documented_vllm_example_sends_no_key_whatever_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # docs/calls.rst: OpenAIProvider("vllm", base_url="http://localhost:8000/v1", ...)  # no key needed
    # (moved from test_key_scope.py, whose conventional variables were all set)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-conventional-0123456789")
    with LoopbackServer("openai") as server:
        with OpenAIProvider("vllm", base_url=server.base_url, model=server.models[0], max_retries=0) as local:
            local.validate_config()
            assert local.complete("hi").text == "echo: hi"
        headers = server.last_request.headers
        assert [name for name in ("Authorization", "x-api-key", "api-key") if headers.get(name)] == []


# -- moved from test_transport.py (its fixtures: the suite's KEY, no key in any log record) ------


def test_exhausted_quota_429_is_never_retried(provider_factory: Callable[..., Any], no_key_in_logs: Any) -> None:
    with LoopbackServer("openai", api_key=SUITE_KEY) as server:
        server.enqueue(server.error_reply(429, code="insufficient_quota", retry_after_ms=10), times=3)
        provider = provider_factory(OpenAIProvider, base_url=server.base_url, api_key=SUITE_KEY)()
        error = raises(RateLimitError, provider.complete, "hi")
        assert error.retryable is False
        assert len(server.requests) == 1
    assert server.errors == []


# -- a JSON error body with 200 for a stream (moved from test_odd_answers.py) --------------------


def test_a_json_error_body_with_200_for_a_stream_is_the_error(provider_factory: Callable[..., Any]) -> None:
    with LoopbackServer("openai", api_key=KEY) as server:
        server.enqueue(Reply(200, json={"error": {"message": "Provider returned error", "code": 502}}))
        provider = provider_factory(OpenAIProvider, base_url=server.base_url, api_key=KEY)()
        with pytest.raises(ServerError, match="in a 200 response"):
            list(provider.stream("hi"))
    assert server.errors == []
