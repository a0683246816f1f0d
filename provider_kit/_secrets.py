"""The one place secrets are recognised, shown and hidden.

It owns:

- which option or header names hold a secret (``is_secret_name``);
- how a secret is displayed (``mask_secret``, ``mask_url``, ``mask_options``);
- ``Redactor``: the secrets one owner holds (a provider's key headers and URL password, a
  config table's secret options), hidden in any text, and the rule for re-raising: an error
  whose cause quotes a secret is raised ``from None``, so that no traceback prints the key.

Every module that hides a key calls this one. It imports nothing from the package.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterable, Iterator, NoReturn, Optional, Tuple

__all__ = [
    "ENV_NAME",
    "Redactor",
    "is_secret_name",
    "mask_options",
    "mask_secret",
    "mask_url",
    "mask_value",
]

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
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Shorter secrets are not searched for in text: replacing every "abc" would garble messages
#: and reveal little.
MIN_REDACTED_LENGTH = 4


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
    scheme, sep, rest = value.partition("://")
    if not sep:
        return value
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at or ":" not in userinfo:
        return value
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{slash}{path}"


def mask_value(name: str, value: Any) -> Any:
    """``value`` of the option ``name`` as it may be shown: secrets masked, recursing into
    tables and lists, URL passwords hidden, a ``*_env`` value that is no variable name masked."""
    if isinstance(value, Mapping):
        return {key: mask_value(str(key), item) for key, item in value.items()}
    if is_secret_name(name) and value is not None and not isinstance(value, (bool, int, float)):
        return mask_secret(value)
    if name.lower().endswith("_env") and isinstance(value, str) and not ENV_NAME.fullmatch(value):
        return mask_secret(value)  # not a variable name: perhaps the key itself
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, (list, tuple)):
        return [mask_value(name, item) for item in value]
    return value


def mask_options(options: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of ``options`` with every secret masked, recursing into tables such as headers."""
    return {key: mask_value(key, value) for key, value in options.items()}


def _url_password(url: str) -> Optional[str]:
    try:
        return urllib.parse.urlsplit(url).password
    except ValueError:  # a port that is not a number: no password to read either
        return None


def _option_secrets(name: str, value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _option_secrets(str(key), item)
    elif isinstance(value, str) and is_secret_name(name):
        yield value


def _hide(secret: str) -> str:
    return "***"


class Redactor:
    """Hides a fixed set of secrets in any text, and re-raises errors without quoting them.

    :param secrets: the values to hide; those shorter than 4 characters are ignored.
    :param replacement: what a secret is replaced with (default ``"***"``).
    """

    __slots__ = ("_replacement", "_secrets")

    def __init__(self, secrets: Iterable[str] = (), *, replacement: Callable[[str], str] = _hide) -> None:
        self._secrets: Tuple[str, ...] = tuple(
            dict.fromkeys(s for s in secrets if isinstance(s, str) and len(s) >= MIN_REDACTED_LENGTH)
        )
        self._replacement = replacement

    @classmethod
    def for_request(cls, secret_headers: Mapping[str, str], base_url: str) -> Redactor:
        """The secrets a provider sends: its secret header values, the bare key inside a
        ``Bearer <key>`` value, and the password of a base URL such as
        ``http://user:password@gateway/v1`` (as written and percent-decoded)."""
        values = list(secret_headers.values())
        secrets = values + [v.split(" ", 1)[1] for v in values if " " in v]
        password = _url_password(base_url)
        if password is not None:
            secrets += [password, urllib.parse.unquote(password)]
        return cls(secrets)

    @classmethod
    def for_options(cls, options: Mapping[str, Any]) -> Redactor:
        """The secret values of a config table (recursing into tables such as ``headers``),
        shown as ``mask_secret`` shows them: a third party's error may echo one."""
        secrets = [s for option, value in options.items() for s in _option_secrets(option, value)]
        return cls(secrets, replacement=mask_secret)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    @property
    def secrets(self) -> Tuple[str, ...]:
        """The values hidden, for building a redactor that hides several owners' secrets."""
        return self._secrets

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, self._replacement(secret))
        return text

    def quotes_secret(self, text: str) -> bool:
        """Whether ``text`` contains any of the secrets."""
        return any(secret in text for secret in self._secrets)

    def reraise(self, error: BaseException, cause: BaseException) -> NoReturn:
        """``raise error from cause``, or ``from None`` when ``str(cause)`` quotes a secret:
        a traceback prints the cause, and it must not print the key."""
        if self.quotes_secret(str(cause)):
            raise error from None
        raise error from cause
