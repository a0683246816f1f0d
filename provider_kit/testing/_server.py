"""A loopback HTTP/1.1 server that speaks the OpenAI, Anthropic and Ollama wire formats.

It owns everything on the server side of a provider test: the listening socket (always
``127.0.0.1``, port 0), one daemon thread per connection, the exact bytes written (JSON, SSE,
NDJSON; chunked, length- or close-delimited), scripted faults (gates, hangs, stalls, trickles,
resets, redirects) and a record of every request. With no scripted reply queued, a small
deterministic simulator answers as the real API would (``"echo: <last user message>"``).

It uses only the standard library and is never imported by ``provider_kit/__init__.py``.
Wire formats follow PROTOCOLS.md §A (OpenAI), §B (Anthropic) and §C (Ollama).

Example::

    with LoopbackServer("openai", api_key="sk-test") as server:
        gate = server.gate()
        server.enqueue(server.stream_reply(["Hel", gate, "lo"]), path="/v1/chat/completions")
        ...  # the client sees "Hel" while the rest of the stream waits for gate.open()
        assert server.last_request.json()["stream"] is True
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import socket
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, Union, cast
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "SAFETY_TIMEOUT",
    "Chunk",
    "Gate",
    "LoopbackServer",
    "Piece",
    "RecordedHeaders",
    "RecordedRequest",
    "Reply",
]

#: Seconds the server waits at a gate, a hang or a stall before giving up on a test that forgot
#: to open it; the connection is then dropped and the timeout is listed in ``server.errors``.
SAFETY_TIMEOUT = 30.0

_HOST = "127.0.0.1"  # the only address this module ever binds
_SSE = "text/event-stream; charset=utf-8"


class Gate:
    """A pause point in a scripted reply: the server waits there until the test calls :meth:`open`.

    Put a gate in ``Reply(chunks=[...])``, in ``stream_reply()`` pieces, or pass it as
    ``hang=`` / ``stall_after_headers=``. ``LoopbackServer.close()`` opens every gate the server
    is waiting at, so a test that forgets one cannot hang past its ``with`` block.
    """

    def __init__(self) -> None:
        self._opened = threading.Event()
        self._reached = threading.Event()

    def open(self) -> None:
        """Let every response waiting at this gate continue."""
        self._opened.set()

    @property
    def is_open(self) -> bool:
        """True once :meth:`open` was called (or the server closed)."""
        return self._opened.is_set()

    def wait_reached(self, timeout: float = 5.0) -> bool:
        """Block until the server arrives at this gate, i.e. has sent everything before it.

        :param timeout: seconds to wait.
        :returns: False if the server did not reach the gate in time.
        """
        return self._reached.wait(timeout)

    def __repr__(self) -> str:
        state = "open" if self.is_open else "reached" if self._reached.is_set() else "closed"
        return f"<Gate {state}>"


#: One item of a scripted body: bytes (str is sent as UTF-8), a :class:`Gate`, or a pause in
#: seconds (for benchmarks; tests should synchronise with gates instead).
Chunk = Union[bytes, str, Gate, float]


class RecordedHeaders(Mapping[str, str]):
    """Request headers as received: case-insensitive lookup, original names and order kept."""

    def __init__(self, items: Sequence[Tuple[str, str]]) -> None:
        self._items = list(items)

    def __getitem__(self, name: str) -> str:
        values = self.get_all(name)
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def get_all(self, name: str) -> List[str]:
        """Every value sent for ``name`` (a header may be repeated)."""
        wanted = name.lower()
        return [value for key, value in self._items if key.lower() == wanted]

    def __iter__(self) -> Iterator[str]:
        seen: Dict[str, None] = {}
        for key, _ in self._items:
            seen.setdefault(key.lower(), None)
        return iter(seen)

    def __len__(self) -> int:
        return len({key.lower() for key, _ in self._items})

    def __repr__(self) -> str:
        # Header values may hold API keys: show names only.
        return f"RecordedHeaders({sorted(self)!r})"


class RecordedRequest:
    """One request exactly as the server received it.

    :ivar method: ``"POST"``, ``"GET"``, ...
    :ivar path: the path without the query string, e.g. ``"/v1/chat/completions"``.
    :ivar query: the decoded query string (last value wins for a repeated name).
    :ivar headers: a :class:`RecordedHeaders` (case-insensitive).
    :ivar body: the raw body bytes (de-chunked if the client sent it chunked).
    :ivar connection: a counter identifying the TCP connection, to check keep-alive reuse.
    """

    __slots__ = ("method", "path", "query", "headers", "body", "connection")

    def __init__(
        self,
        method: str,
        path: str,
        query: Dict[str, str],
        headers: RecordedHeaders,
        body: bytes,
        connection: int,
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.connection = connection

    def json(self) -> Any:
        """The body decoded as JSON.

        :raises ValueError: if the body is not JSON.
        """
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self) -> str:
        return f"<RecordedRequest {self.method} {self.path} ({len(self.body)} bytes)>"


_NO_JSON: Any = object()
_FRAMINGS = ("length", "chunked", "close")


class Reply:
    """One scripted HTTP response, optionally with faults.

    Give at most one of ``json``, ``body`` and ``chunks``. Framing: ``"length"``
    (``Content-Length``, the default for ``json``/``body``), ``"chunked"``
    (``Transfer-Encoding: chunked``, the default for ``chunks``, one HTTP chunk per item) or
    ``"close"`` (no length; HTTP/1.1 with ``Connection: close``, the body ends when the socket
    closes). If ``headers`` sets ``Content-Length`` or ``Transfer-Encoding`` itself, those are
    sent verbatim, no framing header is added, and the connection is closed afterwards.

    :param status: the HTTP status code.
    :param json: a JSON-serialisable body (``Content-Type: application/json``).
    :param body: raw body bytes; a str is sent as UTF-8 ``text/plain``.
    :param chunks: a streamed body: bytes/str items, :class:`Gate` items and pauses in seconds.
        Empty items are skipped (an empty HTTP chunk would end a chunked body).
    :param headers: extra response headers; they override the defaults.
    :param content_type: shorthand for the ``Content-Type`` header.
    :param framing: ``"length"``, ``"chunked"`` or ``"close"``; see above.
    :param hang: read the request, then send nothing: ``True`` until the server closes, a
        :class:`Gate` until it opens (then the reply is sent normally).
    :param stall_after_headers: like ``hang`` but after the status line and headers.
    :param trickle: send the body one byte at a time, this many seconds apart.
    :param reset: abort the connection with a TCP RST (SO_LINGER 0) instead of replying.
    :param reset_after: send the headers and this many body bytes, then abort with a RST.
    :param reason: the reason phrase; defaults to the standard one.
    :raises ValueError: on contradictory arguments.
    """

    __slots__ = (
        "status", "headers", "framing", "hang", "stall_after_headers", "trickle",
        "reset", "reset_after", "reason", "_parts",
    )

    def __init__(
        self,
        status: int = 200,
        *,
        json: Any = _NO_JSON,
        body: Union[bytes, str, None] = None,
        chunks: Optional[Sequence[Chunk]] = None,
        headers: Optional[Mapping[str, str]] = None,
        content_type: Optional[str] = None,
        framing: Optional[str] = None,
        hang: Union[bool, Gate] = False,
        stall_after_headers: Union[bool, Gate] = False,
        trickle: Optional[float] = None,
        reset: bool = False,
        reset_after: Optional[int] = None,
        reason: Optional[str] = None,
    ) -> None:
        given = [name for name, value in (("json", json is not _NO_JSON), ("body", body is not None),
                                          ("chunks", chunks is not None)) if value]
        if len(given) > 1:
            raise ValueError(f"give at most one of json, body and chunks, not {' and '.join(given)}")
        if framing is not None and framing not in _FRAMINGS:
            raise ValueError(f"framing must be one of {_FRAMINGS}, not {framing!r}")
        if reset_after is not None and reset_after < 0:
            raise ValueError("reset_after counts body bytes and cannot be negative")
        default_type: Optional[str] = None
        parts: List[Union[bytes, Gate, float]]
        if json is not _NO_JSON:
            parts, default_type = [_dumps(json)], "application/json"
        elif isinstance(body, str):
            parts, default_type = [body.encode("utf-8")], "text/plain; charset=utf-8"
        elif body is not None:
            parts = [bytes(body)]
        else:
            parts = [_as_part(item) for item in chunks or ()]
        self.status = status
        self.headers: Dict[str, str] = {}
        if content_type or default_type:
            self.headers["Content-Type"] = cast(str, content_type or default_type)
        for name, value in (headers or {}).items():
            for same in [key for key in self.headers if key.lower() == name.lower()]:
                del self.headers[same]  # a header given twice in different case is one header
            self.headers[name] = value
        self.framing = framing or ("chunked" if chunks is not None else "length")
        self.hang = hang
        self.stall_after_headers = stall_after_headers
        self.trickle = trickle
        self.reset = reset
        self.reset_after = reset_after
        self.reason = reason
        self._parts = parts

    @classmethod
    def redirect(cls, location: str, status: int = 307) -> Reply:
        """A redirect to ``location`` with an empty body (307/308 keep the method and body).

        :param location: the absolute URL for the ``Location`` header; see
            :meth:`LoopbackServer.url_for` to point at this server under another host name.
        :param status: 301, 302, 303, 307 or 308.
        """
        return cls(status, body=b"", headers={"Location": location})

    @property
    def body_bytes(self) -> bytes:
        """All body bytes concatenated (gates and pauses left out)."""
        return b"".join(part for part in self._parts if isinstance(part, bytes))

    def __repr__(self) -> str:
        return f"<Reply {self.status} {self.framing}, {len(self.body_bytes)} body bytes>"


def _as_part(item: Chunk) -> Union[bytes, Gate, float]:
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, (Gate, int, float)) and not isinstance(item, bool):
        return item
    raise TypeError(f"a chunk is bytes, str, a Gate or a pause in seconds, not {type(item).__name__}")


def _dumps(obj: Any) -> bytes:
    # Go's encoder (Ollama) escapes U+2028/U+2029, and line-splitting clients rely on it.
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode("utf-8")


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
        if not stream:
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
            models = [self._model(m) for m in server.models]
            return self.json_reply(200, {"data": models, "has_more": False,
                                         "first_id": models[0]["id"] if models else None,
                                         "last_id": models[-1]["id"] if models else None})
        if request.method == "GET" and request.path.startswith("/v1/models/"):
            model = request.path[len("/v1/models/"):]
            if model in server.models:
                return self.json_reply(200, self._model(model))
            return self.error_reply(404, f"model: {model}")
        return self.error_reply(404, "Not Found")

    @staticmethod
    def _model(model: str) -> JSONDict:
        return {"type": "model", "id": model, "display_name": model, "created_at": "2025-09-29T00:00:00Z"}

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
        if body.get("stream") is not True:
            return self.json_reply(200, self.completion(turn.text, model, finish, turn.input_tokens,
                                                        turn.output_tokens))
        parts = self.stream_parts(turn.pieces, model=model, finish_reason=finish,
                                  input_tokens=turn.input_tokens, output_tokens=turn.output_tokens,
                                  include_usage=True, error_after=None, error=self.default_stream_error,
                                  terminate=True)
        return Reply(200, chunks=parts, content_type=self.stream_type, headers=self.id_headers())


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
        if body.get("stream") is False:
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


# --------------------------------------------------------------------------------------------
# The HTTP side: one handler per connection, writing a Reply with its framing and faults.
# --------------------------------------------------------------------------------------------

class _Abort(Exception):
    """Stop answering: the connection is dropped (or was reset) without finishing the reply."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies
    server_version = "provider-kit-loopback"

    def __init__(self, request: socket.socket, loopback: LoopbackServer, number: int) -> None:
        self.loopback = loopback
        self.number = number
        super().__init__(request, (_HOST, 0), cast(Any, loopback))

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read ``server.requests``, not stderr."""

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except _Abort:
            self.close_connection = True

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self.send_error(400, "bad request framing")
            return
        target = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=target.path or "/",
            query=dict(parse_qsl(target.query, keep_blank_values=True)),
            headers=RecordedHeaders(list(self.headers.items())),
            body=body,
            connection=self.number,
        )
        self.loopback._record(request)
        try:
            reply = self.loopback._reply_for(request)
        except Exception as exc:  # a bug in a scripted callable or the simulator: say so on the wire
            self.loopback._record_error(exc)
            reply = Reply(500, body=f"loopback server error: {exc!r}")
        self._send(reply)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: List[bytes] = []
            while True:
                size = int(self.rfile.readline(65537).split(b";")[0].strip(), 16)  # ValueError if garbled
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self._read_exactly(size))
                self.rfile.readline(3)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self._read_exactly(length)

    def _read_exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) < size:
            raise ConnectionAbortedError("the client closed the connection mid-body")
        return data

    def _send(self, reply: Reply) -> None:
        if reply.hang:
            self._wait(reply.hang, "hang")
        if reply.reset:
            self._reset()
        custom_framing = any(k.lower() in ("content-length", "transfer-encoding") for k in reply.headers)
        parts = reply._parts
        self.send_response(reply.status, reply.reason)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if custom_framing:
            self.close_connection = True
        elif reply.framing == "length":
            self.send_header("Content-Length", str(len(reply.body_bytes)))
        elif reply.framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        if reply.stall_after_headers:
            self._wait(reply.stall_after_headers, "stall_after_headers")
        chunked = reply.framing == "chunked" and not custom_framing
        sent = 0
        for part in parts:
            if isinstance(part, Gate):
                self._wait(part, "gate")
            elif not isinstance(part, bytes):
                self._pause(part)
            else:
                if reply.reset_after is not None and sent + len(part) >= reply.reset_after:
                    self._write(part[:reply.reset_after - sent], chunked, reply.trickle)
                    self._reset()
                self._write(part, chunked, reply.trickle)
                sent += len(part)
        if reply.reset_after is not None:
            self._reset()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _write(self, data: bytes, chunked: bool, trickle: Optional[float]) -> None:
        pieces = [data[i:i + 1] for i in range(len(data))] if trickle else [data]
        for index, piece in enumerate(pieces):
            if not piece:
                continue
            if index and trickle:
                self._pause(trickle)
            self.wfile.write(b"%X\r\n%s\r\n" % (len(piece), piece) if chunked else piece)

    def _pause(self, seconds: float) -> None:
        if self.loopback._closing.wait(seconds):
            raise _Abort

    def _wait(self, what: Union[bool, Gate], kind: str) -> None:
        """Block at a gate (or, for ``True``, until the server closes); abort if it never opens."""
        loopback = self.loopback
        if not isinstance(what, Gate):
            loopback._closing.wait(loopback.safety_timeout)
            raise _Abort
        with loopback._lock:
            if loopback._closing.is_set():
                raise _Abort
            loopback._gates.add(what)
        what._reached.set()
        if not what._opened.wait(loopback.safety_timeout):
            loopback._record_error(TimeoutError(f"{kind} not opened within {loopback.safety_timeout} s"))
            raise _Abort
        if loopback._closing.is_set():
            raise _Abort

    def _reset(self) -> None:
        """Abort the connection with a RST: SO_LINGER on with a zero timeout, then close."""
        self.loopback._forget(self.connection)
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        finally:
            self.connection.close()
            self.rfile.close()  # the last reference: the socket really closes now
        raise _Abort


# --------------------------------------------------------------------------------------------
# The server.
# --------------------------------------------------------------------------------------------

Responder = Union[Reply, Callable[[RecordedRequest], Reply]]


class LoopbackServer:
    """A threaded HTTP/1.1 server on ``127.0.0.1`` that speaks one provider's wire format.

    Use it as a context manager: the socket is listening when ``__enter__`` returns, and
    ``__exit__`` (or :meth:`close`) opens every gate, ends every hang and stall, closes every
    connection and joins every thread it started.

    Replies come from the scripted queue (:meth:`enqueue`, FIFO, first matching path) and then
    from the simulator of ``protocol``: ``"openai"``, ``"anthropic"``, ``"ollama"``, or None for a
    server that only plays scripted replies (anything else gets a plain-text 404).

    :param protocol: the wire format to simulate, or None.
    :param api_key: if set, the simulator checks it (``Authorization: Bearer`` for OpenAI,
        ``x-api-key`` or a bearer token for Anthropic) and answers 401 otherwise.
    :param models: the models the simulator lists; defaults to a couple per protocol.
    :param safety_timeout: seconds before a forgotten gate, hang or stall gives up.
    :raises ValueError: for an unknown protocol.
    """

    def __init__(
        self,
        protocol: Optional[str] = None,
        *,
        api_key: Optional[str] = None,
        models: Optional[Sequence[str]] = None,
        safety_timeout: float = SAFETY_TIMEOUT,
    ) -> None:
        if protocol is not None and protocol not in _WIRES:
            raise ValueError(f"protocol must be one of {sorted(_WIRES)} or None, not {protocol!r}")
        self.protocol = protocol
        self._wire = _WIRES.get(protocol or "")
        self.api_key = api_key
        self.models: List[str] = list(models if models is not None else
                                      self._wire.default_models if self._wire else ())
        self.safety_timeout = safety_timeout
        self._lock = threading.Condition()
        self._closing = threading.Event()
        self._requests: List[RecordedRequest] = []
        self._queue: List[Tuple[Optional[str], Responder]] = []
        self._errors: List[BaseException] = []
        self._gates: Set[Gate] = set()
        self._connections: Set[socket.socket] = set()  # open sockets, shut down by close()
        self._threads: List[threading.Thread] = []  # every thread started, joined by close()
        self._listener: Optional[socket.socket] = None
        self._acceptor: Optional[threading.Thread] = None
        self._port = 0

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> LoopbackServer:
        """Bind ``127.0.0.1`` on a free port and start accepting connections.

        :raises RuntimeError: if the server was already started.
        """
        if self._listener is not None or self._closing.is_set():
            raise RuntimeError("a LoopbackServer can only be started once")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((_HOST, 0))
            listener.listen(128)  # room for a burst of concurrent clients
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"loopback-{self._port}-accept",
                                          daemon=True)
        self._acceptor.start()
        return self

    def close(self) -> None:
        """Stop the server: release gates, hangs and stalls, close every connection, join every thread.

        Safe to call more than once. Recorded requests stay readable.
        """
        listener, acceptor = self._listener, self._acceptor
        with self._lock:
            if self._closing.is_set() or listener is None:
                self._closing.set()
                return
            self._closing.set()
            for gate in self._gates:
                gate._opened.set()
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked in recv or send
                except OSError:
                    pass
        # Wake the acceptor from accept(): shutdown() does it on Linux, a last connection elsewhere.
        try:
            listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            socket.create_connection((_HOST, self._port), timeout=5).close()
        except OSError:
            pass
        deadline = time.monotonic() + 5
        if acceptor is not None:
            acceptor.join(5)  # after this, no thread is added to self._threads
        for thread in [acceptor, *self._threads]:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    self._record_error(RuntimeError(f"{thread.name} did not stop"))
        listener.close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        for number in itertools.count(1):
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            # Every write goes out at once: Nagle's algorithm would hold a small write back until
            # the client ACKs the previous one, up to a delayed-ACK 40 ms per request on Linux.
            try:
                connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass  # already reset by the client; the handler will notice
            with self._lock:
                if self._closing.is_set():
                    connection.close()
                    return
                thread = threading.Thread(target=self._serve, args=(connection, number),
                                          name=f"loopback-{self._port}-conn-{number}", daemon=True)
                self._connections.add(connection)
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()

    def _serve(self, connection: socket.socket, number: int) -> None:
        try:
            _Handler(connection, self, number)
        except OSError:
            pass  # the client went away (BrokenPipe, ConnectionReset) or close() shut the socket
        except Exception as exc:
            self._record_error(exc)
        finally:
            self._forget(connection)
            try:
                connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            connection.close()

    def _forget(self, connection: socket.socket) -> None:
        # Once forgotten, close() no longer touches the socket, so closing it here is race-free.
        with self._lock:
            self._connections.discard(connection)

    # -- addresses -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port; the server must be started."""
        if not self._port:
            raise RuntimeError("the server is not started; use `with LoopbackServer(...) as server:`")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        return f"http://{_HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """What a provider's ``base_url`` should be: ``url + "/v1"`` for OpenAI, ``url`` otherwise."""
        return self.url + (self._wire.api_prefix if self._wire else "")

    def url_for(self, path: str, *, host: str = _HOST) -> str:
        """An absolute URL to ``path`` on this server, optionally under another host name.

        ``host="localhost"`` reaches the same server under a name that requests treats as a
        different host, e.g. for ``Reply.redirect(server.url_for("/v1/messages", host="localhost"))``.
        """
        return f"http://{host}:{self.port}{path}"

    # -- scripting -------------------------------------------------------------------------------

    def enqueue(self, reply: Responder, *, path: Optional[str] = None, times: int = 1) -> None:
        """Queue a scripted reply; each request takes the oldest one whose path matches.

        :param reply: a :class:`Reply`, or a callable building one from the :class:`RecordedRequest`.
        :param path: only requests to this exact path (no query string) take it; None matches any.
        :param times: queue the same reply this many times.
        """
        with self._lock:
            self._queue.extend([(path, reply)] * times)

    @property
    def pending(self) -> int:
        """How many scripted replies are still queued."""
        with self._lock:
            return len(self._queue)

    def gate(self) -> Gate:
        """A new closed :class:`Gate` (a shorthand for ``Gate()``)."""
        return Gate()

    def _protocol(self, helper: str) -> _Wire:
        if self._wire is None:
            raise ValueError(f"{helper}() needs a protocol; this server was created with protocol=None")
        return self._wire

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
        """This protocol's exact error response for ``status``, with its request-id header.

        OpenAI: ``{"error": {"message", "type", "param", "code"}}`` (``code="insufficient_quota"``
        gives the quota 429). Anthropic: ``{"type": "error", "error": {"type", "message"},
        "request_id"}`` (529 is ``overloaded_error``; ``code`` becomes ``error.details.error_code``).
        Ollama: ``{"error": message}``. Missing values default to what the real API sends.

        :param status: the HTTP status.
        :param message: the error message.
        :param type: the error type (OpenAI ``error.type``, Anthropic ``error.type``).
        :param code: OpenAI ``error.code``; Anthropic ``error.details.error_code``.
        :param param: OpenAI ``error.param``.
        :param retry_after: the ``retry-after`` header (seconds or an HTTP date).
        :param retry_after_ms: the ``retry-after-ms`` header.
        :param headers: more headers, e.g. ``{"x-should-retry": "false"}``.
        :raises ValueError: if the server has no protocol.
        """
        return self._protocol("error_reply").error_reply(
            status, message, type=type, code=code, param=param, retry_after=retry_after,
            retry_after_ms=retry_after_ms, headers=headers)

    def completion_reply(
        self,
        text: str = "Hello!",
        *,
        model: Optional[str] = None,
        finish_reason: Optional[str] = None,
        input_tokens: int = 5,
        output_tokens: Optional[int] = None,
        include_usage: bool = True,
    ) -> Reply:
        """A successful non-streamed completion in this protocol's format.

        :param text: the assistant text.
        :param model: the model named in the body; defaults to the first of ``models``.
        :param finish_reason: the protocol's own value (``"stop"``, ``"end_turn"``, ``"length"``...).
        :param input_tokens: the prompt token count.
        :param output_tokens: the completion token count; defaults to the word count of ``text``.
        :param include_usage: False leaves usage out (OpenAI ``usage``, Ollama's counts).
        :raises ValueError: if the server has no protocol.
        """
        wire = self._protocol("completion_reply")
        body = wire.completion(text, model or self._default_model(), finish_reason or wire.default_finish,
                               input_tokens, _tokens(text) if output_tokens is None else output_tokens,
                               include_usage)
        return wire.json_reply(200, body)

    def stream_reply(
        self,
        pieces: Sequence[Piece] = ("Hel", "lo"),
        *,
        model: Optional[str] = None,
        finish_reason: Optional[str] = None,
        input_tokens: int = 5,
        output_tokens: Optional[int] = None,
        include_usage: bool = True,
        error_after: Optional[int] = None,
        error_message: Optional[str] = None,
        error_type: Optional[str] = None,
        terminate: bool = True,
        framing: str = "chunked",
    ) -> Reply:
        """A realistic streamed reply: SSE for OpenAI and Anthropic, NDJSON for Ollama.

        Each event is written as its own chunk. Gates and pauses among ``pieces`` stay in place,
        so ``["Hel", gate, "lo"]`` sends everything up to the first text delta, then waits.

        :param pieces: text deltas, with optional :class:`Gate` items and pauses in seconds.
        :param model: the model named in the events; defaults to the first of ``models``.
        :param finish_reason: the protocol's own value; defaults to a natural stop.
        :param input_tokens: the prompt token count.
        :param output_tokens: the completion token count; defaults to the number of text pieces.
        :param include_usage: OpenAI: send the usage chunk; Ollama: send the counts.
        :param error_after: after this many text pieces, send the protocol's mid-stream error
            event and end the body (no finish, no terminator).
        :param error_message: the mid-stream error message.
        :param error_type: the mid-stream error type (OpenAI/Anthropic).
        :param terminate: False leaves out only the final terminator (OpenAI ``data: [DONE]``,
            Anthropic ``message_stop``, Ollama's ``done: true`` line), i.e. a truncated stream.
        :param framing: ``"chunked"`` or ``"close"`` (close-delimited).
        :raises ValueError: if the server has no protocol.
        """
        wire = self._protocol("stream_reply")
        texts = [piece for piece in pieces if isinstance(piece, str)]
        error = (error_type or wire.default_stream_error[0], error_message or wire.default_stream_error[1])
        parts = wire.stream_parts(
            pieces, model=model or self._default_model(), finish_reason=finish_reason or wire.default_finish,
            input_tokens=input_tokens, output_tokens=len(texts) if output_tokens is None else output_tokens,
            include_usage=include_usage, error_after=error_after, error=error, terminate=terminate)
        return Reply(200, chunks=parts, content_type=wire.stream_type, headers=wire.id_headers(),
                     framing=framing)

    def _default_model(self) -> str:
        return self.models[0] if self.models else "loopback-model"

    def _reply_for(self, request: RecordedRequest) -> Reply:
        responder: Optional[Responder] = None
        with self._lock:
            for index, (path, queued) in enumerate(self._queue):
                if path is None or path == request.path:
                    responder = queued
                    del self._queue[index]
                    break
        if isinstance(responder, Reply):
            return responder
        if responder is not None:
            return responder(request)
        if self._wire is None:
            return Reply(404, body=f"no scripted reply queued for {request.method} {request.path}")
        return self._wire.simulate(self, request)

    # -- what happened ---------------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    @property
    def requests(self) -> List[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request.

        :raises LookupError: if none arrived yet.
        """
        with self._lock:
            if not self._requests:
                raise LookupError("the loopback server has not received any request")
            return self._requests[-1]

    @property
    def errors(self) -> List[BaseException]:
        """Server-side failures: exceptions in scripted callables or the simulator, gates never
        opened, threads that would not stop. A clean test leaves this empty."""
        with self._lock:
            return list(self._errors)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> List[RecordedRequest]:
        """Block until at least ``count`` requests were received.

        :param count: how many requests to wait for.
        :param timeout: seconds to wait.
        :returns: the requests received so far.
        :raises TimeoutError: if fewer than ``count`` arrived in time.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"received {len(self._requests)} of {count} requests within {timeout} s")
            return list(self._requests)

    def __repr__(self) -> str:
        where = self.url if self._port else "not started"
        return f"<LoopbackServer {self.protocol or 'scripted'} {where}>"
