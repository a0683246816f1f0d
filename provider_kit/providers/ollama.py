"""Ollama's native chat API. Wire format: PROTOCOLS.md §C; images, ``format``, tools, ``think``
and usage: PROTOCOLS-2.md §E.4, §F.4, §G.8, §H.4, §I.3."""

from __future__ import annotations

import json
import math
import re
from typing import Any, ClassVar, Dict, FrozenSet, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from .._messages import ToolResult
from .._options import Validator
from .._parts import Image, Text
from .._streaming import NDJSON
from .._tools import ToolCall
from ..errors import ConfigError
from ..types import Message, StreamChunk, Usage
from ._answers import ParsedAnswer, new_tool_call_id
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


def _call_parts(call: Any) -> Tuple[Optional[str], str, Union[Dict[str, Any], str]]:
    """One entry of ``message.tool_calls`` (§G.8): ``{"id"?, "function": {"index", "name",
    "arguments"}}`` as ``(id or None, name, arguments)``. ``arguments`` is an object on Ollama
    itself; a proxy may send it as a JSON string, or "" for none (kept as the raw text, which
    ``ToolCall`` parses on access). Any other JSON value is kept as its text, so that reading
    the call's ``arguments`` says what arrived instead of the stream failing."""
    function = call["function"]
    if not isinstance(function, dict):
        raise TypeError("tool_calls[].function is not a JSON object")
    name = function["name"]
    if not isinstance(name, str) or not name:
        raise TypeError("tool_calls[].function.name is not a non-empty string")
    call_id = call.get("id")  # absent before server v0.12.10
    if call_id is not None and not isinstance(call_id, str):
        raise TypeError("tool_calls[].id is not a string")
    arguments = function.get("arguments")
    if arguments is None:
        arguments = {}
    elif not isinstance(arguments, (dict, str)):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return call_id or None, name, arguments


def _raw_text(arguments: Union[Dict[str, Any], str]) -> str:
    """The arguments as the text a ``ToolCall`` made from the object keeps in ``raw_arguments``
    (the same ``json.dumps``): streamed calls are assembled as text, and must equal the whole
    answer's."""
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)


def _tool_calls(message: Mapping[str, Any]) -> List[ToolCall]:
    calls = message.get("tool_calls")
    if not calls:
        return []
    if not isinstance(calls, list):
        raise TypeError("message tool_calls is not a list")
    out = []
    for call in calls:
        call_id, name, arguments = _call_parts(call)
        out.append(ToolCall(call_id or new_tool_call_id(), name, arguments))
    return out


def _wire_call(index: int, call: ToolCall) -> Dict[str, Any]:
    """An assistant turn's call as Ollama sent it: ``{"id", "function": {"index", "name",
    "arguments"}}``, the arguments an object. Arguments that are not a JSON object (a proxy's
    string the model got wrong) go back as ``{}``: the server decodes an object only (anything
    else is a 400 for the whole request), and the ``ToolResult`` answering the call
    (``run_tools``: an error naming the bad arguments) tells the model what was wrong."""
    arguments = call.arguments if call.arguments_error is None else {}
    return {"id": call.id, "function": {"index": index, "name": call.name, "arguments": arguments}}


def _called_name(call_id: str, messages: Sequence[Message]) -> Optional[str]:
    """The name of the call with id ``call_id`` among the assistant turns, latest first."""
    for message in reversed(messages):
        for call in message.tool_calls:
            if call.id == call_id:
                return call.name
    return None


