"""Tool use on the Anthropic simulator (PROTOCOLS-2 §G.5-§G.7, §H.3), written from the wire
documentation, not from the client.

Checks, each a 400 worded as the API words it where that is known (anthropics/claude-code and
other public reports quote them):

- ``tools``: a name of 1-64 letters, digits, "_" or "-", unique; ``input_schema`` present with
  ``type: "object"``;
- ``tool_choice``: ``auto``, ``any``, ``tool`` (naming an offered tool) or ``none`` (which takes
  no ``disable_parallel_tool_use``); a forced choice (``any``, ``tool``) with manual thinking is
  refused ("Thinking may not be enabled when tool_choice forces tool use.");
- the turns: every ``tool_use`` id of an assistant turn answered by a ``tool_result`` block at
  the start of the next (user) message (text first, or a missing result: "`tool_use` ids were
  found without `tool_result` blocks immediately after"); every ``tool_result`` answering a
  ``tool_use`` of the message before ("unexpected `tool_use_id` found in `tool_result`
  blocks"); ``input`` an object; and with manual thinking, the assistant turn of the tool loop
  the request ends in must start with its thinking block.

Answers follow ``ToolPlan`` (the same for every simulated wire): ``tool_use`` blocks after the
thinking block, ``stop_reason: "tool_use"``; streamed as in §G.7's worked example
(``content_block_start`` with an empty ``input``, ``input_json_delta`` fragments, the first
one "", none for a call without arguments, ``content_block_stop``).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Dict, List, Optional, Sequence

from .._reply import _dumps
from ._anthropic_features import _THINKING_DOC, Refusal
from ._base import JSONDict, ScriptedCall, ToolPlan, content_text

TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
THINKING_TYPES = ("thinking", "redacted_thinking")


def new_tool_use_id() -> str:
    return "toolu_01" + uuid.uuid4().hex[:22]


# -- the request ---------------------------------------------------------------------------------

def check_tools(body: JSONDict, manual_thinking: bool) -> None:
    """Refuse bad ``tools`` and ``tool_choice``."""
    tools = body.get("tools")
    names: List[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            raise Refusal("tools: Input should be a valid list")
        for index, tool in enumerate(tools):
            where = f"tools.{index}.custom"
            if not isinstance(tool, dict):
                raise Refusal(f"tools.{index}: Input should be a valid dictionary")
            name = tool.get("name")
            if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
                raise Refusal(f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
            if "input_schema" not in tool:
                raise Refusal(f"{where}.input_schema: Field required")
            schema = tool["input_schema"]
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise Refusal(f"{where}.input_schema.type: Input should be 'object'")
            if "description" in tool and not isinstance(tool["description"], str):
                raise Refusal(f"{where}.description: Input should be a valid string")
            if name in names:
                raise Refusal("tools: Tool names must be unique.")
            names.append(name)
    choice = body.get("tool_choice")
    if choice is None:
        return
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise Refusal("tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', "
                          "'tool', 'none'")
    kind = choice["type"]
    if kind == "none" and "disable_parallel_tool_use" in choice:
        raise Refusal("tool_choice.none.disable_parallel_tool_use: Extra inputs are not permitted")
    if kind == "tool":
        if not isinstance(choice.get("name"), str):
            raise Refusal("tool_choice.tool.name: Field required")
        if choice["name"] not in names:
            raise Refusal(f"tool_choice.tool.name: Tool '{choice['name']}' not found in tools")
    if kind in ("any", "tool") and manual_thinking:
        raise Refusal("Thinking may not be enabled when tool_choice forces tool use.")


def _blocks(message: Any) -> List[Any]:
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, list) else []


def _tool_use_ids(message: Any) -> List[str]:
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return []
    return [str(block.get("id")) for block in _blocks(message)
            if isinstance(block, dict) and block.get("type") == "tool_use"]


def check_tool_turns(messages: Sequence[Any], manual_thinking: bool) -> None:
    """Refuse tool turns the API refuses (see the module docstring)."""
    for m_index, message in enumerate(messages):
        blocks = _blocks(message)
        for b_index, block in enumerate(blocks):
            if isinstance(block, dict):
                _check_block(block, message.get("role"), f"messages.{m_index}.content.{b_index}")
        ids = _tool_use_ids(message)
        if ids:
            following = _blocks(messages[m_index + 1]) if m_index + 1 < len(messages) else []
            answered = []
            for block in following:  # the tool_result blocks the next message starts with
                if not isinstance(block, dict) or block.get("type") != "tool_result":
                    break
                answered.append(block.get("tool_use_id"))
            missing = [call_id for call_id in ids if call_id not in answered]
            if missing:
                raise Refusal(f"messages.{m_index}: `tool_use` ids were found without `tool_result` blocks "
                                  f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                                  "corresponding `tool_result` block in the next message.")
        if message.get("role") == "user":
            expected = _tool_use_ids(messages[m_index - 1]) if m_index else []
            for b_index, block in enumerate(blocks):
                if isinstance(block, dict) and block.get("type") == "tool_result" \
                        and block.get("tool_use_id") not in expected:
                    raise Refusal(f"messages.{m_index}.content.{b_index}: unexpected `tool_use_id` found in "
                                      f"`tool_result` blocks: {block.get('tool_use_id')}. Each `tool_result` block "
                                      "must have a corresponding `tool_use` block in the previous message.")
    if manual_thinking:
        _check_loop_thinking(messages)


def _check_block(block: JSONDict, role: Any, where: str) -> None:
    kind = block.get("type")
    if kind == "tool_use":
        if role != "assistant":
            raise Refusal(f"{where}: tool_use blocks are only allowed in assistant messages")
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            raise Refusal(f"{where}.tool_use: 'id' and 'name' are required strings")
        if not isinstance(block.get("input"), dict):
            raise Refusal(f"{where}.tool_use.input: Input should be a valid dictionary")
    elif kind == "tool_result":
        if role != "user":
            raise Refusal(f"{where}: tool_result blocks are only allowed in user messages")
        content = block.get("content", "")
        if not isinstance(content, (str, list)) or (isinstance(content, list) and not all(
                isinstance(part, dict) and part.get("type") in ("text", "image", "document", "search_result")
                for part in content)):
            raise Refusal(f"{where}.tool_result.content: Input should be a valid string or a list of text, "
                              "image, document or search_result blocks")
        if not isinstance(block.get("is_error", False), bool):
            raise Refusal(f"{where}.tool_result.is_error: Input should be a valid boolean")


def _check_loop_thinking(messages: Sequence[Any]) -> None:
    """With manual thinking, a request that ends inside a tool loop (its last message starts
    with tool results) needs the loop's assistant turn to start with its thinking block."""
    last = _blocks(messages[-1]) if messages else []
    if len(messages) < 2 or not last or not isinstance(last[0], dict) or last[0].get("type") != "tool_result":
        return
    a_index = len(messages) - 2
    first = _blocks(messages[a_index])[:1]
    found = first[0].get("type") if first and isinstance(first[0], dict) else "text"
    if found not in THINKING_TYPES:
        raise Refusal(
            f"messages.{a_index}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{found}`. "
            "When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding "
            "the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks "
            f"from previous turns. To avoid this requirement, disable `thinking`. {_THINKING_DOC}")


