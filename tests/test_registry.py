"""ProviderRegistry: building from config, skipping, defaults, entry points and health fan-out."""

from __future__ import annotations

import logging
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping

import pytest
from _kinds import CLASSES, LOCAL_KIND, OTHER_KIND, SOME_KIND, option_kind

from provider_kit import _plugins as plugins_module
from provider_kit.errors import ConfigError, NoProvidersError, ProviderSkippedWarning, UnknownProviderError
from provider_kit.providers import PROVIDER_TYPES
from provider_kit.registry import ProviderFactory, ProviderRegistry
from provider_kit.testing import FakeProvider
from provider_kit.types import HealthReport, HealthStatus

SECRET = "sk-registry-abcdefghijklmnopqrstuvwxyz-5678"
TYPES = {"fake": FakeProvider}

#: A built-in type's name with a letter left out.
TYPO = SOME_KIND[:2] + SOME_KIND[3:]


@pytest.fixture(autouse=True)
def fresh_entry_point_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test scans entry points anew (the real cache lives for the whole process)."""
    monkeypatch.setattr(plugins_module, "_ENTRY_POINT_TYPES", plugins_module._EntryPointTypes())


def warnings_of(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "provider_kit" and record.levelno == logging.WARNING
    ]


def fakes_config(*names: str, **extra: Any) -> Dict[str, Any]:
    return {"providers": {name: {"type": "fake"} for name in names}, **extra}


def from_config_skipping(source: Any, skipped: List[str], **kwargs: Any) -> ProviderRegistry:
    """``from_config(source)``, asserting one ``ProviderSkippedWarning`` per name in ``skipped``."""
    with pytest.warns(ProviderSkippedWarning) as record:
        registry = ProviderRegistry.from_config(source, **kwargs)
    warned = [w.message for w in record if isinstance(w.message, ProviderSkippedWarning)]
    assert [w.provider for w in warned] == skipped
    assert [w.reason for w in warned] == [registry.skipped[name] for name in skipped]
    return registry


# --------------------------------------------------------------------------- building


def test_from_config_builds_every_provider_in_sorted_order() -> None:
    registry = ProviderRegistry.from_config(fakes_config("zeta", "alpha", "mid"), types=TYPES)
    assert registry.names() == ["alpha", "mid", "zeta"]
    assert list(registry) == ["alpha", "mid", "zeta"]
    assert len(registry) == 3
    assert "mid" in registry and "other" not in registry and 3 not in registry
    assert isinstance(registry["mid"], FakeProvider)
    assert registry.get("mid") is registry["mid"]
    assert registry.skipped == {}
    assert ProviderFactory is ProviderRegistry


def test_from_config_reads_a_toml_file_and_passes_options(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[providers.f]\ntype = "fake"\nmodel = "from-toml"\nreplies = ["hi"]\n')
    registry = ProviderRegistry.from_config(path, types=TYPES)
    provider = registry["f"]
    assert isinstance(provider, FakeProvider)
    assert provider.model == "from-toml"
    assert provider.complete("x").text == "hi"


def test_from_config_searches_when_given_no_source() -> None:
    Path("provider_kit.toml").write_text('[providers.local]\ntype = "fake"\n')
    assert ProviderRegistry.from_config(types=TYPES).names() == ["local"]


def test_a_table_named_after_a_passed_type_needs_no_type_key() -> None:
    registry = ProviderRegistry.from_config({"providers": {"fake": {"model": "m"}}}, types=TYPES)
    assert registry["fake"].model == "m"  # type: ignore[attr-defined]


def test_a_class_without_from_config_gets_name_and_options_as_keywords() -> None:
    class Plain(FakeProvider):
        from_config = None  # type: ignore[assignment]

    registry = ProviderRegistry.from_config(
        {"providers": {"p": {"type": "plain", "model": "kw"}}}, types={"plain": Plain}
    )
    assert registry["p"].model == "kw"  # type: ignore[attr-defined]
    # An option its signature has no parameter for is a mistake in the file, not a skip.
    with pytest.raises(ConfigError) as info:
        ProviderRegistry.from_config(
            {"providers": {"p": {"type": "plain"}, "q": {"type": "plain", "modle": 1}}}, types={"plain": Plain}
        )
    message = str(info.value)
    assert message.startswith("config dict: [providers.q]: unknown option 'modle'; did you mean 'model'?")
    assert "Plain accepts: replies, model" in message


def test_a_plain_class_taking_any_keyword_is_refused_by_its_call() -> None:
    class Loose:
        def __init__(self, name: str, model: str = "m", **rest: Any) -> None:
            if rest:
                raise TypeError(f"unexpected {sorted(rest)}")

    with pytest.raises(ConfigError, match=r"\[providers\.q\]: Loose does not accept these options: unexpected") as info:
        ProviderRegistry.from_config(
            {"providers": {"ok": {"type": "fake"}, "q": {"type": "loose", "x": 1}}},
            types={"loose": Loose, "fake": FakeProvider},
        )
    assert not isinstance(info.value, NoProvidersError)


def test_builtin_types_are_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    import provider_kit.providers

    monkeypatch.setitem(provider_kit.providers.BUILTIN_TYPES, "builtin-fake", FakeProvider)
    registry = ProviderRegistry.from_config({"providers": {"b": {"type": "builtin-fake"}}})
    assert isinstance(registry["b"], FakeProvider)
    # The types argument wins over a built-in of the same name.

    class Local(FakeProvider):
        pass

    registry = ProviderRegistry.from_config(
        {"providers": {"b": {"type": "builtin-fake"}}}, types={"builtin-fake": Local}
    )
    assert type(registry["b"]) is Local


# --------------------------------------------------------------------------- skipping


def test_absent_providers_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="provider_kit")
    data = {
        "providers": {
            "good": {"type": "fake"},
            "invalid": {"type": "fake", "invalid": "model is missing"},  # validate_config refuses it
            "plugin": {"type": "bedrockish"},  # like no known type: a plugin not installed here
        }
    }
    registry = from_config_skipping(data, ["invalid", "plugin"], types=TYPES)
    assert registry.names() == ["good"]
    skipped = registry.skipped
    assert list(skipped) == ["invalid", "plugin"]
    assert "model is missing" in skipped["invalid"]
    assert "provider type 'bedrockish' is not installed: no installed package provides it" in skipped["plugin"]
    assert "known types: " + ", ".join(sorted({*PROVIDER_TYPES, "fake"})) + ")" in skipped["plugin"]
    for name, reason in skipped.items():
        assert reason.startswith(f"config dict: [providers.{name}]"), reason
    warnings = warnings_of(caplog)
    assert len(warnings) == 2
    for name, reason in skipped.items():
        assert f"skipping provider {name!r}: {reason}" in warnings
    skipped.clear()
    assert len(registry.skipped) == 2  # .skipped is a copy


def test_the_skip_warning_points_at_the_callers_line() -> None:
    data = {"providers": {"good": {"type": "fake"}, "bad": {"type": "fake", "invalid": "no key set"}}}
    with pytest.warns(ProviderSkippedWarning, match=r"skipped provider 'bad': .*no key set") as record:
        line = sys._getframe().f_lineno + 1
        ProviderRegistry.from_config(data, types=TYPES)
    assert len(record) == 1
    assert (record[0].filename, record[0].lineno) == (__file__, line)
    assert isinstance(record[0].message, UserWarning)


def test_the_skip_warning_of_get_registry_points_at_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    from provider_kit.registry import get_registry, reset_registry

    Path("provider_kit.toml").write_text(f'[providers.ok]\ntype = "{LOCAL_KIND}"\n[providers.{OTHER_KIND}]\n')
    reset_registry()
    try:
        skipped = f"'{OTHER_KIND}'.*{CLASSES[OTHER_KIND].API_KEY_ENV}"  # named after its type, and no key
        with pytest.warns(ProviderSkippedWarning, match=skipped) as record:
            line = sys._getframe().f_lineno + 1
            get_registry()
        assert (record[0].filename, record[0].lineno) == (__file__, line)
    finally:
        reset_registry()


@pytest.mark.parametrize(
    "table, fragments",
    [
        ({"type": "fake", "modle": "m"}, ["unknown option 'modle'; did you mean 'model'?"]),
        ({"type": "fake", "latency": -1}, ["latency must not be negative"]),
        ({"type": "fake", "hang_seconds": "abc"}, ["hang_seconds must be a number", "(got 'abc')"]),
        ({"type": "faek"}, ["unknown provider type 'faek'; did you mean 'fake'?", "known types:"]),
        ({"type": TYPO}, [f"unknown provider type '{TYPO}'; did you mean '{SOME_KIND}'?"]),
        ({"model": "m"}, ["no type given and 'mistake' is not a provider type", 'add type = "..."', "fake"]),
        ({"type": SOME_KIND, "modle": "gpt-4o"}, ["unknown option 'modle'; did you mean 'model'?"]),
        ({"type": SOME_KIND, "timeout": -1}, ["timeout must be a positive number"]),
        ({"type": option_kind("keep_alive"), "keep_alive": "300"}, ["keep_alive must be a number of seconds"]),
    ],
    ids=["typo", "negative", "wrong-type", "type-typo", "builtin-type-typo", "no-type", "builtin-typo",
         "builtin-range", "builtin-value"],
)
def test_a_mistake_in_a_table_is_a_config_error_not_a_skip(
    table: Dict[str, Any], fragments: List[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="provider_kit")
    built: List[FakeProvider] = []

    class Recording(FakeProvider):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    data = {"default_provider": "mistake", "providers": {"good": {"type": "fake"}, "mistake": table}}
    with pytest.raises(ConfigError) as info:
        ProviderRegistry.from_config(data, types={"fake": Recording})
    message = str(info.value)
    assert not isinstance(info.value, NoProvidersError)
    assert message.startswith("config dict: [providers.mistake]: "), message
    for fragment in fragments:
        assert fragment in message
    assert all(fake.closed for fake in built)  # "good" was not kept open
    assert warnings_of(caplog) == []  # a mistake is not a skip


def test_a_mistake_in_a_file_names_the_file_the_provider_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "provider_kit.toml"
    path.write_text('[providers.main]\ntype = "fake"\nmodle = "gpt-4o"\n')
    with pytest.raises(ConfigError) as info:
        ProviderRegistry.from_config(path, types=TYPES)
    assert str(info.value).startswith(f"{path}: [providers.main]: unknown option 'modle'; did you mean 'model'?")


def test_the_typo_of_the_issue_no_longer_moves_the_default() -> None:
    # A typo in the default's table used to drop it and quietly promote another provider.
    data = {
        "default_provider": "main",
        "providers": {"main": {"type": SOME_KIND, "modle": "gpt-4o"}, "local": {"type": LOCAL_KIND}},
    }
    with pytest.raises(ConfigError, match=r"\[providers\.main\]: unknown option 'modle'; did you mean 'model'"):
        ProviderRegistry.from_config(data)


def test_a_bad_environment_base_url_is_a_mistake_too(monkeypatch: pytest.MonkeyPatch) -> None:
    variable = CLASSES[LOCAL_KIND].BASE_URL_ENV
    monkeypatch.setenv(variable, "ftp://somewhere")
    with pytest.raises(ConfigError, match=rf"\[providers\.{LOCAL_KIND}\]: .*{variable}"):
        ProviderRegistry.from_config({"providers": {LOCAL_KIND: {}, "f": {"type": "fake"}}}, types=TYPES)


def test_strict_raises_listing_every_skip(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="provider_kit")
    built: List[FakeProvider] = []

    class Recording(FakeProvider):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    data = {
        "providers": {
            "good": {"type": "fake"},
            "nokey": {"type": "fake", "invalid": "no key set", "api_key": SECRET},
            "plugin": {"type": "bedrockish"},
        }
    }
    with pytest.raises(ConfigError) as info:
        ProviderRegistry.from_config(data, types={"fake": Recording}, strict=True)
    message = str(info.value)
    assert message.startswith("strict=True: 2 providers of the config dict would be skipped:\n")
    assert "\n  - nokey: config dict: [providers.nokey]: " in message and "no key set" in message
    assert "  - plugin: config dict: [providers.plugin]: provider type 'bedrockish' is not installed" in message
    assert SECRET not in message
    assert built and all(fake.closed for fake in built)
    assert warnings_of(caplog) == []
    # Nothing skipped: strict changes nothing.
    with ProviderRegistry.from_config(fakes_config("a"), types=TYPES, strict=True) as registry:
        assert registry.names() == ["a"]
    # Nothing left at all: NoProvidersError, strict or not.
    with pytest.raises(NoProvidersError, match="no key set"):
        ProviderRegistry.from_config({"providers": {"x": data["providers"]["nokey"]}}, types=TYPES, strict=True)


def test_a_broken_third_party_class_is_described_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Exploding:
        @classmethod
        def from_config(cls, name: str, options: Mapping[str, Any], *, where: str) -> Any:
            raise RuntimeError(f"cannot start with key {options['api_key']}")

    class NotAProvider:
        def __init__(self, name: str) -> None:
            self.name = name

    class Misnamed(FakeProvider):
        @classmethod
        def from_config(cls, name: str, options: Mapping[str, Any], *, where: str) -> Any:
            return cls("other-name")

    caplog.set_level(logging.WARNING, logger="provider_kit")
    registry = from_config_skipping(
        {
            "providers": {
                "ok": {"type": "fake"},
                "boom": {"type": "exploding", "api_key": SECRET},
                "np": {"type": "np"},
                "mis": {"type": "mis"},
            }
        },
        ["boom", "np", "mis"],
        types={"fake": FakeProvider, "exploding": Exploding, "np": NotAProvider, "mis": Misnamed},
    )
    assert registry.names() == ["ok"]
    assert "RuntimeError: cannot start with key ***5678" in registry.skipped["boom"]
    assert "Traceback" not in registry.skipped["boom"]
    assert "NotAProvider is not a Provider" in registry.skipped["np"]
    assert "complete" in registry.skipped["np"] and "health_check" in registry.skipped["np"]
    assert "'other-name'" in registry.skipped["mis"]
    everything = repr(registry) + str(registry.skipped) + " ".join(warnings_of(caplog))
    assert SECRET not in everything
    assert all(record.exc_info is None for record in caplog.records)


def test_no_provider_registered_lists_every_reason(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="provider_kit")
    data = {
        "providers": {
            "a": {"type": "fake", "invalid": "reason A", "api_key": SECRET},
            "b": {"type": "nosuchtype"},
        }
    }
    with pytest.raises(NoProvidersError) as info:
        ProviderRegistry.from_config(data, types=TYPES)
    message = str(info.value)
    assert "reason A" in message and "provider type 'nosuchtype' is not installed" in message
    assert "[providers.a]" in message and "[providers.b]" in message
    assert SECRET not in message
    assert isinstance(info.value, ConfigError)
    assert len(warnings_of(caplog)) == 2


def test_no_providers_configured_says_what_was_looked_at() -> None:
    with pytest.raises(NoProvidersError) as info:
        ProviderRegistry.from_config()
    message = str(info.value)
    assert "no providers are configured" in message
    for looked_at in (
        "PROVIDER_KIT_CONFIG",
        "provider_kit.toml",
        "config.toml",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "OLLAMA_HOST",
    ):
        assert looked_at in message
    with pytest.raises(NoProvidersError, match=r"config dict.*\[providers\.NAME\]"):
        ProviderRegistry.from_config({"providers": {}})


def test_a_broken_config_file_is_an_error_not_a_skip(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[providers.a\n")
    with pytest.raises(ConfigError, match="line 1") as info:
        ProviderRegistry.from_config(path, types=TYPES)
    assert not isinstance(info.value, NoProvidersError)


def test_a_provider_failing_to_build_is_closed(make_fake: Callable[..., FakeProvider]) -> None:
    built: List[FakeProvider] = []

    class Recording(FakeProvider):
        @classmethod
        def from_config(cls, name: str, options: Mapping[str, Any], *, where: str) -> Any:
            fake = cls(name, invalid="nope")
            built.append(fake)
            return fake

    from_config_skipping(
        {"providers": {"ok": {"type": "fake"}, "bad": {"type": "rec"}}},
        ["bad"],
        types={"fake": FakeProvider, "rec": Recording},
    )
    assert len(built) == 1 and built[0].closed


# --------------------------------------------------------------------------- register


def test_register_validates_and_refuses_duplicates(make_fake: Callable[..., FakeProvider]) -> None:
    registry = ProviderRegistry()
    first = make_fake("a")
    assert registry.register(first) is first
    with pytest.raises(ConfigError, match=r"already registered.*replace=True"):
        registry.register(make_fake("a"))
    assert registry["a"] is first and not first.closed
    second = make_fake("a")
    registry.register(second, replace=True)
    assert registry["a"] is second
    assert first.closed and not second.closed
    registry.register(second, replace=True)  # the same object again: not closed
    assert not second.closed


def test_register_propagates_validation_errors(make_fake: Callable[..., FakeProvider]) -> None:
    registry = ProviderRegistry()
    with pytest.raises(ConfigError, match="bad setting"):
        registry.register(make_fake("x", invalid="bad setting"))
    assert "x" not in registry


def test_register_names_the_missing_members() -> None:
    class Half:
        name = "half"

        def complete(self, *args: Any, **kwargs: Any) -> Any:
            return None

    with pytest.raises(ConfigError) as info:
        ProviderRegistry().register(Half())  # type: ignore[arg-type]
    message = str(info.value)
    assert "Half is not a Provider" in message
    for member in ("stream", "health_check", "validate_config", "close", "__enter__"):
        assert member in message
    assert "'complete'" not in message and "complete," not in message


def test_register_removes_a_skip(make_fake: Callable[..., FakeProvider]) -> None:
    registry = from_config_skipping(
        {"providers": {"ok": {"type": "fake"}, "later": {"type": "fake", "invalid": "x"}}},
        ["later"],
        types=TYPES,
    )
    assert "later" in registry.skipped
    registry.register(make_fake("later"))
    assert "later" not in registry.skipped and "later" in registry


def test_constructor_registers_providers(make_fake: Callable[..., FakeProvider]) -> None:
    registry = ProviderRegistry([make_fake("b"), make_fake("a")], default_provider="b")
    assert registry.names() == ["a", "b"]
    assert registry.default.name == "b"
    assert registry.default_provider == "b"


# --------------------------------------------------------------------------- lookup


def test_unknown_provider_error_is_a_key_error_with_a_suggestion(
    make_fake: Callable[..., FakeProvider],
) -> None:
    registry = ProviderRegistry([make_fake("primary"), make_fake("backup")])
    with pytest.raises(UnknownProviderError) as info:
        registry.get("primray")
    error = info.value
    assert isinstance(error, KeyError)
    message = str(error)
    assert not message.startswith("'")
    assert "no provider named 'primray'" in message
    assert "did you mean 'primary'?" in message
    assert "available: backup, primary" in message
    with pytest.raises(KeyError):
        registry["zzz"]
    with pytest.raises(UnknownProviderError) as info:
        registry["zzz"]
    assert "did you mean" not in str(info.value)


def test_looking_up_a_skipped_provider_gives_its_reason() -> None:
    registry = from_config_skipping(
        {"providers": {"ok": {"type": "fake"}, "bad": {"type": "fake", "invalid": "needs a key"}}},
        ["bad"],
        types=TYPES,
    )
    with pytest.raises(UnknownProviderError, match=r"skipped.*needs a key"):
        registry.get("bad")


def test_repr_shows_names_default_and_skipped_but_no_secret() -> None:
    registry = from_config_skipping(
        {
            "default_provider": "b",
            "providers": {
                "a": {"type": "fake", "api_key": SECRET},
                "b": {"type": "fake", "invalid": "x", "api_key": SECRET},
            },
        },
        ["b"],
        types=TYPES,
    )
    text = repr(registry)
    assert "['a']" in text and "default_provider='b'" in text and "skipped=['b']" in text
    assert SECRET not in text and SECRET not in repr(registry["a"])


# --------------------------------------------------------------------------- default


def test_configured_default_is_used_without_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="provider_kit")
    registry = ProviderRegistry.from_config(fakes_config("a", "b", default_provider="b"), types=TYPES)
    assert registry.default.name == "b"
    assert registry.get_default() is registry["b"]
    assert warnings_of(caplog) == []


def test_single_provider_without_configured_default_needs_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="provider_kit")
    registry = ProviderRegistry.from_config(fakes_config("only"), types=TYPES)
    assert registry.default.name == "only"
    assert warnings_of(caplog) == []


def test_no_configured_default_falls_back_alphabetically_warning_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="provider_kit")
    registry = ProviderRegistry.from_config(fakes_config("zeta", "beta", "gamma"), types=TYPES)
    assert [registry.default.name for _ in range(3)] == ["beta"] * 3
    assert registry.get_default().name == "beta"
    warnings = warnings_of(caplog)
    assert len(warnings) == 1
    assert "no default_provider is configured" in warnings[0] and "'beta'" in warnings[0]


def test_skipped_default_falls_back_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="provider_kit")
    data = {
        "default_provider": "main",
        "providers": {
            "main": {"type": "fake", "invalid": "no key set"},
            "zz": {"type": "fake"},
            "backup": {"type": "fake"},
        },
    }
    registry = from_config_skipping(data, ["main"], types=TYPES)
    caplog.clear()
    assert registry.default.name == "backup"
    assert registry.default.name == "backup"
    warnings = warnings_of(caplog)
    assert len(warnings) == 1
    assert "default_provider 'main' was skipped" in warnings[0]
    assert "no key set" in warnings[0] and "'backup'" in warnings[0]


def test_unconfigured_default_falls_back_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="provider_kit")
    registry = ProviderRegistry.from_config(fakes_config("b", "a", default_provider="missing"), types=TYPES)
    assert registry.default.name == "a"
    warnings = warnings_of(caplog)
    assert len(warnings) == 1 and "'missing' is not registered" in warnings[0]


def test_empty_registry_has_no_default() -> None:
    with pytest.raises(NoProvidersError):
        ProviderRegistry().get_default()
    with pytest.raises(NoProvidersError):
        _ = ProviderRegistry().default


# --------------------------------------------------------------------------- entry points


PLUGIN_SOURCE = """\
from provider_kit.testing import FakeProvider


