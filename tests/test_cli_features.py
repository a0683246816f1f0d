"""``provider-kit complete --image / --schema / --reasoning``, against a configured FakeProvider
(``type = "fake"``): what goes to the provider, what is printed where, and the errors."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from provider_kit import Image, Message
from provider_kit.cli import main
from provider_kit.testing import FakeProvider

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
SCHEMA = {"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]}


@pytest.fixture(autouse=True)
def fake_type(monkeypatch: pytest.MonkeyPatch) -> None:
    """``type = "fake"`` in a config file is FakeProvider, as an installed plugin type would be."""
    from provider_kit import _plugins

    installed = _plugins._ENTRY_POINT_TYPES
    monkeypatch.setattr(installed, "names", lambda: ["fake"])
    monkeypatch.setattr(installed, "load", lambda name: FakeProvider if name == "fake" else None)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> List[Tuple[str, List[Message], Dict[str, Any]]]:
    """The calls every FakeProvider the command builds records."""
    calls: List[Tuple[str, List[Message], Dict[str, Any]]] = []
    original = FakeProvider._record

    def record(self: FakeProvider, method: str, messages: List[Message], kwargs: Dict[str, Any]) -> None:
        calls.append((method, messages, kwargs))
        original(self, method, messages, kwargs)

    monkeypatch.setattr(FakeProvider, "_record", record)
    return calls


def _config(tmp_path: Path, *replies: str, reasoning: str = "") -> Path:
    path = tmp_path / "provider_kit.toml"
    lines = ["[providers.scripted]", 'type = "fake"', f"replies = {json.dumps(list(replies))}"]
    if reasoning:
        lines.append(f"reasoning = {json.dumps(reasoning)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: Any) -> Tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_images_go_with_the_prompt(tmp_path: Path, capsys: pytest.CaptureFixture[str], recorded: Any) -> None:
    (tmp_path / "a.png").write_bytes(PNG)
    (tmp_path / "b.png").write_bytes(PNG + b"\x01")
    config = _config(tmp_path, "It says 12.50.")
    code, out, err = run(capsys, "complete", "--config", config, "--image", tmp_path / "a.png",
                         "--image", tmp_path / "b.png", "What is the total?")
    assert (code, out, err) == (0, "It says 12.50.\n", "")
    _, messages, _ = recorded[0]
    assert messages == [Message("user", ["What is the total?", Image.from_bytes(PNG), Image.from_bytes(PNG + b"\x01")])]


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "cannot read image"), (b"GIF87", "unknown media type")],
)
def test_an_image_that_cannot_be_sent_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], recorded: Any, content: Any, expected: str
) -> None:
    path = tmp_path / "receipt.png"
    if content is not None:
        path.write_bytes(content)
    code, out, err = run(capsys, "complete", "--config", _config(tmp_path, "x"), "--image", path, "hi")
    assert code == 2 and out == "" and expected in err and "receipt.png" in err and err.count("\n") == 1
    assert recorded == []  # nothing sent


def test_schema_prints_the_json_data(tmp_path: Path, capsys: pytest.CaptureFixture[str], recorded: Any) -> None:
    schema = tmp_path / "receipt.schema.json"
    schema.write_text(json.dumps(SCHEMA), encoding="utf-8")
    config = _config(tmp_path, '{"total": 12.5}')  # each run builds its providers afresh
    code, out, _ = run(capsys, "complete", "--config", config, "--schema", schema, "Read it.")
    assert code == 0 and json.loads(out) == {"total": 12.5} and out == '{\n  "total": 12.5\n}\n'
    assert recorded[0][2]["schema"] == SCHEMA
    code, out, _ = run(capsys, "complete", "--config", config, "--schema", schema, "--json", "Read it.")
    assert code == 0 and json.loads(out)["data"] == {"total": 12.5}
    code, out, _ = run(capsys, "complete", "--config", config, "--schema", schema, "--stream", "--json", "Read it.")
    assert code == 0 and json.loads(out.splitlines()[-1])["data"] == {"total": 12.5}


def test_a_reply_that_is_not_the_json_asked_for_fails_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], recorded: Any
) -> None:
    schema = tmp_path / "s.json"
    schema.write_text("{}", encoding="utf-8")
    config = _config(tmp_path, "Sure, here you go")
    code, out, err = run(capsys, "complete", "--config", config, "--schema", schema, "x")
    assert code == 1 and out == "" and "not valid JSON" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, "cannot read"), ("{not json", "is not valid JSON"), ("[1, 2]", "must hold a JSON schema (an object)")],
)
def test_a_bad_schema_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], recorded: Any, text: Any, expected: str
) -> None:
    schema = tmp_path / "s.json"
    if text is not None:
        schema.write_text(text, encoding="utf-8")
    code, out, err = run(capsys, "complete", "--config", _config(tmp_path, "x"), "--schema", schema, "hi")
    assert code == 2 and out == "" and expected in err and "--schema" in err and recorded == []


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("terminal", [False, True])
def test_reasoning_goes_to_stderr_dimmed_only_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, recorded: Any,
    stream: bool, terminal: bool,
) -> None:
    config = _config(tmp_path, "The answer is 4.", reasoning="Two plus two is four.")
    stderr = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    argv = ["complete", "--config", config, "--reasoning", "high", *(["--stream"] if stream else []), "2+2?"]
    code, out, _ = run(capsys, *argv)
    assert code == 0 and out == "The answer is 4.\n"  # stdout: the answer alone
    shown = stderr.getvalue()
    assert shown.replace("\x1b[2m", "").replace("\x1b[0m", "") == "Two plus two is four.\n"
    assert ("\x1b[2m" in shown) is terminal
    assert recorded[0][2]["reasoning"] == "high"
    code, _, _ = run(capsys, "complete", "--config", config, "--reasoning", "off", "2+2?")
    assert code == 0 and recorded[1][2]["reasoning"] is False


def test_reasoning_is_in_the_json_not_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, "4", reasoning="Adding.")
    code, out, err = run(capsys, "complete", "--config", config, "--json", "2+2?")
    assert code == 0 and json.loads(out)["reasoning"] == "Adding." and err == ""
    code, out, err = run(capsys, "complete", "--config", config, "--json", "--stream", "2+2?")
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0]["reasoning"] == "Adding." and lines[-1]["reasoning"] == "Adding." and err == ""
    code, _, err = run(capsys, "complete", "--config", config, "--reasoning", "extreme", "2+2?")
    assert code == 2 and "invalid choice" in err
