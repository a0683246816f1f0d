"""Configuration fuzzing (issue 5): whatever dict or TOML text ``ProviderRegistry.from_config``
gets, it returns a registry or raises ``ConfigError`` (``NoProvidersError`` is one), never
anything else; and building a registry does no I/O at all.

Three sources of input: arbitrary nested dicts (wrong types everywhere, unicode and non-string
keys, huge integers, NaN), the TOML-representable ones written out as a file (which must give
the same registry as the dict), and arbitrary text or a valid file with random edits.
"""

from __future__ import annotations

import json
import math
import socket
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from _kinds import CLASSES, KINDS, LOCAL_KIND, OTHER_KIND, SOME_KIND, option_kind
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider_kit import ConfigError, ProviderRegistry, ProviderSkippedWarning
from provider_kit.config import MAX_NESTING
from provider_kit.providers._base import HTTPProvider

TOP_LEVEL = ["providers", "default_provider", "breaker_threshold", "breaker_cooldown"]
#: ``type`` and every option of every built-in type (a new type's own options included).
OPTIONS = ["type", *sorted({name for cls in CLASSES.values() for name in cls.option_schema()})]
NAMES = [*KINDS, "local", "groq", "fake"]
#: Values that mean something to some option, so that examples often get past the first check.
MEANINGFUL = [
    *KINDS, "http://127.0.0.1:9/v1", "https://api.example.invalid",
    "localhost:11434", "ftp://x", "5m", "-1s", "max_tokens", "auto", "OPENAI_API_KEY",
    "sk-abc-123", "2023-06-01", "2026-10-21", "gpt-4o-mini", "", " ", "a\nb", "\x00",
    10**400, -(10**400), 2**63, -1, 0, 1, 0.5, 1e308, -0.0,
]

EXAMPLES_PER_TEST = 150
_network_attempts: List[str] = []


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Record (and refuse) any name lookup or connection: building a registry does no I/O."""
    del _network_attempts[:]

    def refuse(what: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            _network_attempts.append(what)
            raise OSError(f"test guard: no {what} while building a registry")

        return call

    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    yield
    assert _network_attempts == []


def from_config_warned(source: Any) -> ProviderRegistry:
    """``from_config(source)``, asserting one ``ProviderSkippedWarning`` per skipped provider."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = ProviderRegistry.from_config(source)
    warned = [w.message.provider for w in caught if isinstance(w.message, ProviderSkippedWarning)]
    assert warned == list(registry.skipped)
    return registry


def build(source: Any) -> None:
    """``from_config(source)``: a registry of unopened providers, or a ConfigError."""
    try:
        registry = from_config_warned(source)
    except ConfigError as error:
        assert str(error)  # every refusal says why
        return
    try:
        assert len(registry) >= 1
        for provider in registry.values():
            if isinstance(provider, HTTPProvider):  # the pool opens on first use, not before
                assert provider._transport._session is None
        assert set(registry.skipped).isdisjoint(registry)
    finally:
        registry.close()
    assert _network_attempts == []


# -- strategies -----------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.binary(max_size=4),
    st.sampled_from(MEANINGFUL),
)
any_keys = st.one_of(
    st.sampled_from(TOP_LEVEL + OPTIONS + NAMES),
    st.text(max_size=10),
    st.integers(),
    st.none(),
    st.tuples(st.integers()),
)
any_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(any_keys, inner, max_size=4),
    ),
    max_leaves=16,
)
provider_tables = st.dictionaries(st.sampled_from(OPTIONS), any_values, max_size=7)
configs = st.one_of(
    st.dictionaries(any_keys, any_values, max_size=5),  # anything at all
    st.fixed_dictionaries(  # the right shape, anything inside
        {"providers": st.dictionaries(st.one_of(st.sampled_from(NAMES), st.text(max_size=6)),
                                      st.one_of(provider_tables, any_values), max_size=4)},
        optional={key: any_values for key in TOP_LEVEL if key != "providers"},
    ),
)

# TOML-native values only: what a file can hold.
toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from([v for v in MEANINGFUL if isinstance(v, str) or (isinstance(v, int) and abs(v) < 2**63)]),
)
toml_keys = st.one_of(st.sampled_from(TOP_LEVEL + OPTIONS + NAMES), st.text(max_size=8))
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(toml_keys, inner, max_size=3)),
    max_leaves=12,
)
toml_documents = st.one_of(
    st.dictionaries(toml_keys, toml_values, max_size=4),
    st.fixed_dictionaries(
        {"providers": st.dictionaries(st.sampled_from(NAMES),
                                      st.dictionaries(st.sampled_from(OPTIONS), toml_values, max_size=6),
                                      max_size=3)},
        optional={key: toml_values for key in TOP_LEVEL if key != "providers"},
    ),
)


def toml_value(value: Any) -> str:
    """``value`` as a TOML inline value (tables as inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are TOML's (but for DEL)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    items = (f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}" for k, v in value.items())
    return "{" + ", ".join(items) + "}"


def toml_text(document: Dict[str, Any]) -> str:
    return "".join(f"{json.dumps(k, ensure_ascii=False)} = {toml_value(v)}\n" for k, v in document.items())


VALID_FILE = f"""\
default_provider = "{OTHER_KIND}"
breaker_threshold = 5
breaker_cooldown = 60

[providers.{SOME_KIND}]
api_key = "sk-abc-123"
model = "{CLASSES[SOME_KIND].DEFAULT_MODEL}"
base_url = "{CLASSES[SOME_KIND].DEFAULT_BASE_URL}"
timeout = 60
max_retries = 2
headers = {{ "HTTP-Referer" = "https://example.com" }}

