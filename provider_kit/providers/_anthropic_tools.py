"""Anthropic's tool calling, request side (PROTOCOLS-2 §G.5-§G.6, §H.3): the ``tools`` and
``tool_choice`` of the body, and the tool turns of the history.

- ``tools``: ``{"name", "description" (when there is one), "input_schema"}``, as the anthropic
  SDK sends a ``ToolParam``.
- ``tool_choice``: "auto" -> ``{"type": "auto"}``, "required" -> ``{"type": "any"}``, a tool's
  name -> ``{"type": "tool", "name"}``, "none" -> ``{"type": "none"}``.
  ``parallel_tool_calls=False`` is ``disable_parallel_tool_use: true`` on that choice (on
  ``auto`` when none is given); with "none" no call is made at all, and ``{"type": "none"}``
  has no such field: nothing more is sent.
- an assistant turn with ``tool_calls``: its thinking blocks first (unchanged), then its text,
  then one ``tool_use`` block per call, ``input`` the arguments object. A call whose arguments
  are not a JSON object (the model wrote invalid JSON) is sent back with ``input: {}``: the API
  takes objects only, and the ``ToolResult`` answering it says what went wrong.
- ``ToolResult`` messages in a row become ONE user turn that starts with their ``tool_result``
  blocks; a user message right after them joins that turn, after the results (the API wants
  the results first and user and assistant turns alternating).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Sequence

from .._messages import ToolResult
from .._tools import Tool, ToolCall

#: ``tool_choice`` -> the API's ``type`` (a tool's name is ``{"type": "tool", "name"}``).
CHOICE_TYPES = {"auto": "auto", "required": "any", "none": "none"}


def tool_param(tool: Tool) -> Dict[str, Any]:
    """One tool as the API takes it (``types/tool_param.py``)."""
    param: Dict[str, Any] = {"name": tool.name}
    if tool.description:
        param["description"] = tool.description
    param["input_schema"] = tool.parameters
    return param


def tool_choice_param(choice: Any, parallel: Any) -> Any:
    """The ``tool_choice`` object, or None when the API's default (auto) is meant."""
    if choice is None and parallel is not False:
        return None
    kind = CHOICE_TYPES.get(choice or "auto")
    param: Dict[str, Any] = {"type": kind} if kind is not None else {"type": "tool", "name": choice}
    if parallel is False and kind != "none":
        param["disable_parallel_tool_use"] = True
    return param


def is_forced(choice: Any) -> bool:
    """Whether a ``tool_choice`` makes the model call a tool ("required" or a tool's name)."""
    return choice is not None and choice not in ("auto", "none")


def tool_use_blocks(calls: Sequence[ToolCall]) -> List[Dict[str, Any]]:
    """An assistant turn's calls as ``tool_use`` blocks. Arguments that are not a JSON object
    are sent as ``{}`` (see the module docstring)."""
    blocks = []
    for call in calls:
        arguments = call.arguments if call.arguments_error is None else {}
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def tool_result_block(result: ToolResult, parts: Callable[[Any], List[Dict[str, Any]]]) -> Dict[str, Any]:
    """One ``tool_result`` block: the content a string, or text and image blocks (``parts``
    turns the result's parts into them); ``is_error`` only when set."""
    block: Dict[str, Any] = {"type": "tool_result", "tool_use_id": result.tool_call_id}
    content = result.content
    if isinstance(content, str):
        if content:  # the content is optional; an empty text block would be refused
            block["content"] = content
    else:
        blocks = parts(content)
        if blocks:
            block["content"] = blocks
    if result.is_error:
        block["is_error"] = True
    return block


def merge_tool_turns(chat: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The messages with each run of ``tool`` entries (whose ``content`` is a ``tool_result``
    block) turned into one user turn, joined by the user message that follows it, if any."""
    merged: List[Dict[str, Any]] = []
    index = 0
    while index < len(chat):
        message = chat[index]
        index += 1
        if message["role"] != "tool":
            merged.append(message)
            continue
        blocks = [message["content"]]
        while index < len(chat) and chat[index]["role"] == "tool":
            blocks.append(chat[index]["content"])
            index += 1
        if index < len(chat) and chat[index]["role"] == "user":
            content = chat[index]["content"]
            if isinstance(content, str):
                content = [{"type": "text", "text": content}] if content else []
            blocks += content
            index += 1
        merged.append({"role": "user", "content": blocks})
    return merged

