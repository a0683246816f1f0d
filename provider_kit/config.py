"""Configuration: where it is found, what shape it must have, and how secrets are shown.

This module owns:

- ``load_config(source)``: a TOML file, a dict of the same shape, or (``None``) the search
  ``$PROVIDER_KIT_CONFIG`` -> ``./provider_kit.toml`` -> ``~/.config/provider_kit/config.toml``
  -> the providers the environment describes (``ENV_PROVIDERS``).
- ``Config`` and ``ProviderSpec``: the validated shape. A spec's ``type`` is resolved later by
  the registry, because third-party types come from entry points that this module must not
  load; but the options of a table whose type is known here (a built-in, or a class the caller
  passes) are checked against that class's ``option_schema()``, so that a mistake in the file
  is a ``ConfigError`` from ``load_config`` itself. The built-in classes are handed to this
  module by ``provider_kit.providers`` (``use_builtin_types``), which sits above it.
- ``check_options`` and the ``as_*`` validators that provider classes use on their options.
- ``mask_secret`` / ``mask_options``: the one way a secret is ever displayed.

It imports nothing but ``errors`` from the package, and never ``requests``; ``tomllib`` and
``difflib`` are imported inside the functions that need them to keep ``import provider_kit``
light.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .errors import ConfigError

__all__ = [
    "BUILTIN_TYPE_NAMES",
    "CONFIG_ENV_VAR",
    "ENV_PROVIDERS",
    "Config",
    "ProviderSpec",
    "as_bool",
    "as_choice",
    "as_env_name",
    "as_non_negative_int",
    "as_non_negative_number",
    "as_number_range",
    "as_positive_int",
    "as_positive_number",
    "as_str",
    "as_str_dict",
    "as_str_list",
    "as_url",
    "check_options",
    "close_matches",
    "did_you_mean",
    "is_secret_name",
    "load_config",
    "mask_options",
    "mask_secret",
    "mask_url",
    "use_builtin_types",
]

#: The environment variable naming a config file; when set, the file must exist.
CONFIG_ENV_VAR = "PROVIDER_KIT_CONFIG"
#: Looked for in the current directory.
LOCAL_CONFIG_NAME = "provider_kit.toml"
#: Looked for under ``Path.home()``.
USER_CONFIG_PARTS = (".config", "provider_kit", "config.toml")

#: Built-in provider type names. A ``[providers.X]`` table without ``type`` gets ``type = X``
#: when X is one of these (or one of the types the caller passes as ``known_types``).
BUILTIN_TYPE_NAMES = ("openai", "anthropic", "ollama")

#: Type name -> provider class of the built-in types, for the option check of ``load_config``.
#: Filled by ``use_builtin_types`` when ``provider_kit.providers`` is imported (``import
#: provider_kit`` does): this module sits below the providers and must not import them.
_builtin_classes: Mapping[str, Any] = {}

#: With no config file, each variable that is set (and not empty) adds a provider of that type,
#: named after the type, with no options: the provider class reads its own variables.
ENV_PROVIDERS: Dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "ollama": "OLLAMA_HOST",
}

_TOP_LEVEL_KEYS = ("default_provider", "providers", "breaker_threshold", "breaker_cooldown")

#: Words that make an option or header name secret (``api_key``, ``x-api-key``,
#: ``Authorization``, ``access_token``...). Names are split into words so that ``max_tokens``
#: and ``keep_alive`` are not secrets.
_SECRET_WORDS = frozenset(
    {
        "key",
        "apikey",
        "token",
        "secret",
        "authorization",
        "password",
        "passwd",
        "credential",
        "credentials",
        "cookie",
    }
)

#: A portable environment variable name. A ``*_env`` option holding anything else is most
#: likely the key itself pasted in the wrong place, so it is refused and never shown.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

PathLike = Union[str, "os.PathLike[str]"]
ConfigSource = Union[PathLike, Mapping[str, Any], "Config", None]
Validator = Callable[[Any], Any]
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
    known: Dict[str, Any] = {name: None for name in BUILTIN_TYPE_NAMES}
    known.update(_builtin_classes)
    if isinstance(known_types, Mapping):
        known.update(known_types)
    elif known_types is not None:
        if isinstance(known_types, (str, bytes)):
            raise ConfigError("known_types must be type names or a mapping of type name -> class, not a string")
        known.update((name, known.get(name)) for name in known_types)
    return known


def _check_spec_options(spec: ProviderSpec, cls: Any) -> None:
    """Check ``spec``'s options against ``cls.option_schema()`` when the class has one.

    :raises ConfigError: naming the file, the provider and the key, with a close match.
    """
    option_schema = getattr(cls, "option_schema", None)
    if callable(option_schema):
        check_options(spec.options, option_schema(), where=spec.where)


# --------------------------------------------------------------------------- secrets


def mask_secret(value: object) -> str:
    """Return a display form of a secret: ``"***"``, plus its last 4 characters when it is long.

    Short secrets show nothing at all, because 4 characters of an 8-character key are too many.
    """
    if isinstance(value, str) and len(value) >= 12:
        return "***" + value[-4:]
    return "***"


def is_secret_name(name: str) -> bool:
    """True when an option or header called ``name`` holds a secret.

    ``*_env`` options (``api_key_env``) name an environment variable, not a secret.
    """
    lowered = name.lower()
    if lowered.endswith("_env"):
        return False
    words = lowered.replace("-", "_").replace(".", "_").split("_")
    return any(word in _SECRET_WORDS for word in words) or lowered in _SECRET_WORDS


def mask_url(value: str) -> str:
    """``value`` with the password of a ``scheme://user:password@host`` URL shown as ``***``."""
    return _mask_url_password(value)


