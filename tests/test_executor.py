"""``registry.map(..., executor=...)`` on process pools (``provider_kit/_executor.py``).

The simulators run in the test's process; the prompts run in worker processes (started by
``fork`` and by ``spawn``), which unpickle the registry, open their own connections to
127.0.0.1 and send the answers back. Dask's cluster is tested in test_executor_dask.py.
"""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import time
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterator, List

import pytest
from _dying import DIE, DyingProvider
from _kinds import CLASSES, KINDS, OTHER_KIND, SOME_KIND
from _support import KEY, assert_secret_free, error_texts, serve

from provider_kit import (
    Completion,
    ConfigError,
    ExecutorError,
    InvalidRequestError,
    ProviderRegistry,
)
from provider_kit._executor import Shipment
from provider_kit.testing import FakeProvider, LoopbackServer, RecordedRequest, Reply

#: The start methods this platform has, of the two that matter: a forked worker inherits the
#: parent's memory (and its sockets, which it must not use); a spawned one imports everything.
CONTEXTS = [method for method in ("fork", "spawn") if method in multiprocessing.get_all_start_methods()]
#: The cheaper one, for the tests about map's semantics rather than about the start method.
FAST = CONTEXTS[0]

# Python 3.12+ warns that fork() in a threaded process may deadlock (the simulators run
# threads); a worker forked here touches none of their locks.
fork_is_fine = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")

HANG = 30.0  # seconds: an upper bound that catches a hung batch, never a pacing


def pool(context: str, workers: int = 2) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(context))


@pytest.fixture
def servers() -> Iterator[Dict[str, LoopbackServer]]:
    """A simulator of every built-in type, expecting ``KEY``."""
    running = [serve(kind) for kind in KINDS]
    try:
        yield {kind: next(generator) for kind, generator in zip(KINDS, running)}
    finally:
        for generator in running:
            next(generator, None)  # closes the server and checks it saw no broken request


def timed(call: Callable[[], Any]) -> Any:
    started = time.monotonic()
    result = call()
    assert time.monotonic() - started < HANG, "the batch hung"
    return result


def never_opened(provider: Any) -> bool:
    """True when ``provider`` (the parent's copy) never opened a connection pool."""
    return provider._transport._session is None


# --------------------------------------------------------------------------- answers


@fork_is_fine
@pytest.mark.parametrize("context", CONTEXTS)
def test_every_type_answers_from_worker_processes_in_input_order(
    context: str, servers: Dict[str, LoopbackServer]
) -> None:
    registry = ProviderRegistry(
        [CLASSES[kind](kind, base_url=server.base_url, api_key=KEY, max_retries=0) for kind, server in servers.items()]
    )
    prompts = [f"ticket {index}" for index in range(6)]
    with pool(context) as executor:
        for kind in KINDS:
            results = timed(lambda kind=kind: registry.map(prompts, provider=kind, executor=executor))
            assert [type(result) for result in results] == [Completion] * len(prompts)
            assert [result.text for result in results] == [f"echo: {prompt}" for prompt in prompts]
            assert {result.provider for result in results} == {kind}
        # A second batch with the same registry finds each worker's copy and its open pool.
        again = timed(lambda: registry.map(prompts, provider=SOME_KIND, executor=executor))
        assert [result.text for result in again] == [f"echo: {prompt}" for prompt in prompts]
    for kind, server in servers.items():
        assert len(server.requests) == len(prompts) * (2 if kind == SOME_KIND else 1)
        # Two workers, each with its own pool kept across prompts and batches: one connection
        # per worker, not one per prompt (a registry unpickled per task would open 6 or 12).
        assert len({request.connection for request in server.requests}) <= 2
        # The work was done in the workers: the parent's providers never opened a pool.
        assert never_opened(registry[kind])


def echo_unless_bad(server: LoopbackServer) -> Callable[[RecordedRequest], Reply]:
    """A responder: the simulator's 400 for a prompt containing "bad", else its echo."""

    def respond(request: RecordedRequest) -> Reply:
        if b"bad" in request.body:
            return server.error_reply(400, "this prompt is refused")
        prompt = "ok" if b"ok" in request.body else "?"
        return server.completion_reply(f"answered {prompt}")

    return respond


