"""``registry.usage()``: calls, failures, cache hits and tokens per provider and model.

``UsageCounter`` is an ``on_call`` hook every registry has; ``UsageReport`` is the snapshot it
hands out. Tokens count what the providers reported for calls that reached them: an answer
from the response cache counts as a call and a cache hit, and its tokens (not spent again)
are left out.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ._value import _Value

__all__ = ["UsageCounter", "UsageReport", "UsageTotals"]

#: The counts of ``UsageTotals``, in display order.
_COUNTS = (
    "calls",
    "failures",
    "cache_hits",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "reasoning_tokens",
)


class UsageTotals(_Value):
    """Totals over calls: ``calls`` (failures and cache hits included), ``failures``,
    ``cache_hits``, and the ``input_tokens``, ``output_tokens``, ``cached_input_tokens`` and
    ``reasoning_tokens`` the providers reported (0 when none did)."""

    __slots__ = _COUNTS
    calls: int
    failures: int
    cache_hits: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    reasoning_tokens: int

    def __init__(
        self,
        calls: int = 0,
        failures: int = 0,
        cache_hits: int = 0,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cached_input_tokens: int = 0,
        reasoning_tokens: int = 0,
    ) -> None:
        self._set(
            calls=calls,
            failures=failures,
            cache_hits=cache_hits,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=cached_input_tokens,
            reasoning_tokens=reasoning_tokens,
        )

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: UsageTotals) -> UsageTotals:
        if not isinstance(other, UsageTotals):
            return NotImplemented
        return UsageTotals(*(a + b for a, b in zip(self._fields(), other._fields())))

    def to_dict(self) -> Dict[str, int]:
        """A JSON-ready dict of every count."""
        return dict(zip(_COUNTS, self._fields()))


class UsageReport(Mapping):  # type: ignore[type-arg]
    """A read-only mapping of ``(provider, model)`` to ``UsageTotals``, in that order; ``total``
    sums every row. Its repr is a table (HTML in Jupyter)."""

    __slots__ = ("_rows",)
    _rows: Dict[Tuple[str, str], UsageTotals]

    def __init__(self, rows: Optional[Mapping[Tuple[str, str], UsageTotals]] = None) -> None:
        object.__setattr__(self, "_rows", dict(sorted((rows or {}).items())))

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("UsageReport is read-only")

    def __getitem__(self, key: Tuple[str, str]) -> UsageTotals:
        return self._rows[key]

    def __iter__(self) -> Iterator[Tuple[str, str]]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def total(self) -> UsageTotals:
        """Every row added up."""
        return sum(self._rows.values(), UsageTotals())

    def by_provider(self, name: str) -> UsageTotals:
        """The rows of provider ``name`` added up (zeros when it made no call)."""
        return sum((totals for (provider, _), totals in self._rows.items() if provider == name), UsageTotals())

    def to_dict(self) -> List[Dict[str, Any]]:
        """A JSON-ready list of rows: ``provider``, ``model`` and every count."""
        return [{"provider": provider, "model": model, **totals.to_dict()}
                for (provider, model), totals in self._rows.items()]

    def __repr__(self) -> str:
        from . import _display

        return _display.usage_text(self._rows)

    __str__ = __repr__

    def _repr_html_(self) -> str:
        from . import _display

        return _display.usage_html(self._rows)

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (UsageReport, (self._rows,))


class UsageCounter:
    """An ``on_call`` hook adding each ``CallRecord`` to per-(provider, model) totals; thread-safe.
    A new process (after pickling) starts from zero."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: Dict[Tuple[str, str], List[int]] = {}

    def __getstate__(self) -> Dict[str, Any]:
        return {}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def __call__(self, record: Any) -> None:
        """Count one ``CallRecord`` (the counter as an ``on_call`` hook)."""
        self.count(record.provider, record.model, record.usage, failed=record.error_type is not None,
                   cached=bool(record.cached))

    def count(self, provider: str, model: Optional[str], usage: Any, *, failed: bool, cached: bool = False) -> None:
        """Count one call of ``provider`` (``usage`` a ``Usage`` or None)."""
        spent = usage is not None and not cached
        added = (
            1,
            failed,
            cached,
            (usage.input_tokens or 0) if spent else 0,
            (usage.output_tokens or 0) if spent else 0,
            (usage.cached_input_tokens or 0) if spent else 0,
            (usage.reasoning_tokens or 0) if spent else 0,
        )
        key = (provider, model or "")
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                row = self._rows[key] = [0] * len(_COUNTS)
            for index, amount in enumerate(added):
                row[index] += amount

    def count_answer(self, provider: str, answer: Any, owner: Any, kwargs: Mapping[str, Any]) -> None:
        """Count a call that answered: ``answer`` a ``Completion`` or a stream's last chunk
        (``owner`` the provider, ``kwargs`` the call's arguments, for the model asked for)."""
        model = getattr(answer, "model", None) or kwargs.get("model") or getattr(owner, "model", None)
        self.count(provider, model if isinstance(model, str) else None, getattr(answer, "usage", None),
                   failed=False, cached=bool(getattr(answer, "cached", False)))

    def report(self) -> UsageReport:
        with self._lock:
            return UsageReport({key: UsageTotals(*row) for key, row in self._rows.items()})
