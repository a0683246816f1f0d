"""The one check of a call's arguments, shared by every provider and by ``FakeProvider``.

``complete`` and ``stream`` take the same keyword arguments everywhere; checking them in one
place means a bad argument fails with the same ``ConfigError`` message whichever provider
receives it, so a test written against ``provider_kit.testing.FakeProvider`` fails the way
production would. What only one protocol refuses (Anthropic's temperature above 1) stays with
that provider.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ._secrets import is_secret_name
from ._tools import Tool, as_tools, check_tool_choice
from .errors import ConfigError
from .types import Message, MessagesInput, as_messages

#: The levels ``reasoning=`` takes (``False`` turns thinking off where a model thinks by default).
REASONING_LEVELS = ("low", "medium", "high")

# requests' own rules for header names and values (requests/_internal_utils.py). Checked before
# anything is sent: at send time a bad value would surface as a confusing error, and for a
# credential attached by ``HeaderAuth`` as a ValueError quoting the key.
# Used with fullmatch: a "$" would also match before a trailing newline, the very typo to catch.
_VALID_HEADER_NAME = re.compile(r"[^:\s][^:\r\n]*")
_VALID_HEADER_VALUE = re.compile(r"(\S[^\r\n]*)?")
#: What OpenAI allows as a schema's name (``json_schema.name``); other characters become "_".
_SCHEMA_NAME_CHARACTERS = re.compile(r"[^a-zA-Z0-9_-]")


class OutputFormat:
    """What ``schema=`` or ``json=True`` asked for, checked: ``mode`` is "schema" or "json";
    ``schema`` the JSON schema as a dict (None in "json" mode); ``name`` a name for it (the
    class's, else the schema's ``title``, else "response"; letters, digits, "_" and "-", at most
    64); ``cls`` the class given (its ``model_validate`` builds ``parsed``), else None."""

    __slots__ = ("cls", "mode", "name", "schema")

    def __init__(self, mode: str, schema: Optional[Dict[str, Any]] = None, name: str = "response",
                 cls: Optional[type] = None) -> None:
        self.mode = mode
        self.schema = schema
        self.name = name
        self.cls = cls

    def __repr__(self) -> str:
        return f"OutputFormat({self.mode!r}, name={self.name!r})"


class CallArgs:
    """A call's arguments once checked: ``messages`` coerced, ``stop`` a list or None, ``timeout``
    a float or None (None: the provider's own default), ``output`` an ``OutputFormat`` or None,
    ``extra_headers`` / ``extra_body`` dicts or None, ``tools`` a tuple of ``Tool`` or None (an
    empty list is None), ``tool_choice`` "auto", "none", "required" or a tool's name; every
    other one as given (None: not set)."""

    __slots__ = (
        "cache",
        "extra_body",
        "extra_headers",
        "max_retries",
        "max_tokens",
        "messages",
        "model",
        "output",
        "parallel_tool_calls",
        "reasoning",
        "seed",
        "stop",
        "temperature",
        "timeout",
        "tool_choice",
        "tools",
        "top_p",
    )

    def __init__(
        self,
        messages: List[Message],
        model: Optional[str],
        max_tokens: Optional[int],
        temperature: Optional[float],
        stop: Optional[List[str]],
        timeout: Optional[float],
        *,
        output: Optional[OutputFormat] = None,
        reasoning: Union[str, bool, None] = None,
        top_p: Optional[float] = None,
        seed: Optional[int] = None,
        max_retries: Optional[int] = None,
        extra_headers: Optional[Dict[str, str]] = None,
        extra_body: Optional[Dict[str, Any]] = None,
        cache: Optional[bool] = None,
        tools: Optional[Tuple[Tool, ...]] = None,
        tool_choice: Optional[str] = None,
        parallel_tool_calls: Optional[bool] = None,
    ) -> None:
        self.messages = messages
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.stop = stop
        self.timeout = timeout
        self.output = output
        self.reasoning = reasoning
        self.top_p = top_p
        self.seed = seed
        self.max_retries = max_retries
        self.extra_headers = extra_headers
        self.extra_body = extra_body
        self.cache = cache
        self.tools = tools
        self.tool_choice = tool_choice
        self.parallel_tool_calls = parallel_tool_calls


def check_timeout(provider: str, timeout: Any) -> float:
    """``timeout`` as a float.

    :raises ConfigError: unless it is a positive number (``bool`` is not a number here).
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigError(f"{provider}: argument timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def check_headers(provider: str, headers: Mapping[str, str], *, secret: bool) -> None:
    """:raises ConfigError: for a header requests or http.client would refuse to send."""
    for name, value in headers.items():
        if not _VALID_HEADER_NAME.fullmatch(name):
            raise ConfigError(f"{provider}: {name!r} is not a valid HTTP header name")
        if not _VALID_HEADER_VALUE.fullmatch(value):
            what = f"the {name} header (it carries the API key)" if secret else f"header {name}"
            # Never the value itself: it may be a credential.
            raise ConfigError(
                f"{provider}: {what} has a line break or leading whitespace; "
                "remove the stray characters (a key read from a file often ends in a newline)"
            )


def check_call_args(
    provider: str,
    prompt_or_messages: MessagesInput,
    *,
    system: Optional[str] = None,
    model: Optional[str] = None,
    max_tokens: Optional[int] = None,
    temperature: Optional[float] = None,
    stop: Any = None,
    timeout: Optional[float] = None,
    schema: Any = None,
    json: Optional[bool] = None,
    reasoning: Union[str, bool, None] = None,
    top_p: Optional[float] = None,
    seed: Optional[int] = None,
    max_retries: Optional[int] = None,
    extra_headers: Optional[Mapping[str, str]] = None,
    extra_body: Optional[Mapping[str, Any]] = None,
    cache: Optional[bool] = None,
    tools: Any = None,
    tool_choice: Any = None,
    parallel_tool_calls: Optional[bool] = None,
) -> CallArgs:
    """Check and normalise the arguments of ``complete``/``stream`` before anything is sent.

    :param provider: the provider's name, which starts every message.
    :raises ConfigError: for a malformed prompt, an empty or non-string ``model``, a
        ``max_tokens`` that is not a positive integer, a ``temperature`` outside 0 to 2, a
        ``stop`` that is not a string or a list of non-empty strings, a ``timeout`` that is not
        a positive number; a ``schema`` that is neither a JSON-schema dict nor a class with
        ``model_json_schema()``, ``schema`` and ``json=True`` together, a ``reasoning`` other
        than "low", "medium", "high" or False, a ``top_p`` outside 0 to 1, a ``seed`` that is not
        an integer, a ``max_retries`` that is not a non-negative integer, ``extra_headers`` that
        are not valid string headers, an ``extra_body`` that is not a JSON object, a ``cache``
        that is not a bool.
    """
    where = f"{provider}: argument"
    messages = as_messages(prompt_or_messages, system)
    if model is not None and (not isinstance(model, str) or not model):
        raise ConfigError(f"{where} model must be a non-empty string, got {model!r}")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ConfigError(f"{where} max_tokens must be a positive integer, got {max_tokens!r}")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2
    ):
        raise ConfigError(f"{where} temperature must be a number from 0 to 2, got {temperature!r}")
    stop_list: Optional[List[str]] = None
    if stop is not None:
        if isinstance(stop, str):
            stop_list = [stop]
        elif isinstance(stop, (list, tuple)):
            stop_list = list(stop)
        if stop_list is None or not all(isinstance(item, str) and item for item in stop_list):
            raise ConfigError(f"{where} stop must be a string or a list of non-empty strings, got {stop!r}")
    seconds = check_timeout(provider, timeout) if timeout is not None else None
    args = CallArgs(messages, model, max_tokens, temperature, stop_list or None, seconds)
    # The arguments of issue 11, checked only when given: a plain call pays one test for all.
    if (
        schema is not None or json is not None or reasoning is not None or top_p is not None or seed is not None
        or max_retries is not None or extra_headers is not None or extra_body is not None or cache is not None
    ):
        _check_more(args, where, provider, schema, json, reasoning, top_p, seed, max_retries, extra_headers,
                    extra_body, cache)
    if tools is not None or tool_choice is not None or parallel_tool_calls is not None:
        _check_tools(args, where, tools, tool_choice, parallel_tool_calls)
    return args


def _check_tools(args: CallArgs, where: str, tools: Any, tool_choice: Any, parallel_tool_calls: Any) -> None:
    if tools is not None:
        args.tools = as_tools(tools, where)
    if tool_choice is not None:
        args.tool_choice = check_tool_choice(tool_choice, args.tools, where)
    if parallel_tool_calls is not None:
        if not isinstance(parallel_tool_calls, bool):
            raise ConfigError(f"{where} parallel_tool_calls must be True or False, got {parallel_tool_calls!r}")
        if not args.tools:
            raise ConfigError(f"{where} parallel_tool_calls needs tools=")
        args.parallel_tool_calls = parallel_tool_calls


def _check_more(
    args: CallArgs, where: str, provider: str, schema: Any, json: Any, reasoning: Any, top_p: Any, seed: Any,
    max_retries: Any, extra_headers: Any, extra_body: Any, cache: Any,
) -> None:
    if json is not None and not isinstance(json, bool):
        raise ConfigError(f"{where} json must be True or False, got {json!r}")
    if schema is not None:
        if json:
            raise ConfigError(f"{where} schema and json=True are exclusive: a schema already asks for JSON")
        args.output = output_format(schema, where)
    elif json:
        args.output = OutputFormat("json")
    if reasoning is not None:
        if reasoning is not False and reasoning not in REASONING_LEVELS:
            raise ConfigError(f"{where} reasoning must be one of {', '.join(map(repr, REASONING_LEVELS))} or False, "
                              f"got {reasoning!r}")
        args.reasoning = reasoning
    if top_p is not None:
        if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 <= top_p <= 1:
            raise ConfigError(f"{where} top_p must be a number from 0 to 1, got {top_p!r}")
        args.top_p = top_p
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"{where} seed must be an integer, got {seed!r}")
        args.seed = seed
    if max_retries is not None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"{where} max_retries must be a non-negative integer, got {max_retries!r}")
        args.max_retries = max_retries
    if extra_headers is not None:
        args.extra_headers = _checked_headers(extra_headers, where, provider)
    if extra_body is not None:
        args.extra_body = _checked_body(extra_body, where)
    if cache is not None:
        if not isinstance(cache, bool):
            raise ConfigError(f"{where} cache must be True or False, got {cache!r}")
        args.cache = cache


