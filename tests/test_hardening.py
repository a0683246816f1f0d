"""Hardening (issue 5): faults, hostile bodies, huge bodies, redirects, secrets, concurrency and
resource hygiene, for every provider type, against real sockets.

What test_transport.py and the per-provider files already prove is not repeated here (the
deadline per fault with a 1.5 s bound, the Retry-After forms on OpenAI, the error table, a
stream without its terminator, the 32-thread test). This file adds what they leave open: the
same fault table for all three wire formats, deadline overruns measured to 100 ms, bodies of
100 MB, every surface swept for the key, 64 threads on a mixed registry, and counts of this
process's sockets and threads.

Every test runs with DEBUG logging on for every logger and fails if a record shows the key;
``raises()`` also checks the whole formatted traceback (causes and contexts included) of every
error it catches.
"""

from __future__ import annotations

import contextlib
import email.utils
import gc
import json
import logging
import os
import pickle
import socket
import threading
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import (
    Any,
    Callable,
    Dict,
    List,
    NamedTuple,
    Optional,
    Set,
    Tuple,
    Type,
)

import pytest
from _kinds import (
    API_PREFIXES,
    CHAT_PATHS,
    CLASSES,
    HEALTH_PATHS,
    KEY_HEADERS,
    KINDS,
    LOCAL_KIND,
    NDJSON_KINDS,
    OTHER_KIND,
    SOME_KIND,
    STREAM_TYPES,
    fast_retries,
    server_key,
)
from _support import KEY, assert_secret_free, error_texts, raises

from provider_kit import (
    ConfigError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderKitError,
    ProviderRegistry,
    ProviderSkippedWarning,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    load_config,
)
from provider_kit._transport import DEFAULT_POOL_MAXSIZE
from provider_kit.cli import main as cli_main
from provider_kit.providers._base import MAX_EVENT_BYTES, HTTPProvider
from provider_kit.testing import FakeProvider, LoopbackServer, Reply

#: Hang detection only: every call here is meant to end far sooner.
LATE = 5.0
MiB = 1024 * 1024

LINUX_PROC = os.path.isdir("/proc/self/fd") and os.path.exists("/proc/self/net/tcp")
needs_proc = pytest.mark.skipif(not LINUX_PROC, reason="counts sockets through Linux's /proc")


# -- fixtures and helpers -------------------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("no_key_in_logs")  # every test: the key in no log record


def consume(mode: str, provider: HTTPProvider, received: Optional[List[str]] = None, **kwargs: Any) -> Any:
    """Run one call of ``mode``; a stream's texts are appended to ``received`` as they come."""
    if mode == "complete":
        return provider.complete("hi", **kwargs).text
    if mode == "health":
        return provider.health_check(**kwargs)
    texts = received if received is not None else []
    for chunk in provider.stream("hi", **kwargs):
        texts.append(chunk.text)
    return "".join(texts)


def dead_port() -> int:
    """A port that was bound and closed again: connecting is refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def retry_records(caplog: pytest.LogCaptureFixture) -> List[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "provider_kit" and "retrying" in r.getMessage()]


def body_for(server: LoopbackServer, mode: str) -> Tuple[bytes, str]:
    """A well-formed 200 body for ``mode`` on ``server``'s protocol, and its content type."""
    if mode == "stream":
        return server.stream_reply(["Hel", "lo"]).body_bytes, STREAM_TYPES[str(server.protocol)]
    return server.completion_reply("Hello").body_bytes, "application/json"


def path_for(kind: str, mode: str) -> str:
    return HEALTH_PATHS[kind] if mode == "health" else CHAT_PATHS[kind]


# -- /proc: this process's sockets and threads ----------------------------------------------------


def socket_inodes() -> Set[int]:
    """The inodes of every socket this process holds a descriptor for."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # a descriptor closed since listdir
            link = os.readlink(f"/proc/self/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(int(link[len("socket:["):-1]))
    return inodes


def tcp_ports() -> Dict[int, Tuple[int, int]]:
    """Socket inode -> (local port, remote port), for every TCP socket in this network namespace."""
    table: Dict[int, Tuple[int, int]] = {}
    for name in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with contextlib.suppress(OSError):
            with open(name) as handle:
                lines = handle.read().splitlines()[1:]
            for line in lines:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], int(fields[9])
                if inode:
                    table[inode] = (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16))
    return table


def client_sockets(port: int) -> Set[int]:
    """This process's sockets connected *to* ``port``: the client side of its connections."""
    table = tcp_ports()
    return {inode for inode in socket_inodes() if table.get(inode, (0, 0))[1] == port}


def own_sockets(server_port: int) -> Set[int]:
    """This process's sockets, less the loopback server's own (those bound to its port)."""
    table = tcp_ports()
    return {inode for inode in socket_inodes() if table.get(inode, (0, 0))[0] != server_port}


def non_server_threads() -> Set[threading.Thread]:
    return {t for t in threading.enumerate() if not t.name.startswith("loopback-")}


# =================================================================================================
# 1. Faults, one table for every provider type
# =================================================================================================

MAX_RETRIES = 3


class Fault(NamedTuple):
    """One fault: how the server plays it, and what each mode must do about it.

    ``outcome[mode]`` is ``(error class or None for success, text in the message or the health
    error, requests the server sees or None when no server is involved)``.
    """

    script: Callable[[LoopbackServer, str, str], None]  # (server, kind, mode)
    outcome: Dict[str, Tuple[Optional[Type[ProviderError]], str, Optional[int]]]
    base_url: Optional[Callable[[str], str]] = None  # kind -> an address with no server
    partial: str = ""  # what a stream delivers before the fault


