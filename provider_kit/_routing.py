"""Calls through the registry: fallbacks, circuit breakers, and ``complete``, ``stream``, ``map``.

The registry owns the providers and their names; once a call's candidates are known, this
module owns what happens to it:

- the candidates: the provider asked for (or the default), then its fallbacks;
- fallback: the next candidate is tried after any ``ProviderError`` from the previous one (a
  400 from a server with a short context, a model one proxy does not serve...), because a
  request one server refuses may suit another. Only errors raised before anything is sent
  (``ConfigError``, ``TypeError``: bad arguments, bad everywhere) and interrupts stop the chain;
- a circuit breaker per provider (``_breaker.py``), consulted before each call and told its
  outcome;
- ``stream``: the same fallbacks until the first chunk arrives, none after it (a stream that
  breaks later raises, so a caller never mistakes half an answer for a whole one);
- ``map``: a batch in threads, at most ``batch_concurrency`` calls in flight per provider, and
  prompts that wait for a half-open trial rather than fail unsent while a circuit is open.

All breakers of a router share one condition: a batch prompt waiting for any of its candidates
wakes when any of them changes state, with no polling.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Mapping
from typing import (
    Any,
    Callable,
    ContextManager,
    Dict,
    Generator,
    Iterable,
    Iterator,
    List,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Union,
)

from ._breaker import CircuitBreaker
from ._plugins import describe_error
from .errors import (
    ConfigError,
    MapInterrupted,
    ProviderConnectionError,
    ProviderError,
    ProviderKitError,
    UnsupportedFeatureError,
)
from .providers._settings import DEFAULT_TIMEOUT
from .types import Completion, Message, MessagesInput, Provider, StreamChunk

__all__ = [
    "DEFAULT_BATCH_CONCURRENCY",
    "DEFAULT_BREAKER_COOLDOWN",
    "DEFAULT_BREAKER_THRESHOLD",
    "DEFAULT_MAP_WORKERS",
    "Router",
    "Target",
    "batch_items",
    "choose_targets",
]

logger = logging.getLogger("provider_kit")

#: Connection errors, timeouts or server errors in a row that open a provider's circuit.
DEFAULT_BREAKER_THRESHOLD = 3
#: Seconds an open circuit skips its provider before letting a trial call through.
DEFAULT_BREAKER_COOLDOWN = 30.0
#: The most ``map`` calls in flight against one provider, across every ``map`` at once.
DEFAULT_BATCH_CONCURRENCY = 4
#: Threads of one ``map`` call.
DEFAULT_MAP_WORKERS = 8

#: A candidate: the registered name and the provider.
Target = Tuple[str, Provider]
Fallbacks = Union[str, Sequence[str], None]


class _Catalogue(Protocol):
    """What ``choose_targets`` needs of the registry."""

    def get(self, name: str) -> Provider: ...

    def names(self) -> List[str]: ...

    def get_default(self) -> Provider: ...


def choose_targets(catalogue: _Catalogue, provider: Optional[str], fallbacks: Fallbacks) -> List[Target]:
    """The candidates in the order to try them; every name is checked before any call.

    :raises UnknownProviderError: for a name the registry does not hold.
    :raises ConfigError: for ``fallbacks`` that is a string other than ``"healthy"``.
    """
    first = provider if provider is not None else catalogue.get_default().name
    catalogue.get(first)
    if fallbacks is None:
        rest: List[str] = []
    elif isinstance(fallbacks, str):
        if fallbacks != "healthy":
            raise ConfigError(
                f"fallbacks must be a list of provider names or 'healthy', not the string {fallbacks!r} "
                f"(did you mean [{fallbacks!r}]?)"
            )
        rest = [name for name in catalogue.names() if name != first]
    else:
        rest = list(fallbacks)
    return [(name, catalogue.get(name)) for name in dict.fromkeys([first, *rest])]


def batch_items(prompts: Iterable[MessagesInput]) -> List[MessagesInput]:
    """``prompts`` as a list, refusing the shapes that are one prompt rather than many."""
    if isinstance(prompts, (str, bytes, Mapping)):
        raise ConfigError(
            f"prompts must be a list of prompts, not a {type(prompts).__name__} (wrap one prompt in a list)"
        )
    items = list(prompts)
    for index, item in enumerate(items):
        if isinstance(item, (Message, Mapping)):
            raise ConfigError(
                f"prompts[{index}] is a single message; each prompt is a string or a list of messages "
                "(to send one conversation, pass [messages])"
            )
    return items


def _is_seconds(value: Any) -> bool:
    return (
        not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0
    )


def _embed_with(name: str, provider: Provider, texts: Any, kwargs: Dict[str, Any]) -> Any:
    """``provider.embed(texts, **kwargs)``; embeddings are optional in the ``Provider`` protocol.

    :raises UnsupportedFeatureError: for a provider without an ``embed`` method.
    """
    embed = getattr(provider, "embed", None)
    if embed is None:
        raise UnsupportedFeatureError(
            f"provider {name!r} ({type(provider).__name__}) has no embed(): it cannot make embeddings"
        )
    return embed(texts, **kwargs)


def _model_of(provider: Provider, kwargs: Dict[str, Any]) -> Optional[str]:
    """The model a call asked for: its ``model`` argument, else the provider's own."""
    model = kwargs.get("model") or getattr(provider, "model", None)
    return model if isinstance(model, str) else None


