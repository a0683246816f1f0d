"""A JSON schema rewritten to the subset Anthropic's structured outputs accept (PROTOCOLS-2 §F.3).

The API compiles the schema into a grammar and answers 400 for what it cannot compile: an
object without ``additionalProperties: false``, numeric and length constraints, ``oneOf``,
string formats it does not know, ``minItems`` other than 0 or 1. The official SDK's
``messages.parse()`` rewrites a pydantic model's schema before sending it (its
``transform_schema``); provider_kit does the same, for a class's schema and a dict alike, so
``schema=`` takes the schema a caller already has (a pydantic model's, one written for another
provider) and the request means what the SDK's would:

- every object gets ``additionalProperties: false`` (``required`` is kept as given: Anthropic,
  unlike OpenAI's strict mode, takes a subset);
- ``oneOf`` becomes ``anyOf``;
- a keyword the API does not take (``minimum``, ``maxLength``, ``pattern``'s neighbours, an
  unknown ``format``...) moves into the ``description`` as text, ``{minimum: 0}``, so the model
  may still follow it; the class built from the reply (``parsed``) still checks it locally.

Written from the rules, not imported: provider_kit never imports an SDK. A class's schema is
rewritten once and kept (``output_schema``); a dict on every call, since its owner may change it.
"""

from __future__ import annotations

from typing import Any, Dict

from .._call_args import OutputFormat

__all__ = ["anthropic_schema", "output_schema"]

#: The string formats the grammar knows (structured-outputs.md); others move to the description.
STRING_FORMATS = frozenset(
    ("date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid")
)


def _primitive(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


#: Each class's rewritten schema, made on its first call; a class going away takes it along.
_CLASS_SCHEMAS: Any = None


def output_schema(output: OutputFormat) -> Dict[str, Any]:
    """``anthropic_schema`` of ``output``'s schema. A class's is rewritten on its first call only
    and shared between calls (serialise it, never change it): ~25 us a call otherwise.

    :raises ValueError: as ``anthropic_schema`` does (not kept: raised on every call).
    """
    global _CLASS_SCHEMAS
    cls = output.cls
    if cls is None:
        return anthropic_schema(output.schema or {})
    if _CLASS_SCHEMAS is None:
        import weakref

        _CLASS_SCHEMAS = weakref.WeakKeyDictionary()
    try:
        schema: Dict[str, Any] = _CLASS_SCHEMAS[cls]
    except KeyError:
        schema = _CLASS_SCHEMAS[cls] = anthropic_schema(output.schema or {})
    except TypeError:  # not weak-referenceable: rewritten every time
        schema = anthropic_schema(output.schema or {})
    return schema


def anthropic_schema(schema: Dict[str, Any]) -> Dict[str, Any]:
    """``schema`` (never changed) rewritten for ``output_config.format.schema``.

    :raises ValueError: for a (sub)schema with no ``type``, ``anyOf``, ``oneOf``, ``allOf``,
        ``$ref``, ``const`` or ``enum``: nothing says what it allows. The caller turns it into
        a ``ConfigError``.
    """
    rest = dict(schema)
    out: Dict[str, Any] = {}
    defs = rest.pop("$defs", None)
    if isinstance(defs, dict):
        out["$defs"] = {name: anthropic_schema(sub) for name, sub in defs.items()}
    ref = rest.pop("$ref", None)
    if ref is not None:
        out["$ref"] = ref
        if "description" in rest:
            out["description"] = rest["description"]
        return out  # siblings of a $ref are ignored by JSON Schema; the API refuses them

    kind = rest.pop("type", None)
    any_of, one_of, all_of = rest.pop("anyOf", None), rest.pop("oneOf", None), rest.pop("allOf", None)
    enum = rest.get("enum")
    if isinstance(enum, list) and enum and all(_primitive(value) for value in enum):
        out["enum"] = list(rest.pop("enum"))
    if "const" in rest and _primitive(rest["const"]):
        out["const"] = rest.pop("const")
    literal = "enum" in out or "const" in out
    if literal:
        kind = None  # the values say the type
    if isinstance(any_of, list) or isinstance(one_of, list):
        out["anyOf"] = [anthropic_schema(sub) for sub in (any_of if isinstance(any_of, list) else one_of)]
    elif isinstance(all_of, list):
        out["allOf"] = [anthropic_schema(sub) for sub in all_of]
    elif not literal:
        if kind is None:
            raise ValueError("a schema (or one of its properties) has no 'type', 'anyOf', 'oneOf', 'allOf', '$ref', "
                             "'const' or 'enum': nothing says what it allows")
        out["type"] = kind
    for key in ("description", "title"):
        if key in rest:
            out[key] = rest.pop(key)

    if kind == "object":
        properties = rest.pop("properties", None) or {}
        out["properties"] = {name: anthropic_schema(sub) for name, sub in properties.items()}
        rest.pop("additionalProperties", None)
        out["additionalProperties"] = False
        if "required" in rest:
            out["required"] = list(rest.pop("required"))
    elif kind == "string":
        if rest.get("format") in STRING_FORMATS:
            out["format"] = rest.pop("format")
    elif kind == "array":
        if "items" in rest:
            items = rest.pop("items")
            out["items"] = anthropic_schema(items) if isinstance(items, dict) else items
        if rest.get("minItems") in (0, 1):
            out["minItems"] = rest.pop("minItems")

    if rest:  # what the grammar cannot take, as a hint the model may still follow
        hint = "{" + ", ".join(f"{key}: {value}" for key, value in rest.items()) + "}"
        description = out.get("description")
        out["description"] = f"{description}\n\n{hint}" if description is not None else hint
    return out

