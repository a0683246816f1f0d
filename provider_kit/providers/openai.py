"""OpenAI Chat Completions, also for any OpenAI-compatible server (vLLM, LM Studio, Ollama's /v1,
Groq, OpenRouter...). Wire format: PROTOCOLS.md §A; images, structured output, tool calling, reasoning and
usage details: PROTOCOLS-2.md §E.1, §F.1, §G.1-4, §H.1-2, §I.1."""

from __future__ import annotations

import json
import os
import re
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
)

from .._options import Validator, as_choice, as_str
from .._parts import Image, Text
from .._streaming import SSE, load_json
from ..types import Message, StreamChunk, Usage
from ._answers import ParsedAnswer
from ._base import (
    EXCERPT_WINDOW,
    HTTPProvider,
    StreamState,
    error_from_event,
)
from ._calls import ChatCall, RequestSpec
from ._listing import model_ids

if TYPE_CHECKING:
    from ._openai_tools import StreamedToolCalls

# The tool code (``_openai_tools``) is imported by the first call that has tools or tool turns:
# a plain call, and ``import provider_kit``, never load it.
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


#: The fields compatible servers return thinking text in (PROTOCOLS-2.md §H.2): DeepSeek,
#: llama.cpp and xAI say ``reasoning_content``, vLLM, Ollama's /v1, OpenRouter and Groq
#: ``reasoning``. api.openai.com returns none (only a count in the usage).
REASONING_FIELDS = ("reasoning_content", "reasoning")


