"""A plain function as a tool: the JSON schema made from its signature, type hints and docstring
(``provider_kit._tool_schema``), for every type family, the three docstring styles, the errors
naming the parameter, string annotations, and ``tools=`` taking a function.

No ``from __future__ import annotations`` here on purpose: the annotations of the functions
below must be the real objects; string annotations are tested by compiling code with the flag.
"""

import __future__

import dataclasses
import enum
import gc
import json
import sys
import types
import uuid
import weakref
from datetime import date, datetime
from typing import Any, Dict, FrozenSet, List, Mapping, NewType, Optional, Sequence, Set, Tuple, Union

import pytest
from _support import raises
from hypothesis import given, settings
from hypothesis import strategies as st

from provider_kit import ConfigError, Tool
from provider_kit._call_args import check_call_args

try:
    from typing import Annotated, Literal, TypedDict
except ImportError:  # pragma: no cover - Python 3.8 is not supported
    raise

try:
    from typing import NotRequired  # Python 3.11+
except ImportError:
    NotRequired = None  # type: ignore[assignment]


def schema_of(annotation: Any, **default: Any) -> Dict[str, Any]:
    """The property schema of one parameter annotated ``annotation`` (with ``default=``)."""

    def probe(value):  # type: ignore[no-untyped-def]
        pass

    probe.__annotations__ = {"value": annotation}
    if default:
        probe.__defaults__ = (default["default"],)
    parameters = Tool.from_function(probe).parameters
    assert parameters["type"] == "object"
    return parameters["properties"]["value"]


# ---------------------------------------------------------------------------- type families

class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Size(enum.IntEnum):
    SMALL = 1
    LARGE = 3


@dataclasses.dataclass
class Point:
    """A point on the map.

    Attributes:
        x: metres east.
        y: metres north.
    """

    x: float
    y: float = 0.0
    label: str = dataclasses.field(default="", metadata={"description": "what to call it"})
    tags: List[str] = dataclasses.field(default_factory=list)
    cache: int = dataclasses.field(default=0, init=False)


class Address(TypedDict):
    street: str
    zip_code: str


class PartialAddress(TypedDict, total=False):
    street: str
    zip_code: str


UserId = NewType("UserId", int)


def test_scalars():
    assert schema_of(str) == {"type": "string"}
    assert schema_of(int) == {"type": "integer"}
    assert schema_of(float) == {"type": "number"}
    assert schema_of(bool) == {"type": "boolean"}
    assert schema_of(type(None)) == {"type": "null"}
    assert schema_of(None) == {"type": "null"}
    assert schema_of(UserId) == {"type": "integer"}


