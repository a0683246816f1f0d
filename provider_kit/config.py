"""Configuration: where it is found and what shape it must have.

This module owns:

- ``load_config(source)``: a TOML file, a dict of the same shape, or (``None``) the search
  ``$PROVIDER_KIT_CONFIG`` -> ``./provider_kit.toml`` -> ``~/.config/provider_kit/config.toml``
  -> the providers the environment describes.
- ``Config`` and ``ProviderSpec``: the validated shape. A spec's ``type`` is resolved later by
  the registry, because third-party types come from entry points that this module must not
  load; but the options of a table whose type is known here (a built-in, or a class the caller
  passes) are checked against that class's ``option_schema()``, so that a mistake in the file
  is a ``ConfigError`` from ``load_config`` itself.

It knows no provider type by name. The built-in classes are handed to it by
``provider_kit.providers`` (``use_builtin_types``), which sits above it; everything type-specific
(which table names are types, which variable adds a provider when no file is found) is read
from those classes. Option validators live in ``_options``, secret masking in ``_secrets``.

It imports nothing but ``errors``, ``_options`` and ``_secrets`` from the package, and never
``requests``; ``tomllib`` is imported inside the function that reads a file, to keep
``import provider_kit`` light.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ._options import (
    Validator,
    as_cache_setting,
    as_log_setting,
    as_non_negative_int,
    as_positive_number,
    check_options,
    did_you_mean,
)
from ._options import type_name as _type_name
from ._secrets import mask_options
from .errors import ConfigError

__all__ = [
    "CONFIG_ENV_VAR",
    "Config",
    "ProviderSpec",
    "load_config",
]

#: The environment variable naming a config file; when set, the file must exist.
CONFIG_ENV_VAR = "PROVIDER_KIT_CONFIG"
#: Looked for in the current directory.
LOCAL_CONFIG_NAME = "provider_kit.toml"
#: Looked for under ``Path.home()``.
USER_CONFIG_PARTS = (".config", "provider_kit", "config.toml")

#: Type name -> provider class of the built-in types, for the type defaulting, the option check
#: and the environment-only configuration of ``load_config``. Filled by ``use_builtin_types``
#: when ``provider_kit.providers`` is imported (``import provider_kit`` does): this module sits
#: below the providers and must not import them.
_builtin_classes: Mapping[str, Any] = {}

_TOP_LEVEL_KEYS = ("default_provider", "providers", "breaker_threshold", "breaker_cooldown", "log", "cache")

PathLike = Union[str, "os.PathLike[str]"]
ConfigSource = Union[PathLike, Mapping[str, Any], "Config", None]
#: Provider types besides the built-ins: type names, or a mapping of type name -> class.
KnownTypes = Union[Iterable[str], Mapping[str, Any], None]


def use_builtin_types(types: Mapping[str, Any]) -> None:
    """Give ``load_config`` the built-in provider classes (type name -> class).

    Called once by ``provider_kit.providers``; the mapping is kept, not copied, so that it is
    the one table of built-in types.
    """
    global _builtin_classes
    _builtin_classes = types


def _known_classes(known_types: KnownTypes) -> Dict[str, Any]:
    """Type name -> class (or None when only the name is known): built-ins, then ``known_types``."""
    known: Dict[str, Any] = dict(_builtin_classes)
    if isinstance(known_types, Mapping):
        known.update(known_types)
    elif known_types is not None:
        if isinstance(known_types, (str, bytes)):
            raise ConfigError("known_types must be type names or a mapping of type name -> class, not a string")
        known.update((name, known.get(name)) for name in known_types)
    return known


def environment_variables(known: Mapping[str, Any]) -> Dict[str, str]:
    """Type name -> the variable that, when set and not empty, adds a provider of that type to
    a configuration found in no file: each class's ``enabling_env_var()`` (its key variable, or
    for a type that needs no key, its host variable). Types without one are left out."""
    table: Dict[str, str] = {}
    for name, cls in known.items():
        enabling = getattr(cls, "enabling_env_var", None)
        variable = enabling() if callable(enabling) else None
        if isinstance(variable, str) and variable:
            table[name] = variable
    return table


def _check_spec_options(spec: ProviderSpec, cls: Any) -> None:
    """Check ``spec``'s options against ``cls.option_schema()`` when the class has one.

    :raises ConfigError: naming the file, the provider and the key, with a close match.
    """
    option_schema = getattr(cls, "option_schema", None)
    if callable(option_schema):
        check_options(spec.options, option_schema(), where=spec.where)


# --------------------------------------------------------------------------- the shape


class ProviderSpec:
    """One ``[providers.NAME]`` table: ``name``, ``type`` (or None) and the other ``options``.

    ``where`` says where it came from, for messages: ``provider_kit.toml: [providers.groq]``.
    """

    __slots__ = ("_name", "_options", "_type", "_where")

    def __init__(self, name: str, type: Optional[str], options: Mapping[str, Any], where: str) -> None:
        self._name = name
        self._type = type
        self._options = dict(options)
        self._where = where

    @property
    def name(self) -> str:
        """The provider's name: the table name."""
        return self._name

    @property
    def type(self) -> Optional[str]:
        """The provider type to build, or None when the table gives none and its name is unknown."""
        return self._type

    @property
    def options(self) -> Dict[str, Any]:
        """A copy of every key of the table except ``type``."""
        return dict(self._options)

    @property
    def where(self) -> str:
        """Where the table came from, for messages."""
        return self._where

    def as_dict(self, mask: bool = True) -> Dict[str, Any]:
        """The table as it would be written, secrets masked unless ``mask`` is False."""
        table: Dict[str, Any] = {} if self._type is None else {"type": self._type}
        table.update(mask_options(self._options) if mask else self._options)
        return table

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProviderSpec):
            return NotImplemented
        return (self._name, self._type, self._options, self._where) == (
            other._name,
            other._type,
            other._options,
            other._where,
        )

    __hash__ = None  # type: ignore[assignment]  # options are a dict

    def __repr__(self) -> str:
        return (
            f"ProviderSpec(name={self._name!r}, type={self._type!r}, "
            f"options={mask_options(self._options)!r}, where={self._where!r})"
        )