class PluginProvider(FakeProvider):
    '''A third-party provider type.'''
"""


def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, source: str) -> None:
    """Install a distribution declaring the type ``plugged`` into a temp dir on sys.path."""
    site = tmp_path / "site"
    dist_info = site / f"{module}_dist-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}-dist\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        textwrap.dedent(
            f"""\
            [provider_kit.providers]
            plugged = {module}:PluginProvider
            """
        )
    )
    (site / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(site))  # also invalidates the import caches
    # Registered as absent-before, so teardown removes the module if the test imported it.
    monkeypatch.setitem(sys.modules, module, None)  # type: ignore[arg-type]
    del sys.modules[module]


def test_entry_point_types_are_loaded_only_when_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = "pk_plugin_lazy"
    install_plugin(tmp_path, monkeypatch, module, PLUGIN_SOURCE)
    registry = ProviderRegistry.from_config(fakes_config("plain"), types=TYPES)
    assert registry.names() == ["plain"]
    assert module not in sys.modules  # nothing named the type: not imported

    registry = ProviderRegistry.from_config(
        {"providers": {"mine": {"type": "plugged", "model": "pm"}}}, types=TYPES
    )
    assert module in sys.modules
    provider = registry["mine"]
    assert type(provider).__name__ == "PluginProvider"
    assert provider.model == "pm"  # type: ignore[attr-defined]


def test_an_entry_point_type_is_suggested_for_a_typo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = "pk_plugin_typo"
    install_plugin(tmp_path, monkeypatch, module, PLUGIN_SOURCE)
    with pytest.raises(ConfigError, match=r"unknown provider type 'pluged'; did you mean 'plugged'\?"):
        ProviderRegistry.from_config({"providers": {"ok": {"type": "fake"}, "bad": {"type": "pluged"}}}, types=TYPES)
    assert module not in sys.modules  # suggesting reads metadata only


def test_a_table_named_after_an_entry_point_type_needs_no_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(tmp_path, monkeypatch, "pk_plugin_named", PLUGIN_SOURCE)
    registry = ProviderRegistry.from_config({"providers": {"plugged": {}}}, types=TYPES)
    assert type(registry["plugged"]).__name__ == "PluginProvider"


def test_an_entry_point_that_cannot_be_imported_is_skipped_as_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(tmp_path, monkeypatch, "pk_plugin_missing", "import pk_dependency_not_installed_xyz\n")
    registry = from_config_skipping(
        {"providers": {"ok": {"type": "fake"}, "p": {"type": "plugged"}}}, ["p"], types=TYPES
    )
    reason = registry.skipped["p"]
    assert reason.startswith("config dict: [providers.p]: provider type 'plugged' is not installed")
    assert "ModuleNotFoundError: No module named 'pk_dependency_not_installed_xyz'" in reason
    assert "pk_plugin_missing:PluginProvider" in reason


def test_a_broken_entry_point_is_skipped_with_a_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path, monkeypatch, "pk_plugin_broken", "raise RuntimeError('plugin bug')\n")
    registry = from_config_skipping(
        {"providers": {"ok": {"type": "fake"}, "p": {"type": "plugged"}}}, ["p"], types=TYPES
    )
    reason = registry.skipped["p"]
    assert "failed to load" in reason and "RuntimeError: plugin bug" in reason
    assert "pk_plugin_broken:PluginProvider" in reason


def test_entry_points_are_selected_on_the_3_9_dict_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    entry_point = metadata.EntryPoint(
        name="dicttype", value="provider_kit.testing:FakeProvider", group="provider_kit.providers"
    )
    monkeypatch.setattr(metadata, "entry_points", lambda: {"provider_kit.providers": (entry_point,)})
    registry = ProviderRegistry.from_config({"providers": {"d": {"type": "dicttype"}}})
    assert isinstance(registry["d"], FakeProvider)


def test_entry_points_are_scanned_once_per_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    scans: List[int] = []
    entry_point = metadata.EntryPoint(
        name="counted", value="provider_kit.testing:FakeProvider", group="provider_kit.providers"
    )

    def entry_points() -> Dict[str, Any]:
        scans.append(1)
        return {"provider_kit.providers": (entry_point,)}

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    ProviderRegistry.from_config({"providers": {"fake": {}}}, types=TYPES)
    assert scans == []  # every type was found without entry points
    for _ in range(3):
        ProviderRegistry.from_config({"providers": {"c": {"type": "counted"}}})
    assert scans == [1]


# --------------------------------------------------------------------------- health


def test_health_checks_run_in_parallel(make_fake: Callable[..., FakeProvider]) -> None:
    registry = ProviderRegistry([make_fake(f"p{i}", latency=0.2) for i in range(8)])
    started = time.monotonic()
    report = registry.health_check_all(timeout=5)
    elapsed = time.monotonic() - started
    assert elapsed < 0.8, f"8 x 200 ms checks took {elapsed:.2f} s: not parallel"
    assert isinstance(report, HealthReport)
    assert report.ok and report.healthy == [f"p{i}" for i in range(8)]
    assert all(status.latency_s is not None and status.latency_s >= 0.2 for status in report.values())
    for fake in registry.values():
        assert fake.calls[-1].kwargs == {"timeout": 5}  # type: ignore[attr-defined]


def test_a_hanging_provider_does_not_hold_the_deadline(make_fake: Callable[..., FakeProvider]) -> None:
    hung = make_fake("hung", hang=True, hang_seconds=30)
    registry = ProviderRegistry([make_fake("a", latency=0.05), hung, make_fake("b")])
    for attempt in range(2):  # the second call is as punctual as the first
        started = time.monotonic()
        report = registry.health_check_all(timeout=1)
        elapsed = time.monotonic() - started
        assert elapsed < 1.5, f"attempt {attempt}: took {elapsed:.2f} s"
        assert report.healthy == ["a", "b"]
        assert report.unhealthy == ["hung"]
        status = report["hung"]
        assert status.error == "timeout: no answer within 1.0 s"
        assert status.latency_s is not None and status.latency_s >= 1.0
    hung.release()


def test_a_slow_provider_reports_its_own_timeout(make_fake: Callable[..., FakeProvider]) -> None:
    registry = ProviderRegistry([make_fake("slow", latency=30), make_fake("fast")])
    started = time.monotonic()
    report = registry.health_check_all(timeout=0.3)
    assert time.monotonic() - started < 1.0
    assert report.healthy == ["fast"]
    assert "timed out" in (report["slow"].error or "")


class _Raising(FakeProvider):
    def health_check(self, timeout: Any = None) -> Any:
        raise ValueError("health endpoint exploded")


class _WrongResult(FakeProvider):
    def health_check(self, timeout: Any = None) -> Any:
        return {"ok": True}


class _WrongName(FakeProvider):
    def health_check(self, timeout: Any = None) -> Any:
        return HealthStatus("somebody-else", True, 0.01)


def test_misbehaving_health_checks_are_reported_not_raised(
    make_fake: Callable[..., FakeProvider],
) -> None:
    registry = ProviderRegistry(
        [
            _Raising("raises"),
            _WrongResult("wrong"),
            _WrongName("renamed"),
            make_fake("down", health_error="503 upstream"),
            make_fake("fine"),
        ]
    )
    report = registry.health_check_all(timeout=2)
    assert sorted(report) == ["down", "fine", "raises", "renamed", "wrong"]
    assert report["raises"].error == "ValueError: health endpoint exploded"
    assert "dict, not a HealthStatus" in (report["wrong"].error or "")
    assert report["renamed"].ok and report["renamed"].name == "renamed"
    assert report["down"].error == "503 upstream"
    assert report.healthy == ["fine", "renamed"]


def test_health_check_all_of_some_names(make_fake: Callable[..., FakeProvider]) -> None:
    a, b = make_fake("a"), make_fake("b")
    registry = ProviderRegistry([a, b])
    report = registry.health_check_all(timeout=1, names=["b"])
    assert list(report) == ["b"] and b.calls and not a.calls
    with pytest.raises(UnknownProviderError, match="did you mean 'a'"):
        registry.health_check_all(names=["aa"])
    assert len(registry.health_check_all(names=[])) == 0


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), True, "5"])
def test_health_check_all_refuses_bad_timeouts(timeout: Any) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        ProviderRegistry().health_check_all(timeout=timeout)


# --------------------------------------------------------------------------- lifetime


class _BadClose(FakeProvider):
    def close(self) -> None:
        super().close()
        raise OSError("socket already gone")


def test_close_closes_every_provider_despite_errors(
    make_fake: Callable[..., FakeProvider], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="provider_kit")
    first, last = make_fake("a"), make_fake("c")
    bad = _BadClose("b")
    with ProviderRegistry([first, bad, last]) as registry:
        assert len(registry) == 3
    assert first.closed and bad.closed and last.closed
    assert any("socket already gone" in message for message in warnings_of(caplog))


def test_from_config_registry_is_a_context_manager() -> None:
    with ProviderRegistry.from_config(fakes_config("a"), types=TYPES) as registry:
        provider = registry["a"]
    assert provider.closed  # type: ignore[attr-defined]


def test_a_hung_check_does_not_block_interpreter_exit() -> None:
    import os
    import subprocess

    code = (
        "from provider_kit.registry import ProviderRegistry\n"
        "from provider_kit.testing import FakeProvider\n"
        "registry = ProviderRegistry([FakeProvider('hung', hang=True, hang_seconds=60)])\n"
        "print(registry.health_check_all(timeout=0.2)['hung'].error)\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ, PYTHONPATH=root),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "timeout: no answer within 0.2 s"
    assert time.monotonic() - started < 15  # not the 60 s the check would hang


def test_a_built_in_providers_skip_reason_says_where_once(tmp_path: Path) -> None:
    # Each built-in type, configured in a file, remote and keyless: skipped for lack of a key.
    from tests._kinds import CLASSES

    path = tmp_path / "provider_kit.toml"
    tables = [
        f'[providers.{"p" + str(index)}]\ntype = "{cls.TYPE}"\nbase_url = "https://llm.example.com/v1"\n'
        'api_key_env = "UNSET_KEY_VARIABLE"\n'
        for index, cls in enumerate(CLASSES.values())
    ]
    path.write_text('[providers.good]\ntype = "fake"\n' + "\n".join(tables), encoding="utf-8")
    names = [f"p{index}" for index in range(len(tables))]
    registry = from_config_skipping(path, names, types=TYPES)
    for name in names:
        reason = registry.skipped[name]
        assert reason.startswith(f"{path}: [providers.{name}]: no API key"), reason
        assert f"provider {name!r}" not in reason, reason  # not "[providers.p0]: openai provider 'p0': ..."
