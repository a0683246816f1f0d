"""Presets of OpenAI-compatible services (``type = "groq"``...): each row of
``provider_kit.providers.PRESETS`` is a provider type that config files, the registry,
``from_config(None)``, the CLI and the simulators know, with its base URL, key variable and
quirks, checked here against loopback simulators that reproduce the quirks on the wire."""

from __future__ import annotations

import ast
import json
import re
import urllib.parse
from pathlib import Path
from typing import Any, Dict, List

import pytest
import requests

from provider_kit import Image, Message, ProviderRegistry, load_config
from provider_kit.errors import AuthenticationError, ConfigError, ResponseFormatError, ServerError
from provider_kit.providers import BUILTIN_TYPES, PRESET_TYPES, PRESETS, PROVIDER_TYPES, OpenAIProvider, Preset
from provider_kit.testing import LoopbackServer, Reply

ROOT = Path(__file__).resolve().parents[1]
NAMES = [preset.name for preset in PRESETS]
BY_NAME: Dict[str, Preset] = {preset.name: preset for preset in PRESETS}
KEY = "sk-preset-key-0123456789"
OTHER_KEY = "sk-other-key-9876543210"
#: Presets with a key variable of their own, and those a key variable alone adds.
KEYED = [preset.name for preset in PRESETS if preset.api_key_env]
HOSTED = [preset.name for preset in PRESETS if preset.requires_key]
LOCAL = [preset.name for preset in PRESETS if not preset.requires_key]


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path.rstrip("/")


def _provider(name: str, server: LoopbackServer, **options: Any) -> Any:
    """A provider of preset ``name`` at ``server``, under the preset's own API path (keeping a
    trailing slash, as Gemini's base URL has one)."""
    options.setdefault("model", "loopback-model")
    options.setdefault("max_retries", 0)
    base_url = server.url + urllib.parse.urlsplit(BY_NAME[name].base_url).path
    return PRESET_TYPES[name](base_url=base_url, **options)


# -- every preset is a type, derived from its row -------------------------------------------------


def test_the_presets_are_the_rows_and_known_types_beside_the_protocols() -> None:
    assert list(PRESET_TYPES) == NAMES
    assert set(NAMES) == {
        "groq", "openrouter", "mistral", "deepseek", "together", "fireworks", "xai", "gemini",
        "lmstudio", "vllm", "llamacpp",
    }
    assert list(PROVIDER_TYPES) == [*BUILTIN_TYPES, *NAMES]
    assert not set(NAMES) & set(BUILTIN_TYPES)


@pytest.mark.parametrize("name", NAMES)
def test_each_preset_class_states_its_row(name: str) -> None:
    preset, cls = BY_NAME[name], PROVIDER_TYPES[name]
    assert issubclass(cls, OpenAIProvider)
    stated = (cls.TYPE, cls.DEFAULT_BASE_URL, cls.API_KEY_ENV, cls.BASE_URL_ENV, cls.REQUIRES_KEY, cls.DEFAULT_MODEL)
    row = (name, preset.base_url, preset.api_key_env, preset.base_url_env, preset.requires_key, preset.default_model)
    assert stated == row
    assert cls.display_name() == preset.label
    assert preset.base_url.startswith("https://" if preset.requires_key else "http://localhost:")
    # Only hosted services are added by a variable alone; a local server never from nothing.
    assert cls.enabling_env_var() == (preset.api_key_env if preset.requires_key else None)
    assert "organization" not in cls.option_schema()  # OpenAI's own header, not a service's


@pytest.mark.parametrize("name", NAMES)
def test_a_table_named_after_a_preset_gets_its_type_and_its_options_checked(name: str) -> None:
    config = load_config({"providers": {name: {"model": "m"}, "other": {"type": name}}})
    assert config.providers[name].type == name and config.providers["other"].type == name
    with pytest.raises(ConfigError, match=rf"\[providers.{name}\]: unknown option 'modle'; did you mean 'model'\?"):
        load_config({"providers": {name: {"modle": "m"}}})
    with pytest.raises(ConfigError, match="organization") as raised:
        load_config({"providers": {name: {"organization": "org-1"}}})
    assert "max_tokens_field" in str(raised.value)  # the message lists the options it has


