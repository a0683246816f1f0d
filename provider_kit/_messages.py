"""The input side of a call: ``Message`` and the coercion of what ``complete`` and ``stream``
accept (a prompt, a list of messages, or a list of parts) into a list of messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ._parts import Content, Part, as_content, content_text, is_part_like
from ._tools import ToolCall, result_text, tool_calls_of
from ._value import _Value
from .errors import ConfigError

__all__ = ["Message", "MessagesInput", "ToolResult", "as_messages"]


class Message(_Value):
    """One chat message: ``role`` is "system", "user", "assistant" (or "tool").

    ``content`` is a string, or a tuple of parts (``Text``, ``Image``): a list given here, or
    to ``complete``, may mix parts, plain strings (text) and OpenAI-shaped part dicts.
    ``provider_state`` is what a protocol needs back in a later turn (Anthropic's thinking
    signatures), opaque and None for a message the caller wrote: ``completion.message``
    carries it, so appending that message to a conversation sends it back.
    ``tool_calls`` are the calls an assistant turn asked for (a tuple of ``ToolCall``; empty
    for any other message); each is answered by a ``ToolResult``, a message of role "tool".
    """

    __slots__ = ("role", "content", "provider_state", "tool_calls")
    role: str
    content: Content
    provider_state: Optional[Dict[str, Any]]
    tool_calls: Tuple[ToolCall, ...]

    def __init__(
        self,
        role: str,
        content: Union[str, Sequence[Any], None],
        provider_state: Optional[Mapping[str, Any]] = None,
        tool_calls: Sequence[Any] = (),
    ) -> None:
        if not isinstance(role, str) or not role:
            raise ConfigError(f"message role must be a non-empty string, got {role!r}")
        if tool_calls:
            if role != "assistant":
                raise ConfigError(f"only an assistant message has tool_calls, not a {role!r} one")
            tool_calls = tool_calls_of(tool_calls, "assistant message")
        else:
            tool_calls = ()
        if content is None and tool_calls:
            content = ""  # an assistant turn that only calls tools (OpenAI sends null)
        if not isinstance(content, str):
            content = as_content(content, role)
        if provider_state is not None:
            if not isinstance(provider_state, Mapping):
                raise ConfigError(f"message provider_state must be a dict, got {type(provider_state).__name__}")
            provider_state = dict(provider_state)
        self._set(role=role, content=content, provider_state=provider_state, tool_calls=tool_calls)

    @property
    def text(self) -> str:
        """The content when it is a string, else its text parts joined by newlines."""
        content = self.content
        return content if isinstance(content, str) else content_text(content)

    def to_dict(self) -> Dict[str, Any]:
        """``{"role": ..., "content": ...}``, the dict form ``complete`` also accepts: content a
        string or a list of part dicts; ``provider_state`` too when there is one."""
        content = self.content
        data: Dict[str, Any] = {
            "role": self.role,
            "content": content if isinstance(content, str) else [part.to_dict() for part in content],
        }
        if self.tool_calls:
            data["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.provider_state is not None:
            data["provider_state"] = self.provider_state
        return data

    def __repr__(self) -> str:
        calls = f", tool_calls={list(self.tool_calls)!r}" if self.tool_calls else ""
        state = "" if self.provider_state is None else ", provider_state={...}"
        return f"Message(role={self.role!r}, content={self.content!r}{calls}{state})"


class ToolResult(Message):
    """The answer to one ``ToolCall``: a message of role "tool". ``tool_call_id`` is the call's
    id, ``content`` what the tool returned (a string, or text and image parts; ``call.result``
    turns any other value into JSON), ``is_error`` True when the tool failed (the content then
    says how), and ``name`` the tool's name (Ollama needs it; ``call.result`` fills it in, and
    providers find it among the earlier calls when it is left out).
    """

    __slots__ = ("tool_call_id", "is_error", "name")
    tool_call_id: str
    is_error: bool
    name: Optional[str]

    def __init__(
        self,
        tool_call_id: str,
        content: Any,
        is_error: bool = False,
        name: Optional[str] = None,
        **message_fields: Any,
    ) -> None:
        # ``message_fields`` takes back what ``_replace`` and pickling pass: role and state.
        if message_fields.get("role", "tool") != "tool" or message_fields.get("tool_calls"):
            raise ConfigError("a ToolResult is a 'tool' message and has no tool_calls")
        if not isinstance(tool_call_id, str) or not tool_call_id:
            raise ConfigError(f"ToolResult needs the tool call's id (a non-empty string), got {tool_call_id!r}")
        if not isinstance(is_error, bool):
            raise ConfigError(f"ToolResult is_error must be True or False, got {is_error!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigError(f"ToolResult name must be a non-empty string, got {name!r}")
        if not isinstance(content, (str, tuple, list)) or (
            not isinstance(content, str) and not all(isinstance(part, Part) for part in content)
        ):
            content = result_text(content)
        elif not isinstance(content, str) and not content:
            content = ""
        super().__init__("tool", content, message_fields.get("provider_state"))
        object.__setattr__(self, "tool_call_id", tool_call_id)
        object.__setattr__(self, "is_error", is_error)
        object.__setattr__(self, "name", name)

    # -- value behaviour: Message's fields and these, under the constructor's names

    def _fields(self) -> Tuple[Any, ...]:
        return (self.tool_call_id, self.content, self.is_error, self.name, self.provider_state)

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (ToolResult, self._fields()[:4])

    def _replace(self, **changes: Any) -> ToolResult:
        fields = dict(zip(("tool_call_id", "content", "is_error", "name", "provider_state"), self._fields()))
        unknown = set(changes).difference(fields)
        if unknown:
            raise TypeError(f"ToolResult has no field {', '.join(sorted(unknown))}")
        fields.update(changes)
        return ToolResult(**fields)

    def to_dict(self) -> Dict[str, Any]:
        """``{"role": "tool", "tool_call_id", "content"}``, with ``is_error`` and ``name`` when set."""
        data = super().to_dict()
        data["tool_call_id"] = self.tool_call_id
        if self.is_error:
            data["is_error"] = True
        if self.name is not None:
            data["name"] = self.name
        return data

    def __repr__(self) -> str:
        error = ", is_error=True" if self.is_error else ""
        return f"ToolResult(tool_call_id={self.tool_call_id!r}, content={self.content!r}{error})"


#: What ``complete`` and ``stream`` accept: one user prompt, a list of messages, or a list of
#: parts (strings, ``Text``, ``Image``, part dicts) that is one user message.
MessagesInput = Union[str, Sequence[Union[Message, Mapping[str, Any], str, Part]]]


def as_messages(prompt_or_messages: MessagesInput, system: Optional[str] = None) -> List[Message]:
    """Coerce a prompt, a list of messages (``Message`` or ``{"role", "content"}`` dicts), or a
    list of parts with no roles (strings, ``Text``, ``Image``, ``{"type": ...}`` dicts), which
    is one user message: ``["What is the total?", Image.from_path("receipt.jpg")]``.

    ``system``, when given, becomes a leading system message.

    :raises ConfigError: for anything that is not a string or a list of well-formed messages
        or parts, or a list that mixes messages and parts.
    """
    messages: List[Message] = []
    if system is not None:
        if not isinstance(system, str):
            raise ConfigError(f"system must be a string, got {type(system).__name__}")
        messages.append(Message("system", system))
    if isinstance(prompt_or_messages, str):
        messages.append(Message("user", prompt_or_messages))
        return messages
    if isinstance(prompt_or_messages, (bytes, bytearray)) or not isinstance(
        prompt_or_messages, Sequence
    ):
        hint = " (put a part in a list: [\"question\", image])" if isinstance(prompt_or_messages, Part) else ""
        raise ConfigError(
            "prompt must be a string, a list of messages or a list of parts, "
            f"got {type(prompt_or_messages).__name__}{hint}"
        )
    if not prompt_or_messages:
        raise ConfigError("the list of messages is empty")
    if all(is_part_like(item) for item in prompt_or_messages):
        messages.append(Message("user", prompt_or_messages))
        return messages
    for index, item in enumerate(prompt_or_messages):
        if isinstance(item, Message):
            messages.append(item)
        elif isinstance(item, Mapping) and not is_part_like(item):
            messages.append(_message_of(item, index))
        elif is_part_like(item):
            raise ConfigError(
                f"message {index} is a part ({type(item).__name__}) in a list of messages: a list is either "
                "messages (with roles) or the parts of one user message, not both"
            )
        else:
            raise ConfigError(
                f"message {index} must be a Message or a dict with role and content, "
                f"got {type(item).__name__}"
            )
    return messages


def _message_of(item: Mapping[str, Any], index: int) -> Message:
    """A message dict: ``{"role", "content"}``; a tool result ``{"role": "tool", "tool_call_id",
    "content"}`` (``is_error``, ``name`` optional); an assistant turn with ``tool_calls``
    (OpenAI's shape, content null allowed)."""
    role = item.get("role")
    if role == "tool":
        if "tool_call_id" not in item:
            raise ConfigError(f"message {index} (role 'tool') has no tool_call_id")
        content = item.get("content", "")
        if isinstance(content, (list, tuple)) and content and all(is_part_like(part) for part in content):
            content = as_content(content, "tool")  # OpenAI's list of text parts
        return ToolResult(item["tool_call_id"], content, item.get("is_error", False), item.get("name"))
    missing = [key for key in ("role", "content") if key not in item and not (key == "content" and
                                                                            item.get("tool_calls"))]
    if missing:
        raise ConfigError(f"message {index} has no {' or '.join(missing)!s}")
    return Message(role, item.get("content"), item.get("provider_state"),  # type: ignore[arg-type]
                   item.get("tool_calls") or ())
