"""The two records a provider type's request hooks work with: what the caller asked for
(``ChatCall``) and the HTTP request that asks the server for it (``RequestSpec``)."""

from __future__ import annotations

import urllib.parse
from typing import Any, List, Mapping, Optional

from ..types import Message


class ChatCall:
    """One ``complete()`` or ``stream()`` call, its arguments checked and its defaults applied:
    ``messages`` (system messages included, in order), ``model`` (the call's, else the
    provider's), ``max_tokens``, ``temperature`` and ``stop`` (None when the caller gave none),
    and ``stream``."""

    __slots__ = ("max_tokens", "messages", "model", "stop", "stream", "temperature")

    def __init__(
        self,
        messages: List[Message],
        model: str,
        *,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        stop: Optional[List[str]] = None,
        stream: bool = False,
    ) -> None:
        self.messages = messages
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.stop = stop
        self.stream = stream

    def __repr__(self) -> str:
        return (
            f"ChatCall(model={self.model!r}, messages={len(self.messages)}, max_tokens={self.max_tokens!r}, "
            f"temperature={self.temperature!r}, stop={self.stop!r}, stream={self.stream!r})"
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
