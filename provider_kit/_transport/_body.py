"""Reading response bodies as bytes arrive, within a deadline: ``iter_raw`` for any body and
``StreamBody`` for the body of a streaming 2xx response."""

from __future__ import annotations

import contextlib
import socket
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Optional

import requests

from .._error_bodies import header_request_id
from .._retry import Deadline
from ._translate import FOREIGN_ERRORS

if TYPE_CHECKING:
    from ._client import Transport

#: The most bytes one read returns.
READ_SIZE = 65536
#: After a stream's end marker, at most this much more body and this long a wait are spent
#: reading to the end of the body so that its connection can be reused; beyond that it is closed.
DRAIN_MAX_BYTES = 64 * 1024
DRAIN_MAX_SECONDS = 0.05


class StreamBody:
    """The body of a streaming 2xx response, read as bytes arrive, within a gap deadline.

    The deadline limits the wait for each piece; the consumer calls ``deadline.restart()``
    whenever a whole event has arrived, so it bounds the first event and every gap between
    events rather than the whole stream.
    """

    def __init__(self, transport: Transport, response: requests.Response, deadline: Deadline) -> None:
        self.transport = transport
        self.response = response
        self.deadline = deadline
        self.request_id = header_request_id(response.headers)
        # One reader for every pass over the body (see body_reader).
        self._read = body_reader(response.raw, response.headers)

    def __iter__(self) -> Iterator[bytes]:
        with self.transport._translating(self.deadline):
            yield from iter_raw(self.response, self.deadline, self._read)

    @property
    def content_type(self) -> str:
        """The media type, lower case and without parameters; "" when the server sent none."""
        return self.response.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def read_all(self) -> bytes:
        """The rest of the body, for a server that answered a stream request with a whole
        document; bounded by the transport's ``max_response_bytes``.

        :raises ResponseFormatError: for a longer body.
        """
        transport = self.transport
        with transport._translating(self.deadline):
            return transport._read_body(self.response, self.deadline, transport.max_response_bytes, read=self._read)

    def close(self) -> None:
        self.response.close()

    def drain(self) -> None:
        """Read the little that follows a stream's end marker (such as a chunked body's last,
        empty chunk) so the connection goes back to the pool; closing a response with unread
        bytes would discard its connection. Gives up quietly past a small size or wait."""
        limit = Deadline(min(DRAIN_MAX_SECONDS, max(self.deadline.remaining(), 0.0)))
        size = 0
        try:
            for chunk in iter_raw(self.response, limit, self._read):
                size += len(chunk)
                if size > DRAIN_MAX_BYTES:
                    return
        except FOREIGN_ERRORS:
            return  # the connection is unusable; close() discards it

    def __enter__(self) -> StreamBody:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # Only a stream read to its end marker is drained: one abandoned half-way (an
        # exception, or GeneratorExit from a consumer that stopped early) may be long.
        if exc_type is None:
            self.drain()
        self.close()


def iter_raw(
    response: requests.Response, deadline: Deadline, read: Optional[Callable[[], bytes]] = None
) -> Iterator[bytes]:
    """Yield body bytes as soon as they arrive, never reading past ``deadline``.

    Before each read the socket's timeout is cut to the time left, so a server trickling one
    byte at a time cannot stretch the call past its deadline.

    :param read: the response's ``body_reader``, when the body is read in several passes (a
        stream, then its drain): one reader per response, see ``body_reader``.
    """
    raw = response.raw
    if read is None:
        read = body_reader(raw, response.headers)
    # ``HTTPResponse.connection`` is public in urllib3 1.x and 2 (None once the body is read):
    # its socket is looked up once, not before every read of a stream's events.
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    while True:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise socket.timeout("deadline passed while reading the body")
        # Only while the response holds its connection: once released, the socket is back in
        # the pool and may already be another thread's.
        if sock is not None and raw.connection is not None:
            _limit_next_read(sock, remaining)
        chunk = read()
        if not chunk:
            return
        yield chunk


def body_reader(raw: Any, headers: Mapping[str, str]) -> Callable[[], bytes]:
    """A callable returning the next bytes available (b"" at the end), without waiting for more.

    ``iter_content`` would wait for a full buffer on a close-delimited body; these do not:

    - a chunked body: urllib3's ``read_chunked`` yields each chunk as it arrives (urllib3 1.x
      and 2). Its generator keeps no state of its own (the chunk position lives on the
      response), but it must be one per response while the body is being read: dropping it
      half-way makes urllib3 close the connection, so ``StreamBody`` keeps its reader for the
      drain after the end marker.
    - any other body on urllib3 2: ``read1``, which returns what is available and checks the
      length.
    - any other body on urllib3 1.x, which has no ``read1`` and whose ``read(n)`` blocks until
      n bytes or the end: http.client's ``read1`` on urllib3's private ``_fp``. The one private
      attribute left, and measured: without it the first event of a close-delimited stream
      arrives only when 64 KiB have or the body ends (the benchmark's first-chunk scenario on
      urllib3 1.26.20: 301 ms, the server's whole stall, instead of 0.2 ms). An encoded body
      there goes through urllib3 (blocking, but decoded).

    Measured on urllib3 2.7 (benchmarks' long stream, 2,000 events, median CPU of 9 rounds):
    ``read_chunked`` 22.0-23.1 ms, http.client's ``read1`` on ``_fp`` (the former fast path)
    22.5-22.8 ms, urllib3's ``read1`` 30.6-30.7 ms (bare requests: 13.3 ms).
    """
    if getattr(raw, "chunked", False) and hasattr(raw, "read_chunked"):
        pieces = raw.read_chunked(READ_SIZE, decode_content=True)
        return lambda: next(pieces, b"")
    read1: Optional[Callable[..., bytes]] = getattr(raw, "read1", None)
    if read1 is not None:  # urllib3 >= 2
        return lambda: read1(READ_SIZE, decode_content=True)
    plain = getattr(raw, "_fp", None)  # urllib3 1.x: see above
    if plain is not None and hasattr(plain, "read1") and not headers.get("content-encoding"):

        def read_plain() -> bytes:
            chunk = bytes(plain.read1(READ_SIZE))
            if not chunk and plain.isclosed():
                # What urllib3 does at the end of a body: the connection goes back to the
                # pool (closing the response without this would discard it).
                raw.release_conn()
            return chunk

        return read_plain
    return lambda: bytes(raw.read(READ_SIZE, decode_content=True))


#: How far under the time left a read's timeout may already be for ``_limit_next_read`` to
#: keep it (at most 1% of the time left).
_TIMEOUT_SLACK_S = 0.01


def _limit_next_read(sock: Any, seconds: float) -> None:
    # settimeout is a system call (it sets the descriptor's blocking mode), one per stream event
    # otherwise; a stream's gap deadline restarts at every event, so the timeout the previous
    # read set is usually still right. It is kept only when it does not exceed the time left.
    current = sock.gettimeout()
    if current is not None and seconds - min(_TIMEOUT_SLACK_S, seconds / 100) <= current <= seconds:
        return
    with contextlib.suppress(OSError):
        sock.settimeout(max(seconds, 0.001))


def content_length(headers: Mapping[str, str]) -> int:
    """The announced body size, or -1 when there is none (chunked, close-delimited, garbled)."""
    value = headers.get("content-length", "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 20 else -1
