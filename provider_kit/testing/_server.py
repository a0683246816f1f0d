"""A loopback HTTP/1.1 server that speaks the OpenAI, Anthropic and Ollama wire formats.

It owns everything on the server side of a provider test: the listening socket (always
``127.0.0.1``, port 0), one daemon thread per connection, the exact bytes written (JSON, SSE,
NDJSON; chunked, length- or close-delimited), scripted faults (gates, hangs, stalls, trickles,
resets, redirects) and a record of every request. With no scripted reply queued, a small
deterministic simulator answers as the real API would (``"echo: <last user message>"``), images,
schemas, reasoning and prompt caching included (PROTOCOLS-2.md).

Each connection is served by ``_handler.ConnectionHandler``, which reads and records the request
and writes the reply this server chooses, with its framing and faults. It uses only the standard
library and is never imported by ``provider_kit/__init__.py``.
Wire formats follow PROTOCOLS.md §A (OpenAI), §B (Anthropic) and §C (Ollama).

Example::

    with LoopbackServer("openai", api_key="sk-test") as server:
        gate = server.gate()
        server.enqueue(server.stream_reply(["Hel", gate, "lo"]), path="/v1/chat/completions")
        ...  # the client sees "Hel" while the rest of the stream waits for gate.open()
        assert server.last_request.json()["stream"] is True
"""

from __future__ import annotations

