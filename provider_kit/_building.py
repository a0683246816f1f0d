"""From a loaded config to registered providers: refuse a mistake, skip what is absent.

``ProviderRegistry.from_config`` is the public face; this module holds its policy:

- a mistake in the file (an unknown option, a bad value, a misspelt type, an option the class
  refuses) raises ``ConfigError`` at once, and nothing built is kept;
- a provider that cannot work here because something it needs is absent (its key variable is
  not set, its plugin is not installed; whatever its ``validate_config()`` refuses) is skipped
  with a reason, which the registry records and logs, and which becomes a
  ``ProviderSkippedWarning`` pointing at the user's line;
- every message that could quote a table's secret (a third-party class may echo one) has the
  table's secret values masked.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from ._plugins import TypeUnavailable, build_provider, describe_error, resolve_type
from ._routing import DEFAULT_BATCH_CONCURRENCY, DEFAULT_BREAKER_COOLDOWN, DEFAULT_BREAKER_THRESHOLD
from ._secrets import Redactor
from .config import Config, ProviderSpec
from .errors import ConfigError, ProviderSkippedWarning
from .types import Provider

if TYPE_CHECKING:
    from .registry import ProviderRegistry

__all__ = [
    "close_quietly",
    "nothing_registered",
    "provider_name",
    "register_all",
    "registry_settings",
    "response_cache_setting",
    "warn_skipped",
]

logger = logging.getLogger("provider_kit")

#: What ``register`` requires of a provider, for the message when something is missing: the
#: members the ``Provider`` protocol declares, in its order (``isinstance`` does not say which).
_PROVIDER_MEMBERS = (
    *Provider.__annotations__,
    *(
        key
        for key, value in vars(Provider).items()
        if callable(value) and (not key.startswith("_") or key in ("__enter__", "__exit__"))
    ),
)


def _missing_members(provider: object) -> List[str]:
    return [member for member in _PROVIDER_MEMBERS if not hasattr(provider, member)]


def provider_name(provider: object) -> str:
    """The name to register ``provider`` under, once it is seen to be a ``Provider``.

    :raises ConfigError: naming the members of the protocol it lacks, or for a name that is not
        a non-empty string.
    """
    missing = _missing_members(provider)
    if missing or not isinstance(provider, Provider):
        raise ConfigError(
            f"{type(provider).__name__} is not a Provider: it has no " + ", ".join(missing or ["(unknown member)"])
        )
    name = provider.name
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{type(provider).__name__}.name must be a non-empty string")
    return name


def close_quietly(provider: Any) -> None:
    """``provider.close()``; an error is logged, never raised (one provider must not stop others)."""
    try:
        provider.close()
    except Exception as exc:
        logger.warning("error closing provider %r: %s", getattr(provider, "name", "?"), describe_error(exc))


def registry_settings(
    config: Config,
    breaker_threshold: Optional[int],
    breaker_cooldown: Optional[float],
    batch_concurrency: Optional[int],
    clock: Optional[Callable[[], float]],
) -> Dict[str, Any]:
    """The registry constructor's keyword arguments: each argument, else the config's value,
    else the default."""

    def pick(argument: Any, configured: Any, default: Any) -> Any:
        return argument if argument is not None else configured if configured is not None else default

    return {
        "default_provider": config.default_provider,
        "breaker_threshold": pick(breaker_threshold, config.breaker_threshold, DEFAULT_BREAKER_THRESHOLD),
        "breaker_cooldown": pick(breaker_cooldown, config.breaker_cooldown, DEFAULT_BREAKER_COOLDOWN),
        "batch_concurrency": pick(batch_concurrency, None, DEFAULT_BATCH_CONCURRENCY),
        "clock": pick(clock, None, time.monotonic),
    }


def register_all(
    registry: ProviderRegistry, config: Config, types: Mapping[str, Any], *, strict: bool, cache: Any = None
) -> Dict[str, str]:
    """Build and register every provider of ``config``; name -> reason for each one skipped.

    ``cache`` (a ``ResponseCache``, or None) is given as ``response_cache`` to every provider
    whose type takes that option and whose table does not set it.

    :raises ConfigError: for a mistake in a table, or with ``strict`` when a provider was
        skipped and others were not; the registry is closed first, so nothing built is kept.
    """
    skipped: Dict[str, str] = {}
    try:
        for spec in config.providers.values():
            reason = _register_spec(registry, _with_cache(spec, types, cache) if cache is not None else spec, types)
            if reason is not None:
                skipped[spec.name] = reason
    except BaseException:
        registry.close()  # a mistake in a later table: nothing built is kept
        raise
    if strict and skipped and len(registry):  # with none left, NoProvidersError says it all
        registry.close()
        raise ConfigError(_strict_message(config, skipped))
    return skipped


def response_cache_setting(config: Config, cache: Any) -> Any:
    """The registry's response cache: the ``cache=`` argument, else the config's ``cache``;
    None when there is none. Opened (lazily: no file is touched yet) only when set."""
    setting = cache if cache is not None else config.cache
    if setting is None or setting is False:
        return None
    from ._response_cache import open_cache

    return open_cache(setting)


def _with_cache(spec: ProviderSpec, types: Mapping[str, Any], cache: Any) -> ProviderSpec:
    """``spec`` with ``response_cache`` set to the registry's, when its type takes the option
    and its table leaves it unset (a table's own ``response_cache``, false included, wins)."""
    if "response_cache" in spec.options or spec.type is None:
        return spec
    try:
        factory = resolve_type(spec, types)
    except (TypeUnavailable, ConfigError):  # reported when the spec itself is built
        return spec
    option_schema = getattr(factory, "option_schema", None)
    if not callable(option_schema) or "response_cache" not in option_schema():
        return spec  # a third-party type without the option: its calls are not cached
    return ProviderSpec(spec.name, spec.type, {**spec.options, "response_cache": cache}, spec.where)


def _register_spec(registry: ProviderRegistry, spec: ProviderSpec, types: Mapping[str, Any]) -> Optional[str]:
    """Build and register one spec; the reason it was skipped, or None.

    :raises ConfigError: for a mistake in the spec: ``resolve_type`` (a misspelt type) or
        the class's ``from_config`` / constructor (a bad option) refused it. What the built
        provider's ``validate_config()`` refuses is absent, not mistaken: a skip.
    """
    try:
        factory = resolve_type(spec, types)
    except TypeUnavailable as exc:  # a plugin not installed here
        return _scrub(str(exc), spec)
    try:
        provider = build_provider(factory, spec)
    except ConfigError as exc:
        raise _mistake(exc, spec) from None
    except Exception as exc:  # a broken third-party class: describe it, no traceback
        return _skip_reason(describe_error(exc), spec)
    try:
        built_name = getattr(provider, "name", None)
        if built_name is not None and built_name != spec.name:
            raise ConfigError(f"{spec.where}: the provider class built a provider named {built_name!r}")
        registry.register(provider)
    except Exception as exc:
        if hasattr(provider, "close"):
            close_quietly(provider)
        return _skip_reason(str(exc) if isinstance(exc, ConfigError) else describe_error(exc), spec)
    return None


def _scrub(text: str, spec: ProviderSpec) -> str:
    """Mask in ``text`` every secret value of ``spec``'s options (a third party may echo one)."""
    return Redactor.for_options(spec.options).redact(text)


def _mistake(error: ConfigError, spec: ProviderSpec) -> ConfigError:
    """``error`` from building ``spec``, its message prefixed with where the table is and any
    secret of the table masked (a third-party class may quote one)."""
    message = str(error)
    if spec.where not in message:
        message = f"{spec.where}: {message}"
    return ConfigError(_scrub(message, spec))


def _skip_reason(reason: str, spec: ProviderSpec) -> str:
    """``reason`` prefixed with where the table is, every secret of the table masked."""
    if spec.where not in reason:
        reason = f"{spec.where}: {reason}"
    return _scrub(reason, spec)


def _origin(config: Config) -> str:
    return {None: "the registry", "dict": "the config dict"}.get(config.origin, config.origin) or "the registry"


def _strict_message(config: Config, skipped: Mapping[str, str]) -> str:
    count = f"{len(skipped)} provider" + ("s" if len(skipped) > 1 else "")
    lines = [f"strict=True: {count} of {_origin(config)} would be skipped:"]
    lines += [f"  - {name}: {reason}" for name, reason in skipped.items()]
    return "\n".join(lines)


def nothing_registered(config: Config, skipped: Mapping[str, str]) -> str:
    """The ``NoProvidersError`` message: every reason, or where the configuration was looked for."""
    if skipped:
        lines = [f"no provider could be registered from {_origin(config)}:"]
        lines += [f"  - {name}: {reason}" for name, reason in skipped.items()]
        return "\n".join(lines)
    if config.searched:
        return "no providers are configured; looked at: " + "; ".join(config.searched)
    return f"no providers are configured in {_origin(config)} (add a [providers.NAME] table)"


def warn_skipped(skipped: Mapping[str, str]) -> None:
    """A ``ProviderSkippedWarning`` per skipped provider, pointing at the caller's line."""
    for name, reason in skipped.items():
        warnings.warn(
            ProviderSkippedWarning(f"skipped provider {name!r}: {reason}", provider=name, reason=reason),
            stacklevel=_caller_stacklevel(),
        )


def _caller_stacklevel() -> int:
    """The ``warnings.warn`` stacklevel of the nearest caller outside provider_kit.

    A warning then points at the user's ``from_config(...)`` or ``get_registry()`` line, which
    is also where the warnings filter looks for its "once per location" rule.
    """
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame = sys._getframe(1)  # the function calling warnings.warn: stacklevel 1
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame = frame.f_back
        level += 1
    return level
