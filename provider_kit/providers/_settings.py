"""A provider's settings: the options it accepts, where each one comes from, and which server
a key may be sent to.

Settings resolve as call argument > provider config > environment > built-in default, and
``None`` always means "inherit". A type's conventional key variable (``$OPENAI_API_KEY``) is
read only for that type's own server (``same_origin``): never for a vLLM box, a colleague's
proxy or a mistyped host configured as ``base_url``.

``ProviderSettings`` is the first of the three layers of ``HTTPProvider``: these settings and
the connection pool built from them; the model listing and health check
(``_health_check.HealthChecks``); the call flow (``_base.HTTPProvider``).
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any, ClassVar, Dict, Mapping, Optional, Tuple, TypeVar

from .._call_args import check_timeout
from .._options import (
    Validator,
    as_bool,
    as_cache_setting,
    as_env_name,
    as_non_negative_int,
    as_positive_int,
    as_positive_number,
    as_str,
    as_str_dict,
    as_url,
    check_options,
)
from .._retry import RetryPolicy
from .._secrets import is_secret_name, mask_url
from .._transport import Transport, is_loopback_host
from ..errors import ConfigError
from ._answers import ShapeErrors

#: Seconds a whole ``complete()`` call (retries included) may take unless configured otherwise.
DEFAULT_TIMEOUT = 120.0
DEFAULT_MAX_RETRIES = 2

_P = TypeVar("_P", bound="ProviderSettings")


class ProviderSettings:
    """An HTTP provider's identity, settings and connection pool (see ``HTTPProvider``).

    One instance holds one connection pool and may be shared by any number of threads.
    """

    #: The ``type`` name used in configuration files.
    TYPE: ClassVar[str] = ""
    #: The service's address; "" when every server of the type has its own (Azure's resources).
    DEFAULT_BASE_URL: ClassVar[str] = ""
    #: Environment variable read for ``base_url`` when the config sets none.
    BASE_URL_ENV: ClassVar[Optional[str]] = None
    #: The type's conventional key variable, read when the config names no key of its own, and
    #: only for a server of this type's own: ``DEFAULT_BASE_URL``'s origin, or the server
    #: ``BASE_URL_ENV`` names. Any other ``base_url`` gets ``api_key`` / ``api_key_env`` only.
    API_KEY_ENV: ClassVar[Optional[str]] = None
    #: Whether a server of this type needs a key when ``require_api_key`` is unset (a server
    #: on a loopback address never does: a local vLLM, LM Studio, llama.cpp).
    REQUIRES_KEY: ClassVar[bool] = True
    DEFAULT_MODEL: ClassVar[str] = ""
    #: Whether the health check looks for the model in the listing unless ``check_model`` says
    #: otherwise: off for a type whose "model" is not what its listing lists (Azure's deployments).
    CHECK_MODEL: ClassVar[bool] = True
    #: Options every HTTP provider accepts, with their validators.
    COMMON_OPTIONS: ClassVar[Dict[str, Validator]] = {
        "model": as_str,
        "api_key": as_str,
        "api_key_env": as_env_name,
        "base_url": as_url,
        "timeout": as_positive_number,
        "max_retries": as_non_negative_int,
        "headers": as_str_dict,
        "require_api_key": as_bool,
        "max_response_bytes": as_positive_int,
        "check_model": as_bool,
        # Client-side pacing: requests and tokens per minute (see provider_kit/_limiter.py).
        "rpm": as_positive_number,
        "tpm": as_positive_number,
        "response_cache": as_cache_setting,
    }
    #: Options of one provider type only; subclasses extend this.
    EXTRA_OPTIONS: ClassVar[Dict[str, Validator]] = {}
    #: The call pacing (``rpm``/``tpm``, or a server's exhausted budget); None: calls are not
    #: paced, and the call flow pays one attribute test for it.
    _limiter: Optional[Any] = None
    #: The embeddings request's path (relative to ``base_url``); "" for a type without
    #: embeddings, whose ``embed()`` refuses. A type with embeddings takes ``embedding_model``.
    EMBEDDINGS_PATH: ClassVar[str] = ""
    #: The model ``embed()`` uses when neither the call nor ``embedding_model`` names one.
    EMBEDDING_MODEL: ClassVar[str] = ""

    def __init__(
        self,
        name: Optional[str] = None,
        *,
        model: Optional[str] = None,
        api_key: Optional[str] = None,
        api_key_env: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        headers: Optional[Mapping[str, str]] = None,
        require_api_key: Optional[bool] = None,
        max_response_bytes: Optional[int] = None,
        on_call: Any = None,
        **extra: Any,
    ) -> None:
        self.name = name or self.TYPE
        # Where messages say the provider is: its config table when it came from one.
        self._where = where = f"{self.TYPE} provider {self.name!r}"
        given = {
            key: value
            for key, value in (
                ("model", model),
                ("api_key", api_key),
                ("api_key_env", api_key_env),
                ("base_url", base_url),
                ("timeout", timeout),
                ("max_retries", max_retries),
                ("headers", headers),
                ("require_api_key", require_api_key),
                ("max_response_bytes", max_response_bytes),
            )
            if value is not None
        }
        given.update((key, value) for key, value in extra.items() if value is not None)
        options = check_options(given, self.option_schema(), where=where)
        self.model: str = options.get("model") or self.DEFAULT_MODEL
        configured_url: Optional[str] = options.get("base_url")
        self.base_url: str = configured_url or self._base_url_from_env(where) or self.DEFAULT_BASE_URL
        # Keys go only where they belong: a type's conventional variable ($OPENAI_API_KEY...)
        # is for that type's own server, never for a vLLM box, a colleague's proxy or a typo'd
        # host that happens to be configured as base_url.
        own_server = configured_url is None or same_origin(configured_url, self.DEFAULT_BASE_URL)
        #: The variable the key is read from: the configured ``api_key_env``, else the type's
        #: conventional one when ``base_url`` is the type's own server; else None.
        self.api_key_env: Optional[str] = options.get("api_key_env") or (
            self.API_KEY_ENV if own_server else None
        )
        self._api_key_env_named = "api_key_env" in options
        # The conventional variable not read for this base_url, to say so when a key is missing.
        self._withheld_key_env = None if own_server or self._api_key_env_named else self.API_KEY_ENV
        key = options.get("api_key")
        if key is None and self.api_key_env:
            key = os.environ.get(self.api_key_env) or None
        self._api_key: Optional[str] = key
        self.timeout: float = options.get("timeout", DEFAULT_TIMEOUT)
        self.max_retries: int = options.get("max_retries", DEFAULT_MAX_RETRIES)
        self.extra_headers: Dict[str, str] = options.get("headers", {})
        required = options.get("require_api_key")
        if required is None:
            # A table that names api_key_env expects that variable, on loopback too (a local
            # LiteLLM proxy with a master key).
            required = self._api_key_env_named or self._key_required_by_default()
        self.require_api_key: bool = required
        #: Whether the health check looks for ``model`` in the server's model listing.
        self.check_model: bool = options.get("check_model", self.CHECK_MODEL)
        #: Requests and tokens per minute this provider sends at most (None: no limit).
        self.rpm: Optional[float] = options.get("rpm")
        self.tpm: Optional[float] = options.get("tpm")
        if self.rpm or self.tpm:
            from .._limiter import RateLimiter  # only a paced provider loads it

            self._limiter = RateLimiter(self.rpm, self.tpm)
        #: The model ``embed()`` uses unless the call names one ("" when the type has none).
        self.embedding_model: str = options.get("embedding_model") or self.EMBEDDING_MODEL
        #: The response cache calls look answers up in (``response_cache=``), or None. The
        #: module is imported only when one is configured: ``import provider_kit`` stays light.
        self.response_cache: Any = None
        if options.get("response_cache", False) is not False:
            from .._response_cache import open_cache

            self.response_cache = open_cache(options["response_cache"])
        self._configure(options)
        if on_call is not None:  # hooks: this provider's calls are observed (_call_record.py)
            from .._call_record import check_hooks

            for hook in check_hooks(on_call):
                self.add_on_call(hook)
        # An extra header named like a credential (Azure's "api-key", a hand-set
        # "Authorization") is treated as one: attached by HeaderAuth and redacted from errors.
        secret_extra = {k: v for k, v in self.extra_headers.items() if is_secret_name(k)}
        plain_extra = {k: v for k, v in self.extra_headers.items() if k not in secret_extra}
        protocol_headers, credential_headers = self._headers(self._api_key)
        self._transport = Transport(
            provider=self.name,
            base_url=self.base_url,
            headers={**protocol_headers, **plain_extra},
            secret_headers={**secret_extra, **credential_headers},
            retry=RetryPolicy(self.max_retries),
            error_detail=self._error_detail,
            **{key: options[key] for key in ("max_response_bytes",) if key in options},
        )

    # -- on_call hooks (provider_kit/_call_record.py, imported by the first hook)

    def add_on_call(self, hook: Any) -> None:
        """Call ``hook(record)`` with a ``CallRecord`` after each ``complete`` and ``stream``
        of this provider (a stream's when it ends, fails or is closed). A hook that raises is
        logged and never breaks the call.

        :raises ConfigError: when ``hook`` is not callable.
        """
        from .._call_record import add_hook, check_hook

        add_hook(self, check_hook(hook))

    def remove_on_call(self, hook: Any) -> None:
        """Stop calling ``hook`` (nothing when it was not added)."""
        from .._call_record import remove_hook

        remove_hook(self, hook)

    @property
    def on_call(self) -> Tuple[Any, ...]:
        """The hooks called after each call, in order (a registry's own hooks count as one)."""
        hooks = self.__dict__.get("_on_call")
        return tuple(hooks) if hooks is not None else ()

    # -- construction hooks

    @classmethod
    def option_schema(cls) -> Dict[str, Validator]:
        if cls.EMBEDDINGS_PATH:
            return {**cls.COMMON_OPTIONS, "embedding_model": as_str, **cls.EXTRA_OPTIONS}
        return {**cls.COMMON_OPTIONS, **cls.EXTRA_OPTIONS}

    @classmethod
    def enabling_env_var(cls) -> Optional[str]:
        """The variable that, set and not empty, adds a provider of this type (named after the
        type) when no config file is found: the key variable, or for a type that needs no key,
        the base-URL variable (``$OLLAMA_HOST``-like). None: the environment alone never does."""
        return cls.API_KEY_ENV if cls.REQUIRES_KEY else cls.BASE_URL_ENV

    @classmethod
    def display_name(cls) -> str:
        """The type's name for people: the class name without ``Provider``."""
        name = cls.__name__
        return name[: -len("Provider")] if name.endswith("Provider") and name != "Provider" else cls.TYPE

    @classmethod
    def from_config(cls: type[_P], name: str, options: Mapping[str, Any], *, where: str) -> _P:
        """Build a provider from a config table (``where`` names it in error messages).

        :raises ConfigError: for an unknown key or a value of the wrong type or range.
        """
        checked = check_options(options, cls.option_schema(), where=where)
        provider = cls(name, **checked)
        provider._where = where
        return provider

    def _configure(self, options: Mapping[str, Any]) -> None:
        """Read the options of ``EXTRA_OPTIONS``; called before the transport is built."""

    def _base_url_from_env(self, where: str) -> Optional[str]:
        """``$BASE_URL_ENV`` normalised and checked like a configured ``base_url``, or None."""
        value = os.environ.get(self.BASE_URL_ENV) if self.BASE_URL_ENV else None
        if not value or not value.strip():
            return None
        # Checked here, not at the first request: a typo such as "localhost:8000/v1" (no
        # scheme) would otherwise surface later as a confusing connection error.
        try:
            return as_url(self._normalise_base_url(value))
        except (ValueError, ConfigError) as error:
            raise ConfigError(f"{where}: ${self.BASE_URL_ENV}={value!r}: {error}") from None

    def _normalise_base_url(self, value: Optional[str]) -> Optional[str]:
        return value.rstrip("/") if value else None

    def _key_required_by_default(self) -> bool:
        """Whether a missing key makes the provider invalid when ``require_api_key`` is unset:
        ``REQUIRES_KEY``, except for a server on a loopback address."""
        return self.REQUIRES_KEY and not url_is_loopback(self.base_url)

    def _headers(self, api_key: Optional[str]) -> Tuple[Dict[str, str], Dict[str, str]]:
        """The headers every request carries: (the protocol's, the credentials). The key goes
        as ``Authorization: Bearer`` unless a type says otherwise; no key, no credentials."""
        return {}, ({"Authorization": f"Bearer {api_key}"} if api_key else {})

    def _error_detail(self, status: int, body: str) -> Optional[str]:
        """What an error answer (``status``, its body with secrets masked) means, when the
        type knows better than the body's message (Azure's content filter); None: the message."""
        return None

    # -- the Provider protocol: configuration, lifetime, description

    @property
    def has_api_key(self) -> bool:
        return self._api_key is not None

    def validate_config(self) -> None:
        """:raises ConfigError: when the provider cannot work as configured (no key, no model)."""
        self._validate_connection()
        if not self.model:
            raise ConfigError(f"{self._where}: no model configured")

    def _validate_connection(self) -> None:
        """What every request needs, whatever its model (``embed()`` checks only this):
        :raises ConfigError: with no key where one is required."""
        if self.require_api_key and not self._api_key:
            raise ConfigError(f"{self._where}: {self._missing_key_reason()}")

    def _missing_key_reason(self) -> str:
        if self._api_key_env_named:
            return (
                f"no API key: ${self.api_key_env} is not set (its config names it in api_key_env; "
                "set require_api_key = false if the server needs no key)"
            )
        if self._withheld_key_env:
            # A type with no default host (Azure) sends it only to the server its variable names.
            own = [urllib.parse.urlsplit(self.DEFAULT_BASE_URL).netloc] if self.DEFAULT_BASE_URL else []
            if self.BASE_URL_ENV:
                own.append(f"the server ${self.BASE_URL_ENV} names")
            return (
                f"no API key for {mask_url(self.base_url)}: ${self._withheld_key_env} is sent only to "
                f"{' or to '.join(own)}; set api_key_env (the variable holding this server's key) or api_key "
                "in its config, or require_api_key = false if the server needs no key"
            )
        if self.api_key_env:
            return f"no API key (set ${self.api_key_env}, or api_key_env / api_key in its config)"
        return "no API key (set api_key_env or api_key in its config)"

    def close(self) -> None:
        """Close the connection pool; the provider reopens one if it is used again."""
        self._transport.close()

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return (
            f"{type(self).__name__}(name={self.name!r}, model={self.model!r}, "
            f"base_url={mask_url(self.base_url)!r}, api_key={key})"
        )

    def describe(self) -> Dict[str, Any]:
        """Secret-free settings, for listings such as ``provider-kit providers``."""
        return {
            "name": self.name,
            "type": self.TYPE,
            "model": self.model,
            "base_url": mask_url(self.base_url),
            "api_key": "set" if self._api_key else "not set",
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            **{key: value for key, value in (("rpm", self.rpm), ("tpm", self.tpm)) if value is not None},
        }

    # -- helpers of the layers above

    def _check_timeout(self, timeout: Any) -> float:
        return check_timeout(self.name, timeout)

    def _shape_errors(
        self, request_id: Optional[str], *, source: Any = None, transport: Optional[Transport] = None
    ) -> ShapeErrors:
        """Guards the reading of a 2xx body; ``transport``: a call's own (``extra_headers``)."""
        return ShapeErrors(self.name, request_id, (transport or self._transport).redactor, source)


def base_url_host(url: str) -> Optional[str]:
    return urllib.parse.urlsplit(url).hostname


def url_is_loopback(url: str) -> bool:
    return is_loopback_host(base_url_host(url))


_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(url: str, other: str) -> bool:
    """True when both URLs have the same scheme, host and port (the port defaulted by scheme):
    a key meant for ``https://api.openai.com`` is not for ``http://api.openai.com``."""

    def origin(value: str) -> Tuple[str, str, Optional[int]]:
        parts = urllib.parse.urlsplit(value)
        scheme = parts.scheme.lower()
        try:
            port = parts.port
        except ValueError:  # not a number: no origin matches it
            return scheme, "", None
        return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)

    return bool(other) and origin(url) == origin(other)
