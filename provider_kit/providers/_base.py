"""What every HTTP provider shares: settings and their precedence, the call flow, health checks.

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
``None`` always means "inherit".
"""

from __future__ import annotations

import itertools
import json
import os
import time
import urllib.parse
from typing import (
    Any,
    ClassVar,
    Dict,
    Generator,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
)

from .._call_args import check_call_args, check_timeout
from .._error_bodies import error_message
from .._options import (
    Validator,
    as_bool,
    as_env_name,
    as_non_negative_int,
    as_positive_int,
    as_positive_number,
    as_str,
    as_str_dict,
    as_url,
    check_options,
)
from .._retry import Deadline, RetryPolicy
from .._secrets import is_secret_name, mask_url
from .._streaming import DEFAULT_MAX_LINE_BYTES, SSE, StreamDecoder
from .._transport import StreamBody, Transport, is_loopback_host
from ..errors import (
    AuthenticationError,
    ConfigError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    ResponseFormatError,
)
from ..types import (
    Completion,
    HealthStatus,
    MessagesInput,
    StreamChunk,
    Usage,
)

# EXCERPT_WINDOW, StreamState and error_from_event are also imported from here by each protocol.
from ._answers import EXCERPT_WINDOW as EXCERPT_WINDOW
from ._answers import EventBudget, ShapeErrors, normalised_finish_reason, shorten
from ._answers import StreamState as StreamState
from ._answers import error_from_event as error_from_event
from ._calls import ChatCall, RequestSpec
from ._listing import follow_pages, listed, listing_problem, missing_reason

#: Seconds a whole ``complete()`` call (retries included) may take unless configured otherwise.
DEFAULT_TIMEOUT = 120.0
#: Seconds a health check may take when the caller gives no timeout.
DEFAULT_HEALTH_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 2
#: The most body bytes a stream may send between two events. The decoders cap each line, but
#: an SSE event may have any number of ``data:`` lines, all held until its blank line: an event
#: may be as large as the largest line, plus room for its field names and other lines.
MAX_EVENT_BYTES = DEFAULT_MAX_LINE_BYTES + 1024 * 1024

_P = TypeVar("_P", bound="HTTPProvider")


