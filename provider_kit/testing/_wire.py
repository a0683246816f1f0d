"""The OpenAI, Anthropic and Ollama wire formats, and the loopback server's default simulator.

Each class turns protocol-neutral facts (text pieces, token counts, a status) into that API's
exact bodies (PROTOCOLS.md §A, §B, §C) and answers its endpoints when no reply is scripted.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
import uuid
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from ._reply import _SSE, Chunk, Gate, RecordedRequest, Reply, _dumps

if TYPE_CHECKING:
    from ._server import LoopbackServer

__all__ = ["Piece"]

# --------------------------------------------------------------------------------------------
# Wire formats. Each class turns protocol-neutral facts (text pieces, token counts, a status)
# into that API's exact bodies, and simulates its endpoints for the default replies.
# --------------------------------------------------------------------------------------------

JSONDict = Dict[str, Any]
#: One item of ``stream_reply()`` pieces: a text delta, a :class:`Gate`, or a pause in seconds.
Piece = Union[str, Gate, float]


def _split(text: str) -> List[str]:
    """Split text into word-sized pieces that join back to it; one piece counts as one token."""
    return re.findall(r"\s*\S+\s*", text)


def _tokens(text: str) -> int:
    return len(_split(text))


def _content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or a list of ``{"type": "text"}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content
                       if isinstance(part, dict) and part.get("type") == "text")
    return ""


class _Exchange:
    """What the simulator works out from one chat request: the reply text and the counts."""

    def __init__(self, messages: Sequence[Any], limit: Optional[int], extra_prompt: str = "") -> None:
        texts = [_content_text(m.get("content")) for m in messages if isinstance(m, dict)]
        users = [_content_text(m.get("content")) for m in messages
                 if isinstance(m, dict) and m.get("role") == "user"]
        pieces = _split("echo: " + (users[-1] if users else ""))
        self.truncated = limit is not None and 0 <= limit < len(pieces)
        self.pieces = pieces[:limit] if self.truncated else pieces
        self.text = "".join(self.pieces)
        self.input_tokens = sum(_tokens(text) for text in texts) + _tokens(extra_prompt)
        self.output_tokens = len(self.pieces)


class _Wire:
    """The shared shape of a protocol; subclasses fill in the bodies and the routes."""

    name = ""
    api_prefix = ""
    request_id_header: Optional[str] = None
    json_type = "application/json"
    stream_type = _SSE
    default_models: Tuple[str, ...] = ()
    default_finish = "stop"
    errors: Dict[int, Tuple[str, str]] = {}
    default_stream_error = ("server_error", "An error occurred during streaming")

    def request_id(self) -> str:
        return "req_" + uuid.uuid4().hex

    def id_headers(self) -> Dict[str, str]:
        return {self.request_id_header: self.request_id()} if self.request_id_header else {}

    def json_reply(self, status: int, body: Any) -> Reply:
        return Reply(status, json=body, content_type=self.json_type, headers=self.id_headers())

    def error_reply(
        self,
        status: int,
        message: Optional[str] = None,
        *,
        type: Optional[str] = None,
        code: Optional[str] = None,
        param: Optional[str] = None,
        retry_after: Union[int, float, str, None] = None,
        retry_after_ms: Optional[int] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Reply:
        default_type, default_message = self.errors.get(status, self.errors[500 if status >= 500 else 400])
        headers_out = self.id_headers()
        if retry_after is not None:
            headers_out["retry-after"] = str(retry_after)
        if retry_after_ms is not None:
            headers_out["retry-after-ms"] = str(retry_after_ms)
        headers_out.update(headers or {})
        body = self.error_body(message or default_message, type or default_type, code, param,
                               headers_out.get(self.request_id_header or "", ""))
        return Reply(status, json=body, content_type=self.json_type, headers=headers_out)

    def error_body(self, message: str, type: str, code: Optional[str], param: Optional[str],
                   request_id: str) -> Any:
        raise NotImplementedError

    def completion(self, text: str, model: str, finish_reason: str, input_tokens: int,
                   output_tokens: int, include_usage: bool = True) -> JSONDict:
        raise NotImplementedError

    def stream_parts(self, pieces: Sequence[Piece], *, model: str, finish_reason: str,
                     input_tokens: int, output_tokens: int, include_usage: bool,
                     error_after: Optional[int], error: Tuple[str, str], terminate: bool,
                     obfuscate: bool = True) -> List[Chunk]:
        raise NotImplementedError

    def simulate(self, server: LoopbackServer, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    def parse_json(self, request: RecordedRequest) -> Union[JSONDict, Reply]:
        """The request body as a JSON object, or the protocol's 400 reply."""
        try:
            body = request.json()
        except ValueError:
            return self.error_reply(400, self.bad_json_message)
        if not isinstance(body, dict):
            return self.error_reply(400, self.bad_json_message)
        return body

    bad_json_message = "invalid JSON body"


