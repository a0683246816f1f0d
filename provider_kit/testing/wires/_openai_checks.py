"""What the OpenAI Chat Completions simulator checks in a request beyond text, and the answer it
works out (PROTOCOLS-2.md §E.1, §F.1-2, §H.1-2, §I.1).

Checks, each a 400 worded as the real API words it: image parts only in user messages, an image
URL that is ``http(s)`` or a base64 ``data:image/...`` URL, ``detail`` one of the known values;
no unknown fields in a message (a reasoning field only where the service returns one);
``response_format`` of a mode the service serves, a ``json_schema`` with a valid name and, with
``strict: true``, a strict-compatible schema; ``json_object`` only with "json" in the messages;
``reasoning_effort`` a known value, for a model that takes it; ``top_p`` within 0-1; the seed
under the service's own field name.

The answer: the usual echo of the last user message, with each image described
(``[image image/png 68 bytes detail=low]``, ``[image https://...]``) so tests can see the wire
carried it; for ``response_format`` a JSON text (an instance of the schema, or ``{"echo": ...}``);
thinking text when the service thinks aloud; a refusal when the ``refusal`` quirk is set.
Tools, tool choices and tool turns are checked in ``_openai_tools``.
Written from the wire documentation, sharing no code with the client.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Set, Tuple

from .._reply import Reply
from ._base import JSONDict, _split, content_text, tokens
from ._openai_tools import check_tool_request

if TYPE_CHECKING:
    from .openai import OpenAIWire

_MESSAGE_FIELDS = {"role", "content", "name", "tool_calls", "tool_call_id", "refusal", "audio", "function_call"}
_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
_DETAILS = ("auto", "low", "high", "original")
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_SCHEMA_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_FORMAT_MODES = {"json_schema": "schema", "json_object": "json"}


def check_chat_request(wire: OpenAIWire, body: JSONDict) -> Optional[Reply]:
    """The 400 the real API answers to ``body``, or None when it takes it."""
    quirks = wire.quirks
    allowed = set(_MESSAGE_FIELDS)
    if quirks.get("reasoning_field"):
        allowed.add(quirks["reasoning_field"])
    for index, message in enumerate(body["messages"]):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            return wire.error_reply(400, f"Invalid value for 'messages[{index}].role'.", param=f"messages[{index}]")
        unknown = sorted(set(message) - allowed)
        if unknown:
            return wire.error_reply(400, f"Additional properties are not allowed ('{unknown[0]}' was unexpected) "
                                    f"- 'messages.{index}'", param=f"messages[{index}]")
        content = message.get("content")
        if isinstance(content, list):
            problem = _check_parts(content, message["role"], index)
            if problem:
                return wire.error_reply(400, problem, param=f"messages[{index}].content")
    problem = _check_response_format(body, quirks)
    if problem:
        return wire.error_reply(400, problem, param="response_format")
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort not in _EFFORTS:
            return wire.error_reply(400, f"Invalid value: '{effort}'. Supported values are: 'none', 'minimal', "
                                    "'low', 'medium', 'high', 'xhigh' and 'max'.", param="reasoning_effort")
        pattern = quirks.get("reasoning_models")
        if pattern and not re.search(pattern, str(body["model"])):
            return wire.error_reply(400, "Unsupported parameter: 'reasoning_effort' is not supported with this "
                                    "model.", param="reasoning_effort", code="unsupported_parameter")
    top_p = body.get("top_p")
    if top_p is not None and (not isinstance(top_p, (int, float)) or not 0 <= top_p <= 1):
        return wire.error_reply(400, f"Invalid 'top_p': expected a number from 0 to 1, but got {top_p!r} instead.",
                                param="top_p")
    seed_field = quirks.get("seed_field") or "seed"
    for name in {"seed", "random_seed"} - {seed_field}:
        if name in body:
            return wire.error_reply(400, f"Unrecognized request argument supplied: {name}", param=name)
    if seed_field in body and not isinstance(body[seed_field], int):
        return wire.error_reply(400, f"Invalid type for '{seed_field}': expected an integer.", param=seed_field)
    if "tools" in body or "tool_choice" in body or "parallel_tool_calls" in body or any(
        message.get("role") == "tool" or message.get("tool_calls") for message in body["messages"]
    ):
        return check_tool_request(wire, body, thinking=bool(quirks.get("reasoning_field")) and not _thinking_off(body))
    return None


def _check_parts(parts: List[Any], role: str, index: int) -> Optional[str]:
    for number, part in enumerate(parts):
        where = f"messages[{index}].content[{number}]"
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            return f"Invalid '{where}': expected an object with a 'type'."
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                return f"Missing required parameter: '{where}.text'."
            continue
        if part["type"] != "image_url":
            continue  # input_audio, file...: not simulated, accepted
        if role != "user":
            return (f"Invalid 'messages[{index}]'. Image URLs are only allowed for messages with role 'user', "
                    f"but this message with role '{role}' contains an image URL.")
        image = part.get("image_url")
        if not isinstance(image, dict):
            return f"Missing required parameter: '{where}.image_url'."
        url = image.get("url")
        if not isinstance(url, str):
            return f"Missing required parameter: '{where}.image_url.url'."
        if image.get("detail") is not None and image["detail"] not in _DETAILS:
            return (f"Invalid value: '{image['detail']}'. Supported values are: 'auto', 'low', 'high' "
                    "and 'original'.")
        if url.startswith("data:") and _data_url_image(url) is None:
            return (f"Invalid '{where}.image_url.url'. Expected a base64-encoded data URL with an image MIME "
                    "type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got an invalid value.")
        if not url.startswith(("data:", "http://", "https://")):
            return f"Invalid '{where}.image_url.url': expected a URL or a data URL."
    return None


def _data_url_image(url: str) -> Optional[bytes]:
    header, comma, payload = url[5:].partition(",")
    if not comma or header.split(";")[0] not in _IMAGE_TYPES or not header.endswith(";base64"):
        return None
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


def _check_response_format(body: JSONDict, quirks: Mapping[str, Any]) -> Optional[str]:
    response_format = body.get("response_format")
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    served = tuple(quirks.get("structured_output") or ())
    if kind not in _FORMAT_MODES or _FORMAT_MODES[kind] not in served:
        if served == ("schema",):  # LM Studio's words (§F.2)
            return "'response_format.type' must be 'json_schema' or 'text'"
        if kind in _FORMAT_MODES:  # DeepSeek's words
            return "This response_format type is unavailable now"
        return f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object' and 'json_schema'."
    if kind == "json_object":
        said = " ".join(content_text(m.get("content")) for m in body["messages"]).lower()
        if "json" not in said:
            return ("'messages' must contain the word 'json' in some form, to use 'response_format' of type "
                    "'json_object'.")
        return None
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        return "Missing required parameter: 'response_format.json_schema.name'."
    if not _SCHEMA_NAME.fullmatch(spec["name"]):
        return ("Invalid 'response_format.json_schema.name': string does not match pattern. Expected a string "
                "that matches the pattern '^[a-zA-Z0-9_-]+$'.")
    if spec.get("strict") is True:
        return _strict_problem(spec["name"], spec.get("schema"), ())
    return None


def _strict_problem(name: str, schema: Any, path: Tuple[str, ...]) -> Optional[str]:
    """OpenAI's words for the first part of ``schema`` strict mode cannot take (§F.1)."""
    if isinstance(schema, list):
        for item in schema:
            problem = _strict_problem(name, item, path)
            if problem:
                return problem
        return None
    if not isinstance(schema, dict):
        return None
    context = f"Invalid schema for response_format '{name}': In context={path!r}, "
    if schema.get("type") == "object" or isinstance(schema.get("properties"), dict):
        if schema.get("additionalProperties") is not False:
            return context + "'additionalProperties' is required to be supplied and to be false."
        properties = schema.get("properties") or {}
        required = schema.get("required") or []
        missing = [key for key in properties if key not in required]
        if missing:
            return context + (f"'required' is required to be supplied and to be an array including every key in "
                              f"properties. Missing '{missing[0]}'.")
    for key, value in schema.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            for sub, item in value.items():
                problem = _strict_problem(name, item, (*path, key, sub))
                if problem:
                    return problem
        elif key in ("items", "anyOf", "allOf"):
            problem = _strict_problem(name, value, (*path, key))
            if problem:
                return problem
    return None


