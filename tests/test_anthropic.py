"""AnthropicProvider against the loopback server: the exact request, response parsing, the full
SSE event sequence, error bodies, health checks and configuration (PROTOCOLS.md §B and §D.12).

Timeouts, retries, redirects, thread safety and secret redaction belong to test_transport.py.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import requests
from _support import CHECK_MODEL_HINT, assert_model_status, raises, sse_events
from _support import KEY as SUITE_KEY

from provider_kit import AnthropicProvider, Message, ProviderRegistry, StreamChunk, Usage
from provider_kit.errors import (
    AuthenticationError,
    ConfigError,
    InvalidRequestError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)
from provider_kit.testing import LoopbackServer, Reply

KEY = "sk-ant-test-0123456789abcdef"
MESSAGES_PATH = "/v1/messages"
MODELS_PATH = "/v1/models"

MakeProvider = Callable[..., AnthropicProvider]


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer("anthropic", api_key=KEY) as server:
        yield server
    assert server.errors == []


@pytest.fixture
def make(server: LoopbackServer, provider_factory: Callable[..., MakeProvider]) -> MakeProvider:
    """Build providers pointed at ``server`` (fail fast: no retries); closed after the test."""
    return provider_factory(AnthropicProvider, base_url=server.base_url, api_key=KEY, max_retries=0, timeout=10)


def event(name: Optional[str], payload: Dict[str, Any], *, eol: bytes = b"\n") -> bytes:
    """One SSE event as the API writes it: ``event:`` line, ``data:`` line, blank line."""
    head = b"event: " + name.encode() + eol if name is not None else b""
    return head + b"data: " + json.dumps(payload).encode() + eol + eol


def message_start(usage: Optional[Dict[str, Any]] = None) -> bytes:
    return event("message_start", {"type": "message_start", "message": {
        "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant",
        "content": [], "model": "claude-opus-5", "stop_reason": None, "stop_sequence": None,
        "usage": usage or {"input_tokens": 25, "output_tokens": 1}}})


def text_delta(text: str, index: int = 0) -> bytes:
    return event("content_block_delta", {"type": "content_block_delta", "index": index,
                                         "delta": {"type": "text_delta", "text": text}})


def message_delta(stop_reason: Optional[str], usage: Dict[str, Any]) -> bytes:
    return event("message_delta", {"type": "message_delta",
                                   "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                   "usage": usage})


BLOCK_START = event("content_block_start", {"type": "content_block_start", "index": 0,
                                            "content_block": {"type": "text", "text": ""}})
BLOCK_STOP = event("content_block_stop", {"type": "content_block_stop", "index": 0})
PING = event("ping", {"type": "ping"})
MESSAGE_STOP = event("message_stop", {"type": "message_stop"})


def sse(parts: List[bytes], request_id: str = "req_011CStream") -> Reply:
    return Reply(chunks=parts, content_type="text/event-stream; charset=utf-8",
                 headers={"request-id": request_id})


def message_body(
    content: List[Dict[str, Any]], stop_reason: str = "end_turn", **usage: int
) -> Dict[str, Any]:
    return {
        "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5-20250929", "content": content, "stop_reason": stop_reason,
        "stop_sequence": None, "stop_details": None,
        "usage": {"input_tokens": 12, "output_tokens": 6, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0,
                  "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                  "service_tier": "standard", **usage},
    }


# -- the request -------------------------------------------------------------------------------


def test_complete_sends_exactly_the_messages_request(server: LoopbackServer, make: MakeProvider) -> None:
    completion = make().complete("Say hello.", system="You are terse.")

    assert completion.text == "echo: Say hello."
    request = server.last_request
    assert (request.method, request.path) == ("POST", MESSAGES_PATH)
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers
    # The system prompt is top-level; max_tokens is always sent; nothing else unless asked for.
    assert request.json() == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Say hello."}],
    }


@pytest.mark.parametrize(
    "given, system, expected_messages, expected_system",
    [
        ([Message("user", "hi")], None, [("user", "hi")], None),
        ([{"role": "user", "content": "hi"}, Message("assistant", "hello"), {"role": "user", "content": "q"}],
         None, [("user", "hi"), ("assistant", "hello"), ("user", "q")], None),
        ([{"role": "system", "content": "Second."}, {"role": "user", "content": "q"}], "First.",
         [("user", "q")], "First.\n\nSecond."),
    ],
    ids=["message", "mixed", "system-arg-and-dict"],
)
def test_system_messages_become_the_top_level_system(
    server: LoopbackServer, make: MakeProvider, given: Any, system: Optional[str],
    expected_messages: Any, expected_system: Optional[str],
) -> None:
    make().complete(given, system=system)
    body = server.last_request.json()
    assert [(m["role"], m["content"]) for m in body["messages"]] == expected_messages
    assert body.get("system") == expected_system


@pytest.mark.parametrize(
    "given, fragment",
    [
        ([{"role": "critic", "content": "42"}], "not critic"),
        ([{"role": "system", "content": "only a system prompt"}], "at least one user message"),
    ],
)
def test_messages_anthropic_cannot_take_are_refused_locally(
    server: LoopbackServer, make: MakeProvider, given: Any, fragment: str
) -> None:
    with pytest.raises(InvalidRequestError, match=fragment):
        make().complete(given)
    assert server.requests == []


@pytest.mark.parametrize(
    "options, kwargs, expected",
    [
        ({}, {}, {"max_tokens": 4096}),
        ({"default_max_tokens": 100}, {}, {"max_tokens": 100}),
        ({"default_max_tokens": 100}, {"max_tokens": 7}, {"max_tokens": 7}),
        ({}, {"temperature": 0}, {"max_tokens": 4096, "temperature": 0}),
        ({}, {"temperature": 1}, {"max_tokens": 4096, "temperature": 1}),
        ({}, {"stop": "\n\nHuman:"}, {"max_tokens": 4096, "stop_sequences": ["\n\nHuman:"]}),
        ({}, {"stop": ["a", "b"], "max_tokens": 9}, {"max_tokens": 9, "stop_sequences": ["a", "b"]}),
    ],
)
def test_max_tokens_always_and_sampling_only_when_given(
    server: LoopbackServer, make: MakeProvider, options: Dict[str, Any], kwargs: Dict[str, Any],
    expected: Dict[str, Any],
) -> None:
    make(**options).complete("hi", **kwargs)
    body = server.last_request.json()
    optional = {"max_tokens", "temperature", "stop_sequences", "stop", "stream", "top_p", "top_k"}
    assert {key: body[key] for key in optional & set(body)} == expected


def test_temperature_above_one_is_refused_locally(server: LoopbackServer, make: MakeProvider) -> None:
    with pytest.raises(InvalidRequestError, match="from 0 to 1"):
        make().complete("hi", temperature=1.5)
    assert server.requests == []


def test_stream_flag_only_when_streaming(server: LoopbackServer, make: MakeProvider) -> None:
    provider = make()
    chunks = list(provider.stream("hello there"))
    streamed = server.last_request.json()
    provider.complete("hello there")
    completed = server.last_request.json()

    assert streamed["stream"] is True
    assert "stream" not in completed
    assert "".join(c.text for c in chunks) == "echo: hello there"


@pytest.mark.parametrize("version", ["2026-10-21", "2027-03-01"])
def test_new_api_version_refuses_temperature_before_sending(
    server: LoopbackServer, make: MakeProvider, version: str
) -> None:
    provider = make(anthropic_version=version)
    with pytest.raises(InvalidRequestError, match=f"anthropic-version {version} does not accept temperature"):
        provider.complete("hi", temperature=0.5)
    with pytest.raises(InvalidRequestError):
        provider.stream("hi", temperature=0.5)
    assert server.requests == []
    # Without temperature the call goes through, with the configured version header.
    assert provider.complete("hi").text == "echo: hi"
    assert server.last_request.headers["anthropic-version"] == version
    assert "temperature" not in server.last_request.json()


def test_extra_headers_are_sent_on_every_call(server: LoopbackServer, make: MakeProvider) -> None:
    provider = make(headers={"anthropic-beta": "prompt-caching-2024-07-31", "X-Team": "search"})
    provider.complete("hi")
    assert provider.health_check().ok
    assert [r.path for r in server.requests] == [MESSAGES_PATH, MODELS_PATH]
    for request in server.requests:
        assert request.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
        assert request.headers["X-Team"] == "search"
        assert request.headers["x-api-key"] == KEY


# -- parsing the answer --------------------------------------------------------------------------


def test_complete_parses_a_real_response_with_cache_usage(server: LoopbackServer, make: MakeProvider) -> None:
    body = message_body([{"type": "text", "text": "Hello!"}],
                        cache_creation_input_tokens=100, cache_read_input_tokens=50)
    server.enqueue(Reply(json=body, headers={"request-id": "req_011CSHoEeqs5C35K2UUqR7Fy"}))
    completion = make(name="claude").complete("hi")

    assert completion.text == "Hello!"
    assert completion.model == "claude-sonnet-4-5-20250929"
    assert completion.provider == "claude"
    assert completion.finish_reason == "stop"
    # input = input + cache creation + cache read; the cache counts are the details too
    assert completion.usage == Usage(162, 6, 168, cached_input_tokens=50, cache_creation_input_tokens=100)
    assert completion.raw == body


@pytest.mark.parametrize(
    "content, text",
    [
        ([{"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCgIYAhIM"},
          {"type": "text", "text": "Hello"}, {"type": "text", "text": " world"}], "Hello world"),
        ([{"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
          {"type": "text", "text": "I'll check."},
          {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}],
         "I'll check."),
        ([{"type": "thinking", "thinking": "...", "signature": "sig"}], ""),
        ([], ""),
    ],
    ids=["thinking-then-texts", "tool-use", "thinking-only", "empty"],
)
def test_text_joins_only_text_blocks(
    server: LoopbackServer, make: MakeProvider, content: List[Dict[str, Any]], text: str
) -> None:
    server.enqueue(Reply(json=message_body(content)))
    completion = make().complete("hi")
    assert completion.text == text
    # A tool_use block makes the answer a tool call, whatever stop_reason says.
    calls = [block["id"] for block in content if block["type"] == "tool_use"]
    assert [call.id for call in completion.tool_calls] == calls
    assert completion.finish_reason == ("tool_calls" if calls else "stop")


FINISH_REASONS = [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"), ("tool_use", "tool_calls"),
    ("refusal", "content_filter"), ("pause_turn", "pause_turn"), ("something_new", "something_new"),
]


@pytest.mark.parametrize("raw, normalised", FINISH_REASONS)
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


@pytest.mark.parametrize(
    "reply",
    [
        Reply(json=[]),
        Reply(json={}),
        Reply(json={"content": "Hello"}),
        Reply(json={"content": [{"type": "text"}]}),
        Reply(json={"content": ["Hello"]}),
        Reply(json={"content": [{"type": "text", "text": "a"}], "usage": {"input_tokens": "12",
                                                                         "output_tokens": 3}}),
        Reply(body="upstream connect error", content_type="text/plain"),
    ],
    ids=["list", "empty-object", "content-str", "block-without-text", "block-str", "usage-str", "text"],
)
def test_a_2xx_body_of_the_wrong_shape_is_a_format_error(
    server: LoopbackServer, make: MakeProvider, reply: Reply
) -> None:
    reply.headers["request-id"] = "req_shape"
    server.enqueue(reply)
    with pytest.raises(ResponseFormatError) as info:
        make().complete("hi")
    assert (info.value.provider, info.value.request_id) == ("anthropic", "req_shape")


# -- streaming -----------------------------------------------------------------------------------


def test_stream_reads_the_full_event_sequence(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(sse([
        message_start({"input_tokens": 25, "output_tokens": 1}),
        event("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "thinking", "thinking": ""}}),
        event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                      "delta": {"type": "thinking_delta", "thinking": "Hmm."}}),
        event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                      "delta": {"type": "signature_delta", "signature": "EqQBCg"}}),
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event("content_block_start", {"type": "content_block_start", "index": 1,
                                      "content_block": {"type": "text", "text": ""}}),
        PING,
        text_delta("Hello", 1),
        event("brand_new_event", {"type": "brand_new_event", "anything": [1, 2]}),
        text_delta("!", 1),
        event("content_block_stop", {"type": "content_block_stop", "index": 1}),
        message_delta(None, {"output_tokens": 10}),
        PING,
        message_delta("end_turn", {"output_tokens": 15}),  # cumulative: the last one wins
        MESSAGE_STOP,
    ]))
    chunks = list(make().stream("hi"))

    assert [(c.reasoning, c.text) for c in chunks] == [("Hmm.", ""), ("", "Hello"), ("", "!"), ("", "")]
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])
    thinking = {"type": "thinking", "thinking": "Hmm.", "signature": "EqQBCg"}
    assert chunks[-1] == StreamChunk("", "stop", Usage(25, 15, 40), "anthropic",
                                     provider_state={"thinking_blocks": [thinking]})


def test_stream_usage_merges_cache_fields_field_by_field(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(sse([
        message_start({"input_tokens": 25, "cache_read_input_tokens": 100,
                       "cache_creation_input_tokens": 3, "output_tokens": 1}),
        BLOCK_START, text_delta("Hi"), BLOCK_STOP,
        # This message_delta repeats input_tokens but leaves the cache fields out.
        message_delta("end_turn", {"input_tokens": 25, "output_tokens": 15}),
        MESSAGE_STOP,
    ]))
    chunks = list(make().stream("hi"))
    assert chunks[-1].usage == Usage(128, 15, 143, cached_input_tokens=100, cache_creation_input_tokens=3)


def test_events_without_event_lines_fall_back_to_data_type(
    server: LoopbackServer, make: MakeProvider
) -> None:
    server.enqueue(sse([
        event(None, {"type": "message_start", "message": {"usage": {"input_tokens": 4, "output_tokens": 1}}}),
        event(None, {"type": "content_block_delta", "index": 0,
                     "delta": {"type": "text_delta", "text": "ok"}}),
        event(None, {"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
                     "usage": {"output_tokens": 2}}),
        event(None, {"type": "message_stop"}),
    ]))
    chunks = list(make().stream("hi"))
    assert chunks == [StreamChunk("ok", provider="anthropic"), StreamChunk("", "length", Usage(4, 2, 6), "anthropic")]


def test_an_event_without_data_still_counts(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(sse([message_start(), BLOCK_START, text_delta("ok"), b"event: ping\n\n",
                        message_delta("end_turn", {"output_tokens": 2}), b"event: message_stop\n\n"]))
    chunks = list(make().stream("hi"))
    assert chunks == [StreamChunk("ok", provider="anthropic"), StreamChunk("", "stop", Usage(25, 2, 27), "anthropic")]


def test_comments_and_crlf_split_across_reads(server: LoopbackServer, make: MakeProvider) -> None:
    hello = event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                          "delta": {"type": "text_delta", "text": "Hello"}}, eol=b"\r\n")
    server.enqueue(sse([
        b": keep-alive\r\n\r\n",
        event("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 3,
                                                                               "output_tokens": 1}}},
              eol=b"\r\n"),
        hello[:-3], hello[-3:-2], hello[-2:],  # a CRLF split between two reads
        b": still here\r\n\r\n",
        event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                "usage": {"output_tokens": 1}}, eol=b"\r\n"),
        event("message_stop", {"type": "message_stop"}, eol=b"\r\n"),
    ]))
    chunks = list(make().stream("hi"))
    assert chunks == [StreamChunk("Hello", provider="anthropic"), StreamChunk("", "stop", Usage(3, 1, 4), "anthropic")]


@pytest.mark.parametrize(
    "error_type, message, expected_class",
    [
        ("overloaded_error", "Overloaded", ServerError),
        ("api_error", "Internal server error", ServerError),
        ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit",
         RateLimitError),
        ("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum", InvalidRequestError),
        ("some_future_error", "Something new went wrong", ServerError),
    ],
)
def test_mid_stream_error_event(
    server: LoopbackServer, make: MakeProvider, error_type: str, message: str, expected_class: type
) -> None:
    server.enqueue(sse([
        message_start(), BLOCK_START, text_delta("Hel"), PING,
        event("error", {"type": "error", "error": {"type": error_type, "message": message}}),
    ], request_id="req_011CMidStream"))
    stream = make().stream("hi")
    assert next(stream).text == "Hel"
    with pytest.raises(ProviderError) as info:
        next(stream)
    assert type(info.value) is expected_class
    assert message in str(info.value)
    assert info.value.provider == "anthropic"
    assert info.value.request_id == "req_011CMidStream"


def test_mid_stream_overload_from_the_simulator(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(server.stream_reply(["Hel", "lo"], error_after=1))
    stream = make().stream("hi")
    assert next(stream).text == "Hel"
    with pytest.raises(ServerError, match="Overloaded"):
        next(stream)


@pytest.mark.parametrize(
    "parts",
    [
        [message_start(), BLOCK_START, text_delta("Hel")],
        [message_start(), BLOCK_START, text_delta("Hel"), BLOCK_STOP,
         message_delta("end_turn", {"output_tokens": 2})],
        [message_start(), BLOCK_START, text_delta("Hel"),
         b'event: message_stop\ndata: {"type": "message_stop"}'],  # no blank line after it
        [],
    ],
    ids=["mid-text", "after-message-delta", "message-stop-unterminated", "empty-body"],
)
def test_stream_without_message_stop_is_a_format_error(
    server: LoopbackServer, make: MakeProvider, parts: List[bytes]
) -> None:
    server.enqueue(sse(parts))
    with pytest.raises(ResponseFormatError, match="ended before") as info:
        list(make().stream("hi"))
    assert info.value.request_id == "req_011CStream"


@pytest.mark.parametrize(
    "bad",
    [
        b"event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"delta\": {\n\n",
        b"event: content_block_delta\ndata: [\"not\", \"an\", \"object\"]\n\n",
        event("content_block_delta", {"type": "content_block_delta", "index": 0}),  # no delta
        event("message_start", {"type": "message_start"}),  # no message
    ],
    ids=["broken-json", "not-an-object", "delta-missing", "message-missing"],
)
def test_malformed_event_is_a_format_error(server: LoopbackServer, make: MakeProvider, bad: bytes) -> None:
    server.enqueue(sse([BLOCK_START, text_delta("ok"), bad, MESSAGE_STOP]))
    stream = make().stream("hi")
    assert next(stream).text == "ok"
    with pytest.raises(ResponseFormatError):
        next(stream)


# -- errors --------------------------------------------------------------------------------------

CLOUDFLARE_413 = (
    "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n"
    "<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)

ERRORS = [
    (400, dict(message="messages.0.content: Input should be a valid list"), InvalidRequestError,
     "Input should be a valid list"),
    (401, dict(message="invalid x-api-key"), AuthenticationError, "invalid x-api-key"),
    (402, {}, AuthenticationError, "Your credit balance is too low"),
    (403, {}, AuthenticationError, "does not have permission"),
    (404, dict(message="model: claude-nope"), InvalidRequestError, "model: claude-nope"),
    (429, dict(retry_after=2), RateLimitError, "per-minute rate limit"),
    (429, dict(message="You have reached your specified workspace API usage limits.",
               code="enforced_spend_limit_reached"), RateLimitError, "usage limits"),
    (500, {}, ServerError, "Internal server error"),
    (529, {}, ServerError, "Overloaded"),
]


@pytest.mark.parametrize("mode", ["complete", "stream"])
@pytest.mark.parametrize(
    "status, options, expected_class, expected_text", ERRORS,
    ids=["400", "401", "402", "403", "404", "429-rate", "429-spend-cap", "500", "529"],
)
def test_error_responses(
    server: LoopbackServer, make: MakeProvider, mode: str, status: int, options: Dict[str, Any],
    expected_class: type, expected_text: str,
) -> None:
    reply = server.error_reply(status, **options)
    server.enqueue(reply)
    body = json.loads(reply.body_bytes)
    assert body["request_id"] == reply.headers["request-id"]  # the real API puts it in both
    provider = make()
    with pytest.raises(ProviderError) as info:
        if mode == "complete":
            provider.complete("hi")
        else:
            list(provider.stream("hi"))
    error = info.value
    assert type(error) is expected_class
    assert expected_text in str(error)
    assert (error.provider, error.status_code) == ("anthropic", status)
    assert error.request_id == reply.headers["request-id"]
    if isinstance(error, RateLimitError):
        spend_cap = options.get("code") == "enforced_spend_limit_reached"
        assert error.retryable is not spend_cap
        assert error.retry_after == (None if spend_cap else 2.0)


def test_cloudflare_413_html(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(Reply(413, body=CLOUDFLARE_413, content_type="text/html"))
    with pytest.raises(InvalidRequestError) as info:
        make().complete("hi")
    assert "413 Request Entity Too Large" in str(info.value)
    assert (info.value.status_code, info.value.request_id) == (413, None)


def test_request_id_from_the_body_when_the_header_is_missing(
    server: LoopbackServer, make: MakeProvider
) -> None:
    server.enqueue(Reply(529, json={"type": "error", "request_id": "req_011CBodyOnly",
                                    "error": {"type": "overloaded_error", "message": "Overloaded"}}))
    with pytest.raises(ServerError) as info:
        make().complete("hi")
    assert info.value.request_id == "req_011CBodyOnly"


def test_spend_cap_is_not_retried(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(server.error_reply(429, code="enforced_spend_limit_reached"), times=3)
    with pytest.raises(RateLimitError):
        make(max_retries=2).complete("hi")
    assert len(server.requests) == 1


# -- health --------------------------------------------------------------------------------------


def test_health_ok(server: LoopbackServer, make: MakeProvider) -> None:
    status = make(name="claude").health_check()
    assert (status.name, status.ok, status.error) == ("claude", True, None)
    request = server.last_request
    assert (request.method, request.path) == ("GET", MODELS_PATH)
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"


def test_health_wrong_key_is_unauthorised(make: MakeProvider) -> None:
    status = make(api_key="sk-ant-wrong-000000000000").health_check()
    assert not status.ok
    assert status.error is not None and status.error.startswith("unauthorised: ")
    assert "invalid x-api-key" in status.error


def test_health_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = sock.getsockname()[1]
        with AnthropicProvider(base_url=f"http://127.0.0.1:{port}", api_key=KEY) as provider:
            status = provider.health_check(timeout=5)
    assert not status.ok
    assert status.error is not None and status.error.startswith("unreachable: ")


def test_health_without_a_required_key_is_misconfigured(server: LoopbackServer, make: MakeProvider) -> None:
    # A loopback server needs no key by default; one that does says so with require_api_key.
    status = make(api_key=None, require_api_key=True).health_check()
    assert not status.ok
    assert status.error is not None and status.error.startswith("misconfigured: ")
    assert "ANTHROPIC_API_KEY" in status.error and "set api_key_env" in status.error
    assert server.requests == []


# -- configuration -------------------------------------------------------------------------------


def test_from_config_builds_a_working_provider(server: LoopbackServer) -> None:
    options = {"base_url": server.base_url + "/", "api_key": KEY, "model": "claude-haiku-4-5",
               "max_retries": 0, "default_max_tokens": 256, "anthropic_version": "2023-06-01"}
    with AnthropicProvider.from_config("fast", options, where="provider_kit.toml: [providers.fast]") as p:
        assert (p.name, p.model, p.base_url, p.default_max_tokens) == (
            "fast", "claude-haiku-4-5", server.base_url, 256)
        assert p.complete("hi").model == "claude-haiku-4-5"
    assert server.last_request.json()["max_tokens"] == 256


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"anthropic_verison": "2023-06-01"}, "did you mean 'anthropic_version'"),
        ({"default_max_token": 5}, "did you mean 'default_max_tokens'"),
        ({"organization": "org"}, "unknown option 'organization'"),
        ({"anthropic_version": 20230601}, "anthropic_version must be a string"),
        ({"default_max_tokens": 0}, "default_max_tokens must be a positive integer"),
        ({"default_max_tokens": 1.5}, "default_max_tokens must be an integer"),
        ({"timeout": -1}, "timeout must be a positive number"),
    ],
)
def test_from_config_rejects_bad_options(options: Dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        AnthropicProvider.from_config("x", options, where="cfg: [providers.x]")
    assert str(info.value).startswith("cfg: [providers.x]: ")
    assert fragment in str(info.value)


def test_env_base_url_and_key(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.base_url + "/")
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with AnthropicProvider(max_retries=0) as provider:
        assert provider.base_url == server.base_url
        assert provider.complete("hi").text == "echo: hi"
    assert server.last_request.headers["x-api-key"] == KEY


def test_options_beat_the_environment(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env-00000000000000")
    with AnthropicProvider(base_url=server.base_url, api_key=KEY, max_retries=0) as provider:
        provider.complete("hi")
    assert server.last_request.headers["x-api-key"] == KEY


def test_api_key_env_names_the_variable(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-not-this-one-00000")
    monkeypatch.setenv("CLAUDE_WORK_KEY", KEY)
    with AnthropicProvider(base_url=server.base_url, api_key_env="CLAUDE_WORK_KEY") as provider:
        provider.complete("hi")
    assert server.last_request.headers["x-api-key"] == KEY
    monkeypatch.delenv("CLAUDE_WORK_KEY")
    with AnthropicProvider(base_url=server.base_url, api_key_env="CLAUDE_WORK_KEY") as provider, \
            pytest.raises(ConfigError, match=r"\$CLAUDE_WORK_KEY"):
        provider.validate_config()


def test_a_bad_env_base_url_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "api.anthropic.com")
    with pytest.raises(ConfigError, match="ANTHROPIC_BASE_URL"):
        AnthropicProvider(api_key=KEY)


@pytest.mark.parametrize(
    "options, missing",
    [
        ({}, r"no API key \(set \$ANTHROPIC_API_KEY"),
        ({"base_url": "https://api.anthropic.com"}, r"no API key \(set \$ANTHROPIC_API_KEY"),
        ({"base_url": "https://llm-proxy.example.com"}, r"no API key for https://llm-proxy\.example\.com: "
         r"\$ANTHROPIC_API_KEY is sent only to api\.anthropic\.com or to the server \$ANTHROPIC_BASE_URL names"),
        ({"base_url": "http://127.0.0.1:8080"}, None),  # a local proxy: keyless unless it says otherwise
        ({"base_url": "http://127.0.0.1:8080", "require_api_key": True}, "set api_key_env"),
        ({"base_url": "http://127.0.0.1:8080", "api_key_env": "LITELLM_MASTER_KEY"},
         r"\$LITELLM_MASTER_KEY is not set"),
        ({"base_url": "http://127.0.0.1:8080", "require_api_key": False}, None),
    ],
)
def test_validate_config_without_key(options: Dict[str, Any], missing: Optional[str]) -> None:
    with AnthropicProvider(**options) as provider:
        if missing:
            with pytest.raises(ConfigError, match=missing):
                provider.validate_config()
        else:
            provider.validate_config()


def test_repr_and_describe_never_show_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with AnthropicProvider() as from_env, AnthropicProvider(api_key=KEY, name="c") as given:
        for provider in (from_env, given):
            shown = " ".join([repr(provider), str(provider), json.dumps(provider.describe())])
            assert KEY not in shown and KEY[7:] not in shown
            assert "api_key='***'" in repr(provider)


# -- listings and the model check (moved from test_listing.py) -----------------------------------


def listing_server(models: List[str], **options: Any) -> LoopbackServer:
    """A simulator serving ``models`` and expecting ``KEY``."""
    return LoopbackServer("anthropic", api_key=KEY, models=models, **options)


@pytest.mark.parametrize(
    ("configured", "served", "ok"),
    [
        ("claude-sonnet-4-5", ["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"], True),
        ("claude-sonnet-4-5-20250929", ["claude-sonnet-4-5-20250929"], True),
        ("claude-opus-4-6", ["claude-opus-4-6"], True),
        ("claude-3-5-sonnet-latest", ["claude-3-5-sonnet-20241022"], True),
        ("claude-sonnet-4", ["claude-sonnet-4-5-20250929"], False),  # 4 is not 4.5
        ("claude-sonnet-4", ["claude-sonnet-4-20250514"], True),
        ("claude-sonet-4-5", ["claude-sonnet-4-5-20250929"], False),
    ],
)
def test_health_reports_a_model_the_server_does_not_serve(
    provider_factory: Callable[..., Any], configured: str, served: List[str], ok: bool
) -> None:
    with listing_server(served) as server:
        provider = provider_factory(AnthropicProvider, base_url=server.base_url, api_key=KEY, model=configured)()
        status = provider.health_check()
    assert_model_status(status, configured, served, ok, CHECK_MODEL_HINT)


def test_anthropic_models_follow_every_page_within_one_deadline(provider_factory: Callable[..., Any]) -> None:
    names = [f"claude-model-{number}" for number in range(2100)]
    with listing_server(names) as server:
        provider = provider_factory(AnthropicProvider, base_url=server.base_url, api_key=KEY)()
        assert provider.models(timeout=5) == names
        queries = [request.query for request in server.requests]
    assert queries == [
        {"limit": "1000"},
        {"limit": "1000", "after_id": "claude-model-999"},
        {"limit": "1000", "after_id": "claude-model-1999"},
    ]


def test_anthropic_pages_share_the_deadline(provider_factory: Callable[..., Any]) -> None:
    page = {"data": [{"type": "model", "id": "a"}], "has_more": True, "first_id": "a", "last_id": "a"}
    with listing_server([]) as server:
        gate = server.gate()
        server.enqueue(Reply(json=page))
        server.enqueue(Reply(json=page, hang=gate))  # the second page never comes
        provider = provider_factory(AnthropicProvider, base_url=server.base_url, api_key=KEY, max_retries=0)()
        with pytest.raises(ProviderTimeoutError):
            provider.models(timeout=0.5)
        assert gate.wait_reached(1)
        gate.open()


def test_a_listing_that_repeats_a_page_is_refused(provider_factory: Callable[..., Any]) -> None:
    page = {"data": [{"type": "model", "id": "a"}], "has_more": True, "first_id": "a", "last_id": "a"}
    with listing_server(["a"]) as server:
        server.enqueue(Reply(json=page), times=3)
        provider = provider_factory(AnthropicProvider, base_url=server.base_url, api_key=KEY)()
        with pytest.raises(ResponseFormatError, match="repeats a page"):
            provider.models()
        assert len(server.requests) == 2


def test_an_openai_shaped_listing_from_a_proxy_works_for_anthropic(provider_factory: Callable[..., Any]) -> None:
    """LiteLLM answers /v1/models in OpenAI's shape whatever the route: no has_more, one page."""
    body = {"object": "list", "data": [{"id": "claude-sonnet", "object": "model", "created": 1, "owned_by": "x"}]}
    with listing_server([]) as server:
        server.enqueue(Reply(json=body))
        provider = provider_factory(AnthropicProvider, base_url=server.base_url, api_key=KEY)()
        assert provider.models() == ["claude-sonnet"]



