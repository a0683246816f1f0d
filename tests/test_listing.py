"""Model listings (issue 9, "Health that checks what will be used"): ``provider.models()``, the
health check's look at the configured model (with no false alarm for Anthropic's dated ids,
Ollama's tags, a proxy's wildcard or llama.cpp's any-name server), ``check_model = false``,
``provider-kit models``, and Anthropic's ``/v1`` base URLs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest
from _kinds import CLASSES, HEALTH_PATHS

from provider_kit import (
    AnthropicProvider,
    AuthenticationError,
    ConfigError,
    OpenAIProvider,
    ProviderRegistry,
    ProviderTimeoutError,
    ResponseFormatError,
)
from provider_kit.cli import main
from provider_kit.testing import LoopbackServer, Reply

KEY = "sk-listing-0a1b2c3d4e5f6789"


def serve(kind: str, models: List[str], **options: Any) -> LoopbackServer:
    return LoopbackServer(kind, api_key=None if kind == "ollama" else KEY, models=models, **options)


@pytest.fixture
def make(provider_factory: Callable[..., Any], kind: str) -> Callable[..., Any]:
    def build(server: LoopbackServer, **options: Any) -> Any:
        return provider_factory(CLASSES[kind], base_url=server.base_url, api_key=KEY)(**options)

    return build


# -- provider.models() ---------------------------------------------------------------------------


def test_models_lists_the_ids_in_the_servers_order(kind: str, make: Callable[..., Any]) -> None:
    names = ["zeta:latest", "alpha:latest", "mid:7b"] if kind == "ollama" else ["zeta", "alpha", "mid-2025"]
    with serve(kind, names) as server:
        assert make(server).models() == names
        request = server.last_request
    assert (request.method, request.path) == ("GET", HEALTH_PATHS[kind])


def test_anthropic_models_follow_every_page_within_one_deadline(provider_factory: Callable[..., Any]) -> None:
    names = [f"claude-model-{number}" for number in range(2100)]
    with serve("anthropic", names) as server:
        provider = provider_factory(AnthropicProvider, base_url=server.base_url, api_key=KEY)()
        assert provider.models(timeout=5) == names
        queries = [request.query for request in server.requests]
    assert queries == [
        {"limit": "1000"},
        {"limit": "1000", "after_id": "claude-model-999"},
        {"limit": "1000", "after_id": "claude-model-1999"},
    ]


def test_anthropic_pages_share_the_deadline(provider_factory: Callable[..., Any]) -> None:
    page = {"data": [{"type": "model", "id": "a"}], "has_more": True, "first_id": "a", "last_id": "a"}
    with serve("anthropic", []) as server:
        gate = server.gate()
        server.enqueue(Reply(json=page))
        server.enqueue(Reply(json=page, hang=gate))  # the second page never comes
        provider = provider_factory(AnthropicProvider, base_url=server.base_url, api_key=KEY, max_retries=0)()
        with pytest.raises(ProviderTimeoutError):
            provider.models(timeout=0.5)
        assert gate.wait_reached(1)
        gate.open()


def test_a_listing_that_repeats_a_page_is_refused(provider_factory: Callable[..., Any]) -> None:
    page = {"data": [{"type": "model", "id": "a"}], "has_more": True, "first_id": "a", "last_id": "a"}
    with serve("anthropic", ["a"]) as server:
        server.enqueue(Reply(json=page), times=3)
        provider = provider_factory(AnthropicProvider, base_url=server.base_url, api_key=KEY)()
        with pytest.raises(ResponseFormatError, match="repeats a page"):
            provider.models()
        assert len(server.requests) == 2


def test_an_openai_shaped_listing_from_a_proxy_works_for_anthropic(provider_factory: Callable[..., Any]) -> None:
    """LiteLLM answers /v1/models in OpenAI's shape whatever the route: no has_more, one page."""
    body = {"object": "list", "data": [{"id": "claude-sonnet", "object": "model", "created": 1, "owned_by": "x"}]}
    with serve("anthropic", []) as server:
        server.enqueue(Reply(json=body))
        provider = provider_factory(AnthropicProvider, base_url=server.base_url, api_key=KEY)()
        assert provider.models() == ["claude-sonnet"]


