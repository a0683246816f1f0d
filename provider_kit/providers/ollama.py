"""Ollama's native chat API. Wire format: PROTOCOLS.md §C; images, ``format``, ``think`` and
usage: PROTOCOLS-2.md §E.4, §F.4, §H.4, §I.3."""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .._options import Validator
from .._parts import Image, Text
from .._streaming import NDJSON
from ..errors import ConfigError
from ..types import Message, StreamChunk, Usage
from ._answers import ParsedAnswer
from ._base import HTTPProvider, StreamState, error_from_event
from ._calls import ChatCall, RequestSpec
from ._listing import missing_reason

DEFAULT_PORT = 11434
FINISH_REASONS = {"stop": "stop", "length": "length"}
#: The image types sent to Ollama. Its REST API takes raw base64 and names no format; the
#: formats its clients and routes accept are PNG, JPEG and WebP (ollama-python recognises those
#: files, the OpenAI-compatible route rejects a GIF data URL: PROTOCOLS-2.md §E.4, §E.5), so a
#: GIF is refused here rather than left to fail, or be misread, inside the model's runner.
IMAGE_MEDIA_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
#: The key of ``provider_state`` under which an answer keeps what Ollama needs back in a later
#: turn: ``{"ollama": {"thinking": ...}}``. Namespaced, so that a conversation carried across
#: protocols (a registry's fallbacks) never sends one protocol's state to another.
STATE_KEY = "ollama"
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


def _thinking_state(thinking: str) -> Optional[Dict[str, Any]]:
    """``provider_state`` for an answer that thought: the thinking goes back with the assistant
    turn (Ollama's docs: return ``thinking`` with the turn, as ollama-python's appended
    ``response.message`` does)."""
    return {STATE_KEY: {"thinking": thinking}} if thinking else None


def _text_field(message: Mapping[str, Any], name: str) -> str:
    value = message.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"message {name} is not a string")
    return value


def _tagged(model: str) -> str:
    """``llama3.2`` -> ``llama3.2:latest``: Ollama's default tag."""
    last = model.rsplit("/", 1)[-1]
    return model if ":" in last else f"{model}:latest"


