"""load_config: search order, shape checks, option validators and secret masking."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Dict

import pytest
from _kinds import CLASSES, KINDS, LOCAL_KIND, OTHER_KIND, SOME_KIND, option_kind

from provider_kit._options import (
    as_bool,
    as_choice,
    as_non_negative_int,
    as_non_negative_number,
    as_positive_int,
    as_positive_number,
    as_str,
    as_str_dict,
    as_str_list,
    as_url,
    check_options,
)
from provider_kit._secrets import is_secret_name, mask_options, mask_secret
from provider_kit.config import Config, ProviderSpec, load_config
from provider_kit.errors import ConfigError
from provider_kit.providers import BUILTIN_TYPES, HTTPProvider

SECRET = "sk-test-abcdefghijklmnop-SECRETVALUE-9876"
SHORT_SECRET = "sk-short"

#: A configuration as the README shows one: two tables named after their types (no ``type``
#: needed), a local server under a name of its own, and a compatible service with its type named.
EXAMPLE = f"""\
default_provider = "{OTHER_KIND}"

[providers.{SOME_KIND}]
api_key_env = "{CLASSES[SOME_KIND].API_KEY_ENV}"
model = "{CLASSES[SOME_KIND].DEFAULT_MODEL}"
base_url = "{CLASSES[SOME_KIND].DEFAULT_BASE_URL}"
timeout = 60
max_retries = 2

[providers.{OTHER_KIND}]
model = "{CLASSES[OTHER_KIND].DEFAULT_MODEL}"

[providers.local]
type = "{LOCAL_KIND}"
base_url = "http://localhost:11434"

[providers.groq]
type = "{SOME_KIND}"
base_url = "https://api.groq.com/openai/v1"
api_key_env = "GROQ_API_KEY"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the example file


def test_example_file_loads_with_types_defaulted(tmp_path: Path) -> None:
    path = write(tmp_path / "example.toml", EXAMPLE)
    config = load_config(path)
    assert config.source == path
    assert config.origin == str(path)
    assert config.default_provider == OTHER_KIND
    assert list(config.providers) == [SOME_KIND, OTHER_KIND, "local", "groq"]
    types = {name: spec.type for name, spec in config.providers.items()}
    assert types == {SOME_KIND: SOME_KIND, OTHER_KIND: OTHER_KIND, "local": LOCAL_KIND, "groq": SOME_KIND}
    groq = config.providers["groq"]
    assert groq.options == {"base_url": "https://api.groq.com/openai/v1", "api_key_env": "GROQ_API_KEY"}
    assert groq.where == f"{path}: [providers.groq]"
    named_after_its_type = config.providers[SOME_KIND]
    assert named_after_its_type.options["timeout"] == 60 and "type" not in named_after_its_type.options


def test_str_path_and_pathlike_both_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[providers.p]\nmodel = "m"\n')
    assert list(load_config(str(path)).providers) == ["p"]
    assert list(load_config(path).providers) == ["p"]


def test_dict_source_has_the_same_shape() -> None:
    config = load_config({"default_provider": "x", "providers": {"x": {"type": SOME_KIND, "model": "m"}}})
    assert config.origin == "dict"
    assert config.source is None
    assert config.default_provider == "x"
    spec = config.providers["x"]
    assert (spec.type, spec.options, spec.where) == (SOME_KIND, {"model": "m"}, "config dict: [providers.x]")


def test_a_config_object_is_returned_unchanged() -> None:
    config = load_config({"providers": {}})
    assert load_config(config) is config


def test_type_is_none_for_an_unknown_table_name_without_type() -> None:
    # The registry, not load_config, decides whether "mystery" is a type (entry points).
    config = load_config({"providers": {"mystery": {"model": "m"}}})
    assert config.providers["mystery"].type is None


def test_known_types_parameter_extends_the_defaulting() -> None:
    config = load_config({"providers": {"fake": {}}}, known_types=("fake",))
    assert config.providers["fake"].type == "fake"


