"""The base of every value type (``Message``, ``Completion``, the content parts...): an immutable
record with ``__slots__`` compared, hashed, pickled and copied by value.

Plain classes rather than dataclasses: importing ``dataclasses`` alone costs several
milliseconds (it pulls in ``inspect`` and ``ast``), a large share of provider_kit's import budget.
Its own module so that ``types`` and ``_parts`` (which ``types`` imports) share it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Tuple, TypeVar

_V = TypeVar("_V", bound="_Value")


class _Value:
    """Immutable record: fields set once in ``__init__``, compared and hashed by value."""

    __slots__: ClassVar[Tuple[str, ...]] = ()
    #: Fields left out of ``repr`` (large or noisy).
    _repr_skip: ClassVar[Tuple[str, ...]] = ()

    def _set(self, **fields: Any) -> None:
        for key, value in fields.items():
            object.__setattr__(self, key, value)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; cannot set {key!r}")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; cannot delete {key!r}")

    def _fields(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, key) for key in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        try:
            return hash((type(self).__name__, self._fields()))
        except TypeError:  # a field holds an unhashable value, such as a raw dict
            return hash((type(self).__name__, id(self)))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{key}={getattr(self, key)!r}" for key in self.__slots__ if key not in self._repr_skip
        )
        return f"{type(self).__name__}({shown})"

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (type(self), self._fields())

    def _replace(self: _V, **changes: Any) -> _V:
        """A copy with ``changes``, as ``NamedTuple._replace``: every other field is carried over.

        Rebuilding through the constructor by keyword (each ``__init__`` takes every field under
        its own name) means a field added later is never dropped by a rebuild that lists fields.

        :raises TypeError: for a name that is not a field.
        """
        unknown = set(changes).difference(self.__slots__)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {', '.join(sorted(unknown))}")
        fields = {key: getattr(self, key) for key in self.__slots__}
        fields.update(changes)
        return type(self)(**fields)
