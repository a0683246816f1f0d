"""The Anthropic Messages wire (PROTOCOLS.md §B): bodies, errors and the default simulator; what it
checks and answers beyond plain text (images, thinking, structured outputs, prompt caching) is in
``_anthropic_features``."""

from __future__ import annotations

import datetime
import json
import time
import uuid
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .._reply import Chunk, RecordedRequest, Reply, _dumps
from ._anthropic_features import PromptCache, Refusal, Thinking, check_blocks, schema_instance, thinking_blocks
from ._anthropic_tools import (
    arguments_as_blocks,
    check_tool_turns,
    check_tools,
    event,
    raw_arguments,
    scripted_blocks,
    tool_plan,
    tool_use_events,
)
from ._base import Exchange, JSONDict, Piece, ScriptedCall, Wire, _split, content_text, text_events, tokens

if TYPE_CHECKING:
    from .._server import LoopbackServer


class AnthropicWire(Wire):
    name = "anthropic"
    request_id_header = "request-id"
    default_models = ("claude-sonnet-4-5", "claude-haiku-4-5")
    default_finish = "end_turn"
    default_stream_error = ("overloaded_error", "Overloaded")
    #: ``tool_calls``: ``[(name, arguments dict or raw JSON text)]`` every request with tools
    #: calls instead of the ``ToolPlan`` ones (until it ends with tool results).
    QUIRKS: Dict[str, Any] = {"tool_calls": None}
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
        events, failed = text_events(pieces, error_after, lambda text: event(
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

    def rate_limit_headers(self, budget: Mapping[str, Any]) -> Dict[str, str]:
        """``anthropic-ratelimit-*``, resets as RFC 3339 timestamps (with nanoseconds, as sent)."""
        now = time.time()
        headers: Dict[str, str] = {}
        for kind in ("requests", "tokens"):
            for field, name in (("limit", "limit"), ("remaining", "remaining"), ("reset_s", "reset")):
                value = budget.get(f"{kind}_{field}")
                if value is None:
                    continue
                if field == "reset_s":
                    moment = datetime.datetime.fromtimestamp(now + value, datetime.timezone.utc)
                    value = moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
                headers[f"anthropic-ratelimit-{kind}-{name}"] = str(value)
        return headers

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
        model = str(body["model"])
        try:
            thinking = Thinking(body, model)
            described = check_blocks(body, thinking)
            check_tools(body, thinking.manual)
            check_tool_turns(messages, thinking.manual)
        except Refusal as refusal:
            return self.error_reply(400, str(refusal))
        plan = tool_plan(body, self.quirks.get("tool_calls"))
        turn = Exchange(described, limit if isinstance(limit, int) else None, content_text(body.get("system")))
        users = [m["content"] for m in described if m["role"] == "user"]
        thoughts = thinking_blocks(thinking, users[-1] if users else "")
        pieces = turn.pieces
        truncated = turn.truncated
        if thinking.schema is not None:  # a JSON answer that fits the schema asked for
            pieces = _split(json.dumps(schema_instance(thinking.schema), ensure_ascii=False))
            truncated = isinstance(limit, int) and 0 <= limit < len(pieces)
            pieces = pieces[:limit] if truncated else pieces
        calls: List[JSONDict] = []
        if plan is not None and plan.calls:  # tool_use blocks, no text (as a forced choice answers)
            calls, pieces, truncated = arguments_as_blocks(plan.calls), [], False
        elif plan is not None and plan.text is not None:  # the answer after tool results
            pieces = _split(plan.text)
            truncated = isinstance(limit, int) and 0 <= limit < len(pieces)
            pieces = pieces[:limit] if truncated else pieces
        finish = "tool_use" if calls else "max_tokens" if truncated else "end_turn"
        thought_tokens = sum(tokens(str(block.get("thinking", ""))) or 1 for block in thoughts)
        call_tokens = sum(tokens(json.dumps(block["input"])) + 1 for block in calls)
        usage: JSONDict = {"input_tokens": turn.input_tokens,
                           "output_tokens": len(pieces) + thought_tokens + call_tokens,
                           "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                           "service_tier": "standard"}
        split = self.__dict__.setdefault("_prompt_cache", PromptCache()).usage(body)
        if split is not None:
            usage.update(input_tokens=split[0], cache_read_input_tokens=split[1], cache_creation_input_tokens=split[2])
        if thoughts:
            usage["output_tokens_details"] = {"thinking_tokens": thought_tokens}
        text = "".join(pieces)
        if body.get("stream") is not True or server.ignore_stream:
            message = self.completion(text, model, finish, 0, 0)
            message["content"] = [*thoughts, *message["content"], *calls]
            message["usage"] = usage
            return self.json_reply(200, message)
        if not thoughts and thinking.schema is None and split is None and plan is None:
            parts = self.stream_parts(turn.pieces, model=model, finish_reason=finish,
                                      input_tokens=turn.input_tokens, output_tokens=turn.output_tokens,
                                      include_usage=True, error_after=None, error=self.default_stream_error,
                                      terminate=True)
        else:
            parts = self.message_events(thoughts, pieces, model=model, finish_reason=finish, usage=usage,
                                        calls=calls)
        return Reply(200, chunks=parts, content_type=self.stream_type, headers=self.id_headers())

    def message_events(self, thoughts: Sequence[JSONDict], pieces: Sequence[Piece], *, model: str,
                       finish_reason: str, usage: JSONDict, calls: Sequence[JSONDict] = (),
                       fragments: int = 3, raw: Sequence[Optional[str]] = (), terminate: bool = True) -> List[Chunk]:
        """A whole streamed message: thinking blocks first (``thinking_delta`` word by word,
        then the one ``signature_delta``; a redacted block whole in its start event), then a
        text block of ``pieces`` (none when there are calls and no text), then the ``tool_use``
        blocks of ``calls`` (their JSON text, or ``raw``'s, in ``fragments`` pieces), then
        ``message_delta`` with the final usage and ``message_stop`` (PROTOCOLS-2 §G.7, §H.3)."""
        start = self.completion("", model, finish_reason, 0, 1)
        start.update(stop_reason=None, content=[], usage=dict(usage, output_tokens=1))
        start["usage"].pop("output_tokens_details", None)
        out: List[Chunk] = [event("message_start", {"message": start})]
        index = 0
        for block in thoughts:
            if block["type"] == "redacted_thinking":
                out.append(event("content_block_start", {"index": index, "content_block": block}))
            else:
                out.append(event("content_block_start", {"index": index, "content_block": {
                    "type": "thinking", "thinking": "", "signature": ""}}))
                out += [event("content_block_delta", {"index": index, "delta": {"type": "thinking_delta",
                                                                                "thinking": piece}})
                        for piece in _split(block["thinking"])]
                out.append(event("content_block_delta", {"index": index, "delta": {
                    "type": "signature_delta", "signature": block["signature"]}}))
            out.append(event("content_block_stop", {"index": index}))
            index += 1
        if pieces or not calls:
            out.append(event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}}))
            out.append(event("ping", {}))
            out += [event("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": piece}})
                    if isinstance(piece, str) else piece for piece in pieces]
            out.append(event("content_block_stop", {"index": index}))
            index += 1
        for number, block in enumerate(calls):
            out += tool_use_events(index, block, fragments, raw[number] if number < len(raw) else None)
            index += 1
        final = {key: usage[key] for key in ("output_tokens", "output_tokens_details") if key in usage}
        out.append(event("message_delta", {"delta": {"stop_reason": finish_reason, "stop_sequence": None},
                                           "usage": final}))
        if terminate:
            out.append(event("message_stop", {}))
        return out

    # -- scripted tool-call replies (LoopbackServer.completion_reply / stream_reply tool_calls=)

    def tool_call_completion(self, text: str, calls: Sequence[ScriptedCall], *, model: str,
                             finish_reason: Optional[str], input_tokens: int, output_tokens: int) -> JSONDict:
        message = self.completion(text, model, finish_reason or "tool_use", input_tokens, output_tokens)
        message["content"] += scripted_blocks(calls)
        return message

    def tool_call_stream_parts(self, pieces: Sequence[Piece], calls: Sequence[ScriptedCall], *, fragments: int,
                               model: str, finish_reason: Optional[str], input_tokens: int, output_tokens: int,
                               include_usage: bool, terminate: bool) -> List[Chunk]:
        usage: JSONDict = {"input_tokens": input_tokens, "output_tokens": output_tokens,
                           "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "service_tier": "standard"}
        return self.message_events((), pieces, model=model, finish_reason=finish_reason or "tool_use", usage=usage,
                                   calls=scripted_blocks(calls), fragments=fragments,
                                   raw=[raw_arguments(arguments) for _, _, arguments in calls], terminate=terminate)


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
