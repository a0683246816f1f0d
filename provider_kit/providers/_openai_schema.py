"""OpenAI's ``response_format`` for ``schema=``: the JSON schema and whether to ask for ``strict``.

OpenAI's strict mode (PROTOCOLS-2.md §F.1) guarantees the reply fits the schema, but only takes a
schema in which every object has ``"additionalProperties": false`` and lists every property in
``required``; any other schema with ``strict: true`` is a 400. provider_kit's rule:

* a schema dict is the caller's: sent exactly as given, with ``strict: true`` when it is
  strict-compatible and ``strict: false`` (the schema guides the model, the reply is still
  checked by ``json.loads``) when it is not. It is never rewritten behind the caller's back;
* a class (pydantic's ``model_json_schema()``) is made strict-compatible the way the openai
  SDK's ``chat.completions.parse()`` does it (``additionalProperties: false`` on every object,
  every property required, ``default: null`` dropped, a ``$ref`` with siblings inlined): every
  reply that fits the result still builds the class, so nothing the caller wrote changes
  meaning, and the call gets the same guarantee as with the SDK.

A class's result is made once and kept (its schema does not change; making it again cost ~100 us
a call, a tenth of a whole loopback call); a dict is checked on every call, since the caller may
change it between calls.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Tuple

from .._call_args import OutputFormat

#: Each class's ``(schema, strict)``, made on its first call; a class going away takes it along.
_CLASS_RESULTS: Any = None


def response_schema(output: OutputFormat) -> Tuple[Dict[str, Any], bool]:
    """``(schema, strict)`` for ``output`` (mode "schema"), following the module's rule.

    The schema returned for a class is shared between calls: serialise it, never change it.
    """
    global _CLASS_RESULTS
    cls = output.cls
    if cls is None:
        return _made(output)
    if _CLASS_RESULTS is None:
        import weakref

        _CLASS_RESULTS = weakref.WeakKeyDictionary()
    try:
        result: Tuple[Dict[str, Any], bool] = _CLASS_RESULTS[cls]
    except KeyError:
        result = _CLASS_RESULTS[cls] = _made(output)
    except TypeError:  # not weak-referenceable: made every time
        result = _made(output)
    return result


def _made(output: OutputFormat) -> Tuple[Dict[str, Any], bool]:
    schema = output.schema or {}
    if output.cls is not None:
        strict_schema = copy.deepcopy(schema)
        try:
            _make_strict(strict_schema, strict_schema)
        except (KeyError, TypeError, ValueError):
            return schema, is_strict_compatible(schema)  # a schema the SDK's rule cannot handle
        if is_strict_compatible(strict_schema):
            return strict_schema, True
    return schema, is_strict_compatible(schema)


def is_strict_compatible(schema: Any) -> bool:
    """Whether every object in ``schema`` (nested ones, ``$defs`` and ``definitions`` included)
    has ``additionalProperties: false`` and every property in ``required``."""
    if isinstance(schema, list):
        return all(is_strict_compatible(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    properties = schema.get("properties")
    is_object = schema.get("type") == "object" or (
        isinstance(schema.get("type"), list) and "object" in schema["type"]
    ) or isinstance(properties, dict)
    if is_object:
        if schema.get("additionalProperties") is not False:
            return False
        required = schema.get("required") or []
        if isinstance(properties, dict) and not (isinstance(required, list) and set(properties) <= set(required)):
            return False
    for key, value in schema.items():
        if key in ("properties", "$defs", "definitions", "patternProperties") and isinstance(value, dict):
            if not all(is_strict_compatible(item) for item in value.values()):
                return False
        elif key not in ("enum", "const", "default", "examples", "required") and not is_strict_compatible(value):
            return False
    return True


def _make_strict(node: Any, root: Dict[str, Any]) -> Dict[str, Any]:
    """What ``openai.lib._pydantic._ensure_strict_json_schema`` does, in place."""
    if not isinstance(node, dict):
        raise TypeError(f"expected a schema object, got {type(node).__name__}")
    for defs_key in ("$defs", "definitions"):
        defs = node.get(defs_key)
        if isinstance(defs, dict):
            for value in defs.values():
                _make_strict(value, root)
    if node.get("type") == "object" and "additionalProperties" not in node:
        node["additionalProperties"] = False
    properties = node.get("properties")
    if isinstance(properties, dict):
        node["required"] = list(properties)
        node["properties"] = {key: _make_strict(value, root) for key, value in properties.items()}
    if isinstance(node.get("items"), dict):
        node["items"] = _make_strict(node["items"], root)
    if isinstance(node.get("anyOf"), list):
        node["anyOf"] = [_make_strict(variant, root) for variant in node["anyOf"]]
    all_of = node.get("allOf")
    if isinstance(all_of, list):
        if len(all_of) == 1:
            node.update(_make_strict(all_of[0], root))
            node.pop("allOf")
        else:
            node["allOf"] = [_make_strict(entry, root) for entry in all_of]
    if "default" in node and node["default"] is None:
        node.pop("default")
    ref = node.get("$ref")
    if isinstance(ref, str) and len(node) > 1:
        resolved = _resolve(root, ref)
        node.update({**resolved, **node})
        node.pop("$ref")
        return _make_strict(node, root)
    return node


def _resolve(root: Dict[str, Any], ref: str) -> Dict[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"unexpected $ref {ref!r}")
    resolved: Any = root
    for key in ref[2:].split("/"):
        resolved = resolved[key]
        if not isinstance(resolved, dict):
            raise TypeError(f"$ref {ref!r} does not name a schema object")
    return copy.deepcopy(resolved)
