"""Modules import only from lower layers: errors -> types -> config/_streaming -> _transport ->
providers -> registry -> cli. A cheaper stand-in for import-linter."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "provider_kit"

LAYERS = {
    "provider_kit._version": 0,
    "provider_kit.errors": 0,
    "provider_kit._secrets": 0,  # the one redactor; imports nothing from the package
    "provider_kit._display": 0.5,  # text and HTML tables for the value types
    "provider_kit.types": 1,
    "provider_kit._call_args": 1.5,  # the one check of call arguments
    "provider_kit._options": 1.5,  # option validators
    "provider_kit.config": 2,
    "provider_kit._streaming": 2,
    "provider_kit._breaker": 2,
    "provider_kit._retry": 2,
    "provider_kit._error_bodies": 2,
    "provider_kit._progress": 1,
    "provider_kit._plugins": 4.5,
    "provider_kit._routing": 4.7,
    "provider_kit._health": 4.7,
    "provider_kit._transport": 3,
    "provider_kit.providers": 4,
    "provider_kit.registry": 5,
    "provider_kit": 6,  # __init__ re-exports layers 0-5
    "provider_kit.testing": 7,  # side: for tests and users; nothing in the library imports it
    "provider_kit._serve": 7.5,  # the simulators of `provider-kit serve` and `demo`
    "provider_kit._demo": 8,
    "provider_kit._cli_parser": 8.5,
    "provider_kit._cli_serve": 8.5,
    "provider_kit.cli": 9,
    "provider_kit.__main__": 10,
}


def _group(module: str) -> str:
    while module not in LAYERS:
        module = module.rpartition(".")[0]
        assert module, "every module must be in LAYERS"
    return module


def _layer(module: str) -> int:
    return LAYERS[_group(module)]


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


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_upward(path):
    module = _module_name(path)
    own = _layer(module)
    for imported in _imports(path, module):
        if not (imported == "provider_kit" or imported.startswith("provider_kit.")):
            continue
        target = _layer(imported)
        if path.name == "__init__.py" and imported.startswith(module + "."):
            continue  # a package re-exporting its own submodules
        same_group = _group(imported) == _group(module) != "provider_kit"
        assert target < own or same_group, f"{module} (layer {own}) imports {imported} (layer {target})"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_transport_imports_requests(path):
    module = _module_name(path)
    for imported in _imports(path, module):
        if imported.split(".")[0] in ("requests", "urllib3"):
            assert _group(module) == "provider_kit._transport", f"{module} imports {imported}"
        forbidden = ("asyncio", "httpx", "aiohttp", "pydantic", "openai", "anthropic", "ollama", "litellm")
        assert imported.split(".")[0] not in forbidden
