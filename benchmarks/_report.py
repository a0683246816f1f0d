"""The markdown report: the targets table, every client side by side, fan-out and import details.

Ratios are written ``0.87x``; a value that could not be measured is ``-``.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
from typing import Any, Dict, List, Optional, Sequence, Tuple

import _capability_clients
import _clients
import _embed_bench
import _payloads
import _scenarios as sc
import _tool_clients

FLOOR = "requests"
NO_ENV = "requests-no-env"
PK = "pk-openai"
MISSING = "-"
Samples = Dict[str, Dict[str, List[float]]]


def fmt(value: Optional[float], digits: int = 0, suffix: str = "") -> str:
    if value is None or math.isnan(value):
        return MISSING
    return f"{value:,.{digits}f}{suffix}"


def signed(value: Optional[float], digits: int = 1) -> str:
    text = fmt(value, digits)
    return text if text.startswith("-") else "+" + text


def ratio(value: Optional[float]) -> str:
    return fmt(value, 2, "x")


def paired(samples: Samples, key: str, field: str, floor: str = FLOOR) -> Optional[float]:
    """Median of the per-round ratios ``key / floor`` (both measured in the same round)."""
    if key not in samples or floor not in samples:
        return None
    pairs = zip(samples[key][field], samples[floor][field])
    return sc.median([mine / theirs for mine, theirs in pairs if theirs])


def med(samples: Samples, key: str, field: str) -> float:
    return sc.median(samples.get(key, {}).get(field, []))


def verdict(value: Optional[float], limit: float, *, at_least: bool = False) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return "met" if (value >= limit if at_least else value <= limit) else "**MISSED**"


def render(results: Dict[str, Any], notes: List[str], *, quick: bool, argv: Sequence[str],
           threads: int) -> str:
    load = " -> ".join(fmt(value, 1) for value in results["load"])
    head = "QUICK MODE (a few iterations: a smoke check, not numbers to quote). " if quick else ""
    lines = [
        "# provider_kit benchmarks", "",
        f"{head}Run {datetime.datetime.now():%Y-%m-%d %H:%M} with "
        f"`python3 benchmarks/run.py{''.join(' ' + arg for arg in argv)}`.", "",
        f"{machine(results['keys'])} Load average (1 min) at start -> end: {load}.", "",
    ]
    lines += targets_table(results, threads)
    lines += clients_table(results, threads)
    lines += capability_table(results)
    lines += fan_out_table(results["fan_out"])
    lines += import_details(results["import"])
    server = results.get("server", {})
    all_notes = [
        *notes,
        "Servers: `provider_kit.testing.LoopbackServer` (openai, anthropic, ollama protocols). Per call, "
        "threaded, long stream and memory use servers in a separate process, so the client process's "
        f"CPU time is the client's alone (the server process used {fmt(server.get('cpu_s'), 1)} s CPU). "
        "First chunk and fan-out use an in-process server, for its gates.",
        "Floor clients speak the OpenAI protocol; the Anthropic and Ollama rows are compared with the "
        "same floor, so their ratios include their protocols' slightly different bodies.",
        *(f"{_clients.BY_KEY[key].label} failed: {error}" for key, error in results["errors"].items()),
        *(f"{scenario}: {spec.label} failed: {results[scenario]['errors'][spec.key]}"
          for scenario, specs in CAPABILITIES for spec in specs if spec.key in results[scenario]["errors"]),
    ]
    lines += ["", "## Notes", "", *(f"- {note}" for note in all_notes)]
    return "\n".join(lines) + "\n"


def targets_table(results: Dict[str, Any], threads: int) -> List[str]:
    plan, imports = results["plan"], results["import"]["modules"]
    per_call, threaded, stream = results["per_call"], results["threaded"], results["long_stream"]
    chunks, fan, memory = results["first_chunk"], results["fan_out"], results["memory"]
    cache = results["cache_hit"]

    def import_cost(module: str, field: str) -> float:
        return float(imports.get(module, {}).get(field, float("nan")))

    import_over = import_cost("provider_kit", "cpu_ms") - import_cost("requests", "cpu_ms")
    import_over_wall = import_cost("provider_kit", "ms") - import_cost("requests", "ms")
    after_requests = results["import"].get("provider_kit_over_requests", {}).get("importtime_ms")
    cpu_ratio = paired(per_call, PK, "cpu_us")
    thread_cpu = paired(threaded, PK, "cpu_us")
    thread_rate_at_equal_cpu = 1.0 / thread_cpu if thread_cpu else None
    pk_keys = [key for key in chunks if _clients.BY_KEY[key].kind == "provider_kit"]
    worst_chunk = {
        framing: max((sc.median(chunks[key][framing]) for key in pk_keys), default=None)
        for framing in ("chunked", "close")
    }
    fan_over = [item["over_slowest_ms"] for item in fan["fan_out"]]
    hung_over = [item["over_deadline_ms"] for item in fan["hung"]]
    rss = {name: memory.get(name) for name in ("import:provider_kit", "import:requests", "import:-",
                                                 f"calls:{PK}", f"calls:{FLOOR}")}

    def diff(a: Optional[float], b: Optional[float]) -> Optional[float]:
        return None if a is None or b is None else a - b

    rows: List[Tuple[str, str, str, str]] = [
        ("Import cost",
         f"CPU **{signed(import_over)} ms** over `import requests` "
         f"({fmt(import_cost('provider_kit', 'cpu_ms'), 1)} vs "
         f"{fmt(import_cost('requests', 'cpu_ms'), 1)} ms); "
         f"wall {signed(import_over_wall)} ms; -X importtime after requests {fmt(after_requests, 1)} ms",
         "<= +15 ms", verdict(import_over, 15.0)),
        ("Per call, sequential",
         f"CPU {fmt(med(per_call, PK, 'cpu_us'))} us = **{ratio(cpu_ratio)} floor**, "
         f"{ratio(paired(per_call, PK, 'cpu_us', NO_ENV))} trust_env=False; wall "
         f"{fmt(med(per_call, PK, 'wall_us'))} us = {ratio(paired(per_call, PK, 'wall_us'))} floor, "
         f"{ratio(paired(per_call, PK, 'wall_us', NO_ENV))} trust_env=False",
         "CPU <= 1.00x floor", verdict(cpu_ratio, 1.0)),
        (f"Threaded, {threads} threads",
         f"{fmt(med(threaded, PK, 'calls_per_s'))} calls/s = {ratio(paired(threaded, PK, 'calls_per_s'))} "
         f"floor; CPU per call {ratio(thread_cpu)} floor = **{ratio(thread_rate_at_equal_cpu)} the floor's "
         "rate** at equal CPU",
         "rate >= 0.95x floor", verdict(thread_rate_at_equal_cpu, 0.95, at_least=True)),
        ("First chunk, chunked", f"{fmt(worst_chunk['chunked'], 1)} ms (slowest provider_kit provider)",
         "<= 20 ms", verdict(worst_chunk["chunked"], 20.0)),
        ("First chunk, close-delimited", f"{fmt(worst_chunk['close'], 1)} ms (slowest provider_kit provider)",
         "<= 20 ms", verdict(worst_chunk["close"], 20.0)),
        ("Long stream",
         f"{plan['stream_words']:,} events: {fmt(med(stream, PK, 'wall_ms'), 1)} ms = "
         f"{ratio(paired(stream, PK, 'wall_ms'))} floor; CPU {ratio(paired(stream, PK, 'cpu_ms'))} floor",
         "(reported)", MISSING),
        ("Health fan-out, 8 x 200 ms",
         f"{fmt(sc.median(fan_over), 1)} ms over the slowest check (max {fmt(max(fan_over), 1)})",
         "<= 50 ms", verdict(max(fan_over), 50.0)),
        ("Hung provider, 1 s deadline",
         f"{fmt(sc.median(hung_over), 1)} ms after the deadline (max {fmt(max(hung_over), 1)})",
         "<= 100 ms", verdict(max(hung_over), 100.0)),
        ("Response cache hit",
         f"CPU {fmt(sc.median(cache['cpu_us']['hit']))} us vs {fmt(sc.median(cache['cpu_us']['uncached']))} us "
         f"uncached = **{ratio(cache['ratio'])} an uncached loopback call**",
         "<= 0.10x uncached", verdict(cache["ratio"], 0.10)),
        ("Peak RSS after import",
         f"{fmt(rss['import:provider_kit'], 1)} MB "
         f"({signed(diff(rss['import:provider_kit'], rss['import:requests']))} MB vs requests; "
         f"bare interpreter {fmt(rss['import:-'], 1)} MB)",
         "(reported)", MISSING),
        ("Peak RSS after calls",
         f"{fmt(rss[f'calls:{PK}'], 1)} MB after {plan['mem_calls']:,} calls "
         f"({signed(diff(rss[f'calls:{PK}'], rss[f'calls:{FLOOR}']))} MB vs requests)",
         "(reported)", MISSING),
    ]
    rows += capability_rows(results)
    rows += embedding_rows(results)
    return [
        "## Targets (provider_kit OpenAIProvider unless said)", "",
        "Import, per call and threaded are judged on CPU time (of the importing interpreter, of the client "
        "process), which other processes on a shared machine barely move; wall-clock figures are shown "
        "beside them.", "",
        "| Scenario | Measured | Target | Result |", "|---|---|---|---|",
        *(f"| {name} | {value} | {target} | {result} |" for name, value, target, result in rows),
    ]


CAPABILITIES = (("structured", _capability_clients.STRUCTURED), ("image", _capability_clients.IMAGE),
                ("tool_stream", _tool_clients.TOOL_STREAM))
#: The most a structured-output call may cost, as a ratio to the floor on the same wire (CPU).
STRUCTURED_TARGET = 1.10
PROTOCOL_NAMES = {"openai": "OpenAI", "anthropic": "Anthropic", "ollama": "Ollama"}


def _vs(rows: Samples, key: str, other: Optional[str]) -> Optional[float]:
    """The paired CPU ratio of ``key`` to ``other`` (None when either was not measured)."""
    return paired(rows, key, "cpu_us", other) if other and key in rows and other in rows else None


def capability_rows(results: Dict[str, Any]) -> List[Tuple[str, str, str, str]]:
    """Target rows: per protocol, provider_kit's structured-output call (``schema=`` a dict and a
    pydantic class; the verdict takes the worse) and its image call, against the same wire's floor."""
    rows = []
    structured, image = results["structured"]["rows"], results["image"]["rows"]
    for protocol, name in PROTOCOL_NAMES.items():
        floor, kit, kit_class = f"requests-{protocol}", f"pk-{protocol}", f"pk-{protocol}-class"
        ratios = [_vs(structured, key, floor) for key in (kit, kit_class)]
        worst = max((value for value in ratios if value is not None), default=None)
        rows.append((
            f"Structured output, {name}",
            f"CPU `schema=dict` {fmt(med(structured, kit, 'cpu_us'))} us = **{ratio(ratios[0])} floor** "
            f"({ratio(_vs(structured, kit, f'{protocol}-dict'))} SDK + json.loads); `schema=Invoice` "
            f"{fmt(med(structured, kit_class, 'cpu_us'))} us = **{ratio(ratios[1])} floor** "
            f"({ratio(_vs(structured, kit_class, f'{protocol}-class'))} SDK parsing into the class)",
            f"CPU <= {STRUCTURED_TARGET:.2f}x floor", verdict(worst, STRUCTURED_TARGET)))
    for protocol, name in PROTOCOL_NAMES.items():
        floor, kit = f"requests-{protocol}", f"pk-{protocol}"
        rows.append((
            f"Image call, {name}",
            f"CPU {fmt(med(image, kit, 'cpu_us'))} us = **{ratio(_vs(image, kit, floor))} floor**, "
            f"{ratio(_vs(image, kit, protocol))} SDK",
            "(reported)", MISSING))
    tools = results["tool_stream"]["rows"]
    for protocol, name in PROTOCOL_NAMES.items():
        floor, kit, target = f"requests-{protocol}", f"pk-{protocol}", _tool_clients.SDK_TARGETS.get(protocol)
        vs_sdk = _vs(tools, kit, protocol)
        rows.append((
            f"Streamed tool calls, {name}",
            f"CPU {fmt(med(tools, kit, 'cpu_us'))} us = **{ratio(vs_sdk)} SDK**, {ratio(_vs(tools, kit, floor))} "
            f"floor (hand-written loop: {ratio(_vs(tools, floor, protocol))} SDK)",
            f"CPU <= {target:.2f}x SDK" if target else "(reported)",
            verdict(vs_sdk, target) if target else MISSING))
    return rows


