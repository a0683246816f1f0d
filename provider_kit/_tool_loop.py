"""``run_tools``: call the model, run the tools it asks for, send the results back, until it
answers.

The target is duck-typed: anything with ``complete(messages, tools=..., timeout=..., **kwargs)``
(a provider, or a ``ProviderRegistry``, whose fallbacks then apply to every turn). Nothing here
knows a wire format: each provider writes the neutral ``Tool``, assistant turns and
``ToolResult`` values in its own shape.

Where things run, and why:

- the hooks (``before_call``, ``after_call``) run in the caller's thread, one call after the
  other in the model's order: a Django view's hook may use ``request`` and the ORM as anywhere
  in the view, and a hook that raises stops the loop before any tool of that turn has started;
- the tools run in worker threads, every call of a turn at once (at most ``MAX_TOOL_THREADS``),
  so that the deadline covers them: the caller waits for them only until the deadline. The
  threads are plain daemon threads started for the turn, not a pool: a tool that hangs past
  the deadline is abandoned (it ends when its function returns), never joined, and keeps
  neither a Jupyter kernel nor the interpreter's exit waiting, and a thread is never left
  behind once its tool has returned. Each runs in a copy of the caller's ``contextvars``.

A tool's failure is the model's to read (an error result with the exception's class and
message, secrets masked, never a traceback); a hook's failure or a provider's is the caller's
(raised). ``concurrent.futures`` and ``inspect`` are imported on first use.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from ._messages import Message, MessagesInput, ToolResult, as_messages
from ._secrets import Redactor, is_secret_name
from ._tools import Tool, ToolCall, as_tools
from .errors import ConfigError, MaxTurnsExceededError, ResponseFormatError, ToolLoopTimeoutError
from .types import Completion, StreamChunk, Usage

__all__ = ["DEFAULT_MAX_TURNS", "MAX_TOOL_THREADS", "run_tools"]

logger = logging.getLogger("provider_kit")

#: Model calls one ``run_tools`` makes at most, by default.
DEFAULT_MAX_TURNS = 8
#: Calls of one turn run at once at most; the rest start as those end.
MAX_TOOL_THREADS = 8
#: How much of an exception's message the model is shown.
_MESSAGE_LIMIT = 1000
#: Environment values shorter than this are not searched for in error messages.
_MIN_ENV_SECRET = 8

BeforeCall = Callable[[ToolCall], Any]
AfterCall = Callable[[ToolCall, ToolResult], Optional[ToolResult]]


def run_tools(
    target: Any,
    prompt_or_messages: MessagesInput,
    *,
    tools: Sequence[Any],
    max_turns: int = DEFAULT_MAX_TURNS,
    timeout: Optional[float] = None,
    before_call: Optional[BeforeCall] = None,
    after_call: Optional[AfterCall] = None,
    on_chunk: Optional[Callable[[StreamChunk], Any]] = None,
    **call_kwargs: Any,
) -> Completion:
    """Let the model use ``tools`` until it answers; return that answer.

    Each turn calls ``target.complete(messages, tools=tools, timeout=<time left>, **call_kwargs)``;
    when the completion asks for tools, its ``message`` and one ``ToolResult`` per call (in the
    calls' order) are appended and the model is called again.

    :param target: a provider or a ``ProviderRegistry`` (anything with ``complete``).
    :param prompt_or_messages: a prompt or a conversation, as for ``complete`` (``system=`` in
        ``call_kwargs`` becomes its first message, so the exchange returned is whole).
    :param tools: functions, ``Tool`` values with a ``function``, or both; a tool without a
        function cannot be run.
    :param max_turns: the most model calls.
    :param timeout: seconds for the whole loop, tool runs included: each model call gets the
        time left, and tools are waited for only until it is spent. None: each model call has
        its provider's timeout and tools are waited for as long as they run.
    :param before_call: ``before_call(call)``, before each call that can run: return None or
        True to run it, False to refuse it (the model is told so), or any other value to answer
        it with that value instead of running the tool (a ``ToolResult`` is sent as it is).
        Raising stops the loop (the exception propagates).
    :param after_call: ``after_call(call, result)`` for every result, error results included;
        a ``ToolResult`` returned replaces it, None keeps it.
    :param on_chunk: stream every model call: ``on_chunk(chunk)`` gets each ``StreamChunk`` as
        it arrives (text, reasoning, the call being built), in the caller's thread; each turn's
        completion is assembled from its chunks (``target.stream`` instead of ``complete``).
    :param call_kwargs: passed to every ``complete`` call (``model``, ``provider``,
        ``fallbacks``, ``tool_choice``...). A ``tool_choice`` that forces a call ("required" or
        a name) applies to the first call only, or the model could never answer.
    :returns: the model's final ``Completion``, its ``messages`` the whole exchange (the
        prompt, each assistant turn and tool result, and this answer last), its ``usage`` the
        sum over every model call of the loop and ``latency_s`` the loop's wall time.
    :raises ConfigError: for bad arguments (a tool with no function, a ``max_turns`` or
        ``timeout`` that is not positive), before any call; and for a hook that returns a
        result answering another call.
    :raises MaxTurnsExceededError: when the model still calls tools after ``max_turns``
        calls; its ``messages`` end with the results of those calls.
    :raises ToolLoopTimeoutError: when ``timeout`` passes while tools run, or before the next
        model call; its ``messages`` are the exchange so far.
    :raises ProviderError: a model call's failure, as ``complete`` raises it
        (``ProviderTimeoutError`` when the call runs out of the time left).
    """
    if not callable(getattr(target, "complete", None)):
        raise ConfigError(f"run_tools: target must be a provider or a registry (with complete()), "
                          f"got {type(target).__name__}")
    runnable = _runnable_tools(tools)
    if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
        raise ConfigError(f"run_tools: max_turns must be a positive integer, got {max_turns!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not 0 < timeout < math.inf):
        raise ConfigError(f"run_tools: timeout must be a positive number of seconds, got {timeout!r}")
    for name, hook in (("before_call", before_call), ("after_call", after_call), ("on_chunk", on_chunk)):
        if hook is not None and not callable(hook):
            raise ConfigError(f"run_tools: {name} must be a function, got {type(hook).__name__}")
    messages = as_messages(prompt_or_messages, call_kwargs.pop("system", None))
    if on_chunk is not None and not callable(getattr(target, "stream", None)):
        raise ConfigError(f"run_tools: on_chunk needs a target that streams, {type(target).__name__} has no stream()")
    loop = _Loop(target, runnable, before_call, after_call, timeout, on_chunk)
    return loop.run(messages, max_turns, call_kwargs)


def _runnable_tools(tools: Any) -> Tuple[Tool, ...]:
    """``tools=`` checked as every provider checks it, each with a function to run.

    :raises ConfigError: for a tool that has none (a dict, or a ``Tool`` without ``function``).
    """
    checked = as_tools(tools, "run_tools:")
    if not checked:
        raise ConfigError("run_tools: tools must not be empty")
    for index, tool in enumerate(checked):
        if tool.function is None:
            raise ConfigError(f"run_tools: tools[{index}] ({tool.name!r}) has no function to run: pass the "
                              "function itself, or Tool(..., function=...)")
    return checked


class _Job:
    """A call that will run: its tool's function and the arguments, checked."""

    __slots__ = ("arguments", "call", "function", "index")

    def __init__(self, index: int, call: ToolCall, function: Callable[..., Any], arguments: Dict[str, Any]) -> None:
        self.index = index
        self.call = call
        self.function = function
        self.arguments = arguments


