"""FakeProvider: the scripted test double behaves as the Provider protocol says."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, Iterator, List

import pytest
from _kinds import CLASSES, KINDS

from provider_kit.errors import ConfigError, ProviderTimeoutError, RateLimitError
from provider_kit.testing import FakeCall, FakeProvider, LoopbackServer
from provider_kit.types import (
    Completion,
    HealthStatus,
    Message,
    Provider,
    StreamChunk,
    Usage,
)

SECRET = "sk-fake-abcdefghijklmnopqrstuvwxyz-1234"


@pytest.fixture
def fakes() -> Iterator[List[FakeProvider]]:
    """Fakes created by a test; closed (so released) afterwards even if the test fails."""
    created: List[FakeProvider] = []
    yield created
    for fake in created:
        fake.close()


def test_is_a_provider_without_inheritance() -> None:
    fake = FakeProvider()
    assert isinstance(fake, Provider)
    assert FakeProvider.__mro__ == (FakeProvider, object)
    assert fake.name == "fake"


def test_replies_are_consumed_in_order_then_echo() -> None:
    error = RateLimitError("slow down", provider="fake")
    done = Completion("ready-made", model="m", provider="other", finish_reason="length")
    fake = FakeProvider(replies=["first", error, done])
    first = fake.complete("hi there")
    assert first.text == "first"
    assert (first.provider, first.model, first.finish_reason) == ("fake", "fake-model", "stop")
    assert first.usage == Usage(2, 1, 3)
    assert first.latency_s >= 0
    with pytest.raises(RateLimitError) as info:
        fake.complete("again")
    assert info.value is error
    assert fake.complete("third") is done
    assert fake.complete("fourth").text == "echo: fourth"


def test_echo_uses_the_last_user_message_and_the_model_argument() -> None:
    fake = FakeProvider(model="base")
    messages = [
        Message("user", "question one"),
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": "question two"},
    ]
    reply = fake.complete(messages, model="override", system="be brief")
    assert reply.text == "echo: question two"
    assert reply.model == "override"
    assert reply.usage.input_tokens == 2 + 2 + 1 + 2


def test_calls_are_recorded_with_coerced_messages() -> None:
    fake = FakeProvider()
    fake.complete("hello", system="sys", max_tokens=5, temperature=0.1, stop=["x"], timeout=3)
    list(fake.stream("streamed"))
    fake.health_check(timeout=2)
    calls = fake.calls
    assert [call.method for call in calls] == ["complete", "stream", "health_check"]
    assert calls[0].messages == [Message("system", "sys"), Message("user", "hello")]
    assert calls[0].kwargs == {
        "model": None,
        "max_tokens": 5,
        "temperature": 0.1,
        "stop": ["x"],
        "timeout": 3,
        "system": "sys",
    }
    assert calls[0].prompt == "hello"
    assert calls[2].messages == [] and calls[2].kwargs == {"timeout": 2}
    assert isinstance(calls[0], FakeCall) and "complete" in repr(calls[0])
    calls.clear()
    assert len(fake.calls) == 3  # .calls is a copy


def test_bad_messages_are_config_errors() -> None:
    fake = FakeProvider()
    with pytest.raises(ConfigError):
        fake.complete([])
    with pytest.raises(ConfigError):
        fake.stream([{"role": "user"}])
    with pytest.raises(ConfigError):
        fake.complete(42)  # type: ignore[arg-type]


def test_stream_yields_the_same_reply_word_by_word() -> None:
    fake = FakeProvider(replies=["one two three"])
    chunks = list(fake.stream("x"))
    assert all(isinstance(chunk, StreamChunk) for chunk in chunks)
    assert [chunk.text for chunk in chunks] == ["one ", "two ", "three"]
    assert [chunk.finish_reason for chunk in chunks] == [None, None, "stop"]
    assert chunks[-1].usage == Usage(1, 3, 4)
    assert chunks[0].usage is None


def test_stream_of_an_empty_reply_still_finishes() -> None:
    chunks = list(FakeProvider(replies=[""]).stream("x"))
    assert [(c.text, c.finish_reason) for c in chunks] == [("", "stop")]


def test_stream_raises_scripted_errors_when_called() -> None:
    fake = FakeProvider(replies=[RateLimitError("no", provider="fake")])
    with pytest.raises(RateLimitError):
        fake.stream("x")


def test_concurrent_calls_get_their_own_echo() -> None:
    fake = FakeProvider()
    results: dict = {}

    def call(index: int) -> None:
        results[index] = fake.complete(f"request {index}").text

    threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: f"echo: request {i}" for i in range(16)}
    assert len(fake.calls) == 16


def test_latency_within_timeout_is_simulated() -> None:
    fake = FakeProvider(latency=0.05)
    started = time.monotonic()
    reply = fake.complete("x", timeout=5)
    assert time.monotonic() - started >= 0.05
    assert reply.latency_s >= 0.05
    assert fake.health_check(timeout=5).ok


def test_latency_beyond_timeout_times_out_at_the_timeout() -> None:
    fake = FakeProvider(latency=30)
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError) as info:
        fake.complete("x", timeout=0.05)
    assert time.monotonic() - started < 5
    assert info.value.provider == "fake"
    assert isinstance(info.value, TimeoutError)
    with pytest.raises(ProviderTimeoutError):
        fake.stream("x", timeout=0.05)
    status = fake.health_check(timeout=0.05)
    assert not status.ok and "timed out after 0.05 s" in (status.error or "")


def test_hang_ignores_the_timeout_until_released(fakes: List[FakeProvider]) -> None:
    fake = FakeProvider(hang=True)
    fakes.append(fake)
    finished = threading.Event()
    outcome: list = []

    def call() -> None:
        outcome.append(fake.complete("x", timeout=0.01).text)
        finished.set()

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    # The call's timeout was 0.01 s; it must still be blocked well after that.
    assert not finished.wait(0.3)
    fake.release()
    assert finished.wait(5)
    thread.join(5)
    assert outcome == ["echo: x"]
    started = time.monotonic()
    fake.complete("after release")
    assert time.monotonic() - started < 1


def test_close_releases_a_hang_and_marks_closed() -> None:
    fake = FakeProvider(hang=True)
    finished = threading.Event()
    thread = threading.Thread(target=lambda: (fake.health_check(timeout=0.01), finished.set()))
    thread.start()
    assert not finished.wait(0.2)
    with fake:
        pass
    assert fake.closed
    assert finished.wait(5)
    thread.join(5)


def test_hang_has_a_safety_cap() -> None:
    fake = FakeProvider(hang=True, hang_seconds=0.05)
    started = time.monotonic()
    assert fake.health_check(timeout=10).ok
    assert 0.05 <= time.monotonic() - started < 5


def test_health_check_states() -> None:
    assert FakeProvider().health_check().ok
    status = FakeProvider("down", healthy=False).health_check()
    assert isinstance(status, HealthStatus)
    assert (status.name, status.ok, status.error) == ("down", False, "unhealthy")
    status = FakeProvider(health_error="503 from upstream").health_check()
    assert (status.ok, status.error) == (False, "503 from upstream")
    with pytest.raises(RuntimeError, match="boom"):
        FakeProvider(health_raises=RuntimeError("boom")).health_check()


def test_validate_config() -> None:
    FakeProvider().validate_config()
    with pytest.raises(ConfigError, match="model is missing"):
        FakeProvider("bad", invalid="model is missing").validate_config()


def test_repr_masks_the_api_key() -> None:
    text = repr(FakeProvider("f", api_key=SECRET, latency=0.5))
    assert SECRET not in text
    assert "***1234" in text and "'f'" in text and "latency=0.5" in text


def test_from_config_validates_options() -> None:
    where = "config dict: [providers.f]"
    fake = FakeProvider.from_config(
        "f", {"replies": ["a"], "model": "m", "latency": 0, "healthy": False}, where=where
    )
    assert (fake.name, fake.model, fake.healthy) == ("f", "m", False)
    assert fake.complete("x").text == "a"
    pattern = r"\[providers\.f\]: unknown option 'modle'; did you mean 'model'\?"
    with pytest.raises(ConfigError, match=pattern):
        FakeProvider.from_config("f", {"modle": "m"}, where=where)
    with pytest.raises(ConfigError, match=r"\[providers\.f\]: latency must not be negative"):
        FakeProvider.from_config("f", {"latency": -1}, where=where)
    with pytest.raises(ConfigError) as info:
        FakeProvider.from_config("f", {"api_key": 12345678901234567}, where=where)
    assert "12345678901234567" not in str(info.value)


def test_add_replies_extends_the_script() -> None:
    fake = FakeProvider(replies=["a"])
    fake.add_replies("b", "c")
    assert [fake.complete("x").text for _ in range(4)] == ["a", "b", "c", "echo: x"]


def test_fake_provider_pickles_with_its_script_and_works_after():
    import pickle

    fake = FakeProvider("f", replies=["scripted"])
    copy_ = pickle.loads(pickle.dumps(fake))
    assert copy_.complete("x").text == "scripted"
    assert copy_.complete("y").text == "echo: y"
    assert fake.complete("z").text == "scripted"  # the original's script is its own


# -- the fake refuses what production refuses -----------------------------------------------------

BAD_ARGUMENTS = [
    ({"temperature": 5}, "temperature must be a number from 0 to 2, got 5"),
    ({"temperature": -0.1}, "temperature must be a number from 0 to 2"),
    ({"temperature": True}, "temperature must be a number from 0 to 2, got True"),
    ({"temperature": "0.5"}, "temperature must be a number from 0 to 2, got '0.5'"),
    ({"max_tokens": -3}, "max_tokens must be a positive integer, got -3"),
    ({"max_tokens": 0}, "max_tokens must be a positive integer, got 0"),
    ({"max_tokens": 2.5}, "max_tokens must be a positive integer, got 2.5"),
    ({"stop": [1]}, "stop must be a string or a list of non-empty strings, got [1]"),
    ({"stop": [""]}, "stop must be a string or a list of non-empty strings"),
    ({"stop": 7}, "stop must be a string or a list of non-empty strings, got 7"),
    ({"model": ""}, "model must be a non-empty string, got ''"),
    ({"model": 4}, "model must be a non-empty string, got 4"),
    ({"timeout": 0}, "timeout must be a positive number of seconds, got 0"),
    ({"timeout": -1}, "timeout must be a positive number of seconds, got -1"),
    ({"system": 3}, "system must be a string, got int"),
]


def _refusal(call: Callable[[], Any], name: str) -> str:
    """The message of the ConfigError ``call`` raises, with the provider's name generalised."""
    with pytest.raises(ConfigError) as info:
        call()
    return str(info.value).replace(name, "<provider>")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["complete", "stream"])