def _rate_limited(targets: List[Target]) -> int:
    """How many calls are waiting on the rate limiters of ``targets`` now."""
    return sum(getattr(getattr(provider, "_limiter", None), "waiting", 0) or 0 for _, provider in targets)


def _finished(futures: Mapping[Any, int], bar: Any, targets: List[Target]) -> Iterator[Any]:
    """The futures (-> their input index) as they finish, as ``as_completed``; with a progress
    bar, it is told every quarter second how many calls are waiting on a rate limit, so a batch
    that is being paced says so instead of looking stuck. Futures found finished together come
    in input order."""
    from concurrent.futures import FIRST_COMPLETED, as_completed, wait

    if bar is None:
        yield from as_completed(futures)
        return
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
        bar.waiting(_rate_limited(targets))
        yield from sorted(done, key=futures.__getitem__)


def _close_stream(chunks: Any) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def _interrupted(futures: Mapping[Any, int], results: List[Any], return_exceptions: bool) -> MapInterrupted:
    """The ``MapInterrupted`` of a batch stopped by a ``KeyboardInterrupt``: ``results`` with
    every call finished by now filled in (a failure only with ``return_exceptions``)."""
    for future, index in futures.items():
        if results[index] is None and future.done() and not future.cancelled():
            error = future.exception()
            if error is None:
                results[index] = future.result()
            elif return_exceptions and isinstance(error, Exception):
                results[index] = error
    done = sum(isinstance(result, Completion) for result in results)
    return MapInterrupted(
        f"map interrupted: {done} of {len(results)} prompts answered (their answers are in .results)",
        results=results,
    )