@pytest.mark.parametrize(
    "body", [{"object": "list"}, {"data": "gpt-4o"}, {"data": [{"name": "gpt-4o"}]}, ["gpt-4o"]],
    ids=["no-data", "data-str", "no-id", "a-list"],
)
def test_models_refuses_a_listing_of_another_shape(provider_factory: Callable[..., Any], body: Any) -> None:
    with serve("openai", []) as server:
        server.enqueue(Reply(json=body))
        provider = provider_factory(OpenAIProvider, base_url=server.base_url, api_key=KEY)()
        with pytest.raises(ResponseFormatError, match="did not answer with a model list"):
            provider.models()


def test_models_raises_typed_errors(kind: str, make: Callable[..., Any]) -> None:
    with serve(kind, ["m"]) as server:
        server.enqueue(server.error_reply(401))
        with pytest.raises(AuthenticationError):
            make(server, max_retries=0).models()
        with pytest.raises(ConfigError, match="timeout"):
            make(server).models(timeout=0)


def test_models_retries_like_a_call(kind: str, make: Callable[..., Any]) -> None:
    names = ["only:latest"] if kind == "ollama" else ["only"]
    with serve(kind, names) as server:
        server.enqueue(server.error_reply(503))
        provider = make(server, max_retries=1)
        provider._transport.retry = type(provider._transport.retry)(1, backoff_base=0.001, backoff_max=0.002)
        assert provider.models() == names
        assert len(server.requests) == 2


# -- the health check looks at the configured model ----------------------------------------------


@pytest.mark.parametrize(
    ("kind_", "configured", "served", "ok"),
    [
        ("openai", "gpt-4o", ["gpt-4o-mini", "gpt-4o"], True),
        ("openai", "gpt-5", ["gpt-4o-mini", "gpt-4o"], False),
        ("openai", "gpt-4o", ["gpt-4o-mini"], False),  # a prefix of another id is not that id
        ("openai", "llama3.2", ["llama3.2:latest"], True),  # Ollama's /v1 lists the tag
        ("openai", "openai/gpt-4o", ["openai/*", "anthropic/*"], True),  # a LiteLLM wildcard route
        ("openai", "mistral/large", ["openai/*"], False),
        ("openai", "anything", [], False),
        ("anthropic", "claude-sonnet-4-5", ["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"], True),
        ("anthropic", "claude-sonnet-4-5-20250929", ["claude-sonnet-4-5-20250929"], True),
        ("anthropic", "claude-opus-4-6", ["claude-opus-4-6"], True),
        ("anthropic", "claude-3-5-sonnet-latest", ["claude-3-5-sonnet-20241022"], True),
        ("anthropic", "claude-sonnet-4", ["claude-sonnet-4-5-20250929"], False),  # 4 is not 4.5
        ("anthropic", "claude-sonnet-4", ["claude-sonnet-4-20250514"], True),
        ("anthropic", "claude-sonet-4-5", ["claude-sonnet-4-5-20250929"], False),
        ("ollama", "llama3.2", ["llama3.2:latest"], True),
        ("ollama", "mistral:7b", ["llama3.2:latest"], False),
    ],
)
def test_health_reports_a_model_the_server_does_not_serve(
    provider_factory: Callable[..., Any], kind_: str, configured: str, served: List[str], ok: bool
) -> None:
    with serve(kind_, served) as server:
        provider = provider_factory(CLASSES[kind_], base_url=server.base_url, api_key=KEY, model=configured)()
        status = provider.health_check()
    assert status.ok is ok, status.error
    if ok:
        return
    assert status.error is not None and status.error.startswith(f"model missing: {configured!r} is not ")
    assert "\n" not in status.error
    for name in served[:5]:
        assert name in status.error  # a few it does serve
    if kind_ == "ollama":
        assert f"run: ollama pull {configured}" in status.error
    else:
        assert "set check_model = false if this server accepts any model name" in status.error


