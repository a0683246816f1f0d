"""on_call hooks and CallRecord, registry.usage(), the SQLite call log and `provider-kit logs`."""

from __future__ import annotations

import datetime
import json
import logging
import os
import sqlite3
import stat
import sys
import threading

import pytest
from _kinds import SOME_KIND
from _support import KEY, read_only

from provider_kit import (
    CallLog,
    CallLogWarning,
    CallRecord,
    ConfigError,
    ProviderRegistry,
    ServerError,
    UsageReport,
    UsageTotals,
)
from provider_kit.cli import main

# -- CallRecord and provider-level hooks


def test_a_hook_gets_one_secret_free_record_per_complete(kind, server, make):
    records = []
    provider = make(server, on_call=records.append)
    completion = provider.complete("Hello", system="Be brief.")
    [record] = records
    assert isinstance(record, CallRecord)
    assert record.time.tzinfo is datetime.timezone.utc
    assert record.provider == provider.name and record.provider_type == kind
    assert record.method == "complete" and record.ok
    assert record.model == completion.model
    assert record.messages == ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"})
    assert record.text == completion.text and record.finish_reason == completion.finish_reason
    assert record.usage == completion.usage and record.error_type is None
    assert 0 < record.latency_s < 30 and record.cached is False
    data = record.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert KEY not in json.dumps(data) + repr(record)


def test_a_stream_makes_its_record_when_it_ends(kind, server, make):
    records = []
    provider = make(server, on_call=records.append)
    chunks = provider.stream("Hello")
    assert records == []  # not before it ends
    chunks = list(chunks)
    [record] = records
    assert record.method == "stream" and record.ok
    assert record.text == "".join(chunk.text for chunk in chunks)
    assert record.usage == chunks[-1].usage and record.finish_reason == chunks[-1].finish_reason


def test_a_stream_closed_early_is_recorded_with_what_arrived(server, make):
    records = []
    provider = make(server, on_call=records.append)
    chunks = provider.stream("Hello there, a longer prompt")
    first = next(chunks)
    chunks.close()
    [record] = records
    assert record.text == first.text and record.finish_reason is None and record.usage is None
    assert record.error_type is None


def test_a_failed_call_is_recorded_with_its_error(server, make):
    records = []
    provider = make(server, on_call=records.append, max_retries=0)
    server.enqueue(server.error_reply(500, "boom"))
    with pytest.raises(ServerError) as caught:
        provider.complete("Hello")
    server.enqueue(server.error_reply(500, "boom"))
    with pytest.raises(ServerError) as streamed:
        list(provider.stream("Hello"))
    assert [record.method for record in records] == ["complete", "stream"]
    for record, error in zip(records, (caught.value, streamed.value)):
        assert record.error_type == "ServerError" and record.error_message == str(error)
        assert record.text is None and record.usage is None and not record.ok
        assert KEY not in record.error_message


def test_a_hook_that_raises_is_logged_once_and_never_breaks_the_call(server, make, caplog):
    seen = []

    def broken(record):
        raise RuntimeError("hook bug")

    provider = make(server, on_call=[broken, seen.append])
    with caplog.at_level(logging.WARNING, logger="provider_kit"):
        assert provider.complete("one").text
        assert list(provider.stream("two"))
    assert len(seen) == 2  # the next hook still ran
    warnings_logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings_logged) == 1 and "broken" in warnings_logged[0] and "hook bug" in warnings_logged[0]


def test_hooks_are_added_and_removed_and_a_non_callable_is_refused(server, make):
    records = []
    provider = make(server)
    assert provider.on_call == ()
    provider.add_on_call(records.append)
    provider.complete("one")
    provider.remove_on_call(records.append)
    provider.complete("two")
    assert len(records) == 1
    with pytest.raises(ConfigError, match="on_call must be a callable"):
        make(server, on_call="print")
    with pytest.raises(ConfigError):
        provider.add_on_call(42)


# -- the registry: hooks and usage


def _pair(make, server, **options):
    first = make(server, name="first", **options)
    second = make(server, name="second", **options)
    return first, second


def test_registry_hooks_get_one_record_per_provider_tried(server, make):
    records = []
    first, second = _pair(make, server, max_retries=0)
    registry = ProviderRegistry([first, second], on_call=records.append, breaker_threshold=0)
    server.enqueue(server.error_reply(503, "down"))
    completion = registry.complete("Hello", provider="first", fallbacks=["second"])
    assert completion.provider == "second"
    assert [(r.provider, r.error_type) for r in records] == [("first", "ServerError"), ("second", None)]
    second.complete("straight on the provider")  # a registry's hooks see direct calls too
    assert len(records) == 3


