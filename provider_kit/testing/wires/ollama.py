"""The Ollama native chat wire (PROTOCOLS.md §C): bodies, errors and the default simulator."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

from .._reply import Chunk, RecordedRequest, Reply, _dumps
from ._base import Exchange, JSONDict, Piece, Wire, text_events

if TYPE_CHECKING:
    from .._server import LoopbackServer


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
        turn = Exchange(messages, limit if isinstance(limit, int) and limit >= 0 else None)
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
