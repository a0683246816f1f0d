"""``registry.map(..., executor=...)``: a batch on any ``concurrent.futures.Executor`` (a
``ProcessPoolExecutor``, Dask's ``Client.get_executor()``...), past one process or one machine.

Two halves, one per side of the executor:

- the parent (``map_on_executor``) pickles the registry once, hands the executor one task per
  prompt (all at once, as ``Executor.map`` does, or at most ``window`` at a time), draws the
  progress bar as answers come back and puts them in input order. A task that comes back
  without an answer (its worker died, the executor broke or was shut down) is that prompt's
  ``ExecutorError``; once the executor refuses new work, the prompts not yet handed over fail
  with one too (``sent=False``), and the batch returns.
- a worker (``run_prompt``) unpickles each distinct registry once per process and keeps it, so
  its providers open their connection pools once and reuse them for every later prompt (the
  copy's circuits, batch slots and pools are its own: pickling drops them). A prompt runs as
  one of a ``map`` batch there: it takes its provider's batch slot and waits for a half-open
  circuit within its timeout. Its error comes back as a value, not raised, so that the parent
  tells a prompt that failed from a task that was lost.

provider_kit never re-sends a lost prompt itself: a prompt that crashes its worker would crash
another one, and it may have been sent (and billed) already. An executor that reschedules the
work of a dead worker (Dask does, up to its ``allowed-failures``) does so before the parent
hears of it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from ._plugins import describe_error
from .errors import ConfigError, ExecutorError, ProviderKitError
from .types import MessagesInput

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

    from .registry import ProviderRegistry

__all__ = ["map_on_executor", "run_prompt"]

#: Registries a worker process keeps (the most recently used): enough for a few registries
#: used in turn, without holding every pool a long-lived cluster worker ever opened.
_KEEP = 4


class Shipment:
    """A pickled registry on its way to the workers, with its digest (the key a worker keeps
    the copy under). Its repr never shows the bytes: they hold the providers' keys, and an
    executor may log a task's arguments."""

    __slots__ = ("data", "digest")

    def __init__(self, data: bytes, digest: str) -> None:
        self.data = data
        self.digest = digest

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return Shipment, (self.data, self.digest)

    def __repr__(self) -> str:
        return f"<provider_kit registry, {len(self.data)} bytes pickled>"

    def __dask_tokenize__(self) -> str:
        # Dask names a task by hashing its arguments: the digest saves hashing the bytes.
        return self.digest


# ----------------------------------------------------------------------------- worker side

_kept: OrderedDict[str, ProviderRegistry] = OrderedDict()
_kept_lock = threading.Lock()
_kept_pid = os.getpid()
#: The "batch abandoned" event of the prompts run here: the parent cannot set it across the
#: executor, so a prompt waiting for a circuit gives up at its own timeout.
_never = threading.Event()


def _registry_for(shipment: Shipment) -> ProviderRegistry:
    """This process's copy of the shipped registry, unpickled on first use and kept."""
    global _kept_pid
    with _kept_lock:
        if _kept_pid != os.getpid():
            # A forked child must not share its parent's copies (and their sockets).
            _kept.clear()
            _kept_pid = os.getpid()
        registry = _kept.get(shipment.digest)
        if registry is None:
            registry = pickle.loads(shipment.data)
            _kept[shipment.digest] = registry
            while len(_kept) > _KEEP:
                # Not closed: a thread may still be using it; its pools go with the last reference.
                _kept.popitem(last=False)
        else:
            _kept.move_to_end(shipment.digest)
        return registry


def _portable(error: Exception) -> Exception:
    """``error``, or a ``ProviderKitError`` saying what it was when it would not pickle back."""
    try:
        pickle.dumps(error)
    except Exception:
        return ProviderKitError(describe_error(error))
    return error


def run_prompt(
    shipment: Shipment, names: Sequence[str], prompt: MessagesInput, kwargs: Dict[str, Any], task: str
) -> Tuple[bool, Any]:
    """Run one prompt of a batch in this (worker) process: ``(True, completion)`` or
    ``(False, error)``. An interrupt or a dying process is not caught: that is the task lost.

    ``task`` (the batch's and the prompt's number) is unused here: it makes every task unlike
    any other, for an executor that runs identical calls once (Dask's ``client.submit`` is
    ``pure`` by default), which would give a prompt repeated to sample answers one answer.
    """
    registry = _registry_for(shipment)
    targets = [(name, registry.get(name)) for name in names]
    try:
        return True, registry._router.complete(prompt, targets, kwargs, batch=_never)
    except Exception as exc:
        return False, _portable(exc)


# ----------------------------------------------------------------------------- parent side


