"""The benchmarks still run: ``benchmarks/run.py --quick`` produces every scenario row.

Numbers from --quick mean nothing; this only keeps the benchmark code from rotting.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

HAS_PYDANTIC = importlib.util.find_spec("pydantic") is not None  # the class rows need it
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCENARIOS = [
    "Import cost",
    "Per call, sequential",
    "Threaded, 16 threads",
    "First chunk, chunked",
    "First chunk, close-delimited",
    "Long stream",
    "Health fan-out, 8 x 200 ms",
    "Hung provider, 1 s deadline",
    "Response cache hit",
    "Peak RSS after import",
    "Peak RSS after calls",
    *(f"{scenario}, {protocol}" for scenario in ("Structured output", "Image call")
      for protocol in ("OpenAI", "Anthropic", "Ollama")),
]
CLIENTS = [
    "requests.Session (floor)",
    "requests.Session, trust_env=False",
    "http.client",
    "provider_kit OpenAIProvider",
    "provider_kit AnthropicProvider",
    "provider_kit OllamaProvider",
]


@pytest.mark.slow
def test_quick_mode_writes_a_row_for_every_scenario_and_client(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,  # hang detection only; it takes ~10 s
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = out.read_text(encoding="utf-8")
    assert report == done.stdout  # printed and written alike

    targets = report.split("## Targets", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(): line for line in targets.splitlines() if line.startswith("| ")}
    for scenario in SCENARIOS:
        assert scenario in rows, f"no row for {scenario!r} in:\n{targets}"
        cells = [cell.strip() for cell in rows[scenario].split("|")[1:-1]]
        assert len(cells) == 4, rows[scenario]
        assert re.search(r"\d", cells[1]), f"{scenario}: no measurement in {cells[1]!r}"
        assert "nan" not in cells[1], rows[scenario]
        assert cells[3] in ("met", "**MISSED**", "-"), rows[scenario]

    clients = report.split("## Every client", 1)[1].split("\n## ", 1)[0]
    client_rows = [line for line in clients.splitlines() if line.startswith("| ") and "---" not in line]
    labels = [line.split("|")[1].strip() for line in client_rows[1:]]
    assert labels[: len(CLIENTS)] == CLIENTS
    for line in client_rows[1:]:
        assert "failed" not in line, line

    # Structured output and images: the floor and provider_kit rows of every protocol, measured.
    capabilities = report.split("## Structured output and images", 1)[1].split("\n## ", 1)[0]
    measured = {tuple(cell.strip() for cell in line.split("|")[1:3]): line
                for line in capabilities.splitlines() if line.startswith("| ") and "---" not in line}
    for protocol in ("OpenAI", "Anthropic", "Ollama"):
        for scenario, clients in (
            ("Structured output", ["requests.Session + `json.loads` (floor)", "provider_kit `schema=dict`",
                                   *(["provider_kit `schema=Invoice` (pydantic)"] if HAS_PYDANTIC else [])]),
            ("Image", ["requests.Session, base64 per call (floor)", "provider_kit `Image.from_bytes`"]),
        ):
            for client in clients:
                line = measured.get((scenario, f"{protocol}: {client}"))
                assert line is not None, f"no {scenario} row for {protocol}: {client} in:\n{capabilities}"
                assert "failed" not in line and re.search(r"\| [\d,]+ \| \d+\.\d\dx \|", line), line
