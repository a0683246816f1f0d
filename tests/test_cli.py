"""The provider-kit command: output, exit codes, secrets, against loopback simulators."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import subprocess
import sys

import pytest
import requests
from _kinds import KINDS, LOCAL_KIND, OTHER_KIND, SOME_KIND

import provider_kit
from provider_kit.cli import main
from provider_kit.testing import LoopbackServer, Reply

KEY = "sk-cli-test-5c3f9a1b2d7e"
#: How each command starts the stderr line of the fixture's skipped provider.
SKIP_LINE = "provider-kit: skipped provider 'broken': "


#: The fixture's hosted provider is named after its type (a table needs no ``type`` then).
HOSTED = SOME_KIND


@pytest.fixture
def servers():
    with LoopbackServer(HOSTED, api_key=KEY) as hosted, LoopbackServer(LOCAL_KIND) as local:
        yield {HOSTED: hosted, "local": local}


@pytest.fixture
def config_file(tmp_path, servers, monkeypatch):
    return write_config(tmp_path, servers, monkeypatch)


def write_config(tmp_path, servers, monkeypatch, default=HOSTED, extra=""):
    """Two working providers and "broken", skipped: the variable its table names is not set."""
    monkeypatch.setenv("CLI_TEST_KEY", KEY)
    path = tmp_path / "provider_kit.toml"
    path.write_text(
        f"""
default_provider = "{default}"

[providers.{HOSTED}]
base_url = "{servers[HOSTED].base_url}"
api_key_env = "CLI_TEST_KEY"
model = "{servers[HOSTED].models[0]}"

[providers.local]
type = "{LOCAL_KIND}"
base_url = "{servers['local'].base_url}"
model = "{servers['local'].models[0]}"

