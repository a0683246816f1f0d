"""Keys go only where they belong (issue 9): a type's conventional key variable reaches only the
type's own server, a base_url from the type's base-URL variable, or a table that names it.

Every case runs against a loopback simulator that records the headers it received: a key sent
where it does not belong would be there to see.
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, Iterator, List, Optional

import pytest
from _kinds import CLASSES, KEYED_KINDS, KEYLESS_KINDS, KINDS

from provider_kit import ConfigError, ProviderRegistry, ProviderSkippedWarning
from provider_kit.testing import LoopbackServer

#: The conventional variables, all set in every test: none may leak to a server of another kind.
CONVENTIONAL = {kind: CLASSES[kind].API_KEY_ENV for kind in KINDS}
BASE_URL_ENV = {kind: CLASSES[kind].BASE_URL_ENV for kind in KINDS}
#: The types with a default host (Azure has none: every resource has its own).
DEFAULT_URL = {kind: CLASSES[kind].DEFAULT_BASE_URL for kind in KINDS if CLASSES[kind].DEFAULT_BASE_URL}
ENV_KEYS = {kind: f"sk-{kind}-conventional-0123456789" for kind in KINDS}
OWN_KEY = "sk-own-key-of-this-server-9876543210"
AUTH_HEADERS = ("Authorization", "x-api-key", "api-key")


@pytest.fixture(autouse=True)
def conventional_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for kind, variable in CONVENTIONAL.items():
        monkeypatch.setenv(variable, ENV_KEYS[kind])


@pytest.fixture
def server(kind: str) -> Iterator[LoopbackServer]:
    with LoopbackServer(kind) as server:  # checks no key: it records whatever arrives
        yield server


def make(kind: str, server: Optional[LoopbackServer] = None, **options: Any) -> Any:
    if server is not None:
        options.setdefault("base_url", server.base_url)
        options.setdefault("model", server.models[0])
    return CLASSES[kind](kind, max_retries=0, timeout=10, **options)


def credentials(server: LoopbackServer) -> Dict[str, str]:
    headers = server.last_request.headers
    return {name: headers[name] for name in AUTH_HEADERS if headers.get(name) is not None}


def sent_key(provider: Any, key: str) -> Dict[str, str]:
    """The credential headers ``provider`` sends for ``key``, as its type writes them."""
    return provider._headers(key)[1]


def test_a_configured_loopback_base_url_gets_no_conventional_key(kind: str, server: LoopbackServer) -> None:
    with make(kind, server) as provider:
        assert not provider.has_api_key and provider.api_key_env is None
        provider.validate_config()
        provider.complete("hi")
        list(provider.stream("hi"))
        assert provider.health_check().ok
    for request in server.requests:
        assert not any(request.headers.get(name) for name in AUTH_HEADERS), request.path


def test_the_base_url_variable_brings_the_conventional_key_along(
    kind: str, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A LiteLLM proxy behind OPENAI_BASE_URL + OPENAI_API_KEY; ollama.com behind OLLAMA_HOST.
    monkeypatch.setenv(BASE_URL_ENV[kind], server.base_url)
    with make(kind, model=server.models[0]) as provider:
        assert provider.api_key_env == CONVENTIONAL[kind]
        provider.complete("hi")
    assert credentials(server) == sent_key(provider, ENV_KEYS[kind])


@pytest.mark.parametrize("kind", DEFAULT_URL)
def test_the_types_own_server_gets_the_conventional_key(kind: str) -> None:
    for options in ({}, {"base_url": DEFAULT_URL[kind]}, {"base_url": DEFAULT_URL[kind] + "/"}):
        with make(kind, **options) as provider:
            assert provider.has_api_key and provider.api_key_env == CONVENTIONAL[kind], options
            provider.validate_config()


@pytest.mark.parametrize("kind_", [kind for kind in KEYED_KINDS if kind in DEFAULT_URL])
def test_the_same_host_over_another_scheme_or_port_is_another_server(kind_: str) -> None:
    host = DEFAULT_URL[kind_].split("://")[1]
    for url in (f"http://{host}", DEFAULT_URL[kind_].replace(".com", ".com:8443")):
        with make(kind_, base_url=url) as provider:
            assert not provider.has_api_key, url
            with pytest.raises(ConfigError, match="set api_key_env"):
                provider.validate_config()


@pytest.mark.parametrize("kind_", KEYED_KINDS)
def test_a_remote_base_url_without_its_own_key_is_refused_before_sending(kind_: str) -> None:
    variable = CONVENTIONAL[kind_]
    with make(kind_, base_url="https://llm-proxy.example.com/v1") as provider:
        with pytest.raises(ConfigError) as info:
            provider.validate_config()
        message = str(info.value)
        # The message names the base URL in use (a type whose base URL excludes /v1 removes it).
        assert provider.base_url.startswith("https://llm-proxy.example.com")
        assert f"no API key for {provider.base_url}: ${variable} is sent only to " in message
        assert "set api_key_env (the variable holding this server's key) or api_key in its config" in message
        assert ENV_KEYS[kind_] not in message
        with pytest.raises(ConfigError, match="no API key"):
            provider.complete("hi")  # refused before any connection (the test guard allows none)


@pytest.mark.parametrize("kind_", KEYLESS_KINDS)
def test_a_remote_ollama_without_its_own_key_stays_keyless(kind_: str) -> None:
    # A self-hosted server (Ollama) on another machine needs no key; the type's conventional
    # key variable is not for it.
    with make(kind_, base_url="http://gpu-box.example.com:11434") as provider:
        provider.validate_config()
        assert not provider.has_api_key


def test_a_named_key_variable_is_sent_to_any_base_url(
    kind: str, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THIS_SERVER_KEY", OWN_KEY)
    with make(kind, server, api_key_env="THIS_SERVER_KEY") as provider:
        provider.complete("hi")
    assert credentials(server) == sent_key(provider, OWN_KEY)
    # And naming the conventional variable is a way to say "this server's key is that one".
    with make(kind, server, api_key_env=CONVENTIONAL[kind]) as provider:
        provider.complete("hi")
    assert credentials(server) == sent_key(provider, ENV_KEYS[kind])


def test_a_named_key_variable_that_is_unset_is_refused_on_loopback_too(kind: str, server: LoopbackServer) -> None:
    # A local LiteLLM proxy with a master key: without the key every call would fail with 401.
    with make(kind, server, api_key_env="LITELLM_MASTER_KEY") as provider:
        with pytest.raises(ConfigError, match=r"no API key: \$LITELLM_MASTER_KEY is not set"):
            provider.validate_config()
        assert not provider.health_check().ok
    assert server.requests == []
    with make(kind, server, api_key_env="LITELLM_MASTER_KEY", require_api_key=False) as provider:
        provider.validate_config()  # said explicitly: the key is optional


def test_the_registry_skips_what_lacks_its_own_key_and_builds_the_rest(
    server: LoopbackServer, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_KEY", OWN_KEY)
    config = {
        "default_provider": "remote",
        "providers": {
            "local": {"type": kind, "base_url": server.base_url, "model": server.models[0]},
            "gateway": {"type": kind, "base_url": server.base_url, "api_key_env": "GATEWAY_KEY"},
            "proxy": {"type": kind, "base_url": server.base_url, "api_key_env": "UNSET_PROXY_KEY"},
            "remote": {"type": kind, "base_url": "https://llm-proxy.example.com"},
        },
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = ProviderRegistry.from_config(config)
    with registry:
        keyless = not CLASSES[kind].REQUIRES_KEY
        expected_skips: List[str] = ["proxy"] if keyless else ["proxy", "remote"]
        assert list(registry.skipped) == expected_skips
        assert [w.message.provider for w in caught if isinstance(w.message, ProviderSkippedWarning)] == expected_skips
        assert "$UNSET_PROXY_KEY is not set" in registry.skipped["proxy"]
        if not keyless:
            assert f"${CONVENTIONAL[kind]} is sent only to" in registry.skipped["remote"]
        registry["local"].complete("hi")
        assert credentials(server) == {}
        registry["gateway"].complete("hi")
        assert credentials(server) == sent_key(registry["gateway"], OWN_KEY)
    with pytest.raises(ConfigError, match="strict=True"):
        ProviderRegistry.from_config(config, strict=True)