class Router:
    """Routes one registry's calls; thread-safe. Pickles with fresh locks and closed circuits.

    :param threshold: counted failures in a row that open a circuit; 0 never opens it.
    :param cooldown: seconds an open circuit skips its provider.
    :param batch_concurrency: the most ``map`` calls in flight against one provider.
    :param clock: the monotonic clock of the breakers, in seconds.
    """

    def __init__(
        self, *, threshold: int, cooldown: float, batch_concurrency: int, clock: Callable[[], float]
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.batch_concurrency = batch_concurrency
        self.clock = clock
        self._fresh_state()

    def _fresh_state(self) -> None:
        self._lock = threading.Lock()
        # Shared by every breaker (an RLock: a waiter asks the breakers while holding it).
        self._changed = threading.Condition(threading.RLock())
        self._breakers: Dict[str, CircuitBreaker] = {}
        self._slots: Dict[str, threading.BoundedSemaphore] = {}
        from ._usage import UsageCounter  # with a registry, not with import provider_kit

        #: Calls, failures and tokens per provider and model (``registry.usage()``).
        self.usage = UsageCounter()

    def __getstate__(self) -> Dict[str, Any]:
        # Locks do not pickle, and a circuit's monotonic times mean nothing in another process.
        state = self.__dict__.copy()
        for key in ("_lock", "_changed", "_breakers", "_slots", "usage"):
            del state[key]
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._fresh_state()

    # ----------------------------------------------------------------- breakers and slots

    def breaker(self, name: str) -> CircuitBreaker:
        """Provider ``name``'s circuit breaker, created closed on first use."""
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                breaker = CircuitBreaker(name, self.threshold, self.cooldown, self.clock, self._changed)
                self._breakers[name] = breaker
            return breaker

    def forget(self, name: str) -> None:
        """Drop ``name``'s circuit: a provider registered in its place starts closed."""
        with self._lock:
            self._breakers.pop(name, None)

    def slot(self, name: str) -> threading.BoundedSemaphore:
        """The semaphore bounding ``map``'s calls in flight to provider ``name``."""
        with self._lock:
            slot = self._slots.get(name)
            if slot is None:
                slot = self._slots[name] = threading.BoundedSemaphore(self.batch_concurrency)
            return slot

    # ----------------------------------------------------------------- complete

    def complete(
        self,
        prompt: MessagesInput,
        targets: List[Target],
        kwargs: Dict[str, Any],
        *,
        batch: Optional[threading.Event] = None,
    ) -> Completion:
        """Try ``targets`` in order until one answers.

        :param batch: None for a plain call, which fails at once when every circuit is open.
            For a prompt of a ``map``, the batch's "abandoned" event: such a prompt takes its
            provider's batch slot for each call and, while every circuit it could still use is
            open, waits for a trial within its timeout instead (until the event is set).
        """
        started = time.monotonic()
        errors: List[ProviderKitError] = []
        waiting: List[Target] = []
        for target in targets:
            admitted, completion = self._attempt(target, prompt, kwargs, errors, limited=batch is not None)
            if not admitted:
                waiting.append(target)
            elif completion is not None:
                return completion
        why = "open"
        if batch is not None and waiting:
            patience = self._patience(targets, kwargs)
            deadline = started + patience
            while waiting:
                ready, why = self._await_circuit(waiting, deadline, batch)
                if ready is None:
                    break
                admitted, completion = self._attempt(ready, prompt, kwargs, errors, limited=True)
                if not admitted:
                    continue  # another prompt took the trial: wait for its outcome
                waiting.remove(ready)
                if completion is not None:
                    return completion
        raise self._exhausted(targets, errors, why, kwargs)

    def _attempt(
        self,
        target: Target,
        prompt: MessagesInput,
        kwargs: Dict[str, Any],
        errors: List[ProviderKitError],
        *,
        limited: bool,
        method: str = "complete",
    ) -> Tuple[bool, Optional[Completion]]:
        """One call through ``target``'s breaker: (admitted, the completion or None if it failed).

        A ``ProviderError``, or the provider's refusal of a feature the call asks for
        (``UnsupportedFeatureError``: another provider may take it), is appended to ``errors``;
        anything else propagates. ``method`` "embed" calls ``embed`` instead (``embed``).
        """
        name, provider = target
        breaker = self.breaker(name)
        slot: ContextManager[Any] = self.slot(name) if limited else contextlib.nullcontext()
        with slot:
            if not breaker.allow():
                logger.debug("skipping provider %r: its circuit is open", name)
                return False, None
            try:
                if method == "complete":
                    completion = provider.complete(prompt, **kwargs)
                else:
                    completion = _embed_with(name, provider, prompt, kwargs)
            except UnsupportedFeatureError as exc:  # nothing was sent: the circuit is not concerned
                self.usage.count(name, _model_of(provider, kwargs), None, failed=True)
                errors.append(exc)
                logger.info("provider %r cannot take this call (%s)", name, describe_error(exc))
                return True, None
            except BaseException as exc:
                self.usage.count(name, _model_of(provider, kwargs), None, failed=True)
                breaker.record(exc)
                if not isinstance(exc, ProviderError):
                    raise  # a bad argument or an interrupt: no other provider would help
                errors.append(exc)
                logger.info("provider %r failed (%s)", name, describe_error(exc))
                return True, None
            breaker.record(None)
        self.usage.count_answer(name, completion, provider, kwargs)
        if isinstance(completion, Completion) and completion.provider != name:
            completion = completion._replace(provider=name)
        return True, completion

    @staticmethod
    def _patience(targets: List[Target], kwargs: Dict[str, Any]) -> float:
        """How long a batch prompt may wait for a circuit: its ``timeout`` argument, else the
        longest ``timeout`` of its candidates (the built-in default for providers without one)."""
        timeout: Any = kwargs.get("timeout")
        if _is_seconds(timeout):
            return float(timeout)
        own: List[Any] = [getattr(provider, "timeout", None) for _, provider in targets]
        return max([float(value) for value in own if _is_seconds(value)] or [DEFAULT_TIMEOUT])

    def _await_circuit(
        self, waiting: List[Target], deadline: float, abandoned: threading.Event
    ) -> Tuple[Optional[Target], str]:
        """The first of ``waiting`` whose breaker would admit a call now, once there is one.

        Returns ``(None, why)`` instead when it cannot happen in time: "late" when every
        circuit's cooldown ends after ``deadline`` and no running call could close one sooner,
        "timeout" when the deadline passed, "abandoned" when the batch was given up.
        """
        breakers = [(target, self.breaker(target[0])) for target in waiting]
        with self._changed:
            logged = False
            while True:
                if abandoned.is_set():
                    return None, "abandoned"
                hints = [(target, breaker.wait_hint()) for target, breaker in breakers]
                for target, (seconds, _) in hints:
                    if seconds <= 0:
                        return target, ""
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, "timeout"
                if all(seconds > left and not sooner for _, (seconds, sooner) in hints):
                    return None, "late"
                if not logged:
                    logger.debug(
                        "waiting up to %.1f s for the circuit of %s",
                        left,
                        " or ".join(repr(target[0]) for target in waiting),
                    )
                    logged = True
                self._changed.wait(min([left, *(seconds for _, (seconds, _) in hints)]))

    def _exhausted(
        self, targets: List[Target], errors: List[ProviderKitError], why: str, kwargs: Dict[str, Any]
    ) -> ProviderKitError:
        """The error to raise when no candidate answered: the last provider error, carrying
        every error in ``.errors``; when every candidate refused the call, the refusal (one
        naming each provider's when there were several); a ``ProviderConnectionError`` when no
        call was made."""
        failures = [error for error in errors if isinstance(error, ProviderError)]
        last: Optional[Union[ProviderError, UnsupportedFeatureError]] = failures[-1] if failures else None
        if last is None and errors:
            refusals = [error for error in errors if isinstance(error, UnsupportedFeatureError)]
            last = refusals[0] if len(refusals) == 1 else UnsupportedFeatureError(
                "no candidate provider can take this call: " + "; ".join(str(error) for error in refusals)
            )
        if last is not None:
            last.errors = list(errors)
            return last
        states = "; ".join(str(self.breaker(name).state()) for name, _ in targets)
        if why == "open":
            message = f"no call made: the circuit is open for every candidate provider ({states})"
        elif why == "abandoned":
            message = f"no call made: the batch was given up while every candidate's circuit was open ({states})"
        else:
            patience = self._patience(targets, kwargs)
            when = "stayed open for" if why == "timeout" else "stays open past"
            message = (
                f"no call made: the circuit of every candidate provider {when} this prompt's "
                f"timeout of {patience:g} s ({states})"
            )
        error = ProviderConnectionError(message, provider=targets[0][0])
        error.errors = []
        return error

    # ----------------------------------------------------------------- embed

    def embed(self, texts: Any, targets: List[Target], kwargs: Dict[str, Any]) -> Any:
        """Embed with the first of ``targets`` that answers, as ``complete`` tries them: a
        provider without embeddings refuses (``UnsupportedFeatureError``) and the next is tried."""
        errors: List[ProviderKitError] = []
        for target in targets:
            _admitted, result = self._attempt(target, texts, kwargs, errors, limited=False, method="embed")
            if result is not None:
                answered: Any = result
                return answered if answered.provider == target[0] else answered._replace(provider=target[0])
        raise self._exhausted(targets, errors, "open", kwargs)

    # ----------------------------------------------------------------- stream

    def stream(
        self, prompt: MessagesInput, targets: List[Target], kwargs: Dict[str, Any]
    ) -> Generator[StreamChunk, None, None]:
        """Stream from the first of ``targets`` that sends a first chunk; every chunk names it.

        Until a first chunk arrives a failure falls back as in ``complete``; after it, a failure
        is raised (with ``.errors`` listing the earlier providers' errors and its own). Closing
        the generator closes the provider's stream, and with it the connection.
        """
        errors: List[ProviderKitError] = []
        for name, provider in targets:
            breaker = self.breaker(name)
            if not breaker.allow():
                logger.debug("skipping provider %r: its circuit is open", name)
                continue
            chunks: Optional[Iterator[StreamChunk]] = None
            try:
                chunks = iter(provider.stream(prompt, **kwargs))
                first = next(chunks)
            except StopIteration:  # a provider that sent nothing at all, not even a final chunk
                breaker.record(None)
                self.usage.count(name, _model_of(provider, kwargs), None, failed=False)
                return
            except UnsupportedFeatureError as exc:  # nothing was sent: try the next provider
                self.usage.count(name, _model_of(provider, kwargs), None, failed=True)
                _close_stream(chunks)
                errors.append(exc)
                logger.info("provider %r cannot take this call (%s)", name, describe_error(exc))
                continue
            except BaseException as exc:
                self.usage.count(name, _model_of(provider, kwargs), None, failed=True)
                breaker.record(exc)
                _close_stream(chunks)
                if not isinstance(exc, ProviderError):
                    raise  # a bad argument or an interrupt: no other provider would help
                errors.append(exc)
                logger.info("provider %r failed before its first chunk (%s)", name, describe_error(exc))
                continue
            # The first chunk proves the provider is up: close its circuit (and end a half-open
            # trial) now rather than when the stream ends, however long the caller reads.
            breaker.record(None)
            last, failed = first, False
            try:
                yield first._from(name) if isinstance(first, StreamChunk) else first
                for chunk in chunks:
                    last = chunk
                    yield chunk._from(name) if isinstance(chunk, StreamChunk) else chunk
            except ProviderError as exc:
                failed = True
                breaker.note_failure(exc)
                exc.errors = [*errors, exc]
                raise
            except Exception:
                failed = True
                raise
            finally:
                _close_stream(chunks)
                # Counted when it ends; a stream closed early is a call without usage.
                if failed:
                    self.usage.count(name, _model_of(provider, kwargs), None, failed=True)
                else:
                    self.usage.count_answer(name, last, provider, kwargs)
            return
        raise self._exhausted(targets, errors, "open", kwargs)

    # ----------------------------------------------------------------- map

    def map(
        self,
        items: List[MessagesInput],
        targets: List[Target],
        kwargs: Dict[str, Any],
        *,
        workers: int,
        progress: Union[bool, str, None],
        return_exceptions: bool,
    ) -> List[Any]:
        """``complete`` for every item in ``workers`` threads; results in input order."""
        if not items:
            return []
        from concurrent.futures import ThreadPoolExecutor

        from ._progress import progress_bar

        results: List[Any] = [None] * len(items)
        abandoned = threading.Event()
        bar = progress_bar(len(items), progress)
        executor = ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="provider_kit-map")
        futures: Dict[Any, int] = {}
        try:
            for index, item in enumerate(items):
                futures[executor.submit(self.complete, item, targets, kwargs, batch=abandoned)] = index
            for future in _finished(futures, bar, targets):
                error = future.exception()
                if bar is not None:  # before a raise, so the bar's last line counts the failure
                    bar.update(failed=error is not None)
                if error is not None and not (return_exceptions and isinstance(error, Exception)):
                    raise error
                results[futures[future]] = future.result() if error is None else error
        except KeyboardInterrupt as interrupt:
            # Ctrl-C (in this thread, or raised by a call): the caller gets control back now,
            # with every answer already received (see MapInterrupted).
            raise _interrupted(futures, results, return_exceptions) from interrupt
        finally:
            # Waiting is over (all done, or a failure is being raised): cancel what has not
            # started, wake the prompts waiting for a circuit so they give up, and leave running
            # calls to finish within their own deadlines.
            abandoned.set()
            with self._changed:
                self._changed.notify_all()
            executor.shutdown(wait=False, cancel_futures=True)
            if bar is not None:
                bar.close()
        return results
