"""``CallRecord``, one call's secret-free account, and the ``on_call`` hooks that receive it.

A provider with hooks (``on_call=``, ``provider.add_on_call``, or a registry it belongs to)
has its ``complete``, ``stream`` and ``embed`` replaced, on the instance, by the observers here: a
provider without hooks runs the class's methods untouched and pays nothing at all.

One record per call of a provider: through a registry with fallbacks, one per provider tried,
each with that provider's name. A stream's record is made when it ends, fails or is closed
early (``text`` is what had arrived). A hook that raises is logged (a warning naming the hook,
once per hook) and never breaks the call.

This module is imported only when a hook is added.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from typing import Any, Callable, Dict, Generator, Iterator, List, Optional, Sequence, Tuple

from ._messages import as_messages
from ._value import _Value
from .types import Completion, StreamChunk, Usage

__all__ = ["CallRecord", "Hooks", "OnCall", "observe"]

logger = logging.getLogger("provider_kit")

#: A hook: any callable taking a ``CallRecord``.
OnCall = Callable[["CallRecord"], Any]


class CallRecord(_Value):
    """One call of a provider, as ``on_call`` hooks and the call log receive it.

    ``time`` is when the call started (an aware UTC datetime); ``provider`` the provider's name
    and ``provider_type`` its ``TYPE``; ``model`` the model that answered (else the one asked
    for); ``method`` "complete", "stream" or "embed"; ``messages`` the conversation sent (for
    ``embed``, the texts as one user message of text parts), as dicts
    (``Message.to_dict``), the system prompt first. ``text`` is the answer (for a stream that
    failed or was closed early, the text that had arrived), None when nothing arrived;
    ``error_type`` and ``error_message`` the exception's class name and message (already free
    of keys), None for a call that answered. ``usage`` is a ``Usage`` (None when the call
    failed), ``latency_s`` the wall time of the call, ``cached`` whether the answer came from
    the response cache, ``rate_limit`` the ``RateLimitInfo`` the server reported or None.
    Nothing in a record is a key or a header.
    """

    __slots__ = (
        "time",
        "provider",
        "provider_type",
        "model",
        "method",
        "messages",
        "text",
        "finish_reason",
        "error_type",
        "error_message",
        "usage",
        "latency_s",
        "cached",
        "rate_limit",
    )
    _repr_skip = ("messages",)
    time: datetime.datetime
    provider: str
    provider_type: Optional[str]
    model: Optional[str]
    method: str
    messages: Tuple[Dict[str, Any], ...]
    text: Optional[str]
    finish_reason: Optional[str]
    error_type: Optional[str]
    error_message: Optional[str]
    usage: Optional[Usage]
    latency_s: float
    cached: bool
    rate_limit: Any

    def __init__(
        self,
        time: datetime.datetime,
        provider: str,
        provider_type: Optional[str] = None,
        model: Optional[str] = None,
        method: str = "complete",
        messages: Sequence[Dict[str, Any]] = (),
        text: Optional[str] = None,
        finish_reason: Optional[str] = None,
        error_type: Optional[str] = None,
        error_message: Optional[str] = None,
        usage: Optional[Usage] = None,
        latency_s: float = 0.0,
        cached: bool = False,
        rate_limit: Any = None,
    ) -> None:
        self._set(
            time=time,
            provider=provider,
            provider_type=provider_type,
            model=model,
            method=method,
            messages=tuple(messages),
            text=text,
            finish_reason=finish_reason,
            error_type=error_type,
            error_message=error_message,
            usage=usage,
            latency_s=latency_s,
            cached=cached,
            rate_limit=rate_limit,
        )

    @property
    def ok(self) -> bool:
        """Whether the call answered (no error)."""
        return self.error_type is None

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict of every field: ``time`` in ISO 8601, ``usage`` and ``rate_limit``
        as dicts (or None)."""
        return {
            "time": self.time.isoformat(),
            "provider": self.provider,
            "provider_type": self.provider_type,
            "model": self.model,
            "method": self.method,
            "messages": list(self.messages),
            "text": self.text,
            "finish_reason": self.finish_reason,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "usage": self.usage.to_dict() if self.usage is not None else None,
            "latency_s": self.latency_s,
            "cached": self.cached,
            "rate_limit": self.rate_limit.to_dict() if self.rate_limit is not None else None,
        }