def _events(
    pieces: Sequence[Piece],
    error_after: Optional[int],
    text_event: Callable[[str], bytes],
) -> Tuple[List[Chunk], bool]:
    """Turn text pieces into events, keeping gates/pauses in place; stop early at ``error_after``.

    :returns: the events and whether the stream was cut short for an error.
    """
    out: List[Chunk] = []
    sent = 0
    for piece in pieces:
        if not isinstance(piece, str):
            out.append(piece)
            continue
        if error_after is not None and sent >= error_after:
            return out, True
        out.append(text_event(piece))
        sent += 1
    return out, error_after is not None


class _OpenAIWire(_Wire):
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
        elif status == 429 and code is None and type is None:
            code = "rate_limit_exceeded"
        return super().error_reply(status, message, type=type, code=code, **kwargs)

    def error_body(self, message: str, type: str, code: Optional[str], param: Optional[str],
                   request_id: str) -> JSONDict:
        return {"error": {"message": message, "type": type, "param": param, "code": code}}

    def completion(self, text: str, model: str, finish_reason: str, input_tokens: int,
                   output_tokens: int, include_usage: bool = True) -> JSONDict:
        body: JSONDict = {
            "id": "chatcmpl-" + uuid.uuid4().hex[:29],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": finish_reason,
            }],
            "service_tier": "default",
        }
        if include_usage:
            body["usage"] = self._usage(input_tokens, output_tokens)
        return body

    @staticmethod
    def _usage(input_tokens: int, output_tokens: int) -> JSONDict:
        return {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        }

    def stream_parts(self, pieces: Sequence[Piece], *, model: str, finish_reason: str,
                     input_tokens: int, output_tokens: int, include_usage: bool,
                     error_after: Optional[int], error: Tuple[str, str], terminate: bool,
                     obfuscate: bool = True) -> List[Chunk]:
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

        out: List[Chunk] = [chunk({"role": "assistant", "content": ""})]
        events, failed = _events(pieces, error_after, lambda text: chunk({"content": text}))
        out += events
        if failed:
            error_body = self.error_body(error[1], error[0], None, None, "")
            return [*out, b"data: " + _dumps(error_body) + b"\n\n"]
        out.append(chunk({}, finish_reason))
        if include_usage:
            out.append(b"data: " + _dumps(dict(head, choices=[], usage={
                "prompt_tokens": input_tokens, "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens})) + b"\n\n")
        if terminate:
            out.append(b"data: [DONE]\n\n")
        return out

    def simulate(self, server: LoopbackServer, request: RecordedRequest) -> Reply:
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
        route = (request.method, request.path)
        if route == ("POST", "/v1/chat/completions"):
            return self._chat(server, request)
        if request.method == "GET" and request.path == "/v1/models":
            return self.json_reply(200, {"object": "list", "data": [self._model(m) for m in server.models]})
        if request.method == "GET" and request.path.startswith("/v1/models/"):
            model = request.path[len("/v1/models/"):]
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
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        turn = _Exchange(messages, limit if isinstance(limit, int) else None)
        finish = "length" if turn.truncated else "stop"
        model = str(body["model"])
        if not stream or server.ignore_stream:
            return self.json_reply(200, self.completion(turn.text, model, finish, turn.input_tokens,
                                                        turn.output_tokens))
        options = options if isinstance(options, dict) else {}
        parts = self.stream_parts(turn.pieces, model=model, finish_reason=finish,
                                  input_tokens=turn.input_tokens, output_tokens=turn.output_tokens,
                                  include_usage=options.get("include_usage") is True, error_after=None,
                                  error=self.default_stream_error, terminate=True,
                                  obfuscate=options.get("include_obfuscation", True) is not False)
        return Reply(200, chunks=parts, content_type=self.stream_type, headers=self.id_headers())


def _mask(key: str) -> str:
    return f"{key[:3]}***{key[-4:]}" if len(key) >= 12 else "***"


class _AnthropicWire(_Wire):
    name = "anthropic"
    request_id_header = "request-id"
    default_models = ("claude-sonnet-4-5", "claude-haiku-4-5")
    default_finish = "end_turn"
    default_stream_error = ("overloaded_error", "Overloaded")
    errors = {
        400: ("invalid_request_error", "Invalid request."),
        401: ("authentication_error", "invalid x-api-key"),
        402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
        403: ("permission_error", "Your API key does not have permission to use the specified resource."),
        404: ("not_found_error", "The requested resource could not be found."),
        409: ("conflict_error", "Conflict."),
        413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
        500: ("api_error", "Internal server error"),
        504: ("timeout_error", "Request timed out"),
        529: ("overloaded_error", "Overloaded"),
    }

    def request_id(self) -> str:
        return "req_011C" + uuid.uuid4().hex[:20]

    bad_json_message = "The request body is not valid JSON: expected value at line 1 column 1"

    def error_body(self, message: str, type: str, code: Optional[str], param: Optional[str],
                   request_id: str) -> JSONDict:
        error: JSONDict = {"type": type, "message": message}
        if code is not None:  # e.g. the spend-cap 429: details.error_code (§B.6)
            error["details"] = {"error_code": code}
        body: JSONDict = {"type": "error", "error": error}
        if request_id:
            body["request_id"] = request_id
        return body

    def completion(self, text: str, model: str, finish_reason: str, input_tokens: int,
                   output_tokens: int, include_usage: bool = True) -> JSONDict:
        return {
            "id": "msg_01" + uuid.uuid4().hex[:22],
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": finish_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                      "service_tier": "standard"},
        }

    def stream_parts(self, pieces: Sequence[Piece], *, model: str, finish_reason: str,
                     input_tokens: int, output_tokens: int, include_usage: bool,
                     error_after: Optional[int], error: Tuple[str, str], terminate: bool,
                     obfuscate: bool = True) -> List[Chunk]:
        def event(name: str, data: JSONDict) -> bytes:
            return b"event: " + name.encode() + b"\ndata: " + _dumps(dict({"type": name}, **data)) + b"\n\n"

        message = self.completion("", model, finish_reason, input_tokens, 1)
        message.update(stop_reason=None, content=[])
        out: List[Chunk] = [
            event("message_start", {"message": message}),
            event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
            event("ping", {}),
        ]
        events, failed = _events(pieces, error_after, lambda text: event(
            "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": text}}))
        out += events
        if failed:
            return [*out, event("error", {"error": {"type": error[0], "message": error[1]}})]
        out.append(event("content_block_stop", {"index": 0}))
        out.append(event("message_delta", {"delta": {"stop_reason": finish_reason, "stop_sequence": None},
                                           "usage": {"output_tokens": output_tokens}}))
        if terminate:
            out.append(event("message_stop", {}))
        return out

    def simulate(self, server: LoopbackServer, request: RecordedRequest) -> Reply:
        if server.api_key is not None:
            key = request.headers.get("x-api-key")
            if key is None and request.headers.get("Authorization", "").startswith("Bearer "):
                key = request.headers["Authorization"][7:]  # SDK >= 2.0 sends the key as a bearer token
            if key is None:
                return self.error_reply(401, "x-api-key header is required")
            if key != server.api_key:
                return self.error_reply(401, "invalid x-api-key")
        version = request.headers.get("anthropic-version")
        if version is None:
            return self.error_reply(400, "anthropic-version: header is required")
        if (request.method, request.path) == ("POST", "/v1/messages"):
            return self._messages(server, request, version)
        if request.method == "GET" and request.path == "/v1/models":
            return self._list_models(server, request)
        if request.method == "GET" and request.path.startswith("/v1/models/"):
            model = request.path[len("/v1/models/"):]
            if model in server.models:
                return self.json_reply(200, self._model(model))
            return self.error_reply(404, f"model: {model}")
        return self.error_reply(404, "Not Found")

    def _list_models(self, server: LoopbackServer, request: RecordedRequest) -> Reply:
        """One page of ``server.models``, in their order (the API lists newest first): ``limit``
        (default 20, 1 to 1000), then ``after_id`` or ``before_id`` (§B.8)."""
        raw_limit = request.query.get("limit", "20")
        if not raw_limit.isascii() or not raw_limit.lstrip("-").isdigit():
            return self.error_reply(400, "limit: Input should be a valid integer, unable to parse string as an "
                                    "integer")
        limit = int(raw_limit)
        if not 1 <= limit <= 1000:
            bound = "greater than or equal to 1" if limit < 1 else "less than or equal to 1000"
            return self.error_reply(400, f"limit: Input should be {bound}")
        ids = list(server.models)
        after, before = request.query.get("after_id"), request.query.get("before_id")
        if after is not None:
            start = ids.index(after) + 1 if after in ids else len(ids)
            page, has_more = ids[start:start + limit], start + limit < len(ids)
        elif before is not None:
            end = ids.index(before) if before in ids else 0
            page, has_more = ids[max(0, end - limit):end], end - limit > 0
        else:
            page, has_more = ids[:limit], limit < len(ids)
        return self.json_reply(200, {"data": [self._model(m) for m in page], "has_more": has_more,
                                     "first_id": page[0] if page else None,
                                     "last_id": page[-1] if page else None})

    @staticmethod
    def _model(model: str) -> JSONDict:
        return {"type": "model", "id": model, "display_name": _display_name(model),
                "created_at": "2025-09-29T00:00:00Z"}

    def _messages(self, server: LoopbackServer, request: RecordedRequest, version: str) -> Reply:
        body = self.parse_json(request)
        if isinstance(body, Reply):
            return body
        for field in ("model", "max_tokens", "messages"):
            if field not in body:
                return self.error_reply(400, f"{field}: Field required")
        if version >= "2026-10-21":  # sampling parameters were removed in this version (§B.2)
            for field in ("temperature", "top_p", "top_k"):
                if field in body:
                    return self.error_reply(400, f"{field}: Extra inputs are not permitted")
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            return self.error_reply(400, "messages: at least one message is required")
        for index, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role == "system":
                return self.error_reply(400, 'messages: Unexpected role "system". The Messages API accepts a '
                                        'top-level `system` parameter, not "system" as an input message role.')
            if role not in ("user", "assistant"):
                return self.error_reply(400, f"messages.{index}.role: Input should be 'user' or 'assistant'")
        limit = body["max_tokens"]
        system = body.get("system")
        turn = _Exchange(messages, limit if isinstance(limit, int) else None, _content_text(system))
        finish = "max_tokens" if turn.truncated else "end_turn"
        model = str(body["model"])
        if body.get("stream") is not True or server.ignore_stream:
            return self.json_reply(200, self.completion(turn.text, model, finish, turn.input_tokens,
                                                        turn.output_tokens))
        parts = self.stream_parts(turn.pieces, model=model, finish_reason=finish,
                                  input_tokens=turn.input_tokens, output_tokens=turn.output_tokens,
                                  include_usage=True, error_after=None, error=self.default_stream_error,
                                  terminate=True)
        return Reply(200, chunks=parts, content_type=self.stream_type, headers=self.id_headers())


def _display_name(model: str) -> str:
    """``claude-sonnet-4-5-20250929`` -> ``Claude Sonnet 4.5``, as the API names its models."""
    words = [word for word in model.split("-") if not (word.isdigit() and len(word) == 8)]
    out: List[str] = []
    for word in words:
        if word.isdigit() and out and out[-1][-1:].isdigit():
            out[-1] += "." + word  # version parts: 4-5 -> 4.5
        else:
            out.append(word.capitalize() if not word.isdigit() else word)
    return " ".join(out)


class _OllamaWire(_Wire):
    name = "ollama"
    json_type = "application/json; charset=utf-8"
    stream_type = "application/x-ndjson"
    default_models = ("llama3.2:latest",)
    default_stream_error = ("", "an error was encountered while running the model")
    errors = {
        400: ("", "invalid request"),
        404: ("", "model not found"),
        429: ("", "too many requests"),
        500: ("", "an error was encountered while running the model"),
        503: ("", "server busy, please try again.  maximum pending requests exceeded"),
    }
    bad_json_message = "invalid character in request body"

    def error_body(self, message: str, type: str, code: Optional[str], param: Optional[str],
                   request_id: str) -> JSONDict:
        return {"error": message}

    @staticmethod
    def _now() -> str:
        now = time.time()
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"

    def completion(self, text: str, model: str, finish_reason: str, input_tokens: int,
                   output_tokens: int, include_usage: bool = True) -> JSONDict:
        body: JSONDict = {"model": model, "created_at": self._now(),
                          "message": {"role": "assistant", "content": text},
                          "done": True, "done_reason": finish_reason,
                          "total_duration": 5_000_000 + 1_000_000 * output_tokens, "load_duration": 1_000_000}
        if include_usage:  # every metric is omitempty in Ollama (§C.3)
            body.update(prompt_eval_count=input_tokens, prompt_eval_duration=100_000 * input_tokens,
                        eval_count=output_tokens, eval_duration=1_000_000 * output_tokens)
        return body

    def stream_parts(self, pieces: Sequence[Piece], *, model: str, finish_reason: str,
                     input_tokens: int, output_tokens: int, include_usage: bool,
                     error_after: Optional[int], error: Tuple[str, str], terminate: bool,
                     obfuscate: bool = True) -> List[Chunk]:
        def line(text: str) -> bytes:
            return _dumps({"model": model, "created_at": self._now(),
                           "message": {"role": "assistant", "content": text}, "done": False}) + b"\n"

        out, failed = _events(pieces, error_after, line)
        if failed:
            return [*out, _dumps({"error": error[1]}) + b"\n"]
        if terminate:
            out.append(_dumps(self.completion("", model, finish_reason, input_tokens, output_tokens,
                                              include_usage)) + b"\n")
        return out

    def simulate(self, server: LoopbackServer, request: RecordedRequest) -> Reply:
        method = "GET" if request.method == "HEAD" else request.method
        if (method, request.path) == ("GET", "/"):
            return Reply(200, body="Ollama is running")
        if (method, request.path) == ("GET", "/api/version"):
            return self.json_reply(200, {"version": "0.13.0"})
        if (method, request.path) == ("GET", "/api/tags"):
            return self.json_reply(200, {"models": [self._model(m) for m in server.models]})
        if (method, request.path) == ("POST", "/api/chat"):
            return self._chat(server, request)
        return Reply(404, body="404 page not found")  # Go's default, in text/plain

    @staticmethod
    def _model(name: str) -> JSONDict:
        name = _ollama_name(name)
        return {"name": name, "model": name, "modified_at": "2025-05-04T17:37:44.706015396-07:00",
                "size": 2019393189, "digest": hashlib.sha256(name.encode()).hexdigest(),
                "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                            "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}}

    def _chat(self, server: LoopbackServer, request: RecordedRequest) -> Reply:
        if not request.body:
            return self.error_reply(400, "missing request body")
        body = self.parse_json(request)
        if isinstance(body, Reply):
            return body
        model = body.get("model")
        if not model:
            return self.error_reply(400, "model is required")
        if _ollama_name(str(model)) not in {_ollama_name(m) for m in server.models}:
            return self.error_reply(404, f'model "{model}" not found, try pulling it first')
        messages = body.get("messages") or []
        options = body.get("options")
        limit = options.get("num_predict") if isinstance(options, dict) else None
        turn = _Exchange(messages, limit if isinstance(limit, int) and limit >= 0 else None)
        finish = "length" if turn.truncated else "stop"
        if not messages:  # an empty chat only loads the model (§C.2)
            turn.pieces, turn.text, turn.output_tokens, finish = [], "", 0, "load"
        if body.get("stream") is False or server.ignore_stream:
            return self.json_reply(200, self.completion(turn.text, str(model), finish, turn.input_tokens,
                                                        turn.output_tokens))
        parts = self.stream_parts(turn.pieces, model=str(model), finish_reason=finish,
                                  input_tokens=turn.input_tokens, output_tokens=turn.output_tokens,
                                  include_usage=True, error_after=None, error=self.default_stream_error,
                                  terminate=True)
        return Reply(200, chunks=parts, content_type=self.stream_type)


def _ollama_name(name: str) -> str:
    """``llama3.2`` and ``llama3.2:latest`` name the same model (§C.6)."""
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


_WIRES: Dict[str, _Wire] = {wire.name: wire for wire in (_OpenAIWire(), _AnthropicWire(), _OllamaWire())}