def _storm(server: LoopbackServer, kind: str, mode: str) -> None:
    # Every Retry-After form in one storm: milliseconds, zero seconds, an HTTP date in the past.
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    for reply in (
        server.error_reply(429, retry_after_ms=1),
        server.error_reply(429, retry_after=0),
        server.error_reply(429, retry_after=past),
    ):
        server.enqueue(reply, path=path_for(kind, mode))


def _persistent_503(server: LoopbackServer, kind: str, mode: str) -> None:
    reply = server.error_reply(503, retry_after_ms=1)
    server.enqueue(reply, path=path_for(kind, mode), times=MAX_RETRIES + 2)


def _reset_before_status(server: LoopbackServer, kind: str, mode: str) -> None:
    server.enqueue(Reply(reset=True), path=path_for(kind, mode), times=MAX_RETRIES + 2)


def _reset_mid_body(server: LoopbackServer, kind: str, mode: str) -> None:
    body, content_type = body_for(server, mode)
    reply = Reply(200, body=body, content_type=content_type, reset_after=10)
    server.enqueue(reply, path=path_for(kind, mode), times=MAX_RETRIES + 2)


def _reset_after_first_event(server: LoopbackServer, kind: str, mode: str) -> None:
    reply = server.stream_reply(["Hel", "lo", " world"])
    events = [part for part in reply._parts if isinstance(part, bytes)]
    through_hel = next(i for i, event in enumerate(events) if b"Hel" in event) + 1
    reply.reset_after = sum(len(event) for event in events[:through_hel]) + 5  # inside the next event
    server.enqueue(reply, path=path_for(kind, mode))


def _no_server(server: LoopbackServer, kind: str, mode: str) -> None:
    pass


def _refused_url(kind: str) -> str:
    return f"http://127.0.0.1:{dead_port()}" + API_PREFIXES[kind]


def _unresolvable_url(kind: str) -> str:
    # RFC 6761: .invalid never resolves. conftest's loopback guard answers as a resolver would
    # (socket.gaierror), so no DNS query leaves the machine.
    return "http://provider-kit-hardening.invalid" + API_PREFIXES[kind]


ATTEMPTS = MAX_RETRIES + 1
FAULTS: Dict[str, Fault] = {
    "429-storm-then-success": Fault(_storm, {
        "complete": (None, "echo: hi", 4),
        "stream": (None, "echo: hi", 4),
        "health": (RateLimitError, "error:", 1),  # a health check makes one attempt
    }),
    "persistent-503-exhausts-retries": Fault(_persistent_503, {
        "complete": (ServerError, "HTTP 503", ATTEMPTS),
        "stream": (ServerError, "HTTP 503", ATTEMPTS),
        "health": (ServerError, "HTTP 503", 1),
    }),
    "reset-before-the-status-line": Fault(_reset_before_status, {
        "complete": (ProviderConnectionError, "reset", ATTEMPTS),
        "stream": (ProviderConnectionError, "reset", ATTEMPTS),
        "health": (ProviderConnectionError, "unreachable:", 1),
    }),
    "reset-mid-body": Fault(_reset_mid_body, {
        "complete": (ProviderConnectionError, "reset", ATTEMPTS),  # the body is read inside the retry
        "stream": (ProviderConnectionError, "reset", 1),  # never retried once the 2xx began
        "health": (ProviderConnectionError, "unreachable:", 1),
    }),
    "reset-mid-stream": Fault(_reset_after_first_event, {
        "stream": (ProviderConnectionError, "reset", 1),
    }, partial="Hel"),
    "connection-refused": Fault(_no_server, {
        "complete": (ProviderConnectionError, "connection refused", None),
        "stream": (ProviderConnectionError, "connection refused", None),
        "health": (ProviderConnectionError, "unreachable: cannot reach 127.0.0.1", None),
    }, base_url=_refused_url),
    "dns-failure": Fault(_no_server, {
        "complete": (ProviderConnectionError, "could not be resolved", None),
        "stream": (ProviderConnectionError, "could not be resolved", None),
        "health": (ProviderConnectionError, "unreachable: cannot reach provider-kit-hardening.invalid", None),
    }, base_url=_unresolvable_url),
}
FAULT_CASES = [
    pytest.param(name, mode, id=f"{name}-{mode}") for name, fault in FAULTS.items() for mode in fault.outcome
]


@pytest.mark.parametrize("fault_name, mode", FAULT_CASES)
def test_fault_for_every_provider_type(
    server: LoopbackServer, kind: str, make: Any, no_key_in_logs: Any, fault_name: str, mode: str
) -> None:
    fault = FAULTS[fault_name]
    error_class, says, attempts = fault.outcome[mode]
    fault.script(server, kind, mode)
    options: Dict[str, Any] = {"max_retries": MAX_RETRIES}
    if fault.base_url is not None:
        options["base_url"] = fault.base_url(kind)
    provider = fast_retries(make(server, **options))
    received: List[str] = []
    started = time.monotonic()
    if mode == "health":
        status = provider.health_check(timeout=LATE)
        assert status.ok is (error_class is None)
        assert status.error is not None and says in status.error
        assert_secret_free(str(status), repr(status), json.dumps(status.to_dict()))
    elif error_class is None:
        assert consume(mode, provider, received, timeout=LATE) == says
    else:
        error = raises(error_class, consume, mode, provider, received, timeout=LATE)
        assert says in str(error)
        assert error.provider == provider.name
        assert "".join(received) == fault.partial
    assert time.monotonic() - started < LATE
    if attempts is not None:
        assert len(server.requests) == attempts
    elif mode != "health":  # nothing to count on a server: the retries show in the DEBUG log
        assert len(retry_records(no_key_in_logs)) == MAX_RETRIES


# =================================================================================================
# 2. Deadlines: the overrun, measured
# =================================================================================================

DEADLINE = 0.5
OVERRUN_LIMIT = 0.1


