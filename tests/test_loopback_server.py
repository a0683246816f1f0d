"""Tests of the loopback protocol server itself, through plain requests, http.client and sockets."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import requests
import urllib3

from provider_kit.testing import Gate, LoopbackServer, RecordedRequest, Reply

OPENAI_KEY = "sk-test-0123456789abcdef"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "Be terse."},
                                              {"role": "user", "content": "hello there world"}]}


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def sse(body: bytes) -> List[Tuple[Optional[str], str]]:
    """(event, data) pairs of a well-formed SSE body (our own output: LF endings, one data line)."""
    events = []
    for block in body.decode("utf-8").split("\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields.get("event"), fields["data"]))
    return events


def raw_exchange(server: LoopbackServer, request: bytes) -> Tuple[bytes, Optional[BaseException]]:
    """Send raw bytes, read until EOF or an error; return what arrived and the error, if any."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        try:
            while True:
                more = sock.recv(65536)
                if not more:
                    return data, None
                data += more
        except OSError as exc:
            return data, exc


def loopback_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("loopback-")]


# -- OpenAI ------------------------------------------------------------------------------------

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
    events = sse(resp.content)
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
        assert chunks[-1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
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


# -- Anthropic ---------------------------------------------------------------------------------

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
    events = sse(stream.content)
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


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "ollama"])
def test_ignore_stream_answers_a_stream_request_with_the_whole_completion(
    session: requests.Session, protocol: str
) -> None:
    paths = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages", "ollama": "/api/chat"}
    body = {"model": "m", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    headers = anthropic_headers() if protocol == "anthropic" else {}
    with LoopbackServer(protocol, models=["m"], ignore_stream=True) as server:
        answer = session.post(server.url + paths[protocol], json=body, headers=headers)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    assert "echo: hi" in answer.text and "\n" not in answer.text


# -- Ollama ------------------------------------------------------------------------------------

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


# -- protocol helpers --------------------------------------------------------------------------

def test_error_replies_have_each_protocols_exact_shape(session: requests.Session) -> None:
    with LoopbackServer("openai") as openai, LoopbackServer("anthropic") as anthropic, \
            LoopbackServer("ollama") as ollama:
        openai.enqueue(openai.error_reply(429, code="insufficient_quota", retry_after=7))
        anthropic.enqueue(anthropic.error_reply(529, retry_after_ms=1500, headers={"x-should-retry": "true"}))
        ollama.enqueue(ollama.error_reply(503))
        quota = session.post(openai.base_url + "/chat/completions", json=CHAT)
        overloaded = session.post(anthropic.url + "/v1/messages", json=MESSAGES)
        busy = session.post(ollama.url + "/api/chat", json={})
    assert quota.status_code == 429 and quota.headers["retry-after"] == "7"
    assert quota.json()["error"]["type"] == quota.json()["error"]["code"] == "insufficient_quota"
    assert quota.headers["x-request-id"].startswith("req_")
    assert overloaded.status_code == 529
    assert overloaded.json() == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
                                 "request_id": overloaded.headers["request-id"]}
    assert overloaded.headers["retry-after-ms"] == "1500" and overloaded.headers["x-should-retry"] == "true"
    assert busy.status_code == 503 and set(busy.json()) == {"error"}


def test_stream_reply_mid_stream_errors_and_truncation(session: requests.Session) -> None:
    with LoopbackServer("openai") as openai, LoopbackServer("anthropic") as anthropic, \
            LoopbackServer("ollama") as ollama:
        openai.enqueue(openai.stream_reply(["a", "b"], error_after=1))
        anthropic.enqueue(anthropic.stream_reply(["a", "b"], error_after=1))
        ollama.enqueue(ollama.stream_reply(["a", "b"], error_after=1))
        openai.enqueue(openai.stream_reply(["a", "b"], terminate=False, finish_reason="length"))
        anthropic.enqueue(anthropic.stream_reply(["a", "b"], terminate=False))
        ollama.enqueue(ollama.stream_reply(["a", "b"], terminate=False))
        replies = [session.get(url).content for url in (openai.url, anthropic.url, ollama.url) * 2]
    openai_error, anthropic_error, ollama_error, openai_cut, anthropic_cut, ollama_cut = replies
    last = sse(openai_error)[-1]
    assert json.loads(last[1])["error"]["type"] == "server_error"
    assert sum("content" in data for _, data in sse(openai_error)) == 2  # the role chunk and "a"
    assert sse(anthropic_error)[-1][0] == "error"
    assert json.loads(sse(anthropic_error)[-1][1])["error"]["type"] == "overloaded_error"
    assert [json.loads(line) for line in ollama_error.splitlines()][-1] == {
        "error": "an error was encountered while running the model"}
    assert sse(openai_cut)[-1][1] != "[DONE]"
    assert '"finish_reason":"length"' in openai_cut.decode()
    assert [name for name, _ in sse(anthropic_cut)][-1] == "message_delta"
    assert all(json.loads(line)["done"] is False for line in ollama_cut.splitlines())


