"""Value types: immutable, comparable, picklable, with readable reprs; message coercion."""

from __future__ import annotations

import datetime
import pickle

import pytest

from provider_kit import (
    CircuitState,
    Completion,
    ConfigError,
    HealthReport,
    HealthStatus,
    Message,
    StreamChunk,
    Usage,
)
from provider_kit.types import as_messages

VALUES = [
    Message("user", "hi"),
    Usage(3, 4),
    Completion("text", "m", "p", "stop", Usage(1, 2), {"raw": True}, 0.5),
    StreamChunk("tok", "stop", Usage(1, 1), "remote"),
    HealthStatus("p", True, 0.01, None, datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)),
    HealthStatus("q", False, 0.2, "down", None, {"state": "open", "failures": 3}),
    CircuitState("p", "open", 3, datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc), "ServerError: 503"),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_values_are_immutable(value):
    field = type(value).__slots__[0]
    with pytest.raises(AttributeError):
        setattr(value, field, "changed")
    with pytest.raises(AttributeError):
        value.new_attribute = 1


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_values_compare_by_value_and_pickle(value):
    restored = pickle.loads(pickle.dumps(value))
    assert restored == value
    assert restored is not value
    assert repr(restored) == repr(value)


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_replace_changes_one_field_and_carries_every_other(value):
    # Rebuilds by keyword: a field added to a value type can never be dropped by a rebuild.
    first = type(value).__slots__[0]
    replacement = "role" if first == "role" else "other"
    changed = value._replace(**{first: replacement})
    assert getattr(changed, first) == replacement
    for field in type(value).__slots__[1:]:
        assert getattr(changed, field) == getattr(value, field), field
    assert value._replace() == value
    with pytest.raises(TypeError, match="no field nope"):
        value._replace(nope=1)


def test_usage_total_is_derived_only_when_both_counts_are_known():
    assert Usage(3, 4).total_tokens == 7
    assert Usage(3, None).total_tokens is None
    assert Usage(3, 4, 10).total_tokens == 10


def test_completion_repr_leaves_out_the_raw_body():
    completion = Completion("hello", "m", "p", "stop", Usage(1, 2), {"secret_raw": "x" * 1000}, 0.1)
    assert "secret_raw" not in repr(completion)
    assert "  hello\n" in repr(completion)
    assert str(completion) == "hello"
    assert hash(completion)  # hashable even though raw is a dict


def test_health_report_is_a_read_only_mapping_with_summaries():
    report = HealthReport([HealthStatus("b", False, 0.2, "timeout: late"), HealthStatus("a", True, 0.1)])
    assert list(report) == ["a", "b"]
    assert report["b"].error == "timeout: late"
    assert (report.ok, report.healthy, report.unhealthy) == (False, ["a"], ["b"])
    assert HealthReport([HealthStatus("a", True)]).ok is True
    assert HealthReport([]).ok is False
    with pytest.raises(TypeError):
        report["c"] = HealthStatus("c", True)  # type: ignore[index]
    assert "timeout: late" in str(report) and "FAIL" in str(report)
    assert report.to_dict()["a"]["ok"] is True
    assert pickle.loads(pickle.dumps(report)) == report


def test_html_reprs_escape_their_content():
    report = HealthReport([HealthStatus("<p>", False, None, "<script>")])
    html = report._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt;" in Completion("<b>", provider="p")._repr_html_()


def test_as_messages_accepts_strings_messages_and_dicts():
    messages = as_messages([Message("user", "a"), {"role": "assistant", "content": "b"}], system="s")
    assert messages == [Message("system", "s"), Message("user", "a"), Message("assistant", "b")]
    assert as_messages("hi") == [Message("user", "hi")]


@pytest.mark.parametrize(
    "bad",
    [None, 42, b"bytes", [], [{"role": "user"}], [{"content": "x"}], [("user", "x")],
     [{"role": "user", "content": 5}], [{"role": "", "content": "x"}]],
)
def test_as_messages_rejects_bad_input_with_config_error(bad):
    with pytest.raises(ConfigError):
        as_messages(bad)


def test_as_messages_rejects_a_non_string_system_prompt():
    with pytest.raises(ConfigError, match="system"):
        as_messages("hi", system=["not", "a", "string"])  # type: ignore[arg-type]
