"""The process-wide registry of ``get_registry`` / ``reset_registry``: built once on first use,
shared by every thread, forgotten in a forked child.

Imported with ``provider_kit`` so that the fork hook is registered before any fork (gunicorn
``--preload`` forks after the app imported the package); ``ProviderRegistry`` is imported at
the first build only.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .registry import ProviderRegistry

__all__ = ["get_registry", "reset_registry"]

_shared_lock = threading.Lock()
_shared: Optional[ProviderRegistry] = None


def get_registry() -> ProviderRegistry:
    """The process-wide registry, built on first use from the default configuration.

    ``ProviderRegistry.from_config(None)`` runs exactly once, however many threads (Django
    request threads, say) ask at the same time; until it succeeds, each call tries again and
    raises its error. After ``os.fork()`` the child builds its own registry rather than share
    the parent's connections.

    :raises ConfigError: when the configuration is broken.
    :raises NoProvidersError: when no provider could be registered.
    """
    global _shared
    registry = _shared  # the fast path: no lock once built
    if registry is None:
        with _shared_lock:
            registry = _shared
            if registry is None:
                from .registry import ProviderRegistry  # the registry imports this module

                registry = _shared = ProviderRegistry.from_config(None)
    return registry


def reset_registry() -> None:
    """Forget the process-wide registry and close it; the next ``get_registry()`` builds anew.

    For tests, and after the configuration changed. Threads still holding the old registry see
    its providers closed (HTTP providers reopen a connection pool when used again).
    """
    global _shared
    with _shared_lock:
        old, _shared = _shared, None
    if old is not None:
        old.close()


def _forget_after_fork() -> None:
    # A forked child (gunicorn --preload, multiprocessing "fork") must not share the parent's
    # sockets, and the lock may have been held by a thread that does not exist in the child.
    global _shared, _shared_lock
    _shared = None
    _shared_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_after_fork)
