"""An interrupted ``registry.map``: Ctrl-C gives control back at once with every answer so far
(``MapInterrupted``), and a batch run again with the response cache sends only the prompts
that have no answer yet."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any, List

import pytest
from _kinds import CLASSES, SOME_KIND
from _support import KEY

from provider_kit import Completion, MapInterrupted, ProviderRegistry
from provider_kit.errors import ServerError
from provider_kit.testing import LoopbackServer, Reply

PROMPTS = [f"ticket {index}" for index in range(8)]


def _sent(server: LoopbackServer) -> List[str]:
    """The ticket each request asked about."""
    found = []
    for request in server.requests:
        text = json.dumps(request.json())
        found += [prompt for prompt in PROMPTS if f'"{prompt}"' in text]
    return found


def _echo(server: LoopbackServer, request: Any) -> Reply:
    """The simulator's own answer (what it sends when no reply is queued)."""
    return server._wire.simulate(server, request)  # type: ignore[union-attr]


def _wait_for_map_threads() -> None:
    """Calls left running by an interrupted map finish in the background: wait for them."""
    for thread in threading.enumerate():
        if thread.name.startswith("provider_kit-map"):
            thread.join(timeout=30)


class _Interrupting(CLASSES[SOME_KIND]):  # type: ignore[misc,valid-type]
    """A provider whose call for one prompt raises KeyboardInterrupt (as Ctrl-C in a call would)."""

    interrupt_on = "ticket 3"

    def complete(self, prompt: Any, **kwargs: Any) -> Completion:
        if prompt == self.interrupt_on:
            raise KeyboardInterrupt
        return super().complete(prompt, **kwargs)


def test_an_interrupted_map_run_again_with_the_cache_sends_only_unanswered_prompts(tmp_path: Path):
    with LoopbackServer(SOME_KIND, api_key=KEY) as server:
        provider = _Interrupting("tickets", api_key=KEY, base_url=server.base_url,
                                 response_cache=str(tmp_path / "cache.sqlite3"))
        with ProviderRegistry([provider]) as registry:
            with pytest.raises(MapInterrupted) as caught:
                registry.map(PROMPTS, max_workers=1, progress=False)
            interrupted = caught.value
            assert isinstance(interrupted, KeyboardInterrupt)
            answered = [index for index, result in enumerate(interrupted.results) if result is not None]
            assert answered == [0, 1, 2] and interrupted.done == 3  # one worker: in order
            assert all(isinstance(result, Completion) for result in interrupted.results[:3])
            assert interrupted.results[3] is None
            _wait_for_map_threads()
            first_run = _sent(server)
            assert first_run[:3] == PROMPTS[:3]

            provider.interrupt_on = ""
            results = registry.map(PROMPTS, max_workers=4, progress=False)
            assert [result.text for result in results] == [f"echo: {prompt}" for prompt in PROMPTS]
            # Every prompt was sent exactly once over both runs: the second run sent only the
            # ones the first left unanswered.
            assert sorted(_sent(server)) == sorted(PROMPTS)
            assert [result.cached for result in results[:3]] == [True, True, True]
            assert not results[3].cached


def test_a_batch_that_failed_midway_resumes_from_the_cache(tmp_path: Path):
    with LoopbackServer(SOME_KIND, api_key=KEY) as server:
        config = {"cache": str(tmp_path / "cache.sqlite3"),
                  "providers": {"main": {"type": SOME_KIND, "api_key": KEY, "base_url": server.base_url,
                                         "max_retries": 0}}}
        failing = {"ticket 5"}

        def answer(request: Any) -> Reply:
            text = json.dumps(request.json())
            if any(f'"{prompt}"' in text for prompt in failing):
                return server.error_reply(500)
            return _echo(server, request)

        server.enqueue(answer, times=100)
        with ProviderRegistry.from_config(config) as registry:
            first = registry.map(PROMPTS, progress=False)
            assert isinstance(first[5], ServerError)
            failing.clear()
            second = registry.map(PROMPTS, progress=False)
        assert all(isinstance(result, Completion) for result in second)
        assert [result.cached for result in second] == [index != 5 for index in range(len(PROMPTS))]
        assert sorted(_sent(server)) == sorted([*PROMPTS, "ticket 5"])