@fork_is_fine
def test_a_failed_prompt_keeps_its_place_and_the_progress_bar_counts_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with LoopbackServer(SOME_KIND, api_key=KEY) as server, pool(FAST) as executor:
        server.enqueue(echo_unless_bad(server), times=10)
        registry = ProviderRegistry([CLASSES[SOME_KIND]("p", base_url=server.base_url, api_key=KEY, max_retries=0)])
        prompts = ["ok 0", "bad 1", "ok 2", "bad 3", "ok 4"]
        results = timed(lambda: registry.map(prompts, executor=executor, progress="text"))
        assert [type(result) for result in results] == [
            Completion, InvalidRequestError, Completion, InvalidRequestError, Completion]
        assert [result.text for result in results if isinstance(result, Completion)] == ["answered ok"] * 3
        error = results[1]
        assert error.status_code == 400 and error.provider == "p" and "this prompt is refused" in str(error)
        assert "provider_kit map: 5/5 done, 2 failed" in capsys.readouterr().err
        # return_exceptions=False: the first failure is raised, as without an executor.
        server.enqueue(echo_unless_bad(server), times=10)
        with pytest.raises(InvalidRequestError, match="this prompt is refused"):
            timed(lambda: registry.map(["bad"], executor=executor, return_exceptions=False))
    assert server.errors == []


@fork_is_fine
def test_fallbacks_and_breakers_work_in_the_workers_and_leave_the_parents_circuits_alone() -> None:
    with LoopbackServer(SOME_KIND, api_key=KEY) as down, LoopbackServer(OTHER_KIND, api_key=KEY) as up, \
            pool(FAST, workers=1) as executor:
        down.enqueue(down.error_reply(500, "down for maintenance"), times=50)
        registry = ProviderRegistry(
            [CLASSES[SOME_KIND]("down", base_url=down.base_url, api_key=KEY, max_retries=0),
             CLASSES[OTHER_KIND]("up", base_url=up.base_url, api_key=KEY, max_retries=0)],
            breaker_threshold=2,
        )
        prompts = [f"q{index}" for index in range(5)]
        results = timed(lambda: registry.map(prompts, provider="down", fallbacks=["up"], executor=executor))
        assert [(result.provider, result.text) for result in results] == [("up", f"echo: {p}") for p in prompts]
        # One worker, threshold 2: its circuit for "down" opened after two failures, so the
        # later prompts went straight to "up". The parent's circuit knows nothing of it.
        assert len(down.requests) == 2 and len(up.requests) == 5
        assert registry.circuit("down").state == "closed"


def test_a_thread_pool_works_as_an_executor_too(make_fake: Callable[..., Any]) -> None:
    registry = ProviderRegistry([make_fake("fake")])
    with ThreadPoolExecutor(3) as executor:
        results = timed(lambda: registry.map([f"n{index}" for index in range(7)], executor=executor, max_workers=2))
    assert [result.text for result in results] == [f"echo: n{index}" for index in range(7)]


# --------------------------------------------------------------------------- a worker dies


def dying_registry(server: LoopbackServer) -> ProviderRegistry:
    return ProviderRegistry([DyingProvider("p", base_url=server.base_url, api_key=KEY, max_retries=0)])


@fork_is_fine
@pytest.mark.parametrize("context", CONTEXTS)
def test_a_worker_dying_mid_batch_fails_its_prompt_and_the_rest_unsent(context: str) -> None:
    with LoopbackServer(SOME_KIND, api_key=KEY) as server, pool(context) as executor:
        registry = dying_registry(server)
        prompts = ["a", "b", DIE, "c", "d"]
        # One prompt at a time: "a" and "b" are answered before the crash, "c" and "d" after it.
        results = timed(lambda: registry.map(prompts, executor=executor, max_workers=1))
        assert [result.text for result in results[:2]] == ["echo: a", "echo: b"]
        died = results[2]
        assert isinstance(died, ExecutorError) and died.sent is True
        assert "may have been sent" in str(died) and "BrokenProcessPool" in str(died)
        for unsent in results[3:]:
            assert isinstance(unsent, ExecutorError) and unsent.sent is False
            assert str(unsent).startswith("not sent: the executor takes no more work")
        for error in results[2:]:
            assert_secret_free(*error_texts(error))
        assert len(server.requests) == 2  # the dying prompt never reached the server
    assert server.errors == []


