"""``Transport``: one provider's HTTP client. Sends a request within the call's deadline,
retries it as ``RetryPolicy`` allows, turns an error status into its ``provider_kit`` error
(message on one line, body kept) and decodes a JSON answer."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.parse
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, TypeVar

import requests

from .._error_bodies import body_request_id, error_message, header_request_id, one_line
from .._retry import (
    NON_RETRYABLE_429_MARKERS,
    RETRY_STATUSES,
    Deadline,
    RetryPolicy,
    parse_retry_after,
)
from .._secrets import Redactor, is_secret_name
from ..errors import (
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    error_for_status,
)
from ._body import StreamBody, content_length, iter_raw
from ._session import DEFAULT_POOL_MAXSIZE, HeaderAuth, check_headers, new_session
from ._translate import Translating, timeout_error, translate

logger = logging.getLogger("provider_kit")

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
#: Error bodies are only read for their message; anything longer is cut off.
MAX_ERROR_BODY_BYTES = 64 * 1024
#: One encoder for every request body: json.dumps() with options builds a new one per call.
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

_T = TypeVar("_T")


class HTTPResult:
    """A decoded non-streamed 2xx response."""

    __slots__ = ("data", "headers", "request_id", "status_code")

    def __init__(
        self, status_code: int, headers: Mapping[str, str], data: Any, request_id: Optional[str]
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.data = data
        self.request_id = request_id


class Transport:
    """One provider's HTTP client: a pooled ``requests.Session`` shared by every thread.

    Nothing per call is stored on ``self``, so one instance serves many threads at once. Proxy
    and CA-bundle settings from the environment are resolved once, when the pool is created,
    instead of on every request (``trust_env`` scans the environment and ``.netrc`` each time).
    Proxies are never used for loopback hosts: no proxy can reach the caller's own machine.
    Redirects are never followed: an API that answers 3xx is misconfigured, and following it
    would forward secrets or turn a POST into a GET.
    """

    #: A call's own headers and their credentials (set on a ``with_headers`` view only).
    _call_headers: Optional[Dict[str, str]] = None
    _call_auth: Optional[HeaderAuth] = None

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Optional[Mapping[str, str]] = None,
        secret_headers: Optional[Mapping[str, str]] = None,
        retry: Optional[RetryPolicy] = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        pool_maxsize: int = DEFAULT_POOL_MAXSIZE,
        error_detail: Optional[Callable[[int, str], Optional[str]]] = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self._secret_headers = dict(secret_headers or {})
        check_headers(provider, self.headers, secret=False)
        check_headers(provider, self._secret_headers, secret=True)
        self.retry = retry if retry is not None else RetryPolicy()
        self.max_response_bytes = max_response_bytes
        self.pool_maxsize = pool_maxsize
        #: The provider type's reading of an error body (status, masked body) -> message or None.
        self.error_detail = error_detail
        self._session: Optional[requests.Session] = None
        self._lock = threading.Lock()
        #: Hides the key headers' values and the base URL's password in any text.
        self.redactor = Redactor.for_request(self._secret_headers, self.base_url)
        #: Where requests go, for messages: host and port, never the URL's user and password.
        self.host = urllib.parse.urlsplit(self.base_url).netloc.rpartition("@")[2]

    def __repr__(self) -> str:
        return f"Transport(provider={self.provider!r}, base_url={self.redact(self.base_url)!r})"

    # -- pickling: the pool and its lock are rebuilt lazily in the new process
    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        state["_session"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def session(self) -> requests.Session:
        session = self._session
        if session is None:
            with self._lock:
                if self._session is None:
                    self._session = self._new_session()
                session = self._session
        return session

    def _new_session(self) -> requests.Session:
        return new_session(self.base_url, self.headers, self._secret_headers, self.pool_maxsize)

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def redact(self, text: str) -> str:
        """``text`` with every secret this transport holds replaced by ``***``."""
        return self.redactor.redact(text)

    def with_headers(self, headers: Mapping[str, str]) -> Transport:
        """This transport for one call that adds ``headers`` (already checked) to every
        request, sharing the connection pool. A header named like a credential is attached as
        the key is (``HeaderAuth``) and masked in every message, as the key is."""
        return _CallTransport(self, headers)

    # -- calls

    def request_json(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        deadline: Deadline,
        max_retries: Optional[int] = None,
        max_response_bytes: Optional[int] = None,
    ) -> HTTPResult:
        """Send a request and decode its JSON answer, retrying within ``deadline``.

        :param max_retries: overrides the policy's count (health checks make one attempt).
        :param max_response_bytes: overrides the body cap (an embeddings answer is large by
            nature, and its size is known from the request).
        :raises ProviderError: a subclass for each failure; see ``provider_kit.errors``.
        """
        url = f"{self.base_url}{path}"
        limit = self.max_response_bytes if max_response_bytes is None else max_response_bytes

        def attempt() -> Tuple[requests.Response, bytes]:
            # The body is read inside the attempt: a connection reset half-way through it is
            # as retryable as one before the headers (the SDKs read it inside their loop too).
            response = self._send_once(method, url, body, deadline)
            try:
                with self._translating(deadline):
                    return response, self._read_body(response, deadline, limit)
            finally:
                response.close()

        response, raw = self._with_retries(attempt, method, path, deadline, max_retries)
        request_id = header_request_id(response.headers)
        return HTTPResult(
            response.status_code, response.headers, self._decode_json(raw, request_id), request_id
        )

    def open_stream(
        self, method: str, path: str, *, body: Any = None, deadline: Deadline, max_retries: Optional[int] = None
    ) -> StreamBody:
        """Send a streaming request; retries happen only before the first byte of a 2xx body.

        :param max_retries: overrides the policy's count (a call's own ``max_retries``).
        """
        url = f"{self.base_url}{path}"
        response = self._with_retries(
            lambda: self._send_once(method, url, body, deadline), method, path, deadline, max_retries
        )
        return StreamBody(self, response, deadline)

    def _with_retries(
        self,
        attempt: Callable[[], _T],
        method: str,
        path: str,
        deadline: Deadline,
        max_retries: Optional[int],
    ) -> _T:
        """Run ``attempt`` until it succeeds, may not be retried, or the deadline forbids a wait."""
        allowed = self.retry.max_retries if max_retries is None else max_retries
        retries_done = 0
        while True:
            try:
                return attempt()
            except ProviderError as error:
                delay = self._retry_delay(error, retries_done, allowed)
                if delay is None:
                    raise
                if delay >= deadline.remaining():
                    logger.debug(
                        "%s: not retrying %s %s: waiting %.2f s would pass the deadline",
                        self.provider, method, path, delay,
                    )
                    raise
                retries_done += 1
                logger.debug(
                    "%s: %s; retrying %s %s in %.2f s (retry %d of %d)",
                    self.provider, type(error).__name__, method, path, delay,
                    retries_done, allowed,
                )
                time.sleep(delay)

    def _retry_delay(self, error: ProviderError, retries_done: int, allowed: int) -> Optional[float]:
        if retries_done >= allowed:
            return None
        should_retry = error.should_retry
        if should_retry is None:
            if isinstance(error, ProviderConnectionError):
                should_retry = True
            elif isinstance(error, RateLimitError):
                should_retry = error.retryable
            else:
                should_retry = error.status_code in RETRY_STATUSES
        if not should_retry:
            return None
        return self.retry.delay(retries_done, error.retry_after)

    def _send_once(self, method: str, url: str, body: Any, deadline: Deadline) -> requests.Response:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise self._timeout_error(deadline)
        session = self.session
        headers: Mapping[str, Any] = session.headers
        data = None
        if body is not None:
            data = _JSON_ENCODER.encode(body).encode("utf-8")
            headers = {**session.headers, "Content-Type": "application/json"}
        if self._call_headers is not None:
            headers = {**headers, **self._call_headers}
        # Session.request() re-merges every session setting and builds two cookie jars on each
        # call (~100 us, a sixth of a loopback call). Here those settings are fixed for the
        # session's life, so the request is prepared directly and sent with them. Cookies are
        # still sent and stored; auth still goes through HeaderAuth. What this skips, on
        # purpose: merge_environment_settings (new_session reads the environment's proxies and
        # CA bundle once, and trust_env is off) and session.hooks (a "response" hook added to
        # the session is not called; provider_kit adds none).
        prepared = requests.PreparedRequest()
        with self._translating(deadline):
            prepared.prepare(
                method=method,
                url=url,
                headers=headers,
                data=data,
                auth=self._call_auth or session.auth,
                cookies=session.cookies,
            )
            response = session.send(
                prepared,
                timeout=(remaining, remaining),
                stream=True,
                allow_redirects=False,
                proxies=session.proxies,
                verify=session.verify,
                cert=session.cert,
            )
        if response.status_code < 300:
            return response
        try:
            raise self._status_error(response, deadline)
        finally:
            response.close()

    def _status_error(self, response: requests.Response, deadline: Deadline) -> ProviderError:
        status = response.status_code
        request_id = header_request_id(response.headers)
        if 300 <= status < 400:
            location = self.redact(response.headers.get("location", "?"))
            return InvalidRequestError(
                f"{self.provider}: HTTP {status} redirect to {location} refused; "
                "set base_url to the address the API is served at",
                provider=self.provider,
                status_code=status,
                request_id=request_id,
            )
        try:
            with self._translating(deadline):
                raw = self._read_body(response, deadline, MAX_ERROR_BODY_BYTES, truncate=True)
        except ProviderTimeoutError:
            raise
        except ProviderError:
            raw = b""
        text = raw.decode("utf-8", "replace")
        body = self.redact(text)
        # One line, whatever the server wrote (LiteLLM's messages hold blank lines and
        # tracebacks); the body itself stays on the error for debugging.
        explained = self.error_detail(status, body) if self.error_detail and body else None
        detail = one_line(explained) if explained else error_message(body)
        detail = self.redact(detail or http.client.responses.get(status, "error"))
        if request_id is None:
            request_id = body_request_id(text)
        suffix = f"HTTP {status}" + (f", request id {request_id}" if request_id else "")
        retry_after = parse_retry_after(response.headers)
        error = error_for_status(
            status,
            f"{self.provider}: {detail} ({suffix})",
            provider=self.provider,
            request_id=request_id,
            retry_after=retry_after,
            retryable=not any(marker in text for marker in NON_RETRYABLE_429_MARKERS),
            body=body or None,
        )
        # The SDKs let the server overrule the status: x-should-retry: true/false.
        should_retry = response.headers.get("x-should-retry")
        if should_retry in ("true", "false"):
            error.should_retry = should_retry == "true"
        return error

    def _read_body(
        self,
        response: requests.Response,
        deadline: Deadline,
        limit: int,
        *,
        truncate: bool = False,
        read: Optional[Callable[[], bytes]] = None,
    ) -> bytes:
        if not truncate and content_length(response.headers) > limit:
            # Refused before reading a byte; closing the response drops the connection.
            raise self._too_large(response, limit)
        parts = []
        size = 0
        for chunk in iter_raw(response, deadline, read):
            size += len(chunk)
            if size > limit:
                if truncate:
                    parts.append(chunk[: limit - (size - len(chunk))])
                    break
                raise self._too_large(response, limit)
            parts.append(chunk)
        return b"".join(parts)

    def _too_large(self, response: requests.Response, limit: int) -> ResponseFormatError:
        return ResponseFormatError(
            f"{self.provider}: response body larger than {limit} bytes; refusing to read it",
            provider=self.provider,
            status_code=response.status_code,
            request_id=header_request_id(response.headers),
        )

    def _decode_json(self, raw: bytes, request_id: Optional[str]) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            excerpt = self.redact(raw[:4096].decode("utf-8", "replace"))[:120]  # mask, then cut
            what = "an empty body" if not raw.strip() else f"not JSON: {excerpt!r}"
            raise ResponseFormatError(
                f"{self.provider}: expected a JSON response, got {what}",
                provider=self.provider,
                request_id=request_id,
            ) from None

    def _timeout_error(self, deadline: Deadline) -> ProviderTimeoutError:
        return timeout_error(self.provider, deadline)

    def _translating(self, deadline: Deadline) -> Translating:
        return Translating(self.translate, self.redactor, deadline)

    def translate(self, exc: BaseException, deadline: Deadline) -> Optional[ProviderError]:
        """The provider_kit error for a ``requests``/``urllib3``/socket exception, or None."""
        return translate(self.provider, self.host, exc, deadline)


class _CallTransport(Transport):
    """A ``Transport`` for one call with headers of its own (``Transport.with_headers``): the
    same pool, settings and policy as the provider's, which it never closes."""

    def __init__(self, parent: Transport, headers: Mapping[str, str]) -> None:
        self.__dict__.update(parent.__dict__)
        self._parent = parent
        secret = {name: value for name, value in headers.items() if is_secret_name(name)}
        self._call_headers = {name: value for name, value in headers.items() if name not in secret}
        if secret:
            secrets = {**parent._secret_headers, **secret}
            self._secret_headers = secrets
            self._call_auth = HeaderAuth(secrets)
            self.redactor = Redactor.for_request(secrets, self.base_url)

    @property
    def session(self) -> requests.Session:
        return self._parent.session

    def close(self) -> None:
        """Nothing: the pool is the provider's."""