def _count(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage(data: Any) -> Usage:
    """``usage``, with its details when the server reports them (a missing one is None, not 0):
    ``prompt_tokens_details.cached_tokens`` / ``cache_write_tokens`` (both part of
    ``prompt_tokens``; DeepSeek says ``prompt_cache_hit_tokens``) and
    ``completion_tokens_details.reasoning_tokens`` (part of ``completion_tokens``)."""
    if not isinstance(data, dict):
        return Usage()
    prompt = data.get("prompt_tokens_details")
    prompt = prompt if isinstance(prompt, dict) else {}
    completion = data.get("completion_tokens_details")
    completion = completion if isinstance(completion, dict) else {}
    cached = _count(prompt.get("cached_tokens"))
    if cached is None:
        cached = _count(data.get("prompt_cache_hit_tokens"))
    return Usage(
        data.get("prompt_tokens"), data.get("completion_tokens"), data.get("total_tokens"),
        cached_input_tokens=cached,
        cache_creation_input_tokens=_count(prompt.get("cache_write_tokens")),
        reasoning_tokens=_count(completion.get("reasoning_tokens")),
    )


def _reasoning_of(message: Mapping[str, Any], field: Optional[str]) -> Tuple[Optional[str], str]:
    """``(field, text)``: the thinking text of a message or delta, read from ``field`` (the one
    this answer already used), else from the first of ``REASONING_FIELDS`` it has. One field
    only: a server that sends both (vLLM while it renamed them) sends the same text twice."""
    for name in (field,) if field else REASONING_FIELDS:
        value = message.get(name)
        if isinstance(value, str) and value:
            return name, value
    return field, ""


class _OpenAIStream(StreamState):
    """``data: {chunk}`` events up to ``data: [DONE]``; usage arrives in a last, choice-less chunk.
    Thinking arrives in ``delta.reasoning_content`` / ``delta.reasoning`` (as reasoning chunks),
    a refusal in ``delta.refusal`` (as text, the answer then ends as ``content_filter``), tool
    calls in ``delta.tool_calls`` fragments (``_openai_tools.StreamedToolCalls``)."""

    def __init__(self, provider: str = "", finish_reasons: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(provider, finish_reasons)
        self.reasoning_field: Optional[str] = None
        self.reasonings: List[str] = []
        self.refused = False
        self.streamed_calls: Optional[StreamedToolCalls] = None

    def feed(self, event: Any) -> Iterable[StreamChunk]:
        data = event.data
        if data.startswith("[DONE]"):
            self.done = True
            return ()
        try:
            chunk = load_json(data)
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
            self.reasoning_field, reasoning = _reasoning_of(delta, self.reasoning_field)
            if reasoning:
                self.reasonings.append(reasoning)
                pieces.append(self.reasoning_chunk(reasoning))
            content = _content_text(delta.get("content"))
            if content:
                pieces.append(self.text_chunk(content))
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                self.refused = True
                pieces.append(self.text_chunk(refusal))
            fragments = delta.get("tool_calls")
            if fragments:
                if self.streamed_calls is None:
                    from ._openai_tools import StreamedToolCalls

                    self.streamed_calls = StreamedToolCalls()
                pieces += self.streamed_calls.feed(self, fragments)
            if choice.get("finish_reason") is not None:
                self.finish_reason = self.finish(choice["finish_reason"])
                if self.refused and self.finish_reason == "stop":
                    self.finish_reason = "content_filter"
        if chunk.get("usage"):
            self.usage = _usage(chunk["usage"])
        return pieces

    def final_chunk(self) -> StreamChunk:
        if self.reasoning_field and self.reasonings:
            self.provider_state = {self.reasoning_field: "".join(self.reasonings)}
        return super().final_chunk()


class OpenAIProvider(HTTPProvider):
    """OpenAI's ``POST {base_url}/chat/completions``; ``base_url`` includes ``/v1``.

    Options beyond the common ones: ``organization`` and ``project`` (sent as
    ``OpenAI-Organization`` / ``OpenAI-Project``; read from ``$OPENAI_ORG_ID`` /
    ``$OPENAI_PROJECT_ID`` only for api.openai.com), and ``max_tokens_field``: ``"auto"`` sends
    ``max_completion_tokens`` to api.openai.com and to reasoning models (o-series, gpt-5), and
    ``max_tokens`` to other servers, many of which know only that field.
    No API key is required for a loopback ``base_url`` (a local vLLM, LM Studio or Ollama), and
    ``$OPENAI_API_KEY`` is sent only to api.openai.com or the server ``$OPENAI_BASE_URL`` names.

    Beyond text (PROTOCOLS-2.md §E.1-§I.1):

    * images go as ``image_url`` parts of a user message (a data URL for bytes, the URL for a
      URL, ``detail`` only when the image has one); an image in another role is refused;
    * ``schema=`` sends ``response_format`` ``json_schema`` (strict when the schema allows it,
      see ``_openai_schema``), ``json=True`` sends ``json_object`` (OpenAI then wants the word
      "json" in the messages); a refusal (``message.refusal``) is ``finish_reason``
      ``"content_filter"`` with the refusal as the text;
    * ``reasoning="low"|"medium"|"high"`` sends ``reasoning_effort``; ``reasoning=False`` sends
      ``reasoning_effort: "none"`` (models that cannot turn thinking off answer 400). Thinking
      text, which api.openai.com never returns, is read from ``reasoning_content`` or
      ``reasoning`` (compatible servers) and kept in ``provider_state`` under that name;
    * ``top_p`` and ``seed`` are sent as such; ``cache=True`` is accepted and sends nothing:
      OpenAI caches prompts automatically (the usage reports ``cached_input_tokens``);
    * ``tools=`` sends ``tools`` as the openai SDK does, ``tool_choice`` ("auto", "none",
      "required", or a name as ``{"type": "function", "function": {"name"}}``) and
      ``parallel_tool_calls`` only when given. An assistant turn's calls go back with their
      arguments as the model wrote them; a ``ToolResult`` is a ``tool`` message of text only (an
      image is refused), and as the wire has no error flag, an error result's text starts with
      "Error: " unless it already says "error". Calls are read from ``message.tool_calls``, or
      assembled from ``delta.tool_calls`` fragments (by ``index``, or by ``id`` where a server
      reuses an index; id and name taken once).
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
    EMBEDDINGS_PATH = "/embeddings"
    EMBEDDING_MODEL = "text-embedding-3-small"
    #: OpenAI's limits per embeddings request: 2,048 inputs and 300,000 tokens in all.
    EMBED_MAX_INPUTS = 2048
    EMBED_MAX_TOKENS = 300_000
    EXTRA_OPTIONS: ClassVar[Dict[str, Validator]] = {
        "organization": as_str,
        "project": as_str,
        "max_tokens_field": as_choice("auto", "max_tokens", "max_completion_tokens"),
    }
    STRUCTURED_OUTPUT_MODES: ClassVar[FrozenSet[str]] = frozenset({"schema", "json"})
    REASONING_LEVELS: ClassVar[FrozenSet[Union[str, bool]]] = frozenset({"low", "medium", "high", False})
    SAMPLING_OPTIONS: ClassVar[FrozenSet[str]] = frozenset({"top_p", "seed"})
    #: The body fields of ``reasoning=False`` (a preset whose service has another switch, as
    #: DeepSeek's ``thinking``, says so in its row).
    REASONING_OFF: ClassVar[Mapping[str, Any]] = {"reasoning_effort": "none"}
    #: The body field of ``seed=`` (Mistral's is ``random_seed``).
    SEED_FIELD: ClassVar[str] = "seed"
    #: Whether an assistant turn sends its thinking back (``provider_state``'s
    #: ``reasoning_content`` / ``reasoning``, under that name): DeepSeek needs it on tool-call
    #: turns; api.openai.com refuses unknown message fields, so only a preset says yes.
    ECHO_REASONING: ClassVar[bool] = False
    #: The field a tool-call turn's thinking goes back in when the turn has none to send (with
    #: ``ECHO_REASONING``: DeepSeek wants the field on such turns, even empty).
    REASONING_FIELD: ClassVar[Optional[str]] = None
    TOOL_CHOICES: ClassVar[FrozenSet[str]] = frozenset({"auto", "none", "required", "name"})
    PARALLEL_TOOL_CALLS: ClassVar[bool] = True
    #: The rule tool-call ids sent back must follow: None (any), or ``"alnum9"`` (Mistral:
    #: other ids are rewritten, the same way in the calls and in the results answering them).
    TOOL_ID_RULE: ClassVar[Optional[str]] = None
    #: Schema keywords the service refuses in a tool's parameters, removed before sending
    #: (Gemini's ``additionalProperties`` and ``examples``).
    TOOL_SCHEMA_DROP: ClassVar[Tuple[str, ...]] = ()

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
            "messages": [self._wire_message(m) for m in call.messages],
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

    def _wire_message(self, message: Message) -> Dict[str, Any]:
        if message.role == "tool":
            return self._tool_message(message)
        wire: Dict[str, Any] = {"role": message.role, "content": self._content_parts(message)}
        if message.tool_calls:
            from ._openai_tools import assistant_tool_calls

            wire["content"] = wire["content"] or None  # what OpenAI sends for a turn of calls only
            wire["tool_calls"] = assistant_tool_calls(message.tool_calls, self.TOOL_ID_RULE)
        if self.ECHO_REASONING and message.role == "assistant":
            state = message.provider_state or {}
            for name in REASONING_FIELDS:
                if isinstance(state.get(name), str):
                    wire[name] = state[name]
                    break
            else:
                if message.tool_calls:  # DeepSeek refuses a tool-call turn without the field
                    wire[self.REASONING_FIELD or REASONING_FIELDS[0]] = ""
        return wire

    def _tool_message(self, message: Message) -> Dict[str, Any]:
        """A ``ToolResult`` as a ``tool`` message: ``tool_call_id`` and the result's text."""
        call_id = getattr(message, "tool_call_id", None)
        if call_id is None:
            raise self._refuse("a 'tool' message that is not a ToolResult",
                               "OpenAI needs the tool_call_id it answers: use call.result(value) or ToolResult")
        from ._openai_tools import tool_result_text, wire_tool_call_id

        return {"role": "tool", "tool_call_id": wire_tool_call_id(call_id, self.TOOL_ID_RULE),
                "content": tool_result_text(message, self._refuse)}

    def _content_parts(self, message: Message) -> Any:
        """A string (text parts joined: every compatible server takes that), or with an image
        the list of ``text`` and ``image_url`` parts, in a user message only (§E.1)."""
        content = message.content
        if isinstance(content, str) or all(isinstance(part, Text) for part in content):
            return super()._content_parts(message)
        if message.role != "user":
            raise self._refuse(
                f"image parts in a {message.role!r} message",
                "OpenAI Chat Completions takes images only in user messages",
            )
        parts: List[Dict[str, Any]] = []
        for part in content:
            if isinstance(part, Text):
                parts.append({"type": "text", "text": part.text})
            elif isinstance(part, Image):
                parts.append(part.to_dict())  # image_url: the URL or the data URL, detail if set
            else:
                raise self._refuse(f"{type(part).__name__.lower()} parts in a {message.role!r} message")
        return parts

    # -- the features (``_features``)

    def _apply_output_format(self, body: Dict[str, Any], call: ChatCall) -> None:
        output = call.output
        assert output is not None
        if output.mode == "json":
            body["response_format"] = {"type": "json_object"}
            return
        from ._openai_schema import response_schema  # only calls with a schema need it

        schema, strict = response_schema(output)
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": output.name, "schema": schema, "strict": strict},
        }

    def _apply_reasoning(self, body: Dict[str, Any], call: ChatCall) -> None:
        if call.reasoning is False:
            body.update(json.loads(json.dumps(self.REASONING_OFF)))  # a copy: extra_body merges into it
        else:
            body["reasoning_effort"] = call.reasoning

    def _apply_sampling(self, body: Dict[str, Any], call: ChatCall) -> None:
        if call.top_p is not None:
            body["top_p"] = call.top_p
        if call.seed is not None:
            body[self.SEED_FIELD] = call.seed

    def _apply_tools(self, body: Dict[str, Any], call: ChatCall) -> None:
        assert call.tools is not None
        from ._openai_tools import tool_choice_body, tools_body

        body["tools"] = tools_body(call.tools, self.TOOL_SCHEMA_DROP)
        if call.tool_choice is not None:
            body["tool_choice"] = tool_choice_body(call.tool_choice)
        if call.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = call.parallel_tool_calls

    def _apply_cache(self, body: Dict[str, Any], call: ChatCall) -> None:
        """Nothing to send: OpenAI and the compatible servers cache prompt prefixes on their own
        (PROTOCOLS-2.md §I.1); ``usage.cached_input_tokens`` says what was read from the cache."""

    def _parse_completion(self, data: Any) -> ParsedAnswer:
        if isinstance(data, dict) and data.get("error"):
            # OpenRouter answers 200 with an error body when generation failed after it began.
            raise _stream_error(self.name, data["error"], context="in a 200 response")
        choice = data["choices"][0]
        message = choice["message"]
        text = _content_text(message.get("content"))
        finish = self._finish_reason(choice.get("finish_reason"))
        refusal = message.get("refusal")
        if not text and isinstance(refusal, str) and refusal:
            # A refusal ends "normally" on the wire; normalised as Anthropic's "refusal" is, so a
            # caller can tell an empty answer from a declined one without reading ``raw``; the
            # text is the refusal (never parsed as the JSON a schema asked for).
            text = refusal
            if finish == "stop":
                finish = "content_filter"
        field, reasoning = _reasoning_of(message, None)
        calls = _parse_tool_calls(message) if message.get("tool_calls") else ()
        return ParsedAnswer(
            text, data.get("model"), finish, _usage(data.get("usage")),
            reasoning=reasoning or None,
            provider_state={field: reasoning} if field and reasoning else None,
            tool_calls=calls,
        )

    def _embed_request(self, model: str, texts: List[str], dimensions: Optional[int]) -> RequestSpec:
        return RequestSpec(self.EMBEDDINGS_PATH, self._embed_body(model, texts, dimensions))

    def _embed_body(self, model: str, texts: List[str], dimensions: Optional[int]) -> Dict[str, Any]:
        """What ``openai.OpenAI().embeddings.create`` sends, in its order: the vectors as
        base64 float32 (a quarter of the JSON floats' bytes, decoded without parsing a number)."""
        body: Dict[str, Any] = {"model": model, "input": texts}
        if dimensions is not None:
            body["dimensions"] = dimensions
        body["encoding_format"] = "base64"
        return body

    def _parse_embeddings(self, data: Any) -> Tuple[List[Any], Optional[str], Usage]:
        """``{"data": [{"index", "embedding"}], "model", "usage": {"prompt_tokens", "total_tokens"}}``;
        an embedding is base64, or a list of floats from a server that ignores the encoding."""
        from ._embed import openai_vectors

        usage = data.get("usage") or {}
        count = Usage(usage.get("prompt_tokens"), None, usage.get("total_tokens"))
        return openai_vectors(data), data.get("model"), count

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



def _parse_tool_calls(message: Mapping[str, Any]) -> Any:
    from ._openai_tools import parse_tool_calls

    return parse_tool_calls(message)
