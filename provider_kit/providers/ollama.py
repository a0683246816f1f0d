"""Ollama's native chat API. Wire format: PROTOCOLS.md §C."""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .._options import Validator
from .._streaming import NDJSON
from ..errors import ConfigError
from ..types import StreamChunk, Usage
from ._base import HTTPProvider, StreamState, error_from_event
from ._calls import ChatCall, RequestSpec
from ._listing import missing_reason

DEFAULT_PORT = 11434
FINISH_REASONS = {"stop": "stop", "length": "length"}
#: A Go duration, as Ollama parses a string ``keep_alive``: "5m", "1h30m", "-1s", "0".
_GO_DURATION = re.compile(r"-?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+|0")


def as_keep_alive(value: Any) -> Union[str, float]:
    """A number of seconds (negative: keep loaded, 0: unload) or a Go duration string.

    Ollama reads a JSON number as seconds but rejects a string without a unit ("300").
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value
    if isinstance(value, str) and _GO_DURATION.fullmatch(value.strip()):
        return value.strip()
    raise ValueError('must be a number of seconds or a duration with a unit, such as "5m"')


def normalise_ollama_host(value: str) -> str:
    """``OLLAMA_HOST`` as a base URL, the way ollama-python reads it.

    ``0.0.0.0`` -> ``http://0.0.0.0:11434``, ``:5000`` -> ``http://127.0.0.1:5000``,
    ``https://h`` -> ``https://h:443``, ``http://h`` -> ``http://h:80``.
    """
    value = value.strip()
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "http", value
    if scheme not in ("http", "https"):
        raise ConfigError(f"the scheme must be http or https, not {scheme!r}")
    hostport, _, path = rest.partition("/")
    default_port = DEFAULT_PORT if not sep else (443 if scheme == "https" else 80)
    if hostport.startswith("["):  # IPv6: [::1]:port
        host, _, port = hostport[1:].partition("]")
        port = port.lstrip(":")
        host = f"[{host}]"
    elif hostport.count(":") > 1:  # a bare IPv6 address
        host, port = f"[{hostport}]", ""
    else:
        host, _, port = hostport.partition(":")
    host = host or "127.0.0.1"
    port = port or str(default_port)
    path = path.rstrip("/")
    return f"{scheme}://{host}:{port}" + (f"/{path}" if path else "")


def _usage(data: Mapping[str, Any]) -> Usage:
    # Every metric is omitempty: prompt_eval_count is absent when the prompt came from cache.
    prompt = data.get("prompt_eval_count")
    output = data.get("eval_count")
    return Usage(prompt if prompt is not None else (0 if output is not None else None), output)


def _tagged(model: str) -> str:
    """``llama3.2`` -> ``llama3.2:latest``: Ollama's default tag."""
    last = model.rsplit("/", 1)[-1]
    return model if ":" in last else f"{model}:latest"


class _OllamaStream(StreamState):
    """NDJSON lines until one with ``"done": true``; an ``{"error": ...}`` line is an error."""

    def feed(self, event: Any) -> Iterable[StreamChunk]:
        if not isinstance(event, dict):
            raise TypeError("stream line is not a JSON object")
        if event.get("error"):
            raise error_from_event(self.provider, 500, str(event["error"]), None)
        message = event.get("message") or {}
        content = message.get("content")
        pieces = (self.text_chunk(str(content)),) if content else ()
        if event.get("done"):
            self.done = True
            self.finish_reason = self.finish(event.get("done_reason"))
            self.usage = _usage(event)
        return pieces


class OllamaProvider(HTTPProvider):
    """Ollama's ``POST {base_url}/api/chat``; ``base_url`` as ``OLLAMA_HOST`` (default
    ``http://localhost:11434``). No key is needed; ``$OLLAMA_API_KEY`` is sent as a bearer token
    when set (for ollama.com), to the server ``$OLLAMA_HOST`` names or the default one only: a
    configured ``base_url`` gets its own ``api_key_env``. Option ``keep_alive`` (e.g. ``"5m"``)
    is passed through.
    The health check also reports whether the configured model is pulled.
    """

    TYPE = "ollama"
    DEFAULT_BASE_URL = f"http://localhost:{DEFAULT_PORT}"
    BASE_URL_ENV = "OLLAMA_HOST"
    API_KEY_ENV = "OLLAMA_API_KEY"
    REQUIRES_KEY = False
    DEFAULT_MODEL = "llama3.2"
    MODELS_PATH = "/api/tags"
    FINISH_REASONS = FINISH_REASONS
    STREAM_DECODER = NDJSON
    STREAM_STATE = _OllamaStream
    EXTRA_OPTIONS: ClassVar[Dict[str, Validator]] = {"keep_alive": as_keep_alive}

    def _configure(self, options: Mapping[str, Any]) -> None:
        self.keep_alive: Optional[Union[str, float]] = options.get("keep_alive")

    def _normalise_base_url(self, value: Optional[str]) -> Optional[str]:
        return normalise_ollama_host(value) if value else None

    def _build_request(self, call: ChatCall) -> RequestSpec:
        # The server streams unless told otherwise, so "stream" is always sent.
        body: Dict[str, Any] = {
            "model": call.model,
            "messages": [{"role": m.role, "content": self._content_parts(m)} for m in call.messages],
            "stream": call.stream,
        }
        options: Dict[str, Any] = {}
        if call.temperature is not None:
            options["temperature"] = call.temperature
        if call.max_tokens is not None:
            options["num_predict"] = call.max_tokens
        if call.stop is not None:
            options["stop"] = call.stop
        if options:
            body["options"] = options
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        return RequestSpec("/api/chat", body)

    def _parse_completion(self, data: Any) -> Tuple[str, Optional[str], Optional[str], Usage]:
        if isinstance(data, dict) and data.get("error"):
            raise error_from_event(self.name, 500, str(data["error"]), None, context="in a 200 response")
        content = data["message"].get("content") or ""
        if not isinstance(content, str):
            raise TypeError("message content is not a string")
        return content, data.get("model"), self._finish_reason(data.get("done_reason")), _usage(data)

    def _health_problem(self, data: Any) -> Optional[str]:
        self._models_page(data)  # the shape only: the model is not checked
        return None

    def _models_page(self, data: Any) -> Tuple[List[str], Optional[Dict[str, str]]]:
        """``{"models": [{"name", "model", ...}]}`` (PROTOCOLS.md §C): each ``name``, and
        ``model`` where it differs; one page."""
        models = data["models"]
        if not isinstance(models, list):
            raise TypeError("models is not a list")
        names = [str(m[key]) for m in models for key in ("name", "model") if m.get(key)]
        return names, None

    def _serves(self, served: Sequence[str]) -> bool:
        wanted = _tagged(self.model)
        return any(_tagged(name) == wanted for name in served)

    def _missing_model(self, served: Sequence[str]) -> str:
        reason = missing_reason(self.model, served, verb="pulled", hint=None)
        return f"{reason}; run: ollama pull {self.model}"
