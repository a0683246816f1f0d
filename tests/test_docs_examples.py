"""Every example of the documentation pages (docs/*.rst) runs, page by page, against loopback
simulators, and every TOML example is a valid configuration.

Each page's ``python`` examples run in order in one namespace, as a reader going down the page
would run them, in a world where the configuration of docs/configuration.rst's first TOML
example is ``./provider_kit.toml`` with each real API address replaced by a local simulator's,
and the key variables are set. An example marked with ``.. skip-test: <reason>`` is not run (see
tests/_rst_examples.py and docs/contributing.rst).
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Dict, Iterator

import pytest

from provider_kit import Provider, ProviderRegistry, load_config
from provider_kit.testing import LoopbackServer

from _rst_examples import DOCS, README, doc_pages, examples, skip_markers

#: Real API addresses the examples may name, and the simulator standing in for each.
ADDRESSES = {
    "https://api.openai.com/v1": "openai",
    "https://api.anthropic.com": "anthropic",
    "http://localhost:11434": "ollama",
    "https://api.groq.com/openai/v1": "openai",
}
#: Pages whose python examples all need something the tests do not have.
PAGES_WITH_PYTHON = [page for page in doc_pages() if examples(page, "python")]


@contextlib.contextmanager
def simulated_world(monkeypatch: pytest.MonkeyPatch, config: str) -> Iterator[Dict[str, LoopbackServer]]:
    """``config`` as ./provider_kit.toml, every API address in it pointing at a local simulator;
    the key variables set and the base-URL variables naming the simulators."""
    with contextlib.ExitStack() as stack:
        servers = {
            "openai": stack.enter_context(LoopbackServer("openai")),
            "anthropic": stack.enter_context(LoopbackServer("anthropic")),
            "ollama": stack.enter_context(LoopbackServer("ollama", models=["llama3.2:latest"])),
        }
        for real, kind in ADDRESSES.items():
            config = config.replace(real, servers[kind].base_url)
        assert not re.search(r"https?://(?!127\.0\.0\.1)", config), "only loopback addresses"
        Path("provider_kit.toml").write_text(config, encoding="utf-8")
        for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GROQ_API_KEY"):
            monkeypatch.setenv(variable, "sk-docs-example-key")
        monkeypatch.setenv("OPENAI_BASE_URL", servers["openai"].base_url)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", servers["anthropic"].base_url)
        monkeypatch.setenv("OLLAMA_HOST", servers["ollama"].base_url)
        yield servers


def world_config() -> str:
    return examples(DOCS / "configuration.rst", "toml")[0].code


def run_examples(page: Path) -> str:
    """Run the page's python examples in order; what they printed."""
    namespace: dict = {"__name__": f"docs_example_{page.stem}"}
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output):
            for example in examples(page, "python"):
                if example.skip is None:
                    exec(compile(example.code, example.where, "exec"), namespace)
    finally:
        for value in namespace.values():
            if isinstance(value, (ProviderRegistry, Provider)):
                value.close()
    return output.getvalue()


def test_the_documentation_has_examples_to_check():
    assert len(PAGES_WITH_PYTHON) >= 8
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
        assert "echo: Hello" in printed
        assert all(server.requests for server in servers.values()), "every simulator was used"


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
    links = re.findall(r"<(docs/[^>]+\.rst)>`_", README.read_text(encoding="utf-8"))
    assert len(links) >= 10
    for link in links:
        assert (README.parent / link).is_file(), f"README.rst links to {link}, which does not exist"


def test_the_installation_page_shows_the_readme_set_up_commands_word_for_word():
    from test_readme import setup_commands

    page = (DOCS / "installation.rst").read_text(encoding="utf-8")
    for command in setup_commands():
        assert f"    {command}\n" in page