def _fault_reply(server: LoopbackServer, mode: str, fault: str) -> Reply:
    body, content_type = body_for(server, mode)
    if fault == "trickle":
        assert len(body) * 0.02 > 4 * DEADLINE  # trickled, no answer could finish in time
        # For a stream, even the first event (over 25 bytes) cannot arrive in time.
        return Reply(200, chunks=[body], content_type=content_type, trickle=0.02)
    return Reply(200, chunks=[body], content_type=content_type, hang=fault == "hang",
                 stall_after_headers=fault == "stall_after_headers")


@pytest.mark.parametrize("fault", ["hang", "stall_after_headers", "trickle"])
def test_deadline_overrun_is_under_100_ms_with_retries_on(make: Any, fault: str) -> None:
    """Every provider type and call at once, each against its own server: a 503 first (so a
    retry really happens inside the deadline), then the fault on every further attempt."""
    calls = [(kind, mode) for kind in KINDS for mode in ("complete", "stream", "health")]
    outcomes: Dict[Tuple[str, str], Tuple[Any, float]] = {}
    with contextlib.ExitStack() as stack:
        servers = {call: stack.enter_context(LoopbackServer(call[0], api_key=KEY)) for call in calls}
        providers = {call: make(servers[call], max_retries=2) for call in calls}
        for (_, mode), server in servers.items():
            if mode != "health":  # a health check makes one attempt: no retry to give it
                server.enqueue(server.error_reply(503, retry_after_ms=50))
            server.enqueue(_fault_reply(server, mode, fault), times=3)
        start = threading.Barrier(len(calls))

        def run(call: Tuple[str, str]) -> None:
            start.wait(LATE)
            started = time.monotonic()
            try:
                result: Any = consume(call[1], providers[call], timeout=DEADLINE)
            except Exception as exc:
                result = exc
            outcomes[call] = (result, time.monotonic() - started)

        threads = [threading.Thread(target=run, args=(call,)) for call in calls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(LATE)
        request_counts = {call: len(server.requests) for call, server in servers.items()}
    assert sorted(outcomes) == sorted(calls)
    for (kind, mode), (result, elapsed) in outcomes.items():
        if mode == "health":
            assert not result.ok and result.error.startswith("timeout:"), (kind, result)
        else:
            assert isinstance(result, ProviderTimeoutError), (kind, mode, result)
            assert_secret_free(*error_texts(result))
            assert request_counts[(kind, mode)] == 2, (kind, mode)  # the 503, then the fault
        overrun = elapsed - DEADLINE
        assert overrun > -0.02, (kind, mode, "ended early", elapsed)
        assert overrun < OVERRUN_LIMIT, (kind, mode, f"overran by {overrun * 1000:.0f} ms")


# =================================================================================================
# 3. Hostile bodies through the real HTTP path
# =================================================================================================

HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n"
    + "<!-- a padding comment some proxies add -->\r\n" * 200 + "</body>\r\n</html>\r\n"
)


@pytest.mark.parametrize("mode", ["complete", "stream", "health"])
def test_html_502_from_a_proxy(server: LoopbackServer, kind: str, make: Any, mode: str) -> None:
    server.enqueue(Reply(502, body=HTML_502, content_type="text/html"), times=3)
    provider = fast_retries(make(server, max_retries=2))
    if mode == "health":
        status = provider.health_check()
        assert not status.ok and "502 Bad Gateway" in str(status.error)
        assert len(str(status.error)) < 400
        assert len(server.requests) == 1
        return
    error = raises(ServerError, consume, mode, provider)
    assert error.status_code == 502
    assert "502 Bad Gateway" in str(error) and "<html>" not in str(error)
    assert len(str(error)) < 400  # an excerpt, not the page
    assert len(server.requests) == 3  # a 502 is retried


@pytest.mark.parametrize("mode", ["complete", "stream", "health"])
def test_empty_200(server: LoopbackServer, kind: str, make: Any, mode: str) -> None:
    content_type = STREAM_TYPES[kind] if mode == "stream" else "application/json"
    server.enqueue(Reply(200, body=b"", content_type=content_type))
    provider = make(server)
    if mode == "health":
        status = provider.health_check()
        assert not status.ok and "empty body" in str(status.error)
        return
    error = raises(ResponseFormatError, consume, mode, provider)
    assert ("empty body" if mode == "complete" else "ended before") in str(error)
    assert len(server.requests) == 1  # a malformed 2xx is not retried


@pytest.mark.parametrize("where", ["first-event", "later-event"])
def test_invalid_utf8_in_a_stream(server: LoopbackServer, kind: str, make: Any, where: str) -> None:
    good = [part for part in server.stream_reply(["Hel", "lo"])._parts if isinstance(part, bytes)]
    hel = next(i for i, event in enumerate(good) if b"Hel" in event)
    bad = good[hel].replace(b"Hel", b"H\xff\xfel")  # the same event with two bytes UTF-8 forbids
    if where == "first-event":
        parts = [*good[:hel], bad, *good[hel + 1:]]
    else:
        parts = [*good[: hel + 1], bad, *good[hel + 1:]]
    server.enqueue(Reply(200, chunks=parts, content_type=STREAM_TYPES[kind]))
    received: List[str] = []
    error = raises(ResponseFormatError, consume, "stream", make(server), received)
    assert "UTF-8" in str(error)
    assert "".join(received) == ("" if where == "first-event" else "Hel")


@pytest.mark.parametrize("mode", ["complete", "stream"])
def test_invalid_utf8_in_an_error_body(server: LoopbackServer, kind: str, make: Any, mode: str) -> None:
    server.enqueue(Reply(500, body=b'{"error": "bad \xff\xfe bytes"}', content_type="application/json"))
    error = raises(ServerError, consume, mode, make(server, max_retries=0))
    assert "bad" in str(error) and "bytes" in str(error) and error.status_code == 500


