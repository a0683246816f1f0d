"""The provider registry: providers by name, the default choice, and the public face of calls.

This module owns the mapping (``register``, lookup with suggestions, what was skipped), the
deterministic default choice, closing and pickling. The rest of the registry's work lives next
door, and the public methods here hand it over:

- ``from_config``: ``_building.py`` turns each config table into a registered provider, refusing
  a mistake in the file and skipping what is absent here (a key, a plugin); ``register`` asks it
  whether an object is a ``Provider``;
- ``health_check_all``: ``_health.py`` runs the checks in parallel within one deadline;
- ``complete``, ``stream``, ``map``, ``circuit``: the candidates are resolved here, and
  ``_routing.py`` owns fallbacks, circuit breakers and batches.

The process-wide registry of ``get_registry`` / ``reset_registry`` is ``_shared_registry.py``'s
(re-exported here).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Literal,
    Optional,
    Sequence,
    Tuple,
    Union,
    overload,
)

from ._building import (
    close_quietly,
    nothing_registered,
    provider_name,
    register_all,
    registry_settings,
    response_cache_setting,
    warn_skipped,
)
from ._options import (
    Validator,
    as_cache_setting,
    as_non_negative_int,
    as_positive_int,
    as_positive_number,
    did_you_mean,
)
from ._plugins import ENTRY_POINT_GROUP, builtin_types
from ._routing import (
    DEFAULT_BATCH_CONCURRENCY,
    DEFAULT_BREAKER_COOLDOWN,
    DEFAULT_BREAKER_THRESHOLD,
    DEFAULT_MAP_WORKERS,
    Router,
    Target,
    batch_items,
    choose_targets,
)
from ._shared_registry import get_registry, reset_registry
from .config import ConfigSource, load_config
from .errors import ConfigError, NoProvidersError, UnknownProviderError
from .types import CircuitState, Completion, HealthReport, MessagesInput, Provider, StreamChunk

if TYPE_CHECKING:
    # map's executor: concurrent.futures is imported only by a map that uses it
    from concurrent.futures import Executor

    from ._call_record import CallRecord
    from ._embeddings import Embeddings  # loaded by the first embed()
    from ._usage import UsageReport

__all__ = [
    "DEFAULT_BATCH_CONCURRENCY",
    "DEFAULT_BREAKER_COOLDOWN",
    "DEFAULT_BREAKER_THRESHOLD",
    "ENTRY_POINT_GROUP",
    "ProviderFactory",
    "ProviderRegistry",
    "get_registry",
    "reset_registry",
]

logger = logging.getLogger("provider_kit")


def _checked(name: str, value: Any, validator: Validator) -> Any:
    """``validator(value)``, or a ``ConfigError`` naming the argument."""
    try:
        return validator(value)
    except ValueError as exc:
        raise ConfigError(f"{name} {exc} (got {value!r})") from None


class ProviderRegistry(Mapping[str, Provider]):
    """Providers by name: a read-only mapping (sorted iteration) plus ``register``.

    ``registry[name]`` and ``get(name)`` raise ``UnknownProviderError`` (a ``KeyError``) with a
    suggestion; ``.skipped`` maps each provider that could not be registered to its reason.
    Registration, lookup, ``complete``, ``stream`` and ``map`` are thread-safe. The registry
    pickles: its locks are rebuilt, and every circuit starts closed in the new process.
    """

    def __init__(
        self,
        providers: Iterable[Provider] = (),
        *,
        default_provider: Optional[str] = None,
        breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD,
        breaker_cooldown: float = DEFAULT_BREAKER_COOLDOWN,
        batch_concurrency: int = DEFAULT_BATCH_CONCURRENCY,
        clock: Callable[[], float] = time.monotonic,
        on_call: Any = None,
    ) -> None:
        """
        :param providers: providers to ``register`` right away.
        :param default_provider: the name ``default`` should return when it is registered.
        :param breaker_threshold: connection errors, timeouts or server errors in a row (through
            ``complete``, ``stream`` or ``map``) that open a provider's circuit; 0 never opens it.
        :param breaker_cooldown: seconds an open circuit skips its provider.
        :param batch_concurrency: the most ``map`` calls in flight against one provider, across
            every ``map`` running at once.
        :param clock: the monotonic clock of the circuit breakers, in seconds (for tests).
        :param on_call: a hook (or a list of them) given every call's ``CallRecord``: see
            ``add_on_call``.
        :raises ConfigError: when one of ``providers`` is invalid or a duplicate, or a setting is
            out of range.
        """
        self._lock = threading.RLock()
        self._providers: Dict[str, Provider] = {}
        self._skipped: Dict[str, str] = {}
        self._default_name = default_provider
        self._warned_default: Optional[str] = None
        self._router = Router(
            threshold=_checked("breaker_threshold", breaker_threshold, as_non_negative_int),
            cooldown=_checked("breaker_cooldown", breaker_cooldown, as_positive_number),
            batch_concurrency=_checked("batch_concurrency", batch_concurrency, as_positive_int),
            clock=clock,
        )
        #: The registry's on_call hooks (a ``_call_record.Hooks``), given to each provider it
        #: holds; None until the first is added.
        self._hooks: Any = None
        if on_call is not None:
            from ._call_record import check_hooks

            for hook in check_hooks(on_call):
                self.add_on_call(hook)
        for provider in providers:
            self.register(provider)

    # ----------------------------------------------------------------- building

    @classmethod
    def from_config(
        cls,
        source: ConfigSource = None,
        *,
        types: Optional[Mapping[str, type]] = None,
        strict: bool = False,
        breaker_threshold: Optional[int] = None,
        breaker_cooldown: Optional[float] = None,
        batch_concurrency: Optional[int] = None,
        clock: Optional[Callable[[], float]] = None,
        on_call: Any = None,
        log: Any = None,
        cache: Any = None,
    ) -> ProviderRegistry:
        """Build every configured provider: refuse a mistake, skip what is absent.

        A mistake in the configuration raises at once, before any provider is kept: an unknown
        option (with the close match), a value of the wrong type or range, a misspelt or
        missing ``type``, an option the provider's class refuses. A provider that cannot work
        here because something it needs is absent (its key variable is not set, its plugin
        is not installed; whatever its ``validate_config()`` refuses) is skipped: a warning on
        the ``provider_kit`` logger, a ``ProviderSkippedWarning`` (so a script or a notebook
        shows it with no logging set up), and its reason in ``.skipped``.

        :param source: as for ``load_config``: a TOML path, a dict, or None to search.
        :param types: extra provider classes by type name, looked up before the built-ins and
            entry points.
        :param strict: raise ``ConfigError`` listing every skipped provider instead of skipping.
        :param breaker_threshold: as for the constructor; None takes the config's top-level
            ``breaker_threshold``, else the default (3).
        :param breaker_cooldown: as for the constructor; None takes the config's top-level
            ``breaker_cooldown``, else the default (30 s).
        :param batch_concurrency: as for the constructor; None means the default (4).
        :param clock: as for the constructor; None means ``time.monotonic``.
        :param on_call: as for the constructor.
        :param log: the call log: True for the default file
            (``$XDG_CACHE_HOME/provider_kit/calls.sqlite3``), a path, a ``CallLog``, or False
            for none; None takes the config's top-level ``log``, else none.
        :param cache: the response cache of every provider whose table sets no
            ``response_cache``: True (a file under the user's cache directory), a file path,
            a ``ResponseCache``, or False for none; None takes the config's top-level ``cache``.
        :raises ConfigError: when the configuration has a mistake (the message names the file,
            the provider and the key), or with ``strict=True`` when a provider was skipped.
        :raises NoProvidersError: when no provider could be registered; the message lists
            every reason.
        """
        extra: Dict[str, Any] = dict(types or {})
        config = load_config(source, known_types={**builtin_types(), **extra})
        if cache is not None:
            _checked("cache", cache, as_cache_setting)
        registry = cls(
            **registry_settings(config, breaker_threshold, breaker_cooldown, batch_concurrency, clock), on_call=on_call
        )
        if log is not None or config.log is not None:
            from ._call_log import open_log

            call_log = open_log(log if log is not None else config.log, config.source)
            if call_log is not None:
                registry.add_on_call(call_log)
        skipped = register_all(registry, config, extra, strict=strict, cache=response_cache_setting(config, cache))
        for name, reason in skipped.items():
            registry._skip(name, reason)
        if not len(registry):
            raise NoProvidersError(nothing_registered(config, skipped))
        warn_skipped(skipped)
        return registry

    def _skip(self, name: str, reason: str) -> None:
        with self._lock:
            self._skipped[name] = reason
        logger.warning("skipping provider %r: %s", name, reason)

    def register(self, provider: Provider, *, replace: bool = False) -> Provider:
        """Validate ``provider`` and add it under ``provider.name``.

        :param replace: replace (and close) a provider already registered under that name.
        :returns: ``provider``.
        :raises ConfigError: when it lacks members of the ``Provider`` protocol, when its
            ``validate_config()`` fails, or when the name is taken and ``replace`` is False.
        """
        name = provider_name(provider)
        provider.validate_config()
        with self._lock:
            old = self._providers.get(name)
            if old is not None and not replace:
                raise ConfigError(
                    f"a provider named {name!r} is already registered; pass replace=True to replace it"
                )
            self._providers[name] = provider
            self._skipped.pop(name, None)
            if self._hooks is not None:
                from ._call_record import add_hook

                add_hook(provider, self._hooks)
            if old is not provider:
                self._router.forget(name)  # a new provider starts with a closed circuit
        if old is not None and old is not provider:
            close_quietly(old)
        return provider

    # ----------------------------------------------------------------- lookup

    def _unknown(self, name: object) -> UnknownProviderError:
        names = self.names()
        message = f"no provider named {name!r}"
        skipped = self._skipped.get(name) if isinstance(name, str) else None
        if skipped is not None:
            message += f" (it was skipped: {skipped})"
        elif isinstance(name, str):
            message += did_you_mean(name, names)
        message += "; available: " + (", ".join(names) or "none")
        return UnknownProviderError(message)

    def __getitem__(self, name: str) -> Provider:
        with self._lock:
            try:
                return self._providers[name]
            except (KeyError, TypeError):
                pass
        raise self._unknown(name)

    def get(self, name: str) -> Provider:  # type: ignore[override]
        """The provider called ``name``.

        Unlike ``Mapping.get`` this never returns None: use ``name in registry`` to test.

        :raises UnknownProviderError: with close matches and the available names.
        """
        return self[name]

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._providers

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._providers)

    def names(self) -> List[str]:
        """The registered names, sorted."""
        with self._lock:
            return sorted(self._providers)

    @property
    def skipped(self) -> Dict[str, str]:
        """Name -> reason for each configured provider that could not be registered (a copy)."""
        with self._lock:
            return dict(self._skipped)

    @property
    def default_provider(self) -> Optional[str]:
        """The configured default name, registered or not."""
        return self._default_name

    # ----------------------------------------------------------------- default

    def _choose_default(self) -> Tuple[str, Optional[str]]:
        """The default name, and why it is not the configured one (None when no warning is due)."""
        names = self.names()
        if not names:
            message = "no providers are registered"
            if self._skipped:
                message += "; skipped: " + "; ".join(
                    f"{name}: {reason}" for name, reason in self._skipped.items()
                )
            raise NoProvidersError(message)
        configured = self._default_name
        if configured is not None and configured in self._providers:
            return configured, None
        chosen = names[0]
        fallback = f"using {chosen!r}, the first of {', '.join(names)} alphabetically"
        if configured is not None:
            skipped = self._skipped.get(configured)
            if skipped is not None:
                return chosen, f"default_provider {configured!r} was skipped ({skipped}); {fallback}"
            return chosen, f"default_provider {configured!r} is not registered; {fallback}"
        if len(names) > 1:
            return chosen, f"no default_provider is configured; {fallback}"
        return chosen, None

    def get_default(self) -> Provider:
        """The configured ``default_provider`` when registered, else the first name alphabetically.

        The fallback logs one warning saying why (once per registry, not per call).

        :raises NoProvidersError: when the registry is empty.
        """
        with self._lock:
            name, why = self._choose_default()
            warn = why is not None and why != self._warned_default
            if warn:
                self._warned_default = why
            provider = self._providers[name]
        if warn:
            logger.warning("%s", why)
        return provider

    @property
    def default(self) -> Provider:
        """Same as ``get_default()``."""
        return self.get_default()

    # ----------------------------------------------------------------- health

    def health_check_all(self, timeout: float = 5.0, names: Optional[Iterable[str]] = None) -> HealthReport:
        """Check every provider (or ``names``) in parallel, within ``timeout`` seconds.

        Each ``health_check(timeout=timeout)`` runs in its own daemon thread. A check still
        running at the deadline (plus a small grace) is reported not ok, "timeout: ..."; a check
        that raises or returns something else is reported not ok; nothing propagates. Every
        status carries the provider's circuit state in ``HealthStatus.circuit``. A check never
        changes that state: a passing one does not close an open circuit, because no built-in
        check sends a request to the model (behind a proxy the health endpoint answers while
        the model behind it fails every call). Only a call that gets an answer closes it.

        :raises ConfigError: when ``timeout`` is not a positive number.
        :raises UnknownProviderError: for a name that is not registered.
        """
        # Imported here, as map's progress bar is: import provider_kit stays light (tests/test_public_api.py).
        from ._health import check_all, check_timeout

        seconds = check_timeout(timeout)
        with self._lock:
            if names is None:
                targets = sorted(self._providers.items())
            else:
                targets = [(name, self[name]) for name in dict.fromkeys(names)]
        return check_all(targets, seconds, lambda name: self._router.breaker(name).state())

    # ----------------------------------------------------------------- circuit breakers

    def circuit(self, name: str) -> CircuitState:
        """The circuit-breaker state of provider ``name`` now.

        :raises UnknownProviderError: for a name that is not registered.
        """
        self.get(name)
        return self._router.breaker(name).state()

    # ----------------------------------------------------------------- usage and on_call hooks

    def usage(self) -> UsageReport:
        """Calls, failures, cache hits, and input, output, cached and reasoning tokens per
        provider and model, of the calls made through this registry (``complete``, ``stream``,
        ``map``: each provider tried counts) since it was built. A stream counts when it ends.

        :returns: a ``UsageReport``: ``(provider, model)`` -> ``UsageTotals``, a table as its
            repr, ``to_dict()`` for JSON.
        """
        return self._router.usage.report()

    def add_on_call(self, hook: Callable[[CallRecord], Any]) -> None:
        """Call ``hook(record)`` with a ``CallRecord`` after every call of every provider this
        registry holds (or registers later): through ``complete``, ``stream`` and ``map``, one
        per provider tried, and straight on ``registry[name]``. The hook is given to each
        provider (a provider shared by two registries reports to both). A hook that raises is
        logged and never breaks the call.

        :raises ConfigError: when ``hook`` is not callable.
        """
        from ._call_record import Hooks, add_hook, check_hook

        check_hook(hook)
        with self._lock:
            first = self._hooks is None
            if first:
                self._hooks = Hooks()
            self._hooks.add(hook)
            providers = list(self._providers.values()) if first else []
        for provider in providers:
            add_hook(provider, self._hooks)

    def remove_on_call(self, hook: Callable[[CallRecord], Any]) -> None:
        """Stop calling ``hook`` (nothing when it was not added)."""
        with self._lock:
            if self._hooks is not None:
                self._hooks.remove(hook)

    @property
    def batch_concurrency(self) -> int:
        """The most ``map`` calls in flight against one provider at once."""
        return self._router.batch_concurrency

    # ----------------------------------------------------------------- calls (see _routing.py)

    def _targets(self, provider: Optional[str], fallbacks: Union[str, Sequence[str], None]) -> List[Target]:
        return choose_targets(self, provider, fallbacks)

    def complete(
        self,
        prompt_or_messages: MessagesInput,
        *,
        provider: Optional[str] = None,
        fallbacks: Union[str, Sequence[str], None] = None,
        **kwargs: Any,
    ) -> Completion:
        """Complete with ``provider`` (default: ``default``), falling back to others on failure.

        Each provider's circuit breaker is consulted: a provider whose circuit is open is skipped,
        and its connection errors, timeouts and server errors count towards opening it.

        :param prompt_or_messages: a prompt, or a list of messages, as for ``Provider.complete``.
        :param provider: the name of the provider to try first; None for ``default``.
        :param fallbacks: names to try in order when the previous provider fails with any
            ``ProviderError`` (``InvalidRequestError`` included: a prompt too long for one
            server's context, or a model one proxy does not serve, may suit the next), or
            ``"healthy"`` for every other registered provider in name order.
        :param kwargs: ``model``, ``system``, ``max_tokens``, ``temperature``, ``stop``,
            ``timeout``, passed to every provider tried. ``timeout`` bounds each attempt, not
            their sum; leave ``model`` unset with fallbacks, so each uses its own.
        :returns: the first ``Completion``; its ``provider`` names the provider that answered.
        :raises UnknownProviderError: for an unknown name, before any call.
        :raises ProviderError: the last provider's error when every provider tried failed. Its
            ``errors`` attribute lists every failure in the order tried, itself last.
        :raises ProviderConnectionError: at once, with ``errors == []``, when every candidate's
            circuit is open: no call is made.
        :raises ConfigError: for malformed arguments, and ``TypeError`` for unknown ones: raised
            at once, not fallen back (they fail before anything is sent, and would everywhere).
        """
        targets = self._targets(provider, fallbacks)
        return self._router.complete(prompt_or_messages, targets, kwargs)

    def embed(
        self,
        texts: Union[str, Sequence[str]],
        *,
        provider: Optional[str] = None,
        fallbacks: Union[str, Sequence[str], None] = None,
        **kwargs: Any,
    ) -> Embeddings:
        """Embed ``texts`` with ``provider`` (default: ``default``), falling back as ``complete``
        does; a provider without embeddings (Anthropic, a plain class with no ``embed``)
        refuses with ``UnsupportedFeatureError`` and the next candidate is tried.

        :param kwargs: ``model``, ``dimensions``, ``timeout``, passed to every provider tried
            (leave ``model`` unset with fallbacks, so each uses its own embedding model).
        :returns: the first ``Embeddings``; its ``provider`` names the provider that answered.
        :raises UnsupportedFeatureError: when no candidate has embeddings.
        :raises ProviderError: as for ``complete``, with ``errors``.
        """
        targets = self._targets(provider, fallbacks)
        return self._router.embed(texts, targets, kwargs)  # type: ignore[no-any-return]

    def stream(
        self,
        prompt_or_messages: MessagesInput,
        *,
        provider: Optional[str] = None,
        fallbacks: Union[str, Sequence[str], None] = None,
        **kwargs: Any,
    ) -> Iterator[StreamChunk]:
        """Stream from ``provider`` (default: ``default``), falling back to others until the
        first chunk arrives.

        Fallbacks and circuit breakers work as for ``complete`` up to the first chunk. After
        it, the stream belongs to the provider that sent it: a later failure is raised, never
        hidden behind a shorter answer. Every chunk's ``provider`` names that provider.

        Names are checked at once; the first request is sent when iteration starts. It is a
        generator: ``close()`` it (or leave a ``for`` loop early) to close the provider's
        stream and its connection at once.

        :param kwargs: as for ``complete``; for a stream ``timeout`` bounds the wait for the
            first chunk and each gap between chunks, per provider tried.
        :returns: an iterator of ``StreamChunk``; the last one carries ``finish_reason`` and
            ``usage``.
        :raises UnknownProviderError: for an unknown name, before any call.
        :raises ProviderError: from iteration: when every provider failed before its first
            chunk (as ``complete`` raises it, with ``errors``), or the failure of the answering
            provider after its first chunk (its ``errors`` lists the earlier providers' errors
            and itself).
        """
        targets = self._targets(provider, fallbacks)
        return self._router.stream(prompt_or_messages, targets, kwargs)

    @overload
    def map(
        self,
        prompts: Iterable[MessagesInput],
        *,
        provider: Optional[str] = ...,
        fallbacks: Union[str, Sequence[str], None] = ...,
        max_workers: Optional[int] = ...,
        progress: Union[bool, str, None] = ...,
        return_exceptions: Literal[False],
        executor: Optional[Executor] = ...,
        **kwargs: Any,
    ) -> List[Completion]: ...

    @overload
    def map(
        self,
        prompts: Iterable[MessagesInput],
        *,
        provider: Optional[str] = ...,
        fallbacks: Union[str, Sequence[str], None] = ...,
        max_workers: Optional[int] = ...,
        progress: Union[bool, str, None] = ...,
        return_exceptions: bool = ...,
        executor: Optional[Executor] = ...,
        **kwargs: Any,
    ) -> List[Union[Completion, Exception]]: ...

    def map(
        self,
        prompts: Iterable[MessagesInput],
        *,
        provider: Optional[str] = None,
        fallbacks: Union[str, Sequence[str], None] = None,
        max_workers: Optional[int] = None,
        progress: Union[bool, str, None] = None,
        return_exceptions: bool = True,
        executor: Optional[Executor] = None,
        **kwargs: Any,
    ) -> Union[List[Completion], List[Union[Completion, Exception]]]:
        """Complete many prompts in parallel threads; the results come back in input order.

        Each prompt goes through ``complete(prompt, provider=provider, fallbacks=fallbacks,
        **kwargs)``. At most ``batch_concurrency`` calls (a registry setting, default 4) are in
        flight against any one provider, counting every ``map`` running at once, so a batch does
        not trip a rate limit by itself.

        Circuit breakers apply, but a prompt is not failed unsent just because a circuit is
        open: while every circuit it could use is open, it waits (without holding a thread busy
        with polling) for the half-open trial, within its timeout (the ``timeout`` argument,
        else the longest of its providers' timeouts). When the trial succeeds it is sent; when
        the circuits cannot admit a call before its timeout it fails with
        ``ProviderConnectionError`` ("no call made: ...").

        :param prompts: prompt strings or message lists (one conversation each).
        :param provider: the provider name; None for ``default``.
        :param fallbacks: as for ``complete``.
        :param max_workers: threads for this call (default 8). With ``executor``: the most
            prompts handed to it and not yet answered; None (the default) hands it every
            prompt at once, as ``Executor.map`` does.
        :param progress: a progress bar on stderr. None (the default) draws it only where someone
            watches: on a terminal or in Jupyter, never into a server's log. True draws it
            always, False never, "text" always and as text even in Jupyter. In Jupyter it is
            tqdm's widget when tqdm and ipywidgets are installed; elsewhere tqdm's text bar when
            tqdm is, else a one-line bar. While calls wait on a rate limit (``rpm``/``tpm``, or
            a server's spent budget) it says how many. It ends as one line: ``provider_kit map:
            20/20 done, 1 failed, 3.2 s``.
        :param return_exceptions: when True, a failed prompt's exception takes its place in the
            result list; when False, the first failure is raised, prompts not yet started are
            cancelled, prompts waiting for a circuit give up, and calls already running finish
            in the background.
        :param executor: a ``concurrent.futures.Executor`` to run the prompts on instead of
            this process's threads (a ``ProcessPoolExecutor``, Dask's ``client.get_executor()``):
            the registry travels pickled, each worker process keeps its own copy (pools,
            circuits, batch slots). A prompt whose worker dies fails with ``ExecutorError``
            and the batch returns. See "Beyond one machine" in docs/scaling.rst.
        :param kwargs: passed to every ``complete`` call (``model``, ``max_tokens``, ...).
        :raises MapInterrupted: on Ctrl-C (a ``KeyboardInterrupt`` in this thread or raised by a
            call), at once: its ``results`` hold every answer received so far (None for a prompt
            not answered yet); prompts not started are cancelled, and calls in flight finish in
            the background. With a response cache, the same ``map`` run again sends only the
            prompts with no answer yet.
        :raises ConfigError: for ``prompts`` that is not a list of prompts, a bad
            ``max_workers``, ``progress`` or ``timeout``, an ``executor`` that is not one, or
            a registry or arguments that do not pickle.
        :raises UnknownProviderError: for an unknown name, before any call.
        """
        from ._progress import check_progress  # only map draws a bar: not imported with provider_kit

        items = batch_items(prompts)
        workers = None if max_workers is None else _checked("max_workers", max_workers, as_positive_int)
        check_progress(progress)
        if kwargs.get("timeout") is not None:
            _checked("timeout", kwargs["timeout"], as_positive_number)
        targets = self._targets(provider, fallbacks)
        if executor is not None:
            from ._executor import check_executor, map_on_executor  # not imported with provider_kit

            check_executor(executor)
            return map_on_executor(
                self, executor, items, [name for name, _ in targets], kwargs,
                window=workers, progress=progress, return_exceptions=return_exceptions,
            )
        if workers is None:
            workers = DEFAULT_MAP_WORKERS
        return self._router.map(
            items, targets, kwargs, workers=workers, progress=progress, return_exceptions=return_exceptions
        )

    # ----------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Close every provider; an error in one is logged and does not stop the others."""
        with self._lock:
            providers = list(self._providers.values())
        for provider in providers:
            close_quietly(provider)

    def __getstate__(self) -> Dict[str, Any]:
        # A lock does not pickle; the router drops its own locks and circuits (every circuit
        # starts closed in the copy).
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def __enter__(self) -> ProviderRegistry:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        with self._lock:
            names = sorted(self._providers)
            skipped = sorted(self._skipped)
        return (
            f"<{type(self).__name__} providers={names!r} "
            f"default_provider={self._default_name!r} skipped={skipped!r}>"
        )


#: Another name for ``ProviderRegistry``, kept for code written against it.
ProviderFactory = ProviderRegistry
