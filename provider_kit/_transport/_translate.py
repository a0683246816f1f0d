"""Every ``requests``/``urllib3``/socket exception as a ``provider_kit.errors`` error: a read
timeout however deeply wrapped (psf/requests#4882), a request that could not be built, a
refused or reset connection; and the context manager that translates around each read."""

from __future__ import annotations

import http.client
import socket
from typing import Any, Callable, Optional

import requests
import requests.exceptions
import urllib3.exceptions

from .._retry import Deadline
from .._secrets import Redactor
from ..errors import (
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    ResponseFormatError,
)

#: What the HTTP stack raises: ``requests``, ``urllib3``, ``http.client`` and socket errors.
FOREIGN_ERRORS = (
    requests.RequestException, urllib3.exceptions.HTTPError, OSError, http.client.HTTPException
)
#: requests' errors for a request that could not even be built (a bad URL, header or proxy
#: setting): a configuration problem, not an unreachable host, and never worth a retry.
_UNSENDABLE = (
    requests.exceptions.InvalidURL,  # InvalidProxyURL too
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
    requests.exceptions.InvalidJSONError,
)


def translate(provider: str, host: str, exc: BaseException, deadline: Deadline) -> Optional[ProviderError]:
    """The provider_kit error for a ``requests``/``urllib3``/socket exception, or None."""
    if isinstance(exc, ProviderError):
        return None
    if not isinstance(exc, FOREIGN_ERRORS):
        return None
    if deadline.expired() or is_read_timeout(exc):
        return timeout_error(provider, deadline)
    if isinstance(exc, _UNSENDABLE):
        # The type only: the message may quote a header value.
        return InvalidRequestError(
            f"{provider}: the request could not be built ({type(exc).__name__}); "
            "check base_url, headers and proxy settings",
            provider=provider,
        )
    if isinstance(exc, (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError)):
        return ResponseFormatError(
            f"{provider}: could not decode the response body", provider=provider
        )
    if isinstance(exc, requests.exceptions.SSLError):
        reason = "TLS handshake or certificate verification failed"
    elif caused_by(exc, socket.gaierror) or caused_by(exc, urllib3.exceptions.NameResolutionError):
        reason = "host name could not be resolved"
    elif caused_by(exc, ConnectionRefusedError):
        reason = "connection refused"
    elif caused_by(exc, urllib3.exceptions.ClosedPoolError):
        reason = "the provider was closed while this call was starting"
    elif isinstance(exc, requests.exceptions.ConnectTimeout):
        reason = "connect timed out"
    elif isinstance(
        exc,
        (
            requests.exceptions.ChunkedEncodingError,
            urllib3.exceptions.ProtocolError,
            http.client.IncompleteRead,
        ),
    ) or caused_by(exc, ConnectionResetError):
        reason = "connection closed or reset before the response was complete"
    else:
        reason = type(exc).__name__
    return ProviderConnectionError(
        f"{provider}: cannot reach {host}: {reason}", provider=provider
    )


def timeout_error(provider: str, deadline: Deadline) -> ProviderTimeoutError:
    return ProviderTimeoutError(
        f"{provider}: no complete answer within the {deadline.seconds:g} s deadline",
        provider=provider,
    )


class Translating:
    """Context manager turning foreign exceptions into provider_kit errors (``raise ... from``)."""

    __slots__ = ("deadline", "redactor", "translate")

    def __init__(
        self,
        translate: Callable[[BaseException, Deadline], Optional[ProviderError]],
        redactor: Redactor,
        deadline: Deadline,
    ) -> None:
        self.translate = translate
        self.redactor = redactor
        self.deadline = deadline

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        error = self.translate(exc, self.deadline) if exc is not None else None
        if error is not None:
            assert exc is not None
            self.redactor.reraise(error, exc)  # from None when the cause quotes the key


def is_read_timeout(exc: BaseException) -> bool:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    if isinstance(
        exc, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError, socket.timeout)
    ):
        return True
    # requests wraps a read timeout during body iteration in ConnectionError (psf/requests#4882).
    return caused_by(exc, urllib3.exceptions.ReadTimeoutError) or caused_by(exc, socket.timeout)


def caused_by(exc: BaseException, cls: type) -> bool:
    """True when ``exc`` or anything it wraps (args, cause, context, reason) is a ``cls``."""
    seen = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, cls):
            return True
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        stack.extend(item for item in linked if isinstance(item, BaseException))
    return False
