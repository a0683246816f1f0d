"""Tool calling on the simulated OpenAI wire (PROTOCOLS-2.md §G.1-§G.4, §H.2): the 400s the real
API answers to a malformed tool request or tool turn, and what the simulated model does with
tools (``ToolPlan``, shared by every wire).

Refused, worded as the real API words them where known:

* ``tools``: not an array, an empty array (OpenAI and vLLM both refuse ``"tools": []``), an
  entry that is not a function, a name that breaks ``^[a-zA-Z0-9_-]+$`` or 64 characters, and
  parameters that are not an object schema;
* ``tool_choice`` or ``parallel_tool_calls`` without tools, a ``tool_choice`` string that is not
  "none", "auto" or "required", and a named choice whose tool is not in ``tools``;
* an assistant turn's ``tool_calls`` without an id or with arguments that are not a string;
* a ``tool`` message that answers no call of the assistant turn just before it, and an
  assistant turn with calls not all answered before the next other message;
* with the ``tool_id_rule`` quirk ``"alnum9"`` (Mistral) a call id that is not 9 letters and
  digits; with ``echo_reasoning`` (DeepSeek) an assistant turn with calls but no
  ``reasoning_content``, while thinking is on.

A service whose ``tool_choices`` quirk lacks "name" (llama.cpp) reads a named choice as "auto";
one whose ``tool_choices`` is empty drops ``tools`` altogether (as Perplexity is reported to).
The ``tool_calls`` quirk scripts the calls the model makes: ``[(name, arguments)]``.
"""

from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Set, Tuple

from .._reply import Reply
from ._base import JSONDict, ToolPlan, content_text

if TYPE_CHECKING:
    from .openai import OpenAIWire

_NAME = re.compile(r"[a-zA-Z0-9_-]+")
_ALNUM9 = re.compile(r"[a-zA-Z0-9]{9}")
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHOICES = ("none", "auto", "required")


def check_tool_request(wire: OpenAIWire, body: JSONDict, thinking: bool) -> Optional[Reply]:
    """The 400 the real API answers to the tools, choice and tool turns of ``body``, or None."""
    problem = _tools_problem(body) or _messages_problem(body["messages"], wire.quirks, thinking)
    if problem is None:
        return None
    message, param = problem
    return wire.error_reply(400, message, param=param, code="invalid_value" if param else None)


