"""Reading error bodies of every shape: JSON from each API, plain text, HTML from a proxy;
and the request id a response carries."""

from __future__ import annotations

import json
import re
from typing import Mapping, Optional

#: Headers naming the request, the APIs' own first (OpenAI, Anthropic), then those a proxy sets
#: in front of a server that sends none (LiteLLM's call id, which its logs and UI show).
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-litellm-call-id")
#: The longest server message kept in ``str(error)``; ``error.body`` holds the whole body.
MAX_MESSAGE_CHARS = 1000

# An HTML error page from a proxy or load balancer: its <title> says it best ("502 Bad Gateway").
_HTML_START = re.compile(r"\s*<(!doctype|html|head|body|title)\b", re.IGNORECASE)
_HTML_TITLE = re.compile(r"<title[^>]*>([^<]*)</title>", re.IGNORECASE)
_HTML_TAG = re.compile(r"<[^<>]*>")
#: Only this much of an HTML page is looked at: enough for any title, and the regular
#: expressions stay fast whatever a hostile page contains.
_HTML_SCAN_CHARS = 8192


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` with every run of whitespace (newlines, blank lines, indents) made one space,
    cut to ``limit`` characters: a server message as ``str(error)`` quotes it."""
    squashed = " ".join(text.split())
    return squashed if len(squashed) <= limit else squashed[: limit - 3].rstrip() + "..."


def header_request_id(headers: Mapping[str, str]) -> Optional[str]:
    """The request id from the first of ``REQUEST_ID_HEADERS`` present (case-insensitively)."""
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value and value.strip():
            return value.strip()
    return None


def body_request_id(text: str) -> Optional[str]:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    value = data.get("request_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def error_message(text: str) -> str:
    """The human message of an error body, whatever its shape (PROTOCOLS.md §D.11).

    ``error.message`` (OpenAI, Anthropic, vLLM, OpenRouter), else ``error`` as a string (Ollama),
    else a top-level ``message`` (old vLLM), else the title of an HTML page (from a proxy, say)
    or the start of the raw text; always on one line.
    """
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return one_line(error["message"])
        if isinstance(error, str):
            return one_line(error)
        if isinstance(data.get("message"), str):
            return one_line(data["message"])
    if _HTML_START.match(text):
        head = text[:_HTML_SCAN_CHARS]
        title = _HTML_TITLE.search(head)
        text = title.group(1) if title and title.group(1).strip() else _HTML_TAG.sub(" ", head)
    return one_line(text[:_HTML_SCAN_CHARS], 200)