class _Loop:
    """One ``run_tools`` call's state: the tools by name, the hooks and the deadline."""

    def __init__(self, target: Any, tools: Tuple[Tool, ...], before_call: Optional[BeforeCall],
                 after_call: Optional[AfterCall], timeout: Optional[float],
                 on_chunk: Optional[Callable[[StreamChunk], Any]] = None) -> None:
        self.target = target
        self.on_chunk = on_chunk
        self.tools = tools
        self.by_name = {tool.name: tool for tool in tools}
        self.before_call = before_call
        self.after_call = after_call
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self._redactor: Optional[Redactor] = None
        self._signatures: Dict[str, Any] = {}

    # ----------------------------------------------------------------- turns

    def run(self, messages: List[Message], max_turns: int, kwargs: Dict[str, Any]) -> Completion:
        started = time.monotonic()
        usages: List[Usage] = []
        for turn in range(1, max_turns + 1):
            left = self._time_left()
            if left is not None and left <= 0:
                raise ToolLoopTimeoutError(f"run_tools: the {self.timeout!r} s timeout passed before model call "
                                           f"{turn}", messages=messages)
            if left is not None:
                kwargs["timeout"] = left
            completion = self._call(list(messages), kwargs)
            usages.append(completion.usage)
            messages.append(completion.message)
            if not completion.tool_calls:
                return completion._replace(messages=messages, usage=_total(usages),
                                           latency_s=time.monotonic() - started)
            if kwargs.get("tool_choice") not in (None, "auto", "none"):
                del kwargs["tool_choice"]  # forced once: forced every turn, the model could never answer
            messages.extend(self._answer(completion.tool_calls, messages))
        names = ", ".join(call.name for call in completion.tool_calls)
        raise MaxTurnsExceededError(f"run_tools: the model still called tools ({names}) after max_turns="
                                    f"{max_turns} calls", messages=messages)

    def _call(self, messages: List[Message], kwargs: Dict[str, Any]) -> Completion:
        """One model call: ``complete``, or with ``on_chunk`` a stream whose chunks go to it and
        are assembled into the same ``Completion`` (the final chunk carries the calls)."""
        if self.on_chunk is None:
            completion: Completion = self.target.complete(messages, tools=self.tools, **kwargs)
            return completion
        started = time.monotonic()
        texts: List[str] = []
        thoughts: List[str] = []
        final: Optional[StreamChunk] = None
        stream = self.target.stream(messages, tools=self.tools, **kwargs)
        try:
            for chunk in stream:
                self.on_chunk(chunk)
                texts.append(chunk.text)
                thoughts.append(chunk.reasoning)
                final = chunk
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        if final is None:
            raise ResponseFormatError("run_tools: the stream ended without a chunk")
        return Completion("".join(texts), kwargs.get("model"), final.provider or "", final.finish_reason,
                          final.usage, latency_s=time.monotonic() - started, data=final.data, parsed=final.parsed,
                          reasoning="".join(thoughts) or None, provider_state=final.provider_state,
                          tool_calls=final.tool_calls)

    def _time_left(self) -> Optional[float]:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _answer(self, calls: Sequence[ToolCall], messages: List[Message]) -> List[ToolResult]:
        """One result per call, in the calls' order: hooks and checks here, tools in threads."""
        results: List[Optional[ToolResult]] = [None] * len(calls)
        jobs: List[_Job] = []
        for index, call in enumerate(calls):
            ready = self._prepare(index, call)
            if isinstance(ready, _Job):
                jobs.append(ready)
            else:
                results[index] = ready
        if jobs:
            for job, result in self._run(jobs, messages):
                results[job.index] = result
        answered: List[ToolResult] = []
        for call, maybe in zip(calls, results):
            assert maybe is not None
            result = maybe
            if self.after_call is not None:
                replacement = self.after_call(call, result)
                if replacement is not None:
                    result = self._checked_result(replacement, call, "after_call")
            answered.append(result)
        return answered

    def _prepare(self, index: int, call: ToolCall) -> Union[_Job, ToolResult]:
        """The job that runs ``call``, or its result when it cannot or need not run."""
        tool = self.by_name.get(call.name)
        if tool is None:
            names = ", ".join(repr(name) for name in self.by_name)
            return call.result(f"unknown tool {call.name!r}; the tools are {names}", is_error=True)
        problem = call.arguments_error
        if problem is not None:
            return call.result(f"invalid arguments: {self._redact(problem)}", is_error=True)
        arguments = call.arguments
        assert tool.function is not None
        problem = self._binding_problem(tool, arguments)
        if problem is not None:
            return call.result(f"invalid arguments: {self._redact(problem)}", is_error=True)
        if self.before_call is not None:
            verdict = self.before_call(call)
            if verdict is False:
                return call.result(f"the call was refused: {call.name} was not allowed to run", is_error=True)
            if verdict is not None and verdict is not True:
                return self._checked_result(verdict, call, "before_call")
        return _Job(index, call, tool.function, arguments)

    def _binding_problem(self, tool: Tool, arguments: Mapping[str, Any]) -> Optional[str]:
        """Why the function cannot take ``arguments`` (a missing or unknown parameter), or None."""
        signature = self._signatures.get(tool.name)
        if signature is None:
            import inspect  # slow to import; only a loop that runs tools needs it

            try:
                signature = inspect.signature(tool.function)  # type: ignore[arg-type]
            except (TypeError, ValueError):  # some builtins have none: let the call tell
                signature = False
            self._signatures[tool.name] = signature
        if signature is False:
            return None
        try:
            signature.bind(**arguments)  # type: ignore[union-attr]
        except TypeError as error:
            return str(error)
        return None

    @staticmethod
    def _checked_result(value: Any, call: ToolCall, hook: str) -> ToolResult:
        if not isinstance(value, ToolResult):
            if hook == "after_call":
                raise ConfigError(f"run_tools: after_call must return a ToolResult or None, got {type(value).__name__}")
            return call.result(value)
        if value.tool_call_id != call.id:
            raise ConfigError(f"run_tools: {hook} returned a result for call {value.tool_call_id!r}, "
                              f"not for {call.id!r} ({call.name})")
        return value

    # ----------------------------------------------------------------- running tools

    def _run(self, jobs: List[_Job], messages: List[Message]) -> List[Tuple[_Job, ToolResult]]:
        """Run the jobs in daemon threads and wait for them until the deadline."""
        import contextvars
        from concurrent.futures import Future, wait

        futures: List[Future[Any]] = [Future() for _ in jobs]
        queue = [(job, future, contextvars.copy_context()) for job, future in zip(jobs, futures)]
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    if not queue:
                        return
                    job, future, context = queue.pop(0)
                if not future.set_running_or_notify_cancel():
                    continue  # the deadline passed before it started
                try:
                    value = context.run(job.function, **job.arguments)
                except BaseException as error:  # handed to the caller's thread, which decides
                    future.set_exception(error)
                else:
                    future.set_result(value)

        for number in range(min(len(jobs), MAX_TOOL_THREADS)):
            threading.Thread(target=work, name=f"provider_kit-tool-{number}", daemon=True).start()
        left = self._time_left()
        _, pending = wait(futures, timeout=None if left is None else max(left, 0.0))
        if pending:
            for future in pending:
                future.cancel()  # one not started yet never starts; a running one is abandoned
            running = ", ".join(job.call.name for job, future in zip(jobs, futures) if future in pending)
            raise ToolLoopTimeoutError(f"run_tools: the {self.timeout!r} s timeout passed while tools ran "
                                       f"({running} still running, abandoned)", messages=messages)
        return [(job, self._result_of(job, future)) for job, future in zip(jobs, futures)]

    def _result_of(self, job: _Job, future: Any) -> ToolResult:
        error = future.exception()
        if error is None:
            value = future.result()
            if isinstance(value, ToolResult):
                return value if value.tool_call_id == job.call.id else value._replace(tool_call_id=job.call.id)
            return job.call.result(value)
        if not isinstance(error, Exception):
            raise error  # SystemExit, KeyboardInterrupt... raised in a tool: the caller's to handle
        text = self._failure(error)
        logger.warning("run_tools: tool %r failed, the model is told: %s", job.call.name, text)
        return job.call.result(text, is_error=True)

    # ----------------------------------------------------------------- secrets

    def _failure(self, error: BaseException) -> str:
        """The exception as the model sees it: class and message, secrets masked, no traceback."""
        try:
            message = str(error)
        except Exception:  # a broken __str__ must not break the loop
            message = ""
        message = self._redact(message)
        text = f"{type(error).__name__}: {message}" if message else type(error).__name__
        return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 3] + "..."

    def _redact(self, text: str) -> str:
        if self._redactor is None:
            self._redactor = _redactor_of(self.target)
        return self._redactor.redact(text)


