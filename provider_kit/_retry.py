"""Deadlines and the retry policy: when to try again and how long to wait. Pure; no I/O."""

from __future__ import annotations

import email.utils  # free: http.client (under requests) has loaded it already
import random
import time
from typing import Any, Mapping, Optional, Tuple

#: Statuses worth another attempt; the official SDKs retry the same set (plus every other 5xx).
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
#: Markers in a 429 body meaning waiting cannot help (OpenAI quota, Anthropic spend cap).
NON_RETRYABLE_429_MARKERS = ("insufficient_quota", "enforced_spend_limit_reached")
#: A server-requested delay above this is not waited for: the error is raised at once.
MAX_RETRY_AFTER_S = 60.0

class Deadline:
    """A wall-clock limit: ``seconds`` from creation (or from the last ``restart``)."""

    __slots__ = ("expires_at", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires_at = time.monotonic() + seconds

    def restart(self) -> None:
        self.expires_at = time.monotonic() + self.seconds

    def remaining(self) -> float:
        return self.expires_at - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0


class RetryPolicy:
    """How many times to retry and how long to wait: immutable, like urllib3's ``Retry``.

    The backoff is the official SDKs' one: ``min(0.5 * 2**n, 8)`` seconds shortened by up to 25 %
    at random, ``n`` being the retries made so far.
    """

    __slots__ = ("backoff_base", "backoff_max", "max_retries", "max_retry_after")
    max_retries: int
    backoff_base: float
    backoff_max: float
    max_retry_after: float

    def __init__(
        self,
        max_retries: int = 2,
        *,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        max_retry_after: float = MAX_RETRY_AFTER_S,
    ) -> None:
        for name, value in (
            ("max_retries", max_retries),
            ("backoff_base", backoff_base),
            ("backoff_max", backoff_max),
            ("max_retry_after", max_retry_after),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("RetryPolicy is immutable")

    def __reduce__(self) -> Tuple[Any, ...]:
        fields = (self.max_retries, self.backoff_base, self.backoff_max, self.max_retry_after)
        return (_rebuild_policy, fields)

    def __repr__(self) -> str:
        return f"RetryPolicy(max_retries={self.max_retries})"

    def delay(self, retries_done: int, retry_after: Optional[float]) -> Optional[float]:
        """Seconds to wait before the next attempt, or None when the server's wait is too long."""
        if retry_after is not None and retry_after > 0:
            return retry_after if retry_after <= self.max_retry_after else None
        backoff = min(self.backoff_base * 2.0**retries_done, self.backoff_max)
        return backoff * (1.0 - 0.25 * random.random())


def _rebuild_policy(max_retries: int, base: float, cap: float, max_after: float) -> RetryPolicy:
    return RetryPolicy(max_retries, backoff_base=base, backoff_max=cap, max_retry_after=max_after)


def parse_retry_after(headers: Mapping[str, str]) -> Optional[float]:
    """Seconds the server asks us to wait: ``retry-after-ms``, else ``Retry-After`` (seconds or HTTP-date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(float(value) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - time.time(), 0.0)
