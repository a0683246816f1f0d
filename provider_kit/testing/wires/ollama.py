"""The Ollama native chat wire (PROTOCOLS.md §C): bodies, errors and the default simulator.

The simulator also takes what PROTOCOLS-2.md adds (§E.4, §F.4, §H.4): ``images`` (raw base64;
a ``data:`` prefix is a 400 as on the real server; each image is described in the echo, so a
test sees what arrived), ``format`` (a JSON answer that fits the schema, or any JSON object for
``"json"``), ``think`` (thinking models, named below, think by default and answer
``message.thinking`` first; ``think`` on another model is a 400) and an assistant turn's
``thinking``.

Tools (§G.8): a request with ``tools`` gets the calls ``ToolPlan`` makes (there is no
``tool_choice`` or parallel switch on this wire), each with an ``id`` (``call_`` and 8 of
``[a-z0-9]``, as server v0.12.10+ makes them) and ``function.index``, ``arguments`` an object;
``done_reason`` stays "stop". Streamed, each call is one NDJSON line after any thinking. After
``tool`` messages it answers ``results: ...``. A ``tool`` message that names no tool (no
``tool_name``, no ``tool_call_id`` of an earlier call) is taken, as the server takes it: its
renderers call such a result's tool "unknown" (model/renderers/gemma4.go), and so does the
answer here (``unknown: <content>``). Quirks: ``tool_call_ids`` False (a server before v0.12.10:
no ids), ``string_arguments`` True (a proxy sending arguments as a JSON string),
``toolless_models`` (model families answering 400 "<model> does not support tools"),
``tool_calls`` (calls to make instead, ``[(name, arguments dict or raw JSON text)]``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import re
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from .._reply import Chunk, RecordedRequest, Reply, _dumps
from ._base import (
    Exchange,
    JSONDict,
    Piece,
    ScriptedCall,
    ToolPlan,
    Wire,
    _split,
    content_text,
    text_events,
)
from ._embeddings import ollama_embeddings

if TYPE_CHECKING:
    from .._server import LoopbackServer


#: Model families that think (Ollama's "thinking" capability); other models refuse ``think``.
THINKING_FAMILIES = ("qwen3", "deepseek-r1", "gpt-oss", "magistral", "granite3.3")
#: Model families without the "tools" capability (the ``toolless_models`` quirk's default).
TOOLLESS_FAMILIES = ("gemma2", "llama2", "phi3")
#: ``think`` values the server parses (api/types.go ThinkValue), besides true and false.
THINK_LEVELS = ("low", "medium", "high")
#: The image formats the runners decode, by their first bytes.
_IMAGE_MAGIC = (("image/png", b"\x89PNG\r\n\x1a\n"), ("image/jpeg", b"\xff\xd8\xff"))
_BASE64_CHARACTERS = re.compile(r"[^A-Za-z0-9+/=\r\n]")


class OllamaWire(Wire):
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
    QUIRKS = {"tool_call_ids": True, "string_arguments": False, "toolless_models": TOOLLESS_FAMILIES,
              "tool_calls": None}

    def error_body(self, message: str, type: str, code: Optional[str], param: Optional[str],
                   request_id: str) -> JSONDict:
        return {"error": message}

    @staticmethod
    def _now() -> str:
        now = time.time()
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"

    def completion(self, text: str, model: str, finish_reason: str, input_tokens: int,
                   output_tokens: int, include_usage: bool = True, thinking: str = "") -> JSONDict:
        message: JSONDict = {"role": "assistant", "content": text}
        if thinking:
            message["thinking"] = thinking
        body: JSONDict = {"model": model, "created_at": self._now(), "message": message,
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

        out, failed = text_events(pieces, error_after, line)
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
        if (method, request.path) == ("POST", "/api/embed"):
            return self._embed(server, request)
        return Reply(404, body="404 page not found")  # Go's default, in text/plain

    @staticmethod
    def _model(name: str) -> JSONDict:
        name = _ollama_name(name)
        return {"name": name, "model": name, "modified_at": "2025-05-04T17:37:44.706015396-07:00",
                "size": 2019393189, "digest": hashlib.sha256(name.encode()).hexdigest(),
                "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                            "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}}

    def _embed(self, server: LoopbackServer, request: RecordedRequest) -> Reply:
        """``/api/embed``: a model among ``server.models``, or any named like an embedding model
        (``nomic-embed-text``, ``all-minilm``), as if pulled."""
        body = self.parse_json(request)
        if isinstance(body, Reply):
            return body
        model = body.get("model")
        if not model:
            return self.error_reply(400, "model is required")
        served = {_ollama_name(m) for m in server.models}
        name = _ollama_name(str(model))
        if name not in served and not any(mark in name for mark in ("embed", "minilm")):
            return self.error_reply(404, f'model "{model}" not found, try pulling it first')
        return ollama_embeddings(body, name, self.error_reply, self.json_reply)

    def _chat(self, server: LoopbackServer, request: RecordedRequest) -> Reply:
        if not request.body:
            return self.error_reply(400, "missing request body")
        body = self.parse_json(request)
        if isinstance(body, Reply):
            return body
        model = body.get("model")
        if not model:
            return self.error_reply(400, "model is required")
        problem = _request_problem(body)
        if problem is not None:
            return self.error_reply(400, problem)
        if _ollama_name(str(model)) not in {_ollama_name(m) for m in server.models}:
            return self.error_reply(404, f'model "{model}" not found, try pulling it first')
        think = body.get("think")
        thinks = _thinks(str(model))
        if think not in (None, False) and not thinks:
            return self.error_reply(400, f'"{model}" does not support thinking')
        tools = body.get("tools") or []
        if tools and _matches(str(model), self.quirks.get("toolless_models") or ()):
            # scheduleRunner's capability error names the model fully qualified (§G.8).
            return self.error_reply(400, f"{_qualified(str(model))} does not support tools")
        messages = body.get("messages") or []
        options = body.get("options")
        limit = options.get("num_predict") if isinstance(options, dict) else None
        limit = limit if isinstance(limit, int) and limit >= 0 else None
        turn = Exchange(messages, limit)
        if not messages:  # an empty chat only loads the model (§C.2)
            return self._answer(server, body, [], [], "load", 0)
        user: JSONDict = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        prompt = content_text(user.get("content"))
        plan = ToolPlan([_offered(tool) for tool in tools], None, True, prompt, _results(messages),
                        self.quirks.get("tool_calls"))
        answer = plan.text if plan.text is not None else _answer_text(prompt, user.get("images") or [],
                                                                        body.get("format"))
        thinking = _split(_thinking_text(prompt, think)) if thinks and think is not False else []
        if plan.calls:  # the calls are whole, never cut by num_predict
            calls: List[ScriptedCall] = [(None, name, arguments) for name, arguments in plan.calls]
            return self._answer(server, body, thinking, [], "stop", turn.input_tokens, calls)
        pieces = thinking + _split(answer)
        truncated = limit is not None and limit < len(pieces)
        pieces = pieces[:limit] if truncated else pieces
        return self._answer(server, body, pieces[:len(thinking)], pieces[len(thinking):],
                            "length" if truncated else "stop", turn.input_tokens)

    def _answer(self, server: LoopbackServer, body: JSONDict, thinking: List[str], pieces: List[str],
                finish: str, input_tokens: int, calls: Sequence[ScriptedCall] = ()) -> Reply:
        """The reply to a chat: thinking, then text or tool calls, whole or as NDJSON lines."""
        model = str(body.get("model"))
        output_tokens = len(thinking) + len(pieces) + 5 * len(calls)  # eval_count counts the thinking too
        if body.get("stream") is False or server.ignore_stream:
            whole = self.completion("".join(pieces), model, finish, input_tokens, output_tokens,
                                    thinking="".join(thinking))
            if calls:
                whole["message"]["tool_calls"] = self._wire_calls(calls)
            return self.json_reply(200, whole)
        lines: List[Chunk] = [
            _dumps({"model": model, "created_at": self._now(),
                    "message": {"role": "assistant", "content": "", "thinking": piece}, "done": False}) + b"\n"
            for piece in thinking
        ]
        if calls:
            lines += self.tool_call_stream_parts(pieces, calls, fragments=1, model=model, finish_reason=finish,
                                                 input_tokens=input_tokens, output_tokens=output_tokens,
                                                 include_usage=True, terminate=True)
        else:
            lines += self.stream_parts(pieces, model=model, finish_reason=finish, input_tokens=input_tokens,
                                       output_tokens=output_tokens, include_usage=True, error_after=None,
                                       error=self.default_stream_error, terminate=True)
        return Reply(200, chunks=lines, content_type=self.stream_type)

    # -- tool calls (§G.8)

    def _wire_calls(self, calls: Sequence[ScriptedCall]) -> List[JSONDict]:
        """``message.tool_calls``: ``{"id", "function": {"index", "name", "arguments"}}`` each;
        no ``id`` on an old server (the ``tool_call_ids`` quirk False) unless scripted, the
        arguments a JSON string through a proxy (``string_arguments``) or when scripted as text."""
        out = []
        for index, (call_id, name, arguments) in enumerate(calls):
            if isinstance(arguments, dict) and self.quirks.get("string_arguments"):
                arguments = json.dumps(arguments)
            wire: JSONDict = {"function": {"index": index, "name": name, "arguments": arguments}}
            if call_id is None and self.quirks.get("tool_call_ids", True):
                call_id = _tool_call_id()
            if call_id is not None:
                wire = {"id": call_id, **wire}
            out.append(wire)
        return out

    def tool_call_completion(self, text: str, calls: Sequence[ScriptedCall], *, model: str,
                             finish_reason: Optional[str], input_tokens: int, output_tokens: int) -> JSONDict:
        body = self.completion(text, model, finish_reason or "stop", input_tokens, output_tokens)
        body["message"]["tool_calls"] = self._wire_calls(calls)
        return body

    def tool_call_stream_parts(self, pieces: Sequence[Piece], calls: Sequence[ScriptedCall], *, fragments: int,
                               model: str, finish_reason: Optional[str], input_tokens: int, output_tokens: int,
                               include_usage: bool, terminate: bool) -> List[Chunk]:
        """Text lines, then one line per call (whole: Ollama never streams a call in pieces, so
        ``fragments`` does not apply), then the ``done`` line with ``done_reason`` "stop"."""
        out = self.stream_parts(pieces, model=model, finish_reason="stop", input_tokens=input_tokens,
                                output_tokens=output_tokens, include_usage=include_usage, error_after=None,
                                error=self.default_stream_error, terminate=False)
        for wire in self._wire_calls(calls):
            out.append(_dumps({"model": model, "created_at": self._now(),
                               "message": {"role": "assistant", "content": "", "tool_calls": [wire]},
                               "done": False}) + b"\n")
        if terminate:
            out.append(_dumps(self.completion("", model, finish_reason or "stop", input_tokens, output_tokens,
                                              include_usage)) + b"\n")
        return out


def _request_problem(body: JSONDict) -> Optional[str]:
    """What the real server refuses in a chat body (400), as it words it; None when fine."""
    think = body.get("think")
    if think is not None and not isinstance(think, bool) and think not in THINK_LEVELS:
        return f'invalid think value: {json.dumps(think)} (must be "high", "medium", "low", true, or false)'
    fmt = body.get("format")
    if fmt not in (None, "", "json") and not isinstance(fmt, dict):
        return f'invalid format: {json.dumps(fmt)}; expected "json" or a valid JSON Schema object'
    options = body.get("options")
    if options is not None and not isinstance(options, dict):
        return "json: cannot unmarshal options into Go struct field ChatRequest.options of type map[string]interface {}"
    for name, kind in (("seed", int), ("top_p", (int, float)), ("num_ctx", int)):
        value = (options or {}).get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
            return f"invalid option {name!r}: {json.dumps(value)}"
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        return "json: cannot unmarshal tools into Go struct field ChatRequest.tools of type api.Tools"
    for tool in tools or ():
        problem = _tool_problem(tool)
        if problem is not None:
            return problem
    messages = body.get("messages")
    if messages is not None and not isinstance(messages, list):
        return "json: cannot unmarshal messages into Go struct field ChatRequest.messages of type []api.Message"
    for message in messages or ():
        if not isinstance(message, dict):
            return "json: cannot unmarshal a message into Go value of type api.Message"
        if not isinstance(message.get("thinking", ""), str):
            return "json: cannot unmarshal thinking into Go struct field Message.messages.thinking of type string"
        for field in ("content", "tool_name", "tool_call_id"):
            if not isinstance(message.get(field) or "", str):
                return f"json: cannot unmarshal {field} into Go struct field Message.messages.{field} of type string"
        if message.get("tool_calls") is not None:
            problem = _calls_problem(message["tool_calls"])
            if problem is not None:
                return problem
        images = message.get("images")
        if images is None:
            continue
        if not isinstance(images, list):
            return "json: cannot unmarshal images into Go struct field Message.messages.images of type []api.ImageData"
        for image in images:
            problem = _image_problem(image)
            if problem is not None:
                return problem
    return None


def _tool_problem(tool: Any) -> Optional[str]:
    """Go decodes each ``tools`` entry into ``api.Tool``: an object with a ``function`` object."""
    if not isinstance(tool, dict) or not isinstance(tool.get("function", {}), dict):
        return "json: cannot unmarshal tools into Go struct field ChatRequest.tools of type api.Tool"
    parameters = tool.get("function", {}).get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        return ("json: cannot unmarshal parameters into Go struct field ToolFunction.tools.function.parameters "
                "of type api.ToolFunctionParameters")
    return None


def _calls_problem(calls: Any) -> Optional[str]:
    """An assistant turn's ``tool_calls`` as Go decodes them: ``arguments`` must be an object
    (a JSON string is a 400 for the whole request), ``index`` an integer."""
    if not isinstance(calls, list):
        return ("json: cannot unmarshal tool_calls into Go struct field Message.messages.tool_calls "
                "of type []api.ToolCall")
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            return "json: cannot unmarshal tool_calls into Go value of type api.ToolCall"
        if not isinstance(function.get("arguments", {}), dict):
            return ("json: cannot unmarshal " + type(function["arguments"]).__name__.replace("str", "string")
                    + " into Go value of type map[string]interface {}")
        index = function.get("index", 0)
        if isinstance(index, bool) or not isinstance(index, int):
            return ("json: cannot unmarshal index into Go struct field "
                    "ToolCallFunction.messages.tool_calls.function.index of type int")
    return None


def _offered(tool: JSONDict) -> Tuple[str, Any]:
    function = tool.get("function") or {}
    return str(function.get("name", "")), function.get("parameters")


def _results(messages: Sequence[JSONDict]) -> List[str]:
    """The texts of the ``tool`` messages the request ends with; a result naming no tool is
    one of the tool "unknown", as the server's renderers call it."""
    end = len(messages)
    while end and messages[end - 1].get("role") == "tool":
        end -= 1
    called = {call.get("id") for message in messages[:end] for call in message.get("tool_calls") or ()
              if isinstance(call, dict) and call.get("id")}
    results = []
    for message in messages[end:]:
        text = content_text(message.get("content"))
        routed = message.get("tool_name") or message.get("tool_call_id") in called
        results.append(text if routed else f"unknown: {text}")
    return results


