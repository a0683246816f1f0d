"""README.rst is the front page: its examples run against loopback simulators, and its set-up
commands are the ones CI runs, word for word.

The README's TOML example is used as the configuration, with each real API address replaced by
a local simulator's (and the key and base-URL variables naming the simulators), so the examples
exercise exactly what a reader would copy. The detail lives in docs/, whose examples
tests/test_docs_examples.py runs the same way.
"""

from __future__ import annotations

from _kinds import KEYED_KINDS
from _rst_examples import README, examples, run_examples, setup_commands, simulated_world

from provider_kit import load_config


def test_readme_has_examples_to_check():
    assert len(examples(README, "python")) >= 2 and len(examples(README, "toml")) >= 1


def test_every_python_example_runs_in_order(monkeypatch):
    with simulated_world(monkeypatch, examples(README, "toml")[0].code) as servers:
        printed = run_examples(README)
        assert "echo: Summarise this ticket: ..." in printed
        assert "echo: Write a haiku about rivers." in printed
        for server in servers.values():
            assert not server.errors
        # The hosted APIs it configures got the calls (the default, and the one streamed from).
        hosted = [spec.type for spec in load_config("provider_kit.toml").providers.values() if spec.type in KEYED_KINDS]
        assert len(hosted) >= 2 and all(servers[kind].requests for kind in hosted)


def test_every_toml_example_is_valid_configuration(tmp_path):
    for number, example in enumerate(examples(README, "toml")):
        path = tmp_path / f"example{number}.toml"
        path.write_text(example.code, encoding="utf-8")
        load_config(path)


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


def test_the_readme_stays_a_front_page():
    # The detail belongs in docs/: the README was 39 KB before the docs site.
    assert len(README.read_text(encoding="utf-8")) < 15_000
