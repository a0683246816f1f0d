"""Provider types by name: built-ins, then the entry-point group ``provider_kit.providers``.

Entry points are scanned only when a config names a type found nowhere else, and only the
named one is imported, so third-party plugins cost nothing until used.

A type that cannot be had is one of two things. A name close to a known type is a typo in the
file: ``ConfigError``. A name nothing resembles, or an entry point whose import fails, is a
plugin that is not installed (or is broken) on this machine: ``TypeUnavailable``, which the
registry turns into a skipped provider, as it does for a key that is not set.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, cast

from ._options import check_options, did_you_mean
from .config import ProviderSpec
from .errors import ConfigError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

#: Third-party provider classes register here: ``mytype = mypackage.module:MyProvider``.
ENTRY_POINT_GROUP = "provider_kit.providers"

_MAX_REASON = 300


class TypeUnavailable(Exception):
    """A provider type whose package is not installed here, or fails to load: skip, not refuse."""


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

        :raises TypeUnavailable: when the entry point cannot be imported.
        """
        entry_point = self._scan().get(type_name)
        if entry_point is None:
            return None
        with self._lock:
            if type_name not in self._loaded:
                try:
                    self._loaded[type_name] = entry_point.load()
                except ImportError as exc:  # ModuleNotFoundError too: the plugin or a dependency
                    raise TypeUnavailable(
                        f"provider type {type_name!r} is not installed: its entry point "
                        f"{entry_point.value!r} cannot be imported ({describe_error(exc)})"
                    ) from None
                except Exception as exc:  # a broken plugin must not take the registry down
                    raise TypeUnavailable(
                        f"provider type {type_name!r} (entry point {entry_point.value!r}) "
                        f"failed to load: {describe_error(exc)}"
                    ) from None
            return self._loaded[type_name]


_ENTRY_POINT_TYPES = _EntryPointTypes()


def builtin_types() -> Mapping[str, Any]:
    from .providers import PROVIDER_TYPES

    return PROVIDER_TYPES


def resolve_type(spec: ProviderSpec, types: Mapping[str, Any]) -> Any:
    """The class for ``spec``; a table without ``type`` is looked up by its own name.

    :raises ConfigError: for a table without ``type`` whose name is no type, or a ``type``
        close to a known one (a typo), with the suggestion.
    :raises TypeUnavailable: for a ``type`` like no known one (a plugin not installed here),
        or an entry point that fails to load. Its message starts with ``spec.where``.
    """
    type_name = spec.type if spec.type is not None else spec.name
    if type_name in types:
        return types[type_name]
    builtins = builtin_types()
    if type_name in builtins:
        return builtins[type_name]
    try:
        loaded = _ENTRY_POINT_TYPES.load(type_name)
    except TypeUnavailable as exc:
        raise TypeUnavailable(f"{spec.where}: {exc}") from None
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
    if hint:
        raise ConfigError(f"{spec.where}: unknown provider type {type_name!r}{hint} (known types: {available})")
    raise TypeUnavailable(
        f"{spec.where}: provider type {type_name!r} is not installed: no installed package provides it "
        f"(entry-point group {ENTRY_POINT_GROUP!r}; known types: {available})"
    )


def build_provider(factory: Any, spec: ProviderSpec) -> Any:
    """Call ``factory.from_config(name, options, where=...)``, or ``factory(name=..., **options)``.

    :raises ConfigError: for options the factory refuses: a mistake in the file.
    """
    from_config = getattr(factory, "from_config", None)
    if callable(from_config):
        return from_config(spec.name, spec.options, where=spec.where)
    option_schema = getattr(factory, "option_schema", None)
    if callable(option_schema):
        check_options(spec.options, option_schema(), where=spec.where)
    else:
        _check_keywords(factory, spec)
    try:
        return factory(name=spec.name, **spec.options)
    except TypeError as exc:
        label = getattr(factory, "__name__", repr(factory))
        raise ConfigError(f"{spec.where}: {label} does not accept these options: {exc}") from None


def _check_keywords(factory: Any, spec: ProviderSpec) -> None:
    """Refuse an option that ``factory``'s signature has no parameter for, with a suggestion."""
    import inspect  # lazily: only a plain third-party class needs it

    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin): the call will tell
        return
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters.values()):
        return
    accepted = [
        name
        for name, parameter in parameters.items()
        if name != "name"
        and parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    for key in spec.options:
        if key not in accepted:
            label = getattr(factory, "__name__", repr(factory))
            raise ConfigError(
                f"{spec.where}: unknown option {key!r}{did_you_mean(key, accepted)} "
                f"({label} accepts: {', '.join(accepted) or 'none'})"
            )
