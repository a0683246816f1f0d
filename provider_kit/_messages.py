"""The input side of a call: ``Message`` and the coercion of what ``complete`` and ``stream``
accept (a prompt, a list of messages, or a list of parts) into a list of messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Sequence, Union

from ._parts import Content, Part, as_content, content_text, is_part_like
from ._value import _Value
from .errors import ConfigError

__all__ = ["Message", "MessagesInput", "as_messages"]


class Message(_Value):
    """One chat message: ``role`` is "system", "user", "assistant" (or "tool").

    ``content`` is a string, or a tuple of parts (``Text``, ``Image``): a list given here, or
    to ``complete``, may mix parts, plain strings (text) and OpenAI-shaped part dicts.
    ``provider_state`` is what a protocol needs back in a later turn (Anthropic's thinking
    signatures), opaque and None for a message the caller wrote: ``completion.message``
    carries it, so appending that message to a conversation sends it back.
    """

    __slots__ = ("role", "content", "provider_state")
    role: str
    content: Content
    provider_state: Optional[Dict[str, Any]]

    def __init__(
        self,
        role: str,
        content: Union[str, Sequence[Any]],
        provider_state: Optional[Mapping[str, Any]] = None,
    ) -> None:
        if not isinstance(role, str) or not role:
            raise ConfigError(f"message role must be a non-empty string, got {role!r}")
        if not isinstance(content, str):
            content = as_content(content, role)
        if provider_state is not None:
            if not isinstance(provider_state, Mapping):
                raise ConfigError(f"message provider_state must be a dict, got {type(provider_state).__name__}")
            provider_state = dict(provider_state)
        self._set(role=role, content=content, provider_state=provider_state)

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
        if self.provider_state is not None:
            data["provider_state"] = self.provider_state
        return data

    def __repr__(self) -> str:
        state = "" if self.provider_state is None else ", provider_state={...}"
        return f"Message(role={self.role!r}, content={self.content!r}{state})"


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
            missing = [key for key in ("role", "content") if key not in item]
            if missing:
                raise ConfigError(f"message {index} has no {' or '.join(missing)!s}")
            messages.append(Message(item["role"], item["content"], item.get("provider_state")))
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
