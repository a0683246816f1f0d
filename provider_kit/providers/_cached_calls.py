"""The call flow's side of the response cache (``HTTPProvider`` with a ``response_cache``): the
lookup of a ``complete`` answer, and a stream replayed from the cache or stored as it arrives.

Loaded by the first call of a provider that has a cache; the cache itself (the SQLite file,
keys, JSON values) is ``provider_kit._response_cache``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generator, List, Optional, Tuple

from .._response_cache import cache_key, replay_chunks, stored_chunks
from .._retry import Deadline
from .._transport import Transport
from ..types import StreamChunk
from ._calls import ChatCall, RequestSpec

if TYPE_CHECKING:
    from ._base import HTTPProvider


def key_of(provider: HTTPProvider, call: ChatCall, request: RequestSpec) -> Optional[str]:
    """The request's key: what decides the answer (type, base URL, model, path, body)."""
    return cache_key(provider.TYPE, provider.base_url, call.model, request.target, request.body)


def cached_body(provider: HTTPProvider, call: ChatCall, request: RequestSpec) -> Tuple[Optional[str], Any]:
    """The call's cache key and the answer body stored under it (None: not stored yet); the
    key is None when the request cannot be keyed (and is then not cached)."""
    key = key_of(provider, call, request)
    if key is None:
        return None, None
    found = provider.response_cache.get(key)
    return key, (found.get("body") if found is not None else None)


def cached_stream(
    provider: HTTPProvider, request: RequestSpec, deadline: Deadline, call: ChatCall, transport: Transport
) -> Generator[StreamChunk, None, None]:
    """A stream through the response cache: a stored one replayed chunk by chunk, else the
    server's, stored once its final chunk has arrived (a stream closed early is not)."""
    cache = provider.response_cache
    key = key_of(provider, call, request)
    stored = cache.get(key) if key is not None else None
    replayed = replay_chunks(stored, provider.name) if stored is not None else None
    if replayed is not None:
        *chunks, final = replayed
        yield from chunks
        yield provider._last_chunk(final, call, [chunk.text for chunk in chunks], None, transport)
        return
    if key is None:
        yield from provider._iter_stream(request, deadline, call, transport)
        return

    def store(chunks: List[StreamChunk]) -> None:
        cache.put(key, stored_chunks(chunks), provider=provider.name, model=call.model, kind="stream")

    yield from provider._iter_stream(request, deadline, call, transport, store)