def _checked_headers(headers: Any, where: str, provider: str) -> Dict[str, str]:
    if not isinstance(headers, Mapping):
        raise ConfigError(f"{where} extra_headers must be a dict of strings, got {type(headers).__name__}")
    checked: Dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where} extra_headers must have non-empty string names, got {name!r}")
        if not isinstance(value, str):
            # Never the value itself: a header named like a credential may hold one.
            raise ConfigError(f"{where} extra_headers[{name!r}] must be a string, got {type(value).__name__}")
        checked[name] = value
    check_headers(provider, {k: v for k, v in checked.items() if not is_secret_name(k)}, secret=False)
    check_headers(provider, {k: v for k, v in checked.items() if is_secret_name(k)}, secret=True)
    return checked


def _checked_body(body: Any, where: str) -> Dict[str, Any]:
    if not isinstance(body, Mapping):
        raise ConfigError(f"{where} extra_body must be a dict (merged into the JSON body), got {type(body).__name__}")
    checked = dict(body)
    for key in checked:
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{where} extra_body must have non-empty string keys, got {key!r}")
    _check_json_ready(checked, f"{where} extra_body")
    return checked


def _check_json_ready(value: Any, what: str) -> None:
    import json  # only calls with a schema or extra_body get here

    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{what} cannot be sent as JSON: {error}") from None