def _mask_url_password(value: str) -> str:
    # "https://user:pw@host" carries a password; show the URL without it.
    scheme, sep, rest = value.partition("://")
    if not sep:
        return value
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return value
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{slash}{path}"


def _mask_value(name: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _mask_value(str(key), item) for key, item in value.items()}
    if is_secret_name(name) and value is not None and not isinstance(value, (bool, int, float)):
        return mask_secret(value)
    if name.lower().endswith("_env") and isinstance(value, str) and not _ENV_NAME.fullmatch(value):
        return mask_secret(value)  # not a variable name: perhaps the key itself
    if isinstance(value, str):
        return _mask_url_password(value)
    if isinstance(value, (list, tuple)):
        return [_mask_value(name, item) for item in value]
    return value


def mask_options(options: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of ``options`` with every secret masked, recursing into tables such as headers."""
    return {key: _mask_value(key, value) for key, value in options.items()}


# --------------------------------------------------------------------------- suggestions


def close_matches(word: str, candidates: Iterable[str]) -> List[str]:
    """Up to three candidates that look like ``word`` (a typo), best first."""
    import difflib  # lazily: only error paths need it

    return difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'best'?"`` for the closest candidate, or ``""`` when none is close."""
    matches = close_matches(word, candidates)
    return f"; did you mean {matches[0]!r}?" if matches else ""


# --------------------------------------------------------------------------- validators
# Each validator returns the normalised value or raises ValueError with a short reason that
# never contains the value itself: check_options decides whether the value may be shown.


def _type_name(value: object) -> str:
    return type(value).__name__


def as_str(value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {_type_name(value)}")
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def as_env_name(value: Any) -> str:
    """The name of an environment variable: letters, digits and ``_``, not starting with a digit."""
    text = as_str(value)
    if not _ENV_NAME.fullmatch(text):
        raise ValueError(
            "must name an environment variable (letters, digits and _), not hold the key itself"
        )
    return text


def as_url(value: Any) -> str:
    """An ``http://`` or ``https://`` URL with a host; the trailing slash is removed."""
    from urllib.parse import urlsplit

    text = as_str(value).strip()
    try:
        parts = urlsplit(text)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError("must be an http:// or https:// URL with a host") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ValueError("must be an http:// or https:// URL with a host")
    return text.rstrip("/")


def _as_real(value: Any) -> float:
    # bool is an int subclass, and "5" is not a number: both are refused.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number, not {_type_name(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int with hundreds of digits
        raise ValueError("must be a finite number") from None
    if not math.isfinite(number):
        raise ValueError("must be a finite number")
    return number


def as_positive_number(value: Any) -> float:
    """A finite number greater than 0 (an int or a float; never a bool or a string)."""
    number = _as_real(value)
    if number <= 0:
        raise ValueError("must be a positive number")
    return number


def as_non_negative_number(value: Any) -> float:
    """A finite number greater than or equal to 0."""
    number = _as_real(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def as_number_range(lo: float, hi: float) -> Validator:
    """A validator for a finite number between ``lo`` and ``hi`` inclusive (a temperature)."""

    def validate(value: Any) -> float:
        number = _as_real(value)
        if not lo <= number <= hi:
            raise ValueError(f"must be between {lo:g} and {hi:g}")
        return number

    validate.__name__ = f"as_number_range({lo:g}, {hi:g})"
    return validate


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be an integer, not {_type_name(value)}")
    return int(value)


def as_non_negative_int(value: Any) -> int:
    """An integer >= 0 (never a bool or a float)."""
    number = _as_int(value)
    if number < 0:
        raise ValueError("must not be negative")
    return number


def as_positive_int(value: Any) -> int:
    """An integer > 0 (never a bool or a float)."""
    number = _as_int(value)
    if number <= 0:
        raise ValueError("must be a positive integer")
    return number


def as_bool(value: Any) -> bool:
    """``true`` or ``false`` (never 0, 1 or a string)."""
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {_type_name(value)}")
    return value


def as_str_list(value: Any) -> List[str]:
    """A list of strings (a single string is refused: it is usually a missing bracket)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"must be a list of strings, not {_type_name(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ValueError(f"item {index} must be a string, not {_type_name(item)}")
    return list(value)


def as_str_dict(value: Any) -> Dict[str, str]:
    """A table of string to string, such as extra HTTP headers."""
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a table of strings, not {_type_name(value)}")
    result: Dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise ValueError("must have non-empty string keys")
        if not isinstance(item, str):
            raise ValueError(f"entry {key!r} must be a string, not {_type_name(item)}")
        result[key] = item
    return result


def as_choice(*choices: str) -> Validator:
    """A validator accepting exactly one of ``choices``."""

    def validate(value: Any) -> str:
        if value not in choices:
            raise ValueError("must be one of " + ", ".join(repr(choice) for choice in choices))
        return str(value)

    validate.__name__ = "as_choice"
    return validate


def _show_value(key: str, value: Any) -> str:
    if is_secret_name(key):
        return f"a {_type_name(value)}"
    try:
        shown = repr(_mask_value(key, value))
    except (ValueError, RecursionError):  # an int past the digit limit, a deeply nested value
        return f"a {_type_name(value)}"
    return shown if len(shown) <= 60 else shown[:57] + "..."


def check_options(
    options: Mapping[str, Any], schema: Mapping[str, Validator], *, where: str
) -> Dict[str, Any]:
    """Validate a provider's options against ``schema`` (option name -> validator).

    :param options: the options of one ``[providers.X]`` table, without ``type``.
    :param schema: every allowed option and the validator that normalises its value.
    :param where: the place the options came from, used as the prefix of every message.
    :returns: the normalised options, in their original order.
    :raises ConfigError: for an unknown option (with a suggestion) or an invalid value. A
        secret value is never shown.
    """
    result: Dict[str, Any] = {}
    for key, value in options.items():
        validator = schema.get(key)
        if validator is None:
            allowed = ", ".join(sorted(schema)) or "none"
            raise ConfigError(
                f"{where}: unknown option {key!r}{did_you_mean(key, schema)} (allowed: {allowed})"
            )
        try:
            result[key] = validator(value)
        except ValueError as exc:
            raise ConfigError(f"{where}: {key} {exc} (got {_show_value(key, value)})") from None
    return result


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
    """

    __slots__ = (
        "_breaker_cooldown",
        "_breaker_threshold",
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
    ) -> None:
        self._providers = {spec.name: spec for spec in providers}
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

    def as_dict(self, mask: bool = True) -> Dict[str, Any]:
        """The effective configuration in the TOML shape, every secret masked by default."""
        data: Dict[str, Any] = {}
        if self._default_provider is not None:
            data["default_provider"] = self._default_provider
        if self._breaker_threshold is not None:
            data["breaker_threshold"] = self._breaker_threshold
        if self._breaker_cooldown is not None:
            data["breaker_cooldown"] = self._breaker_cooldown
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
}


def _registry_settings(data: Mapping[str, Any], *, label: str) -> Dict[str, Any]:
    """The top-level registry settings present in ``data``, validated."""
    present = {key: data[key] for key in _REGISTRY_SETTINGS if key in data}
    return check_options(present, _REGISTRY_SETTINGS, where=label)


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
    settings = _registry_settings(data, label=str(path))
    return Config(specs, default_provider=default, source=path, origin=str(path), **settings)


def _from_environment(searched: Sequence[str]) -> Config:
    specs = [
        ProviderSpec(type_name, type_name, {}, f"environment: {variable}")
        for type_name, variable in ENV_PROVIDERS.items()
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
    searched.append("environment variables " + ", ".join(ENV_PROVIDERS.values()))
    return _from_environment(searched)


def load_config(source: ConfigSource = None, *, known_types: KnownTypes = None) -> Config:
    """Load and validate a configuration.

    :param source: a path to a TOML file, a dict of the same shape, a ``Config`` (returned as
        is), or None to search ``$PROVIDER_KIT_CONFIG`` (which must exist when set), then
        ``./provider_kit.toml``, then ``~/.config/provider_kit/config.toml``, and otherwise use
        the providers the environment describes (``ENV_PROVIDERS``).
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
