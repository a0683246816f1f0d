"""``RateLimitInfo``: the rate-limit budget a server reports in its response headers.

Two header families exist (PROTOCOLS.md §A.6, §B.7, PROTOCOLS-2.md §L):

- OpenAI's ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, sent by OpenAI, Azure
  (often ``remaining`` alone), Groq and other compatible services; resets are Go durations
  (``1s``, ``6m0s``, ``12ms``, ``2m59.56s``).
- Anthropic's ``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}``; resets are
  RFC 3339 timestamps, turned into seconds from the moment the answer arrived.

Both are read for every provider type: a proxy in front of one server may send the other's.
The call flow looks for the four "remaining" headers itself (``providers._base``) and imports
this module only when a server sends one.
"""

from __future__ import annotations

import datetime
import re
import time
from typing import Any, Callable, Dict, Mapping, Optional

from ._value import _Value

__all__ = ["RateLimitInfo", "parse_go_duration", "parse_reset_timestamp", "rate_limit_from_headers"]


class RateLimitInfo(_Value):
    """The budget a server reported with an answer (``completion.rate_limit``).

    Each field is None when the server did not send it. ``*_reset_s`` are seconds from when
    the answer arrived until that budget is full again.
    """

    __slots__ = (
        "requests_limit",
        "requests_remaining",
        "requests_reset_s",
        "tokens_limit",
        "tokens_remaining",
        "tokens_reset_s",
    )
    requests_limit: Optional[int]
    requests_remaining: Optional[int]
    requests_reset_s: Optional[float]
    tokens_limit: Optional[int]
    tokens_remaining: Optional[int]
    tokens_reset_s: Optional[float]

    def __init__(
        self,
        requests_limit: Optional[int] = None,
        requests_remaining: Optional[int] = None,
        requests_reset_s: Optional[float] = None,
        tokens_limit: Optional[int] = None,
        tokens_remaining: Optional[int] = None,
        tokens_reset_s: Optional[float] = None,
    ) -> None:
        self._set(
            requests_limit=requests_limit,
            requests_remaining=requests_remaining,
            requests_reset_s=requests_reset_s,
            tokens_limit=tokens_limit,
            tokens_remaining=tokens_remaining,
            tokens_reset_s=tokens_reset_s,
        )

    @property
    def exhausted(self) -> bool:
        """Whether the server said no request (or no token) is left until a reset."""
        return self.requests_remaining == 0 or self.tokens_remaining == 0

    def wait_s(self) -> Optional[float]:
        """Seconds until every exhausted budget is reset; 0 when none is exhausted; None when
        one is exhausted and the server did not say when it resets."""
        waits = []
        for remaining, reset in (
            (self.requests_remaining, self.requests_reset_s),
            (self.tokens_remaining, self.tokens_reset_s),
        ):
            if remaining == 0:
                if reset is None:
                    return None
                waits.append(reset)
        return max(waits, default=0.0)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict of every field (None where not reported)."""
        return {key: getattr(self, key) for key in self.__slots__}

    def __repr__(self) -> str:
        shown = [f"{key}={getattr(self, key)!r}" for key in self.__slots__ if getattr(self, key) is not None]
        return f"RateLimitInfo({', '.join(shown)})"


# -- parsing

_GO_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ns": 1e-9}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|\u00b5s|\u03bcs|ns)")
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:([Zz])|([+-])(\d\d):?(\d\d))$"
)


def parse_go_duration(text: str) -> Optional[float]:
    """Seconds in a Go duration (``6m0s``, ``12ms``, ``2m59.56s``, ``-1.5h``); a bare number
    is seconds. None for anything else."""
    text = text.strip()
    if not text:
        return None
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    try:
        return sign * float(body)
    except ValueError:
        pass
    total = 0.0
    position = 0
    for match in _GO_PART.finditer(body):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        position = match.end()
    if position != len(body) or position == 0:
        return None
    return sign * total


def parse_reset_timestamp(text: str, now: float) -> Optional[float]:
    """Seconds from ``now`` (a Unix time) to an RFC 3339 timestamp (up to 9 fractional digits,
    ``Z`` or an offset: ``fromisoformat`` reads neither on Python < 3.11), at least 0.
    None when ``text`` is not one."""
    match = _RFC3339.match(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        moment = datetime.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=datetime.timezone.utc
        )
    except ValueError:
        return None
    stamp = moment.timestamp() + (float("0." + fraction) if fraction else 0.0)
    if not zulu:
        offset = (int(off_h) * 3600 + int(off_m) * 60) * (1 if sign == "+" else -1)
        stamp -= offset
    return max(0.0, stamp - now)


def _count(value: Optional[str]) -> Optional[int]:
    if value is None:
        return None
    try:
        number = int(float(value.strip()))
    except (ValueError, OverflowError):
        return None
    return max(0, number)


def _reset(value: Optional[str], now: float) -> Optional[float]:
    if value is None:
        return None
    seconds = parse_go_duration(value)
    if seconds is None:
        seconds = parse_reset_timestamp(value, now)
    return None if seconds is None else max(0.0, seconds)


def rate_limit_from_headers(
    headers: Mapping[str, str], now: Callable[[], float] = time.time
) -> Optional[RateLimitInfo]:
    """The budget in a response's headers (case-insensitive mapping), or None when it has none."""
    get = headers.get
    # A budget is reported by its "remaining" headers (Azure sends nothing else).
    if get("x-ratelimit-remaining-requests") is not None or get("x-ratelimit-remaining-tokens") is not None:
        names = ("x-ratelimit-limit-{}", "x-ratelimit-remaining-{}", "x-ratelimit-reset-{}")
    elif get("anthropic-ratelimit-requests-remaining") is not None or (
        get("anthropic-ratelimit-tokens-remaining") is not None
    ):
        names = ("anthropic-ratelimit-{}-limit", "anthropic-ratelimit-{}-remaining", "anthropic-ratelimit-{}-reset")
    else:
        return None
    moment = now()
    limit, remaining, reset = names
    return RateLimitInfo(
        requests_limit=_count(get(limit.format("requests"))),
        requests_remaining=_count(get(remaining.format("requests"))),
        requests_reset_s=_reset(get(reset.format("requests")), moment),
        tokens_limit=_count(get(limit.format("tokens"))),
        tokens_remaining=_count(get(remaining.format("tokens"))),
        tokens_reset_s=_reset(get(reset.format("tokens")), moment),
    )
