"""The built-in provider types, by the name a config file uses for them."""

from __future__ import annotations

from typing import Dict, Type

from ..config import use_builtin_types
from ._base import HTTPProvider
from .anthropic import AnthropicProvider
from .ollama import OllamaProvider
from .openai import OpenAIProvider

__all__ = ["BUILTIN_TYPES", "AnthropicProvider", "HTTPProvider", "OllamaProvider", "OpenAIProvider"]

#: type name -> provider class. Third-party types come from the entry-point group
#: ``provider_kit.providers`` and are resolved by the registry the same way.
BUILTIN_TYPES: Dict[str, Type[HTTPProvider]] = {
    cls.TYPE: cls for cls in (OpenAIProvider, AnthropicProvider, OllamaProvider)
}
# load_config checks the options of these types' tables; config sits below this package.
use_builtin_types(BUILTIN_TYPES)