def test_known_types_may_map_names_to_classes_whose_schema_is_checked() -> None:
    class Custom:
        @classmethod
        def option_schema(cls) -> Dict[str, Any]:
            return {"model": as_str, "depth": as_positive_int}

    config = load_config({"providers": {"custom": {"depth": 3}}}, known_types={"custom": Custom})
    assert config.providers["custom"].type == "custom"
    typo = r"^config dict: \[providers\.c\]: unknown option 'dept'; did you mean 'depth'"
    with pytest.raises(ConfigError, match=typo):
        load_config({"providers": {"c": {"type": "custom", "dept": 3}}}, known_types={"custom": Custom})
    with pytest.raises(ConfigError, match=r"^config dict: \[providers\.c\]: depth must be a positive integer"):
        load_config({"providers": {"c": {"type": "custom", "depth": 0}}}, known_types={"custom": Custom})
    # A class without a schema, or a name alone: the registry checks such a table when it builds it.
    for known in ({"custom": object}, ("custom",)):
        load_config({"providers": {"c": {"type": "custom", "anything": 1}}}, known_types=known)
    with pytest.raises(ConfigError, match="known_types must be type names or a mapping"):
        load_config({"providers": {}}, known_types="custom")


# --------------------------------------------------------------------------- mistakes in tables


@pytest.mark.parametrize(
    "table, message",
    [
        (f'[providers.main]\ntype = "{SOME_KIND}"\nmodle = "gpt-4o"\n',
         "[providers.main]: unknown option 'modle'; did you mean 'model'? (allowed: api_key, api_key_env, "),
        (f'[providers.{SOME_KIND}]\nbase_ulr = "http://127.0.0.1:8000/v1"\n',
         f"[providers.{SOME_KIND}]: unknown option 'base_ulr'; did you mean 'base_url'?"),
        (f'[providers.{option_kind("default_max_tokens")}]\ndefault_max_token = 100\n',
         f"[providers.{option_kind('default_max_tokens')}]: unknown option 'default_max_token'; "
         "did you mean 'default_max_tokens'?"),
        (f'[providers.local]\ntype = "{LOCAL_KIND}"\ntimeout = "30"\n',
         "[providers.local]: timeout must be a number, not str (got '30')"),
        (f'[providers.local]\ntype = "{LOCAL_KIND}"\nmax_retries = -1\n',
         "[providers.local]: max_retries must not be negative"),
        (f'[providers.main]\ntype = "{option_kind("max_tokens_field")}"\nmax_tokens_field = "both"\n',
         "[providers.main]: max_tokens_field must be one of 'auto', 'max_tokens', 'max_completion_tokens'"),
        (f'[providers.main]\ntype = "{SOME_KIND}"\napi_key = 12345678901234567\n',
         "[providers.main]: api_key must be a string"),
    ],
    ids=["typo", "typo-no-type", "one-types-option-typo", "wrong-type", "out-of-range", "bad-choice", "secret-type"],
)
def test_load_config_refuses_a_mistake_in_a_builtin_table(tmp_path: Path, table: str, message: str) -> None:
    path = write(tmp_path / "provider_kit.toml", f'[providers.fine]\ntype = "{LOCAL_KIND}"\n' + table)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: {message}"), str(info.value)
    assert "12345678901234567" not in str(info.value)  # a secret's value is never shown


def test_load_config_checks_the_options_of_the_searched_file_too(monkeypatch: pytest.MonkeyPatch) -> None:
    write(Path("provider_kit.toml"), f'[providers.{SOME_KIND}]\nmodle = "gpt-4o"\n')
    with pytest.raises(ConfigError, match=rf"^provider_kit\.toml: \[providers\.{SOME_KIND}\]: unknown option 'modle'"):
        load_config()


