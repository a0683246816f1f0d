"""Tool calling's values: ``Tool`` (what the model may call), ``ToolCall`` (a call it asked for)
and the checks of ``tools=`` and ``tool_choice=`` shared by every provider.

A tool is given as a plain Python function (its JSON schema is made from the signature by
``_tool_schema``, imported on first use: ``inspect`` and ``typing.get_type_hints`` are slow to
load), a ``Tool`` value, or an OpenAI-shaped dict. Each protocol writes the checked tools in its
own shape; nothing here knows a wire format.

``ToolCall.arguments`` is parsed on first access, never while a stream is being assembled: the
raw JSON text is what arrives, in fragments, and a call whose text is not a JSON object is still
a call the caller can answer (with an error result) rather than a crash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from ._value import _Value
from .errors import ConfigError, ResponseFormatError

if TYPE_CHECKING:
    from ._messages import ToolResult

__all__ = ["Tool", "ToolCall", "as_tools", "check_tool_choice"]

#: What OpenAI and Anthropic allow as a tool's name (the strictest of the protocols).
TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
#: The ``tool_choice`` values besides a tool's name.
TOOL_CHOICES = ("auto", "none", "required")
#: How much of bad arguments an error quotes.
_EXCERPT = 80


class Tool(_Value):
    """A tool the model may call: ``name``, ``description``, ``parameters`` (a JSON schema of an
    object; ``{"type": "object", "properties": {}}`` for none) and the Python ``function`` that
    runs it (None for a tool described only, which ``run_tools`` cannot run).

    Build one from a function with ``Tool.from_function(fn)`` (or pass the function itself
    wherever tools are taken).

    :raises ConfigError: for a name other than 1-64 letters, digits, "_" or "-", or parameters
        that are not an object schema.
    """

    __slots__ = ("name", "description", "parameters", "function")
    _repr_skip = ("parameters", "function")
    name: str
    description: str
    parameters: Dict[str, Any]
    function: Optional[Callable[..., Any]]

    def __init__(
        self,
        name: str,
        description: str = "",
        parameters: Optional[Mapping[str, Any]] = None,
        function: Optional[Callable[..., Any]] = None,
    ) -> None:
        if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
            raise ConfigError(f"tool name must be 1 to 64 letters, digits, '_' or '-', got {name!r}")
        if description is None:
            description = ""
        if not isinstance(description, str):
            raise ConfigError(f"tool {name!r}: description must be a string, got {type(description).__name__}")
        if parameters is None:
            parameters = {"type": "object", "properties": {}}
        if not isinstance(parameters, Mapping) or parameters.get("type", "object") != "object":
            raise ConfigError(f"tool {name!r}: parameters must be a JSON schema of an object "
                              "({'type': 'object', 'properties': {...}})")
        parameters = dict(parameters)
        parameters.setdefault("type", "object")
        try:
            json.dumps(parameters, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"tool {name!r}: parameters cannot be sent as JSON: {error}") from None
        if function is not None and not callable(function):
            raise ConfigError(f"tool {name!r}: function must be callable, got {type(function).__name__}")
        self._set(name=name, description=description, parameters=parameters, function=function)

    @classmethod
    def from_function(cls, function: Callable[..., Any], *, name: Optional[str] = None,
                      description: Optional[str] = None) -> Tool:
        """The tool of a plain function: its name, the first paragraph of its docstring as the
        description, and a JSON schema of its parameters made from their type hints (str, int,
        float, bool, None/Optional, list, dict, Literal, Enum, dataclasses, TypedDict, pydantic
        models) and the docstring's per-parameter lines (Google, NumPy or Sphinx style).

        :raises ConfigError: naming the parameter whose type cannot be described.
        """
        from ._tool_schema import function_tool  # inspect and typing's hints load on first use

        tool: Tool = function_tool(cls, function, name=name, description=description)
        return tool

    def to_dict(self) -> Dict[str, Any]:
        """The OpenAI shape, ``{"type": "function", "function": {name, description, parameters}}``
        (which ``tools=`` also takes)."""
        function: Dict[str, Any] = {"name": self.name}
        if self.description:
            function["description"] = self.description
        function["parameters"] = self.parameters
        return {"type": "function", "function": function}


def _tool_of(item: Any, index: int) -> Tool:
    if isinstance(item, Tool):
        return item
    if isinstance(item, Mapping):
        function = item.get("function") if item.get("type") == "function" else item
        if not isinstance(function, Mapping) or "name" not in function:
            raise ConfigError(f"tools[{index}]: a tool dict needs a name: {{'type': 'function', 'function': "
                              "{'name': ..., 'parameters': {...}}} (or {'name', 'description', 'parameters'})")
        parameters = function.get("parameters", function.get("input_schema"))
        return Tool(function["name"], function.get("description") or "", parameters)
    if callable(item):
        return Tool.from_function(item)
    raise ConfigError(f"tools[{index}] must be a function, a Tool or a tool dict, got {type(item).__name__}")


def as_tools(tools: Any, where: str) -> Optional[Tuple[Tool, ...]]:
    """``tools=`` checked: a tuple of ``Tool`` (None for an empty list: no tools are sent, as
    servers refuse ``"tools": []``).

    :raises ConfigError: for something that is not a list of tools, or two tools of one name.
    """
    if isinstance(tools, (str, bytes, Mapping)) or not isinstance(tools, Sequence):
        raise ConfigError(f"{where} tools must be a list of functions, Tool values or tool dicts, "
                          f"got {type(tools).__name__}")
    checked = tuple(_tool_of(item, index) for index, item in enumerate(tools))
    names = [tool.name for tool in checked]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"{where} tools has two tools named {name!r}")
    return checked or None


def check_tool_choice(choice: Any, tools: Optional[Sequence[Tool]], where: str) -> str:
    """``tool_choice=`` checked: "auto", "none", "required", or the name of one of ``tools``
    (a ``Tool``, a function or ``{"type": "function", "function": {"name"}}`` naming it).

    :raises ConfigError: for anything else, or a choice given with no tools.
    """
    if isinstance(choice, Tool):
        choice = choice.name
    elif isinstance(choice, Mapping):
        function = choice.get("function")
        choice = function.get("name") if isinstance(function, Mapping) else choice.get("name")
    elif callable(choice):
        choice = getattr(choice, "__name__", None)
    if not isinstance(choice, str):
        raise ConfigError(f"{where} tool_choice must be 'auto', 'none', 'required' or a tool's name, "
                          f"got {type(choice).__name__}")
    if not tools:
        raise ConfigError(f"{where} tool_choice={choice!r} needs tools=")
    if choice in TOOL_CHOICES:
        return choice
    if choice not in {tool.name for tool in tools}:
        names = ", ".join(repr(tool.name) for tool in tools)
        raise ConfigError(f"{where} tool_choice must be 'auto', 'none', 'required' or one of the tools' names "
                          f"({names}), got {choice!r}")
    return choice


class ToolCall(_Value):
    """A call the model asked for: ``id`` (always set: generated where the server sends none,
    as older Ollama servers do), the tool's ``name``, and ``arguments``, a dict.

    ``raw_arguments`` is the JSON text as the model wrote it. When it is not a JSON object
    (models do not always write valid JSON), the call is still delivered: ``arguments_error``
    says why, and reading ``arguments`` raises ``ResponseFormatError``, so the caller can answer
    with an error result (``run_tools`` does).

    ``call.result(value)`` builds the ``ToolResult`` that answers it.
    """

    __slots__ = ("id", "name", "raw_arguments", "_parsed", "_problem")
    _repr_skip = ("_parsed", "_problem")
    id: str
    name: str
    raw_arguments: str
    _parsed: Optional[Dict[str, Any]]
    _problem: Optional[str]

    def __init__(self, id: str, name: str, arguments: Union[Mapping[str, Any], str, None] = None) -> None:
        if not isinstance(id, str) or not id:
            raise ConfigError(f"tool call id must be a non-empty string, got {id!r}")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"tool call name must be a non-empty string, got {name!r}")
        parsed: Optional[Dict[str, Any]] = None
        if arguments is None:
            raw, parsed = "{}", {}
        elif isinstance(arguments, str):
            raw = arguments
        elif isinstance(arguments, Mapping):
            parsed = dict(arguments)
            try:
                raw = json.dumps(parsed, ensure_ascii=False)
            except (TypeError, ValueError) as error:
                raise ConfigError(f"tool call {name!r}: arguments cannot be sent as JSON: {error}") from None
        else:
            raise ConfigError(f"tool call {name!r}: arguments must be a dict or a JSON string, "
                              f"got {type(arguments).__name__}")
        self._set(id=id, name=name, raw_arguments=raw, _parsed=parsed, _problem=None)

    @classmethod
    def _assembled(cls, id: str, name: str, raw_arguments: str) -> ToolCall:
        """A call whose id and name were checked when it started (``ToolCallAssembler``),
        built without ``__init__``'s checks: a streamed call is rebuilt at every fragment."""
        call = object.__new__(cls)
        setter = object.__setattr__
        setter(call, "id", id)
        setter(call, "name", name)
        setter(call, "raw_arguments", raw_arguments)
        setter(call, "_parsed", None)
        setter(call, "_problem", None)
        return call

    def _read(self) -> None:
        if self._parsed is not None or self._problem is not None:
            return
        raw = self.raw_arguments
        try:
            value = json.loads(raw) if raw.strip() else {}  # "" is a call with no arguments
        except (ValueError, RecursionError) as error:
            excerpt = raw if len(raw) <= _EXCERPT else raw[: _EXCERPT - 3] + "..."
            object.__setattr__(self, "_problem", f"arguments are not valid JSON ({error}): {excerpt!r}")
            return
        if not isinstance(value, dict):
            object.__setattr__(self, "_problem", f"arguments are a JSON {type(value).__name__}, not an object")
            return
        object.__setattr__(self, "_parsed", value)

    @property
    def arguments(self) -> Dict[str, Any]:
        """The arguments as a dict.

        :raises ResponseFormatError: when the model's text is not a JSON object.
        """
        self._read()
        if self._parsed is None:
            raise ResponseFormatError(f"tool call {self.name!r} ({self.id}): {self._problem}")
        return self._parsed

    @property
    def arguments_error(self) -> Optional[str]:
        """Why ``arguments`` cannot be read (None when they can)."""
        self._read()
        return self._problem

    def result(self, value: Any, *, is_error: bool = False) -> ToolResult:
        """The ``ToolResult`` answering this call: ``value`` as its content (a string as it
        is, anything else as JSON)."""
        from ._messages import ToolResult

        return ToolResult(self.id, value, is_error=is_error, name=self.name)

    def to_dict(self) -> Dict[str, Any]:
        """``{"id", "name", "arguments"}``: the arguments as a dict, or as the raw text when it
        is not a JSON object."""
        self._read()
        return {"id": self.id, "name": self.name,
                "arguments": self._parsed if self._parsed is not None else self.raw_arguments}

    # -- value behaviour: what was parsed is not a field

    def _fields(self) -> Tuple[Any, ...]:
        return (self.id, self.name, self.raw_arguments)

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (ToolCall, self._fields())

    def _replace(self, **changes: Any) -> ToolCall:
        unknown = set(changes).difference(("id", "name", "arguments", "raw_arguments"))
        if unknown:
            raise TypeError(f"ToolCall has no field {', '.join(sorted(unknown))}")
        arguments = changes.get("arguments", changes.get("raw_arguments", self.raw_arguments))
        return ToolCall(changes.get("id", self.id), changes.get("name", self.name), arguments)

    def __repr__(self) -> str:
        self._read()
        shown = self._parsed if self._parsed is not None else self.raw_arguments
        return f"ToolCall(id={self.id!r}, name={self.name!r}, arguments={shown!r})"


