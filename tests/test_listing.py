"""Model listings (issue 9, "Health that checks what will be used"), what every type does alike:
``provider.models()``, the health check's look at the configured model, ``check_model = false``
(llama.cpp's any-name server) and ``provider-kit models``. Each type's own listing and naming
rules (Anthropic's pages and dated ids and ``/v1`` base URLs, Ollama's tags, a proxy's wildcard
routes on the OpenAI protocol) are in test_<type>.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest
from _kinds import CLASSES, HEALTH_PATHS, LOCAL_KIND, SOME_KIND, served_name, server_key
from _support import assert_model_status

from provider_kit import (
    AuthenticationError,
    ConfigError,
    ProviderRegistry,
)
from provider_kit.cli import main
from provider_kit.testing import LoopbackServer

KEY = "sk-listing-0a1b2c3d4e5f6789"


def serve(kind: str, models: List[str], **options: Any) -> LoopbackServer:
    return LoopbackServer(kind, api_key=server_key(kind, KEY), models=models, **options)


@pytest.fixture
def make(provider_factory: Callable[..., Any], kind: str) -> Callable[..., Any]:
    def build(server: LoopbackServer, **options: Any) -> Any:
        return provider_factory(CLASSES[kind], base_url=server.base_url, api_key=KEY)(**options)

    return build


# -- provider.models() ---------------------------------------------------------------------------


def test_models_lists_the_ids_in_the_servers_order(kind: str, make: Callable[..., Any]) -> None:
    names = [served_name(kind, name) for name in ("zeta", "alpha", "mid-2025")]
    with serve(kind, names) as server:
        assert make(server).models() == names
        request = server.last_request
    assert (request.method, request.path) == ("GET", HEALTH_PATHS[kind])


def test_models_raises_typed_errors(kind: str, make: Callable[..., Any]) -> None:
    with serve(kind, ["m"]) as server:
        server.enqueue(server.error_reply(401))
        with pytest.raises(AuthenticationError):
            make(server, max_retries=0).models()
        with pytest.raises(ConfigError, match="timeout"):
            make(server).models(timeout=0)


def test_models_retries_like_a_call(kind: str, make: Callable[..., Any]) -> None:
    names = [served_name(kind, "only")]
    with serve(kind, names) as server:
        server.enqueue(server.error_reply(503))
        provider = make(server, max_retries=1)
        provider._transport.retry = type(provider._transport.retry)(1, backoff_base=0.001, backoff_max=0.002)
        assert provider.models() == names
        assert len(server.requests) == 2


# -- the health check looks at the configured model ----------------------------------------------


def test_health_reports_a_model_the_server_does_not_serve(kind: str, make: Callable[..., Any]) -> None:
    # The type-specific name rules (dated ids, tags, wildcard routes) are in test_<type>.py.
    served = [served_name(kind, name) for name in ("zeta", "alpha")]
    configured = served_name(kind, "absent")
    with serve(kind, served) as server:
        # check_model on: a type may leave it off by default (an Azure deployment is not a model id).
        assert_model_status(make(server, model=served[1], check_model=True).health_check(), served[1], served, True)
        status = make(server, model=configured, check_model=True).health_check()
    assert_model_status(status, configured, served, False)


def test_check_model_false_skips_the_model_check(kind: str, make: Callable[..., Any]) -> None:
    """llama.cpp lists only its alias and accepts any model name."""
    with serve(kind, [served_name(kind, "the-alias")]) as server:
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
    with serve(kind, [served_name(kind, "m")]) as server:
        server.enqueue(server.error_reply(503))
        status = make(server, model="m").health_check()
        assert len(server.requests) == 1
    assert not status.ok and status.error is not None and status.error.startswith("error: ")


# -- provider-kit models ---------------------------------------------------------------------------


#: What the two configured providers serve: a hosted API (named after its type, as a config
#: file may) and a local server.
HOSTED_MODELS = [served_name(SOME_KIND, name) for name in ("model-mini", "model-large")]
LOCAL_MODELS = [served_name(LOCAL_KIND, "llama3.2")]


@pytest.fixture
def servers() -> Iterator[Dict[str, LoopbackServer]]:
    with serve(SOME_KIND, HOSTED_MODELS) as hosted, serve(LOCAL_KIND, LOCAL_MODELS) as local:
        yield {SOME_KIND: hosted, "local": local}


@pytest.fixture
def config_file(tmp_path: Path, servers: Dict[str, LoopbackServer]) -> Path:
    path = tmp_path / "provider_kit.toml"
    path.write_text(
        f'[providers.{SOME_KIND}]\nbase_url = "{servers[SOME_KIND].base_url}"\napi_key = "{KEY}"\n\n'
        f'[providers.local]\ntype = "{LOCAL_KIND}"\nbase_url = "{servers["local"].base_url}"\n',
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
    hosted, local = ["".join(f"  {model}\n" for model in models) for models in (HOSTED_MODELS, LOCAL_MODELS)]
    assert out == f"local\n{local}{SOME_KIND}\n{hosted}"  # sorted by name, each in the server's order
    assert KEY not in out


def test_cli_models_named_and_json(capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
    code, out, _ = run(capsys, "models", "--config", config_file, "--json", SOME_KIND)
    assert code == 0
    assert json.loads(out) == {SOME_KIND: {"ok": True, "models": HOSTED_MODELS, "error": None}}


def test_cli_models_exits_1_when_a_listing_fails(
    capsys: pytest.CaptureFixture[str], config_file: Path, servers: Dict[str, LoopbackServer]
) -> None:
    servers[SOME_KIND].enqueue(servers[SOME_KIND].error_reply(401, "Incorrect API key provided:\n\nsk-lis***6789"))
    code, out, err = run(capsys, "models", "--config", config_file, "--json")
    assert code == 1
    assert json.loads(out)["local"]["models"] == LOCAL_MODELS
    assert json.loads(out)[SOME_KIND]["ok"] is False
    assert err.count("\n") == 1
    assert err.startswith(f"provider-kit: error: {SOME_KIND}: Incorrect API key provided: sk-lis")


def test_cli_models_unknown_name_is_a_usage_error(capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
    code, _, err = run(capsys, "models", "--config", config_file, "opneai")
    assert code == 2 and "opneai" in err


def test_cli_models_named_but_skipped_provider_fails(
    capsys: pytest.CaptureFixture[str], config_file: Path
) -> None:
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(
        text + f'\n[providers.proxy]\ntype = "{SOME_KIND}"\nbase_url = "http://127.0.0.1:9/v1"\n'
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
