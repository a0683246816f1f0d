"""``provider-kit serve``: the protocol simulators, kept running for a user to try things.

It owns starting one simulator of ``provider_kit.testing`` per built-in provider type (also
for ``provider-kit demo``), the ``provider_kit.toml`` that points at them, the knobs that make
them slow or failing on purpose, and the wait for Ctrl-C or SIGTERM. Argument parsing stays in
``cli``; nothing here reads ``sys.argv``.

The simulators answer ``"echo: <last user message>"``; no real model runs. Those of the types
that need a key check a made-up one (:data:`SIMULATOR_KEY`), so a client that forgets its key
fails as it would against the real API; that key is printed and written on purpose.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, TextIO

from .errors import ConfigError
from .providers import BUILTIN_TYPES
from .testing import LoopbackServer
from .testing._server import RecordedRequest, Reply

#: The protocols simulated, in port order (``--port N`` gives the first N, the next N+1...):
#: every built-in provider type, each with the simulator of its wire.
PROTOCOLS = tuple(BUILTIN_TYPES)
#: A made-up key that the simulators of the types needing a key require. Not a secret: it opens nothing
#: but these local simulators, and is printed so that a pasted config works as is.
SIMULATOR_KEY = "sk-simulator-not-a-real-key"
#: How many recent requests each simulator keeps; a long-running ``serve`` must not grow forever.
KEEP_REQUESTS = 100


class FailureSchedule:
    """Which completion requests fail: every ``every``-th one, and each with probability ``rate``.

    Only requests that ask for a completion (POST) fail; health checks and model listings keep
    answering, as with a real provider whose model is overloaded. Thread-safe.

    :param every: fail the Nth, 2Nth... request (N >= 1), or None.
    :param rate: the probability (0 to 1) that any other request fails.
    :param status: the HTTP status of a failure (400-599), in the protocol's own error body.
    :param seed: seeds the random choices of ``rate``, for a repeatable run.
    :raises ValueError: for a value out of range.
    """

    def __init__(self, every: Optional[int] = None, rate: float = 0.0, status: int = 500,
                 seed: Optional[int] = None) -> None:
        if every is not None and every < 1:
            raise ValueError(f"every must be 1 or more, not {every}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, not {rate}")
        if not 400 <= status <= 599:
            raise ValueError(f"status must be an HTTP error status (400-599), not {status}")
        self.every = every
        self.rate = rate
        self.status = status
        self._random = random.Random(seed)
        self._count = 0
        self._lock = threading.Lock()

    def should_fail(self) -> bool:
        """Count one completion request; True if it is to fail."""
        with self._lock:
            self._count += 1
            if self.every is not None and self._count % self.every == 0:
                return True
            return self.rate > 0 and self._random.random() < self.rate

    def describe(self) -> str:
        parts = []
        if self.every is not None:
            numbers = ", ".join(str(self.every * n) for n in (1, 2, 3))
            parts.append(f"completion requests {numbers}...")
        if self.rate > 0:
            parts.append(f"{self.rate:.0%} of completion requests at random")
        return f"HTTP {self.status} for " + " and ".join(parts) if parts else "no failures"


class _Simulator(LoopbackServer):
    """A LoopbackServer for people rather than tests: scripted failures, a request log, a short memory."""

    def __init__(self, protocol: str, *, failures: FailureSchedule, log: Optional[TextIO] = None,
                 **options: Any) -> None:
        super().__init__(protocol, **options)
        self.failures = failures
        self._log = log
        self._log_lock = threading.Lock()

    def _reply_for(self, request: RecordedRequest) -> Reply:
        if request.method == "POST" and self.failures.should_fail():
            reply = self.error_reply(self.failures.status,
                                     f"simulated failure (provider-kit serve: {self.failures.describe()})")
        else:
            reply = super()._reply_for(request)
        self._write_log(f"{time.strftime('%H:%M:%S')} {self.protocol:<9} {request.method} {request.path} "
                        f"-> {reply.status}")
        return reply

    def _record(self, request: RecordedRequest) -> None:
        super()._record(request)
        with self._lock:
            if len(self._requests) > 2 * KEEP_REQUESTS:
                del self._requests[:-KEEP_REQUESTS]

    def _write_log(self, line: str) -> None:
        if self._log is None:
            return
        try:
            with self._log_lock:
                self._log.write(line + "\n")
                self._log.flush()
        except (OSError, ValueError):
            self._log = None  # the terminal went away; keep serving


@contextlib.contextmanager
def simulators(
    port: int = 0,
    *,
    latency: float = 0.0,
    failures: Optional[FailureSchedule] = None,
    log: Optional[TextIO] = None,
    api_key: str = SIMULATOR_KEY,
) -> Iterator[Dict[str, LoopbackServer]]:
    """Start one simulator per built-in type; yield ``{protocol: server}``; close them all on exit.

    :param port: 0 for free ports chosen by the system, else the first protocol of
        :data:`PROTOCOLS` on ``port``, the next on ``port + 1``, and so on.
    :param latency: seconds each simulator waits before answering and between stream chunks.
    :param failures: the scripted failures; each simulator counts its own requests.
    :param log: where to write one line per request, or None.
    :param api_key: the key the simulators of the types that need one require.
    :raises ConfigError: for a port out of range, or in use (the simulators already started
        are closed).
    """
    last = 65535 - (len(PROTOCOLS) - 1)
    if not 0 <= port <= last:
        raise ConfigError(
            f"port must be 0, or the first of {len(PROTOCOLS)} ports (1 to {last}), not {port}"
        )
    with contextlib.ExitStack() as stack:
        servers: Dict[str, LoopbackServer] = {}
        for offset, protocol in enumerate(PROTOCOLS):
            schedule = FailureSchedule() if failures is None else FailureSchedule(
                failures.every, failures.rate, failures.status,
                seed=None if failures.rate == 0 else failures._random.randrange(2**32))
            server = _Simulator(protocol, failures=schedule, log=log, latency=latency,
                                api_key=api_key if BUILTIN_TYPES[protocol].REQUIRES_KEY else None,
                                port=port + offset if port else 0)
            try:
                servers[protocol] = stack.enter_context(server)
            except OSError as error:  # in use, or below 1024 without the right to bind it
                raise ConfigError(f"cannot listen on 127.0.0.1:{port + offset} for the {protocol} simulator: "
                                  f"{error.strerror or error}; choose another --port, or 0 for free ports") from error
        yield servers


def simulator_config(servers: Mapping[str, LoopbackServer], *, default: Optional[str] = None) -> Dict[str, Any]:
    """The provider_kit configuration (the dict shape ``load_config`` takes) for ``servers``;
    ``default`` names the default provider (None: the first server's)."""
    providers: Dict[str, Dict[str, Any]] = {}
    for protocol, server in servers.items():
        options: Dict[str, Any] = {"type": protocol, "base_url": server.base_url, "model": server.models[0]}
        if server.api_key is not None:
            options["api_key"] = server.api_key
        providers[protocol] = options
    return {"default_provider": default or next(iter(providers), None), "providers": providers}


def render_toml(config: Mapping[str, Any], comments: Sequence[str] = ()) -> str:
    """``config`` (top-level strings and ``providers`` tables of scalars) as TOML text."""
    lines = [f"# {comment}" if comment else "#" for comment in comments]
    for key, value in config.items():
        if key != "providers":
            lines.append(f"{key} = {_toml_value(value)}")
    for name, options in config.get("providers", {}).items():
        lines.append("")
        lines.append(f"[providers.{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in options.items())
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    import json

    # A JSON string with non-ASCII kept as is is a valid TOML basic string (same escapes).
    return json.dumps(str(value), ensure_ascii=False)


def _config_comments(failures: FailureSchedule, latency: float) -> List[str]:
    return [
        f"provider_kit.toml for the local simulators of `provider-kit serve` (pid {os.getpid()}).",
        f"They speak the {simulated_type_names()} wire protocols and answer",
        '"echo: <your prompt>"; no real model runs. The api_key values are made-up test keys that',
        "only these simulators check; they are printed on purpose and open nothing else.",
        f"Latency: {latency:g} s before each answer and between stream chunks. Failures: {failures.describe()}.",
        "",
    ]


def simulated_type_names() -> str:
    """The simulated types for people: "OpenAI, Anthropic and Ollama"."""
    names = [BUILTIN_TYPES[protocol].display_name() for protocol in PROTOCOLS]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


class _Stop(BaseException):
    """Raised in the main thread by SIGINT or SIGTERM to end ``serve`` (not an error)."""


def run_serve(
    out: TextIO,
    err: TextIO,
    *,
    port: int = 0,
    latency: float = 0.0,
    failures: Optional[FailureSchedule] = None,
    write: Optional[str] = None,
    quiet: bool = False,
) -> int:
    """Run the simulators until SIGINT (Ctrl-C) or SIGTERM; returns the exit code (0).

    Writes the config to ``write`` (atomically) or to ``out``, then a line ``# ready: ...`` on
    ``out``. Everything written to ``out`` is TOML (the rest are comments), so
    ``provider-kit serve > provider_kit.toml`` works too. Requests are logged on ``err``.

    :raises ConfigError: for a bad or busy ``port``, or a ``write`` path that cannot be written.
    """
    failures = failures or FailureSchedule()
    with _signals_raise_stop() as stopped, \
            simulators(port, latency=latency, failures=failures, log=None if quiet else err) as servers:
        text = render_toml(simulator_config(servers), _config_comments(failures, latency))
        if write:
            _write_atomically(write, text)
        else:
            out.write(text + "\n")
        for protocol, server in servers.items():
            out.write(f"# {protocol:<9} simulator at {server.base_url}\n")
        where = f"config written to {write}" if write else "config above"
        out.write(f"# ready: {where}; Ctrl-C to stop\n")
        out.flush()
        try:
            while not stopped.is_set():
                time.sleep(3600)  # a signal interrupts the sleep by raising _Stop
        except _Stop:
            pass
    if not quiet:
        err.write("provider-kit serve: stopped\n")
    return 0


@contextlib.contextmanager
def _signals_raise_stop() -> Iterator[threading.Event]:
    """While inside: the first SIGINT or SIGTERM raises :class:`_Stop` in the main thread; later
    ones are ignored, so a second Ctrl-C cannot interrupt the shutdown half way."""
    stopped = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if not stopped.is_set():
            stopped.set()
            raise _Stop(signum)

    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("serve must run in the main thread: only it receives SIGINT and SIGTERM")
    installed = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopped
    except _Stop:
        pass  # arrived while starting or stopping the simulators: stop all the same
    finally:
        for signum, previous in installed.items():
            signal.signal(signum, previous)


def _write_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a reader never sees half a config."""
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except OSError as error:
        raise ConfigError(f"cannot write the config to {path}: {error.strerror or error}") from error
    finally:
        with contextlib.suppress(OSError):
            os.remove(temporary)