def test_completion_reply_in_each_protocol(session: requests.Session) -> None:
    with LoopbackServer("openai") as openai, LoopbackServer("anthropic") as anthropic, \
            LoopbackServer("ollama") as ollama:
        openai.enqueue(openai.completion_reply("Hi you", finish_reason="length", include_usage=False))
        anthropic.enqueue(anthropic.completion_reply("Hi you", model="claude-x", output_tokens=7))
        ollama.enqueue(ollama.completion_reply("Hi you", include_usage=False))
        bodies = [session.get(server.url).json() for server in (openai, anthropic, ollama)]
    openai_body, anthropic_body, ollama_body = bodies
    assert openai_body["choices"][0]["message"]["content"] == "Hi you" and "usage" not in openai_body
    assert openai_body["choices"][0]["finish_reason"] == "length" and openai_body["model"] == "gpt-4o-mini"
    assert anthropic_body["content"] == [{"type": "text", "text": "Hi you"}]
    assert (anthropic_body["model"], anthropic_body["stop_reason"]) == ("claude-x", "end_turn")
    assert (anthropic_body["usage"]["input_tokens"], anthropic_body["usage"]["output_tokens"]) == (5, 7)
    assert ollama_body["message"]["content"] == "Hi you" and ollama_body["done_reason"] == "stop"
    assert "eval_count" not in ollama_body and "prompt_eval_count" not in ollama_body


def test_helpers_need_a_protocol_and_replies_reject_contradictions() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        LoopbackServer("openai").url  # noqa: B018
    with pytest.raises(ValueError, match="protocol"):
        LoopbackServer(None).error_reply(500)
    with pytest.raises(ValueError, match="protocol"):
        LoopbackServer("no-such-protocol")
    with pytest.raises(ValueError, match="json and body"):
        Reply(json={}, body=b"x")
    with pytest.raises(ValueError, match="framing"):
        Reply(body=b"x", framing="gzip")


# -- scripting ---------------------------------------------------------------------------------

def test_scripted_replies_are_fifo_per_path_before_the_simulator(session: requests.Session) -> None:
    with LoopbackServer("openai") as server:
        server.enqueue(Reply(503, body="first"), path="/v1/chat/completions")
        server.enqueue(Reply(201, json={"any": True}))
        server.enqueue(Reply(502, body="second"), path="/v1/chat/completions", times=2)
        server.enqueue(lambda request: Reply(json={"saw": request.json()["n"]}), path="/v1/chat/completions")
        assert server.pending == 5
        url = server.base_url + "/chat/completions"
        other = session.get(server.url + "/elsewhere")
        results = [session.post(url, json={"n": i}) for i in range(5)]
        assert server.pending == 0
    assert (other.status_code, other.json()) == (201, {"any": True})
    assert [r.status_code for r in results] == [503, 502, 502, 200, 400]
    assert [r.text for r in results[:3]] == ["first", "second", "second"]
    assert results[3].json() == {"saw": 3}
    assert results[4].json()["error"]["message"] == "you must provide a model parameter"  # the simulator


def test_scripted_only_server_and_failing_callables(session: requests.Session) -> None:
    def broken(request: RecordedRequest) -> Reply:
        raise RuntimeError("boom")

    with LoopbackServer() as server:
        server.enqueue(broken)
        failed = session.get(server.url + "/x")
        unscripted = session.get(server.url + "/y")
        errors = server.errors
    assert failed.status_code == 500 and "boom" in failed.text
    assert [type(e) for e in errors] == [RuntimeError]
    assert unscripted.status_code == 404 and "no scripted reply" in unscripted.text


