"""Calls through the registry against the real wire formats (``provider_kit/_routing.py``).

Fallbacks on every provider error, ``registry.stream`` with fallbacks until the first chunk,
batches that wait for a half-open circuit instead of failing prompts unsent, and health
checks that leave circuits alone.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
from _kinds import CHAT_PATHS, CLASSES, KINDS, OTHER_KIND, SOME_KIND
from _support import in_thread

from provider_kit import (
    Completion,
    ConfigError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderRegistry,
    ResponseFormatError,
    ServerError,
    StreamChunk,
    UnknownProviderError,
)
from provider_kit.testing import LoopbackServer, RecordedRequest, Reply

KEY = "sk-routing-0123456789abcdef"
#: "llama" and "proxy" speak one hosted API's protocol, "claude" another's.
COMPATIBLE, OTHER = SOME_KIND, OTHER_KIND
COMPATIBLE_CHAT = CHAT_PATHS[COMPATIBLE]
OTHER_CHAT = CHAT_PATHS[OTHER]
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
def servers() -> Iterator[Dict[str, LoopbackServer]]:
    """A llama.cpp-like OpenAI-compatible box, an OpenAI-compatible proxy and an Anthropic API."""
    with contextlib.ExitStack() as stack:
        found = {
            "llama": stack.enter_context(LoopbackServer(COMPATIBLE, api_key=KEY)),
            "proxy": stack.enter_context(LoopbackServer(COMPATIBLE, api_key=KEY)),
            "claude": stack.enter_context(LoopbackServer(OTHER, api_key=KEY)),
        }
        yield found
    for server in found.values():
        assert server.errors == []


@pytest.fixture
def registry(servers: Dict[str, LoopbackServer]) -> Iterator[ProviderRegistry]:
    """One provider per server, no retries: each scripted fault is seen exactly once."""
    providers = [
        CLASSES[COMPATIBLE]("llama", base_url=servers["llama"].base_url, api_key=KEY, max_retries=0, timeout=5),
        CLASSES[COMPATIBLE]("proxy", base_url=servers["proxy"].base_url, api_key=KEY, max_retries=0, timeout=5),
        CLASSES[OTHER]("claude", base_url=servers["claude"].base_url, api_key=KEY, max_retries=0, timeout=5),
    ]
    with ProviderRegistry(providers, default_provider="llama") as built:
        yield built


def context_too_long(server: LoopbackServer) -> Reply:
    # What llama-server answers for a prompt longer than its context (an OpenAI-style 400).
    return server.error_reply(400, "the request exceeds the available context size, try increasing it",
                              type="exceed_context_size_error")


def prompts_of(server: LoopbackServer) -> List[str]:
    return [request.json()["messages"][-1]["content"] for request in server.requests]


# --------------------------------------------------------------------------- fallbacks


def test_a_refused_request_falls_back_to_a_provider_that_takes_it(
    servers: Dict[str, LoopbackServer], registry: ProviderRegistry
) -> None:
    servers["llama"].enqueue(context_too_long(servers["llama"]), path=COMPATIBLE_CHAT)
    servers["proxy"].enqueue(servers["proxy"].error_reply(404, "The model `gpt-4o` does not exist"),
                             path=COMPATIBLE_CHAT)
    completion = registry.complete("a long prompt", fallbacks=["proxy", "claude"])
    assert completion.provider == "claude" and completion.text == "echo: a long prompt"
    assert [len(server.requests) for server in servers.values()] == [1, 1, 1]
    # A refusal is an answer from a reachable server: no circuit counts it.
    assert [registry.circuit(name).failures for name in ("llama", "proxy")] == [0, 0]


def test_when_every_provider_refuses_the_last_error_lists_them_all(
    servers: Dict[str, LoopbackServer], registry: ProviderRegistry
) -> None:
    servers["llama"].enqueue(context_too_long(servers["llama"]), path=COMPATIBLE_CHAT)
    servers["proxy"].enqueue(servers["proxy"].error_reply(400, "proxy: bad request"), path=COMPATIBLE_CHAT)
    servers["claude"].enqueue(servers["claude"].error_reply(413, "request too large"), path=OTHER_CHAT)
    with pytest.raises(InvalidRequestError) as info:
        registry.complete("hi", fallbacks="healthy")
    errors = info.value.errors
    assert [(e.provider, e.status_code) for e in errors] == [("llama", 400), ("claude", 413), ("proxy", 400)]
    assert errors[-1] is info.value


@pytest.mark.parametrize("call", ["complete", "stream"])
def test_bad_arguments_are_raised_before_anything_is_sent(
    servers: Dict[str, LoopbackServer], registry: ProviderRegistry, call: str
) -> None:
    def run(**kwargs: Any) -> Any:
        if call == "complete":
            return registry.complete("hi", fallbacks=["proxy", "claude"], **kwargs)
        return list(registry.stream("hi", fallbacks=["proxy", "claude"], **kwargs))

    with pytest.raises(ConfigError, match="temperature"):
        run(temperature=5)
    with pytest.raises(TypeError):
        run(temprature=0.5)
    assert all(server.requests == [] for server in servers.values())
    assert registry.circuit("llama").state == "closed"


# --------------------------------------------------------------------------- stream


def test_stream_falls_back_until_the_first_chunk_and_names_the_provider(
    servers: Dict[str, LoopbackServer], registry: ProviderRegistry
) -> None:
    servers["llama"].enqueue(context_too_long(servers["llama"]), path=COMPATIBLE_CHAT)
    servers["proxy"].enqueue(servers["proxy"].error_reply(502, "upstream down"), path=COMPATIBLE_CHAT)
    servers["claude"].enqueue(servers["claude"].stream_reply(["Hel", "lo"]), path=OTHER_CHAT)
    chunks = list(registry.stream("hi", fallbacks=["proxy", "claude"], max_tokens=50))
    assert [chunk.text for chunk in chunks] == ["Hel", "lo", ""]
    assert [chunk.provider for chunk in chunks] == ["claude"] * 3
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage is not None
    assert all(server.last_request.json()["stream"] is True for server in servers.values())
    assert servers["claude"].last_request.json()["max_tokens"] == 50
    assert registry.circuit("proxy").failures == 1  # the 502 counts towards its circuit


def test_a_stream_that_breaks_after_its_first_chunk_raises_and_does_not_fall_back(
    servers: Dict[str, LoopbackServer], registry: ProviderRegistry
) -> None:
    llama = servers["llama"]
    llama.enqueue(context_too_long(llama), path=COMPATIBLE_CHAT)
    proxy = servers["proxy"]
    proxy.enqueue(proxy.stream_reply(["partial", " answer", " lost"], error_after=2, error_message="overloaded"),
                  path=COMPATIBLE_CHAT)
    received: List[StreamChunk] = []
    with pytest.raises(ServerError, match="overloaded") as info:
        for chunk in registry.stream("hi", fallbacks=["proxy", "claude"]):
            received.append(chunk)
    assert [(c.text, c.provider) for c in received] == [("partial", "proxy"), (" answer", "proxy")]
    assert servers["claude"].requests == []  # never a second answer spliced onto the first
    assert [e.provider for e in info.value.errors] == ["llama", "proxy"]
    assert registry.circuit("proxy").failures == 1  # the mid-stream failure counts

    # A stream cut short without its end marker is an error too, never a shorter answer.
    proxy.enqueue(proxy.stream_reply(["cut", " short"], terminate=False), path=COMPATIBLE_CHAT)
    with pytest.raises(ResponseFormatError, match="ended before its end marker"):
        list(registry.stream("hi", provider="proxy", fallbacks=["claude"]))
    assert servers["claude"].requests == []


def test_a_stream_skips_open_circuits_and_its_first_chunk_closes_a_half_open_one(
    servers: Dict[str, LoopbackServer],
) -> None:
    clock = Clock()
    llama, proxy = servers["llama"], servers["proxy"]
    providers = [
        CLASSES[COMPATIBLE]("llama", base_url=llama.base_url, api_key=KEY, max_retries=0, timeout=5),
        CLASSES[COMPATIBLE]("proxy", base_url=proxy.base_url, api_key=KEY, max_retries=0, timeout=5),
    ]
    with ProviderRegistry(providers, breaker_threshold=2, breaker_cooldown=30, clock=clock) as registry:
        llama.enqueue(llama.error_reply(500), path=COMPATIBLE_CHAT, times=2)
        for _ in range(2):  # stream failures count as complete's do
            with pytest.raises(ServerError):
                list(registry.stream("trip"))
        assert registry.circuit("llama").state == "open"

        chunks = list(registry.stream("hi", fallbacks=["proxy"]))
        assert {chunk.provider for chunk in chunks} == {"proxy"} and len(llama.requests) == 2

        stream = registry.stream("hi")
        with pytest.raises(ProviderConnectionError, match="no call made") as info:
            next(stream)
        assert info.value.errors == []
        assert len(llama.requests) == 2

        clock.advance(30)
        assert registry.circuit("llama").state == "half_open"
        llama.enqueue(llama.stream_reply(["back", " again"]), path=COMPATIBLE_CHAT)
        stream = registry.stream("trial")
        first = next(stream)
        # The first chunk proves the server is up: the circuit closes before the stream ends.
        assert (first.text, first.provider) == ("back", "llama")
        assert registry.circuit("llama").state == "closed"
        assert [chunk.text for chunk in stream] == [" again", ""]


def test_closing_the_stream_early_closes_the_provider_stream(servers: Dict[str, LoopbackServer]) -> None:
    opened: List[Any] = []

    class Recording(CLASSES[COMPATIBLE]):  # type: ignore[misc,valid-type]
        def stream(self, *args: Any, **kwargs: Any) -> Any:
            generator = super().stream(*args, **kwargs)
            opened.append(generator)
            return generator

    llama = servers["llama"]
    gate = llama.gate()
    llama.enqueue(llama.stream_reply(["Hel", gate, "lo"]), path=COMPATIBLE_CHAT)
    provider = Recording("llama", base_url=llama.base_url, api_key=KEY, max_retries=0, timeout=5)
    with ProviderRegistry([provider]) as registry:
        stream = registry.stream("hi")
        assert next(stream).text == "Hel"
        assert gate.wait_reached(WAIT)
        assert opened[0].gi_frame is not None  # suspended mid-stream
        stream.close()
        assert opened[0].gi_frame is None  # the provider's generator was closed: its connection too
        gate.open()
        assert registry.circuit("llama").state == "closed" and registry.circuit("llama").failures == 0


def test_stream_checks_names_before_anything_is_sent(
    servers: Dict[str, LoopbackServer], registry: ProviderRegistry
) -> None:
    with pytest.raises(UnknownProviderError, match="nope"):
        registry.stream("hi", fallbacks=["nope"])  # at once, before iteration
    with pytest.raises(ConfigError, match="did you mean"):
        registry.stream("hi", fallbacks="proxy")
    assert all(server.requests == [] for server in servers.values())


@pytest.mark.parametrize("kind", KINDS)
def test_a_provider_stream_names_its_provider_on_every_chunk(kind: str) -> None:
    with LoopbackServer(kind) as server:
        options: Dict[str, Any] = {"base_url": server.base_url, "max_retries": 0, "timeout": 5}
        if CLASSES[kind].REQUIRES_KEY:
            options["api_key"] = KEY
        with CLASSES[kind]("mine", **options) as provider:
            chunks = list(provider.stream("hi"))
    assert len(chunks) >= 2 and {chunk.provider for chunk in chunks} == {"mine"}


# --------------------------------------------------------------------------- batches and open circuits


def one_provider(server: LoopbackServer, **registry_options: Any) -> ProviderRegistry:
    provider = CLASSES[COMPATIBLE]("llama", base_url=server.base_url, api_key=KEY, max_retries=0, timeout=5)
    return ProviderRegistry([provider], **registry_options)


def test_a_burst_of_500s_does_not_fail_later_prompts_of_a_batch() -> None:
    # Three transient 500s open the circuit; a moment later the server is fine. Only the three
    # prompts that got a 500 fail: every other one waits for the half-open trial and is sent.
    with LoopbackServer(COMPATIBLE, api_key=KEY) as server, one_provider(
        server, breaker_threshold=3, breaker_cooldown=0.2
    ) as registry:
        server.enqueue(server.error_reply(500), path=COMPATIBLE_CHAT, times=3)
        prompts = [f"p{i}" for i in range(20)]
        results = registry.map(prompts, max_workers=1, progress=False)
        assert [type(result) for result in results[:3]] == [ServerError] * 3
        assert [getattr(result, "text", result) for result in results[3:]] == [f"echo: {p}" for p in prompts[3:]]
        assert prompts_of(server) == prompts  # every prompt was sent
        assert registry.circuit("llama").state == "closed"


def test_a_concurrent_batch_sends_every_prompt_through_a_burst_of_500s() -> None:
    with LoopbackServer(COMPATIBLE, api_key=KEY) as server, one_provider(
        server, breaker_threshold=3, breaker_cooldown=0.2, batch_concurrency=4
    ) as registry:
        server.enqueue(server.error_reply(500), path=COMPATIBLE_CHAT, times=3)
        prompts = [f"p{i}" for i in range(20)]
        results = registry.map(prompts, max_workers=8, progress=False)
        failed = [result for result in results if not isinstance(result, Completion)]
        assert len(failed) == 3 and all(isinstance(result, ServerError) for result in failed)
        assert sorted(prompts_of(server)) == sorted(prompts)


class WaitingLog(logging.Handler):
    """Counts the batch prompts that started waiting for a circuit (the router logs each)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0
        self.changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("waiting up to"):
            with self.changed:
                self.count += 1
                self.changed.notify_all()

    def wait_for(self, count: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.count >= count, WAIT)