def test_usage_counts_calls_failures_and_tokens_per_provider_and_model(server, make):
    first, second = _pair(make, server, max_retries=0)
    registry = ProviderRegistry([first, second], breaker_threshold=0)
    assert registry.usage() == UsageReport() and "(no calls)" in repr(registry.usage())
    answers = [registry.complete("Hello", provider="first") for _ in range(2)]
    chunks = list(registry.stream("Hi", provider="second"))
    server.enqueue(server.error_reply(500, "boom"))
    with pytest.raises(ServerError):
        registry.complete("Hello", provider="second")
    report = registry.usage()
    model = answers[0].model
    first_totals = report[("first", model)]
    assert first_totals.calls == 2 and first_totals.failures == 0
    assert first_totals.input_tokens == sum(a.usage.input_tokens for a in answers)
    assert first_totals.output_tokens == sum(a.usage.output_tokens for a in answers)
    second_totals = report.by_provider("second")
    assert second_totals.calls == 2 and second_totals.failures == 1
    assert second_totals.output_tokens == chunks[-1].usage.output_tokens
    assert report.total == first_totals + second_totals
    rows = report.to_dict()
    assert json.loads(json.dumps(rows)) == rows and {row["provider"] for row in rows} == {"first", "second"}
    text = repr(report)
    assert text.splitlines()[0].split()[:3] == ["provider", "model", "calls"] and "first" in text
    assert "<table>" in report._repr_html_()


def test_usage_is_thread_safe_and_counts_map(server, make):
    provider = make(server, name="only")
    registry = ProviderRegistry([provider], batch_concurrency=8)
    results = registry.map([f"prompt {i}" for i in range(40)], max_workers=8, progress=False)
    totals = registry.usage().by_provider("only")
    assert totals.calls == 40 and totals.failures == 0
    assert totals.output_tokens == sum(result.usage.output_tokens for result in results)


def test_a_stream_counts_in_usage_when_it_ends(server, make):
    registry = ProviderRegistry([make(server, name="only")])
    chunks = registry.stream("Hello")
    next(chunks)
    assert registry.usage().total.calls == 0
    list(chunks)
    assert registry.usage().total == UsageTotals(calls=1, input_tokens=registry.usage().total.input_tokens,
                                                 output_tokens=registry.usage().total.output_tokens)


# -- the call log


def _config(server, log, **top):
    return {"log": log, **top, "providers": {"only": {"type": server.protocol, "base_url": server.base_url,
                                                        "api_key": KEY}}}


def test_the_log_records_every_call_owner_only_without_the_key(server, tmp_path):
    path = tmp_path / "logs" / "calls.sqlite3"
    with ProviderRegistry.from_config(_config(server, str(path))) as registry:
        registry.complete("What is the secret word?")
        list(registry.stream("Stream it"))
        registry["only"].complete("Straight on the provider")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    entries = CallLog(path).entries(10)
    assert [entry["messages"][-1]["content"] for entry in entries] == [
        "Straight on the provider", "Stream it", "What is the secret word?"]
    assert entries[1]["method"] == "stream" and entries[1]["usage"]["output_tokens"] > 0
    for candidate in path.parent.iterdir():  # the database and its WAL: no key, no auth header
        data = candidate.read_bytes()
        assert KEY.encode() not in data and b"Bearer" not in data and b"x-api-key" not in data


