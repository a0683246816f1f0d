"""The connection pool of one provider: a ``requests.Session`` set up once, the credentials
attached so that ``.netrc`` cannot replace them, and an adapter whose ``close()`` really closes.
Also the checks of header values and the loopback test, used before any request is built."""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
from typing import Any, List, Mapping, Optional

import requests
import requests.adapters
import requests.auth
import requests.utils

from .._call_args import check_headers as check_headers
from .._version import __version__

DEFAULT_POOL_MAXSIZE = 32
USER_AGENT = f"provider_kit/{__version__}"

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


def new_session(
    base_url: str, headers: Mapping[str, str], secret_headers: Mapping[str, str], pool_maxsize: int
) -> requests.Session:
    """A session for ``base_url``: up to ``pool_maxsize`` pooled connections, no urllib3 retries
    (the transport retries), credentials through ``HeaderAuth``, and proxy and CA settings read
    once from the environment (never a proxy for a loopback host)."""
    session = requests.Session()
    session.trust_env = False
    adapter = _ClosingAdapter(pool_connections=1, pool_maxsize=pool_maxsize, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    session.headers.update(headers)
    if secret_headers:
        session.auth = HeaderAuth(secret_headers)
    host = urllib.parse.urlsplit(base_url).hostname
    if not is_loopback_host(host):
        session.proxies.update(requests.utils.get_environ_proxies(base_url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    return session
