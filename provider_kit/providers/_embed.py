"""``embed()``: the call flow of embeddings, shared by every type that has them.

A type with embeddings declares ``EMBEDDINGS_PATH`` (and ``EMBEDDING_MODEL``, its default
model), its per-request limits ``EMBED_MAX_INPUTS`` / ``EMBED_MAX_TOKENS``, and two hooks:
``_embed_request(model, texts, dimensions) -> RequestSpec`` and
``_parse_embeddings(data) -> (vectors, model, usage)``. This module checks the arguments (every
refusal happens before anything is sent), splits a large input into requests that fit the
limits, sends them one after the other inside the one deadline, and puts the vectors back
together in input order.

Loaded by the first ``embed()``: programs that never embed never import it.
"""

from __future__ import annotations

import base64
import binascii
import sys
import time
from array import array
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, Tuple, Union

from .._embeddings import Embeddings
from .._retry import Deadline
from ..errors import ConfigError, RateLimitError, UnsupportedFeatureError
from ..types import Usage

if TYPE_CHECKING:
    from ._base import HTTPProvider

#: A vector as a JSON list of floats takes at most this many bytes per dimension ("-0.0123456789,"
#: and the like); with the dimensions unknown before the answer, a request of ``n`` texts may
#: read ``n * _BYTES_PER_VECTOR`` bytes (4,096 dimensions as JSON floats) beyond the configured cap.
_BYTES_PER_VECTOR = 4096 * 24
_BIG_ENDIAN = sys.byteorder == "big"


def check_texts(where: str, texts: Any) -> List[str]:
    """``texts`` as a list of strings (a string is one text).

    :raises ConfigError: for an empty list, an item that is not a string, or an empty string
        (every embeddings API refuses one; its index is named).
    """
    if isinstance(texts, str):
        items = [texts]
    elif isinstance(texts, (bytes, bytearray, Mapping)) or not isinstance(texts, Iterable):
        raise ConfigError(f"{where}: texts must be a string or a list of strings, not {type(texts).__name__}")
    else:
        items = list(texts)
    if not items:
        raise ConfigError(f"{where}: texts is empty: there is nothing to embed")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise ConfigError(f"{where}: texts[{index}] is a {type(item).__name__}, not a string")
        if not item:
            raise ConfigError(f"{where}: texts[{index}] is an empty string, which no embeddings API accepts")
    return items


def check_dimensions(where: str, dimensions: Any) -> Optional[int]:
    """:raises ConfigError: unless ``dimensions`` is None or a positive int."""
    if dimensions is None:
        return None
    if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions <= 0:
        raise ConfigError(f"{where}: dimensions must be a positive integer, got {dimensions!r}")
    return dimensions


