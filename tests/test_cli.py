"""The provider-kit command: output, exit codes, secrets, against loopback simulators."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from provider_kit.cli import main
from provider_kit.testing import LoopbackServer

KEY = "sk-cli-test-5c3f9a1b2d7e"


@pytest.fixture
def servers():
    with LoopbackServer("openai", api_key=KEY) as openai, LoopbackServer("ollama") as ollama:
        yield {"openai": openai, "ollama": ollama}


@pytest.fixture
def config_file(tmp_path, servers, monkeypatch):
    monkeypatch.setenv("CLI_TEST_KEY", KEY)
    path = tmp_path / "provider_kit.toml"
    path.write_text(
        f"""
default_provider = "openai"

[providers.openai]
base_url = "{servers['openai'].base_url}"
api_key_env = "CLI_TEST_KEY"
model = "gpt-4o-mini"

[providers.local]
type = "ollama"
base_url = "{servers['ollama'].base_url}"
model = "{servers['ollama'].models[0]}"

[providers.broken]
type = "anthropic"
timeout = -1
""",
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
    assert "openai" in out and "local" in out and servers["openai"].base_url in out
    assert "broken" in out and "timeout" in out  # skipped, with its reason
    assert KEY not in out + err


def test_health_table_and_exit_code(capsys, config_file):
    code, out, _ = run(capsys, "health", "--config", config_file)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["PROVIDER", "STATUS", "LATENCY", "CIRCUIT", "REASON"]
    assert {line.split()[0]: line.split()[1] for line in lines[1:]} == {"local": "ok", "openai": "ok"}


def test_health_json_reports_an_unhealthy_provider_with_exit_1(capsys, config_file, servers):
    servers["ollama"].models = ["some-other-model"]
    code, out, _ = run(capsys, "health", "--json", "--timeout", "2", "--config", config_file)
    assert code == 1
    report = json.loads(out)
    assert report["openai"]["ok"] is True
    assert report["local"]["ok"] is False and "not pulled" in report["local"]["error"]
    assert KEY not in out


def test_health_of_named_providers_only(capsys, config_file):
    code, out, _ = run(capsys, "health", "--json", "--config", config_file, "openai")
    assert code == 0 and list(json.loads(out)) == ["openai"]


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
    servers["openai"].enqueue(servers["openai"].error_reply(401, "Incorrect API key provided"))
    code, _, err = run(capsys, "complete", "--config", config_file, "hi")
    assert code == 1
    assert err.count("\n") == 1 and "Incorrect API key provided" in err and "Traceback" not in err
    assert KEY not in err


def test_config_error_exits_2_and_debug_shows_the_traceback(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[providers.x\n", encoding="utf-8")
    code, _, err = run(capsys, "health", "--config", bad)
    assert code == 2 and "line 1" in err and "Traceback" not in err
    code, _, err = run(capsys, "health", "--debug", "--config", bad)
    assert code == 2 and "Traceback" in err


def test_unknown_provider_name_exits_2_with_a_suggestion(capsys, config_file):
    code, _, err = run(capsys, "complete", "-p", "opnai", "--config", config_file, "hi")
    assert code == 2 and "openai" in err


def test_config_shows_masked_secrets_and_its_origin(capsys, config_file, monkeypatch):
    text = config_file.read_text(encoding="utf-8") + '\n[providers.inline]\ntype = "openai"\napi_key = "' + KEY + '"\n'
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
    for name in ("openai", "anthropic", "ollama"):
        assert f"{name:<9} -> 'echo: What is provider_kit?'" in result.stdout
    assert "Streams arrive word by word" in result.stdout


def test_global_options_work_before_and_after_the_command(capsys, config_file):
    code, out, _ = run(capsys, "--config", config_file, "health", "--json")
    assert code == 0 and set(json.loads(out)) == {"openai", "local"}
