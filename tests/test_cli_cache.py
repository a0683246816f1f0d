"""``provider-kit cache info`` and ``provider-kit cache clear``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from _kinds import SOME_KIND
from _support import KEY

from provider_kit import ResponseCache
from provider_kit.cli import main
from provider_kit.testing import LoopbackServer


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _filled(path: Path, count: int) -> None:
    with LoopbackServer(SOME_KIND, api_key=KEY) as server:
        from _kinds import CLASSES

        with CLASSES[SOME_KIND](api_key=KEY, base_url=server.base_url, response_cache=ResponseCache(path)) as p:
            for index in range(count):
                p.complete(f"prompt {index}")


def test_info_shows_the_configured_file_and_its_entries(capsys, tmp_path):
    config = tmp_path / "provider_kit.toml"
    config.write_text('cache = "answers.sqlite3"\n', encoding="utf-8")
    _filled(tmp_path / "answers.sqlite3", 3)
    code, out, err = run(capsys, "cache", "info", "--config", config)
    assert (code, err) == (0, "")
    assert f"path     {tmp_path / 'answers.sqlite3'}\n" in out and "entries  3\n" in out and " UTC" in out
    code, out, _ = run(capsys, "--config", config, "cache", "info", "--json")
    data = json.loads(out)
    assert code == 0 and data["entries"] == 3 and data["path"] == str(tmp_path / "answers.sqlite3")
    assert KEY not in out


def test_info_of_a_missing_file_creates_nothing(capsys, tmp_path):
    path = tmp_path / "none.sqlite3"
    code, out, _ = run(capsys, "cache", "info", "--path", path)
    assert code == 0 and "no file yet" in out and "entries  0" in out
    assert not path.exists()


def test_clear_everything_or_only_old_answers(capsys, tmp_path):
    path = tmp_path / "c.sqlite3"
    _filled(path, 3)
    with sqlite3.connect(str(path)) as connection:
        connection.execute("UPDATE responses SET created = created - 8 * 86400 WHERE rowid <= 2")
    code, out, _ = run(capsys, "cache", "clear", "--older-than", "7d", "--path", path)
    assert code == 0 and out.startswith("removed 2 answers older than") and str(path) in out
    code, out, _ = run(capsys, "cache", "clear", "--path", path)
    assert code == 0 and out.startswith("removed 1 answer from")
    assert ResponseCache(path).info()["entries"] == 0


def test_usage_errors_exit_2_with_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "cache", "clear", "--older-than", "soon", "--path", tmp_path / "c")
    assert code == 2 and "expected a duration such as 7d" in err and err.count("\n") == 1
    code, _, err = run(capsys, "cache", "clera")
    assert code == 2 and "did you mean 'clear'" in err
    code, _, err = run(capsys, "cache")
    assert code == 2 and "ACTION" in err


def test_a_file_that_is_not_a_cache_is_a_one_line_error(capsys, tmp_path):
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"not a database" * 200)
    code, _, err = run(capsys, "cache", "info", "--path", path)
    assert code == 2 and err.startswith("provider-kit: error: response cache") and err.count("\n") == 1
