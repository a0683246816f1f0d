"""Benchmarks: provider_kit against the floor (bare requests, http.client) and the SDKs users pick.

Usage::

    python3 benchmarks/run.py [--quick] [--out benchmarks/results.md] [--clients KEY,KEY...]

Prints a markdown report and writes it to ``--out``. Optional libraries (openai, anthropic,
ollama, litellm) are measured when installed and skipped with a note otherwise. Exits 1 if a
floor or provider_kit client failed. See benchmarks/README.md for what each scenario measures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
from typing import Any, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _guard  # noqa: E402 - the guard goes in before any client library is imported

_guard.forbid_non_loopback()

import _clients  # noqa: E402
import _scenarios as sc  # noqa: E402

THREADS = 16
#: Rounds and sizes. Per-call batches are smaller for slow clients; results are per call.
FULL = dict(import_reps=15, import_heavy_reps=5, call_rounds=15, batch=200, thread_rounds=5,
            thread_calls=40, chunk_rounds=7, stall=0.3, stream_rounds=7, stream_words=2000,
            fan_rounds=5, mem_rounds=2, mem_calls=1000)
QUICK = dict(import_reps=2, import_heavy_reps=1, call_rounds=2, batch=20, thread_rounds=1,
             thread_calls=3, chunk_rounds=1, stall=0.3, stream_rounds=1, stream_words=200,
             fan_rounds=1, mem_rounds=1, mem_calls=20)
#: Relative cost per call, to size batches so that no client dominates the run time.
SLOW = {"openai": 2, "anthropic": 2, "ollama": 2, "litellm": 10}
SCENARIO_ROWS = [
    "Import cost", "Per call, sequential", f"Threaded, {THREADS} threads", "First chunk, chunked",
    "First chunk, close-delimited", "Long stream", "Health fan-out, 8 x 200 ms",
    "Hung provider, 1 s deadline", "Peak RSS after import", "Peak RSS after calls",
]


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
        sc.log(f"threaded: {THREADS} threads")
        thread_keys = [key for key in clients]
        calls = {key: max(2, plan["thread_calls"] // SLOW.get(key, 1)) for key in thread_keys}
        results["threaded"] = sc.threaded(
            lambda key: _clients.BY_KEY[key].factory(urls[_clients.BY_KEY[key].protocol], THREADS),
            thread_keys, plan["thread_rounds"], THREADS, calls)
    finally:
        results["server"] = _stop_server(server)
    sc.log("first chunk (in-process server with a gate)")
    stream_keys = [key for key in clients if key != "requests-no-env"]
    results["first_chunk"] = sc.first_chunk(
        {key: (lambda url, key=key: _clients.BY_KEY[key].factory(url, 1)) for key in stream_keys},
        plan["chunk_rounds"], plan["stall"])
    sc.log("health fan-out")
    results["fan_out"] = sc.fan_out(plan["fan_rounds"])
    results["load"].append(_load())
    if _guard.refused:
        notes.append(f"refused non-loopback connections in this process: {sorted(set(_guard.refused))}")

    report = render(results, notes, quick=args.quick, argv=sys.argv[1:] if argv is None else argv)
    sys.stdout.write(report)
    with open(args.out, "w", encoding="utf-8") as handle:
        handle.write(report)
    sc.log(f"wrote {args.out}")
    failed = [key for key in results["errors"] if _clients.BY_KEY[key].kind != "alternative"]
    return 1 if failed or results["server"].get("errors") else 0


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


# -- the report ---------------------------------------------------------------------------------


def _fmt(value: Optional[float], digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def _paired_ratio(samples: Dict[str, Dict[str, List[float]]], key: str, floor: str, field: str) -> Optional[float]:
    if key not in samples or floor not in samples:
        return None
    pairs = zip(samples[key][field], samples[floor][field])
    return sc.median([mine / theirs for mine, theirs in pairs if theirs])


def render(results: Dict[str, Any], notes: List[str], *, quick: bool, argv: List[str]) -> str:
    plan = results["plan"]
    keys = results["keys"]
    imports = results["import"]["modules"]
    per_call = results["per_call"]
    threaded = results["threaded"]
    chunks = results["first_chunk"]
    stream = results["long_stream"]
    memory = results["memory"]
    fan = results["fan_out"]
    med = sc.median
    floor = "requests"

    def mem(mode: str, key: str) -> Optional[float]:
        name = _clients.BY_KEY[key].module if mode == "import" else key
        return memory.get(f"{mode}:{name}")

    baseline_rss = memory.get("import:-")
    lines = ["# provider_kit benchmarks", ""]
    lines.append(f"{'QUICK MODE (a few iterations: a smoke check, not numbers to quote). ' if quick else ''}"
                 f"Run {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} with "
                 f"`python3 benchmarks/run.py {' '.join(argv)}`.".replace("  ", " ").replace(" `", " `"))
    load = " → ".join(_fmt(value, 1) for value in results["load"])
    lines += ["", f"{_machine(keys)} Load average (1 min) at start → end: {load}.", ""]

    # Targets
    pk = "pk-openai"
    call_ratio = _paired_ratio(per_call, pk, floor, "wall_us")
    call_ratio_no_env = _paired_ratio(per_call, pk, "requests-no-env", "wall_us")
    cpu_ratio = _paired_ratio(per_call, pk, floor, "cpu_us")
    cpu_no_env = _paired_ratio(per_call, pk, "requests-no-env", "cpu_us")
    thread_ratio = _paired_ratio(threaded, pk, floor, "calls_per_s")
    thread_cpu_ratio = _paired_ratio(threaded, pk, floor, "cpu_us")
    import_over = _get(imports, "provider_kit", "ms") - _get(imports, "requests", "ms")
    pk_keys = [key for key in keys if _clients.BY_KEY[key].kind == "provider_kit"]
    worst_chunk = {framing: max((med(chunks[key][framing]) for key in pk_keys if key in chunks), default=None)
                   for framing in ("chunked", "close")}
    fan_over = [item["over_slowest_ms"] for item in fan["fan_out"]]
    hung_over = [item["over_deadline_ms"] for item in fan["hung"]]
    stream_ratio = _paired_ratio(stream, pk, floor, "wall_ms")
    stream_cpu_ratio = _paired_ratio(stream, pk, floor, "cpu_ms")

    def status(ok: Optional[bool]) -> str:
        return "n/a" if ok is None else ("met" if ok else "**MISSED**")

    def within(value: Optional[float], limit: float, above: bool = False) -> Optional[bool]:
        if value is None or math.isnan(value):
            return None
        return value >= limit if above else value <= limit

    rows = [
        ("Import cost", f"{_signed(import_over)} ms over `import requests` "
                        f"({_fmt(_get(imports, 'provider_kit', 'ms'), 1)} vs {_fmt(_get(imports, 'requests', 'ms'), 1)} ms)",
         "≤ +15 ms", status(within(import_over, 15.0))),
        ("Per call, sequential", f"CPU {_fmt(med(_field(per_call, pk, 'cpu_us')))} µs = **{_fmt(cpu_ratio, 2)}× floor**, "
                                 f"{_fmt(cpu_no_env, 2)}× trust_env=False; wall {_fmt(med(_field(per_call, pk, 'wall_us')))} µs "
                                 f"= {_fmt(call_ratio, 2)}× floor, {_fmt(call_ratio_no_env, 2)}× trust_env=False",
         "CPU ≤ 1.00× floor", status(within(cpu_ratio, 1.0))),
        (SCENARIO_ROWS[2], f"{_fmt(med(_field(threaded, pk, 'calls_per_s')))} calls/s = {_fmt(thread_ratio, 2)}× floor; "
                           f"CPU per call {_fmt(thread_cpu_ratio, 2)}× floor = **{_fmt(_inverse(thread_cpu_ratio), 2)}× "
                           "floor's rate** at equal CPU",
         "rate ≥ 0.95× floor", status(within(_inverse(thread_cpu_ratio), 0.95, above=True))),
        ("First chunk, chunked", f"{_fmt(worst_chunk['chunked'], 1)} ms (slowest provider_kit provider)",
         "≤ 20 ms", status(within(worst_chunk["chunked"], 20.0))),
        ("First chunk, close-delimited", f"{_fmt(worst_chunk['close'], 1)} ms (slowest provider_kit provider)",
         "≤ 20 ms", status(within(worst_chunk["close"], 20.0))),
        ("Long stream", f"{plan['stream_words']} events: {_fmt(med(_field(stream, pk, 'wall_ms')), 1)} ms = "
                        f"{_fmt(stream_ratio, 2)}× floor; CPU {_fmt(stream_cpu_ratio, 2)}× floor",
         "(reported)", "–"),
        ("Health fan-out, 8 x 200 ms", f"{_fmt(med(fan_over), 1)} ms over the slowest (max {_fmt(max(fan_over), 1)})",
         "≤ 50 ms", status(within(max(fan_over), 50.0))),
        ("Hung provider, 1 s deadline", f"{_fmt(med(hung_over), 1)} ms after the deadline (max {_fmt(max(hung_over), 1)})",
         "≤ 100 ms", status(within(max(hung_over), 100.0))),
        ("Peak RSS after import", f"{_fmt(mem('import', pk), 1)} MB ({_signed(_diff(mem('import', pk), mem('import', floor)))} "
                                  f"MB vs requests; bare interpreter {_fmt(baseline_rss, 1)} MB)", "(reported)", "–"),
        ("Peak RSS after calls", f"{_fmt(mem('calls', pk), 1)} MB after {plan['mem_calls']:,} calls "
                                 f"({_signed(_diff(mem('calls', pk), mem('calls', floor)))} MB vs requests)",
         "(reported)", "–"),
    ]
    lines += ["## Targets (provider_kit OpenAIProvider unless said)", "",
              "Per call and threaded are judged on the client process's CPU time per call, which other "
              "processes on a shared machine barely move; wall-clock figures are shown beside them.", "",
              "| Scenario | Measured | Target | Result |", "|---|---|---|---|"]
    lines += [f"| {name} | {value} | {target} | {result} |" for name, value, target, result in rows]

    # Every client
    lines += ["", "## Every client, same run", "",
              f"Medians. ×floor = paired ratio to `requests.Session` in the same round. Per call: "
              f"{plan['call_rounds']} rounds of sequential calls; threaded: {THREADS} threads sharing one client; "
              f"long stream: {plan['stream_words']} events; RSS after {plan['mem_calls']:,} calls.", "",
              "| Client | Import ms | Per call µs | ×floor | CPU µs/call | ×floor | Threaded calls/s | ×floor | CPU µs/call | "
              "1st chunk ms (chunked / close) | Long stream ms | ×floor | Stream CPU ms | RSS import MB | "
              "RSS after calls MB |",
              "|---|" + "---:|" * 14]
    for key in keys:
        spec = _clients.BY_KEY[key]
        if key in results["errors"]:
            lines.append(f"| {spec.label} | failed: {results['errors'][key]} |" + " |" * 13)
            continue
        chunk = chunks.get(key)
        chunk_cell = f"{_fmt(med(chunk['chunked']), 1)} / {_fmt(med(chunk['close']), 1)}" if chunk else "–"
        lines.append(
            f"| {spec.label} | {_fmt(_get(imports, spec.module, 'ms'), 1)} | {_fmt(med(_field(per_call, key, 'wall_us')))} | "
            f"{_fmt(_paired_ratio(per_call, key, floor, 'wall_us'), 2)} | {_fmt(med(_field(per_call, key, 'cpu_us')))} | "
            f"{_fmt(_paired_ratio(per_call, key, floor, 'cpu_us'), 2)} | "
            f"{_fmt(med(_field(threaded, key, 'calls_per_s')))} | {_fmt(_paired_ratio(threaded, key, floor, 'calls_per_s'), 2)} | "
            f"{_fmt(med(_field(threaded, key, 'cpu_us')))} | "
            f"{chunk_cell} | {_fmt(med(_field(stream, key, 'wall_ms')), 1)} | "
            f"{_fmt(_paired_ratio(stream, key, floor, 'wall_ms'), 2)} | {_fmt(med(_field(stream, key, 'cpu_ms')), 1)} | "
            f"{_fmt(mem('import', key), 1)} | {_fmt(mem('calls', key), 1)} |")

    # Fan-out
    lines += ["", "## Health fan-out", "",
              "| Case | Wall ms (median) | Over slowest / deadline ms (median, max) |", "|---|---:|---:|"]
    for label, items, field in (
        ("provider_kit `health_check_all`, 8 providers x 200 ms", fan["fan_out"], "over_slowest_ms"),
        ("floor: 8 threads, one `requests.Session` each", fan["floor"], "over_slowest_ms"),
        ("provider_kit, 7 x 200 ms + 1 hung, `timeout=1.0`", fan["hung"], "over_deadline_ms"),
    ):
        values = [item[field] for item in items]
        lines.append(f"| {label} | {_fmt(med([item['wall_ms'] for item in items]), 1)} | "
                     f"{_fmt(med(values), 1)}, {_fmt(max(values), 1)} |")

    # Import details
    lines += ["", "## Import details", "",
              f"Wall time of `python -c \"import X\"` minus `python -c pass` ({_fmt(results['import']['pass_ms'], 1)} ms), "
              "bytecode cached; `-X importtime` cumulative for X's own line.", "",
              "| Module | Wall ms | -X importtime ms | Modules loaded | Samples |", "|---|---:|---:|---:|---:|"]
    for module, item in imports.items():
        lines.append(f"| {module} | {_fmt(item['ms'], 1)} | {_fmt(item['importtime_ms'], 1)} | "
                     f"{item['modules_loaded']} | {item['samples']} |")
    over = results["import"].get("provider_kit_over_requests")
    if over:
        heaviest = ", ".join(f"{name} {ms:.2f}" for ms, name in over["heaviest"])
        lines += ["", f"After `import requests`, `import provider_kit` costs {_fmt(over['importtime_ms'], 1)} ms "
                      f"(-X importtime). Heaviest modules it adds (self ms): {heaviest}. Modules outside "
                      f"provider_kit it loads: {', '.join(over['foreign_modules']) or 'none'}."]

    server = results.get("server", {})
    notes = list(notes)
    notes.append(
        "Servers: `provider_kit.testing.LoopbackServer` (openai, anthropic, ollama protocols). Per call, "
        "threaded, long stream and memory use servers in a separate process, so the client process's "
        f"CPU time is the client's alone (the server process used {_fmt(server.get('cpu_s'), 1)} s CPU). "
        "First chunk and fan-out use an in-process server, for its gates.")
    notes.append("Floor clients speak the OpenAI protocol; the Anthropic and Ollama rows are compared with the "
                 "same floor, so their ratios include their protocol's slightly different bodies.")
    for key, error in results["errors"].items():
        notes.append(f"{_clients.BY_KEY[key].label} failed: {error}")
    lines += ["", "## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def _field(samples: Dict[str, Dict[str, List[float]]], key: str, field: str) -> List[float]:
    return samples.get(key, {}).get(field, [])


def _get(imports: Dict[str, Dict[str, Any]], module: str, field: str) -> float:
    return float(imports.get(module, {}).get(field, float("nan")))


def _signed(value: Optional[float]) -> str:
    text = _fmt(value, 1)
    return text if text.startswith("-") or text == "–" else "+" + text


def _inverse(value: Optional[float]) -> Optional[float]:
    return 1.0 / value if value else None


def _diff(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None else a - b


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def _machine(keys: List[str]) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = []
    for module in dict.fromkeys(["provider_kit", "requests", "urllib3"] + [_clients.BY_KEY[k].module for k in keys]):
        version = sc.optional_version(module)
        if version:
            versions.append(f"{module} {version}")
    return (f"Machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}. Versions: {', '.join(versions)}.")


if __name__ == "__main__":
    raise SystemExit(main())
