"""The simulated wire formats, one module per provider type: ``WIRES`` maps each type name to
its simulator. A new type adds its module here and one line below.

A preset of an OpenAI-compatible service (``provider_kit.providers.PRESETS``) has no module of
its own: ``PRESET_WIRES`` derives its simulator from the row, as the wire of the protocol its
class speaks, under the row's base-URL path, with the row's wire quirks.
"""

from __future__ import annotations

import urllib.parse
from typing import Dict

from ...providers import PRESET_TYPES
from ._base import Piece, ScriptedCall, Wire, tokens
from .anthropic import AnthropicWire
from .azure import AzureWire
from .ollama import OllamaWire
from .openai import OpenAIWire

__all__ = ["PRESET_WIRES", "WIRES", "Piece", "ScriptedCall", "Wire", "tokens", "wire_for"]

#: Type name -> the simulator of its wire format (what ``LoopbackServer(protocol)`` speaks).
WIRES: Dict[str, Wire] = {
    wire.name: wire for wire in (OpenAIWire(), AnthropicWire(), OllamaWire(), AzureWire())
}


def _preset_wire(cls: type) -> Wire:
    # The protocol's wire: the nearest class up the preset's bases that has one.
    wire = next(WIRES[vars(base)["TYPE"]] for base in cls.__mro__ if vars(base).get("TYPE") in WIRES)
    preset = cls.PRESET  # type: ignore[attr-defined]
    quirks = {name: getattr(preset, name) for name in wire.QUIRKS if hasattr(preset, name)}
    if "reasoning_models" in wire.QUIRKS:
        quirks["reasoning_models"] = None  # a compatible server takes reasoning_effort for any model
    return wire.configured(
        name=preset.name,
        api_prefix=urllib.parse.urlsplit(preset.base_url).path.rstrip("/"),
        default_models=(preset.default_model or "loopback-model",),
        quirks=quirks,
    )


#: Preset name -> its simulator: its protocol's wire with the preset's path and quirks.
PRESET_WIRES: Dict[str, Wire] = {name: _preset_wire(cls) for name, cls in PRESET_TYPES.items()}


def wire_for(protocol: str) -> Wire:
    """The simulator of a type or a preset.

    :raises KeyError: for a name that is neither.
    """
    return WIRES[protocol] if protocol in WIRES else PRESET_WIRES[protocol]