@pytest.fixture
def waiting_log() -> Iterator[WaitingLog]:
    logger = logging.getLogger("provider_kit")
    handler = WaitingLog()
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def held_reply(server: LoopbackServer, release: threading.Event, reply: Callable[[], Reply]) -> Callable[..., Reply]:
    """A responder that holds the request until ``release`` is set, then answers ``reply()``."""

    def respond(request: RecordedRequest) -> Reply:
        release.wait(WAIT)
        return reply()

    return respond




@contextlib.contextmanager
def trial_in_flight(outcome: Callable[[LoopbackServer], Reply]) -> Iterator[Any]:
    """A registry whose only circuit is half-open with its trial call held at the server.

    Yields ``(server, registry, release)``; setting ``release`` lets the trial end with
    ``outcome(server)``.
    """
    clock = Clock()
    release = threading.Event()
    with LoopbackServer(COMPATIBLE, api_key=KEY) as server, one_provider(
        server, breaker_threshold=1, breaker_cooldown=30, clock=clock
    ) as registry:
        server.enqueue(server.error_reply(500), path=COMPATIBLE_CHAT)
        with pytest.raises(ServerError):
            registry.complete("trip")
        clock.advance(30)
        server.enqueue(held_reply(server, release, lambda: outcome(server)), path=COMPATIBLE_CHAT)
        join_trial = in_thread(lambda: registry.complete("trial"))
        server.wait_for_requests(2, WAIT)
        try:
            yield server, registry, release
        finally:
            release.set()
            with contextlib.suppress(ServerError):
                join_trial()


