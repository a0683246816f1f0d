"""Embeddings against the official SDKs: provider_kit sends the request ``openai`` and
``ollama`` send (body and path) to a loopback simulator, and reads the same vectors."""

from __future__ import annotations

import contextlib
from typing import Iterator

import ollama
import openai
import pytest

from provider_kit import (
    AzureOpenAIProvider,
    ConfigError,
    OllamaProvider,
    OpenAIProvider,
    UnsupportedFeatureError,
)
from provider_kit.providers import PRESET_TYPES, PRESETS
from provider_kit.testing import LoopbackServer, Reply

KEY = "sk-conformance-embed-0123456789"


@contextlib.contextmanager
def closing_ollama(server: LoopbackServer) -> Iterator[ollama.Client]:
    client = ollama.Client(host=server.base_url)
    try:
        yield client
    finally:
        client._client.close()
TEXTS = ["The cat sat on the mat.", "A dog barked.", "Stocks fell sharply on Tuesday."]


@pytest.mark.parametrize("dimensions", [None, 256])
def test_openai_sends_the_sdk_s_request_and_reads_the_same_vectors(dimensions):
    extra = {} if dimensions is None else {"dimensions": dimensions}
    with LoopbackServer("openai", api_key=KEY) as server:
        with openai.OpenAI(api_key=KEY, base_url=server.base_url, max_retries=0) as client:
            theirs = client.embeddings.create(input=TEXTS, model="text-embedding-3-small", **extra)
        sdk_request = server.last_request
        with OpenAIProvider(api_key=KEY, base_url=server.base_url) as provider:
            ours = provider.embed(TEXTS, **extra)
        our_request = server.last_request
    assert our_request.path == sdk_request.path == "/v1/embeddings"
    assert our_request.json() == sdk_request.json()
    assert list(our_request.json()) == list(sdk_request.json())  # the same key order
    assert sdk_request.json()["encoding_format"] == "base64"
    assert ours.tolist() == [item.embedding for item in theirs.data]
    assert ours.model == theirs.model and ours.usage.input_tokens == theirs.usage.prompt_tokens


def test_openai_reads_float_vectors_from_a_server_that_ignores_the_encoding():
    with LoopbackServer("openai", api_key=KEY) as server, OpenAIProvider(api_key=KEY, base_url=server.base_url) as p:
        reference = p.embed(TEXTS)
        floats = [{"object": "embedding", "index": i, "embedding": vector.tolist()}
                  for i, vector in enumerate(reference)]
        floats.reverse()  # items in any order: placed by index
        server.enqueue(Reply(200, json={"object": "list", "data": floats, "model": "m",
                                        "usage": {"prompt_tokens": 3, "total_tokens": 3}}))
        assert list(p.embed(TEXTS)) == list(reference)


def test_the_simulator_refuses_more_inputs_than_the_api_takes():
    with LoopbackServer("openai", api_key=KEY) as server:
        with openai.OpenAI(api_key=KEY, base_url=server.base_url, max_retries=0) as client:
            with pytest.raises(openai.BadRequestError, match="max number of inputs is 2048"):
                client.embeddings.create(input=["x"] * 2049, model="text-embedding-3-small")
            with pytest.raises(openai.BadRequestError, match="does not support specifying dimensions"):
                client.embeddings.create(input=["x"], model="text-embedding-ada-002", dimensions=8)
        # provider_kit splits the same list into requests the API takes.
        with OpenAIProvider(api_key=KEY, base_url=server.base_url) as provider:
            assert len(provider.embed(["x"] * 2049)) == 2049


@pytest.mark.parametrize("api_version", ["2024-10-21", "v1"])
def test_azure_sends_the_sdk_s_request_in_both_url_styles(api_version):
    with LoopbackServer("azure", api_key=KEY, models=["embed-deployment"]) as server:
        if api_version == "v1":
            client: openai.OpenAI = openai.OpenAI(api_key=KEY, base_url=server.base_url + "/openai/v1", max_retries=0)
        else:
            client = openai.AzureOpenAI(api_key=KEY, azure_endpoint=server.base_url, api_version=api_version,
                                        max_retries=0)
        with client:
            theirs = client.embeddings.create(input=TEXTS, model="embed-deployment")
        sdk_request = server.last_request
        with AzureOpenAIProvider(api_key=KEY, endpoint=server.base_url, api_version=api_version,
                                 embedding_model="embed-deployment") as provider:
            ours = provider.embed(TEXTS)
        our_request = server.last_request
    assert (our_request.path, our_request.query) == (sdk_request.path, sdk_request.query)
    assert our_request.json() == sdk_request.json()
    assert ours.tolist() == [item.embedding for item in theirs.data]


@pytest.mark.parametrize("dimensions", [None, 128])
def test_ollama_sends_the_sdk_s_request_and_reads_the_same_vectors(dimensions):
    with LoopbackServer("ollama") as server, closing_ollama(server) as client:
        theirs = client.embed(model="nomic-embed-text", input=TEXTS, dimensions=dimensions)
        sdk_request = server.last_request
        with OllamaProvider(base_url=server.base_url) as provider:
            ours = provider.embed(TEXTS, dimensions=dimensions)
        our_request = server.last_request
    assert our_request.path == sdk_request.path == "/api/embed"
    assert our_request.json() == sdk_request.json()
    assert ours.tolist() == [list(vector) for vector in theirs.embeddings]
    assert ours.usage.input_tokens == theirs.prompt_eval_count


def test_ollama_sends_keep_alive_as_the_sdk_does():
    with LoopbackServer("ollama") as server, closing_ollama(server) as client:
        client.embed(model="all-minilm", input=["x"], keep_alive="5m")
        sdk_body = server.last_request.json()
        with OllamaProvider(base_url=server.base_url, keep_alive="5m") as provider:
            provider.embed(["x"], model="all-minilm")
        assert server.last_request.json() == sdk_body


@pytest.mark.parametrize("preset", [p for p in PRESETS if not p.embeddings], ids=lambda p: p.name)
def test_a_preset_without_embeddings_refuses_before_sending(preset):
    with LoopbackServer(preset.name) as server:
        provider = PRESET_TYPES[preset.name](api_key=KEY, base_url=server.base_url, model="m")
        with provider, pytest.raises(UnsupportedFeatureError, match=preset.name):
            provider.embed("x")
    assert not server.requests


@pytest.mark.parametrize("preset", [p for p in PRESETS if p.embeddings], ids=lambda p: p.name)
def test_a_preset_with_embeddings_embeds_at_its_path(preset):
    with LoopbackServer(preset.name) as server:
        provider = PRESET_TYPES[preset.name](api_key=KEY, base_url=server.base_url,
                                             embedding_model=preset.embedding_model or "some-embed")
        with provider:
            result = provider.embed(["a", "b"], dimensions=32)
        body = server.last_request.json()
    assert len(result) == 2 and server.last_request.path.endswith("/embeddings")
    assert body.get(preset.dimensions_field) == 32 and body["encoding_format"] == "base64"


def test_a_preset_with_no_default_embedding_model_says_so_before_sending():
    preset = next(p for p in PRESETS if p.embeddings and not p.embedding_model)
    with LoopbackServer(preset.name) as server, \
            PRESET_TYPES[preset.name](api_key=KEY, base_url=server.base_url, model="m") as provider, \
            pytest.raises(ConfigError, match="no embedding model"):
        provider.embed("x")
    assert not server.requests
