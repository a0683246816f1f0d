"""Provider types by name: built-ins, then the entry-point group ``provider_kit.providers``.

Entry points are scanned only when a config names a type found nowhere else, and only the
named one is imported, so third-party plugins cost nothing until used.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, cast

from .config import ProviderSpec, did_you_mean
from .errors import ConfigError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

#: Third-party provider classes register here: ``mytype = mypackage.module:MyProvider``.
ENTRY_POINT_GROUP = "provider_kit.providers"

_MAX_REASON = 300


def describe_error(exc: BaseException) -> str:
    """``"ExcType: message"``, cut short: a third-party error, without its traceback."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


class _EntryPointTypes:
    """The entry points of ``ENTRY_POINT_GROUP``, scanned once per process on first need."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entry_points: Optional[Dict[str, EntryPoint]] = None
        self._loaded: Dict[str, Any] = {}

    def _scan(self) -> Dict[str, EntryPoint]:
        with self._lock:
            if self._entry_points is None:
                from importlib import metadata

                found = metadata.entry_points()
                if hasattr(found, "select"):  # Python 3.10+
                    selected: Iterable[EntryPoint] = found.select(group=ENTRY_POINT_GROUP)
                else:  # Python 3.9: a dict of group -> entry points
                    selected = cast(Any, found).get(ENTRY_POINT_GROUP, ())
                table: Dict[str, EntryPoint] = {}
                for entry_point in selected:
                    # The same distribution can be on sys.path twice: the first one wins.
                    table.setdefault(entry_point.name, entry_point)
                self._entry_points = table
            return self._entry_points

    def names(self) -> List[str]:
        """Every type name registered through entry points (scans, but imports nothing)."""
        return sorted(self._scan())

    def load(self, type_name: str) -> Optional[Any]:
        """The class registered as ``type_name``, imported now; None when there is none.

        :raises ConfigError: when the entry point cannot be imported.
        """
        entry_point = self._scan().get(type_name)
        if entry_point is None:
            return None
        with self._lock:
            if type_name not in self._loaded:
                try:
                    self._loaded[type_name] = entry_point.load()
                except Exception as exc:  # a broken plugin must not take the registry down
                    raise ConfigError(
                        f"provider type {type_name!r} (entry point {entry_point.value!r}) "
                        f"failed to load: {describe_error(exc)}"
                    ) from None
            return self._loaded[type_name]


_ENTRY_POINT_TYPES = _EntryPointTypes()


def builtin_types() -> Mapping[str, Any]:
    from .providers import BUILTIN_TYPES

    return BUILTIN_TYPES


def resolve_type(spec: ProviderSpec, types: Mapping[str, Any]) -> Any:
    """The class for ``spec``; a table without ``type`` is looked up by its own name."""
    type_name = spec.type if spec.type is not None else spec.name
    if type_name in types:
        return types[type_name]
    builtins = builtin_types()
    if type_name in builtins:
        return builtins[type_name]
    loaded = _ENTRY_POINT_TYPES.load(type_name)
    if loaded is not None:
        return loaded
    known = sorted(set(types) | set(builtins) | set(_ENTRY_POINT_TYPES.names()))
    hint = did_you_mean(type_name, known)
    available = ", ".join(known) or "none"
    if spec.type is None:
        raise ConfigError(
            f"{spec.where}: no type given and {type_name!r} is not a provider type{hint} "
            f'(add type = "..."; known types: {available})'
        )
    raise ConfigError(f"{spec.where}: unknown provider type {type_name!r}{hint} (known types: {available})")


def build_provider(factory: Any, spec: ProviderSpec) -> Any:
    """Call ``factory.from_config(name, options, where=...)``, or ``factory(name=..., **options)``."""
    from_config = getattr(factory, "from_config", None)
    if callable(from_config):
        return from_config(spec.name, spec.options, where=spec.where)
    try:
        return factory(name=spec.name, **spec.options)
    except TypeError as exc:
        label = getattr(factory, "__name__", repr(factory))
        raise ConfigError(f"{spec.where}: {label} does not accept these options: {exc}") from None
