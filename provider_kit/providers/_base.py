"""What every HTTP provider shares: settings and their precedence, the call flow, health checks.

A provider subclass only describes its protocol: how to build the request body, how to read
a response, a stream event and the health answer. Settings resolve as call argument >
provider config > environment > built-in default, and ``None`` always means "inherit".
"""

from __future__ import annotations

import itertools
import json
import os
import time
import urllib.parse
from typing import (
    Any,
    Callable,
    ClassVar,
    Dict,
    Generator,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
)

from .._call_args import check_call_args, check_timeout
from .._error_bodies import error_message
from .._retry import Deadline, RetryPolicy
from .._streaming import DEFAULT_MAX_LINE_BYTES, iter_ndjson, iter_sse, looks_like_stream, stream_body_kind
from .._transport import StreamBody, Transport, is_loopback_host
from ..config import (
    as_bool,
    as_env_name,
    as_non_negative_int,
    as_positive_int,
    as_positive_number,
    as_str,
    as_str_dict,
    as_url,
    check_options,
    is_secret_name,
    mask_url,
)
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
    Message,
    MessagesInput,
    StreamChunk,
    Usage,
)

# EXCERPT_WINDOW, StreamState and error_from_event are also imported from here by each protocol.
from ._answers import EXCERPT_WINDOW as EXCERPT_WINDOW
from ._answers import EventBudget, ShapeErrors, StreamState, shorten
from ._answers import error_from_event as error_from_event
from ._listing import follow_pages, listed, missing_reason

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
Validator = Callable[[Any], Any]