def test_a_missing_model_names_the_closest_ids_first(provider_factory: Callable[..., Any]) -> None:
    served = [f"model-{number}" for number in range(40)] + ["claude-sonnet-4-5-20250929"]
    with serve("anthropic", served) as server:
        make = provider_factory(AnthropicProvider, base_url=server.base_url, api_key=KEY)
        provider = make(model="claude-sonet-4-5")
        status = provider.health_check()
    assert status.error is not None
    assert "(served: claude-sonnet-4-5-20250929, " in status.error
    assert "and 36 more)" in status.error


def test_health_follows_anthropic_pages_to_find_the_model(provider_factory: Callable[..., Any]) -> None:
    served = [f"claude-old-{number}" for number in range(1200)] + ["claude-sonnet-4-5-20250929"]
    with serve("anthropic", served) as server:
        provider = provider_factory(AnthropicProvider, base_url=server.base_url, api_key=KEY)()
        status = provider.health_check()
        assert len(server.requests) == 2
    assert status.ok, status.error


def test_check_model_false_skips_the_model_check(kind: str, make: Callable[..., Any]) -> None:
    """llama.cpp lists only its alias and accepts any model name."""
    with serve(kind, ["the-alias:latest" if kind == "ollama" else "the-alias"]) as server:
        assert not make(server, model="gpt-4o", check_model=True).health_check().ok
        status = make(server, model="gpt-4o", check_model=False).health_check()
        requests = server.requests
    assert status.ok, status.error
    assert (requests[-1].method, requests[-1].path) == ("GET", HEALTH_PATHS[kind])


def test_check_model_is_a_config_option(kind: str, tmp_path: Path) -> None:
    with serve(kind, ["the-alias"]) as server:
        config = tmp_path / "provider_kit.toml"
        config.write_text(
            f'[providers.p]\ntype = "{kind}"\nbase_url = "{server.base_url}"\napi_key = "{KEY}"\n'
            'model = "anything"\ncheck_model = false\n',
            encoding="utf-8",
        )
        with ProviderRegistry.from_config(str(config)) as registry:
            assert registry.health_check_all(timeout=5).ok
    with pytest.raises(ConfigError, match="check_model"):
        CLASSES[kind](check_model="no")


def test_health_with_the_model_listed_still_makes_one_attempt(kind: str, make: Callable[..., Any]) -> None:
    with serve(kind, ["m:latest"] if kind == "ollama" else ["m"]) as server:
        server.enqueue(server.error_reply(503))
        status = make(server, model="m").health_check()
        assert len(server.requests) == 1
    assert not status.ok and status.error is not None and status.error.startswith("error: ")


# -- Anthropic's base URL excludes /v1 -----------------------------------------------------------


