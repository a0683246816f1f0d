"""``registry.map(..., executor=client.get_executor())`` on a real Dask cluster: a
``LocalCluster`` of two worker processes (one thread each) started once for the module, the
simulators in the test's process.

``distributed`` is a test dependency (setup.cfg's ``test`` extra): these tests run everywhere
the suite runs, never skipped.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any, Callable, Iterator, List

import dask
import pytest
from _kinds import CLASSES, KINDS, SOME_KIND
from _support import KEY, in_thread
from distributed import Client, LocalCluster

from provider_kit import Completion, ConfigError, ExecutorError, ProviderRegistry
from provider_kit.testing import LoopbackServer, RecordedRequest, Reply

HANG = 30.0  # seconds: an upper bound that catches a hung batch, never a pacing


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    # allowed-failures 0: a task whose worker dies fails at once (KilledWorker) instead of
    # being rescheduled up to 3 times, so the crash test needs one death, not four.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
    ) as cluster, Client(cluster) as client:
        yield client


def registry_for(kind: str, server: LoopbackServer) -> ProviderRegistry:
    return ProviderRegistry([CLASSES[kind]("p", base_url=server.base_url, api_key=KEY, max_retries=0)])


def timed(call: Callable[[], Any]) -> Any:
    started = time.monotonic()
    result = call()
    assert time.monotonic() - started < HANG, "the batch hung"
    return result


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_every_type_answers_from_dask_workers_in_input_order(
    client: Client, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with LoopbackServer(kind, api_key=KEY) as server:
        registry = registry_for(kind, server)
        # Repeated prompts stay separate calls (Dask runs identical pure tasks once).
        prompts = ["same", "same", "other", "same"]
        results = timed(lambda: registry.map(prompts, executor=client.get_executor(), progress="text"))
        assert [type(result) for result in results] == [Completion] * 4
        assert [result.text for result in results] == [f"echo: {prompt}" for prompt in prompts]
        assert len(server.requests) == 4
        assert "provider_kit map: 4/4 done, 0 failed" in capsys.readouterr().err
        assert registry["p"]._transport._session is None  # the parent sent nothing itself
    assert server.errors == []


def hold_every_call(server: LoopbackServer, gate: Any) -> Callable[[RecordedRequest], Reply]:
    """A responder: the simulator's echo-like answer, held until ``gate`` opens."""

    def respond(request: RecordedRequest) -> Reply:
        reply = server.completion_reply("held")
        reply.hang = gate
        return reply

    return respond


@pytest.mark.slow
def test_a_dask_worker_killed_mid_batch_fails_its_prompt_and_the_batch_returns(client: Client) -> None:
    with LoopbackServer(SOME_KIND, api_key=KEY) as server:
        gate = server.gate()
        server.enqueue(hold_every_call(server, gate), times=20)
        registry = registry_for(SOME_KIND, server)
        prompts = [f"t{index}" for index in range(4)]
        join = in_thread(lambda: registry.map(prompts, executor=client.get_executor()), wait=HANG)
        # Both workers are in the middle of a call: kill one of them as the OOM killer would.
        server.wait_for_requests(2, timeout=HANG)
        victim = sorted(client.run(os.getpid).values())[0]
        os.kill(victim, signal.SIGKILL)  # a killed process runs no more code: its call never ends
        gate.open()
        results: List[Any] = join()
    # The victim's tasks fail: the one it was running, and the one Dask may have queued on it
    # (a small batch is handed to the workers at once). Every other prompt is answered.
    lost = [result for result in results if isinstance(result, ExecutorError)]
    assert 1 <= len(lost) <= 2
    for error in lost:
        assert error.sent is True and "KilledWorker" in str(error) and KEY not in str(error)
    answered = [result for result in results if not isinstance(result, ExecutorError)]
    assert len(answered) == 4 - len(lost) and all(result.text == "held" for result in answered)


def test_a_dask_client_itself_is_refused_with_the_way_to_its_executor(client: Client) -> None:
    registry = ProviderRegistry([CLASSES[SOME_KIND]("p", base_url="http://127.0.0.1:9/v1", api_key=KEY)])
    with pytest.raises(ConfigError, match=r"client\.get_executor\(\)"):
        registry.map(["a"], executor=client)  # type: ignore[arg-type]
