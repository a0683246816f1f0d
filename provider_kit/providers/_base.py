"""``HTTPProvider``, the base class of the HTTP provider types, and its call flow.

``HTTPProvider`` is built in three layers, one module each: ``_settings.ProviderSettings``
(options, their precedence, which server a key may go to, the connection pool),
``_health_check.HealthChecks`` (the model listing and the health check), and here the call
flow: ``complete``, ``stream``, reading a stream (or the whole JSON answer a server sends
instead) and the hooks a type fills in.

Adding a provider type
======================

A provider type is one class; everything else (config loading, the registry, the CLI's help,
``from_config(None)`` reading the environment) derives from it. The class declares:

Identity (class attributes)
    ``TYPE``: the ``type`` name in config files. ``DEFAULT_BASE_URL`` ("" for a type with no
    default host, such as Azure's: its ``BASE_URL_ENV`` or the config names each server) and
    ``DEFAULT_MODEL``.
    ``API_KEY_ENV``: the conventional key variable (sent only to the type's own server; see
    below). ``BASE_URL_ENV``: the variable naming another server of the type. ``REQUIRES_KEY``:
    whether a server of this type needs a key (a loopback server never does). With no config
    file, a provider of the type is added when its key variable, or for a type that needs no
    key its base-URL variable, is set (``enabling_env_var()``).

Wire format (class attributes)
    ``FINISH_REASONS``: the wire's finish reasons -> ``"stop"``, ``"length"``,
    ``"content_filter"``, ``"tool_calls"``; normalised by ``_finish_reason(value)`` (an unknown
    value is kept). ``STREAM_DECODER``: ``SSE`` or ``NDJSON`` from ``provider_kit._streaming``.
    ``STREAM_STATE``: the ``StreamState`` subclass that turns one stream's events into chunks
    (its docstring states the contract: ``feed``, ``done``, ``finish_reason``, ``usage``).
    ``MODELS_PATH``: the model listing (GET), also the health check's request; "" for none.
    ``CHECK_MODEL``: whether the health check looks for the model in that listing by default.
    ``EXTRA_OPTIONS``: the type's own options and their validators (``_options.as_*``),
    read in ``_configure(options)``.

Hooks (methods; the first two are required)
    ``_build_request(call: ChatCall) -> RequestSpec``
        The request for one call: path (and query) and JSON body. ``call`` holds the checked
        messages, model, ``max_tokens``, ``temperature``, ``stop`` and ``stream``. A type whose
        URL depends on the call (Gemini's model in the path, Azure's deployment and
        ``api-version``) says so here; the ~70 lines of call flow are never copied.
    ``_parse_completion(data) -> (text, model, finish_reason, usage)``
        A whole (non-streamed) answer. Raise ``KeyError``/``TypeError``... for a body of the
        wrong shape (it becomes ``ResponseFormatError``), a ``ProviderError`` for an error the
        body reports.
    ``_headers(api_key) -> (plain, secret)``
        The protocol's headers and the credential headers (default: ``Authorization: Bearer``).
        Secret headers are attached so that ``.netrc`` cannot replace them and are redacted
        from every error.
    ``_models_request(query)`` / ``_models_page(data)``
        The listing's request for a page (``query`` None: the first one) and one page's ids
        plus the next page's query. ``_health_request()`` / ``_health_problem(data)``: the
        request and the check used when the model is not looked for (``check_model = false``).
    ``_serves(served)`` / ``_missing_model(served)``
        Whether the configured model is in the listing, and the message when it is not.
    ``_normalise_base_url(value)``
        A configured or environment base URL as the type writes it (Ollama's ``OLLAMA_HOST``).
    ``_error_detail(status, body)``
        The message of an error answer when the type reads its body better than the generic
        reader (Azure's content-filter 400); None keeps the server's message.

A plain class (duck-typed ``provider_kit.Provider``) works too, published under the
entry-point group ``provider_kit.providers``; README's "Adding a provider type" says how.

Settings resolve as call argument > provider config > environment > built-in default, and
``None`` always means "inherit" (``_settings.py``).
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any, ClassVar, Generator, Iterable, List, Mapping, Optional, Sequence, Tuple, Type

from .._call_args import check_call_args
from .._error_bodies import error_message
from .._retry import Deadline
from .._streaming import DEFAULT_MAX_LINE_BYTES, SSE, StreamDecoder
from .._transport import StreamBody
from ..errors import ResponseFormatError
from ..types import Completion, MessagesInput, StreamChunk, Usage

# EXCERPT_WINDOW, StreamState and error_from_event are also imported from here by each protocol.
from ._answers import EXCERPT_WINDOW as EXCERPT_WINDOW
from ._answers import EventBudget, normalised_finish_reason, shorten
from ._answers import StreamState as StreamState
from ._answers import error_from_event as error_from_event
from ._calls import ChatCall, RequestSpec
from ._health_check import HealthChecks

#: The most body bytes a stream may send between two events. The decoders cap each line, but
#: an SSE event may have any number of ``data:`` lines, all held until its blank line: an event
#: may be as large as the largest line, plus room for its field names and other lines.
MAX_EVENT_BYTES = DEFAULT_MAX_LINE_BYTES + 1024 * 1024


class HTTPProvider(HealthChecks):
    """Base class of the built-in providers; a plain class satisfying ``provider_kit.Provider``.

    One instance holds one connection pool and may be shared by any number of threads.
    """

    # Settings and the connection pool come from ProviderSettings, models() and health_check()
    # from HealthChecks (see the module docstring); this class adds the call flow.

    #: The wire's finish reasons -> the normalised ones (an unknown value is kept as it is).
    FINISH_REASONS: ClassVar[Mapping[str, str]] = {}
    #: How a streamed body is recognised and decoded: ``SSE`` or ``NDJSON``.
    STREAM_DECODER: ClassVar[StreamDecoder] = SSE
    #: The ``StreamState`` subclass that turns one stream's events into chunks.
    STREAM_STATE: ClassVar[Type[StreamState]] = StreamState

    # -- protocol hooks

    def _build_request(self, call: ChatCall) -> RequestSpec:
        """The request for one ``complete()`` (``call.stream`` False) or ``stream()`` call.

        :raises InvalidRequestError: for a call the type cannot express (sent nowhere).
        """
        raise NotImplementedError

    def _parse_completion(self, data: Any) -> Tuple[str, Optional[str], Optional[str], Usage]:
        """(text, model, normalised finish reason, usage) from a completion body."""
        raise NotImplementedError

    def _finish_reason(self, value: Any) -> Optional[str]:
        """A finish reason of the wire, normalised through ``FINISH_REASONS``."""
        return normalised_finish_reason(self.FINISH_REASONS, value)

    def _new_stream_state(self) -> StreamState:
        return self.STREAM_STATE(self.name, self.FINISH_REASONS)

    # -- the Provider protocol: calls

    def complete(
        self,
        prompt_or_messages: MessagesInput,
        *,
        model: Optional[str] = None,
        system: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        stop: Optional[Sequence[str]] = None,
        timeout: Optional[float] = None,
    ) -> Completion:
        """Send one chat completion and wait for the whole answer.

        :param prompt_or_messages: a user prompt, or a list of ``Message`` / role-content dicts.
        :param timeout: deadline in seconds for the whole call, retries and waits included
            (default: the provider's ``timeout``).
        :raises ProviderError: a subclass per failure (see ``provider_kit.errors``).
        :raises ConfigError: for arguments of the wrong type or range.
        """
        started = time.monotonic()
        call, request, deadline = self._prepare(
            prompt_or_messages, model, system, max_tokens, temperature, stop, timeout, stream=False
        )
        result = self._transport.request_json(request.method, request.target, body=request.body, deadline=deadline)
        with self._shape_errors(result.request_id, source=result.data):
            text, answered_model, finish_reason, usage = self._parse_completion(result.data)
        return Completion(
            text=text,
            model=answered_model or call.model,
            provider=self.name,
            finish_reason=finish_reason,
            usage=usage,
            raw=result.data,
            latency_s=time.monotonic() - started,
        )

    def stream(
        self,
        prompt_or_messages: MessagesInput,
        *,
        model: Optional[str] = None,
        system: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        stop: Optional[Sequence[str]] = None,
        timeout: Optional[float] = None,
    ) -> Generator[StreamChunk, None, None]:
        """Stream a chat completion: an iterator of ``StreamChunk`` yielded as tokens arrive.

        Arguments are checked at once; the request is sent when iteration starts. ``timeout``
        bounds the wait for the first chunk (retries included) and every gap between chunks.
        The last chunk carries ``finish_reason`` and ``usage``; every chunk's ``provider`` is this
        provider's name. A stream that ends before the protocol's terminator raises
        ``ResponseFormatError``. It is a generator: ``close()`` it
        to stop early and release the connection at once.
        """
        _, request, deadline = self._prepare(
            prompt_or_messages, model, system, max_tokens, temperature, stop, timeout, stream=True
        )
        return self._iter_stream(request, deadline)

    def _iter_stream(self, request: RequestSpec, deadline: Deadline) -> Generator[StreamChunk, None, None]:
        stream_body = self._transport.open_stream(request.method, request.target, body=request.body, deadline=deadline)
        with stream_body:
            source, whole_answer = self._stream_source(stream_body)
            if whole_answer is not None:
                yield from whole_answer
                return
            state = self._new_stream_state()
            budget = EventBudget(source, MAX_EVENT_BYTES)
            events = self.STREAM_DECODER.decode(budget)
            while not state.done:
                try:
                    event = next(events)
                except StopIteration:
                    break
                except ResponseFormatError as error:
                    new_error = self._stream_format_error(str(error), stream_body.request_id)
                    self._transport.redactor.reraise(new_error, error)  # from None if it quotes the key
                budget.reset()
                with self._shape_errors(stream_body.request_id, source=event):
                    chunks = list(state.feed(event))
                for chunk in chunks:
                    # Every chunk says who is answering: the states set it, _from covers a
                    # subclass's own state that does not (it returns the chunk itself otherwise).
                    yield chunk._from(self.name)
                # The gap deadline runs from here, not from the last byte: time the caller
                # spent on the previous chunk is not the server's delay.
                deadline.restart()
            if not state.done:
                raise self._stream_format_error(
                    f"{self.name}: the stream ended before its end marker; the reply is incomplete",
                    stream_body.request_id,
                )
            yield state.final_chunk()._from(self.name)

    def _stream_source(
        self, stream_body: StreamBody
    ) -> Tuple[Iterable[bytes], Optional[List[StreamChunk]]]:
        """The body to decode as a stream, or (when the server sent a whole JSON completion
        instead, as LiteLLM's Anthropic route does) that completion as the stream's chunks: its
        text, then the final chunk. Decided by the Content-Type, and for an unknown or missing
        one by the first bytes.

        :raises ResponseFormatError: saying what arrived, for anything else (an HTML page).
        """
        decoder = self.STREAM_DECODER
        kind = decoder.body_kind(stream_body.content_type)
        if kind == "stream":
            return stream_body, None
        if kind == "json":
            raw = stream_body.read_all()
            try:
                data = json.loads(raw)
            except (ValueError, RecursionError):
                if decoder.lines_as_json:
                    return (raw,), None  # NDJSON lines labelled as one JSON document
                raise self._unexpected_answer(stream_body, raw, "that is not valid JSON") from None
            with self._shape_errors(stream_body.request_id, source=data):
                text, _, finish_reason, usage = self._parse_completion(data)
            final = StreamChunk("", finish_reason, usage, self.name)
            return (), ([StreamChunk(text, None, None, self.name)] if text else []) + [final]
        chunks = iter(stream_body)
        head = b""
        for chunk in chunks:  # up to the first byte that is not whitespace
            head += chunk
            if head.strip():
                break
        if decoder.looks_like(head):
            return itertools.chain((head,), chunks), None
        raise self._unexpected_answer(stream_body, head, "")

    def _unexpected_answer(self, stream_body: StreamBody, raw: bytes, what: str) -> ResponseFormatError:
        expected = self.STREAM_DECODER.description
        media = stream_body.content_type or "a body without Content-Type"
        # Masked, then cut: an HTML page is quoted by its title.
        excerpt = error_message(self._transport.redact(raw[:EXCERPT_WINDOW].decode("utf-8", "replace")))
        return self._stream_format_error(
            f"{self.name}: expected {expected} in answer to a stream request, got {media} {what}".rstrip()
            + f": {shorten(excerpt, 120)!r}",
            stream_body.request_id,
        )

    def _stream_format_error(self, message: str, request_id: Optional[str]) -> ResponseFormatError:
        message = self._transport.redact(message)  # it may quote the body
        if not message.startswith(f"{self.name}:"):
            message = f"{self.name}: {message}"
        return ResponseFormatError(message, provider=self.name, request_id=request_id)

    # -- helpers

    def _prepare(
        self,
        prompt_or_messages: MessagesInput,
        model: Optional[str],
        system: Optional[str],
        max_tokens: Optional[int],
        temperature: Optional[float],
        stop: Optional[Sequence[str]],
        timeout: Optional[float],
        *,
        stream: bool,
    ) -> Tuple[ChatCall, RequestSpec, Deadline]:
        args = check_call_args(
            self.name,
            prompt_or_messages,
            system=system,
            model=model,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=stop,
            timeout=timeout,
        )
        self.validate_config()
        call = ChatCall(
            args.messages,
            args.model or self.model,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            stop=args.stop,
            stream=stream,
        )
        request = self._build_request(call)
        return call, request, Deadline(args.timeout if args.timeout is not None else self.timeout)
