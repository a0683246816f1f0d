"""The tool-calling side of ``FakeProvider``: scripted calls, their stream chunks, and the check
the real APIs make of a conversation's tool turns (their 400s)."""

from __future__ import annotations

import itertools
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence, Set

from .._tools import ToolCall
from ..errors import ConfigError
from ..types import Message, StreamChunk

#: The ``tool_choice`` forms a real provider type may or may not express ("name": one tool).
TOOL_CHOICE_FORMS = frozenset({"auto", "none", "required", "name"})

#: Ids of scripted tool calls: unique in the process, so two turns' calls never clash.
_call_numbers = itertools.count(1)


def scripted_call(call: Any) -> ToolCall:
    if isinstance(call, ToolCall):
        return call
    if isinstance(call, tuple) and len(call) == 2:
        name, arguments = call
        return ToolCall(_new_call_id(), name, arguments)
    if isinstance(call, Mapping) and "name" in call:
        return ToolCall(call.get("id") or _new_call_id(), call["name"], call.get("arguments"))
    raise ConfigError(f"tool_call_reply: a call must be a ToolCall, a (name, arguments) pair or a dict with a name, "
                      f"got {call!r}")


def _new_call_id() -> str:
    return f"call_fake_{next(_call_numbers)}"


def tool_turn_problem(messages: Sequence[Message]) -> Optional[str]:
    """Why the real APIs would refuse this conversation's tool turns, or None: every call of an
    assistant turn answered by a result before any other message, no result without its call."""
    pending: Dict[str, str] = {}
    answered: Set[str] = set()
    for index, message in enumerate(messages):
        if message.role == "tool":
            call_id = getattr(message, "tool_call_id", None)
            if call_id not in pending:
                again = " again" if call_id in answered else ""
                return (f"message {index}: a tool result for {call_id!r} answers{again} no call of the assistant "
                        "turn before it")
            del pending[call_id]
            answered.add(call_id)
            continue
        if pending:
            return (f"message {index} ({message.role}) comes before the tool calls {_listed(pending)} of the "
                    "assistant turn were all answered (each needs a tool result)")
        if message.role == "assistant" and message.tool_calls:
            pending = {call.id: call.name for call in message.tool_calls}
            answered = set()
    if pending:
        return f"the tool calls {_listed(pending)} of the last assistant turn were not answered"
    return None


def _listed(pending: Mapping[str, str]) -> str:
    return ", ".join(f"{call_id} ({name})" for call_id, name in pending.items())


def tool_call_chunks(calls: Sequence[ToolCall], provider: str) -> Iterator[StreamChunk]:
    """The chunks of ``calls`` as the servers stream them: each call named first with no
    arguments, then its arguments in two fragments; each chunk's ``tool_call`` is the call as
    far as it has arrived."""
    for call in calls:
        yield StreamChunk("", provider=provider, tool_call=ToolCall(call.id, call.name, ""))
        raw = call.raw_arguments
        half = len(raw) // 2
        for end in (half, len(raw)) if half else (len(raw),):
            yield StreamChunk("", provider=provider, tool_call=ToolCall(call.id, call.name, raw[:end]))