def embedding_rows(results: Dict[str, Any]) -> List[Tuple[str, str, str, str]]:
    """Target rows: provider_kit's embeddings against the openai SDK's (CPU and memory growth)."""
    embed = results.get("embeddings") or {}
    rows, count = embed.get("rows", {}), embed.get("count", 0)
    if "pk" not in rows:
        return [("Embeddings", f"failed: {embed.get('errors', {}).get('pk', 'not measured')}", "", MISSING)]
    pk_cpu, pk_mem = sc.median(rows["pk"]["cpu_ms"]), sc.median(rows["pk"]["growth_mib"])
    sdk = rows.get("openai")
    cpu_ratio = pk_cpu / sc.median(sdk["cpu_ms"]) if sdk else None
    mem_ratio = pk_mem / sc.median(sdk["growth_mib"]) if sdk else None
    sdk_text = (f" (openai SDK {fmt(sc.median(sdk['cpu_ms']))} ms, {fmt(sc.median(sdk['growth_mib']))} MiB)"
                if sdk else " (openai SDK not measured)")
    return [
        (f"Embeddings, {count:,} x {_embed_bench.DIMENSIONS}, CPU",
         f"{fmt(pk_cpu)} ms = **{ratio(cpu_ratio)} SDK**{sdk_text}",
         f"<= {_embed_bench.CPU_TARGET:.2f}x SDK", verdict(cpu_ratio, _embed_bench.CPU_TARGET)),
        (f"Embeddings, {count:,} x {_embed_bench.DIMENSIONS}, memory",
         f"peak RSS growth {fmt(pk_mem)} MiB = **{ratio(mem_ratio)} SDK** (vectors as `array('f')`; the SDK's "
         "lists of floats)",
         f"<= {_embed_bench.MEMORY_TARGET:.2f}x SDK", verdict(mem_ratio, _embed_bench.MEMORY_TARGET)),
    ]


