"""The one package that talks HTTP: a connection pool per provider, deadlines, retries, errors.

It owns everything provider-independent about a call: credentials (attached so that ``.netrc``
cannot replace them and never sent across a redirect), a *deadline* for the whole call (requests'
own ``timeout`` only limits each socket read, psf/requests#1928), the retry loop with
``Retry-After`` handling, the translation of every ``requests``/``urllib3`` exception into
``provider_kit.errors``, and reading bodies as soon as bytes arrive. It knows nothing of any
provider's JSON shapes. Only this package imports ``requests`` and ``urllib3``.

- ``_client``: ``Transport``, the calls, retries and error statuses;
- ``_session``: the pooled session, credentials, header checks, the loopback test;
- ``_translate``: foreign exceptions as ``provider_kit`` errors;
- ``_body``: bodies read as bytes arrive, ``StreamBody``.
"""

from __future__ import annotations

from ._body import DRAIN_MAX_BYTES, DRAIN_MAX_SECONDS, READ_SIZE, StreamBody, iter_raw
from ._client import (
    DEFAULT_MAX_RESPONSE_BYTES,
    MAX_ERROR_BODY_BYTES,
    HTTPResult,
    Transport,
)
from ._session import DEFAULT_POOL_MAXSIZE, USER_AGENT, HeaderAuth, is_loopback_host

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_POOL_MAXSIZE",
    "DRAIN_MAX_BYTES",
    "DRAIN_MAX_SECONDS",
    "MAX_ERROR_BODY_BYTES",
    "READ_SIZE",
    "USER_AGENT",
    "HTTPResult",
    "HeaderAuth",
    "StreamBody",
    "Transport",
    "is_loopback_host",
    "iter_raw",
]