def test_load_config_leaves_unknown_types_to_the_registry() -> None:
    # A plugin's type (or a typo of one) is resolved, and its options checked, when it is built.
    config = load_config({"providers": {"b": {"type": "bedrock", "region": "eu"}, "m": {"modle": 1}}})
    assert config.providers["b"].options == {"region": "eu"}
    assert config.providers["m"].type is None


def test_config_and_specs_are_read_only_copies() -> None:
    config = load_config({"providers": {SOME_KIND: {"model": "m"}}})
    config.providers.clear()
    config.providers[SOME_KIND].options["model"] = "changed"
    assert config.providers[SOME_KIND].options == {"model": "m"}
    with pytest.raises(AttributeError):
        config.default_provider = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------- search order


def test_search_uses_the_env_var_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    named = write(tmp_path / "elsewhere.toml", f'[providers.named]\ntype = "{SOME_KIND}"\n')
    write(Path("provider_kit.toml"), f'[providers.local]\ntype = "{SOME_KIND}"\n')
    monkeypatch.setenv("PROVIDER_KIT_CONFIG", str(named))
    config = load_config()
    assert list(config.providers) == ["named"]
    assert config.source == named


def test_env_var_naming_a_missing_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(Path("provider_kit.toml"), f'[providers.local]\ntype = "{SOME_KIND}"\n')
    missing = tmp_path / "nope.toml"
    monkeypatch.setenv("PROVIDER_KIT_CONFIG", str(missing))
    with pytest.raises(ConfigError, match="PROVIDER_KIT_CONFIG") as info:
        load_config()
    assert str(missing) in str(info.value)


def test_search_uses_the_local_file_before_the_user_file() -> None:
    write(Path("provider_kit.toml"), f'[providers.local]\ntype = "{SOME_KIND}"\n')
    write(Path.home() / ".config/provider_kit/config.toml", f'[providers.user]\ntype = "{SOME_KIND}"\n')
    config = load_config()
    assert list(config.providers) == ["local"]
    assert config.providers["local"].where == "provider_kit.toml: [providers.local]"


def test_search_uses_the_user_file_when_there_is_no_local_one() -> None:
    user = write(Path.home() / ".config/provider_kit/config.toml", f'[providers.user]\ntype = "{SOME_KIND}"\n')
    config = load_config()
    assert list(config.providers) == ["user"]
    assert config.source == user


def test_search_falls_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key_variable = CLASSES[SOME_KIND].API_KEY_ENV
    monkeypatch.setenv(key_variable, SECRET)
    monkeypatch.setenv(CLASSES[LOCAL_KIND].BASE_URL_ENV, "http://127.0.0.1:11434")
    config = load_config()
    assert config.origin == "environment"
    assert config.source is None
    assert list(config.providers) == [kind for kind in KINDS if kind in (SOME_KIND, LOCAL_KIND)]
    assert config.providers[SOME_KIND].type == SOME_KIND
    assert config.providers[SOME_KIND].options == {}
    assert config.providers[SOME_KIND].where == f"environment: {key_variable}"
    assert SECRET not in repr(config) and SECRET not in str(config.as_dict())


@pytest.mark.parametrize("type_name", list(BUILTIN_TYPES))
def test_each_built_in_types_variable_adds_its_provider(monkeypatch: pytest.MonkeyPatch, type_name: str) -> None:
    # The variable is the class's: its key variable, or for a type that needs no key, its
    # host variable. Nothing else adds a provider.
    cls = BUILTIN_TYPES[type_name]
    variable = cls.API_KEY_ENV if cls.REQUIRES_KEY else cls.BASE_URL_ENV
    assert variable and cls.enabling_env_var() == variable
    monkeypatch.setenv(variable, "value-for-" + type_name)
    config = load_config()
    assert list(config.providers) == [type_name]
    assert config.providers[type_name].type == type_name
    assert config.providers[type_name].where == f"environment: {variable}"
    assert variable in " ".join(config.searched)