def capability_table(results: Dict[str, Any]) -> List[str]:
    plan = results["plan"]
    lines = [
        "", "## Structured output and images, per protocol", "",
        f"Medians of {plan['cap_rounds']} interleaved rounds. The floor of each protocol is a bare "
        "`requests.Session` posting exactly the body provider_kit posts (checked before measuring) and "
        "`json.loads` of the reply (and of its content, for structured output). `x floor` and `x SDK` are "
        "paired CPU ratios; `x SDK` compares provider_kit with the SDK call doing the same work (a dict "
        "schema with `create()` + `json.loads`, the pydantic class with the SDK's own parsing). Structured "
        f"output: a canned {len(_payloads.STRUCTURED_TEXT):,} byte JSON answer, parsed and compared. Image: text and a "
        f"{len(_payloads.PNG):,} byte PNG, base64-encoded on every call by every client. Streamed tool calls: "
        f"two parallel calls whose arguments arrive in {_tool_clients.FRAGMENTS} fragments (Ollama: whole calls, "
        "one line each), assembled and compared; the floor decodes the stream by hand.", "",
        "| Scenario | Client | CPU us/call | x floor | x SDK | Wall us/call |", "|---|---|---:|---:|---:|---:|",
    ]
    for scenario, specs in CAPABILITIES:
        rows, errors = results[scenario]["rows"], results[scenario]["errors"]
        title = {"structured": "Structured output", "image": "Image", "tool_stream": "Streamed tool calls"}[scenario]
        for spec in specs:
            if spec.key in errors:
                lines.append(f"| {title} | {spec.label} | failed: {errors[spec.key]} | | | |")
            elif spec.key in rows:
                lines.append(
                    f"| {title} | {spec.label} | {fmt(med(rows, spec.key, 'cpu_us'))} | "
                    f"{ratio(_vs(rows, spec.key, f'requests-{spec.protocol}'))} | "
                    f"{ratio(_vs(rows, spec.key, spec.counterpart))} | {fmt(med(rows, spec.key, 'wall_us'))} |")
    return lines


