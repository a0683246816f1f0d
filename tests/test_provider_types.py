"""A provider type lives in one place: its provider class (providers/<type>.py), its simulator
(testing/wires/<type>.py) and its tests (test_<type>.py). Everything else derives from the
registered classes; these tests fail when a type is spelled out, or restated, anywhere else."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from provider_kit import Message
from provider_kit.errors import ResponseFormatError
from provider_kit.providers import BUILTIN_TYPES, HTTPProvider
from provider_kit.providers._answers import StreamState
from provider_kit.providers._calls import ChatCall, RequestSpec
from provider_kit.testing import LoopbackServer, Reply
from provider_kit.testing.wires import WIRES
from provider_kit.types import StreamChunk, Usage

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "provider_kit"
TESTS = ROOT / "tests"
TYPE_NAMES = sorted(BUILTIN_TYPES)


def _spelled_types(path: Path) -> List[Tuple[int, str]]:
    """(line, type name) of every string literal in ``path`` that is exactly a built-in type's
    name. Docstrings are prose, not code, and are left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    found = []
    for node in ast.walk(tree):
        is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if is_text and id(node) not in docstrings and node.value in BUILTIN_TYPES:
            found.append((node.lineno, node.value))
    return sorted(found)


def _own_package_files(type_name: str) -> List[Path]:
    return [PACKAGE / "providers" / f"{type_name}.py", PACKAGE / "testing" / "wires" / f"{type_name}.py"]


def test_no_type_name_is_spelled_out_in_the_package_outside_its_own_modules() -> None:
    misplaced = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, name in _spelled_types(path):
            if path not in _own_package_files(name):
                misplaced.append(f"{path.relative_to(ROOT)}:{line}: {name!r}")
    assert misplaced == [], "derive these from provider_kit.providers.BUILTIN_TYPES:\n" + "\n".join(misplaced)


def test_the_quoted_type_names_grep_finds_nothing_outside_providers_and_testing() -> None:
    # The same rule as a plain grep (docstrings included) over the core modules.
    pattern = re.compile("['\"](" + "|".join(map(re.escape, TYPE_NAMES)) + ")['\"]")
    hits = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.parent.name not in ("providers", "testing", "wires")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []


#: Modules that test the SDKs' conformance (test_conformance.py, test_conformance_<topic>.py)
#: may name every type they compare.
CONFORMANCE_MODULES = ("test_conformance.py", "test_conformance_")


def _test_spellings(path: Path) -> int:
    """Lines of a test module that quote a built-in type's name in single or double quotes,
    the grep ARCHITECTURE-REVIEW F1 used: tables and configurations, docstrings included."""
    pattern = re.compile("['\"](" + "|".join(map(re.escape, TYPE_NAMES)) + ")['\"]")
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if pattern.search(line))


def test_tests_name_a_type_only_in_its_own_modules() -> None:
    # A test that needs a type takes it from tests/_kinds.py (KINDS, CLASSES, SOME_KIND...), or,
    # if it is about that type's own behaviour, lives in test_<type>.py.
    misplaced = []
    for path in sorted(TESTS.glob("*.py")):
        name = path.name
        # test_<type>.py and test_<type>_<topic>.py (test_anthropic_tools.py) are that type's own.
        if name.startswith(CONFORMANCE_MODULES) or any(
            name == f"test_{t}.py" or name.startswith(f"test_{t}_") for t in TYPE_NAMES
        ):
            continue
        count = _test_spellings(path)
        if count:
            misplaced.append(f"tests/{name}: {count} lines spell out a type name")
    assert misplaced == [], "use tests/_kinds.py (KINDS, CLASSES, SOME_KIND...) instead:\n" + "\n".join(misplaced)


def test_shared_test_infrastructure_names_no_type() -> None:
    for name in ("conftest.py", "_kinds.py"):
        assert _test_spellings(TESTS / name) == 0, name


def test_every_built_in_type_has_a_simulator_wire_in_its_own_module() -> None:
    assert set(WIRES) == set(BUILTIN_TYPES)
    for type_name, wire in WIRES.items():
        assert wire.name == type_name
        assert Path(__import__(type(wire).__module__, fromlist=["_"]).__file__) == (
            PACKAGE / "testing" / "wires" / f"{type_name}.py"
        )
        assert BUILTIN_TYPES[type_name].__module__ == f"provider_kit.providers.{type_name}"


@pytest.mark.parametrize("type_name", TYPE_NAMES)
def test_each_class_declares_its_type(type_name: str) -> None:
    cls = BUILTIN_TYPES[type_name]
    assert type_name == cls.TYPE
    # A type with no default host (every Azure resource has its own) names its base-URL variable.
    assert cls.DEFAULT_BASE_URL.startswith(("http://", "https://")) or (not cls.DEFAULT_BASE_URL and cls.BASE_URL_ENV)
    assert cls.DEFAULT_MODEL
    assert isinstance(cls.REQUIRES_KEY, bool)
    assert cls.enabling_env_var() in (cls.API_KEY_ENV, cls.BASE_URL_ENV)
    assert cls.FINISH_REASONS and set(cls.FINISH_REASONS.values()) <= {"stop", "length", "content_filter", "tool_calls"}
    assert cls.STREAM_STATE is not StreamState and issubclass(cls.STREAM_STATE, StreamState)
    assert cls.STREAM_DECODER.media_types
    # The retired per-type switches are gone, not shadowed.
    for retired in ("COMPLETE_PATH", "HEALTH_PATH", "STREAM_FORMAT", "_completion_body", "_auth_headers"):
        assert not hasattr(cls, retired), retired