[providers.broken]
type = "{OTHER_KIND}"
api_key_env = "CLI_TEST_UNSET_KEY"
{extra}""",
        encoding="utf-8",
    )
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_providers_lists_registered_and_skipped_without_secrets(capsys, config_file, servers):
    code, out, err = run(capsys, "providers", "--config", config_file)
    assert code == 0
    assert HOSTED in out and "local" in out and servers[HOSTED].base_url in out
    assert "broken" in out and "$CLI_TEST_UNSET_KEY is not set" in out  # skipped, with its reason
    assert f"\ndefault: {HOSTED}\n" in out
    assert KEY not in out + err


def test_health_table_and_exit_code(capsys, config_file):
    code, out, _ = run(capsys, "health", "--config", config_file)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["PROVIDER", "STATUS", "LATENCY", "CIRCUIT", "REASON"]
    rows = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert rows == {"local": "ok", HOSTED: "ok", "broken": "SKIP"}  # not the default: still exit 0


def test_health_json_reports_an_unhealthy_provider_with_exit_1(capsys, config_file, servers):
    servers["local"].models = ["some-other-model"]
    code, out, _ = run(capsys, "health", "--json", "--timeout", "2", "--config", config_file)
    assert code == 1
    report = json.loads(out)
    assert report[HOSTED]["ok"] is True
    assert report["local"]["ok"] is False and "not pulled" in report["local"]["error"]
    assert KEY not in out


def test_health_of_named_providers_only(capsys, config_file):
    code, out, _ = run(capsys, "health", "--json", "--config", config_file, HOSTED)
    assert code == 0 and list(json.loads(out)) == [HOSTED]
    assert json.loads(out)[HOSTED]["skipped"] is False


def test_complete_from_argument_and_stdin(capsys, config_file, monkeypatch):
    code, out, _ = run(capsys, "complete", "--config", config_file, "Hello there")
    assert (code, out) == (0, "echo: Hello there\n")
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("from stdin\n"))
    code, out, _ = run(capsys, "complete", "-p", "local", "--json", "--config", config_file, "-")
    assert code == 0
    assert json.loads(out)["text"] == "echo: from stdin\n" and json.loads(out)["provider"] == "local"


def test_complete_stream_prints_the_text(capsys, config_file):
    code, out, _ = run(capsys, "complete", "--stream", "--config", config_file, "stream this")
    assert (code, out) == (0, "echo: stream this\n")


def test_provider_error_is_one_line_on_stderr_with_exit_1(capsys, config_file, servers):
    servers[HOSTED].enqueue(servers[HOSTED].error_reply(401, "Incorrect API key provided"))
    code, _, err = run(capsys, "complete", "--config", config_file, "hi")
    assert code == 1
    error = [line for line in err.splitlines() if not line.startswith(SKIP_LINE)]
    assert len(error) == 1 and "Incorrect API key provided" in error[0] and "Traceback" not in err
    assert KEY not in err


def test_config_error_exits_2_and_debug_shows_the_traceback(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[providers.x\n", encoding="utf-8")
    code, _, err = run(capsys, "health", "--config", bad)
    assert code == 2 and "line 1" in err and "Traceback" not in err
    code, _, err = run(capsys, "health", "--debug", "--config", bad)
    assert code == 2 and "Traceback" in err


def test_unknown_provider_name_exits_2_with_a_suggestion(capsys, config_file):
    typo = HOSTED[:2] + HOSTED[3:]  # a letter left out
    code, _, err = run(capsys, "complete", "-p", typo, "--config", config_file, "hi")
    assert code == 2 and f"did you mean {HOSTED!r}" in err


def test_config_shows_masked_secrets_and_its_origin(capsys, config_file, monkeypatch):
    text = config_file.read_text(encoding="utf-8") + f'\n[providers.inline]\ntype = "{HOSTED}"\napi_key = "{KEY}"\n'
    config_file.write_text(text, encoding="utf-8")
    code, out, _ = run(capsys, "config", "--config", config_file)
    assert code == 0 and str(config_file) in out and "inline" in out
    assert KEY not in out
    code, out, _ = run(capsys, "config", "--path", "--config", config_file)
    assert out.strip() == str(config_file)


def test_no_configuration_at_all_is_a_config_error(capsys):
    code, _, err = run(capsys, "health")
    assert code == 2 and "OPENAI_API_KEY" in err


def test_python_dash_m_and_demo_run_offline():
    result = subprocess.run(
        [sys.executable, "-m", "provider_kit", "demo"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "SIMULATORS" in result.stdout
    for name in KINDS:
        assert f"{name:<9} -> 'echo: What is provider_kit?'" in result.stdout
    assert "Streams arrive word by word" in result.stdout


def test_global_options_work_before_and_after_the_command(capsys, config_file):
    code, out, _ = run(capsys, "--config", config_file, "health", "--json")
    assert code == 0 and set(json.loads(out)) == {HOSTED, "local", "broken"}


# -- closed pipes ------------------------------------------------------------------------------


def _provider_kit(*argv, **kwargs):
    """``python -m provider_kit ARGV`` as a child process, stdout and stderr piped."""
    return subprocess.Popen([sys.executable, "-m", "provider_kit", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def held_at(gate, twin):
    """A responder answering what ``twin`` (a simulator like the one it is queued on) answers,
    held at ``gate``: the real answer, sent when the test opens the gate."""

    def answer(request):
        response = requests.get(twin.url_for(request.path), params=request.query, headers=dict(request.headers))
        return Reply(response.status_code, body=response.content, hang=gate,
                     content_type=response.headers["Content-Type"])

    return answer


def test_health_json_into_a_closed_pipe_exits_141_without_a_traceback(config_file, servers):
    # `provider-kit health --json | head -1`, made deterministic: the reader is gone before the
    # health check (held at a gate) lets the child write anything.
    gate = servers[HOSTED].gate()
    with LoopbackServer(HOSTED, api_key=KEY) as twin:
        servers[HOSTED].enqueue(held_at(gate, twin))  # queued before the child can ask
        child = _provider_kit("health", "--json", "--config", config_file)
        try:
            assert gate.wait_reached(30)
            child.stdout.close()
            gate.open()
            stderr = child.stderr.read()
            assert child.wait(30) == 141
            assert stderr.startswith(SKIP_LINE) and stderr.count("\n") == 1  # the fixture's skip only
        finally:
            gate.open()
            child.kill()
            child.communicate()
    assert twin.requests and twin.errors == []


def test_stream_into_a_pipe_closed_after_the_first_bytes_exits_141_quietly(config_file, servers):
    # `provider-kit complete --stream ... | head -c3`
    gate = servers[HOSTED].gate()
    servers[HOSTED].enqueue(servers[HOSTED].stream_reply(["Hel", gate, "lo", " world"]))
    with _provider_kit("complete", "--stream", "--config", config_file, "hi") as child:
        try:
            assert child.stdout.read(3) == "Hel"  # the child flushes each chunk as it arrives
            child.stdout.close()
            gate.open()
            stderr = child.stderr.read()
            assert child.wait(30) == 141
            assert stderr.startswith(SKIP_LINE) and stderr.count("\n") == 1  # the fixture's skip only
        finally:
            gate.open()
            child.kill()


# -- version, typos, help -----------------------------------------------------------------------


def test_version(capsys):
    code, out, err = run(capsys, "--version")
    assert (code, out, err) == (0, f"provider-kit {provider_kit.__version__}\n", "")


@pytest.mark.parametrize(("argv", "suggestion"), [
    (["helth"], "did you mean 'health'?"),
    (["complte", "hi"], "did you mean 'complete'?"),
    (["health", "--timout", "3"], "did you mean '--timeout'?"),
    (["health", "--timout=3"], "did you mean '--timeout'?"),
    (["complete", "--max-tokns", "5", "hi"], "did you mean '--max-tokens'?"),
    (["--confg", "x.toml", "health"], "did you mean '--config'?"),
    (["health", "--jsn"], "did you mean '--json'?"),
])
def test_a_typo_gets_one_line_with_a_suggestion_and_exit_2(capsys, argv, suggestion):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and suggestion in err, err


def test_an_unknown_command_lists_the_commands(capsys):
    code, _, err = run(capsys, "frobnicate")
    assert code == 2 and err.count("\n") == 1
    assert "unknown command 'frobnicate'" in err and "did you mean" not in err
    for command in ("providers", "health", "complete", "config", "demo", "serve"):
        assert command in err


def test_other_usage_errors_are_one_line_too(capsys):
    code, _, err = run(capsys, "health", "--timeout", "soon")
    assert code == 2 and err.count("\n") == 1 and "--timeout" in err and "'soon'" in err
    code, _, err = run(capsys, "providers", "extra")
    assert code == 2 and err.count("\n") == 1 and "unrecognized arguments: extra" in err


def test_no_arguments_prints_the_commands_on_stderr_and_exits_2(capsys):
    code, out, err = run(capsys)
    assert code == 2 and out == ""
    assert err.startswith("usage: provider-kit")
    for command in ("providers", "health", "complete", "config", "demo", "serve"):
        assert f"    {command} " in err
    assert "provider-kit --help" in err and "provider-kit demo" in err


def test_help_teaches_the_variables_the_config_search_order_and_the_exit_codes(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OLLAMA_HOST", "OPENAI_BASE_URL",
                     "ANTHROPIC_BASE_URL", "PROVIDER_KIT_CONFIG"):
        assert variable in out
    order = [out.index(place) for place in ("--config PATH\n", "$PROVIDER_KIT_CONFIG", "./provider_kit.toml",
                                            "~/.config/provider_kit/config.toml")]
    assert order == sorted(order)
    exits = out[out.index("exit status:"):]
    for code_, meaning in (("0", "success"), ("1", "provider failed"), ("2", "usage error"),
                           ("130", "interrupted"), ("141", "closed")):
        assert re.search(rf"^  {code_} +.*{meaning}", exits, re.M), (code_, exits)


def _commands(parser):
    return {name: parser.command_parser(name) for name in parser._command_action.choices}


def test_every_command_has_a_description_an_example_and_help_for_every_option():
    from provider_kit.cli import _build_parser

    parser = _build_parser()
    commands = _commands(parser)
    assert set(commands) >= {"providers", "health", "complete", "config", "demo", "serve"}
    for action in parser._actions:
        assert action.help, action
    for name, command in commands.items():
        assert command.description and len(command.description) > 40, name
        assert command.epilog.startswith("example:\n  provider-kit "), name
        for action in command._actions:
            hidden = action.help == argparse.SUPPRESS
            assert action.help and (not hidden or (name in ("demo", "serve") and action.dest == "config")), \
                (name, action.option_strings or action.dest)


def test_every_command_help_prints(capsys):
    from provider_kit.cli import _build_parser

    for name in _commands(_build_parser()):
        code, out, _ = run(capsys, name, "--help")
        assert code == 0 and out.startswith(f"usage: provider-kit {name}") and "example:" in out


# -- complete: stdin, --stop, JSON lines --------------------------------------------------------


def test_complete_reads_the_prompt_from_a_pipe_when_none_is_given(config_file):
    result = subprocess.run([sys.executable, "-m", "provider_kit", "complete", "--config", str(config_file)],
                            input="piped prompt\n", capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (0, "echo: piped prompt\n\n")
    assert result.stderr.startswith(SKIP_LINE) and result.stderr.count("\n") == 1  # the fixture's skip only


def test_complete_with_no_prompt_and_a_terminal_is_a_usage_error(config_file):
    pty = pytest.importorskip("pty")
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run([sys.executable, "-m", "provider_kit", "complete", "--config", str(config_file)],
                                stdin=terminal, capture_output=True, text=True, timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "no prompt" in result.stderr and "pipe" in result.stderr


def test_complete_with_empty_standard_input_is_a_usage_error(capsys, config_file, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("  \n"))
    code, _, err = run(capsys, "complete", "--config", config_file)
    assert code == 2 and "empty" in err and "standard input" in err


def test_complete_sends_every_stop_sequence(capsys, config_file, servers):
    code, _, _ = run(capsys, "complete", "--stop", "END", "--stop", "\n\n", "--config", config_file, "hi")
    assert code == 0
    assert servers[HOSTED].last_request.json()["stop"] == ["END", "\n\n"]


def test_stream_json_prints_one_line_per_chunk_then_the_completion(capsys, config_file, servers):
    code, out, _ = run(capsys, "complete", "--json", "--config", config_file, "one two three")
    whole = json.loads(out)
    code, out, _ = run(capsys, "complete", "--stream", "--json", "--max-tokens", "9", "--config", config_file,
                       "one two three")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) >= 4 and all("text" in line for line in lines)
    *chunks, final = lines
    assert "".join(chunk["text"] for chunk in chunks) == final["text"] == "echo: one two three"
    assert set(final) == set(whole) >= {"text", "provider", "model", "finish_reason", "usage", "latency_s"}
    assert final["provider"] == HOSTED and final["model"] == servers[HOSTED].models[0]
    assert final["finish_reason"] == "stop" and final["usage"]["output_tokens"] == 4
    assert final["usage"] == whole["usage"] and final["latency_s"] > 0


# -- demo ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["demo", "--config", "x.toml"], ["--config", "x.toml", "demo"]])
def test_demo_refuses_config_with_a_usage_error(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "demo takes no --config" in err and "simulators" in err


# --------------------------------------------------------------------------- skips and mistakes


@pytest.mark.parametrize(
    "argv", [["providers"], ["health"], ["health", "--json"], ["complete", "hi"], ["complete", "--stream", "hi"]]
)
def test_every_command_prints_each_skip_on_stderr_once(capsys, config_file, argv):
    code, out, err = run(capsys, *argv, "--config", config_file)
    assert code == 0, err
    lines = err.splitlines()
    assert [line for line in lines if "broken" in line] == [line for line in lines if line.startswith(SKIP_LINE)]
    assert len(lines) == 1
    assert "$CLI_TEST_UNSET_KEY is not set" in lines[0]
    assert SKIP_LINE not in out


def test_a_skip_is_not_printed_twice_by_the_python_warning(tmp_path, servers, monkeypatch):
    config = write_config(tmp_path, servers, monkeypatch)
    env = {**__import__("os").environ, "PYTHONWARNINGS": "default"}
    result = subprocess.run(
        [sys.executable, "-m", "provider_kit", "providers", "--config", str(config)],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(SKIP_LINE)
    assert "Warning" not in result.stderr


def test_providers_says_the_default_was_skipped_and_why(capsys, tmp_path, servers, monkeypatch):
    config = write_config(tmp_path, servers, monkeypatch, default="broken")
    code, out, err = run(capsys, "providers", "--config", config)
    assert code == 0
    assert "\ndefault: local (default_provider 'broken' was skipped: " in out
    default_line = next(line for line in out.splitlines() if line.startswith("default: "))
    assert "$CLI_TEST_UNSET_KEY is not set" in default_line
    assert err.startswith(SKIP_LINE)


def test_health_fails_when_the_configured_default_is_skipped(capsys, tmp_path, servers, monkeypatch):
    config = write_config(tmp_path, servers, monkeypatch, default="broken")
    code, out, _ = run(capsys, "health", "--config", config)
    assert code == 1  # the others are healthy, but what would be used by default is missing
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:]}
    assert rows[HOSTED][0] == "ok" and rows["local"][0] == "ok"
    assert rows["broken"][:3] == ["SKIP", "-", "-"] and "CLI_TEST_UNSET_KEY" in " ".join(rows["broken"])
    code, out, _ = run(capsys, "health", "--json", "--config", config)
    assert code == 1
    report = json.loads(out)
    assert report["broken"]["skipped"] is True and report["broken"]["ok"] is False
    assert "$CLI_TEST_UNSET_KEY is not set" in report["broken"]["error"]
    assert report[HOSTED]["ok"] is True and report[HOSTED]["skipped"] is False


@pytest.mark.parametrize("names", [["broken"], [HOSTED, "broken"]])
def test_health_of_a_named_skipped_provider_is_a_skip_row_and_exit_1(capsys, config_file, names):
    code, out, err = run(capsys, "health", "--config", config_file, *names)
    assert code == 1, err  # not 2: the name is known, the provider was skipped
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]}
    assert rows == {name: ("SKIP" if name == "broken" else "ok") for name in names}
    code, out, _ = run(capsys, "health", "--json", "--config", config_file, *names)
    assert code == 1 and sorted(json.loads(out)) == sorted(names)


def test_health_of_another_named_provider_leaves_the_skip_out_of_the_table(capsys, config_file):
    code, out, err = run(capsys, "health", "--config", config_file, "local")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["local"]
    assert err.startswith(SKIP_LINE)  # still said, on stderr


@pytest.mark.parametrize("argv", [["providers"], ["health"], ["complete", "hi"], ["config"]])
def test_a_mistake_in_the_file_exits_2_naming_file_provider_and_key(capsys, tmp_path, servers, monkeypatch, argv):
    config = write_config(tmp_path, servers, monkeypatch, extra='modle = "claude"\n')
    code, out, err = run(capsys, *argv, "--config", config)
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert f"{config}: [providers.broken]: unknown option 'modle'; did you mean 'model'?" in err
