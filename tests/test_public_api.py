"""The public surface: names exported, import cost, and what import leaves out."""

from __future__ import annotations

import ast
import copy
import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _kinds import KINDS

import provider_kit
from provider_kit import errors
from provider_kit.providers import BUILTIN_TYPES


def test_all_lists_exactly_the_public_names():
    for name in provider_kit.__all__:  # every name resolves (run_tools is loaded on first use)
        getattr(provider_kit, name)
    public = {name for name in vars(provider_kit) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(provider_kit, name)).__name__ == "module"}
    assert sorted(provider_kit.__all__) == sorted((public - modules - {"annotations"}) | {"__version__"})
    assert provider_kit.__all__ == sorted(provider_kit.__all__, key=str)


@pytest.mark.parametrize("cls", list(BUILTIN_TYPES.values()), ids=lambda cls: cls.__name__)
def test_builtin_providers_are_exported_and_satisfy_the_protocol(cls):
    # Every class with a wire of its own is a top-level name, as its users import it.
    assert getattr(provider_kit, cls.__name__) is cls and cls.__name__ in provider_kit.__all__
    provider = cls(api_key="sk-test-000000000000", base_url="http://127.0.0.1:9")
    try:
        assert isinstance(provider, provider_kit.Provider)
    finally:
        provider.close()


def test_provider_factory_is_the_registry():
    assert provider_kit.ProviderFactory is provider_kit.ProviderRegistry


def test_every_exported_value_type_lives_in_types():
    # CircuitState is a snapshot like HealthStatus: the value types share one module, and the
    # breaker keeps only the mechanism.
    from provider_kit import _breaker, types

    for name in ("CircuitState", "Completion", "HealthReport", "HealthStatus", "Message", "StreamChunk", "Usage"):
        assert getattr(provider_kit, name) is getattr(types, name)
        assert name in types.__all__
    assert "CircuitState" not in vars(_breaker).get("__all__", ())
    state = provider_kit.CircuitState("a", "closed")
    assert pickle.loads(pickle.dumps(state)) == state


def _imported_after(code: str) -> set:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}; import sys, json; print(json.dumps(sorted(sys.modules)))"],
        check=True, capture_output=True, text=True,
    ).stdout
    return set(json.loads(out))


def test_import_leaves_slow_modules_unloaded():
    loaded = _imported_after("import provider_kit")
    for lazy in ("argparse", "tomllib", "tomli", "concurrent.futures", "dataclasses", "difflib",
                 "html", "provider_kit.cli", "provider_kit.testing", "asyncio",
                 # what only health_check_all, map and showing a value use: each module costs import time
                 "provider_kit._health", "provider_kit._progress", "provider_kit._display", "provider_kit._executor",
                 # what only a tool made from a function uses (inspect, typing's hints, dataclasses)
                 "provider_kit._tool_schema", "provider_kit._tool_docstring", "inspect",
                 # the tool loop and each protocol's tool code: only calls with tools load them
                 "provider_kit._tool_loop", "provider_kit.providers._openai_tools",
                 "provider_kit.providers._anthropic_tools",
                 # what only a call with a schema uses
                 "provider_kit._structured", "provider_kit.providers._openai_schema",
                 "provider_kit.providers._anthropic_schema",
                 # only a paced provider, or an answer reporting a rate limit, loads these
                 "provider_kit._limiter", "provider_kit._rate_limits",
                 # embeddings: only embed() loads them
                 "provider_kit._embeddings", "provider_kit.providers._embed",
                 # only on_call hooks, the call log and a registry load these
                 "provider_kit._call_record", "provider_kit._call_log", "provider_kit._usage", "sqlite3",
                 # what only a response cache uses
                 "provider_kit._response_cache", "provider_kit.providers._cached_calls"):
        assert lazy not in loaded, f"import provider_kit loaded {lazy}"
    assert "provider_kit._shared_registry" in loaded  # its fork hook must be registered before a fork


def test_import_never_loads_the_sdks():
    loaded = _imported_after("import provider_kit; provider_kit.OpenAIProvider().close()")
    # The vendors' SDKs are named like the built-in types they serve.
    assert not loaded & {*KINDS, "httpx", "pydantic", "litellm"}


ERROR_INSTANCES = [
    errors.ProviderKitError("base"),
    errors.ConfigError("bad config"),
    errors.NoProvidersError("none"),
    errors.UnknownProviderError("no provider 'x'"),
    errors.ExecutorError("no answer came back", sent=False),
    errors.ProviderError("failed", provider="p", status_code=418, request_id="req_1"),
    errors.AuthenticationError("denied", provider="p", status_code=401, request_id="req_2"),
    errors.RateLimitError("slow", provider="p", retry_after=1.5, retryable=False, request_id="r"),
    errors.InvalidRequestError("bad", provider="p", status_code=400),
    errors.ServerError("down", provider="p", status_code=529),
    errors.ServerError("bad gateway", provider="p", status_code=502, body="<html>\n<title>502</title>\n</html>"),
    errors.ProviderTimeoutError("late", provider="p"),
    errors.ProviderConnectionError("refused", provider="p"),
    errors.ResponseFormatError("garbled", provider="p", status_code=200),
    errors.ProviderSkippedWarning("skipped provider 'p': no key", provider="p", reason="no key"),
]