class Config:
    """A validated configuration; it knows no provider classes.

    ``source`` is the file read (or None), ``origin`` a short description for messages (the
    file, ``"dict"`` or ``"environment"``), ``searched`` what the search looked at.
    ``breaker_threshold`` and ``breaker_cooldown`` are the registry's circuit-breaker settings,
    None when the configuration leaves them to the registry's defaults.
    ``log`` is the call log (True, False or a path; a relative path is relative to the file),
    None when not set. ``cache`` is the response cache of every provider (True, False or a
    path; a relative path in a file is relative to the file's directory), None when not set.
    """

    __slots__ = (
        "_breaker_cooldown",
        "_breaker_threshold",
        "_log",
        "_cache",
        "_default_provider",
        "_origin",
        "_providers",
        "_searched",
        "_source",
    )

    def __init__(
        self,
        providers: Iterable[ProviderSpec] = (),
        *,
        default_provider: Optional[str] = None,
        source: Optional[Path] = None,
        origin: str = "dict",
        searched: Sequence[str] = (),
        breaker_threshold: Optional[int] = None,
        breaker_cooldown: Optional[float] = None,
        log: Union[bool, str, None] = None,
        cache: Any = None,
    ) -> None:
        self._providers = {spec.name: spec for spec in providers}
        self._log = log
        self._cache = cache
        self._default_provider = default_provider
        self._source = source
        self._origin = origin
        self._searched = tuple(searched)
        self._breaker_threshold = breaker_threshold
        self._breaker_cooldown = breaker_cooldown

    @property
    def source(self) -> Optional[Path]:
        """The file the configuration was read from, or None."""
        return self._source

    @property
    def origin(self) -> str:
        """The file path, ``"dict"`` or ``"environment"``."""
        return self._origin

    @property
    def default_provider(self) -> Optional[str]:
        """The configured ``default_provider``, or None."""
        return self._default_provider

    @property
    def providers(self) -> Dict[str, ProviderSpec]:
        """Name -> spec, in the order of the configuration (a copy)."""
        return dict(self._providers)

    @property
    def searched(self) -> Tuple[str, ...]:
        """What the search looked at when ``load_config()`` got no source, for messages."""
        return self._searched

    @property
    def breaker_threshold(self) -> Optional[int]:
        """Failures in a row that open a provider's circuit (0: never), or None (the default)."""
        return self._breaker_threshold

    @property
    def breaker_cooldown(self) -> Optional[float]:
        """Seconds an open circuit stays open, or None (the registry's default)."""
        return self._breaker_cooldown

    @property
    def log(self) -> Union[bool, str, None]:
        """The top-level ``log``: True, False, a path (as written), or None when not set."""
        return self._log

    @property
    def cache(self) -> Any:
        """The top-level ``cache``: True, False, a path, or None when not set."""
        return self._cache

    def as_dict(self, mask: bool = True) -> Dict[str, Any]:
        """The effective configuration in the TOML shape, every secret masked by default."""
        data: Dict[str, Any] = {}
        if self._default_provider is not None:
            data["default_provider"] = self._default_provider
        if self._breaker_threshold is not None:
            data["breaker_threshold"] = self._breaker_threshold
        if self._breaker_cooldown is not None:
            data["breaker_cooldown"] = self._breaker_cooldown
        if self._log is not None:
            data["log"] = self._log
        if self._cache is not None:
            data["cache"] = self._cache if isinstance(self._cache, bool) else str(self._cache)
        data["providers"] = {name: spec.as_dict(mask=mask) for name, spec in self._providers.items()}
        return data

    def __repr__(self) -> str:
        return (
            f"Config(origin={self._origin!r}, default_provider={self._default_provider!r}, "
            f"providers={list(self._providers.values())!r})"
        )