[providers.{OTHER_KIND}]
api_key_env = "{CLASSES[OTHER_KIND].API_KEY_ENV}"
model = "{CLASSES[OTHER_KIND].DEFAULT_MODEL}"

[providers.local]
type = "{option_kind("keep_alive")}"
base_url = "http://localhost:11434"
keep_alive = "10m"
"""
TOML_NOISE = [b"=", b"[", b"]", b"[[", b'"', b"'''", b"\n", b"{", b"}", b",", b"-1", b"nan", b"inf",
              b"1e400", b"9" * 5000, b"true", b"\\u0000", b"\xff", b"[providers]", b"type = 5"]


@st.composite
def edited_files(draw: st.DrawFn) -> bytes:
    """The valid file with a few random deletions, insertions and replaced bytes."""
    data = bytearray(VALID_FILE.encode())
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["delete", "insert", "replace"]))
        if action == "delete":
            del data[at:at + draw(st.integers(1, 12))]
        elif action == "insert":
            data[at:at] = draw(st.one_of(st.binary(max_size=6), st.sampled_from(TOML_NOISE)))
        else:
            data[at] = draw(st.integers(0, 255))
        if not data:
            break
    return bytes(data)


# -- the properties -------------------------------------------------------------------------------

fuzz = settings(max_examples=EXAMPLES_PER_TEST, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@fuzz
@given(configs)
def test_any_dict_gives_a_registry_or_a_config_error(config: Dict[Any, Any]) -> None:
    build(config)


@fuzz
@given(toml_documents)
def test_a_toml_file_gives_the_same_outcome_as_its_dict(
    tmp_path_factory: pytest.TempPathFactory, document: Dict[str, Any]
) -> None:
    path = tmp_path_factory.mktemp("toml") / "provider_kit.toml"
    text = toml_text(document)
    path.write_text(text, encoding="utf-8")
    outcomes: List[Any] = []
    for source in (document, path):
        try:
            registry = from_config_warned(source)
        except ConfigError:
            outcomes.append(None)
            continue
        outcomes.append((sorted(registry), sorted(registry.skipped)))
        registry.close()
    if "\x7f" not in text:  # DEL must be escaped in TOML and JSON leaves it raw: then only the file fails
        assert outcomes[0] == outcomes[1]
    build(path)


@fuzz
@given(st.one_of(st.text().map(lambda text: text.encode("utf-8")), st.binary(), edited_files()))
def test_any_file_gives_a_registry_or_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("text") / "provider_kit.toml"
    path.write_bytes(data)
    build(path)


# -- the cases a fuzzer rarely reaches by itself --------------------------------------------------


def _nested(depth: int, leaf: Any, *, as_list: bool = False) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if as_list else {"headers": value}
    return value


def _cyclic() -> Dict[str, Any]:
    table: Dict[str, Any] = {"type": SOME_KIND}
    table["headers"] = table
    return {"providers": {"p": table}}


@pytest.mark.parametrize(
    "config",
    [
        {"providers": {SOME_KIND: {"headers": _nested(5000, "x")}}},
        {"providers": {SOME_KIND: {"model": _nested(5000, "x", as_list=True)}}},
        {"breaker_cooldown": _nested(5000, 1, as_list=True), "providers": {LOCAL_KIND: {}}},
        {"providers": _nested(MAX_NESTING - 1, {})},  # the top table + 31 + 1: one level too many
        _cyclic(),
        {"breaker_cooldown": 10**400, "providers": {LOCAL_KIND: {}}},
        {"breaker_threshold": -(10**5000), "providers": {LOCAL_KIND: {}}},
        {"providers": {LOCAL_KIND: {"timeout": -(10**5000)}}},
        {"providers": {LOCAL_KIND: {10**5000: 1}}},
        {10**5000: 1},
        {"providers": {SOME_KIND: {"api_key_env": "sk-proj-abc123-pasted-by-mistake"}}},
    ],
    ids=["deep-dict", "deep-list", "deep-setting", "just-too-deep", "cyclic", "huge-float-int",
         "huge-negative-setting", "huge-negative-option", "huge-int-key", "huge-int-top-key",
         "key-in-api-key-env"],
)
def test_hostile_dicts_are_config_errors(config: Dict[Any, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        ProviderRegistry.from_config(config)
    assert "sk-proj-abc123" not in str(info.value)


def test_the_nesting_limit_is_exact() -> None:
    with pytest.raises(ConfigError, match=f"nested more than {MAX_NESTING} levels"):
        ProviderRegistry.from_config({"providers": _nested(MAX_NESTING - 1, {})})
    with pytest.raises(ConfigError) as info:  # refused too, but for its shape, not its depth
        ProviderRegistry.from_config({"providers": _nested(MAX_NESTING - 2, {})})
    assert "nested" not in str(info.value)


def test_a_real_configuration_is_not_too_deep() -> None:
    config = {"providers": {SOME_KIND: {"headers": {"X-Title": "ok"}, "base_url": "http://127.0.0.1:9/v1"}}}
    with ProviderRegistry.from_config(config) as registry:
        assert list(registry) == [SOME_KIND]


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 5000 + "]" * 5000,
        "a = " + "{b = " * 3000 + "1" + "}" * 3000,
        "breaker_threshold = " + "9" * 5000 + "\n[providers.ollama]\n",
        "breaker_cooldown = " + "9" * 400 + "\n[providers.ollama]\n",
        "[providers.ollama]\ntimeout = -" + "9" * 5000 + "\n",
    ],
    ids=["deep-arrays", "deep-inline-tables", "int-past-the-digit-limit", "int-past-float",
         "negative-digits"],
)
def test_hostile_toml_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "provider_kit.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"provider_kit\.toml"):
        ProviderRegistry.from_config(path)
