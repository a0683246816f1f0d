"""The per-protocol extension points for what goes beyond plain text (images, structured output,
reasoning, prompt caching, ``top_p``/``seed``), and ``extra_body``; mixed into ``HTTPProvider``.

Every default REFUSES: a protocol that has not said how to send a feature gets a
``ConfigError`` naming its type and the feature, before anything is sent, never a request
the server would misread or an argument silently dropped. A protocol opts in per feature:

``_content_parts(message) -> wire content``
    A message's content as the wire takes it. Called by the type's ``_build_request`` for each
    message. Default: the string; a list of text parts as their text (joined by newlines);
    anything else (an ``Image``) refused.
``STRUCTURED_OUTPUT_MODES`` + ``_apply_output_format(body, call)``
    The modes the type can ask for ("schema", "json"); the hook writes ``call.output`` into
    the body (``response_format``, ``output_config.format``, ``format``). A mode not listed is
    refused before the hook runs.
``REASONING_LEVELS`` + ``_apply_reasoning(body, call)``
    The ``reasoning=`` values the type honours ("low", "medium", "high", False); the hook maps
    ``call.reasoning`` to the body (``reasoning_effort``, ``thinking``, ``think``).
``SAMPLING_OPTIONS`` + ``_apply_sampling(body, call)``
    Which of "top_p" and "seed" the type sends; the hook writes them.
``_apply_cache(body, call)``
    ``cache=True``: mark the prompt for caching (Anthropic's ``cache_control``). Default: refused.
``TOOL_CHOICES`` + ``PARALLEL_TOOL_CALLS`` + ``_apply_tools(body, call)``
    The ``tool_choice`` forms the type can express ("auto", "none", "required", "name": one
    named tool; empty: no tool calling at all, ``tools=`` refused), whether it can ask for
    ``parallel_tool_calls=False``, and the hook writing ``call.tools`` and the choice into the
    body. The type's ``_build_request`` sends the tool turns of the history (assistant
    ``tool_calls``, ``ToolResult`` messages) in its own shape.

The call flow (``_apply_features``) runs after ``_build_request``: the refusals, then the
hooks, then ``extra_body`` merged in (``_merge_extra_body``), once here for every protocol.
Its cost for a plain call is one test.
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, FrozenSet, Optional, Union

from .._parts import Text
from ..errors import ConfigError, UnsupportedFeatureError
from ..types import Message
from ._calls import ChatCall, RequestSpec

#: What each ``reasoning=`` value reads as in a refusal.
_LEVEL_NAMES = {False: "reasoning=False", "low": "reasoning='low'", "medium": "reasoning='medium'",
                "high": "reasoning='high'"}


class CallFeatures:
    """The extension points of ``HTTPProvider`` for the features beyond plain text (see the
    module docstring); mixed in, so that the call flow's own module stays about the flow."""

    #: The structured-output modes the type can ask for: "schema" (``schema=``) and "json"
    #: (``json=True``). Empty: both are refused before sending.
    STRUCTURED_OUTPUT_MODES: ClassVar[FrozenSet[str]] = frozenset()
    #: The ``reasoning=`` values the type honours ("low", "medium", "high", False).
    REASONING_LEVELS: ClassVar[FrozenSet[Union[str, bool]]] = frozenset()
    #: The sampling arguments the type sends: "top_p", "seed".
    SAMPLING_OPTIONS: ClassVar[FrozenSet[str]] = frozenset()
    #: The ``tool_choice`` forms the type can express: "auto", "none", "required", "name" (one
    #: named tool). Empty: the type has no tool calling, and ``tools=`` is refused.
    TOOL_CHOICES: ClassVar[FrozenSet[str]] = frozenset()
    #: Whether the type can ask for one call at most (``parallel_tool_calls=False``).
    PARALLEL_TOOL_CALLS: ClassVar[bool] = False

    # Provided by HTTPProvider.
    TYPE: ClassVar[str]
    _where: str

    def _refuse(self, feature: str, why: str = "") -> UnsupportedFeatureError:
        """The error for a feature this type cannot send: it names the type and the feature."""
        reason = why or f"the {self.TYPE} provider type does not support it"
        return UnsupportedFeatureError(f"{self._where}: {feature}: {reason}")

    # -- content

    def _content_parts(self, message: Message) -> Any:
        """``message``'s content as the wire takes it (the type's ``_build_request`` calls this
        for each message). Default: a string; text parts joined by newlines; other parts refused.

        :raises ConfigError: for a part the type cannot send.
        """
        content = message.content
        if isinstance(content, str):
            return content
        for part in content:
            if not isinstance(part, Text):
                raise self._refuse(f"{type(part).__name__.lower()} parts in a {message.role!r} message")
        return message.text

    # -- the call flow's step after _build_request

    def _apply_features(self, request: RequestSpec, call: ChatCall) -> None:
        """Refuse what the type cannot send, let its hooks write the rest into the body, then
        merge ``extra_body``. Every refusal happens before anything is sent."""
        body = request.body
        if call.output is not None:
            if call.output.mode not in self.STRUCTURED_OUTPUT_MODES:
                argument = "schema=" if call.output.mode == "schema" else "json=True"
                raise self._refuse(f"structured output ({argument})")
            self._apply_output_format(body, call)
        if call.reasoning is not None:
            if call.reasoning not in self.REASONING_LEVELS:
                honoured = ", ".join(_LEVEL_NAMES[level] for level in _LEVEL_NAMES if level in self.REASONING_LEVELS)
                raise self._refuse(
                    _LEVEL_NAMES[call.reasoning],
                    f"the {self.TYPE} provider type cannot honour it"
                    + (f" (it takes {honoured})" if honoured else " (it has no reasoning control)"),
                )
            self._apply_reasoning(body, call)
        if call.top_p is not None or call.seed is not None:
            for name in ("top_p", "seed"):
                if getattr(call, name) is not None and name not in self.SAMPLING_OPTIONS:
                    raise self._refuse(name)
            self._apply_sampling(body, call)
        if call.cache:
            self._apply_cache(body, call)
        if call.tools is not None:
            self._check_tool_options(call)
            self._apply_tools(body, call)
        if call.extra_body:
            request.body = self._merge_extra_body(body, call.extra_body)

    def _check_tool_options(self, call: ChatCall) -> None:
        if not self.TOOL_CHOICES:
            raise self._refuse("tools=", f"the {self.TYPE} provider type has no tool calling")
        choice = call.tool_choice
        if choice is not None:
            form = choice if choice in ("auto", "none", "required") else "name"
            if form not in self.TOOL_CHOICES:
                shown = "tool_choice=" + repr(choice)
                raise self._refuse(shown, f"the {self.TYPE} provider type cannot ask for "
                                   + ("a named tool" if form == "name" else f"{choice!r}"))
        if call.parallel_tool_calls is False and not self.PARALLEL_TOOL_CALLS:
            raise self._refuse("parallel_tool_calls=False",
                               f"the {self.TYPE} provider type cannot limit a turn to one call")

    # -- the hooks a protocol overrides (each runs only for a call that asks for its feature)

    def _apply_tools(self, body: Dict[str, Any], call: ChatCall) -> None:
        """Write ``call.tools``, ``call.tool_choice`` and ``call.parallel_tool_calls`` (those not
        None; already checked against ``TOOL_CHOICES``) into ``body``."""
        raise self._refuse("tools=")

    def _apply_output_format(self, body: Dict[str, Any], call: ChatCall) -> None:
        """Write ``call.output`` (mode "schema" or "json") into ``body``."""
        raise self._refuse("structured output")

    def _apply_reasoning(self, body: Dict[str, Any], call: ChatCall) -> None:
        """Write ``call.reasoning`` ("low", "medium", "high" or False) into ``body``."""
        raise self._refuse("reasoning")

    def _apply_sampling(self, body: Dict[str, Any], call: ChatCall) -> None:
        """Write ``call.top_p`` and ``call.seed`` (those not None) into ``body``."""
        raise self._refuse("top_p / seed")

    def _apply_cache(self, body: Dict[str, Any], call: ChatCall) -> None:
        """Mark the prompt for caching (``cache=True``)."""
        raise self._refuse("cache=True", f"the {self.TYPE} provider type has no prompt caching to ask for")

    # -- extra_body

    def _merge_extra_body(self, body: Optional[Dict[str, Any]], extra: Dict[str, Any]) -> Dict[str, Any]:
        """``body`` with ``extra`` merged in: objects are merged key by key (an ``options``
        table keeps provider_kit's entries beside the caller's), and a value provider_kit set
        is never overwritten.

        :raises ConfigError: naming the first key (as a dotted path) that collides.
        """
        merged = dict(body or {})
        _merge(merged, extra, self, "")
        return merged


def _merge(target: Dict[str, Any], extra: Dict[str, Any], provider: CallFeatures, prefix: str) -> None:
    for key, value in extra.items():
        path = f"{prefix}{key}"
        if key not in target:
            target[key] = value
        elif isinstance(target[key], dict) and isinstance(value, dict):
            target[key] = inner = dict(target[key])  # the protocol's dict may be shared
            _merge(inner, value, provider, f"{path}.")
        else:
            raise ConfigError(
                f"{provider._where}: extra_body key {path!r} collides with one provider_kit sets for this call; "
                "use the call's own argument for it (extra_body only adds what provider_kit does not send)"
            )