def test_invalid_utf8_in_a_json_body(server: LoopbackServer, kind: str, make: Any) -> None:
    body = server.completion_reply("Hello").body_bytes.replace(b"Hello", b"He\xffllo")
    server.enqueue(Reply(200, body=body, content_type="application/json"))
    raises(ResponseFormatError, make(server).complete, "hi")


def _split_data_lines(body: bytes) -> bytes:
    """Each ``data: {json}`` line as two ``data:`` lines: SSE joins them with a newline, which
    is whitespace inside JSON, so the event is the same."""
    lines = []
    for line in body.split(b"\n"):
        if line.startswith(b"data: {") and b"," in line:
            head, tail = line.split(b",", 1)
            line = head + b",\ndata: " + tail
        lines.append(line)
    return b"\n".join(lines)


@pytest.mark.parametrize("kind", [kind for kind in KINDS if kind not in NDJSON_KINDS])
def test_multi_line_data_events(server: LoopbackServer, make: Any) -> None:
    body = server.stream_reply(["Hel", "lo", " wor", "ld"]).body_bytes
    split = _split_data_lines(body)
    assert split.count(b"\ndata: ") > body.count(b"\ndata: ")  # really multi-line
    server.enqueue(Reply(200, chunks=[split], content_type="text/event-stream"))
    chunks = list(make(server).stream("hi"))
    assert [c.text for c in chunks] == ["Hel", "lo", " wor", "ld", ""]
    assert chunks[-1].finish_reason == "stop"


def _awkward(kind: str, body: bytes) -> bytes:
    """The same events with CRLF line ends and, for SSE, comment lines between the events."""
    if kind in NDJSON_KINDS:
        return body.replace(b"\n", b"\r\n")
    return b": keep-alive\n\n" + body.replace(b"\n\n", b"\n\n: keep-alive\n\n").replace(b"\n", b"\r\n")


@pytest.mark.parametrize("mode", ["complete", "stream"])
def test_one_byte_per_http_chunk(server: LoopbackServer, kind: str, make: Any, mode: str) -> None:
    if mode == "stream":
        body = _awkward(kind, server.stream_reply(["Hel", "lo", " \u00e9\U0001f44b", "!"]).body_bytes)
        content_type = STREAM_TYPES[kind]
    else:
        body = server.completion_reply("Hello \u00e9\U0001f44b!").body_bytes
        content_type = "application/json"
    server.enqueue(Reply(200, chunks=[body[i:i + 1] for i in range(len(body))], content_type=content_type))
    provider = make(server)
    if mode == "complete":
        assert provider.complete("hi").text == "Hello \u00e9\U0001f44b!"
    else:
        chunks = list(provider.stream("hi"))
        assert [c.text for c in chunks] == ["Hel", "lo", " \u00e9\U0001f44b", "!", ""]
        assert chunks[-1].finish_reason == "stop"
    assert provider.complete("after").text == "echo: after"  # the connection was left clean
    assert len({r.connection for r in server.requests}) == 1


# =================================================================================================
# 4. Bodies far larger than any real completion
# =================================================================================================

FLOOD_BYTES = 100 * 1000 * 1000


class Flood:
    """A bare HTTP/1.1 server on 127.0.0.1 answering one request with ``head`` and then
    ``block`` repeated up to ``total`` bytes, as fast as the client reads. The body is never
    built: one block is sent again and again, so the server allocates nothing per byte.
    ``framing`` is "chunked" (no length) or "length" (``Content-Length: total``).
    """

    def __init__(self, *, head: bytes, block: bytes, content_type: str, framing: str,
                 total: int = FLOOD_BYTES) -> None:
        self.head, self.block, self.total, self.framing = head, block, total, framing
        self.content_type = content_type
        self.sent = 0
        self.errors: List[BaseException] = []
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._thread = threading.Thread(target=self._serve, name="flood-server", daemon=True)

    def __enter__(self) -> Flood:
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._thread.join(LATE)
        self._listener.close()
        assert not self._thread.is_alive()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with connection:
                try:
                    self._answer(connection)
                except OSError:
                    pass  # the client stopped reading and closed: what the tests want
                except Exception as exc:  # pragma: no cover - a bug in this helper
                    self.errors.append(exc)
            return

    def _answer(self, connection: socket.socket) -> None:
        connection.settimeout(LATE)
        request = b""
        while b"\r\n\r\n" not in request:
            data = connection.recv(65536)
            if not data:
                return
            request += data
        head, _, body = request.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += connection.recv(65536)
        framing = (b"Transfer-Encoding: chunked" if self.framing == "chunked"
                   else b"Content-Length: %d" % self.total)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + self.content_type.encode()
                           + b"\r\n" + framing + b"\r\n\r\n")
        chunked = self.framing == "chunked"
        frame = (b"%X\r\n" % len(self.block) + self.block + b"\r\n") if chunked else self.block
        if self.head:  # an empty chunk would end a chunked body
            connection.sendall((b"%X\r\n" % len(self.head) + self.head + b"\r\n") if chunked else self.head)
        self.sent = len(self.head)
        while self.sent + len(self.block) <= self.total and not self._stop.is_set():
            connection.sendall(frame)
            self.sent += len(self.block)
        if chunked:
            connection.sendall(b"0\r\n\r\n")


def base_url_of(kind: str, port: int) -> str:
    return f"http://127.0.0.1:{port}" + API_PREFIXES[kind]


def peak_memory(call: Callable[[], Any]) -> int:
    """The peak of memory Python allocated (all threads) while ``call`` ran."""
    gc.collect()
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def json_head(kind: str) -> bytes:
    """A completion body of ``kind`` up to the opening quote of its text: what the simulator
    sends before the answer's text."""
    body = LoopbackServer(kind).completion_reply("TEXT-STARTS-HERE").body_bytes
    head = body.split(b"TEXT-STARTS-HERE")[0]
    assert head.endswith(b'"')
    return head