def test_requests_are_recorded_with_headers_body_query_and_connection(session: requests.Session) -> None:
    with LoopbackServer() as server:
        server.enqueue(Reply(body=b"ok"), times=3)
        with pytest.raises(LookupError):
            server.last_request  # noqa: B018
        session.post(server.url + "/a?x=1&y=two", json={"k": "v"}, headers={"X-Custom": "yes"})
        session.post(server.url + "/b", data=iter([b"chunked ", b"body"]))  # sent with chunked framing
        session.get(server.url + "/c")
        recorded = server.wait_for_requests(3, timeout=5)
        with pytest.raises(TimeoutError):
            server.wait_for_requests(4, timeout=0.01)
        last = server.last_request
    first, chunked, _ = recorded
    assert (first.method, first.path, first.query) == ("POST", "/a", {"x": "1", "y": "two"})
    assert first.headers["x-custom"] == first.headers["X-CUSTOM"] == "yes"
    assert first.json() == {"k": "v"} and first.body == b'{"k": "v"}'
    assert chunked.headers["Transfer-Encoding"] == "chunked" and chunked.body == b"chunked body"
    assert last.path == "/c"
    assert len({r.connection for r in recorded}) == 1  # keep-alive: one connection for all three
    assert "yes" not in repr(first.headers) and "x-custom" in repr(first.headers)


# -- framing and faults ------------------------------------------------------------------------

@pytest.mark.parametrize("framing", ["chunked", "close", "length"])
def test_a_gate_holds_the_rest_of_the_body_while_the_first_chunk_is_readable(
        session: requests.Session, framing: str) -> None:
    with LoopbackServer() as server:
        gate = server.gate()
        server.enqueue(Reply(chunks=[b"first", gate, b"second"], framing=framing))
        with session.get(server.url + "/s", stream=True, timeout=5) as resp:
            assert resp.raw.read1(65536) == b"first"
            assert gate.wait_reached(5) and not gate.is_open
            gate.open()
            assert resp.raw.read() == b"second"
    assert ("Transfer-Encoding" in resp.headers) == (framing == "chunked")
    assert resp.headers.get("Connection") == ("close" if framing == "close" else None)
    assert resp.headers.get("Content-Length") == ("11" if framing == "length" else None)


def test_stream_reply_gates_sit_between_events(session: requests.Session) -> None:
    with LoopbackServer("ollama") as server:
        gate = server.gate()
        server.enqueue(server.stream_reply(["Hel", gate, "lo"], framing="close"))
        with session.post(server.url + "/api/chat", stream=True, timeout=5) as resp:
            first = json.loads(resp.raw.read1(65536))
            gate.open()
            rest = resp.raw.read().splitlines()
    assert first["message"]["content"] == "Hel" and first["done"] is False
    assert [json.loads(line)["done"] for line in rest] == [False, True]


def test_close_delimited_body_ends_with_the_connection() -> None:
    with LoopbackServer() as server:
        server.enqueue(Reply(chunks=[b"abc", b"def"], framing="close"))
        data, error = raw_exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert error is None
    assert b"HTTP/1.1 200" in head and b"Connection: close" in head
    assert b"Content-Length" not in head and b"Transfer-Encoding" not in head
    assert body == b"abcdef"


def test_trickle_sends_one_byte_at_a_time() -> None:
    with LoopbackServer() as server:
        server.enqueue(Reply(body=b"abcd", trickle=0.02))
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        try:
            conn.request("GET", "/")
            body = conn.getresponse().read()
        finally:
            conn.close()
    assert body == b"abcd"
    assert time.monotonic() - started >= 3 * 0.02  # three gaps between four bytes, never faster


def test_reset_before_the_response_and_mid_body() -> None:
    with LoopbackServer() as server:
        server.enqueue(Reply(reset=True))
        server.enqueue(Reply(chunks=[b"abcdef", b"ghijkl"], reset_after=8))
        before, before_error = raw_exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        mid, mid_error = raw_exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert len(server.requests) == 2
    assert before == b"" and isinstance(before_error, ConnectionResetError)
    assert isinstance(mid_error, ConnectionResetError)
    assert mid.startswith(b"HTTP/1.1 200 OK\r\n") and b"ghijkl" not in mid
    assert mid.endswith(b"\r\n\r\n6\r\nabcdef\r\n2\r\ngh\r\n")


def test_reset_surfaces_as_a_connection_error_in_requests(session: requests.Session) -> None:
    with LoopbackServer() as server:
        server.enqueue(Reply(reset=True))
        with pytest.raises(requests.ConnectionError):
            session.get(server.url + "/")


def test_redirect_to_another_host_name_reaches_the_same_server(session: requests.Session) -> None:
    with LoopbackServer() as server:
        server.enqueue(Reply.redirect(server.url_for("/moved", host="localhost"), status=307))
        server.enqueue(Reply(body="landed"), path="/moved")
        resp = session.post(server.url + "/start", json={"a": 1})
        first, second = server.requests
    assert resp.text == "landed" and resp.history[0].status_code == 307
    assert first.headers["Host"] == f"127.0.0.1:{server.port}"
    assert second.headers["Host"] == f"localhost:{server.port}"
    assert (second.method, second.json()) == ("POST", {"a": 1})  # 307 keeps the method and body


