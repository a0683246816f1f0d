"""The circuit breaker the registry keeps per provider; its snapshot, ``CircuitState``, is a
value type and lives in ``types.py`` with the others.

A provider that fails with a connection error, a timeout or a server error ``threshold`` times
in a row is *open*: the registry skips it (or fails at once) for ``cooldown`` seconds instead of
waiting on a dead server again. After the cooldown the circuit is *half-open*: one call at a
time goes through as a trial, and its outcome closes the circuit or opens it for another
cooldown. Any answer from the server (a completion, but also a 401, a 429 or a 400: the server
is reachable) ends the streak and closes the circuit. A passing health check does not: behind a
proxy the health endpoint answers while the model behind it fails every call, so only a call
that went through the model can vouch for it.

This module knows nothing of providers or threads running calls: the router asks ``allow()``
before a call and reports its outcome with ``record()``. Every change of state notifies the
breaker's condition, which the router's breakers share, so a batch prompt waiting for a
half-open trial wakes when it ends instead of polling. Time comes from an injectable monotonic
clock, so tests advance it instead of sleeping.
"""

from __future__ import annotations

import datetime
import logging
import math
import threading
from typing import Callable, Optional, Tuple

from .errors import (
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ServerError,
)
from .types import CircuitState

__all__ = ["COUNTED_ERRORS", "CircuitBreaker"]

logger = logging.getLogger("provider_kit")

#: The failures that count towards opening a circuit: the server could not be used at all.
COUNTED_ERRORS = (ProviderConnectionError, ProviderTimeoutError, ServerError)

_MAX_ERROR = 300


def _short(error: BaseException) -> str:
    """``"ExcType: message"``, cut short. Provider errors carry no secret by contract."""
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 3] + "..."


class CircuitBreaker:
    """One provider's circuit; every method is thread-safe.

    :param name: the provider's name, for logs and snapshots.
    :param threshold: counted failures in a row that open the circuit; 0 never opens it.
    :param cooldown: seconds the circuit stays open before a trial call is let through.
    :param clock: a monotonic clock in seconds (``time.monotonic``; tests pass a fake one).
    :param condition: the condition to guard the state with and notify on every change; the
        router passes one condition to all its breakers so a caller can wait for any of them.
        It must wrap an ``RLock`` (a waiter holds it while it asks the breakers). None creates
        one for this breaker alone.
    """

    def __init__(
        self,
        name: str,
        threshold: int,
        cooldown: float,
        clock: Callable[[], float],
        condition: Optional[threading.Condition] = None,
    ) -> None:
        self.name = name
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = condition if condition is not None else threading.Condition(threading.RLock())
        self._failures = 0
        self._opened_at: Optional[float] = None  # clock() when the circuit last opened
        self._last_error: Optional[str] = None
        self._trial = False  # a half-open trial call is in flight
        self._in_flight = 0  # calls admitted whose outcome is not recorded yet

    def _is_tripped(self) -> bool:
        return self.threshold > 0 and self._failures >= self.threshold

    def allow(self) -> bool:
        """Whether a call may go to the provider now.

        In the half-open state this admits one trial call and refuses others until that call's
        outcome is ``record``-ed, so a batch does not pile onto a server that may still be down.
        """
        with self._lock:
            if not self._is_tripped():
                self._in_flight += 1
                return True
            assert self._opened_at is not None
            if self._clock() < self._opened_at + self.cooldown or self._trial:
                return False
            self._trial = True
            self._in_flight += 1
            return True

    def wait_hint(self) -> Tuple[float, bool]:
        """``(seconds, sooner)``: how long until ``allow()`` could admit a call by the clock
        alone (0.0: now; ``inf`` while a half-open trial runs), and whether a call still running
        (the trial, or one admitted before the circuit opened) may close it sooner.

        A caller that waits holds the breaker's condition while it asks, then ``wait()``s on it:
        every change of state notifies it.
        """
        with self._lock:
            sooner = self._trial or self._in_flight > 0
            if not self._is_tripped():
                return 0.0, sooner
            if self._trial:
                return math.inf, True
            assert self._opened_at is not None
            return max(0.0, self._opened_at + self.cooldown - self._clock()), sooner

    def record(self, error: Optional[BaseException]) -> None:
        """Report the outcome of a call that ``allow()`` admitted.

        :param error: None for a completion; a connection error, timeout or server error counts
            as a failure; any other ``ProviderError`` means the server answered, which closes the
            circuit; anything else (a bad argument, an interrupt, the client-side rate limiter's
            refusal: nothing was sent) says nothing about the server and only ends a trial.
        """
        if error is None or (
            isinstance(error, ProviderError) and not isinstance(error, COUNTED_ERRORS) and not _never_sent(error)
        ):
            self._close(admitted=True)
        elif isinstance(error, COUNTED_ERRORS):
            self._count(error, admitted=True)
        else:
            with self._lock:
                self._in_flight = max(0, self._in_flight - 1)
                self._trial = False
                self._lock.notify_all()

    def note_failure(self, error: BaseException) -> None:
        """Count a failure that came after the call's outcome was recorded: a stream that broke
        after its first chunk (which had closed the circuit). Only counted errors count."""
        if isinstance(error, COUNTED_ERRORS):
            self._count(error, admitted=False)

    def _count(self, error: BaseException, *, admitted: bool) -> None:
        with self._lock:
            if admitted:
                self._in_flight = max(0, self._in_flight - 1)
            was_tripped = self._is_tripped()
            self._failures += 1
            self._last_error = _short(error)
            self._trial = False
            opened = self._is_tripped()
            if opened:
                self._opened_at = self._clock()  # a failed trial opens it for a new cooldown
            failures, last = self._failures, self._last_error
            self._lock.notify_all()
        if opened and not was_tripped:
            logger.warning(
                "circuit of provider %r opened after %d failures in a row; skipping it for %g s (last: %s)",
                self.name,
                failures,
                self.cooldown,
                last,
            )

    def close(self) -> None:
        """Close the circuit and forget the streak, as an answer from the server does."""
        self._close(admitted=False)

    def _close(self, *, admitted: bool) -> None:
        with self._lock:
            if admitted:
                self._in_flight = max(0, self._in_flight - 1)
            was_tripped = self._is_tripped()
            self._failures = 0
            self._last_error = None
            self._opened_at = None
            self._trial = False
            self._lock.notify_all()
        if was_tripped:
            logger.info("circuit of provider %r closed", self.name)

    def state(self) -> CircuitState:
        """A snapshot; ``open_until`` is converted from the monotonic clock to UTC wall time."""
        with self._lock:
            failures, last = self._failures, self._last_error
            if not self._is_tripped():
                return CircuitState(self.name, "closed", failures, None, last)
            assert self._opened_at is not None
            left = self._opened_at + self.cooldown - self._clock()
        if left <= 0:
            return CircuitState(self.name, "half_open", failures, None, last)
        until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=left)
        if until.microsecond:  # whole seconds, rounded up: never earlier than the truth
            until = until.replace(microsecond=0) + datetime.timedelta(seconds=1)
        return CircuitState(self.name, "open", failures, until, last)

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.state()}>"


def _never_sent(error: ProviderError) -> bool:
    """Whether the error came before anything was sent: the client-side rate limiter's refusal
    (a ``RateLimitError`` with no status)."""
    return isinstance(error, RateLimitError) and error.status_code is None