def output_format(schema: Any, where: str) -> OutputFormat:
    """``schema=``: a JSON-schema dict, or a class with ``model_json_schema()`` (pydantic v2,
    duck-typed: pydantic is never imported here).

    :raises ConfigError: for anything else, or a class whose schema cannot be made.
    """
    if isinstance(schema, Mapping):
        checked = dict(schema)
        _check_json_ready(checked, f"{where} schema")
        title = checked.get("title")
        return OutputFormat("schema", checked, _schema_name(title if isinstance(title, str) else None))
    make = getattr(schema, "model_json_schema", None)
    if isinstance(schema, type) and callable(make):
        return OutputFormat("schema", _class_schema(schema, make, where), _schema_name(schema.__name__), schema)
    hint = " (pass the class, not an instance)" if callable(make) else ""
    raise ConfigError(
        f"{where} schema must be a JSON-schema dict or a class with model_json_schema() such as a pydantic "
        f"model, got {type(schema).__name__}{hint}"
    )


#: Each schema class's JSON schema, made once (pydantic rebuilds it on every call, ~100 us).
_CLASS_SCHEMAS: Any = None


def _class_schema(cls: type, make: Any, where: str) -> Dict[str, Any]:
    global _CLASS_SCHEMAS
    if _CLASS_SCHEMAS is None:
        import weakref  # a class going away takes its schema with it

        _CLASS_SCHEMAS = weakref.WeakKeyDictionary()
    try:
        cached = _CLASS_SCHEMAS.get(cls)
    except TypeError:  # not weak-referenceable: made every time
        cached = None
    if cached is not None:
        return dict(cached)
    try:
        made = make()
    except Exception as error:
        raise ConfigError(f"{where} schema: {cls.__name__}.model_json_schema() failed: {error}") from None
    if not isinstance(made, Mapping):
        raise ConfigError(f"{where} schema: {cls.__name__}.model_json_schema() returned {type(made).__name__}, "
                          "not a dict")
    made = dict(made)
    _check_json_ready(made, f"{where} schema")
    try:
        _CLASS_SCHEMAS[cls] = made
    except TypeError:
        pass
    return dict(made)


def _schema_name(name: Optional[str]) -> str:
    cleaned = _SCHEMA_NAME_CHARACTERS.sub("_", name or "")[:64]
    return cleaned or "response"
