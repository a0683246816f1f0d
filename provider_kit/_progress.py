"""Progress bars for ``ProviderRegistry.map``: tqdm's when it is importable, else one plain line."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from typing import Any, TextIO, Tuple, Union


class _PlainProgress:
    """A one-line progress bar on stderr, redrawn with ``\\r`` at most every 0.1 s and at the end."""

    _WIDTH = 24

    def __init__(self, total: int, stream: TextIO) -> None:
        self._total = total
        self._stream = stream
        self._done = 0
        self._failed = 0
        self._drawn_at = -math.inf
        self._drawn: Tuple[int, int] = (-1, -1)
        self._draw()

    def _draw(self) -> None:
        filled = self._WIDTH * self._done // self._total
        bar = "#" * filled + "." * (self._WIDTH - filled)
        failed = f", {self._failed} failed" if self._failed else ""
        line = f"\rprovider_kit map [{bar}] {self._done}/{self._total}{failed}"
        with contextlib.suppress(OSError, ValueError):  # a closed or broken stderr
            self._stream.write(line)
            self._stream.flush()
        self._drawn_at = time.monotonic()
        self._drawn = (self._done, self._failed)

    def update(self, failed: bool) -> None:
        self._done += 1
        self._failed += failed
        if self._done == self._total or time.monotonic() - self._drawn_at >= 0.1:
            self._draw()

    def close(self) -> None:
        if self._drawn != (self._done, self._failed):
            self._draw()
        with contextlib.suppress(OSError, ValueError):
            self._stream.write("\n")
            self._stream.flush()


class _TqdmProgress:
    """The same interface over a ``tqdm.auto.tqdm`` bar (a notebook widget in Jupyter)."""

    def __init__(self, tqdm: Any, total: int) -> None:
        self._bar = tqdm(total=total, desc="provider_kit map", unit="call")
        self._failed = 0

    def update(self, failed: bool) -> None:
        if failed:
            self._failed += 1
            self._bar.set_postfix_str(f"{self._failed} failed", refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


def progress_bar(total: int) -> Union[_PlainProgress, _TqdmProgress]:
    try:  # tqdm is optional: never a dependency
        from tqdm.auto import tqdm  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return _PlainProgress(total, sys.stderr)
    return _TqdmProgress(tqdm, total)
