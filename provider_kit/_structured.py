"""The shared half of structured output: from a reply's final text and finish reason to
``data`` (the parsed JSON) and ``parsed`` (the schema class's instance, else ``data``).

One function for ``complete``, a stream's final chunk and ``FakeProvider``, so the three agree
on every case. The other half, how a schema is asked for on the wire, is each protocol's
(``HTTPProvider._apply_output_format``). The checks follow the order the SDKs use: the finish
reason first (a refusal is no parse error; a reply cut short by ``max_tokens`` is), then the JSON,
then the class. ``json`` is imported when a reply is parsed, not with provider_kit.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

from ._call_args import OutputFormat
from .errors import ResponseFormatError

#: The most characters of a reply a ``ResponseFormatError`` message quotes (its ``body`` has it all).
EXCERPT_CHARS = 200
#: The most characters of a reply kept as the error's ``body``.
BODY_CHARS = 64 * 1024


def structured_result(
    output: Optional[OutputFormat],
    text: str,
    finish_reason: Optional[str],
    *,
    provider: str,
    request_id: Optional[str] = None,
    redact: Callable[[str], str] = str,
) -> Tuple[Any, Any]:
    """``(data, parsed)`` for a reply to a call with ``output`` (``schema=``/``json=True``);
    ``(None, None)`` for a call without, and for a refusal (``finish_reason`` "content_filter":
    the refusal is in the text, and is reported as such, not as a parse error).

    :param redact: masks secrets in what the error quotes (the provider's redactor).
    :raises ResponseFormatError: for a reply cut short by ``max_tokens`` (``finish_reason``
        "length"), one that is not valid JSON, or JSON the class cannot be built from. The
        message quotes an excerpt; ``body`` holds the reply's text and ``finish_reason`` its
        finish reason.
    """
    if output is None or finish_reason == "content_filter":
        return None, None

    def error(problem: str) -> ResponseFormatError:
        failure = ResponseFormatError(
            redact(f"{provider}: {problem}; the reply: {_excerpt(text)!r}"),
            provider=provider,
            request_id=request_id,
            body=redact(text[:BODY_CHARS]),
        )
        failure.finish_reason = finish_reason
        return failure

    if finish_reason == "length":
        raise error("the reply was cut short by max_tokens before its JSON was complete (finish_reason "
                    "'length'); raise max_tokens")
    import json

    try:
        data = json.loads(_unfenced(text))
    except RecursionError:
        raise error("the reply's JSON is nested too deeply to parse") from None
    except ValueError as problem:
        what = "the reply is empty, not JSON" if not text.strip() else f"the reply is not valid JSON ({problem})"
        raise error(what) from None
    cls = output.cls
    if cls is None:
        return data, data
    try:
        validate = getattr(cls, "model_validate", None)
        if callable(validate):
            parsed = validate(data)
        elif isinstance(data, dict):
            parsed = cls(**data)
        else:
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    except Exception as problem:  # the class's own validation error, whatever its type
        detail = " ".join(str(problem).split())
        if len(detail) > EXCERPT_CHARS:
            detail = detail[: EXCERPT_CHARS - 3] + "..."
        raise error(f"the reply's JSON does not fit {cls.__name__} ({type(problem).__name__}: {detail})") from None
    return data, parsed


def _unfenced(text: str) -> str:
    """``text`` without a Markdown code fence around it (```json ... ```), which some servers'
    JSON modes still add; anything else as it is."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```") and len(stripped) > 6:
        body = stripped[3:-3]
        first, newline, rest = body.partition("\n")
        return rest if newline and (first.strip().isalnum() or not first.strip()) else body
    return text


def _excerpt(text: str) -> str:
    if len(text) <= EXCERPT_CHARS:
        return text
    head = EXCERPT_CHARS * 2 // 3
    return f"{text[:head]} ... {text[-(EXCERPT_CHARS - head - 5):]}"