def test_the_cli_help_lists_every_types_variables() -> None:
    from provider_kit._cli_parser import HELP_EPILOG

    for cls in BUILTIN_TYPES.values():
        for variable in (cls.API_KEY_ENV, cls.BASE_URL_ENV):
            if variable:
                assert re.search(rf"^  {variable} ", HELP_EPILOG, re.M), variable
        assert f'adds the provider "{cls.TYPE}"' in HELP_EPILOG or f'adds "{cls.TYPE}"' in HELP_EPILOG


def test_serve_and_demo_run_one_simulator_per_built_in_type() -> None:
    from provider_kit._serve import PROTOCOLS, simulators

    assert tuple(BUILTIN_TYPES) == PROTOCOLS
    with simulators() as servers:
        assert list(servers) == list(BUILTIN_TYPES)
        for type_name, server in servers.items():
            assert (server.api_key is not None) == BUILTIN_TYPES[type_name].REQUIRES_KEY


# -- a type whose URL depends on the call: one hook, no copy of the call flow ---------------------


class _ModelInPathStream(StreamState):
    """Whole-answer events with no terminator: the one carrying the finish reason ends it."""

    def feed(self, event: Any) -> Iterator[StreamChunk]:
        data = json.loads(event.data)
        candidate = data["candidates"][0]
        text = "".join(part["text"] for part in candidate["content"]["parts"])
        if text:
            yield self.text_chunk(text)
        if candidate.get("finishReason"):
            self.finish_reason = self.finish(candidate["finishReason"])
            self.usage = Usage(1, 2)
            self.done = True


class ModelInPathProvider(HTTPProvider):
    """Gemini-shaped: the model and the method in the path, streaming chosen by the query."""

    TYPE = "model-in-path"
    DEFAULT_BASE_URL = "https://generativelanguage.example"
    API_KEY_ENV = "MODEL_IN_PATH_TEST_KEY"
    DEFAULT_MODEL = "m-1"
    FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length"}
    STREAM_STATE = _ModelInPathStream

    def _headers(self, api_key: Optional[str]) -> Tuple[Dict[str, str], Dict[str, str]]:
        return {}, ({"x-goog-api-key": api_key} if api_key else {})

    def _build_request(self, call: ChatCall) -> RequestSpec:
        method = "streamGenerateContent" if call.stream else "generateContent"
        body = {"contents": [{"role": m.role, "parts": [{"text": m.content}]} for m in call.messages]}
        return RequestSpec(f"/v1beta/models/{call.model}:{method}", body, query={"alt": "sse"} if call.stream else None)

    def _parse_completion(self, data: Any) -> Tuple[str, Optional[str], Optional[str], Usage]:
        candidate = data["candidates"][0]
        text = "".join(part["text"] for part in candidate["content"]["parts"])
        return text, data.get("modelVersion"), self._finish_reason(candidate.get("finishReason")), Usage(1, 2)


def _answer(text: str, finish: Optional[str]) -> Dict[str, Any]:
    candidate: Dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "modelVersion": "m-1-001"}


def test_a_type_with_the_model_in_the_path_needs_only_its_hooks() -> None:
    key = "sk-model-in-path-0123456789"
    with LoopbackServer(None) as server, ModelInPathProvider(base_url=server.url, api_key=key) as provider:
        server.enqueue(Reply(200, json=_answer("hello", "MAX_TOKENS")))
        completion = provider.complete("hi", model="m-2")
        sse = "".join(f"data: {json.dumps(_answer(t, f))}\n\n" for t, f in (("a", None), ("b", "STOP")))
        server.enqueue(Reply(200, body=sse, content_type="text/event-stream"))
        chunks = list(provider.stream([Message("user", "hi")]))
        complete_request, stream_request = server.requests
    assert (completion.text, completion.finish_reason, completion.model) == ("hello", "length", "m-1-001")
    assert (complete_request.method, complete_request.path) == ("POST", "/v1beta/models/m-2:generateContent")
    assert complete_request.headers["x-goog-api-key"] == key
    assert stream_request.path == "/v1beta/models/m-1:streamGenerateContent"
    assert stream_request.query == {"alt": "sse"}
    assert [c.text for c in chunks] == ["a", "b", ""] and chunks[-1].finish_reason == "stop"


def test_a_stream_without_its_end_is_still_refused_for_a_new_type() -> None:
    key = "sk-x-0123456789"
    with LoopbackServer(None) as server, ModelInPathProvider(base_url=server.url, api_key=key) as provider:
        sse = f"data: {json.dumps(_answer('a', None))}\n\n"
        server.enqueue(Reply(200, body=sse, content_type="text/event-stream"))
        with pytest.raises(ResponseFormatError, match="ended before its end marker"):
            list(provider.stream("hi"))


def test_the_spelling_counters_see_a_type_name(tmp_path: Path) -> None:
    # The counters behind the tests above must be able to fail.
    name = TYPE_NAMES[0]
    sample = tmp_path / "sample.py"
    sample.write_text(f'"""About {name!r}."""\nx = {name!r}\ny = f"{{x}}" + "{name}"\n{name}_thing = 1\n')
    assert _spelled_types(sample) == [(2, name), (3, name)]
    assert _test_spellings(sample) == 3
