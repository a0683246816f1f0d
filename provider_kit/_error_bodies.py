"""Reading error bodies of every shape: JSON from each API, plain text, HTML from a proxy."""

from __future__ import annotations

import json
import re
from typing import Optional

# An HTML error page from a proxy or load balancer: its <title> says it best ("502 Bad Gateway").
_HTML_START = re.compile(r"\s*<(!doctype|html|head|body|title)\b", re.IGNORECASE)
_HTML_TITLE = re.compile(r"<title[^>]*>([^<]*)</title>", re.IGNORECASE)
_HTML_TAG = re.compile(r"<[^<>]*>")
#: Only this much of an HTML page is looked at: enough for any title, and the regular
#: expressions stay fast whatever a hostile page contains.
_HTML_SCAN_CHARS = 8192


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
    or the start of the raw text.
    """
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(data.get("message"), str):
            return str(data["message"])
    if _HTML_START.match(text):
        head = text[:_HTML_SCAN_CHARS]
        title = _HTML_TITLE.search(head)
        text = title.group(1) if title and title.group(1).strip() else _HTML_TAG.sub(" ", head)
    squashed = " ".join(text.split())
    return squashed[:200]
