"""``registry.embed``: fallbacks and circuit breakers as for ``complete``; a provider without
embeddings refuses and the next is tried; ``FakeProvider.embed``."""

from __future__ import annotations

import pytest
from _kinds import CLASSES, KINDS, server_key
from _support import KEY

from provider_kit import (
    ConfigError,
    Embeddings,
    ProviderRegistry,
    ServerError,
    UnsupportedFeatureError,
)
from provider_kit.testing import FakeProvider, LoopbackServer

EMBED_KIND = next(kind for kind in KINDS if CLASSES[kind].EMBEDDINGS_PATH and CLASSES[kind].DEFAULT_BASE_URL)
NO_EMBED_KIND = next(kind for kind in KINDS if not CLASSES[kind].EMBEDDINGS_PATH)


class NoEmbed:
    """A plain provider class with no ``embed``: embeddings are optional in the protocol."""

    name = "plain"

    def complete(self, *args, **kwargs):
        raise AssertionError("not called")

    def stream(self, *args, **kwargs):
        raise AssertionError("not called")

    def health_check(self, timeout=None):
        raise AssertionError("not called")

    def validate_config(self):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_a_type_without_embeddings_falls_back_to_one_with_them():
    with LoopbackServer(NO_EMBED_KIND, api_key=KEY) as refusing, \
            LoopbackServer(EMBED_KIND, api_key=server_key(EMBED_KIND, KEY)) as embedding:
        registry = ProviderRegistry([
            CLASSES[NO_EMBED_KIND]("first", api_key=KEY, base_url=refusing.base_url),
            CLASSES[EMBED_KIND]("second", api_key=KEY, base_url=embedding.base_url),
        ])
        with registry:
            result = registry.embed(["a", "b"], provider="first", fallbacks=["second"])
    assert isinstance(result, Embeddings) and len(result) == 2 and result.provider == "second"
    assert not refusing.requests


def test_when_no_candidate_has_embeddings_the_refusal_is_raised():
    with ProviderRegistry([FakeProvider("a", embeddings=False), NoEmbed()]) as registry, \
            pytest.raises(UnsupportedFeatureError) as caught:
        registry.embed("x", provider="a", fallbacks=["plain"])
    assert "'a'" in str(caught.value) and "'plain'" in str(caught.value)
    assert len(caught.value.errors) == 2


def test_a_provider_error_falls_back_and_is_counted_by_the_breaker():
    failing = FakeProvider("failing", replies=[ServerError("boom", provider="failing", status_code=500)])
    with ProviderRegistry([failing, FakeProvider("backup")], breaker_threshold=1) as registry:
        result = registry.embed(["x"], provider="failing", fallbacks=["backup"])
        assert result.provider == "backup"
        assert registry.circuit("failing").state == "open"
        # An open circuit is skipped: the next call goes to the backup without asking it.
        assert registry.embed("y", provider="failing", fallbacks=["backup"]).provider == "backup"
    assert [call.method for call in failing.calls] == ["embed"]


def test_bad_arguments_are_raised_at_once_not_fallen_back():
    backup = FakeProvider("backup")
    with ProviderRegistry([FakeProvider("a"), backup]) as registry, pytest.raises(ConfigError):
        registry.embed([], provider="a", fallbacks=["backup"])
    assert not backup.calls


def test_the_default_provider_embeds_and_kwargs_are_passed():
    fake = FakeProvider("only")
    with ProviderRegistry([fake]) as registry:
        result = registry.embed(["one two", "three"], dimensions=4, model="tiny")
    assert result.dimensions == 4 and result.model == "tiny" and result.usage.input_tokens == 3
    assert fake.calls[-1].kwargs == {"model": "tiny", "dimensions": 4, "texts": ["one two", "three"]}


def test_the_fake_embeds_deterministically_and_checks_arguments_as_a_real_provider():
    fake = FakeProvider("f")
    first, again = fake.embed(["hello", "world"]), fake.embed("hello")
    assert first[0] == again[0] and first[0] != first[1] and first.dimensions == 16
    for bad in ([], [""], [3], "x"):
        with pytest.raises(ConfigError):
            fake.embed(bad, dimensions=0 if bad == "x" else None)
    assert len(fake.calls) == 2  # refused calls are not recorded
    assert FakeProvider.from_config("g", {"embeddings": False}, where="test").embeddings is False
