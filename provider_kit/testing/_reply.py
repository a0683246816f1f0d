"""What the loopback server sends and records: ``Reply``, ``Gate``, ``RecordedRequest``.

Protocol-neutral: the bytes of one scripted response with its faults, and the record of one
request. ``wires/`` builds replies in each API's format; ``_server.py`` serves them.
"""

from __future__ import annotations

import json
import threading
from typing import (
    Any,
    Dict,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
    cast,
)

__all__ = ["SAFETY_TIMEOUT", "Chunk", "Gate", "RecordedHeaders", "RecordedRequest", "Reply"]

#: Seconds the server waits at a gate, a hang or a stall before giving up on a test that forgot
#: to open it; the connection is then dropped and the timeout is listed in ``server.errors``.
SAFETY_TIMEOUT = 30.0

_HOST = "127.0.0.1"  # the only address this module ever binds
_SSE = "text/event-stream; charset=utf-8"


class Gate:
    """A pause point in a scripted reply: the server waits there until the test calls :meth:`open`.

    Put a gate in ``Reply(chunks=[...])``, in ``stream_reply()`` pieces, or pass it as
    ``hang=`` / ``stall_after_headers=``. ``LoopbackServer.close()`` opens every gate the server
    is waiting at, so a test that forgets one cannot hang past its ``with`` block.
    """

    def __init__(self) -> None:
        self._opened = threading.Event()
        self._reached = threading.Event()

    def open(self) -> None:
        """Let every response waiting at this gate continue."""
        self._opened.set()

    @property
    def is_open(self) -> bool:
        """True once :meth:`open` was called (or the server closed)."""
        return self._opened.is_set()

    def wait_reached(self, timeout: float = 5.0) -> bool:
        """Block until the server arrives at this gate, i.e. has sent everything before it.

        :param timeout: seconds to wait.
        :returns: False if the server did not reach the gate in time.
        """
        return self._reached.wait(timeout)

    def __repr__(self) -> str:
        state = "open" if self.is_open else "reached" if self._reached.is_set() else "closed"
        return f"<Gate {state}>"


#: One item of a scripted body: bytes (str is sent as UTF-8), a :class:`Gate`, or a pause in
#: seconds (for benchmarks; tests should synchronise with gates instead).
Chunk = Union[bytes, str, Gate, float]


class RecordedHeaders(Mapping[str, str]):
    """Request headers as received: case-insensitive lookup, original names and order kept."""

    def __init__(self, items: Sequence[Tuple[str, str]]) -> None:
        self._items = list(items)

    def __getitem__(self, name: str) -> str:
        values = self.get_all(name)
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def get_all(self, name: str) -> List[str]:
        """Every value sent for ``name`` (a header may be repeated)."""
        wanted = name.lower()
        return [value for key, value in self._items if key.lower() == wanted]

    def __iter__(self) -> Iterator[str]:
        seen: Dict[str, None] = {}
        for key, _ in self._items:
            seen.setdefault(key.lower(), None)
        return iter(seen)

    def __len__(self) -> int:
        return len({key.lower() for key, _ in self._items})

    def __repr__(self) -> str:
        # Header values may hold API keys: show names only.
        return f"RecordedHeaders({sorted(self)!r})"


class RecordedRequest:
    """One request exactly as the server received it.

    :ivar method: ``"POST"``, ``"GET"``, ...
    :ivar path: the path without the query string, e.g. ``"/v1/chat/completions"``.
    :ivar query: the decoded query string (last value wins for a repeated name).
    :ivar headers: a :class:`RecordedHeaders` (case-insensitive).
    :ivar body: the raw body bytes (de-chunked if the client sent it chunked).
    :ivar connection: a counter identifying the TCP connection, to check keep-alive reuse.
    """

    __slots__ = ("method", "path", "query", "headers", "body", "connection")

    def __init__(
        self,
        method: str,
        path: str,
        query: Dict[str, str],
        headers: RecordedHeaders,
        body: bytes,
        connection: int,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.connection = connection

    def json(self) -> Any:
        """The body decoded as JSON.

        :raises ValueError: if the body is not JSON.
        """
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self) -> str:
        return f"<RecordedRequest {self.method} {self.path} ({len(self.body)} bytes)>"


_NO_JSON: Any = object()
_FRAMINGS = ("length", "chunked", "close")


