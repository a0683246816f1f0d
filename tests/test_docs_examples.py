"""Every example of the documentation pages (docs/*.rst) runs, page by page, against loopback
simulators, and every TOML example is a valid configuration.

Each page's ``python`` examples run in order in one namespace, as a reader going down the page
would run them, in a world where the configuration of docs/configuration.rst's first TOML
example is ``./provider_kit.toml`` with each real API address replaced by a local simulator's,
and the key variables are set. An example marked with ``.. skip-test: <reason>`` is not run (see
tests/_rst_examples.py and docs/contributing.rst).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from _rst_examples import (
    DOCS,
    README,
    doc_pages,
    examples,
    run_examples,
    setup_commands,
    simulated_world,
    skip_markers,
)

from provider_kit import load_config

PAGES_WITH_PYTHON = [page for page in doc_pages() if examples(page, "python")]


def world_config() -> str:
    return examples(DOCS / "configuration.rst", "toml")[0].code


def test_the_documentation_has_examples_to_check():
    assert len(PAGES_WITH_PYTHON) >= 10
    runnable = [e for page in doc_pages() for e in examples(page, "python") if e.skip is None]
    assert len(runnable) >= 30


@pytest.mark.parametrize("page", PAGES_WITH_PYTHON, ids=lambda page: page.name)
def test_every_python_example_of_the_page_runs_in_order(page, monkeypatch):
    with simulated_world(monkeypatch, world_config()) as servers:
        run_examples(page)
        for kind, server in servers.items():
            assert not server.errors, f"{page.name}: the {kind} simulator failed: {server.errors}"


def test_the_examples_reach_the_simulators_and_print_their_answers(monkeypatch):
    # The harness itself can fail: a page calling every simulator prints their answers.
    with simulated_world(monkeypatch, world_config()) as servers:
        printed = run_examples(DOCS / "calls.rst")
        assert "echo: Hello" in printed and "echo: a long ticket" in printed
        assert all(server.requests for server in servers.values()), "every simulator was used"


def test_a_failing_example_fails_with_its_page_and_line(tmp_path, monkeypatch):
    page = tmp_path / "broken.rst"
    page.write_text("Broken\n======\n\n.. code-block:: python\n\n    x = 1\n    assert x == 2\n", encoding="utf-8")
    with simulated_world(monkeypatch, world_config()), pytest.raises(AssertionError) as caught:
        run_examples(page)
    last = caught.traceback[-1]
    assert (str(last.path), last.lineno + 1) == (str(page), 7)  # lineno counts from 0


def test_the_pytest_example_of_the_testing_page_passes_under_pytest(tmp_path):
    # The page's test functions are defined by the run above; here pytest runs them, with the
    # plugin's fixtures, as a reader's suite would.
    code = "\n\n".join(e.code for e in examples(DOCS / "testing.rst", "python") if "def test_" in e.code)
    assert code.count("def test_") >= 2
    (tmp_path / "test_from_docs.py").write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"\b2 passed\b", done.stdout), done.stdout


@pytest.mark.parametrize("page", [p for p in doc_pages() if examples(p, "toml")], ids=lambda page: page.name)
def test_every_toml_example_is_valid_configuration(page, tmp_path):
    for number, example in enumerate(examples(page, "toml")):
        if example.skip is None:
            path = tmp_path / f"example{number}.toml"
            path.write_text(example.code, encoding="utf-8")
            load_config(path)


@pytest.mark.parametrize("page", [*doc_pages(), README], ids=lambda page: page.name)
def test_every_skip_marker_gives_a_reason_and_marks_an_example(page):
    marked = [e for e in examples(page) if e.skip is not None]
    assert len(marked) == len(skip_markers(page)), f"{page.name}: a '.. skip-test:' comment before no code-block"
    for example in marked:
        assert example.skip, f"{example.where}: '.. skip-test:' needs a reason"


def test_the_readme_links_only_to_pages_that_exist():
    links = re.findall(r"<([\w/.-]+\.rst)>`_", README.read_text(encoding="utf-8"))
    assert len(links) >= 12
    for link in links:
        assert (README.parent / link).is_file(), f"README.rst links to {link}, which does not exist"


def test_every_page_is_linked_from_the_readme():
    linked = set(re.findall(r"<docs/([\w.-]+\.rst)>`_", README.read_text(encoding="utf-8")))
    unlinked = {page.name for page in doc_pages()} - linked - {"index.rst", "changelog.rst", "performance.rst"}
    assert not unlinked, f"README.rst does not link to {sorted(unlinked)}"


def test_the_installation_page_shows_the_readme_set_up_commands_word_for_word():
    page = (DOCS / "installation.rst").read_text(encoding="utf-8")
    for command in setup_commands():
        assert f"    {command}\n" in page