def test_a_waiting_prompt_is_sent_once_the_trial_succeeds(waiting_log: WaitingLog) -> None:
    with trial_in_flight(lambda server: server.completion_reply("trial ok")) as (server, registry, release):
        join_batch = in_thread(lambda: registry.map(["w1", "w2"], progress=False, timeout=WAIT))
        assert waiting_log.wait_for(2)  # both wait for the trial: nothing was sent or failed
        assert prompts_of(server) == ["trip", "trial"]
        release.set()
        results = join_batch()
        assert [result.text for result in results] == ["echo: w1", "echo: w2"]
        assert sorted(prompts_of(server)[2:]) == ["w1", "w2"]


def test_a_waiting_prompt_fails_unsent_when_its_timeout_passes_first(waiting_log: WaitingLog) -> None:
    with trial_in_flight(lambda server: server.completion_reply("late")) as (server, registry, _):
        started = time.monotonic()
        [result] = registry.map(["w"], progress=False, timeout=0.3)
        elapsed = time.monotonic() - started
        assert isinstance(result, ProviderConnectionError) and result.errors == []
        assert "no call made" in str(result) and "stayed open for this prompt's timeout of 0.3 s" in str(result)
        assert 0.3 <= elapsed < WAIT
        assert "w" not in prompts_of(server)