def clients_table(results: Dict[str, Any], threads: int) -> List[str]:
    plan, imports, memory = results["plan"], results["import"]["modules"], results["memory"]
    per_call, threaded, stream = results["per_call"], results["threaded"], results["long_stream"]
    chunks = results["first_chunk"]
    lines = [
        "", "## Every client, same run", "",
        f"Medians; `x` columns are paired ratios to `requests.Session` (floor) in the same round. Per call: "
        f"{plan['call_rounds']} rounds of sequential calls. Threaded: {threads} threads sharing one client. "
        f"Long stream: {plan['stream_words']:,} events. RSS after {plan['mem_calls']:,} calls.", "",
        "| Client | Import ms | Per call us | x | CPU us/call | x | Threaded calls/s | x | CPU us/call | "
        "1st chunk ms chunked / close | Long stream ms | x | Stream CPU ms | RSS import MB | RSS calls MB |",
        "|---|" + "---:|" * 14,
    ]
    for key in results["keys"]:
        spec = _clients.BY_KEY[key]
        if key in results["errors"]:
            lines.append(f"| {spec.label} | failed: {results['errors'][key]} |" + " |" * 13)
            continue
        chunk = chunks.get(key)
        chunk_ms = [fmt(sc.median(chunk[framing]), 1) for framing in ("chunked", "close")] if chunk else []
        cells = [
            spec.label,
            fmt(imports.get(spec.module, {}).get("ms"), 1),
            fmt(med(per_call, key, "wall_us")), ratio(paired(per_call, key, "wall_us")),
            fmt(med(per_call, key, "cpu_us")), ratio(paired(per_call, key, "cpu_us")),
            fmt(med(threaded, key, "calls_per_s")), ratio(paired(threaded, key, "calls_per_s")),
            fmt(med(threaded, key, "cpu_us")),
            " / ".join(chunk_ms) or MISSING,
            fmt(med(stream, key, "wall_ms"), 1), ratio(paired(stream, key, "wall_ms")),
            fmt(med(stream, key, "cpu_ms"), 1),
            fmt(memory.get(f"import:{spec.module}"), 1), fmt(memory.get(f"calls:{key}"), 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def fan_out_table(fan: Dict[str, List[Dict[str, float]]]) -> List[str]:
    lines = ["", "## Health fan-out", "",
             "| Case | Wall ms (median) | Over the slowest check / the deadline, ms (median, max) |",
             "|---|---:|---:|"]
    for label, items, field in (
        ("provider_kit `health_check_all`, 8 providers x 200 ms", fan["fan_out"], "over_slowest_ms"),
        ("floor: 8 threads, one `requests.Session` each", fan["floor"], "over_slowest_ms"),
        ("provider_kit, 7 x 200 ms + 1 hung, `timeout=1.0`", fan["hung"], "over_deadline_ms"),
    ):
        values = [item[field] for item in items]
        lines.append(f"| {label} | {fmt(sc.median([item['wall_ms'] for item in items]), 1)} | "
                     f"{fmt(sc.median(values), 1)}, {fmt(max(values), 1)} |")
    return lines


def import_details(result: Dict[str, Any]) -> List[str]:
    lines = [
        "", "## Import details", "",
        f"Wall and CPU time of `python -c \"import X\"` minus `python -c pass` ({fmt(result['pass_ms'], 1)} "
        f"ms wall, {fmt(result['pass_cpu_ms'], 1)} ms CPU), medians, bytecode cached; `-X importtime` "
        "cumulative for X's own line.", "",
        "| Module | Wall ms | CPU ms | -X importtime ms | Modules loaded | Samples |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for module, item in result["modules"].items():
        lines.append(f"| {module} | {fmt(item['ms'], 1)} | {fmt(item['cpu_ms'], 1)} | "
                     f"{fmt(item['importtime_ms'], 1)} | {item['modules_loaded']} | {item['samples']} |")
    over = result.get("provider_kit_over_requests")
    if over:
        heaviest = ", ".join(f"{name} {ms:.2f}" for ms, name in over["heaviest"])
        lines += ["", f"After `import requests`, `import provider_kit` costs {fmt(over['importtime_ms'], 1)} "
                      f"ms (-X importtime). Heaviest modules it adds (self ms): {heaviest}. Modules outside "
                      f"provider_kit it loads: {', '.join(over['foreign_modules']) or 'none'}."]
    return lines


def machine(keys: List[str]) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    modules = ["provider_kit", "requests", "urllib3"] + [_clients.BY_KEY[key].module for key in keys]
    versions = []
    for module in dict.fromkeys(modules):
        version = sc.optional_version(module)
        if version:
            versions.append(f"{module} {version}")
    return (f"Machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}. Versions: {', '.join(versions)}.")
