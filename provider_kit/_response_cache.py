"""The response cache: answers stored in an SQLite file, so that asking again costs nothing.

A provider with a ``response_cache`` looks each ``complete`` and ``stream`` call up here before
sending it (``providers/_base.py``), and stores the answer it gets. The key is a hash of what the
server is asked, exactly: the provider type, base URL, model, the request's path and its whole
JSON body (``cache_key``); never a header, so never a key. Values are JSON (the decoded answer
body of a ``complete``, the chunk sequence of a ``stream``), never pickle: a cache file is data,
not code.

Why it is built this way:

- SQLite in WAL mode, one connection per thread, a busy timeout: many threads and several
  processes on one machine read and write at once, and a reader never waits for a writer.
- A cache must never fail a call. A locked, read-only or corrupt file, an unwritable directory:
  each is reported once per cache (a ``ResponseCacheWarning`` and a log record) and the call
  goes to the provider. A file that cannot be opened or is not a database is given up for
  the rest of the process; a locked or read-only one is tried again by the next call.
- Prompts and answers are often private: the file is created readable by its owner alone
  (0600) and its directory, when created here, 0700; SQLite gives its ``-wal`` and ``-shm``
  files the database's permissions. ``clear`` overwrites what it deletes (``secure_delete``).
- Imported only when a cache is configured: ``sqlite3``, ``hashlib`` and this module stay out
  of ``import provider_kit``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import sqlite3
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple, Union

from ._streaming import load_json
from ._tools import ToolCall
from .errors import ConfigError, ResponseCacheWarning
from .types import StreamChunk, Usage

__all__ = ["ResponseCache", "cache_key", "default_cache_path", "open_cache"]

logger = logging.getLogger("provider_kit")

#: The file name under the user's cache directory.
DEFAULT_FILE_NAME = "responses.sqlite3"
#: Seconds a call waits for another connection's write lock before going to the provider.
DEFAULT_BUSY_TIMEOUT = 2.0
#: The layout of the table; a file written by a later version with another layout is not read.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    created REAL NOT NULL,
    provider TEXT NOT NULL,
    model TEXT,
    kind TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_created ON responses (created);
"""

CacheSetting = Union[bool, str, "os.PathLike[str]", "ResponseCache", None]