def test_a_missing_model_names_the_closest_ids_first(provider_factory: Callable[..., Any]) -> None:
    served = [f"model-{number}" for number in range(40)] + ["claude-sonnet-4-5-20250929"]
    with listing_server(served) as server:
        make = provider_factory(AnthropicProvider, base_url=server.base_url, api_key=KEY)
        provider = make(model="claude-sonet-4-5")
        status = provider.health_check()
    assert status.error is not None
    assert "(served: claude-sonnet-4-5-20250929, " in status.error
    assert "and 36 more)" in status.error


def test_health_follows_anthropic_pages_to_find_the_model(provider_factory: Callable[..., Any]) -> None:
    served = [f"claude-old-{number}" for number in range(1200)] + ["claude-sonnet-4-5-20250929"]
    with listing_server(served) as server:
        provider = provider_factory(AnthropicProvider, base_url=server.base_url, api_key=KEY)()
        status = provider.health_check()
        assert len(server.requests) == 2
    assert status.ok, status.error



# -- the base URL excludes /v1 (moved from test_listing.py) -------------------------------------


@pytest.mark.parametrize("suffix", ["/v1", "/v1/", "/v1/messages"])
@pytest.mark.parametrize("source", ["argument", "config", "environment"])
def test_an_anthropic_base_url_ending_in_v1_is_normalised(
    suffix: str, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with listing_server(["claude-sonnet-4-5"]) as server:
        url = server.url + suffix
        if source == "argument":
            provider = AnthropicProvider(base_url=url, api_key=KEY)
        elif source == "environment":
            monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
            monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
            provider = AnthropicProvider()
        else:
            config = tmp_path / "provider_kit.toml"
            config.write_text(
                f'[providers.claude]\ntype = "anthropic"\nbase_url = "{url}"\napi_key = "{KEY}"\n', encoding="utf-8"
            )
            provider = ProviderRegistry.from_config(str(config)).get("claude")
        with provider:
            assert provider.base_url == server.url
            assert provider.complete("hi").text == "echo: hi"
            assert provider.health_check().ok
        assert [request.path for request in server.requests] == ["/v1/messages", "/v1/models"]


def test_an_anthropic_base_url_with_a_path_keeps_it(provider_factory: Callable[..., Any]) -> None:
    provider = provider_factory(AnthropicProvider, api_key=KEY)(base_url="https://gateway.example/anthropic/")
    assert provider.base_url == "https://gateway.example/anthropic"
    provider = provider_factory(AnthropicProvider, api_key=KEY)(base_url="https://gateway.example/anthropic/v1")
    assert provider.base_url == "https://gateway.example/anthropic"


# -- its simulator (moved from test_loopback_server.py) ------------------------------------------

def anthropic_headers(version: str = "2023-06-01") -> Dict[str, str]:
    return {"x-api-key": "sk-ant-test", "anthropic-version": version}


MESSAGES = {"model": "claude-sonnet-4-5", "max_tokens": 64, "system": "Be terse.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}]}


def test_anthropic_message_and_full_stream_event_sequence(session: requests.Session) -> None:
    with LoopbackServer("anthropic", api_key="sk-ant-test") as server:
        assert server.base_url == server.url
        url = server.base_url + "/v1/messages"
        plain = session.post(url, json=MESSAGES, headers=anthropic_headers())
        stream = session.post(url, json=dict(MESSAGES, stream=True), headers=anthropic_headers())
    assert plain.headers["request-id"].startswith("req_")
    body = plain.json()
    assert body["type"] == "message" and body["id"].startswith("msg_") and body["role"] == "assistant"
    assert body["content"] == [{"type": "text", "text": "echo: hello there"}]
    assert body["stop_reason"] == "end_turn" and body["stop_sequence"] is None
    assert (body["usage"]["input_tokens"], body["usage"]["output_tokens"]) == (4, 3)
    events = sse_events(stream.content)
    names = [name for name, _ in events]
    assert names == ["message_start", "content_block_start", "ping", "content_block_delta",
                     "content_block_delta", "content_block_delta", "content_block_stop", "message_delta",
                     "message_stop"]
    data = [json.loads(d) for _, d in events]
    assert [d["type"] for d in data] == names
    assert data[0]["message"]["usage"]["input_tokens"] == 4 and data[0]["message"]["stop_reason"] is None
    assert "".join(d["delta"]["text"] for d in data if d["type"] == "content_block_delta") == "echo: hello there"
    assert data[-2]["delta"]["stop_reason"] == "end_turn" and data[-2]["usage"] == {"output_tokens": 3}


@pytest.mark.parametrize(("headers", "body", "status", "error_type", "message"), [
    ({"anthropic-version": "2023-06-01"}, MESSAGES, 401, "authentication_error", "x-api-key header is required"),
    ({"x-api-key": "nope", "anthropic-version": "2023-06-01"}, MESSAGES, 401, "authentication_error",
     "invalid x-api-key"),
    ({"x-api-key": "sk-ant-test"}, MESSAGES, 400, "invalid_request_error", "anthropic-version: header is required"),
    (anthropic_headers(), {k: v for k, v in MESSAGES.items() if k != "max_tokens"}, 400,
     "invalid_request_error", "max_tokens: Field required"),
    (anthropic_headers("2026-10-21"), dict(MESSAGES, temperature=1.0), 400, "invalid_request_error",
     "temperature: Extra inputs are not permitted"),
    (anthropic_headers(), dict(MESSAGES, messages=[{"role": "system", "content": "x"}]), 400,
     "invalid_request_error", 'Unexpected role "system"'),
])
def test_anthropic_rejects_like_the_real_api(session: requests.Session, headers: Dict[str, str],
                                             body: Dict[str, Any], status: int, error_type: str,
                                             message: str) -> None:
    with LoopbackServer("anthropic", api_key="sk-ant-test") as server:
        resp = session.post(server.url + "/v1/messages", json=body, headers=headers)
    assert resp.status_code == status
    error = resp.json()
    assert error["type"] == "error" and error["error"]["type"] == error_type
    assert message in error["error"]["message"]
    assert error["request_id"] == resp.headers["request-id"]


def test_anthropic_accepts_sampling_under_the_old_version_and_bearer_keys(session: requests.Session) -> None:
    with LoopbackServer("anthropic", api_key="sk-ant-test", models=["claude-a"]) as server:
        old = session.post(server.url + "/v1/messages", json=dict(MESSAGES, temperature=0.2),
                           headers=anthropic_headers())
        bearer = session.get(server.url + "/v1/models",
                             headers={"Authorization": "Bearer sk-ant-test", "anthropic-version": "2026-10-21"})
    assert old.status_code == 200
    assert bearer.status_code == 200
    assert bearer.json()["data"][0]["id"] == "claude-a" and bearer.json()["has_more"] is False


def test_anthropic_lists_models_in_pages_like_the_api(session: requests.Session) -> None:
    """§B.8: ``limit`` (default 20, 1 to 1000), ``after_id`` / ``before_id``, ``has_more``."""
    names = [f"claude-{number:02d}" for number in range(25)] + ["claude-sonnet-4-5-20250929"]
    with LoopbackServer("anthropic", models=names) as server:
        def get(**query: Any) -> requests.Response:
            return session.get(server.url + "/v1/models", params=query, headers=anthropic_headers())

        first, after = get(), get(after_id="claude-19", limit=3)
        before, every = get(before_id="claude-05"), get(limit=1000)
        too_many, too_few, not_a_number = get(limit=1001), get(limit=0), get(limit="x")
    assert [m["id"] for m in first.json()["data"]] == names[:20]
    assert {k: v for k, v in first.json().items() if k != "data"} == {
        "has_more": True, "first_id": "claude-00", "last_id": "claude-19"}
    assert [m["id"] for m in after.json()["data"]] == ["claude-20", "claude-21", "claude-22"]
    assert after.json()["has_more"] is True
    assert [m["id"] for m in before.json()["data"]] == names[:5] and before.json()["has_more"] is False
    assert [m["id"] for m in every.json()["data"]] == names and every.json()["has_more"] is False
    assert every.json()["data"][-1] == {"type": "model", "id": "claude-sonnet-4-5-20250929",
                                        "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"}
    for refused, says in ((too_many, "less than or equal to 1000"), (too_few, "greater than or equal to 1"),
                          (not_a_number, "valid integer")):
        assert refused.status_code == 400 and says in refused.json()["error"]["message"]


def test_error_replies_have_each_protocols_exact_shape(session: requests.Session) -> None:
    with LoopbackServer("anthropic") as anthropic:
        anthropic.enqueue(anthropic.error_reply(529, retry_after_ms=1500, headers={"x-should-retry": "true"}))
        overloaded = session.post(anthropic.url + "/v1/messages", json=MESSAGES)
    assert overloaded.status_code == 529
    assert overloaded.json() == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
                                 "request_id": overloaded.headers["request-id"]}
    assert overloaded.headers["retry-after-ms"] == "1500" and overloaded.headers["x-should-retry"] == "true"


def test_stream_reply_mid_stream_errors_and_truncation(session: requests.Session) -> None:
    with LoopbackServer("anthropic") as anthropic:
        anthropic.enqueue(anthropic.stream_reply(["a", "b"], error_after=1))
        anthropic.enqueue(anthropic.stream_reply(["a", "b"], terminate=False))
        anthropic_error, anthropic_cut = [session.get(anthropic.url).content for _ in range(2)]
    assert sse_events(anthropic_error)[-1][0] == "error"
    assert json.loads(sse_events(anthropic_error)[-1][1])["error"]["type"] == "overloaded_error"
    assert [name for name, _ in sse_events(anthropic_cut)][-1] == "message_delta"


def test_completion_reply_in_each_protocol(session: requests.Session) -> None:
    with LoopbackServer("anthropic") as anthropic:
        anthropic.enqueue(anthropic.completion_reply("Hi you", model="claude-x", output_tokens=7))
        anthropic_body = session.get(anthropic.url).json()
    assert anthropic_body["content"] == [{"type": "text", "text": "Hi you"}]
    assert (anthropic_body["model"], anthropic_body["stop_reason"]) == ("claude-x", "end_turn")
    assert (anthropic_body["usage"]["input_tokens"], anthropic_body["usage"]["output_tokens"]) == (5, 7)


# -- moved from test_transport.py (its fixtures: the suite's KEY, no key in any log record) ------


def test_exhausted_quota_429_is_never_retried(provider_factory: Callable[..., Any], no_key_in_logs: Any) -> None:
    with LoopbackServer("anthropic", api_key=SUITE_KEY) as server:
        server.enqueue(server.error_reply(429, code="enforced_spend_limit_reached", retry_after_ms=10), times=3)
        provider = provider_factory(AnthropicProvider, base_url=server.base_url, api_key=SUITE_KEY)()
        error = raises(RateLimitError, provider.complete, "hi")
        assert error.retryable is False
        assert len(server.requests) == 1
    assert server.errors == []


def test_request_id_comes_from_the_request_id_header(provider_factory: Callable[..., Any], no_key_in_logs: Any) -> None:
    with LoopbackServer("anthropic", api_key=SUITE_KEY) as server:
        server.enqueue(server.error_reply(400, "bad", headers={"request-id": "req_011Cxyz"}))
        provider = provider_factory(AnthropicProvider, base_url=server.base_url, api_key=SUITE_KEY, max_retries=0)()
        error = raises(InvalidRequestError, provider.complete, "hi")
    assert error.request_id == "req_011Cxyz"


# -- a JSON error body with 200 for a stream (moved from test_odd_answers.py) --------------------


def test_a_json_error_body_with_200_for_a_stream_is_the_error(provider_factory: Callable[..., Any]) -> None:
    with LoopbackServer("anthropic", api_key=KEY) as server:
        overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        server.enqueue(Reply(200, json=overloaded))
        provider = provider_factory(AnthropicProvider, base_url=server.base_url, api_key=KEY)()
        with pytest.raises(ServerError, match="in a 200 response"):
            list(provider.stream("hi"))
    assert server.errors == []