@pytest.mark.parametrize("error", ERROR_INSTANCES, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize(
    "clone", [lambda e: pickle.loads(pickle.dumps(e)), copy.copy, copy.deepcopy], ids=["pickle", "copy", "deepcopy"]
)
def test_every_error_survives_pickle_and_copy(error, clone):
    restored = clone(error)
    assert type(restored) is type(error)
    assert str(restored) == str(error)
    assert vars(restored) == vars(error)


def test_error_classes_double_as_the_builtins_users_catch():
    assert issubclass(errors.ProviderTimeoutError, TimeoutError)
    assert issubclass(errors.ProviderConnectionError, ConnectionError)
    assert issubclass(errors.UnknownProviderError, KeyError)
    assert str(errors.UnknownProviderError("no provider named 'x'")) == "no provider named 'x'"
    for cls in (errors.AuthenticationError, errors.RateLimitError, errors.InvalidRequestError,
                errors.ServerError, errors.ProviderTimeoutError, errors.ProviderConnectionError,
                errors.ResponseFormatError):
        assert issubclass(cls, errors.ProviderError)
    assert issubclass(errors.NoProvidersError, errors.ConfigError)
    assert issubclass(errors.ProviderSkippedWarning, UserWarning)
    assert provider_kit.ProviderSkippedWarning is errors.ProviderSkippedWarning


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, errors.InvalidRequestError), (401, errors.AuthenticationError), (402, errors.AuthenticationError),
     (403, errors.AuthenticationError), (404, errors.InvalidRequestError), (408, errors.ServerError),
     (409, errors.ServerError), (413, errors.InvalidRequestError), (422, errors.InvalidRequestError),
     (429, errors.RateLimitError), (500, errors.ServerError), (502, errors.ServerError),
     (503, errors.ServerError), (504, errors.ServerError), (529, errors.ServerError),
     (418, errors.InvalidRequestError)],
)
def test_error_for_status_is_the_one_table(status, cls):
    error = errors.error_for_status(status, "msg", provider="p", request_id="req")
    assert type(error) is cls
    assert (error.status_code, error.provider, error.request_id, str(error)) == (status, "p", "req", "msg")



def _module_of(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _uses(tree: ast.Module, module: str, is_package: bool) -> set:
    """(module, name) pairs that ``tree`` imports or reads: ``from m import n``, ``m.n``, and the
    names it reads from its own module."""
    base = module if is_package else module.rpartition(".")[0]
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                parts = base.split(".")
                source = ".".join(parts[: len(parts) - node.level + 1] + ([source] if source else []))
            used.update((source, alias.name) for alias in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            used.add((module, node.id))
        elif isinstance(node, ast.Attribute):
            used.add(("*", node.attr))  # module.name, or an attribute of the same name
    return used


def test_every_exported_helper_is_used_or_documented():
    # Dead weight guard: what a module exports must be used in the package (by another module,
    # or by its own code), or be public API the README documents. types.FINISH_REASONS,
    # config.as_number_range and _streaming.iter_lines were exported, tested, and used by nothing.
    package = Path(provider_kit.__file__).parent
    readme = (package.parent / "README.rst").read_text(encoding="utf-8")
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in package.rglob("*.py")}
    used = set()
    for path, tree in trees.items():
        used |= _uses(tree, _module_of(path, package), path.name == "__init__.py")
    unused = []
    for path, tree in sorted(trees.items()):
        if (path.parent == package and path.name == "__init__.py") or "testing" in path.relative_to(package).parts:
            continue  # the curated public surfaces, for users rather than for the package
        module = _module_of(path, package)
        defined = set()  # a name a module only re-exports is checked where it is defined
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                defined.update(target.id for target in targets if isinstance(target, ast.Name))
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
                for name in (element.value for element in node.value.elts if element.value in defined):
                    if not ({(module, name), ("*", name)} & used or re.search(rf"\b{name}\b", readme)):
                        unused.append(f"{module}.{name}")
    assert unused == []


def test_the_suite_imports_provider_kit_testing_as_users_do():
    # Tests use the simulators and the fake through the public provider_kit.testing names, so
    # the suite exercises what users import (and an export that goes missing fails here).
    private = re.compile(r"provider_kit\.testing\." + r"_\w+")
    tests = Path(__file__).resolve().parent
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(tests.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if private.search(line)
    ]
    assert found == []
    import provider_kit.testing as testing

    for name in testing.__all__:
        assert getattr(testing, name).__doc__, f"provider_kit.testing.{name} has no docstring"
