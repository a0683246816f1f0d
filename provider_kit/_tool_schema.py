"""A function's tool: its JSON schema made from its signature, type hints and docstring.

Imported by ``Tool.from_function`` on first use: ``inspect`` and ``typing.get_type_hints`` are
slow to load, and a call without function tools never needs them.

How a type hint becomes a schema (docs/tools.rst has the same table for users):

=================================================  ==============================================
``str``, ``int``, ``float``, ``bool``               ``{"type": "string"|"integer"|"number"|"boolean"}``
``None``                                            ``{"type": "null"}``
``Optional[X]``, ``X | None``, ``Union[A, B]``       ``{"anyOf": [...]}`` (with ``{"type": "null"}``)
``list``, ``List[X]``, ``Sequence[X]``, ``set[X]``   ``{"type": "array", "items": X}`` (``{}``: any)
``Tuple[X, ...]`` / ``Tuple[A, B]``                  ``items`` / ``prefixItems`` with min/maxItems
``dict``, ``Dict[str, X]``, ``Mapping[str, X]``      ``{"type": "object", "additionalProperties": X}``
``Literal["a", "b"]``                               ``{"type": "string", "enum": ["a", "b"]}``
an ``Enum`` subclass                                ``{"type": ..., "enum": [its values]}``
a dataclass, a ``TypedDict``                        a nested object (fields, required, defaults)
a class with ``model_json_schema()`` (pydantic)      its schema, every ``$ref`` inlined
``datetime``, ``date``, ``time``, ``UUID``           ``{"type": "string", "format": ...}``
``Any``, ``object``                                 ``{}``: any JSON value
``Annotated[X, "text"]``                            X with ``"description": "text"``
=================================================  ==============================================

Choices, and why:

* ``Optional[X]`` is ``anyOf`` with null, never ``"type": [X, "null"]``: both are valid for
  OpenAI strict mode, but the Anthropic strict-schema rules (and its SDK's transform) know only
  ``anyOf``, and Ollama's server keeps ``anyOf`` too (PROTOCOLS-2 §F).
* Nested types are inlined, never ``$ref``: Ollama's server drops ``$ref`` inside properties, so
  a recursive type (which needs one) is a ``ConfigError``, as Anthropic's strict rules refuse
  recursion anyway.
* A parameter without an annotation is a ``ConfigError``, not a guessed string (as LiteLLM and
  ollama-python guess): a model told the wrong type calls the tool wrongly, silently.
  ``typing.Any`` says "any JSON value" on purpose.
* ``*args`` and ``**kwargs`` are a ``ConfigError``: a model passes named arguments only.
* Objects made from a function or a class say ``"additionalProperties": false``: neither takes
  other keys. ``required`` lists what has no default; it is left out when empty (draft-4
  validators refuse an empty list).

Every failure is a ``ConfigError`` naming the tool and the parameter. A function's tool is kept
(weakly) once built: ``run_tools`` rebuilds its tool list every turn.
"""

from __future__ import annotations

import collections.abc as abc
import dataclasses
import datetime
import enum
import inspect
import json
import pathlib
import re
import sys
import threading
import types
import typing
import uuid
import weakref
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple

from ._tool_docstring import parse_docstring
from ._tools import TOOL_NAME
from .errors import ConfigError

__all__ = ["function_tool"]

_SCALARS = {bool: "boolean", int: "integer", float: "number", str: "string"}
_FORMATS = {datetime.datetime: "date-time", datetime.date: "date", datetime.time: "time", uuid.UUID: "uuid"}
_ARRAYS = (list, set, frozenset, abc.Sequence, abc.MutableSequence, abc.Set, abc.MutableSet, abc.Collection,
           abc.Iterable)
_MAPPINGS = (dict, abc.Mapping, abc.MutableMapping)
_UNION_TYPE = getattr(types, "UnionType", None)  # X | Y, Python 3.10+
_NO_DEFAULT = object()
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class _Unsupported(Exception):
    """A type that cannot be described; the message says why, for the ConfigError."""


def _special(origin: Any, *names: str) -> bool:
    """Whether ``origin`` is one of typing's (or an already loaded typing_extensions') ``names``."""
    extensions = sys.modules.get("typing_extensions")
    return any(origin is not None and (origin is getattr(typing, name, None)
                                       or origin is getattr(extensions, name, None)) for name in names)


# -------------------------------------------------------------------------------- the cache

