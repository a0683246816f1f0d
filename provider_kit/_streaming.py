"""Wire framing for streamed bodies: byte chunks in, lines, SSE events or NDJSON values out.

Pure functions over an iterable of raw ``bytes`` chunks; no I/O and no ``requests``. Every
decoder is incremental (an item is yielded as soon as the chunk completing it arrives) and
linear in the input size, and raises only :class:`~provider_kit.errors.ResponseFormatError`.
Reconnection (``Last-Event-ID``, ``retry``) is the caller's business, not this module's.
"""

from __future__ import annotations

import json
from operator import itemgetter as _itemgetter
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple

from .errors import ResponseFormatError

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "SSEEvent",
    "iter_ndjson",
    "iter_sse",
    "NDJSON",
    "SSE",
    "StreamDecoder",
]

#: Longest line (terminator excluded) a decoder buffers before giving up on the stream.
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024

_LF, _CR = 10, 13
_BOM = "\ufeff"
_EXCERPT_CHARS = 200


class SSEEvent(tuple):  # type: ignore[type-arg]
    """One dispatched server-sent event; ``id`` is the last event id seen so far in the stream.

    A tuple underneath (a stream makes one per event, and a tuple is the cheapest immutable
    record to build), compared only with other events.
    """

    __slots__ = ()

    def __new__(
        cls,
        event: Optional[str] = None,
        data: str = "",
        id: Optional[str] = None,
        retry: Optional[int] = None,
    ) -> SSEEvent:
        return tuple.__new__(cls, (event, data, id, retry))

    event = property(_itemgetter(0), doc="The event type (the ``event:`` field), or None.")
    data = property(_itemgetter(1), doc="The data lines joined by newlines.")
    id = property(_itemgetter(2), doc="The last event id seen so far, or None.")
    retry = property(_itemgetter(3), doc="The reconnection time the event set, or None.")

    # Never equal to a plain tuple: returning NotImplemented would let tuple's own comparison,
    # reflected, say an event equals a tuple of the same fields.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SSEEvent):
            return False if isinstance(other, tuple) else NotImplemented
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        if not isinstance(other, SSEEvent):
            return True if isinstance(other, tuple) else NotImplemented
        return tuple.__ne__(self, other)

    def __hash__(self) -> int:
        return tuple.__hash__(self)

    def __getnewargs__(self) -> Tuple[Any, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return (
            f"SSEEvent(event={self.event!r}, data={self.data!r}, "
            f"id={self.id!r}, retry={self.retry!r})"
        )


def _excerpt(line: bytes) -> str:
    # Bounded and printable whatever a hostile server sent.
    text = repr(line[:_EXCERPT_CHARS].decode("utf-8", "replace"))
    if len(text) > _EXCERPT_CHARS or len(line) > _EXCERPT_CHARS:
        text = text[:_EXCERPT_CHARS] + "..."
    return text


def _too_long(max_line_bytes: int) -> ResponseFormatError:
    return ResponseFormatError(f"stream line longer than {max_line_bytes} bytes")


def _split(chunks: Iterable[bytes], max_line_bytes: int, lf_only: bool) -> Iterator[bytes]:
    # Partial-line pieces are kept in a list and joined once, so a long line arriving in many
    # small chunks costs O(n), not O(n^2) (the trap of ``buf += chunk; buf.find(...)``).
    pending: List[bytes] = []
    pending_len = 0
    skip_lf = False  # the previous chunk ended in CR: a leading LF here ends no new line
    for chunk in chunks:
        if not chunk:
            continue
        if lf_only:
            lines = chunk.split(b"\n")
            tail = lines.pop()
        else:
            if skip_lf and chunk[0] == _LF:
                chunk = chunk[1:]
                if not chunk:
                    skip_lf = False
                    continue
            last = chunk[-1]
            skip_lf = last == _CR
            # bytes.splitlines breaks only on CR, LF and CRLF (str.splitlines would also
            # break on U+2028 and friends, which JSON allows raw inside strings).
            lines = chunk.splitlines()
            tail = b"" if last in (_LF, _CR) else lines.pop()
        if pending and lines:
            if pending_len + len(lines[0]) > max_line_bytes:
                raise _too_long(max_line_bytes)
            pending.append(lines[0])
            lines[0] = b"".join(pending)
            pending = []
            pending_len = 0
        for line in lines:
            if len(line) > max_line_bytes:
                raise _too_long(max_line_bytes)
            yield line
        if tail:
            pending.append(tail)
            pending_len += len(tail)
            if pending_len > max_line_bytes:
                raise _too_long(max_line_bytes)
    if pending:
        yield b"".join(pending)


def iter_sse(
    chunks: Iterable[bytes], *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[SSEEvent]:
    """Decode a ``text/event-stream`` body into events, as the WHATWG algorithm does.

    See https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation.
    An event is dispatched by a blank line once it has set any of ``data``, ``event``, ``id``
    or ``retry``; one left unterminated at the end of the stream is dropped.

    :param chunks: raw body bytes, in any chunking.
    :param max_line_bytes: longest line accepted, terminator excluded.
    :raises ResponseFormatError: a line is not UTF-8 or is longer than ``max_line_bytes``.
    """
    event: Optional[str] = None
    data: List[str] = []
    last_id: Optional[str] = None
    retry: Optional[int] = None
    dirty = False  # a field of the pending event was set since the last dispatch
    first = True
    for raw in _split(chunks, max_line_bytes, lf_only=False):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ResponseFormatError(f"event stream line is not UTF-8: {_excerpt(raw)}") from exc
        if first:
            first = False
            if line.startswith(_BOM):
                line = line[1:]
        if not line:
            if dirty:
                yield SSEEvent(event, data[0] if len(data) == 1 else "\n".join(data), last_id, retry)
                event, data, retry, dirty = None, [], None, False
            continue
        # The two fields of nearly every line first, without the general parse below.
        if line.startswith("data:"):
            data.append(line[6:] if line[5:6] == " " else line[5:])
            dirty = True
            continue
        if line.startswith("event:"):
            event = line[7:] if line[6:7] == " " else line[6:]
            dirty = True
            continue
        if line[0] == ":":
            continue
        name, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if name == "data":
            data.append(value)
            dirty = True
        elif name == "event":
            event = value
            dirty = True
        elif name == "id" and "\0" not in value:
            last_id = value
            dirty = True
        # ASCII digits only (str.isdigit also admits "²"); int() may still refuse a value
        # past sys.get_int_max_str_digits().
        elif name == "retry" and value.isascii() and value.isdigit():
            try:
                retry = int(value)
            except ValueError:
                pass
            else:
                dirty = True


#: The standard library's C scanner: what ``json.loads`` runs after two whitespace scans and a
#: few calls, per event of a stream.
_SCAN_JSON = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def load_json(text: str) -> Any:
    """``json.loads(text)``, faster for the common case of one event: a value with no whitespace
    around it goes straight to the C scanner; anything else (whitespace, extra data, not JSON)
    to ``json.loads``, which accepts or refuses it as it always does.

    :raises ValueError: as ``json.loads`` does (``JSONDecodeError``).
    """
    try:
        value, end = _SCAN_JSON(text, 0)
    except StopIteration:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


def iter_ndjson(
    chunks: Iterable[bytes], *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[Any]:
    """Decode newline-delimited JSON: one value per LF- or CRLF-ended line.

    Blank lines are skipped; a final line without an ending is still decoded.

    :param chunks: raw body bytes, in any chunking.
    :param max_line_bytes: longest line accepted, terminator excluded.
    :raises ResponseFormatError: a line is not UTF-8, not JSON, or longer than ``max_line_bytes``.
    """
    loads = load_json
    # Only LF ends a line: a lone CR is JSON whitespace and may sit between tokens.
    for raw in _split(chunks, max_line_bytes, lf_only=True):
        if not raw or raw.isspace():
            continue
        try:
            # Decode first: json.loads(bytes) would guess UTF-16/32 from NUL bytes.
            value = loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            # ValueError covers JSONDecodeError, UnicodeDecodeError and the int digit limit.
            reason = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else "not valid JSON"
            raise ResponseFormatError(f"NDJSON line is {reason}: {_excerpt(raw)}") from exc
        yield value


_SSE_FIELD_STARTS = (b"data:", b"event:", b"id:", b"retry:", b":", b"data\n", b"data\r")
_JSON_MEDIA_TYPE = "application/json"


class StreamDecoder:
    """A stream format: how a body in it is recognised, and decoded into events.

    A provider class names its format with one of the two instances, :data:`SSE` or
    :data:`NDJSON` (``STREAM_DECODER = SSE``); the call flow asks the decoder, never the name.
    """

    __slots__ = ("_decode", "_heads", "description", "lines_as_json", "media_types", "name")

    def __init__(
        self,
        name: str,
        decode: Callable[..., Iterator[Any]],
        *,
        media_types: Iterable[str],
        heads: Tuple[bytes, ...],
        description: str,
        lines_as_json: bool,
    ) -> None:
        self.name = name
        self._decode = decode
        #: The media types a body in this format may be labelled with (lower case).
        self.media_types = frozenset(media_types)
        self._heads = heads
        #: What the format is called in messages: "an event stream", "NDJSON lines".
        self.description = description
        #: Whether a body labelled ``application/json`` that is no single JSON document may
        #: still be this format's lines (NDJSON is, one JSON value per line).
        self.lines_as_json = lines_as_json

    def __repr__(self) -> str:
        return f"<StreamDecoder {self.name}>"

    def decode(self, chunks: Iterable[bytes], *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[Any]:
        """The events of a body given as raw byte chunks (see :func:`iter_sse`, :func:`iter_ndjson`).

        :raises ResponseFormatError: for a line the format cannot hold.
        """
        return self._decode(chunks, max_line_bytes=max_line_bytes)

    def body_kind(self, media_type: str) -> str:
        """What a 2xx answer to a stream request holds, by its media type (lower case, without
        parameters): ``"stream"`` (this format), ``"json"`` (a whole JSON document: a server or
        proxy that ignored ``stream``, as LiteLLM's Anthropic route does) or ``"unknown"``
        (anything else, including no type at all: the body must tell)."""
        if media_type in self.media_types:
            return "stream"
        if media_type == _JSON_MEDIA_TYPE or (media_type.startswith("application/") and media_type.endswith("+json")):
            return "json"
        return "unknown"

    def looks_like(self, head: bytes) -> bool:
        """Whether the first bytes of a body of unknown type read as this format: an SSE field
        (or comment), or a JSON object line. An empty head says nothing against it."""
        head = head.lstrip(b"\xef\xbb\xbf").lstrip()  # a BOM, blank lines
        return not head or head.startswith(self._heads)


#: ``text/event-stream`` (OpenAI, Anthropic and most HTTP APIs).
SSE = StreamDecoder(
    "sse", iter_sse, media_types={"text/event-stream"}, heads=_SSE_FIELD_STARTS,
    description="an event stream", lines_as_json=False,
)
#: Newline-delimited JSON (Ollama), under its many media type names.
NDJSON = StreamDecoder(
    "ndjson", iter_ndjson,
    media_types={"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines",
                 "application/jsonlines"},
    heads=(b"{",), description="NDJSON lines", lines_as_json=True,
)
