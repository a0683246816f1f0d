"""provider_kit: LLM providers behind one plain, blocking, thread-safe interface."""

from __future__ import annotations

import logging

from ._parts import Image, Text
from ._tool_loop import run_tools
from ._tools import Tool, ToolCall
from ._version import __version__
from .config import Config, ProviderSpec, load_config
from .errors import (
    AuthenticationError,
    ConfigError,
    InvalidRequestError,
    MaxTurnsExceededError,
    NoProvidersError,
    ProviderConnectionError,
    ProviderError,
    ProviderKitError,
    ProviderSkippedWarning,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    ToolLoopError,
    ToolLoopTimeoutError,
    UnknownProviderError,
    UnsupportedFeatureError,
)
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
    ToolResult,
    Usage,
)

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
    "MaxTurnsExceededError",
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
    "Tool",
    "ToolCall",
    "ToolLoopError",
    "ToolLoopTimeoutError",
    "ToolResult",
    "UnknownProviderError",
    "UnsupportedFeatureError",
    "Usage",
    "__version__",
    "get_registry",
    "load_config",
    "reset_registry",
    "run_tools",
]