#: function -> {(tool_class, name, description): its tool without the function}. The kept tool must
#: not hold the function: a value referring to its key would keep both alive for ever.
_BUILT: Any = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def function_tool(tool_class: Any, function: Callable[..., Any], *, name: Optional[str] = None,
                  description: Optional[str] = None) -> Any:
    """``tool_class(name, description, parameters, function)`` for ``function``.

    The schema is made once per function (and ``name``/``description``) and kept while the
    function lives: ``run_tools`` asks again every turn. Tools of one function share their
    ``parameters`` dict: copy it before changing it.

    :raises ConfigError: naming the tool and the parameter that cannot be described.
    """
    if not callable(function):
        raise ConfigError(f"a tool function must be callable, got {type(function).__name__}")
    key: Optional[Tuple[Any, ...]] = (tool_class, name, description)
    try:
        with _LOCK:
            template = _BUILT.get(function, {}).get(key)
    except TypeError:  # unhashable or not weak-referenceable: made every time
        template = None
        key = None
    if template is None:
        template = _build(tool_class, function, name, description)
        if key is not None:
            with _LOCK:
                _BUILT.setdefault(function, {})[key] = template
    # The template was checked by the constructor when it was built: only the function differs.
    tool = object.__new__(tool_class)
    fields = {field: getattr(template, field) for klass in tool_class.__mro__
              for field in vars(klass).get("__slots__", ()) if not field.startswith("__")}
    fields["function"] = function
    tool._set(**fields)
    return tool


# ----------------------------------------------------------------------------- the function

def _build(tool_class: Any, function: Callable[..., Any], name: Optional[str], description: Optional[str]) -> Any:
    if name is None:
        name = getattr(function, "__name__", None)
        if not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
            shown = name if isinstance(name, str) else type(function).__name__
            raise ConfigError(f"tool function {shown!r} has no name a model can call (1 to 64 letters, digits, "
                              "'_' or '-'): pass name= to Tool.from_function")
    elif not isinstance(name, str) or not TOOL_NAME.fullmatch(name):
        raise ConfigError(f"tool name must be 1 to 64 letters, digits, '_' or '-', got {name!r}")
    where = f"tool {name!r}"
    try:
        docstring = inspect.getdoc(function)
    except Exception:  # a callable object may have anything as __doc__
        docstring = None
    summary, documented = parse_docstring(docstring if isinstance(docstring, str) else None)
    parameters = _parameters(function, where, documented)
    return tool_class(name, summary if description is None else description, parameters)


def _signature(function: Callable[..., Any], where: str) -> inspect.Signature:
    try:
        return inspect.signature(function)
    except NameError:  # Python 3.14 evaluates annotations here: take them as text, resolved below
        try:
            import annotationlib  # type: ignore[import-not-found]

            return inspect.signature(function, annotation_format=annotationlib.Format.STRING)  # type: ignore[call-arg]
        except Exception as error:
            raise ConfigError(f"{where}: its signature cannot be read: {error}") from None
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: its signature cannot be read ({error}); describe it with "
                          "Tool(name, description, parameters, function) instead") from None


def _parameters(function: Callable[..., Any], where: str, documented: Dict[str, str]) -> Dict[str, Any]:
    signature = _signature(function, where)
    globalns, localns = _namespaces(function)
    properties: Dict[str, Any] = {}
    required: List[str] = []
    for parameter in signature.parameters.values():
        label = f"{where}: parameter {parameter.name!r}"
        if parameter.kind in _VARIADIC:
            stars = "*" if parameter.kind is inspect.Parameter.VAR_POSITIONAL else "**"
            raise ConfigError(f"{where}: parameter {stars}{parameter.name} cannot be described: a model passes "
                              "named arguments only; list the parameters it may pass")
        if parameter.annotation is inspect.Parameter.empty:
            raise ConfigError(f"{label} has no type annotation: annotate it (typing.Any for any JSON value)")
        try:
            hint = _resolved(parameter.name, parameter.annotation, globalns, localns)
            schema = _schema_of(hint, frozenset())
        except _Unsupported as error:
            raise ConfigError(f"{label}: {error}") from None
        except Exception as error:  # a type whose own code fails must not escape as itself
            raise ConfigError(f"{label}: its type cannot be described ({type(error).__name__}: {error})") from None
        properties[parameter.name] = _with_extras(schema, documented.get(parameter.name), parameter.default)
        if parameter.default is inspect.Parameter.empty:
            required.append(parameter.name)
    result: Dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        result["required"] = required
    result["additionalProperties"] = False
    return result


