"""What every simulated wire format shares: the protocol-neutral reply facts (text pieces,
token counts), the ``Wire`` base class each format fills in, and the helpers they use.

A wire format is one module in this package, named after the provider type it simulates
(``wires/<type>.py``), holding one ``Wire`` subclass whose ``name`` is that type. The
simulators share no code with the clients in ``provider_kit.providers``: they are written from
the wire documentation (PROTOCOLS.md), so a client bug cannot hide behind the same bug here.
"""

from __future__ import annotations

import copy
import re
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

from .._reply import _SSE, Chunk, Gate, RecordedRequest, Reply

if TYPE_CHECKING:
    from .._server import LoopbackServer

__all__ = ["Exchange", "JSONDict", "Piece", "ScriptedCall", "ToolPlan", "Wire", "content_text", "example_arguments",
           "text_events", "tokens"]

JSONDict = Dict[str, Any]
#: A tool call a scripted reply makes: ``(id or None, name, arguments dict or raw JSON text)``.
ScriptedCall = Tuple[Optional[str], str, Union[JSONDict, str]]
#: One item of ``stream_reply()`` pieces: a text delta, a :class:`Gate`, or a pause in seconds.
Piece = Union[str, Gate, float]


def _split(text: str) -> List[str]:
    """Split text into word-sized pieces that join back to it; one piece counts as one token."""
    return re.findall(r"\s*\S+\s*", text)


def tokens(text: str) -> int:
    return len(_split(text))


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or a list of ``{"type": "text"}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content
                       if isinstance(part, dict) and part.get("type") == "text")
    return ""