def test_a_type_added_to_the_built_ins_is_known_to_load_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # The measured gap of ARCHITECTURE-REVIEW F1: a class added to BUILTIN_TYPES alone was built
    # by the registry, but load_config gave its table no type and its key variable no provider.
    class Newcomer(HTTPProvider):
        TYPE = "newcomer"
        API_KEY_ENV = "NEWCOMER_TEST_API_KEY"
        DEFAULT_BASE_URL = "https://api.newcomer.example"

    monkeypatch.setitem(BUILTIN_TYPES, Newcomer.TYPE, Newcomer)
    assert load_config({"providers": {"newcomer": {"model": "m"}}}).providers["newcomer"].type == "newcomer"
    with pytest.raises(ConfigError, match="unknown option 'modle'"):
        load_config({"providers": {"newcomer": {"modle": "m"}}})
    monkeypatch.setenv("NEWCOMER_TEST_API_KEY", "sk-newcomer-0123456789")
    assert list(load_config().providers) == ["newcomer"]


def test_empty_env_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "")
    monkeypatch.setenv("PROVIDER_KIT_CONFIG", "")
    config = load_config()
    assert config.providers == {}
    searched = " ".join(config.searched)
    assert "provider_kit.toml" in searched and "config.toml" in searched
    assert "ANTHROPIC_API_KEY" in searched and "PROVIDER_KIT_CONFIG" in searched


# --------------------------------------------------------------------------- broken input


def test_broken_toml_names_file_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.toml", '[providers.openai]\nmodel = "m"\ntimeout = \n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 3" in message and "column" in message


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[providers.openai]\nmodel = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_config(missing)
    assert str(missing) in str(info.value)


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory"):
        load_config(tmp_path)