@pytest.mark.parametrize(("kwargs", "expected"), BAD_ARGUMENTS, ids=lambda v: repr(v) if isinstance(v, dict) else "")
def test_fake_and_real_providers_refuse_bad_arguments_alike(
    kind: str, method: str, kwargs: Dict[str, Any], expected: str
) -> None:
    with LoopbackServer(kind, api_key=SECRET) as server, CLASSES[kind](
        "real", base_url=server.base_url, api_key=SECRET, model="m", max_retries=0
    ) as real:
        fake = FakeProvider("double")
        from_real = _refusal(lambda: getattr(real, method)("hi", **kwargs), "real")
        from_fake = _refusal(lambda: getattr(fake, method)("hi", **kwargs), "double")
        assert expected in from_fake
        assert from_fake == from_real
        assert server.requests == []  # refused before anything was sent
        assert fake.calls == []  # and the fake does not record a call production never made


def test_fake_accepts_what_every_real_provider_accepts() -> None:
    fake = FakeProvider()
    reply = fake.complete("hi", temperature=0, max_tokens=1, stop="x", model="m", timeout=5)
    assert (reply.text, reply.model) == ("echo: hi", "m")
    assert list(fake.stream("hi", temperature=2.0, stop=("a", "b")))[-1].finish_reason == "stop"
    assert fake.calls[0].kwargs["stop"] == "x"  # recorded as passed


def test_fake_health_check_reports_a_bad_timeout_as_a_real_provider_does() -> None:
    status = FakeProvider("f").health_check(timeout=-1)
    assert not status.ok
    assert status.error == "misconfigured: f: argument timeout must be a positive number of seconds, got -1"
    invalid = FakeProvider("f", invalid="needs a key")
    assert invalid.health_check().error == "misconfigured: fake provider 'f': needs a key"
    with pytest.raises(ConfigError, match="needs a key"):
        invalid.complete("hi")
    assert [call.method for call in invalid.calls] == ["health_check"]