@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_a_100_mb_completion_is_refused_in_bounded_memory(kind: str, make: Any, framing: str) -> None:
    """A JSON string that goes on for 100 MB. With a length the refusal comes before a byte
    of the body is read; without one, at the default cap of 32 MiB."""
    with Flood(head=json_head(kind), block=b"x" * 65536, content_type="application/json",
               framing=framing) as flood:
        provider = make(None, kind=kind, base_url=base_url_of(kind, flood.port), max_retries=0)
        errors: List[BaseException] = []
        started = time.monotonic()
        peak = peak_memory(
            lambda: errors.append(raises(ResponseFormatError, provider.complete, "hi", timeout=LATE))
        )
        elapsed = time.monotonic() - started
        provider.close()
    assert flood.errors == []
    assert "larger than 33554432 bytes" in str(errors[0])
    assert peak < 40 * MiB, f"peak {peak / MiB:.1f} MiB"
    # The client stopped reading early: the server got nowhere near 100 MB.
    assert flood.sent < 50 * MiB
    if framing == "length":
        assert peak < 4 * MiB  # nothing was buffered at all
    assert elapsed < LATE


STREAM_FLOODS = {
    # One SSE line that never ends: the line cap (16 MiB) stops it.
    "sse-endless-line": (b"data: ", b"x" * 65536, "text/event-stream", "longer than"),
    # Endless data: lines of one event that never ends: the event budget stops it.
    "sse-endless-event": (
        b"", (b"data: " + b"x" * 1000 + b"\n") * 64, "text/event-stream", "without a complete event"
    ),
    # One NDJSON line that never ends.
    "ndjson-endless-line": (
        b'{"message": {"content": "', b"x" * 65536, "application/x-ndjson", "longer than"
    ),
}
STREAM_FLOOD_CASES = [
    pytest.param(kind, flood, id=f"{kind}-{flood}")
    for kind in KINDS for flood in STREAM_FLOODS if flood.startswith("ndjson") == (kind in NDJSON_KINDS)
]


@pytest.mark.parametrize("kind, flood_name", STREAM_FLOOD_CASES)
def test_a_stream_that_never_completes_an_event_is_refused_in_bounded_memory(
    kind: str, flood_name: str, make: Any
) -> None:
    head, block, content_type, says = STREAM_FLOODS[flood_name]
    with Flood(head=head, block=block, content_type=content_type, framing="chunked") as flood:
        provider = make(None, kind=kind, base_url=base_url_of(kind, flood.port), max_retries=0)
        errors: List[BaseException] = []
        peak = peak_memory(
            lambda: errors.append(raises(ResponseFormatError, consume, "stream", provider, timeout=LATE))
        )
        provider.close()
    assert flood.errors == []
    assert says in str(errors[0])
    assert peak < 40 * MiB, f"peak {peak / MiB:.1f} MiB"
    assert flood.sent < MAX_EVENT_BYTES + 16 * MiB  # stopped at the cap, not at 100 MB


# =================================================================================================
# 5. Redirects: never followed, never with the secret
# =================================================================================================

@pytest.mark.parametrize("mode", ["complete", "stream", "health"])
@pytest.mark.parametrize("target", ["same-host", "other-host"])
@pytest.mark.parametrize("kind", KINDS)
def test_redirects_are_refused_for_every_auth_style(make: Any, kind: str, target: str, mode: str) -> None:
    # Every type's own way of sending the key (a bearer token, x-api-key...), or none at all
    # for a type that needs no key.
    key = KEY if CLASSES[kind].REQUIRES_KEY else None
    header = KEY_HEADERS[kind] if key else None
    with LoopbackServer(kind, api_key=key) as server:
        path = path_for(kind, mode)
        host = "127.0.0.1" if target == "same-host" else "localhost"  # localhost: another host to requests
        location = server.url_for(path, host=host) + "?redirected=1"
        server.enqueue(Reply.redirect(location, 307), path=path)
        provider = make(server, kind=kind, api_key=key)
        if mode == "health":
            status = provider.health_check()
            assert not status.ok and location in str(status.error)
        else:
            error = raises(InvalidRequestError, consume, mode, provider)
            assert error.status_code == 307 and location in str(error) and "refused" in str(error)
        seen = server.requests
    assert len(seen) == 1  # never followed, to this host or any other
    assert all("redirected" not in r.query for r in seen)
    if header is not None:
        assert KEY in seen[0].headers.get(header, "")  # the key went only where it was configured


def test_the_docs_say_that_redirects_are_refused() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "errors.rst").read_text(encoding="utf-8")
    section = page.split("Timeouts and retries", 1)[1]
    assert "Redirects are never followed" in section and "InvalidRequestError" in section


# =================================================================================================
# 6. One sweep of every surface for the key
# =================================================================================================


def _sweep_config(tmp_path: Path, servers: Dict[str, LoopbackServer], refused: int) -> Path:
    path = tmp_path / "provider_kit.toml"
    path.write_text(
        f"""
default_provider = "{SOME_KIND}"

[providers.{SOME_KIND}]
base_url = "{servers[SOME_KIND].base_url}"
api_key = "{KEY}"

[providers.{OTHER_KIND}]
base_url = "{servers[OTHER_KIND].base_url}"
api_key_env = "HARDENING_KEY"

[providers.local]
type = "{LOCAL_KIND}"
base_url = "{servers[LOCAL_KIND].base_url}"
api_key = "{KEY}"

[providers.gateway]
type = "{SOME_KIND}"
base_url = "http://proxyuser:{KEY}@127.0.0.1:{refused}{API_PREFIXES[SOME_KIND]}"
api_key = "{KEY}"
max_retries = 0

[providers.keyheader]
type = "{SOME_KIND}"
base_url = "{servers[SOME_KIND].base_url}"
require_api_key = false
headers = {{ "api-key" = "{KEY}", "X-Title" = "hardening" }}

[providers.broken]
type = "{OTHER_KIND}"
api_key_env = "HARDENING_UNSET_KEY"
headers = {{ "api-key" = "{KEY}" }}
""",
        encoding="utf-8",
    )
    return path


