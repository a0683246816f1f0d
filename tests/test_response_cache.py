"""The response cache: answers from an SQLite file instead of the server, for every built-in type
against its simulator; what the key holds, streams replayed, and the failure paths (a corrupt,
locked or read-only file never fails a call), threads and processes, file permissions."""

from __future__ import annotations

import os
import pickle
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path
from typing import Any, List

import pytest
from _kinds import SOME_KIND
from _support import KEY, read_only

import provider_kit
from provider_kit import ProviderRegistry, ResponseCache, ResponseCacheWarning
from provider_kit.errors import ConfigError, ServerError
from provider_kit.testing import LoopbackServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cache_file(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "responses.sqlite3"


def test_a_second_complete_is_answered_from_the_cache(kind, server, make, cache_file):
    provider = make(server, response_cache=str(cache_file), max_retries=0)
    first = provider.complete("Name a river.", max_tokens=20)
    second = provider.complete("Name a river.", max_tokens=20)
    assert len(server.requests) == 1
    assert (first.cached, second.cached) == (False, True)
    for field in ("text", "model", "provider", "finish_reason", "usage", "raw", "reasoning", "provider_state"):
        assert getattr(second, field) == getattr(first, field), field
    assert second.to_dict()["cached"] is True and "cached" not in first.to_dict()
    assert "(cached)" in repr(second) and "(cached)" not in repr(first)


def test_tool_calls_come_back_from_the_cache(kind, server, make, cache_file):
    provider = make(server, response_cache=str(cache_file), max_retries=0)
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    server.enqueue(server.completion_reply("", tool_calls=[("call_1", "weather", {"city": "Oslo"})]))
    first = provider.complete("Weather in Oslo?", tools=tools)
    second = provider.complete("Weather in Oslo?", tools=tools)
    assert len(server.requests) == 1 and second.cached
    assert second.tool_calls == first.tool_calls and second.tool_calls[0].arguments == {"city": "Oslo"}
    assert second.finish_reason == first.finish_reason == "tool_calls"
    assert second.message == first.message


def test_cache_false_skips_the_cache_for_one_call(server, make, cache_file):
    provider = make(server, response_cache=str(cache_file))
    provider.complete("hi", cache=False)  # neither looked up nor stored
    assert not provider.complete("hi").cached
    assert not provider.complete("hi", cache=False).cached
    assert provider.complete("hi").cached
    assert len(server.requests) == 3
    list(provider.stream("hi", cache=False))
    list(provider.stream("hi", cache=False))
    assert len(server.requests) == 5


def test_the_key_is_every_parameter_of_the_request_and_never_a_header_or_key(kind, make, cache_file):
    with LoopbackServer(kind, api_key=KEY, models=["model-one", "other-model"]) as server:
        _every_parameter(server, make, cache_file)


def _every_parameter(server, make, cache_file):
    provider = make(server, response_cache=str(cache_file), model="model-one")
    provider.complete("hi", max_tokens=10)
    variants = [dict(max_tokens=11), dict(max_tokens=10, temperature=0.5), dict(max_tokens=10, system="Be brief."),
                dict(max_tokens=10, stop=["x"]), dict(max_tokens=10, model="other-model")]
    for variant in variants:
        assert not provider.complete("hi", **variant).cached, variant
    assert not provider.complete("hello", max_tokens=10).cached
    sent = len(server.requests)
    assert sent == 2 + len(variants)
    # Another key, another header, another provider name: the same request, so the same answer.
    other = make(server, name="elsewhere", response_cache=str(cache_file), headers={"X-Team": "blue"},
                 model="model-one")
    answer = other.complete("hi", max_tokens=10, extra_headers={"X-Trace": "1"})
    assert answer.cached and answer.provider == "elsewhere"
    assert len(server.requests) == sent
    # The file holds answers, never the key.
    for name in os.listdir(cache_file.parent):
        assert KEY.encode() not in (cache_file.parent / name).read_bytes()


def test_the_base_url_is_part_of_the_key(kind, make, cache_file):
    with LoopbackServer(kind, api_key=KEY) as one, LoopbackServer(kind, api_key=KEY) as two:
        make(one, response_cache=str(cache_file)).complete("hi")
        assert not make(two, response_cache=str(cache_file)).complete("hi").cached
        assert len(two.requests) == 1


def test_a_stream_is_replayed_chunk_by_chunk(kind, server, make, cache_file):
    provider = make(server, response_cache=str(cache_file), max_retries=0)
    server.enqueue(server.stream_reply(["The ", "Nile", "."]))
    first = list(provider.stream("Name a river."))
    second = list(provider.stream("Name a river."))
    assert len(server.requests) == 1
    assert [chunk.text for chunk in second] == [chunk.text for chunk in first]
    assert second[-1].cached and not any(chunk.cached for chunk in [*first, *second[:-1]])
    assert second[-1].to_dict()["cached"] is True
    assert second[-1].usage == first[-1].usage and second[-1].finish_reason == first[-1].finish_reason
    assert all(chunk.provider == provider.name for chunk in second)
    # complete and stream send different requests: each is cached on its own.
    assert not provider.complete("Name a river.").cached


def test_a_streamed_tool_call_is_replayed_with_its_fragments(kind, server, make, cache_file):
    provider = make(server, response_cache=str(cache_file), max_retries=0)
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
    server.enqueue(server.stream_reply(["Let me look."], tool_calls=[("call_1", "weather", {"city": "Oslo"})]))
    first = list(provider.stream("Weather?", tools=tools))
    second = list(provider.stream("Weather?", tools=tools))
    assert len(server.requests) == 1
    assert [chunk.tool_call for chunk in second] == [chunk.tool_call for chunk in first]
    assert second[-1].tool_calls == first[-1].tool_calls and second[-1].tool_calls[0].arguments == {"city": "Oslo"}


def test_structured_data_is_rebuilt_from_the_cached_text(server, make, cache_file):
    provider = make(server, response_cache=str(cache_file))
    schema = {"type": "object", "properties": {"river": {"type": "string"}}, "required": ["river"],
              "additionalProperties": False}
    server.enqueue(server.completion_reply('{"river": "Nile"}'), times=1)
    first = provider.complete("A river as JSON.", schema=schema)
    second = provider.complete("A river as JSON.", schema=schema)
    assert second.cached and second.data == first.data == {"river": "Nile"}
    server.enqueue(server.stream_reply(['{"river": ', '"Nile"}']))
    list(provider.stream("A river as JSON.", schema=schema))
    replayed = list(provider.stream("A river as JSON.", schema=schema))
    assert replayed[-1].cached and replayed[-1].data == {"river": "Nile"}


def test_a_failed_call_a_stream_closed_early_and_a_broken_stream_are_not_stored(server, make, cache_file):
    provider = make(server, response_cache=str(cache_file), max_retries=0)
    server.enqueue(server.error_reply(500))
    with pytest.raises(ServerError):
        provider.complete("hi")
    assert not provider.complete("hi").cached
    stream = provider.stream("tell me")
    next(stream)
    stream.close()
    server.enqueue(server.stream_reply(["a", "b"], terminate=False))
    with pytest.raises(provider_kit.ResponseFormatError):
        list(provider.stream("tell me"))
    assert not list(provider.stream("tell me"))[-1].cached
    assert list(provider.stream("tell me"))[-1].cached
    assert len(server.requests) == 5


def test_a_caller_who_stops_at_the_final_chunk_still_stores_the_stream(server, make, cache_file):
    provider = make(server, response_cache=str(cache_file))
    for chunk in provider.stream("hi"):
        if chunk.finish_reason:
            break  # the generator is closed at its last yield
    assert list(provider.stream("hi"))[-1].cached


def test_the_file_is_readable_by_its_owner_alone(server, make, tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "new" / "deeper" / "answers.sqlite3"
        make(server, response_cache=str(path)).complete("hi")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    files = [name for name in path.parent.iterdir()]
    assert path in files and len(files) >= 2  # the WAL's files too
    for name in files:
        assert stat.S_IMODE(name.stat().st_mode) == 0o600, name


def test_cache_true_uses_the_users_cache_directory(monkeypatch, tmp_path):
    from provider_kit._response_cache import default_cache_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ResponseCache(True).path == tmp_path / "xdg" / "provider_kit" / "responses.sqlite3"
    monkeypatch.delenv("XDG_CACHE_HOME")
    if sys.platform.startswith("linux"):
        assert default_cache_path() == Path.home() / ".cache" / "provider_kit" / "responses.sqlite3"


def test_bad_settings_are_config_errors():
    for bad in (3, "", b"x", [1]):
        with pytest.raises(ConfigError, match="response_cache"):
            provider_kit.OpenAIProvider(api_key="k", response_cache=bad)
    with pytest.raises(ConfigError, match="cache"):
        ProviderRegistry.from_config({"cache": 3, "providers": {}})
    with pytest.raises(ConfigError, match="busy_timeout"):
        ResponseCache("x.sqlite3", busy_timeout=-1)


# --------------------------------------------------------------------------- failure paths


def _one_warning(record: Any) -> ResponseCacheWarning:
    found = [item.message for item in record if isinstance(item.message, ResponseCacheWarning)]
    assert len(found) == 1, [str(item) for item in found]
    return found[0]


def test_a_corrupt_file_warns_once_and_every_call_goes_to_the_provider(server, make, cache_file, caplog):
    cache_file.parent.mkdir()
    cache_file.write_bytes(b"this is not an SQLite database" * 100)
    provider = make(server, response_cache=ResponseCache(cache_file))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        answers = [provider.complete("hi"), provider.complete("hi"), *provider.stream("hi")]
    assert not any(answer.cached for answer in answers)
    assert len(server.requests) == 3
    warning = _one_warning(record)
    assert str(cache_file) in str(warning) and "calls go to the provider" in str(warning)
    assert warning.path == str(cache_file)
    assert any("calls go to the provider" in message for message in caplog.messages)


def test_a_locked_database_never_fails_a_call(server, make, cache_file):
    cache = ResponseCache(cache_file, busy_timeout=0.05)
    provider = make(server, response_cache=cache)
    provider.complete("before")
    holder = sqlite3.connect(str(cache_file), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process writing for a long time
    try:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            assert provider.complete("before").cached  # WAL: reading goes on
            assert not provider.complete("during").cached  # not stored: locked
            assert not provider.complete("during 2").cached
        assert "locked" in str(_one_warning(record))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not provider.complete("during").cached  # it was not stored; now it is
    assert provider.complete("during").cached


def test_a_database_locked_before_the_cache_opens_it_never_fails_a_call(server, make, cache_file):
    cache_file.parent.mkdir()
    holder = sqlite3.connect(str(cache_file), isolation_level=None)  # rollback journal, not WAL yet
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN EXCLUSIVE")
    provider = make(server, response_cache=ResponseCache(cache_file, busy_timeout=0.05))
    try:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            assert not provider.complete("hi").cached
            assert not provider.complete("hi").cached
        assert "locked" in str(_one_warning(record))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not provider.complete("hi").cached
    assert provider.complete("hi").cached


def test_a_read_only_file_in_a_read_only_directory_never_fails_a_call(server, make, cache_file):
    writer = ResponseCache(cache_file)
    make(server, response_cache=writer).complete("stored")
    writer.close()  # the last connection: SQLite folds the WAL back in and removes its files
    assert list(cache_file.parent.iterdir()) == [cache_file]
    undo = read_only([cache_file, cache_file.parent])
    try:
        provider = make(server, response_cache=ResponseCache(cache_file))
        sent = len(server.requests)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            answers = [provider.complete(prompt) for prompt in ("stored", "new", "new")]
            chunks = list(provider.stream("new"))
        assert [answer.cached for answer in answers[1:]] == [False, False] and not chunks[-1].cached
        assert len(server.requests) == sent + 4 - answers[0].cached
        assert "calls go to the provider" in str(_one_warning(record))
    finally:
        undo()


def test_many_threads_share_one_cache(server, make, cache_file):
    provider = make(server, response_cache=str(cache_file))
    prompts = [f"prompt {index}" for index in range(24)]
    errors: List[BaseException] = []
    start = threading.Barrier(8)

    def work(part: List[str]) -> None:
        try:
            start.wait(timeout=10)
            for prompt in part:
                provider.complete(prompt)
        except BaseException as error:  # reported below
            errors.append(error)

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResponseCacheWarning)
        threads = [threading.Thread(target=work, args=(prompts[index::8],)) for index in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    assert all(provider.complete(prompt).cached for prompt in prompts)
    assert len(server.requests) == len(prompts)
    assert ResponseCache(cache_file).info()["entries"] == len(prompts)


_WRITER_CHILD = textwrap.dedent("""
    import os, sys, time, warnings
    from provider_kit import ResponseCacheWarning
    from provider_kit._response_cache import ResponseCache
    warnings.simplefilter("error", ResponseCacheWarning)
    path, name, go = sys.argv[1], sys.argv[2], sys.argv[3]
    cache = ResponseCache(path)
    deadline = time.monotonic() + 30
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.001)  # start together with the other writer
    for index in range(200):
        cache.put(f"{name}-{index}", {"body": {"index": index}}, provider=name, model="m", kind="complete")
        assert cache.get(f"{name}-{index}") == {"body": {"index": index}}
    print("ok")
""")


def test_two_processes_write_the_same_file(cache_file, tmp_path):
    ResponseCache(cache_file).get("warm-up")  # creates the file
    go = tmp_path / "go"
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen([sys.executable, "-c", _WRITER_CHILD, str(cache_file), name, str(go)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
        for name in ("first", "second")
    ]
    go.touch()
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0 and out.strip() == "ok", err
    assert ResponseCache(cache_file).info()["entries"] == 400


# --------------------------------------------------------------------------- the registry and config


def test_the_configs_cache_reaches_every_provider_unless_its_table_says_otherwise(tmp_path):
    with LoopbackServer(SOME_KIND, api_key=KEY) as server:
        config = tmp_path / "provider_kit.toml"
        config.write_text(
            f'cache = "answers/cache.sqlite3"\n'
            f'[providers.on]\ntype = "{SOME_KIND}"\nbase_url = "{server.base_url}"\napi_key = "{KEY}"\n'
            f'[providers.off]\ntype = "{SOME_KIND}"\nbase_url = "{server.base_url}"\napi_key = "{KEY}"\n'
            "response_cache = false\n",
            encoding="utf-8",
        )
        with ProviderRegistry.from_config(config) as registry:
            assert registry["on"].response_cache.path == tmp_path / "answers" / "cache.sqlite3"
            assert registry["off"].response_cache is None
            registry.complete("hi", provider="on")
            assert registry.complete("hi", provider="on").cached
            assert not registry.complete("hi", provider="off").cached
        with ProviderRegistry.from_config(config, cache=False) as registry:
            assert registry["on"].response_cache is None
        other = tmp_path / "other.sqlite3"
        with ProviderRegistry.from_config(config, cache=str(other)) as registry:
            assert registry["on"].response_cache.path == other
    assert provider_kit.load_config(config).as_dict()["cache"] == str(tmp_path / "answers" / "cache.sqlite3")


def test_a_plugin_provider_without_the_option_is_registered_uncached(make_fake, tmp_path):
    from provider_kit.testing import FakeProvider

    config = {"cache": str(tmp_path / "c.sqlite3"), "providers": {"fake": {"type": "fake"}}}
    with ProviderRegistry.from_config(config, types={"fake": FakeProvider}) as registry:
        assert registry.complete("hi").cached is False


def test_a_cache_pickles_as_its_path_and_is_shared(server, make, cache_file):
    provider = make(server, response_cache=str(cache_file))
    copy = pickle.loads(pickle.dumps(provider))
    try:
        assert copy.response_cache is provider.response_cache
    finally:
        copy.close()
    assert make(server, response_cache=str(cache_file)).response_cache is provider.response_cache


# --------------------------------------------------------------------------- info and clear


def test_info_and_clear(server, make, cache_file):
    cache = ResponseCache(cache_file)
    assert cache.info()["exists"] is False and cache.clear() == 0
    assert not cache_file.exists()  # looking creates nothing
    provider = make(server, response_cache=cache)
    for prompt in ("a", "b", "c"):
        provider.complete(prompt)
    info = cache.info()
    assert info["entries"] == 3 and info["size_bytes"] > 0 and info["oldest"] <= info["newest"]
    with sqlite3.connect(str(cache_file)) as connection:
        connection.execute("UPDATE responses SET created = created - 10 * 86400 WHERE rowid = 1")
    assert cache.clear(older_than=7 * 86400) == 1
    assert cache.info()["entries"] == 2
    assert cache.clear() == 2
    assert cache.info()["entries"] == 0
    assert not provider.complete("b").cached
