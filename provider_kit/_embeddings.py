"""``Embeddings``: the answer of ``embed()``, one vector per input text, in input order.

The vectors are ``array.array("f")`` (32-bit floats, the precision every embeddings API
computes in): 10,000 vectors of 1,536 dimensions take about 60 MiB as arrays, against about
600 MiB as lists of Python floats (the openai SDK's ``.tolist()``). An array behaves as a
sequence of floats (indexing, ``len``, iteration, ``sum``) and converts at once with
``list(vector)``, ``numpy.asarray(vector)`` or ``vector.tolist()``; ``Embeddings.tolist()``
converts them all.

Its own module, loaded by the first ``embed()`` (or ``provider_kit.Embeddings``): programs
that never embed never import it.
"""

from __future__ import annotations

from array import array
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union, overload

from ._value import _Value
from .types import Usage


class Embeddings(_Value):
    """The vectors of ``embed(texts)``: ``vectors[i]`` is the embedding of ``texts[i]``.

    A sequence of its vectors: ``len(result)``, ``result[i]``, ``for vector in result``.

    :ivar vectors: a list of ``array.array("f")``, in the order of the input texts.
    :ivar model: the model that made them, as the server names it.
    :ivar usage: the input tokens counted (summed over the requests a large input was split
        into); ``output_tokens`` is None: an embedding has no output tokens.
    :ivar provider: the name of the provider that answered.
    :ivar latency_s: seconds the whole call took, every request included.
    :ivar cached: True when every vector came from the response cache (nothing was sent).
    """

    __slots__ = ("vectors", "model", "usage", "provider", "latency_s", "cached")
    vectors: List[array[float]]
    model: str
    usage: Usage
    provider: str
    latency_s: float
    cached: bool

    def __init__(
        self,
        vectors: Sequence[array[float]],
        model: str = "",
        usage: Optional[Usage] = None,
        provider: str = "",
        latency_s: float = 0.0,
        cached: bool = False,
    ) -> None:
        self._set(
            vectors=list(vectors),
            model=model,
            usage=usage if usage is not None else Usage(),
            provider=provider,
            latency_s=latency_s,
            cached=cached,
        )

    @property
    def dimensions(self) -> int:
        """The length of each vector (0 when there are none)."""
        return len(self.vectors[0]) if self.vectors else 0

    def tolist(self) -> List[List[float]]:
        """Every vector as a list of Python floats (about ten times the memory of the arrays)."""
        return [vector.tolist() for vector in self.vectors]

    def __len__(self) -> int:
        return len(self.vectors)

    def __iter__(self) -> Iterator[array[float]]:
        return iter(self.vectors)

    @overload
    def __getitem__(self, index: int) -> array[float]: ...

    @overload
    def __getitem__(self, index: slice) -> List[array[float]]: ...

    def __getitem__(self, index: Union[int, slice]) -> Union[array[float], List[array[float]]]:
        return self.vectors[index]

    def __hash__(self) -> int:
        return hash((type(self).__name__, id(self)))  # arrays are unhashable: by identity

    def __repr__(self) -> str:
        # Never the floats: a corpus' embeddings are millions of them.
        count = len(self.vectors)
        shape = f"{count} vector{'s' if count != 1 else ''} of {self.dimensions} dimensions"
        return (
            f"Embeddings({shape}, model={self.model!r}, provider={self.provider!r}, "
            f"usage={self.usage!r}, latency_s={self.latency_s:.3f}" + (", cached=True)" if self.cached else ")")
        )

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (type(self), self._fields())