class Reply:
    """One scripted HTTP response, optionally with faults.

    Give at most one of ``json``, ``body`` and ``chunks``. Framing: ``"length"``
    (``Content-Length``, the default for ``json``/``body``), ``"chunked"``
    (``Transfer-Encoding: chunked``, the default for ``chunks``, one HTTP chunk per item) or
    ``"close"`` (no length; HTTP/1.1 with ``Connection: close``, the body ends when the socket
    closes). If ``headers`` sets ``Content-Length`` or ``Transfer-Encoding`` itself, those are
    sent verbatim, no framing header is added, and the connection is closed afterwards.

    :param status: the HTTP status code.
    :param json: a JSON-serialisable body (``Content-Type: application/json``).
    :param body: raw body bytes; a str is sent as UTF-8 ``text/plain``.
    :param chunks: a streamed body: bytes/str items, :class:`Gate` items and pauses in seconds.
        Empty items are skipped (an empty HTTP chunk would end a chunked body).
    :param headers: extra response headers; they override the defaults.
    :param content_type: shorthand for the ``Content-Type`` header.
    :param framing: ``"length"``, ``"chunked"`` or ``"close"``; see above.
    :param hang: read the request, then send nothing: ``True`` until the server closes, a
        :class:`Gate` until it opens (then the reply is sent normally).
    :param stall_after_headers: like ``hang`` but after the status line and headers.
    :param trickle: send the body one byte at a time, this many seconds apart.
    :param reset: abort the connection with a TCP RST (SO_LINGER 0) instead of replying.
    :param reset_after: send the headers and this many body bytes, then abort with a RST.
    :param reason: the reason phrase; defaults to the standard one.
    :raises ValueError: on contradictory arguments.
    """

    __slots__ = (
        "status", "headers", "framing", "hang", "stall_after_headers", "trickle",
        "reset", "reset_after", "reason", "_parts",
    )

    def __init__(
        self,
        status: int = 200,
        *,
        json: Any = _NO_JSON,
        body: Union[bytes, str, None] = None,
        chunks: Optional[Sequence[Chunk]] = None,
        headers: Optional[Mapping[str, str]] = None,
        content_type: Optional[str] = None,
        framing: Optional[str] = None,
        hang: Union[bool, Gate] = False,
        stall_after_headers: Union[bool, Gate] = False,
        trickle: Optional[float] = None,
        reset: bool = False,
        reset_after: Optional[int] = None,
        reason: Optional[str] = None,
    ) -> None:
        given = [name for name, value in (("json", json is not _NO_JSON), ("body", body is not None),
                                          ("chunks", chunks is not None)) if value]
        if len(given) > 1:
            raise ValueError(f"give at most one of json, body and chunks, not {' and '.join(given)}")
        if framing is not None and framing not in _FRAMINGS:
            raise ValueError(f"framing must be one of {_FRAMINGS}, not {framing!r}")
        if reset_after is not None and reset_after < 0:
            raise ValueError("reset_after counts body bytes and cannot be negative")
        default_type: Optional[str] = None
        parts: List[Union[bytes, Gate, float]]
        if json is not _NO_JSON:
            parts, default_type = [_dumps(json)], "application/json"
        elif isinstance(body, str):
            parts, default_type = [body.encode("utf-8")], "text/plain; charset=utf-8"
        elif body is not None:
            parts = [bytes(body)]
        else:
            parts = [_as_part(item) for item in chunks or ()]
        self.status = status
        self.headers: Dict[str, str] = {}
        if content_type or default_type:
            self.headers["Content-Type"] = cast(str, content_type or default_type)
        for name, value in (headers or {}).items():
            for same in [key for key in self.headers if key.lower() == name.lower()]:
                del self.headers[same]  # a header given twice in different case is one header
            self.headers[name] = value
        self.framing = framing or ("chunked" if chunks is not None else "length")
        self.hang = hang
        self.stall_after_headers = stall_after_headers
        self.trickle = trickle
        self.reset = reset
        self.reset_after = reset_after
        self.reason = reason
        self._parts = parts

    @classmethod
    def redirect(cls, location: str, status: int = 307) -> Reply:
        """A redirect to ``location`` with an empty body (307/308 keep the method and body).

        :param location: the absolute URL for the ``Location`` header; see
            :meth:`LoopbackServer.url_for` to point at this server under another host name.
        :param status: 301, 302, 303, 307 or 308.
        """
        return cls(status, body=b"", headers={"Location": location})

    @property
    def body_bytes(self) -> bytes:
        """All body bytes concatenated (gates and pauses left out)."""
        return b"".join(part for part in self._parts if isinstance(part, bytes))

    def __repr__(self) -> str:
        return f"<Reply {self.status} {self.framing}, {len(self.body_bytes)} body bytes>"


def _as_part(item: Chunk) -> Union[bytes, Gate, float]:
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, (Gate, int, float)) and not isinstance(item, bool):
        return item
    raise TypeError(f"a chunk is bytes, str, a Gate or a pause in seconds, not {type(item).__name__}")


def _dumps(obj: Any) -> bytes:
    # Go's encoder (Ollama) escapes U+2028/U+2029, and line-splitting clients rely on it.
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode("utf-8")