class ChatTurn:
    """The simulator's answer to one checked request: ``text`` and its ``pieces`` (cut at the
    output limit: ``truncated``), ``reasoning`` and its pieces, ``refusal``, and the counts."""

    def __init__(self, body: JSONDict, quirks: Mapping[str, Any], seen_prompts: Set[str],
                 answer: Optional[str] = None) -> None:
        messages = body["messages"]
        user: Dict[str, Any] = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        said = _described(user.get("content"))
        refusal = quirks.get("refusal")
        self.refusal = bool(refusal)
        if refusal:
            answer = str(refusal)
        elif answer is None:  # else the answer after tool results (``ToolPlan.text``)
            answer = _json_answer(body.get("response_format"), said) or "echo: " + said
        self.reasoning = ""
        if quirks.get("reasoning_field") and not _thinking_off(body) and not refusal:
            self.reasoning = "thinking about: " + said
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        limit = limit if isinstance(limit, int) else None
        pieces = _split(answer)
        self.truncated = limit is not None and 0 <= limit < len(pieces)
        self.pieces = pieces[:limit] if self.truncated else pieces
        self.text = "".join(self.pieces)
        self.reasoning_pieces = _split(self.reasoning)
        self.reasoning_tokens = len(self.reasoning_pieces)
        effort = body.get("reasoning_effort")
        if not self.reasoning and effort not in (None, "none"):
            self.reasoning_tokens = 3 * (1 + _EFFORTS.index(effort))  # hidden thinking (api.openai.com)
        self.output_tokens = len(self.pieces) + self.reasoning_tokens
        counts = [tokens(_described(m.get("content"))) for m in messages if isinstance(m, dict)]
        self.input_tokens = sum(counts)
        self.cached_tokens = 0
        keys = [json.dumps(messages[: end + 1], sort_keys=True) for end in range(len(messages))]
        for end in range(len(messages) - 1, 0, -1):  # the longest earlier prompt this one extends
            if keys[end - 1] in seen_prompts:
                self.cached_tokens = sum(counts[:end])
                break
        seen_prompts.update(keys)


