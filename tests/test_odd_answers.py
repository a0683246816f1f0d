"""What real servers and proxies answer that the APIs themselves do not (issue 9): messages
spread over many lines, a whole JSON completion for a stream request, an HTML page, a proxy's
request id.

Every test runs against the loopback simulators of each protocol; none needs the network.
"""

from __future__ import annotations

import pickle
from typing import Any, Callable, Iterator

import pytest
from _kinds import CLASSES, NDJSON_KINDS, server_key

from provider_kit import (
    InvalidRequestError,
    ProviderError,
    ProviderRegistry,
    ResponseFormatError,
    ServerError,
    StreamChunk,
)
from provider_kit.cli import main
from provider_kit.providers._base import HTTPProvider
from provider_kit.testing import LoopbackServer, Reply

KEY = "sk-odd-answers-7f3a9c1e5b2d"

#: A LiteLLM error message as its proxy sends it: blank lines, indents, a line per fact.
LITELLM_MESSAGE = (
    "litellm.NotFoundError: AnthropicException - {\"type\":\"error\",\"error\":{\"type\":\"not_found_error\","
    "\"message\":\"model: claude-sonet\"}}\n\n"
    "Received Model Group=claude-sonet\n"
    "Available Model Group Fallbacks=None\n\n"
    "    Traceback (most recent call last):\n"
    "      File \"router.py\", line 1, in <module>\n"
)


@pytest.fixture
def server(kind: str) -> Iterator[LoopbackServer]:
    with LoopbackServer(kind, api_key=server_key(kind, KEY)) as server:
        yield server
    assert server.errors == []


@pytest.fixture
def make(provider_factory: Callable[..., Any], kind: str, server: LoopbackServer) -> Callable[..., HTTPProvider]:
    return provider_factory(CLASSES[kind], base_url=server.base_url, api_key=KEY, max_retries=0)


# -- one line ----------------------------------------------------------------------------------


def _error_reply(server: LoopbackServer, status: int, message: str) -> Reply:
    return server.error_reply(status, message)


@pytest.mark.parametrize("mode", ["complete", "stream"])
def test_a_message_on_many_lines_is_one_line_with_the_body_kept(
    server: LoopbackServer, make: Callable[..., HTTPProvider], mode: str
) -> None:
    reply = _error_reply(server, 404, LITELLM_MESSAGE)
    server.enqueue(reply)
    provider = make()
    with pytest.raises(InvalidRequestError) as info:
        if mode == "stream":
            list(provider.stream("hi"))
        else:
            provider.complete("hi")
    error = info.value
    text = str(error)
    assert "\n" not in text and "  " not in text
    assert "Received Model Group=claude-sonet Available Model Group Fallbacks=None" in text
    assert text.endswith("(HTTP 404)") or "(HTTP 404, request id" in text
    assert error.body == reply.body_bytes.decode("utf-8")  # verbatim, for debugging
    restored = pickle.loads(pickle.dumps(error))
    assert (restored.body, str(restored)) == (error.body, text)


def test_an_error_event_inside_a_stream_is_one_line(server: LoopbackServer, make: Callable[..., HTTPProvider]) -> None:
    server.enqueue(server.stream_reply(["Hel", "lo"], error_after=1, error_message=LITELLM_MESSAGE))
    with pytest.raises(ProviderError) as info:
        list(make().stream("hi"))
    assert "\n" not in str(info.value) and "  " not in str(info.value)
    assert "Available Model Group Fallbacks=None" in str(info.value)
    assert info.value.body is not None and "Received Model Group" in info.value.body


def test_the_body_is_kept_without_the_key(server: LoopbackServer, make: Callable[..., HTTPProvider]) -> None:
    server.enqueue(_error_reply(server, 400, f"bad request\n\nsent headers: x-api-key={KEY}\n"))
    with pytest.raises(InvalidRequestError) as info:
        make().complete("hi")
    assert KEY not in str(info.value) and KEY not in (info.value.body or "")
    assert "***" in (info.value.body or "")


def test_an_html_error_page_keeps_its_body(server: LoopbackServer, make: Callable[..., HTTPProvider]) -> None:
    page = "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n<center>nginx</center>\n</body>\n</html>\n"
    server.enqueue(Reply(502, body=page, content_type="text/html"))
    with pytest.raises(ServerError) as info:
        make().complete("hi")
    assert str(info.value).startswith(f"{make().name}: 502 Bad Gateway (HTTP 502")
    assert info.value.body == page


