"""Option validation: the ``as_*`` validators provider classes declare their options with,
``check_options`` that applies them to a config table or constructor keywords, and the
"did you mean" suggestions for a misspelt name.

Each validator returns the normalised value or raises ``ValueError`` with a short reason that
never contains the value itself: ``check_options`` decides whether the value may be shown
(never a secret's). ``difflib`` is imported only on the error path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterable, List

from ._secrets import ENV_NAME, is_secret_name, mask_value
from .errors import ConfigError

__all__ = [
    "Validator",
    "as_bool",
    "as_cache_setting",
    "as_choice",
    "as_env_name",
    "as_log_setting",
    "as_non_negative_int",
    "as_non_negative_number",
    "as_positive_int",
    "as_positive_number",
    "as_str",
    "as_str_dict",
    "as_str_list",
    "as_url",
    "check_options",
    "close_matches",
    "did_you_mean",
    "type_name",
]

Validator = Callable[[Any], Any]


def close_matches(word: str, candidates: Iterable[str]) -> List[str]:
    """Up to three candidates that look like ``word`` (a typo), best first."""
    import difflib  # lazily: only error paths need it

    return difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'best'?"`` for the closest candidate, or ``""`` when none is close."""
    matches = close_matches(word, candidates)
    return f"; did you mean {matches[0]!r}?" if matches else ""


# Each validator returns the normalised value or raises ValueError with a short reason that
# never contains the value itself: check_options decides whether the value may be shown.


def type_name(value: object) -> str:
    return type(value).__name__


def as_str(value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {type_name(value)}")
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def as_env_name(value: Any) -> str:
    """The name of an environment variable: letters, digits and ``_``, not starting with a digit."""
    text = as_str(value)
    if not ENV_NAME.fullmatch(text):
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
        raise ValueError(f"must be a number, not {type_name(value)}")
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


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be an integer, not {type_name(value)}")
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
        raise ValueError(f"must be true or false, not {type_name(value)}")
    return value


def as_cache_setting(value: Any) -> Any:
    """A response cache setting: true, false, a file path, or a ``ResponseCache``."""
    if isinstance(value, bool) or getattr(value, "_is_response_cache", False):
        return value
    if isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes) and os.fspath(value).strip():
        return value
    raise ValueError(f"must be true, false or a file path, not {type_name(value)}")


def as_str_list(value: Any) -> List[str]:
    """A list of strings (a single string is refused: it is usually a missing bracket)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"must be a list of strings, not {type_name(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ValueError(f"item {index} must be a string, not {type_name(item)}")
    return list(value)


def as_log_setting(value: Any) -> Any:
    """The call log setting: true (the default file), false (none), or a file path (a
    non-empty string or ``os.PathLike``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) or (hasattr(value, "__fspath__") and not isinstance(value, bytes)):
        if str(value).strip():
            return value
        raise ValueError("must be true, false or a file path, not an empty string")
    raise ValueError(f"must be true, false or a file path, not {type_name(value)}")


def as_str_dict(value: Any) -> Dict[str, str]:
    """A table of string to string, such as extra HTTP headers."""
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a table of strings, not {type_name(value)}")
    result: Dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise ValueError("must have non-empty string keys")
        if not isinstance(item, str):
            raise ValueError(f"entry {key!r} must be a string, not {type_name(item)}")
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
        return f"a {type_name(value)}"
    try:
        shown = repr(mask_value(key, value))
    except (ValueError, RecursionError):  # an int past the digit limit, a deeply nested value
        return f"a {type_name(value)}"
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