#: Mistakes in a table that holds the key: each refuses the whole file, and no message shows it.
_MISTAKES = [
    f'[providers.pasted]\ntype = "{SOME_KIND}"\napi_key_env = "{KEY}"\n',
    f'[providers.negative]\ntype = "{OTHER_KIND}"\napi_key = "{KEY}"\ntimeout = -1\n',
    f'[providers.typo]\ntype = "{SOME_KIND}"\napi_kye = "{KEY}"\n',
    f'[providers.listed]\ntype = "{SOME_KIND}"\napi_key = ["{KEY}"]\n',
]


def _sweep_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> List[str]:
    """Every text the mistakes produce: load_config's and from_config's errors, the CLI's output."""
    shown: List[str] = []
    for number, table in enumerate(_MISTAKES):
        path = tmp_path / f"mistake{number}.toml"
        path.write_text(f'[providers.ok]\ntype = "{LOCAL_KIND}"\n' + table, encoding="utf-8")
        for build in (load_config, ProviderRegistry.from_config):
            with pytest.raises(ConfigError) as info:
                build(path)
            assert str(path) in str(info.value)
            shown += error_texts(info.value)
        for argv in (["providers"], ["config"], ["health"], ["--debug", "health"]):
            assert cli_main([*argv, "--config", str(path)]) == 2
            captured = capsys.readouterr()
            shown.append(captured.out + captured.err)
    return shown


def _script_key_echoes(servers: Dict[str, LoopbackServer]) -> None:
    """Servers that quote the key back in every way a real service (or proxy) might."""
    for kind in (SOME_KIND, OTHER_KIND):
        server = servers[kind]
        chat = CHAT_PATHS[kind]
        server.enqueue(server.error_reply(401, f"Incorrect API key provided: {KEY}."), path=chat)
        server.enqueue(server.error_reply(500, f"internal error for key {KEY}"), path=chat, times=3)
        server.enqueue(Reply(502, body=f"<html><h1>502</h1>{KEY}</html>", content_type="text/html"),
                       path=chat, times=3)
        server.enqueue(Reply(200, body=f"not json {KEY}", content_type="application/json"), path=chat)
        failing = server.stream_reply(["Hel", "lo"], error_after=1, error_message=f"bad key {KEY}")
        server.enqueue(failing, path=chat)
        server.enqueue(Reply(200, chunks=[f'data: {{"bad json {KEY}\n\n'.encode()],
                             content_type="text/event-stream"), path=chat)
        server.enqueue(Reply(200, chunks=[f"data: {KEY}\xff\n\n".encode("latin-1")],
                             content_type="text/event-stream"), path=chat)
        server.enqueue(Reply.redirect(server.url_for(chat, host="localhost") + f"?key={KEY}"), path=chat)
        server.enqueue(server.error_reply(401, f"invalid key {KEY}"), path=HEALTH_PATHS[kind])
    local, chat = servers[LOCAL_KIND], CHAT_PATHS[LOCAL_KIND]
    broken_event = ("" if LOCAL_KIND in NDJSON_KINDS else "data: ") + f'{{"bad json {KEY}\n\n'
    local.enqueue(Reply(200, json={"error": f"bad key {KEY}"}), path=chat)
    local.enqueue(Reply(200, chunks=[broken_event.encode()], content_type=STREAM_TYPES[LOCAL_KIND]), path=chat)
    local.enqueue(Reply(404, body=f"404 page not found {KEY}"), path=HEALTH_PATHS[LOCAL_KIND])


