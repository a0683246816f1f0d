"""``CallLog``: every ``CallRecord`` of the providers it watches, kept in an SQLite file.

It is an ``on_call`` hook like any other (``ProviderRegistry.from_config(log=...)``, ``log =``
in the config file, or ``on_call=CallLog(path)`` on a provider). Prompts and answers are often
private: the file is created readable by its owner alone (0600, its directory 0700 when made)
before anything is written, and never holds a key or a header (a record has none).

Safe for many threads (one connection behind a lock) and several processes (WAL, a busy
timeout). A log that cannot be written (locked past the busy timeout, read-only, corrupt, a
directory that cannot be made) never fails a call: it warns once (a ``CallLogWarning`` and a
``provider_kit`` log record) and the calls go on unlogged, each trying again.

``sqlite3`` and this module are imported only when a log is set.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sqlite3
import threading
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from .errors import CallLogWarning, ConfigError

__all__ = ["DEFAULT_FILE_NAME", "CallLog", "default_log_path", "open_log", "read_entries", "read_usage"]

logger = logging.getLogger("provider_kit")

DEFAULT_FILE_NAME = "calls.sqlite3"
#: Seconds a write waits for another process's write to finish before giving up (and warning).
DEFAULT_BUSY_TIMEOUT = 2.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    provider TEXT NOT NULL,
    provider_type TEXT,
    model TEXT,
    method TEXT NOT NULL,
    messages TEXT NOT NULL,
    text TEXT,
    finish_reason TEXT,
    error_type TEXT,
    error_message TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cached_input_tokens INTEGER,
    reasoning_tokens INTEGER,
    latency_s REAL NOT NULL,
    cached INTEGER NOT NULL,
    rate_limit TEXT
);
CREATE INDEX IF NOT EXISTS calls_time ON calls (time);
"""

_COLUMNS = (
    "time", "provider", "provider_type", "model", "method", "messages", "text", "finish_reason", "error_type",
    "error_message", "input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens", "latency_s",
    "cached", "rate_limit",
)
_INSERT = f"INSERT INTO calls ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"

LogSetting = Union[bool, str, "os.PathLike[str]", "CallLog", None]


def default_log_path() -> Path:
    """Where ``log = true`` keeps its file: ``calls.sqlite3`` in the user's cache directory,
    beside the response cache's (``_response_cache.user_cache_dir``)."""
    from ._response_cache import user_cache_dir

    return user_cache_dir() / DEFAULT_FILE_NAME


def log_path(setting: Any, config_file: Optional[Path] = None) -> Optional[Path]:
    """The file a ``log`` setting names (True: ``default_log_path()``; a relative path in a
    config file is relative to that file's directory); None for False."""
    if setting is False or setting is None:
        return None
    if setting is True:
        return default_log_path()
    if isinstance(setting, CallLog):
        return setting.path
    path = Path(os.fspath(setting)).expanduser()
    if config_file is not None and not path.is_absolute():
        path = Path(config_file).parent / path
    return path


def open_log(setting: LogSetting, config_file: Optional[Path] = None) -> Optional[CallLog]:
    """The ``CallLog`` a setting asks for, or None (nothing is touched on disk yet).

    :raises ConfigError: for a setting that is not True, False, a path or a ``CallLog``.
    """
    if isinstance(setting, CallLog):
        return setting
    from ._options import as_log_setting

    try:
        as_log_setting(setting)
    except ValueError as exc:
        raise ConfigError(f"log {exc} (got {setting!r})") from None
    path = log_path(setting, config_file)
    return CallLog(path) if path is not None else None