def _namespaces(function: Any) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """The globals a function's string annotations are read in, and its closure's names (a type
    defined in the enclosing function, when the body uses it)."""
    target = function
    if isinstance(target, type):
        target = vars(target).get("__init__", target)  # a class's own __init__; else its module
    elif not inspect.isroutine(target) and hasattr(target, "func"):  # functools.partial
        target = target.func
    elif not inspect.isroutine(target):
        target = type(target).__call__
    target = getattr(target, "__func__", target)
    try:
        target = inspect.unwrap(target)
    except ValueError:
        pass
    globalns = getattr(target, "__globals__", None)
    if not isinstance(globalns, dict):
        module = sys.modules.get(getattr(target, "__module__", None) or "")
        globalns = dict(vars(module)) if module is not None else {}
    localns: Dict[str, Any] = {}
    code, closure = getattr(target, "__code__", None), getattr(target, "__closure__", None)
    if code is not None and closure:
        for free, cell in zip(code.co_freevars, closure):
            try:
                localns[free] = cell.cell_contents
            except ValueError:  # an empty cell
                pass
    return globalns, localns


class _Hinted:
    """An object carrying one annotation, for ``typing.get_type_hints`` to resolve."""

    def __init__(self, name: str, annotation: Any) -> None:
        self.__annotations__ = {name: annotation}


def _resolved(name: str, annotation: Any, globalns: Dict[str, Any], localns: Dict[str, Any]) -> Any:
    """The annotation with every forward reference (a string, ``List["Point"]``) resolved."""
    try:
        return typing.get_type_hints(_Hinted(name, annotation), globalns, localns or None, include_extras=True)[name]
    except NameError as error:
        raise _Unsupported(f"its annotation {_shown(annotation)} cannot be resolved ({error}); define the type "
                           "at module level") from None
    except Exception as error:
        raise _Unsupported(f"its annotation {_shown(annotation)} cannot be resolved ({type(error).__name__}: "
                           f"{error})") from None


def _shown(annotation: Any) -> str:
    return repr(annotation) if isinstance(annotation, str) else _type_name(annotation)


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__qualname__
    return repr(tp).replace("typing.", "")


def _with_extras(schema: Dict[str, Any], description: Optional[str], default: Any) -> Dict[str, Any]:
    """``schema`` with the docstring's description (unless ``Annotated`` gave one) and the default."""
    if description and "description" not in schema:
        schema = {**schema, "description": description}
    if default is not inspect.Parameter.empty and default is not dataclasses.MISSING:
        value = _json_value(default)
        # ``x: int = None`` (an optional argument, not a nullable one): no default the type refutes
        if value is not _NO_DEFAULT and (value is not None or _admits_null(schema)):
            schema = {**schema, "default": value}
    return schema


def _admits_null(schema: Dict[str, Any]) -> bool:
    return (not schema.keys() - {"description"} or schema.get("type") == "null"
            or {"type": "null"} in schema.get("anyOf", ()))


def _json_value(value: Any) -> Any:
    """``value`` as JSON would carry it (an Enum member as its value), or ``_NO_DEFAULT``."""
    if isinstance(value, enum.Enum):
        value = value.value
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        return _NO_DEFAULT


# ---------------------------------------------------------------------------------- the types

def _schema_of(tp: Any, seen: FrozenSet[Any]) -> Dict[str, Any]:
    """The JSON schema of type hint ``tp``; ``seen`` holds the classes being described, to
    refuse a recursive one."""
    if tp is None or tp is type(None):
        return {"type": "null"}
    if tp is Any or tp is object:
        return {}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if _special(origin, "Annotated"):
        schema = _schema_of(args[0], seen)
        text = next((text for text in map(_note, tp.__metadata__) if text), None)
        return {**schema, "description": text} if text else schema
    if _special(origin, "Required", "NotRequired", "ReadOnly"):
        return _schema_of(args[0], seen)
    if origin is typing.Union or (_UNION_TYPE is not None and origin is _UNION_TYPE):
        return _union(args, seen)
    if _special(origin, "Literal"):
        return _literal(args)
    if origin is tuple or tp is tuple:
        return _tuple(args, seen)
    if origin in _ARRAYS or tp in _ARRAYS:
        return {"type": "array", "items": _schema_of(args[0], seen) if args else {}}
    if origin in _MAPPINGS or tp in _MAPPINGS:
        return _mapping(args, seen)
    if origin is not None:
        raise _Unsupported(f"{_type_name(tp)} has no JSON schema{_HINT}")
    return _class_schema(tp, seen)


_HINT = ("; use str, int, float, bool, None, list, dict, Literal, an Enum, a dataclass, a TypedDict or a "
         "pydantic model")


