"""The package is built in named layers, and a module imports only from its own layer or lower
ones (a cheaper stand-in for import-linter). docs/architecture.rst describes the same layers.

Only the transport imports ``requests`` or ``urllib3``; nothing imports asyncio or an SDK.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from _kinds import KINDS

PACKAGE = Path(__file__).resolve().parent.parent / "provider_kit"

#: The layers from the bottom up: each one's name, then its modules (a package stands for every
#: module inside it). A module may import from its own layer and the layers listed before it.
LAYERS: List[Tuple[str, Tuple[str, ...]]] = [
    ("errors", ("provider_kit._version", "provider_kit.errors", "provider_kit._secrets")),
    ("display", ("provider_kit._display",)),  # text and HTML tables for the value types
    # the value types, the content parts and their common base
    ("values", ("provider_kit.types", "provider_kit._messages", "provider_kit._parts", "provider_kit._value",
                "provider_kit._progress", "provider_kit._tools", "provider_kit._tool_schema",
                "provider_kit._tool_docstring", "provider_kit._rate_limits", "provider_kit._embeddings",
                # CallRecord and the on_call hooks; registry.usage()'s counter and report
                "provider_kit._call_record", "provider_kit._usage")),
    # checks of arguments and options; the structured-output step every provider shares
    ("call arguments", ("provider_kit._call_args", "provider_kit._options", "provider_kit._structured")),
    (
        "foundations",
        (
            "provider_kit.config",
            "provider_kit._streaming",
            "provider_kit._retry",
            "provider_kit._breaker",
            "provider_kit._error_bodies",
            "provider_kit._limiter",
            "provider_kit._call_log",  # the SQLite call log
            "provider_kit._response_cache",  # the response cache's SQLite file
        ),
    ),
    ("transport", ("provider_kit._transport",)),  # the only importer of requests and urllib3
    ("providers", ("provider_kit.providers",)),
    ("plugins", ("provider_kit._plugins",)),  # provider types by name
    ("routing", ("provider_kit._routing", "provider_kit._tool_loop")),  # fallbacks, breakers, batches; run_tools
    (
        "registry",
        ("provider_kit.registry", "provider_kit._building", "provider_kit._health", "provider_kit._shared_registry",
         "provider_kit._executor"),  # map on an executor: the registry's worker-side copy
    ),
    ("public surface", ("provider_kit",)),  # __init__ re-exports the layers below
    ("testing", ("provider_kit.testing",)),  # a side module: nothing in the library imports it
    (
        "command line",
        (
            "provider_kit._serve",
            "provider_kit._demo",
            "provider_kit._cli_parser",
            "provider_kit._cli_serve",
            "provider_kit._cli_complete",
            "provider_kit._cli_logs",
            "provider_kit._cli_cache",
            "provider_kit.cli",
            "provider_kit.__main__",
        ),
    ),
]

#: Module (or package) -> the position of its layer in LAYERS.
LEVEL: Dict[str, int] = {module: level for level, (_, modules) in enumerate(LAYERS) for module in modules}


def _group(module: str) -> str:
    """The entry of LEVEL that ``module`` belongs to: itself, or its closest listed package."""
    while module not in LEVEL:
        module = module.rpartition(".")[0]
        assert module, "every module must be in LAYERS"
    return module


def _level(module: str) -> int:
    return LEVEL[_group(module)]


def _layer_name(module: str) -> str:
    return LAYERS[_level(module)][0]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:  # from . import x
                    for alias in node.names:
                        yield f"{target}.{alias.name}"
                    continue
                yield target
            elif node.module:
                yield node.module


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_exactly_one_layer():
    listed = [module for _, modules in LAYERS for module in modules]
    assert len(listed) == len(set(listed)), "a module is listed in two layers"
    for path in SOURCES:
        _group(_module_name(path))  # fails for a module no layer lists
    names = [_module_name(path) for path in SOURCES]
    for module in listed:  # and a layer must not list a module that no longer exists
        assert any(name == module or name.startswith(module + ".") for name in names), module


def _upward_imports(path: Path, module: str) -> List[str]:
    """What ``module`` (at ``path``) imports from a layer above its own, described."""
    found = []
    for imported in _imports(path, module):
        if not (imported == "provider_kit" or imported.startswith("provider_kit.")):
            continue
        if path.name == "__init__.py" and imported.startswith(module + "."):
            continue  # a package re-exporting its own submodules
        if _level(imported) > _level(module):
            found.append(
                f"{module} (layer {_layer_name(module)!r}) imports {imported} (layer {_layer_name(imported)!r})"
            )
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_from_a_higher_layer(path):
    assert _upward_imports(path, _module_name(path)) == []


def test_the_rule_catches_an_upward_import_and_allows_its_own_layer(tmp_path):
    # The check must be able to fail: a foundations module importing the registry is caught,
    # one importing a module of its own layer or of a lower one is not.
    rogue = tmp_path / "config.py"
    rogue.write_text("from .registry import ProviderRegistry\nfrom . import _retry, types\n", encoding="utf-8")
    assert _upward_imports(rogue, "provider_kit.config") == [
        "provider_kit.config (layer 'foundations') imports provider_kit.registry (layer 'registry')"
    ]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_transport_imports_requests(path):
    module = _module_name(path)
    for imported in _imports(path, module):
        if imported.split(".")[0] in ("requests", "urllib3"):
            assert _group(module) == "provider_kit._transport", f"{module} imports {imported}"
        # Nor an async stack, nor a vendor's SDK (each named like the built-in type it serves).
        forbidden = ("asyncio", "httpx", "aiohttp", "pydantic", "litellm", *KINDS)
        assert imported.split(".")[0] not in forbidden