def test_unknown_top_level_key_suggests_the_close_match(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[provider.openai]\nmodel = "m"\n')
    pattern = r"unknown top-level key 'provider'.*did you mean 'providers'\?"
    with pytest.raises(ConfigError, match=pattern) as info:
        load_config(path)
    assert str(path) in str(info.value)
    with pytest.raises(ConfigError, match="did you mean 'default_provider'"):
        load_config({"default_provder": "x"})


def test_unknown_top_level_key_without_close_match_lists_allowed_keys() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"zzz": 1})
    assert "did you mean" not in str(info.value)
    assert "default_provider, providers" in str(info.value)


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"providers": {"groq": SOME_KIND}}, "config dict: [providers.groq] must be a table"),
        ({"providers": [SOME_KIND]}, "providers must be a table"),
        ({"providers": {"groq": {"type": ""}}}, "[providers.groq]: type must be a non-empty string"),
        ({"providers": {"groq": {"type": 3}}}, "[providers.groq]: type must be a non-empty string"),
        ({"default_provider": 3}, "default_provider must be a non-empty string"),
        ({"default_provider": ""}, "default_provider must be a non-empty string"),
    ],
)
def test_bad_shapes_are_config_errors(data: Dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(data)
    assert fragment in str(info.value)


def test_a_provider_value_that_is_not_a_table_in_toml(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", f'[providers]\ngroq = "{SOME_KIND}"\n')
    with pytest.raises(ConfigError, match=r"\[providers\.groq\] must be a table"):
        load_config(path)


def test_an_unsupported_source_type_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="path, a dict or None"):
        load_config(42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- validators

WHERE = "provider_kit.toml: [providers.groq]"


@pytest.mark.parametrize(
    "validator, value, expected",
    [
        (as_str, "gpt", "gpt"),
        (as_url, "https://api.groq.com/openai/v1/", "https://api.groq.com/openai/v1"),
        (as_url, "http://127.0.0.1:11434", "http://127.0.0.1:11434"),
        (as_positive_number, 60, 60.0),
        (as_positive_number, 0.5, 0.5),
        (as_non_negative_number, 0, 0.0),
        (as_non_negative_int, 0, 0),
        (as_positive_int, 3, 3),
        (as_bool, False, False),
        (as_str_list, ["a", "b"], ["a", "b"]),
        (as_str_list, ("a",), ["a"]),
        (as_str_dict, {"X-Title": "t"}, {"X-Title": "t"}),
        (as_choice("low", "high"), "low", "low"),
    ],
)
def test_validators_accept_and_normalise(validator: Any, value: Any, expected: Any) -> None:
    result = validator(value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    "validator, value",
    [
        (as_str, ""),
        (as_str, 3),
        (as_url, "ftp://example.com"),
        (as_url, "https://"),
        (as_url, "localhost:11434"),
        (as_url, "http://host:notaport"),
        (as_url, 3),
        (as_positive_number, "abc"),
        (as_positive_number, "5"),
        (as_positive_number, True),
        (as_positive_number, -1),
        (as_positive_number, 0),
        (as_positive_number, math.nan),
        (as_positive_number, math.inf),
        (as_non_negative_number, -0.1),
        (as_non_negative_int, -1),
        (as_non_negative_int, 1.0),
        (as_non_negative_int, False),
        (as_positive_int, 0),
        (as_positive_int, True),
        (as_bool, 1),
        (as_bool, "true"),
        (as_str_list, "a"),
        (as_str_list, ["a", 1]),
        (as_str_dict, ["a"]),
        (as_str_dict, {"X-Title": 1}),
        (as_choice("low", "high"), "medium"),
    ],
)
def test_validators_reject_with_value_error(validator: Any, value: Any) -> None:
    with pytest.raises(ValueError):
        validator(value)


SCHEMA = {
    "model": as_str,
    "timeout": as_positive_number,
    "max_retries": as_non_negative_int,
    "base_url": as_url,
    "api_key": as_str,
    "headers": as_str_dict,
}


def test_check_options_returns_normalised_values_in_order() -> None:
    options = {"timeout": 5, "base_url": "https://x.test/v1/", "model": "m"}
    result = check_options(options, SCHEMA, where=WHERE)
    assert list(result.items()) == [("timeout", 5.0), ("base_url", "https://x.test/v1"), ("model", "m")]


@pytest.mark.parametrize(
    "options, fragments",
    [
        ({"timeout": "abc"}, ["timeout", "must be a number", "'abc'"]),
        ({"timeout": True}, ["timeout", "must be a number"]),
        ({"timeout": -1}, ["timeout", "must be a positive number", "-1"]),
        ({"max_retries": -2}, ["max_retries", "must not be negative"]),
        ({"max_retries": 1.5}, ["max_retries", "must be an integer"]),
        ({"base_url": "api.groq.com"}, ["base_url", "http://"]),
    ],
)
def test_check_options_names_where_and_key(options: Dict[str, Any], fragments: Any) -> None:
    with pytest.raises(ConfigError) as info:
        check_options(options, SCHEMA, where=WHERE)
    message = str(info.value)
    assert message.startswith(WHERE + ": ")
    for fragment in fragments:
        assert fragment in message


def test_check_options_suggests_a_close_option_name() -> None:
    with pytest.raises(ConfigError) as info:
        check_options({"time_out": 5}, SCHEMA, where=WHERE)
    message = str(info.value)
    assert message.startswith(WHERE)
    assert "unknown option 'time_out'" in message and "did you mean 'timeout'?" in message


def test_check_options_never_echoes_a_secret() -> None:
    with pytest.raises(ConfigError) as info:
        check_options({"api_key": 12345678901234}, SCHEMA, where=WHERE)
    assert "api_key" in str(info.value) and "12345678901234" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        check_options({"headers": {"Authorization": 42, "X": SECRET}}, SCHEMA, where=WHERE)
    assert SECRET not in str(info.value)
    with pytest.raises(ConfigError) as info:
        check_options({"base_url": f"ftp://user:{SECRET}@host"}, SCHEMA, where=WHERE)
    assert SECRET not in str(info.value)


# --------------------------------------------------------------------------- secrets


def test_mask_secret_shows_at_most_the_last_four_of_long_secrets() -> None:
    assert mask_secret(SECRET) == "***9876"
    assert mask_secret(SHORT_SECRET) == "***"
    assert mask_secret("a" * 11) == "***"
    assert mask_secret(None) == "***"


@pytest.mark.parametrize(
    "name, secret",
    [
        ("api_key", True),
        ("x-api-key", True),
        ("Authorization", True),
        ("access_token", True),
        ("client_secret", True),
        ("password", True),
        ("apiKey", True),
        ("api_key_env", False),
        ("max_tokens", False),
        ("keep_alive", False),
        ("model", False),
    ],
)
def test_is_secret_name(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_mask_options_masks_secrets_recursively() -> None:
    options = {
        "api_key": SECRET,
        "api_key_env": "GROQ_API_KEY",
        "headers": {"Authorization": "Bearer " + SECRET, "X-Title": "demo"},
        "base_url": f"https://user:{SECRET}@proxy.test/v1",
        "max_tokens": 5,
    }
    masked = mask_options(options)
    assert SECRET not in repr(masked)
    assert masked["api_key"] == "***9876"
    assert masked["api_key_env"] == "GROQ_API_KEY"
    assert masked["headers"] == {"Authorization": "***9876", "X-Title": "demo"}
    assert masked["base_url"] == "https://user:***@proxy.test/v1"
    assert masked["max_tokens"] == 5
    assert options["api_key"] == SECRET  # the input is left alone


def test_secrets_never_reach_repr_or_as_dict(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.toml",
        f'[providers.groq]\ntype = "{SOME_KIND}"\napi_key = "{SECRET}"\n'
        f'headers = {{ "x-api-key" = "{SECRET}", "X-Title" = "t" }}\n'
        f'[providers.tiny]\ntype = "{SOME_KIND}"\napi_key = "{SHORT_SECRET}"\n',
    )
    config = load_config(path)
    for text in (repr(config), repr(config.providers["groq"]), str(config.as_dict())):
        assert SECRET not in text and SHORT_SECRET not in text
    shown = config.as_dict()
    assert shown["providers"]["groq"] == {
        "type": SOME_KIND,
        "api_key": "***9876",
        "headers": {"x-api-key": "***9876", "X-Title": "t"},
    }
    assert shown["providers"]["tiny"]["api_key"] == "***"
    assert config.as_dict(mask=False)["providers"]["groq"]["api_key"] == SECRET


def test_as_dict_has_the_toml_shape() -> None:
    table = {"type": SOME_KIND, "model": "m"}
    config = load_config({"default_provider": "a", "providers": {"a": table}})
    assert config.as_dict() == {"default_provider": "a", "providers": {"a": table}}
    assert load_config({}).as_dict() == {"providers": {}}


def test_spec_equality_and_repr() -> None:
    spec = ProviderSpec("a", SOME_KIND, {"api_key": SECRET}, "w")
    assert spec == ProviderSpec("a", SOME_KIND, {"api_key": SECRET}, "w")
    assert spec != ProviderSpec("a", SOME_KIND, {"api_key": "other"}, "w")
    assert spec != ProviderSpec("a", OTHER_KIND, {"api_key": SECRET}, "w")
    assert "***9876" in repr(spec) and SECRET not in repr(spec)
    assert isinstance(Config([spec]).providers["a"], ProviderSpec)


def test_config_module_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, provider_kit.config\n"
        "heavy = [m for m in ('tomllib', 'tomli', 'difflib', 'requests', 'concurrent.futures')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=root)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    # provider_kit/__init__ may import requests later; config itself must not pull these in.
    assert [m for m in out.split(",") if m and m != "requests"] == []
