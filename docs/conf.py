"""Sphinx configuration: the user guide and the API reference, built offline.

``tox -e docs`` (and tests/test_docs_build.py) build with ``-W --keep-going -n``: a warning,
a broken cross-reference included, fails the build. Nothing here fetches from the network
(no intersphinx), and the theme is alabaster, which ships with Sphinx.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document this checkout, not whatever provider_kit is installed

from provider_kit import __version__  # noqa: E402

project = "provider_kit"
author = "provider_kit contributors"
copyright = "provider_kit contributors"
release = __version__
version = ".".join(__version__.split(".")[:2])

extensions = ["sphinx.ext.autodoc"]
exclude_patterns = ["_build"]
root_doc = "index"
default_role = "literal"  # `name` in a docstring shows as code, never a dangling reference
pygments_style = "sphinx"

autodoc_member_order = "bysource"
autoclass_content = "both"  # the class docstring, then __init__'s parameters
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "alabaster"
html_title = f"provider_kit {release}"
html_theme_options = {
    "description": "LLM providers behind one plain, blocking, thread-safe interface",
    "fixed_sidebar": True,
    "show_relbars": True,
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}
html_static_path: list = []
html_show_sourcelink = False

# No intersphinx (the build is offline), so annotations naming the standard library have no
# target; they still show, as plain text. Everything of provider_kit's own must resolve.
nitpick_ignore_regex = [
    ("py:class", r"(collections\.abc|typing|datetime|pathlib|os|types|threading|concurrent\.futures|array)\..+"),
    ("py:class", r"(Path|PathLike|Mapping|Sequence|Iterable|Iterator|Generator|Callable|datetime|Executor|array)"),
    ("py:exc", r"(KeyError|TimeoutError|ConnectionError|ValueError|TypeError)"),
    # Type aliases and helpers named in annotations, which the docstrings describe in words.
    ("py:class", r"(ConfigSource|KnownTypes|MessagesInput|Chunk|Piece|RecordedHeaders|_P)"),
    ("py:class", r"provider_kit\.providers\._\w+\._P"),
    # Internal bases: the content parts' common class, HTTPProvider's feature hooks.
    ("py:class", r"(provider_kit\._parts\.)?Part|provider_kit\.providers\._features\.CallFeatures"),
    # What a provider class declares about its type (STREAM_DECODER, STREAM_STATE): private
    # building blocks, described in "Adding a provider type".
    ("py:class", r"provider_kit\.(_streaming\.StreamDecoder|providers\.(_answers\.StreamState|\w+\._\w+Stream))"),
]


def _is_public(cls):
    """Whether ``cls`` is documented under a public name: not ``_Value`` and the like, and not a
    building block that only a private module holds (``HTTPProvider``'s layers)."""
    if getattr(cls, "__name__", "").startswith("_"):
        return False
    module = getattr(cls, "__module__", "")
    if not module.startswith("provider_kit") or "._" not in module:
        return True
    package = sys.modules.get(module.split("._")[0])
    return getattr(package, cls.__name__, None) is cls


def _public_bases(app, name, obj, options, bases):
    """Show a class's public bases only: a private one is replaced by its own bases."""
    public = []
    pending = list(bases)
    while pending:
        base = pending.pop(0)
        if _is_public(base):
            public.append(base)
        else:
            pending[:0] = [b for b in base.__bases__ if b is not object]
    bases[:] = list(dict.fromkeys(public)) or [object]


def setup(app):
    app.connect("autodoc-process-bases", _public_bases)
