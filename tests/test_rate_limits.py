"""Rate limits: the budget servers report (``completion.rate_limit``), the client-side limiter
(``rpm``/``tpm``) and the hold after a server said its budget is spent."""

from __future__ import annotations

import threading
import time
from typing import List

import pytest
from _kinds import FAMILIES, KINDS, SOME_KIND

from provider_kit import ConfigError, ProviderRegistry, RateLimitError, RateLimitInfo
from provider_kit._limiter import RateLimiter, estimate_tokens
from provider_kit._rate_limits import parse_go_duration, parse_reset_timestamp, rate_limit_from_headers
from provider_kit.testing import LoopbackServer

BUDGET = {
    "requests_limit": 60,
    "requests_remaining": 59,
    "requests_reset_s": 1.5,
    "tokens_limit": 10000,
    "tokens_remaining": 9000,
    "tokens_reset_s": 360,
}


class FakeClock:
    """A monotonic clock that only moves when a limiter sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: List[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)


# -- parsing


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("12ms", 0.012), ("2m59.56s", 179.56), ("1h2m3s", 3723.0), ("250us", 0.00025),
     ("1.5", 1.5), ("-2s", -2.0), ("0s", 0.0), ("20ns", 2e-8)],
)
def test_go_durations_are_read_with_fractions_and_units(text, seconds):
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "1x", "1s2", "abc", "1m-2s"])
def test_a_garbled_duration_is_none(text):
    assert parse_go_duration(text) is None


def test_rfc3339_resets_become_seconds_from_now():
    now = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    assert parse_reset_timestamp("2023-11-14T22:13:50Z", now) == pytest.approx(30)
    assert parse_reset_timestamp("2023-11-14T22:13:21.123456789Z", now) == pytest.approx(1.123456789)
    assert parse_reset_timestamp("2023-11-14T23:13:50+01:00", now) == pytest.approx(30)
    assert parse_reset_timestamp("2023-11-14T22:13:00Z", now) == 0.0  # already past
    assert parse_reset_timestamp("tomorrow", now) is None
    assert parse_reset_timestamp("2023-13-45T22:13:00Z", now) is None


def test_headers_without_a_budget_give_none_and_garbage_gives_none_fields():
    assert rate_limit_from_headers({"content-type": "application/json"}) is None
    info = rate_limit_from_headers({"x-ratelimit-remaining-requests": "lots", "x-ratelimit-reset-requests": "soon",
                                    "x-ratelimit-remaining-tokens": "12"})
    assert info == RateLimitInfo(tokens_remaining=12)


def test_azure_style_remaining_alone_is_read():
    info = rate_limit_from_headers({"x-ratelimit-remaining-requests": "0", "x-ratelimit-remaining-tokens": "900"})
    assert info.requests_remaining == 0 and info.requests_reset_s is None
    assert info.exhausted and info.wait_s() is None


# -- what the servers report, for every type


def test_every_type_reports_its_servers_budget_on_completions_and_last_chunks(kind, server, make):
    server.rate_limit = dict(BUDGET)
    provider = make(server)
    completion = provider.complete("hi")
    info = completion.rate_limit
    assert isinstance(info, RateLimitInfo)
    assert (info.requests_limit, info.requests_remaining, info.tokens_limit, info.tokens_remaining) == (
        60, 59, 10000, 9000)
    # Go durations are exact; a timestamp is seconds from when the answer arrived.
    assert info.requests_reset_s == pytest.approx(1.5, abs=0.5)
    assert info.tokens_reset_s == pytest.approx(360, abs=0.5)
    assert completion.to_dict()["rate_limit"]["requests_remaining"] == 59
    chunks = list(provider.stream("hi"))
    assert chunks[-1].rate_limit == RateLimitInfo(60, 59, chunks[-1].rate_limit.requests_reset_s, 10000, 9000,
                                                  chunks[-1].rate_limit.tokens_reset_s)
    assert all(chunk.rate_limit is None for chunk in chunks[:-1])


def test_no_headers_no_rate_limit_and_no_limiter(kind, server, make):
    provider = make(server)
    assert provider.complete("hi").rate_limit is None
    assert list(provider.stream("hi"))[-1].rate_limit is None
    assert "rate_limit" not in provider.complete("hi").to_dict()
    assert provider._limiter is None  # the call flow paid one attribute test


def test_anthropic_family_headers_are_timestamps_and_others_go_durations():
    families = {FAMILIES[kind] for kind in KINDS}
    assert len(families) >= 2
    for kind in KINDS:
        with LoopbackServer(kind, rate_limit={"requests_remaining": 3, "requests_reset_s": 60}) as server:
            headers = server._wire.rate_limit_headers(server.rate_limit)
        (name, value), = [(k, v) for k, v in headers.items() if k.endswith("reset") or "-reset-" in k]
        if name.startswith("x-ratelimit"):
            assert value == "1m0s"
        else:
            assert value.endswith("Z") and "T" in value


# -- the client-side limiter


def test_limiter_paces_requests_in_the_order_asked_across_threads():
    clock = FakeClock()
    limiter = RateLimiter(rpm=60, clock=clock, sleep=clock.sleep)  # one a second, no burst
    waits: List[float] = []
    lock = threading.Lock()

    def call() -> None:
        waited = limiter.acquire(0, 100.0, provider="p")
        with lock:
            waits.append(waited)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(waits) == pytest.approx([0, 1, 2, 3, 4, 5, 6, 7])
    assert limiter.waiting == 0


def test_limiter_refills_with_time_and_reserves_tokens():
    clock = FakeClock()
    limiter = RateLimiter(tpm=600, clock=clock, sleep=clock.sleep)  # 10 tokens a second, bucket of 10
    assert limiter.acquire(10, 5.0, provider="p") == 0
    assert limiter.acquire(5, 5.0, provider="p") == pytest.approx(0.5)
    clock.now += 10  # a full bucket again
    assert limiter.acquire(10, 5.0, provider="p") == 0
    # The estimate was 10 but the call used 2: the difference is given back.
    limiter.settle(10, 2)
    assert limiter.acquire(8, 5.0, provider="p") == 0


def test_a_wait_that_cannot_fit_the_deadline_raises_at_once_and_reserves_nothing():
    clock = FakeClock()
    limiter = RateLimiter(rpm=6, clock=clock, sleep=clock.sleep)  # one every 10 s
    limiter.acquire(0, 1.0, provider="p")
    with pytest.raises(RateLimitError) as caught:
        limiter.acquire(0, 3.0, provider="p")
    assert caught.value.retry_after == pytest.approx(10)
    assert caught.value.retryable and "rpm = 6" in str(caught.value) and "p:" in str(caught.value)
    assert clock.slept == []
    assert limiter.acquire(0, 11.0, provider="p") == pytest.approx(10)  # the failed call took no slot


def test_estimate_counts_the_text_of_the_body():
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 5}
    assert 100 <= estimate_tokens(body) <= 102  # the text, plus the few characters of the model and role
    assert estimate_tokens({}) == 1


def test_rpm_on_a_provider_fails_fast_instead_of_sleeping_past_the_deadline(kind, server, make):
    provider = make(server, rpm=1)
    provider.complete("one")
    started = time.monotonic()
    with pytest.raises(RateLimitError) as caught:
        provider.complete("two", timeout=2)
    assert time.monotonic() - started < 1.5  # the limiter would wait ~60 s: it must not sleep
    assert caught.value.retry_after > 50
    with pytest.raises(RateLimitError):
        next(provider.stream("three", timeout=2))
    assert len(server.requests) == 1


def test_tpm_is_corrected_by_the_reported_usage(make):
    with LoopbackServer(SOME_KIND) as server:
        provider = make(server, tpm=60000)  # 1000 tokens a second
        clock = FakeClock()
        provider._limiter = limiter = RateLimiter(tpm=60000, clock=clock, sleep=clock.sleep)
        provider.complete("x" * 40000)  # estimated ~10,000 tokens, a few reported
        assert provider.complete("short").usage.total_tokens  # the server reports usage
        # Without the correction the bucket would owe ~9,000 tokens: 9 s for the next call.
        assert limiter.acquire(1, 5.0, provider="p") < 1.0


def test_rpm_and_tpm_come_from_the_config_and_are_checked(kind, server):
    table = {"type": kind, "base_url": server.base_url, "api_key": "sk-test-1234567890", "rpm": 30, "tpm": 5000}
    with ProviderRegistry.from_config({"providers": {"p": table}}) as registry:
        provider = registry.get("p")
        assert (provider.rpm, provider.tpm) == (30, 5000)
        assert provider.describe()["rpm"] == 30
    with pytest.raises(ConfigError, match="rpm"):
        ProviderRegistry.from_config({"providers": {"p": {**table, "rpm": -1}}})
    with pytest.raises(ConfigError, match="tpm"):
        ProviderRegistry.from_config({"providers": {"p": {**table, "tpm": "fast"}}})


# -- what the server says


def test_a_spent_server_budget_holds_calls_until_its_reset_without_sending(kind, server, make):
    server.rate_limit = {"requests_limit": 10, "requests_remaining": 0, "requests_reset_s": 30}
    provider = make(server)
    provider.complete("last one allowed")
    with pytest.raises(RateLimitError) as caught:
        provider.complete("held", timeout=2)
    assert caught.value.retry_after == pytest.approx(30, abs=1)
    assert "server reported its budget spent" in str(caught.value)
    assert len(server.requests) == 1


def test_a_short_reset_is_waited_out_within_the_deadline(make):
    with LoopbackServer(SOME_KIND, rate_limit={"tokens_remaining": 0, "tokens_reset_s": 0.3}) as server:
        provider = make(server)
        provider.complete("spent")
        server.rate_limit = None
        started = time.monotonic()
        assert provider.complete("after the reset", timeout=10).text
        assert time.monotonic() - started >= 0.2  # it held the call until the reset
        assert len(server.requests) == 2


def test_a_429_with_retry_after_holds_the_next_calls(kind, server, make):
    provider = make(server, max_retries=0)
    server.enqueue(server.error_reply(429, retry_after=30))
    with pytest.raises(RateLimitError):
        provider.complete("refused")
    with pytest.raises(RateLimitError) as caught:
        provider.complete("held", timeout=2)
    assert caught.value.status_code is None  # raised here, not by the server
    assert len(server.requests) == 1


def test_the_limiter_pickles_fresh(make):
    import pickle

    limiter = RateLimiter(rpm=60)
    limiter.hold(100)
    copy = pickle.loads(pickle.dumps(limiter))
    assert (copy.rpm, copy.tpm) == (60, None)
    assert copy.acquire(0, 1.0, provider="p") == 0


def test_a_limiter_refusal_in_a_half_open_trial_leaves_the_circuit_open() -> None:
    from provider_kit._breaker import CircuitBreaker
    from provider_kit.errors import RateLimitError, ServerError

    now = [0.0]
    breaker = CircuitBreaker("x", threshold=1, cooldown=1.0, clock=lambda: now[0])
    assert breaker.allow()
    breaker.record(ServerError("down", provider="x", status_code=500))
    assert breaker.state().state == "open"
    now[0] = 2.0
    assert breaker.allow()  # the half-open trial
    breaker.record(RateLimitError("limiter: would pass the deadline", provider="x", status_code=None))
    assert breaker.state().state != "closed"  # nothing was sent: the server said nothing
    assert breaker.allow()  # the trial ended: the next call is a trial again
    breaker.record(RateLimitError("slow down", provider="x"))  # a real 429: the server answered
    assert breaker.state().state == "closed"
