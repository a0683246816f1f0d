"""The embeddings side of ``FakeProvider``: arguments checked as a real provider checks them,
the call recorded, and deterministic vectors (the simulators' own: the same text gives the same
vector here and on a ``LoopbackServer``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Optional

from ..errors import ProviderTimeoutError, UnsupportedFeatureError
from ..types import Usage

if TYPE_CHECKING:
    from .._embeddings import Embeddings
    from ._fake import FakeProvider

#: The length of a fake's vectors when the call asks for none: small, a test reads them.
FAKE_DIMENSIONS = 16


def fake_embed(fake: FakeProvider, texts: Any, model: Optional[str], dimensions: Any,
               timeout: Optional[float]) -> Embeddings:
    from .._call_args import check_timeout
    from .._embeddings import Embeddings
    from ..providers._embed import check_dimensions, check_texts
    from .wires._embeddings import vector

    where = f"fake provider {fake.name!r}"
    if not fake.embeddings:
        raise UnsupportedFeatureError(f"{where}: embeddings: this fake has none (built with embeddings=False)")
    items = check_texts(where, texts)
    size = check_dimensions(where, dimensions) or FAKE_DIMENSIONS
    if timeout is not None:
        check_timeout(fake.name, timeout)
    fake.validate_config()
    started = time.monotonic()
    kwargs = {key: value for key, value in (("model", model), ("dimensions", dimensions), ("timeout", timeout))
              if value is not None}
    fake._record("embed", [], dict(kwargs, texts=items))
    missed = fake._wait(timeout)
    if missed is not None:
        raise ProviderTimeoutError(f"{fake.name}: no answer within {missed!r} s", provider=fake.name)
    failure = fake._next_failure()
    if failure is not None:
        raise failure
    name = model or f"{fake.model}-embed"
    count = sum(len(text.split()) for text in items)
    return Embeddings([vector(name, text, size) for text in items], model=name, usage=Usage(count, None, count),
                      provider=fake.name, latency_s=time.monotonic() - started)