class HTTPProvider:
    """Base class of the built-in providers; a plain class satisfying ``provider_kit.Provider``.

    One instance holds one connection pool and may be shared by any number of threads.
    """

    #: The ``type`` name used in configuration files.
    TYPE: ClassVar[str] = ""
    DEFAULT_BASE_URL: ClassVar[str] = ""
    #: Environment variable read for ``base_url`` when the config sets none.
    BASE_URL_ENV: ClassVar[Optional[str]] = None
    #: The type's conventional key variable, read when the config names no key of its own, and
    #: only for a server of this type's own: ``DEFAULT_BASE_URL``'s origin, or the server
    #: ``BASE_URL_ENV`` names. Any other ``base_url`` gets ``api_key`` / ``api_key_env`` only.
    API_KEY_ENV: ClassVar[Optional[str]] = None
    DEFAULT_MODEL: ClassVar[str] = ""
    COMPLETE_PATH: ClassVar[str] = ""
    HEALTH_PATH: ClassVar[str] = ""
    #: The model listing (GET); its first page is also the health check's request.
    MODELS_PATH: ClassVar[str] = ""
    #: "sse" or "ndjson".
    STREAM_FORMAT: ClassVar[str] = "sse"
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
        where = f"{self.TYPE} provider {self.name!r}"
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
        self.check_model: bool = options.get("check_model", True)
        self._configure(options)
        # An extra header named like a credential (Azure's "api-key", a hand-set
        # "Authorization") is treated as one: attached by HeaderAuth and redacted from errors.
        secret_extra = {k: v for k, v in self.extra_headers.items() if is_secret_name(k)}
        plain_extra = {k: v for k, v in self.extra_headers.items() if k not in secret_extra}
        self._transport = Transport(
            provider=self.name,
            base_url=self.base_url,
            headers={**self._protocol_headers(), **plain_extra},
            secret_headers={
                **secret_extra,
                **(self._auth_headers(self._api_key) if self._api_key else {}),
            },
            retry=RetryPolicy(self.max_retries),
            **{key: options[key] for key in ("max_response_bytes",) if key in options},
        )

    # -- construction hooks

    @classmethod
    def option_schema(cls) -> Dict[str, Validator]:
        return {**cls.COMMON_OPTIONS, **cls.EXTRA_OPTIONS}

    @classmethod
    def from_config(cls: type[_P], name: str, options: Mapping[str, Any], *, where: str) -> _P:
        """Build a provider from a config table (``where`` names it in error messages).

        :raises ConfigError: for an unknown key or a value of the wrong type or range.
        """
        checked = check_options(options, cls.option_schema(), where=where)
        return cls(name, **checked)

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
        yes, except for a server on a loopback address (a local vLLM, LM Studio, llama.cpp)."""
        return not url_is_loopback(self.base_url)

    def _protocol_headers(self) -> Dict[str, str]:
        return {}

    def _auth_headers(self, api_key: str) -> Dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    # -- protocol hooks

    def _completion_body(
        self,
        messages: List[Message],
        model: str,
        max_tokens: Optional[int],
        temperature: Optional[float],
        stop: Optional[List[str]],
        stream: bool,
    ) -> Dict[str, Any]:
        raise NotImplementedError

    def _parse_completion(self, data: Any) -> Tuple[str, Optional[str], Optional[str], Usage]:
        """(text, model, normalised finish reason, usage) from a completion body."""
        raise NotImplementedError

    def _new_stream_state(self) -> StreamState:
        raise NotImplementedError

    def _health_problem(self, data: Any) -> Optional[str]:
        """A reason the provider is unusable although its health endpoint answered, or None.
        Used when the model is not checked (``check_model = false``)."""
        return None

    def _models_query(self) -> Dict[str, str]:
        """The query string of the listing's first page."""
        return {}

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
        where = f"{self.TYPE} provider {self.name!r}"
        if self.require_api_key and not self._api_key:
            raise ConfigError(f"{where}: {self._missing_key_reason()}")
        if not self.model:
            raise ConfigError(f"{where}: no model configured")

    def _missing_key_reason(self) -> str:
        if self._api_key_env_named:
            return (
                f"no API key: ${self.api_key_env} is not set (its config names it in api_key_env; "
                "set require_api_key = false if the server needs no key)"
            )
        if self._withheld_key_env:
            own = urllib.parse.urlsplit(self.DEFAULT_BASE_URL).netloc
            also = f" or to the server ${self.BASE_URL_ENV} names" if self.BASE_URL_ENV else ""
            return (
                f"no API key for {mask_url(self.base_url)}: ${self._withheld_key_env} is sent only to "
                f"{own}{also}; set api_key_env (the variable holding this server's key) or api_key "
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
        body, deadline = self._prepare(
            prompt_or_messages, model, system, max_tokens, temperature, stop, timeout, stream=False
        )
        result = self._transport.request_json("POST", self.COMPLETE_PATH, body=body, deadline=deadline)
        with self._shape_errors(result.request_id, source=result.data):
            text, answered_model, finish_reason, usage = self._parse_completion(result.data)
        return Completion(
            text=text,
            model=answered_model or body.get("model"),
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
        body, deadline = self._prepare(
            prompt_or_messages, model, system, max_tokens, temperature, stop, timeout, stream=True
        )
        return self._iter_stream(body, deadline)

    def _iter_stream(
        self, body: Dict[str, Any], deadline: Deadline
    ) -> Generator[StreamChunk, None, None]:
        stream_body = self._transport.open_stream("POST", self.COMPLETE_PATH, body=body, deadline=deadline)
        with stream_body:
            source, whole_answer = self._stream_source(stream_body)
            if whole_answer is not None:
                yield from whole_answer
                return
            decode = iter_sse if self.STREAM_FORMAT == "sse" else iter_ndjson
            state = self._new_stream_state()
            budget = EventBudget(source, MAX_EVENT_BYTES)
            events = decode(budget)
            while not state.done:
                try:
                    event = next(events)
                except StopIteration:
                    break
                except ResponseFormatError as error:
                    new_error = self._stream_format_error(str(error), stream_body.request_id)
                    if self._transport.redact(str(error)) != str(error):
                        raise new_error from None  # the original quotes the key
                    raise new_error from error
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
        kind = stream_body_kind(stream_body.content_type, self.STREAM_FORMAT)
        if kind == "stream":
            return stream_body, None
        if kind == "json":
            raw = stream_body.read_all()
            try:
                data = json.loads(raw)
            except (ValueError, RecursionError):
                if self.STREAM_FORMAT == "ndjson":
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
        if looks_like_stream(head, self.STREAM_FORMAT):
            return itertools.chain((head,), chunks), None
        raise self._unexpected_answer(stream_body, head, "")

    def _unexpected_answer(self, stream_body: StreamBody, raw: bytes, what: str) -> ResponseFormatError:
        expected = "an event stream" if self.STREAM_FORMAT == "sse" else "NDJSON lines"
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
            path = self.MODELS_PATH + (f"?{urllib.parse.urlencode(query)}" if query else "")
            result = self._transport.request_json("GET", path, deadline=deadline, max_retries=max_retries)
            with self._shape_errors(result.request_id):
                return self._models_page(result.data)

        return follow_pages(self.name, fetch, self._models_query())

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
            if self.check_model and self.MODELS_PATH:
                served = self._list_models(deadline, max_retries=0)
                problem = None if self._serves(served) else self._missing_model(served)
            else:
                result = self._transport.request_json(
                    "GET", self.HEALTH_PATH, deadline=deadline, max_retries=0
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
    ) -> Tuple[Dict[str, Any], Deadline]:
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
        body = self._completion_body(
            args.messages, args.model or self.model, args.max_tokens, args.temperature, args.stop, stream
        )
        return body, Deadline(args.timeout if args.timeout is not None else self.timeout)

    def _check_timeout(self, timeout: Any) -> float:
        return check_timeout(self.name, timeout)

    def _shape_errors(self, request_id: Optional[str], *, source: Any = None) -> ShapeErrors:
        return ShapeErrors(self.name, request_id, self._transport.redact, source)


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