import copy
import itertools
import socket
import sys
import threading
import time
from typing import (
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

from ._handler import ConnectionHandler
from ._reply import (
    _HOST,
    SAFETY_TIMEOUT,
    Chunk,
    Gate,
    RecordedHeaders,
    RecordedRequest,
    Reply,
)
from .wires import PRESET_WIRES, WIRES, Piece, ScriptedCall, Wire, tokens, wire_for

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


Responder = Union[Reply, Callable[[RecordedRequest], Reply]]


class LoopbackServer:
    """A threaded HTTP/1.1 server on ``127.0.0.1`` that speaks one provider's wire format.

    Use it as a context manager: the socket is listening when ``__enter__`` returns, and
    ``__exit__`` (or :meth:`close`) opens every gate, ends every hang and stall, closes every
    connection and joins every thread it started.

    Replies come from the scripted queue (:meth:`enqueue`, FIFO, first matching path) and then
    from the simulator of ``protocol``: ``"openai"``, ``"anthropic"``, ``"ollama"``, ``"azure"``,
    the name of a preset (``provider_kit.providers.PRESETS``: the OpenAI wire under the preset's
    API path, with its quirks), or None for a server that only plays scripted replies (anything
    else gets a plain-text 404).

    Beyond plain text, each simulator takes what its API takes and refuses, with the API's own
    400, what it refuses: images (described in the echo, ``[image image/png 70 bytes]``, so a
    test sees what arrived; an Ollama image with a ``data:`` prefix refused), structured output
    (an answer that fits the schema; OpenAI's strict mode with a schema that is not
    strict-compatible refused), reasoning (thinking text from reasoning models: an OpenAI wire
    with the ``reasoning_field`` quirk, an Ollama thinking model such as ``qwen3`` among
    ``models``, Anthropic's thinking), usage details (a prompt prefix seen before is reported as
    cached) and ``top_p`` / ``seed``.

    :param protocol: the wire format to simulate, or None.
    :param api_key: if set, the simulator checks it (``Authorization: Bearer`` for OpenAI,
        ``x-api-key`` or a bearer token for Anthropic) and answers 401 otherwise.
    :param models: the models the simulator lists; defaults to a couple per protocol.
        Anthropic's listing is paginated like the API's (``limit``, ``after_id``,
        ``before_id``, ``has_more``).
    :param ignore_stream: answer a stream request with the whole JSON completion, as a
        server or proxy that ignores ``stream`` does (LiteLLM's Anthropic route).
    :param safety_timeout: seconds before a forgotten gate, hang or stall gives up.
    :param port: the TCP port to listen on; 0 (the default) lets the system pick a free one,
        which is what tests want. A fixed port is for a simulator that a notebook, a web app or
        a config file points at (``provider-kit serve --port``).
    :param latency: seconds to wait before answering each request and between the chunks of a
        streamed reply, to look like a real model; 0 (the default) answers at once. Scripted
        replies wait too. The attribute can be changed while the server runs.
    :param quirks: deviations of a service from its protocol that the simulator reproduces
        (the OpenAI wire's: ``models_shape``, ``error_shape``, ``integer_error_codes``,
        ``stream_comment``, ``health_path``, ``loading``, ``generation_error``,
        ``errors_after_200``; beyond plain text ``structured_output`` (the ``response_format``
        modes served, "schema" and "json"), ``reasoning_field`` (``"reasoning_content"`` or
        ``"reasoning"``: the server thinks aloud in that field), ``reasoning_models`` (a
        regular expression of the models that take ``reasoning_effort``; None: every model),
        ``seed_field`` and ``refusal`` (a text every chat answer becomes); see
        ``provider_kit.testing.wires.openai.OpenAIWire``). A preset name as ``protocol``
        (``"together"``) sets the preset's own quirks and API path; these override them.
        Readable and changeable while the server runs as :attr:`quirks`.
    :param rate_limit: the budget the server reports on every chat answer (and 429): a dict
        of ``requests_limit``, ``requests_remaining``, ``requests_reset_s``, ``tokens_limit``,
        ``tokens_remaining``, ``tokens_reset_s`` (any may be left out), sent as the protocol's
        headers: Anthropic's ``anthropic-ratelimit-*`` (resets as RFC 3339 timestamps), for the
        others OpenAI's ``x-ratelimit-*`` (resets as Go durations). Readable and changeable
        while the server runs as :attr:`rate_limit`; None sends none.
    :raises ValueError: for an unknown protocol or quirk, a port outside 0-65535 or a negative
        latency.
    """

    def __init__(
        self,
        protocol: Optional[str] = None,
        *,
        api_key: Optional[str] = None,
        models: Optional[Sequence[str]] = None,
        ignore_stream: bool = False,
        safety_timeout: float = SAFETY_TIMEOUT,
        port: int = 0,
        latency: float = 0.0,
        quirks: Optional[Mapping[str, Any]] = None,
        rate_limit: Optional[Mapping[str, Any]] = None,
    ) -> None:
        if protocol is not None and protocol not in WIRES and protocol not in PRESET_WIRES:
            raise ValueError(
                f"protocol must be one of {sorted(WIRES)}, a preset ({', '.join(PRESET_WIRES)}) "
                f"or None, not {protocol!r}"
            )
        if quirks and protocol is None:
            raise ValueError("quirks need a protocol; this server was created with protocol=None")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer from 0 to 65535, not {port!r}")
        if isinstance(latency, bool) or not isinstance(latency, (int, float)) or not 0 <= latency < float("inf"):
            raise ValueError(f"latency must be a number of seconds >= 0, not {latency!r}")
        self.protocol = protocol
        # Each server has its own copy of the wire: its quirks can change while it runs.
        self._wire = wire_for(protocol).configured(quirks=quirks) if protocol is not None else None
        self.api_key = api_key
        self.models: List[str] = list(models if models is not None else
                                      self._wire.default_models if self._wire else ())
        self.ignore_stream = ignore_stream
        self.safety_timeout = safety_timeout
        self.latency = float(latency)
        #: The budget reported on chat answers (see ``rate_limit=``); change it at any time.
        self.rate_limit: Optional[Dict[str, Any]] = dict(rate_limit) if rate_limit is not None else None
        self._requested_port = port
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
        """Bind ``127.0.0.1`` on ``port`` (a free one for 0) and start accepting connections.

        :raises RuntimeError: if the server was already started.
        :raises OSError: if the port is in use (``errno.EADDRINUSE``) or not allowed.
        """
        if self._listener is not None or self._closing.is_set():
            raise RuntimeError("a LoopbackServer can only be started once")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if self._requested_port and hasattr(socket, "SO_REUSEADDR") and sys.platform != "win32":
                # A fixed port is reused at once after a restart even while the last run's
                # connections sit in TIME_WAIT (on Windows the option would allow a second listener).
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((_HOST, self._requested_port))
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
            ConnectionHandler(connection, self, number)
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
    def quirks(self) -> Dict[str, Any]:
        """The simulator's quirks, live: a change applies to the next request (for example
        ``server.quirks["loading"] = False`` when the simulated llama.cpp has loaded its model).
        Empty for a server without a protocol."""
        return self._wire.quirks if self._wire is not None else {}

    @property
    def base_url(self) -> str:
        """What a provider's ``base_url`` should be: ``url`` and the API's path prefix (``/v1``
        for OpenAI, a preset's base-URL path such as Groq's ``/openai/v1``), ``url`` for
        Anthropic and Ollama."""
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

    def _protocol(self, helper: str) -> Wire:
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
        tool_calls: Optional[Sequence[ScriptedCall]] = None,
    ) -> Reply:
        """A successful non-streamed completion in this protocol's format.

        :param text: the assistant text.
        :param model: the model named in the body; defaults to the first of ``models``.
        :param finish_reason: the protocol's own value (``"stop"``, ``"end_turn"``, ``"length"``...).
        :param input_tokens: the prompt token count.
        :param output_tokens: the completion token count; defaults to the word count of ``text``.
        :param include_usage: False leaves usage out (OpenAI ``usage``, Ollama's counts).
        :param tool_calls: calls the answer makes, ``(id, name, arguments)`` each: ``id`` None
            for one the wire makes up (Ollama's ``tool_call_ids`` quirk False: none), ``arguments`` a dict
            or the raw JSON text (which may be invalid, as a model's can be). ``text`` then comes
            before the calls ("" for none), and ``finish_reason`` defaults to the protocol's
            tool-call finish.
        :raises ValueError: if the server has no protocol.
        """
        wire = self._protocol("completion_reply")
        if tool_calls is not None:
            return wire.json_reply(200, wire.tool_call_completion(
                text, list(tool_calls), model=model or self._default_model(), finish_reason=finish_reason,
                input_tokens=input_tokens, output_tokens=tokens(text) + 5 * len(tool_calls)
                if output_tokens is None else output_tokens))
        body = wire.completion(text, model or self._default_model(), finish_reason or wire.default_finish,
                               input_tokens, tokens(text) if output_tokens is None else output_tokens,
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
        tool_calls: Optional[Sequence[ScriptedCall]] = None,
        fragments: int = 3,
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
        :param tool_calls: calls the answer makes after the text pieces, as for
            ``completion_reply``; each call's arguments text is cut into ``fragments`` pieces
            (OpenAI ``delta.tool_calls``, Anthropic ``input_json_delta``; Ollama sends whole calls,
            one line each). ``error_after`` does not apply to them.
        :raises ValueError: if the server has no protocol.
        """
        wire = self._protocol("stream_reply")
        if tool_calls is not None:
            parts = wire.tool_call_stream_parts(
                pieces, list(tool_calls), fragments=fragments, model=model or self._default_model(),
                finish_reason=finish_reason, input_tokens=input_tokens,
                output_tokens=len(pieces) + 5 * len(tool_calls) if output_tokens is None else output_tokens,
                include_usage=include_usage, terminate=terminate)
            return Reply(200, chunks=parts, content_type=wire.stream_type, headers=wire.id_headers(),
                         framing=framing)
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
        reply = self._chosen_reply(request)
        budget = self.rate_limit
        if budget and self._wire is not None and request.method == "POST" and (
            reply.status < 300 or reply.status == 429
        ):
            # A copy: a reply queued several times is one object.
            reply = copy.copy(reply)
            reply.headers = {**self._wire.rate_limit_headers(budget), **reply.headers}
        return reply

    def _chosen_reply(self, request: RecordedRequest) -> Reply:
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
