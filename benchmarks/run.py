"""Benchmarks: provider_kit against the floor (bare requests, http.client) and the SDKs users pick.

Usage::

    python3 benchmarks/run.py [--quick] [--out benchmarks/results.md] [--clients KEY,KEY...]

Prints a markdown report and writes it to ``--out``. Optional libraries (openai, anthropic,
ollama, litellm) are measured when installed and skipped with a note otherwise. Exits 1 if a
floor or provider_kit client failed. See benchmarks/README.md for what each scenario measures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _guard  # noqa: E402 - the guard goes in before any client library is imported

_guard.forbid_non_loopback()

import _capability_clients  # noqa: E402
import _capability_scenarios as caps  # noqa: E402
import _clients  # noqa: E402
import _embed_bench  # noqa: E402
import _report  # noqa: E402
import _scenarios as sc  # noqa: E402
import _tool_clients  # noqa: E402

THREADS = 16
#: Rounds and sizes. Per-call batches are smaller for slow clients; results are per call.
FULL: Dict[str, Any] = dict(import_reps=15, import_heavy_reps=3, call_rounds=15, batch=200, thread_rounds=5,
            thread_calls=40, chunk_rounds=7, stall=0.3, stream_rounds=5, stream_words=2000,
            fan_rounds=5, mem_rounds=2, mem_calls=1000, cap_rounds=15, cap_batch=100, embed_rounds=3,
            embed_texts=_embed_bench.TEXTS)
QUICK: Dict[str, Any] = dict(import_reps=2, import_heavy_reps=1, call_rounds=2, batch=20, thread_rounds=1,
             thread_calls=3, chunk_rounds=1, stall=0.3, stream_rounds=1, stream_words=200,
             fan_rounds=1, mem_rounds=1, mem_calls=20, cap_rounds=2, cap_batch=10, embed_rounds=1,
             embed_texts=300)
#: Relative cost per call, to size batches so that no client dominates the run time.
SLOW = {"openai": 2, "anthropic": 2, "ollama": 2, "litellm": 10}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few iterations: checks, not numbers")
    parser.add_argument("--out", default=os.path.join(HERE, "results.md"), help="markdown file to write")
    parser.add_argument("--clients", help="comma-separated client keys: " + ", ".join(_clients.BY_KEY))
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    notes: List[str] = []
    keys = _choose_clients(args, notes)
    results: Dict[str, Any] = {"plan": plan, "keys": keys, "errors": {}, "load": [_load()]}

    modules = list(dict.fromkeys(_clients.BY_KEY[key].module for key in keys))
    sc.log(f"import cost: {', '.join(modules)}")
    results["import"] = sc.import_cost(modules, plan["import_reps"], plan["import_heavy_reps"])

    server, urls = _start_server()
    try:
        sc.log("memory (fresh interpreters)")
        call_keys = [key for key in keys if key not in ("requests-no-env", "pk-anthropic", "pk-ollama")]
        results["memory"] = sc.memory({key: _clients.BY_KEY[key].module for key in call_keys}, call_keys,
                                      urls, plan["mem_rounds"], plan["mem_calls"])
        clients = _working_clients(keys, urls, 1, results["errors"])
        batch = {key: max(2, plan["batch"] // SLOW.get(key, 1)) for key in clients}
        sc.log(f"per call: {plan['call_rounds']} rounds")
        results["per_call"] = sc.per_call(clients, plan["call_rounds"], batch)
        sc.log(f"long stream: {plan['stream_words']} events")
        results["long_stream"] = sc.long_stream(clients, plan["stream_rounds"], plan["stream_words"])
        for client in clients.values():
            client.close()
        sc.log("response cache hit")
        results["cache_hit"] = sc.cache_hit(urls["openai"], plan["call_rounds"], plan["batch"])
        _capabilities(results, keys, urls, plan, notes)
        sc.log(f"embeddings: {plan['embed_texts']:,} texts x {_embed_bench.DIMENSIONS}, {plan['embed_rounds']} rounds")
        results["embeddings"] = _embed_bench.scenario(urls, plan["embed_rounds"], plan["embed_texts"],
                                                      with_sdk="openai" in keys)
        sc.log(f"threaded: {THREADS} threads")
        calls = {key: max(2, plan["thread_calls"] // SLOW.get(key, 1)) for key in clients}
        results["threaded"] = sc.threaded(
            lambda key: _clients.BY_KEY[key].factory(urls[_clients.BY_KEY[key].protocol], THREADS),
            list(clients), plan["thread_rounds"], THREADS, calls)
    finally:
        results["server"] = _stop_server(server)
    sc.log("first chunk (in-process server with a gate)")
    stream_keys = [key for key in clients if key != "requests-no-env"]
    results["first_chunk"] = sc.first_chunk(
        {key: _single_thread_builder(key) for key in stream_keys}, plan["chunk_rounds"], plan["stall"])
    sc.log("health fan-out")
    results["fan_out"] = sc.fan_out(plan["fan_rounds"])
    results["load"].append(_load())
    if _guard.refused:
        notes.append(f"refused non-loopback connections in this process: {sorted(set(_guard.refused))}")

    report = _report.render(results, notes, quick=args.quick, argv=sys.argv[1:] if argv is None else argv,
                            threads=THREADS)
    sys.stdout.write(report)
    with open(args.out, "w", encoding="utf-8") as handle:
        handle.write(report)
    sc.log(f"wrote {args.out}")
    failed = [key for key in results["errors"] if _clients.BY_KEY[key].kind != "alternative"]
    for scenario, specs in _report.CAPABILITIES:
        kinds = {spec.key: spec.kind for spec in specs}
        failed += [key for key in results[scenario]["errors"] if kinds[key] != "alternative"]
    failed += [key for key in results["embeddings"]["errors"] if key == "pk"]
    return 1 if failed or results["server"].get("errors") else 0


def _capabilities(results: Dict[str, Any], keys: List[str], urls: Dict[str, str], plan: Dict[str, Any],
                  notes: List[str]) -> None:
    """Structured output and images, per protocol: the floor's body checked against provider_kit's
    first (an in-process server), then every chosen client measured against the server process;
    then the streamed tool calls (the server's answer does not depend on the request)."""
    for scenario, specs, measure in (("structured", _capability_clients.STRUCTURED, caps.structured),
                                     ("image", _capability_clients.IMAGE, caps.image)):
        chosen = caps.choose(specs, keys, notes, scenario)
        errors = caps.same_wire(chosen, structured=scenario == "structured")
        sc.log(f"{scenario}: {plan['cap_rounds']} rounds, {len(chosen)} clients")
        results[scenario] = measure(chosen, urls, plan["cap_rounds"], plan["cap_batch"], SLOW, errors)
    chosen = caps.choose(_tool_clients.TOOL_STREAM, keys, notes, "tool stream")
    sc.log(f"streamed tool calls: {plan['cap_rounds']} rounds, {len(chosen)} clients")
    results["tool_stream"] = caps.tool_stream(chosen, urls, plan["cap_rounds"], max(2, plan["cap_batch"] // 4), SLOW,
                                              {})


def _choose_clients(args: argparse.Namespace, notes: List[str]) -> List[str]:
    if args.clients:
        wanted = [key.strip() for key in args.clients.split(",") if key.strip()]
        unknown = [key for key in wanted if key not in _clients.BY_KEY]
        if unknown:
            raise SystemExit(f"unknown client keys {unknown}; choose from {list(_clients.BY_KEY)}")
    else:
        wanted = [spec.key for spec in _clients.SPECS if not (args.quick and spec.kind == "alternative")]
        if args.quick:
            notes.append("--quick measures the floor and provider_kit only (the SDKs' imports alone take "
                         "seconds); name them with --clients to include them.")
    keys = []
    for key in wanted:
        if _clients.BY_KEY[key].available():
            keys.append(key)
        else:
            notes.append(f"{_clients.BY_KEY[key].label}: not installed, skipped "
                         f"(pip install {_clients.BY_KEY[key].module}).")
    return keys


def _start_server() -> Tuple[subprocess.Popen, Dict[str, str]]:  # type: ignore[type-arg]
    process = subprocess.Popen([sys.executable, os.path.join(HERE, "_serve.py")], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, cwd=HERE)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise RuntimeError("the loopback server process did not start")
    return process, json.loads(line)


def _stop_server(process: subprocess.Popen) -> Dict[str, Any]:  # type: ignore[type-arg]
    out, _ = process.communicate(timeout=60)  # closing stdin stops it
    lines = out.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def _working_clients(keys: List[str], urls: Dict[str, str], threads: int,
                     errors: Dict[str, str]) -> Dict[str, _clients.Client]:
    """Build each client and try it once; a failing alternative is skipped with a note."""
    clients = {}
    for key in keys:
        spec = _clients.BY_KEY[key]
        try:
            client = spec.factory(urls[spec.protocol], threads)
            if client.complete("probe") != "echo: probe" or "".join(client.stream("probe")) != "echo: probe":
                raise AssertionError("wrong reply to a probe")
        except Exception as exc:
            errors[key] = f"{type(exc).__name__}: {exc}"[:200]
            sc.log(f"{key}: failed its probe, skipped: {errors[key]}")
            continue
        clients[key] = client
    return clients


def _single_thread_builder(key: str) -> Callable[[str], _clients.Client]:
    def build(base_url: str) -> _clients.Client:
        return _clients.BY_KEY[key].factory(base_url, 1)

    return build


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


if __name__ == "__main__":
    raise SystemExit(main())