def _redactor_of(target: Any) -> Redactor:
    """The secrets a tool's error message must not show: those the target's providers hide in
    their own messages (their keys, their base URLs' passwords), any ``api_key`` they hold,
    and the values of secret-named environment variables (``OPENAI_API_KEY``...), which a
    tool may have read."""
    providers = [target]
    names = getattr(target, "names", None)
    if callable(names):  # a registry: every provider it holds
        try:
            providers = [target.get(name) for name in names()]
        except Exception:  # a third-party registry-like object: what it is itself
            providers = [target]
    secrets: List[str] = []
    for provider in providers:
        redactor = getattr(getattr(provider, "_transport", None), "redactor", None)
        if isinstance(redactor, Redactor):
            secrets.extend(redactor.secrets)
        key = getattr(provider, "api_key", None)
        if isinstance(key, str):
            secrets.append(key)
    secrets.extend(value for name, value in os.environ.items()
                   if is_secret_name(name) and len(value) >= _MIN_ENV_SECRET)
    # Longest first: a key that contains another is hidden whole.
    return Redactor(sorted(secrets, key=len, reverse=True))


def _total(usages: Sequence[Usage]) -> Usage:
    """The usage of every model call of the loop added up, field by field (a count no call
    reported stays None)."""
    if len(usages) == 1:
        return usages[0]
    fields = ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens",
              "cache_creation_input_tokens", "reasoning_tokens")
    sums: Dict[str, Optional[int]] = {}
    for field in fields:
        counts = [getattr(usage, field) for usage in usages if getattr(usage, field) is not None]
        sums[field] = sum(counts) if counts else None
    return Usage(**sums)
