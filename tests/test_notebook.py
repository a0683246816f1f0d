"""A notebook executed headless by a real Jupyter kernel (nbclient), as CI or papermill runs one
and as ``jupyter nbconvert --execute`` exports one: what its saved outputs keep.

The kernel runs on this interpreter from a kernelspec written into the test's own directory,
so neither an installed ``python3`` spec nor the user's Jupyter and IPython directories are
needed (or touched). tqdm is installed (test extra) and ipywidgets is hidden in the kernel, the
stock set-up in which ``tqdm.auto`` warns "IProgress not found".
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
from _kinds import CLASSES, SOME_KIND

nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[test]'")
nbclient = pytest.importorskip("nbclient", reason="pip install -e '.[test]'")
pytest.importorskip("ipykernel", reason="pip install -e '.[test]'")

KERNEL = "provider-kit-test"

#: The class of the notebook's one real provider (a local server of a hosted API's protocol).
_CLASS = CLASSES[SOME_KIND].__name__

CELLS = [
    # As on a stock install: tqdm, but no ipywidgets.
    'import sys\nsys.modules["ipywidgets"] = None',
    f"""\
from provider_kit import InvalidRequestError, {_CLASS}, ProviderRegistry
from provider_kit.testing import FakeProvider, LoopbackServer

server = LoopbackServer({SOME_KIND!r}, models=["m"]).start()
local = {_CLASS}("local", base_url=server.base_url, model="m", max_retries=0)
flaky = FakeProvider("flaky", replies=["a", InvalidRequestError("flaky: bad", provider="flaky"), "c", "d"])
down = FakeProvider("down", health_error="unreachable: connection refused")
registry = ProviderRegistry([local, flaky, down])""",
    "report = registry.health_check_all(timeout=10)\nreport",
    'results = registry.map(["p1", "p2", "p3", "p4"], provider="flaky")\n[type(r).__name__ for r in results]',
    'registry.complete("Hello", provider="local")',
    "registry.close()\nserver.close()",
]


@pytest.fixture
def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernelspec for this interpreter, and Jupyter/IPython state kept in ``tmp_path``."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "provider_kit tests", "language": "python"}), encoding="utf-8"
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "jupyter-config"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    # Opt in to jupyter_core's platform directories now; without it, it warns that it will.
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")


def _texts(outputs: List[Dict[str, Any]], name: str) -> str:
    return "".join(out["text"] for out in outputs if out["output_type"] == "stream" and out["name"] == name)


def _data(outputs: List[Dict[str, Any]], mime: str) -> str:
    [found] = [out["data"][mime] for out in outputs if out["output_type"] == "execute_result"]
    return str(found)


@pytest.mark.slow
def test_a_headless_notebook_keeps_tables_and_the_progress_line(kernel_env: None, tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
    client = nbclient.NotebookClient(
        notebook, timeout=60, kernel_name=KERNEL, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [cell["outputs"] for cell in notebook.cells]
    everything = [out for cell in outputs for out in cell]
    assert not [out for out in everything if out["output_type"] == "error"]

    # The health report: an HTML table whose numbers are right-aligned and text left-aligned,
    # and an aligned text table for the plain-text view (what a text export shows).
    html = _data(outputs[2], "text/html")
    assert '<th style="text-align:right">latency</th>' in html
    assert '<td style="text-align:left">down</td>' in html
    assert re.search(r'<td style="text-align:right">\d+ ms</td>', html)
    assert "circuit" not in html  # every circuit is closed: no column for it
    plain = _data(outputs[2], "text/plain").splitlines()
    assert plain[0].split() == ["provider", "status", "latency", "reason"]
    assert [line.split()[:2] for line in plain[1:]] == [["down", "FAIL"], ["flaky", "ok"], ["local", "ok"]]

    # The batch: a text bar on stderr ending as the summary line, which is what remains of it
    # once carriage returns are applied (by Jupyter, or nbconvert's export).
    assert _data(outputs[3], "text/plain") == "['Completion', 'InvalidRequestError', 'Completion', 'Completion']"
    stderr = _texts(outputs[3], "stderr")
    shown = [line.rsplit("\r", 1)[-1].rstrip() for line in stderr.split("\n") if line.strip()]
    assert len(shown) == 1 and re.fullmatch(r"provider_kit map: 4/4 done, 1 failed, \d+\.\d s", shown[0]), stderr
    assert "%|" in stderr  # tqdm's text bar drew it

    # The completion, through the loopback server: its HTML table.
    completion = _data(outputs[4], "text/html")
    assert "echo: Hello" in completion and '<th style="text-align:right">tokens in</th>' in completion

    # No warning anywhere, TqdmWarning ("IProgress not found") in particular.
    for out in everything:
        if out["output_type"] == "stream" and out["name"] == "stderr":
            assert "Warning" not in out["text"] and "IProgress" not in out["text"], out["text"]