def test_cli_error_and_circuit_state_are_one_line(
    server: LoopbackServer, kind: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "provider_kit.toml"
    config.write_text(
        f'[providers.p]\ntype = "{kind}"\nbase_url = "{server.base_url}"\napi_key = "{KEY}"\nmax_retries = 0\n',
        encoding="utf-8",
    )
    server.enqueue(_error_reply(server, 500, LITELLM_MESSAGE), times=2)
    assert main(["complete", "--config", str(config), "hi"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Available Model Group Fallbacks=None" in err
    with ProviderRegistry.from_config(str(config)) as registry:
        with pytest.raises(ServerError):
            registry.complete("hi")
        last_error = registry.circuit("p").last_error
    assert last_error is not None and "\n" not in last_error and "Received Model Group" in last_error


# -- a stream request answered otherwise -------------------------------------------------------


def test_a_stream_answered_with_a_whole_json_completion_is_delivered(kind: str) -> None:
    """LiteLLM's Anthropic route answers ``stream: true`` with the non-stream JSON body."""
    with LoopbackServer(kind, ignore_stream=True) as server, \
            CLASSES[kind](base_url=server.base_url, api_key=KEY) as provider:
        chunks = list(provider.stream("hello there", max_tokens=50))
        expected = provider.complete("hello there", max_tokens=50)
        assert server.requests[0].json()["stream"] is True
    assert chunks == [
        StreamChunk("echo: hello there", provider=kind),  # every chunk says who answers
        StreamChunk("", finish_reason="stop", usage=expected.usage, provider=kind),
    ]
    # The counts (a type's usage details, when its simulator reports some, come along as well).
    assert (expected.usage.input_tokens, expected.usage.output_tokens) == (2, 3)
    assert "".join(chunk.text for chunk in chunks) == expected.text
    assert (chunks[-1].finish_reason, chunks[-1].usage) == (expected.finish_reason, expected.usage)


def test_a_scripted_json_completion_for_a_stream_keeps_its_finish_and_usage(
    server: LoopbackServer, make: Callable[..., HTTPProvider], kind: str
) -> None:
    # The type's own word for "cut at the token limit" ("length", "max_tokens"...).
    finish = next(native for native, ours in CLASSES[kind].FINISH_REASONS.items() if ours == "length")
    server.enqueue(server.completion_reply("cut sho", finish_reason=finish, input_tokens=7, output_tokens=2))
    chunks = list(make().stream("hi"))
    assert [chunk.text for chunk in chunks] == ["cut sho", ""]
    usage = chunks[-1].usage
    assert usage is not None
    assert (chunks[-1].finish_reason, usage.input_tokens, usage.output_tokens) == ("length", 7, 2)


def test_an_empty_json_completion_for_a_stream_is_only_the_final_chunk(
    server: LoopbackServer, make: Callable[..., HTTPProvider]
) -> None:
    server.enqueue(server.completion_reply(""))
    chunks = list(make().stream("hi"))
    assert len(chunks) == 1 and chunks[0].text == "" and chunks[0].finish_reason == "stop"


def test_a_json_error_body_with_200_for_a_stream_is_the_error(
    server: LoopbackServer, make: Callable[..., HTTPProvider], kind: str
) -> None:
    # The protocol's own error body (each type's real-world ones: test_<type>.py), sent with 200.
    body = server.error_reply(502, "Provider returned error").body_bytes
    server.enqueue(Reply(200, body=body, content_type="application/json"))
    with pytest.raises(ServerError, match="in a 200 response"):
        list(make().stream("hi"))


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (Reply(200, body="<!DOCTYPE html><html><head><title>Sign in - Corporate Proxy</title></head></html>",
               content_type="text/html; charset=utf-8"), "got text/html: 'Sign in - Corporate Proxy'"),
        (Reply(200, body="upstream connect error or disconnect/reset before headers"),
         "got text/plain: 'upstream connect error or disconnect/reset before headers'"),
        (Reply(200, body=b"\x89PNG\r\n", headers={"Content-Type": ""}), "got a body without Content-Type"),
        (Reply(200, body='{"choices": [', content_type="application/json"), "application/json that is not valid JSON"),
    ],
    ids=["html", "text", "no-type", "bad-json"],
)
def test_a_stream_answered_with_something_else_says_what_arrived(
    server: LoopbackServer, make: Callable[..., HTTPProvider], kind: str, reply: Reply, says: str
) -> None:
    server.enqueue(reply)
    with pytest.raises(ResponseFormatError) as info:
        list(make().stream("hi"))
    message = str(info.value)
    if kind in NDJSON_KINDS and "JSON" in says:
        # Ollama's NDJSON lines may come labelled as JSON: read as lines, the first is broken.
        assert "NDJSON line is not valid JSON" in message
    else:
        assert "in answer to a stream request" in message and says in message
    assert "ended before its end marker" not in message


def test_a_stream_with_an_unusual_type_that_reads_as_the_stream_is_decoded(
    server: LoopbackServer, make: Callable[..., HTTPProvider]
) -> None:
    streamed = server.stream_reply(["Hel", "lo"])
    server.enqueue(Reply(200, chunks=list(streamed._parts), content_type="text/plain"))
    assert "".join(chunk.text for chunk in make().stream("hi")) == "Hello"


# -- request ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["complete", "stream", "error"])
def test_a_proxy_call_id_is_the_request_id_when_the_server_sends_none(
    server: LoopbackServer, make: Callable[..., HTTPProvider], kind: str, mode: str
) -> None:
    call_id = "5b8c1f6e-0f6a-4d5e-9c1b-2a7d3e4f5a6b"
    headers = {"x-litellm-call-id": call_id}
    if mode == "error":
        server.enqueue(Reply(400, json={"error": {"message": "bad"}}, headers=headers))
        with pytest.raises(InvalidRequestError) as info:
            make().complete("hi")
        assert info.value.request_id == call_id and call_id in str(info.value)
        return
    if mode == "complete":
        server.enqueue(Reply(200, json={"unexpected": True}, headers=headers))
        with pytest.raises(ResponseFormatError) as info:
            make().complete("hi")
    else:
        server.enqueue(Reply(200, chunks=["garbage\n\n"], content_type="text/html", headers=headers))
        with pytest.raises(ResponseFormatError) as info:
            list(make().stream("hi"))
    assert info.value.request_id == call_id


def test_the_api_request_id_wins_over_a_proxy_call_id(
    server: LoopbackServer, make: Callable[..., HTTPProvider]
) -> None:
    headers = {"x-litellm-call-id": "litellm-call", "x-request-id": "req_api", "request-id": "req_api"}
    server.enqueue(Reply(400, json={"error": {"message": "bad"}}, headers=headers))
    with pytest.raises(InvalidRequestError) as info:
        make().complete("hi")
    assert info.value.request_id == "req_api"
