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

import base64
import contextlib
import io
import re
import textwrap
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional

import pytest

from provider_kit import Provider, ProviderRegistry
from provider_kit.providers import BUILTIN_TYPES, PROVIDER_TYPES
from provider_kit.testing import LoopbackServer

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
    first_line: int  # of the code in the file, 1-based

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def compiled(self) -> object:
        """The code compiled so that a traceback names the rst file and its own line numbers."""
        return compile("\n" * (self.first_line - 1) + self.code, str(self.path), "exec")


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
        while body_start < end and not lines[body_start].strip():
            body_start += 1
        code = textwrap.dedent("\n".join(lines[body_start:end])).rstrip("\n") + "\n"
        skip = _skip_reason(lines, number)
        found.append(Example(path, number + 1, match.group(2), code, skip, body_start + 1))
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


#: The files the examples read, as a reader would have them in the working directory:
#: ``receipt.jpg`` (a 1x1 JPEG: the simulators describe an image by its type and size).
EXAMPLE_FILES = {
    "receipt.jpg": base64.b64decode(
        "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP" + "/" * 86 + "wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQABPxA="
    ),
}

#: Real API addresses the examples may name, and the simulator (type) standing in for each: each
#: built-in type's and each preset's default address (a type with no default host, Azure, is
#: reached through its base-URL variable).
ADDRESSES = {cls.DEFAULT_BASE_URL: type_name for type_name, cls in PROVIDER_TYPES.items() if cls.DEFAULT_BASE_URL}


@contextlib.contextmanager
def simulated_world(monkeypatch: pytest.MonkeyPatch, config: str) -> Iterator[Dict[str, LoopbackServer]]:
    """``config`` as ./provider_kit.toml, every API address in it pointing at a local simulator;
    the key variables set and the base-URL variables naming the simulators, so that what the
    examples build from the environment reaches them too; the files of ``EXAMPLE_FILES`` beside it."""
    with contextlib.ExitStack() as stack:
        # A simulator per protocol, and one per preset the config names (by address, table
        # name or type): the preset reaches it through its base-URL variable or its address.
        named = [kind for real, kind in ADDRESSES.items()
                 if real in config or re.search(rf'\[providers\.{kind}\]|type = "{kind}"', config)]
        servers = {kind: stack.enter_context(LoopbackServer(kind)) for kind in dict.fromkeys([*BUILTIN_TYPES, *named])}
        for real, kind in ADDRESSES.items():
            if kind in servers:
                config = config.replace(real, servers[kind].base_url)
        assert not re.search(r"https?://(?!127\.0\.0\.1)", config), "only loopback addresses"
        Path("provider_kit.toml").write_text(config, encoding="utf-8")
        for name, content in EXAMPLE_FILES.items():
            Path(name).write_bytes(content)
        for type_name in servers:
            cls = PROVIDER_TYPES[type_name]
            if cls.API_KEY_ENV and cls.REQUIRES_KEY:
                monkeypatch.setenv(cls.API_KEY_ENV, "sk-docs-example-key")
            if cls.BASE_URL_ENV:
                monkeypatch.setenv(cls.BASE_URL_ENV, servers[type_name].base_url)
        yield servers


def run_examples(path: Path) -> str:
    """Run the file's python examples in order, in one namespace; what they printed.

    Whatever registry or provider they leave open is closed afterwards."""
    namespace: dict = {"__name__": f"docs_example_{path.stem}"}
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output):
            for example in examples(path, "python"):
                if example.skip is None:
                    exec(example.compiled(), namespace)
    finally:
        for value in namespace.values():
            if isinstance(value, (ProviderRegistry, Provider)):
                value.close()
    return output.getvalue()


def setup_commands() -> List[str]:
    """The commands of README's first literal block: the set-up a new user runs."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"::\n\n((?:    .*\n)+)", text)
    assert block is not None, "README.rst lost its set-up commands"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]
