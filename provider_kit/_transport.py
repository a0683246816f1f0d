"""The one module that talks HTTP: a connection pool per provider, deadlines, retries, errors.

It owns everything provider-independent about a call: credentials (attached so that ``.netrc``
cannot replace them and never sent across a redirect), a *deadline* for the whole call (requests'
own ``timeout`` only limits each socket read, psf/requests#1928), the retry loop with
``Retry-After`` handling, the translation of every ``requests``/``urllib3`` exception into
``provider_kit.errors``, and reading bodies as soon as bytes arrive. It knows nothing of any
provider's JSON shapes.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import logging
import os
import re
import socket
import threading
import time
import urllib.parse
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, TypeVar

import requests
import requests.adapters
import requests.auth
import requests.utils
import urllib3.exceptions

from ._error_bodies import body_request_id, error_message, header_request_id
from ._retry import (
    NON_RETRYABLE_429_MARKERS,
    RETRY_STATUSES,
    Deadline,
    RetryPolicy,
    parse_retry_after,
)
from ._version import __version__
from .errors import (
    ConfigError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    error_for_status,
)

logger = logging.getLogger("provider_kit")

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
#: Error bodies are only read for their message; anything longer is cut off.
MAX_ERROR_BODY_BYTES = 64 * 1024
DEFAULT_POOL_MAXSIZE = 32
READ_SIZE = 65536
#: One encoder for every request body: json.dumps() with options builds a new one per call.
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
USER_AGENT = f"provider_kit/{__version__}"
#: After a stream's end marker, at most this much more body and this long a wait are spent
#: reading to the end of the body so that its connection can be reused; beyond that it is closed.
DRAIN_MAX_BYTES = 64 * 1024
DRAIN_MAX_SECONDS = 0.05

_T = TypeVar("_T")

# requests' own rules for header names and values (requests/_internal_utils.py). Checked once,
# when the transport is built: at send time a bad value would surface as a confusing error, and
# for a credential attached by ``HeaderAuth`` as a ValueError quoting the key.
# Used with fullmatch: a "$" would also match before a trailing newline, the very typo to catch.
_VALID_HEADER_NAME = re.compile(r"[^:\s][^:\r\n]*")
_VALID_HEADER_VALUE = re.compile(r"(\S[^\r\n]*)?")
#: What the HTTP stack raises: ``requests``, ``urllib3``, ``http.client`` and socket errors.
_FOREIGN_ERRORS = (
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


class HeaderAuth(requests.auth.AuthBase):
    """Attaches secret headers to each request.

    Credentials set as an ``auth`` object, not as session headers, cannot be replaced by a
    ``~/.netrc`` entry (psf/requests#3929).
    """

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self._headers)
        return request

    def __repr__(self) -> str:
        return f"HeaderAuth({sorted(self._headers)!r})"


class _ClosingAdapter(requests.adapters.HTTPAdapter):
    """An adapter whose ``close()`` closes every pooled connection, at once.

    urllib3 2's ``PoolManager.clear()`` only forgets its pools (urllib3/urllib3#2661): their
    idle sockets close when a pool is garbage collected. A failed request keeps its pool
    alive: the traceback of a dropped connection or an error status holds the pool in a frame,
    often inside a reference cycle, so after faults ``Session.close()`` left every idle socket
    open until the garbage collector ran. Closing each pool empties it now; a connection still
    out (a call running in another thread) is closed when it comes back to the closed pool.
    """

    def close(self) -> None:
        managers = [self.poolmanager, *self.proxy_manager.values()]
        pools = [pool for manager in managers for pool in _pools_of(manager)]
        super().close()
        for pool in pools:
            pool.close()


def _pools_of(manager: Any) -> List[Any]:
    container = manager.pools
    pools = []
    # keys() returns a copy taken under the container's lock; iterating it directly raises.
    for key in container.keys():  # noqa: SIM118
        pool = container.get(key)  # None when another thread evicted it meanwhile
        if pool is not None:
            pools.append(pool)
    return pools


def is_loopback_host(host: Optional[str]) -> bool:
    """True for localhost, 127.0.0.0/8, ::1 and 0.0.0.0 (a server bound to all interfaces)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


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
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self._secret_headers = dict(secret_headers or {})
        _check_headers(provider, self.headers, secret=False)
        _check_headers(provider, self._secret_headers, secret=True)
        self.retry = retry if retry is not None else RetryPolicy()
        self.max_response_bytes = max_response_bytes
        self.pool_maxsize = pool_maxsize
        self._session: Optional[requests.Session] = None
        self._lock = threading.Lock()
        self._secrets = tuple(v for v in self._secret_headers.values() if len(v) >= 4)
        # Also hide the bare key inside a "Bearer <key>" value.
        self._secrets += tuple(
            v.split(" ", 1)[1] for v in self._secrets if " " in v and len(v.split(" ", 1)[1]) >= 4
        )
        # And the password of a base URL such as http://user:password@gateway/v1.
        password = _url_password(self.base_url)
        if password is not None and len(password) >= 4:
            self._secrets += tuple(dict.fromkeys((password, urllib.parse.unquote(password))))
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
        session = requests.Session()
        session.trust_env = False
        adapter = _ClosingAdapter(pool_connections=1, pool_maxsize=self.pool_maxsize, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        session.headers.update(self.headers)
        if self._secret_headers:
            session.auth = HeaderAuth(self._secret_headers)
        host = urllib.parse.urlsplit(self.base_url).hostname
        if not is_loopback_host(host):
            session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
        return session

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def redact(self, text: str) -> str:
        """``text`` with every secret this transport holds replaced by ``***``."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    # -- calls

    def request_json(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        deadline: Deadline,
        max_retries: Optional[int] = None,
    ) -> HTTPResult:
        """Send a request and decode its JSON answer, retrying within ``deadline``.

        :param max_retries: overrides the policy's count (health checks make one attempt).
        :raises ProviderError: a subclass for each failure; see ``provider_kit.errors``.
        """
        url = f"{self.base_url}{path}"

        def attempt() -> Tuple[requests.Response, bytes]:
            # The body is read inside the attempt: a connection reset half-way through it is
            # as retryable as one before the headers (the SDKs read it inside their loop too).
            response = self._send_once(method, url, body, deadline)
            try:
                with self._translating(deadline):
                    return response, self._read_body(response, deadline, self.max_response_bytes)
            finally:
                response.close()

        response, raw = self._with_retries(attempt, method, path, deadline, max_retries)
        request_id = _request_id(response.headers)
        return HTTPResult(
            response.status_code, response.headers, self._decode_json(raw, request_id), request_id
        )

    def open_stream(
        self, method: str, path: str, *, body: Any = None, deadline: Deadline
    ) -> StreamBody:
        """Send a streaming request; retries happen only before the first byte of a 2xx body."""
        url = f"{self.base_url}{path}"
        response = self._with_retries(
            lambda: self._send_once(method, url, body, deadline), method, path, deadline, None
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
        # Session.request() re-merges every session setting and builds two cookie jars on each
        # call (~100 us, a sixth of a loopback call). Here those settings are fixed for the
        # session's life, so the request is prepared directly and sent with them. Cookies are
        # still sent and stored; auth still goes through HeaderAuth.
        prepared = requests.PreparedRequest()
        with self._translating(deadline):
            prepared.prepare(
                method=method,
                url=url,
                headers=headers,
                data=data,
                auth=session.auth,
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
        request_id = _request_id(response.headers)
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
        detail = self.redact(error_message(body) or http.client.responses.get(status, "error"))
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
        self, response: requests.Response, deadline: Deadline, limit: int, *, truncate: bool = False
    ) -> bytes:
        if not truncate and _content_length(response.headers) > limit:
            # Refused before reading a byte; closing the response drops the connection.
            raise self._too_large(response, limit)
        parts = []
        size = 0
        for chunk in iter_raw(response, deadline):
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
            request_id=_request_id(response.headers),
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
        return ProviderTimeoutError(
            f"{self.provider}: no complete answer within the {deadline.seconds:g} s deadline",
            provider=self.provider,
        )

    def _translating(self, deadline: Deadline) -> _Translating:
        return _Translating(self, deadline)

    def translate(self, exc: BaseException, deadline: Deadline) -> Optional[ProviderError]:
        """The provider_kit error for a ``requests``/``urllib3``/socket exception, or None."""
        if isinstance(exc, ProviderError):
            return None
        if not isinstance(exc, _FOREIGN_ERRORS):
            return None
        host = self.host
        if deadline.expired() or _is_read_timeout(exc):
            return self._timeout_error(deadline)
        if isinstance(exc, _UNSENDABLE):
            # The type only: the message may quote a header value.
            return InvalidRequestError(
                f"{self.provider}: the request could not be built ({type(exc).__name__}); "
                "check base_url, headers and proxy settings",
                provider=self.provider,
            )
        if isinstance(exc, (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError)):
            return ResponseFormatError(
                f"{self.provider}: could not decode the response body", provider=self.provider
            )
        if isinstance(exc, requests.exceptions.SSLError):
            reason = "TLS handshake or certificate verification failed"
        elif _caused_by(exc, socket.gaierror) or _caused_by(exc, urllib3.exceptions.NameResolutionError):
            reason = "host name could not be resolved"
        elif _caused_by(exc, ConnectionRefusedError):
            reason = "connection refused"
        elif _caused_by(exc, urllib3.exceptions.ClosedPoolError):
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
        ) or _caused_by(exc, ConnectionResetError):
            reason = "connection closed or reset before the response was complete"
        else:
            reason = type(exc).__name__
        return ProviderConnectionError(
            f"{self.provider}: cannot reach {host}: {reason}", provider=self.provider
        )


class _Translating:
    """Context manager turning foreign exceptions into provider_kit errors (``raise ... from``)."""

    __slots__ = ("deadline", "transport")

    def __init__(self, transport: Transport, deadline: Deadline) -> None:
        self.transport = transport
        self.deadline = deadline

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        error = self.transport.translate(exc, self.deadline) if exc is not None else None
        if error is not None:
            if self.transport.redact(str(exc)) != str(exc):
                raise error from None  # a traceback must not print the key either
            raise error from exc


class StreamBody:
    """The body of a streaming 2xx response, read as bytes arrive, within a gap deadline.

    The deadline limits the wait for each piece; the consumer calls ``deadline.restart()``
    whenever a whole event has arrived, so it bounds the first event and every gap between
    events rather than the whole stream.
    """

    def __init__(self, transport: Transport, response: requests.Response, deadline: Deadline) -> None:
        self.transport = transport
        self.response = response
        self.deadline = deadline
        self.request_id = _request_id(response.headers)

    def __iter__(self) -> Iterator[bytes]:
        with self.transport._translating(self.deadline):
            yield from iter_raw(self.response, self.deadline)

    @property
    def content_type(self) -> str:
        """The media type, lower case and without parameters; "" when the server sent none."""
        return self.response.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    def read_all(self) -> bytes:
        """The rest of the body, for a server that answered a stream request with a whole
        document; bounded by the transport's ``max_response_bytes``.

        :raises ResponseFormatError: for a longer body.
        """
        transport = self.transport
        with transport._translating(self.deadline):
            return transport._read_body(self.response, self.deadline, transport.max_response_bytes)

    def close(self) -> None:
        self.response.close()

    def drain(self) -> None:
        """Read the little that follows a stream's end marker (such as a chunked body's last,
        empty chunk) so the connection goes back to the pool; closing a response with unread
        bytes would discard its connection. Gives up quietly past a small size or wait."""
        limit = Deadline(min(DRAIN_MAX_SECONDS, max(self.deadline.remaining(), 0.0)))
        size = 0
        try:
            for chunk in iter_raw(self.response, limit):
                size += len(chunk)
                if size > DRAIN_MAX_BYTES:
                    return
        except _FOREIGN_ERRORS:
            return  # the connection is unusable; close() discards it

    def __enter__(self) -> StreamBody:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        # Only a stream read to its end marker is drained: one abandoned half-way (an
        # exception, or GeneratorExit from a consumer that stopped early) may be long.
        if exc_type is None:
            self.drain()
        self.close()


def iter_raw(response: requests.Response, deadline: Deadline) -> Iterator[bytes]:
    """Yield body bytes as soon as they arrive, never reading past ``deadline``.

    ``raw.read1`` returns whatever is available, where ``iter_content`` waits for a full buffer
    on a close-delimited body. Before each read the socket's timeout is cut to the time left,
    so a server trickling one byte at a time cannot stretch the call past its deadline.
    """
    raw = response.raw
    read = _reader(raw, response.headers)
    while True:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise socket.timeout("deadline passed while reading the body")
        _limit_next_read(raw, remaining)
        chunk = read()
        if not chunk:
            return
        yield chunk


def _reader(raw: Any, headers: Mapping[str, str]) -> Callable[[], bytes]:
    """A callable returning the next bytes available (b"" at the end), without waiting for more."""
    read1: Optional[Callable[..., bytes]] = getattr(raw, "read1", None)
    plain = getattr(raw, "_fp", None)
    if plain is None or not hasattr(plain, "read1") or headers.get("content-encoding"):
        plain = None
    # A chunked stream of small events is one read per event, and urllib3's read1 spends
    # ~5 us a call on bookkeeping around http.client's read1, which does the same job and
    # raises IncompleteRead on a cut chunk. Length-delimited bodies stay with urllib3 >= 2:
    # it checks the length, http.client's read1 does not.
    if plain is not None and (read1 is None or getattr(raw, "chunked", False)):
        def read_plain() -> bytes:
            chunk = bytes(plain.read1(READ_SIZE))
            if not chunk and plain.isclosed():
                # What urllib3 does at the end of a body: the connection goes back to the
                # pool (closing the response without this would discard it).
                raw.release_conn()
            return chunk

        return read_plain
    if read1 is not None:  # urllib3 >= 2
        return lambda: read1(READ_SIZE, decode_content=True)
    # urllib3 1.x has no read1 and its read(n) blocks until n bytes or the end on a
    # close-delimited body.
    return lambda: bytes(raw.read(READ_SIZE, decode_content=True))


def _check_headers(provider: str, headers: Mapping[str, str], *, secret: bool) -> None:
    """:raises ConfigError: for a header requests or http.client would refuse to send."""
    for name, value in headers.items():
        if not _VALID_HEADER_NAME.fullmatch(name):
            raise ConfigError(f"{provider}: {name!r} is not a valid HTTP header name")
        if not _VALID_HEADER_VALUE.fullmatch(value):
            what = f"the {name} header (it carries the API key)" if secret else f"header {name}"
            # Never the value itself: it may be a credential.
            raise ConfigError(
                f"{provider}: {what} has a line break or leading whitespace; "
                "remove the stray characters (a key read from a file often ends in a newline)"
            )


def _limit_next_read(raw: Any, seconds: float) -> None:
    connection = getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(max(seconds, 0.001))


def _is_read_timeout(exc: BaseException) -> bool:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    if isinstance(
        exc, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError, socket.timeout)
    ):
        return True
    # requests wraps a read timeout during body iteration in ConnectionError (psf/requests#4882).
    return _caused_by(exc, urllib3.exceptions.ReadTimeoutError) or _caused_by(exc, socket.timeout)


def _caused_by(exc: BaseException, cls: type) -> bool:
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


def _url_password(url: str) -> Optional[str]:
    try:
        return urllib.parse.urlsplit(url).password
    except ValueError:
        return None


def _content_length(headers: Mapping[str, str]) -> int:
    """The announced body size, or -1 when there is none (chunked, close-delimited, garbled)."""
    value = headers.get("content-length", "")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 20 else -1


def _request_id(headers: Mapping[str, str]) -> Optional[str]:
    return header_request_id(headers)
