"""Tool calling on the OpenAI Chat Completions wire (PROTOCOLS-2.md §G.1-§G.4): the ``tools`` and
``tool_choice`` a request sends, the tool turns of its history, and the calls of an answer,
whole (``message.tool_calls``) or streamed (``delta.tool_calls`` fragments).

Kept apart from ``openai.py`` so that a call without tools pays for none of it: the provider
calls in here only when a message has tool calls, a message is a tool result, or an answer
carries calls.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .._parts import Text
from .._tools import Tool, ToolCall
from ..types import Message, StreamChunk
from ._answers import new_tool_call_id

if TYPE_CHECKING:
    from ._answers import StreamState

#: Mistral's rule for tool-call ids (PROTOCOLS-2.md §G.4): exactly 9 letters or digits.
ALNUM9 = "alnum9"
_ALNUM9 = re.compile(r"[a-zA-Z0-9]{9}")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: The schema keys whose values are schemas keyed by a property's (or a definition's) name:
#: below them a key is a name, never a keyword, and is never dropped.
_NAMED_SCHEMAS = ("properties", "patternProperties", "$defs", "definitions")

#: The ``tool_choice`` values sent as they are; a tool's name is sent as a named choice.
_CHOICE_STRINGS = ("auto", "none", "required")
#: What an error result's text starts with when it does not already say so (OpenAI's tool
#: message has no error flag: the model learns of the failure from the text).
ERROR_PREFIX = "Error: "


def tools_body(tools: Sequence[Tool], drop_keys: Tuple[str, ...] = ()) -> List[Dict[str, Any]]:
    """``tools`` as the openai SDK sends them: ``{"type": "function", "function": {"name",
    "description" (when not empty), "parameters"}}``; with ``drop_keys`` (Gemini's
    ``additionalProperties``, ``examples``) those schema keywords removed at every level."""
    out = [tool.to_dict() for tool in tools]
    if drop_keys:
        for entry in out:
            function = entry["function"]
            function["parameters"] = _without(function["parameters"], drop_keys)
    return out


def _without(schema: Any, drop: Tuple[str, ...]) -> Any:
    """A copy of ``schema`` without the keywords ``drop`` (a property named like one is kept)."""
    if isinstance(schema, list):
        return [_without(item, drop) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy: Dict[str, Any] = {}
    for key, value in schema.items():
        if key in drop:
            continue
        if key in _NAMED_SCHEMAS and isinstance(value, dict):
            copy[key] = {name: _without(sub, drop) for name, sub in value.items()}
        else:
            copy[key] = _without(value, drop)
    return copy


def tool_choice_body(choice: str) -> Any:
    """``"auto"``, ``"none"``, ``"required"`` as they are; a tool's name as
    ``{"type": "function", "function": {"name": ...}}``."""
    if choice in _CHOICE_STRINGS:
        return choice
    return {"type": "function", "function": {"name": choice}}


def wire_tool_call_id(call_id: str, rule: Optional[str]) -> str:
    """``call_id`` as the server takes it: as it is, or under Mistral's rule (``ALNUM9``) an id
    that breaks it (``call_...``, ``toolu_...`` from another provider) replaced by 9 letters and
    digits made from it. The same id always gives the same replacement, so an assistant turn's
    call and the tool message answering it still match."""
    if rule != ALNUM9 or _ALNUM9.fullmatch(call_id):
        return call_id
    import hashlib  # only a Mistral history with foreign ids needs it

    number = int.from_bytes(hashlib.sha256(call_id.encode("utf-8")).digest()[:8], "big")
    digits = []
    for _ in range(9):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "".join(digits)


def assistant_tool_calls(calls: Sequence[ToolCall], rule: Optional[str]) -> List[Dict[str, Any]]:
    """An assistant turn's calls as OpenAI sent them: the arguments as the raw JSON text the
    model wrote (sent back unchanged, even when it is not valid JSON)."""
    return [
        {"id": wire_tool_call_id(call.id, rule), "type": "function",
         "function": {"name": call.name, "arguments": call.raw_arguments}}
        for call in calls
    ]


def tool_result_text(message: Message, refuse: Any) -> str:
    """A ``ToolResult``'s content as the ``tool`` message's text. OpenAI takes only text there
    (§G.2): text parts are joined, an image is refused (``refuse(feature, why)`` makes the
    error). With ``is_error``, the text starts with "Error: " unless it already starts with
    "error" (the wire has no error flag, §G.2)."""
    content = message.content
    if isinstance(content, str):
        text = content
    else:
        for part in content:
            if not isinstance(part, Text):
                raise refuse(
                    f"{type(part).__name__.lower()} parts in a tool result",
                    "OpenAI Chat Completions takes only text in a 'tool' message: describe it in the text, "
                    "or send the image in a user message after the tool results",
                )
        text = message.text
    if getattr(message, "is_error", False) and text[:5].lower() != "error":
        text = ERROR_PREFIX + text
    return text


def parse_tool_calls(message: Mapping[str, Any]) -> List[ToolCall]:
    """The calls of a whole answer's ``message``: ``tool_calls[]`` (``arguments`` a JSON string,
    kept raw; an object, as some servers send, re-encoded). A call with no id gets one; entries
    that are not function calls are skipped. (The legacy ``function_call`` answers only a
    request with ``functions``, which provider_kit never sends.)"""
    calls: List[ToolCall] = []
    for entry in message.get("tool_calls") or ():
        if entry.get("type", "function") != "function":
            continue  # a "custom" tool call: not something provider_kit asked for
        function = entry["function"]
        calls.append(ToolCall(entry.get("id") or new_tool_call_id(), _name(function),
                              _arguments(function.get("arguments"))))
    return calls


def _name(function: Mapping[str, Any]) -> str:
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a tool call has no function name: {dict(function)!r}"[:200])
    return name


def _arguments(value: Any) -> Any:
    if value is None or isinstance(value, (str, dict)):
        return value if value is not None else ""
    raise TypeError(f"tool call arguments are a {type(value).__name__}, not a JSON string")


class StreamedToolCalls:
    """``delta.tool_calls`` fragments put together (§G.3): keyed by ``index``; the id and name
    taken from a call's first fragment and never concatenated (a server may repeat them in
    every fragment); only ``arguments`` pieces joined. A fragment whose index is taken by a call
    with another id starts a new call: Ollama's /v1 sends whole calls and some servers reuse
    ``index: 0`` for every call of a turn."""

    __slots__ = ("_current", "_count")

    def __init__(self) -> None:
        #: index -> (the assembler's key of the call now at that index, its id as sent or None)
        self._current: Dict[Any, Tuple[int, Optional[str]]] = {}
        self._count = 0

    def feed(self, state: StreamState, fragments: Any) -> List[StreamChunk]:
        """The chunks (each the call as far as it has arrived) for one delta's fragments."""
        chunks: List[StreamChunk] = []
        assembler = state.tool_calls
        for fragment in fragments:
            index = fragment.get("index", 0)
            sent_id = fragment.get("id") or None
            function = fragment.get("function") or {}
            arguments = function.get("arguments")
            if isinstance(arguments, dict):  # a server sending the object, not its text
                import json

                arguments = json.dumps(arguments, ensure_ascii=False)
            elif arguments is not None and not isinstance(arguments, str):
                raise TypeError(f"tool call arguments are a {type(arguments).__name__}, not a string")
            current = self._current.get(index)
            if current is None or (sent_id is not None and current[1] is not None and sent_id != current[1]):
                key = self._count
                self._count += 1
                self._current[index] = (key, sent_id)
                partial: Any = assembler.start(key, sent_id, _name(function), arguments or "")
            elif arguments:
                partial = assembler.extend(current[0], arguments)  # (id, name, text so far)
            else:
                continue  # a repeat of the id or name only: nothing new
            chunks.append(state.tool_call_chunk(partial))
        return chunks