@fork_is_fine
def test_a_worker_dying_with_every_prompt_in_flight_still_returns_the_batch() -> None:
    with LoopbackServer(SOME_KIND, api_key=KEY) as server:
        registry = dying_registry(server)
        prompts = [f"x{index}" for index in range(4)] + [DIE] + [f"y{index}" for index in range(4)]
        with pool(FAST) as executor:
            results = timed(lambda: registry.map(prompts, executor=executor))
        assert len(results) == len(prompts)
        assert isinstance(results[4], ExecutorError)
        for prompt, result in zip(prompts, results):
            assert (isinstance(result, Completion) and result.text == f"echo: {prompt}") or \
                isinstance(result, ExecutorError)
        with pool(FAST) as executor, pytest.raises(ExecutorError, match="no answer came back"):
            timed(lambda: registry.map(["a", DIE, "b"], executor=executor, max_workers=1, return_exceptions=False))
        # A fresh executor serves the same registry again.
        with pool(FAST) as executor:
            assert [r.text for r in timed(lambda: registry.map(["z"], executor=executor))] == ["echo: z"]
    assert server.errors == []


def test_an_executor_shut_down_before_the_batch_fails_every_prompt_unsent(make_fake: Callable[..., Any]) -> None:
    registry = ProviderRegistry([make_fake("fake")])
    executor = ThreadPoolExecutor(1)
    executor.shutdown()
    results = registry.map(["a", "b"], executor=executor)
    assert all(isinstance(result, ExecutorError) and result.sent is False for result in results)
    with pytest.raises(ExecutorError, match="not sent"):
        registry.map(["a"], executor=executor, return_exceptions=False)


# --------------------------------------------------------------------------- refusals, secrets


def test_what_cannot_travel_is_refused_before_anything_is_handed_over(make_fake: Callable[..., Any]) -> None:
    submitted: List[Any] = []

    class Recording(ThreadPoolExecutor):
        def submit(self, *args: Any, **kwargs: Any) -> Any:
            submitted.append(args)
            return super().submit(*args, **kwargs)

    fake = make_fake("fake")
    registry = ProviderRegistry([fake])
    with Recording(1) as executor:
        with pytest.raises(ConfigError, match=r"executor must be a concurrent\.futures\.Executor.*get_executor"):
            registry.map(["a"], executor=object())  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="max_workers"):
            registry.map(["a"], executor=executor, max_workers=0)
        with pytest.raises(ConfigError, match=r"keyword arguments cannot be sent.*do not pickle"):
            registry.map(["a"], executor=executor, extra_body={"lock": threading.Lock()})
        fake.on_reply = lambda: None  # a provider holding a lambda cannot travel
        with pytest.raises(ConfigError, match=r"registry cannot be sent.*does not pickle"):
            registry.map(["a"], executor=executor)
        assert registry.map([], executor=executor) == []
    assert submitted == []


def test_the_shipped_registry_never_shows_its_keys() -> None:
    registry = ProviderRegistry([CLASSES[SOME_KIND]("p", base_url="http://127.0.0.1:9/v1", api_key=KEY)])
    data = pickle.dumps(registry)
    shipment = Shipment(data, "digest")
    assert KEY.encode() in data  # it must travel for the worker's calls to work...
    assert_secret_free(repr(shipment), str(shipment), repr([shipment]))  # ...but is never shown
    assert f"{len(data)} bytes" in repr(shipment)
    assert pickle.loads(pickle.dumps(shipment)).data == data


def test_a_worker_keeps_one_copy_per_registry_and_not_its_parents_after_a_fork(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from provider_kit import _executor

    monkeypatch.setattr(_executor, "_kept", OrderedDict())
    first = ProviderRegistry([FakeProvider("one")])
    second = ProviderRegistry([FakeProvider("two")])
    data = [pickle.dumps(registry) for registry in (first, second)]
    shipments = [Shipment(blob, f"digest-{index}") for index, blob in enumerate(data)]
    copy = _executor._registry_for(shipments[0])
    assert copy is not first and copy.names() == ["one"]
    assert _executor._registry_for(shipments[0]) is copy  # kept: its pools serve later prompts
    assert _executor._registry_for(shipments[1]).names() == ["two"]
    for index in range(_executor._KEEP + 1):  # only the most recent few are kept
        _executor._registry_for(Shipment(data[1], f"other-{index}"))
    assert _executor._registry_for(shipments[0]) is not copy
    _executor._kept_pid = -1  # as in a forked child: nothing of the parent's is reused
    assert _executor._registry_for(shipments[0]) is not copy and len(_executor._kept) == 1