def _note(metadata: Any) -> Optional[str]:
    """A description given in ``Annotated``: a string, or ``Doc("...")`` (PEP 727)."""
    if isinstance(metadata, str):
        return metadata.strip() or None
    text = getattr(metadata, "documentation", None)
    return text.strip() or None if isinstance(text, str) else None


def _union(args: Tuple[Any, ...], seen: FrozenSet[Any]) -> Dict[str, Any]:
    choices = [_schema_of(arg, seen) for arg in args if arg is not type(None)]
    nullable = len(choices) < len(args)
    if not nullable and len(choices) == 1:
        return choices[0]
    if any(choice == {} for choice in choices):
        return {}  # Any in a union: anything goes
    return {"anyOf": [*choices, {"type": "null"}] if nullable else choices}


def _typed_enum(values: List[Any]) -> Dict[str, Any]:
    """``{"type", "enum"}`` for JSON scalars, with the type when they share one."""
    kinds = {"boolean" if isinstance(v, bool) else "integer" if isinstance(v, int) else
             "number" if isinstance(v, float) else "string" for v in values}
    if kinds == {"integer", "number"}:
        kinds = {"number"}
    return {"type": kinds.pop(), "enum": values} if len(kinds) == 1 else {"enum": values}


def _literal(args: Tuple[Any, ...]) -> Dict[str, Any]:
    values = [arg.value if isinstance(arg, enum.Enum) else arg for arg in args]
    for value in values:
        if value is not None and not isinstance(value, (str, int, float)):
            raise _Unsupported(f"Literal value {value!r} is not a JSON string, number, boolean or null")
    scalars = [value for value in values if value is not None]
    if not scalars:
        return {"type": "null"}
    schema = _typed_enum(scalars)
    return {"anyOf": [schema, {"type": "null"}]} if len(scalars) < len(values) else schema


def _tuple(args: Tuple[Any, ...], seen: FrozenSet[Any]) -> Dict[str, Any]:
    if not args:
        return {"type": "array", "items": {}}
    if len(args) == 2 and args[1] is Ellipsis:
        return {"type": "array", "items": _schema_of(args[0], seen)}
    if args == ((),):  # Tuple[()]
        return {"type": "array", "maxItems": 0}
    items = [_schema_of(arg, seen) for arg in args]
    return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}


def _mapping(args: Tuple[Any, ...], seen: FrozenSet[Any]) -> Dict[str, Any]:
    if not args:
        return {"type": "object"}
    key = args[0]
    if not (key is Any or (isinstance(key, type) and issubclass(key, str))):
        raise _Unsupported(f"dict keys of type {_type_name(key)} cannot be described: JSON object keys are "
                           "strings (use Dict[str, ...])")
    values = _schema_of(args[1], seen)
    return {"type": "object", "additionalProperties": values} if values else {"type": "object"}