class HTTPProvider:
    """Base class of the built-in providers; a plain class satisfying ``provider_kit.Provider``.

    One instance holds one connection pool and may be shared by any number of threads.
    """

    #: The ``type`` name used in configuration files.
    TYPE: ClassVar[str] = ""
    #: The service's address; "" when every server of the type has its own (Azure's resources).
    DEFAULT_BASE_URL: ClassVar[str] = ""
    #: Environment variable read for ``base_url`` when the config sets none.
    BASE_URL_ENV: ClassVar[Optional[str]] = None
    #: The type's conventional key variable, read when the config names no key of its own, and
    #: only for a server of this type's own: ``DEFAULT_BASE_URL``'s origin, or the server
    #: ``BASE_URL_ENV`` names. Any other ``base_url`` gets ``api_key`` / ``api_key_env`` only.
    API_KEY_ENV: ClassVar[Optional[str]] = None
    #: Whether a server of this type needs a key when ``require_api_key`` is unset (a server
    #: on a loopback address never does: a local vLLM, LM Studio, llama.cpp).
    REQUIRES_KEY: ClassVar[bool] = True
    DEFAULT_MODEL: ClassVar[str] = ""
    #: The model listing (GET), relative to ``base_url``; its first page is also the health
    #: check's request. "" when the type has none.
    MODELS_PATH: ClassVar[str] = ""
    #: Whether the health check looks for the model in the listing unless ``check_model`` says
    #: otherwise: off for a type whose "model" is not what its listing lists (Azure's deployments).
    CHECK_MODEL: ClassVar[bool] = True
    #: The wire's finish reasons -> the normalised ones (an unknown value is kept as it is).
    FINISH_REASONS: ClassVar[Mapping[str, str]] = {}
    #: How a streamed body is recognised and decoded: ``SSE`` or ``NDJSON``.
    STREAM_DECODER: ClassVar[StreamDecoder] = SSE
    #: The ``StreamState`` subclass that turns one stream's events into chunks.
    STREAM_STATE: ClassVar[Type[StreamState]] = StreamState
    #: Options every HTTP provider accepts, with their validators.
    COMMON_OPTIONS: ClassVar[Dict[str, Validator]] = {
        "model": as_str,
        "api_key": as_str,
        "api_key_env": as_env_name,
        "base_url": as_url,
        "timeout": as_positive_number,
        "max_retries": as_non_negative_int,
        "headers": as_str_dict,
        "require_api_key": as_bool,
        "max_response_bytes": as_positive_int,
        "check_model": as_bool,
    }
    #: Options of one provider type only; subclasses extend this.
    EXTRA_OPTIONS: ClassVar[Dict[str, Validator]] = {}

    def __init__(
        self,
        name: Optional[str] = None,
        *,
        model: Optional[str] = None,
        api_key: Optional[str] = None,
        api_key_env: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        headers: Optional[Mapping[str, str]] = None,
        require_api_key: Optional[bool] = None,
        max_response_bytes: Optional[int] = None,
        **extra: Any,
    ) -> None:
        self.name = name or self.TYPE
        # Where messages say the provider is: its config table when it came from one.
        self._where = where = f"{self.TYPE} provider {self.name!r}"
        given = {
            key: value
            for key, value in (
                ("model", model),
                ("api_key", api_key),
                ("api_key_env", api_key_env),
                ("base_url", base_url),
                ("timeout", timeout),
                ("max_retries", max_retries),
                ("headers", headers),
                ("require_api_key", require_api_key),
                ("max_response_bytes", max_response_bytes),
            )
            if value is not None
        }
        given.update((key, value) for key, value in extra.items() if value is not None)
        options = check_options(given, self.option_schema(), where=where)
        self.model: str = options.get("model") or self.DEFAULT_MODEL
        configured_url: Optional[str] = options.get("base_url")
        self.base_url: str = configured_url or self._base_url_from_env(where) or self.DEFAULT_BASE_URL
        # Keys go only where they belong: a type's conventional variable ($OPENAI_API_KEY...)
        # is for that type's own server, never for a vLLM box, a colleague's proxy or a typo'd
        # host that happens to be configured as base_url.
        own_server = configured_url is None or same_origin(configured_url, self.DEFAULT_BASE_URL)
        #: The variable the key is read from: the configured ``api_key_env``, else the type's
        #: conventional one when ``base_url`` is the type's own server; else None.
        self.api_key_env: Optional[str] = options.get("api_key_env") or (
            self.API_KEY_ENV if own_server else None
        )
        self._api_key_env_named = "api_key_env" in options
        # The conventional variable not read for this base_url, to say so when a key is missing.
        self._withheld_key_env = None if own_server or self._api_key_env_named else self.API_KEY_ENV
        key = options.get("api_key")
        if key is None and self.api_key_env:
            key = os.environ.get(self.api_key_env) or None
        self._api_key: Optional[str] = key
        self.timeout: float = options.get("timeout", DEFAULT_TIMEOUT)
        self.max_retries: int = options.get("max_retries", DEFAULT_MAX_RETRIES)
        self.extra_headers: Dict[str, str] = options.get("headers", {})
        required = options.get("require_api_key")
        if required is None:
            # A table that names api_key_env expects that variable, on loopback too (a local
            # LiteLLM proxy with a master key).
            required = self._api_key_env_named or self._key_required_by_default()
        self.require_api_key: bool = required
        #: Whether the health check looks for ``model`` in the server's model listing.
        self.check_model: bool = options.get("check_model", self.CHECK_MODEL)
        self._configure(options)
        # An extra header named like a credential (Azure's "api-key", a hand-set
        # "Authorization") is treated as one: attached by HeaderAuth and redacted from errors.
        secret_extra = {k: v for k, v in self.extra_headers.items() if is_secret_name(k)}
        plain_extra = {k: v for k, v in self.extra_headers.items() if k not in secret_extra}
        protocol_headers, credential_headers = self._headers(self._api_key)
        self._transport = Transport(
            provider=self.name,
            base_url=self.base_url,
            headers={**protocol_headers, **plain_extra},
            secret_headers={**secret_extra, **credential_headers},
            retry=RetryPolicy(self.max_retries),
            error_detail=self._error_detail,
            **{key: options[key] for key in ("max_response_bytes",) if key in options},
        )

    # -- construction hooks

    @classmethod
    def option_schema(cls) -> Dict[str, Validator]:
        return {**cls.COMMON_OPTIONS, **cls.EXTRA_OPTIONS}

    @classmethod
    def enabling_env_var(cls) -> Optional[str]:
        """The variable that, set and not empty, adds a provider of this type (named after the
        type) when no config file is found: the key variable, or for a type that needs no key,
        the base-URL variable (``$OLLAMA_HOST``-like). None: the environment alone never does."""
        return cls.API_KEY_ENV if cls.REQUIRES_KEY else cls.BASE_URL_ENV

    @classmethod
    def display_name(cls) -> str:
        """The type's name for people: the class name without ``Provider``."""
        name = cls.__name__
        return name[: -len("Provider")] if name.endswith("Provider") and name != "Provider" else cls.TYPE

    @classmethod
    def from_config(cls: type[_P], name: str, options: Mapping[str, Any], *, where: str) -> _P:
        """Build a provider from a config table (``where`` names it in error messages).

        :raises ConfigError: for an unknown key or a value of the wrong type or range.
        """
        checked = check_options(options, cls.option_schema(), where=where)
        provider = cls(name, **checked)
        provider._where = where
        return provider

    def _configure(self, options: Mapping[str, Any]) -> None:
        """Read the options of ``EXTRA_OPTIONS``; called before the transport is built."""

    def _base_url_from_env(self, where: str) -> Optional[str]:
        """``$BASE_URL_ENV`` normalised and checked like a configured ``base_url``, or None."""
        value = os.environ.get(self.BASE_URL_ENV) if self.BASE_URL_ENV else None
        if not value or not value.strip():
            return None
        # Checked here, not at the first request: a typo such as "localhost:8000/v1" (no
        # scheme) would otherwise surface later as a confusing connection error.
        try:
            return as_url(self._normalise_base_url(value))
        except (ValueError, ConfigError) as error:
            raise ConfigError(f"{where}: ${self.BASE_URL_ENV}={value!r}: {error}") from None

    def _normalise_base_url(self, value: Optional[str]) -> Optional[str]:
        return value.rstrip("/") if value else None

    def _key_required_by_default(self) -> bool:
        """Whether a missing key makes the provider invalid when ``require_api_key`` is unset:
        ``REQUIRES_KEY``, except for a server on a loopback address."""
        return self.REQUIRES_KEY and not url_is_loopback(self.base_url)

    def _headers(self, api_key: Optional[str]) -> Tuple[Dict[str, str], Dict[str, str]]:
        """The headers every request carries: (the protocol's, the credentials). The key goes
        as ``Authorization: Bearer`` unless a type says otherwise; no key, no credentials."""
        return {}, ({"Authorization": f"Bearer {api_key}"} if api_key else {})

    # -- protocol hooks

    def _build_request(self, call: ChatCall) -> RequestSpec:
        """The request for one ``complete()`` (``call.stream`` False) or ``stream()`` call.

        :raises InvalidRequestError: for a call the type cannot express (sent nowhere).
        """
        raise NotImplementedError

    def _parse_completion(self, data: Any) -> Tuple[str, Optional[str], Optional[str], Usage]:
        """(text, model, normalised finish reason, usage) from a completion body."""
        raise NotImplementedError

    def _error_detail(self, status: int, body: str) -> Optional[str]:
        """What an error answer (``status``, its body with secrets masked) means, when the
        type knows better than the body's message (Azure's content filter); None: the message."""
        return None

    def _finish_reason(self, value: Any) -> Optional[str]:
        """A finish reason of the wire, normalised through ``FINISH_REASONS``."""
        return normalised_finish_reason(self.FINISH_REASONS, value)

    def _new_stream_state(self) -> StreamState:
        return self.STREAM_STATE(self.name, self.FINISH_REASONS)

    def _health_request(self) -> RequestSpec:
        """The request of a health check that does not look for the model: ``MODELS_PATH``."""
        return RequestSpec(self.MODELS_PATH, method="GET")

    def _health_problem(self, data: Any) -> Optional[str]:
        """A reason the provider is unusable although its health endpoint answered, or None.
        Used when the model is not checked (``check_model = false``). By default the answer
        must be an OpenAI-shaped model list (``{"data": [...]}``)."""
        return listing_problem(data)

    def _models_request(self, query: Optional[Dict[str, str]]) -> Optional[RequestSpec]:
        """The request for one page of the model listing: the first when ``query`` is None,
        else the page ``_models_page`` pointed to. None when the type has no listing."""
        if not self.MODELS_PATH:
            return None
        return RequestSpec(self.MODELS_PATH, method="GET", query=query)

    def _models_page(self, data: Any) -> Tuple[List[str], Optional[Dict[str, str]]]:
        """The ids on one page of the model listing, and the query of the next page (None
        after the last one)."""
        raise NotImplementedError

    def _serves(self, served: Sequence[str]) -> bool:
        """Whether the configured model is among the ``served`` ids (see ``_listing``)."""
        return listed(self.model, served)

    def _missing_model(self, served: Sequence[str]) -> str:
        return missing_reason(self.model, served)

    # -- the Provider protocol

    @property
    def has_api_key(self) -> bool:
        return self._api_key is not None

    def validate_config(self) -> None:
        """:raises ConfigError: when the provider cannot work as configured (no key, no model)."""
        if self.require_api_key and not self._api_key:
            raise ConfigError(f"{self._where}: {self._missing_key_reason()}")
        if not self.model:
            raise ConfigError(f"{self._where}: no model configured")

    def _missing_key_reason(self) -> str:
        if self._api_key_env_named:
            return (
                f"no API key: ${self.api_key_env} is not set (its config names it in api_key_env; "
                "set require_api_key = false if the server needs no key)"
            )
        if self._withheld_key_env:
            # A type with no default host (Azure) sends it only to the server its variable names.
            own = [urllib.parse.urlsplit(self.DEFAULT_BASE_URL).netloc] if self.DEFAULT_BASE_URL else []
            if self.BASE_URL_ENV:
                own.append(f"the server ${self.BASE_URL_ENV} names")
            return (
                f"no API key for {mask_url(self.base_url)}: ${self._withheld_key_env} is sent only to "
                f"{' or to '.join(own)}; set api_key_env (the variable holding this server's key) or api_key "
                "in its config, or require_api_key = false if the server needs no key"
            )
        if self.api_key_env:
            return f"no API key (set ${self.api_key_env}, or api_key_env / api_key in its config)"
        return "no API key (set api_key_env or api_key in its config)"

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

    def models(self, timeout: Optional[float] = None) -> List[str]:
        """The ids of the models the server serves, in the order it lists them (every page).

        :param timeout: deadline in seconds for the whole listing, every page and retry
            included (default: the provider's ``timeout``).
        :raises ProviderError: a subclass per failure, as for ``complete``.
        :raises ConfigError: for a bad ``timeout``, or a provider that cannot work as configured.
        """
        seconds = self._check_timeout(timeout) if timeout is not None else self.timeout
        self.validate_config()
        return self._list_models(Deadline(seconds), max_retries=None)

    def _list_models(self, deadline: Deadline, *, max_retries: Optional[int]) -> List[str]:
        def fetch(query: Dict[str, str]) -> Tuple[List[str], Optional[Dict[str, str]]]:
            request = self._models_request(query or None)  # {}: the first page
            if request is None:
                raise ConfigError(f"{self.TYPE} provider {self.name!r}: this provider type has no model listing")
            result = self._transport.request_json(
                request.method, request.target, body=request.body, deadline=deadline, max_retries=max_retries
            )
            with self._shape_errors(result.request_id):
                return self._models_page(result.data)

        return follow_pages(self.name, fetch, {})

    def health_check(self, timeout: Optional[float] = None) -> HealthStatus:
        """Check that the provider answers, accepts the credentials and serves the configured
        model (when its listing can say so and ``check_model`` is on); never raises.

        :param timeout: deadline in seconds (default 10 s, or the provider's timeout if lower).
        """
        started = time.monotonic()
        try:
            seconds = (
                self._check_timeout(timeout)
                if timeout is not None
                else min(self.timeout, DEFAULT_HEALTH_TIMEOUT)
            )
            self.validate_config()
            # One attempt: a health check reports the state now, it does not wait for recovery.
            deadline = Deadline(seconds)
            if self.check_model and self._models_request(None) is not None:
                served = self._list_models(deadline, max_retries=0)
                problem = None if self._serves(served) else self._missing_model(served)
            else:
                request = self._health_request()
                result = self._transport.request_json(
                    request.method, request.target, body=request.body, deadline=deadline, max_retries=0
                )
                with self._shape_errors(result.request_id):
                    problem = self._health_problem(result.data)
        except ConfigError as error:
            return HealthStatus(self.name, False, time.monotonic() - started, f"misconfigured: {error}")
        except ProviderError as error:
            return HealthStatus(self.name, False, time.monotonic() - started, self._health_reason(error))
        if problem:
            return HealthStatus(self.name, False, time.monotonic() - started, problem)
        return HealthStatus(self.name, True, time.monotonic() - started)

    def _health_reason(self, error: ProviderError) -> str:
        detail = str(error)
        if detail.startswith(f"{self.name}: "):
            detail = detail[len(self.name) + 2 :]
        if isinstance(error, ProviderTimeoutError):
            kind = "timeout"
        elif isinstance(error, ProviderConnectionError):
            kind = "unreachable"
        elif isinstance(error, AuthenticationError):
            kind = "unauthorised"
        elif isinstance(error, InvalidRequestError) and error.status_code == 404:
            kind = "not found"
        else:
            kind = "error"
        return f"{kind}: {detail}"

    def close(self) -> None:
        """Close the connection pool; the provider reopens one if it is used again."""
        self._transport.close()

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return (
            f"{type(self).__name__}(name={self.name!r}, model={self.model!r}, "
            f"base_url={mask_url(self.base_url)!r}, api_key={key})"
        )

    def describe(self) -> Dict[str, Any]:
        """Secret-free settings, for listings such as ``provider-kit providers``."""
        return {
            "name": self.name,
            "type": self.TYPE,
            "model": self.model,
            "base_url": mask_url(self.base_url),
            "api_key": "set" if self._api_key else "not set",
            "timeout": self.timeout,
            "max_retries": self.max_retries,
        }

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

    def _check_timeout(self, timeout: Any) -> float:
        return check_timeout(self.name, timeout)

    def _shape_errors(self, request_id: Optional[str], *, source: Any = None) -> ShapeErrors:
        return ShapeErrors(self.name, request_id, self._transport.redactor, source)


def base_url_host(url: str) -> Optional[str]:
    return urllib.parse.urlsplit(url).hostname


def url_is_loopback(url: str) -> bool:
    return is_loopback_host(base_url_host(url))


_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(url: str, other: str) -> bool:
    """True when both URLs have the same scheme, host and port (the port defaulted by scheme):
    a key meant for ``https://api.openai.com`` is not for ``http://api.openai.com``."""

    def origin(value: str) -> Tuple[str, str, Optional[int]]:
        parts = urllib.parse.urlsplit(value)
        scheme = parts.scheme.lower()
        try:
            port = parts.port
        except ValueError:  # not a number: no origin matches it
            return scheme, "", None
        return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)

    return bool(other) and origin(url) == origin(other)