def test_optional_and_unions_are_any_of_with_null():
    nullable_int = {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert schema_of(Optional[int]) == nullable_int
    assert schema_of(Union[int, None]) == nullable_int
    assert schema_of(Union[int, str]) == {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert schema_of(Union[int, str, None]) == {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}
    assert schema_of(Optional[int], default=None) == {**nullable_int, "default": None}
    assert schema_of(Union[int, Any]) == {}


@pytest.mark.skipif(sys.version_info < (3, 10), reason="X | None needs Python 3.10")
def test_pep_604_unions_match_optional():
    assert schema_of(eval("int | None")) == schema_of(Optional[int])
    assert schema_of(eval("int | str")) == schema_of(Union[int, str])


def test_arrays():
    assert schema_of(list) == {"type": "array", "items": {}}  # OpenAI refuses an array without items
    assert schema_of(List[int]) == {"type": "array", "items": {"type": "integer"}}
    assert schema_of(Sequence[str]) == {"type": "array", "items": {"type": "string"}}
    assert schema_of(Set[str]) == {"type": "array", "items": {"type": "string"}}
    assert schema_of(FrozenSet[int]) == {"type": "array", "items": {"type": "integer"}}
    assert schema_of(List[List[bool]]) == {"type": "array", "items": {"type": "array", "items": {"type": "boolean"}}}
    assert schema_of(tuple) == {"type": "array", "items": {}}
    assert schema_of(Tuple[int, ...]) == {"type": "array", "items": {"type": "integer"}}
    assert schema_of(Tuple[float, str]) == {
        "type": "array", "prefixItems": [{"type": "number"}, {"type": "string"}], "minItems": 2, "maxItems": 2}
    assert schema_of(List[int], default=[1, 2]) == {"type": "array", "items": {"type": "integer"}, "default": [1, 2]}
    assert schema_of(Tuple[int, int], default=(1, 2))["default"] == [1, 2]


def test_objects():
    assert schema_of(dict) == {"type": "object"}
    assert schema_of(Dict[str, int]) == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert schema_of(Mapping[str, List[str]]) == {
        "type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}
    assert schema_of(Dict[str, Any]) == {"type": "object"}


def test_literal_keeps_its_enum():
    assert schema_of(Literal["celsius", "fahrenheit"]) == {"type": "string", "enum": ["celsius", "fahrenheit"]}
    assert schema_of(Literal[1, 2, 3]) == {"type": "integer", "enum": [1, 2, 3]}
    assert schema_of(Literal[1, 2.5]) == {"type": "number", "enum": [1, 2.5]}
    assert schema_of(Literal[True]) == {"type": "boolean", "enum": [True]}
    assert schema_of(Literal["a", 1]) == {"enum": ["a", 1]}
    assert schema_of(Literal["a", None]) == {"anyOf": [{"type": "string", "enum": ["a"]}, {"type": "null"}]}
    assert schema_of(Optional[Literal["a", "b"]]) == {
        "anyOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "null"}]}
    assert schema_of(Literal["a", "b"], default="b") == {"type": "string", "enum": ["a", "b"], "default": "b"}


def test_enums_are_enums_of_their_values():
    assert schema_of(Color) == {"type": "string", "enum": ["red", "green"]}
    assert schema_of(Size) == {"type": "integer", "enum": [1, 3]}
    assert schema_of(Color, default=Color.GREEN) == {"type": "string", "enum": ["red", "green"], "default": "green"}
    assert schema_of(Literal[Color.RED]) == {"type": "string", "enum": ["red"]}


def test_dataclass_is_a_nested_object_with_its_fields_defaults_and_descriptions():
    assert schema_of(Point) == {
        "type": "object",
        "description": "A point on the map.",
        "properties": {
            "x": {"type": "number", "description": "metres east."},
            "y": {"type": "number", "description": "metres north.", "default": 0.0},
            "label": {"type": "string", "description": "what to call it", "default": ""},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["x"],
        "additionalProperties": False,
    }
    assert schema_of(List[Point])["items"] == schema_of(Point)


def test_typed_dict_is_an_object_with_its_required_keys():
    address = {"street": {"type": "string"}, "zip_code": {"type": "string"}}
    assert schema_of(Address) == {"type": "object", "properties": address, "required": ["street", "zip_code"],
                                  "additionalProperties": False}
    assert schema_of(PartialAddress) == {"type": "object", "properties": address, "additionalProperties": False}


@pytest.mark.skipif(NotRequired is None, reason="typing.NotRequired is Python 3.11+")
def test_typed_dict_not_required_keys():
    namespace: Dict[str, Any] = {}
    exec("class Order(TypedDict):\n    item: str\n    note: NotRequired[str]\n",
         {"TypedDict": TypedDict, "NotRequired": NotRequired}, namespace)
    assert schema_of(namespace["Order"]) == {
        "type": "object", "properties": {"item": {"type": "string"}, "note": {"type": "string"}},
        "required": ["item"], "additionalProperties": False}


class Pet:
    """Quacks like a pydantic model: ``model_json_schema`` with ``$defs`` (pydantic is never imported)."""

    @classmethod
    def model_json_schema(cls) -> Dict[str, Any]:
        return {
            "$defs": {"Owner": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
            "type": "object", "title": "Pet",
            "properties": {"owner": {"$ref": "#/$defs/Owner", "description": "who feeds it"},
                           "friends": {"type": "array", "items": {"$ref": "#/$defs/Owner"}}},
            "required": ["owner"],
        }


class Loop:
    @classmethod
    def model_json_schema(cls) -> Dict[str, Any]:
        return {"$defs": {"Loop": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Loop"}}}},
                "$ref": "#/$defs/Loop"}


def test_pydantic_like_models_are_inlined():
    owner = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    assert schema_of(Pet) == {
        "type": "object", "title": "Pet",
        "properties": {"owner": {**owner, "description": "who feeds it"},
                       "friends": {"type": "array", "items": owner}},
        "required": ["owner"],
    }
    error = raises(ConfigError, schema_of, Loop)
    assert "'value'" in str(error) and "recursive" in str(error)


def test_a_real_pydantic_model():
    pydantic = pytest.importorskip("pydantic")

    class Inner(pydantic.BaseModel):
        depth: int = pydantic.Field(description="how deep")

    class Outer(pydantic.BaseModel):
        inner: Inner
        maybe: Optional[Inner] = None

    schema = schema_of(Outer)
    assert "$defs" not in json.dumps(schema) and "$ref" not in json.dumps(schema)
    assert schema["properties"]["inner"]["properties"]["depth"]["description"] == "how deep"
    assert schema["properties"]["maybe"]["anyOf"][1] == {"type": "null"}
    assert schema["required"] == ["inner"]


def test_string_formats_and_any():
    assert schema_of(datetime) == {"type": "string", "format": "date-time"}
    assert schema_of(date) == {"type": "string", "format": "date"}
    assert schema_of(uuid.UUID) == {"type": "string", "format": "uuid"}
    assert schema_of(Any) == {}
    assert schema_of(object) == {}


def test_annotated_text_is_the_description():
    assert schema_of(Annotated[int, "how many"]) == {"type": "integer", "description": "how many"}
    assert schema_of(Annotated[int, 42]) == {"type": "integer"}  # other metadata is not a description

    class Doc:  # PEP 727's typing_extensions.Doc, duck-typed
        documentation = "in words"

    assert schema_of(Annotated[str, Doc()]) == {"type": "string", "description": "in words"}


def test_defaults_that_json_cannot_carry_are_left_out():
    assert schema_of(int, default=None) == {"type": "integer"}  # an optional int, not a nullable one
    assert schema_of(float, default=float("nan")) == {"type": "number"}
    assert schema_of(Any, default=object()) == {}


# ------------------------------------------------------------------------- the whole function

def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius", days: int = 1) -> str:
    """Get the weather forecast for a city.

    Use it for any question about the weather.

    Args:
        city: The city's name,
            in English.
        unit (str): The temperature unit.
        days: How many days ahead.

    Returns:
        The forecast, as text.
    """
    return f"{city}: sunny"


def test_the_whole_tool_of_a_function():
    tool = Tool.from_function(get_weather)
    assert tool.name == "get_weather"
    assert tool.description == "Get the weather forecast for a city.\n\nUse it for any question about the weather."
    assert tool.function is get_weather
    assert tool.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city's name, in English."},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "The temperature unit.",
                     "default": "celsius"},
            "days": {"type": "integer", "description": "How many days ahead.", "default": 1},
        },
        "required": ["city"],
        "additionalProperties": False,
    }


def numpy_style(city: str, days: int = 1) -> None:
    """Get the forecast.

    Parameters
    ----------
    city : str
        The city's name,
        in English.
    days : int, optional
        How many days ahead.

    Returns
    -------
    str
        The forecast.
    """


def sphinx_style(city: str, days: int = 1) -> None:
    """Get the forecast.

    :param city: The city's name,
        in English.
    :param int days: How many days ahead.
    :returns: The forecast.
    :rtype: str
    """


@pytest.mark.parametrize("function", [numpy_style, sphinx_style], ids=["numpy", "sphinx"])
def test_numpy_and_sphinx_docstrings(function):
    tool = Tool.from_function(function)
    assert tool.description == "Get the forecast."
    assert tool.parameters["properties"] == {
        "city": {"type": "string", "description": "The city's name, in English."},
        "days": {"type": "integer", "description": "How many days ahead.", "default": 1},
    }


def test_annotated_description_wins_over_the_docstring_and_no_docstring_is_fine():
    def lookup(code: Annotated[str, "an airport code"]) -> None:
        """Look up.

        Args:
            code: overruled.
        """

    def bare(n: int) -> None:
        pass

    assert Tool.from_function(lookup).parameters["properties"]["code"]["description"] == "an airport code"
    assert Tool.from_function(bare).description == ""
    assert Tool.from_function(bare).parameters == {"type": "object", "properties": {"n": {"type": "integer"}},
                                                   "required": ["n"], "additionalProperties": False}


def test_a_function_without_parameters():
    def now() -> str:
        """The time."""
        return "12:00"

    assert Tool.from_function(now).parameters == {"type": "object", "properties": {}, "additionalProperties": False}


def test_name_and_description_overrides():
    tool = Tool.from_function(get_weather, name="weather", description="Forecasts.")
    assert (tool.name, tool.description) == ("weather", "Forecasts.")
    assert tool.parameters == Tool.from_function(get_weather).parameters
    assert Tool.from_function(get_weather, description="").description == ""
    assert Tool.from_function(lambda: None, name="noop").name == "noop"
    error = raises(ConfigError, Tool.from_function, get_weather, name="get weather")
    assert "'get weather'" in str(error)


def test_methods_callables_and_positional_only_parameters():
    class Station:
        def read(self, sensor: str) -> str:
            """Read a sensor."""
            return sensor

        @classmethod
        def make(cls, city: str) -> None:
            pass

        def __call__(self, when: date) -> None:
            pass

    assert Tool.from_function(Station().read).parameters["required"] == ["sensor"]  # no self
    assert list(Tool.from_function(Station.make).parameters["properties"]) == ["city"]  # no cls
    assert Tool.from_function(Station(), name="station").parameters["properties"] == {
        "when": {"type": "string", "format": "date"}}
    namespace: Dict[str, Any] = {}
    exec("def add(a: int, /, b: int = 2) -> int:\n    return a + b\n", namespace)
    assert Tool.from_function(namespace["add"]).parameters["required"] == ["a"]


# ------------------------------------------------------------------------------------ errors

def error_of(function: Any, **kwargs: Any) -> str:
    return str(raises(ConfigError, Tool.from_function, function, **kwargs))


class Opaque:
    pass


@dataclasses.dataclass
class Tree:
    children: List["Tree"]


@dataclasses.dataclass
class Wrapper:
    payload: bytes


def test_errors_name_the_tool_and_the_parameter():
    def unannotated(city, days: int) -> None:
        pass

    def var_positional(*cities: str) -> None:
        pass

    def var_keyword(**options: str) -> None:
        pass

    def raw(data: bytes) -> None:
        pass

    def opaque(thing: Opaque) -> None:
        pass

    def int_keys(table: Dict[int, str]) -> None:
        pass

    def recursive(tree: Tree) -> None:
        pass

    def nested(box: Wrapper) -> None:
        pass

    def literal_bytes(tag: Literal[b"x"]) -> None:
        pass

    cases = [
        (unannotated, "'city' has no type annotation"),
        (var_positional, "*cities"),
        (var_keyword, "**options"),
        (raw, "parameter 'data': bytes"),
        (opaque, "parameter 'thing': Opaque"),
        (int_keys, "parameter 'table': dict keys"),
        (recursive, "parameter 'tree'"),
        (nested, "Wrapper.payload: bytes"),
        (literal_bytes, "parameter 'tag'"),
    ]
    for function, words in cases:
        message = error_of(function)
        assert message.startswith(f"tool {function.__name__!r}: "), message
        assert words in message, message
    assert "refers to itself" in error_of(recursive)


def test_a_function_without_a_usable_name_needs_name():
    assert "pass name=" in error_of(lambda city: city)
    import functools

    assert "pass name=" in error_of(functools.partial(get_weather, "Paris"))
    assert Tool.from_function(functools.partial(get_weather, unit="celsius"), name="weather").parameters[
        "required"] == ["city"]


def test_a_failing_model_json_schema_is_a_config_error():
    class Broken:
        @classmethod
        def model_json_schema(cls) -> Dict[str, Any]:
            raise KeyError("nope")

    def use(value: Broken) -> None:
        pass

    assert "parameter 'value': " in error_of(use) and "model_json_schema() failed" in error_of(use)


def test_a_signature_that_cannot_be_read_is_a_config_error():
    message = error_of(max)  # a builtin without a signature inspect can read
    assert message.startswith("tool 'max': its signature cannot be read")


# ------------------------------------------------------------------------- string annotations

FUTURE_SOURCE = '''
import dataclasses
from typing import List, Optional

@dataclasses.dataclass
class Stop:
    name: str
    minutes: int = 0

def plan(stops: List[Stop], budget: Optional[float] = None, note: "Optional[str]" = None) -> str:
    """Plan a trip."""
    return ""

def broken(stop: Unknown) -> None:
    pass
'''


def future_namespace(monkeypatch: pytest.MonkeyPatch) -> Dict[str, Any]:
    """FUTURE_SOURCE as a module compiled with ``from __future__ import annotations``."""
    module = types.ModuleType("future_tools")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses look their module up
    code = compile(FUTURE_SOURCE, "<future>", "exec", flags=__future__.annotations.compiler_flag, dont_inherit=True)
    exec(code, vars(module))
    return vars(module)


def test_future_annotations_resolve(monkeypatch):
    namespace = future_namespace(monkeypatch)
    assert isinstance(namespace["plan"].__annotations__["stops"], str)  # the flag took effect
    parameters = Tool.from_function(namespace["plan"]).parameters
    stop = {"type": "object", "properties": {"name": {"type": "string"}, "minutes": {"type": "integer", "default": 0}},
            "required": ["name"], "additionalProperties": False}
    assert parameters["properties"] == {
        "stops": {"type": "array", "items": stop},
        "budget": {"anyOf": [{"type": "number"}, {"type": "null"}], "default": None},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
    }


def test_an_unresolvable_forward_reference_names_the_parameter(monkeypatch):
    message = error_of(future_namespace(monkeypatch)["broken"])
    assert message.startswith("tool 'broken': parameter 'stop': ") and "Unknown" in message


# ----------------------------------------------------------------------------- the cache

def test_a_function_tool_is_built_once_and_not_kept_alive():
    def ping(host: str) -> str:
        return host

    first = Tool.from_function(ping)
    again = Tool.from_function(ping)
    assert again == first and again.function is ping
    assert again.parameters is first.parameters  # made once: run_tools asks every turn
    assert Tool.from_function(ping, name="ping2").name == "ping2"
    assert check_call_args("p", "hi", tools=[ping]).tools[0].parameters is first.parameters
    alive = weakref.ref(ping)
    del ping, first, again
    gc.collect()
    assert alive() is None


# --------------------------------------------------------------------- tools= with a function

def test_tools_take_a_function_next_to_a_tool_and_a_dict():
    described = Tool("get_time", "The time.", {"type": "object", "properties": {"tz": {"type": "string"}}})
    openai_shaped = {"type": "function", "function": {"name": "get_date", "parameters": {"type": "object"}}}
    args = check_call_args("p", "hi", tools=[get_weather, described, openai_shaped], tool_choice="get_weather")
    assert [tool.name for tool in args.tools] == ["get_weather", "get_time", "get_date"]
    assert args.tools[0] == Tool.from_function(get_weather)
    assert args.tool_choice == "get_weather"
    error = raises(ConfigError, check_call_args, "p", "hi", tools=[numpy_style, lambda x: x])
    assert "pass name=" in str(error)


# ------------------------------------------------------------------- every schema is valid

_LEAVES = [str, int, float, bool, type(None), Any, Color, Size, Point, Address, PartialAddress, Pet, datetime,
           Literal["a", "b"], Literal[1, None], dict, list, tuple]
_KEYWORDS = {"type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems",
             "maxItems", "enum", "anyOf", "description", "default", "format", "title"}


def _types() -> Any:
    return st.recursive(
        st.sampled_from(_LEAVES),
        lambda inner: st.one_of(
            inner.map(lambda tp: List[tp]),
            inner.map(lambda tp: Optional[tp]),
            inner.map(lambda tp: Dict[str, tp]),
            inner.map(lambda tp: Tuple[tp, ...]),
            st.tuples(inner, inner).map(lambda pair: Union[pair[0], pair[1]]),
            inner.map(lambda tp: Annotated[tp, "described"]),
        ),
        max_leaves=6,
    )


def _check_node(schema: Any, path: str) -> None:
    assert isinstance(schema, dict), path
    assert set(schema) <= _KEYWORDS, (path, set(schema) - _KEYWORDS)
    if "type" in schema:
        assert schema["type"] in ("string", "integer", "number", "boolean", "null", "array", "object"), path
    if schema.get("type") == "array":
        assert "items" in schema or "prefixItems" in schema or schema.get("maxItems") == 0, path
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _check_node(schema[key], f"{path}.{key}")
    for name, sub in schema.get("properties", {}).items():
        _check_node(sub, f"{path}.{name}")
    for index, sub in enumerate(schema.get("anyOf", []) + schema.get("prefixItems", [])):
        _check_node(sub, f"{path}[{index}]")
    if "required" in schema:
        assert schema["required"] and set(schema["required"]) <= set(schema["properties"]), path


@settings(max_examples=150, deadline=None)
@given(st.lists(_types(), min_size=0, max_size=4))
def test_every_schema_is_json_and_an_object_schema(types):
    def probe():  # type: ignore[no-untyped-def]
        pass

    names = [f"p{index}" for index in range(len(types))]
    probe.__annotations__ = dict(zip(names, types))
    probe.__code__ = compile(f"def probe({', '.join(names)}): pass", "<probe>", "exec").co_consts[0]
    parameters = Tool.from_function(probe).parameters
    assert json.loads(json.dumps(parameters, allow_nan=False)) == parameters
    assert parameters["type"] == "object" and list(parameters["properties"]) == names
    _check_node(parameters, "parameters")
    try:
        import jsonschema
    except ImportError:
        return
    jsonschema.Draft202012Validator.check_schema(parameters)