def _class_schema(tp: Any, seen: FrozenSet[Any]) -> Dict[str, Any]:
    supertype = getattr(tp, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        return _schema_of(supertype, seen)
    if isinstance(tp, typing.TypeVar):
        if tp.__bound__ is not None:
            return _schema_of(tp.__bound__, seen)
        if tp.__constraints__:
            return _union(tp.__constraints__, seen)
        raise _Unsupported(f"type variable {tp!r} has no bound to describe")
    if isinstance(tp, (str, typing.ForwardRef)):
        raise _Unsupported(f"{_shown(tp)} cannot be resolved")
    if not isinstance(tp, type):
        raise _Unsupported(f"{tp!r} is not a type{_HINT}")
    if issubclass(tp, enum.Enum):
        return _enum(tp)
    for scalar in _SCALARS:  # bool first: it is an int too; then str, int, float subclasses
        if issubclass(tp, scalar):
            return {"type": _SCALARS[scalar]}
    for kind, form in _FORMATS.items():  # datetime before date: it is a date too
        if issubclass(tp, kind):
            return {"type": "string", "format": form}
    if tp in seen:
        raise _Unsupported(f"{tp.__qualname__} refers to itself: a recursive type cannot be described "
                           "(Ollama cannot follow a $ref, Anthropic's strict mode refuses recursion)")
    if dataclasses.is_dataclass(tp):
        return _dataclass(tp, seen | {tp})
    if issubclass(tp, dict) and hasattr(tp, "__required_keys__"):
        return _typed_dict(tp, seen | {tp})
    if callable(getattr(tp, "model_json_schema", None)):
        return _model(tp)
    if issubclass(tp, pathlib.PurePath):
        return {"type": "string"}
    raise _Unsupported(f"{tp.__qualname__} has no JSON schema{_HINT}")


def _enum(tp: Any) -> Dict[str, Any]:
    values = [_json_value(member) for member in tp]
    if not values or any(isinstance(v, (list, dict)) or v is _NO_DEFAULT or v is None for v in values):
        raise _Unsupported(f"Enum {tp.__qualname__} needs string or number values to be described")
    schema = _typed_enum(values)
    summary = _class_summary(tp)
    return {**schema, "description": summary} if summary else schema


def _class_summary(tp: Any) -> Optional[str]:
    """A class's own docstring before its sections (not one made up by dataclass or Enum)."""
    doc = tp.__dict__.get("__doc__")
    if not isinstance(doc, str) or doc == "An enumeration." or doc.startswith(f"{tp.__name__}("):
        return None
    return parse_docstring(inspect.cleandoc(doc))[0] or None


def _class_hints(tp: Any) -> Dict[str, Any]:
    try:
        return typing.get_type_hints(tp, include_extras=True)
    except Exception as error:
        raise _Unsupported(f"the type hints of {tp.__qualname__} cannot be resolved ({type(error).__name__}: "
                           f"{error})") from None


def _object(tp: Any, properties: Dict[str, Any], required: List[str]) -> Dict[str, Any]:
    schema: Dict[str, Any] = {"type": "object"}
    summary = _class_summary(tp)
    if summary:
        schema["description"] = summary
    schema["properties"] = properties
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema


def _field_schema(tp: Any, field: str, hint: Any, seen: FrozenSet[Any]) -> Dict[str, Any]:
    try:
        return _schema_of(hint, seen)
    except _Unsupported as error:
        if str(error).startswith(f"field {tp.__qualname__}."):
            raise
        raise _Unsupported(f"field {tp.__qualname__}.{field}: {error}") from None


def _dataclass(tp: Any, seen: FrozenSet[Any]) -> Dict[str, Any]:
    hints = _class_hints(tp)
    documented = parse_docstring(tp.__dict__.get("__doc__"))[1]
    properties: Dict[str, Any] = {}
    required: List[str] = []
    for field in dataclasses.fields(tp):
        if not field.init:
            continue
        schema = _field_schema(tp, field.name, hints.get(field.name, field.type), seen)
        note = field.metadata.get("description") if field.metadata else None
        properties[field.name] = _with_extras(schema, note if isinstance(note, str) else documented.get(field.name),
                                              field.default)
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            required.append(field.name)
    return _object(tp, properties, required)


def _typed_dict(tp: Any, seen: FrozenSet[Any]) -> Dict[str, Any]:
    hints = _class_hints(tp)
    documented = parse_docstring(tp.__dict__.get("__doc__"))[1]
    properties = {name: _with_extras(_field_schema(tp, name, hint, seen), documented.get(name), inspect.Parameter.empty)
                  for name, hint in hints.items()}
    required_keys = getattr(tp, "__required_keys__", frozenset(hints))
    return _object(tp, properties, [name for name in hints if name in required_keys])


def _model(tp: Any) -> Dict[str, Any]:
    """A pydantic model's (or any class's) ``model_json_schema()``, with its ``$ref`` inlined."""
    try:
        schema = tp.model_json_schema()
    except Exception as error:
        raise _Unsupported(f"{tp.__qualname__}.model_json_schema() failed ({type(error).__name__}: {error})") from None
    if not isinstance(schema, dict):
        raise _Unsupported(f"{tp.__qualname__}.model_json_schema() returned {type(schema).__name__}, not a dict")
    definitions = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    body = {key: value for key, value in schema.items() if key not in ("$defs", "definitions")}
    inlined: Dict[str, Any] = _inlined(body, definitions, (), tp)
    return inlined


def _inlined(node: Any, definitions: Dict[str, Any], stack: Tuple[str, ...], tp: Any) -> Any:
    if isinstance(node, list):
        return [_inlined(item, definitions, stack, tp) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return {key: _inlined(value, definitions, stack, tp) for key, value in node.items()}
    target = re.sub(r"^#/(\$defs|definitions)/", "", ref)
    if target == ref or target not in definitions:
        raise _Unsupported(f"{tp.__qualname__}'s schema has a $ref that cannot be inlined: {ref!r}")
    if target in stack:
        raise _Unsupported(f"{tp.__qualname__}'s schema is recursive ({target} refers to itself): a recursive "
                           "type cannot be described (Ollama cannot follow a $ref)")
    resolved = _inlined(definitions[target], definitions, (*stack, target), tp)
    siblings = {key: _inlined(value, definitions, stack, tp) for key, value in node.items() if key != "$ref"}
    return {**resolved, **siblings}