def _tools_problem(body: JSONDict) -> Optional[Tuple[str, str]]:
    tools = body.get("tools")
    names: List[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            return (f"Invalid type for 'tools': expected an array, but got {_json_type(tools)} instead.", "tools")
        if not tools:
            return ("Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty "
                    "array instead.", "tools")
        for index, tool in enumerate(tools):
            where = f"tools[{index}]"
            kind = tool.get("type") if isinstance(tool, dict) else None
            if kind != "function":
                return (f"Invalid value: '{kind}'. Supported values are: 'function' and 'custom'.", f"{where}.type")
            function = tool.get("function")
            name = function.get("name") if isinstance(function, dict) else None
            if not isinstance(name, str):
                return (f"Missing required parameter: '{where}.function.name'.", f"{where}.function.name")
            if not _NAME.fullmatch(name):
                return (f"Invalid '{where}.function.name': string does not match pattern. Expected a string that "
                        "matches the pattern '^[a-zA-Z0-9_-]+$'.", f"{where}.function.name")
            if len(name) > 64:
                return (f"Invalid '{where}.function.name': string too long. Expected a string with maximum length "
                        f"64, but got a string with length {len(name)} instead.", f"{where}.function.name")
            parameters = function.get("parameters")
            if parameters is not None and (not isinstance(parameters, dict)
                                           or parameters.get("type", "object") != "object"):
                shown = parameters.get("type") if isinstance(parameters, dict) else _json_type(parameters)
                return (f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: \"object\"', "
                        f"got 'type: \"{shown}\"'.", f"{where}.function.parameters")
            names.append(name)
    choice = body.get("tool_choice")
    if choice is not None:
        if not names:
            return ("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                    "tool_choice")
        if isinstance(choice, str):
            if choice not in _CHOICES:
                return (f"Invalid value: '{choice}'. Supported values are: 'none', 'auto', and 'required'.",
                        "tool_choice")
        else:
            function = choice.get("function") if isinstance(choice, dict) else None
            name = function.get("name") if isinstance(function, dict) else None
            if not isinstance(name, str):
                return ("Missing required parameter: 'tool_choice.function.name'.", "tool_choice.function.name")
            if name not in names:
                # The real wording is not known first-hand (PROTOCOLS-2.md §G.4: vLLM gives 400 too).
                return (f"Invalid value for 'tool_choice': tool choice names function '{name}', which is not in "
                        "'tools'.", "tool_choice")
    if body.get("parallel_tool_calls") is not None and not names:
        return ("Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are "
                "specified.", "parallel_tool_calls")
    return None


def _messages_problem(messages: List[Any], quirks: Mapping[str, Any], thinking: bool) -> Optional[Tuple[str, str]]:
    """The tool turns' order (§G.2): each ``tool`` message answers a call of the assistant turn
    just before it (other tool messages between them), and every call is answered before the
    next message of another role."""
    alnum9 = quirks.get("tool_id_rule") == "alnum9"
    echo = bool(quirks.get("echo_reasoning")) and thinking
    offered: Set[str] = set()  # the ids of the assistant turn the tool messages now answer
    pending: List[str] = []  # those not answered yet
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str):
                return (f"Missing required parameter: 'messages[{index}].tool_call_id'.",
                        f"messages[{index}].tool_call_id")
            if alnum9 and not _ALNUM9.fullmatch(call_id):
                return (_alnum9_problem(call_id), f"messages[{index}].tool_call_id")
            if call_id not in offered:
                return ("Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
                        "with 'tool_calls'.", f"messages.[{index}].role")
            if call_id in pending:
                pending.remove(call_id)
            content = message.get("content")
            problem = _tool_content_problem(content, index)
            if problem:
                return problem
            continue
        if pending:
            return (_unanswered(pending), "messages")
        offered = set()
        calls = message.get("tool_calls") if role == "assistant" else None
        if calls:
            for number, call in enumerate(calls):
                where = f"messages[{index}].tool_calls[{number}]"
                problem = _call_problem(call, where, alnum9)
                if problem:
                    return problem
                offered.add(call["id"])
                pending.append(call["id"])
            if echo and "reasoning_content" not in message:
                return (f"Missing reasoning_content field in the assistant message at message index {index}",
                        f"messages[{index}]")
    if pending:
        return (_unanswered(pending), "messages")
    return None


def _call_problem(call: Any, where: str, alnum9: bool) -> Optional[Tuple[str, str]]:
    if not isinstance(call, dict) or not isinstance(call.get("id"), str):
        return (f"Missing required parameter: '{where}.id'.", f"{where}.id")
    if alnum9 and not _ALNUM9.fullmatch(call["id"]):
        return (_alnum9_problem(call["id"]), f"{where}.id")
    if call.get("type", "function") != "function":
        return (f"Invalid value: '{call.get('type')}'. Supported values are: 'function' and 'custom'.",
                f"{where}.type")
    function = call.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        return (f"Missing required parameter: '{where}.function.name'.", f"{where}.function.name")
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        return (f"Invalid type for '{where}.function.arguments': expected a string, but got "
                f"{_json_type(arguments)} instead.", f"{where}.function.arguments")
    return None


def _tool_content_problem(content: Any, index: int) -> Optional[Tuple[str, str]]:
    if isinstance(content, str):
        return None
    if not isinstance(content, list):
        return (f"Missing required parameter: 'messages[{index}].content'.", f"messages[{index}].content")
    for number, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text":
            return (f"Invalid value: '{kind}'. Supported values are: 'text'.",
                    f"messages[{index}].content[{number}].type")
    return None


def _unanswered(pending: List[str]) -> str:
    return ("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(pending)}")


def _alnum9_problem(call_id: str) -> str:
    return f"Tool call id was {call_id} but must be a-z, A-Z, 0-9, with a length of 9."  # Mistral's words


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# -- what the model does


def tool_plan(body: JSONDict, quirks: Mapping[str, Any]) -> Optional[ToolPlan]:
    """The simulated model's plan for a checked request, or None when tools play no part (no
    tools offered, and the request does not end with tool results)."""
    messages = body["messages"]
    tools = body.get("tools") or []
    served = quirks.get("tool_choices")
    if served is not None and not served:
        tools = []  # the service drops tools it does not support
    results: List[str] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.insert(0, content_text(message.get("content")))
    if not tools and not results:
        return None
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        choice = choice["function"]["name"] if served is None or "name" in served else "auto"
    user: Dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    scripted = quirks.get("tool_calls")
    return ToolPlan(
        [(tool["function"]["name"], tool["function"].get("parameters")) for tool in tools],
        choice, body.get("parallel_tool_calls") is not False, content_text(user.get("content")), results,
        scripted=scripted,
    )


def new_call_id(quirks: Mapping[str, Any]) -> str:
    """A call id as the service makes them: ``call_`` and 24 characters, or Mistral's 9."""
    if quirks.get("tool_id_rule") == "alnum9":
        return "".join(_ALPHABET[byte % 62] for byte in os.urandom(9))
    return "call_" + "".join(_ALPHABET[byte % 62] for byte in os.urandom(24))


def arguments_text(arguments: Any) -> str:
    """A scripted call's arguments as the wire carries them: a dict as JSON text, text as is."""
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)


def cut(text: str, fragments: int) -> List[str]:
    """``text`` in at most ``fragments`` pieces (of equal size but the last) that join back to it."""
    if fragments <= 1 or len(text) <= 1:
        return [text]
    size = -(-len(text) // fragments)
    return [text[start:start + size] for start in range(0, len(text), size)]


def wire_call(call_id: str, name: str, arguments: Any) -> Dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments_text(arguments)}}