class CallLog:
    """An ``on_call`` hook writing each ``CallRecord`` to the SQLite file ``path``.

    The file is opened by the first record. Pickles as its path (a new process opens its own).

    :param path: the file (created 0600, its directory 0700, when missing).
    :param busy_timeout: seconds a write waits for another writer before it gives up.
    """

    def __init__(self, path: Union[str, os.PathLike[str]], *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self.path = Path(os.fspath(path)).expanduser()
        self.busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._connection: Optional[sqlite3.Connection] = None
        self._warned = False

    def __repr__(self) -> str:
        return f"CallLog({str(self.path)!r})"

    def __getstate__(self) -> Dict[str, Any]:
        return {"path": self.path, "busy_timeout": self.busy_timeout}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(state["path"], busy_timeout=state["busy_timeout"])  # type: ignore[misc]

    def __call__(self, record: Any) -> None:
        """Write ``record``; never raises (a failure warns once)."""
        try:
            row = _row(record)
        except Exception as exc:  # a record a third-party provider filled oddly
            self._warn(f"a record could not be encoded ({type(exc).__name__}: {exc})")
            return
        with self._lock:
            try:
                connection = self._connection or self._open()
                with connection:
                    connection.execute(_INSERT, row)
            except (sqlite3.Error, OSError) as exc:
                self._drop()
                self._warn(f"cannot write to it ({type(exc).__name__}: {exc})")

    def close(self) -> None:
        """Close the file (the next record opens it again)."""
        with self._lock:
            self._drop()

    def _open(self) -> sqlite3.Connection:
        path = self.path
        if not path.exists():
            directory = path.parent
            if not directory.exists():
                os.makedirs(directory, mode=0o700, exist_ok=True)
            # Created owner-only before sqlite3 writes a byte (sqlite3 would use the umask).
            os.close(os.open(str(path), os.O_RDWR | os.O_CREAT, 0o600))
        connection = sqlite3.connect(
            str(path), timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.executescript(_SCHEMA)
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except sqlite3.Error:
                pass

    def _warn(self, problem: str) -> None:
        if self._warned:
            logger.debug("call log %s: %s", self.path, problem)
            return
        self._warned = True
        message = f"call log {self.path}: {problem}; calls go on without being logged"
        logger.warning("%s", message)
        warnings.warn(CallLogWarning(message, path=str(self.path)), stacklevel=2)

    # -- reading (the command line's ``logs``)

    def entries(self, limit: int = 20, provider: Optional[str] = None) -> List[Dict[str, Any]]:
        """The latest ``limit`` entries, newest first (see ``read_entries``)."""
        return read_entries(self.path, limit, provider)


def _iso(moment: datetime.datetime) -> str:
    """UTC, always with microseconds: the stored times sort as text."""
    return moment.astimezone(datetime.timezone.utc).isoformat(timespec="microseconds")


def _row(record: Any) -> tuple:  # type: ignore[type-arg]
    usage = record.usage
    rate_limit = record.rate_limit
    return (
        _iso(record.time),
        record.provider,
        record.provider_type,
        record.model,
        record.method,
        json.dumps(list(record.messages), ensure_ascii=False, default=repr),
        record.text,
        record.finish_reason,
        record.error_type,
        record.error_message,
        *((getattr(usage, key) for key in ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens"))
          if usage is not None else (None,) * 4),
        float(record.latency_s),
        int(bool(record.cached)),
        json.dumps(rate_limit.to_dict()) if rate_limit is not None else None,
    )


def _read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to an existing log.

    :raises ConfigError: when the file does not exist or is not a call log.
    """
    if not path.is_file():
        raise ConfigError(
            f"no call log at {str(path)!r} (turn it on with log = true in the config, or pass --log PATH)"
        )
    try:
        connection = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=DEFAULT_BUSY_TIMEOUT)
        connection.execute("SELECT 1 FROM calls LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise ConfigError(f"{str(path)!r} is not a readable call log ({exc})") from None
    return connection


def read_entries(path: Union[str, os.PathLike[str]], limit: int = 20, provider: Optional[str] = None
                 ) -> List[Dict[str, Any]]:
    """The latest ``limit`` entries of the log at ``path``, newest first, as ``CallRecord.to_dict``
    shapes them (``messages``, ``usage`` and ``rate_limit`` decoded).

    :raises ConfigError: when there is no log there, or it cannot be read.
    """
    connection = _read_only(Path(os.fspath(path)).expanduser())
    try:
        where, arguments = ("WHERE provider = ?", [provider]) if provider is not None else ("", [])
        rows = connection.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM calls {where} ORDER BY time DESC, id DESC LIMIT ?",
            [*arguments, limit],
        ).fetchall()
    except sqlite3.Error as exc:
        raise ConfigError(f"{str(path)!r} is not a readable call log ({exc})") from None
    finally:
        connection.close()
    return [_entry(dict(zip(_COLUMNS, row))) for row in rows]


def _entry(row: Dict[str, Any]) -> Dict[str, Any]:
    tokens = {key: row.pop(key) for key in ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens")}
    entry = dict(row)
    entry["messages"] = json.loads(row["messages"] or "[]")
    entry["usage"] = None if all(value is None for value in tokens.values()) else tokens
    entry["cached"] = bool(row["cached"])
    entry["rate_limit"] = json.loads(row["rate_limit"]) if row["rate_limit"] else None
    return entry


def read_usage(path: Union[str, os.PathLike[str]], since: Optional[datetime.datetime] = None) -> Any:
    """The log's totals per provider and model (a ``UsageReport``), of the calls since ``since``
    (an aware datetime; None: all of them). Answers from the response cache count as calls and
    cache hits, not tokens.

    :raises ConfigError: when there is no log there, or it cannot be read.
    """
    from ._usage import UsageReport, UsageTotals

    connection = _read_only(Path(os.fspath(path)).expanduser())
    spent = "CASE WHEN cached = 0 THEN {} ELSE 0 END"
    query = (
        "SELECT provider, COALESCE(model, ''), COUNT(*), SUM(error_type IS NOT NULL), SUM(cached), "
        + ", ".join(f"COALESCE(SUM({spent.format(key)}), 0)"
                    for key in ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens"))
        + " FROM calls" + (" WHERE time >= ?" if since is not None else "") + " GROUP BY 1, 2"
    )
    try:
        arguments = [_iso(since)] if since is not None else []
        rows = connection.execute(query, arguments).fetchall()
    except sqlite3.Error as exc:
        raise ConfigError(f"{str(path)!r} is not a readable call log ({exc})") from None
    finally:
        connection.close()
    return UsageReport({(row[0], row[1]): UsageTotals(*(int(value or 0) for value in row[2:])) for row in rows})
