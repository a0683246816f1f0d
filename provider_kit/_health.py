"""The health fan-out behind ``ProviderRegistry.health_check_all``: every check at once, one deadline.

Each check runs in its own daemon thread that completes a ``concurrent.futures.Future``, rather
than in a ``ThreadPoolExecutor``: leaving a ``with`` executor block waits for every worker, the
interpreter joins executor workers at exit, and a pool filled with hung checks would delay the
next call. A hung third-party check therefore costs one parked daemon thread and nothing else.

Whatever a check does (raise, hang, return something else) becomes a ``HealthStatus``; nothing
propagates. The registry chooses the providers and supplies each one's circuit state.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Sequence, Tuple

from ._plugins import describe_error
from .errors import ConfigError
from .types import CircuitState, HealthReport, HealthStatus, Provider

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = ["check_all", "check_timeout"]

#: Extra time a health check gets past its timeout to report its own timeout (it was given the
#: same deadline) before the fan-out reports it for it.
GRACE_S = 0.2


def check_timeout(timeout: Any) -> float:
    """``timeout`` as a float of seconds.

    :raises ConfigError: when it is not a finite positive number.
    """
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not (math.isfinite(timeout) and timeout > 0)
    ):
        raise ConfigError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


def _run_check(provider: Provider, name: str, timeout: float, future: Future[HealthStatus]) -> None:
    """Thread body: complete ``future`` with a HealthStatus whatever the check does."""
    started = time.monotonic()
    try:
        result = provider.health_check(timeout=timeout)
    except BaseException as exc:  # a third-party check must never escape, whatever it raises
        status = HealthStatus(name, False, time.monotonic() - started, describe_error(exc))
    else:
        if not isinstance(result, HealthStatus):
            status = HealthStatus(
                name,
                False,
                time.monotonic() - started,
                f"health_check returned {type(result).__name__}, not a HealthStatus",
            )
        elif result.name != name:
            status = result._replace(name=name)  # the registered name is the one the caller knows
        else:
            status = result
    future.set_result(status)


def check_all(
    targets: Sequence[Tuple[str, Provider]], timeout: float, circuit: Callable[[str], CircuitState]
) -> HealthReport:
    """Run every target's ``health_check(timeout=timeout)`` in parallel; report within the deadline.

    A check still running at ``timeout`` (plus ``GRACE_S``) is reported not ok, "timeout: ...".
    Every status carries ``circuit(name)`` as a dict in ``HealthStatus.circuit``.
    """
    if not targets:
        return HealthReport()

    from concurrent.futures import Future, wait  # not at import: it costs milliseconds

    started = time.monotonic()
    futures: Dict[str, Future[HealthStatus]] = {}
    for name, provider in targets:
        future: Future[HealthStatus] = Future()
        futures[name] = future
        threading.Thread(
            target=_run_check,
            args=(provider, name, timeout, future),
            name=f"provider_kit-health-{name}",
            daemon=True,  # a hung third-party check must not hold up interpreter exit
        ).start()
    wait(list(futures.values()), timeout=timeout + GRACE_S)
    elapsed = time.monotonic() - started
    statuses = []
    for name, future in futures.items():
        if future.done():
            status = future.result()
        else:
            status = HealthStatus(name, False, elapsed, f"timeout: no answer within {timeout!r} s")
        statuses.append(status._replace(circuit=circuit(name).as_dict()))
    return HealthReport(statuses)