# --------------------------------------------------------------------------- loading


#: Tables and arrays nested deeper than this are refused: a real configuration needs four
#: levels (``providers`` > name > ``headers`` > value), and a deeper (or self-containing) dict
#: would exhaust the recursion of the code that shows or masks it.
MAX_NESTING = 32


def _check_structure(data: Mapping[str, Any], *, label: str) -> None:
    """Refuse non-string keys and nesting past ``MAX_NESTING``, walking without recursion."""
    stack: List[Tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping):
            if depth > MAX_NESTING:
                raise ConfigError(f"{label}: tables are nested more than {MAX_NESTING} levels deep")
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ConfigError(f"{label}: every key must be a string, not {_type_name(key)}")
                stack.append((item, depth + 1))
        elif isinstance(value, (list, tuple)):
            if depth > MAX_NESTING:
                raise ConfigError(f"{label}: arrays are nested more than {MAX_NESTING} levels deep")
            stack.extend((item, depth + 1) for item in value)


def _validate_data(
    data: Mapping[str, Any],
    *,
    label: str,
    known: Mapping[str, Any],
) -> Tuple[Optional[str], List[ProviderSpec]]:
    """Check the top-level shape; ``label`` prefixes every message (a file or "config dict")."""
    _check_structure(data, label=label)
    for key in data:
        if key not in _TOP_LEVEL_KEYS:
            raise ConfigError(
                f"{label}: unknown top-level key {str(key)!r}{did_you_mean(str(key), _TOP_LEVEL_KEYS)}"
                f" (allowed: {', '.join(_TOP_LEVEL_KEYS)})"
            )
    default = data.get("default_provider")
    if default is not None and (not isinstance(default, str) or not default.strip()):
        raise ConfigError(f"{label}: default_provider must be a non-empty string, not {_type_name(default)}")
    providers = data.get("providers", {})
    if not isinstance(providers, Mapping):
        raise ConfigError(
            f"{label}: providers must be a table of [providers.NAME] tables, not {_type_name(providers)}"
        )
    specs: List[ProviderSpec] = []
    for name, table in providers.items():
        where = f"{label}: [providers.{name}]"
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{label}: a provider name must be a non-empty string")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{where} must be a table, not {_type_name(table)}")
        options = {str(key): value for key, value in table.items() if key != "type"}
        if "type" in table:
            type_name = table["type"]
            if not isinstance(type_name, str) or not type_name.strip():
                raise ConfigError(f"{where}: type must be a non-empty string")
        else:
            type_name = name if name in known else None
        spec = ProviderSpec(name, type_name, options, where)
        if type_name is not None:
            _check_spec_options(spec, known.get(type_name))
        specs.append(spec)
    return default, specs


#: The registry settings a config may set at the top level, with their validators.
_REGISTRY_SETTINGS: Dict[str, Validator] = {
    "breaker_threshold": as_non_negative_int,
    "breaker_cooldown": as_positive_number,
    "log": as_log_setting,
    "cache": as_cache_setting,
}


