"""The pytest plugin of provider_kit: fixtures for testing code that uses it, with no network.

Installed through the ``pytest11`` entry point ``provider_kit``, so the fixtures are available in
any test suite once provider_kit is installed: do not also name it in ``pytest_plugins`` (pytest
would refuse to register the module twice). ``-p no:provider_kit`` turns it off;
``-p provider_kit`` turns it on where ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` is set.

This module owns only fixture life cycles: what is started is closed at teardown, and a
loopback server that recorded a failure on its side fails the test's teardown. It defines no
hooks, options or markers, so a test suite that uses none of its fixtures is unaffected; and
besides ``pytest`` it imports nothing that its parent package ``provider_kit.testing`` (which
Python imports first anyway) has not already loaded.

Fixtures:

``fake_provider``
    A ``FakeProvider("fake")``, closed at teardown (which also ends any hang). Parametrize it
    indirectly with a dict of ``FakeProvider`` keyword arguments to script it::

        @pytest.mark.parametrize("fake_provider", [{"replies": ["hi"]}], indirect=True)
        def test_greeting(fake_provider): ...

``loopback_server``
    A factory: ``loopback_server("anthropic", api_key="sk-test")`` returns a started
    ``LoopbackServer``; every server it started is closed at teardown.

``provider_registry``
    A factory: ``provider_registry(server, ..., **options)`` returns a ``ProviderRegistry`` with
    one provider per loopback server, pointed at it; every registry is closed at teardown.

PYTEST_DONT_REWRITE: this module has no assertions to rewrite, and the marker keeps pytest from
warning "already imported" when a suite imports it before enabling it with ``-p``.
"""

from __future__ import annotations

import collections.abc
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

import pytest

from ..providers import PROVIDER_TYPES
from ..registry import ProviderRegistry
from . import FakeProvider, LoopbackServer
from ._server import SAFETY_TIMEOUT

__all__ = [
    "UNCHECKED_API_KEY",
    "LoopbackServerFactory",
    "ProviderRegistryFactory",
    "fake_provider",
    "loopback_server",
    "provider_registry",
]

#: How many server-side errors a failing teardown lists in full.
_MAX_LISTED_ERRORS = 5

#: The key ``provider_registry`` gives a provider whose server checks none, so that the provider
#: does not fall back to a real key from the environment (``OPENAI_API_KEY``...).
UNCHECKED_API_KEY = "sk-loopback-unchecked"


class LoopbackServerFactory:
    """Starts ``LoopbackServer``\\ s for one test and closes them all at its teardown.

    The value of the ``loopback_server`` fixture.
    """

    def __init__(self) -> None:
        self._servers: List[LoopbackServer] = []
        self._checked: List[LoopbackServer] = []

    def __call__(
        self,
        protocol: Optional[str],
        *,
        api_key: Optional[str] = None,
        models: Optional[Sequence[str]] = None,
        safety_timeout: float = SAFETY_TIMEOUT,
        latency: float = 0.0,
        check_errors: bool = True,
    ) -> LoopbackServer:
        """Start a loopback server on ``127.0.0.1`` (a free port) and return it.

        :param protocol: ``"openai"``, ``"anthropic"``, ``"ollama"``, or None for a server that
            only plays scripted replies.
        :param api_key: the key the simulator requires (it answers 401 to any other); None
            accepts any request.
        :param models: the models the simulator lists.
        :param safety_timeout: seconds before a gate, hang or stall the test forgot gives up.
        :param latency: seconds the server waits before each answer and between stream chunks.
        :param check_errors: fail the test at teardown when the server recorded a failure on
            its side (an exception in a scripted callable, a gate never opened, a thread that
            would not stop). False when a test provokes such failures on purpose.
        :raises ValueError: for an unknown protocol.
        """
        server = LoopbackServer(protocol, api_key=api_key, models=models, safety_timeout=safety_timeout,
                                latency=latency)
        server.start()
        self._servers.append(server)
        if check_errors:
            self._checked.append(server)
        return server

    @property
    def servers(self) -> List[LoopbackServer]:
        """Every server started so far in this test, oldest first."""
        return list(self._servers)

    def close(self) -> List[str]:
        """Close every server, newest first; describe the server-side failures of checked ones."""
        problems: List[str] = []
        for server in reversed(self._servers):
            server.close()
        for server in self._checked:
            errors = server.errors
            if errors:
                listed = "; ".join(repr(error) for error in errors[:_MAX_LISTED_ERRORS])
                more = len(errors) - _MAX_LISTED_ERRORS
                problems.append(f"{server!r}: {listed}" + (f" (and {more} more)" if more > 0 else ""))
        return problems