def test_when_the_trial_fails_and_the_cooldown_outlasts_the_timeout_waiting_ends(
    waiting_log: WaitingLog,
) -> None:
    with trial_in_flight(lambda server: server.error_reply(503)) as (server, registry, release):
        join_batch = in_thread(lambda: registry.map(["w"], progress=False, timeout=WAIT))
        assert waiting_log.wait_for(1)
        started = time.monotonic()
        release.set()  # the trial fails: a new 30 s cooldown, past the prompt's 10 s timeout
        [result] = join_batch()
        assert time.monotonic() - started < WAIT / 2  # failed at once, not at its deadline
        assert isinstance(result, ProviderConnectionError)
        assert "stays open past this prompt's timeout" in str(result)
        assert "w" not in prompts_of(server)


def test_an_abandoned_batch_stops_its_waiting_prompts(waiting_log: WaitingLog) -> None:
    with trial_in_flight(lambda server: server.completion_reply("late")) as (_, registry, _release):
        router = registry._router
        abandoned = threading.Event()
        targets = [("llama", registry["llama"])]
        join = in_thread(lambda: router.complete("w", targets, {"timeout": WAIT}, batch=abandoned))
        assert waiting_log.wait_for(1)
        abandoned.set()
        with router._changed:
            router._changed.notify_all()
        with pytest.raises(ProviderConnectionError, match="given up"):
            join()


