"""The measurements: each scenario runs every client against the same loopback servers, interleaved.

Interleaving: every round runs each client once, in an order rotated by one client per round
(A B C, B C A, C A B...), so slow drift of the machine (frequency, other load) lands on every
client alike. Ratios are taken within a round (paired) and then the median is reported.
"""

from __future__ import annotations

import gc
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import _clients

HERE = os.path.dirname(os.path.abspath(__file__))
CHAT_PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages", "ollama": "/api/chat"}
Result = Dict[str, Any]


def rotated(items: Sequence[Any], round_number: int) -> List[Any]:
    shift = round_number % len(items) if items else 0
    return list(items[shift:]) + list(items[:shift])


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- import cost -------------------------------------------------------------------------------


def child_env() -> Dict[str, str]:
    """The environment for timed children: bytecode caching on, in a cache of our own.

    This machine may set PYTHONDONTWRITEBYTECODE=1; a child that cannot cache would measure
    compilation, not import. The cache prefix keeps the .pyc files out of the source trees.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "provider_kit-bench-pycache")
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_python(args: List[str], env: Dict[str, str]) -> Tuple[float, float, str, str]:
    """(wall s, CPU s, stdout, stderr) of one fresh interpreter; its CPU is counted once reaped."""
    cpu_started, started = _children_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, cwd=HERE)
    elapsed, cpu = time.perf_counter() - started, _children_cpu() - cpu_started
    if done.returncode != 0:
        raise RuntimeError(f"python {' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    return elapsed, cpu, done.stdout, done.stderr


def _importtime(stderr: str, module: str) -> Tuple[float, List[Tuple[float, str]]]:
    """(cumulative ms of ``module``'s own import line, [(self ms, name)] of every line)."""
    cumulative = float("nan")
    lines = []
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if not match:
            continue
        self_us, cumulative_us, indent, name = match.groups()
        lines.append((int(self_us) / 1000.0, name))
        if name == module and not indent:
            cumulative = int(cumulative_us) / 1000.0
    return cumulative, lines


def import_cost(modules: List[str], reps: int, heavy_reps: int) -> Result:
    """Wall and CPU time of ``python -c "import X"`` minus ``python -c pass``; ``-X importtime``.

    A module whose import takes over a second is timed only ``heavy_reps`` times.
    """
    env = child_env()
    targets = ["pass", *modules]
    code = {name: "pass" if name == "pass" else f"import {name}" for name in targets}
    for name in targets:  # warm the bytecode cache (and the OS file cache)
        _run_python(["-c", code[name]], env)
    samples: Dict[str, List[float]] = {name: [] for name in targets}
    cpu: Dict[str, List[float]] = {name: [] for name in targets}
    heavy = set()
    for round_number in range(reps):
        for name in rotated(targets, round_number):
            if name in heavy and round_number >= heavy_reps:
                continue
            elapsed, cpu_s, _, _ = _run_python(["-c", code[name]], env)
            samples[name].append(elapsed * 1000.0)
            cpu[name].append(cpu_s * 1000.0)
            if elapsed > 1.0:
                heavy.add(name)
    base, cpu_base = median(samples["pass"]), median(cpu["pass"])
    result: Result = {"pass_ms": base, "pass_cpu_ms": cpu_base, "modules": {}}
    for name in modules:
        counting = f"import sys; a = len(sys.modules); {code[name]}; print(len(sys.modules) - a)"
        _, _, out, stderr = _run_python(["-X", "importtime", "-c", counting], env)
        cumulative, _ = _importtime(stderr, name)
        result["modules"][name] = {
            "ms": median(samples[name]) - base,
            "cpu_ms": median(cpu[name]) - cpu_base,
            "samples": len(samples[name]),
            "importtime_ms": cumulative,
            "modules_loaded": int(out.strip()),
        }
    if "provider_kit" in modules and "requests" in modules:
        result["provider_kit_over_requests"] = _over_requests(env)
    return result


def _over_requests(env: Dict[str, str]) -> Result:
    """What ``import provider_kit`` adds once ``requests`` is loaded: time and module names."""
    _, _, _, stderr = _run_python(["-X", "importtime", "-c", "import requests; import provider_kit"], env)
    cumulative, lines = _importtime(stderr, "provider_kit")
    names = [name for _, name in lines]
    after = lines[names.index("requests") + 1 :] if "requests" in names else lines
    heaviest = sorted(after, reverse=True)[:8]
    _, _, out, _ = _run_python(
        ["-c", "import sys, json, requests; a = set(sys.modules); import provider_kit; print(json.dumps("
               "sorted(m for m in set(sys.modules) - a if not m.startswith('provider_kit'))))"],
        env,
    )
    return {"importtime_ms": cumulative, "heaviest": heaviest, "foreign_modules": json.loads(out)}


# -- sequential calls --------------------------------------------------------------------------


def _check(key: str, prompt: str, text: str) -> None:
    if text != "echo: " + prompt:
        raise AssertionError(f"{key}: wrong reply {text[:80]!r} for {prompt!r}")


def per_call(clients: Dict[str, _clients.Client], rounds: int, batch: Dict[str, int]) -> Result:
    """Sequential non-streamed completions: µs per call (wall and this process's CPU)."""
    return paired_calls({key: client.complete for key, client in clients.items()}, rounds, batch, _check)


def paired_calls(calls: Dict[str, Callable[[str], Any]], rounds: int, batch: Dict[str, int],
                 check: Callable[[str, str, Any], None], prompt: str = "call") -> Result:
    """Sequential calls, interleaved: µs per call (wall and this process's CPU).

    Each result is checked with ``check(key, prompt, result)`` after its batch, outside the
    timed loop, so a client cannot look fast by answering wrongly and checking costs no one.
    """
    keys = list(calls)
    for key in keys:  # warm up: connections open, lazy imports done, caches filled
        for number in range(20):
            check(key, f"{prompt} warm {number}", calls[key](f"{prompt} warm {number}"))
    wall: Dict[str, List[float]] = {key: [] for key in keys}
    cpu: Dict[str, List[float]] = {key: [] for key in keys}
    for round_number in range(rounds):
        for key in rotated(keys, round_number):
            call, count = calls[key], batch[key]
            prompts = [f"{prompt} {round_number:03d} {number:06d}" for number in range(count)]
            gc.collect()
            cpu_started, started = time.process_time(), time.perf_counter()
            results = [call(text) for text in prompts]
            elapsed, cpu_elapsed = time.perf_counter() - started, time.process_time() - cpu_started
            for text, result in zip(prompts, results):
                check(key, text, result)
            wall[key].append(elapsed / count * 1e6)
            cpu[key].append(cpu_elapsed / count * 1e6)
    return {key: {"wall_us": wall[key], "cpu_us": cpu[key]} for key in keys}


def cache_hit(base_url: str, rounds: int, batch: int) -> Result:
    """A response-cache hit against an uncached call of the same provider (OpenAI wire, server in
    another process): µs of this process's CPU per call, and their ratio per round (paired)."""
    from provider_kit import OpenAIProvider, ResponseCache

    with tempfile.TemporaryDirectory() as directory:
        cache = ResponseCache(os.path.join(directory, "bench.sqlite3"))
        plain = OpenAIProvider("plain", base_url=base_url, api_key=_clients.API_KEY)
        cached = OpenAIProvider("cached", base_url=base_url, api_key=_clients.API_KEY, response_cache=cache)
        stored = [f"cached prompt {number:06d}" for number in range(batch)]
        for prompt in stored:  # fill the cache (and warm both providers up)
            cached.complete(prompt)
            plain.complete(prompt)
        cpu: Dict[str, List[float]] = {"uncached": [], "hit": []}
        for round_number in range(rounds):
            for key in rotated(["uncached", "hit"], round_number):
                if key == "uncached":
                    prompts, call = [f"fresh {round_number:03d} {n:06d}" for n in range(batch)], plain.complete
                else:
                    prompts, call = stored, cached.complete
                gc.collect()
                started = time.process_time()
                results = [call(prompt) for prompt in prompts]
                cpu[key].append((time.process_time() - started) / batch * 1e6)
                if any(result.cached != (key == "hit") for result in results):
                    raise AssertionError(f"cache benchmark: a {key} call was answered wrongly")
        plain.close()
        cached.close()
        cache.close()
    ratios = [hit / uncached for hit, uncached in zip(cpu["hit"], cpu["uncached"]) if uncached > 0]
    return {"cpu_us": cpu, "ratio": median(ratios)}


def threaded(build: Callable[[str], _clients.Client], keys: List[str], rounds: int, threads: int,
             calls: Dict[str, int]) -> Result:
    """``threads`` threads sharing one client; calls per second and CPU per call, every reply checked."""
    clients = {key: build(key) for key in keys}
    rates: Dict[str, List[float]] = {key: [] for key in keys}
    cpu: Dict[str, List[float]] = {key: [] for key in keys}
    try:
        for key in keys:
            _threaded_once(key, clients[key], threads, 2)  # warm: every thread's connection open
        for round_number in range(rounds):
            for key in rotated(keys, round_number):
                rate, cpu_us = _threaded_once(key, clients[key], threads, calls[key])
                rates[key].append(rate)
                cpu[key].append(cpu_us)
    finally:
        for client in clients.values():
            client.close()
    return {key: {"calls_per_s": rates[key], "cpu_us": cpu[key]} for key in keys}


def _threaded_once(key: str, client: _clients.Client, threads: int, calls: int) -> Tuple[float, float]:
    start = threading.Barrier(threads + 1)
    failures: List[BaseException] = []

    def worker(number: int) -> None:
        prompts = [f"thread {number:02d} call {index:05d}" for index in range(calls)]
        start.wait()
        try:
            for prompt in prompts:
                _check(key, prompt, client.complete(prompt))
        except BaseException as exc:  # reported below, so a failing client cannot look fast
            failures.append(exc)

    workers = [threading.Thread(target=worker, args=(number,), daemon=True) for number in range(threads)]
    for thread in workers:
        thread.start()
    gc.collect()
    start.wait()
    cpu_started, started = time.process_time(), time.perf_counter()
    for thread in workers:
        thread.join(300)
    elapsed, cpu_elapsed = time.perf_counter() - started, time.process_time() - cpu_started
    if failures:
        raise RuntimeError(f"{key}: {len(failures)} of {threads} threads failed: {failures[0]!r}")
    return threads * calls / elapsed, cpu_elapsed / (threads * calls) * 1e6


# -- streaming ---------------------------------------------------------------------------------


class _StampedEvent(threading.Event):
    """An Event that remembers when it was set: the server thread sets it right after writing."""

    stamp = 0.0

    def set(self) -> None:
        self.stamp = time.perf_counter()
        super().set()


def first_chunk(builders: Dict[str, Callable[[str], _clients.Client]], rounds: int, stall: float) -> Result:
    """Time from the server writing the first text event to the client yielding it.

    The server sends the first event, then stalls at a gate, for chunked and for
    close-delimited bodies. A client that waits for a full buffer sees the event only when
    the gate opens, ``stall`` seconds later.
    """
    from provider_kit.testing import Gate, LoopbackServer

    keys = list(builders)
    protocols = {_clients.BY_KEY[key].protocol for key in keys}
    servers = {protocol: LoopbackServer(protocol).start() for protocol in protocols}
    out: Result = {key: {"chunked": [], "close": []} for key in keys}
    try:
        clients = {key: builders[key](servers[_clients.BY_KEY[key].protocol].base_url) for key in keys}
        for round_number in range(rounds):
            for framing in ("chunked", "close"):
                for key in rotated(keys, round_number):
                    server = servers[_clients.BY_KEY[key].protocol]
                    gate = Gate()
                    if not hasattr(gate, "_reached"):
                        raise RuntimeError("provider_kit.testing.Gate changed: update the benchmark's stamp")
                    stamped = gate._reached = _StampedEvent()
                    server.enqueue(server.stream_reply(["Hel", gate, "lo"], framing=framing),
                                   path=CHAT_PATHS[server.protocol])
                    seen = threading.Event()
                    opener = threading.Thread(target=_open_after, args=(gate, seen, stall), daemon=True)
                    opener.start()
                    pieces: List[str] = []
                    first_at = 0.0
                    for piece in clients[key].stream("hi"):
                        if not pieces:
                            first_at = time.perf_counter()
                            seen.set()
                        pieces.append(piece)
                    opener.join(10)
                    if "".join(pieces) != "Hello":
                        raise AssertionError(f"{key}: streamed {pieces!r}, not 'Hello'")
                    # Clamped at 0: the server stamps just after its write returns, and a fast
                    # client may already hold the bytes by then.
                    latency = first_at - stamped.stamp
                    out[key][framing].append(max(latency, 0.0) * 1000.0)
        for client in clients.values():
            client.close()
    finally:
        for server in servers.values():
            server.close()
    return out


def _open_after(gate: Any, seen: threading.Event, stall: float) -> None:
    gate.wait_reached(10)
    seen.wait(stall)  # a client that buffers sees nothing until this times out
    gate.open()


def long_stream(clients: Dict[str, _clients.Client], rounds: int, words: int) -> Result:
    """A stream of ``words`` small events (one per word): total wall and CPU time."""
    prompt = " ".join(f"w{number}" for number in range(words))
    expected = "echo: " + prompt
    keys = list(clients)
    out: Result = {key: {"wall_ms": [], "cpu_ms": []} for key in keys}
    for key in keys:
        "".join(clients[key].stream("warm up"))
    for round_number in range(rounds):
        for key in rotated(keys, round_number):
            gc.collect()
            cpu_started, started = time.process_time(), time.perf_counter()
            text = "".join(clients[key].stream(prompt))
            out[key]["wall_ms"].append((time.perf_counter() - started) * 1000.0)
            out[key]["cpu_ms"].append((time.process_time() - cpu_started) * 1000.0)
            if text != expected:
                raise AssertionError(f"{key}: long stream differs ({len(text)} of {len(expected)} chars)")
    return out


# -- health fan-out ----------------------------------------------------------------------------


def fan_out(rounds: int, providers: int = 8, delay: float = 0.2, deadline: float = 1.0) -> Result:
    """``health_check_all`` over ``providers`` each answering in ``delay`` s; then one that hangs."""
    import requests

    from provider_kit import OpenAIProvider, ProviderRegistry
    from provider_kit.testing import Gate, LoopbackServer, Reply

    models = json.dumps({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]}).encode()
    slow_reply = Reply(200, chunks=[delay, models], framing="length", content_type="application/json")
    out: Result = {"fan_out": [], "floor": [], "hung": []}
    with LoopbackServer("openai") as server:
        def registry() -> Any:
            return ProviderRegistry([
                OpenAIProvider(f"p{number}", base_url=server.base_url, api_key=_clients.API_KEY)
                for number in range(providers)
            ])

        for _ in range(rounds):
            # provider_kit: every provider answers in `delay` seconds.
            server.enqueue(slow_reply, path="/v1/models", times=providers)
            with registry() as checks:
                started = time.perf_counter()
                report = checks.health_check_all(timeout=5.0)
                wall = time.perf_counter() - started
            statuses = [report[name] for name in report]
            if not all(status.ok for status in statuses):
                raise AssertionError(f"fan-out: {[s.error for s in statuses if not s.ok]}")
            slowest = max(status.latency_s or 0.0 for status in statuses)
            out["fan_out"].append({"wall_ms": wall * 1000, "over_slowest_ms": (wall - slowest) * 1000})

            # The floor: one thread per provider, each with its own requests.Session.
            server.enqueue(slow_reply, path="/v1/models", times=providers)
            out["floor"].append(_threads_floor(requests, server.base_url + "/models", providers))

            # One provider hangs: the report must come back at the deadline.
            gate = Gate()
            server.enqueue(slow_reply, path="/v1/models", times=providers - 1)
            server.enqueue(Reply(200, json={"object": "list", "data": []}, hang=gate), path="/v1/models")
            with registry() as checks:
                started = time.perf_counter()
                report = checks.health_check_all(timeout=deadline)
                wall = time.perf_counter() - started
            gate.open()
            failed = [name for name in report if not report[name].ok]
            if len(failed) != 1:
                raise AssertionError(f"hung fan-out: expected one failure, got {failed}")
            out["hung"].append({"wall_ms": wall * 1000, "over_deadline_ms": (wall - deadline) * 1000})
    return out