def _shipment(registry: ProviderRegistry, kwargs: Dict[str, Any]) -> Shipment:
    """The registry pickled once for every task; a registry or arguments that cannot travel
    are refused before anything is handed to the executor."""
    try:
        data = pickle.dumps(registry, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise ConfigError(
            f"the registry cannot be sent to the executor's workers: it does not pickle ({describe_error(exc)}); "
            "a provider holding a lambda, an open file or a lock cannot travel"
        ) from None
    try:
        pickle.dumps(kwargs, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise ConfigError(
            f"map's keyword arguments cannot be sent to the executor's workers: they do not pickle "
            f"({describe_error(exc)})"
        ) from None
    return Shipment(data, hashlib.sha256(data).hexdigest())


def check_executor(executor: Any) -> None:
    """Refuse what is not a ``concurrent.futures.Executor`` (Dask's ``Client`` itself, say)."""
    from concurrent.futures import Executor

    if not isinstance(executor, Executor):
        raise ConfigError(
            f"executor must be a concurrent.futures.Executor (a ProcessPoolExecutor, or Dask's "
            f"client.get_executor()), not {type(executor).__name__}"
        )


def _lost(exc: BaseException) -> ExecutorError:
    error = ExecutorError(
        f"no answer came back from the executor for this prompt (its worker died, or the executor broke "
        f"or was shut down); it may have been sent: {describe_error(exc)}",
        sent=True,
    )
    error.__cause__ = exc
    return error


def _refused(exc: BaseException) -> ExecutorError:
    error = ExecutorError(
        f"not sent: the executor takes no more work ({describe_error(exc)})", sent=False
    )
    error.__cause__ = exc
    return error


def _outcome(future: Future[Tuple[bool, Any]]) -> Tuple[bool, Any]:
    """(answered, the completion or the prompt's error); a lost task as its ``ExecutorError``."""
    from concurrent.futures import CancelledError

    try:
        ok, value = future.result()
    except (Exception, CancelledError) as exc:  # CancelledError is not an Exception on 3.8+
        return False, _lost(exc)
    return ok, value


def _interrupted(pending: Dict[Future[Tuple[bool, Any]], int], results: List[Any],
                 return_exceptions: bool) -> BaseException:
    """The ``MapInterrupted`` of a batch stopped by Ctrl-C: ``results`` with every prompt back
    by now filled in (a failure only with ``return_exceptions``)."""
    from .errors import MapInterrupted
    from .types import Completion

    for future, index in pending.items():
        if results[index] is None and future.done() and not future.cancelled():
            ok, value = _outcome(future)
            if ok or (return_exceptions and isinstance(value, Exception)):
                results[index] = value
    answered = sum(isinstance(result, Completion) for result in results)
    return MapInterrupted(
        f"map interrupted: {answered} of {len(results)} prompts answered (their answers are in .results)",
        results=results,
    )


def map_on_executor(
    registry: ProviderRegistry,
    executor: Executor,
    items: List[MessagesInput],
    names: List[str],
    kwargs: Dict[str, Any],
    *,
    window: Optional[int],
    progress: Union[bool, str, None],
    return_exceptions: bool,
) -> List[Any]:
    """Each of ``items`` through the providers ``names`` (in order, as fallbacks) on
    ``executor``'s workers; results in input order, as ``Router.map`` returns them.

    :param window: the most prompts handed to the executor and not yet back; None: all at once.
    """
    if not items:
        return []
    from concurrent.futures import FIRST_COMPLETED, wait

    from ._progress import progress_bar

    shipment = _shipment(registry, kwargs)
    batch = uuid.uuid4().hex
    total = len(items)
    limit = total if window is None else window
    results: List[Any] = [None] * total
    pending: Dict[Future[Tuple[bool, Any]], int] = {}
    refusal: Optional[BaseException] = None
    handed = 0  # items[:handed] were given to the executor
    bar = progress_bar(total, progress)

    def settle(index: int, ok: bool, value: Any) -> None:
        if bar is not None:  # before a raise, so the bar's last line counts the failure
            bar.update(failed=not ok)
        if not ok and not (return_exceptions and isinstance(value, Exception)):
            raise value
        results[index] = value

    try:
        while handed < total or pending:
            while refusal is None and handed < total and len(pending) < limit:
                try:
                    future = executor.submit(run_prompt, shipment, names, items[handed], kwargs, f"{batch}-{handed}")
                except Exception as exc:  # shut down, or broken by a dead worker
                    refusal = exc
                    break
                pending[future] = handed
                handed += 1
            if refusal is not None and not pending:
                for index in range(handed, total):
                    settle(index, False, _refused(refusal))
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=pending.__getitem__):
                settle(pending.pop(future), *_outcome(future))
    except KeyboardInterrupt as interrupt:
        # Ctrl-C: control comes back now, with every answer already back (as Router.map).
        raise _interrupted(pending, results, return_exceptions) from interrupt
    finally:
        # All answered, or a failure or an interrupt is being raised: drop what has not
        # started; tasks already running finish on their workers within their own deadlines.
        for future in pending:
            future.cancel()
        if bar is not None:
            bar.close()
    return results
