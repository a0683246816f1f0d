"""OpenAI Chat Completions, also for any OpenAI-compatible server (vLLM, LM Studio, Ollama's /v1,
Groq, OpenRouter...). Wire format: PROTOCOLS.md §A."""

from __future__ import annotations

import json
import os
import re
from typing import Any, ClassVar, Dict, Iterable, List, Mapping, Optional, Tuple

from .._options import Validator, as_choice, as_str
from .._streaming import SSE
from ..types import StreamChunk, Usage
from ._base import (
    EXCERPT_WINDOW,
    HTTPProvider,
    StreamState,
    error_from_event,
)
from ._calls import ChatCall, RequestSpec
from ._listing import model_ids
from ._settings import base_url_host

FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}
OPENAI_HOST = "api.openai.com"
#: Model families that reject ``max_tokens`` and need ``max_completion_tokens`` (o1, o3, gpt-5...).
_REASONING_MODEL = re.compile(r"(^|/)(o\d|gpt-5)", re.IGNORECASE)


def _usage(data: Any) -> Usage:
    if not isinstance(data, dict):
        return Usage()
    return Usage(data.get("prompt_tokens"), data.get("completion_tokens"), data.get("total_tokens"))


class _OpenAIStream(StreamState):
    """``data: {chunk}`` events up to ``data: [DONE]``; usage arrives in a last, choice-less chunk."""

    def feed(self, event: Any) -> Iterable[StreamChunk]:
        data = event.data
        if data.startswith("[DONE]"):
            self.done = True
            return ()
        try:
            chunk = json.loads(data)
        except ValueError:
            raise ValueError(f"stream event is not JSON: {data[:EXCERPT_WINDOW]!r}") from None
        if not isinstance(chunk, dict):
            raise TypeError("stream event is not a JSON object")
        error = chunk.get("error")
        if error:
            raise _stream_error(self.provider, error)
        pieces: List[StreamChunk] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content = _content_text(delta.get("content"))
            if content:
                pieces.append(self.text_chunk(content))
            if choice.get("finish_reason") is not None:
                self.finish_reason = self.finish(choice["finish_reason"])
        if chunk.get("usage"):
            self.usage = _usage(chunk["usage"])
        return pieces


class OpenAIProvider(HTTPProvider):
    """OpenAI's ``POST {base_url}/chat/completions``; ``base_url`` includes ``/v1``.

    Options beyond the common ones: ``organization`` and ``project`` (sent as
    ``OpenAI-Organization`` / ``OpenAI-Project``; read from ``$OPENAI_ORG_ID`` /
    ``$OPENAI_PROJECT_ID`` only for api.openai.com), and ``max_tokens_field``: ``"auto"`` sends
    ``max_completion_tokens`` to api.openai.com and to reasoning models (o-series, gpt-5), and
    ``max_tokens`` to other servers, many of which know only that field.
    No API key is required for a loopback ``base_url`` (a local vLLM, LM Studio or Ollama), and
    ``$OPENAI_API_KEY`` is sent only to api.openai.com or the server ``$OPENAI_BASE_URL`` names.
    """

    TYPE = "openai"
    DEFAULT_BASE_URL = "https://api.openai.com/v1"
    BASE_URL_ENV = "OPENAI_BASE_URL"
    API_KEY_ENV = "OPENAI_API_KEY"
    DEFAULT_MODEL = "gpt-4o-mini"
    MODELS_PATH = "/models"
    FINISH_REASONS = FINISH_REASONS
    STREAM_DECODER = SSE
    STREAM_STATE = _OpenAIStream
    EXTRA_OPTIONS: ClassVar[Dict[str, Validator]] = {
        "organization": as_str,
        "project": as_str,
        "max_tokens_field": as_choice("auto", "max_tokens", "max_completion_tokens"),
    }

    def _configure(self, options: Mapping[str, Any]) -> None:
        is_openai = base_url_host(self.base_url) == OPENAI_HOST
        self.organization: Optional[str] = options.get("organization") or (
            os.environ.get("OPENAI_ORG_ID") if is_openai else None
        )
        self.project: Optional[str] = options.get("project") or (
            os.environ.get("OPENAI_PROJECT_ID") if is_openai else None
        )
        self.max_tokens_field: str = options.get("max_tokens_field", "auto")

    def _headers(self, api_key: Optional[str]) -> Tuple[Dict[str, str], Dict[str, str]]:
        headers, credentials = super()._headers(api_key)
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        return headers, credentials

    def _max_tokens_key(self, model: str) -> str:
        if self.max_tokens_field != "auto":
            return self.max_tokens_field
        if base_url_host(self.base_url) == OPENAI_HOST or _REASONING_MODEL.search(model):
            return "max_completion_tokens"
        return "max_tokens"

    def _build_request(self, call: ChatCall) -> RequestSpec:
        return RequestSpec("/chat/completions", self._chat_body(call))

    def _chat_body(self, call: ChatCall) -> Dict[str, Any]:
        """The Chat Completions body (also for a subclass with another URL)."""
        body: Dict[str, Any] = {
            "messages": [{"role": m.role, "content": self._content_parts(m)} for m in call.messages],
            "model": call.model,
        }
        # Only what the caller set: reasoning models reject a non-default temperature or stop.
        if call.max_tokens is not None:
            body[self._max_tokens_key(call.model)] = call.max_tokens
        if call.temperature is not None:
            body["temperature"] = call.temperature
        if call.stop is not None:
            body["stop"] = call.stop
        if call.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def _parse_completion(self, data: Any) -> Tuple[str, Optional[str], Optional[str], Usage]:
        if isinstance(data, dict) and data.get("error"):
            # OpenRouter answers 200 with an error body when generation failed after it began.
            raise _stream_error(self.name, data["error"], context="in a 200 response")
        choice = data["choices"][0]
        message = choice["message"]
        text = _content_text(message.get("content"))
        finish = self._finish_reason(choice.get("finish_reason"))
        if not text and message.get("refusal") and finish == "stop":
            # A refusal ends "normally" on the wire; normalised as Anthropic's "refusal" is, so a
            # caller can tell an empty answer from a declined one without reading ``raw``.
            finish = "content_filter"
        return text, data.get("model"), finish, _usage(data.get("usage"))

    def _models_page(self, data: Any) -> Tuple[List[str], Optional[Dict[str, str]]]:
        """``{"object": "list", "data": [{"id": ...}, ...]}``, one page (PROTOCOLS.md §A.7)."""
        return model_ids(self.name, data), None


def _content_text(content: Any) -> str:
    """A message's or delta's text: a string, null (tool calls, a refusal), or a list of parts
    of which the ``text`` ones count (Mistral's reasoning models send ``thinking`` parts too)."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        return "".join(str(part["text"]) for part in content if part.get("type") == "text")
    raise TypeError(f"message content is {type(content).__name__}, not a string")


def _stream_error(provider: str, error: Any, context: str = "in stream") -> Exception:
    """An error object sent inside a 200 stream or body (OpenRouter's integer codes are statuses)."""
    if isinstance(error, dict):
        message = str(error.get("message") or "an error occurred during streaming")
        code = error.get("code")
        status = code if isinstance(code, int) and 400 <= code < 600 else 500
        if error.get("type") == "invalid_request_error" and status == 500:
            status = 400
    else:
        message, status = str(error), 500
    return error_from_event(provider, status, message, None, context=context)

