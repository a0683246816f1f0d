"""README.rst is the front page: its examples run against loopback simulators, and its set-up
commands are the ones CI runs, word for word.

The README's TOML example is used as the configuration, with each real API address replaced by
a local simulator's (and the key and base-URL variables naming the simulators), so the examples
exercise exactly what a reader would copy. The detail lives in docs/, whose examples
tests/test_docs_examples.py runs the same way.
"""

from __future__ import annotations

import re

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


def test_the_beyond_text_examples_show_their_feature_working(monkeypatch):
    # Each capability section's example prints what only a working feature prints: the image's
    # bytes reached the simulator, the JSON was parsed, the thinking came apart from the text,
    # the second turn was read from the prompt cache, and the knobs were on the wire.
    with simulated_world(monkeypatch, examples(README, "toml")[0].code) as servers:
        printed = run_examples(README)
        assert not any(server.errors for server in servers.values())
        bodies = [request.json() for server in servers.values() for request in server.requests
                  if request.method == "POST"]
    assert "134 bytes" in printed  # tests/_rst_examples.py's receipt.jpg, described by the simulator
    assert "{'total': 1.5, 'currency': 'echo: Invoice 7: 99.50 EUR.'}" in printed  # data, not text
    thinking, _, answer = printed.partition("\n---\n")
    assert thinking.rsplit("\n", 1)[-1].strip() not in ("", "None")  # the thinking, apart from the text
    assert answer.startswith("echo: Is 1001 prime?\n")
    assert re.search(r"Usage\(input_tokens=\d+, .*cached_input_tokens=[1-9]", printed)
    knobs = [body for body in bodies if body.get("seed") == 7]
    assert len(knobs) == 1 and knobs[0]["top_p"] == 0.9 and knobs[0]["user"] == "ticket-42"
    second = [body for body in bodies if body["messages"][-1]["content"] == "And another?"]
    assert second[0]["messages"][1] == {"role": "assistant", "content": "echo: Name a river."}


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
    # The detail belongs in docs/: the README was 39 KB before the docs site. 15 KB held until
    # tools, embeddings, the response cache, the call log and executors each needed a few lines
    # on the front page (where the cache and log files live is something a reader must see).
    assert len(README.read_text(encoding="utf-8")) < 18_000
