"""Anthropic's Messages API. Wire format: PROTOCOLS.md §B; images, structured output, thinking
and prompt caching: PROTOCOLS-2 §E.3, §F.3, §H.3, §I.2. Reading answers: ``_anthropic_answers``."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple

from .._messages import ToolResult
from .._options import Validator, as_bool, as_choice, as_positive_int, as_str
from .._parts import Image, Text
from .._streaming import SSE
from ..errors import ConfigError, InvalidRequestError
from ..types import Message
from ._answers import ParsedAnswer
from ._anthropic_answers import ERROR_TYPE_STATUS as ERROR_TYPE_STATUS  # its home before the split
from ._anthropic_answers import (
    THINKING_BLOCKS,
    THINKING_TYPES,
    _AnthropicStream,
    anthropic_error,
    anthropic_usage,
    read_blocks,
    thinking_state,
)

# The tool code (``_anthropic_tools``) is imported by the first call that has tools or tool
# turns: a plain call, and ``import provider_kit``, never load it.
from ._base import HTTPProvider
from ._calls import ChatCall, RequestSpec
from ._listing import listed_as_alias, model_ids

#: The API version sent unless configured: the one every model and parameter still accepts.
DEFAULT_API_VERSION = "2023-06-01"
#: The first API version without sampling parameters (temperature, top_p, top_k); versions
#: are ISO dates, so every later one compares greater.
_NO_SAMPLING_SINCE = "2026-10-21"
#: ``max_tokens`` is required by the API; this is sent when the caller gives none.
DEFAULT_MAX_TOKENS = 4096
#: Ids per page of ``GET /v1/models``: the API's largest (its default is 20).
MODELS_PAGE_SIZE = 1000

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

#: ``reasoning=`` level -> ``thinking.budget_tokens`` in manual ("budget") mode, each level four
#: times the last, from the API's minimum up (the ``thinking_budgets`` option changes them).
THINKING_BUDGETS = {"low": 1024, "medium": 4096, "high": 16384}
#: The smallest ``budget_tokens`` the API takes.
MIN_THINKING_BUDGET = 1024
#: With thinking on, ``top_p`` may only be from this to 1, and ``temperature`` only 1.
MIN_TOP_P_WITH_THINKING = 0.95
#: The largest image the Claude API takes, counted in base64 bytes (vision.md: 10 MB; 5 MB on
#: Bedrock and Vertex, where the ``max_image_bytes`` option lowers it).
MAX_IMAGE_BYTES = 10 * 1024 * 1024
#: The prompt-caching marker (``types/cache_control_ephemeral_param.py``; the default 5-minute TTL).
EPHEMERAL = {"type": "ephemeral"}

#: A model name's family version: ``claude-sonnet-4-5-20250929`` -> 4.5, ``claude-opus-4-20250514``
#: -> 4.0 (a date is no minor version), ``claude-3-7-sonnet`` -> 3.7, ``claude-fable-5`` -> 5.0.
_MODEL_VERSION = re.compile(r"claude-(?:[a-z]+-(\d+)(?:-(\d)(?!\d))?|(\d)(?:-(\d))?-[a-z]+)")
#: The first version that takes adaptive thinking; later ones refuse manual budgets (§H.3).
_ADAPTIVE_SINCE = (4, 6)


def thinking_mode(model: str, configured: str = "auto") -> str:
    """How ``reasoning=`` asks ``model`` to think: "budget" (``{"type": "enabled",
    "budget_tokens"}``) or "adaptive" (``{"type": "adaptive"}`` + ``output_config.effort``).
    "auto" reads the model's version: adaptive from Claude 4.6 on (4.7 and later, and the 5
    family, refuse manual budgets), manual budgets before (4.5 and older refuse adaptive), and
    manual for a name it cannot read (an alias: configure ``thinking`` for it)."""
    if configured != "auto":
        return configured
    match = _MODEL_VERSION.search(model.lower())
    if match is None:
        return "budget"
    major = match.group(1) or match.group(3)
    minor = match.group(2) or match.group(4) or "0"
    return "adaptive" if (int(major), int(minor)) >= _ADAPTIVE_SINCE else "budget"


def _as_budgets(value: Any) -> Dict[str, int]:
    """The ``thinking_budgets`` option: a table of level -> budget_tokens (at least 1024)."""
    if not isinstance(value, Mapping):
        raise ValueError("must be a table such as {low = 1024, medium = 4096, high = 16384}")
    budgets = dict(THINKING_BUDGETS)
    for level, budget in value.items():
        if level not in THINKING_BUDGETS:
            raise ValueError(f"has unknown level {level!r} (levels: low, medium, high)")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
            raise ValueError(f"entry {level!r} must be an integer of at least {MIN_THINKING_BUDGET} (the API's "
                             "minimum budget_tokens)")
        budgets[level] = budget
    return budgets


class AnthropicProvider(HTTPProvider):
    """Anthropic's ``POST {base_url}/v1/messages``; ``base_url`` has no ``/v1``.

    Options beyond the common ones: ``anthropic_version`` (default ``2023-06-01``; under
    ``2026-10-21`` a ``temperature`` or ``top_p`` is refused before sending, as the API would
    refuse it), ``default_max_tokens`` (default 4096), sent when a call gives no ``max_tokens``;
    ``thinking`` ("auto", "budget" or "adaptive": how ``reasoning=`` asks, see
    ``thinking_mode``), ``thinking_budgets`` (the ``budget_tokens`` of each level, default
    ``THINKING_BUDGETS``), ``cache`` (true: every call marks its prompt for caching, as
    ``cache=True`` does; a call's ``cache=False`` turns it off) and ``max_image_bytes`` (the
    largest image sent, in base64 bytes; default 10 MB, the API's limit).
    ``$ANTHROPIC_API_KEY`` is sent only to api.anthropic.com or the server
    ``$ANTHROPIC_BASE_URL`` names; a loopback ``base_url`` (a local proxy) needs no key.

    Beyond plain text:

    - images: ``image`` blocks in user turns, bytes as a ``base64`` source and a URL as a
      ``url`` source (the API fetches it); an image over ``max_image_bytes`` is refused before
      sending. An image's ``detail`` (an OpenAI hint) has no Anthropic counterpart and is not sent.
    - ``schema=``: ``output_config.format`` (``json_schema``), the schema rewritten as the SDK's
      ``messages.parse()`` does (``_anthropic_schema``). ``json=True`` is refused: the API has
      no "any JSON object" mode, only schemas whose every object is closed.
    - ``reasoning=``: in "budget" mode ``thinking: {"type": "enabled", "budget_tokens": B}``
      with B from ``thinking_budgets`` (low 1024, medium 4096, high 16384); in "adaptive" mode
      ``thinking: {"type": "adaptive"}`` and ``output_config.effort`` = the level. Thinking
      counts toward ``max_tokens``: a call without ``max_tokens`` gets ``default_max_tokens``
      plus B, and one whose ``max_tokens`` is not above B is refused. ``reasoning=False``
      sends ``{"type": "disabled"}`` in adaptive mode (models that think by default) and
      nothing in budget mode (those models think only when asked). With thinking on, a
      ``temperature`` other than 1 or a ``top_p`` under 0.95 is refused, as the API would.
      The thinking text is ``reasoning``; the ``thinking``/``redacted_thinking`` blocks, with
      their signatures, are kept in ``provider_state["thinking_blocks"]`` and sent back
      unchanged, before the text, when ``completion.message`` is part of a later call.
    - ``cache=True``: ``cache_control: {"type": "ephemeral"}`` on the system prompt and on the
      last block of the last message (two of the API's four breakpoints): the next call of a
      growing conversation reads everything up to there from the cache, and a call that changes
      the conversation still reads the system prompt.
    - ``tools=``: ``tools`` and ``tool_choice`` (all four choices; ``parallel_tool_calls=False``
      is ``disable_parallel_tool_use``), the calls read from ``tool_use`` blocks, streamed ones
      from ``input_json_delta`` fragments; tool turns of the history as ``tool_use`` and
      ``tool_result`` blocks (``_anthropic_tools``). A forced choice ("required", a name) with
      ``reasoning=`` in budget mode is refused, as the API refuses it.
    - ``top_p`` is sent; ``seed`` is refused (the API has none).
    """

    TYPE = "anthropic"
    DEFAULT_BASE_URL = "https://api.anthropic.com"
    BASE_URL_ENV = "ANTHROPIC_BASE_URL"
    API_KEY_ENV = "ANTHROPIC_API_KEY"
    DEFAULT_MODEL = "claude-sonnet-4-5"
    MODELS_PATH = "/v1/models"
    FINISH_REASONS = FINISH_REASONS
    STREAM_DECODER = SSE
    STREAM_STATE = _AnthropicStream
    EXTRA_OPTIONS: ClassVar[Dict[str, Validator]] = {
        "anthropic_version": as_str,
        "default_max_tokens": as_positive_int,
        "thinking": as_choice("auto", "budget", "adaptive"),
        "thinking_budgets": _as_budgets,
        "cache": as_bool,
        "max_image_bytes": as_positive_int,
    }
    # json=True is listed so that its refusal can say why (see _apply_output_format).
    STRUCTURED_OUTPUT_MODES = frozenset({"schema", "json"})
    TOOL_CHOICES = frozenset({"auto", "none", "required", "name"})
    PARALLEL_TOOL_CALLS = True
    REASONING_LEVELS = frozenset({"low", "medium", "high", False})
    SAMPLING_OPTIONS = frozenset({"top_p"})

    def _configure(self, options: Mapping[str, Any]) -> None:
        # A configured base_url gets the same treatment as $ANTHROPIC_BASE_URL.
        self.base_url = self._normalise_base_url(self.base_url) or self.DEFAULT_BASE_URL
        self.anthropic_version: str = options.get("anthropic_version", DEFAULT_API_VERSION)
        self.default_max_tokens: int = options.get("default_max_tokens", DEFAULT_MAX_TOKENS)
        self.thinking: str = options.get("thinking", "auto")
        self.thinking_budgets: Dict[str, int] = options.get("thinking_budgets", dict(THINKING_BUDGETS))
        self.cache: bool = options.get("cache", False)
        self.max_image_bytes: int = options.get("max_image_bytes", MAX_IMAGE_BYTES)

    def _normalise_base_url(self, value: Optional[str]) -> Optional[str]:
        """Without a trailing ``/v1`` (or ``/v1/messages``): the Anthropic base URL excludes it,
        as ``ANTHROPIC_BASE_URL`` does for the SDKs, and paths start with ``/v1``. Copied from
        an OpenAI-style setting, it would send every request to ``/v1/v1/...``, a bare 404."""
        value = super()._normalise_base_url(value)
        if value:
            for suffix in ("/v1/messages", "/v1"):
                if value.endswith(suffix):
                    return value[: -len(suffix)]
        return value

    def _headers(self, api_key: Optional[str]) -> Tuple[Dict[str, str], Dict[str, str]]:
        return {"anthropic-version": self.anthropic_version}, ({"x-api-key": api_key} if api_key else {})

    def _build_request(self, call: ChatCall) -> RequestSpec:
        system = [self._system_text(m) for m in call.messages if m.role == "system"]
        chat = [{"role": m.role, "content": self._message_content(m)} for m in call.messages if m.role != "system"]
        roles = {m["role"] for m in chat}
        if "tool" in roles:  # tool results: tool_result blocks opening a user turn
            from ._anthropic_tools import merge_tool_turns

            chat = merge_tool_turns(chat)
            roles.discard("tool")
        unsupported = sorted(roles - {"user", "assistant"})
        if unsupported:
            raise InvalidRequestError(
                f"{self.name}: Anthropic messages take the roles user and assistant (and system, "
                f"sent as the top-level system prompt), not {', '.join(unsupported)}",
                provider=self.name,
            )
        if not chat:
            raise InvalidRequestError(
                f"{self.name}: Anthropic needs at least one user message besides the system prompt",
                provider=self.name,
            )
        temperature = call.temperature
        body: Dict[str, Any] = {
            "max_tokens": call.max_tokens if call.max_tokens is not None else self.default_max_tokens,
            "messages": chat,
            "model": call.model,
        }
        if system:
            body["system"] = "\n\n".join(system)
        if temperature is not None:
            if self.anthropic_version >= _NO_SAMPLING_SINCE:
                raise InvalidRequestError(
                    f"{self.name}: anthropic-version {self.anthropic_version} does not accept "
                    "temperature; leave it out or configure anthropic_version = \"2023-06-01\"",
                    provider=self.name,
                )
            # Anthropic's range is 0-1, OpenAI's 0-2: refuse rather than silently clamp.
            if temperature > 1:
                raise InvalidRequestError(
                    f"{self.name}: Anthropic's temperature ranges from 0 to 1, got {temperature}",
                    provider=self.name,
                )
            body["temperature"] = temperature
        if call.stop is not None:
            body["stop_sequences"] = call.stop
        if call.stream:
            body["stream"] = True
        # The provider option applies here, for every call; a call's cache=True comes here too
        # (its hook, _apply_cache, has nothing left to do), its cache=False turns the option off.
        if call.cache or (call.cache is None and self.cache):
            _mark_for_caching(body)
        return RequestSpec("/v1/messages", body)

    # -- content

    def _system_text(self, message: Message) -> str:
        """A system message as the top-level ``system`` text: Anthropic's takes text only."""
        if not isinstance(message.content, str) and any(not isinstance(p, Text) for p in message.content):
            raise self._refuse("image parts in a 'system' message",
                               "Anthropic's system prompt takes text only; put the image in a user message")
        return message.text

    def _message_content(self, message: Message) -> Any:
        """A user or assistant turn's ``content``: a string, or blocks. An assistant turn that
        came from a completion with thinking sends its thinking blocks back first, unchanged,
        and one with tool calls ends with their ``tool_use`` blocks. A tool result is its
        ``tool_result`` block (``_build_request`` gathers them into user turns)."""
        if message.role == "tool":
            return self._tool_result(message)
        content = self._content_parts(message)
        thinking = self._thinking_blocks(message)
        if not thinking and not message.tool_calls:
            return content
        if isinstance(content, str):
            content = [{"type": "text", "text": content}] if content else []
        if not message.tool_calls:
            return [*thinking, *content]
        from ._anthropic_tools import tool_use_blocks

        return [*thinking, *content, *tool_use_blocks(message.tool_calls)]

    def _tool_result(self, message: Message) -> Dict[str, Any]:
        if not isinstance(message, ToolResult):
            raise InvalidRequestError(
                f"{self.name}: a 'tool' message must be a ToolResult (or a dict with tool_call_id), the answer "
                "to one of the tool calls of the assistant turn before it", provider=self.name)
        from ._anthropic_tools import tool_result_block

        return tool_result_block(message, lambda parts: self._content_parts(Message("user", parts)))

    def _thinking_blocks(self, message: Message) -> List[Dict[str, Any]]:
        state = message.provider_state
        if message.role != "assistant" or not state or THINKING_BLOCKS not in state:
            return []  # no state, or another protocol's: nothing of Anthropic's to send back
        blocks = state[THINKING_BLOCKS]
        if not isinstance(blocks, list) or not all(
            isinstance(block, dict) and block.get("type") in THINKING_TYPES for block in blocks
        ):
            raise ConfigError(f"{self._where}: an assistant message's provider_state[{THINKING_BLOCKS!r}] must be "
                              "the list of thinking blocks an Anthropic completion returned, unchanged")
        return blocks

    def _content_parts(self, message: Message) -> Any:
        """Parts as content blocks: ``text``, and in user turns ``image`` (base64 or url source).
        An empty ``Text`` is left out: the API refuses empty text blocks."""
        content = message.content
        if isinstance(content, str):
            return content
        blocks: List[Dict[str, Any]] = []
        for index, part in enumerate(content):
            if isinstance(part, Text):
                if part.text:
                    blocks.append({"type": "text", "text": part.text})
            elif isinstance(part, Image):
                if message.role != "user":
                    raise self._refuse(f"image parts in a {message.role!r} message",
                                       "Anthropic takes images in user turns only")
                blocks.append(self._image_block(part, index))
            else:
                raise self._refuse(f"{type(part).__name__.lower()} parts in a {message.role!r} message")
        return blocks

    def _image_block(self, image: Image, index: int) -> Dict[str, Any]:
        if image.url is not None:
            return {"type": "image", "source": {"type": "url", "url": image.url}}
        size = image.size or 0
        encoded = 4 * ((size + 2) // 3)  # its base64 length, known before encoding it
        if encoded > self.max_image_bytes:
            raise self._refuse(
                f"image (part {index})",
                f"it is {size:,} bytes, {encoded:,} in base64, over the limit of {self.max_image_bytes:,} "
                f"base64 bytes per image ({_megabytes(self.max_image_bytes)}); scale it down or compress it",
            )
        return {"type": "image", "source": {"type": "base64", "media_type": image.media_type, "data": image.base64}}

    # -- features (see _features: each runs only for a call that asks for it)

    def _apply_output_format(self, body: Dict[str, Any], call: ChatCall) -> None:
        output = call.output
        assert output is not None
        if output.mode == "json":
            raise self._refuse(
                "structured output (json=True)",
                "Anthropic's structured outputs have no 'any JSON object' mode, only JSON schemas whose "
                "every object is closed; pass schema= (a JSON-schema dict or a pydantic model) instead",
            )
        if body["messages"][-1]["role"] == "assistant":
            raise self._refuse("schema= after an assistant message",
                               "Anthropic's structured outputs cannot continue a prefilled assistant turn; "
                               "end the messages with a user turn")
        try:
            from ._anthropic_schema import output_schema  # only calls with a schema need it

            schema = output_schema(output)
        except ValueError as error:
            raise self._refuse("schema=", str(error)) from None
        body.setdefault("output_config", {})["format"] = {"type": "json_schema", "schema": schema}

    def _apply_reasoning(self, body: Dict[str, Any], call: ChatCall) -> None:
        level = call.reasoning
        mode = thinking_mode(call.model, self.thinking)
        if level is False:
            if mode == "adaptive":
                body["thinking"] = {"type": "disabled"}
            return
        assert isinstance(level, str)
        budget = self.thinking_budgets[level]
        argument = f"reasoning={level!r}"
        if call.temperature is not None and call.temperature != 1:
            raise self._refuse(argument, f"Anthropic takes no temperature but 1 with thinking on, got "
                                         f"{call.temperature}; leave temperature out")
        if call.top_p is not None and call.top_p < MIN_TOP_P_WITH_THINKING:
            raise self._refuse(argument, f"Anthropic takes a top_p from {MIN_TOP_P_WITH_THINKING} to 1 with thinking "
                                         f"on, got {call.top_p}")
        if call.max_tokens is None:
            body["max_tokens"] = self.default_max_tokens + budget  # thinking counts toward max_tokens
        elif mode == "budget" and call.max_tokens <= budget:
            raise self._refuse(
                argument,
                f"its thinking budget, {budget} tokens, must be below max_tokens (got {call.max_tokens}: "
                "thinking counts toward it); raise max_tokens, leave it out, or ask for a lower level",
            )
        if mode == "adaptive":
            body["thinking"] = {"type": "adaptive"}
            body.setdefault("output_config", {})["effort"] = level
        else:
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}

    def _apply_sampling(self, body: Dict[str, Any], call: ChatCall) -> None:
        if self.anthropic_version >= _NO_SAMPLING_SINCE:
            raise self._refuse("top_p", f"anthropic-version {self.anthropic_version} does not accept it; leave it "
                                        'out or configure anthropic_version = "2023-06-01"')
        body["top_p"] = call.top_p

    def _apply_tools(self, body: Dict[str, Any], call: ChatCall) -> None:
        from ._anthropic_tools import is_forced, tool_choice_param, tool_param

        assert call.tools is not None
        if (is_forced(call.tool_choice) and call.reasoning not in (None, False)
                and thinking_mode(call.model, self.thinking) == "budget"):
            raise self._refuse(
                f"tool_choice={call.tool_choice!r} with reasoning={call.reasoning!r}",
                "Anthropic's manual (budget) thinking takes only tool_choice 'auto' or 'none'; leave tool_choice "
                "out, or reasoning, or use a model with adaptive thinking",
            )
        body["tools"] = [tool_param(tool) for tool in call.tools]
        choice = tool_choice_param(call.tool_choice, call.parallel_tool_calls)
        if choice is not None:
            body["tool_choice"] = choice

    def _apply_cache(self, body: Dict[str, Any], call: ChatCall) -> None:
        """Nothing: ``_build_request`` marked the prompt (it also applies the ``cache`` option)."""

    # -- answers

    def _parse_completion(self, data: Any) -> ParsedAnswer:
        if isinstance(data, dict) and data.get("type") == "error":
            raise anthropic_error(self.name, data.get("error"), context="in a 200 response")
        text, reasoning, thinking, calls = read_blocks(data["content"])
        return ParsedAnswer(
            text,
            data.get("model"),
            self._finish_reason(data.get("stop_reason")),
            anthropic_usage(data.get("usage")),
            reasoning=reasoning,
            provider_state=thinking_state(thinking),
            tool_calls=calls,
        )

    def _models_request(self, query: Optional[Dict[str, str]]) -> Optional[RequestSpec]:
        # The first page asks for the largest page size the API allows.
        return super()._models_request(query or {"limit": str(MODELS_PAGE_SIZE)})

    def _models_page(self, data: Any) -> Tuple[List[str], Optional[Dict[str, str]]]:
        """``{"data": [...], "has_more", "first_id", "last_id"}``; the next page starts
        ``after_id`` the last id, as the SDK's pager does (PROTOCOLS.md §B.8). A proxy's
        OpenAI-shaped list (LiteLLM) has no ``has_more``: one page."""
        ids = model_ids(self.name, data)
        last_id = data.get("last_id") or (ids[-1] if ids else None)
        if data.get("has_more") is True and ids and isinstance(last_id, str):
            return ids, {"limit": str(MODELS_PAGE_SIZE), "after_id": last_id}
        return ids, None

    def _serves(self, served: Sequence[str]) -> bool:
        return listed_as_alias(self.model, served)



def _mark_for_caching(body: Dict[str, Any]) -> None:
    """Put the caching marker on the system prompt and on the last message's last block that
    can carry one (not a thinking block, not an empty text). Blocks are copied, never changed:
    a thinking block may be a completion's ``provider_state``."""
    if isinstance(body.get("system"), str):
        body["system"] = [{"type": "text", "text": body["system"], "cache_control": EPHEMERAL}]
    message = body["messages"][-1]
    content = message["content"]
    if isinstance(content, str):
        if content:
            message["content"] = [{"type": "text", "text": content, "cache_control": EPHEMERAL}]
        return
    for index in range(len(content) - 1, -1, -1):
        block = content[index]
        if block.get("type") not in THINKING_TYPES and (block.get("type") != "text" or block.get("text")):
            message["content"] = [*content[:index], dict(block, cache_control=EPHEMERAL), *content[index + 1:]]
            return


def _megabytes(count: int) -> str:
    return f"{count / (1024 * 1024):g} MB"
