"""Reading a provider's 2xx answers: turning stream events into chunks, the guard that turns a
body of the wrong shape into ``ResponseFormatError``, the byte budget between two events, and
errors a 200 body or stream reports. Protocol-independent; each provider supplies the parsing."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from .._error_bodies import one_line
from .._secrets import Redactor
from .._tools import ToolCall
from ..errors import ProviderError, ResponseFormatError, error_for_status
from ..types import StreamChunk, Usage


def normalised_finish_reason(table: Mapping[str, str], value: Any) -> Optional[str]:
    """``value`` through a type's ``FINISH_REASONS`` table; an unknown value is kept as it is
    (as a string), None stays None."""
    if value is None:
        return None
    return table.get(value, str(value))


class ParsedAnswer:
    """What ``_parse_completion`` reads from a whole answer: ``text``, ``model`` (None when the
    body names none), the normalised ``finish_reason``, ``usage``, and when the protocol has
    them ``reasoning`` (the thinking text, never part of ``text``) and ``provider_state`` (what
    a later turn must send back, e.g. Anthropic's thinking signatures; opaque to the rest of
    provider_kit) and ``tool_calls`` (a list of ``ToolCall``; the call flow makes the finish
    reason "tool_calls" when there are some and the wire said "stop", as Ollama does). A record
    rather than a tuple, so a protocol can fill a field added later without changing a
    signature; a hook that returns the old 4-tuple still works."""

    __slots__ = ("finish_reason", "model", "provider_state", "reasoning", "text", "tool_calls", "usage")

    def __init__(
        self,
        text: str,
        model: Optional[str],
        finish_reason: Optional[str],
        usage: Usage,
        reasoning: Optional[str] = None,
        provider_state: Optional[Dict[str, Any]] = None,
        tool_calls: Sequence[ToolCall] = (),
    ) -> None:
        self.text = text
        self.model = model
        self.finish_reason = tool_calls_finish(finish_reason, tool_calls)
        self.usage = usage
        self.reasoning = reasoning
        self.provider_state = provider_state
        self.tool_calls = tuple(tool_calls)

    @classmethod
    def of(cls, parsed: Any) -> ParsedAnswer:
        """A hook's result as a record: itself, or the record of an old-style 4-tuple."""
        return parsed if isinstance(parsed, ParsedAnswer) else cls(*parsed)

    def __repr__(self) -> str:
        return f"ParsedAnswer(text={self.text!r}, finish_reason={self.finish_reason!r})"


