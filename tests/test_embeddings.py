"""``embed()`` for every built-in type, against the simulators: vectors in input order, the
split of large inputs to each API's limits inside one deadline, the refusals before sending,
a type without embeddings, and the ``Embeddings`` value."""

from __future__ import annotations

import array
import contextlib
import pickle
import time
from typing import Any, Iterator, List, Type

import pytest
import requests
from _kinds import CLASSES, KINDS, PROTOCOL_HEADERS, server_key
from _support import KEY

from provider_kit import (
    AuthenticationError,
    ConfigError,
    Embeddings,
    InvalidRequestError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    UnsupportedFeatureError,
    Usage,
)
from provider_kit.providers._base import HTTPProvider
from provider_kit.providers._embed import batches, decode_vector, token_estimate
from provider_kit.testing import LoopbackServer, Reply
from provider_kit.testing.wires import WIRES

EMBED_KINDS = [kind for kind in KINDS if CLASSES[kind].EMBEDDINGS_PATH]
NO_EMBED_KINDS = [kind for kind in KINDS if not CLASSES[kind].EMBEDDINGS_PATH]


@contextlib.contextmanager
def embedding_server(kind: str, **options: Any) -> Iterator[LoopbackServer]:
    """The simulator of ``kind`` serving its type's default embedding model too (a deployment
    on a resource whose deployments are its models)."""
    options.setdefault("models", [*WIRES[kind].default_models, CLASSES[kind].EMBEDDING_MODEL])
    with LoopbackServer(kind, api_key=server_key(kind, KEY), **options) as server:
        yield server


def provider_of(kind: str, server: LoopbackServer, cls: Type[HTTPProvider] = HTTPProvider, **options: Any) -> Any:
    cls = CLASSES[kind] if cls is HTTPProvider else cls
    return cls(api_key=KEY, base_url=server.base_url, max_retries=0, **options)


def limited(kind: str, **limits: Any) -> Type[HTTPProvider]:
    """``kind``'s class with other per-request limits (``EMBED_MAX_INPUTS``...)."""
    return type(f"Limited{CLASSES[kind].__name__}", (CLASSES[kind],), limits)


def embed_requests(server: LoopbackServer) -> List[Any]:
    return [request for request in server.requests if request.method == "POST"]


def test_every_type_either_embeds_or_refuses():
    assert EMBED_KINDS and NO_EMBED_KINDS


@pytest.mark.parametrize("kind", EMBED_KINDS)
def test_embed_returns_one_vector_per_text_in_input_order(kind):
    texts = ["the cat sat", "a dog barked", "stocks fell", "the cat sat"]
    with embedding_server(kind) as server, provider_of(kind, server) as provider:
        result = provider.embed(texts)
        singles = [provider.embed(text)[0] for text in texts]
    assert isinstance(result, Embeddings) and len(result) == 4
    assert all(isinstance(vector, array.array) and vector.typecode == "f" for vector in result)
    assert list(result) == singles  # the same vectors, in the order of the texts
    assert result[0] == result[3] and result[0] != result[1]
    assert result.dimensions == len(result[0]) > 0
    assert abs(sum(x * x for x in result[0]) - 1.0) < 1e-4  # the simulator's unit vectors
    assert result.model and result.provider == provider.name
    assert result.usage.input_tokens and result.usage.input_tokens > 0 and result.usage.output_tokens is None
    assert result.latency_s > 0


@pytest.mark.parametrize("kind", EMBED_KINDS)
def test_dimensions_and_model_are_sent(kind):
    with embedding_server(kind) as server, provider_of(kind, server) as provider:
        result = provider.embed(["one", "two"], dimensions=64)
        body = server.last_request.json()
    assert result.dimensions == 64
    assert body["input"] == ["one", "two"]
    assert body.get("model", CLASSES[kind].EMBEDDING_MODEL) == CLASSES[kind].EMBEDDING_MODEL
    assert 64 in body.values()


