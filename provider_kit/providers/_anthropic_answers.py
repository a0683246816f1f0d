"""Reading Anthropic's answers (PROTOCOLS.md §B.4-§B.5, PROTOCOLS-2 §H.3, §I.2): the content
blocks of a whole message, the events of a stream, the usage and in-band errors.

Both readers give the same result for the same reply: the text of the ``text`` blocks; the
thinking of the ``thinking`` blocks as ``reasoning`` (blocks joined by a blank line, never in
the text); the ``thinking`` / ``redacted_thinking`` blocks themselves, signatures and all,
in ``provider_state["thinking_blocks"]``, so that ``completion.message`` sent back in a later
turn carries them unchanged, as the API requires within a tool loop; and the calls of the
``tool_use`` blocks (streamed: ``input_json_delta`` fragments per block index, §G.7).
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from .._streaming import load_json
from .._tools import ToolCall
from ..types import StreamChunk, Usage
from ._answers import EXCERPT_WINDOW, StreamState, ToolCallAssembler, error_from_event, new_tool_call_id

#: The key of ``provider_state`` holding the thinking blocks to send back.
THINKING_BLOCKS = "thinking_blocks"
#: The block types that are thinking, sent back unchanged (``types/*thinking_block.py``).
THINKING_TYPES = ("thinking", "redacted_thinking")
#: Between the thinking of two blocks, in ``reasoning`` (whole and streamed alike).
THOUGHT_SEPARATOR = "\n\n"

#: Error ``type`` of an in-stream error event -> the HTTP status it stands for.
ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

#: The usage fields whose sum is the whole input (``types/usage.py``).
_INPUT_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def anthropic_usage(data: Any) -> Usage:
    """Anthropic reports no total, and counts the input read from and written to the prompt
    cache apart from ``input_tokens``: our ``input_tokens`` is the sum of the three. The cache
    counts and ``output_tokens_details.thinking_tokens`` become the usage details (None when
    the body leaves them out)."""
    if not isinstance(data, dict):
        return Usage()
    inputs = data.get("input_tokens")
    if isinstance(inputs, int):
        inputs += sum(data.get(field) or 0 for field in _INPUT_FIELDS[1:])
    details = data.get("output_tokens_details")
    thinking = details.get("thinking_tokens") if isinstance(details, dict) else None
    return Usage(
        inputs,
        data.get("output_tokens"),
        # Reported as 0 on a call that used no cache: kept, as OpenAI's cached_tokens 0 is.
        cached_input_tokens=_count(data.get("cache_read_input_tokens")),
        cache_creation_input_tokens=_count(data.get("cache_creation_input_tokens")),
        reasoning_tokens=_count(thinking),
    )


def _count(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def thinking_state(blocks: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The ``provider_state`` of an answer with these thinking blocks (None without any)."""
    return {THINKING_BLOCKS: blocks} if blocks else None


def read_blocks(blocks: Any) -> Tuple[str, Optional[str], List[Dict[str, Any]], List[ToolCall]]:
    """A message's ``content``: its text, its reasoning (None when no block has thinking text:
    none asked for, or ``display: "omitted"``), its thinking blocks as received and the calls
    of its ``tool_use`` blocks."""
    if not isinstance(blocks, list):
        raise TypeError("content is not a list of blocks")
    texts: List[str] = []
    thoughts: List[str] = []
    kept: List[Dict[str, Any]] = []
    calls: List[ToolCall] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block["text"]))
        elif kind == "tool_use":
            calls.append(ToolCall(_call_id(block), _call_name(block), _arguments(block.get("input"))))
        elif kind in THINKING_TYPES:
            kept.append(block)
            if kind == "thinking" and block.get("thinking"):
                thoughts.append(str(block["thinking"]))
    return "".join(texts), THOUGHT_SEPARATOR.join(thoughts) or None, kept, calls


def _call_id(block: Dict[str, Any]) -> str:
    """A ``tool_use`` block's id (one is made for a block without, as the stream's are)."""
    return str(block.get("id") or "") or new_tool_call_id()


def _call_name(block: Dict[str, Any]) -> str:
    name = block.get("name")
    if not isinstance(name, str) or not name:
        raise TypeError(f"tool_use block without a name: {name!r}")
    return name


def _arguments(value: Any) -> Any:
    """A ``tool_use`` block's ``input`` as ``ToolCall`` arguments: the object; none is ``{}``;
    a string (a proxy's JSON text) is kept as the raw text, anything else as its JSON, so that
    ``ToolCall.arguments`` says what is wrong instead of the answer failing."""
    if isinstance(value, dict):
        return value
    if value is None:
        return {}
    return value if isinstance(value, str) else json.dumps(value)


class _ToolUseBlocks(ToolCallAssembler):
    """Streamed ``tool_use`` blocks, keyed by block index. At ``content_block_stop`` a call's
    JSON text is read once (``close``): an object becomes the call's arguments as a whole
    answer's ``input`` would, so that streamed and whole answers give equal calls; text that is
    not a JSON object is kept raw (``ToolCall.arguments`` raises for it)."""

    __slots__ = ("_inputs", "_placeholders")

    def __init__(self) -> None:
        super().__init__()
        self._inputs: Dict[Any, Dict[str, Any]] = {}
        self._placeholders: Dict[Any, Dict[str, Any]] = {}

    def begin(self, key: Any, block: Dict[str, Any]) -> ToolCall:
        placeholder = block.get("input")
        if isinstance(placeholder, dict) and placeholder:
            # Not the API's empty placeholder: a server that sends the input whole, with no deltas.
            self._placeholders[key] = placeholder
        return self.start(key, _call_id(block), _call_name(block))

    def close(self, key: Any) -> None:
        text = self.text(key)
        if not text.strip():  # a tool without arguments sends no (or empty) deltas
            self._inputs[key] = self._placeholders.get(key, {})
            return
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            return
        if isinstance(value, dict):
            self._inputs[key] = value

    def partial(self, key: Any) -> ToolCall:
        if key in self._inputs:
            call_id, name, _ = self._calls[key]
            return ToolCall(call_id, name, self._inputs[key])
        return super().partial(key)


