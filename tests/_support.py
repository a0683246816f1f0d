"""Helpers shared by the test modules: the one test key, and checks that it never shows.

Fixtures live in conftest.py; this module holds the plain functions they and the tests use.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import threading
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Type, Union

import pytest

from provider_kit.testing import LoopbackServer

#: The API key the simulators expect in the suite's shared fixtures. Distinctive, so any piece
#: of it in a message, a log record or a traceback is a leak.
KEY = "sk-harden-7f3a9c1e5b2d4f60aa"


def assert_secret_free(*texts: str, key: str = KEY) -> None:
    for text in texts:
        assert key not in text


def error_texts(error: BaseException) -> List[str]:
    """Everything a user could print of ``error``: str, repr, args and the whole traceback
    (causes and contexts included)."""
    formatted = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return [str(error), repr(error), repr(error.args), formatted]


def raises(
    cls: Union[Type[BaseException], Tuple[Type[BaseException], ...]],
    call: Callable[..., Any],
    *args: Any,
    **kwargs: Any,
) -> Any:
    """Call and expect ``cls``; nothing printable of the error may show the key. The error."""
    with pytest.raises(cls) as info:
        call(*args, **kwargs)
    assert_secret_free(*error_texts(info.value))
    return info.value


def log_text(record: logging.LogRecord) -> str:
    """A log record as a handler would write it: the message and any traceback."""
    text = record.getMessage() + (record.exc_text or "")
    if record.exc_info and record.exc_info[1] is not None:
        text += "".join(traceback.format_exception(*record.exc_info))
    return text


def serve(kind: str) -> Iterator[LoopbackServer]:
    """Body of a fixture: the simulator of ``kind`` expecting ``KEY``; after the test, it must
    have seen no broken request."""
    with LoopbackServer(kind, api_key=KEY) as server:
        yield server
    assert server.errors == []


#: What the "model missing" verdict tells the user of a hosted API (or a proxy) to do.
CHECK_MODEL_HINT = "set check_model = false if this server accepts any model name"


def assert_model_status(status: Any, configured: str, served: List[str], ok: bool, hint: Optional[str] = None) -> None:
    """The health check's verdict on the configured model: ``ok``, or a one-line "model
    missing" naming the model, a few that are served and ``hint`` (what to do about it)."""
    assert status.ok is ok, status.error
    if ok:
        return
    assert status.error is not None and status.error.startswith(f"model missing: {configured!r} is not ")
    assert "\n" not in status.error
    for name in served[:5]:
        assert name in status.error  # a few it does serve
    if hint is not None:
        assert hint in status.error


def sse_events(body: bytes) -> List[Tuple[Optional[str], str]]:
    """(event, data) pairs of a well-formed SSE body (a simulator's own output: LF endings, one
    data line per event)."""
    events = []
    for block in body.decode("utf-8").split("\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields.get("event"), fields["data"]))
    return events


def in_thread(target: Callable[[], Any], wait: float = 10.0) -> Callable[[], Any]:
    """Run ``target`` in a thread; the returned function joins it (``wait`` seconds at most: hang
    detection only) and returns (or raises) its result."""
    outcome: Dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = target()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> Any:
        thread.join(wait)
        assert not thread.is_alive(), "hung"
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    return join


def read_only(paths: List[Path]) -> Any:
    """Make ``paths`` read-only (for root, which writes anyway: immutable); returns the undo."""
    if os.geteuid() != 0:
        modes = {path: stat.S_IMODE(path.stat().st_mode) for path in paths}
        for path in paths:
            path.chmod(0o555 if path.is_dir() else 0o444)
        return lambda: [path.chmod(mode) for path, mode in modes.items()]
    done = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"running as root and chattr cannot make a file read-only here: {done.stderr.strip()}")
    return lambda: subprocess.run(["chattr", "-i", *map(str, paths)], check=True)
