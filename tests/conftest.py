"""Shared fixtures: every test runs in a scrubbed environment with its own HOME and cwd, and
can reach nothing but this machine's loopback interface.

The suite's one set of provider fixtures is here too: ``kind`` (each built-in type), ``server``
(its simulator, expecting ``_support.KEY``), ``make`` (providers pointed at a
server, closed afterwards), ``make_fake`` (FakeProviders, closed afterwards) and
``no_key_in_logs`` (DEBUG logging captured; fails the test if a record shows the key). A module
whose providers need other defaults defines its own fixture of the same name.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Tuple

import pytest
import requests
from _kinds import CLASSES, KINDS
from _support import KEY, log_text, serve

from provider_kit.providers import PROVIDER_TYPES
from provider_kit.providers._base import HTTPProvider
from provider_kit.testing import FakeProvider, LoopbackServer


def _variable_prefixes() -> Tuple[str, ...]:
    """``OPENAI_``, ``ANTHROPIC_``...: the first word of every variable a built-in type reads,
    so that a new type's key variables (and their relatives, ``*_ORG_ID``) are scrubbed too."""
    variables = [v for cls in PROVIDER_TYPES.values() for v in (cls.API_KEY_ENV, cls.BASE_URL_ENV) if v]
    return tuple(sorted({variable.split("_", 1)[0] + "_" for variable in variables}))


_SCRUBBED_PREFIXES = (*_variable_prefixes(), "PROVIDER_KIT_")
_SCRUBBED = {
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC",
    "XDG_CACHE_HOME",  # cache=True writes under $HOME/.cache, the test's own HOME
}


def _is_loopback(host: object) -> bool:
    if host is None:
        return True  # a wildcard bind, not a peer
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name.strip("[]").lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test may resolve or connect to anything but loopback: not even a DNS query leaves.

    A name that is not loopback fails as an unknown host would (``socket.gaierror``), so the
    tests of "DNS failure" exercise the real error path without asking a resolver.
    """
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, f"test guard: {host!r} is not a loopback name")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            raise ConnectionRefusedError(f"test guard: {address[0]!r} is not a loopback address")
        real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's keys, proxies, netrc or config files."""
    for key in list(os.environ):
        if key in _SCRUBBED or key.startswith(_SCRUBBED_PREFIXES):
            monkeypatch.delenv(key, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    yield


@pytest.fixture
def provider_factory() -> Iterator[Callable[..., Any]]:
    """``provider_factory(cls, **defaults)`` returns ``make(**options)``: build ``cls`` with
    ``defaults`` overridden by ``options``. Every provider made is closed after the test."""
    made: List[Any] = []

    def factory(cls: Callable[..., Any], **defaults: Any) -> Callable[..., Any]:
        def make(**options: Any) -> Any:
            provider = cls(**{**defaults, **options})
            made.append(provider)
            return provider

        return make

    yield factory
    for provider in made:
        provider.close()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A plain ``requests.Session``, for tests that talk to a simulator without a provider."""
    with requests.Session() as session:
        yield session


@pytest.fixture
def make_fake() -> Iterator[Callable[..., Any]]:
    """``make_fake(name, cls=FakeProvider, **options)``: a fake provider (or one of a subclass),
    closed (so released) after the test."""
    created: List[Any] = []

    def make(name: str, cls: Any = FakeProvider, **kwargs: Any) -> Any:
        fake = cls(name, **kwargs)
        created.append(fake)
        return fake

    yield make
    for fake in created:
        fake.close()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """Each built-in provider type in turn."""
    return str(request.param)


@pytest.fixture
def server(kind: str) -> Iterator[LoopbackServer]:
    """The simulator of ``kind``, expecting ``KEY``; the test fails if it saw a broken request."""
    yield from serve(kind)


@pytest.fixture
def make() -> Iterator[Callable[..., HTTPProvider]]:
    """``make(server, kind=None, **options)``: a provider of ``kind`` (default: the server's)
    with ``KEY`` and the server's base URL unless given; every one is closed afterwards."""
    made: List[HTTPProvider] = []

    def build(server: Optional[LoopbackServer], kind: Optional[str] = None, **options: Any) -> HTTPProvider:
        kind = kind or str(server.protocol if server else "")
        options.setdefault("api_key", KEY)
        if server is not None:
            options.setdefault("base_url", server.base_url)
        provider = CLASSES[kind](**options)
        made.append(provider)
        return provider

    yield build
    for provider in made:
        provider.close()


@pytest.fixture
def no_key_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """DEBUG for every logger (root, urllib3, provider_kit); no record (message or traceback)
    may show ``KEY``. Yields ``caplog``."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    caplog.set_level(logging.DEBUG, logger="provider_kit")
    yield caplog
    for record in caplog.records:
        assert KEY not in log_text(record), f"the key leaked in a log record of {record.name}"