class _OllamaStream(StreamState):
    """NDJSON lines until one with ``"done": true``; an ``{"error": ...}`` line is an error.
    ``message.thinking`` fragments (they come before the content) are reasoning chunks, kept
    whole for the final chunk's ``provider_state``. ``message.tool_calls`` carries whole calls,
    never fragments, a batch possibly spread over several lines (§G.8): each call is started in
    the assembler, keyed by its arrival (``function.index`` restarts at 0 in every line on some
    servers, and is absent before v0.4.7), and yielded as a ``tool_call`` chunk."""

    def __init__(self, provider: str = "", finish_reasons: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(provider, finish_reasons)
        self.thinking: List[str] = []
        self.calls_started = 0

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
        calls = message.get("tool_calls")
        if calls:
            if not isinstance(calls, list):
                raise TypeError("message tool_calls is not a list")
            for call in calls:
                call_id, name, arguments = _call_parts(call)
                partial = self.tool_calls.start(self.calls_started, call_id, name, _raw_text(arguments))
                self.calls_started += 1
                pieces.append(self.tool_call_chunk(partial))
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

    Tools (PROTOCOLS-2.md §G.8) are sent in the OpenAI function shape. Ollama has no
    ``tool_choice`` and no parallel switch: "none" sends no tools, "required", a named tool and
    ``parallel_tool_calls=False`` are refused before sending. Calls arrive whole (streamed:
    one or more per line), with ``done_reason`` "stop" (``finish_reason`` is "tool_calls"),
    and without ids from servers before v0.12.10 (ids are made). A ``ToolResult`` goes back
    as a ``tool`` message with ``tool_name`` and ``tool_call_id`` (``_tool_turn``).
    """

    TYPE = "ollama"
    DEFAULT_BASE_URL = f"http://localhost:{DEFAULT_PORT}"
    BASE_URL_ENV = "OLLAMA_HOST"
    API_KEY_ENV = "OLLAMA_API_KEY"
    REQUIRES_KEY = False
    DEFAULT_MODEL = "llama3.2"
    MODELS_PATH = "/api/tags"
    FINISH_REASONS = FINISH_REASONS
    EMBEDDINGS_PATH = "/api/embed"
    #: The most pulled embedding model in Ollama's library.
    EMBEDDING_MODEL = "nomic-embed-text"
    #: Texts per ``/api/embed`` request: the server embeds them one by one, so a batch only
    #: bounds the answer (256 vectors of 4,096 JSON floats: about 24 MB).
    EMBED_MAX_INPUTS = 256
    STREAM_DECODER = NDJSON
    STREAM_STATE = _OllamaStream
    EXTRA_OPTIONS: ClassVar[Dict[str, Validator]] = {"keep_alive": as_keep_alive}
    STRUCTURED_OUTPUT_MODES: ClassVar[FrozenSet[str]] = frozenset({"schema", "json"})
    REASONING_LEVELS: ClassVar[FrozenSet[Union[str, bool]]] = frozenset({"low", "medium", "high", False})
    SAMPLING_OPTIONS: ClassVar[FrozenSet[str]] = frozenset({"top_p", "seed"})
    TOOL_CHOICES: ClassVar[FrozenSet[str]] = frozenset({"auto", "none"})
    PARALLEL_TOOL_CALLS: ClassVar[bool] = False

    def _configure(self, options: Mapping[str, Any]) -> None:
        self.keep_alive: Optional[Union[str, float]] = options.get("keep_alive")

    def _normalise_base_url(self, value: Optional[str]) -> Optional[str]:
        return normalise_ollama_host(value) if value else None

    def _build_request(self, call: ChatCall) -> RequestSpec:
        # The server streams unless told otherwise, so "stream" is always sent.
        messages = call.messages
        body: Dict[str, Any] = {
            "model": call.model,
            "messages": [self._wire_message(m, messages) for m in messages],
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

    def _wire_message(self, message: Message, messages: Sequence[Message]) -> Dict[str, Any]:
        """One message of the body: role, ``content`` (``_content_parts``), ``images`` when it
        has some, and for an assistant turn its ``thinking`` (from ``provider_state``) and
        ``tool_calls``; a ``ToolResult`` is a ``tool`` message naming its tool (``_tool_turn``)."""
        if isinstance(message, ToolResult):
            return self._tool_turn(message, messages)
        wire: Dict[str, Any] = {"role": message.role, "content": self._content_parts(message)}
        self._add_images(wire, message)
        if message.role != "assistant":
            return wire
        state = message.provider_state
        own = state.get(STATE_KEY) if state else None
        if isinstance(own, Mapping) and own.get("thinking") is not None:
            thinking = own["thinking"]
            if not isinstance(thinking, str):
                raise ConfigError(f"{self._where}: an assistant message's provider_state[{STATE_KEY!r}]['thinking'] "
                                  f"must be a string, got {type(thinking).__name__}")
            if thinking:
                wire["thinking"] = thinking
        if message.tool_calls:
            wire["tool_calls"] = [_wire_call(index, call) for index, call in enumerate(message.tool_calls)]
        return wire

    @staticmethod
    def _add_images(wire: Dict[str, Any], message: Message) -> None:
        if not isinstance(message.content, str):
            images = [part.base64 for part in message.content if isinstance(part, Image)]
            if images:
                wire["images"] = images

    def _tool_turn(self, result: ToolResult, messages: Sequence[Message]) -> Dict[str, Any]:
        """``{"role": "tool", "tool_name", "tool_call_id", "content"}`` (§G.8). Ollama routes a
        result by ``tool_name`` (servers before v0.12.10 know nothing else; ``tool_call_id`` is
        ignored by them and sent anyway): the result's ``name``, or else the name of the earlier
        call with its id. Images a tool returned go in ``images``, as on any Ollama message (the
        server reads every message's images, whatever its role). Ollama has no error flag: an
        ``is_error`` result's content says so with an "Error: " prefix, unless it already
        starts with "error".

        :raises ConfigError: for a result whose tool cannot be named (no ``name``, and no call
            with its id in the messages): Ollama would take it and the model read a result of
            no tool, where the other protocols refuse a result answering no call.
        """
        name = result.name or _called_name(result.tool_call_id, messages)
        if name is None:
            raise ConfigError(
                f"{self._where}: the ToolResult for tool call {result.tool_call_id!r} names no tool, and no "
                "assistant message before it has a call with that id; Ollama needs the tool's name: "
                "pass name= (call.result(...) fills it in)"
            )
        content = self._content_parts(result)
        if result.is_error and content[:5].lower() != "error":
            content = "Error: " + content if content else "Error"
        wire: Dict[str, Any] = {"role": "tool", "tool_name": name, "tool_call_id": result.tool_call_id,
                                "content": content}
        self._add_images(wire, result)
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

    def _apply_tools(self, body: Dict[str, Any], call: ChatCall) -> None:
        """``tools`` in the OpenAI function shape, as ollama-python sends them (§G.8).

        Ollama has no ``tool_choice`` and no parallel switch (``TOOL_CHOICES``,
        ``PARALLEL_TOOL_CALLS``: "required", a named tool and ``parallel_tool_calls=False`` are
        refused before sending). "none" is expressed exactly by leaving the tools out: the
        server then renders no tool definitions and runs no tool parser, so the model cannot
        call one, and earlier tool turns of the history are still sent and rendered.
        """
        tools = call.tools
        assert tools is not None
        if call.tool_choice != "none":
            body["tools"] = [tool.to_dict() for tool in tools]

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
            reasoning=thinking or None, provider_state=_thinking_state(thinking), tool_calls=_tool_calls(message),
        )

    def _embed_request(self, model: str, texts: List[str], dimensions: Optional[int]) -> RequestSpec:
        """``POST /api/embed`` with ``input`` a list (batched), as ``ollama.Client.embed`` sends."""
        body: Dict[str, Any] = {"model": model, "input": texts}
        if dimensions is not None:
            body["dimensions"] = dimensions
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        return RequestSpec(self.EMBEDDINGS_PATH, body)

    def _parse_embeddings(self, data: Any) -> Tuple[List[Any], Optional[str], Usage]:
        """``{"model", "embeddings": [[float...]...], "prompt_eval_count", ...}``."""
        from ._embed import decode_vector

        if isinstance(data, dict) and data.get("error"):
            raise error_from_event(self.name, 500, str(data["error"]), None, context="in a 200 response")
        embeddings = data["embeddings"]
        if not isinstance(embeddings, list):
            raise TypeError("embeddings is not a list")
        count = data.get("prompt_eval_count")
        return [decode_vector(vector) for vector in embeddings], data.get("model"), Usage(count, None, count)

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
