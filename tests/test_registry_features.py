"""Calls through the registry: map, fallbacks, circuit breakers, get_registry, pickling."""

from __future__ import annotations

import datetime
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
from _kinds import CLASSES, SOME_KIND
from _support import in_thread

import provider_kit.providers
from provider_kit import CircuitState
from provider_kit import _shared_registry as shared_module
from provider_kit._breaker import CircuitBreaker
from provider_kit.config import load_config
from provider_kit.errors import (
    AuthenticationError,
    ConfigError,
    InvalidRequestError,
    NoProvidersError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
    UnknownProviderError,
)
from provider_kit.registry import ProviderRegistry, get_registry, reset_registry
from provider_kit.testing import FakeProvider
from provider_kit.types import Completion, HealthReport, HealthStatus

KEY = "sk-features-0123456789abcdef"
WAIT = 10.0  # hang detection only


class Clock:
    """A monotonic clock that tests move by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


class ByPrompt(FakeProvider):
    """Raises ``errors[prompt]`` for the prompts listed there, echoes the others."""

    def __init__(self, name: str, errors: Optional[Dict[str, BaseException]] = None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.errors = errors or {}

    def complete(self, prompt_or_messages: Any, **kwargs: Any) -> Completion:
        if isinstance(prompt_or_messages, str) and prompt_or_messages in self.errors:
            self._record("complete", [], kwargs)
            raise self.errors[prompt_or_messages]
        return super().complete(prompt_or_messages, **kwargs)


class Gated(FakeProvider):
    """Counts the calls inside ``complete`` (and the peak), each held until ``gate`` is set."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.gate = threading.Event()
        self.active = 0
        self.peak = 0
        self._cond = threading.Condition()

    def complete(self, prompt_or_messages: Any, **kwargs: Any) -> Completion:
        with self._cond:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self._cond.notify_all()
        try:
            if not self.gate.wait(WAIT):
                raise RuntimeError("gate never opened")
            return super().complete(prompt_or_messages, **kwargs)
        finally:
            with self._cond:
                self.active -= 1

    def wait_active(self, count: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.active >= count, timeout)




def server_error(name: str) -> ServerError:
    return ServerError(f"{name}: upstream failure (HTTP 503)", provider=name, status_code=503)


# --------------------------------------------------------------------------- map


