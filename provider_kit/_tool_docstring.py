"""The descriptions in a docstring, for a tool made from a function: the text before the
first section, and each parameter's text from a Google ("Args:"), NumPy ("Parameters" over a
dashed line) or Sphinx (":param name:") docstring.

Imported with ``_tool_schema``, on the first function tool.
"""

from __future__ import annotations

import inspect
import re
from typing import Dict, List, Optional, Tuple

__all__ = ["parse_docstring"]


#: Section headers of Google ("Args:") and NumPy ("Parameters" over a dashed line) docstrings.
_SECTION = re.compile(
    r"(args|arguments|parameters|params|keyword args|keyword arguments|other parameters|attributes|returns?|"
    r"yields?|raises|exceptions|examples?|notes?|see also|references|warnings?|todo|methods)\s*:?",
    re.IGNORECASE,
)
_PARAMETER_SECTIONS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments",
                       "other parameters", "attributes"}
_SPHINX_FIELD = re.compile(r":(\w+)([^:]*):\s*(.*)")
_SPHINX_PARAMETER = {"param", "parameter", "arg", "argument", "key", "keyword", "ivar", "var", "cvar"}
_GOOGLE_ENTRY = re.compile(r"\**(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)")
_NUMPY_ENTRY = re.compile(r"\**(\w+(?:\s*,\s*\**\w+)*)\s*(?::.*)?")


def parse_docstring(docstring: Optional[str]) -> Tuple[str, Dict[str, str]]:
    """``(description, {parameter: description})`` of a cleaned docstring: the description is
    the text before the first section (Google, NumPy or Sphinx), the parameters come from the
    "Args"/"Parameters"/"Attributes" sections or ``:param name:`` fields."""
    if not docstring:
        return "", {}
    lines = inspect.cleandoc(docstring).splitlines()
    documented: Dict[str, str] = {}
    start = len(lines)
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        numpy = (index + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[index + 1].strip() or "x") is not None)
        header = _SECTION.fullmatch(stripped)
        if header and not line[:1].isspace() and (numpy or stripped.endswith(":")):
            start = min(start, index)
            body_start = index + (2 if numpy else 1)
            end = _section_end(lines, body_start, numpy)
            if header.group(1).lower() in _PARAMETER_SECTIONS:
                documented.update(_entries(lines[body_start:end], numpy))
            index = end
            continue
        field = _SPHINX_FIELD.fullmatch(stripped) if stripped.startswith(":") else None
        if field and not line[:1].isspace():
            start = min(start, index)
            end = index + 1
            while end < len(lines) and lines[end][:1].isspace():
                end += 1
            if field.group(1).lower() in _SPHINX_PARAMETER and field.group(2).split():
                text = " ".join([field.group(3).strip()] + [extra.strip() for extra in lines[index + 1:end]])
                documented[field.group(2).split()[-1].lstrip("*")] = text.strip()
            index = end
            continue
        index += 1
    description = "\n".join(lines[:start]).strip()
    return description, {name: text for name, text in documented.items() if text}


def _section_end(lines: List[str], start: int, numpy: bool) -> int:
    """Where a section's body ends: at the next header (a Google body is indented)."""
    end = start
    while end < len(lines):
        line = lines[end]
        if line.strip() and not line[:1].isspace():
            following = lines[end + 1].strip() if end + 1 < len(lines) else ""
            if not numpy or re.fullmatch(r"-{3,}", following) or _SPHINX_FIELD.fullmatch(line.strip()):
                break
        end += 1
    return end


def _entries(body: List[str], numpy: bool) -> Dict[str, str]:
    """``{name: text}`` of a section's entries: an entry starts at the body's least indent, its
    text continues on more indented lines."""
    present = [line for line in body if line.strip()]
    if not present:
        return {}
    indent = min(len(line) - len(line.lstrip()) for line in present)
    entries: Dict[str, List[str]] = {}
    current: Optional[List[str]] = None
    for line in present:
        if len(line) - len(line.lstrip()) == indent:
            text = line.strip()
            match = (_NUMPY_ENTRY if numpy else _GOOGLE_ENTRY).fullmatch(text)
            if match is None:
                current = None
                continue
            current = [] if numpy else [match.group(2)]
            for name in match.group(1).split(","):
                entries[name.strip().lstrip("*")] = current
        elif current is not None:
            current.append(line.strip())
    return {name: " ".join(part for part in parts if part) for name, parts in entries.items()}
