"""One connection of the loopback server: read each request, record it, and write the reply the
server chose, byte for byte, with its framing (length, chunked, close-delimited) and its faults
(gates, hangs, stalls, pauses, trickles, resets).

``LoopbackServer`` (``_server.py``) accepts the connection and decides the replies; this module
only speaks HTTP/1.1 on the socket it is given.
"""

from __future__ import annotations

import socket
import struct
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, List, Optional, Union, cast
from urllib.parse import parse_qsl, urlsplit

from ._reply import _HOST, Gate, RecordedHeaders, RecordedRequest, Reply

if TYPE_CHECKING:
    from ._server import LoopbackServer


class _Abort(Exception):
    """Stop answering: the connection is dropped (or was reset) without finishing the reply."""


class ConnectionHandler(BaseHTTPRequestHandler):
    """Serves one connection of ``loopback`` (the ``number``-th it accepted) until it closes."""

    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies
    server_version = "provider-kit-loopback"

    def __init__(self, request: socket.socket, loopback: LoopbackServer, number: int) -> None:
        self.loopback = loopback
        self.number = number
        super().__init__(request, (_HOST, 0), cast(Any, loopback))

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read ``server.requests``, not stderr."""

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except _Abort:
            self.close_connection = True

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self.send_error(400, "bad request framing")
            return
        target = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=target.path or "/",
            query=dict(parse_qsl(target.query, keep_blank_values=True)),
            headers=RecordedHeaders(list(self.headers.items())),
            body=body,
            connection=self.number,
        )
        self.loopback._record(request)
        try:
            reply = self.loopback._reply_for(request)
        except Exception as exc:  # a bug in a scripted callable or the simulator: say so on the wire
            self.loopback._record_error(exc)
            reply = Reply(500, body=f"loopback server error: {exc!r}")
        self._send(reply)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: List[bytes] = []
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip(), 16)  # ValueError if garbled
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self._read_exactly(size))
                self.rfile.readline(3)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self._read_exactly(length)

    def _read_exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) < size:
            raise ConnectionAbortedError("the client closed the connection mid-body")
        return data

    def _send(self, reply: Reply) -> None:
        if reply.hang:
            self._wait(reply.hang, "hang")
        if reply.reset:
            self._reset()
        latency = self.loopback.latency
        if latency:
            self._pause(latency)  # "thinking" before the status line, as a real model does
        custom_framing = any(k.lower() in ("content-length", "transfer-encoding") for k in reply.headers)
        parts = reply._parts
        self.send_response(reply.status, reply.reason)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if custom_framing:
            self.close_connection = True
        elif reply.framing == "length":
            self.send_header("Content-Length", str(len(reply.body_bytes)))
        elif reply.framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        if reply.stall_after_headers:
            self._wait(reply.stall_after_headers, "stall_after_headers")
        chunked = reply.framing == "chunked" and not custom_framing
        sent = 0
        for part in parts:
            if isinstance(part, Gate):
                self._wait(part, "gate")
            elif not isinstance(part, bytes):
                self._pause(part)
            else:
                if latency and sent:
                    self._pause(latency)  # between chunks: a stream that arrives piece by piece
                if reply.reset_after is not None and sent + len(part) >= reply.reset_after:
                    self._write(part[:reply.reset_after - sent], chunked, reply.trickle)
                    self._reset()
                self._write(part, chunked, reply.trickle)
                sent += len(part)
        if reply.reset_after is not None:
            self._reset()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _write(self, data: bytes, chunked: bool, trickle: Optional[float]) -> None:
        pieces = [data[i:i + 1] for i in range(len(data))] if trickle else [data]
        for index, piece in enumerate(pieces):
            if not piece:
                continue
            if index and trickle:
                self._pause(trickle)
            self.wfile.write(b"%X\r\n%s\r\n" % (len(piece), piece) if chunked else piece)

    def _pause(self, seconds: float) -> None:
        if self.loopback._closing.wait(seconds):
            raise _Abort

    def _wait(self, what: Union[bool, Gate], kind: str) -> None:
        """Block at a gate (or, for ``True``, until the server closes); abort if it never opens."""
        loopback = self.loopback
        if not isinstance(what, Gate):
            loopback._closing.wait(loopback.safety_timeout)
            raise _Abort
        with loopback._lock:
            if loopback._closing.is_set():
                raise _Abort
            loopback._gates.add(what)
        what._reached.set()
        if not what._opened.wait(loopback.safety_timeout):
            loopback._record_error(TimeoutError(f"{kind} not opened within {loopback.safety_timeout} s"))
            raise _Abort
        if loopback._closing.is_set():
            raise _Abort

    def _reset(self) -> None:
        """Abort the connection with a RST: SO_LINGER on with a zero timeout, then close."""
        self.loopback._forget(self.connection)
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        finally:
            self.connection.close()
            self.rfile.close()  # the last reference: the socket really closes now
        raise _Abort
