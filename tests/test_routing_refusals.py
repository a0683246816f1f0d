"""Fallbacks past a provider that cannot take the call (a feature it lacks, refused before
anything is sent): the next candidate answers, and only when none can is the refusal raised."""

from __future__ import annotations

import contextlib
from typing import Iterator, List, Tuple

import pytest
from _kinds import CLASSES, SOME_KIND, featureless

from provider_kit import (
    ConfigError,
    ProviderRegistry,
    ServerError,
    UnsupportedFeatureError,
)
from provider_kit.testing import LoopbackServer

KEY = "sk-routing-refusals-0123456789"
PROMPT = "Name a river."


@contextlib.contextmanager
def two_providers() -> Iterator[Tuple[ProviderRegistry, List[LoopbackServer]]]:
    """'plain' cannot take sampling options or a schema (its type's refusing defaults);
    'able' is the built-in type, which takes both. Both talk to simulators of one wire."""
    with LoopbackServer(SOME_KIND, api_key=KEY) as plain_server, \
            LoopbackServer(SOME_KIND, api_key=KEY) as able_server:
        model = plain_server.models[0]
        plain = featureless(SOME_KIND)("plain", base_url=plain_server.base_url, api_key=KEY, model=model)
        able = CLASSES[SOME_KIND]("able", base_url=able_server.base_url, api_key=KEY, model=model)
        with ProviderRegistry([plain, able], default_provider="plain") as registry:
            yield registry, [plain_server, able_server]


def test_a_refusal_falls_back_to_a_provider_that_can_take_the_call() -> None:
    with two_providers() as (registry, (plain_server, able_server)):
        completion = registry.complete(PROMPT, fallbacks=["able"], top_p=0.5)
        assert completion.provider == "able"
        assert plain_server.requests == []  # refused before sending
        assert able_server.requests[-1].json()["top_p"] == 0.5
        assert registry.circuit("plain").failures == 0  # a refusal is not an outage


def test_a_stream_falls_back_past_a_refusal_too() -> None:
    with two_providers() as (registry, (plain_server, _)):
        chunks = list(registry.stream(PROMPT, fallbacks=["able"], top_p=0.5))
        assert {chunk.provider for chunk in chunks} == {"able"}
        assert "".join(chunk.text for chunk in chunks).endswith(PROMPT)
        assert plain_server.requests == []


def test_the_refusal_is_raised_when_no_candidate_can_take_the_call() -> None:
    with two_providers() as (registry, (plain_server, _)):
        with pytest.raises(UnsupportedFeatureError, match=r"plain.*top_p") as raised:
            registry.complete(PROMPT, provider="plain", top_p=0.5)
        assert isinstance(raised.value, ConfigError)  # as a direct call to the provider raises
        assert len(raised.value.errors) == 1 and plain_server.requests == []


def test_several_refusals_are_named_together() -> None:
    with two_providers() as (registry, _):
        plain_too = featureless(SOME_KIND)("plain2", base_url="http://127.0.0.1:9/v1", api_key=KEY,
                                           model="m")
        registry.register(plain_too)
        with pytest.raises(UnsupportedFeatureError, match=r"no candidate provider can take this call: .*plain.*plain2"):
            registry.complete(PROMPT, fallbacks=["plain2"], top_p=0.5)


def test_a_server_error_wins_over_an_earlier_refusal_in_the_final_error() -> None:
    with two_providers() as (registry, (_, able_server)):
        able_server.enqueue(able_server.error_reply(500), times=3)
        with pytest.raises(ServerError) as raised:
            registry.complete(PROMPT, fallbacks=["able"], top_p=0.5, max_retries=0)
        assert [type(error) for error in raised.value.errors] == [UnsupportedFeatureError, ServerError]


def test_bad_arguments_are_still_raised_at_once() -> None:
    with two_providers() as (registry, servers):
        with pytest.raises(ConfigError) as raised:
            registry.complete(PROMPT, fallbacks=["able"], top_p=7)
        assert not isinstance(raised.value, UnsupportedFeatureError)
        assert all(server.requests == [] for server in servers)
