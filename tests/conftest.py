"""Shared fixtures: every test runs in a scrubbed environment with its own HOME and cwd, and
can reach nothing but this machine's loopback interface."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path
from typing import Any, Callable, Iterator, List, Tuple

import pytest

from provider_kit.providers import BUILTIN_TYPES


def _variable_prefixes() -> Tuple[str, ...]:
    """``OPENAI_``, ``ANTHROPIC_``...: the first word of every variable a built-in type reads,
    so that a new type's key variables (and their relatives, ``*_ORG_ID``) are scrubbed too."""
    variables = [v for cls in BUILTIN_TYPES.values() for v in (cls.API_KEY_ENV, cls.BASE_URL_ENV) if v]
    return tuple(sorted({variable.split("_", 1)[0] + "_" for variable in variables}))


_SCRUBBED_PREFIXES = (*_variable_prefixes(), "PROVIDER_KIT_", "GROQ_")
_SCRUBBED = {
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC",
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