def go_duration(seconds: float) -> str:
    """``seconds`` written as Go writes a duration: ``12ms``, ``1.5s``, ``6m0s``, ``1h2m3s``."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    return f"{int(minutes)}m{text}" if minutes else text


class Exchange:
    """What the simulator works out from one chat request: the reply text and the counts."""

    def __init__(self, messages: Sequence[Any], limit: Optional[int], extra_prompt: str = "") -> None:
        texts = [content_text(m.get("content")) for m in messages if isinstance(m, dict)]
        users = [content_text(m.get("content")) for m in messages
                 if isinstance(m, dict) and m.get("role") == "user"]
        pieces = _split("echo: " + (users[-1] if users else ""))
        self.truncated = limit is not None and 0 <= limit < len(pieces)
        self.pieces = pieces[:limit] if self.truncated else pieces
        self.text = "".join(self.pieces)
        self.input_tokens = sum(tokens(text) for text in texts) + tokens(extra_prompt)
        self.output_tokens = len(self.pieces)


class Wire:
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
    #: The quirks this wire can reproduce (a service's deviations from the plain protocol),
    #: with their defaults: the plain protocol. ``LoopbackServer(quirks=...)`` sets them.
    QUIRKS: Dict[str, Any] = {}
    #: This simulator's quirks: a live dict, read at each request (``server.quirks``).
    quirks: Dict[str, Any] = {}

    def configured(self, *, name: Optional[str] = None, api_prefix: Optional[str] = None,
                   default_models: Optional[Sequence[str]] = None,
                   quirks: Optional[Mapping[str, Any]] = None) -> Wire:
        """A copy of this wire for one server: another name, path prefix, models or quirks.

        :raises ValueError: for a quirk this wire does not know, naming the ones it does.
        """
        unknown = sorted(set(quirks or ()) - set(self.QUIRKS))
        if unknown:
            known = ", ".join(sorted(self.QUIRKS)) or "none"
            raise ValueError(f"the {self.name} wire has no quirk {unknown[0]!r} (its quirks: {known})")
        wire = copy.copy(self)
        wire.name = name if name is not None else self.name
        wire.api_prefix = api_prefix if api_prefix is not None else self.api_prefix
        if default_models is not None:
            wire.default_models = tuple(default_models)
        wire.quirks = {**self.QUIRKS, **self.quirks, **(quirks or {})}
        return wire

    def request_id(self) -> str:
        return "req_" + uuid.uuid4().hex

    def id_headers(self) -> Dict[str, str]:
        return {self.request_id_header: self.request_id()} if self.request_id_header else {}

    def rate_limit_headers(self, budget: Mapping[str, Any]) -> Dict[str, str]:
        """The headers reporting ``budget`` (``LoopbackServer.rate_limit``'s keys): OpenAI's
        ``x-ratelimit-*`` with Go-duration resets, which compatible services and Azure send too."""
        headers: Dict[str, str] = {}
        for kind in ("requests", "tokens"):
            for field, name in (("limit", "limit"), ("remaining", "remaining"), ("reset_s", "reset")):
                value = budget.get(f"{kind}_{field}")
                if value is not None:
                    headers[f"x-ratelimit-{name}-{kind}"] = go_duration(value) if field == "reset_s" else str(value)
        return headers

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

    def tool_call_completion(self, text: str, calls: Sequence[ScriptedCall], *, model: str,
                             finish_reason: Optional[str], input_tokens: int, output_tokens: int) -> JSONDict:
        """A whole answer with ``text`` (may be "") and then ``calls``; ``finish_reason`` None:
        the protocol's own for tool calls."""
        raise NotImplementedError

    def tool_call_stream_parts(self, pieces: Sequence[Piece], calls: Sequence[ScriptedCall], *, fragments: int,
                               model: str, finish_reason: Optional[str], input_tokens: int, output_tokens: int,
                               include_usage: bool, terminate: bool) -> List[Chunk]:
        """A streamed answer: the text ``pieces``, then ``calls``, each call's arguments text
        cut into ``fragments`` pieces where the protocol streams them in pieces."""
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


def text_events(
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


class ToolPlan:
    """What the simulated model does with tools, the same for every wire (each wire reads its
    request into these protocol-neutral facts and writes the plan in its own shape).

    :param tools: ``(name, parameters schema)`` of each tool the request offers, in order.
    :param choice: "auto", "none", "required", a tool's name, or None (the default: "auto").
    :param parallel: False when the request allows one call at most.
    :param prompt: the last user message's text.
    :param results: the texts of the tool results the request ends with (empty when it ends
        with a user turn).
    :param scripted: calls to make instead, ``[(name, arguments dict or raw JSON text)]``
        (the wire's ``tool_calls`` quirk).

    ``calls`` is the list of ``(name, arguments)`` the model makes (empty: it answers in text),
    ``text`` the answer otherwise: after tool results, ``"results: "`` and the results joined
    by ``" | "``; without tools, None (the wire's own echo).

    The model calls tools when the request offers some, the choice allows it, and it does not
    end with tool results (or the choice forces a call): every tool offered, in order (only the
    named one for a named choice, only the first with ``parallel`` False). Each call's arguments
    fill the schema's required properties (all of them when none is required): a string is
    the prompt (an enum's first value), an integer the prompt's word count, a number 1.5, a
    boolean true, an array [] and an object {}.
    """

    def __init__(self, tools: Sequence[Tuple[str, Any]], choice: Optional[str], parallel: bool, prompt: str,
                 results: Sequence[str], scripted: Optional[Sequence[Tuple[str, Any]]] = None) -> None:
        self.calls: List[Tuple[str, Any]] = []
        self.text: Optional[str] = None
        choice = choice or "auto"
        forced = choice == "required" or choice not in ("auto", "none", "required")
        if tools and choice != "none" and (forced or not results):
            if scripted is not None:
                self.calls = [(str(name), arguments) for name, arguments in scripted]
                return
            named = choice not in ("auto", "required")
            chosen = [tool for tool in tools if tool[0] == choice] if named else list(tools)
            if not parallel:
                chosen = chosen[:1]
            self.calls = [(name, example_arguments(schema, prompt)) for name, schema in chosen]
        elif results:
            self.text = "results: " + " | ".join(results)


def example_arguments(schema: Any, prompt: str) -> JSONDict:
    """Arguments that fit an object schema (see ``ToolPlan``)."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return {}
    required = schema.get("required") or list(properties)
    return {name: _example(properties.get(name), prompt) for name in required if name in properties}


def _example(schema: Any, prompt: str) -> Any:
    if not isinstance(schema, dict):
        return prompt
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        options = [option for option in schema.get(key) or () if isinstance(option, dict)
                   and option.get("type") != "null"]
        if options:
            return _example(options[0], prompt)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "integer":
        return len(prompt.split())
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return example_arguments(schema, prompt)
    return prompt