def token_estimate(text: str) -> int:
    """An upper bound of ``text``'s tokens: its UTF-8 bytes (a byte-level BPE token, OpenAI's,
    is at least one byte). Conservative: English runs about four bytes to the token."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def batches(texts: Sequence[str], max_inputs: int, max_tokens: Optional[int]) -> List[Tuple[int, int]]:
    """``(start, stop)`` slices of ``texts``, in order, each at most ``max_inputs`` texts and
    (when ``max_tokens`` is set) at most ``max_tokens`` estimated tokens; a text over the token
    cap on its own is a request of its own (the server says what it makes of it)."""
    if max_tokens is None:
        return [(start, min(start + max_inputs, len(texts))) for start in range(0, len(texts), max_inputs)]
    slices: List[Tuple[int, int]] = []
    start = tokens = 0
    for index, text in enumerate(texts):
        cost = token_estimate(text)
        if index > start and (index - start >= max_inputs or tokens + cost > max_tokens):
            slices.append((start, index))
            start, tokens = index, 0
        tokens += cost
    slices.append((start, len(texts)))
    return slices


def decode_vector(value: Any) -> array[float]:
    """One embedding as ``array("f")``: from base64 (little-endian float32, what
    ``encoding_format: "base64"`` returns) or from a JSON list of numbers.

    :raises TypeError: for anything else (a shape error: ``ResponseFormatError``).
    """
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise TypeError("an embedding is a string that is not base64") from None
        if len(raw) % 4:
            raise TypeError(f"a base64 embedding of {len(raw)} bytes is not a whole number of float32 values")
        vector = array("f")
        vector.frombytes(raw)
        if _BIG_ENDIAN:
            vector.byteswap()
        return vector
    if isinstance(value, list):
        return array("f", value)  # a TypeError for an item that is not a number
    raise TypeError(f"an embedding is a {type(value).__name__}, not a list of numbers or base64")


def sum_usage(usages: Sequence[Usage]) -> Usage:
    """The usage of a call made of several requests: each count summed over the requests that
    reported it (None when none did)."""
    if len(usages) == 1:
        return usages[0]

    def total(name: str) -> Optional[int]:
        counts = [getattr(usage, name) for usage in usages if getattr(usage, name) is not None]
        return sum(counts) if counts else None

    return Usage(total("input_tokens"), total("output_tokens"), total("total_tokens"))


def embed(
    provider: HTTPProvider,
    texts: Union[str, Sequence[str]],
    *,
    model: Optional[str],
    dimensions: Optional[int],
    timeout: Optional[float],
    cache: Optional[bool] = None,
) -> Embeddings:
    """``provider.embed(...)``: see ``HTTPProvider.embed``."""
    started = time.monotonic()
    where = provider._where
    if not provider.EMBEDDINGS_PATH:
        raise UnsupportedFeatureError(
            f"{where}: embeddings: the {provider.TYPE} provider type has no embeddings API; "
            "embed with a provider of a type that has one"
        )
    items = check_texts(where, texts)
    dimensions = check_dimensions(where, dimensions)
    seconds = provider.timeout if timeout is None else provider._check_timeout(timeout)
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise ConfigError(f"{where}: model must be a non-empty string, got {model!r}")
    model = model or provider.embedding_model
    if not model:
        raise ConfigError(
            f"{where}: no embedding model: pass model= to embed(), or set embedding_model in its config"
        )
    provider._validate_connection()
    deadline = Deadline(seconds)
    transport = provider._transport
    vectors: List[array[float]] = []
    usages: List[Usage] = []
    answered_model = ""
    if cache is not None and not isinstance(cache, bool):
        raise ConfigError(f"{where}: cache must be True or False, got {cache!r}")
    response_cache = provider.response_cache if cache is not False else None
    all_cached = True
    for start, stop in batches(items, provider.EMBED_MAX_INPUTS, provider.EMBED_MAX_TOKENS):
        batch = items[start:stop]
        request = provider._embed_request(model, batch, dimensions)
        # Each request of a split input is a cache entry of its own: a re-run after an
        # interruption sends only the requests that have no answer stored yet.
        key = stored = None
        if response_cache is not None:
            from .._response_cache import cache_key

            key = cache_key(provider.TYPE, provider.base_url, model, request.target, request.body)
            found = response_cache.get(key) if key is not None else None
            stored = found.get("body") if found is not None else None
        request_id = None
        if stored is None:
            all_cached = False
            # The provider's rate limiter paces each request as it paces a chat call (rpm, tpm,
            # a budget the server said is spent), within the one deadline.
            limiter = provider._limiter
            estimate = provider._pace(limiter, request, deadline) if limiter is not None else 0
            # Each request gets the time left of the one deadline (the transport reads it).
            try:
                result = transport.request_json(
                    request.method, request.target, body=request.body, deadline=deadline,
                    max_response_bytes=transport.max_response_bytes + len(batch) * _BYTES_PER_VECTOR,
                )
            except RateLimitError as error:
                provider._server_refused(error)
                raise
            request_id, body = result.request_id, result.data
        else:
            limiter, body = None, stored
        with provider._shape_errors(request_id, source=None):
            got, got_model, usage = provider._parse_embeddings(body)
            if len(got) != len(batch):
                raise ValueError(f"{len(got)} embeddings in answer to {len(batch)} texts")
        if limiter is not None:
            provider._after_call(limiter, estimate, usage, None)
        if key is not None and stored is None and response_cache is not None:
            response_cache.put(key, {"body": body}, provider=provider.name, model=model, kind="embed")
        vectors.extend(got)
        usages.append(usage)
        answered_model = answered_model or got_model or ""
    return Embeddings(
        vectors,
        model=answered_model or model,
        usage=sum_usage(usages),
        provider=provider.name,
        latency_s=time.monotonic() - started,
        cached=all_cached,
    )


def openai_vectors(data: Any) -> List[array[float]]:
    """``data[]`` of an OpenAI embeddings answer, put in ``index`` order (an item without an
    index keeps its place): every index from 0 once."""
    items = data["data"]
    if not isinstance(items, list):
        raise TypeError("data is not a list")
    vectors: List[Optional[array[float]]] = [None] * len(items)
    for position, item in enumerate(items):
        index = item.get("index", position)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(items):
            raise ValueError(f"an embedding has index {index!r} in an answer of {len(items)}")
        if vectors[index] is not None:
            raise ValueError(f"two embeddings have index {index}")
        vectors[index] = decode_vector(item["embedding"])
    return vectors  # type: ignore[return-value]  # every slot filled: the indexes are 0..n-1
