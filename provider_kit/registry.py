"""The provider registry: build providers from a config, pick one, and check them all at once.

This module owns:

- type resolution, in this order: the ``types`` argument of ``from_config``, then
  ``provider_kit.providers.BUILTIN_TYPES``, then the entry-point group
  ``provider_kit.providers``. Entry points are scanned only when a config names a type found
  nowhere else, and only the named one is imported;
- skipping invalid providers (a warning on the ``"provider_kit"`` logger, a reason in
  ``.skipped``) and ``NoProvidersError`` when nothing is left;
- the deterministic default choice;
- ``health_check_all``, a fan-out with a hard deadline.

The fan-out runs each check in its own daemon thread that completes a
``concurrent.futures.Future``, rather than in a ``ThreadPoolExecutor``: leaving a ``with``
executor block waits for every worker, the interpreter joins executor workers at exit, and a
pool filled with hung checks would delay the next call. A hung third-party check therefore
costs one parked daemon thread and nothing else.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
    cast,
)

from .config import (
    BUILTIN_TYPE_NAMES,
    ConfigSource,
    ProviderSpec,
    did_you_mean,
    is_secret_name,
    load_config,
    mask_secret,
)
from .errors import ConfigError, NoProvidersError, UnknownProviderError
from .types import HealthReport, HealthStatus, Provider

if TYPE_CHECKING:
    from concurrent.futures import Future
    from importlib.metadata import EntryPoint

__all__ = ["ENTRY_POINT_GROUP", "ProviderFactory", "ProviderRegistry"]

logger = logging.getLogger("provider_kit")

#: Third-party provider classes register here: ``mytype = mypackage.module:MyProvider``.
ENTRY_POINT_GROUP = "provider_kit.providers"

#: What ``register`` requires of a provider, for the message when something is missing.
_PROVIDER_MEMBERS = (
    "name",
    "complete",
    "stream",
    "health_check",
    "validate_config",
    "close",
    "__enter__",
    "__exit__",
)

#: Extra time a health check gets past its timeout to report its own timeout (it was given the
#: same deadline) before the fan-out reports it for it.
_HEALTH_GRACE_S = 0.2

_MAX_REASON = 300


def _describe(exc: BaseException) -> str:
    """``"ExcType: message"``, cut short: a third-party error, without its traceback."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _scrub(text: str, spec: ProviderSpec) -> str:
    """Mask in ``text`` every secret value of ``spec``'s options (a third party may echo one)."""

    def secrets(name: str, value: Any) -> Iterator[str]:
        if isinstance(value, Mapping):
            for key, item in value.items():
                yield from secrets(str(key), item)
        elif isinstance(value, str) and len(value) >= 4 and is_secret_name(name):
            yield value  # shorter values would garble the text and reveal little

    for option, value in spec.options.items():
        for secret in secrets(option, value):
            text = text.replace(secret, mask_secret(secret))
    return text


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
                        f"failed to load: {_describe(exc)}"
                    ) from None
            return self._loaded[type_name]


_ENTRY_POINT_TYPES = _EntryPointTypes()


def _builtin_types() -> Mapping[str, Any]:
    from .providers import BUILTIN_TYPES

    return BUILTIN_TYPES


def _resolve_type(spec: ProviderSpec, types: Mapping[str, Any]) -> Any:
    """The class for ``spec``; a table without ``type`` is looked up by its own name."""
    type_name = spec.type if spec.type is not None else spec.name
    if type_name in types:
        return types[type_name]
    builtins = _builtin_types()
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


def _build(factory: Any, spec: ProviderSpec) -> Any:
    """Call ``factory.from_config(name, options, where=...)``, or ``factory(name=..., **options)``."""
    from_config = getattr(factory, "from_config", None)
    if callable(from_config):
        return from_config(spec.name, spec.options, where=spec.where)
    try:
        return factory(name=spec.name, **spec.options)
    except TypeError as exc:
        label = getattr(factory, "__name__", repr(factory))
        raise ConfigError(f"{spec.where}: {label} does not accept these options: {exc}") from None


def _missing_members(provider: object) -> List[str]:
    return [member for member in _PROVIDER_MEMBERS if not hasattr(provider, member)]


def _close_quietly(provider: Any) -> None:
    try:
        provider.close()
    except Exception as exc:  # one provider's failure must not stop the others
        logger.warning("error closing provider %r: %s", getattr(provider, "name", "?"), _describe(exc))


def _run_check(provider: Any, name: str, timeout: float, future: Future[HealthStatus]) -> None:
    """Thread body: complete ``future`` with a HealthStatus whatever the check does."""
    started = time.monotonic()
    try:
        result = provider.health_check(timeout=timeout)
    except BaseException as exc:  # a third-party check must never escape, whatever it raises
        status = HealthStatus(name, False, time.monotonic() - started, _describe(exc))
    else:
        if not isinstance(result, HealthStatus):
            status = HealthStatus(
                name,
                False,
                time.monotonic() - started,
                f"health_check returned {type(result).__name__}, not a HealthStatus",
            )
        elif result.name != name:
            status = HealthStatus(name, result.ok, result.latency_s, result.error, result.checked_at)
        else:
            status = result
    future.set_result(status)