def test_no_surface_ever_shows_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    no_key_in_logs: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("HARDENING_KEY", KEY)
    shown: List[str] = []  # everything printable, checked at the end
    with contextlib.ExitStack() as stack:
        servers = {kind: stack.enter_context(LoopbackServer(kind, api_key=server_key(kind, KEY)))
                   for kind in (SOME_KIND, OTHER_KIND, LOCAL_KIND)}
        config_path = _sweep_config(tmp_path, servers, dead_port())

        # -- configuration objects, the registry, the providers, pickled copies
        config = load_config(config_path)
        shown += [repr(config), str(config), json.dumps(config.as_dict(mask=True), default=str)]
        shown += [repr(spec) for spec in config.providers.values()]
        with pytest.warns(ProviderSkippedWarning) as skip_warnings:
            registry = stack.enter_context(ProviderRegistry.from_config(config_path))
        shown += [str(warning.message) for warning in skip_warnings]
        assert sorted(registry) == sorted([SOME_KIND, OTHER_KIND, "gateway", "keyheader", "local"])
        assert sorted(registry.skipped) == ["broken"]
        shown += [repr(registry), str(registry), repr(registry.skipped)]
        for name in registry:
            provider: Any = registry[name]
            shown += [repr(provider), str(provider), json.dumps(provider.describe(), default=str)]
            shown.append(repr(provider._transport))
        pickled = pickle.dumps(registry)  # the bytes carry the key, as documented; prints must not
        copy = pickle.loads(pickled)
        shown += [repr(copy), repr(copy[SOME_KIND]), repr(copy["gateway"])]
        copy.close()

        # -- every error the servers can provoke, through providers and through the registry
        _script_key_echoes(servers)
        errors: List[BaseException] = []

        def attempt(call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
            try:
                call(*args, **kwargs)
            except ProviderKitError as exc:
                errors.append(exc)
                errors.extend(getattr(exc, "errors", []) or [])
            else:
                raise AssertionError(f"{call} should have failed")

        for name in registry:
            fast_retries(registry[name])  # type: ignore[arg-type]
        for name in (SOME_KIND, OTHER_KIND):
            provider = registry[name]
            for _ in range(4):  # 401, 500s, 502s, a non-JSON 200
                attempt(provider.complete, "hi", timeout=LATE)
            for _ in range(3):  # a mid-stream error, a broken event, an invalid UTF-8 event
                attempt(lambda p=provider: list(p.stream("hi", timeout=LATE)))
            attempt(provider.complete, "hi")  # the redirect
        attempt(registry["local"].complete, "hi")
        attempt(lambda: list(registry["local"].stream("hi")))
        attempt(registry["gateway"].complete, "hi", timeout=LATE)
        attempt(lambda: list(registry["gateway"].stream("hi", timeout=LATE)))
        attempt(registry.complete, "hi", provider="gateway")
        # The key given as an extra "api-key" header (Azure's way) is redacted like any other.
        echo = servers[SOME_KIND].error_reply(400, f"bad api-key {KEY}")
        servers[SOME_KIND].enqueue(echo, path=CHAT_PATHS[SOME_KIND])
        attempt(registry["keyheader"].complete, "hi")
        assert "bad api-key ***" in str(errors[-1])
        servers[SOME_KIND].enqueue(Reply(200, json={}, hang=True), path=CHAT_PATHS[SOME_KIND])
        attempt(registry[SOME_KIND].complete, "hi", timeout=0.2)
        attempt(registry.get, "broken")  # skipped: its reason is in the message
        assert len(errors) >= 20
        assert {type(e).__name__ for e in errors} >= {
            "AuthenticationError", "ServerError", "ResponseFormatError", "InvalidRequestError",
            "ProviderConnectionError", "ProviderTimeoutError", "UnknownProviderError",
        }
        for error in errors:
            shown += error_texts(error)
        assert any("***" in str(e) for e in errors)  # the redaction really had something to hide

        # -- health statuses and the report, in every rendering
        report = registry.health_check_all(timeout=2)
        assert not report.ok
        shown += [str(report), repr(report), report._repr_html_(), json.dumps(report.to_dict())]
        for status in report.values():
            shown += [str(status), repr(status), str(status.error), status._repr_html_()]

        # -- the command line, configured by the same file; --debug prints tracebacks
        other, chat = servers[OTHER_KIND], CHAT_PATHS[OTHER_KIND]
        other.enqueue(Reply(200, chunks=[f'event: ping\ndata: {{"bad json {KEY}\n\n'.encode()],
                            content_type="text/event-stream"), path=chat)
        failing = other.stream_reply(["Hel", "lo"], error_after=1, error_message=f"bad key {KEY}")
        other.enqueue(failing, path=chat)
        root = logging.getLogger()
        saved_handlers, saved_level = list(root.handlers), root.level
        outputs: Dict[str, Tuple[int, str]] = {}
        try:
            for argv in (
                ["providers"], ["config"], ["health", "--json", "--timeout", "2"],
                ["complete", "-p", "gateway", "hi"], ["complete", "--debug", "-p", "gateway", "hi"],
                ["complete", "--debug", "--stream", "-p", OTHER_KIND, "hi"],
                ["complete", "--stream", "-p", OTHER_KIND, "hi"],
            ):
                code = cli_main([*argv, "--config", str(config_path)])
                captured = capsys.readouterr()
                outputs[" ".join(argv)] = (code, captured.out + captured.err)
        finally:
            root.handlers[:] = saved_handlers
            root.setLevel(saved_level)
        assert [code for code, _ in outputs.values()] == [0, 0, 1, 1, 1, 1, 1]
        assert "gateway" in outputs["providers"][1] and "proxyuser:***@" in outputs["providers"][1]
        assert "Traceback" in outputs[f"complete --debug --stream -p {OTHER_KIND} hi"][1]
        shown += [text for _, text in outputs.values()]
        shown += _sweep_mistakes(tmp_path, capsys)

    # -- the sweep: nothing printable anywhere shows the key (log records: the autouse fixture,
    # which saw DEBUG records of every logger involved)
    assert {"urllib3.connectionpool", "provider_kit"} <= {r.name for r in no_key_in_logs.records}
    assert len(shown) > 100
    leaking = [text[:200] for text in shown if KEY in text]
    assert leaking == []
    assert KEY.encode() in pickled  # the one place the key may be, and it is there


# =================================================================================================
# 7. Concurrency: 64 threads on one registry of three provider types
# =================================================================================================


def test_64_threads_share_one_mixed_registry() -> None:
    names = KINDS
    with contextlib.ExitStack() as stack:
        servers = {kind: stack.enter_context(LoopbackServer(kind, api_key=KEY)) for kind in KINDS}
        registry = stack.enter_context(ProviderRegistry([
            CLASSES[kind](base_url=servers[kind].base_url, api_key=KEY) for kind in KINDS
        ]))
        threads_n = 64
        start = threading.Barrier(threads_n)
        results: Dict[int, List[Any]] = {}
        failures: List[BaseException] = []

        def work(n: int) -> None:
            try:
                start.wait(LATE)
                out: List[Any] = []
                for i in range(len(names)):
                    name = names[(n + i) % len(names)]  # each thread in its own order
                    completion = registry.complete(f"complete {n} {name}", provider=name, timeout=20)
                    out.append((completion.provider, completion.text))
                    text = "".join(c.text for c in registry[name].stream(f"stream {n} {name}", timeout=20))
                    out.append((name, text))
                out.append(registry.health_check_all(timeout=20).ok)
                results[n] = out
            except BaseException as exc:  # reported below: a thread must not die silently
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in threads)
        assert failures == []
        expected = {}
        for n in range(threads_n):
            rows: List[Any] = []
            for i in range(len(names)):
                name = names[(n + i) % len(names)]
                rows += [(name, f"echo: complete {n} {name}"), (name, f"echo: stream {n} {name}")]
            expected[n] = [*rows, True]
        assert results == expected
        for kind, server in servers.items():
            seen = server.requests
            assert len(seen) == threads_n * 3, kind  # complete, stream and one health check each
            # At most one connection per thread at a time ever reaches a server.
            assert len({r.connection for r in seen}) <= threads_n, kind
            if LINUX_PROC:  # and the pool keeps no more idle ones than its size
                assert len(client_sockets(server.port)) <= DEFAULT_POOL_MAXSIZE, kind
        assert all(server.errors == [] for server in servers.values())