ServerOrNamed = Union[LoopbackServer, Mapping[str, LoopbackServer]]


def _named_servers(servers: Sequence[ServerOrNamed]) -> Dict[str, LoopbackServer]:
    named: Dict[str, LoopbackServer] = {}
    for item in servers:
        pairs = item.items() if isinstance(item, collections.abc.Mapping) else [(item.protocol, item)]
        for name, server in pairs:
            if name is None:
                raise ValueError(
                    f"{server!r} has no protocol: name it, e.g. provider_registry({{'main': server}})"
                )
            if name in named:
                raise ValueError(
                    f"two loopback servers for the provider name {name!r}; pass a dict to name them"
                )
            named[name] = server
    return named


class ProviderRegistryFactory:
    """Builds ``ProviderRegistry`` objects over loopback servers and closes them at teardown.

    The value of the ``provider_registry`` fixture.
    """

    def __init__(self) -> None:
        self._registries: List[ProviderRegistry] = []

    def __call__(
        self,
        *servers: ServerOrNamed,
        default_provider: Optional[str] = None,
        **options: Any,
    ) -> ProviderRegistry:
        """A registry with one built-in provider per server, its ``base_url`` set to that server.

        A server given on its own is registered under its protocol's name (``"openai"``...); a
        dict names them, e.g. ``{"primary": one, "backup": other}``. The provider sends the
        server's ``api_key``, or ``UNCHECKED_API_KEY`` when the server checks none: never a key
        from the environment.

        :param servers: started loopback servers, or dicts of name -> server.
        :param default_provider: the name ``registry.default`` returns.
        :param options: provider options for every provider, e.g. ``max_retries=0``,
            ``timeout=5``, ``model="..."`` (they override the defaults above).
        :raises ValueError: for a server without a protocol given on its own, or a name used twice.
        :raises ConfigError: for an invalid option.
        """
        named = _named_servers(servers)
        if not named:
            raise ValueError("provider_registry() needs at least one loopback server")
        providers: List[Any] = []
        try:
            for name, server in named.items():
                if server.protocol is None:
                    raise ValueError(f"{server!r} has no protocol, so no provider type can talk to it")
                settings: Dict[str, Any] = {"base_url": server.base_url}
                if "api_key_env" not in options:
                    settings["api_key"] = server.api_key or UNCHECKED_API_KEY
                settings.update(options)
                providers.append(PROVIDER_TYPES[server.protocol](name, **settings))
            registry = ProviderRegistry(providers, default_provider=default_provider)
        except BaseException:
            for provider in providers:
                provider.close()
            raise
        self._registries.append(registry)
        return registry

    def close(self) -> None:
        """Close every registry built, newest first."""
        for registry in reversed(self._registries):
            registry.close()


@pytest.fixture
def fake_provider(request: pytest.FixtureRequest) -> Iterator[FakeProvider]:
    """A ``FakeProvider`` named ``"fake"``, closed at teardown.

    With indirect parametrization, ``request.param`` is a dict of ``FakeProvider`` keyword
    arguments (``replies``, ``latency``, ``hang``, ``healthy``...).
    """
    kwargs: Dict[str, Any] = dict(getattr(request, "param", None) or {})
    provider = FakeProvider(**kwargs)
    try:
        yield provider
    finally:
        provider.close()


@pytest.fixture
def loopback_server() -> Iterator[LoopbackServerFactory]:
    """A factory of started ``LoopbackServer``\\ s: ``loopback_server("openai", api_key=...)``.

    Every server is closed at teardown, which joins all its threads; a server-side failure then
    fails the teardown, unless the server was started with ``check_errors=False``.
    """
    factory = LoopbackServerFactory()
    try:
        yield factory
    finally:
        problems = factory.close()
    if problems:
        pytest.fail("loopback server failures:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def provider_registry() -> Iterator[ProviderRegistryFactory]:
    """A factory of ``ProviderRegistry`` objects over loopback servers:
    ``provider_registry(loopback_server("ollama"), max_retries=0)``. Closed at teardown."""
    factory = ProviderRegistryFactory()
    try:
        yield factory
    finally:
        factory.close()