def tool_call_of(item: Any, where: str) -> ToolCall:
    """An assistant message's tool call as given: a ``ToolCall``, an OpenAI-shaped dict
    (``{"id", "type": "function", "function": {"name", "arguments"}}``) or ``{"id", "name",
    "arguments"}``.

    :raises ConfigError: for anything else.
    """
    if isinstance(item, ToolCall):
        return item
    if isinstance(item, Mapping):
        nested = item.get("function")
        function: Mapping[str, Any] = nested if isinstance(nested, Mapping) else item
        arguments = function.get("arguments", function.get("input"))
        return ToolCall(item.get("id"), function.get("name"), arguments)  # type: ignore[arg-type]
    raise ConfigError(f"{where}: a tool call must be a ToolCall or a dict with id, name and arguments, "
                      f"got {type(item).__name__}")


def tool_calls_of(items: Any, where: str) -> Tuple[ToolCall, ...]:
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise ConfigError(f"{where}: tool_calls must be a list, got {type(items).__name__}")
    return tuple(tool_call_of(item, f"{where} tool_calls[{index}]") for index, item in enumerate(items))


def result_text(value: Any) -> str:
    """A tool's return value as a result's text: a string as it is, else JSON (``str()`` of
    what JSON cannot hold)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def tool_names(tools: Optional[Sequence[Tool]]) -> List[str]:
    return [tool.name for tool in tools or ()]
