"""The documentation site builds offline with warnings as errors, and documents the public API.

The same build as ``tox -e docs``: Sphinx with ``-W --keep-going -n`` (nitpicky: a reference to
nothing is an error too). Sphinx is in the ``test`` extra, so this runs wherever the suite does;
a checkout without it skips, except in CI, where a skip would hide a broken site.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import provider_kit
import provider_kit.errors
import provider_kit.testing

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import sphinx  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("Sphinx is not installed: the test extra must bring it")
        pytest.skip("Sphinx is not installed (pip install -e '.[test]')")
    out = tmp_path_factory.mktemp("docs")
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html",
         "-d", str(out / "doctrees"), str(DOCS), str(out / "html")],
        capture_output=True,
        text=True,
        timeout=300,  # hang detection only; it takes a few seconds
        cwd=ROOT,
    )
    assert done.returncode == 0, f"the docs build failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    assert "WARNING" not in done.stderr, done.stderr
    return out / "html"


def test_every_page_is_built(site: Path) -> None:
    for page in DOCS.glob("*.rst"):
        assert (site / f"{page.stem}.html").is_file(), f"{page.name} was not built"


def _documented(site: Path) -> set:
    html = (site / "api.html").read_text(encoding="utf-8")
    return set(re.findall(r'<dt class="sig sig-object py" id="([\w.]+)">', html))


def test_the_api_reference_documents_every_public_name(site: Path) -> None:
    documented = _documented(site)
    assert len(documented) > 40, "the reference has its members"
    for module in (provider_kit, provider_kit.testing):
        for name in module.__all__:
            if name != "__version__":
                assert f"{module.__name__}.{name}" in documented, f"{module.__name__}.{name} is not in docs/api.rst"
    for name in provider_kit.errors.__all__:
        assert f"provider_kit.{name}" in documented or f"provider_kit.errors.{name}" in documented, name


def test_the_architecture_page_names_every_layer_and_module() -> None:
    # "How provider_kit is built" describes the layers tests/test_layering.py enforces: the same
    # names in the same order, and every module named (no Sphinx needed). A layer or module
    # added there without a word here fails.
    from test_layering import LAYERS

    page = (DOCS / "architecture.rst").read_text(encoding="utf-8")
    lines = page.split("The layers\n", 1)[1].splitlines()
    rules = [number for number, line in enumerate(lines) if line.startswith("=====")][:3]
    body = lines[rules[1] + 1 : rules[2]]  # the table's rows, between the header and the end
    rows = [line.split("  ", 1)[0] for line in body if line[:1].isalpha()]
    assert [row.split(" (", 1)[0] for row in rows] == [name for name, _ in LAYERS]
    for _, modules in LAYERS:
        for module in modules:
            if module != "provider_kit":
                short = module.split(".", 1)[1]
                assert f"``{short}``" in page, f"docs/architecture.rst does not name {module}"


def test_the_reference_shows_the_docstrings(site: Path) -> None:
    # autodoc really read the code: a phrase from a method's docstring is on the page.
    html = (site / "api.html").read_text(encoding="utf-8")
    first_line = provider_kit.ProviderRegistry.health_check_all.__doc__.strip().splitlines()[0]
    assert first_line.split("``")[0].strip() in html