class Hooks:
    """A provider's (or a registry's) hooks: called in the order added, each guarded.

    Thread-safe: hooks may be added while calls run; a call sees the hooks present when it
    ends. Pickles with its hooks (each must pickle for the owner to travel to another process).
    """

    def __init__(self, hooks: Sequence[OnCall] = ()) -> None:
        self._hooks: Tuple[OnCall, ...] = tuple(hooks)
        self._lock = threading.Lock()
        self._warned: List[int] = []

    def __getstate__(self) -> Dict[str, Any]:
        return {"hooks": self._hooks}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(state["hooks"])  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self._hooks)

    def __iter__(self) -> Iterator[OnCall]:
        return iter(self._hooks)

    def add(self, hook: OnCall) -> None:
        with self._lock:
            if hook not in self._hooks:  # equality: a bound method is a new object each time
                self._hooks = (*self._hooks, hook)

    def remove(self, hook: OnCall) -> None:
        with self._lock:
            self._hooks = tuple(existing for existing in self._hooks if existing != hook)

    def __call__(self, record: CallRecord) -> None:
        for hook in self._hooks:
            try:
                hook(record)
            except Exception as exc:  # a hook never breaks the call
                self._hook_failed(hook, exc)

    def _hook_failed(self, hook: OnCall, exc: Exception) -> None:
        with self._lock:
            first = id(hook) not in self._warned
            if first:
                self._warned.append(id(hook))
        name = getattr(hook, "__qualname__", None) or type(hook).__name__
        if first:
            logger.warning("on_call hook %s raised %s: %s (ignored; the call is not affected)",
                           name, type(exc).__name__, exc)
        else:
            logger.debug("on_call hook %s raised %s again", name, type(exc).__name__)


def check_hook(hook: Any) -> OnCall:
    """``hook`` when it is callable.

    :raises ConfigError: otherwise.
    """
    if not callable(hook):
        from .errors import ConfigError

        raise ConfigError(f"on_call must be a callable taking a CallRecord, got {type(hook).__name__}")
    return hook  # type: ignore[no-any-return]


def check_hooks(on_call: Any) -> List[OnCall]:
    """An ``on_call=`` argument (None, a callable or a list of them) as a list of hooks.

    :raises ConfigError: for anything else.
    """
    if on_call is None:
        return []
    if isinstance(on_call, (list, tuple)):
        return [check_hook(hook) for hook in on_call]
    return [check_hook(on_call)]


# -- observing a provider's calls


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _messages_of(prompt: Any, system: Any) -> Tuple[Dict[str, Any], ...]:
    try:
        return tuple(message.to_dict() for message in as_messages(prompt, system))
    except Exception:  # the call refuses the prompt itself, with a clearer error than ours
        return ()


def _error_fields(exc: BaseException) -> Tuple[str, str]:
    return type(exc).__name__, str(exc)


class _Call:
    """What a record says about the call before it ends."""

    __slots__ = ("kwargs", "method", "messages", "provider", "started", "time")

    def __init__(self, provider: Any, method: str, prompt: Any, kwargs: Dict[str, Any]) -> None:
        self.provider = provider
        self.method = method
        self.kwargs = kwargs
        self.messages = _messages_of(prompt, kwargs.get("system"))
        self.time = _utcnow()
        self.started = time.monotonic()

    def record(self, **fields: Any) -> CallRecord:
        provider = self.provider
        model = fields.pop("model", None) or self.kwargs.get("model") or getattr(provider, "model", None)
        return CallRecord(
            self.time,
            str(getattr(provider, "name", "") or ""),
            getattr(provider, "TYPE", None) or None,
            model if isinstance(model, str) else None,
            self.method,
            self.messages,
            latency_s=time.monotonic() - self.started,
            **fields,
        )


def _completion_fields(completion: Any) -> Dict[str, Any]:
    if not isinstance(completion, Completion):
        # ``embed``'s ``Embeddings``: no text, but its model, usage and whether it was cached.
        fields: Dict[str, Any] = {"text": getattr(completion, "text", None)}
        for name in ("model", "usage"):
            if getattr(completion, name, None) is not None:
                fields[name] = getattr(completion, name)
        fields["cached"] = bool(getattr(completion, "cached", False))
        return fields
    return {
        "model": completion.model,
        "text": completion.text,
        "finish_reason": completion.finish_reason,
        "usage": completion.usage,
        "cached": bool(getattr(completion, "cached", False)),
        "rate_limit": completion.rate_limit,
    }


