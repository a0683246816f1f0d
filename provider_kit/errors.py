"""The exception hierarchy of provider_kit; this module imports nothing from the package.

::

    ProviderKitError
    ├── ConfigError                  bad configuration or bad arguments to the library
    │   ├── NoProvidersError         no provider could be registered
    │   └── UnsupportedFeatureError  this provider type cannot do what the call asks (another may)
    ├── UnknownProviderError         (also KeyError) a name the registry does not hold
    ├── ExecutorError                map(executor=...) got no answer back for a prompt (.sent)
    ├── ToolLoopError                run_tools stopped before the model's answer (.messages)
    │   ├── MaxTurnsExceededError    the model still called tools after max_turns calls
    │   └── ToolLoopTimeoutError     (also TimeoutError) the loop's deadline passed in a tool
    └── ProviderError                a provider call failed (.provider, .status_code, .request_id)
        ├── AuthenticationError      401, 403 (and 402 billing: a retry cannot fix it)
        ├── RateLimitError           429 (.retry_after, .retryable)
        ├── InvalidRequestError      400, 404, 413, 422, and other 4xx
        ├── ServerError              5xx, 529, 408, 409, a mid-stream overload
        ├── ProviderTimeoutError     (also TimeoutError) the call's deadline passed
        ├── ProviderConnectionError  (also ConnectionError) no usable connection
        └── ResponseFormatError      a 2xx body or stream that cannot be parsed

    UserWarning
    ├── CallLogWarning               the call log could not be written (.path)
    ├── ProviderSkippedWarning       a configured provider was skipped (.provider, .reason)
    └── ResponseCacheWarning         the response cache cannot be used now; calls go on (.path)

    KeyboardInterrupt
    └── MapInterrupted               Ctrl-C stopped registry.map (.results: the answers so far)

``message`` is the only positional argument of every class and the extras are keyword
attributes, so every error pickles and copies without extra code.

A message quoted from a server is squashed to one line (``_error_bodies.one_line``): proxies
such as LiteLLM put blank lines and indented tracebacks in theirs, and ``str(error)`` is printed
as one line by the command line and kept in circuit states. The body stays in ``error.body``.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple, Type

__all__ = [
    "AuthenticationError",
    "CallLogWarning",
    "ConfigError",
    "ExecutorError",
    "InvalidRequestError",
    "MaxTurnsExceededError",
    "NoProvidersError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderKitError",
    "ProviderSkippedWarning",
    "ResponseCacheWarning",
    "MapInterrupted",
    "ProviderTimeoutError",
    "RateLimitError",
    "ResponseFormatError",
    "ServerError",
    "ToolLoopError",
    "ToolLoopTimeoutError",
    "UnknownProviderError",
    "UnsupportedFeatureError",
    "error_for_status",
]


class ProviderKitError(Exception):
    """Base class of every error raised by provider_kit."""


class ConfigError(ProviderKitError):
    """The configuration (a file, a dict, the environment or an argument) is invalid."""


class NoProvidersError(ConfigError):
    """No provider could be registered; the message lists every reason."""


class UnsupportedFeatureError(ConfigError):
    """The provider cannot send what the call asks (an image, a schema mode, a reasoning level,
    ``seed``...); nothing was sent. Registry fallbacks go on to the next provider, which may."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        #: Through the registry, when no candidate could take the call: each one's refusal.
        self.errors: List[ProviderKitError] = []


class UnknownProviderError(ProviderKitError, KeyError):
    """The registry holds no provider of that name."""

    def __str__(self) -> str:
        # KeyError.__str__ quotes its argument; a message should read as a sentence.
        return str(self.args[0]) if self.args else ""


