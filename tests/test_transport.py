"""The shared HTTP layer's contract (the provider_kit/_transport package), proven through the real providers
against the loopback server: deadlines, retries, error translation, redirects, secrets, thread
safety, proxies, pickling and first-chunk latency; plus unit tests of RetryPolicy,
parse_retry_after and Deadline.

Every test runs with DEBUG logging captured (conftest's ``no_key_in_logs``) and fails if the API
key shows up in any log record; ``raises()`` also checks everything printable of every error it
catches.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import math
import os
import pickle
import socket
import threading
import time
import tracemalloc
from typing import Any, Callable, Dict, Iterator, List, Optional, Type

import pytest
import requests
import requests.exceptions
import requests.structures
import urllib3
import urllib3.exceptions
from _kinds import API_PREFIXES, CHAT_PATHS, CLASSES, KEY_HEADERS, KINDS, SOME_KIND, fast_retries
from _support import KEY, assert_secret_free, raises, serve

from provider_kit import (
    AuthenticationError,
    ConfigError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    _retry,
)
from provider_kit._retry import Deadline, RetryPolicy, parse_retry_after
from provider_kit._transport import Transport
from provider_kit.testing import LoopbackServer, RecordedRequest, Reply

RETRIED_STATUSES = (500, 502, 503, 504, 529, 408, 409, 429)
#: Hang detection only: a 1 s deadline must end the call well before this.
LATE = 1.5


# -- fixtures and helpers -------------------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("no_key_in_logs")  # every test: the key in no log record


@pytest.fixture
def one_server() -> Iterator[LoopbackServer]:
    """One simulator (of a hosted API's type), for transport details that need only one."""
    yield from serve(SOME_KIND)


def drain(iterator: Iterator[Any]) -> List[Any]:
    return list(iterator)


class Clock:
    """Elapsed wall time of a ``with`` block."""

    def __enter__(self) -> Clock:
        self.started = time.monotonic()
        self.elapsed = math.inf
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.elapsed = time.monotonic() - self.started


def timed(reply: Reply, arrivals: List[float]) -> Callable[[RecordedRequest], Reply]:
    """A responder that notes when each request arrived before answering ``reply``."""

    def respond(request: RecordedRequest) -> Reply:
        arrivals.append(time.monotonic())
        return reply

    return respond


def completion_body(server: LoopbackServer, text: str = "Hello!") -> bytes:
    return server.completion_reply(text).body_bytes


def dead_port() -> int:
    """A port that was bound and then closed: connecting to it is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def retry_records(caplog: pytest.LogCaptureFixture) -> List[logging.LogRecord]:
    return [
        r for r in caplog.records
        if r.name == "provider_kit" and r.levelno == logging.DEBUG and "retrying" in r.getMessage()
    ]


# -- unit: RetryPolicy, parse_retry_after, Deadline --------------------------------------------


@pytest.mark.parametrize(
    "retries_done, expected", [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]
)
def test_backoff_is_exponential_and_capped(
    monkeypatch: pytest.MonkeyPatch, retries_done: int, expected: float
) -> None:
    policy = RetryPolicy()
    monkeypatch.setattr(_retry.random, "random", lambda: 0.0)
    assert policy.delay(retries_done, None) == pytest.approx(expected)
    # Jitter shortens the wait by at most a quarter.
    monkeypatch.setattr(_retry.random, "random", lambda: 0.999999)
    assert policy.delay(retries_done, None) == pytest.approx(expected * 0.75, rel=1e-4)


def test_backoff_honours_custom_base_and_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_retry.random, "random", lambda: 0.0)
    policy = RetryPolicy(5, backoff_base=0.1, backoff_max=0.3)
    assert [policy.delay(n, None) for n in range(4)] == pytest.approx([0.1, 0.2, 0.3, 0.3])


@pytest.mark.parametrize(
    "retry_after, expected",
    [(0.2, 0.2), (5.0, 5.0), (60.0, 60.0), (60.5, None), (3600.0, None)],
)
def test_server_delay_is_used_up_to_the_cap(retry_after: float, expected: Optional[float]) -> None:
    assert RetryPolicy().delay(0, retry_after) == expected


@pytest.mark.parametrize("retry_after", [0.0, -1.0, None])
def test_no_usable_server_delay_falls_back_to_backoff(retry_after: Optional[float]) -> None:
    delay = RetryPolicy().delay(1, retry_after)
    assert delay is not None and 0.75 <= delay <= 1.0


def test_retry_policy_is_immutable_and_pickles() -> None:
    policy = RetryPolicy(3, backoff_base=0.25, backoff_max=2.0, max_retry_after=10.0)
    with pytest.raises(AttributeError):
        policy.max_retries = 5  # type: ignore[misc]
    copy = pickle.loads(pickle.dumps(policy))
    fields = (copy.max_retries, copy.backoff_base, copy.backoff_max, copy.max_retry_after)
    assert fields == (3, 0.25, 2.0, 10.0)
    assert repr(copy) == "RetryPolicy(max_retries=3)"


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"Retry-After": "2"}, 2.0),
        ({"Retry-After": "0.2"}, 0.2),
        ({"retry-after-ms": "200"}, 0.2),
        ({"Retry-After-Ms": "1500", "Retry-After": "30"}, 1.5),  # the ms header wins
        ({"retry-after-ms": "soon", "Retry-After": "3"}, 3.0),  # a bad ms value falls back
        ({"Retry-After": "-4"}, 0.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # a date in the past
        ({"Retry-After": "tomorrow-ish"}, None),
        ({"Retry-After": ""}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: Dict[str, str], expected: Optional[float]) -> None:
    assert parse_retry_after(requests.structures.CaseInsensitiveDict(headers)) == expected


def test_parse_retry_after_http_date_in_the_future() -> None:
    when = time.time() + 30
    value = email.utils.formatdate(when, usegmt=True)
    parsed = parse_retry_after(requests.structures.CaseInsensitiveDict({"Retry-After": value}))
    assert parsed is not None and 28.0 <= parsed <= 30.0


def test_deadline_counts_down_and_restarts() -> None:
    deadline = Deadline(100.0)
    assert 99.0 < deadline.remaining() <= 100.0
    assert not deadline.expired()
    deadline.expires_at = time.monotonic() - 1  # as if 101 s had passed
    assert deadline.expired() and deadline.remaining() < 0
    deadline.restart()
    assert not deadline.expired() and 99.0 < deadline.remaining() <= 100.0
    assert Deadline(0.0).expired()


def _requests_errors() -> List[Type[requests.RequestException]]:
    return sorted(
        (cls for cls in vars(requests.exceptions).values()
         if isinstance(cls, type) and issubclass(cls, requests.RequestException)),
        key=lambda cls: cls.__name__,
    )


@pytest.mark.parametrize("cls", _requests_errors(), ids=lambda cls: cls.__name__)
def test_every_requests_exception_is_translated(cls: Type[requests.RequestException]) -> None:
    try:
        exc = cls("boom")
    except TypeError:  # the JSONDecodeError mixins want (msg, doc, pos)
        exc = cls("boom", "", 0)
    error = Transport(provider="p", base_url="http://127.0.0.1:9").translate(exc, Deadline(60))
    assert isinstance(error, ProviderError)
    if issubclass(cls, (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader,
                        requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)):
        assert isinstance(error, InvalidRequestError)  # a configuration problem: never retried
    elif cls is requests.exceptions.ReadTimeout:
        assert isinstance(error, ProviderTimeoutError)
    elif cls is requests.exceptions.ContentDecodingError:
        assert isinstance(error, ResponseFormatError)


def test_read_timeout_wrapped_in_connection_error_is_a_timeout() -> None:
    # requests turns a read timeout while iterating a body into ConnectionError (psf/requests#4882).
    inner = urllib3.exceptions.ReadTimeoutError(None, "/v1/chat/completions", "Read timed out.")  # type: ignore[arg-type]
    transport = Transport(provider="p", base_url="http://127.0.0.1:9")
    wrapped = requests.ConnectionError(inner)
    assert isinstance(transport.translate(wrapped, Deadline(60)), ProviderTimeoutError)
    refused = requests.ConnectionError(urllib3.exceptions.ProtocolError("aborted", ConnectionRefusedError()))
    assert type(transport.translate(refused, Deadline(60))) is ProviderConnectionError
    # Whatever the failure, once the deadline has passed the caller hears "timeout".
    assert isinstance(transport.translate(refused, Deadline(0)), ProviderTimeoutError)
    assert transport.translate(ValueError("not ours"), Deadline(60)) is None


# -- deadlines ------------------------------------------------------------------------------------


def _completion_json(server: LoopbackServer) -> Reply:
    return server.completion_reply("A reply long enough to trickle for much longer than the deadline.")


def _faulty(server: LoopbackServer, fault: str) -> Reply:
    body = _completion_json(server).body_bytes
    if fault == "hang":
        return Reply(200, body=body, content_type="application/json", hang=True)
    if fault == "stall_after_headers":
        return Reply(200, body=body, content_type="application/json", stall_after_headers=True)
    assert len(body) * 0.02 > 3 * LATE  # trickled, it would take far longer than the deadline
    return Reply(200, body=body, content_type="application/json", trickle=0.02)


@pytest.mark.parametrize("fault", ["hang", "stall_after_headers", "trickle"])
def test_timeout_is_a_deadline_for_the_whole_call(make: Any, fault: str) -> None:
    # The three providers run at the same time, each against its own server: one second of
    # wall time for the three wire formats instead of three.
    outcomes: Dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        servers = {kind: stack.enter_context(LoopbackServer(kind, api_key=KEY)) for kind in KINDS}
        providers = {kind: make(servers[kind], max_retries=2) for kind in KINDS}
        for server in servers.values():
            server.enqueue(_faulty(server, fault), times=3)  # a retry would meet the same fault

        def call(kind: str) -> None:
            started = time.monotonic()
            try:
                providers[kind].complete("hi", timeout=1)
                outcome: Optional[BaseException] = None
            except Exception as exc:
                outcome = exc
            outcomes[kind] = (outcome, time.monotonic() - started)

        threads = [threading.Thread(target=call, args=(kind,)) for kind in KINDS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert all(server.errors == [] for server in servers.values())
    assert sorted(outcomes) == sorted(KINDS)
    for kind, (error, elapsed) in outcomes.items():
        assert isinstance(error, ProviderTimeoutError), (kind, error)
        assert isinstance(error, TimeoutError)
        assert error.provider == kind
        assert_secret_free(str(error), repr(error))
        assert 0.9 <= elapsed < LATE, (kind, elapsed)


def test_timeout_applies_to_health_checks(one_server: LoopbackServer, make: Any) -> None:
    one_server.enqueue(Reply(200, json={"data": []}, hang=True))
    provider = make(one_server)
    with Clock() as clock:
        status = provider.health_check(timeout=0.3)
    assert not status.ok and status.error.startswith("timeout")
    assert 0.27 <= clock.elapsed < 0.8


def test_retry_after_beyond_the_deadline_is_not_waited_for(one_server: LoopbackServer, make: Any) -> None:
    one_server.enqueue(one_server.error_reply(503, retry_after=5), times=3)
    provider = make(one_server)
    with Clock() as clock:
        error = raises((ServerError, ProviderTimeoutError), provider.complete, "hi", timeout=1)
    assert clock.elapsed < LATE
    if isinstance(error, ServerError):  # given up at once, not after sleeping
        assert error.status_code == 503 and clock.elapsed < 0.5
        assert len(one_server.requests) == 1


def test_retries_stop_at_the_deadline(one_server: LoopbackServer, make: Any) -> None:
    one_server.enqueue(one_server.error_reply(503, retry_after_ms=400), times=10)
    provider = make(one_server, max_retries=10)
    with Clock() as clock:
        raises((ServerError, ProviderTimeoutError), provider.complete, "hi", timeout=2)
    assert clock.elapsed < 2 + LATE
    # At 0 s, 0.4 s, 0.8 s... and none that would start past the deadline: at least two even
    # on a loaded machine, and never the ten retries allowed.
    assert 2 <= len(one_server.requests) <= 5


def test_stream_times_out_after_a_gap_following_the_first_chunk(server: LoopbackServer, make: Any) -> None:
    gate = server.gate()  # never opened: the server stalls after "Hel"
    server.enqueue(server.stream_reply(["Hel", gate, "lo"]))
    provider = make(server, max_retries=2)
    chunks = provider.stream("hi", timeout=0.3)
    first = next(chunks)
    assert first.text == "Hel"
    with Clock() as clock:
        raises(ProviderTimeoutError, next, chunks)
    assert 0.27 <= clock.elapsed < 0.8
    assert len(server.requests) == 1


@pytest.mark.parametrize("fault", ["hang", "stall_after_headers"])
def test_stream_first_chunk_is_bounded_by_the_timeout(server: LoopbackServer, make: Any, fault: str) -> None:
    reply = server.stream_reply(["never"])
    server.enqueue(Reply(200, chunks=[reply.body_bytes], content_type="text/event-stream", **{fault: True}),
                   times=3)
    provider = make(server, max_retries=2)
    with Clock() as clock:
        raises(ProviderTimeoutError, drain, provider.stream("hi", timeout=0.3))
    assert 0.27 <= clock.elapsed < 0.8


def test_slow_but_steady_stream_outlasts_the_timeout(server: LoopbackServer, make: Any) -> None:
    pieces: List[Any] = []
    for word in ("a ", "b ", "c ", "d"):
        pieces += [0.12, word]  # server-side pauses: a steady trickle of events
    server.enqueue(server.stream_reply(pieces))
    provider = make(server)
    with Clock() as clock:
        chunks = drain(provider.stream("hi", timeout=0.4))
    assert "".join(c.text for c in chunks) == "a b c d"
    assert chunks[-1].finish_reason == "stop"
    assert clock.elapsed > 0.4  # longer than the timeout in total, yet no gap was


# -- retries --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", RETRIED_STATUSES)
def test_transient_statuses_get_three_attempts(server: LoopbackServer, make: Any, status: int) -> None:
    # retry-after-ms keeps the waits short; the default policy (max_retries=2) is in force.
    server.enqueue(server.error_reply(status, retry_after_ms=10), times=5)
    provider = make(server)
    error = raises(RateLimitError if status == 429 else ServerError, provider.complete, "hi")
    assert error.status_code == status
    assert len(server.requests) == 3
    assert server.pending == 2


def test_success_after_two_503s_with_exponential_backoff(one_server: LoopbackServer, make: Any) -> None:
    arrivals: List[float] = []
    one_server.enqueue(timed(one_server.error_reply(503), arrivals), times=2)
    one_server.enqueue(timed(one_server.completion_reply("finally"), arrivals))
    provider = make(one_server)
    assert provider.complete("hi").text == "finally"
    assert len(arrivals) == 3
    first_gap, second_gap = arrivals[1] - arrivals[0], arrivals[2] - arrivals[1]
    assert 0.375 <= first_gap < 1.0  # 0.5 s less up to 25 % jitter
    assert 0.75 <= second_gap < 1.5  # 1 s less up to 25 % jitter


@pytest.mark.parametrize("header", ["seconds", "retry-after-ms", "http-date"])
def test_retry_after_is_honoured(one_server: LoopbackServer, make: Any, header: str) -> None:
    arrivals: List[float] = []
    wanted = 0.2
    if header == "seconds":
        reply = one_server.error_reply(429, retry_after="0.2")
    elif header == "retry-after-ms":
        reply = one_server.error_reply(503, retry_after_ms=200)
    else:
        # An HTTP-date has whole seconds: aim at least 0.6 s ahead, beyond the 0.5 s backoff.
        when = math.ceil(time.time() + 0.6)
        wanted = when - time.time() - 0.05
        reply = one_server.error_reply(429, retry_after=email.utils.formatdate(when, usegmt=True))
    one_server.enqueue(timed(reply, arrivals))
    one_server.enqueue(timed(one_server.completion_reply("ok"), arrivals))
    provider = make(one_server)
    assert provider.complete("hi").text == "ok"
    assert arrivals[1] - arrivals[0] >= wanted


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_never_retried(server: LoopbackServer, make: Any, status: int) -> None:
    server.enqueue(server.error_reply(status), times=3)
    provider = make(server)
    raises(ProviderError, provider.complete, "hi")
    assert len(server.requests) == 1


def test_x_should_retry_false_overrules_the_status(one_server: LoopbackServer, make: Any) -> None:
    one_server.enqueue(one_server.error_reply(503, headers={"x-should-retry": "false"}), times=3)
    raises(ServerError, make(one_server).complete, "hi")
    assert len(one_server.requests) == 1


def test_x_should_retry_true_overrules_the_status(one_server: LoopbackServer, make: Any) -> None:
    reply = one_server.error_reply(400, retry_after_ms=10, headers={"x-should-retry": "true"})
    one_server.enqueue(reply, times=3)
    raises(InvalidRequestError, make(one_server).complete, "hi")
    assert len(one_server.requests) == 3


def test_max_retries_zero_means_one_attempt(one_server: LoopbackServer, make: Any) -> None:
    one_server.enqueue(one_server.error_reply(503, retry_after_ms=10), times=3)
    raises(ServerError, make(one_server, max_retries=0).complete, "hi")
    assert len(one_server.requests) == 1


def test_connection_refused_is_retried_then_raised(
    make: Any, no_key_in_logs: pytest.LogCaptureFixture
) -> None:
    refused = f"http://127.0.0.1:{dead_port()}{API_PREFIXES[SOME_KIND]}"
    provider = fast_retries(CLASSES[SOME_KIND](base_url=refused, api_key=KEY))
    try:
        error = raises(ProviderConnectionError, provider.complete, "hi")
    finally:
        provider.close()
    assert isinstance(error, ConnectionError)
    assert "refused" in str(error)
    assert len(retry_records(no_key_in_logs)) == 2


@pytest.mark.parametrize("fault", ["before_response", "mid_body"])
def test_reset_connection_is_retried_for_complete(server: LoopbackServer, make: Any, fault: str) -> None:
    if fault == "before_response":
        broken = Reply(reset=True)
    else:
        broken = Reply(200, body=completion_body(server), content_type="application/json", reset_after=10)
    server.enqueue(broken)
    provider = fast_retries(make(server))
    assert provider.complete("hi").text == "echo: hi"
    assert len(server.requests) == 2


def test_nothing_is_retried_once_a_stream_started(server: LoopbackServer, make: Any) -> None:
    reply = server.stream_reply(["Hel", "lo", " world"])
    events = [part for part in reply._parts if isinstance(part, bytes)]  # type: ignore[attr-defined]
    # Reset in the middle of the event after the one carrying "Hel".
    cut = next(i for i, event in enumerate(events) if b"Hel" in event) + 1
    reply.reset_after = sum(len(e) for e in events[:cut]) + 5
    server.enqueue(reply)
    provider = make(server)
    chunks = provider.stream("hi")
    assert next(chunks).text == "Hel"
    raises(ProviderConnectionError, drain, chunks)
    assert len(server.requests) == 1


def test_each_retry_is_logged_at_debug_without_the_key(
    one_server: LoopbackServer, make: Any, no_key_in_logs: pytest.LogCaptureFixture
) -> None:
    one_server.enqueue(one_server.error_reply(503, retry_after_ms=10), times=2)
    assert make(one_server).complete("hi").text == "echo: hi"
    records = retry_records(no_key_in_logs)
    assert len(records) == 2
    assert all("ServerError" in r.getMessage() and KEY not in r.getMessage() for r in records)
    # urllib3's own DEBUG lines were captured too, so the autouse sweep really looked at them.
    assert any(r.name.startswith("urllib3") for r in no_key_in_logs.records)


# -- errors ---------------------------------------------------------------------------------------

STATUS_CLASSES = [
    (400, InvalidRequestError), (401, AuthenticationError), (402, AuthenticationError),
    (403, AuthenticationError), (404, InvalidRequestError), (413, InvalidRequestError),
    (422, InvalidRequestError), (429, RateLimitError), (408, ServerError), (409, ServerError),
    (500, ServerError), (502, ServerError), (503, ServerError), (504, ServerError), (529, ServerError),
]


@pytest.mark.parametrize("status, cls", STATUS_CLASSES)
def test_status_maps_to_error_class(
    server: LoopbackServer, make: Any, status: int, cls: Type[ProviderError]
) -> None:
    message = f"the provider's own words about {status}"
    server.enqueue(server.error_reply(status, message, headers={"x-request-id": "req_abc123"}))
    provider = make(server, max_retries=0)
    error = raises(cls, provider.complete, "hi")
    assert type(error) is cls
    assert message in str(error)
    assert error.status_code == status
    assert error.provider == provider.name
    assert error.request_id == "req_abc123"


def test_html_502_from_a_proxy_is_a_server_error_with_an_excerpt(
    one_server: LoopbackServer, make: Any
) -> None:
    page = (
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
        + "<!-- padding -->\r\n" * 500 + "</body>\r\n</html>\r\n"
    )
    one_server.enqueue(Reply(502, body=page, content_type="text/html"))
    error = raises(ServerError, make(one_server, max_retries=0).complete, "hi")
    assert error.status_code == 502
    assert "502 Bad Gateway" in str(error)
    assert len(str(error)) < 400


WRONG_BODIES = {
    "empty": b"",
    "not json": b"<html>hello</html>",
    "truncated json": b'{"choices": [{"mess',
    "invalid utf-8": b'{"x": "\xff\xfe"}',
    "a list": b"[1, 2, 3]",
    "a string": b'"hello"',
    "null": b"null",
    "an empty object": b"{}",
    "wrong types": b'{"choices": "x", "content": 5, "message": [1], "models": 3}',
    "null members": b'{"choices": [null], "content": [null], "message": null}',
}


@pytest.mark.parametrize("body", WRONG_BODIES.values(), ids=list(WRONG_BODIES))
def test_bad_2xx_body_is_a_response_format_error(server: LoopbackServer, make: Any, body: bytes) -> None:
    server.enqueue(Reply(200, body=body, content_type="application/json"))
    raises(ResponseFormatError, make(server, max_retries=0).complete, "hi")
    assert len(server.requests) == 1


def test_body_over_max_response_bytes_is_refused_in_bounded_memory(
    one_server: LoopbackServer, make: Any
) -> None:
    block = b" " * 65536  # JSON whitespace: a valid prefix of an endless body
    endless = [b"{"] + [block] * 320  # 20 MiB
    one_server.enqueue(Reply(200, chunks=endless, content_type="application/json"))
    provider = make(one_server, max_response_bytes=100_000, max_retries=0)
    tracemalloc.start()
    try:
        error = raises(ResponseFormatError, provider.complete, "hi")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "100000 bytes" in str(error)
    assert peak < 4 * 1024 * 1024


# -- redirects ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_to_another_host_is_refused_without_sending_the_key(
    server: LoopbackServer, make: Any, kind: str, status: int
) -> None:
    location = server.url_for(CHAT_PATHS[kind], host="localhost")
    server.enqueue(Reply.redirect(location, status), path=CHAT_PATHS[kind])
    error = raises(InvalidRequestError, make(server).complete, "hi")
    assert location in str(error)
    requests_seen = server.requests
    assert len(requests_seen) == 1
    assert KEY in requests_seen[0].headers.get(KEY_HEADERS[kind], "")  # the key did go to the first host
    assert all(KEY not in " ".join(r.headers.get_all(h) for h in r.headers) for r in requests_seen[1:])


def test_redirect_is_refused_for_streams_and_health_checks(one_server: LoopbackServer, make: Any) -> None:
    location = one_server.url_for("/v1/models", host="localhost")
    one_server.enqueue(Reply.redirect(location), times=2)
    provider = make(one_server)
    raises(InvalidRequestError, drain, provider.stream("hi"))
    status = provider.health_check()
    assert not status.ok and location in str(status.error)
    assert len(one_server.requests) == 2


# -- secrets --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("key", [KEY + "\n", KEY + "\r\n", KEY[:8] + "\n" + KEY[8:]])
def test_key_with_a_line_break_is_refused_at_construction(kind: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        CLASSES[kind](base_url="http://127.0.0.1:9", api_key=key)
    assert_secret_free(str(info.value), repr(info.value))
    assert KEY[:8] not in str(info.value) and "header" in str(info.value)


@pytest.mark.parametrize("headers", [{"X-Bad": "a\nb"}, {"X-Bad": " lead"}, {"Bad Name:": "x"}, {"": "x"}])
def test_unsendable_extra_header_is_refused_at_construction(headers: Dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        CLASSES[SOME_KIND](base_url="http://127.0.0.1:9", api_key=KEY, headers=headers)


def test_key_is_absent_from_reprs(server: LoopbackServer, make: Any) -> None:
    provider = make(server)
    assert_secret_free(repr(provider), str(provider), repr(provider._transport), str(provider.describe()))


@pytest.mark.parametrize("status", [400, 401, 429, 500])
def test_key_echoed_in_an_error_body_is_redacted(server: LoopbackServer, make: Any, status: int) -> None:
    server.enqueue(server.error_reply(status, f"Incorrect API key provided: {KEY}."), times=2)
    provider = make(server, max_retries=0)
    error = raises(ProviderError, provider.complete, "hi")
    assert "Incorrect API key provided: ***" in str(error)
    health = provider.health_check()
    assert not health.ok and "***" in str(health.error)
    assert_secret_free(str(health), repr(health), str(health.to_dict()))


def test_key_echoed_in_a_non_json_200_is_redacted(one_server: LoopbackServer, make: Any) -> None:
    one_server.enqueue(Reply(200, body=f"oops {KEY} oops", content_type="text/plain"))
    error = raises(ResponseFormatError, make(one_server).complete, "hi")
    assert "***" in str(error)


def test_key_echoed_in_a_mid_stream_error_is_redacted(server: LoopbackServer, make: Any) -> None:
    server.enqueue(server.stream_reply(["Hel", "lo"], error_after=1, error_message=f"bad key {KEY}"))
    error = raises(ProviderError, drain, make(server).stream("hi"))
    assert "bad key ***" in str(error)


@pytest.mark.parametrize("fault", ["refused", "timeout", "401"])
def test_health_status_never_shows_the_key(one_server: LoopbackServer, make: Any, fault: str) -> None:
    if fault == "refused":
        provider = make(one_server, base_url=f"http://127.0.0.1:{dead_port()}{API_PREFIXES[SOME_KIND]}")
    else:
        provider = make(one_server)
        hang = Reply(200, json={}, hang=True)
        one_server.enqueue(hang if fault == "timeout" else one_server.error_reply(401))
    status = provider.health_check(timeout=0.3)
    assert not status.ok and status.error
    assert_secret_free(str(status), repr(status), str(status.to_dict()))


# -- thread safety and connection reuse ----------------------------------------------------------


def test_32_threads_share_one_provider(one_server: LoopbackServer, make: Any) -> None:
    provider = make(one_server)
    threads_n, calls = 32, 3
    start = threading.Barrier(threads_n)
    results: Dict[int, List[str]] = {}
    failures: List[BaseException] = []

    def work(n: int) -> None:
        try:
            start.wait(timeout=10)
            if n % 2:
                texts = ["".join(c.text for c in provider.stream(f"prompt {n} call {i}", timeout=20))
                         for i in range(calls)]
            else:
                texts = [provider.complete(f"prompt {n} call {i}", timeout=20).text for i in range(calls)]
            results[n] = texts
        except BaseException as exc:  # reported below; a thread must not die silently
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    assert results == {n: [f"echo: prompt {n} call {i}" for i in range(calls)] for n in range(threads_n)}
    requests_seen = one_server.requests
    assert len(requests_seen) == threads_n * calls
    assert len({r.connection for r in requests_seen}) <= 32


def test_sequential_calls_reuse_one_connection(server: LoopbackServer, make: Any) -> None:
    provider = make(server)
    for i in range(4):
        assert provider.complete(f"call {i}").text == f"echo: call {i}"
    assert provider.health_check().ok
    assert len({r.connection for r in server.requests}) == 1


def test_sequential_streams_reuse_one_connection(server: LoopbackServer, make: Any) -> None:
    provider = make(server)
    for i in range(3):
        assert "".join(c.text for c in provider.stream(f"call {i}")) == f"echo: call {i}"
    assert provider.complete("after").text == "echo: after"
    assert len({r.connection for r in server.requests}) == 1


@contextlib.contextmanager
def _private_reads_by_the_transport() -> Iterator[List[str]]:
    """Record every private attribute the transport reads off urllib3's or http.client's
    response objects (a name starting with "_" read from a frame in provider_kit/_transport)."""
    import http.client
    import sys

    import urllib3.response

    import provider_kit._transport as package

    here = os.path.dirname(package.__file__) + os.sep
    seen: List[str] = []
    patched = []
    for cls in (urllib3.response.HTTPResponse, http.client.HTTPResponse):
        original = cls.__getattribute__

        def spy(self: Any, name: str, _original: Any = original, _cls: Any = cls) -> Any:
            if name.startswith("_") and not name.startswith("__"):
                caller = sys._getframe(1).f_code.co_filename
                if caller.startswith(here):
                    seen.append(f"{_cls.__module__}.{_cls.__name__}.{name}")
            return _original(self, name)

        cls.__getattribute__ = spy  # type: ignore[method-assign]
        patched.append((cls, original))
    try:
        yield seen
    finally:
        for cls, original in patched:
            cls.__getattribute__ = original  # type: ignore[method-assign]


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_the_transport_reads_no_private_attribute_of_urllib3_2(
    one_server: LoopbackServer, make: Any, framing: str
) -> None:
    # urllib3 2 offers what the transport needs in public: read_chunked, read1, connection,
    # release_conn. (The one private read left, http.client's read1 on ``_fp``, is for urllib3
    # 1.x only, where read(n) would block a close-delimited stream.)
    assert int(urllib3.__version__.split(".")[0]) >= 2
    provider = make(one_server)
    one_server.enqueue(one_server.stream_reply(["Hel", "lo"], framing=framing))
    with _private_reads_by_the_transport() as seen:
        assert "".join(chunk.text for chunk in provider.stream("hi")) == "Hello"
        assert provider.complete("whole").text == "echo: whole"
    assert seen == []


def test_abandoned_stream_is_closed_at_once(server: LoopbackServer, make: Any) -> None:
    gate = server.gate()  # never opened: the rest of the stream would take forever
    server.enqueue(server.stream_reply(["Hel", gate, "lo"]))
    provider = make(server)
    chunks = provider.stream("hi", timeout=10)
    assert next(chunks).text == "Hel"
    with Clock() as clock:
        chunks.close()  # type: ignore[attr-defined]
    assert clock.elapsed < 0.5  # not drained: the connection is dropped instead
    assert provider.complete("next").text == "echo: next"
    assert len({r.connection for r in server.requests}) == 2


def test_error_responses_keep_the_connection(one_server: LoopbackServer, make: Any) -> None:
    one_server.enqueue(one_server.error_reply(503, retry_after_ms=10), times=2)
    assert make(one_server).complete("hi").text == "echo: hi"
    assert len({r.connection for r in one_server.requests}) == 1


# -- proxies and netrc ----------------------------------------------------------------------------


def test_proxy_variables_are_ignored_for_loopback(
    server: LoopbackServer, make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{dead_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead)
    assert make(server).complete("through no proxy").text == "echo: through no proxy"


def test_proxy_variables_are_used_for_other_hosts(
    one_server: LoopbackServer, make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", one_server.url)  # the loopback server plays the proxy
    provider = make(one_server, base_url="http://api.example.invalid/v1")
    assert provider.complete("via proxy").text == "echo: via proxy"
    assert one_server.last_request.headers["Host"] == "api.example.invalid"


@pytest.mark.parametrize("host", ["127.0.0.1", "api.example.invalid"])
def test_netrc_does_not_replace_the_key(
    one_server: LoopbackServer, make: Any, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    netrc = os.path.join(os.environ["HOME"], ".netrc")
    with open(netrc, "w") as handle:
        handle.write(f"machine {host}\nlogin someone\npassword netrc-password-0000\n")
    os.chmod(netrc, 0o600)
    base_url = one_server.base_url
    if host != "127.0.0.1":
        monkeypatch.setenv("HTTP_PROXY", one_server.url)
        base_url = f"http://{host}/v1"
    assert make(one_server, base_url=base_url).complete("hi").text == "echo: hi"
    assert one_server.last_request.headers.get_all("Authorization") == [f"Bearer {KEY}"]


# -- pickling -------------------------------------------------------------------------------------


def test_provider_pickles_and_still_works(server: LoopbackServer, make: Any) -> None:
    provider = make(server)
    assert provider.complete("before").text == "echo: before"  # the pool exists now
    copy = pickle.loads(pickle.dumps(provider))
    try:
        assert repr(copy) == repr(provider)
        assert copy.complete("after").text == "echo: after"
        assert "".join(c.text for c in copy.stream("streamed")) == "echo: streamed"
    finally:
        copy.close()
    assert provider.complete("original").text == "echo: original"


# -- streaming latency ----------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_first_chunk_arrives_while_the_server_stalls(server: LoopbackServer, make: Any, framing: str) -> None:
    gate = server.gate()
    server.enqueue(server.stream_reply(["Hel", gate, "lo"], framing=framing))
    chunks = make(server).stream("hi", timeout=5)
    with Clock() as clock:
        first = next(chunks)  # a client that buffered would wait here until its 5 s timeout
    assert first.text == "Hel"
    assert clock.elapsed < 2.5
    assert gate.wait_reached(5)  # the server really is holding the rest back
    gate.open()
    rest = drain(chunks)
    assert "".join(c.text for c in rest) == "lo"
    assert rest[-1].finish_reason == "stop"


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_stream_without_its_terminator_is_an_error(server: LoopbackServer, make: Any, framing: str) -> None:
    server.enqueue(server.stream_reply(["Hel", "lo"], terminate=False, framing=framing))
    raises(ResponseFormatError, drain, make(server).stream("hi"))
    assert len(server.requests) == 1


@pytest.mark.parametrize(("status", "cls"), [(503, ServerError), (429, RateLimitError)])
def test_the_servers_requested_wait_is_on_the_error(
    one_server: LoopbackServer, make: Any, status: int, cls: type
) -> None:
    one_server.enqueue(one_server.error_reply(status, retry_after="7"))
    with pytest.raises(cls) as info:
        make(one_server, max_retries=0).complete("hi")
    assert info.value.retry_after == 7.0
