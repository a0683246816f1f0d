"""The built-in provider types as the tests address them, each fact read from its provider class
and its simulator (never restated here), and a shared retry speed-up.

A new built-in type is picked up by every test parametrised over ``KINDS`` with no edit here.
"""

from __future__ import annotations

import urllib.parse
from typing import Dict, Optional, Type

from provider_kit import Message
from provider_kit._retry import RetryPolicy
from provider_kit._streaming import NDJSON
from provider_kit.providers import BUILTIN_TYPES
from provider_kit.providers._base import HTTPProvider
from provider_kit.providers._calls import ChatCall
from provider_kit.providers._features import CallFeatures
from provider_kit.testing.wires import WIRES

#: Every built-in type name, in registration order.
KINDS = tuple(BUILTIN_TYPES)
CLASSES: Dict[str, Type[HTTPProvider]] = dict(BUILTIN_TYPES)
_PROBE_KEY = "sk-probe-0123456789abcdef"


def _probe(kind: str) -> HTTPProvider:
    """A provider of ``kind`` pointed at where its simulator would be (nothing is sent)."""
    prefix = WIRES[kind].api_prefix
    return CLASSES[kind](base_url=f"http://127.0.0.1:9{prefix}", api_key=_PROBE_KEY, max_retries=0)


def _server_path(provider: HTTPProvider, path: str) -> str:
    """``path`` (relative to ``base_url``) as the server sees it."""
    return urllib.parse.urlsplit(provider.base_url).path + path


def _chat_path(kind: str) -> str:
    with _probe(kind) as provider:
        request = provider._build_request(ChatCall([Message("user", "hi")], provider.model))
        return _server_path(provider, request.path)


def _health_path(kind: str) -> str:
    with _probe(kind) as provider:
        return _server_path(provider, provider._health_request().path)


def _key_header(kind: str) -> Optional[str]:
    with _probe(kind) as provider:
        credentials = provider._headers(_PROBE_KEY)[1]
        return next(iter(credentials), None)


#: The path of a chat request on the simulator, per type.
CHAT_PATHS: Dict[str, str] = {kind: _chat_path(kind) for kind in KINDS}
#: The path of the health check (and first listing page) on the simulator, per type.
HEALTH_PATHS: Dict[str, str] = {kind: _health_path(kind) for kind in KINDS}
#: The header that carries the key, per type.
KEY_HEADERS: Dict[str, Optional[str]] = {kind: _key_header(kind) for kind in KINDS}
#: The headers other than the key that a request of each type carries (a protocol version...).
PROTOCOL_HEADERS: Dict[str, Dict[str, str]] = {kind: _probe(kind)._headers(None)[0] for kind in KINDS}
#: What the simulator's ``base_url`` adds to its address ("/v1" for an API whose base URL has it).
API_PREFIXES: Dict[str, str] = {kind: WIRES[kind].api_prefix for kind in KINDS}
#: The Content-Type of a streamed answer, per type (what its simulator sends).
STREAM_TYPES: Dict[str, str] = {kind: WIRES[kind].stream_type for kind in KINDS}
#: The wire family of each type: the type itself, or for a type that extends another built-in
#: type's class (Azure extends OpenAI), that type. Bodies a test scripts by hand follow it.
FAMILIES: Dict[str, str] = {
    kind: next(base.TYPE for base in reversed(CLASSES[kind].__mro__) if base in CLASSES.values())
    for kind in KINDS
}
#: The types whose streams are newline-delimited JSON rather than server-sent events.
NDJSON_KINDS = tuple(kind for kind in KINDS if CLASSES[kind].STREAM_DECODER is NDJSON)
#: The types that refuse to work without a key (a hosted API's), and those that do not (a
#: server on the user's machine).
KEYED_KINDS = tuple(kind for kind in KINDS if CLASSES[kind].REQUIRES_KEY)
KEYLESS_KINDS = tuple(kind for kind in KINDS if not CLASSES[kind].REQUIRES_KEY)

# -- example types, chosen by what a test needs of them, never by name ------------------------
# A test about something every type does alike uses one of these rather than naming a type; a
# test about one type's own behaviour lives in test_<type>.py.

#: A hosted API with its own default host: needs a key and streams server-sent events.
SOME_KIND = next(kind for kind in KEYED_KINDS if CLASSES[kind].DEFAULT_BASE_URL and kind not in NDJSON_KINDS)
#: A second hosted API with a wire format other than ``SOME_KIND``'s (a fallback that really
#: crosses protocols).
OTHER_KIND = next(kind for kind in KEYED_KINDS if FAMILIES[kind] != FAMILIES[SOME_KIND])
#: A local server's type: no key required, and a default host on this machine.
LOCAL_KIND = KEYLESS_KINDS[0]


def option_kind(option: str) -> str:
    """The first type with an option of its own named ``option`` (``keep_alive``...)."""
    return next(kind for kind in KINDS if option in CLASSES[kind].EXTRA_OPTIONS)


def served_name(kind: str, name: str) -> str:
    """``name`` as the simulator of ``kind`` lists it: with the tag its listings carry (a
    local server lists ``llama3.2:latest`` for ``llama3.2``), else unchanged."""
    default = WIRES[kind].default_models[0]
    tag = default.rsplit(":", 1)[1] if ":" in default.rsplit("/", 1)[-1] else None
    return f"{name}:{tag}" if tag and ":" not in name else name


def server_key(kind: str, key: str) -> Optional[str]:
    """The key a simulator of ``kind`` should expect: ``key`` for a type that needs one, none
    for a local server's type (whose clients send none)."""
    return key if CLASSES[kind].REQUIRES_KEY else None


def fast_retries(provider: HTTPProvider) -> HTTPProvider:
    """Shrink the backoff (not the retry count) for tests about whether a call is retried, not
    when; the backoff itself is timed in test_transport's exponential-backoff test."""
    policy = provider._transport.retry
    provider._transport.retry = RetryPolicy(policy.max_retries, backoff_base=0.001, backoff_max=0.002)
    return provider


def featureless(kind: str) -> Type[HTTPProvider]:
    """``kind``'s class with every feature hook (images, structured output, reasoning, sampling,
    caching, tools) back at ``CallFeatures``' refusing default: what a type that has not mapped a
    feature does, whatever the built-in type has mapped since."""
    hooks = {name: value for name, value in vars(CallFeatures).items() if name.startswith(("_apply", "_content"))}
    constants = {"STRUCTURED_OUTPUT_MODES": frozenset(), "REASONING_LEVELS": frozenset(),
                 "SAMPLING_OPTIONS": frozenset(), "TOOL_CHOICES": frozenset(), "PARALLEL_TOOL_CALLS": False}
    return type(f"Featureless{CLASSES[kind].__name__}", (CLASSES[kind],), {**hooks, **constants})
