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

    def __iter__(self) -> Iterator[bytes]:
        with self.transport._translating(self.deadline):
            yield from iter_raw(self.response, self.deadline)

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
            return transport._read_body(self.response, self.deadline, transport.max_response_bytes)

    def close(self) -> None:
        self.response.close()

    def drain(self) -> None:
        """Read the little that follows a stream's end marker (such as a chunked body's last,
        empty chunk) so the connection goes back to the pool; closing a response with unread
        bytes would discard its connection. Gives up quietly past a small size or wait."""
        limit = Deadline(min(DRAIN_MAX_SECONDS, max(self.deadline.remaining(), 0.0)))
        size = 0
        try:
            for chunk in iter_raw(self.response, limit):
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


def iter_raw(response: requests.Response, deadline: Deadline) -> Iterator[bytes]:
    """Yield body bytes as soon as they arrive, never reading past ``deadline``.

    ``raw.read1`` returns whatever is available, where ``iter_content`` waits for a full buffer
    on a close-delimited body. Before each read the socket's timeout is cut to the time left,
    so a server trickling one byte at a time cannot stretch the call past its deadline.
    """
    raw = response.raw
    read = _reader(raw, response.headers)
    while True:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise socket.timeout("deadline passed while reading the body")
        _limit_next_read(raw, remaining)
        chunk = read()
        if not chunk:
            return
        yield chunk


def _reader(raw: Any, headers: Mapping[str, str]) -> Callable[[], bytes]:
    """A callable returning the next bytes available (b"" at the end), without waiting for more."""
    read1: Optional[Callable[..., bytes]] = getattr(raw, "read1", None)
    plain = getattr(raw, "_fp", None)
    if plain is None or not hasattr(plain, "read1") or headers.get("content-encoding"):
        plain = None
    # A chunked stream of small events is one read per event, and urllib3's read1 spends
    # ~5 us a call on bookkeeping around http.client's read1, which does the same job and
    # raises IncompleteRead on a cut chunk. Length-delimited bodies stay with urllib3 >= 2:
    # it checks the length, http.client's read1 does not.
    if plain is not None and (read1 is None or getattr(raw, "chunked", False)):
        def read_plain() -> bytes:
            chunk = bytes(plain.read1(READ_SIZE))
            if not chunk and plain.isclosed():
                # What urllib3 does at the end of a body: the connection goes back to the
                # pool (closing the response without this would discard it).
                raw.release_conn()
            return chunk

        return read_plain
    if read1 is not None:  # urllib3 >= 2
        return lambda: read1(READ_SIZE, decode_content=True)
    # urllib3 1.x has no read1 and its read(n) blocks until n bytes or the end on a
    # close-delimited body.
    return lambda: bytes(raw.read(READ_SIZE, decode_content=True))


def _limit_next_read(raw: Any, seconds: float) -> None:
    connection = getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(max(seconds, 0.001))


def content_length(headers: Mapping[str, str]) -> int:
    """The announced body size, or -1 when there is none (chunked, close-delimited, garbled)."""
    value = headers.get("content-length", "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 20 else -1
