"""How the value types show: aligned text at a ``>>>`` prompt, HTML tables in Jupyter, and
JSON-ready ``to_dict()``."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
import textwrap
from typing import Any, Dict, List

import pytest

from provider_kit import Completion, HealthReport, HealthStatus, Message, StreamChunk, Usage

AT = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
OPEN = {"state": "open", "failures": 3, "open_until": "2026-01-01T12:00:30+00:00", "last_error": "E: x"}
CLOSED = {"state": "closed", "failures": 0, "open_until": None, "last_error": None}


def _cells(html: str) -> List[Dict[str, str]]:
    """Every th/td of an HTML table: its tag, its inline style and its text."""
    return [
        {"tag": tag, "style": style, "text": text}
        for tag, style, text in re.findall(r'<(th|td) style="([^"]*)">([^<]*)</\1>', html)
    ]


def _alignment(html: str) -> Dict[str, str]:
    """Cell text -> its text-align, for every cell with text."""
    found = {}
    for cell in _cells(html):
        match = re.search(r"text-align:(\w+)", cell["style"])
        assert match, f"{cell} has no explicit alignment (Jupyter would right-align it)"
        if cell["text"]:
            found[cell["text"]] = match.group(1)
    return found


def _report(*, circuit: bool) -> HealthReport:
    return HealthReport(
        [
            HealthStatus("remote", False, 0.012, "unreachable: refused", AT, OPEN if circuit else CLOSED),
            HealthStatus("auxiliary", True, 0.4, None, AT, CLOSED),
        ]
    )


# -- HTML --------------------------------------------------------------------------------------


def test_health_html_aligns_text_left_and_numbers_right() -> None:
    html = _report(circuit=True)._repr_html_()
    cells = _cells(html)
    assert len(cells) == 5 + 2 * 5 == len(re.findall(r"<t[hd][ >]", html))  # every cell styled
    aligned = _alignment(html)
    texts = ("provider", "status", "reason", "circuit", "remote", "auxiliary", "FAIL", "ok", "unreachable: refused")
    for text in texts:
        assert aligned[text] == "left", text
    for text in ("latency", "12 ms", "400 ms"):
        assert aligned[text] == "right", text


def test_health_html_shows_the_circuit_column_only_when_a_circuit_is_not_closed() -> None:
    shown = _report(circuit=True)._repr_html_()
    assert [cell["text"] for cell in _cells(shown) if cell["tag"] == "th"][-1] == "circuit"
    assert "open until 12:00:30 UTC" in shown
    hidden = _report(circuit=False)._repr_html_()
    assert "circuit" not in hidden and "closed" not in hidden
    # A closed circuit with failures is news: the column shows.
    streak = dict(CLOSED, failures=2)
    assert "closed, 2 failures in a row" in HealthReport([HealthStatus("a", True, 0.1, None, AT, streak)])._repr_html_()


def test_health_status_html_is_its_one_row_report() -> None:
    status = _report(circuit=True)["remote"]
    assert status._repr_html_() == HealthReport([status])._repr_html_()


def test_completion_html_aligns_text_left_and_numbers_right() -> None:
    completion = Completion("Nile, Amazon & Yangtze.", "claude-x", "auxiliary", "stop", Usage(12, 8), {}, 0.412)
    html = completion._repr_html_()
    assert "Nile, Amazon &amp; Yangtze." in html
    aligned = _alignment(html)
    for text in ("provider", "model", "finish_reason", "auxiliary", "claude-x", "stop"):
        assert aligned[text] == "left", text
    for text in ("tokens in", "tokens out", "latency", "12", "8", "412 ms"):
        assert aligned[text] == "right", text


# -- text --------------------------------------------------------------------------------------


def test_health_text_is_an_aligned_table_with_the_same_column_rule() -> None:
    lines = str(_report(circuit=True)).splitlines()
    assert lines == [
        "provider   status  latency  reason                circuit",
        "auxiliary  ok       400 ms                        closed",
        "remote     FAIL      12 ms  unreachable: refused  open until 12:00:30 UTC, 3 failures in a row; last: E: x",
    ]
    assert str(_report(circuit=False)).splitlines() == [
        "provider   status  latency  reason",
        "auxiliary  ok       400 ms",
        "remote     FAIL      12 ms  unreachable: refused",
    ]
    everyone_ok = HealthReport([HealthStatus("a", True, 0.1), HealthStatus("local", True, None)])
    assert str(everyone_ok).splitlines() == [
        "provider  status  latency",
        "a         ok       100 ms",
        "local     ok            -",
    ]
    assert str(HealthReport()) == "(no providers)"


def test_reprs_are_the_readable_tables() -> None:
    report = _report(circuit=True)
    assert repr(report) == str(report)
    assert repr(report["remote"]) == str(HealthReport([report["remote"]]))
    completion = Completion("line one\nline two", "m", "p", "length", Usage(3, None), {"big": "x" * 100}, 1.5)
    assert repr(completion) == textwrap.dedent(
        """\
        Completion:
          line one
          line two

          provider  model  finish_reason  tokens in  tokens out  latency
          p         m      length                 3           -  1500 ms"""
    )
    assert str(completion) == "line one\nline two"
    assert "(no text)" in repr(Completion(""))
    # The small value types keep their constructor-like reprs.
    assert repr(Usage(1, 2)) == "Usage(input_tokens=1, output_tokens=2, total_tokens=3)"


def test_a_plain_interactive_prompt_shows_the_tables() -> None:
    """``python3 -i``: what a user typing ``report`` at ``>>>`` sees (the displayhook's repr)."""
    script = textwrap.dedent(
        """\
        import datetime
        from provider_kit import Completion, HealthReport, HealthStatus, Usage
        at = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
        report = HealthReport([
            HealthStatus("remote", False, 0.012, "unreachable: refused", at),
            HealthStatus("auxiliary", True, 0.4, None, at),
        ])
        report
        report["auxiliary"]
        Completion("Nile.", "m", "p", "stop", Usage(3, 1), None, 0.25)
        """
    )
    result = subprocess.run(
        [sys.executable, "-i", "-q"], input=script, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.splitlines() == [
        "provider   status  latency  reason",
        "auxiliary  ok       400 ms",
        "remote     FAIL      12 ms  unreachable: refused",
        "provider   status  latency",
        "auxiliary  ok       400 ms",
        "Completion:",
        "  Nile.",
        "",
        "  provider  model  finish_reason  tokens in  tokens out  latency",
        "  p         m      stop                   3           1   250 ms",
    ]
    assert "Traceback" not in result.stderr


# -- to_dict -----------------------------------------------------------------------------------

VALUES: List[Any] = [
    Message("user", "hi"),
    Usage(3, 4),
    Usage(),
    Completion("text", "m", "p", "stop", Usage(1, 2), {"id": "x"}, 0.5),
    StreamChunk("tok"),
    StreamChunk("", "stop", Usage(1, 1)),
    HealthStatus("p", False, None, "timeout: late", AT, OPEN),
    _report(circuit=True),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_to_dict_is_json_ready(value: Any) -> None:
    data = value.to_dict()
    assert json.loads(json.dumps(data)) == data  # nothing json cannot carry, nothing lost on the way


def test_to_dict_fields() -> None:
    completion = VALUES[3]
    assert completion.to_dict() == {
        "text": "text",
        "provider": "p",
        "model": "m",
        "finish_reason": "stop",
        "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
        "latency_s": 0.5,
    }
    assert completion.to_dict(include_raw=True)["raw"] == {"id": "x"}
    assert Message("user", "hi").to_dict() == {"role": "user", "content": "hi"}
    assert StreamChunk("tok").to_dict()["usage"] is None
    # A plain chunk's four fields; reasoning and data only when the chunk carries them (parsed
    # may be any class's instance, provider_state is opaque: neither is JSON-ready).
    assert list(StreamChunk("tok").to_dict()) == ["text", "finish_reason", "usage", "provider"]
    full = StreamChunk("", "stop", Usage(), "p", reasoning="hm", data={"a": 1}, parsed=object(), provider_state={})
    assert list(full.to_dict()) == ["text", "finish_reason", "usage", "provider", "reasoning", "data"]
    last = StreamChunk("", "stop", Usage(1, 1), "remote").to_dict()
    usage = {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}
    assert last == {"text": "", "finish_reason": "stop", "usage": usage, "provider": "remote"}
    status = HealthStatus("p", False, None, "timeout: late", AT, OPEN)
    assert status.to_dict() == {
        "name": "p", "ok": False, "latency_s": None, "error": "timeout: late",
        "checked_at": "2026-01-01T00:00:00+00:00", "circuit": OPEN,
    }
    report = _report(circuit=True)
    assert list(report.to_dict()) == ["auxiliary", "remote"]
    assert report.to_dict()["remote"] == report["remote"].to_dict()
