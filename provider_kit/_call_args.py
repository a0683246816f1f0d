"""The one check of a call's arguments, shared by every provider and by ``FakeProvider``.

``complete`` and ``stream`` take the same keyword arguments everywhere; checking them in one
place means a bad argument fails with the same ``ConfigError`` message whichever provider
receives it, so a test written against ``provider_kit.testing.FakeProvider`` fails the way
production would. What only one protocol refuses (Anthropic's temperature above 1) stays with
that provider.
"""

from __future__ import annotations

from typing import Any, List, Optional

from .errors import ConfigError
from .types import Message, MessagesInput, as_messages


class CallArgs:
    """A call's arguments once checked: ``messages`` coerced, ``stop`` a list or None, ``timeout``
    a float or None (None: the provider's own default)."""

    __slots__ = ("max_tokens", "messages", "model", "stop", "temperature", "timeout")

    def __init__(
        self,
        messages: List[Message],
        model: Optional[str],
        max_tokens: Optional[int],
        temperature: Optional[float],
        stop: Optional[List[str]],
        timeout: Optional[float],
    ) -> None:
        self.messages = messages
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.stop = stop
        self.timeout = timeout


def check_timeout(provider: str, timeout: Any) -> float:
    """``timeout`` as a float.

    :raises ConfigError: unless it is a positive number (``bool`` is not a number here).
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigError(f"{provider}: argument timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def check_call_args(
    provider: str,
    prompt_or_messages: MessagesInput,
    *,
    system: Optional[str] = None,
    model: Optional[str] = None,
    max_tokens: Optional[int] = None,
    temperature: Optional[float] = None,
    stop: Any = None,
    timeout: Optional[float] = None,
) -> CallArgs:
    """Check and normalise the arguments of ``complete``/``stream`` before anything is sent.

    :param provider: the provider's name, which starts every message.
    :raises ConfigError: for a malformed prompt, an empty or non-string ``model``, a
        ``max_tokens`` that is not a positive integer, a ``temperature`` outside 0 to 2, a
        ``stop`` that is not a string or a list of non-empty strings, a ``timeout`` that is not
        a positive number.
    """
    where = f"{provider}: argument"
    messages = as_messages(prompt_or_messages, system)
    if model is not None and (not isinstance(model, str) or not model):
        raise ConfigError(f"{where} model must be a non-empty string, got {model!r}")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ConfigError(f"{where} max_tokens must be a positive integer, got {max_tokens!r}")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2
    ):
        raise ConfigError(f"{where} temperature must be a number from 0 to 2, got {temperature!r}")
    stop_list: Optional[List[str]] = None
    if stop is not None:
        if isinstance(stop, str):
            stop_list = [stop]
        elif isinstance(stop, (list, tuple)):
            stop_list = list(stop)
        if stop_list is None or not all(isinstance(item, str) and item for item in stop_list):
            raise ConfigError(f"{where} stop must be a string or a list of non-empty strings, got {stop!r}")
    seconds = check_timeout(provider, timeout) if timeout is not None else None
    return CallArgs(messages, model, max_tokens, temperature, stop_list or None, seconds)