class _Observed:
    """``provider.complete`` / ``provider.stream`` with each call reported to ``hooks``: set on
    the instance, over the class's method (which it calls). Pickles as the provider and the
    method's name."""

    __slots__ = ("hooks", "method", "provider")

    def __init__(self, provider: Any, method: str, hooks: Hooks) -> None:
        self.provider = provider
        self.method = method
        self.hooks = hooks

    @property
    def __wrapped__(self) -> Any:  # inspect.signature and help() show the real method
        return getattr(type(self.provider), self.method).__get__(self.provider)

    @property
    def __doc__(self) -> Optional[str]:  # type: ignore[override]
        doc: Optional[str] = getattr(type(self.provider), self.method).__doc__
        return doc

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (_Observed, (self.provider, self.method, self.hooks))

    def __call__(self, prompt_or_messages: Any, **kwargs: Any) -> Any:
        real = getattr(type(self.provider), self.method)
        call = _Call(self.provider, self.method, prompt_or_messages, kwargs)
        if self.method == "stream":
            try:
                chunks = real(self.provider, prompt_or_messages, **kwargs)
            except Exception as exc:
                self.hooks(call.record(error_type=type(exc).__name__, error_message=str(exc)))
                raise
            return observed_stream(chunks, call, self.hooks)
        try:
            completion = real(self.provider, prompt_or_messages, **kwargs)
        except Exception as exc:
            self.hooks(call.record(error_type=type(exc).__name__, error_message=str(exc)))
            raise
        self.hooks(call.record(**_completion_fields(completion)))
        return completion


def observed_stream(chunks: Any, call: _Call, hooks: Hooks) -> Generator[StreamChunk, None, None]:
    """``chunks`` passed through; the record is made when the stream ends, fails or is closed.

    A stream closed before its last chunk has the text so far, no ``finish_reason``, no usage
    and no error: stopping early is the caller's choice, not a failure."""
    texts: List[str] = []
    last: Any = None
    error: Optional[BaseException] = None
    try:
        for chunk in chunks:
            texts.append(getattr(chunk, "text", "") or "")
            last = chunk
            yield chunk
    except GeneratorExit:
        _close(chunks)  # release the connection now, not when the inner generator is collected
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        fields: Dict[str, Any] = {"text": "".join(texts) if texts else None}
        if error is not None:
            fields["error_type"], fields["error_message"] = _error_fields(error)
        elif getattr(last, "finish_reason", None) is not None or getattr(last, "usage", None) is not None:
            fields.update(
                finish_reason=last.finish_reason,
                usage=last.usage,
                rate_limit=getattr(last, "rate_limit", None),
                cached=bool(getattr(last, "cached", False)),
            )
        hooks(call.record(**fields))


def _close(chunks: Any) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def observe(provider: Any, hooks: Hooks) -> None:
    """Route ``provider``'s ``complete``, ``stream`` and ``embed`` (when it has one) through
    ``hooks`` (on the instance). An ``embed`` record's messages are the texts, as one user
    message of text parts."""
    for method in ("complete", "stream", "embed"):
        if callable(getattr(type(provider), method, None)):
            setattr(provider, method, _Observed(provider, method, hooks))


_ATTACHING = threading.Lock()


def add_hook(provider: Any, hook: OnCall) -> bool:
    """Give ``provider`` one more hook (observing its calls from now on); False when the
    object cannot take one (a class with ``__slots__`` and no ``__dict__``)."""
    with _ATTACHING:
        hooks = getattr(provider, "__dict__", {}).get("_on_call")
        if hooks is None:
            hooks = Hooks()
            try:
                provider._on_call = hooks
                observe(provider, hooks)
            except AttributeError:
                logger.warning("provider %r cannot take on_call hooks: its calls are not recorded",
                               getattr(provider, "name", provider))
                return False
    hooks.add(hook)
    return True


def remove_hook(provider: Any, hook: OnCall) -> None:
    """Take ``hook`` off ``provider`` (nothing when it has no such hook)."""
    hooks = getattr(provider, "__dict__", {}).get("_on_call")
    if hooks is not None:
        hooks.remove(hook)