def user_cache_dir() -> Path:
    """provider_kit's directory in the user's cache: ``$XDG_CACHE_HOME/provider_kit``, else
    ``~/.cache/provider_kit/`` on Linux, ``~/Library/Caches/provider_kit/`` on macOS and
    ``%LOCALAPPDATA%\\provider_kit\\Cache\\`` on Windows (the call log's file lives there too)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "provider_kit"
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        return (Path(local) if local else Path.home() / "AppData" / "Local") / "provider_kit" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "provider_kit"
    return Path.home() / ".cache" / "provider_kit"


def default_cache_path() -> Path:
    """Where ``cache=True`` keeps its file: ``responses.sqlite3`` in ``user_cache_dir()``."""
    return user_cache_dir() / DEFAULT_FILE_NAME


def cache_path(setting: Union[bool, str, os.PathLike[str]]) -> Path:
    """The file a ``cache=`` setting names: True is ``default_cache_path()``."""
    if setting is True:
        return default_cache_path()
    if isinstance(setting, bool) or not isinstance(setting, (str, os.PathLike)) or not os.fspath(setting).strip():
        raise ConfigError(f"a response cache is True, False or a file path, not {setting!r}")
    return Path(os.fspath(setting)).expanduser()


def cache_key(provider_type: str, base_url: str, model: str, target: str, body: Any) -> Optional[str]:
    """The key of one request: a SHA-256 of the canonical JSON of what decides the answer.

    None when the body is not JSON (a third-party hook's object): such a call is not cached.
    """
    try:
        text = json.dumps([provider_type, base_url, model, target, body], sort_keys=True,
                          separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return None
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


_shared: Dict[Tuple[str, float], ResponseCache] = {}
_shared_lock = threading.Lock()


def open_cache(setting: CacheSetting, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Optional[ResponseCache]:
    """The process's one ``ResponseCache`` for a setting (None for False or None): providers
    and registries naming the same file share it, and with it its once-only warnings."""
    if setting is None or setting is False:
        return None
    if isinstance(setting, ResponseCache):
        return setting
    path = cache_path(setting)
    key = (os.path.abspath(path), float(busy_timeout))
    with _shared_lock:
        cache = _shared.get(key)
        if cache is None:
            cache = _shared[key] = ResponseCache(path, busy_timeout=busy_timeout)
        return cache


class ResponseCache:
    """An SQLite file of answers, shared safely by threads and processes.

    :param path: the file; True (or None) for ``default_cache_path()``. Nothing is created
        until the first call looks something up.
    :param busy_timeout: seconds to wait for another connection's write lock; past it the
        answer is not stored (and a call goes to the provider), with one warning.

    Pass it as ``cache=`` / ``response_cache=``, or use it to look at a cache: ``info()``,
    ``clear(older_than=...)``. It pickles as its path (a worker process opens its own).
    """

    #: What ``_options.as_cache_setting`` recognises without importing this module.
    _is_response_cache = True

    def __init__(self, path: Union[bool, str, os.PathLike[str], None] = True, *,
                 busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self.path = cache_path(True if path is None else path)
        if isinstance(busy_timeout, bool) or not isinstance(busy_timeout, (int, float)) or not busy_timeout >= 0:
            raise ConfigError(f"busy_timeout must be a number of seconds >= 0, not {busy_timeout!r}")
        self.busy_timeout = float(busy_timeout)
        self._fresh_state()

    def _fresh_state(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: List[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._ready = False  # the file, its table and WAL mode are set up
        self._broken: Optional[str] = None  # why the cache is given up for this process
        self._warned: Set[str] = set()

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (open_cache, (str(self.path), self.busy_timeout))

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"

    # ----------------------------------------------------------------- the calls' side

    def get(self, key: str) -> Optional[Dict[str, Any]]:
        """The stored value of ``key``, or None (absent, or the cache cannot be read)."""
        connection = self._connection()
        if connection is None:
            return None
        try:
            row = connection.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as error:
            self._problem(error, "read")
            return None
        if row is None:
            return None
        try:
            value = load_json(row[0])  # the C scanner straight away: a hit's largest cost after the query
        except (ValueError, RecursionError):
            logger.debug("response cache %s: entry %s is not JSON; ignored", self.path, key[:12])
            return None
        return value if isinstance(value, dict) else None

    def put(self, key: str, value: Dict[str, Any], *, provider: str, model: Optional[str], kind: str) -> None:
        """Store ``value`` (JSON) under ``key``; a failure is reported once, never raised."""
        connection = self._connection()
        if connection is None:
            return
        try:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError, RecursionError) as error:
            logger.debug("response cache %s: answer not stored (%s)", self.path, error)
            return
        try:
            connection.execute(
                "INSERT OR REPLACE INTO responses (key, created, provider, model, kind, value) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key, time.time(), provider, model, kind, text),
            )
        except sqlite3.Error as error:
            self._problem(error, "write")

    # ----------------------------------------------------------------- looking at a cache

    def info(self) -> Dict[str, Any]:
        """``path``, ``exists``, ``entries``, ``size_bytes`` (with the WAL), and ``oldest`` and
        ``newest`` (UTC datetimes, None when empty). Creates nothing.

        :raises ConfigError: when the file cannot be read as a cache.
        """
        info: Dict[str, Any] = {"path": str(self.path), "exists": self.path.exists(), "entries": 0,
                                "size_bytes": 0, "oldest": None, "newest": None}
        if not info["exists"]:
            return info
        info["size_bytes"] = sum(
            os.path.getsize(name) for name in (str(self.path), f"{self.path}-wal") if os.path.exists(name)
        )
        try:
            connection = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=self.busy_timeout)
            try:
                if not self._has_table(connection):
                    return info
                count, oldest, newest = connection.execute(
                    "SELECT COUNT(*), MIN(created), MAX(created) FROM responses").fetchone()
            finally:
                connection.close()
        except sqlite3.Error as error:
            raise ConfigError(f"response cache {self.path}: cannot be read: {error}") from None
        info["entries"] = count
        info["oldest"], info["newest"] = (_utc(oldest), _utc(newest)) if count else (None, None)
        return info

    def clear(self, older_than: Optional[float] = None) -> int:
        """Delete every entry, or those stored more than ``older_than`` seconds ago; returns how
        many. What is deleted is overwritten, and the file shrinks when everything is.

        :raises ConfigError: when the file cannot be written as a cache.
        """
        if older_than is not None and (isinstance(older_than, bool) or not isinstance(older_than, (int, float))
                                       or not older_than >= 0):
            raise ConfigError(f"older_than must be a number of seconds >= 0, not {older_than!r}")
        if not self.path.exists():
            return 0
        try:
            connection = sqlite3.connect(str(self.path), timeout=self.busy_timeout, isolation_level=None)
            try:
                if not self._has_table(connection):
                    return 0
                connection.execute("PRAGMA secure_delete = ON")
                if older_than is None:
                    removed = connection.execute("DELETE FROM responses").rowcount
                else:
                    cutoff = time.time() - older_than
                    removed = connection.execute("DELETE FROM responses WHERE created < ?", (cutoff,)).rowcount
                if removed and connection.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 0:
                    connection.execute("VACUUM")
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                connection.close()
        except sqlite3.Error as error:
            raise ConfigError(f"response cache {self.path}: cannot be cleared: {error}") from None
        return max(removed, 0)

    def close(self) -> None:
        """Close this process's connections; the next lookup opens new ones."""
        with self._lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for connection in connections:
            try:
                connection.close()
            except sqlite3.Error:  # pragma: no cover - closing a connection in use elsewhere
                pass

    # ----------------------------------------------------------------- connections

    @staticmethod
    def _has_table(connection: sqlite3.Connection) -> bool:
        return connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'responses'").fetchone() is not None

    def _connection(self) -> Optional[sqlite3.Connection]:
        """This thread's connection, opened (and the file set up) on first use; None when the
        cache is given up or cannot be opened now."""
        if self._pid != os.getpid():  # a forked child must not use its parent's connections
            self._fresh_state()
        if self._broken is not None:
            return None
        connection: Optional[sqlite3.Connection] = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        try:
            if not self._ready:
                self._set_up()
            connection = sqlite3.connect(str(self.path), timeout=self.busy_timeout, isolation_level=None,
                                         check_same_thread=False)
        except (sqlite3.Error, OSError) as error:
            self._problem(error, "open")
            return None
        self._local.connection = connection
        with self._lock:
            self._connections.append(connection)
        return connection

    def _set_up(self) -> None:
        """Create the directory (0700) and file (0600) when absent, switch to WAL, create the
        table; refuse a file of a later layout."""
        with self._lock:
            if self._ready:
                return
            directory = self.path.parent
            if not directory.exists():
                os.makedirs(directory, mode=0o700, exist_ok=True)
            if not self.path.exists():
                # Created here with the owner's permissions only, before SQLite opens it (SQLite
                # would create it with the umask's, readable by everyone on most systems).
                descriptor = os.open(str(self.path), os.O_RDWR | os.O_CREAT, 0o600)
                os.close(descriptor)
            connection = sqlite3.connect(str(self.path), timeout=self.busy_timeout, isolation_level=None)
            try:
                version = connection.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise sqlite3.DatabaseError(
                        f"written by a later provider_kit (layout {version}, this one reads {SCHEMA_VERSION})")
                if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    connection.execute("PRAGMA journal_mode = WAL")
                if not self._has_table(connection):
                    connection.executescript(_SCHEMA)
                    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            finally:
                connection.close()
            self._ready = True

    # ----------------------------------------------------------------- problems

    def _problem(self, error: BaseException, action: str) -> None:
        """Report a problem once per kind; give the cache up when it cannot come back."""
        text = str(error)
        lowered = text.lower()
        if "locked" in lowered or "busy" in lowered:
            kind, why = "locked", "the file is locked by another connection"
        elif "readonly" in lowered or "read-only" in lowered:
            kind, why = "read-only", "the file is read-only: answers are not stored"
        elif isinstance(error, sqlite3.OperationalError) and action != "open":
            kind, why = "error", text
        else:
            kind = "unusable"
            why = f"it cannot be used ({text}); it is left alone for the rest of this process"
            self._broken = text
        if action == "open" and kind == "read-only":
            self._broken = text
        if kind in self._warned:
            logger.debug("response cache %s: %s failed: %s", self.path, action, text)
            return
        self._warned.add(kind)
        message = f"response cache {self.path}: {why}; calls go to the provider"
        logger.warning("%s", message)
        warnings.warn(ResponseCacheWarning(message, path=str(self.path)), stacklevel=_outside_stacklevel())


# --------------------------------------------------------------------------- streams as JSON


def stored_chunks(chunks: List[StreamChunk]) -> Dict[str, Any]:
    """A whole stream as JSON: each chunk's text, reasoning and tool call in progress, and the
    final chunk's finish reason, usage, provider state and assembled tool calls. ``data`` and
    ``parsed`` are left out: the replay builds them from the text as the stream did."""
    *pieces, final = chunks
    return {
        "chunks": [[piece.text, piece.reasoning, _call_json(piece.tool_call)] for piece in pieces],
        "final": {
            "text": final.text,
            "reasoning": final.reasoning,
            "finish_reason": final.finish_reason,
            "usage": final.usage.to_dict() if final.usage is not None else None,
            "provider_state": final.provider_state,
            "tool_calls": [_call_json(call) for call in final.tool_calls],
        },
    }


def replay_chunks(stored: Dict[str, Any], provider: str) -> Optional[List[StreamChunk]]:
    """The chunks of a stored stream, the last one marked ``cached``; None for a value that is
    not one (an entry of another shape is a miss, never an error)."""
    try:
        chunks = [
            StreamChunk._piece(_text(text), provider, _text(reasoning), _call(call))
            for text, reasoning, call in stored["chunks"]
        ]
        final = stored["final"]
        usage = final.get("usage")
        chunks.append(StreamChunk(
            final.get("text", ""), final.get("finish_reason"), Usage(**usage) if usage is not None else None,
            provider, final.get("reasoning", ""), provider_state=final.get("provider_state"),
            tool_calls=[_tool_call(call) for call in final.get("tool_calls", ())], cached=True,
        ))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return chunks


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("a chunk's text is a string")
    return value


def _call_json(call: Optional[ToolCall]) -> Optional[List[str]]:
    return None if call is None else [call.id, call.name, call.raw_arguments]


def _call(value: Optional[List[str]]) -> Optional[ToolCall]:
    return None if value is None else _tool_call(value)


def _tool_call(value: List[str]) -> ToolCall:
    id, name, raw_arguments = value
    if not all(isinstance(item, str) for item in value):
        raise TypeError("a tool call is three strings")
    return ToolCall._assembled(id, name, raw_arguments)


def _utc(seconds: Optional[float]) -> Optional[datetime.datetime]:
    return None if seconds is None else datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


def _outside_stacklevel() -> int:
    """The ``warnings.warn`` stacklevel of the nearest caller outside provider_kit."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame = frame.f_back
        level += 1
    return level