def _threads_floor(requests: Any, url: str, count: int) -> Result:
    times: List[float] = [0.0] * count

    def check(number: int) -> None:
        with requests.Session() as session:
            began = time.perf_counter()
            session.get(url, timeout=5).json()
            times[number] = time.perf_counter() - began

    workers = [threading.Thread(target=check, args=(number,)) for number in range(count)]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(10)
    wall = time.perf_counter() - started
    return {"wall_ms": wall * 1000, "over_slowest_ms": (wall - max(times)) * 1000}


# -- memory ------------------------------------------------------------------------------------


def memory(modules: Dict[str, str], call_keys: List[str], urls: Dict[str, str], rounds: int,
           calls: int) -> Result:
    """Peak RSS of a fresh interpreter after importing each module, and after ``calls`` calls."""
    env = child_env()
    jobs: List[Tuple[str, str, List[str]]] = [("import", "-", ["import", "-"])]
    jobs += [("import", module, ["import", module]) for module in modules.values()]
    jobs += [
        ("calls", key, ["calls", key, urls[_clients.BY_KEY[key].protocol], str(calls)]) for key in call_keys
    ]
    samples: Dict[Tuple[str, str], List[float]] = {(mode, name): [] for mode, name, _ in jobs}
    for round_number in range(rounds):
        for mode, name, args in rotated(jobs, round_number):
            _, _, out, _ = _run_python(["_child.py", *args], env)
            answer = json.loads(out.strip().splitlines()[-1])
            if answer["refused"]:
                log(f"note: {name} tried to reach {answer['refused']} (refused)")
            samples[(mode, name)].append(answer["peak_rss_kib"] / 1024.0)
    return {f"{mode}:{name}": median(values) for (mode, name), values in samples.items()}


def optional_version(module: str) -> Optional[str]:
    try:
        from importlib.metadata import version

        return version({"provider_kit": "provider_kit"}.get(module, module))
    except Exception:
        return None
