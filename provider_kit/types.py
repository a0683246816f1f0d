"""Value objects that every provider returns, and the ``Provider`` protocol; no I/O here.

The value types are plain immutable classes with ``__slots__`` rather than dataclasses: importing
``dataclasses`` alone costs several milliseconds (it pulls in ``inspect`` and ``ast``), which is
a large share of provider_kit's import budget.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import (
    Any,
    ClassVar,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Union,
    runtime_checkable,
)

from .errors import ConfigError

__all__ = [
    "Completion",
    "HealthReport",
    "HealthStatus",
    "Message",
    "MessagesInput",
    "Provider",
    "StreamChunk",
    "Usage",
    "as_messages",
]

#: Normalised finish reasons; any other value is the provider's own string, passed through.
FINISH_REASONS = ("stop", "length", "content_filter", "tool_calls")


class _Value:
    """Immutable record: fields set once in ``__init__``, compared and hashed by value."""

    __slots__: ClassVar[Tuple[str, ...]] = ()
    #: Fields left out of ``repr`` (large or noisy).
    _repr_skip: ClassVar[Tuple[str, ...]] = ()

    def _set(self, **fields: Any) -> None:
        for key, value in fields.items():
            object.__setattr__(self, key, value)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; cannot set {key!r}")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; cannot delete {key!r}")

    def _fields(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, key) for key in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        try:
            return hash((type(self).__name__, self._fields()))
        except TypeError:  # a field holds an unhashable value, such as a raw dict
            return hash((type(self).__name__, id(self)))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{key}={getattr(self, key)!r}" for key in self.__slots__ if key not in self._repr_skip
        )
        return f"{type(self).__name__}({shown})"

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (type(self), self._fields())


class Message(_Value):
    """One chat message: ``role`` is "system", "user", "assistant" (or "tool"), ``content`` text."""

    __slots__ = ("role", "content")
    role: str
    content: str

    def __init__(self, role: str, content: str) -> None:
        if not isinstance(role, str) or not role:
            raise ConfigError(f"message role must be a non-empty string, got {role!r}")
        if not isinstance(content, str):
            raise ConfigError(
                f"message content must be a string, got {type(content).__name__} for role {role!r}"
            )
        self._set(role=role, content=content)


class Usage(_Value):
    """Token counts of one call; a count the provider did not report is ``None``."""

    __slots__ = ("input_tokens", "output_tokens", "total_tokens")
    input_tokens: Optional[int]
    output_tokens: Optional[int]
    total_tokens: Optional[int]

    def __init__(
        self,
        input_tokens: Optional[int] = None,
        output_tokens: Optional[int] = None,
        total_tokens: Optional[int] = None,
    ) -> None:
        if total_tokens is None and input_tokens is not None and output_tokens is not None:
            total_tokens = input_tokens + output_tokens
        self._set(input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=total_tokens)


class Completion(_Value):
    """The result of ``Provider.complete``.

    ``finish_reason`` is one of "stop", "length", "content_filter", "tool_calls", or the
    provider's own value when it has no normalised equivalent. ``raw`` is the decoded response
    body, left out of ``repr``. ``latency_s`` is the wall time of the whole call, retries included.
    """

    __slots__ = ("text", "model", "provider", "finish_reason", "usage", "raw", "latency_s")
    _repr_skip = ("raw",)
    text: str
    model: Optional[str]
    provider: str
    finish_reason: Optional[str]
    usage: Usage
    raw: Any
    latency_s: float

    def __init__(
        self,
        text: str,
        model: Optional[str] = None,
        provider: str = "",
        finish_reason: Optional[str] = None,
        usage: Optional[Usage] = None,
        raw: Any = None,
        latency_s: float = 0.0,
    ) -> None:
        self._set(
            text=text,
            model=model,
            provider=provider,
            finish_reason=finish_reason,
            usage=usage if usage is not None else Usage(),
            raw=raw,
            latency_s=latency_s,
        )

    def __str__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        import html  # only notebooks need it; html.entities is slow to import

        rows = [
            ("provider", self.provider),
            ("model", self.model),
            ("finish_reason", self.finish_reason),
            ("tokens in / out", f"{self.usage.input_tokens} / {self.usage.output_tokens}"),
            ("latency", f"{self.latency_s * 1000:.0f} ms"),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in rows
        )
        return (
            f"<div><pre style='white-space:pre-wrap'>{html.escape(self.text)}</pre>"
            f"<table>{body}</table></div>"
        )


class StreamChunk(_Value):
    """One piece of a streamed reply; the last chunk carries ``finish_reason`` and ``usage``."""

    __slots__ = ("text", "finish_reason", "usage")
    text: str
    finish_reason: Optional[str]
    usage: Optional[Usage]

    def __init__(
        self, text: str, finish_reason: Optional[str] = None, usage: Optional[Usage] = None
    ) -> None:
        self._set(text=text, finish_reason=finish_reason, usage=usage)


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _describe_circuit(circuit: Optional[Mapping[str, Any]]) -> str:
    """One line for a circuit-breaker state dict (see ``HealthStatus.circuit``); "" for None."""
    if not circuit:
        return ""
    state = circuit.get("state")
    failures = circuit.get("failures") or 0
    last = circuit.get("last_error")
    streak = f"{failures} failure{'' if failures == 1 else 's'} in a row"
    if state == "open":
        raw = str(circuit.get("open_until") or "")
        try:
            until = datetime.datetime.fromisoformat(raw).strftime("%H:%M:%S UTC")
        except ValueError:
            until = raw
        text = f"open until {until}, {streak}"
    elif state == "half_open":
        text = f"half-open (the next call is a trial), {streak}"
    elif failures:
        text = f"closed, {streak}"
    else:
        return "closed"
    return f"{text}; last: {last}" if last else text


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
        circuit = _describe_circuit(self.circuit)
        if circuit and circuit != "closed":  # a closed circuit with no failures is not news
            reason += f"  [circuit {circuit}]"
        return f"{self.name}: {state} ({latency}){reason}"

    def as_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict (``checked_at`` as an ISO 8601 string)."""
        return {
            "name": self.name,
            "ok": self.ok,
            "latency_s": self.latency_s,
            "error": self.error,
            "checked_at": self.checked_at.isoformat(),
            "circuit": dict(self.circuit) if self.circuit is not None else None,
        }

    def _repr_html_(self) -> str:
        return HealthReport([self])._repr_html_()


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

    def as_dict(self) -> Dict[str, Dict[str, Any]]:
        """A JSON-ready dict: name -> ``HealthStatus.as_dict()``."""
        return {name: status.as_dict() for name, status in self._statuses.items()}

    def __repr__(self) -> str:
        return f"HealthReport({list(self._statuses.values())!r})"

    def __str__(self) -> str:
        if not self._statuses:
            return "(no providers)"
        width = max(len(name) for name in self._statuses)
        lines = []
        for status in self._statuses.values():
            latency = "-" if status.latency_s is None else f"{status.latency_s * 1000:.0f} ms"
            circuit = _describe_circuit(status.circuit)
            lines.append(
                f"{status.name:<{width}}  {'ok' if status.ok else 'FAIL':<4}  {latency:>8}"
                + (f"  {status.error}" if status.error else "")
                + (f"  [circuit {circuit}]" if circuit and circuit != "closed" else "")
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html  # only notebooks need it; html.entities is slow to import

        # The circuit column appears only for statuses that came through a registry.
        with_circuit = any(status.circuit is not None for status in self._statuses.values())
        rows = []
        for status in self._statuses.values():
            colour = "#2e7d32" if status.ok else "#c62828"
            latency = "" if status.latency_s is None else f"{status.latency_s * 1000:.0f} ms"
            circuit = (
                f"<td>{html.escape(_describe_circuit(status.circuit))}</td>" if with_circuit else ""
            )
            rows.append(
                "<tr>"
                f"<td>{html.escape(status.name)}</td>"
                f"<td style='color:{colour}'>{'ok' if status.ok else 'FAIL'}</td>"
                f"<td style='text-align:right'>{latency}</td>"
                f"<td>{html.escape(status.error or '')}</td>"
                f"{circuit}"
                "</tr>"
            )
        return (
            "<table><thead><tr><th>provider</th><th>status</th><th>latency</th><th>reason</th>"
            + ("<th>circuit</th>" if with_circuit else "")
            + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        return (HealthReport, (list(self._statuses.values()),))


#: What ``complete`` and ``stream`` accept: one user prompt, or a list of messages.
MessagesInput = Union[str, Sequence[Union[Message, Mapping[str, Any]]]]


def as_messages(prompt_or_messages: MessagesInput, system: Optional[str] = None) -> List[Message]:
    """Coerce a prompt or a list of messages (``Message`` or ``{"role", "content"}`` dicts).

    ``system``, when given, becomes a leading system message.

    :raises ConfigError: for anything that is not a string or a list of well-formed messages.
    """
    messages: List[Message] = []
    if system is not None:
        if not isinstance(system, str):
            raise ConfigError(f"system must be a string, got {type(system).__name__}")
        messages.append(Message("system", system))
    if isinstance(prompt_or_messages, str):
        messages.append(Message("user", prompt_or_messages))
        return messages
    if isinstance(prompt_or_messages, (bytes, bytearray)) or not isinstance(
        prompt_or_messages, Sequence
    ):
        raise ConfigError(
            "prompt must be a string or a list of messages, "
            f"got {type(prompt_or_messages).__name__}"
        )
    if not prompt_or_messages:
        raise ConfigError("the list of messages is empty")
    for index, item in enumerate(prompt_or_messages):
        if isinstance(item, Message):
            messages.append(item)
        elif isinstance(item, Mapping):
            missing = [key for key in ("role", "content") if key not in item]
            if missing:
                raise ConfigError(f"message {index} has no {' or '.join(missing)!s}")
            messages.append(Message(item["role"], item["content"]))
        else:
            raise ConfigError(
                f"message {index} must be a Message or a dict with role and content, "
                f"got {type(item).__name__}"
            )
    return messages


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
