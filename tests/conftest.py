"""Shared fixtures: every test runs in a scrubbed environment with its own HOME and cwd."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

_SCRUBBED_PREFIXES = ("OPENAI_", "ANTHROPIC_", "OLLAMA_", "PROVIDER_KIT_", "GROQ_")
_SCRUBBED = {
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
    "http_proxy", "https_proxy", "all_proxy", "no_proxy",
    "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC",
}


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
