"""The two records a provider type's request hooks work with: what the caller asked for
(``ChatCall``) and the HTTP request that asks the server for it (``RequestSpec``)."""

from __future__ import annotations

import urllib.parse
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from .._call_args import CallArgs, OutputFormat
from .._tools import Tool
from ..types import Message


class ChatCall(CallArgs):
    """One ``complete()`` or ``stream()`` call, its arguments checked and its defaults applied:
    the ``CallArgs`` of the call with ``model`` resolved (the call's, else the provider's), and
    ``stream``. ``messages`` hold the system messages too, in order; content is a string or a
    tuple of parts. ``max_tokens``, ``temperature`` and ``stop`` are None when the caller gave
    none.

    ``tools`` (a tuple of ``Tool``), ``tool_choice`` ("auto", "none", "required" or a tool's
    name) and ``parallel_tool_calls`` are None when not given; the messages may hold assistant
    turns with ``tool_calls`` and ``ToolResult`` messages (role "tool").

    The rest are None when not given: ``output`` (an ``OutputFormat``: ``schema=`` or
    ``json=True``; its ``schema`` is shared, copy it before changing it), ``reasoning``
    ("low", "medium", "high" or False), ``top_p``, ``seed``, ``cache``; and what the call flow
    applies itself, around the type's hooks: ``max_retries``, ``extra_headers``, ``extra_body``
    (and ``timeout``, which the call flow has already turned into the call's deadline).
    """

    __slots__ = ("stream",)
    model: str

    def __init__(
        self,
        messages: List[Message],
        model: str,
        *,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        stop: Optional[List[str]] = None,
        stream: bool = False,
        output: Optional[OutputFormat] = None,
        reasoning: Union[str, bool, None] = None,
        top_p: Optional[float] = None,
        seed: Optional[int] = None,
        cache: Optional[bool] = None,
        max_retries: Optional[int] = None,
        extra_headers: Optional[Dict[str, str]] = None,
        extra_body: Optional[Dict[str, Any]] = None,
        tools: Optional[Tuple[Tool, ...]] = None,
        tool_choice: Optional[str] = None,
        parallel_tool_calls: Optional[bool] = None,
    ) -> None:
        super().__init__(
            messages, model, max_tokens, temperature, stop, None, output=output, reasoning=reasoning,
            top_p=top_p, seed=seed, max_retries=max_retries, extra_headers=extra_headers,
            extra_body=extra_body, cache=cache, tools=tools, tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
        )
        self.stream = stream

    @classmethod
    def from_args(cls, args: CallArgs, model: str, *, stream: bool) -> ChatCall:
        """The call of checked arguments ``args``, with ``model`` resolved."""
        call = cls.__new__(cls)
        for name in CallArgs.__slots__:
            setattr(call, name, getattr(args, name))
        call.model = model
        call.stream = stream
        return call

    def __repr__(self) -> str:
        # Never the headers' values (a per-call credential) nor the messages' contents.
        extra = "".join(
            f", {key}={getattr(self, key)!r}"
            for key in ("output", "reasoning", "top_p", "seed", "cache", "max_retries", "tool_choice",
                        "parallel_tool_calls")
            if getattr(self, key) is not None
        )
        if self.tools:
            extra += f", tools={[tool.name for tool in self.tools]!r}"
        if self.extra_headers:
            extra += f", extra_headers={sorted(self.extra_headers)!r}"
        if self.extra_body:
            extra += f", extra_body={sorted(self.extra_body)!r}"
        return (
            f"ChatCall(model={self.model!r}, messages={len(self.messages)}, max_tokens={self.max_tokens!r}, "
            f"temperature={self.temperature!r}, stop={self.stop!r}, stream={self.stream!r}{extra})"
        )


class RequestSpec:
    """An HTTP request relative to the provider's ``base_url``: ``path`` (starting with ``/``),
    an optional ``query`` (name -> value, URL-encoded here), a JSON ``body`` (None: no body)
    and the ``method`` (POST when there is a body, else GET)."""

    __slots__ = ("body", "method", "path", "query")

    def __init__(
        self,
        path: str,
        body: Any = None,
        *,
        query: Optional[Mapping[str, str]] = None,
        method: Optional[str] = None,
    ) -> None:
        self.path = path
        self.body = body
        self.query = dict(query) if query else None
        self.method = method or ("GET" if body is None else "POST")

    @property
    def target(self) -> str:
        """The path with its query string: what the transport appends to ``base_url``."""
        if not self.query:
            return self.path
        return f"{self.path}?{urllib.parse.urlencode(self.query)}"

    def __repr__(self) -> str:
        return f"RequestSpec({self.method} {self.target})"