@pytest.mark.parametrize("kind", EMBED_KINDS)
def test_the_embedding_model_option_and_the_call_s_model_choose_the_model(kind):
    with embedding_server(kind, models=["chosen-embed", "configured-embed"]) as server, \
            provider_of(kind, server, embedding_model="configured-embed") as provider:
        assert provider.embed("x").model.startswith("configured-embed")
        assert provider.embed("x", model="chosen-embed").model.startswith("chosen-embed")


@pytest.mark.parametrize("kind", EMBED_KINDS)
def test_a_list_over_the_per_request_count_is_split_and_reassembled_in_order(kind):
    count = CLASSES[kind].EMBED_MAX_INPUTS + 1  # the simulator refuses more than the API's limit
    texts = [f"text {n}" for n in range(count)]
    with embedding_server(kind) as server, provider_of(kind, server) as provider:
        whole = provider.embed(texts, dimensions=8)
        sizes = [len(request.json()["input"]) for request in embed_requests(server)]
        last = provider.embed(texts[-1], dimensions=8)[0]
    assert sizes == [count - 1, 1]
    assert len(whole) == count and whole[-1] == last
    assert whole.usage.input_tokens == 2 * count  # summed over the requests


@pytest.mark.parametrize("kind", EMBED_KINDS)
def test_a_smaller_limit_splits_into_more_requests_in_order(kind):
    texts = [f"sentence number {n}" for n in range(7)]
    with embedding_server(kind) as server, provider_of(kind, server, limited(kind, EMBED_MAX_INPUTS=3)) as provider:
        whole = provider.embed(texts)
        sent = [request.json()["input"] for request in embed_requests(server)]
        singles = [provider.embed(text)[0] for text in texts]
    assert sent == [texts[0:3], texts[3:6], texts[6:7]]
    assert list(whole) == singles


@pytest.mark.parametrize("kind", EMBED_KINDS)
def test_the_token_cap_splits_a_request(kind):
    texts = ["x" * 40, "y" * 40, "z" * 40]
    with embedding_server(kind) as server, provider_of(kind, server, limited(kind, EMBED_MAX_TOKENS=100)) as provider:
        provider.embed(texts)
    assert [len(request.json()["input"]) for request in embed_requests(server)] == [2, 1]


@pytest.mark.parametrize("kind", EMBED_KINDS)
def test_every_request_of_a_split_call_runs_inside_the_one_deadline(kind):
    # Each request takes 0.3 s, well inside the timeout; five of them do not fit in it.
    with embedding_server(kind, latency=0.3) as server, \
            provider_of(kind, server, limited(kind, EMBED_MAX_INPUTS=1)) as provider:
        started = time.monotonic()
        with pytest.raises(ProviderTimeoutError):
            provider.embed(["a", "b", "c", "d", "e"], timeout=1.0)
        elapsed = time.monotonic() - started
    assert elapsed < 1.6  # the deadline, not five times the latency
    assert len(embed_requests(server)) <= 4


BAD_TEXTS = [[], "", [""], ["ok", ""], [1], ["ok", None], b"bytes", {"a": "b"}, 42, None]


@pytest.mark.parametrize("kind", EMBED_KINDS)
@pytest.mark.parametrize("texts", BAD_TEXTS, ids=repr)
def test_bad_texts_are_refused_before_sending(kind, texts):
    with embedding_server(kind) as server, provider_of(kind, server) as provider, \
            pytest.raises(ConfigError, match="texts"):
        provider.embed(texts)
    assert not server.requests


@pytest.mark.parametrize("kind", EMBED_KINDS)
@pytest.mark.parametrize("dimensions", [0, -3, 1.5, "8", True])
def test_dimensions_that_are_not_a_positive_int_are_refused_before_sending(kind, dimensions):
    with embedding_server(kind) as server, provider_of(kind, server) as provider, \
            pytest.raises(ConfigError, match="dimensions"):
        provider.embed("text", dimensions=dimensions)
    assert not server.requests


