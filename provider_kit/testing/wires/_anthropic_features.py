"""What the Anthropic simulator checks and answers beyond plain text (PROTOCOLS-2 §E.3, §F.3,
§H.3, §I.2), written from the wire documentation, not from the client:

- content blocks: ``text`` (non-empty), ``image`` (user turns only; a base64 source of a known
  media type, that matches the bytes, at most 10 MB of base64, no ``data:`` prefix; or an
  http(s) url source), ``thinking`` / ``redacted_thinking`` (assistant turns only, and only as
  this simulator signed them: a block changed on the way back is refused, as the API does);
- ``thinking``: manual budgets (at least 1024, below ``max_tokens``) on the models that take
  them, adaptive on the others, ``temperature`` 1 and ``top_p`` >= 0.95 only;
- ``output_config``: ``format`` a ``json_schema`` whose every object is closed and that uses no
  constraint the grammar cannot compile; ``effort`` one of the API's levels;
- ``cache_control``: ephemeral markers, at most four, never on a thinking block; a per-server
  prompt cache so that the usage reports the tokens read from and written to it (there is no
  minimum cacheable length here, unlike the API's 512 to 4096 tokens);
- answers: a thinking block (or a redacted one, for the API's documented test string) before
  the text, a JSON text that fits the schema asked for, and ``output_tokens_details``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any, List, Optional, Sequence, Set, Tuple

from ._base import JSONDict, tokens

#: The prompt the API documents for testing redacted thinking (extended-thinking.md).
REDACTED_THINKING_TRIGGER = "ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_46C9A13E193C177646C7398A98432ECCCE4C1253"
MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
MAX_IMAGE_BASE64 = 10 * 1024 * 1024
MAX_BREAKPOINTS = 4
EFFORTS = ("low", "medium", "high", "xhigh", "max")
#: Schema keywords the grammar compiler refuses (numeric, length and most array constraints).
UNSUPPORTED_KEYWORDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
                        "minLength", "maxLength", "maxItems", "uniqueItems", "minProperties", "maxProperties")
#: Models that refuse manual budgets, and models that refuse adaptive thinking (§H.3's table).
ADAPTIVE_ONLY = ("claude-opus-4-7", "claude-opus-4-8", "claude-opus-5", "claude-sonnet-5", "claude-fable-5",
                 "claude-mythos-5")
MANUAL_ONLY = ("claude-3", "claude-opus-4-0", "claude-sonnet-4-0", "claude-opus-4-1", "claude-opus-4-2",
               "claude-sonnet-4-2", "claude-sonnet-4-5", "claude-opus-4-5", "claude-haiku-4-5")
_THINKING_DOC = "Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
_KEY = b"loopback-thinking-signature"
_IMAGE_MAGIC = {"image/png": (b"\x89PNG",), "image/jpeg": (b"\xff\xd8\xff",), "image/gif": (b"GIF87a", b"GIF89a"),
                "image/webp": (b"RIFF",)}


class Refusal(Exception):
    """A 400 the simulator answers: ``message`` as the API words it."""


def sign(kind: str, text: str) -> str:
    """The signature of a thinking block's text (or a redacted block's data), as this simulator
    makes it: any change to the text on the way back no longer matches."""
    return base64.b64encode(hmac.new(_KEY, f"{kind}:{text}".encode(), hashlib.sha256).digest()).decode()


class Thinking:
    """The request's ``thinking`` and ``output_config``, checked."""

    def __init__(self, body: JSONDict, model: str) -> None:
        config = body.get("thinking")
        self.on = self.manual = False
        self.display = "summarized"
        if config is not None:
            if not isinstance(config, dict) or config.get("type") not in ("enabled", "adaptive", "disabled"):
                raise Refusal("thinking.type: Input should be 'enabled', 'adaptive' or 'disabled'")
            kind = config["type"]
            self.display = config.get("display") or "summarized"
            if kind == "enabled":
                if model.startswith(ADAPTIVE_ONLY):
                    raise Refusal('"thinking.type.enabled" is not supported for this model. Use "thinking.type.'
                                  'adaptive" and "output_config.effort" to control thinking behavior.')
                budget = config.get("budget_tokens")
                if isinstance(budget, bool) or not isinstance(budget, int):
                    raise Refusal("thinking.enabled.budget_tokens: Field required")
                if budget < 1024:
                    raise Refusal("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
                if budget >= body["max_tokens"]:
                    raise Refusal(f"`max_tokens` must be greater than `thinking.budget_tokens`. {_THINKING_DOC}")
            elif kind == "adaptive" and model.startswith(MANUAL_ONLY):
                raise Refusal('"thinking.type.adaptive" is not supported for this model. Use "thinking.type.'
                              'enabled" with "budget_tokens".')
            self.on = kind != "disabled"
            self.manual = kind == "enabled"
        if self.on:
            if body.get("temperature", 1) != 1:
                raise Refusal(f"`temperature` may only be set to 1 when thinking is enabled. {_THINKING_DOC}")
            if body.get("top_p", 1) < 0.95:
                raise Refusal(f"`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled. "
                              f"{_THINKING_DOC}")
        output = body.get("output_config")
        self.schema: Optional[JSONDict] = None
        if output is not None:
            if not isinstance(output, dict):
                raise Refusal("output_config: Input should be a valid dictionary")
            effort = output.get("effort")
            if effort is not None and effort not in EFFORTS:
                raise Refusal("output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'")
            form = output.get("format")
            if form is not None:
                if not isinstance(form, dict) or form.get("type") != "json_schema" or "schema" not in form:
                    raise Refusal("output_config.format: 'type' must be 'json_schema' and 'schema' is required")
                check_schema(form["schema"], "output_config.format.schema")
                self.schema = form["schema"]


def check_schema(schema: Any, path: str) -> None:
    """Refuse what structured outputs refuse: an object not closed, a constraint not compiled."""
    if isinstance(schema, list):
        for item in schema:
            check_schema(item, path)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
        raise Refusal(f"{path}: For 'object' type, 'additionalProperties' must be explicitly set to false")
    for keyword in UNSUPPORTED_KEYWORDS:
        if keyword in schema:
            raise Refusal(f"{path}: property '{keyword}' is not supported")
    if schema.get("minItems", 0) not in (0, 1):
        raise Refusal(f"{path}: 'minItems' values other than 0 or 1 are not supported")
    for key in ("properties", "$defs"):
        for sub in (schema.get(key) or {}).values():
            check_schema(sub, path)
    for key in ("items", "anyOf", "allOf"):
        if key in schema:
            check_schema(schema[key], path)


def check_blocks(body: JSONDict, thinking: Thinking) -> List[JSONDict]:
    """Check the system prompt's and the messages' blocks and the cache markers.

    :returns: the messages with every block described as text, for the echo and the counts.
    """
    markers = 1 if body.get("cache_control") is not None else 0
    system = body.get("system")
    if isinstance(system, list):
        for index, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text":
                raise Refusal(f"system.{index}.type: Input should be 'text'")
            markers += _marker(block, f"system.{index}")
    described: List[JSONDict] = []
    messages = body["messages"]
    for m_index, message in enumerate(messages):
        content = message.get("content")
        role = message["role"]
        if isinstance(content, str):
            described.append({"role": role, "content": content})
            continue
        if not isinstance(content, list):
            raise Refusal(f"messages.{m_index}.content: Input should be a valid string or list")
        words: List[str] = []
        for b_index, block in enumerate(content):
            where = f"messages.{m_index}.content.{b_index}"
            if not isinstance(block, dict):
                raise Refusal(f"{where}: Input should be a valid dictionary")
            markers += _marker(block, where)
            words += _block_text(block, role, where)
        if (thinking.on and thinking.manual and role == "assistant" and m_index == len(messages) - 1
                and content and content[0].get("type") not in ("thinking", "redacted_thinking")):
            raise Refusal(f"{where[:where.rindex('.')]}.0.type: Expected `thinking` or `redacted_thinking`, but found "
                          f"`{content[0].get('type')}`. When `thinking` is enabled, a final `assistant` message must "
                          f"start with a thinking block. {_THINKING_DOC}")
        described.append({"role": role, "content": " ".join(word for word in words if word)})
    if markers > MAX_BREAKPOINTS:
        raise Refusal(f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {markers}.")
    if thinking.schema is not None and messages and messages[-1].get("role") == "assistant":
        raise Refusal("Prefilling the assistant message is not supported when using structured outputs "
                      "(output_config.format).")
    return described


def _marker(block: JSONDict, where: str) -> int:
    marker = block.get("cache_control")
    if marker is None:
        return 0
    if not isinstance(marker, dict) or marker.get("type") != "ephemeral" or marker.get("ttl", "5m") not in ("5m", "1h"):
        raise Refusal(f"{where}.cache_control: Input should be {{'type': 'ephemeral'}} with an optional ttl "
                      "'5m' or '1h'")
    if block.get("type") in ("thinking", "redacted_thinking"):
        raise Refusal(f"{where}.cache_control: thinking blocks cannot be cached directly")
    if block.get("type") == "text" and not block.get("text"):
        raise Refusal(f"{where}.cache_control: cache_control cannot be set for empty text blocks")
    return 1


def _block_text(block: JSONDict, role: str, where: str) -> List[str]:
    """A block checked, as the words the echo shows for it."""
    kind = block.get("type")
    if kind == "text":
        if not isinstance(block.get("text"), str) or not block["text"]:
            raise Refusal(f"{where}: text content blocks must be non-empty")
        return [block["text"]]
    if kind == "image":
        if role != "user":
            raise Refusal(f"{where}: image content blocks are only allowed in user messages")
        return [_image(block.get("source"), f"{where}.image.source")]
    if kind in ("thinking", "redacted_thinking"):
        if role != "assistant":
            raise Refusal(f"{where}: {kind} blocks are only allowed in assistant messages")
        field = "thinking" if kind == "thinking" else "data"
        text = block.get(field)
        expected = sign("thinking", str(text)) if kind == "thinking" else f"redacted:{sign('redacted', '')}"
        got = block.get("signature") if kind == "thinking" else text
        if not isinstance(text, str) or got != expected:
            raise Refusal(f"{where}: Invalid `signature` in `{kind}` block")
        return []  # thinking is not part of the conversation's text
    return []  # tool_use, tool_result, documents...: not simulated, accepted


def _image(source: Any, where: str) -> str:
    if not isinstance(source, dict) or source.get("type") not in ("base64", "url"):
        raise Refusal(f"{where}.type: Input should be 'base64' or 'url'")
    if source["type"] == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise Refusal(f"{where}.url: Only HTTP and HTTPS URLs are supported")
        return f"[image at {url}]"
    media_type, data = source.get("media_type"), source.get("data")
    if media_type not in MEDIA_TYPES:
        raise Refusal(f"{where}.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or "
                      "'image/webp'")
    if not isinstance(data, str) or data.startswith("data:"):
        raise Refusal(f"{where}.base64.data: Input should be base64 data without a data: URL prefix")
    if len(data) > MAX_IMAGE_BASE64:
        raise Refusal(f"{where}.base64: image exceeds 10 MB maximum: {len(data)} bytes > {MAX_IMAGE_BASE64} bytes")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise Refusal(f"{where}.base64.data: The image data is not valid base64") from None
    if not raw.startswith(_IMAGE_MAGIC[media_type]):
        raise Refusal(f"{where}.base64.data: Image does not match the provided media type {media_type}")
    return f"[{media_type} image, {len(raw)} bytes]"


# -- answers -----------------------------------------------------------------------------------

def thinking_blocks(thinking: Thinking, prompt: str) -> List[JSONDict]:
    """The thinking blocks answering ``prompt`` (none when thinking is off)."""
    if not thinking.on:
        return []
    if REDACTED_THINKING_TRIGGER in prompt:
        return [{"type": "redacted_thinking", "data": f"redacted:{sign('redacted', '')}"}]
    text = "" if thinking.display == "omitted" else f"The user wrote {len(prompt)} characters; I will echo them."
    return [{"type": "thinking", "thinking": text, "signature": sign("thinking", text)}]


def schema_instance(schema: Any, defs: Optional[JSONDict] = None) -> Any:
    """A value that fits ``schema``: the simulator's structured answer."""
    if not isinstance(schema, dict):
        return None
    defs = schema.get("$defs", defs) or {}
    if "$ref" in schema:
        return schema_instance(defs.get(str(schema["$ref"]).rsplit("/", 1)[-1]), defs)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "allOf"):
        if schema.get(key):
            return schema_instance(schema[key][0], defs)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {name: schema_instance(sub, defs) for name, sub in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [schema_instance(schema.get("items"), defs)] if schema.get("items") else []
    return {"string": _string(schema.get("format")), "integer": 42, "number": 4.5, "boolean": True}.get(str(kind))


def _string(form: Optional[str]) -> str:
    return {"email": "echo@example.com", "date": "2026-01-02", "date-time": "2026-01-02T03:04:05Z",
            "time": "03:04:05", "uuid": "00000000-0000-4000-8000-000000000000", "uri": "https://example.com/",
            "hostname": "example.com", "ipv4": "127.0.0.1", "ipv6": "::1", "duration": "P1D"}.get(form or "", "echo")


class PromptCache:
    """The server's prompt cache: the prefixes (model, blocks up to a breakpoint) written so
    far. A breakpoint reads the longest cached prefix ending at most 20 blocks before it."""

    LOOKBACK = 20

    def __init__(self) -> None:
        self.prefixes: Set[str] = set()

    def usage(self, body: JSONDict) -> Optional[Tuple[int, int, int]]:
        """``(input_tokens, cache_read, cache_creation)`` for a request with cache markers, the
        API's split; None for one without (nothing read or written)."""
        blocks: List[Tuple[Any, int, bool]] = []  # (block without its marker, tokens, marked)
        system = body.get("system")
        for block in _as_blocks(system) if system else []:
            blocks.append(_entry("system", block))
        for message in body["messages"]:
            for block in _as_blocks(message.get("content")):
                blocks.append(_entry(message["role"], block))
        if body.get("cache_control") is not None and blocks:
            blocks[-1] = (blocks[-1][0], blocks[-1][1], True)
        marks = [index for index, (_, _, marked) in enumerate(blocks) if marked]
        if not marks:
            return None
        total = sum(count for _, count, _ in blocks)
        keys = [_key(body["model"], blocks[: index + 1]) for index in range(len(blocks))]
        read_end = -1
        for mark in marks:
            for index in range(mark, max(-1, mark - self.LOOKBACK), -1):
                if keys[index] in self.prefixes:
                    read_end = max(read_end, index)
                    break
        read = sum(count for _, count, _ in blocks[: read_end + 1])
        written = sum(count for _, count, _ in blocks[: marks[-1] + 1]) - read
        self.prefixes.update(keys[mark] for mark in marks)
        return total - read - written, read, written


def _as_blocks(content: Any) -> List[Any]:
    """A string content is one text block to the API (and to its cache)."""
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])


def _entry(role: str, block: Any) -> Tuple[Any, int, bool]:
    if not isinstance(block, dict):
        return [role, block], 1, False
    kind = block.get("type")
    if kind == "text":
        count = tokens(str(block.get("text", "")))
    elif kind == "image":
        count = len(str((block.get("source") or {}).get("data", ""))) // 1000 + 10
    else:
        count = 0 if kind in ("thinking", "redacted_thinking") else 1
    bare = {key: value for key, value in block.items() if key != "cache_control"}
    return [role, bare], count, "cache_control" in block


def _key(model: str, blocks: Sequence[Tuple[Any, int, bool]]) -> str:
    data = json.dumps([model, [block for block, _, _ in blocks]], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()