def test_log_true_uses_the_user_cache_directory(server, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with ProviderRegistry.from_config(_config(server, True)) as registry:
        registry.complete("Hello")
    assert len(CallLog(tmp_path / "cache" / "provider_kit" / "calls.sqlite3").entries()) == 1


def test_log_argument_overrides_the_config_and_false_turns_it_off(server, tmp_path):
    config = _config(server, str(tmp_path / "configured.sqlite3"))
    with ProviderRegistry.from_config(config, log=False) as registry:
        registry.complete("Hello")
    with ProviderRegistry.from_config(config, log=tmp_path / "given.sqlite3") as registry:
        registry.complete("Hello")
    assert not (tmp_path / "configured.sqlite3").exists()
    assert len(CallLog(tmp_path / "given.sqlite3").entries()) == 1


def test_a_relative_log_path_in_a_file_is_relative_to_the_file(server, tmp_path):
    directory = tmp_path / "project"
    directory.mkdir()
    config = directory / "provider_kit.toml"
    config.write_text(f'log = "calls.sqlite3"\n[providers.only]\ntype = "{server.protocol}"\n'
                      f'base_url = "{server.base_url}"\napi_key = "{KEY}"\n')
    with ProviderRegistry.from_config(config) as registry:
        registry.complete("Hello")
    assert (directory / "calls.sqlite3").is_file()


@pytest.mark.parametrize("value", [3, "", ["a"]])
def test_a_bad_log_setting_is_a_config_error(value):
    with pytest.raises(ConfigError, match="log"):
        ProviderRegistry.from_config({"log": value, "providers": {}})


def test_a_misspelt_log_key_gets_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'log'"):
        ProviderRegistry.from_config({"logg": True, "providers": {}})


def test_a_corrupt_log_warns_once_and_never_fails_a_call(server, make, tmp_path, caplog):
    path = tmp_path / "calls.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    provider = make(server, on_call=CallLog(path))
    with pytest.warns(CallLogWarning) as caught, caplog.at_level(logging.WARNING, logger="provider_kit"):
        assert provider.complete("one").text
        assert provider.complete("two").text
    assert len(caught) == 1 and caught[0].message.path == str(path)
    assert sum("call log" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING) == 1


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX permissions")
def test_a_read_only_log_warns_and_the_call_goes_on(server, make, tmp_path):
    path = tmp_path / "calls.sqlite3"
    writer = CallLog(path)
    writer(_record())  # a real log, then made read-only (for root: immutable)
    writer.close()
    undo = read_only([path, path.parent])
    try:
        provider = make(server, on_call=CallLog(path))
        with pytest.warns(CallLogWarning):
            assert provider.complete("Hello").text
    finally:
        undo()


def test_a_log_whose_directory_cannot_be_made_warns_and_the_call_goes_on(server, make, tmp_path):
    (tmp_path / "a_file").write_text("")
    provider = make(server, on_call=CallLog(tmp_path / "a_file" / "calls.sqlite3"))
    with pytest.warns(CallLogWarning, match="cannot write"):
        assert provider.complete("Hello").text


def test_a_locked_log_warns_and_the_call_goes_on(server, make, tmp_path):
    path = tmp_path / "calls.sqlite3"
    CallLog(path)(_record())
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        provider = make(server, on_call=CallLog(path, busy_timeout=0.05))
        with pytest.warns(CallLogWarning, match="locked"):
            assert provider.complete("Hello").text
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_threads_writing_one_log_lose_nothing(tmp_path):
    log = CallLog(tmp_path / "calls.sqlite3")
    start = threading.Barrier(8)

    def write(thread):
        start.wait(timeout=10)
        for index in range(25):
            log(_record(text=f"{thread}-{index}"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    texts = {entry["text"] for entry in log.entries(1000)}
    assert texts == {f"{thread}-{index}" for thread in range(8) for index in range(25)}


def test_a_call_log_pickles_as_its_path(tmp_path):
    import pickle

    log = CallLog(tmp_path / "calls.sqlite3")
    log(_record())
    copy = pickle.loads(pickle.dumps(log))
    copy(_record(text="from the copy"))
    assert [entry["text"] for entry in log.entries()] == ["from the copy", "answer"]


def _record(text="answer", provider="p", model="m", **fields):
    from provider_kit import Usage

    return CallRecord(datetime.datetime.now(datetime.timezone.utc), provider, SOME_KIND, model,
                      messages=[{"role": "user", "content": "q"}], text=text,
                      usage=Usage(input_tokens=3, output_tokens=4), latency_s=0.01, **fields)


# -- provider-kit logs


def _write_log(path):
    log = CallLog(path)
    log(_record(text="first answer", provider="a"))
    log(_record(text="second answer", provider="b", model="m2"))
    log(_record(text=None, provider="b", error_type="ServerError", error_message="b: 500 boom"))
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_logs_shows_the_latest_entries(capsys, tmp_path):
    path = _write_log(tmp_path / "calls.sqlite3")
    code, out, err = run(capsys, "logs", "--log", path, "-n", 2)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["time", "provider", "model"] and len(lines) == 3
    assert "ServerError: b: 500 boom" in lines[1] and "second answer" in lines[2]
    code, out, _ = run(capsys, "logs", "--log", path, "--provider", "a", "--json")
    [entry] = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and entry["text"] == "first answer" and entry["usage"]["input_tokens"] == 3


def test_logs_usage_totals_per_provider_and_model(capsys, tmp_path):
    path = _write_log(tmp_path / "calls.sqlite3")
    code, out, _ = run(capsys, "logs", "--log", path, "--usage", "--since", "7d", "--json")
    rows = {(row["provider"], row["model"]): row for row in json.loads(out)}
    assert code == 0 and rows[("b", "m")]["failures"] == 1 and rows[("b", "m2")]["output_tokens"] == 4
    code, out, _ = run(capsys, "logs", "--log", path, "--usage")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["provider", "model", "calls"]


def test_logs_finds_the_log_through_the_config(capsys, tmp_path):
    _write_log(tmp_path / "calls.sqlite3")
    config = tmp_path / "provider_kit.toml"
    config.write_text(f'log = "calls.sqlite3"\n[providers.a]\ntype = "{SOME_KIND}"\n'
                      'base_url = "http://127.0.0.1:9"\napi_key = "x"\n')
    code, out, _ = run(capsys, "logs", "--config", config)
    assert code == 0 and "first answer" in out


def test_logs_without_a_log_is_a_one_line_error(capsys, tmp_path):
    code, out, err = run(capsys, "logs", "--log", tmp_path / "missing.sqlite3")
    assert code == 2 and out == "" and "no call log" in err and len(err.splitlines()) == 1
    (tmp_path / "junk").write_bytes(b"junk" * 100)
    code, _, err = run(capsys, "logs", "--log", tmp_path / "junk")
    assert code == 2 and "not a readable call log" in err
    code, _, err = run(capsys, "logs", "--usage", "--since", "soon", "--log", tmp_path / "junk")
    assert code == 2 and "7d" in err


def test_records_are_immutable_and_pickle():
    import pickle

    record = _record()
    with pytest.raises(AttributeError):
        record.text = "changed"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(record)) == record