class _Counting(CLASSES[SOME_KIND]):  # type: ignore[misc,valid-type]
    """Counts the answers it has returned."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answered = threading.Semaphore(0)

    def complete(self, prompt: Any, **kwargs: Any) -> Completion:
        completion = super().complete(prompt, **kwargs)
        self.answered.release()
        return completion


def test_ctrl_c_returns_at_once_with_the_answers_received(make):
    """A real SIGINT while map waits for a call that hangs: control comes back at once."""
    with LoopbackServer(SOME_KIND, api_key=KEY) as server:
        hang = server.gate()

        def answer(request: Any) -> Reply:
            if '"ticket 7"' in json.dumps(request.json()):
                return Reply(200, hang=hang)
            return _echo(server, request)

        server.enqueue(answer, times=100)
        provider = _Counting("tickets", api_key=KEY, base_url=server.base_url, timeout=60)
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        pressed = threading.Event()

        def press_ctrl_c() -> None:
            # Once ticket 7 hangs at the server and the seven others are answered.
            if hang.wait_reached(timeout=20) and all(provider.answered.acquire(timeout=20) for _ in range(7)):
                pressed.set()
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # type: ignore[arg-type]

        presser = threading.Thread(target=press_ctrl_c, daemon=True)
        with ProviderRegistry([provider]) as registry:
            try:
                presser.start()
                started = time.monotonic()
                with pytest.raises(MapInterrupted) as caught:
                    registry.map(PROMPTS, max_workers=8, progress=False)
                elapsed = time.monotonic() - started
            finally:
                hang.open()
                presser.join(timeout=30)
                signal.signal(signal.SIGINT, previous)
        assert pressed.is_set()
        assert elapsed < 15  # the hanging call has a 60 s deadline: map did not wait for it
        results = caught.value.results
        assert results[7] is None
        answered = [result for result in results if result is not None]
        assert all(isinstance(result, Completion) for result in answered)
        # An answer returned a moment before the signal may not be filed yet; all others are.
        assert len(answered) >= 6
        assert "prompts answered" in str(caught.value) and "KeyboardInterrupt" not in str(caught.value)


def test_ctrl_c_on_an_executor_keeps_every_answer_back():
    """A KeyboardInterrupt while ``map(executor=...)`` hands prompts over (here: raised by the
    executor's ``submit`` in the caller's thread, as Ctrl-C would be): MapInterrupted carrying
    every answer back by then, not a bare KeyboardInterrupt that loses them."""
    from concurrent.futures import ThreadPoolExecutor

    class CtrlCAtTheLastPrompt(ThreadPoolExecutor):
        submitted = 0

        def submit(self, *args: Any, **kwargs: Any) -> Any:
            self.submitted += 1
            if self.submitted == len(PROMPTS):
                raise KeyboardInterrupt
            return super().submit(*args, **kwargs)

    with LoopbackServer(SOME_KIND, api_key=KEY) as server:
        provider = CLASSES[SOME_KIND]("tickets", api_key=KEY, base_url=server.base_url, timeout=60)
        with ProviderRegistry([provider]) as registry, CtrlCAtTheLastPrompt(2) as pool, pytest.raises(
            MapInterrupted
        ) as caught:
            registry.map(PROMPTS, executor=pool, max_workers=2, progress=False)
    results = caught.value.results
    assert results[-1] is None  # never handed over
    # With two prompts out at a time, the last is handed over once five have come back.
    back = [index for index, result in enumerate(results) if result is not None]
    assert len(back) >= len(PROMPTS) - 3
    assert all(results[index].text == f"echo: ticket {index}" for index in back)
    assert "prompts answered" in str(caught.value)