def _tool_call_id() -> str:
    """server/routes.go toolCallId(): ``call_`` and 8 of ``[a-z0-9]``."""
    return "call_" + "".join(random.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=8))


def _image_problem(image: Any) -> Optional[str]:
    """Go decodes each ``images`` string as standard base64 into bytes: a ``data:`` prefix or a
    URL fails at its first character outside the alphabet (``illegal base64 data at input byte
    4``); bytes that are no PNG, JPEG or WebP cannot be read by the runner."""
    if not isinstance(image, str):
        return "json: cannot unmarshal images into Go struct field Message.messages.images of type []api.ImageData"
    bad = _BASE64_CHARACTERS.search(image)
    if bad is not None:
        return f"illegal base64 data at input byte {bad.start()}"
    try:
        data = base64.b64decode(image, validate=False)
    except (binascii.Error, ValueError):
        return f"illegal base64 data at input byte {len(image.rstrip('='))}"
    if _image_type(data) is None:
        return "failed to process inputs: image: unknown format"
    return None


def _image_type(data: bytes) -> Optional[str]:
    for media_type, magic in _IMAGE_MAGIC:
        if data.startswith(magic):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _thinks(model: str) -> bool:
    return _matches(model, THINKING_FAMILIES)


def _matches(model: str, families: Sequence[str]) -> bool:
    return _ollama_name(model).rsplit("/", 1)[-1].startswith(tuple(families))