class StreamState:
    """Turns one stream's events into ``StreamChunk``s; a provider type subclasses it once and
    names the subclass in its ``STREAM_STATE`` class attribute. One instance per stream.

    The contract with the call flow (``HTTPProvider.stream``):

    - ``feed(event)`` gets each decoded event (an ``SSEEvent``, or a JSON value per NDJSON
      line) and returns the chunks it carries (``text_chunk(text)`` makes one). It raises a
      ``ProviderError`` for an error the stream reports, anything else for an event of the
      wrong shape (turned into ``ResponseFormatError``).
    - It sets ``done`` on the event that ends the stream (``[DONE]``, ``message_stop``,
      ``"done": true``, or for a format with no terminator, the event carrying the finish
      reason). A body that ends before ``done`` is an incomplete answer: ``ResponseFormatError``.
    - It sets ``finish_reason`` (normalised with ``finish(value)``) and ``usage`` on the way;
      the call flow yields them in the final chunk (``final_chunk()``), and ``provider_state``
      when a later turn needs something of this one (Anthropic's thinking signatures).
    - Thinking text is yielded as it arrives with ``reasoning_chunk(text)`` (a chunk with
      ``reasoning`` set and no text), never mixed into the text: streamed and whole answers
      must agree. The call flow builds the final chunk's ``data``/``parsed`` from the texts.

    ``provider`` is the provider's name, which every chunk carries.
    """

    def __init__(self, provider: str = "", finish_reasons: Optional[Mapping[str, str]] = None) -> None:
        self.provider = provider
        self.finish_reasons: Mapping[str, str] = finish_reasons or {}
        self.done = False
        self.finish_reason: Optional[str] = None
        self.usage: Optional[Usage] = None
        self.provider_state: Optional[Dict[str, Any]] = None
        self.tool_calls = ToolCallAssembler()

    def feed(self, event: Any) -> Iterable[StreamChunk]:
        raise NotImplementedError

    def finish(self, value: Any) -> Optional[str]:
        """A finish reason of the wire normalised through the type's ``FINISH_REASONS``."""
        return normalised_finish_reason(self.finish_reasons, value)

    def text_chunk(self, text: str) -> StreamChunk:
        return StreamChunk._piece(text, self.provider or None)

    def reasoning_chunk(self, reasoning: str) -> StreamChunk:
        return StreamChunk._piece("", self.provider or None, reasoning)

    def tool_call_chunk(self, partial: Any) -> StreamChunk:
        """A chunk carrying the call being built: a ``ToolCall``, or the ``(id, name, text so
        far)`` that ``ToolCallAssembler.extend`` gives (made a ``ToolCall`` when read)."""
        return StreamChunk._piece("", self.provider or None, tool_call=partial)

    def final_chunk(self) -> StreamChunk:
        calls = self.tool_calls.calls() if self.tool_calls else ()
        return StreamChunk("", tool_calls_finish(self.finish_reason, calls), self.usage or Usage(),
                           self.provider or None, provider_state=self.provider_state, tool_calls=calls)


def tool_calls_finish(finish_reason: Optional[str], tool_calls: Sequence[Any]) -> Optional[str]:
    """The finish reason of an answer with ``tool_calls``: "tool_calls" where the wire says
    "stop" (Ollama, some compatible servers) or nothing; "length" and the rest are kept."""
    if tool_calls and finish_reason in (None, "stop"):
        return "tool_calls"
    return finish_reason


def new_tool_call_id() -> str:
    """An id for a call the server sent none for (Ollama before v0.12.10): unique, in the
    ``call_`` form the servers use."""
    return "call_" + os.urandom(12).hex()


class ToolCallAssembler:
    """Streamed tool calls put together, in the order they started.

    A protocol keys each call as its wire does (OpenAI's ``tool_calls[].index``, Anthropic's
    content-block index) and calls ``start(key, id, name)`` once, then ``add(key, fragment)``
    for each piece of the arguments' JSON text. The id and name are set once, never
    concatenated (a server that repeats them in every fragment would otherwise get
    ``"call_Acall_A"``, as the openai SDK does). Each method returns the call as far as it has
    arrived, for ``tool_call_chunk``: the text so far is kept whole (one concatenation per
    fragment, no join of every fragment each time).
    """

    __slots__ = ("_calls", "_order")

    def __init__(self) -> None:
        self._calls: Dict[Any, List[str]] = {}  # key -> [id, name, the arguments' text so far]
        self._order: List[Any] = []

    def __bool__(self) -> bool:
        return bool(self._order)

    def __contains__(self, key: Any) -> bool:
        return key in self._calls

    def start(self, key: Any, call_id: Optional[str], name: str, arguments: str = "") -> ToolCall:
        """A new call (``call_id`` None or "": one is made); ``arguments`` its first text."""
        if key in self._calls:
            raise ValueError(f"tool call {key!r} started twice")
        first = ToolCall(call_id or new_tool_call_id(), name, arguments)  # checks the id and name once
        self._calls[key] = [first.id, first.name, arguments]
        self._order.append(key)
        return first

    def add(self, key: Any, fragment: str) -> ToolCall:
        """Another piece of call ``key``'s arguments."""
        entry = self._calls[key]
        entry[2] += fragment
        return ToolCall._assembled(entry[0], entry[1], entry[2])

    def extend(self, key: Any, fragment: str) -> Optional[Tuple[str, str, str]]:
        """``add`` for a key that may name no call (a fragment of a block that is not a tool
        call): None then; else the call so far as ``(id, name, text)``, for
        ``tool_call_chunk``, which makes it a ``ToolCall`` only if someone reads it. A stream's
        hottest path: one dictionary lookup, one concatenation."""
        entry = self._calls.get(key)
        if entry is None:
            return None
        entry[2] += fragment
        return (entry[0], entry[1], entry[2])

    def text(self, key: Any) -> str:
        """Call ``key``'s arguments text so far."""
        return self._calls[key][2]

    def partial(self, key: Any) -> ToolCall:
        call_id, name, text = self._calls[key]
        return ToolCall._assembled(call_id, name, text)

    def calls(self) -> List[ToolCall]:
        return [self.partial(key) for key in self._order]