class _OllamaStream(StreamState):
    """NDJSON lines until one with ``"done": true``; an ``{"error": ...}`` line is an error.
    ``message.thinking`` fragments (they come before the content) are reasoning chunks, kept
    whole for the final chunk's ``provider_state``."""

    def __init__(self, provider: str = "", finish_reasons: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(provider, finish_reasons)
        self.thinking: List[str] = []

    def feed(self, event: Any) -> Iterable[StreamChunk]:
        if not isinstance(event, dict):
            raise TypeError("stream line is not a JSON object")
        if event.get("error"):
            raise error_from_event(self.provider, 500, str(event["error"]), None)
        message = event.get("message") or {}
        if not isinstance(message, dict):
            raise TypeError("message is not a JSON object")
        thinking, content = _text_field(message, "thinking"), _text_field(message, "content")
        pieces: List[StreamChunk] = []
        if thinking:
            self.thinking.append(thinking)
            pieces.append(self.reasoning_chunk(thinking))
        if content:
            pieces.append(self.text_chunk(content))
        if event.get("done"):
            self.done = True
            self.finish_reason = self.finish(event.get("done_reason"))
            self.usage = _usage(event)
            self.provider_state = _thinking_state("".join(self.thinking))
        return pieces


class OllamaProvider(HTTPProvider):
    """Ollama's ``POST {base_url}/api/chat``; ``base_url`` as ``OLLAMA_HOST`` (default
    ``http://localhost:11434``). No key is needed; ``$OLLAMA_API_KEY`` is sent as a bearer token
    when set (for ollama.com), to the server ``$OLLAMA_HOST`` names or the default one only: a
    configured ``base_url`` gets its own ``api_key_env``. Option ``keep_alive`` (e.g. ``"5m"``)
    is passed through.
    The health check also reports whether the configured model is pulled.

    Beyond text (PROTOCOLS-2.md): images go in the message's ``images`` list as raw base64
    (PNG, JPEG, WebP; an ``Image.from_url`` is refused: Ollama takes bytes only and provider_kit
    never fetches a URL on the caller's behalf; ``detail`` has no Ollama equivalent and is not
    sent). ``schema=`` is sent as ``format`` (the schema, unchanged), ``json=True`` as
    ``format: "json"``. ``reasoning="low"|"medium"|"high"`` is sent as ``think`` with that
    level: a model that takes levels (gpt-oss) uses it, any other thinking model reads it as
    ``think: true``; ``reasoning=False`` sends ``think: false`` (thinking models think by
    default). ``message.thinking`` is ``completion.reasoning`` (``chunk.reasoning`` in a stream)
    and goes back as the assistant turn's ``thinking`` when ``completion.message`` is appended.
    ``top_p`` and ``seed`` go in ``options``; ``extra_body`` merges into the body, ``options``
    included (``{"options": {"num_ctx": 8192}}``). ``cache=True`` sends nothing: Ollama reuses
    the loaded model's KV cache for a repeated prompt prefix on its own (while the model stays
    loaded, see ``keep_alive``), and reports no cache counts, so ``Usage``'s cache fields and
    ``reasoning_tokens`` stay None.
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
    STRUCTURED_OUTPUT_MODES: ClassVar[FrozenSet[str]] = frozenset({"schema", "json"})
    REASONING_LEVELS: ClassVar[FrozenSet[Union[str, bool]]] = frozenset({"low", "medium", "high", False})
    SAMPLING_OPTIONS: ClassVar[FrozenSet[str]] = frozenset({"top_p", "seed"})

    def _configure(self, options: Mapping[str, Any]) -> None:
        self.keep_alive: Optional[Union[str, float]] = options.get("keep_alive")

    def _normalise_base_url(self, value: Optional[str]) -> Optional[str]:
        return normalise_ollama_host(value) if value else None

    def _build_request(self, call: ChatCall) -> RequestSpec:
        # The server streams unless told otherwise, so "stream" is always sent.
        body: Dict[str, Any] = {
            "model": call.model,
            "messages": [self._wire_message(m) for m in call.messages],
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

    def _wire_message(self, message: Message) -> Dict[str, Any]:
        """One message of the body: role, ``content`` (``_content_parts``), ``images`` when it
        has some, and for an assistant turn that thought, its ``thinking`` (from
        ``provider_state``)."""
        wire: Dict[str, Any] = {"role": message.role, "content": self._content_parts(message)}
        if not isinstance(message.content, str):
            images = [part.base64 for part in message.content if isinstance(part, Image)]
            if images:
                wire["images"] = images
        state = message.provider_state
        own = state.get(STATE_KEY) if state else None
        if message.role == "assistant" and isinstance(own, Mapping) and own.get("thinking") is not None:
            thinking = own["thinking"]
            if not isinstance(thinking, str):
                raise ConfigError(f"{self._where}: an assistant message's provider_state[{STATE_KEY!r}]['thinking'] "
                                  f"must be a string, got {type(thinking).__name__}")
            if thinking:
                wire["thinking"] = thinking
        return wire

    def _content_parts(self, message: Message) -> str:
        """The message's ``content``: its text (text parts joined by newlines). Its images go
        beside it, in ``images`` (raw base64, no ``data:`` prefix; ``_wire_message``): Ollama
        does not interleave them with the text, the model's template places them.

        :raises ConfigError: for a URL image or an image type Ollama does not decode.
        """
        content = message.content
        if isinstance(content, str):
            return content
        for part in content:
            if isinstance(part, Text):
                continue
            if not isinstance(part, Image):
                raise self._refuse(f"{type(part).__name__.lower()} parts in a {message.role!r} message")
            if part.data is None:
                raise self._refuse(
                    f"an image URL in a {message.role!r} message",
                    "Ollama takes image bytes only, and provider_kit never fetches a URL on the caller's "
                    "behalf; download it and pass Image.from_path(...) or Image.from_bytes(...)",
                )
            if part.media_type not in IMAGE_MEDIA_TYPES:
                raise self._refuse(
                    f"a {part.media_type} image in a {message.role!r} message",
                    "Ollama takes PNG, JPEG or WebP images; convert it first",
                )
        return message.text

    def _apply_output_format(self, body: Dict[str, Any], call: ChatCall) -> None:
        # The schema as given, as ollama-python sends model_json_schema() (§F.4).
        output = call.output
        assert output is not None
        body["format"] = output.schema if output.mode == "schema" else "json"

    def _apply_reasoning(self, body: Dict[str, Any], call: ChatCall) -> None:
        # A level is sent as it is: Ollama resolves it per model (ThinkValue.Bool() is true for
        # any level, so a model without levels thinks), where true would be ignored by gpt-oss.
        body["think"] = call.reasoning

    def _apply_sampling(self, body: Dict[str, Any], call: ChatCall) -> None:
        options = body.setdefault("options", {})
        if call.top_p is not None:
            options["top_p"] = call.top_p
        if call.seed is not None:
            options["seed"] = call.seed

    def _apply_cache(self, body: Dict[str, Any], call: ChatCall) -> None:
        """Nothing to send: the server reuses its KV cache for a repeated prefix by itself."""

    def _parse_completion(self, data: Any) -> ParsedAnswer:
        if isinstance(data, dict) and data.get("error"):
            raise error_from_event(self.name, 500, str(data["error"]), None, context="in a 200 response")
        message = data["message"]
        if not isinstance(message, dict):
            raise TypeError("message is not a JSON object")
        content, thinking = _text_field(message, "content"), _text_field(message, "thinking")
        return ParsedAnswer(
            content, data.get("model"), self._finish_reason(data.get("done_reason")), _usage(data),
            reasoning=thinking or None, provider_state=_thinking_state(thinking),
        )

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