def test_a_misspelt_preset_gets_a_did_you_mean() -> None:
    with pytest.raises(ConfigError, match=r"unknown provider type 'grok'; did you mean 'groq'\?.*openrouter"):
        ProviderRegistry.from_config({"providers": {"fast": {"type": "grok"}}})
    with pytest.raises(ConfigError, match=r"no type given and 'openroute' .*did you mean 'openrouter'\?"):
        ProviderRegistry.from_config({"providers": {"openroute": {"model": "m"}}})


# -- the wire: path, key, max-tokens field ---------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_a_preset_calls_chat_completions_under_its_base_url_path(name: str) -> None:
    preset = BY_NAME[name]
    with LoopbackServer(name, api_key=KEY) as server, _provider(name, server, api_key=KEY) as provider:
        completion = provider.complete("hi there", max_tokens=50)
        chunks = list(provider.stream("hi", max_tokens=50))
        assert provider.models() == server.models
        sent_complete, sent_stream, sent_models = server.requests
    assert completion.text == "echo: hi there" and completion.provider == name
    assert "".join(chunk.text for chunk in chunks) == "echo: hi" and chunks[-1].finish_reason == "stop"
    assert sent_complete.path == sent_stream.path == _path(preset.base_url) + "/chat/completions"
    assert sent_models.path == _path(preset.base_url) + "/models"
    assert "//" not in sent_complete.path  # Gemini's trailing slash is not doubled
    for request in (sent_complete, sent_stream, sent_models):
        assert request.headers["Authorization"] == f"Bearer {KEY}"
    body = sent_complete.json()
    field = preset.max_tokens_field
    assert body[field] == 50 and len({"max_tokens", "max_completion_tokens"} & set(body)) == 1


@pytest.mark.parametrize("name", NAMES)
def test_the_max_tokens_field_option_overrides_the_presets(name: str) -> None:
    other = "max_tokens" if BY_NAME[name].max_tokens_field != "max_tokens" else "max_completion_tokens"
    with LoopbackServer(name) as server, _provider(name, server, max_tokens_field=other) as provider:
        provider.complete("hi", max_tokens=7)
        assert server.last_request.json()[other] == 7


