"""``RateLimiter``: one provider's client-side pacing (``rpm``, ``tpm``) and the hold a server
asks for when it reports an exhausted budget.

Each budget is a token bucket kept as a reservation schedule (the generic cell rate
algorithm): under one lock a call computes when its request and tokens are available, reserves
them, and then sleeps outside the lock. Calls are admitted in the order they asked, however many
threads share the provider, and nothing polls.

A bucket holds one second's worth of its budget (at least one request, and a whole call's
tokens may run it into debt that later calls wait out), so ``rpm = 60`` means one request a
second rather than a burst of sixty at the top of each minute: over any minute at most about
``rpm`` requests go out, as the server counts them.

A wait that would pass the call's deadline raises ``RateLimitError`` at once, with
``retry_after`` saying how long it would have been, rather than sleeping and failing late.

This module is imported only by a provider with ``rpm``/``tpm`` set, or once a server reported
an exhausted budget: a provider without either pays one attribute test per call.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional

from .errors import RateLimitError

__all__ = ["CHARS_PER_TOKEN", "RateLimiter", "estimate_tokens"]

#: The rough size of a token in characters of text, for the estimate made before sending.
CHARS_PER_TOKEN = 4


def estimate_tokens(body: Any) -> int:
    """The tokens a request body will cost, estimated from the text in it (``CHARS_PER_TOKEN``
    characters a token). The answer's tokens are not known yet: the usage the server reports
    corrects the estimate afterwards (``RateLimiter.settle``)."""
    return max(1, _text_length(body) // CHARS_PER_TOKEN)


def _text_length(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_text_length(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_text_length(item) for item in value)
    return 0


class _Bucket:
    """One budget: ``rate`` per second, holding at most ``capacity``; ``level`` may go below
    zero when a call reserved more than there was (its debt is waited out by the next)."""

    __slots__ = ("capacity", "level", "rate", "updated")

    def __init__(self, per_minute: float, now: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds from ``now`` until ``amount`` (at most a full bucket) is available; ``level``
        is the level at ``updated``, which a reservation may have put in the future."""
        ahead = max(0.0, self.updated - now)
        need = min(amount, self.capacity)
        return ahead + (0.0 if self.level >= need else (need - self.level) / self.rate)


class RateLimiter:
    """Thread-safe pacing of one provider's calls.

    :param rpm: requests per minute, or None for no request limit.
    :param tpm: tokens per minute (input and output), or None for no token limit.
    :param clock: a monotonic clock in seconds (tests pass a fake one with ``sleep``).
    :param sleep: how to wait.
    """

    def __init__(
        self,
        rpm: Optional[float] = None,
        tpm: Optional[float] = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self.clock = clock
        self.sleep = sleep
        now = clock()
        self._requests = _Bucket(rpm, now) if rpm else None
        self._tokens = _Bucket(tpm, now) if tpm else None
        #: No call is admitted before this moment: the reset of a budget the server said was spent.
        self._hold_until = 0.0
        self._lock = threading.Lock()
        #: How many calls are sleeping in ``acquire`` now (``map``'s progress line reads it).
        self.waiting = 0

    def __repr__(self) -> str:
        return f"RateLimiter(rpm={self.rpm!r}, tpm={self.tpm!r})"

    # -- pickling: a new process starts with full buckets and no hold
    def __getstate__(self) -> Any:
        return {"rpm": self.rpm, "tpm": self.tpm}

    def __setstate__(self, state: Any) -> None:
        self.__init__(state["rpm"], state["tpm"])  # type: ignore[misc]

    @property
    def idle(self) -> bool:
        """True when nothing limits calls: no ``rpm``/``tpm`` and no hold in force."""
        return self._requests is None and self._tokens is None and self._hold_until <= self.clock()

    def acquire(self, tokens: int, remaining: float, *, provider: str) -> float:
        """Wait until a call costing ``tokens`` may be sent, within ``remaining`` seconds.

        :returns: the seconds waited.
        :raises RateLimitError: at once (nothing reserved, nothing slept) when the wait would
            not fit in ``remaining``; ``retry_after`` is that wait.
        """
        with self._lock:
            now = self.clock()
            wait = max(0.0, self._hold_until - now)
            for bucket, amount in ((self._requests, 1), (self._tokens, tokens)):
                if bucket is not None:
                    bucket.refill(now)
                    wait = max(wait, bucket.wait_for(amount, now))
            if wait > 0 and wait >= remaining:
                raise RateLimitError(
                    f"{provider}: waiting {wait:.2f} s for the rate limit "
                    f"({self._describe(now)}) would pass the call's deadline ({max(remaining, 0):.2f} s left)",
                    provider=provider,
                    status_code=None,
                    retry_after=wait,
                    retryable=True,
                )
            # Reserve now, at the moment the call will go: the next caller waits behind it.
            for bucket, amount in ((self._requests, 1), (self._tokens, tokens)):
                if bucket is not None:
                    bucket.refill(now + wait)
                    bucket.level -= amount
            if wait > 0:
                self.waiting += 1
        if wait > 0:
            try:
                self.sleep(wait)
            finally:
                with self._lock:
                    self.waiting -= 1
        return wait

    def settle(self, estimated: int, used: Optional[int]) -> None:
        """Correct the token budget once a call's usage is known (``used`` None: keep the
        estimate)."""
        if self._tokens is None or used is None or used == estimated:
            return
        with self._lock:
            bucket = self._tokens
            bucket.refill(self.clock())
            bucket.level = min(bucket.capacity, bucket.level + estimated - used)

    def hold(self, seconds: float) -> None:
        """Admit no call for ``seconds`` (the server said its budget is spent until then)."""
        with self._lock:
            self._hold_until = max(self._hold_until, self.clock() + seconds)

    def _describe(self, now: float) -> str:
        parts = []
        if self._hold_until > now:
            parts.append("the server reported its budget spent until its reset")
        if self.rpm:
            parts.append(f"rpm = {self.rpm:g}")
        if self.tpm:
            parts.append(f"tpm = {self.tpm:g}")
        return ", ".join(parts)


_CREATING = threading.Lock()


def limiter_of(owner: Any) -> RateLimiter:
    """``owner._limiter``, created (with no ``rpm``/``tpm``) if it has none yet: a provider
    that was not paced starts holding calls when its server reports a budget spent."""
    with _CREATING:
        limiter: Optional[RateLimiter] = owner._limiter
        if limiter is None:
            limiter = owner._limiter = RateLimiter()
        return limiter
