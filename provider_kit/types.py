"""Value objects that every provider returns, and the ``Provider`` protocol; no I/O here.

The value types are plain immutable classes with ``__slots__`` rather than dataclasses: importing
``dataclasses`` alone costs several milliseconds (it pulls in ``inspect`` and ``ast``), which is
a large share of provider_kit's import budget.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    runtime_checkable,
)

from ._messages import Message, MessagesInput, ToolResult, as_messages
from ._tools import ToolCall
from ._value import _Value

if TYPE_CHECKING:
    from ._rate_limits import RateLimitInfo

# ``_display`` (the text and HTML tables) is imported by the methods that show a value, so that
# ``import provider_kit`` does not pay for it.

__all__ = [
    "CircuitState",
    "Completion",
    "HealthReport",
    "HealthStatus",
    "Message",
    "MessagesInput",
    "Provider",
    "StreamChunk",
    "ToolCall",
    "ToolResult",
    "Usage",
    "as_messages",
]


class Usage(_Value):
    """Token counts of one call; a count the provider did not report is ``None``.

    ``input_tokens`` counts every input token, cached ones included, whatever the provider
    (Anthropic reports cache reads and writes apart; they are added in).
    ``cached_input_tokens`` of them were read from the prompt cache and
    ``cache_creation_input_tokens`` written to it; ``reasoning_tokens`` of the
    ``output_tokens`` were thinking.
    """

    __slots__ = (
        "input_tokens",
        "output_tokens",
        "total_tokens",
        "cached_input_tokens",
        "cache_creation_input_tokens",
        "reasoning_tokens",
    )
    input_tokens: Optional[int]
    output_tokens: Optional[int]
    total_tokens: Optional[int]
    cached_input_tokens: Optional[int]
    cache_creation_input_tokens: Optional[int]
    reasoning_tokens: Optional[int]

    def __init__(
        self,
        input_tokens: Optional[int] = None,
        output_tokens: Optional[int] = None,
        total_tokens: Optional[int] = None,
        cached_input_tokens: Optional[int] = None,
        cache_creation_input_tokens: Optional[int] = None,
        reasoning_tokens: Optional[int] = None,
    ) -> None:
        if total_tokens is None and input_tokens is not None and output_tokens is not None:
            total_tokens = input_tokens + output_tokens
        self._set(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=total_tokens,
            cached_input_tokens=cached_input_tokens,
            cache_creation_input_tokens=cache_creation_input_tokens,
            reasoning_tokens=reasoning_tokens,
        )

    def to_dict(self) -> Dict[str, Optional[int]]:
        """A JSON-ready dict of the three counts, and of the details the provider reported
        (cached, cache creation and reasoning tokens; left out when not reported)."""
        data = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }
        for key in _USAGE_DETAILS:
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data

    def __repr__(self) -> str:
        # The details only when reported: most calls have none, and a row of Nones is noise.
        shown = [f"{key}={getattr(self, key)!r}" for key in self.__slots__[:3]]
        shown += [f"{key}={getattr(self, key)!r}" for key in _USAGE_DETAILS if getattr(self, key) is not None]
        return f"Usage({', '.join(shown)})"


_USAGE_DETAILS = ("cached_input_tokens", "cache_creation_input_tokens", "reasoning_tokens")
#: ``Completion`` and ``StreamChunk`` fields a plain text reply leaves empty, left out of
#: ``to_dict`` then, so the common output stays as it was.
_STRUCTURED_FIELDS = ("data", "reasoning")


class Completion(_Value):
    """The result of ``Provider.complete``.

    ``finish_reason`` is one of "stop", "length", "content_filter", "tool_calls", or the
    provider's own value when it has no normalised equivalent. ``raw`` is the decoded response
    body, left out of ``repr``. ``latency_s`` is the wall time of the whole call, retries included.

    With ``schema=`` or ``json=True``, ``data`` is the parsed JSON of ``text`` and ``parsed``
    the schema class's instance built from it (the same as ``data`` for a dict schema); both
    None otherwise, and for a refusal (``finish_reason == "content_filter"``, the refusal in
    ``text``). ``reasoning`` is the model's thinking when the server returned it (never part
    of ``text``). ``provider_state`` is what the protocol needs back in a later turn, opaque.
    ``message`` is the assistant turn, ready to append to a conversation.

    ``tool_calls`` are the calls the model asked for (a tuple of ``ToolCall``, empty when none;
    ``finish_reason`` is then "tool_calls"): append ``message`` and one ``ToolResult`` per call
    (``call.result(value)``) to the conversation and call again, or let ``run_tools`` do it.
    ``messages`` is the whole exchange when ``run_tools`` made the completion (the prompt, each
    assistant turn and tool result, and this answer last), else None.

    ``rate_limit`` is the budget the server reported in its headers (a ``RateLimitInfo``:
    requests and tokens remaining, and seconds until each resets), None when it sent none.

    ``cached`` is True when the answer came from the response cache (nothing was sent;
    ``latency_s`` is then the lookup's time).
    """

    __slots__ = (
        "text",
        "model",
        "provider",
        "finish_reason",
        "usage",
        "raw",
        "latency_s",
        "data",
        "parsed",
        "reasoning",
        "provider_state",
        "tool_calls",
        "messages",
        "rate_limit",
        "cached",
    )
    _repr_skip = ("raw", "messages")
    text: str
    model: Optional[str]
    provider: str
    finish_reason: Optional[str]
    usage: Usage
    raw: Any
    latency_s: float
    data: Any
    parsed: Any
    reasoning: Optional[str]
    provider_state: Optional[Dict[str, Any]]
    tool_calls: Tuple[ToolCall, ...]
    messages: Optional[Tuple[Message, ...]]
    rate_limit: Optional[RateLimitInfo]
    cached: bool

    def __init__(
        self,
        text: str,
        model: Optional[str] = None,
        provider: str = "",
        finish_reason: Optional[str] = None,
        usage: Optional[Usage] = None,
        raw: Any = None,
        latency_s: float = 0.0,
        data: Any = None,
        parsed: Any = None,
        reasoning: Optional[str] = None,
        provider_state: Optional[Dict[str, Any]] = None,
        tool_calls: Sequence[ToolCall] = (),
        messages: Optional[Sequence[Message]] = None,
        rate_limit: Optional[RateLimitInfo] = None,
        cached: bool = False,
    ) -> None:
        self._set(
            text=text,
            model=model,
            provider=provider,
            finish_reason=finish_reason,
            usage=usage if usage is not None else Usage(),
            raw=raw,
            latency_s=latency_s,
            data=data,
            parsed=parsed,
            reasoning=reasoning,
            provider_state=provider_state,
            tool_calls=tuple(tool_calls),
            messages=tuple(messages) if messages is not None else None,
            rate_limit=rate_limit,
            cached=cached,
        )

    @property
    def message(self) -> Message:
        """The assistant turn: ``text`` as an assistant ``Message`` carrying ``tool_calls`` and
        ``provider_state``, to append to the conversation for the next call."""
        return Message("assistant", self.text, self.provider_state, self.tool_calls)

    def __str__(self) -> str:
        return self.text

    def to_dict(self, include_raw: bool = False) -> Dict[str, Any]:
        """A JSON-ready dict: ``text``, ``provider``, ``model``, ``finish_reason``, ``usage`` (a
        dict) and ``latency_s``; ``data``, ``reasoning`` and ``tool_calls`` when there are some;
        ``raw``, the provider's decoded body, only when asked for."""
        data: Dict[str, Any] = {
            "text": self.text,
            "provider": self.provider,
            "model": self.model,
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict(),
            "latency_s": self.latency_s,
        }
        for key in _STRUCTURED_FIELDS:
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.tool_calls:
            data["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.rate_limit is not None:
            data["rate_limit"] = self.rate_limit.to_dict()
        if self.cached:
            data["cached"] = True
        if include_raw:
            data["raw"] = self.raw
        return data

    def __repr__(self) -> str:
        # At a ``>>>`` prompt: the text and an aligned row of what came with it (as in Jupyter).
        from . import _display

        return _display.completion_text(self)

    def _repr_html_(self) -> str:
        from . import _display

        return _display.completion_html(self)


class StreamChunk(_Value):
    """One piece of a streamed reply; the last chunk carries ``finish_reason`` and ``usage``.

    ``reasoning`` is thinking text as it arrives ("" in a chunk that carries none; a chunk may
    carry reasoning and no text). With ``schema=`` or ``json=True`` the last chunk carries
    ``data`` and ``parsed`` too, built from the whole text as ``complete`` builds them, and
    ``provider_state`` when the protocol needs something back in a later turn (as
    ``Completion.provider_state``).
    ``provider`` names the provider that is answering: the built-in providers and
    ``registry.stream`` set it on every chunk (with fallbacks, the one that took over); None
    when a third-party provider streams on its own and does not say.

    With tools, ``tool_call`` is the call being built, as far as it has arrived (a ``ToolCall``
    whose ``raw_arguments`` grow chunk by chunk: for a live display; None in a chunk that does
    not advance one), and the last chunk's ``tool_calls`` are the assembled calls: the same as
    ``complete`` returns for the same reply. The last chunk's ``rate_limit`` is the budget
    the server reported (as ``Completion.rate_limit``). In a stream replayed from the response
    cache, the last chunk's ``cached`` is True (as ``Completion.cached``).
    """

    # A stream makes one chunk per event, hundreds for a tool call's arguments: a chunk on the way
    # sets four slots. What only the last chunk carries is one tuple (``_end``, None on the way),
    # and a partial call is kept as its (id, name, text so far) until ``tool_call`` is read.
    __slots__ = ("text", "provider", "reasoning", "_call", "_end")
    #: The fields, in constructor order (what equality, pickling and ``_replace`` go by).
    _FIELDS = ("text", "finish_reason", "usage", "provider", "reasoning", "data", "parsed", "provider_state",
               "tool_call", "tool_calls", "rate_limit", "cached")
    text: str
    provider: Optional[str]
    reasoning: str
    _call: Any
    _end: Optional[Tuple[Any, ...]]

    def __init__(
        self,
        text: str,
        finish_reason: Optional[str] = None,
        usage: Optional[Usage] = None,
        provider: Optional[str] = None,
        reasoning: str = "",
        data: Any = None,
        parsed: Any = None,
        provider_state: Optional[Dict[str, Any]] = None,
        tool_call: Optional[ToolCall] = None,
        tool_calls: Sequence[ToolCall] = (),
        rate_limit: Optional[RateLimitInfo] = None,
        cached: bool = False,
    ) -> None:
        calls = tuple(tool_calls) if tool_calls else ()
        end = None
        if finish_reason is not None or usage is not None or data is not None or parsed is not None or (
            provider_state is not None or calls or rate_limit is not None or cached
        ):
            end = (finish_reason, usage, data, parsed, provider_state, calls, rate_limit, bool(cached))
        self._set(text=text, provider=provider, reasoning=reasoning, _call=tool_call, _end=end)

    @classmethod
    def _piece(cls, text: str, provider: Optional[str], reasoning: str = "", tool_call: Any = None) -> StreamChunk:
        """A chunk on the way (no finish, usage or data), built without ``__init__``'s keyword
        handling. ``tool_call`` may be a ``ToolCall`` or its ``(id, name, raw_arguments)``,
        made into a ``ToolCall`` when read."""
        chunk = object.__new__(cls)
        setter = object.__setattr__
        setter(chunk, "text", text)
        setter(chunk, "provider", provider)
        setter(chunk, "reasoning", reasoning)
        setter(chunk, "_call", tool_call)
        setter(chunk, "_end", None)
        return chunk

    # -- what the last chunk carries

    @property
    def finish_reason(self) -> Optional[str]:
        end = self._end
        return None if end is None else end[0]

    @property
    def usage(self) -> Optional[Usage]:
        end = self._end
        return None if end is None else end[1]

    @property
    def data(self) -> Any:
        end = self._end
        return None if end is None else end[2]

    @property
    def parsed(self) -> Any:
        end = self._end
        return None if end is None else end[3]

    @property
    def provider_state(self) -> Optional[Dict[str, Any]]:
        end = self._end
        return None if end is None else end[4]

    @property
    def tool_calls(self) -> Tuple[ToolCall, ...]:
        end = self._end
        return () if end is None else end[5]

    @property
    def rate_limit(self) -> Optional[RateLimitInfo]:
        end = self._end
        return None if end is None else end[6]

    @property
    def cached(self) -> bool:
        end = self._end
        return False if end is None else end[7]

    @property
    def tool_call(self) -> Optional[ToolCall]:
        call = self._call
        if call is None or isinstance(call, ToolCall):
            return call
        call = ToolCall._assembled(*call)
        object.__setattr__(self, "_call", call)  # made once, on first read
        return call

    # -- value behaviour: the fields, not the slots

    def _fields(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, key) for key in self._FIELDS)

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (StreamChunk, self._fields())

    def _replace(self, **changes: Any) -> StreamChunk:
        unknown = set(changes).difference(self._FIELDS)
        if unknown:
            raise TypeError(f"StreamChunk has no field {', '.join(sorted(unknown))}")
        fields = dict(zip(self._FIELDS, self._fields()))
        fields.update(changes)
        return StreamChunk(**fields)

    def _from(self, provider: str) -> StreamChunk:
        """This chunk as sent by ``provider`` (itself when it already says so)."""
        if self.provider == provider:
            return self
        return self._replace(provider=provider)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict: ``text``, ``finish_reason``, ``usage`` (a dict or None) and
        ``provider``; ``reasoning``, ``data``, ``tool_call`` (id, name and the raw arguments so
        far) and ``tool_calls`` when the chunk carries some."""
        data: Dict[str, Any] = {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": self.usage.to_dict() if self.usage is not None else None,
            "provider": self.provider,
        }
        if self.reasoning:
            data["reasoning"] = self.reasoning
        if self.data is not None:
            data["data"] = self.data
        if self.tool_call is not None:
            data["tool_call"] = {"id": self.tool_call.id, "name": self.tool_call.name,
                                 "raw_arguments": self.tool_call.raw_arguments}
        if self.tool_calls:
            data["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.rate_limit is not None:
            data["rate_limit"] = self.rate_limit.to_dict()
        if self.cached:
            data["cached"] = True
        return data

    def __repr__(self) -> str:
        # What a plain text stream has, then only the fields this chunk fills.
        shown = [f"{key}={getattr(self, key)!r}" for key in self._FIELDS[:4]]
        shown += [
            f"{key}={getattr(self, key)!r}"
            for key in ("reasoning", "data", "parsed", "provider_state", "tool_call", "tool_calls", "rate_limit")
            if getattr(self, key) not in (None, "", ())
        ]
        if self.cached:
            shown.append("cached=True")
        return f"StreamChunk({', '.join(shown)})"


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class CircuitState(_Value):
    """A snapshot of one provider's circuit, as ``registry.circuit(name)`` returns it.

    ``state`` is "closed" (calls go through), "open" (calls are skipped until ``open_until``,
    an aware UTC datetime) or "half_open" (the cooldown is over: the next call is a trial).
    ``failures`` counts the connection errors, timeouts and server errors in a row, and
    ``last_error`` describes the latest of them (``"ServerError: ..."``); both reset when the
    circuit closes.
    """

    __slots__ = ("name", "state", "failures", "open_until", "last_error")  # in argument order
    name: str
    state: str
    failures: int
    open_until: Optional[datetime.datetime]
    last_error: Optional[str]

    def __init__(
        self,
        name: str,
        state: str,
        failures: int = 0,
        open_until: Optional[datetime.datetime] = None,
        last_error: Optional[str] = None,
    ) -> None:
        self._set(name=name, state=state, failures=failures, open_until=open_until, last_error=last_error)

    @property
    def is_open(self) -> bool:
        """True while calls are being skipped ("open"; a half-open circuit lets a trial through)."""
        return self.state == "open"

    def as_dict(self) -> Dict[str, Any]:
        """The JSON-ready dict that ``HealthStatus.circuit`` holds (``open_until`` as ISO 8601)."""
        return {
            "state": self.state,
            "failures": self.failures,
            "open_until": self.open_until.isoformat() if self.open_until is not None else None,
            "last_error": self.last_error,
        }

    def __str__(self) -> str:
        from . import _display

        return f"{self.name}: {_display.describe_circuit(self.as_dict())}"


class HealthStatus(_Value):
    """The outcome of one health check; ``error`` is a short reason when ``ok`` is False.

    ``circuit`` is the registry's circuit-breaker state for the provider, a JSON-ready dict
    ``{"state": "closed" | "open" | "half_open", "failures": int, "open_until": ISO 8601 UTC
    string or None, "last_error": str or None}``; None when the check did not go through a
    registry.
    """

    __slots__ = ("name", "ok", "latency_s", "error", "checked_at", "circuit")
    name: str
    ok: bool
    latency_s: Optional[float]
    error: Optional[str]
    checked_at: datetime.datetime
    circuit: Optional[Dict[str, Any]]

    def __init__(
        self,
        name: str,
        ok: bool,
        latency_s: Optional[float] = None,
        error: Optional[str] = None,
        checked_at: Optional[datetime.datetime] = None,
        circuit: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self._set(
            name=name,
            ok=bool(ok),
            latency_s=latency_s,
            error=error,
            checked_at=checked_at if checked_at is not None else _utcnow(),
            circuit=dict(circuit) if circuit is not None else None,
        )

    def __str__(self) -> str:
        latency = "-" if self.latency_s is None else f"{self.latency_s * 1000:.0f} ms"
        state = "ok" if self.ok else "FAIL"
        reason = f"  {self.error}" if self.error else ""
        from . import _display

        circuit = _display.describe_circuit(self.circuit)
        if circuit and circuit != "closed":  # a closed circuit with no failures is not news
            reason += f"  [circuit {circuit}]"
        return f"{self.name}: {state} ({latency}){reason}"

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict (``checked_at`` as an ISO 8601 string)."""
        return {
            "name": self.name,
            "ok": self.ok,
            "latency_s": self.latency_s,
            "error": self.error,
            "checked_at": self.checked_at.isoformat(),
            "circuit": dict(self.circuit) if self.circuit is not None else None,
        }

    def __repr__(self) -> str:
        # At a ``>>>`` prompt: the same aligned table as a report of this one status.
        from . import _display

        return _display.health_text([self])

    def _repr_html_(self) -> str:
        from . import _display

        return _display.health_html([self])


class HealthReport(Mapping):  # type: ignore[type-arg]
    """A read-only mapping of provider name to ``HealthStatus``, in name order."""

    __slots__ = ("_statuses",)
    _statuses: Dict[str, HealthStatus]

    def __init__(self, statuses: Iterable[HealthStatus] = ()) -> None:
        ordered = sorted(statuses, key=lambda status: status.name)
        object.__setattr__(self, "_statuses", {status.name: status for status in ordered})

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("HealthReport is read-only")

    def __getitem__(self, name: str) -> HealthStatus:
        return self._statuses[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._statuses)

    def __len__(self) -> int:
        return len(self._statuses)

    @property
    def ok(self) -> bool:
        """True when every provider is healthy (and there is at least one)."""
        return bool(self._statuses) and all(s.ok for s in self._statuses.values())

    @property
    def healthy(self) -> List[str]:
        """Names of the healthy providers, sorted."""
        return [name for name, status in self._statuses.items() if status.ok]

    @property
    def unhealthy(self) -> List[str]:
        """Names of the unhealthy providers, sorted."""
        return [name for name, status in self._statuses.items() if not status.ok]

    def to_dict(self) -> Dict[str, Dict[str, Any]]:
        """A JSON-ready dict: name -> ``HealthStatus.to_dict()``."""
        return {name: status.to_dict() for name, status in self._statuses.items()}

    def __repr__(self) -> str:
        # At a ``>>>`` prompt: the aligned table, not a dict-like dump of every field.
        from . import _display

        return _display.health_text(self._statuses.values())

    def __str__(self) -> str:
        from . import _display

        return _display.health_text(self._statuses.values())

    def _repr_html_(self) -> str:
        from . import _display

        return _display.health_html(self._statuses.values())

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (HealthReport, (list(self._statuses.values()),))


@runtime_checkable
class Provider(Protocol):
    """What the registry needs of a provider; any plain class with these members qualifies.

    Every method is blocking. ``timeout`` is a deadline in seconds for the whole call; ``None``
    means the provider's configured default, never "no limit".
    """

    name: str

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
    ) -> Completion: ...

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
    ) -> Iterator[StreamChunk]: ...

    def health_check(self, timeout: Optional[float] = None) -> HealthStatus: ...

    def validate_config(self) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc_info: Any) -> Any: ...