def _registry_settings(data: Mapping[str, Any], *, label: str, directory: Optional[Path] = None) -> Dict[str, Any]:
    """The top-level registry settings present in ``data``, validated; a relative ``cache``
    path is taken relative to ``directory`` (the config file's)."""
    present = {key: data[key] for key in _REGISTRY_SETTINGS if key in data}
    settings = check_options(present, _REGISTRY_SETTINGS, where=label)
    cache = settings.get("cache")
    if cache is not None and not isinstance(cache, bool) and isinstance(cache, (str, os.PathLike)):
        path = Path(os.fspath(cache)).expanduser()
        settings["cache"] = directory / path if directory is not None and not path.is_absolute() else path
    return settings


def _read_toml(path: Path) -> Dict[str, Any]:
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python < 3.11
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

    try:
        with path.open("rb") as handle:
            data: Dict[str, Any] = tomllib.load(handle)
            return data
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {str(path)!r} is a directory") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: invalid TOML: the file is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        # The message ends with "(at line N, column M)" on every supported version.
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except ValueError:  # an integer past sys.get_int_max_str_digits(), raised by int()
        raise ConfigError(f"{path}: invalid TOML: a number has too many digits") from None
    except RecursionError:  # arrays or inline tables nested hundreds deep
        raise ConfigError(f"{path}: invalid TOML: values are nested too deeply") from None


def _from_file(path: Path, known: Mapping[str, Any]) -> Config:
    data = _read_toml(path)
    default, specs = _validate_data(data, label=str(path), known=known)
    settings = _registry_settings(data, label=str(path), directory=path.parent)
    return Config(specs, default_provider=default, source=path, origin=str(path), **settings)


def _from_environment(known: Mapping[str, Any], searched: Sequence[str]) -> Config:
    # A provider per type whose variable is set, named after the type, with no options: the
    # provider class reads its own variables.
    specs = [
        ProviderSpec(name, name, {}, f"environment: {variable}")
        for name, variable in environment_variables(known).items()
        if os.environ.get(variable)
    ]
    return Config(specs, origin="environment", searched=searched)


def _search(known: Mapping[str, Any]) -> Config:
    named = os.environ.get(CONFIG_ENV_VAR)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"${CONFIG_ENV_VAR} names {named!r}, which does not exist or is not a file")
        return _from_file(path, known)
    searched = [f"${CONFIG_ENV_VAR} (not set)"]
    candidates = [Path(LOCAL_CONFIG_NAME)]
    with contextlib.suppress(RuntimeError):  # RuntimeError: no home directory can be determined
        candidates.append(Path.home().joinpath(*USER_CONFIG_PARTS))
    for path in candidates:
        if path.is_file():
            return _from_file(path, known)
        searched.append(f"{path} (not found)")
    searched.append("environment variables " + ", ".join(environment_variables(known).values()))
    return _from_environment(known, searched)


def load_config(source: ConfigSource = None, *, known_types: KnownTypes = None) -> Config:
    """Load and validate a configuration.

    :param source: a path to a TOML file, a dict of the same shape, a ``Config`` (returned as
        is), or None to search ``$PROVIDER_KIT_CONFIG`` (which must exist when set), then
        ``./provider_kit.toml``, then ``~/.config/provider_kit/config.toml``, and otherwise use
        the providers the environment describes: one per known type whose key variable (for a
        type that needs no key, its host variable) is set.
    :param known_types: provider types besides the built-ins: type names, or a mapping of type
        name -> provider class. A table named after a known type needs no ``type``; the options
        of a table whose type's class has an ``option_schema()`` class method (every built-in
        does) are checked against it.
    :raises ConfigError: for a missing or unreadable file, broken TOML (with line and column),
        an unknown top-level key (with a suggestion), a badly shaped provider table, or an
        unknown option or a bad value in the table of a known type. The message names the
        file, the provider and the key, and suggests the close match of a misspelt name.
    """
    if isinstance(source, Config):
        return source
    known = _known_classes(known_types)
    if source is None:
        return _search(known)
    if isinstance(source, Mapping):
        default, specs = _validate_data(source, label="config dict", known=known)
        settings = _registry_settings(source, label="config dict")
        return Config(specs, default_provider=default, origin="dict", **settings)
    if isinstance(source, (str, os.PathLike)) and not isinstance(source, bytes):
        path = Path(source).expanduser()
        return _from_file(path, known)
    raise ConfigError(f"a config source must be a path, a dict or None, not {_type_name(source)}")
