"""A function's tool: its JSON schema made from its signature, type hints and docstring.

Imported by ``Tool.from_function`` on first use: ``inspect`` and ``typing.get_type_hints`` are
slow to load, and a call without function tools never needs them.
"""

from __future__ import annotations

from typing import Any, Callable, Optional


def function_tool(tool_class: Any, function: Callable[..., Any], *, name: Optional[str] = None,
                  description: Optional[str] = None) -> Any:
    """``tool_class(name, description, parameters, function)`` for ``function``."""
    raise NotImplementedError  # filled in by the schema work of issue 12