def _qualified(model: str) -> str:
    """The model's full name as the server's errors give it: ``registry.ollama.ai/library/x:latest``."""
    name = _ollama_name(model)
    parts = name.split("/")
    if len(parts) == 1:
        parts = ["library", *parts]
    if len(parts) == 2:
        parts = ["registry.ollama.ai", *parts]
    return "/".join(parts)


def _thinking_text(prompt: str, think: Any) -> str:
    """What a thinking model thinks: names the level asked for, so a test sees it arrived."""
    level = think if isinstance(think, str) else "on" if think is True else "default"
    return f"Thinking ({level}) about: {prompt}"


def _answer_text(prompt: str, images: Sequence[str], fmt: Any) -> str:
    """The echo of the last user turn, each image described (type and size); with ``format``,
    JSON: an instance of the schema (strings echo the prompt), or ``{"echo": prompt}``."""
    described = "".join(
        f" [image {number}: {_image_type(data)}, {len(data)} bytes]"
        for number, data in enumerate((base64.b64decode(image) for image in images), 1)
    )
    if fmt == "json":
        return json.dumps({"echo": prompt + described})
    if isinstance(fmt, dict):
        return json.dumps(_instance(fmt, fmt, prompt + described))
    return "echo: " + prompt + described


def _instance(schema: Any, root: Dict[str, Any], text: str, depth: int = 0) -> Any:
    """A value that fits ``schema`` (the subset a structured-output schema uses: objects with
    every property, arrays, enums, consts, $ref, anyOf/oneOf/allOf, the scalar types)."""
    if not isinstance(schema, dict) or depth > 20:
        return text
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for key in ref[2:].split("/"):
            target = target.get(key, {}) if isinstance(target, dict) else {}
        return _instance(target, root, text, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            chosen = next((o for o in options if not (isinstance(o, dict) and o.get("type") == "null")), options[0])
            return _instance(chosen, root, text, depth + 1)
    kind: Union[str, List[str], None] = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        return {name: _instance(sub, root, text, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems") or 1))
        return [_instance(schema.get("items") or {}, root, text, depth + 1) for _ in range(count)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return schema.get("minimum", 1.5)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return text


def _ollama_name(name: str) -> str:
    """``llama3.2`` and ``llama3.2:latest`` name the same model (§C.6)."""
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"
