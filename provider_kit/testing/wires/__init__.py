"""The simulated wire formats, one module per provider type: ``WIRES`` maps each type name to
its simulator. A new type adds its module here and one line below."""

from __future__ import annotations

from typing import Dict

from ._base import Piece, Wire, tokens
from .anthropic import AnthropicWire
from .ollama import OllamaWire
from .openai import OpenAIWire

__all__ = ["WIRES", "Piece", "Wire", "tokens"]

#: Type name -> the simulator of its wire format (what ``LoopbackServer(protocol)`` speaks).
WIRES: Dict[str, Wire] = {wire.name: wire for wire in (OpenAIWire(), AnthropicWire(), OllamaWire())}