@pytest.mark.parametrize("suffix", ["/v1", "/v1/", "/v1/messages"])
@pytest.mark.parametrize("source", ["argument", "config", "environment"])
def test_an_anthropic_base_url_ending_in_v1_is_normalised(
    suffix: str, source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve("anthropic", ["claude-sonnet-4-5"]) as server:
        url = server.url + suffix
        if source == "argument":
            provider = AnthropicProvider(base_url=url, api_key=KEY)
        elif source == "environment":
            monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
            monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
            provider = AnthropicProvider()
        else:
            config = tmp_path / "provider_kit.toml"
            config.write_text(
                f'[providers.claude]\ntype = "anthropic"\nbase_url = "{url}"\napi_key = "{KEY}"\n', encoding="utf-8"
            )
            provider = ProviderRegistry.from_config(str(config)).get("claude")
        with provider:
            assert provider.base_url == server.url
            assert provider.complete("hi").text == "echo: hi"
            assert provider.health_check().ok
        assert [request.path for request in server.requests] == ["/v1/messages", "/v1/models"]


def test_an_anthropic_base_url_with_a_path_keeps_it(provider_factory: Callable[..., Any]) -> None:
    provider = provider_factory(AnthropicProvider, api_key=KEY)(base_url="https://gateway.example/anthropic/")
    assert provider.base_url == "https://gateway.example/anthropic"
    provider = provider_factory(AnthropicProvider, api_key=KEY)(base_url="https://gateway.example/anthropic/v1")
    assert provider.base_url == "https://gateway.example/anthropic"


# -- provider-kit models ---------------------------------------------------------------------------


@pytest.fixture
def servers() -> Iterator[Dict[str, LoopbackServer]]:
    with serve("openai", ["gpt-4o-mini", "gpt-4o"]) as openai, serve("ollama", ["llama3.2:latest"]) as ollama:
        yield {"openai": openai, "ollama": ollama}


@pytest.fixture
def config_file(tmp_path: Path, servers: Dict[str, LoopbackServer]) -> Path:
    path = tmp_path / "provider_kit.toml"
    path.write_text(
        f'[providers.openai]\nbase_url = "{servers["openai"].base_url}"\napi_key = "{KEY}"\n\n'
        f'[providers.local]\ntype = "ollama"\nbase_url = "{servers["ollama"].base_url}"\n',
        encoding="utf-8",
    )
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: Any) -> Any:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_models_lists_every_provider_grouped(capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
    code, out, err = run(capsys, "models", "--config", config_file)
    assert (code, err) == (0, "")
    assert out == "local\n  llama3.2:latest\nopenai\n  gpt-4o-mini\n  gpt-4o\n"
    assert KEY not in out


def test_cli_models_named_and_json(capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
    code, out, _ = run(capsys, "models", "--config", config_file, "--json", "openai")
    assert code == 0
    assert json.loads(out) == {"openai": {"ok": True, "models": ["gpt-4o-mini", "gpt-4o"], "error": None}}


def test_cli_models_exits_1_when_a_listing_fails(
    capsys: pytest.CaptureFixture[str], config_file: Path, servers: Dict[str, LoopbackServer]
) -> None:
    servers["openai"].enqueue(servers["openai"].error_reply(401, "Incorrect API key provided:\n\nsk-lis***6789"))
    code, out, err = run(capsys, "models", "--config", config_file, "--json")
    assert code == 1
    assert json.loads(out)["local"]["models"] == ["llama3.2:latest"]
    assert json.loads(out)["openai"]["ok"] is False
    assert err.count("\n") == 1 and err.startswith("provider-kit: error: openai: Incorrect API key provided: sk-lis")


def test_cli_models_unknown_name_is_a_usage_error(capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
    code, _, err = run(capsys, "models", "--config", config_file, "opneai")
    assert code == 2 and "opneai" in err


def test_cli_models_named_but_skipped_provider_fails(
    capsys: pytest.CaptureFixture[str], config_file: Path
) -> None:
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(
        text + '\n[providers.proxy]\ntype = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        'api_key_env = "LISTING_TEST_UNSET_KEY"\n',
        encoding="utf-8",
    )
    code, out, err = run(capsys, "models", "--config", config_file, "--json", "proxy", "local")
    assert code == 1
    listing = json.loads(out)
    assert listing["local"]["ok"] is True and listing["proxy"]["ok"] is False
    assert listing["proxy"]["error"].startswith("skipped: ") and "LISTING_TEST_UNSET_KEY" in listing["proxy"]["error"]
    assert "skipped provider 'proxy'" in err
    code, out, _ = run(capsys, "models", "--config", config_file)  # not named: listed as skipped only
    assert code == 0 and "proxy" not in out
