"""This site's provider registry: built once per process from ``settings.PROVIDER_KIT_CONFIG``.

Every request thread shares it, and with it one connection pool and one circuit breaker per
provider. It is built on first use, not at import, so ``manage.py migrate`` needs no provider
configuration; a forked worker (gunicorn ``--preload``) builds its own instead of sharing its
parent's sockets. (``provider_kit.get_registry()`` does the same from ``$PROVIDER_KIT_CONFIG``;
this module reads the file named in settings.py instead.)
"""

import os
import threading

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from provider_kit import ProviderRegistry

_lock = threading.Lock()
_registry = None


def get_registry():
    """The registry; the first call builds it (raising ``ConfigError`` when the file is broken,
    ``NoProvidersError`` when no provider is usable, and trying again on the next call)."""
    global _registry
    registry = _registry  # no lock once built
    if registry is None:
        with _lock:
            if _registry is None:
                _registry = ProviderRegistry.from_config(settings.PROVIDER_KIT_CONFIG)
            registry = _registry
    return registry


def reset_registry():
    """Close the registry and forget it: the next ``get_registry()`` reads the file again."""
    global _registry
    with _lock:
        old, _registry = _registry, None
    if old is not None:
        old.close()


@receiver(setting_changed)
def _config_changed(*, setting, **kwargs):
    # Tests switch the file with override_settings(PROVIDER_KIT_CONFIG=...).
    if setting == "PROVIDER_KIT_CONFIG":
        reset_registry()


def _forget_after_fork():
    global _lock, _registry
    _lock = threading.Lock()
    _registry = None


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_after_fork)