class ExecutorError(ProviderKitError):
    """``registry.map(..., executor=...)`` got no answer back for a prompt: its worker died,
    or the executor broke or was shut down. ``sent`` is True when the prompt was handed to the
    executor (it may have reached the provider, and been billed), False when it never was."""

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class ToolLoopError(ProviderKitError):
    """``run_tools`` stopped before the model gave its answer. ``messages`` is the exchange so
    far (a tuple of messages: the prompt, each assistant turn and the tool results sent)."""

    def __init__(self, message: str, *, messages: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.messages: Tuple[Any, ...] = tuple(messages)


class MaxTurnsExceededError(ToolLoopError):
    """The model still asked for tools after ``max_turns`` calls. ``messages`` ends with the
    results of its last calls, so ``run_tools(target, error.messages, ...)`` carries on."""


class ToolLoopTimeoutError(ToolLoopError, TimeoutError):
    """The ``timeout`` of ``run_tools`` passed while tools ran (or before the next model call);
    a tool still running is abandoned, not waited for. ``messages`` ends with the assistant turn
    whose calls were not all answered. (A model call that runs out of the remaining time raises
    the provider's ``ProviderTimeoutError``, also a ``TimeoutError``.)"""


class ProviderSkippedWarning(UserWarning):
    """A configured provider was skipped because something it needs is absent (a key variable
    that is not set, a plugin that is not installed); ``reason`` says what.

    Issued by ``ProviderRegistry.from_config`` besides the ``provider_kit`` log record, so that
    a script or a notebook shows the skip without any logging set up.
    """

    def __init__(self, message: str, *, provider: Optional[str] = None, reason: Optional[str] = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.reason = reason


class ResponseCacheWarning(UserWarning):
    """The response cache could not be read or written (a locked, read-only or corrupt file);
    the call went to the provider. Issued once per cache and kind of problem; ``path`` is the
    cache file."""

    def __init__(self, message: str, *, path: Optional[str] = None) -> None:
        super().__init__(message)
        self.path = path


class MapInterrupted(KeyboardInterrupt):
    """Ctrl-C (or another ``KeyboardInterrupt``) stopped ``registry.map``.

    A ``KeyboardInterrupt``, so that code that stops on Ctrl-C still stops; it carries what the
    batch had when it stopped. ``results`` is in input order: a ``Completion``, the exception
    of a prompt that failed, or None for a prompt with no answer yet. ``done`` counts the
    prompts with a result. Prompts not started were cancelled; calls in flight finish in the
    background within their deadlines (and, with a response cache, store their answers there:
    the same ``map`` run again sends only the prompts still unanswered).
    """

    def __init__(self, message: str = "map interrupted", *, results: Optional[List[Any]] = None) -> None:
        super().__init__(message)
        self.results: List[Any] = list(results) if results is not None else []

    @property
    def done(self) -> int:
        """How many prompts have a result (an answer or an error)."""
        return sum(result is not None for result in self.results)

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_rebuild_map_interrupted, (str(self), self.results))


def _rebuild_map_interrupted(message: str, results: List[Any]) -> MapInterrupted:
    return MapInterrupted(message, results=results)


class ProviderError(ProviderKitError):
    """A call to a provider failed.

    ``retry_after`` is the wait in seconds the server asked for (``Retry-After`` or
    ``retry-after-ms``, on a 429 or a 503 say), or None. ``body`` is the error body as the
    server sent it (at most 64 KiB, secrets masked), for debugging; the message quotes only its
    gist, on one line. None when there was no body.
    """

    #: The server's ``x-should-retry`` verdict, which overrules the status; None when absent.
    should_retry: Optional[bool] = None

    def __init__(
        self,
        message: str,
        *,
        provider: Optional[str] = None,
        status_code: Optional[int] = None,
        request_id: Optional[str] = None,
        retry_after: Optional[float] = None,
        body: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body
        #: With fallbacks, every failure in the order tried (this one last), a provider's
        #: ``UnsupportedFeatureError`` included; else empty.
        self.errors: List[ProviderKitError] = []

    def __repr__(self) -> str:
        extras = "".join(
            f", {key}={value!r}"
            for key, value in (
                ("provider", self.provider),
                ("status_code", self.status_code),
                ("request_id", self.request_id),
            )
            if value is not None
        )
        return f"{type(self).__name__}({self.message!r}{extras})"


class AuthenticationError(ProviderError):
    """The provider refused the credentials (401, 403) or the account (402)."""


class RateLimitError(ProviderError):
    """The provider answered 429.

    ``retryable`` is False when the body says waiting cannot help (an exhausted quota or a
    spend cap); such an error is never retried.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: Optional[str] = None,
        status_code: Optional[int] = 429,
        request_id: Optional[str] = None,
        retry_after: Optional[float] = None,
        retryable: bool = True,
        body: Optional[str] = None,
    ) -> None:
        super().__init__(
            message,
            provider=provider,
            status_code=status_code,
            request_id=request_id,
            retry_after=retry_after,
            body=body,
        )
        self.retryable = retryable


class InvalidRequestError(ProviderError):
    """This provider refuses the request as sent (400, 404, 413, 422): a retry won't help, another
    provider may accept it (a longer context, a model this one does not serve)."""


class ServerError(ProviderError):
    """The provider failed or is overloaded (5xx, 529); a retry may succeed."""


class ProviderTimeoutError(ProviderError, TimeoutError):
    """The call's deadline passed before the provider answered."""


class ProviderConnectionError(ProviderError, ConnectionError):
    """No connection could be made or kept (refused, reset, DNS failure, redirect refused)."""


class ResponseFormatError(ProviderError):
    """A successful (2xx) body or stream that cannot be parsed, or that ended early; or, for a
    call with ``schema=`` / ``json=True``, a reply that is not the JSON asked for (then
    ``body`` is the reply's text and ``finish_reason`` its finish reason)."""

    #: The reply's finish reason, for a structured-output reply that could not be used.
    finish_reason: Optional[str] = None


def error_for_status(
    status_code: int,
    message: str,
    *,
    provider: Optional[str] = None,
    request_id: Optional[str] = None,
    retry_after: Optional[float] = None,
    retryable: bool = True,
    body: Optional[str] = None,
) -> ProviderError:
    """Return the error for an HTTP status: the one status-to-class table of provider_kit."""
    if status_code == 429:
        return RateLimitError(
            message,
            provider=provider,
            status_code=status_code,
            request_id=request_id,
            retry_after=retry_after,
            retryable=retryable,
            body=body,
        )
    cls: Type[ProviderError]
    if status_code in (401, 402, 403):
        cls = AuthenticationError
    elif status_code in (408, 409) or status_code >= 500:
        cls = ServerError
    elif 400 <= status_code < 500:
        cls = InvalidRequestError
    else:
        # A 1xx/3xx that reached here was not followed: a protocol surprise, not success.
        cls = ResponseFormatError
    return cls(
        message,
        provider=provider,
        status_code=status_code,
        request_id=request_id,
        retry_after=retry_after,
        body=body,
    )


class CallLogWarning(UserWarning):
    """The call log could not be written (a locked, read-only or corrupt file, a directory
    that cannot be made); the call itself went on. Issued once per log; ``path`` is its file."""

    def __init__(self, message: str, *, path: Optional[str] = None) -> None:
        super().__init__(message)
        self.path = path