def result_text(block: JSONDict) -> str:
    """A ``tool_result`` block's content as text (for the answer after results and the echo)."""
    return content_text(block.get("content", ""))


def tool_plan(body: JSONDict, scripted: Optional[Sequence[Any]]) -> Optional[ToolPlan]:
    """What the model does with the request's tools (None when it offers none)."""
    tools = body.get("tools")
    if not tools:
        return None
    choice_param = body.get("tool_choice") or {"type": "auto"}
    kind = choice_param["type"]
    choice = {"auto": "auto", "any": "required", "none": "none"}.get(kind) or str(choice_param.get("name"))
    messages = body["messages"]
    last = messages[-1] if messages else {}
    results = [result_text(block) for block in _blocks(last)
               if isinstance(block, dict) and block.get("type") == "tool_result"] if last.get("role") == "user" else []
    prompts = [content_text(m.get("content")) for m in messages if m.get("role") == "user"]
    prompt = next((text for text in reversed(prompts) if text), "")
    return ToolPlan([(tool["name"], tool["input_schema"]) for tool in tools], choice,
                    not choice_param.get("disable_parallel_tool_use", False), prompt, results, scripted)


# -- the answer ----------------------------------------------------------------------------------

def tool_use_block(call_id: Optional[str], name: str, arguments: Any) -> JSONDict:
    """A ``tool_use`` block. Arguments given as JSON text are the object they stand for; text
    that is not a JSON object (which the API never sends whole) stays a string, for a client's
    handling of a broken answer."""
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments)
        except ValueError:
            parsed = None
        arguments = parsed if isinstance(parsed, dict) else arguments
    return {"type": "tool_use", "id": call_id or new_tool_use_id(), "name": name, "input": arguments}


def scripted_blocks(calls: Sequence[ScriptedCall]) -> List[JSONDict]:
    return [tool_use_block(call_id, name, arguments) for call_id, name, arguments in calls]


def event(name: str, data: JSONDict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _dumps(dict({"type": name}, **data)) + b"\n\n"


def fragments_of(text: str, count: int) -> List[str]:
    """``text`` cut into ``count`` pieces at most (none empty), in order."""
    count = max(1, min(count, len(text)))
    size, extra = divmod(len(text), count)
    pieces, start = [], 0
    for number in range(count):
        end = start + size + (1 if number < extra else 0)
        pieces.append(text[start:end])
        start = end
    return [piece for piece in pieces if piece]


def tool_use_events(index: int, block: JSONDict, fragments: int, raw: Optional[str] = None) -> List[bytes]:
    """One ``tool_use`` block streamed: its start with ``input: {}``, then its JSON text (``raw``,
    or the input's) as ``input_json_delta`` fragments after an empty first one, then its stop;
    a call without arguments sends no delta."""
    out = [event("content_block_start", {"index": index, "content_block": dict(block, input={})})]
    text = raw if raw is not None else (json.dumps(block["input"], ensure_ascii=False) if block["input"] else "")
    if text:
        out += [event("content_block_delta", {"index": index, "delta": {"type": "input_json_delta",
                                                                        "partial_json": piece}})
                for piece in ["", *fragments_of(text, fragments)]]
    out.append(event("content_block_stop", {"index": index}))
    return out


def raw_arguments(arguments: Any) -> Optional[str]:
    """The JSON text a scripted call's arguments stream as: raw text as given."""
    return arguments if isinstance(arguments, str) else None


def arguments_as_blocks(calls: Sequence[Any]) -> List[Dict[str, Any]]:
    """The plan's ``(name, arguments)`` calls as ``tool_use`` blocks with fresh ids."""
    return [tool_use_block(None, name, arguments) for name, arguments in calls]