# =================================================================================================
# 8. Hygiene: sockets and threads
# =================================================================================================


@needs_proc
@pytest.mark.parametrize("how", ["close", "with-block", "abandoned-stream"])
def test_no_socket_stays_open(server: LoopbackServer, kind: str, how: str) -> None:
    port = server.port
    before = own_sockets(port)
    assert client_sockets(port) == set()
    with warnings.catch_warnings(record=True) as seen_warnings:
        warnings.simplefilter("always")
        if how == "abandoned-stream":
            gate = server.gate()  # never opened: the stream is held half-way
            server.enqueue(server.stream_reply(["Hel", gate, "lo"]))
            provider = CLASSES[kind](base_url=server.base_url, api_key=KEY)
            chunks = provider.stream("hi", timeout=LATE)
            assert next(chunks).text == "Hel"
            assert len(client_sockets(port)) == 1  # the test can see the socket it expects gone
            del chunks  # abandoned, not closed: the generator's finaliser must release it
            gc.collect()
            assert client_sockets(port) == set()
            provider.close()
        else:
            provider = CLASSES[kind](base_url=server.base_url, api_key=KEY)
            with provider if how == "with-block" else contextlib.nullcontext(provider):
                assert provider.complete("one").text == "echo: one"
                assert "".join(c.text for c in provider.stream("two")) == "echo: two"
                assert provider.health_check().ok
                assert len(client_sockets(port)) == 1  # one kept-alive connection did it all
            if how == "close":
                provider.close()
            assert client_sockets(port) == set()
        del provider
        gc.collect()
    assert own_sockets(port) - before == set()
    assert [w for w in seen_warnings if issubclass(w.category, ResourceWarning)] == []


class _Overrunning(FakeProvider):
    """A health check that ends 0.2 s past the registry's deadline: it outlives the call."""

    def health_check(self, timeout: Any = None) -> Any:
        threading.Event().wait(float(timeout) + 0.4)
        return super().health_check(timeout=None)


def test_threads_of_a_timed_out_health_check_all_end_and_the_next_call_is_on_time(make: Any) -> None:
    timeout = 0.2
    baseline = non_server_threads()
    count_before = threading.active_count()
    with contextlib.ExitStack() as stack:
        servers = {kind: stack.enter_context(LoopbackServer(kind, api_key=KEY)) for kind in KINDS}
        for kind, server in servers.items():
            server.enqueue(Reply(200, json={}, hang=True), path=HEALTH_PATHS[kind], times=2)
        providers = [make(servers[kind]) for kind in KINDS]
        registry = ProviderRegistry([*providers, _Overrunning("overrunning")])
        for attempt in range(2):  # the second call is as punctual as the first
            started = time.monotonic()
            report = registry.health_check_all(timeout=timeout)
            elapsed = time.monotonic() - started
            assert elapsed < timeout + 0.2 + OVERRUN_LIMIT, (attempt, elapsed)  # the deadline and its grace
            assert report.unhealthy == sorted([*KINDS, "overrunning"])
            assert all(str(report[k].error).startswith("timeout:") for k in KINDS)
            assert report["overrunning"].error == f"timeout: no answer within {timeout!r} s"
            left = [t for t in threading.enumerate() if t.name.startswith("provider_kit-health-")]
            assert [t.name for t in left] != []  # the overrunning check's thread is still going
            for thread in left:  # each ends when its check returns, not later
                thread.join(LATE)
                assert not thread.is_alive(), thread.name
            assert time.monotonic() - started < timeout + 0.4 + 0.5
            assert non_server_threads() - baseline == set()
        registry.close()
    # Threads of earlier tests may have ended meanwhile; none of this test's may remain.
    assert non_server_threads() - baseline == set()
    assert threading.active_count() <= count_before


# -- a key quoted across the point where an excerpt is cut -------------------------------------


@pytest.mark.parametrize("offset", [0, 100, 115, 119, 195, 290])
@pytest.mark.parametrize("where", ["stream event", "error body", "2xx body"])
def test_no_part_of_a_key_survives_where_an_excerpt_is_cut(make, offset, where):
    padding = "x" * offset
    with LoopbackServer(SOME_KIND, api_key=KEY) as server:
        if where == "stream event":
            body = f"data: {padding}{KEY} not json\n\n".encode()
            server.enqueue(Reply(chunks=[body], content_type="text/event-stream"))
            provider = make(server, max_retries=0)
            error = raises(ResponseFormatError, consume, "stream", provider)
        elif where == "error body":
            server.enqueue(Reply(400, body=f"{padding}{KEY}{'y' * 400}"))
            error = raises(InvalidRequestError, make(server, max_retries=0).complete, "hi")
        else:
            server.enqueue(Reply(200, body=f"{padding}{KEY}", content_type="application/json"))
            error = raises(ResponseFormatError, make(server, max_retries=0).complete, "hi")
    for text in error_texts(error):
        for cut in range(8, len(KEY)):
            assert KEY[:cut] not in text, f"the first {cut} characters of the key leaked"
