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
        messages, model, ``max_tokens``, ``temperature``, ``stop`` and ``stream`` (and the
        arguments the feature hooks read). Each message's content goes through
        ``self._content_parts(message)``. A type whose URL depends on the call (Gemini's model
        in the path, Azure's deployment and ``api-version``) says so here; the ~70 lines of
        call flow are never copied.
    ``_parse_completion(data) -> ParsedAnswer``
        A whole (non-streamed) answer: ``ParsedAnswer(text, model, finish_reason, usage,
        reasoning=None, provider_state=None)`` (the old 4-tuple is still read). Raise
        ``KeyError``/``TypeError``... for a body of the wrong shape (it becomes
        ``ResponseFormatError``), a ``ProviderError`` for an error the body reports.
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

Features beyond plain text (module ``_features``)
    Images (``_content_parts``), structured output (``STRUCTURED_OUTPUT_MODES``,
    ``_apply_output_format``), reasoning (``REASONING_LEVELS``, ``_apply_reasoning``),
    ``top_p``/``seed`` (``SAMPLING_OPTIONS``, ``_apply_sampling``) and ``cache=True``
    (``_apply_cache``): each refused with a ``ConfigError`` naming the type until the type
    implements it. ``extra_body``, ``extra_headers``, per-call ``max_retries`` and the parsing
    of ``data``/``parsed`` (``_structured``) are the call flow's, the same for every type.

A plain class (duck-typed ``provider_kit.Provider``) works too, published under the
entry-point group ``provider_kit.providers``; README's "Adding a provider type" says how.

Settings resolve as call argument > provider config > environment > built-in default, and
``None`` always means "inherit" (``_settings.py``).
"""

from __future__ import annotations

import itertools
import json as _json  # complete()'s json= argument shadows the name
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    ClassVar,
    Generator,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
)

from .._call_args import check_call_args
from .._error_bodies import error_message
from .._retry import Deadline
from .._streaming import DEFAULT_MAX_LINE_BYTES, SSE, StreamDecoder
from .._transport import StreamBody, Transport
from ..errors import RateLimitError, ResponseFormatError
from ..types import Completion, MessagesInput, StreamChunk, Usage

if TYPE_CHECKING:
    from .._embeddings import Embeddings

# EXCERPT_WINDOW, StreamState and error_from_event are also imported from here by each protocol.
from ._answers import EXCERPT_WINDOW as EXCERPT_WINDOW
from ._answers import EventBudget, ParsedAnswer, normalised_finish_reason, shorten
from ._answers import StreamState as StreamState
from ._answers import error_from_event as error_from_event
from ._calls import ChatCall, RequestSpec
from ._features import CallFeatures
from ._health_check import HealthChecks

#: The most body bytes a stream may send between two events. The decoders cap each line, but
#: an SSE event may have any number of ``data:`` lines, all held until its blank line: an event
#: may be as large as the largest line, plus room for its field names and other lines.
MAX_EVENT_BYTES = DEFAULT_MAX_LINE_BYTES + 1024 * 1024


class HTTPProvider(CallFeatures, HealthChecks):
    """Base class of the built-in providers; a plain class satisfying ``provider_kit.Provider``.

    One instance holds one connection pool and may be shared by any number of threads.
    """

    # Settings and the connection pool come from ProviderSettings, models() and health_check()
    # from HealthChecks, the feature hooks (images, schema, reasoning...) from CallFeatures (see
    # the module docstring); this class adds the call flow.

    #: The wire's finish reasons -> the normalised ones (an unknown value is kept as it is).
    FINISH_REASONS: ClassVar[Mapping[str, str]] = {}
    #: How a streamed body is recognised and decoded: ``SSE`` or ``NDJSON``.
    STREAM_DECODER: ClassVar[StreamDecoder] = SSE
    #: The ``StreamState`` subclass that turns one stream's events into chunks.
    STREAM_STATE: ClassVar[Type[StreamState]] = StreamState
    #: The most texts, and estimated tokens (None: no cap), one embeddings request may carry;
    #: a larger input is split (``_embed``).
    EMBED_MAX_INPUTS: ClassVar[int] = 256
    EMBED_MAX_TOKENS: ClassVar[Optional[int]] = None

    # -- protocol hooks

    def _build_request(self, call: ChatCall) -> RequestSpec:
        """The request for one ``complete()`` (``call.stream`` False) or ``stream()`` call.

        :raises InvalidRequestError: for a call the type cannot express (sent nowhere).
        """
        raise NotImplementedError

    def _parse_completion(self, data: Any) -> Union[ParsedAnswer, Tuple[str, Optional[str], Optional[str], Usage]]:
        """A completion body read: a ``ParsedAnswer`` (or the tuple of its first four fields)."""
        raise NotImplementedError

    def _embed_request(self, model: str, texts: List[str], dimensions: Optional[int]) -> RequestSpec:
        """The embeddings request for ``texts`` (within the type's limits), for a type with
        ``EMBEDDINGS_PATH``."""
        raise NotImplementedError

    def _parse_embeddings(self, data: Any) -> Tuple[List[Any], Optional[str], Usage]:
        """An embeddings answer read: (one ``array("f")`` per text in order, model, usage)."""
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
        schema: Any = None,
        json: Optional[bool] = None,
        reasoning: Union[str, bool, None] = None,
        top_p: Optional[float] = None,
        seed: Optional[int] = None,
        max_retries: Optional[int] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        cache: Optional[bool] = None,
        tools: Optional[Sequence[Any]] = None,
        tool_choice: Any = None,
        parallel_tool_calls: Optional[bool] = None,
    ) -> Completion:
        """Send one chat completion and wait for the whole answer.

        :param prompt_or_messages: a user prompt; a list of ``Message`` / role-content dicts; or
            a list of parts (strings, ``Text``, ``Image``, part dicts), which is one user message.
        :param timeout: deadline in seconds for the whole call, retries and waits included
            (default: the provider's ``timeout``).
        :param schema: a JSON-schema dict, or a class with ``model_json_schema()`` (pydantic):
            the reply is that JSON, in ``completion.data`` and ``completion.parsed``.
        :param json: True asks for any JSON object (``completion.data``).
        :param reasoning: "low", "medium" or "high" thinking, or False to turn it off; the
            thinking is in ``completion.reasoning`` when the server returns it.
        :param top_p: nucleus sampling, 0 to 1. :param seed: a sampling seed.
        :param max_retries: retries for this call (default: the provider's ``max_retries``).
        :param extra_headers: headers for this call (one named like a credential is kept out
            of every message, as the key is).
        :param extra_body: keys merged into the JSON body (server-specific options); a key
            provider_kit sets for the call is a ``ConfigError``, never overwritten.
        :param cache: True marks the prompt for caching where the protocol asks for it.
        :param tools: functions, ``Tool`` values or OpenAI-shaped tool dicts the model may call;
            its calls are in ``completion.tool_calls`` (``finish_reason`` "tool_calls").
        :param tool_choice: "auto", "none", "required" or a tool's name (refused before sending
            where the protocol cannot express it).
        :param parallel_tool_calls: False asks for at most one call per turn.
        :raises ProviderError: a subclass per failure (see ``provider_kit.errors``);
            ``ResponseFormatError`` for a reply that is not the JSON ``schema``/``json`` asked for.
        :raises ConfigError: for arguments of the wrong type or range, or a feature this
            provider type cannot send (refused before sending).
        """
        started = time.monotonic()
        call, request, deadline, transport = self._prepare(
            prompt_or_messages, system, False, model=model, max_tokens=max_tokens, temperature=temperature,
            stop=stop, timeout=timeout, schema=schema, json=json, reasoning=reasoning, top_p=top_p, seed=seed,
            max_retries=max_retries, extra_headers=extra_headers, extra_body=extra_body, cache=cache,
            tools=tools, tool_choice=tool_choice, parallel_tool_calls=parallel_tool_calls,
        )
        cache_key = stored = None
        if self.response_cache is not None and call.cache is not False:
            cache_key, stored = self._cached_body(call, request)
        request_id = rate_limit = None
        if stored is None:
            # Paced and sent only when the cache had no answer: a hit costs the server nothing.
            limiter = self._limiter
            estimate = self._pace(limiter, request, deadline) if limiter is not None else 0
            try:
                result = transport.request_json(
                    request.method, request.target, body=request.body, deadline=deadline,
                    max_retries=call.max_retries,
                )
            except RateLimitError as error:
                self._server_refused(error)
                raise
            request_id, body = result.request_id, result.data
            headers = result.headers
            rate_limit = _rate_limit_of(headers) if _reports_budget(headers) else None
        else:
            limiter, body = None, stored
        with self._shape_errors(request_id, source=body, transport=transport):
            answer = ParsedAnswer.of(self._parse_completion(body))
        if limiter is not None or rate_limit is not None:
            self._after_call(limiter, estimate, answer.usage, rate_limit)
        data = parsed = None
        if call.output is not None:
            data, parsed = _structured_result(
                call.output, answer.text, answer.finish_reason,
                provider=self.name, request_id=request_id, redact=transport.redact,
            )
        if cache_key is not None and stored is None:  # stored once it proved a whole, usable answer
            self.response_cache.put(cache_key, {"body": body}, provider=self.name, model=call.model,
                                    kind="complete")
        return Completion(
            text=answer.text,
            model=answer.model or call.model,
            provider=self.name,
            finish_reason=answer.finish_reason,
            usage=answer.usage,
            raw=body,
            latency_s=time.monotonic() - started,
            data=data,
            parsed=parsed,
            reasoning=answer.reasoning,
            provider_state=answer.provider_state,
            tool_calls=answer.tool_calls,
            rate_limit=rate_limit,
            cached=stored is not None,
        )

    def _cached_body(self, call: ChatCall, request: RequestSpec) -> Tuple[Optional[str], Any]:
        from ._cached_calls import cached_body

        return cached_body(self, call, request)

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
        schema: Any = None,
        json: Optional[bool] = None,
        reasoning: Union[str, bool, None] = None,
        top_p: Optional[float] = None,
        seed: Optional[int] = None,
        max_retries: Optional[int] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        cache: Optional[bool] = None,
        tools: Optional[Sequence[Any]] = None,
        tool_choice: Any = None,
        parallel_tool_calls: Optional[bool] = None,
    ) -> Generator[StreamChunk, None, None]:
        """Stream a chat completion: an iterator of ``StreamChunk`` yielded as tokens arrive.

        Arguments are checked at once (the same as ``complete``'s); the request is sent when
        iteration starts. ``timeout`` bounds the wait for the first chunk (retries included) and
        every gap between chunks. Thinking arrives in chunks' ``reasoning``. The last chunk
        carries ``finish_reason`` and ``usage``, and with ``schema``/``json`` the parsed
        ``data`` and ``parsed``, with ``tools`` the assembled ``tool_calls`` (chunks on the way
        carry each call being built in ``tool_call``); every chunk's ``provider`` is this provider's name. A stream
        that ends before the protocol's terminator raises ``ResponseFormatError``. It is a
        generator: ``close()`` it to stop early and release the connection at once.
        """
        call, request, deadline, transport = self._prepare(
            prompt_or_messages, system, True, model=model, max_tokens=max_tokens, temperature=temperature,
            stop=stop, timeout=timeout, schema=schema, json=json, reasoning=reasoning, top_p=top_p, seed=seed,
            max_retries=max_retries, extra_headers=extra_headers, extra_body=extra_body, cache=cache,
            tools=tools, tool_choice=tool_choice, parallel_tool_calls=parallel_tool_calls,
        )
        if self.response_cache is not None and call.cache is not False:
            return self._cached_stream(request, deadline, call, transport)
        return self._iter_stream(request, deadline, call, transport)

    def embed(
        self,
        texts: Union[str, Sequence[str]],
        *,
        model: Optional[str] = None,
        dimensions: Optional[int] = None,
        timeout: Optional[float] = None,
        cache: Optional[bool] = None,
    ) -> Embeddings:
        """Embed ``texts``: one vector per text, in input order (see ``provider_kit.Embeddings``).

        A large input is split into requests the server takes (the type's count and token
        limits per request) and put back together; every request runs inside the one deadline.

        :param texts: a string (one vector), or a list of strings.
        :param model: the embedding model (default: ``embedding_model``, else the type's).
        :param dimensions: a shorter vector length, for the models that take one.
        :param timeout: deadline in seconds for the whole call, every request and retry
            included (default: the provider's ``timeout``).
        :param cache: False skips the response cache (when the provider has one) for this call;
            otherwise each request of the call is looked up there first and stored after.
        :raises UnsupportedFeatureError: for a type without embeddings (nothing is sent).
        :raises ConfigError: for an empty list, an item that is not a non-empty string, or
            ``dimensions`` that is not a positive integer (nothing is sent).
        :raises ProviderError: a subclass per failure, as for ``complete``.
        """
        from ._embed import embed  # loaded by the first call: most programs never embed

        return embed(self, texts, model=model, dimensions=dimensions, timeout=timeout, cache=cache)

    def _cached_stream(
        self, request: RequestSpec, deadline: Deadline, call: ChatCall, transport: Transport
    ) -> Generator[StreamChunk, None, None]:
        from ._cached_calls import cached_stream  # only a provider with a response cache loads it

        return cached_stream(self, request, deadline, call, transport)

    def _iter_stream(
        self, request: RequestSpec, deadline: Deadline, call: ChatCall, transport: Transport,
        store: Optional[Callable[[List[StreamChunk]], None]] = None,
    ) -> Generator[StreamChunk, None, None]:
        """The server's stream. ``store``, when given, receives every chunk (the final one
        last) before the final chunk is yielded: a caller who stops there still stores it."""
        limiter = self._limiter
        estimate = self._pace(limiter, request, deadline) if limiter is not None else 0
        try:
            stream_body = transport.open_stream(
                request.method, request.target, body=request.body, deadline=deadline, max_retries=call.max_retries
            )
        except RateLimitError as error:
            self._server_refused(error)
            raise
        # The text is kept only when the last chunk parses it (schema= / json=True).
        texts: Optional[List[str]] = [] if call.output is not None else None
        seen: Optional[List[StreamChunk]] = [] if store is not None else None
        with stream_body:
            source, whole_answer = self._stream_source(stream_body, transport)
            if whole_answer is not None:
                *chunks, final = whole_answer
                yield from chunks
                last = self._last_chunk(
                    final, call, [chunk.text for chunk in chunks], stream_body, transport, limiter, estimate
                )
                if store is not None:
                    store([*chunks, last])
                yield last
                return
            state = self._new_stream_state()
            name = self.name
            budget = EventBudget(source, MAX_EVENT_BYTES)
            events = self.STREAM_DECODER.decode(budget)
            while not state.done:
                try:
                    event = next(events)
                except StopIteration:
                    break
                except ResponseFormatError as error:
                    new_error = self._stream_format_error(str(error), stream_body.request_id, transport)
                    transport.redactor.reraise(new_error, error)  # from None if it quotes the key
                budget.reset()
                try:
                    pieces: Iterable[StreamChunk] = state.feed(event)
                    if not isinstance(pieces, (list, tuple)):
                        pieces = list(pieces)  # a state whose feed is a generator: run it here
                except BaseException:
                    # The guard is built only when feeding failed: it turns the error into
                    # the right one (a shape error, the event's own error with its body).
                    with self._shape_errors(stream_body.request_id, source=event, transport=transport):
                        raise
                for chunk in pieces:
                    if texts is not None:
                        texts.append(chunk.text)
                    # Every chunk says who is answering: the states set it, _from covers a
                    # subclass's own state that does not.
                    if chunk.provider != name:
                        chunk = chunk._from(name)
                    if seen is not None:
                        seen.append(chunk)
                    yield chunk
                # The gap deadline runs from here, not from the last byte: time the caller
                # spent on the previous chunk is not the server's delay.
                deadline.restart()
            if not state.done:
                raise self._stream_format_error(
                    f"{self.name}: the stream ended before its end marker; the reply is incomplete",
                    stream_body.request_id,
                    transport,
                )
            last = self._last_chunk(state.final_chunk(), call, texts, stream_body, transport, limiter, estimate)
            if store is not None and seen is not None:
                store([*seen, last])
            yield last

    def _last_chunk(
        self, final: StreamChunk, call: ChatCall, texts: Optional[List[str]], stream_body: Optional[StreamBody],
        transport: Transport, limiter: Any = None, estimate: int = 0,
    ) -> StreamChunk:
        """The final chunk as yielded: from this provider, with the rate limit its server
        reported, and with ``data``/``parsed`` built from the whole text by the step
        ``complete`` uses, so both agree."""
        final = final._from(self.name)
        headers = stream_body.response.headers if stream_body is not None else {}  # None: a replay
        if limiter is not None or _reports_budget(headers):
            rate_limit = _rate_limit_of(headers)
            self._after_call(limiter, estimate, final.usage, rate_limit)
            if rate_limit is not None:
                final = final._replace(rate_limit=rate_limit)
        if call.output is None:
            return final
        data, parsed = _structured_result(
            call.output, "".join(texts or ()), final.finish_reason,
            provider=self.name, request_id=stream_body.request_id if stream_body is not None else None,
            redact=transport.redact,
        )
        return final._replace(data=data, parsed=parsed)

    def _stream_source(
        self, stream_body: StreamBody, transport: Transport
    ) -> Tuple[Iterable[bytes], Optional[List[StreamChunk]]]:
        """The body to decode as a stream, or (when the server sent a whole JSON completion
        instead, as LiteLLM's Anthropic route does) that completion as the stream's chunks: its
        reasoning and text, then the final chunk. Decided by the Content-Type, and for an
        unknown or missing one by the first bytes.

        :raises ResponseFormatError: saying what arrived, for anything else (an HTML page).
        """
        decoder = self.STREAM_DECODER
        kind = decoder.body_kind(stream_body.content_type)
        if kind == "stream":
            return stream_body, None
        if kind == "json":
            raw = stream_body.read_all()
            try:
                data = _json.loads(raw)
            except (ValueError, RecursionError):
                if decoder.lines_as_json:
                    return (raw,), None  # NDJSON lines labelled as one JSON document
                raise self._unexpected_answer(stream_body, raw, "that is not valid JSON", transport) from None
            with self._shape_errors(stream_body.request_id, source=data, transport=transport):
                answer = ParsedAnswer.of(self._parse_completion(data))
            pieces = [StreamChunk("", None, None, self.name, answer.reasoning)] if answer.reasoning else []
            pieces += [StreamChunk(answer.text, None, None, self.name)] if answer.text else []
            pieces += [StreamChunk("", None, None, self.name, tool_call=call) for call in answer.tool_calls]
            final = StreamChunk("", answer.finish_reason, answer.usage, self.name, provider_state=answer.provider_state,
                                tool_calls=answer.tool_calls)
            return (), [*pieces, final]
        chunks = iter(stream_body)
        head = b""
        for chunk in chunks:  # up to the first byte that is not whitespace
            head += chunk
            if head.strip():
                break
        if decoder.looks_like(head):
            return itertools.chain((head,), chunks), None
        raise self._unexpected_answer(stream_body, head, "", transport)

    def _unexpected_answer(
        self, stream_body: StreamBody, raw: bytes, what: str, transport: Transport
    ) -> ResponseFormatError:
        expected = self.STREAM_DECODER.description
        media = stream_body.content_type or "a body without Content-Type"
        # Masked, then cut: an HTML page is quoted by its title.
        excerpt = error_message(transport.redact(raw[:EXCERPT_WINDOW].decode("utf-8", "replace")))
        return self._stream_format_error(
            f"{self.name}: expected {expected} in answer to a stream request, got {media} {what}".rstrip()
            + f": {shorten(excerpt, 120)!r}",
            stream_body.request_id,
            transport,
        )

    def _stream_format_error(
        self, message: str, request_id: Optional[str], transport: Optional[Transport] = None
    ) -> ResponseFormatError:
        message = (transport or self._transport).redact(message)  # it may quote the body
        if not message.startswith(f"{self.name}:"):
            message = f"{self.name}: {message}"
        return ResponseFormatError(message, provider=self.name, request_id=request_id)

    # -- rate limits (provider_kit/_limiter.py): only a paced provider, or one whose server
    # reported a rate limit, gets here

    def _pace(self, limiter: Any, request: RequestSpec, deadline: Deadline) -> int:
        """Wait for the provider's limiter within ``deadline``; the call's estimated tokens.

        :raises RateLimitError: at once when the wait would pass the deadline.
        """
        from .._limiter import estimate_tokens

        estimate = estimate_tokens(request.body) if limiter.tpm else 0
        limiter.acquire(estimate, deadline.remaining(), provider=self.name)
        return estimate

    def _after_call(self, limiter: Any, estimate: int, usage: Optional[Usage], rate_limit: Any) -> None:
        """Correct the token estimate from the reported usage; hold further calls until the
        reset when the server said a budget is spent."""
        if limiter is not None and limiter.tpm and usage is not None:
            used = usage.total_tokens
            limiter.settle(estimate, used)
        if rate_limit is not None and rate_limit.exhausted:
            wait = rate_limit.wait_s()
            if wait:
                from .._limiter import limiter_of

                limiter_of(self).hold(wait)

    def _server_refused(self, error: RateLimitError) -> None:
        """A 429 the retries did not get past: hold further calls for its ``retry_after``
        rather than send them into the same refusal."""
        if error.retryable and error.retry_after:
            from .._limiter import limiter_of

            limiter_of(self).hold(error.retry_after)

    # -- helpers

    def _prepare(
        self, prompt_or_messages: MessagesInput, system: Optional[str], stream: bool, **arguments: Any
    ) -> Tuple[ChatCall, RequestSpec, Deadline, Transport]:
        """The checked call, its request (the type's ``_build_request``, then the features and
        ``extra_body``: see ``_features``), its deadline, and the transport that sends it (this
        provider's, or with ``extra_headers`` a view of it that adds them)."""
        args = check_call_args(self.name, prompt_or_messages, system=system, **arguments)
        self.validate_config()
        call = ChatCall.from_args(args, args.model or self.model, stream=stream)
        request = self._build_request(call)
        if args.output is not None or args.reasoning is not None or args.top_p is not None or (
            args.seed is not None or args.cache or args.extra_body or args.tools is not None
        ):
            self._apply_features(request, call)
        transport = self._transport if not call.extra_headers else self._transport.with_headers(call.extra_headers)
        return call, request, Deadline(args.timeout if args.timeout is not None else self.timeout), transport


#: The headers whose presence says the server reported a rate-limit budget (OpenAI's family,
#: Anthropic's): looked for on every answer, before anything is parsed.
_BUDGET_HEADERS = ("x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens",
                   "anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-tokens-remaining")


def _reports_budget(headers: Any) -> bool:
    return any(name in headers for name in _BUDGET_HEADERS)


def _rate_limit_of(headers: Any) -> Any:
    """``_rate_limits.rate_limit_from_headers``, imported by the first answer that has one."""
    from .._rate_limits import rate_limit_from_headers

    return rate_limit_from_headers(headers)


def _structured_result(*args: Any, **kwargs: Any) -> Any:
    """``_structured.structured_result``, imported by the first call with a schema."""
    from .._structured import structured_result

    return structured_result(*args, **kwargs)
