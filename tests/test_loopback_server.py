"""Tests of the loopback protocol server itself, through plain requests, http.client and sockets:
what every simulator does alike. Each wire format's own answers are tested in test_<type>.py."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, List, Optional, Tuple

import pytest
import requests
import urllib3
from _kinds import CHAT_PATHS, CLASSES, HEALTH_PATHS, KINDS, NDJSON_KINDS, PROTOCOL_HEADERS, SOME_KIND

from provider_kit.testing import Gate, LoopbackServer, RecordedRequest, Reply


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


@pytest.mark.parametrize("protocol", KINDS)
def test_ignore_stream_answers_a_stream_request_with_the_whole_completion(
    session: requests.Session, protocol: str
) -> None:
    body = {"model": "m", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with LoopbackServer(protocol, models=["m"], ignore_stream=True) as server:
        answer = session.post(server.url + CHAT_PATHS[protocol], json=body, headers=PROTOCOL_HEADERS[protocol])
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    assert "echo: hi" in answer.text and "\n" not in answer.text


# -- protocol helpers --------------------------------------------------------------------------

def test_helpers_need_a_protocol_and_replies_reject_contradictions() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        LoopbackServer(SOME_KIND).url  # noqa: B018
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
    chat = CHAT_PATHS[SOME_KIND]
    with LoopbackServer(SOME_KIND) as server:
        server.enqueue(Reply(503, body="first"), path=chat)
        server.enqueue(Reply(201, json={"any": True}))
        server.enqueue(Reply(502, body="second"), path=chat, times=2)
        server.enqueue(lambda request: Reply(json={"saw": request.json()["n"]}), path=chat)
        assert server.pending == 5
        url = server.url + chat
        other = session.get(server.url + "/elsewhere")
        results = [session.post(url, json={"n": i}) for i in range(5)]
        assert server.pending == 0
        unscripted = session.post(url, json={"n": 5})
    assert (other.status_code, other.json()) == (201, {"any": True})
    assert [r.status_code for r in results] == [503, 502, 502, 200, 400]
    assert [r.text for r in results[:3]] == ["first", "second", "second"]
    assert results[3].json() == {"saw": 3}
    assert results[4].json() == unscripted.json()  # the simulator's own refusal (no model given)


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
    kind = NDJSON_KINDS[0]  # one JSON document per event: the first read is exactly one
    with LoopbackServer(kind) as server:
        gate = server.gate()
        server.enqueue(server.stream_reply(["Hel", gate, "lo"], framing="close"))
        with session.post(server.url + CHAT_PATHS[kind], stream=True, timeout=5) as resp:
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

@pytest.mark.parametrize("protocol", KINDS)
def test_concurrent_requests_each_get_their_own_echo(protocol: str) -> None:
    barrier = threading.Barrier(32)

    with LoopbackServer(protocol) as server:
        def ask(i: int) -> str:
            # Each thread its own client (its own connection), as each had its own session.
            with CLASSES[protocol](base_url=server.base_url, model=server.models[0], max_retries=0) as client:
                barrier.wait(5)
                return client.complete(f"request {i}").text

        with ThreadPoolExecutor(max_workers=32) as pool:
            answers = list(pool.map(ask, range(32)))
        assert len(server.requests) == 32
    assert answers == [f"echo: request {i}" for i in range(32)]


def test_close_ends_every_thread_and_connection_even_idle_and_mid_stream() -> None:
    gate = Gate()
    with requests.Session() as session:
        with LoopbackServer(SOME_KIND) as server:
            session.get(server.url + HEALTH_PATHS[SOME_KIND]).raise_for_status()  # leaves an idle keep-alive connection
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