class ProviderRegistry(Mapping[str, Provider]):
    """Providers by name: a read-only mapping (sorted iteration) plus ``register``.

    ``registry[name]`` and ``get(name)`` raise ``UnknownProviderError`` (a ``KeyError``) with a
    suggestion; ``.skipped`` maps each provider that could not be registered to its reason.
    Registration and lookup are thread-safe.
    """

    def __init__(self, providers: Iterable[Provider] = (), *, default_provider: Optional[str] = None) -> None:
        """
        :param providers: providers to ``register`` right away.
        :param default_provider: the name ``default`` should return when it is registered.
        :raises ConfigError: when one of ``providers`` is invalid or a duplicate.
        """
        self._lock = threading.RLock()
        self._providers: Dict[str, Provider] = {}
        self._skipped: Dict[str, str] = {}
        self._default_name = default_provider
        self._warned_default: Optional[str] = None
        self._origin: Optional[str] = None
        self._searched: Tuple[str, ...] = ()
        for provider in providers:
            self.register(provider)

    # ----------------------------------------------------------------- building

    @classmethod
    def from_config(
        cls, source: ConfigSource = None, *, types: Optional[Mapping[str, type]] = None
    ) -> ProviderRegistry:
        """Build every configured provider; skip (and log) the ones that fail.

        :param source: as for ``load_config``: a TOML path, a dict, or None to search.
        :param types: extra provider classes by type name, looked up before the built-ins and
            entry points.
        :raises ConfigError: when the configuration itself is broken.
        :raises NoProvidersError: when no provider could be registered; the message lists
            every reason.
        """
        extra: Dict[str, Any] = dict(types or {})
        known = list(BUILTIN_TYPE_NAMES) + list(_builtin_types()) + list(extra)
        config = load_config(source, known_types=known)
        registry = cls(default_provider=config.default_provider)
        registry._origin = config.origin
        registry._searched = config.searched
        for spec in config.providers.values():
            reason = registry._register_spec(spec, extra)
            if reason is not None:
                registry._skip(spec.name, reason)
        if not registry._providers:
            raise NoProvidersError(registry._nothing_registered_message())
        return registry

    def _register_spec(self, spec: ProviderSpec, types: Mapping[str, Any]) -> Optional[str]:
        """Build and register one spec; the reason it was skipped, or None."""
        provider: Any = None
        try:
            provider = _build(_resolve_type(spec, types), spec)
            built_name = getattr(provider, "name", None)
            if built_name is not None and built_name != spec.name:
                raise ConfigError(f"{spec.where}: the provider class built a provider named {built_name!r}")
            self.register(provider)
        except ConfigError as exc:
            reason = str(exc)
        except Exception as exc:  # a broken third-party class: describe it, no traceback
            reason = _describe(exc)
        else:
            return None
        if provider is not None and hasattr(provider, "close"):
            _close_quietly(provider)
        if spec.where not in reason:
            reason = f"{spec.where}: {reason}"
        return _scrub(reason, spec)

    def _skip(self, name: str, reason: str) -> None:
        with self._lock:
            self._skipped[name] = reason
        logger.warning("skipping provider %r: %s", name, reason)

    def _nothing_registered_message(self) -> str:
        origin = {None: "the registry", "dict": "the config dict"}.get(self._origin, self._origin)
        if self._skipped:
            lines = [f"no provider could be registered from {origin}:"]
            lines += [f"  - {name}: {reason}" for name, reason in self._skipped.items()]
            return "\n".join(lines)
        if self._searched:
            return "no providers are configured; looked at: " + "; ".join(self._searched)
        return f"no providers are configured in {origin} (add a [providers.NAME] table)"

    def register(self, provider: Provider, *, replace: bool = False) -> Provider:
        """Validate ``provider`` and add it under ``provider.name``.

        :param replace: replace (and close) a provider already registered under that name.
        :returns: ``provider``.
        :raises ConfigError: when it lacks members of the ``Provider`` protocol, when its
            ``validate_config()`` fails, or when the name is taken and ``replace`` is False.
        """
        missing = _missing_members(provider)
        if missing or not isinstance(provider, Provider):
            raise ConfigError(
                f"{type(provider).__name__} is not a Provider: it has no "
                + ", ".join(missing or ["(unknown member)"])
            )
        name = provider.name
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{type(provider).__name__}.name must be a non-empty string")
        provider.validate_config()
        with self._lock:
            old = self._providers.get(name)
            if old is not None and not replace:
                raise ConfigError(
                    f"a provider named {name!r} is already registered; pass replace=True to replace it"
                )
            self._providers[name] = provider
            self._skipped.pop(name, None)
        if old is not None and old is not provider:
            _close_quietly(old)
        return provider

    # ----------------------------------------------------------------- lookup

    def _unknown(self, name: object) -> UnknownProviderError:
        names = self.names()
        message = f"no provider named {name!r}"
        skipped = self._skipped.get(name) if isinstance(name, str) else None
        if skipped is not None:
            message += f" (it was skipped: {skipped})"
        elif isinstance(name, str):
            message += did_you_mean(name, names)
        message += "; available: " + (", ".join(names) or "none")
        return UnknownProviderError(message)

    def __getitem__(self, name: str) -> Provider:
        with self._lock:
            try:
                return self._providers[name]
            except (KeyError, TypeError):
                pass
        raise self._unknown(name)

    def get(self, name: str) -> Provider:  # type: ignore[override]
        """The provider called ``name``.

        Unlike ``Mapping.get`` this never returns None: use ``name in registry`` to test.

        :raises UnknownProviderError: with close matches and the available names.
        """
        return self[name]

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._providers

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._providers)

    def names(self) -> List[str]:
        """The registered names, sorted."""
        with self._lock:
            return sorted(self._providers)

    @property
    def skipped(self) -> Dict[str, str]:
        """Name -> reason for each configured provider that could not be registered (a copy)."""
        with self._lock:
            return dict(self._skipped)

    @property
    def default_provider(self) -> Optional[str]:
        """The configured default name, registered or not."""
        return self._default_name

    # ----------------------------------------------------------------- default

    def _choose_default(self) -> Tuple[str, Optional[str]]:
        """The default name, and why it is not the configured one (None when no warning is due)."""
        names = self.names()
        if not names:
            message = "no providers are registered"
            if self._skipped:
                message += "; skipped: " + "; ".join(
                    f"{name}: {reason}" for name, reason in self._skipped.items()
                )
            raise NoProvidersError(message)
        configured = self._default_name
        if configured is not None and configured in self._providers:
            return configured, None
        chosen = names[0]
        fallback = f"using {chosen!r}, the first of {', '.join(names)} alphabetically"
        if configured is not None:
            skipped = self._skipped.get(configured)
            if skipped is not None:
                return chosen, f"default_provider {configured!r} was skipped ({skipped}); {fallback}"
            return chosen, f"default_provider {configured!r} is not registered; {fallback}"
        if len(names) > 1:
            return chosen, f"no default_provider is configured; {fallback}"
        return chosen, None

    def get_default(self) -> Provider:
        """The configured ``default_provider`` when registered, else the first name alphabetically.

        The fallback logs one warning saying why (once per registry, not per call).

        :raises NoProvidersError: when the registry is empty.
        """
        with self._lock:
            name, why = self._choose_default()
            warn = why is not None and why != self._warned_default
            if warn:
                self._warned_default = why
            provider = self._providers[name]
        if warn:
            logger.warning("%s", why)
        return provider

    @property
    def default(self) -> Provider:
        """Same as ``get_default()``."""
        return self.get_default()

    # ----------------------------------------------------------------- health

    def health_check_all(self, timeout: float = 5.0, names: Optional[Iterable[str]] = None) -> HealthReport:
        """Check every provider (or ``names``) in parallel, within ``timeout`` seconds.

        Each ``health_check(timeout=timeout)`` runs in its own daemon thread. A check still
        running at the deadline (plus a small grace) is reported not ok, "timed out"; a check
        that raises or returns something else is reported not ok; nothing propagates.

        :raises ConfigError: when ``timeout`` is not a positive number.
        :raises UnknownProviderError: for a name that is not registered.
        """
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not (math.isfinite(timeout) and timeout > 0)
        ):
            raise ConfigError(f"timeout must be a positive number of seconds, not {timeout!r}")
        with self._lock:
            if names is None:
                targets = sorted(self._providers.items())
            else:
                targets = [(name, self[name]) for name in dict.fromkeys(names)]
        if not targets:
            return HealthReport()

        from concurrent.futures import Future, wait

        started = time.monotonic()
        futures: Dict[str, Future[HealthStatus]] = {}
        for name, provider in targets:
            future: Future[HealthStatus] = Future()
            futures[name] = future
            threading.Thread(
                target=_run_check,
                args=(provider, name, float(timeout), future),
                name=f"provider_kit-health-{name}",
                daemon=True,  # a hung third-party check must not hold up interpreter exit
            ).start()
        wait(list(futures.values()), timeout=timeout + _HEALTH_GRACE_S)
        elapsed = time.monotonic() - started
        statuses = []
        for name, future in futures.items():
            if future.done():
                statuses.append(future.result())
            else:
                statuses.append(HealthStatus(name, False, elapsed, f"timed out after {float(timeout)!r} s"))
        return HealthReport(statuses)

    # ----------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Close every provider; an error in one is logged and does not stop the others."""
        with self._lock:
            providers = list(self._providers.values())
        for provider in providers:
            _close_quietly(provider)

    def __enter__(self) -> ProviderRegistry:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        with self._lock:
            names = sorted(self._providers)
            skipped = sorted(self._skipped)
        return (
            f"<{type(self).__name__} providers={names!r} "
            f"default_provider={self._default_name!r} skipped={skipped!r}>"
        )


#: The name the issue also uses for the registry.
ProviderFactory = ProviderRegistry
