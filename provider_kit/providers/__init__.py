"""The built-in provider types, by the name a config file uses for them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Dict, Iterator, Tuple, Type

from ..config import use_builtin_types
from ._base import HTTPProvider
from ._presets import PRESET_TYPES, PRESETS, Preset
from .anthropic import AnthropicProvider
from .azure import AzureOpenAIProvider
from .ollama import OllamaProvider
from .openai import OpenAIProvider

__all__ = [
    "BUILTIN_TYPES",
    "PRESETS",
    "PRESET_TYPES",
    "PROVIDER_TYPES",
    "AnthropicProvider",
    "AzureOpenAIProvider",
    "HTTPProvider",
    "OllamaProvider",
    "OpenAIProvider",
    "Preset",
]

#: type name -> provider class of the types with a wire format of their own (one module in
#: this package and one simulator in ``provider_kit.testing.wires`` each). Third-party types
#: come from the entry-point group ``provider_kit.providers`` and are resolved by the registry
#: the same way.
BUILTIN_TYPES: Dict[str, Type[HTTPProvider]] = {
    cls.TYPE: cls for cls in (OpenAIProvider, AnthropicProvider, OllamaProvider, AzureOpenAIProvider)
}


class _TypeTable(Mapping):  # type: ignore[type-arg]  # generic only on Python >= 3.9 at run time
    """A live, read-only view of several type tables, the first one's names first: a type
    added to one of them later (a test's ``monkeypatch.setitem``) is seen at once."""

    def __init__(self, *tables: Mapping[str, Type[HTTPProvider]]) -> None:
        self._tables: Tuple[Mapping[str, Type[HTTPProvider]], ...] = tables

    def __getitem__(self, name: str) -> Type[HTTPProvider]:
        for table in self._tables:
            if name in table:
                return table[name]
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for table in self._tables for name in table))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"PROVIDER_TYPES({dict(self)!r})"


#: Every built-in type name -> its class: ``BUILTIN_TYPES``, then the presets of
#: OpenAI-compatible services (``PRESET_TYPES``, made from ``PRESETS``). What config files,
#: the registry, ``from_config(None)`` and the CLI know as types.
PROVIDER_TYPES: Mapping[str, Type[HTTPProvider]] = _TypeTable(BUILTIN_TYPES, PRESET_TYPES)
# load_config checks the options of these types' tables; config sits below this package.
use_builtin_types(PROVIDER_TYPES)