@pytest.mark.parametrize("name", NAMES)
def test_no_key_no_authorization_and_no_other_types_variables(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenAI's variables belong to the openai type: a preset reads neither, nor, at a server
    # other than its own, its own key variable.
    monkeypatch.setenv(OpenAIProvider.API_KEY_ENV, OTHER_KEY)
    monkeypatch.setenv(OpenAIProvider.BASE_URL_ENV, "http://127.0.0.1:9/v1")
    if BY_NAME[name].api_key_env:
        monkeypatch.setenv(BY_NAME[name].api_key_env, KEY)
    with LoopbackServer(name) as server, _provider(name, server) as provider:
        assert provider.complete("hi").text == "echo: hi"
        assert "Authorization" not in server.last_request.headers
        assert not provider.has_api_key


@pytest.mark.parametrize("name", KEYED)
def test_the_key_variable_is_read_for_the_presets_own_host_only(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    preset = BY_NAME[name]
    monkeypatch.setenv(preset.api_key_env, KEY)
    cls = PRESET_TYPES[name]
    with cls(model="m") as default, cls(model="m", base_url=preset.base_url) as same_origin:
        assert default.has_api_key and same_origin.has_api_key
        assert default.base_url == preset.base_url and default.api_key_env == preset.api_key_env
        assert KEY not in repr(default) and KEY not in str(default.describe())
    with cls(model="m", base_url="https://proxy.example/v1", require_api_key=False) as elsewhere:
        assert not elsewhere.has_api_key and elsewhere.api_key_env is None
    if preset.requires_key:
        with cls(model="m", base_url="https://proxy.example/v1") as refused:
            with pytest.raises(ConfigError, match=rf"\${preset.api_key_env} is sent only to") as raised:
                refused.validate_config()
            assert KEY not in str(raised.value)


@pytest.mark.parametrize("name", [preset.name for preset in PRESETS if preset.base_url_env])
def test_the_presets_base_url_variable_brings_its_key_along(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    preset = BY_NAME[name]
    with LoopbackServer(name, api_key=KEY) as server:
        monkeypatch.setenv(preset.base_url_env, server.base_url)
        monkeypatch.setenv(preset.api_key_env, KEY)
        with PRESET_TYPES[name](model="m") as provider:
            assert provider.complete("hi").text == "echo: hi"
        assert server.last_request.headers["Authorization"] == f"Bearer {KEY}"
        assert server.last_request.path == _path(preset.base_url) + "/chat/completions"


# -- from_config(None) -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTED)
def test_from_config_none_adds_the_preset_whose_key_variable_is_set(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    preset = BY_NAME[name]
    monkeypatch.setenv(preset.api_key_env, KEY)
    config = load_config(None)
    assert list(config.providers) == [name] and config.providers[name].type == name
    assert preset.api_key_env in config.providers[name].where
    registry = ProviderRegistry.from_config(None) if preset.default_model else None
    if registry is not None:
        with registry:
            assert registry.names() == [name] and registry.get(name).model == preset.default_model
    else:
        # No sensible default model: it is skipped, saying what to set.
        with pytest.raises(ConfigError) as raised:
            ProviderRegistry.from_config(None, strict=True)
        assert f"no model configured ({preset.label} has no default model: set model" in str(raised.value)


def test_from_config_none_adds_no_local_preset_from_its_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LOCAL:
        if BY_NAME[name].api_key_env:
            monkeypatch.setenv(BY_NAME[name].api_key_env, KEY)  # a server-side variable: no client
    assert load_config(None).providers == {}
    monkeypatch.setenv(BY_NAME[HOSTED[0]].api_key_env, KEY)
    assert list(load_config(None).providers) == [HOSTED[0]]


def test_the_cli_help_names_every_presets_variables() -> None:
    from provider_kit._cli_parser import HELP_EPILOG

    for preset in PRESETS:
        for variable in (preset.api_key_env, preset.base_url_env):
            if variable:
                assert re.search(rf"^  {variable} +\S.*{re.escape(preset.label)}", HELP_EPILOG, re.M), variable
        assert (f'adds the provider "{preset.name}"' in HELP_EPILOG) == preset.requires_key


# -- quirks, reproduced by the simulators ------------------------------------------------------------


def test_a_model_must_be_configured_where_the_preset_has_no_default() -> None:
    for preset in PRESETS:
        with PRESET_TYPES[preset.name](require_api_key=False) as provider:
            if preset.default_model:
                provider.validate_config()
                continue
            with pytest.raises(ConfigError, match=rf"{preset.name} provider '{preset.name}': no model configured"):
                provider.validate_config()
            assert "misconfigured: " in provider.health_check().error


@pytest.mark.parametrize("shape", ["object", "array"])
@pytest.mark.parametrize("name", NAMES)
def test_both_listing_shapes_are_read_by_every_preset(name: str, shape: str) -> None:
    server = LoopbackServer(name, models=["a-1", "loopback-model"], quirks={"models_shape": shape})
    with server, _provider(name, server) as provider, _provider(name, server, check_model=False) as unchecked:
        assert provider.models() == ["a-1", "loopback-model"]
        assert provider.health_check().ok
        if not BY_NAME[name].health_path:
            assert unchecked.health_check().ok
        sent = server.requests[0]
    assert sent.path == _path(BY_NAME[name].base_url) + "/models"


def test_together_lists_its_models_as_a_bare_array() -> None:
    import requests

    with LoopbackServer("together") as server, _provider("together", server, model="m-2") as provider:
        raw = requests.get(server.base_url + "/models", timeout=5).json()
        health = provider.health_check()
    assert isinstance(raw, list) and [model["id"] for model in raw] == server.models
    assert not health.ok and "model missing: 'm-2' is not served" in health.error


def test_a_bare_array_is_still_refused_by_the_openai_type() -> None:
    # Only the presets relax the listing shape; a plain OpenAI server keeps its contract.
    server = LoopbackServer(OpenAIProvider.TYPE, quirks={"models_shape": "array"})
    refused = pytest.raises(ResponseFormatError, match="did not answer with a model list")
    with server, OpenAIProvider(base_url=server.base_url, max_retries=0) as provider, refused:
        provider.models()


def test_openrouter_comments_in_the_stream_are_skipped() -> None:
    with LoopbackServer("openrouter") as server, _provider("openrouter", server) as provider:
        chunks = list(provider.stream("hello"))
        import requests

        raw = requests.post(server.base_url + "/chat/completions", json={
            "model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}, timeout=5).text
    assert raw.startswith(": OPENROUTER PROCESSING\n\n") and raw.count(": OPENROUTER PROCESSING") == 2
    assert "".join(chunk.text for chunk in chunks) == "echo: hello"


@pytest.mark.parametrize("stream", [False, True])
def test_openrouter_errors_after_generation_began_arrive_in_a_200_and_are_raised(stream: bool) -> None:
    server = LoopbackServer("openrouter", quirks={"generation_error": (502, "Upstream model went away")})
    failed = pytest.raises(ServerError, match="Upstream model went away")
    with server, _provider("openrouter", server) as provider, failed as raised:
        if stream:
            list(provider.stream("hi"))
        else:
            provider.complete("hi")
    assert raised.value.status_code == 502
    assert len(server.requests) == 1  # an answered request: the caller's retry, not ours


def test_without_the_200_quirk_a_generation_error_is_its_status() -> None:
    quirks = {"generation_error": (503, "No provider available"), "errors_after_200": False}
    server = LoopbackServer("openrouter", quirks=quirks)
    with server, _provider("openrouter", server) as provider, pytest.raises(ServerError, match="No provider"):
        provider.complete("hi")
    assert server.last_request.path == "/api/v1/chat/completions"


def test_mistral_top_level_error_body_gives_its_message() -> None:
    with LoopbackServer("mistral", api_key=KEY) as server, _provider("mistral", server, api_key=OTHER_KEY) as provider:
        import requests

        raw = requests.get(server.base_url + "/models", timeout=5).json()
        with pytest.raises(AuthenticationError, match="Incorrect API key provided") as raised:
            provider.complete("hi")
    assert raw["object"] == "error" and "error" not in raw
    assert raised.value.status_code == 401 and OTHER_KEY not in str(raised.value)


def test_llamacpp_health_is_its_health_endpoint_503_while_loading() -> None:
    with LoopbackServer("llamacpp", quirks={"loading": True}) as server, _provider("llamacpp", server) as provider:
        assert provider.check_model is False  # it lists only its alias and accepts any name
        loading = provider.health_check()
        server.quirks["loading"] = False
        ready = provider.health_check()
        paths = [request.path for request in server.requests]
        with _provider("llamacpp", server, check_model=True, model="other") as checked:
            missing = checked.health_check()
    assert not loading.ok and "Loading model" in loading.error and "503" in loading.error
    assert ready.ok
    assert paths == ["/v1/health", "/v1/health"]
    assert not missing.ok and "model missing" in missing.error


def test_llamacpp_unreachable_at_its_default_address_says_the_port_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    cls = PRESET_TYPES["llamacpp"]
    with LoopbackServer(None) as server:
        closed = f"http://127.0.0.1:{server.port}/v1"  # nothing listens there once it is closed
    with cls(model="m", base_url=closed) as configured:
        elsewhere = configured.health_check(timeout=5).error
    # The hint is for the default address only (stood in for by the closed port: never 8080 here).
    monkeypatch.setattr(cls, "DEFAULT_BASE_URL", closed)
    with cls(model="m") as default:
        at_default = default.health_check(timeout=5).error
    assert elsewhere.startswith("unreachable: ") and "9931" not in elsewhere
    assert at_default.startswith("unreachable: ") and "9931" in at_default and "set base_url" in at_default


def test_an_unknown_quirk_or_quirks_without_a_protocol_are_refused() -> None:
    with pytest.raises(ValueError, match=r"no quirk 'model_shape' \(its quirks: .*models_shape"):
        LoopbackServer("together", quirks={"model_shape": "array"})
    with pytest.raises(ValueError, match="quirks need a protocol"):
        LoopbackServer(None, quirks={"loading": True})


def test_the_pytest_plugin_builds_a_preset_from_its_simulator(provider_registry: Any) -> None:
    with LoopbackServer("groq") as server:
        registry = provider_registry({"fast": server})
        assert type(registry.get("fast")) is PRESET_TYPES["groq"]
        assert registry.complete("hi").text == "echo: hi"
        assert server.last_request.path == "/openai/v1/chat/completions"


# -- one place: the rows ---------------------------------------------------------------------------


def _spelled(path: Path, names: List[str]) -> List[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in names and id(node) not in docstrings
    ]


def test_no_preset_is_spelled_out_in_the_package_outside_its_row() -> None:
    rows = ROOT / "provider_kit" / "providers" / "_presets.py"
    misplaced = [hit for path in sorted((ROOT / "provider_kit").rglob("*.py")) if path != rows
                 for hit in _spelled(path, NAMES)]
    assert misplaced == []
    assert _spelled(rows, NAMES)  # the check can see a name


def _docs_table() -> List[List[str]]:
    """The rows of docs/providers.rst's presets table (a ``list-table``): each row's cells, a
    cell's wrapped lines joined with a space."""
    lines = (ROOT / "docs" / "providers.rst").read_text(encoding="utf-8").splitlines()
    start = lines.index(".. list-table:: Presets")
    rows: List[List[str]] = []
    for line in lines[start + 1:]:
        if line.strip() and not line.startswith(" "):
            break  # the table ends at the next paragraph or heading
        if line.startswith("   * - "):
            rows.append([line[len("   * - "):]])
        elif line.startswith("     - "):
            rows[-1].append(line[len("     - "):])
        elif line.startswith("       ") and rows:
            rows[-1][-1] += " " + line.strip()
    return rows


def test_the_docs_table_lists_exactly_the_presets_with_their_facts() -> None:
    rows = _docs_table()
    assert rows[0][:3] == ["Type", "Base URL", "Key variable"]
    listed = {row[0].strip("`"): row for row in rows[1:]}
    assert list(listed) == NAMES
    for preset in PRESETS:
        row = listed[preset.name]
        assert row[1] == f"``{preset.base_url}``"
        key = f"``{preset.api_key_env}``" if preset.api_key_env else "none"
        assert row[2].startswith(key) and (preset.requires_key or "optional" in row[2] or key == "none")
        if preset.base_url_env:
            assert f"``{preset.base_url_env}``" in row[3]
        assert (preset.default_model or "none") in row[3]
        assert preset.note in row[4]


def test_readme_links_the_presets_page() -> None:
    readme = (ROOT / "README.rst").read_text(encoding="utf-8")
    assert "docs/providers.rst" in readme


def test_the_readme_table_lists_exactly_the_presets() -> None:
    readme = (ROOT / "README.rst").read_text(encoding="utf-8")
    section = readme.split("OpenAI-compatible services\n--------------------------\n", 1)[1]
    table = section[section.index("\n==") + 1 :].split("\n\n", 1)[0]
    lines = [line for line in table.splitlines() if not line.startswith("=")]
    header, *rows = [line.split() for line in lines]
    assert header[:3] == ["Type", "Base", "URL"]
    assert [row[0] for row in rows] == [preset.name for preset in PRESETS]
    for row, preset in zip(rows, PRESETS):
        assert row[1] == preset.base_url
        assert row[2] == (preset.api_key_env or "none")
        assert ("(optional)" in row) == bool(preset.api_key_env and not preset.requires_key)


# -- issue 11: each preset's structured-output, reasoning and seed quirks, as data ------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17


@pytest.mark.parametrize("name, refused", [("lmstudio", "json"), ("deepseek", "schema")])
def test_a_mode_the_service_does_not_serve_is_refused_before_sending(name: str, refused: str) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
              "additionalProperties": False}
    with LoopbackServer(name) as server, _provider(name, server) as provider:
        argument: Dict[str, Any] = {"json": True} if refused == "json" else {"schema": schema}
        with pytest.raises(ConfigError, match=f"{name}.*structured output"):
            provider.complete("json please", **argument)
        assert server.requests == []
        served: Dict[str, Any] = {"schema": schema} if refused == "json" else {"json": True}
        assert provider.complete("json please", **served).data is not None


@pytest.mark.parametrize("name, message", [
    ("lmstudio", "'response_format.type' must be 'json_schema' or 'text'"),
    ("deepseek", "This response_format type is unavailable now"),
])
def test_the_preset_simulators_refuse_the_mode_their_service_refuses(name: str, message: str) -> None:
    kind = "json_object" if name == "lmstudio" else "json_schema"
    fmt: Dict[str, Any] = {"type": kind}
    if kind == "json_schema":
        fmt["json_schema"] = {"name": "A", "schema": {"type": "object"}}
    with LoopbackServer(name) as server, requests.Session() as session:
        path = urllib.parse.urlsplit(BY_NAME[name].base_url).path.rstrip("/")
        reply = session.post(server.url + path + "/chat/completions", timeout=10, json={
            "model": "m", "messages": [{"role": "user", "content": "json"}], "response_format": fmt})
    assert reply.status_code == 400 and message in json.dumps(reply.json())


def test_deepseek_thinks_by_default_and_sends_its_reasoning_content_back() -> None:
    with LoopbackServer("deepseek") as server, _provider("deepseek", server) as provider:
        first = provider.complete("One?")
        assert (first.text, first.reasoning) == ("echo: One?", "thinking about: One?")
        provider.complete([Message("user", "One?"), first.message, Message("user", "Two?")])
        # DeepSeek's rule (PROTOCOLS-2.md §H.2): the assistant turn carries its reasoning_content.
        assert server.last_request.json()["messages"][1] == {
            "role": "assistant", "content": "echo: One?", "reasoning_content": "thinking about: One?"}
        off = provider.complete("Quick.", reasoning=False)
        assert server.last_request.json()["thinking"] == {"type": "disabled"}
        assert off.reasoning is None
        streamed = list(provider.stream("One?"))
        assert "".join(chunk.reasoning for chunk in streamed) == first.reasoning


def test_vllm_reasoning_is_read_from_its_field_and_turned_off_through_the_template() -> None:
    with LoopbackServer("vllm") as server, _provider("vllm", server) as provider:
        completion = provider.complete("Why?", reasoning="low")
        assert server.last_request.json()["reasoning_effort"] == "low"
        assert completion.provider_state == {"reasoning": "thinking about: Why?"}
        provider.complete([Message("user", "Why?"), completion.message, Message("user", "And?")])
        assert "reasoning" not in server.last_request.json()["messages"][1]  # not echoed: vLLM's template decides
        assert provider.complete("Quick.", reasoning=False).reasoning is None
        assert server.last_request.json()["chat_template_kwargs"] == {"enable_thinking": False}


def test_mistral_takes_the_seed_as_random_seed() -> None:
    with LoopbackServer("mistral") as server, _provider("mistral", server) as provider:
        provider.complete("hi", seed=42, top_p=0.9)
        body = server.last_request.json()
    assert (body["random_seed"], body["top_p"]) == (42, 0.9) and "seed" not in body


def test_deepseek_cache_hits_are_the_cached_input_tokens() -> None:
    body = {"id": "c", "object": "chat.completion", "created": 1, "model": "deepseek-chat",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok",
                                                 "reasoning_content": "hm"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105,
                      "prompt_cache_hit_tokens": 64, "prompt_cache_miss_tokens": 36,
                      "completion_tokens_details": {"reasoning_tokens": 1}}}
    with LoopbackServer("deepseek") as server, _provider("deepseek", server) as provider:
        server.enqueue(Reply(json=body))
        usage = provider.complete("hi").usage
    assert (usage.input_tokens, usage.cached_input_tokens, usage.reasoning_tokens) == (100, 64, 1)


@pytest.mark.parametrize("name", NAMES)
def test_every_preset_takes_images_reasoning_and_sampling(name: str) -> None:
    with LoopbackServer(name) as server, _provider(name, server) as provider:
        completion = provider.complete(["What?", Image.from_bytes(PNG)], reasoning="high", top_p=0.5)
        body = server.last_request.json()
    assert body["messages"][0]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert completion.text.startswith(f"echo: What? [image image/png {len(PNG)} bytes")
    assert completion.reasoning == (f"thinking about: What? [image image/png {len(PNG)} bytes]"
                                    if BY_NAME[name].reasoning_field else None)
