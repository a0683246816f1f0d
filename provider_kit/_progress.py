"""Progress for ``ProviderRegistry.map``, drawn only where a person is watching.

Where: on a terminal (stderr is a tty) or in a Jupyter kernel, never into a server's log (a
Django or Celery worker's stderr is a file or a pipe) unless the caller asks for it. How: in
Jupyter, tqdm's widget when tqdm and ipywidgets are both installed; otherwise a text bar, tqdm's
``tqdm.std`` when tqdm is installed (never ``tqdm.auto``, which warns ``IProgress not found``
when ipywidgets is missing) or a plain one-line bar. Whatever drew it, the bar ends as one line
on stderr, ``provider_kit map: 20/20 done, 1 failed, 3.2 s``: a widget is not saved with a
notebook, so that line is what a notebook run headless or exported to HTML keeps.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from typing import Any, Optional, TextIO, Union

from .errors import ConfigError

_LABEL = "provider_kit map"


def check_progress(progress: Any) -> None:
    """What ``map(progress=...)`` accepts: None (automatic), True (always), False (never),
    "text" (always, and as text even in Jupyter).

    :raises ConfigError: for anything else.
    """
    if not (progress is None or progress is True or progress is False or progress == "text"):
        raise ConfigError(f'progress must be None (automatic), True, False or "text", got {progress!r}')


def in_jupyter() -> bool:
    """Whether this is a Jupyter kernel: an IPython shell with a kernel behind it.

    IPython is never imported here: a process that has not imported it is not a kernel. The
    terminal ``ipython`` shell has no kernel; its stderr is a terminal, which is seen anyway.
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # an IPython too old, too new or half torn down: not a kernel we know
        return False
    return getattr(shell, "kernel", None) is not None


def _is_terminal(stream: Optional[TextIO]) -> bool:
    try:
        return stream is not None and bool(stream.isatty())
    except (AttributeError, OSError, ValueError):  # no isatty, or a closed stream
        return False


def summary(done: int, total: int, failed: int, elapsed: float) -> str:
    """The line a bar ends with."""
    return f"{_LABEL}: {done}/{total} done, {failed} failed, {elapsed:.1f} s"


def waiting_note(count: int) -> str:
    """What a bar adds while calls wait on a rate limit ("" when none does)."""
    if not count:
        return ""
    return f", {count} call{'' if count == 1 else 's'} waiting on a rate limit"


class _PlainProgress:
    """A one-line bar on ``stream``, redrawn with ``\\r`` at most every 0.1 s, replaced at the end
    by the summary line."""

    _WIDTH = 24

    def __init__(self, total: int, stream: TextIO) -> None:
        self._total = total
        self._stream = stream
        self._started = time.monotonic()
        self._done = 0
        self._failed = 0
        self._drawn_at = -math.inf
        self._width_drawn = 0
        self._waiting = 0
        self._draw()

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stderr
            self._stream.write(text)
            self._stream.flush()

    def _draw(self) -> None:
        filled = self._WIDTH * self._done // self._total
        bar = "#" * filled + "." * (self._WIDTH - filled)
        failed = f", {self._failed} failed" if self._failed else ""
        line = f"{_LABEL} [{bar}] {self._done}/{self._total}{failed}{waiting_note(self._waiting)}"
        self._write("\r" + line.ljust(self._width_drawn))  # blanks cover a longer line
        self._width_drawn = len(line)
        self._drawn_at = time.monotonic()

    def update(self, failed: bool) -> None:
        self._done += 1
        self._failed += failed
        if self._done == self._total or time.monotonic() - self._drawn_at >= 0.1:
            self._draw()

    def waiting(self, count: int) -> None:
        """``count`` calls are waiting on a rate limit now (shown while it is not 0)."""
        if count != self._waiting:
            self._waiting = count
            self._draw()

    def close(self) -> None:
        line = summary(self._done, self._total, self._failed, time.monotonic() - self._started)
        self._write("\r" + line.ljust(self._width_drawn) + "\n")  # blanks cover the longer bar


class _TqdmProgress:
    """The same interface over a tqdm bar (text, or a widget in Jupyter), which is cleared at
    the end to leave the summary line alone."""

    def __init__(self, tqdm: Any, total: int, stream: TextIO, **options: Any) -> None:
        self._bar = tqdm(total=total, desc=_LABEL, unit="call", leave=False, **options)
        self._stream = stream
        self._started = time.monotonic()
        self._total = total
        self._done = 0
        self._failed = 0
        self._waiting = 0

    def update(self, failed: bool) -> None:
        self._done += 1
        if failed:
            self._failed += 1
            self._postfix(refresh=False)
        self._bar.update(1)

    def waiting(self, count: int) -> None:
        """``count`` calls are waiting on a rate limit now (shown while it is not 0)."""
        if count != self._waiting:
            self._waiting = count
            self._postfix(refresh=True)

    def _postfix(self, refresh: bool) -> None:
        failed = f"{self._failed} failed" if self._failed else ""
        waiting = waiting_note(self._waiting).lstrip(", ")
        self._bar.set_postfix_str(", ".join(part for part in (failed, waiting) if part), refresh=refresh)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a bar that fails to close must not hide the results
            self._bar.close()
        line = summary(self._done, self._total, self._failed, time.monotonic() - self._started)
        with contextlib.suppress(OSError, ValueError):
            self._stream.write(line + "\n")
            self._stream.flush()


Progress = Union[_PlainProgress, _TqdmProgress]


def _widget_tqdm() -> Any:
    """tqdm's notebook widget class, or None unless tqdm and ipywidgets are both installed."""
    try:
        import ipywidgets  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: F401
        from tqdm.notebook import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
            IProgress,
            tqdm,
        )
    except ImportError:
        return None
    return tqdm if IProgress is not None else None


def _text_tqdm() -> Any:
    try:  # tqdm is optional: never a dependency
        from tqdm.std import tqdm  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return None
    return tqdm


def progress_bar(total: int, progress: Union[bool, str, None] = None) -> Optional[Progress]:
    """A bar for ``total`` calls, or None when none is to be drawn (see the module docstring).

    :raises ConfigError: for a ``progress`` that is not None, True, False or "text".
    """
    check_progress(progress)
    if progress is False:
        return None
    stream = sys.stderr
    jupyter = in_jupyter()
    if progress is None and not (jupyter or _is_terminal(stream)):
        return None  # a log file, a pipe, a server: nobody is watching a bar
    if stream is None:  # pythonw, or a service that closed it
        return None
    if jupyter and progress != "text":
        widget = _widget_tqdm()
        if widget is not None:
            with contextlib.suppress(Exception):  # no widget frontend after all: text below
                return _TqdmProgress(widget, total, stream)
    tqdm = _text_tqdm()
    if tqdm is not None:
        with contextlib.suppress(Exception):
            return _TqdmProgress(tqdm, total, stream, file=stream)
    return _PlainProgress(total, stream)