def run_in_thread(target: Any) -> Tuple[threading.Thread, List[BaseException]]:
    errors: List[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


@pytest.mark.parametrize(("fault", "error"), [
    ("hang", requests.ConnectionError),
    ("hang_gate", requests.ConnectionError),
    ("stall_after_headers", requests.exceptions.ChunkedEncodingError),  # headers came, the body never did
])
def test_hangs_and_stalls_are_released_by_close(fault: str, error: type) -> None:
    server = LoopbackServer(safety_timeout=60).start()
    hang_gate = Gate()
    reply = {"hang": Reply(hang=True), "hang_gate": Reply(hang=hang_gate),
             "stall_after_headers": Reply(body=b"never", stall_after_headers=True)}[fault]
    server.enqueue(reply)

    got_headers = threading.Event()

    def call() -> None:
        with requests.Session() as session, session.get(server.url + "/", stream=True, timeout=30) as resp:
            got_headers.set()
            resp.content  # noqa: B018

    thread, errors = run_in_thread(call)
    try:
        server.wait_for_requests(1)
        if fault == "hang_gate":
            assert hang_gate.wait_reached(5)
        if fault == "stall_after_headers":
            assert got_headers.wait(5)
    finally:
        server.close()
    thread.join(10)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], error)
    assert loopback_threads() == []


def test_a_hang_gate_that_opens_sends_the_reply(session: requests.Session) -> None:
    gate = Gate()
    with LoopbackServer() as server:
        server.enqueue(Reply(body="late", hang=gate))
        thread, errors = run_in_thread(lambda: session.get(server.url + "/", timeout=10).raise_for_status())
        assert gate.wait_reached(5)
        assert thread.is_alive()  # the client is still waiting for the response
        gate.open()
        thread.join(10)
    assert errors == [] and not thread.is_alive()


def test_a_forgotten_gate_gives_up_after_the_safety_timeout() -> None:
    with LoopbackServer(safety_timeout=0.05) as server:
        server.enqueue(Reply(chunks=[b"a", Gate(), b"b"]))
        data, _ = raw_exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        errors = server.errors
    assert data.endswith(b"1\r\na\r\n")  # the body stopped at the gate
    assert len(errors) == 1 and "not opened" in str(errors[0])


# -- concurrency and shutdown ------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["openai", "anthropic", "ollama"])
def test_concurrent_requests_each_get_their_own_echo(protocol: str) -> None:
    barrier = threading.Barrier(32)

    with LoopbackServer(protocol) as server:
        def ask(i: int) -> str:
            message = [{"role": "user", "content": f"request {i}"}]
            barrier.wait(5)
            with requests.Session() as session:
                if protocol == "openai":
                    body = session.post(server.base_url + "/chat/completions",
                                        json={"model": "m", "messages": message}).json()
                    return str(body["choices"][0]["message"]["content"])
                if protocol == "anthropic":
                    body = session.post(server.url + "/v1/messages", headers={"anthropic-version": "2023-06-01"},
                                        json={"model": "m", "max_tokens": 9, "messages": message}).json()
                    return str(body["content"][0]["text"])
                lines = session.post(server.url + "/api/chat",
                                     json={"model": "llama3.2", "messages": message}).content.splitlines()
                return "".join(json.loads(line)["message"]["content"] for line in lines)

        with ThreadPoolExecutor(max_workers=32) as pool:
            answers = list(pool.map(ask, range(32)))
        assert len(server.requests) == 32
    assert answers == [f"echo: request {i}" for i in range(32)]


def test_close_ends_every_thread_and_connection_even_idle_and_mid_stream() -> None:
    gate = Gate()
    with requests.Session() as session:
        with LoopbackServer("openai") as server:
            session.get(server.base_url + "/models").raise_for_status()  # leaves an idle keep-alive connection
            server.enqueue(Reply(chunks=[b"x", gate, b"y"]))
            with requests.Session() as other, other.get(server.url + "/", stream=True, timeout=10) as resp:
                assert resp.raw.read1(10) == b"x"
                assert gate.wait_reached(5)
                assert len(loopback_threads()) == 3  # the acceptor and two connections
                server.close()
                with pytest.raises(urllib3.exceptions.ProtocolError):
                    resp.raw.read()  # the chunked body was cut off
        assert loopback_threads() == []
        assert server.errors == []
    assert gate.is_open  # close() opened the gate the server was waiting at
