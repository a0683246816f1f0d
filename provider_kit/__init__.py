"""provider_kit: LLM providers behind one plain, blocking, thread-safe interface."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any
from typing import List as _List

from ._parts import Image, Text
from ._tools import Tool, ToolCall
from ._version import __version__
from .config import Config, ProviderSpec, load_config
from .errors import (
    AuthenticationError,
    CallLogWarning,
    ConfigError,
    ExecutorError,
    InvalidRequestError,
    MapInterrupted,
    MaxTurnsExceededError,
    NoProvidersError,
    ProviderConnectionError,
    ProviderError,
    ProviderKitError,
    ProviderSkippedWarning,
    ProviderTimeoutError,
    RateLimitError,
    ResponseCacheWarning,
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

if _TYPE_CHECKING:
    from ._call_log import CallLog
    from ._call_record import CallRecord
    from ._embeddings import Embeddings
    from ._rate_limits import RateLimitInfo
    from ._response_cache import ResponseCache
    from ._tool_loop import run_tools
    from ._usage import UsageReport, UsageTotals

logging.getLogger("provider_kit").addHandler(logging.NullHandler())


def __getattr__(name: str) -> _Any:
    # ``run_tools`` is loaded by its first use, not by ``import provider_kit``: the loop is a
    # module of its own that most programs never need, and the import budget is tight.
    if name == "run_tools":
        from ._tool_loop import run_tools

        globals()["run_tools"] = run_tools
        return run_tools
    if name == "RateLimitInfo":  # only an answer carrying rate-limit headers needs it
        from ._rate_limits import RateLimitInfo

        globals()["RateLimitInfo"] = RateLimitInfo
        return RateLimitInfo
    if name == "Embeddings":  # loaded by the first embed() or this name's first use
        from ._embeddings import Embeddings

        globals()["Embeddings"] = Embeddings
        return Embeddings
    if name in _LAZY:  # on_call hooks, the call log and usage: loaded by their first use
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    if name == "ResponseCache":  # sqlite3 and the cache module: only for who uses a cache
        from ._response_cache import ResponseCache

        globals()["ResponseCache"] = ResponseCache
        return ResponseCache
    raise AttributeError(f"module 'provider_kit' has no attribute {name!r}")


_LAZY = {
    "CallLog": "._call_log",
    "CallRecord": "._call_record",
    "UsageReport": "._usage",
    "UsageTotals": "._usage",
}


def __dir__() -> _List[str]:
    return sorted({*globals(), *__all__})

__all__ = [
    "AnthropicProvider",
    "AuthenticationError",
    "AzureOpenAIProvider",
    "CallLog",
    "CallLogWarning",
    "CallRecord",
    "CircuitState",
    "Completion",
    "Config",
    "ConfigError",
    "Embeddings",
    "ExecutorError",
    "HealthReport",
    "HealthStatus",
    "Image",
    "InvalidRequestError",
    "MapInterrupted",
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
    "RateLimitInfo",
    "ResponseCache",
    "ResponseCacheWarning",
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
    "UsageReport",
    "UsageTotals",
    "__version__",
    "get_registry",
    "load_config",
    "reset_registry",
    "run_tools",
]
