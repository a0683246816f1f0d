"""Every code example in README.rst runs, in order, against loopback simulators.

The README's TOML example is used as the configuration, with each real API address replaced by
a local simulator's, so the examples exercise exactly what a reader would copy.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from provider_kit import ProviderRegistry, load_config
from provider_kit.testing import LoopbackServer

README = Path(__file__).resolve().parent.parent / "README.rst"
BLOCK = re.compile(r"^\.\. code-block:: (\w+)\n\n((?:(?:    .*)?\n)+)", re.MULTILINE)


def blocks(language):
    text = README.read_text(encoding="utf-8")
    return [re.sub(r"^    ", "", body, flags=re.MULTILINE) for lang, body in BLOCK.findall(text) if lang == language]


def test_readme_has_examples_to_check():
    assert len(blocks("python")) >= 8 and len(blocks("toml")) >= 2


@pytest.fixture
def simulated_world(tmp_path, monkeypatch):
    """The README's own config file, with every API address pointing at a local simulator."""
    with contextlib.ExitStack() as stack:
        openai = stack.enter_context(LoopbackServer("openai"))
        anthropic = stack.enter_context(LoopbackServer("anthropic"))
        ollama = stack.enter_context(LoopbackServer("ollama", models=["llama3.2:latest"]))
        config = blocks("toml")[0]
        for real, local in (
            ("https://api.openai.com/v1", openai.base_url),
            ("https://api.anthropic.com", anthropic.base_url),
            ("http://localhost:11434", ollama.base_url),
            ("https://api.groq.com/openai/v1", openai.base_url),
        ):
            assert real in config
            config = config.replace(real, local)
        assert not re.search(r"https?://(?!127\.0\.0\.1)", config), "only loopback addresses"
        Path("provider_kit.toml").write_text(config, encoding="utf-8")
        for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GROQ_API_KEY"):
            monkeypatch.setenv(variable, "sk-readme-example-key")
        monkeypatch.setenv("OPENAI_BASE_URL", openai.base_url)
        yield {"openai": openai, "anthropic": anthropic, "ollama": ollama}


def test_every_python_example_runs_in_order(simulated_world):
    pytest.importorskip("django")  # the Django view example imports it
    namespace: dict = {}
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output):
            for number, code in enumerate(blocks("python")):
                exec(compile(code, f"README.rst python example {number}", "exec"), namespace)
    finally:
        for value in namespace.values():
            if isinstance(value, ProviderRegistry) or hasattr(value, "_transport"):
                value.close()
    printed = output.getvalue()
    _call_the_django_view(namespace["summarise"])
    assert "echo: Summarise this ticket: ..." in printed
    assert "echo: Write a haiku about rivers." in printed
    assert "echo: Hello" in printed
    for server in simulated_world.values():
        assert server.requests, "every simulator was used"
        assert not server.errors


def _call_the_django_view(view):
    """The README's view, called as Django would, through the process-wide registry."""
    import json

    import django
    from django.conf import settings
    from django.test import RequestFactory

    import provider_kit

    if not settings.configured:  # once per process; test_django.py may have done it already
        settings.configure(SECRET_KEY="provider-kit-tests-only", ALLOWED_HOSTS=["testserver"],
                           INSTALLED_APPS=[], DATABASES={}, LOGGING_CONFIG=None, USE_TZ=True)
    if not django.apps.apps.ready:
        django.setup()
    provider_kit.reset_registry()  # built from ./provider_kit.toml, the simulated world's
    try:
        response = view(RequestFactory().post("/summarise", {"text": "a long ticket"}))
    finally:
        provider_kit.reset_registry()
    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["summary"] == "echo: a long ticket" and body["provider"] == "anthropic"


def test_every_toml_example_is_valid_configuration(tmp_path):
    for number, text in enumerate(blocks("toml")):
        path = tmp_path / f"example{number}.toml"
        path.write_text(text, encoding="utf-8")
        load_config(path)


def setup_commands():
    """The commands of README's first literal block: the set-up a new user runs."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"::\n\n((?:    .*\n)+)", text)
    assert block is not None, "README.rst lost its set-up commands"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_ci_runs_the_readme_setup_commands_word_for_word():
    commands = setup_commands()
    assert len(commands) == 2 and "venv" in commands[0] and "pytest" in commands[1]
    ci_lines = {line.strip() for line in (README.parent / ".ci" / "run").read_text().splitlines()}
    for command in commands:
        assert command in ci_lines, f".ci/run does not run the README command {command!r}"


def test_setup_commands_need_no_pip_outside_a_virtual_environment():
    # PEP 668: a system Python refuses `python3 -m pip install` outside a venv; every pip and
    # every tool must come from the venv the first command creates.
    first, second = setup_commands()
    assert first.startswith("python3 -m venv ")
    venv = first.split(" && ")[0].split()[-1]
    for command in (first, second):
        for step in command.split(" && ")[(1 if command is first else 0):]:
            assert step.startswith(f"{venv}/bin/"), f"{step!r} does not run from the virtual environment"
