"""``FakeProvider``: a scripted, in-memory provider for tests of code that uses provider_kit.

It satisfies the ``Provider`` protocol without inheriting from anything, so it exercises the
same duck-typed path as a third-party provider. It imports only value and checking modules
from the package (``errors``, ``types``, ``_tools``, ``_call_args``: the argument check every
real provider makes...), and does no I/O.

Calls take every argument a real provider takes and check them the same way. A call with
``schema=`` or ``json=True`` gets ``data``/``parsed`` built from the reply's text by the step
the real providers use, so a scripted reply that is not the JSON asked for fails as production
would; a reply may be scripted as a dict or list (sent as its JSON text). A scripted
``Completion`` carrying ``reasoning`` streams it in ``reasoning`` chunks before the text.

Tools: ``FakeProvider.tool_call_reply([("add", {"a": 1, "b": 2})])`` scripts a reply that
calls tools (streamed, as the real providers stream it: a chunk per fragment of each call, the
assembled calls on the last chunk). Every conversation it is sent is checked as the real APIs
check it: an assistant turn's calls must each be answered by a ``ToolResult`` before the next
other message, and a result must answer a call of the turn before it; else the call raises
``InvalidRequestError`` (status 400), as their 400s do.

Example::

    from provider_kit.testing import FakeProvider

    fake = FakeProvider(replies=["hello", RateLimitError("slow down", provider="fake")])
    assert fake.complete("hi").text == "hello"
    with pytest.raises(RateLimitError):
        fake.complete("again")
    assert fake.complete("third").text == "echo: third"   # the script is exhausted
    assert [call.method for call in fake.calls] == ["complete"] * 3
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from typing import (
    Any,
    Deque,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Union,
)

from .._call_args import CallArgs, check_call_args, check_timeout
from .._options import (
    as_bool,
    as_non_negative_number,
    as_positive_number,
    as_str,
    as_str_list,
    check_options,
)
from .._parts import Image
from .._secrets import mask_secret
from .._structured import structured_result
from ..errors import (
    ConfigError,
    InvalidRequestError,
    ProviderTimeoutError,
    ResponseFormatError,
    UnsupportedFeatureError,
)
from ..types import (
    Completion,
    HealthStatus,
    Message,
    MessagesInput,
    StreamChunk,
    Usage,
)
from ._fake_tools import TOOL_CHOICE_FORMS, scripted_call, tool_call_chunks, tool_turn_problem

__all__ = ["FakeCall", "FakeProvider"]

#: What a scripted reply may be (a dict or list: a JSON reply, sent as its JSON text).
Reply = Union[str, Completion, BaseException, Dict[str, Any], List[Any]]

#: The deadline used when a call passes ``timeout=None``.
DEFAULT_TIMEOUT_S = 60.0



_OPTIONS_SCHEMA = {
    "replies": as_str_list,
    "model": as_str,
    "latency": as_non_negative_number,
    "hang": as_bool,
    "hang_seconds": as_positive_number,
    "healthy": as_bool,
    "health_error": as_str,
    "invalid": as_str,
    "api_key": as_str,
    "timeout": as_positive_number,
    "reasoning": as_str,
    "embeddings": as_bool,
}


def _words(text: str) -> int:
    return len(text.split())


class FakeCall:
    """One recorded call: ``method`` ("complete", "stream", "health_check"), the coerced
    ``messages`` (empty for health checks; their content strings or parts) and the keyword
    arguments as passed (``schema``, ``reasoning``, ``tools``, ``tool_choice``... only when
    given)."""

    __slots__ = ("kwargs", "messages", "method")

    def __init__(self, method: str, messages: List[Message], kwargs: Dict[str, Any]) -> None:
        self.method = method
        self.messages = messages
        self.kwargs = kwargs

    @property
    def prompt(self) -> str:
        """The content of the last user message (the prompt of a one-string call)."""
        return _last_user_content(self.messages)

    @property
    def images(self) -> List[Image]:
        """The images of every message, in order."""
        return [part for message in self.messages if not isinstance(message.content, str)
                for part in message.content if isinstance(part, Image)]

    def __repr__(self) -> str:
        return f"FakeCall({self.method!r}, messages={self.messages!r}, kwargs={self.kwargs!r})"


def _last_user_content(messages: Sequence[Message]) -> str:
    """The text of the last user message (of the last message when none is the user's)."""
    for message in reversed(messages):
        if message.role == "user":
            return message.text
    return messages[-1].text if messages else ""


def _call_options(
    model: Optional[str],
    max_tokens: Optional[int],
    temperature: Optional[float],
    stop: Optional[Sequence[str]],
    timeout: Optional[float],
    more: Dict[str, Any],
) -> Dict[str, Any]:
    """A call's keyword arguments as ``FakeCall.kwargs`` records them: the five every call
    has, then those of ``more`` (``schema``, ``reasoning``...) that were given."""
    options = {"model": model, "max_tokens": max_tokens, "temperature": temperature, "stop": stop, "timeout": timeout}
    options.update((key, value) for key, value in more.items() if value is not None)
    return options


class FakeProvider:
    """A provider that answers from a script, for tests.

    :param name: the provider's name.
    :param replies: replies consumed in order by ``complete`` and ``stream``: a ``str`` (wrapped
        in a ``Completion``), a ``Completion`` (returned as is) or an exception instance (raised).
        When the script is exhausted, or when it is None, the reply is
        ``"echo: <last user message>"``, so concurrent callers can match replies to requests.
    :param model: the model reported when a call passes none.
    :param latency: simulated seconds per call. A call whose ``timeout`` is shorter waits
        ``timeout`` and raises ``ProviderTimeoutError`` (``health_check`` returns a not-ok
        status instead).
    :param hang: make every call block, ignoring its timeout, until ``release()`` or
        ``close()`` (or ``hang_seconds``, a safety cap): a misbehaving provider.
    :param healthy: when False, ``health_check`` reports not ok.
    :param health_error: the error ``health_check`` reports (implies not healthy).
    :param health_raises: an exception ``health_check`` raises instead of returning.
    :param invalid: a reason for ``validate_config()`` to raise ``ConfigError`` with.
    :param api_key: a pretend secret; it is masked in ``repr``.
    :param timeout: the deadline for calls that pass ``timeout=None``.
    :param reasoning: the thinking attached to every string reply (``completion.reasoning``,
        streamed in ``reasoning`` chunks before the text), as a reasoning model's; none for a
        call that passes ``reasoning=False``.
    :param tool_choices: the ``tool_choice`` forms this fake can express, of "auto", "none",
        "required" and "name" (a tool's name); a call asking another raises
        ``UnsupportedFeatureError`` before anything is recorded, as a real provider type that
        cannot express it does (an empty set: ``tools=`` refused). None (the default): all.
    :param embeddings: False makes ``embed`` raise ``UnsupportedFeatureError``, as a type
        without embeddings does.

    Calls are recorded in ``calls`` (a list of ``FakeCall``), thread-safely.
    """

    def __init__(
        self,
        name: str = "fake",
        *,
        replies: Optional[Iterable[Reply]] = None,
        model: str = "fake-model",
        latency: float = 0.0,
        hang: bool = False,
        hang_seconds: float = 60.0,
        healthy: bool = True,
        health_error: Optional[str] = None,
        health_raises: Optional[BaseException] = None,
        invalid: Optional[str] = None,
        api_key: Optional[str] = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        reasoning: Optional[str] = None,
        tool_choices: Optional[Iterable[str]] = None,
        embeddings: bool = True,
    ) -> None:
        self.name = name
        self.model = model
        self.latency = float(latency)
        self.hang = hang
        self.hang_seconds = float(hang_seconds)
        self.healthy = healthy and health_error is None
        self.health_error = health_error
        self.health_raises = health_raises
        self.invalid = invalid
        self.api_key = api_key
        self.timeout = float(timeout)
        self.reasoning = reasoning
        self.embeddings = embeddings
        self.tool_choices = TOOL_CHOICE_FORMS if tool_choices is None else frozenset(tool_choices)
        unknown = self.tool_choices - TOOL_CHOICE_FORMS
        if unknown:
            raise ConfigError(f"fake provider {name!r}: tool_choices must be of 'auto', 'none', 'required', 'name'; "
                              f"got {sorted(unknown)!r}")
        self.closed = False
        self._replies: Deque[Reply] = deque(replies or ())
        self._calls: List[FakeCall] = []
        self._lock = threading.Lock()
        self._released = threading.Event()

    # Locks and events cannot cross a process boundary; a copy starts unreleased and unlocked,
    # so the fake works with multiprocessing like the HTTP providers.
    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"], state["_released"]
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._released = threading.Event()

    @classmethod
    def from_config(cls, name: str, options: Mapping[str, Any], *, where: str) -> FakeProvider:
        """Build from a ``[providers.NAME]`` table with ``type = "fake"``.

        :raises ConfigError: for an unknown option or a bad value (``replies`` may only be
            strings there).
        """
        return cls(name, **check_options(options, _OPTIONS_SCHEMA, where=where))

    # ----------------------------------------------------------------- script

    @property
    def calls(self) -> List[FakeCall]:
        """A copy of the calls made so far, in order."""
        with self._lock:
            return list(self._calls)

    @staticmethod
    def tool_call_reply(calls: Sequence[Any], *, text: str = "") -> Completion:
        """A reply that calls tools, for ``replies=`` or ``add_replies``: each call a
        ``ToolCall``, a ``(name, arguments)`` pair or a ``{"name", "arguments", "id"}`` dict
        (``id`` optional: a unique one is made). ``arguments`` is a dict, or a string sent as
        the model's raw text (invalid JSON included, to test how it is answered). ``text`` is
        what the model says besides calling.

        :raises ConfigError: for a call that is none of these.
        """
        if isinstance(calls, (str, bytes, Mapping, tuple)) or not isinstance(calls, Sequence) or not calls:
            raise ConfigError("tool_call_reply takes a non-empty list of calls")
        return Completion(text, finish_reason="tool_calls", tool_calls=[scripted_call(call) for call in calls])

    def add_replies(self, *replies: Reply) -> None:
        """Append replies to the script."""
        with self._lock:
            self._replies.extend(replies)

    def release(self) -> None:
        """End every current and future hang (``hang`` stays off for this instance)."""
        self._released.set()

    def _record(self, method: str, messages: List[Message], kwargs: Dict[str, Any]) -> None:
        with self._lock:
            self._calls.append(FakeCall(method, messages, kwargs))

    def _next_failure(self) -> Optional[BaseException]:
        """The next scripted reply when it is an exception (taken), else None (left)."""
        with self._lock:
            if self._replies and isinstance(self._replies[0], BaseException):
                return self._replies.popleft()  # type: ignore[return-value]
        return None

    def _next_reply(self, args: CallArgs) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.popleft()
        prompt = _last_user_content(args.messages)
        # A call that asks for JSON gets JSON: the echo as an object.
        return "echo: " + prompt if args.output is None else {"echo": prompt}

    def _wait(self, timeout: Optional[float]) -> Optional[float]:
        """Simulate the call's duration; the deadline that passed, or None when on time."""
        if self.hang and not self._released.is_set():
            self._released.wait(self.hang_seconds)  # deliberately ignores ``timeout``
        deadline = self.timeout if timeout is None else timeout
        if self.latency > deadline:
            time.sleep(deadline)
            return deadline
        if self.latency > 0:
            time.sleep(self.latency)
        return None

    def _prepare(self, method: str, args: CallArgs, kwargs: Dict[str, Any]) -> Union[Completion, BaseException]:
        """Record the checked call, wait, and return the scripted completion or exception;
        with ``schema``/``json``, its ``data``/``parsed`` built as a real provider builds them."""
        started = time.monotonic()
        self._record(method, args.messages, kwargs)
        problem = tool_turn_problem(args.messages)
        if problem is not None:  # sent, and refused as the real APIs refuse it
            return InvalidRequestError(f"{self.name}: HTTP 400: {problem}", provider=self.name, status_code=400)
        missed = self._wait(args.timeout)
        if missed is not None:
            return ProviderTimeoutError(f"{self.name}: no answer within {missed!r} s", provider=self.name)
        reply = self._next_reply(args)
        if isinstance(reply, BaseException):
            return reply
        if isinstance(reply, Completion):
            if not reply.provider or reply.model is None:  # e.g. tool_call_reply(): who answered
                model = reply.model or args.model or self.model
                reply = reply._replace(provider=reply.provider or self.name, model=model)
        else:
            text = reply if isinstance(reply, str) else _json_text(reply)
            reply = Completion(
                text,
                model=args.model or self.model,
                provider=self.name,
                finish_reason="stop",
                usage=Usage(sum(_words(m.text) for m in args.messages), _words(text)),
                raw={"fake": True},
                latency_s=time.monotonic() - started,
                reasoning=self.reasoning if args.reasoning is not False else None,
            )
        if args.output is not None and reply.data is None:
            try:
                data, parsed = structured_result(
                    args.output, reply.text, reply.finish_reason, provider=self.name, redact=self._redact
                )
            except ResponseFormatError as error:
                return error
            reply = reply._replace(data=data, parsed=parsed)
        return reply

    def _redact(self, text: str) -> str:
        return text.replace(self.api_key, mask_secret(self.api_key)) if self.api_key else text

    def _check(
        self,
        prompt_or_messages: MessagesInput,
        system: Optional[str],
        kwargs: Dict[str, Any],
    ) -> CallArgs:
        """The arguments checked as every real provider checks them, then the configuration:
        a call that production would refuse before sending is refused, and not recorded."""
        args = check_call_args(self.name, prompt_or_messages, system=system, **kwargs)
        self.validate_config()
        if args.tools is not None:
            self._check_tool_choice(args)
        return args

    def _check_tool_choice(self, args: CallArgs) -> None:
        if not self.tool_choices:
            raise UnsupportedFeatureError(f"{self.name}: tools= is not supported: this fake has no tool calling")
        choice = args.tool_choice
        if choice is not None:
            form = choice if choice in ("auto", "none", "required") else "name"
            if form not in self.tool_choices:
                raise UnsupportedFeatureError(f"{self.name}: tool_choice={choice!r} is not supported: this fake "
                                              f"takes {sorted(self.tool_choices)!r}")

    # ----------------------------------------------------------------- Provider

    def complete(
        self,
        prompt_or_messages: MessagesInput,
        *,
        model: Optional[str] = None,
        system: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        stop: Optional[Sequence[str]] = None,
        timeout: Optional[float] = None,
        schema: Any = None,
        json: Optional[bool] = None,
        reasoning: Union[str, bool, None] = None,
        top_p: Optional[float] = None,
        seed: Optional[int] = None,
        max_retries: Optional[int] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        cache: Optional[bool] = None,
        tools: Optional[Sequence[Any]] = None,
        tool_choice: Any = None,
        parallel_tool_calls: Optional[bool] = None,
    ) -> Completion:
        """The next scripted reply (or raise it). Takes every argument a real provider takes
        (``schema``, ``json``, ``reasoning``, ``top_p``, ``seed``, ``max_retries``,
        ``extra_headers``, ``extra_body``, ``cache``, ``tools``, ``tool_choice``,
        ``parallel_tool_calls``), checked as a real provider checks them.

        :raises ConfigError: for an argument every real provider refuses, with the same message
            (``temperature=5``, ``max_tokens=-3``, ``stop=[1]``, a malformed prompt...), or when
            built with ``invalid``; such a call is not recorded, as production sends nothing.
        :raises UnsupportedFeatureError: for a ``tool_choice`` outside ``tool_choices``.
        :raises InvalidRequestError: for a conversation whose tool calls and results do not
            match (recorded: a real API receives it and answers 400).
        :raises ProviderTimeoutError: when ``latency`` exceeds ``timeout``.
        """
        kwargs = _call_options(model, max_tokens, temperature, stop, timeout, dict(
            schema=schema, json=json, reasoning=reasoning, top_p=top_p, seed=seed, max_retries=max_retries,
            extra_headers=extra_headers, extra_body=extra_body, cache=cache, tools=tools, tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
        ))
        args = self._check(prompt_or_messages, system, kwargs)
        result = self._prepare("complete", args, dict(kwargs, system=system))
        if isinstance(result, BaseException):
            raise result
        return result

    def stream(
        self,
        prompt_or_messages: MessagesInput,
        *,
        model: Optional[str] = None,
        system: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        stop: Optional[Sequence[str]] = None,
        timeout: Optional[float] = None,
        schema: Any = None,
        json: Optional[bool] = None,
        reasoning: Union[str, bool, None] = None,
        top_p: Optional[float] = None,
        seed: Optional[int] = None,
        max_retries: Optional[int] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        cache: Optional[bool] = None,
        tools: Optional[Sequence[Any]] = None,
        tool_choice: Any = None,
        parallel_tool_calls: Optional[bool] = None,
    ) -> Iterator[StreamChunk]:
        """The next scripted reply, word by word; the last chunk has ``finish_reason`` and usage.

        The call is recorded, and waits or fails, before the iterator is returned, as a real
        provider opens its connection.

        :raises ConfigError: for an argument every real provider refuses, with the same message
            (``temperature=5``, ``max_tokens=-3``, ``stop=[1]``, a malformed prompt...), or when
            built with ``invalid``; such a call is not recorded, as production sends nothing.
        :raises UnsupportedFeatureError: for a ``tool_choice`` outside ``tool_choices``.
        :raises InvalidRequestError: for a conversation whose tool calls and results do not
            match (recorded: a real API receives it and answers 400).
        :raises ProviderTimeoutError: when ``latency`` exceeds ``timeout``.
        """
        kwargs = _call_options(model, max_tokens, temperature, stop, timeout, dict(
            schema=schema, json=json, reasoning=reasoning, top_p=top_p, seed=seed, max_retries=max_retries,
            extra_headers=extra_headers, extra_body=extra_body, cache=cache, tools=tools, tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
        ))
        args = self._check(prompt_or_messages, system, kwargs)
        result = self._prepare("stream", args, dict(kwargs, system=system))
        if isinstance(result, BaseException):
            raise result
        return self._chunks(result)

    def _chunks(self, completion: Completion) -> Iterator[StreamChunk]:
        if completion.reasoning:
            for thought in re.split(r"(?<= )", completion.reasoning):
                if thought:
                    yield StreamChunk("", provider=self.name, reasoning=thought)
        pieces = [piece for piece in re.split(r"(?<= )", completion.text) if piece] or [""]
        last = pieces.pop()
        for piece in pieces:
            yield StreamChunk(piece, provider=self.name)
        if completion.tool_calls:
            if last:
                yield StreamChunk(last, provider=self.name)
                last = ""
            yield from tool_call_chunks(completion.tool_calls, self.name)
        yield StreamChunk(
            last,
            finish_reason=completion.finish_reason,
            usage=completion.usage,
            provider=self.name,
            data=completion.data,
            parsed=completion.parsed,
            provider_state=completion.provider_state,
            tool_calls=completion.tool_calls,
        )

    def health_check(self, timeout: Optional[float] = None) -> HealthStatus:
        """Not ok when ``healthy`` is False or ``latency`` exceeds ``timeout``.

        :raises BaseException: ``health_raises``, when set (a misbehaving provider).
        """
        started = time.monotonic()
        self._record("health_check", [], {"timeout": timeout})
        try:  # as a real provider's check: a bad timeout or configuration is a not-ok status
            seconds = check_timeout(self.name, timeout) if timeout is not None else None
            self.validate_config()
        except ConfigError as error:
            return HealthStatus(self.name, False, time.monotonic() - started, f"misconfigured: {error}")
        missed = self._wait(seconds)
        if self.health_raises is not None:
            raise self.health_raises
        elapsed = time.monotonic() - started
        if missed is not None:
            return HealthStatus(self.name, False, elapsed, f"timed out after {missed!r} s")
        if not self.healthy:
            return HealthStatus(self.name, False, elapsed, self.health_error or "unhealthy")
        return HealthStatus(self.name, True, elapsed)

    def embed(
        self, texts: Any, *, model: Optional[str] = None, dimensions: Optional[int] = None,
        timeout: Optional[float] = None, cache: Optional[bool] = None,
    ) -> Any:
        """Deterministic vectors (16 dimensions unless ``dimensions``), from the text and model
        as the simulators make them; recorded as a ``FakeCall`` "embed" whose ``kwargs`` hold
        ``texts``. Arguments are checked as a real provider checks them; a scripted exception
        at the head of ``replies`` is raised (for fallback tests).

        ``cache`` is checked as a real provider checks it (a fake has no response cache).

        :raises UnsupportedFeatureError: when built with ``embeddings=False``.
        """
        from ._fake_embed import fake_embed

        if cache is not None and not isinstance(cache, bool):
            raise ConfigError(f"fake provider {self.name!r}: cache must be True or False, got {cache!r}")
        return fake_embed(self, texts, model, dimensions, timeout)

    def validate_config(self) -> None:
        """:raises ConfigError: when built with ``invalid="reason"``."""
        if self.invalid is not None:
            raise ConfigError(f"fake provider {self.name!r}: {self.invalid}")

    def close(self) -> None:
        """Mark closed and end any hang."""
        self.closed = True
        self._released.set()

    def __enter__(self) -> FakeProvider:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        extras = ""
        if self.api_key is not None:
            extras += f", api_key={mask_secret(self.api_key)!r}"
        if self.hang:
            extras += ", hang=True"
        if self.latency:
            extras += f", latency={self.latency!r}"
        return f"FakeProvider(name={self.name!r}, model={self.model!r}{extras})"


def _json_text(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
