"""The ``azure`` type (Azure OpenAI, PROTOCOLS-2.md §J) against its loopback simulator: both URL
styles, configuration from the variables ``openai.AzureOpenAI`` reads, where the key goes, the
health check, Azure's errors (content filter, missing deployment) and its stream's first chunk;
and conformance with ``openai.AzureOpenAI`` (and the plain ``openai.OpenAI`` for the v1 API) as
the reference client talking to the same simulator.

What every type shares (timeouts, retries, redirects, threads) is tested for ``azure`` too by the
suites parametrised over ``_kinds.KINDS``; what is Azure's own is here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import requests

from provider_kit import Image, Message, ProviderRegistry, ProviderSkippedWarning, StreamChunk
from provider_kit.errors import (
    AuthenticationError,
    ConfigError,
    InvalidRequestError,
    ProviderError,
)
from provider_kit.providers import BUILTIN_TYPES, AzureOpenAIProvider
from provider_kit.testing import LoopbackServer, RecordedRequest, Reply

TYPE = AzureOpenAIProvider.TYPE
KEY = "az-key-0123456789abcdef"
OTHER_KEY = "az-other-key-9876543210"
VERSION = "2024-10-21"
DEPLOYMENT = "gpt-4o"  # a deployment the simulator serves (its default models)
CLASSIC_CHAT = f"/openai/deployments/{DEPLOYMENT}/chat/completions"
V1_CHAT = "/openai/v1/chat/completions"

Make = Callable[..., AzureOpenAIProvider]


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(TYPE, api_key=KEY) as server:
        yield server
    assert server.errors == []


@pytest.fixture
def make(server: LoopbackServer, provider_factory: Callable[..., Make]) -> Make:
    """Classic-style providers for ``server`` (no retries unless asked); closed after the test."""
    return provider_factory(AzureOpenAIProvider, endpoint=server.url, api_key=KEY, api_version=VERSION,
                            deployment=DEPLOYMENT, max_retries=0, timeout=10)


def drain(chunks: Iterator[StreamChunk]) -> List[StreamChunk]:
    return list(chunks)


def credential_headers(request: RecordedRequest) -> Dict[str, Optional[str]]:
    return {name: request.headers.get(name) for name in ("api-key", "Authorization")}


# -- the classic URLs ---------------------------------------------------------------------------


def test_classic_complete_sends_the_deployment_url_the_version_and_the_api_key_header(
    server: LoopbackServer, make: Make
) -> None:
    completion = make().complete("hello", system="Be terse.", max_tokens=50, temperature=0.5)
    request = server.last_request
    assert (request.method, request.path, request.query) == ("POST", CLASSIC_CHAT, {"api-version": VERSION})
    assert credential_headers(request) == {"api-key": KEY, "Authorization": None}
    assert request.json() == {
        "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hello"}],
        "model": DEPLOYMENT, "max_tokens": 50, "temperature": 0.5,
    }
    assert (completion.text, completion.finish_reason, completion.provider) == ("echo: hello", "stop", TYPE)
    assert completion.usage.total_tokens == completion.usage.input_tokens + completion.usage.output_tokens
    assert "prompt_filter_results" in completion.raw  # Azure's extra keys are kept in raw


def test_classic_stream_skips_the_choiceless_prompt_filter_chunk_and_keeps_usage(
    server: LoopbackServer, make: Make
) -> None:
    chunks = drain(make().stream("hello there"))
    request = server.last_request
    assert (request.path, request.query) == (CLASSIC_CHAT, {"api-version": VERSION})
    assert request.json()["stream_options"] == {"include_usage": True}
    assert "".join(c.text for c in chunks) == "echo: hello there"
    assert all(c.text for c in chunks[:-1])  # the first, choice-less chunk gave no empty chunk
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage.output_tokens == 3


def test_a_scripted_stream_that_opens_with_an_empty_id_and_model_is_read(server: LoopbackServer, make: Make) -> None:
    # The first chunk's "id": "", "model": "", "created": 0 must not be taken for the answer's.
    server.enqueue(server.stream_reply(["Hel", "lo"], model="gpt-4o-2024-08-06"))
    chunks = drain(make().stream("hi"))
    assert [c.text for c in chunks] == ["Hel", "lo", ""]
    first = server.stream_reply(["x"]).body_bytes.split(b"\n\n")[0]
    assert json.loads(first[len(b"data: "):])["choices"] == []  # the simulator does send it


def test_versions_before_2024_09_01_get_no_stream_options_and_the_simulator_refuses_them(
    server: LoopbackServer, make: Make
) -> None:
    chunks = drain(make(api_version="2024-06-01").stream("hi"))
    assert "stream_options" not in server.last_request.json()
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage.total_tokens is None
    # What a client sending it anyway gets, as from Azure.
    answer = requests.post(f"{server.url}{CLASSIC_CHAT}?api-version=2024-06-01", headers={"api-key": KEY},
                           json={"messages": [{"role": "user", "content": "hi"}], "stream": True,
                                 "stream_options": {"include_usage": True}}, timeout=10)
    assert answer.status_code == 400 and "stream_options" in answer.json()["error"]["message"]


def test_the_deployment_defaults_to_the_model_and_a_call_model_names_another(
    server: LoopbackServer, provider_factory: Callable[..., Make]
) -> None:
    make = provider_factory(AzureOpenAIProvider, endpoint=server.url, api_key=KEY, api_version=VERSION)
    by_model = make(model="gpt-4o-mini")
    assert (by_model.deployment, by_model.model) == ("gpt-4o-mini", "gpt-4o-mini")
    by_deployment = make(deployment="gpt-4o")
    assert (by_deployment.deployment, by_deployment.model) == ("gpt-4o", "gpt-4o")
    by_deployment.complete("hi", model="gpt-4o-mini")
    assert server.last_request.path == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert server.last_request.json()["model"] == "gpt-4o-mini"
    both = make(model="gpt-4o-2024-08-06", deployment="gpt-4o")
    both.complete("hi")
    assert server.last_request.path == CLASSIC_CHAT and server.last_request.json()["model"] == "gpt-4o"


def test_a_deployment_name_is_one_path_segment(server: LoopbackServer, make: Make) -> None:
    with pytest.raises(InvalidRequestError):
        make(deployment="a/b?c").complete("hi")
    assert server.last_request.path == "/openai/deployments/a%2Fb%3Fc/chat/completions"


def test_an_unknown_deployment_is_a_404_deployment_not_found_never_retried(
    server: LoopbackServer, make: Make
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        make(deployment="gpt-5-prod", max_retries=3).complete("hi")
    assert info.value.status_code == 404 and "deployment for this resource does not exist" in str(info.value)
    assert json.loads(info.value.body or "")["error"]["code"] == "DeploymentNotFound"
    assert len(server.requests) == 1


def test_max_tokens_field_auto_on_the_classic_urls(server: LoopbackServer, make: Make) -> None:
    make().complete("hi", max_tokens=7)
    assert "max_tokens" in server.last_request.json()
    make(deployment="o3-mini", model="o3-mini").complete("hi", max_tokens=7, model="gpt-4o")
    assert "max_tokens" in server.last_request.json()
    server.models.append("o3-mini")
    make(deployment="o3-mini").complete("hi", max_tokens=7)
    assert server.last_request.json()["max_completion_tokens"] == 7
    make(max_tokens_field="max_completion_tokens").complete("hi", max_tokens=7)
    assert server.last_request.json()["max_completion_tokens"] == 7


# -- the v1 API ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["api_version", "base_url", "no version"])
def test_v1_is_plain_openai_with_a_bearer_key_and_no_version(
    server: LoopbackServer, provider_factory: Callable[..., Make], how: str
) -> None:
    options: Dict[str, Any] = {
        "api_version": {"endpoint": server.url, "api_version": "v1"},
        "base_url": {"base_url": server.url + "/openai/v1/"},
        "no version": {"endpoint": server.url},
    }[how]
    provider = provider_factory(AzureOpenAIProvider, api_key=KEY, deployment=DEPLOYMENT, **options)()
    assert provider.uses_v1 and provider.base_url == server.url + "/openai/v1"
    assert provider.complete("hi", max_tokens=9).text == "echo: hi"
    request = server.last_request
    assert (request.path, request.query) == (V1_CHAT, {})
    assert credential_headers(request) == {"api-key": None, "Authorization": f"Bearer {KEY}"}
    assert request.json() == {"messages": [{"role": "user", "content": "hi"}], "model": DEPLOYMENT,
                              "max_completion_tokens": 9}
    assert "".join(c.text for c in provider.stream("hi")) == "echo: hi"
    assert server.last_request.json()["stream_options"] == {"include_usage": True}
    assert provider.health_check().ok
    assert (server.last_request.path, server.last_request.query) == ("/openai/v1/models", {})


def test_base_url_may_be_the_sdks_openai_base(server: LoopbackServer, provider_factory: Callable[..., Make]) -> None:
    provider = provider_factory(AzureOpenAIProvider, base_url=server.url + "/openai", api_key=KEY,
                                api_version=VERSION, deployment=DEPLOYMENT)()
    provider.complete("hi")
    assert (server.last_request.path, server.last_request.query) == (CLASSIC_CHAT, {"api-version": VERSION})


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(("options", "says"), [
    ({"endpoint": "https://r.openai.azure.com", "base_url": "https://r.openai.azure.com"}, "set one of them"),
    ({"base_url": "https://r.openai.azure.com/openai/deployments/d"}, "must not name a deployment"),
    ({"base_url": "https://r.openai.azure.com/openai?api-version=2024-10-21"}, "without a query"),
    ({"base_url": "https://r.openai.azure.com/openai/v1", "api_version": VERSION}, "takes no api-version"),
    ({"endpoint": "https://r.openai.azure.com", "api_version": "2024-10"}, "dated api-version"),
    ({"endpoint": "https://r.openai.azure.com", "api_version": 20241021}, "api_version"),
    ({"endpoint": "r.openai.azure.com"}, "endpoint"),
    ({"endpoint": "https://r.openai.azure.com", "deployment": ""}, "deployment"),
])
def test_bad_options_are_config_errors(options: Dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        AzureOpenAIProvider(api_key=KEY, **options)


def test_a_bad_version_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_VERSION", "latest")
    with pytest.raises(ConfigError, match=r"\$OPENAI_API_VERSION='latest'"):
        AzureOpenAIProvider(endpoint="https://r.openai.azure.com", api_key=KEY)


def test_no_endpoint_is_refused_before_sending_and_in_the_health_check() -> None:
    with AzureOpenAIProvider(api_key=KEY) as provider:
        with pytest.raises(ConfigError, match=r"no endpoint \(set \$AZURE_OPENAI_ENDPOINT"):
            provider.complete("hi")
        status = provider.health_check()
    assert not status.ok and "misconfigured" in str(status.error) and "AZURE_OPENAI_ENDPOINT" in str(status.error)


def test_the_environment_configures_it_as_azure_openai_reads_it(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url + "/")
    monkeypatch.setenv("OPENAI_API_VERSION", VERSION)
    with AzureOpenAIProvider(deployment=DEPLOYMENT) as provider:
        assert (provider.endpoint, provider.api_version, provider.has_api_key) == (server.url, VERSION, True)
        provider.complete("hi")
    assert (server.last_request.path, server.last_request.query) == (CLASSIC_CHAT, {"api-version": VERSION})
    assert credential_headers(server.last_request) == {"api-key": KEY, "Authorization": None}
    with AzureOpenAIProvider(deployment=DEPLOYMENT, api_version="v1") as provider:  # the option wins
        provider.complete("hi")
    assert server.last_request.path == V1_CHAT


def test_with_no_config_file_the_key_variable_adds_an_azure_provider(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert BUILTIN_TYPES[TYPE].enabling_env_var() == "AZURE_OPENAI_API_KEY"
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url)
    with ProviderRegistry.from_config(None) as registry:
        assert registry.names() == [TYPE]
        provider = registry[TYPE]
        assert isinstance(provider, AzureOpenAIProvider)
        provider.complete("hi", model=DEPLOYMENT)  # the v1 API: no version anywhere
    assert (server.last_request.path, server.last_request.json()["model"]) == (V1_CHAT, DEPLOYMENT)


def test_the_key_variable_without_the_endpoint_variable_is_skipped_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-0123456789")  # something to build
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        registry = ProviderRegistry.from_config(None)
    with registry:
        assert TYPE not in registry and "AZURE_OPENAI_ENDPOINT" in registry.skipped[TYPE]
        assert KEY not in registry.skipped[TYPE]
    assert any(isinstance(w.message, ProviderSkippedWarning) and w.message.provider == TYPE for w in caught)


def test_a_config_table_is_checked_against_the_azure_options(tmp_path: Any) -> None:
    from provider_kit import load_config

    path = tmp_path / "provider_kit.toml"
    path.write_text(f'[providers.prod]\ntype = "{TYPE}"\nendpoint = "https://r.openai.azure.com"\n'
                    'deploymnet = "gpt-4o"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"deploymnet.*did you mean .deployment."):
        load_config(path)


# -- where the key goes -------------------------------------------------------------------------


def test_the_key_variable_goes_only_to_the_endpoint_variables_resource(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "https://mine.openai.azure.com")
    # Another resource named in the table: the variable is not for it.
    with AzureOpenAIProvider(endpoint="https://theirs.openai.azure.com", deployment="d") as provider:
        assert not provider.has_api_key
        with pytest.raises(ConfigError) as info:
            provider.complete("hi")  # refused before any connection
    message = str(info.value)
    assert "$AZURE_OPENAI_API_KEY is sent only to the server $AZURE_OPENAI_ENDPOINT names" in message
    assert "set api_key_env" in message and KEY not in message
    # Naming the variable says "this key is for that endpoint".
    with AzureOpenAIProvider(endpoint=server.url, api_key_env="AZURE_OPENAI_API_KEY", api_version=VERSION,
                             deployment=DEPLOYMENT) as provider:
        provider.complete("hi")
    assert server.last_request.headers["api-key"] == KEY


def test_a_loopback_endpoint_without_a_key_sends_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    with LoopbackServer(TYPE) as server, AzureOpenAIProvider(endpoint=server.url, api_version=VERSION,
                                                             deployment=DEPLOYMENT) as provider:
        provider.complete("hi")
        assert credential_headers(server.last_request) == {"api-key": None, "Authorization": None}


def test_the_key_never_shows_in_repr_describe_errors_or_logs(
    server: LoopbackServer, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = make(max_retries=1)
    texts = [repr(provider), json.dumps(provider.describe()), repr(provider._transport)]
    server.enqueue(server.error_reply(500, f"upstream failed for api-key {KEY}", retry_after=0), times=2)
    server.enqueue(server.error_reply(400, f"bad key {KEY}"))
    for _ in range(2):
        with pytest.raises(ProviderError) as info:
            provider.complete("hi")
        texts += [str(info.value), repr(info.value), info.value.body or ""]
    texts += [record.getMessage() for record in caplog.records]
    assert any("***" in text for text in texts)
    assert not [text for text in texts if KEY in text]
    assert provider.describe()["api_version"] == VERSION and provider.describe()["deployment"] == DEPLOYMENT


def test_a_redirect_is_refused_and_the_api_key_never_reaches_the_other_host(
    server: LoopbackServer, make: Make
) -> None:
    with LoopbackServer(TYPE) as elsewhere:
        location = elsewhere.url_for(CLASSIC_CHAT, host="localhost") + f"?api-version={VERSION}"
        for status in (301, 302, 307, 308):
            server.enqueue(Reply.redirect(location, status), path=CLASSIC_CHAT)
            with pytest.raises(InvalidRequestError, match="redirect"):
                make().complete("hi")
        server.enqueue(Reply.redirect(location), path=CLASSIC_CHAT)
        with pytest.raises(InvalidRequestError, match="redirect"):
            drain(make().stream("hi"))
        assert elsewhere.requests == []
    assert all(request.headers["api-key"] == KEY for request in server.requests)


# -- errors -------------------------------------------------------------------------------------


def test_the_content_filter_refusal_is_an_invalid_request_that_says_so_and_is_not_retried(
    server: LoopbackServer, make: Make
) -> None:
    provider = make(max_retries=3)
    server.enqueue(server.error_reply(400, code="content_filter"), times=2)
    with pytest.raises(InvalidRequestError) as complete_info:
        provider.complete("something hateful")
    with pytest.raises(InvalidRequestError) as stream_info:
        drain(provider.stream("something hateful"))
    assert len(server.requests) == 2
    for error in (complete_info.value, stream_info.value):
        message = str(error)
        assert message.startswith(f"{TYPE}: blocked by Azure's content filter (hate: medium): ")
        assert "content management policy" in message and "HTTP 400" in message and "\n" not in message
        assert error.status_code == 400 and error.request_id
        assert json.loads(error.body or "")["error"]["innererror"]["code"] == "ResponsibleAIPolicyViolation"


def test_other_400s_keep_the_servers_message(server: LoopbackServer, make: Make) -> None:
    server.enqueue(server.error_reply(400, "Invalid value for 'temperature'", param="temperature"))
    with pytest.raises(InvalidRequestError) as info:
        make().complete("hi")
    assert str(info.value).startswith(f"{TYPE}: Invalid value for 'temperature' (HTTP 400")


def test_a_filtered_answer_ends_with_content_filter(server: LoopbackServer, make: Make) -> None:
    server.enqueue(server.completion_reply("Partial", finish_reason="content_filter"))
    completion = make().complete("hi")
    assert (completion.text, completion.finish_reason) == ("Partial", "content_filter")
    assert completion.raw["choices"][0]["content_filter_results"]["violence"]["filtered"] is True
    server.enqueue(server.stream_reply(["Par", "tial"], finish_reason="content_filter"))
    chunks = drain(make().stream("hi"))
    assert "".join(c.text for c in chunks) == "Partial" and chunks[-1].finish_reason == "content_filter"


@pytest.mark.parametrize(("headers", "says"), [
    ({}, "missing subscription key"),
    ({"api-key": OTHER_KEY}, "invalid subscription key"),
    ({"Authorization": f"Bearer {KEY}"}, "Access token is missing, invalid"),  # a key is not an Entra token
])
def test_the_simulator_refuses_classic_requests_as_azure_does(
    server: LoopbackServer, headers: Dict[str, str], says: str
) -> None:
    answer = requests.get(f"{server.url}/openai/models", params={"api-version": VERSION}, headers=headers,
                          timeout=10)
    assert answer.status_code == 401 and says in answer.json()["error"]["message"]
    assert answer.json()["error"]["code"] == "401"


def test_the_simulator_needs_an_api_version_on_the_classic_urls_and_none_on_v1(server: LoopbackServer) -> None:
    headers = {"api-key": KEY}
    body = {"messages": [{"role": "user", "content": "hi"}]}
    missing = requests.post(server.url + CLASSIC_CHAT, headers=headers, json=body, timeout=10)
    assert (missing.status_code, missing.json()) == (404, {"error": {"code": "404", "message": "Resource not found"}})
    malformed = requests.post(server.url + CLASSIC_CHAT, params={"api-version": "v1"}, headers=headers, json=body,
                              timeout=10)
    assert malformed.status_code == 400 and malformed.json()["error"]["message"] == "API version not supported"
    for v1_headers in ({"api-key": KEY}, {"Authorization": f"Bearer {KEY}"}):
        answer = requests.post(server.url + V1_CHAT, headers=v1_headers, json={**body, "model": DEPLOYMENT},
                               timeout=10)
        assert answer.status_code == 200, answer.text


def test_a_wrong_key_is_an_authentication_error_without_the_key(server: LoopbackServer, make: Make) -> None:
    with pytest.raises(AuthenticationError) as info:
        make(api_key=OTHER_KEY).complete("hi")
    assert info.value.status_code == 401 and OTHER_KEY not in str(info.value)
    status = make(api_key=OTHER_KEY).health_check()
    assert not status.ok and str(status.error).startswith("unauthorised")


# -- health and models --------------------------------------------------------------------------


def test_the_health_check_lists_models_with_the_version_and_proves_endpoint_and_key_only(
    server: LoopbackServer, make: Make
) -> None:
    provider = make(deployment="not-deployed")
    assert provider.check_model is False
    assert provider.health_check().ok  # the listing cannot say whether a deployment exists
    request = server.last_request
    assert (request.method, request.path, request.query) == ("GET", "/openai/models", {"api-version": VERSION})
    assert request.headers["api-key"] == KEY
    assert make().models() == list(server.models)
    assert not make(deployment="not-deployed", check_model=True).health_check().ok
    with pytest.raises(InvalidRequestError, match="does not exist"):
        provider.complete("hi")


# -- conformance with the official clients --------------------------------------------------------


def _sdk() -> Any:
    return pytest.importorskip("openai", reason="the official openai SDK is not installed (pip install -e '.[test]')")


@contextlib.contextmanager
def azure_client(server: LoopbackServer, **options: Any) -> Iterator[Any]:
    sdk = _sdk()
    options.setdefault("api_key", KEY)
    options.setdefault("api_version", VERSION)
    options.setdefault("azure_endpoint", server.url)
    with sdk.AzureOpenAI(max_retries=0, **options) as client:
        yield client


@contextlib.contextmanager
def v1_client(server: LoopbackServer) -> Iterator[Any]:
    # Microsoft's documented use of the v1 API: the plain client, base_url ending in /openai/v1/.
    with _sdk().OpenAI(base_url=server.url + "/openai/v1/", api_key=KEY, max_retries=0) as client:
        yield client


MESSAGES = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Say hi"}]


def _sdk_call(client: Any, stream: bool) -> None:
    kwargs: Dict[str, Any] = {"model": DEPLOYMENT, "messages": MESSAGES, "max_tokens": 64, "temperature": 0.2}
    if stream:
        with client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}) as events:
            for _ in events:
                pass
    else:
        client.chat.completions.create(**kwargs)


def _ours_call(provider: AzureOpenAIProvider, stream: bool) -> None:
    messages = [Message(m["role"], m["content"]) for m in MESSAGES]
    if stream:
        drain(provider.stream(messages, max_tokens=64, temperature=0.2))
    else:
        provider.complete(messages, max_tokens=64, temperature=0.2)


def _same_request(sdk_request: RecordedRequest, ours: RecordedRequest) -> None:
    assert (ours.method, ours.path, ours.query) == (sdk_request.method, sdk_request.path, sdk_request.query)
    assert credential_headers(ours) == credential_headers(sdk_request)
    assert ours.json() == sdk_request.json()


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("style", ["classic", "v1"])
def test_requests_match_the_official_client(server: LoopbackServer, make: Make, style: str, stream: bool) -> None:
    with (azure_client(server) if style == "classic" else v1_client(server)) as client:
        _sdk_call(client, stream)
    sdk_request = server.last_request
    options = {"max_tokens_field": "max_tokens"} if style == "v1" else {}  # what _sdk_call sends
    _ours_call(make(api_version=VERSION if style == "classic" else "v1", **options), stream)
    _same_request(sdk_request, server.last_request)


def test_configured_only_from_the_environment_both_send_the_same(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url)
    monkeypatch.setenv("OPENAI_API_VERSION", "2025-04-01-preview")
    sdk = _sdk()
    with sdk.AzureOpenAI(max_retries=0) as client:
        _sdk_call(client, stream=False)
    sdk_request = server.last_request
    assert sdk_request.query == {"api-version": "2025-04-01-preview"}
    with AzureOpenAIProvider(deployment=DEPLOYMENT) as provider:
        _ours_call(provider, stream=False)
    _same_request(sdk_request, server.last_request)


@pytest.mark.parametrize("style", ["classic", "v1"])
def test_the_model_listing_and_health_check_request_what_models_list_requests(
    server: LoopbackServer, make: Make, style: str
) -> None:
    with (azure_client(server) if style == "classic" else v1_client(server)) as client:
        sdk_ids = [model.id for model in client.models.list()]
    sdk_request = server.last_request
    provider = make(api_version=VERSION if style == "classic" else "v1")
    assert provider.models() == sdk_ids
    for ours in (server.last_request, (provider.health_check(), server.last_request)[1]):
        assert (ours.method, ours.path, ours.query) == (sdk_request.method, sdk_request.path, sdk_request.query)
        assert credential_headers(ours) == credential_headers(sdk_request)


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_answers_read_as_the_official_client_reads_them(server: LoopbackServer, make: Make, stream: bool) -> None:
    def reply() -> Reply:
        if stream:
            return server.stream_reply(["Hi", " there"], finish_reason="content_filter", input_tokens=9)
        return server.completion_reply("Hi there", finish_reason="content_filter", input_tokens=9)

    server.enqueue(reply())
    with azure_client(server) as client:
        if stream:
            with client.chat.completions.create(model=DEPLOYMENT, messages=MESSAGES, stream=True,
                                                stream_options={"include_usage": True}) as events:
                text, finish, usage = "", None, None
                for event in events:
                    for choice in event.choices:
                        text += choice.delta.content or ""
                        finish = choice.finish_reason or finish
                    usage = event.usage or usage
        else:
            answer = client.chat.completions.create(model=DEPLOYMENT, messages=MESSAGES)
            text, finish, usage = answer.choices[0].message.content, answer.choices[0].finish_reason, answer.usage
    server.enqueue(reply())
    provider = make()
    if stream:
        chunks = drain(provider.stream("hi"))
        ours = ("".join(c.text for c in chunks), chunks[-1].finish_reason, chunks[-1].usage)
    else:
        completion = provider.complete("hi")
        ours = (completion.text, completion.finish_reason, completion.usage)
    assert ours[:2] == (text, finish)
    assert (ours[2].input_tokens, ours[2].output_tokens, ours[2].total_tokens) == (
        usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_the_content_filter_error_is_classified_as_the_official_client_classifies_it(
    server: LoopbackServer, make: Make, stream: bool
) -> None:
    sdk = _sdk()
    server.enqueue(server.error_reply(400, code="content_filter"))
    with azure_client(server) as client, pytest.raises(sdk.BadRequestError) as sdk_info:
        _sdk_call(client, stream)
    server.enqueue(server.error_reply(400, code="content_filter"))
    with pytest.raises(InvalidRequestError) as info:
        _ours_call(make(max_retries=2), stream)
    assert len(server.requests) == 2  # neither client retried
    assert sdk_info.value.code == "content_filter" and sdk_info.value.status_code == info.value.status_code == 400
    assert sdk_info.value.request_id and info.value.request_id
    assert json.loads(info.value.body or "")["error"]["message"] in str(info.value)


def test_the_cli_help_describes_the_variables_of_a_type_with_no_default_host() -> None:
    from provider_kit._cli_parser import HELP_EPILOG

    lines = {line.split()[0]: line for line in HELP_EPILOG.splitlines() if line.startswith("  AZURE_")}
    assert 'adds the provider "azure"' in lines["AZURE_OPENAI_API_KEY"]
    assert "the Azure OpenAI server (no default" in lines["AZURE_OPENAI_ENDPOINT"]
    assert not lines["AZURE_OPENAI_ENDPOINT"].rstrip().endswith("than")


# -- issue 11: images, structured output and reasoning on both URL styles -------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
PERSON = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
          "additionalProperties": False}


@pytest.mark.parametrize("api_version", ["2025-04-01-preview", "v1"])
def test_images_schema_and_reasoning_work_on_both_url_styles(server: LoopbackServer, make: Make,
                                                             api_version: str) -> None:
    provider = make(api_version=api_version)
    completion = provider.complete(["Who?", Image.from_bytes(PNG)], schema=PERSON, top_p=0.5, seed=1)
    body = server.last_request.json()
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["messages"][0]["content"][1]["type"] == "image_url"
    assert completion.data == {"name": f"echo: Who? [image image/png {len(PNG)} bytes]"}
    reasoning = make(api_version=api_version, deployment="o4-mini", model="o4-mini")
    server.models.append("o4-mini")
    assert reasoning.complete("Think.", reasoning="high").usage.reasoning_tokens
    assert server.last_request.json()["reasoning_effort"] == "high"


@pytest.mark.parametrize("argument, since", [
    ({"schema": PERSON}, "2024-08-01"),
    ({"reasoning": "low"}, "2024-12-01"),
])
def test_an_api_version_that_predates_a_feature_refuses_it_before_sending(server: LoopbackServer, make: Make,
                                                                         argument: Dict[str, Any],
                                                                         since: str) -> None:
    provider = make(api_version="2024-06-01")
    with pytest.raises(ConfigError, match=f"api_version '2024-06-01'.*{since}-preview"):
        provider.complete("hi", **argument)
    assert server.requests == []


def test_the_simulator_refuses_json_schema_on_an_old_api_version(server: LoopbackServer) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "A", "schema": PERSON}}}
    reply = requests.post(server.url + CLASSIC_CHAT, params={"api-version": "2024-06-01"}, json=body,
                          headers={"api-key": KEY}, timeout=10)
    assert reply.status_code == 400 and "json_schema" in reply.json()["error"]["message"]


def test_a_filtered_refusal_and_reasoning_fields_read_as_for_openai(server: LoopbackServer, make: Make) -> None:
    server.quirks["refusal"] = "I can't help with that."
    completion = make().complete("hi, in json", json=True)
    assert (completion.text, completion.finish_reason, completion.data) == (
        "I can't help with that.", "content_filter", None)
