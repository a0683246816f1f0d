"""The OpenAI Chat Completions wire (PROTOCOLS.md §A): bodies, errors and the default simulator."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .._reply import Chunk, RecordedRequest, Reply, _dumps
from ._base import JSONDict, Piece, ScriptedCall, Wire, text_events
from ._embeddings import openai_embeddings
from ._openai_checks import ChatTurn, check_chat_request
from ._openai_tools import arguments_text, cut, new_call_id, tool_plan, wire_call

if TYPE_CHECKING:
    from .._server import LoopbackServer


class OpenAIWire(Wire):
    """OpenAI's Chat Completions, and the OpenAI-compatible services' deviations from it as
    quirks (PROTOCOLS.md §A.8, PROTOCOLS-2.md §K): ``models_shape`` ``"array"`` lists the models
    as a bare JSON array (Together); ``error_shape`` ``"top-level"`` sends errors as
    ``{"object": "error", "message", ...}`` (Mistral, old vLLM); ``integer_error_codes`` makes
    ``error.code`` the status (OpenRouter, vLLM, xAI); ``stream_comment`` interleaves an SSE
    comment line (OpenRouter's ``: OPENROUTER PROCESSING``); ``health_path`` serves a health
    endpoint under the prefix and at the root (llama.cpp's ``/health``); ``loading`` answers
    every request with llama.cpp's 503 "Loading model"; ``generation_error`` (a status and a
    message) fails each chat request after generation began, which ``errors_after_200`` sends
    with status 200, in the body or as a stream event (OpenRouter).

    Beyond text (PROTOCOLS-2.md §E-§I; the checks and the answer are in ``_openai_checks``):
    ``structured_output`` lists the ``response_format`` modes served ("schema", "json"; LM
    Studio and DeepSeek serve one each); ``reasoning_field`` (``"reasoning_content"`` or
    ``"reasoning"``) makes the server think aloud in that field, as DeepSeek or vLLM do, unless
    the request turns thinking off, and accepts it back in assistant messages;
    ``reasoning_models`` (a regular expression; None: any model) are the models that take
    ``reasoning_effort``; ``seed_field`` names the seed's field (Mistral's ``random_seed``);
    ``refusal`` (a text) makes every chat answer that refusal. Images are described in the
    echo, a JSON answer fits the requested schema, and a prompt prefix seen before is reported
    as ``cached_tokens``.

    Tools (PROTOCOLS-2.md §G; checks and plan in ``_openai_tools``): a request offering tools gets
    the calls ``ToolPlan`` makes (streamed in ``delta.tool_calls`` fragments, as §G.3's worked
    example), and one ending with tool results a text answer quoting them. ``tool_calls``
    scripts the calls (``[(name, arguments)]``); ``tool_choices`` (the forms served; a named
    choice outside them reads as "auto", an empty one drops tools), ``tool_id_rule``
    (``"alnum9"``: Mistral's 9-character ids, others refused) and ``echo_reasoning``
    (DeepSeek: a tool-call turn without ``reasoning_content`` refused while thinking is on)
    reproduce the services' rules.
    """

    name = "openai"
    api_prefix = "/v1"
    request_id_header = "x-request-id"
    default_models = ("gpt-4o-mini", "gpt-4o")
    default_finish = "stop"
    default_stream_error = ("server_error", "The server had an error while processing your request. Sorry about that!")
    bad_json_message = (
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
        "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid "
        "JSON. If you have trouble figuring out how to fix this, please contact us through our help "
        "center at help.openai.com.)"
    )
    QUIRKS: Dict[str, Any] = {
        "models_shape": "object",
        "error_shape": "nested",
        "integer_error_codes": False,
        "stream_comment": None,
        "health_path": None,
        "loading": False,
        "generation_error": None,
        "errors_after_200": False,
        "structured_output": ("schema", "json"),
        "reasoning_field": None,
        "reasoning_models": r"(^|/)(o\d|gpt-5)",
        "seed_field": "seed",
        "refusal": None,
        "tool_calls": None,
        "tool_choices": None,
        "tool_id_rule": None,
        "echo_reasoning": False,
    }
    errors = {
        400: ("invalid_request_error", "Invalid request."),
        401: ("invalid_request_error", "Incorrect API key provided. You can find your API key at "
                                       "https://platform.openai.com/account/api-keys."),
        403: ("invalid_request_error", "Country, region, or territory not supported"),
        404: ("invalid_request_error", "The model does not exist or you do not have access to it."),
        429: ("requests", "Rate limit reached for requests. Please try again in 1s."),
        500: ("server_error", "The server had an error while processing your request. Sorry about that!"),
        503: ("server_error", "The engine is currently overloaded, please try again later"),
    }

    def error_reply(self, status: int, message: Optional[str] = None, *, type: Optional[str] = None,
                    code: Optional[str] = None, **kwargs: Any) -> Reply:
        if code == "insufficient_quota":  # the 429 that retrying cannot clear (§A.5)
            type = type or "insufficient_quota"
            message = message or ("You exceeded your current quota, please check your plan and billing "
                                  "details. For more information on this error, read the docs: "
                                  "https://platform.openai.com/docs/guides/error-codes/api-errors.")
        elif status == 429 and code is None and type is None and not self.quirks.get("integer_error_codes"):
            code = "rate_limit_exceeded"
        if self.quirks.get("integer_error_codes") and code is None:
            code = status  # type: ignore[assignment]  # OpenRouter's, vLLM's and xAI's integer code
        return super().error_reply(status, message, type=type, code=code, **kwargs)

    def error_body(self, message: str, type: str, code: Optional[str], param: Optional[str],
                   request_id: str) -> JSONDict:
        if self.quirks.get("error_shape") == "top-level":
            return {"object": "error", "message": message, "type": type, "param": param, "code": code}
        return {"error": {"message": message, "type": type, "param": param, "code": code}}

    def configured(self, **kwargs: Any) -> Wire:
        wire = super().configured(**kwargs)
        wire.seen_prompts = set()  # type: ignore[attr-defined]  # this server's prompt cache
        return wire

    def completion(self, text: str, model: str, finish_reason: str, input_tokens: int,
                   output_tokens: int, include_usage: bool = True, *, message: Optional[JSONDict] = None,
                   usage: Optional[JSONDict] = None) -> JSONDict:
        """A chat completion; ``message`` replaces or adds message fields (``refusal``, a
        reasoning field), ``usage`` replaces the usage object."""
        body: JSONDict = {
            "id": "chatcmpl-" + uuid.uuid4().hex[:29],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None, "annotations": [],
                            **(message or {})},
                "logprobs": None,
                "finish_reason": finish_reason,
            }],
            "service_tier": "default",
        }
        if include_usage:
            body["usage"] = usage or self.usage(input_tokens, output_tokens)
        return body

    @staticmethod
    def usage(input_tokens: int, output_tokens: int, cached_tokens: int = 0, reasoning_tokens: int = 0) -> JSONDict:
        """A usage object with its details (``cached_tokens`` are part of ``prompt_tokens``,
        ``reasoning_tokens`` of ``completion_tokens``)."""
        return {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        }

    def stream_parts(self, pieces: Sequence[Piece], *, model: str, finish_reason: str,
                     input_tokens: int, output_tokens: int, include_usage: bool,
                     error_after: Optional[int], error: Tuple[str, str], terminate: bool,
                     obfuscate: bool = True, reasoning: Sequence[str] = (), reasoning_field: str = "reasoning",
                     refusal: bool = False, usage: Optional[JSONDict] = None) -> List[Chunk]:
        """The chunks of a streamed answer: ``reasoning`` pieces first (in ``reasoning_field``
        deltas), then the text pieces (as ``refusal`` deltas with ``refusal``), the finish, the
        usage chunk (``usage``, else the counts) and ``[DONE]``."""
        head, chunk = self._chunk_writer(model, include_usage, obfuscate)
        comment = self.quirks.get("stream_comment")
        comments: List[Chunk] = [b": " + comment.encode() + b"\n\n"] if comment else []
        first: JSONDict = {"role": "assistant", "content": None, "refusal": ""} if refusal else \
            {"role": "assistant", "content": ""}
        out: List[Chunk] = [*comments, chunk(first)]
        out += [chunk({reasoning_field: piece}) for piece in reasoning]
        events, failed = text_events(pieces, error_after,
                                     lambda text: chunk({"refusal" if refusal else "content": text}))
        out += events
        if failed:
            error_body = self.error_body(error[1], error[0], None, None, "")
            return [*out, b"data: " + _dumps(error_body) + b"\n\n"]
        out += comments
        out.append(chunk({}, finish_reason))
        if include_usage:
            out.append(b"data: " + _dumps(dict(head, choices=[], usage=usage or self.usage(
                input_tokens, output_tokens))) + b"\n\n")
        if terminate:
            out.append(b"data: [DONE]\n\n")
        return out

    @staticmethod
    def _chunk_writer(model: str, include_usage: bool, obfuscate: bool) -> Tuple[JSONDict, Any]:
        """A stream's common keys, and the function writing one ``chat.completion.chunk`` event."""
        head: JSONDict = {"id": "chatcmpl-" + uuid.uuid4().hex[:29], "object": "chat.completion.chunk",
                          "created": int(time.time()), "model": model}
        counter = itertools.count(1)

        def chunk(delta: JSONDict, finish: Optional[str] = None) -> bytes:
            body = dict(head, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])
            if include_usage:
                body["usage"] = None
            if obfuscate:  # random-looking padding the real API adds; clients must ignore it
                body["obfuscation"] = f"{next(counter) * 2654435761 % 2**32:08x}"
            return b"data: " + _dumps(body) + b"\n\n"

        return head, chunk

    def tool_call_completion(self, text: str, calls: Sequence[ScriptedCall], *, model: str,
                             finish_reason: Optional[str], input_tokens: int, output_tokens: int,
                             message: Optional[JSONDict] = None, usage: Optional[JSONDict] = None) -> JSONDict:
        """A completion whose message has ``text`` (null when "") and ``calls`` (ids made up
        where None); ``message`` adds fields (a reasoning field)."""
        wired = [wire_call(call_id or new_call_id(self.quirks), name, arguments) for call_id, name, arguments in calls]
        return self.completion(text, model, finish_reason or "tool_calls", input_tokens, output_tokens,
                               message={"content": text or None, "tool_calls": wired, **(message or {})},
                               usage=usage)

    def tool_call_stream_parts(self, pieces: Sequence[Piece], calls: Sequence[ScriptedCall], *, fragments: int,
                               model: str, finish_reason: Optional[str], input_tokens: int, output_tokens: int,
                               include_usage: bool, terminate: bool, obfuscate: bool = True,
                               reasoning: Sequence[str] = (), reasoning_field: str = "reasoning",
                               usage: Optional[JSONDict] = None) -> List[Chunk]:
        """A streamed answer with calls (§G.3): the ``reasoning`` and text ``pieces``, then each
        call's first fragment (index, id, type, name, ``arguments: ""``; in the first chunk
        when there is no text), its arguments in ``fragments`` pieces, the finish
        ("tool_calls"), the usage chunk and ``[DONE]``."""
        head, chunk = self._chunk_writer(model, include_usage, obfuscate)
        starts = [{"index": index, "id": call_id or new_call_id(self.quirks), "type": "function",
                   "function": {"name": name, "arguments": ""}} for index, (call_id, name, _) in enumerate(calls)]
        texts = [piece for piece in pieces if isinstance(piece, str)]
        out: List[Chunk] = []
        if texts or reasoning or not calls:
            out.append(chunk({"role": "assistant", "content": ""}))
            out += [chunk({reasoning_field: piece}) for piece in reasoning]
            out += text_events(pieces, None, lambda text: chunk({"content": text}))[0]
        else:
            out += [piece for piece in pieces if not isinstance(piece, str)]  # gates, pauses
        for index, (_, _, arguments) in enumerate(calls):
            if out or index:
                out.append(chunk({"tool_calls": [starts[index]]}))
            else:
                out.append(chunk({"role": "assistant", "content": None, "tool_calls": [starts[index]]}))
            for piece in cut(arguments_text(arguments), fragments):
                if piece:
                    out.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
        out.append(chunk({}, finish_reason or "tool_calls"))
        if include_usage:
            out.append(b"data: " + _dumps(dict(head, choices=[], usage=usage or self.usage(
                input_tokens, output_tokens))) + b"\n\n")
        if terminate:
            out.append(b"data: [DONE]\n\n")
        return out

    def simulate(self, server: LoopbackServer, request: RecordedRequest) -> Reply:
        prefix = self.api_prefix
        health = self.quirks.get("health_path")
        if self.quirks.get("loading"):  # llama.cpp while it loads the model (PROTOCOLS-2.md §K)
            return self.json_reply(503, {"error": {"code": 503, "message": "Loading model",
                                                   "type": "unavailable_error"}})
        route = (request.method, request.path)
        if health and request.method == "GET" and request.path in (health, prefix + health):
            return self.json_reply(200, {"status": "ok"})  # public: no key needed
        if server.api_key is not None:
            auth = request.headers.get("Authorization", "")
            if not auth:
                return self.error_reply(401, "You didn't provide an API key. You need to provide your API key "
                                        "in an Authorization header using Bearer auth (i.e. Authorization: "
                                        "Bearer YOUR_KEY), or as the password field (with blank username) "
                                        "if you're accessing the API from your browser and are prompted for "
                                        "a username and password. You can obtain an API key from "
                                        "https://platform.openai.com/account/api-keys.")
            if auth != f"Bearer {server.api_key}":
                sent = auth[7:] if auth.startswith("Bearer ") else ""
                return self.error_reply(401, f"Incorrect API key provided: {_mask(sent)}. You can find your "
                                        "API key at https://platform.openai.com/account/api-keys.",
                                        code="invalid_api_key")
        if route == ("POST", prefix + "/chat/completions"):
            return self._chat(server, request)
        if route == ("POST", prefix + "/embeddings"):
            body = self.parse_json(request)
            if isinstance(body, Reply):
                return body
            return openai_embeddings(body, self.error_reply, self.json_reply)
        if request.method == "GET" and request.path == prefix + "/models":
            models = [self._model(m) for m in server.models]
            if self.quirks.get("models_shape") == "array":
                return self.json_reply(200, models)
            return self.json_reply(200, {"object": "list", "data": models})
        if request.method == "GET" and request.path.startswith(prefix + "/models/"):
            model = request.path[len(prefix + "/models/"):]
            if model in server.models:
                return self.json_reply(200, self._model(model))
            return self._model_not_found(model)
        return self.error_reply(404, f"Invalid URL ({request.method} {request.path})")

    @staticmethod
    def _model(model: str) -> JSONDict:
        return {"id": model, "object": "model", "created": 1686935002, "owned_by": "openai"}

    def _model_not_found(self, model: str) -> Reply:
        return self.error_reply(404, f"The model `{model}` does not exist or you do not have access to it.",
                                code="model_not_found")

    def _chat(self, server: LoopbackServer, request: RecordedRequest) -> Reply:
        body = self.parse_json(request)
        if isinstance(body, Reply):
            return body
        if not body.get("model"):
            return self.error_reply(400, "you must provide a model parameter")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.error_reply(400, "Missing required parameter: 'messages'.", param="messages",
                                    code="missing_required_parameter")
        stream = body.get("stream") is True
        options = body.get("stream_options")
        if options is not None and not stream:
            return self.error_reply(400, "The 'stream_options' parameter is only allowed when 'stream' "
                                    "is enabled.", param="stream_options")
        return self.chat_answer(server, body, str(body["model"]), stream)

    def chat_answer(self, server: LoopbackServer, body: JSONDict, model: str, stream: bool) -> Reply:
        """The answer to a checked chat request: its features checked (a 400 as the real API
        words it), then the echo, JSON, reasoning or refusal it asks for, whole or streamed."""
        refused = check_chat_request(self, body)
        if refused is not None:
            return refused
        failure = self.quirks.get("generation_error")
        if failure is not None:
            return self._generation_error(int(failure[0]), str(failure[1]), stream)
        plan = tool_plan(body, self.quirks)
        turn = ChatTurn(body, self.quirks, getattr(self, "seen_prompts", set()), plan.text if plan else None)
        finish = "length" if turn.truncated else "stop"
        usage = self.usage(turn.input_tokens, turn.output_tokens, turn.cached_tokens, turn.reasoning_tokens)
        field = self.quirks.get("reasoning_field") or "reasoning"
        if plan is not None and plan.calls and not turn.refusal:
            return self._tool_call_answer(server, body, model, stream, plan.calls, turn, field)
        if not stream or getattr(server, "ignore_stream", False):
            extra: JSONDict = {}
            if turn.reasoning:
                extra[field] = turn.reasoning
            if turn.refusal:
                extra.update(content=None, refusal=turn.text)
            return self.json_reply(200, self.completion(turn.text, model, finish, turn.input_tokens,
                                                        turn.output_tokens, message=extra, usage=usage))
        options = body.get("stream_options")
        options = options if isinstance(options, Mapping) else {}
        parts = self.stream_parts(turn.pieces, model=model, finish_reason=finish,
                                  input_tokens=turn.input_tokens, output_tokens=turn.output_tokens,
                                  include_usage=options.get("include_usage") is True, error_after=None,
                                  error=self.default_stream_error, terminate=True,
                                  obfuscate=options.get("include_obfuscation", True) is not False,
                                  reasoning=turn.reasoning_pieces, reasoning_field=field,
                                  refusal=turn.refusal, usage=usage)
        return Reply(200, chunks=parts, content_type=self.stream_type, headers=self.id_headers())

    def _tool_call_answer(self, server: LoopbackServer, body: JSONDict, model: str, stream: bool,
                          calls: Sequence[Tuple[str, Any]], turn: ChatTurn, field: str) -> Reply:
        """The model's calls, with its thinking when it thinks aloud, whole or streamed."""
        scripted = [(None, name, arguments) for name, arguments in calls]
        output_tokens = turn.reasoning_tokens + 5 * len(calls)
        usage = self.usage(turn.input_tokens, output_tokens, turn.cached_tokens, turn.reasoning_tokens)
        if not stream or getattr(server, "ignore_stream", False):
            extra = {field: turn.reasoning} if turn.reasoning else {}
            return self.json_reply(200, self.tool_call_completion(
                "", scripted, model=model, finish_reason=None, input_tokens=turn.input_tokens,
                output_tokens=output_tokens, message=extra, usage=usage))
        options = body.get("stream_options")
        options = options if isinstance(options, Mapping) else {}
        parts = self.tool_call_stream_parts(
            (), scripted, fragments=3, model=model, finish_reason=None, input_tokens=turn.input_tokens,
            output_tokens=output_tokens, include_usage=options.get("include_usage") is True, terminate=True,
            obfuscate=options.get("include_obfuscation", True) is not False, reasoning=turn.reasoning_pieces,
            reasoning_field=field, usage=usage)
        return Reply(200, chunks=parts, content_type=self.stream_type, headers=self.id_headers())

    def _generation_error(self, status: int, message: str, stream: bool) -> Reply:
        """A failure after generation began: the error's own status, or with
        ``errors_after_200`` a 200 whose body (or stream event) carries it, as OpenRouter does."""
        if not self.quirks.get("errors_after_200"):
            return self.error_reply(status, message)
        error = {"code": status, "message": message, "metadata": {"provider_name": "loopback"}}
        if not stream:
            return self.json_reply(200, {"error": error})
        events = [b": " + self.quirks["stream_comment"].encode() + b"\n\n"] if self.quirks.get("stream_comment") else []
        events.append(b"data: " + _dumps({"error": error, "choices": [
            {"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}) + b"\n\n")
        return Reply(200, chunks=events, content_type=self.stream_type, headers=self.id_headers())


def _mask(key: str) -> str:
    return f"{key[:3]}***{key[-4:]}" if len(key) >= 12 else "***"