def _described(content: Any) -> str:
    """A message's text, each image part described where it stands."""
    if not isinstance(content, list):
        return content_text(content)
    said: List[str] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            said.append(str(part.get("text", "")))
        elif part.get("type") == "image_url":
            image = part.get("image_url") or {}
            url = str(image.get("url", ""))
            data = _data_url_image(url) if url.startswith("data:") else None
            shown = f"{url[5:].split(';')[0]} {len(data)} bytes" if data is not None else url
            detail = f" detail={image['detail']}" if image.get("detail") else ""
            said.append(f"[image {shown}{detail}]")
    return " ".join(said)


def _thinking_off(body: JSONDict) -> bool:
    thinking = body.get("thinking")
    kwargs = body.get("chat_template_kwargs")
    return (
        body.get("reasoning_effort") == "none"
        or (isinstance(thinking, dict) and thinking.get("type") == "disabled")
        or (isinstance(kwargs, dict) and kwargs.get("enable_thinking") is False)
    )


def _json_answer(response_format: Any, said: str) -> Optional[str]:
    if not isinstance(response_format, dict) or response_format.get("type") not in _FORMAT_MODES:
        return None
    if response_format["type"] == "json_object":
        return json.dumps({"echo": said})
    schema = (response_format.get("json_schema") or {}).get("schema") or {}
    return json.dumps(_instance(schema, schema, said, 0))


def _instance(schema: Any, root: Dict[str, Any], said: str, depth: int) -> Any:
    """A value that fits ``schema``: strings say what the user said."""
    if not isinstance(schema, dict) or depth > 20:
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for key in ref[2:].split("/"):
            target = target.get(key, {}) if isinstance(target, dict) else {}
        return _instance(target, root, said, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        variants = [v for v in schema.get(key) or () if isinstance(v, dict) and v.get("type") != "null"]
        if variants:
            return _instance(variants[0], root, said, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {key: _instance(value, root, said, depth + 1) for key, value in properties.items()}
    if kind == "array":
        return [_instance(schema.get("items") or {}, root, said, depth + 1)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "echo: " + said
