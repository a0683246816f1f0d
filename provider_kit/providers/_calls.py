"""The two records a provider type's request hooks work with: what the caller asked for
(``ChatCall``) and the HTTP request that asks the server for it (``RequestSpec``)."""

from __future__ import annotations

import urllib.parse
from typing import Any, Dict, List, Mapping, Optional, Union

from .._call_args import CallArgs, OutputFormat
from ..types import Message


class ChatCall:
    """One ``complete()`` or ``stream()`` call, its arguments checked and its defaults applied:
    ``messages`` (system messages included, in order; content a string or a tuple of parts),
    ``model`` (the call's, else the provider's), ``max_tokens``, ``temperature`` and ``stop``
    (None when the caller gave none), and ``stream``.

    The rest are None when not given: ``output`` (an ``OutputFormat``: ``schema=`` or
    ``json=True``; its ``schema`` is shared, copy it before changing it), ``reasoning``
    ("low", "medium", "high" or False), ``top_p``, ``seed``, ``cache``; and what the call flow
    applies itself, around the type's hooks: ``max_retries``, ``extra_headers``, ``extra_body``.
    """

    __slots__ = (
        "cache",
        "extra_body",
        "extra_headers",
        "max_retries",
        "max_tokens",
        "messages",
        "model",
        "output",
        "reasoning",
        "seed",
        "stop",
        "stream",
        "temperature",
        "top_p",
    )

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
    ) -> None:
        self.messages = messages
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.stop = stop
        self.stream = stream
        self.output = output
        self.reasoning = reasoning
        self.top_p = top_p
        self.seed = seed
        self.cache = cache
        self.max_retries = max_retries
        self.extra_headers = extra_headers
        self.extra_body = extra_body

    @classmethod
    def from_args(cls, args: CallArgs, model: str, *, stream: bool) -> ChatCall:
        """The call of checked arguments ``args``, with ``model`` resolved."""
        return cls(
            args.messages,
            model,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            stop=args.stop,
            stream=stream,
            output=args.output,
            reasoning=args.reasoning,
            top_p=args.top_p,
            seed=args.seed,
            cache=args.cache,
            max_retries=args.max_retries,
            extra_headers=args.extra_headers,
            extra_body=args.extra_body,
        )

    def __repr__(self) -> str:
        # Never the headers' values (a per-call credential) nor the messages' contents.
        extra = "".join(
            f", {key}={getattr(self, key)!r}"
            for key in ("output", "reasoning", "top_p", "seed", "cache", "max_retries")
            if getattr(self, key) is not None
        )
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
