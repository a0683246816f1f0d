"""The pytest plugin (provider_kit.testing.pytest_plugin): its fixtures, as a user's suite sees them.

Each test writes a user's test file and runs it with ``pytester`` in this process, the plugin
enabled with ``-p`` and entry-point autoloading off, so the result does not depend on whether the
``pytest11`` entry point is installed yet. One test loads the plugin through that entry point
(or a stand-in declaring the same one) in a fresh process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import List

import pytest
from _kinds import CHAT_PATHS, CLASSES, HEALTH_PATHS, KINDS, LOCAL_KIND, OTHER_KIND, SOME_KIND

import provider_kit.testing.pytest_plugin as plugin_module  # in sys.modules before pytester snapshots it
from provider_kit.errors import ConfigError

pytest_plugins = ["pytester"]

PLUGIN = "provider_kit.testing.pytest_plugin"

# A strict user suite: every warning (a leaked socket's ResourceWarning included) is an error.
STRICT_INI = """
[pytest]
filterwarnings =
    error
"""


@pytest.fixture
def run_user_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """Write a user's test file and run it in process with only the plugin under test loaded."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeini(STRICT_INI)

    def run(source: str, *args: str) -> pytest.RunResult:
        pytester.makepyfile(test_user=textwrap.dedent(source))
        return pytester.runpytest_inprocess("-p", PLUGIN, "-p", "no:cacheprovider", *args)

    return run


def loopback_threads(ports: List[int]) -> List[threading.Thread]:
    prefixes = tuple(f"loopback-{port}-" for port in ports)
    return [thread for thread in threading.enumerate() if thread.name.startswith(prefixes)]


# --------------------------------------------------------------------------- a user's suite


USER_SUITE = """
    import pytest
    from provider_kit import ProviderRegistry, RateLimitError
    from provider_kit.testing import FakeProvider, LoopbackServer

    KEY = "sk-user-test-0123456789"

    def test_fake_provider_echoes(fake_provider):
        assert isinstance(fake_provider, FakeProvider)
        assert fake_provider.complete("hi").text == "echo: hi"
        assert [call.prompt for call in fake_provider.calls] == ["hi"]

    @pytest.mark.parametrize(
        "fake_provider",
        [{"replies": ["scripted", RateLimitError("slow down", provider="fake")]}],
        indirect=True,
    )
    def test_fake_provider_takes_a_script(fake_provider):
        assert fake_provider.complete("one").text == "scripted"
        with pytest.raises(RateLimitError):
            fake_provider.complete("two")

    @pytest.mark.parametrize("protocol", __KINDS__)
    def test_each_protocol_through_a_registry(loopback_server, provider_registry, protocol):
        server = loopback_server(protocol, api_key=KEY)
        assert isinstance(server, LoopbackServer)
        registry = provider_registry(server, max_retries=0, timeout=5)
        assert isinstance(registry, ProviderRegistry)
        assert registry.names() == [protocol]
        assert registry.default.complete("hello there").text == "echo: hello there"
        assert len(server.requests) == 1

    def test_scripted_reply_and_named_providers(loopback_server, provider_registry):
        primary = loopback_server(__SOME_KIND__)
        backup = loopback_server(__SOME_KIND__)
        primary.enqueue(primary.error_reply(429, retry_after=3), path=__SOME_CHAT__)
        registry = provider_registry({"primary": primary, "backup": backup},
                                     default_provider="primary", max_retries=0)
        with pytest.raises(RateLimitError) as caught:
            registry.default.complete("hi")
        assert caught.value.retry_after == 3
        assert registry.get("backup").complete("hi").text == "echo: hi"
        assert loopback_server.servers == [primary, backup]
""".replace("__KINDS__", repr(list(KINDS))).replace("__SOME_KIND__", repr(SOME_KIND)).replace(
    "__SOME_CHAT__", repr(CHAT_PATHS[SOME_KIND]))


def test_a_users_test_file_using_every_fixture_passes(run_user_suite) -> None:
    result = run_user_suite(USER_SUITE)
    result.assert_outcomes(passed=3 + len(KINDS))


def test_fixtures_are_listed_with_their_docs(run_user_suite) -> None:
    result = run_user_suite("def test_nothing(): pass\n", "--fixtures")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "*fixtures defined from provider_kit.testing.pytest_plugin*",
        "fake_provider -- *pytest_plugin.py:*",
        "*A ``FakeProvider`` named ``\"fake\"``, closed at teardown.",
        "loopback_server -- *pytest_plugin.py:*",
        "*A factory of started ``LoopbackServer``*",
        "provider_registry -- *pytest_plugin.py:*",
    ])


