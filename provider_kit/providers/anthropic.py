"""Anthropic's Messages API. Wire format: PROTOCOLS.md §B."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from .._options import Validator, as_positive_int, as_str
from .._streaming import SSE
from ..errors import InvalidRequestError
from ..types import StreamChunk, Usage
from ._base import (
    EXCERPT_WINDOW,
    HTTPProvider,
    StreamState,
    error_from_event,
)
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
#: Error ``type`` of an in-stream error event -> the HTTP status it stands for.
ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


#: The usage fields whose sum is the whole input (``types/message.py``).
_INPUT_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _usage(data: Any) -> Usage:
    """Anthropic reports no total, and cached input is counted apart from ``input_tokens``."""
    if not isinstance(data, dict):
        return Usage()
    inputs = data.get("input_tokens")
    if isinstance(inputs, int):
        inputs += sum(data.get(field) or 0 for field in _INPUT_FIELDS[1:])
    return Usage(inputs, data.get("output_tokens"))


class _AnthropicStream(StreamState):
    """Named events from message_start to message_stop; pings and unknown events are skipped."""

    def __init__(self, provider: str = "", finish_reasons: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(provider, finish_reasons)
        # The raw counts, merged field by field: message_delta repeats some of them,
        # cumulatively, and may leave others out (types/message_delta_usage.py).
        self.counts: Dict[str, Any] = {}

    def feed(self, event: Any) -> Iterable[StreamChunk]:
        try:
            # An event with a name but no data ("event: message_stop" alone) still counts.
            data = json.loads(event.data) if event.data else {}
        except ValueError:
            raise ValueError(f"stream event is not JSON: {event.data[:EXCERPT_WINDOW]!r}") from None
        if not isinstance(data, dict):
            raise TypeError("stream event is not a JSON object")
        kind = event.event or data.get("type")
        if kind == "content_block_delta":
            delta = data["delta"]
            if delta.get("type") == "text_delta" and delta.get("text"):
                return (self.text_chunk(str(delta["text"])),)
        elif kind == "message_start":
            self._merge_counts(data["message"].get("usage"))
        elif kind == "message_delta":
            stop_reason = (data.get("delta") or {}).get("stop_reason")
            if stop_reason is not None:
                self.finish_reason = self.finish(stop_reason)
            # Counts in message_delta are cumulative: the last one wins.
            self._merge_counts(data.get("usage"))
        elif kind == "message_stop":
            self.done = True
            self.usage = _usage(self.counts)
        elif kind == "error":
            raise _error_event(self.provider, data.get("error"))
        return ()

    def _merge_counts(self, usage: Any) -> None:
        if isinstance(usage, dict):
            for field in (*_INPUT_FIELDS, "output_tokens"):
                if usage.get(field) is not None:
                    self.counts[field] = usage[field]


class AnthropicProvider(HTTPProvider):
    """Anthropic's ``POST {base_url}/v1/messages``; ``base_url`` has no ``/v1``.

    Options beyond the common ones: ``anthropic_version`` (default ``2023-06-01``; under
    ``2026-10-21`` a ``temperature`` is refused before sending, as the API would refuse it) and
    ``default_max_tokens`` (default 4096), sent when a call gives no ``max_tokens``.
    ``$ANTHROPIC_API_KEY`` is sent only to api.anthropic.com or the server
    ``$ANTHROPIC_BASE_URL`` names; a loopback ``base_url`` (a local proxy) needs no key.
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
    }

    def _configure(self, options: Mapping[str, Any]) -> None:
        # A configured base_url gets the same treatment as $ANTHROPIC_BASE_URL.
        self.base_url = self._normalise_base_url(self.base_url) or self.DEFAULT_BASE_URL
        self.anthropic_version: str = options.get("anthropic_version", DEFAULT_API_VERSION)
        self.default_max_tokens: int = options.get("default_max_tokens", DEFAULT_MAX_TOKENS)

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
        system = [self._content_parts(m) for m in call.messages if m.role == "system"]
        chat = [{"role": m.role, "content": self._content_parts(m)} for m in call.messages if m.role != "system"]
        unsupported = sorted({m["role"] for m in chat} - {"user", "assistant"})
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
        return RequestSpec("/v1/messages", body)

    def _parse_completion(self, data: Any) -> Tuple[str, Optional[str], Optional[str], Usage]:
        if isinstance(data, dict) and data.get("type") == "error":
            raise _error_event(self.name, data.get("error"), context="in a 200 response")
        blocks = data["content"]
        if not isinstance(blocks, list):
            raise TypeError("content is not a list of blocks")
        text = "".join(str(block["text"]) for block in blocks if block.get("type") == "text")
        return text, data.get("model"), self._finish_reason(data.get("stop_reason")), _usage(data.get("usage"))

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


def _error_event(provider: str, error: Any, context: str = "in stream") -> Exception:
    """The error for ``{"type": "error", "error": {"type", "message"}}`` in a 200 answer."""
    error = error or {}
    status = ERROR_TYPE_STATUS.get(str(error.get("type")), 500) if isinstance(error, dict) else 500
    message = error.get("message") if isinstance(error, dict) else str(error)
    return error_from_event(provider, status, str(message or "stream error"), None, context=context)