@pytest.mark.parametrize("kind", EMBED_KINDS)
@pytest.mark.parametrize("timeout", [0, -1, "5", True])
def test_a_bad_timeout_is_refused_before_sending(kind, timeout):
    with embedding_server(kind) as server, provider_of(kind, server) as provider, \
            pytest.raises(ConfigError, match="timeout"):
        provider.embed("text", timeout=timeout)
    assert not server.requests


@pytest.mark.parametrize("kind", NO_EMBED_KINDS)
def test_a_type_without_embeddings_refuses_naming_it_before_sending(kind):
    with LoopbackServer(kind, api_key=KEY) as server, provider_of(kind, server) as provider, \
            pytest.raises(UnsupportedFeatureError, match=f"the {kind} provider type has no embeddings"):
        provider.embed(["hello"])
    assert not server.requests
    assert "embedding_model" not in CLASSES[kind].option_schema()


@pytest.mark.parametrize("kind", NO_EMBED_KINDS)
def test_the_simulator_of_a_type_without_embeddings_answers_404_as_the_api_does(kind):
    with LoopbackServer(kind) as server:
        answer = requests.post(server.base_url + "/embeddings", json={"input": ["x"], "model": "m"},
                               headers=PROTOCOL_HEADERS[kind], timeout=5)
    assert answer.status_code == 404


@pytest.mark.parametrize("kind", EMBED_KINDS)
def test_an_error_answer_is_raised_as_its_class(kind):
    with LoopbackServer(kind, api_key=server_key(kind, KEY)) as server, provider_of(kind, server) as provider:
        server.enqueue(server.error_reply(400, "model not served"))
        with pytest.raises(InvalidRequestError, match="model not served"):
            provider.embed("x", model="no-such-model")


@pytest.mark.parametrize("kind", [kind for kind in EMBED_KINDS if CLASSES[kind].REQUIRES_KEY])
def test_a_wrong_key_is_an_authentication_error_that_never_shows_the_key(kind):
    with embedding_server(kind) as server:
        wrong = "sk-wrong-key-0123456789abcdef"
        with CLASSES[kind](api_key=wrong, base_url=server.base_url, max_retries=0) as provider, \
                pytest.raises(AuthenticationError) as caught:
            provider.embed("x")
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)


@pytest.mark.parametrize("kind", EMBED_KINDS)
@pytest.mark.parametrize("body", [
    {"data": [], "embeddings": [], "model": "m"},  # fewer vectors than texts
    {"data": "nope", "embeddings": "nope"},
    {"data": [{"index": 0, "embedding": "@@not base64@@"}, {"index": 1, "embedding": "AAAA"}],
     "embeddings": [["a", "b"], [0.1]]},
])
def test_an_answer_of_the_wrong_shape_is_a_response_format_error(kind, body):
    with embedding_server(kind) as server, provider_of(kind, server) as provider:
        server.enqueue(Reply(200, json=body))
        with pytest.raises(ResponseFormatError):
            provider.embed(["one", "two"])


def test_decode_vector_reads_base64_float32_and_json_numbers():
    values = array.array("f", [0.5, -1.25, 3.0])
    import base64
    import sys

    raw = array.array("f", values)
    if sys.byteorder == "big":
        raw.byteswap()
    assert decode_vector(base64.b64encode(raw.tobytes()).decode()) == values
    assert decode_vector([0.5, -1.25, 3]) == values
    for bad in ("AAA", "!!!!", {"a": 1}, None, ["x"]):
        with pytest.raises(TypeError):
            decode_vector(bad)


def test_batches_respect_the_count_and_the_token_estimate_and_keep_order():
    texts = ["aaaa", "bb", "cccccc", "d", "é" * 3]
    assert batches(texts, 2, None) == [(0, 2), (2, 4), (4, 5)]
    assert batches(texts, 10, 7) == [(0, 2), (2, 4), (4, 5)]
    assert batches(["x" * 50, "y"], 10, 10) == [(0, 1), (1, 2)]  # an oversized text goes alone
    assert token_estimate("é") == 2  # UTF-8 bytes: never fewer than the tokens