def test_a_suite_that_uses_no_fixture_is_unaffected(run_user_suite) -> None:
    result = run_user_suite(
        """
        import warnings

        def test_plain():
            assert 1 + 1 == 2

        def test_warnings_still_errors():
            try:
                warnings.warn("boom", UserWarning)
            except UserWarning:
                return
            raise AssertionError("filterwarnings=error was not applied")
        """
    )
    result.assert_outcomes(passed=2)


# --------------------------------------------------------------------------- teardown


def test_teardown_closes_every_server_and_joins_its_threads(
    run_user_suite, pytester: pytest.Pytester
) -> None:
    ports_file = pytester.path / "ports.json"
    result = run_user_suite(
        f"""
        import json, socket, threading
        from provider_kit.testing import Gate, Reply

        def test_leaves_servers_busy(loopback_server, provider_registry):
            hosted = loopback_server({SOME_KIND!r})
            local = loopback_server({LOCAL_KIND!r})
            # Left for teardown: a keep-alive connection from the registry, and a reply held at
            # a gate nobody opens. close() must end both handler threads.
            provider_registry(hosted).default.complete("hi")
            local.enqueue(Reply(hang=Gate()))
            sock = socket.create_connection(("127.0.0.1", local.port))
            sock.sendall(b"GET {HEALTH_PATHS[LOCAL_KIND]} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
            local.wait_for_requests(1)
            ports = [hosted.port, local.port]
            names = [t.name for t in threading.enumerate()]
            assert any(n.startswith("loopback-%d-" % hosted.port) for n in names)
            assert any(n.startswith("loopback-%d-conn" % local.port) for n in names)
            with open({str(ports_file)!r}, "w") as f:
                json.dump(ports, f)
            sock.close()
        """
    )
    result.assert_outcomes(passed=1)
    ports = json.loads(ports_file.read_text())
    assert len(ports) == 2
    assert loopback_threads(ports) == []


def test_teardown_closes_servers_when_the_test_fails(run_user_suite, pytester: pytest.Pytester) -> None:
    ports_file = pytester.path / "ports.json"
    result = run_user_suite(
        f"""
        def test_fails(loopback_server):
            server = loopback_server({OTHER_KIND!r})
            with open({str(ports_file)!r}, "w") as f:
                f.write(str(server.port))
            raise RuntimeError("the user's test fails")
        """
    )
    result.assert_outcomes(failed=1)
    assert loopback_threads([int(ports_file.read_text())]) == []


def test_fake_provider_is_closed_and_its_hangs_released_at_teardown(run_user_suite) -> None:
    result = run_user_suite(
        """
        import threading
        import pytest

        STATE = {}

        @pytest.mark.parametrize("fake_provider", [{"hang": True}], indirect=True)
        def test_leaves_a_call_hanging(fake_provider):
            worker = threading.Thread(target=fake_provider.complete, args=("hi",), daemon=True)
            worker.start()
            STATE.update(fake=fake_provider, worker=worker)
            assert not fake_provider.closed

        def test_afterwards():
            STATE["worker"].join(10)
            assert not STATE["worker"].is_alive()
            assert STATE["fake"].closed
        """
    )
    result.assert_outcomes(passed=2)


SERVER_SIDE_FAILURE = """
    import pytest
    from provider_kit import ServerError

    def broken(request):
        raise LookupError("a bug in the user's scripted reply")

    def test_scripted_callable_raises(loopback_server, provider_registry):
        server = loopback_server({kind}{extra})
        server.enqueue(broken)
        with pytest.raises(Exception):
            provider_registry(server, max_retries=0, timeout=5).default.complete("hi")
"""


def test_a_server_side_failure_fails_the_teardown(run_user_suite) -> None:
    result = run_user_suite(SERVER_SIDE_FAILURE.format(kind=repr(SOME_KIND), extra=""))
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*loopback server failures:*", "*LookupError*a bug in the user's scripted reply*"]
    )


def test_check_errors_false_lets_a_provoked_failure_pass(run_user_suite) -> None:
    result = run_user_suite(SERVER_SIDE_FAILURE.format(kind=repr(SOME_KIND), extra=", check_errors=False"))
    result.assert_outcomes(passed=1)


# --------------------------------------------------------------------------- factories directly


def test_provider_registry_rejects_ambiguous_or_protocol_less_servers() -> None:
    servers = plugin_module.LoopbackServerFactory()
    registries = plugin_module.ProviderRegistryFactory()
    try:
        one, two, scripted = servers(LOCAL_KIND), servers(LOCAL_KIND), servers(None)
        with pytest.raises(ValueError, match=f"two loopback servers for the provider name '{LOCAL_KIND}'"):
            registries(one, two)
        with pytest.raises(ValueError, match="has no protocol"):
            registries(scripted)
        with pytest.raises(ValueError, match="has no protocol"):
            registries({"named": scripted})
        with pytest.raises(ValueError, match="at least one"):
            registries()
        with pytest.raises(ConfigError):
            registries(one, max_retries=-1)
        registry = registries({"a": one, "b": two}, default_provider="b", model="llama3.2")
        assert registry.names() == ["a", "b"]
        assert registry.default.name == "b"
        assert registry.get("a").base_url == one.base_url
    finally:
        registries.close()
        assert servers.close() == []
    assert loopback_threads([one.port, two.port, scripted.port]) == []


