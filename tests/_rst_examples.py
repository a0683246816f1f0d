"""The code examples of README.rst and docs/*.rst, as the tests that run them see them.

An example is a ``.. code-block:: LANGUAGE`` directive and its indented body. Every ``python``
example of a page runs, in order, in one namespace; every ``toml`` example is loaded as a
configuration. An example that cannot run in the tests (it needs a real key, a web framework's
settings, a file of the reader's) says so with an rst comment on the line before its directive,
which Sphinx and GitHub do not show::

    .. skip-test: needs a Django project's settings

    .. code-block:: python

The reason is required. docs/contributing.rst documents this convention for writers.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import List, NamedTuple, Optional

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.rst"

_DIRECTIVE = re.compile(r"^( *)\.\. code-block:: *(\S+) *$")
_OPTION = re.compile(r"^ +:[\w-]+:")
SKIP_MARKER = re.compile(r"^ *\.\. skip-test:(.*)$")


class Example(NamedTuple):
    path: Path
    line: int  # of the directive, 1-based, as an editor shows it
    language: str
    code: str
    skip: Optional[str]  # the reason given by a ``.. skip-test:`` comment, else None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def examples(path: Path, language: Optional[str] = None) -> List[Example]:
    """The ``code-block`` examples of one rst file, in order (of one language when given)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: List[Example] = []
    for number, line in enumerate(lines):
        match = _DIRECTIVE.match(line)
        if not match:
            continue
        indent = len(match.group(1))
        body_start = number + 1
        while body_start < len(lines) and _OPTION.match(lines[body_start]):
            body_start += 1
        end = body_start
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
            end += 1
        code = textwrap.dedent("\n".join(lines[body_start:end])).strip("\n") + "\n"
        found.append(Example(path, number + 1, match.group(2), code, _skip_reason(lines, number)))
    return [example for example in found if language is None or example.language == language]


def skip_markers(path: Path) -> List[int]:
    """Line numbers (1-based) of every ``.. skip-test:`` comment in the file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [number + 1 for number, line in enumerate(lines) if SKIP_MARKER.match(line)]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _skip_reason(lines: List[str], directive: int) -> Optional[str]:
    previous = directive - 1
    while previous >= 0 and not lines[previous].strip():
        previous -= 1
    match = SKIP_MARKER.match(lines[previous]) if previous >= 0 else None
    return match.group(1).strip() if match else None


def doc_pages() -> List[Path]:
    return sorted(DOCS.glob("*.rst"))