def test_the_embeddings_value_is_a_sequence_with_a_short_repr_and_pickles():
    vectors = [array.array("f", [0.1] * 1536) for _ in range(3)]
    value = Embeddings(vectors, model="m", usage=Usage(5, None, 5), provider="p", latency_s=0.25)
    assert len(value) == 3 and value[1] == vectors[1] and list(value) == vectors and value[:2] == vectors[:2]
    assert value.dimensions == 1536 and Embeddings([]).dimensions == 0
    text = repr(value)
    assert "3 vectors of 1536 dimensions" in text and "0.1" not in text and len(text) < 200
    assert pickle.loads(pickle.dumps(value)) == value
    assert value.tolist()[0] == vectors[0].tolist()
    with pytest.raises(AttributeError):
        value.model = "other"  # type: ignore[misc]


@pytest.mark.parametrize("kind", EMBED_KINDS)
def test_embed_waits_on_the_provider_s_rate_limiter_like_a_chat_call(kind: str) -> None:
    with embedding_server(kind) as server:
        provider = provider_of(kind, server, rpm=1)  # one request a minute
        try:
            provider.embed(["one"])
            started = time.monotonic()
            with pytest.raises(RateLimitError) as caught:
                provider.embed(["two"], timeout=2)  # the wait (~60 s) cannot fit: refused at once
            assert time.monotonic() - started < 1.5
            assert caught.value.retry_after > 50
            with pytest.raises(RateLimitError):
                provider.complete("three", timeout=2)  # one limiter for both kinds of call
            assert len(embed_requests(server)) == 1
        finally:
            provider.close()


@pytest.mark.parametrize("kind", EMBED_KINDS)
def test_embeddings_come_back_from_the_response_cache_request_by_request(kind: str, tmp_path: Any) -> None:
    cache_file = tmp_path / "responses.sqlite3"
    with embedding_server(kind) as server:
        provider = provider_of(kind, server, limited(kind, EMBED_MAX_INPUTS=2), response_cache=str(cache_file))
        try:
            first = provider.embed(["a", "b", "c"])  # two requests: [a, b] and [c]
            assert len(embed_requests(server)) == 2 and first.cached is False
            again = provider.embed(["a", "b", "c"])
            assert len(embed_requests(server)) == 2  # nothing sent
            assert again.cached is True and again.tolist() == first.tolist()
            assert again.usage == first.usage
            partly = provider.embed(["a", "b", "d"])  # [a, b] stored, [d] not: one request
            assert len(embed_requests(server)) == 3 and partly.cached is False
            assert partly.tolist()[:2] == first.tolist()[:2]
            provider.embed(["a", "b", "c"], cache=False)  # skips the cache: both sent again
            assert len(embed_requests(server)) == 5
            with pytest.raises(ConfigError, match="cache"):
                provider.embed(["a"], cache="no")  # type: ignore[arg-type]
        finally:
            provider.close()
    assert KEY.encode() not in cache_file.read_bytes()


@pytest.mark.parametrize("kind", EMBED_KINDS)
def test_an_embed_call_reaches_on_call_hooks_and_the_call_log(kind: str, tmp_path: Any) -> None:
    from provider_kit import CallLog

    records: List[Any] = []
    log = CallLog(tmp_path / "calls.sqlite3")
    with embedding_server(kind) as server:
        provider = provider_of(kind, server, on_call=[records.append, log])
        try:
            result = provider.embed(["alpha", "beta"])
        finally:
            provider.close()
    [record] = records
    assert record.method == "embed" and record.ok and record.text is None and not record.cached
    assert record.usage == result.usage and record.model == result.model
    assert record.messages == ({"role": "user", "content": [{"type": "text", "text": "alpha"},
                                                            {"type": "text", "text": "beta"}]},)
    [entry] = log.entries()
    assert entry["method"] == "embed" and "alpha" in json_text(entry)


def json_text(value: Any) -> str:
    import json

    return json.dumps(value, default=str)