def test_a_server_without_a_key_never_gets_the_environments_key(
    loopback_server_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    variable = CLASSES[OTHER_KIND].API_KEY_ENV
    monkeypatch.setenv(variable, "sk-ant-a-real-key-0123456789")
    server = loopback_server_factory(OTHER_KIND)
    registries = plugin_module.ProviderRegistryFactory()
    try:
        provider = registries(server).default
        assert provider.complete("hi").text == "echo: hi"
        assert sent(server, provider) == provider._headers(plugin_module.UNCHECKED_API_KEY)[1]
        # Asking for the environment's key explicitly still works.
        provider = registries({"from_env": server}, api_key_env=variable).default
        provider.complete("hi")
        assert sent(server, provider) == provider._headers("sk-ant-a-real-key-0123456789")[1]
    finally:
        registries.close()


def test_a_server_with_a_key_gets_a_provider_that_sends_it(loopback_server_factory) -> None:
    server = loopback_server_factory(OTHER_KIND, api_key="sk-ant-test-0123456789")
    registries = plugin_module.ProviderRegistryFactory()
    try:
        provider = registries(server).default
        assert provider.complete("hi").text == "echo: hi"
        assert sent(server, provider) == provider._headers("sk-ant-test-0123456789")[1]
    finally:
        registries.close()


def sent(server, provider) -> dict:
    """The credential headers of ``server``'s last request, by the names ``provider`` uses."""
    names = provider._headers("x")[1]
    return {name: server.last_request.headers[name] for name in names}


@pytest.fixture
def loopback_server_factory():
    factory = plugin_module.LoopbackServerFactory()
    yield factory
    assert factory.close() == []


# --------------------------------------------------------------------------- start-up cost


def test_loading_the_plugin_imports_nothing_beyond_provider_kit_testing() -> None:
    code = textwrap.dedent(
        f"""
        import sys, pytest, provider_kit.testing
        before = set(sys.modules)
        import {PLUGIN}
        print(sorted(set(sys.modules) - before))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == repr([PLUGIN])


def _installed_pytest11() -> List[str]:
    """``name=value`` of every ``pytest11`` entry point of the installed provider_kit."""
    from importlib import metadata

    distribution = metadata.distribution("provider_kit")
    return [f"{ep.name}={ep.value}" for ep in distribution.entry_points if ep.group == "pytest11"]


def _declared_pytest11() -> List[str]:
    """``name=value`` of every ``pytest11`` entry point setup.cfg declares."""
    import configparser

    parser = configparser.ConfigParser()
    parser.read(Path(__file__).resolve().parent.parent / "setup.cfg", encoding="utf-8")
    if not parser.has_option("options.entry_points", "pytest11"):
        return []
    lines = parser.get("options.entry_points", "pytest11").splitlines()
    return [line.replace(" ", "") for line in lines if line.strip()]


def test_setup_cfg_and_the_installed_distribution_declare_the_entry_point() -> None:
    # Both: setup.cfg is what the next install reads; the installed metadata is what pytest
    # loads (an install made before someone deleted the line would hide the deletion).
    assert f"provider_kit={PLUGIN}" in _declared_pytest11()
    assert f"provider_kit={PLUGIN}" in _installed_pytest11()


def test_the_entry_point_loads_the_plugin(run_user_suite, pytester: pytest.Pytester) -> None:
    """The installed ``pytest11`` entry point, in a fresh process of a strict suite.

    ``-p provider_kit`` loads that entry point by name (autoloading every installed plugin would
    cost seconds); without it the fixtures do not exist.
    """
    assert f"provider_kit={PLUGIN}" in _installed_pytest11()
    pytester.makepyfile(
        test_user=f"""
        def test_uses_fixtures(fake_provider, loopback_server, provider_registry):
            server = loopback_server({LOCAL_KIND!r})
            assert provider_registry(server).default.complete("x").text == "echo: x"
            assert fake_provider.complete("y").text == "echo: y"
        """
    )
    result = pytester.runpytest_subprocess("-p", "provider_kit", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'fake_provider' not found*"])


def test_the_plugin_defines_no_hooks() -> None:
    # A hook would run in every suite of every user who has provider_kit installed.
    hooks = [name for name in vars(plugin_module) if name.startswith("pytest_")]
    assert hooks == []