def test_a_plain_call_still_fails_at_once_while_every_circuit_is_open() -> None:
    with trial_in_flight(lambda server: server.completion_reply("late")) as (_, registry, _release):
        started = time.monotonic()
        with pytest.raises(ProviderConnectionError, match="no call made: the circuit is open"):
            registry.complete("now")
        assert time.monotonic() - started < WAIT / 2


def test_map_refuses_a_bad_timeout_before_any_call() -> None:
    with LoopbackServer(COMPATIBLE, api_key=KEY) as server, one_provider(server) as registry:
        for bad in (0, -1, "5", True):
            with pytest.raises(ConfigError, match="timeout"):
                registry.map(["hi"], progress=False, timeout=bad)
        assert server.requests == []


# --------------------------------------------------------------------------- health and circuits


def test_a_passing_health_check_behind_a_proxy_leaves_the_circuit_open() -> None:
    # The proxy's /v1/models answers while every completion fails: the health check passes, the
    # model does not, so the circuit must stay open.
    clock = Clock()
    with LoopbackServer(COMPATIBLE, api_key=KEY) as server, one_provider(
        server, breaker_threshold=3, clock=clock
    ) as registry:
        server.enqueue(server.error_reply(500, "litellm: model backend unavailable"), path=COMPATIBLE_CHAT, times=3)
        for _ in range(3):
            with pytest.raises(ServerError):
                registry.complete("hi")
        report = registry.health_check_all(timeout=5)
        assert report["llama"].ok
        circuit: Optional[Dict[str, Any]] = report["llama"].circuit
        assert circuit is not None and circuit["state"] == "open"
        assert registry.circuit("llama").state == "open"
        assert [r.path for r in server.requests][-1] == "/v1/models"