class _AnthropicStream(StreamState):
    """Named events from message_start to message_stop; pings and unknown events are skipped.

    Thinking arrives as ``thinking_delta`` events (yielded as reasoning chunks) and one
    ``signature_delta`` that replaces the block's signature; a ``redacted_thinking`` block
    arrives whole in its ``content_block_start``. At ``message_stop`` the thinking blocks, as
    rebuilt here, become ``provider_state``: the same as a whole answer's.
    """

    def __init__(self, provider: str = "", finish_reasons: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(provider, finish_reasons)
        # The raw counts, merged field by field: message_delta repeats some of them,
        # cumulatively, and may leave others out (types/message_delta_usage.py).
        self.counts: Dict[str, Any] = {}
        self.thinking_blocks: List[Dict[str, Any]] = []
        self.open_blocks: Dict[Any, Dict[str, Any]] = {}  # index -> the thinking block being built
        self.reasoned = False  # some thinking text was yielded (the next block's starts apart)
        self.fresh_block = False  # no thinking text yet from the current thinking block
        self.tool_calls: _ToolUseBlocks = _ToolUseBlocks()

    def feed(self, event: Any) -> Iterable[StreamChunk]:
        try:
            # An event with a name but no data ("event: message_stop" alone) still counts.
            data = load_json(event.data) if event.data else {}
        except ValueError:
            raise ValueError(f"stream event is not JSON: {event.data[:EXCERPT_WINDOW]!r}") from None
        if not isinstance(data, dict):
            raise TypeError("stream event is not a JSON object")
        kind = event.event or data.get("type")
        if kind == "content_block_delta":
            return self._delta(data)
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_stop":
            if data.get("index") in self.tool_calls:
                self.tool_calls.close(data.get("index"))
        elif kind == "message_start":
            self._merge_counts(data["message"].get("usage"))
        elif kind == "message_delta":
            stop_reason = (data.get("delta") or {}).get("stop_reason")
            if stop_reason is not None:
                self.finish_reason = self.finish(stop_reason)
            # Counts in message_delta are cumulative: the last one wins.
            self._merge_counts(data.get("usage"))
        elif kind == "message_stop":
            self.done = True
            self.usage = anthropic_usage(self.counts)
            self.provider_state = thinking_state(self.thinking_blocks)
        elif kind == "error":
            raise anthropic_error(self.provider, data.get("error"))
        return ()

    def _block_start(self, data: Dict[str, Any]) -> Iterable[StreamChunk]:
        block = data["content_block"]
        kind = block.get("type")
        if kind == "tool_use":  # its input arrives as input_json_delta fragments
            return (self.tool_call_chunk(self.tool_calls.begin(data.get("index"), block)),)
        if kind not in THINKING_TYPES:
            return ()
        block = dict(block)
        self.thinking_blocks.append(block)  # in order of arrival, as the whole answer lists them
        self.open_blocks[data.get("index")] = block
        self.fresh_block = True
        return ()

    def _delta(self, data: Dict[str, Any]) -> Iterable[StreamChunk]:
        delta = data["delta"]
        kind = delta.get("type")
        if kind == "text_delta":
            return (self.text_chunk(str(delta["text"])),) if delta.get("text") else ()
        if kind == "input_json_delta":
            fragment = delta.get("partial_json")
            if fragment:  # the first is often ""
                partial = self.tool_calls.extend(data.get("index"), str(fragment))
                if partial is not None:
                    return (StreamChunk._piece("", self.provider or None, tool_call=partial),)
            return ()
        block = self.open_blocks.get(data.get("index"))
        if kind == "thinking_delta" and delta.get("thinking"):
            piece = str(delta["thinking"])
            if block is not None:
                block["thinking"] = str(block.get("thinking") or "") + piece
            if self.fresh_block and self.reasoned:
                piece = THOUGHT_SEPARATOR + piece
            self.fresh_block, self.reasoned = False, True
            return (self.reasoning_chunk(piece),)
        if kind == "signature_delta" and block is not None:
            block["signature"] = delta.get("signature")  # replaced, not appended (the SDK's rule)
        return ()

    def _merge_counts(self, usage: Any) -> None:
        if isinstance(usage, dict):
            for field in (*_INPUT_FIELDS, "output_tokens", "output_tokens_details"):
                if usage.get(field) is not None:
                    self.counts[field] = usage[field]


def anthropic_error(provider: str, error: Any, context: str = "in stream") -> Exception:
    """The error for ``{"type": "error", "error": {"type", "message"}}`` in a 200 answer."""
    error = error or {}
    status = ERROR_TYPE_STATUS.get(str(error.get("type")), 500) if isinstance(error, dict) else 500
    message = error.get("message") if isinstance(error, dict) else str(error)
    return error_from_event(provider, status, str(message or "stream error"), None, context=context)