#: How much of a bad event parsers quote; secrets are masked in it before it is cut to size.
EXCERPT_WINDOW = 4096
MESSAGE_LIMIT = 300


def shorten(text: str, limit: int = MESSAGE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ShapeErrors:
    """Guards the reading of a 2xx body or stream event.

    A KeyError/TypeError/... from a well-formed-JSON-but-wrong-shape body becomes a
    ``ResponseFormatError``: provider_kit never lets those escape. A ``ProviderError`` the
    parser raised for an error the body reports (an in-stream error event, Ollama's 200
    ``{"error": ...}``) gets the response's request id and, as ``body``, what reported it
    (``source``: the event or the decoded body), and both have any secret the message quotes
    from the body masked, as the transport does for error statuses.
    """

    __slots__ = ("provider", "redactor", "request_id", "source")

    def __init__(self, provider: str, request_id: Optional[str], redactor: Redactor, source: Any = None) -> None:
        self.provider = provider
        self.request_id = request_id
        self.redactor = redactor
        self.source = source

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        if isinstance(exc, ProviderError):
            message = self.redactor.redact(exc.message)
            if message != exc.message:
                exc.message = message
                exc.args = (message, *exc.args[1:])
            if exc.request_id is None:
                exc.request_id = self.request_id
            if exc.body is None and self.source is not None:
                exc.body = self.redactor.redact(source_text(self.source))
        elif isinstance(exc, (KeyError, TypeError, IndexError, AttributeError, ValueError)):
            message = f"{self.provider}: unexpected response shape ({type(exc).__name__}: {exc})"
            # Redact first, then shorten: a cut made first could keep half of a key.
            error = ResponseFormatError(
                shorten(self.redactor.redact(message)), provider=self.provider, request_id=self.request_id
            )
            self.redactor.reraise(error, exc)  # from None when the original quotes the key


def source_text(source: Any) -> str:
    """The text of what reported an error: an SSE event's data, a decoded JSON body or line."""
    data = getattr(source, "data", source)
    if isinstance(data, str):
        return data
    try:
        return json.dumps(data, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(data)


class EventBudget:
    """The body's chunks, refused once more than ``limit`` bytes arrive without a whole event.

    The consumer calls :meth:`reset` after each event, which bounds what a decoder can hold.
    """

    __slots__ = ("chunks", "limit", "used")

    def __init__(self, chunks: Iterable[bytes], limit: int) -> None:
        self.chunks = chunks
        self.limit = limit
        self.used = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.used += len(chunk)
            if self.used > self.limit:
                raise ResponseFormatError(
                    f"more than {self.limit} bytes of stream without a complete event"
                )
            yield chunk

    def reset(self) -> None:
        self.used = 0


def error_from_event(
    provider: str,
    status: int,
    message: str,
    request_id: Optional[str],
    *,
    context: str = "in stream",
) -> ProviderError:
    """The error for one reported inside a 200 stream (or, with another ``context``, a 200
    body), classed as if it had come with that status."""
    # One line, like an error status's message: the CLI and circuit states print it as one.
    return error_for_status(
        status, f"{provider}: {one_line(message)} ({context})", provider=provider, request_id=request_id
    )