class Staggered(FakeProvider):
    """Earlier prompts take longer, so calls finish out of input order; records finish order."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.finished: List[str] = []

    def complete(self, prompt_or_messages: Any, **kwargs: Any) -> Completion:
        index = int(str(prompt_or_messages)[1:])
        time.sleep(0.003 * (12 - index))  # simulated work, not synchronisation
        result = super().complete(prompt_or_messages, **kwargs)
        with self._lock:
            self.finished.append(prompt_or_messages)
        return result


def test_map_returns_results_in_input_order(make_fake: Callable[..., Any]) -> None:
    fake = make_fake("s", Staggered)
    registry = ProviderRegistry([fake])
    prompts = [f"p{i}" for i in range(12)]
    results = registry.map(prompts, progress=False, return_exceptions=False)
    assert [result.text for result in results] == [f"echo: {p}" for p in prompts]
    assert all(isinstance(result, Completion) and result.provider == "s" for result in results)
    assert fake.finished != prompts  # they did finish out of order


def test_map_puts_each_failure_in_its_place(make_fake: Callable[..., Any]) -> None:
    bad = InvalidRequestError("s: prompt too long", provider="s", status_code=400)
    registry = ProviderRegistry([make_fake("s", ByPrompt, errors={"bad": bad})])
    results = registry.map(["one", "bad", [{"role": "user"}], "two"], progress=False)
    assert results[0].text == "echo: one" and results[3].text == "echo: two"  # type: ignore[union-attr]
    assert results[1] is bad
    assert isinstance(results[2], ConfigError) and "content" in str(results[2])


class HoldsSecondPrompt(ByPrompt):
    """``ByPrompt`` whose call for "p1" waits for ``release``: the one worker stays busy there
    while ``map`` handles the first failure, however slowly the machine runs."""

    release = threading.Event()

    def complete(self, prompt_or_messages: Any, **kwargs: Any) -> Completion:
        if prompt_or_messages == "p1":
            self.release.wait(WAIT)
        return super().complete(prompt_or_messages, **kwargs)


def test_map_can_raise_the_first_failure_and_cancel_the_rest(make_fake: Callable[..., Any]) -> None:
    fake = make_fake("s", HoldsSecondPrompt, errors={"p0": server_error("s")})
    fake.release = threading.Event()
    registry = ProviderRegistry([fake], breaker_threshold=0)
    earlier = set(threading.enumerate())
    try:
        with pytest.raises(ServerError, match="upstream failure"):
            registry.map([f"p{i}" for i in range(20)], max_workers=1, progress=False, return_exceptions=False)
    finally:
        fake.release.set()
    for thread in set(threading.enumerate()) - earlier:  # the worker finishes what it was given
        if thread.name.startswith("provider_kit-map"):
            thread.join(WAIT)
    # The failure, and at most the call the worker had already taken; p2..p19 were cancelled.
    assert 1 <= len(fake.calls) <= 2


def test_map_accepts_message_lists_and_forwards_keywords(make_fake: Callable[..., Any]) -> None:
    fake = make_fake("s")
    registry = ProviderRegistry([fake, make_fake("other")], default_provider="other")
    results = registry.map(
        ["first", [{"role": "user", "content": "second"}]],
        provider="s",
        progress=False,
        model="m-1",
        max_tokens=7,
        system="be brief",
    )
    assert [r.text for r in results] == ["echo: first", "echo: second"]  # type: ignore[union-attr]
    for call in fake.calls:
        kwargs = call.kwargs
        assert (kwargs["model"], kwargs["max_tokens"], kwargs["system"]) == ("m-1", 7, "be brief")


def test_map_uses_the_default_provider(make_fake: Callable[..., Any]) -> None:
    registry = ProviderRegistry([make_fake("a"), make_fake("b")], default_provider="b")
    assert [r.provider for r in registry.map(["x", "y"], progress=False)] == ["b", "b"]  # type: ignore[union-attr]


def test_map_refuses_arguments_before_any_call(make_fake: Callable[..., Any]) -> None:
    fake = make_fake("s")
    registry = ProviderRegistry([fake])
    with pytest.raises(ConfigError, match="list of prompts, not a str"):
        registry.map("one prompt", progress=False)
    with pytest.raises(ConfigError, match=r"prompts\[0\] is a single message"):
        registry.map([{"role": "user", "content": "hi"}], progress=False)  # type: ignore[list-item]
    for workers in (0, -1, True, 2.5):
        with pytest.raises(ConfigError, match="max_workers"):
            registry.map(["x"], max_workers=workers, progress=False)  # type: ignore[arg-type]
    with pytest.raises(UnknownProviderError, match="did you mean 's'"):
        registry.map(["x"], provider="ss", progress=False)
    with pytest.raises(UnknownProviderError):
        registry.map(["x"], fallbacks=["nope"], progress=False)
    assert fake.calls == []
    assert registry.map([], progress=True) == []


def test_map_bounds_calls_per_provider_across_concurrent_maps(make_fake: Callable[..., Any]) -> None:
    gated = make_fake("g", Gated)
    registry = ProviderRegistry([gated], batch_concurrency=3)
    try:
        def batch(n: int) -> Callable[[], Any]:
            return lambda: registry.map([f"{n}-{i}" for i in range(6)], max_workers=6, progress=False)

        joins = [in_thread(batch(n)) for n in range(2)]
        assert gated.wait_active(3, WAIT)
        # Twelve workers are waiting; none may get past the bound while the gate is shut.
        assert not gated.wait_active(4, 0.3)
    finally:
        gated.gate.set()
    results = [result for join in joins for result in join()]
    assert len(results) == 12 and all(isinstance(result, Completion) for result in results)
    assert gated.peak == 3
    assert registry.batch_concurrency == 3


def test_the_bound_is_per_provider_and_only_for_map(make_fake: Callable[..., Any]) -> None:
    one, two = make_fake("one", Gated), make_fake("two", Gated)
    registry = ProviderRegistry([one, two], batch_concurrency=2)
    try:
        join_one = in_thread(lambda: registry.map(["a", "b", "c", "d"], provider="one", progress=False))
        join_two = in_thread(lambda: registry.map(["a", "b", "c"], provider="two", progress=False))
        assert one.wait_active(2, WAIT) and two.wait_active(2, WAIT)  # not one limit for both
        # A plain complete() is not a batch: it does not queue behind map's slots.
        join_direct = in_thread(lambda: registry.complete("direct", provider="one"))
        assert one.wait_active(3, WAIT)
    finally:
        one.gate.set()
        two.gate.set()
    assert len(join_one()) == 4 and len(join_two()) == 3
    assert join_direct().text == "echo: direct"
    assert two.peak == 2


# --------------------------------------------------------------------------- fallbacks


class Logged(ByPrompt):
    """Appends its name to a shared list on every call."""

    def __init__(self, name: str, log: List[str], **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        self.log = log

    def complete(self, prompt_or_messages: Any, **kwargs: Any) -> Completion:
        self.log.append(self.name)
        return super().complete(prompt_or_messages, **kwargs)


def test_fallbacks_are_tried_in_order_until_one_answers(make_fake: Callable[..., Any]) -> None:
    log: List[str] = []
    registry = ProviderRegistry(
        [
            make_fake("a", Logged, log=log, replies=[server_error("a")]),
            make_fake("b", Logged, log=log, replies=[AuthenticationError("b: bad key", provider="b")]),
            make_fake("c", Logged, log=log),
            make_fake("d", Logged, log=log),
        ]
    )
    completion = registry.complete("hi", provider="a", fallbacks=["b", "c", "d"], max_tokens=5)
    assert completion.provider == "c" and completion.text == "echo: hi"
    assert log == ["a", "b", "c"]
    assert registry["c"].calls[0].kwargs["max_tokens"] == 5  # type: ignore[attr-defined]


def test_healthy_means_every_other_provider_in_name_order(make_fake: Callable[..., Any]) -> None:
    log: List[str] = []
    failing = {"hi": server_error("x")}
    registry = ProviderRegistry(
        [make_fake(name, Logged, log=log, errors=failing) for name in ("d", "c", "b")]
        + [make_fake("a", Logged, log=log)]
        + [make_fake("e", Logged, log=log)],
        breaker_threshold=0,
    )
    assert registry.complete("hi", provider="c", fallbacks="healthy").provider == "a"
    assert log == ["c", "a"]
    log.clear()
    registry.register(make_fake("a", Logged, log=log, errors=failing), replace=True)
    assert registry.complete("hi", provider="c", fallbacks="healthy").provider == "e"
    assert log == ["c", "a", "b", "d", "e"]


def test_invalid_request_falls_back_like_any_provider_error(make_fake: Callable[..., Any]) -> None:
    # A prompt too long for one server's context (400), a model a proxy does not serve (404):
    # another provider may take it, so the chain goes on, and the final error lists them all.
    log: List[str] = []
    too_long = InvalidRequestError("a: context too long", provider="a", status_code=400)
    no_model = InvalidRequestError("b: model not found", provider="b", status_code=404)
    registry = ProviderRegistry(
        [
            make_fake("z", Logged, log=log, replies=[server_error("z")]),
            make_fake("a", Logged, log=log, replies=[too_long]),
            make_fake("b", Logged, log=log, replies=[no_model]),
            make_fake("c", Logged, log=log),
        ]
    )
    completion = registry.complete("hi", provider="z", fallbacks=["a", "b", "c"])
    assert completion.provider == "c" and log == ["z", "a", "b", "c"]
    # A 400 is an answer: it does not count towards the circuit.
    assert registry.circuit("a").failures == 0 and registry.circuit("b").failures == 0

    log.clear()
    registry["a"].add_replies(too_long)  # type: ignore[attr-defined]
    registry["c"].add_replies(no_model)  # type: ignore[attr-defined]
    with pytest.raises(InvalidRequestError) as info:
        registry.complete("hi", provider="a", fallbacks=["c"])
    assert info.value is no_model and log == ["a", "c"]
    assert info.value.errors == [too_long, no_model]  # type: ignore[attr-defined]


def test_when_all_fail_the_last_error_carries_every_error(make_fake: Callable[..., Any]) -> None:
    first = server_error("a")
    second = ProviderTimeoutError("b: no answer within 1.0 s", provider="b")
    third = RateLimitError("c: slow down", provider="c")
    registry = ProviderRegistry(
        [make_fake("a", replies=[first]), make_fake("b", replies=[second]), make_fake("c", replies=[third])]
    )
    with pytest.raises(RateLimitError) as info:
        registry.complete("hi", provider="a", fallbacks=["b", "c"])
    assert info.value is third
    assert info.value.errors == [first, second, third]  # type: ignore[attr-defined]
    # A single provider's failure carries the same attribute.
    with pytest.raises(ProviderError) as single:
        ProviderRegistry([make_fake("x", replies=[second])]).complete("hi")
    assert single.value.errors == [single.value]  # type: ignore[attr-defined]


def test_names_are_checked_before_any_call(make_fake: Callable[..., Any]) -> None:
    a = make_fake("a")
    registry = ProviderRegistry([a, make_fake("b")])
    with pytest.raises(UnknownProviderError, match="no provider named 'bb'"):
        registry.complete("hi", provider="a", fallbacks=["b", "bb"])
    with pytest.raises(UnknownProviderError):
        registry.complete("hi", provider="nope", fallbacks=["a"])
    with pytest.raises(ConfigError, match=r"did you mean \['b'\]"):
        registry.complete("hi", provider="a", fallbacks="b")
    assert a.calls == []


def test_argument_errors_are_not_fallen_back(make_fake: Callable[..., Any]) -> None:
    a, b = make_fake("a"), make_fake("b")
    registry = ProviderRegistry([a, b])
    with pytest.raises(ConfigError):
        registry.complete(42, provider="a", fallbacks=["b"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        registry.complete("hi", provider="a", fallbacks=["b"], temprature=0.5)
    assert a.calls == [] and b.calls == []
    assert registry.circuit("a").state == "closed" and registry.circuit("a").failures == 0


def test_the_completion_names_the_provider_that_answered(make_fake: Callable[..., Any]) -> None:
    anonymous = Completion("from a third party", provider="")  # a provider that does not say
    registry = ProviderRegistry([make_fake("third", replies=[anonymous])])
    completion = registry.complete("hi")
    assert completion.provider == "third" and completion.text == "from a third party"


# --------------------------------------------------------------------------- circuit breaker


def test_the_circuit_opens_after_n_counted_failures_in_a_row(
    make_fake: Callable[..., Any], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="provider_kit")
    errors = [
        ProviderConnectionError("a: connection refused", provider="a"),
        ProviderTimeoutError("a: no answer within 5.0 s", provider="a"),
        server_error("a"),
    ]
    registry = ProviderRegistry([make_fake("a", replies=errors)], breaker_cooldown=30, clock=clock)
    for count, error in enumerate(errors[:2], 1):
        with pytest.raises(type(error)):
            registry.complete("hi")
        state = registry.circuit("a")
        assert (state.state, state.failures, state.open_until) == ("closed", count, None)
    before = datetime.datetime.now(datetime.timezone.utc)
    with pytest.raises(ServerError):
        registry.complete("hi")
    state = registry.circuit("a")
    assert state.state == "open" and state.is_open and state.failures == 3
    assert state.last_error == "ServerError: a: upstream failure (HTTP 503)"
    assert state.open_until is not None
    assert before + datetime.timedelta(seconds=29) <= state.open_until
    assert state.open_until <= before + datetime.timedelta(seconds=32)
    assert "open until" in str(state) and "3 failures in a row" in str(state)
    opened = [r.getMessage() for r in caplog.records if "opened" in r.getMessage()]
    assert len(opened) == 1 and "'a'" in opened[0] and "3 failures" in opened[0]
    with pytest.raises(UnknownProviderError):
        registry.circuit("nope")


def test_an_answer_from_the_server_ends_the_streak(make_fake: Callable[..., Any]) -> None:
    replies: List[Any] = [server_error("a"), server_error("a"), RateLimitError("a: slow", provider="a")]
    registry = ProviderRegistry([make_fake("a", replies=replies)])
    for _ in replies:
        with pytest.raises(ProviderError):
            registry.complete("hi")
    assert registry.circuit("a").failures == 0 and registry.circuit("a").last_error is None


def open_circuit(registry: ProviderRegistry, name: str, times: int = 3) -> None:
    fake = registry[name]
    fake.add_replies(*[server_error(name) for _ in range(times)])  # type: ignore[attr-defined]
    for _ in range(times):
        with pytest.raises(ServerError):
            registry.complete("trip", provider=name)
    assert registry.circuit(name).state == "open"


def test_an_open_provider_is_skipped_by_fallbacks(make_fake: Callable[..., Any], clock: Clock) -> None:
    a, b = make_fake("a"), make_fake("b")
    registry = ProviderRegistry([a, b], clock=clock)
    open_circuit(registry, "a")
    calls = len(a.calls)
    assert registry.complete("hi", provider="a", fallbacks=["b"]).provider == "b"
    assert registry.complete("hi", provider="a", fallbacks="healthy").provider == "b"
    assert len(a.calls) == calls


def test_when_every_circuit_is_open_the_call_fails_at_once(
    make_fake: Callable[..., Any], clock: Clock
) -> None:
    a, b = make_fake("a"), make_fake("b")
    registry = ProviderRegistry([a, b], clock=clock)
    open_circuit(registry, "a")
    open_circuit(registry, "b")
    calls = len(a.calls) + len(b.calls)
    with pytest.raises(ProviderConnectionError) as info:
        registry.complete("hi", provider="a", fallbacks=["b"])
    error = info.value
    assert isinstance(error, ConnectionError) and error.provider == "a" and error.errors == []  # type: ignore[attr-defined]
    message = str(error)
    assert "no call made" in message and "a: open until" in message and "b: open until" in message
    assert len(a.calls) + len(b.calls) == calls


def test_after_the_cooldown_a_trial_reopens_or_closes(make_fake: Callable[..., Any], clock: Clock) -> None:
    a = make_fake("a")
    registry = ProviderRegistry([a], breaker_threshold=2, breaker_cooldown=10, clock=clock)
    open_circuit(registry, "a", times=2)
    clock.advance(9.9)
    assert registry.circuit("a").state == "open"
    clock.advance(0.1)
    assert registry.circuit("a").state == "half_open"
    a.add_replies(server_error("a"))
    with pytest.raises(ServerError):  # the trial was sent, and failed
        registry.complete("trial")
    state = registry.circuit("a")
    assert state.state == "open" and state.failures == 3  # one failure re-opens it
    clock.advance(9.9)
    with pytest.raises(ProviderConnectionError, match="no call made"):
        registry.complete("still open")
    clock.advance(0.1)
    assert registry.complete("trial 2").text == "echo: trial 2"
    assert registry.circuit("a") == CircuitState("a", "closed", 0, None, None)


def test_a_half_open_circuit_lets_one_trial_through_at_a_time(
    make_fake: Callable[..., Any], clock: Clock
) -> None:
    gated = make_fake("g", Gated)
    gated.gate.set()
    registry = ProviderRegistry([gated], breaker_threshold=1, clock=clock)
    open_circuit(registry, "g", times=1)
    clock.advance(30)
    gated.gate.clear()
    try:
        join_trial = in_thread(lambda: registry.complete("trial"))
        assert gated.wait_active(1, WAIT)
        with pytest.raises(ProviderConnectionError, match="no call made"):
            registry.complete("second")
    finally:
        gated.gate.set()
    assert join_trial().text == "echo: trial"
    assert registry.circuit("g").state == "closed"
    assert [call.prompt for call in gated.calls][-1] == "trial"


def test_a_health_check_shows_the_circuit_but_never_closes_it(
    make_fake: Callable[..., Any], clock: Clock
) -> None:
    a = make_fake("a", health_error="unreachable: connection refused")
    registry = ProviderRegistry([a, make_fake("b")], clock=clock)
    open_circuit(registry, "a")
    report = registry.health_check_all(timeout=2)
    circuit = report["a"].circuit
    assert circuit is not None and circuit["state"] == "open" and circuit["failures"] == 3
    assert circuit["last_error"] == "ServerError: a: upstream failure (HTTP 503)"
    now = datetime.datetime.now(datetime.timezone.utc)
    assert datetime.datetime.fromisoformat(circuit["open_until"]) > now
    assert report["b"].circuit == {"state": "closed", "failures": 0, "open_until": None, "last_error": None}
    assert report.to_dict()["a"]["circuit"] == circuit
    header, row_a, row_b = str(report).splitlines()
    assert header.split() == ["provider", "status", "latency", "reason", "circuit"]
    assert "open until" in row_a and row_b.endswith("closed")
    assert "[circuit open until" in str(report["a"])
    html = report._repr_html_()
    assert '<th style="text-align:left">circuit</th>' in html and "open until" in html
    assert registry.circuit("a").state == "open"  # a failing check leaves it open

    # Behind a proxy the health endpoint answers while the model fails every call: a passing
    # check proves nothing about the model, so the circuit stays open until a call answers.
    a.healthy = True
    report = registry.health_check_all(timeout=2)
    assert report["a"].ok and report["a"].circuit["state"] == "open"  # type: ignore[index]
    assert registry.circuit("a").state == "open"
    with pytest.raises(ProviderConnectionError, match="no call made"):
        registry.complete("still skipped", provider="a")
    clock.advance(30)  # the cooldown is over: a trial call that answers closes it
    assert registry.complete("back", provider="a").provider == "a"
    assert registry.circuit("a").state == "closed"


def test_map_stops_calling_a_dead_provider_once_its_circuit_opens(make_fake: Callable[..., Any]) -> None:
    # The cooldown (30 s) ends after every prompt's timeout (1 s): sending is impossible, so the
    # rest fail at once, unsent, instead of each waiting out its timeout.
    dead = make_fake("dead", replies=[ProviderConnectionError("dead: refused", provider="dead")] * 20)
    registry = ProviderRegistry([dead], breaker_threshold=3)
    started = time.monotonic()
    results = registry.map([f"p{i}" for i in range(10)], max_workers=1, progress=False, timeout=1)
    assert time.monotonic() - started < 1  # nobody waited for a circuit that cannot close in time
    assert len(dead.calls) == 3
    assert all(isinstance(result, ProviderConnectionError) for result in results)
    assert all("no call made" in str(result) for result in results[3:])
    assert "stays open past this prompt's timeout of 1 s" in str(results[3])


def test_threshold_zero_never_opens(make_fake: Callable[..., Any]) -> None:
    fake = make_fake("a", replies=[server_error("a")] * 5)
    registry = ProviderRegistry([fake], breaker_threshold=0)
    for _ in range(5):
        with pytest.raises(ServerError):
            registry.complete("hi")
    assert len(fake.calls) == 5
    assert registry.circuit("a").state == "closed" and registry.circuit("a").failures == 5


def test_the_breaker_counts_exactly_under_threads(clock: Clock) -> None:
    breaker = CircuitBreaker("x", threshold=0, cooldown=1.0, clock=clock)
    error = server_error("x")

    def hammer() -> None:
        for _ in range(200):
            assert breaker.allow()
            breaker.record(error)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert breaker.state().failures == 1600


def test_replacing_a_provider_gives_it_a_closed_circuit(make_fake: Callable[..., Any], clock: Clock) -> None:
    registry = ProviderRegistry([make_fake("a")], clock=clock)
    open_circuit(registry, "a")
    registry.register(make_fake("a"), replace=True)
    assert registry.circuit("a").state == "closed"


@pytest.mark.parametrize(
    "setting",
    [
        {"breaker_threshold": -1},
        {"breaker_threshold": 1.5},
        {"breaker_threshold": True},
        {"breaker_cooldown": 0},
        {"breaker_cooldown": float("inf")},
        {"batch_concurrency": 0},
    ],
)
def test_bad_settings_are_config_errors(setting: Dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(setting))):
        ProviderRegistry(**setting)


# --------------------------------------------------------------------------- config keys


def test_breaker_settings_come_from_the_config(
    monkeypatch: pytest.MonkeyPatch, make_fake: Callable[..., Any], clock: Clock, tmp_path: Path
) -> None:
    monkeypatch.setitem(provider_kit.providers.BUILTIN_TYPES, "fake", FakeProvider)
    path = tmp_path / "c.toml"
    path.write_text('breaker_threshold = 1\nbreaker_cooldown = 5\n\n[providers.f]\ntype = "fake"\n')
    config = load_config(path, known_types=["fake"])
    assert (config.breaker_threshold, config.breaker_cooldown) == (1, 5.0)
    assert config.as_dict()["breaker_threshold"] == 1 and config.as_dict()["breaker_cooldown"] == 5.0

    registry = ProviderRegistry.from_config(path, clock=clock)
    registry["f"].add_replies(server_error("f"))  # type: ignore[attr-defined]
    with pytest.raises(ServerError):
        registry.complete("hi")
    assert registry.circuit("f").state == "open"  # one failure was enough
    clock.advance(5)
    assert registry.circuit("f").state == "half_open"

    overridden = ProviderRegistry.from_config(path, breaker_threshold=2, batch_concurrency=7)
    overridden["f"].add_replies(server_error("f"))  # type: ignore[attr-defined]
    with pytest.raises(ServerError):
        overridden.complete("hi")
    assert overridden.circuit("f").state == "closed" and overridden.batch_concurrency == 7
    assert load_config({"providers": {}}).breaker_threshold is None


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"breaker_threshold": "3"}, "breaker_threshold must be an integer"),
        ({"breaker_threshold": -2}, "breaker_threshold must not be negative"),
        ({"breaker_cooldown": 0}, "breaker_cooldown must be a positive number"),
        ({"breaker_cooldown": True}, "breaker_cooldown must be a number"),
        ({"breaker_cooldwon": 3}, "did you mean 'breaker_cooldown'"),
    ],
)
def test_bad_breaker_keys_in_a_config_are_errors(data: Dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        load_config(dict(data, providers={}))
    assert str(info.value).startswith("config dict:")


# --------------------------------------------------------------------------- HealthStatus.circuit


def test_health_status_circuit_is_optional_and_round_trips() -> None:
    at = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    plain = HealthStatus("p", True, 0.01, None, at)
    assert plain.circuit is None and plain.to_dict()["circuit"] is None
    assert "circuit" not in str(plain) and "circuit" not in HealthReport([plain])._repr_html_()
    until = "2026-01-01T12:00:30+00:00"
    circuit = {"state": "open", "failures": 3, "open_until": until, "last_error": "E: x"}
    status = HealthStatus("p", False, 0.01, "timeout: late", at, circuit=circuit)
    assert pickle.loads(pickle.dumps(status)) == status
    assert "circuit" in repr(status) and "open until 12:00:30 UTC" in repr(status)
    assert str(status).endswith("[circuit open until 12:00:30 UTC, 3 failures in a row; last: E: x]")
    closed = HealthStatus("p", True, 0.01, None, at, {"state": "closed", "failures": 0})
    assert "circuit" not in str(closed)
    # An all-closed circuit column adds nothing: left out, in text and in HTML.
    assert "circuit" not in str(HealthReport([closed])) and "circuit" not in HealthReport([closed])._repr_html_()


# --------------------------------------------------------------------------- get_registry


class Builds(List[Any]):
    """The ``source`` of every ``from_config`` call; ``hold`` slows each build down."""

    hold = 0.0


@pytest.fixture
def shared_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Builds]:
    """A fresh process-wide registry from ./provider_kit.toml; yields the record of builds."""
    monkeypatch.setattr(shared_module, "_shared", None)
    monkeypatch.setitem(provider_kit.providers.BUILTIN_TYPES, "fake", FakeProvider)
    Path("provider_kit.toml").write_text('[providers.shared]\ntype = "fake"\n')
    builds = Builds()
    never = threading.Event()
    original = ProviderRegistry.from_config.__func__  # type: ignore[attr-defined]

    def counting(cls: Any, /, source: Any = None, **kwargs: Any) -> ProviderRegistry:
        builds.append(source)
        never.wait(builds.hold)  # a slow build: racing threads would pile in without the lock
        registry: ProviderRegistry = original(cls, source, **kwargs)
        return registry

    monkeypatch.setattr(ProviderRegistry, "from_config", classmethod(counting))
    yield builds
    reset_registry()


def test_get_registry_builds_once_for_32_threads(shared_registry: Builds) -> None:
    shared_registry.hold = 0.3
    barrier = threading.Barrier(32)
    got: List[ProviderRegistry] = []

    def ask() -> None:
        barrier.wait(WAIT)
        got.append(get_registry())

    threads = [threading.Thread(target=ask) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert shared_registry == [None]  # exactly one build, from the default config
    assert len(got) == 32 and all(registry is got[0] for registry in got)
    assert got[0].names() == ["shared"]
    assert get_registry() is got[0] and shared_registry == [None]


def test_reset_registry_closes_the_old_one(shared_registry: Builds) -> None:
    first = get_registry()
    provider = first["shared"]
    reset_registry()
    assert provider.closed  # type: ignore[attr-defined]
    second = get_registry()
    assert second is not first and len(shared_registry) == 2
    reset_registry()
    reset_registry()  # nothing to close: fine


def test_a_failed_build_is_not_cached(shared_registry: Builds) -> None:
    Path("provider_kit.toml").write_text("[providers]\n")
    with pytest.raises(NoProvidersError):
        get_registry()
    Path("provider_kit.toml").write_text('[providers.later]\ntype = "fake"\n')
    assert get_registry().names() == ["later"]


def test_a_forked_child_forgets_the_shared_registry(shared_registry: Builds) -> None:
    parent = get_registry()
    lock = shared_module._shared_lock
    shared_module._forget_after_fork()  # what os.register_at_fork runs in the child
    assert shared_module._shared_lock is not lock
    child = get_registry()
    assert child is not parent
    parent.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_import_provider_kit_registers_the_fork_hook(tmp_path: Path) -> None:
    # A real fork, in a fresh interpreter that imported only provider_kit (as gunicorn
    # --preload does): the child builds its own registry, the parent keeps its own.
    (tmp_path / "provider_kit.toml").write_text('[providers.shared]\ntype = "fake"\n')
    script = (
        "import os, sys\n"
        "import provider_kit, provider_kit.providers\n"
        "from provider_kit.testing import FakeProvider\n"
        "provider_kit.providers.BUILTIN_TYPES['fake'] = FakeProvider\n"
        "parent = provider_kit.get_registry()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    child = provider_kit.get_registry()\n"
        "    os._exit(0 if child is not parent and child.names() == ['shared'] else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "assert provider_kit.get_registry() is parent\n"
        "sys.exit(status >> 8 if os.WIFEXITED(status) else 4)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- pickling


def test_the_registry_pickles_with_fresh_locks_and_closed_circuits(
    make_fake: Callable[..., Any], clock: Clock
) -> None:
    from provider_kit import OpenAIProvider

    http = OpenAIProvider("http", base_url="http://127.0.0.1:9/v1", api_key=KEY)
    registry = ProviderRegistry([http], default_provider="http", breaker_threshold=1, breaker_cooldown=7,
                                batch_concurrency=2)
    registry._router.breaker("http").record(server_error("http"))
    assert registry.circuit("http").state == "open"
    data = pickle.dumps(registry)
    assert KEY.encode() in data  # the key travels (the copy must work), but is never shown
    copy = pickle.loads(data)
    try:
        assert copy.names() == ["http"] and copy.default.name == "http"
        assert copy.circuit("http").state == "closed"
        router = copy._router
        assert copy.batch_concurrency == 2 and router.threshold == 1 and router.cooldown == 7
        copy._router.breaker("http").record(server_error("http"))  # the copy's breakers work
        assert copy.circuit("http").state == "open"
        copy.register(make_fake("added"))  # the lock works
        assert "added" in copy and "added" not in registry
        assert KEY not in repr(copy)
    finally:
        copy.close()
        registry.close()


def test_the_registry_round_trips_through_a_spawned_process() -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from provider_kit.testing import LoopbackServer

    with LoopbackServer(SOME_KIND, api_key=KEY) as server:
        provider = CLASSES[SOME_KIND]("loop", base_url=server.base_url, api_key=KEY, model=server.models[0])
        credentials = provider._headers(KEY)[1]
        with ProviderRegistry([provider]) as registry:
            assert registry.complete("from the parent").text == "echo: from the parent"  # pool in use
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                # A bound method pickles its registry: the child unpickles it and calls it.
                completion = pool.submit(registry.complete, "from the child").result(timeout=60)
            assert completion.text == "echo: from the child" and completion.provider == "loop"
            assert registry.complete("parent again").text == "echo: parent again"
        bodies = [request.json()["messages"][-1]["content"] for request in server.requests]
        assert bodies == ["from the parent", "from the child", "parent again"]
        assert credentials and all(
            request.headers[name] == value for request in server.requests for name, value in credentials.items()
        )
