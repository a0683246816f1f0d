"""provider_kit: LLM providers behind one plain, blocking, thread-safe interface."""

from __future__ import annotations

import logging
import typing

from ._version import __version__
from .errors import (
    AuthenticationError,
    ConfigError,
    InvalidRequestError,
    NoProvidersError,
    ProviderConnectionError,
    ProviderError,
    ProviderKitError,
    ProviderSkippedWarning,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    UnknownProviderError,
    UnsupportedFeatureError,
)

if typing.TYPE_CHECKING:
    from ._parts import Image, Text
    from .config import Config, ProviderSpec, load_config
    from .providers import AnthropicProvider, AzureOpenAIProvider, OllamaProvider, OpenAIProvider
    from .registry import ProviderFactory, ProviderRegistry, get_registry, reset_registry
    from .types import (
        CircuitState,
        Completion,
        HealthReport,
        HealthStatus,
        Message,
        Provider,
        StreamChunk,
        Usage,
    )

#: Public names imported on first use (PEP 562), so ``import provider_kit`` costs almost
#: nothing: the HTTP stack, the provider types and the registry load when a script first
#: names them (``from provider_kit import ProviderRegistry`` loads what a call needs). The
#: errors above are imported at once: an ``except`` clause must not pay for the rest.
_LAZY: typing.Dict[str, str] = {
    **dict.fromkeys(("Image", "Text"), "._parts"),
    **dict.fromkeys(("Config", "ProviderSpec", "load_config"), ".config"),
    **dict.fromkeys(("AnthropicProvider", "AzureOpenAIProvider", "OllamaProvider", "OpenAIProvider"), ".providers"),
    **dict.fromkeys(("ProviderFactory", "ProviderRegistry", "get_registry", "reset_registry"), ".registry"),
    **dict.fromkeys(
        ("CircuitState", "Completion", "HealthReport", "HealthStatus", "Message", "Provider", "StreamChunk", "Usage"),
        ".types",
    ),
}


def __getattr__(name: str) -> typing.Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'provider_kit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> typing.List[str]:
    return sorted(set(globals()) | set(__all__))


logging.getLogger("provider_kit").addHandler(logging.NullHandler())

__all__ = [
    "AnthropicProvider",
    "AuthenticationError",
    "AzureOpenAIProvider",
    "CircuitState",
    "Completion",
    "Config",
    "ConfigError",
    "HealthReport",
    "HealthStatus",
    "Image",
    "InvalidRequestError",
    "Message",
    "NoProvidersError",
    "OllamaProvider",
    "OpenAIProvider",
    "Provider",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderFactory",
    "ProviderKitError",
    "ProviderRegistry",
    "ProviderSkippedWarning",
    "ProviderSpec",
    "ProviderTimeoutError",
    "RateLimitError",
    "ResponseFormatError",
    "ServerError",
    "StreamChunk",
    "Text",
    "UnknownProviderError",
    "UnsupportedFeatureError",
    "Usage",
    "__version__",
    "get_registry",
    "load_config",
    "reset_registry",
]
