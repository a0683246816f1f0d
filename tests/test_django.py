"""The Django recipe (docs/django.rst), run as written in a real threaded WSGI server.

The views are executed from the documentation's ``myapp/views.py`` block, so the page cannot
drift from what is tested. Django is configured once per process, with no database and no
logging set-up, and every test re-applies the few settings it needs with ``override_settings``,
so this module also works in a process where Django was configured by someone else.
"""

from __future__ import annotations

import re
import textwrap
import threading
import types
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

django = pytest.importorskip("django")

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django.urls import path  # noqa: E402

import provider_kit  # noqa: E402
from provider_kit.testing import Gate, LoopbackServer, Reply  # noqa: E402

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parent.parent / "docs" / "django.rst"
KEY = "sk-django-test-0123456789abcdef"
THREADS = 8

if not settings.configured:  # settings.configure() may run only once per process
    settings.configure(
        DEBUG=False,
        SECRET_KEY="provider-kit-tests-only",
        ALLOWED_HOSTS=["127.0.0.1", "testserver"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={},
        LOGGING_CONFIG=None,  # leave the logging set-up of the test run alone
        USE_TZ=True,
    )
if not django.apps.apps.ready:
    django.setup()


def code_block(caption: str) -> str:
    """The body of the ``.. code-block:: python`` that follows the line ````<caption>``:``."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(
        r"^``" + re.escape(caption) + r"``:\n\n\.\. code-block:: python\n\n((?:(?:    .*)?\n)+)",
        text,
        re.MULTILINE,
    )
    assert match, f"docs/django.rst has no python block captioned {caption}"
    return textwrap.dedent(match.group(1))


def load_views() -> types.ModuleType:
    module = types.ModuleType("provider_kit_django_recipe_views")
    exec(compile(code_block("myapp/views.py"), f"{DOC} (myapp/views.py)", "exec"), module.__dict__)
    return module


views = load_views()

# What the documented myproject/urls.py declares, with this module's views.
urlpatterns = [
    path("llm/complete/", views.complete),
    path("llm/stream/", views.stream),
]


def reset_registry() -> None:
    provider_kit.reset_registry()


class JoiningWSGIServer(ThreadedWSGIServer):
    """Django's threaded development server, but ``server_close()`` joins every request thread."""

    daemon_threads = False
    block_on_close = True


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LoopbackServer]:
    """A loopback OpenAI server behind the default configuration that ``get_registry()`` reads."""
    with LoopbackServer("openai", api_key=KEY) as server:
        config = tmp_path / "provider_kit.toml"
        config.write_text(
            "[providers.openai]\n"
            f'base_url = "{server.base_url}"\n'
            f'api_key = "{KEY}"\n'
            "max_retries = 0\n"
            "timeout = 5\n",
            encoding="utf-8",
        )
        monkeypatch.setenv("PROVIDER_KIT_CONFIG", str(config))
        reset_registry()
        try:
            yield server
        finally:
            reset_registry()
    assert server.errors == []


@pytest.fixture
def site() -> Iterator[str]:
    """The recipe's URLs served by a threaded WSGI server on 127.0.0.1; its base URL."""
    with override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["127.0.0.1", "testserver"],
                           PROVIDER_KIT_TIMEOUT=5.0):
        server = JoiningWSGIServer(("127.0.0.1", 0), WSGIRequestHandler, allow_reuse_address=False)
        server.set_app(WSGIHandler())
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name="django-wsgi", daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            thread.join(5)
            server.server_close()  # joins the request threads
        assert not thread.is_alive()


def post(url: str, body: object, **kwargs: object) -> requests.Response:
    return requests.post(url, json=body, timeout=10, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- concurrency


def test_eight_threads_at_once_each_get_their_own_answer(llm: LoopbackServer, site: str) -> None:
    def answer_when_all_arrived(request: object) -> Reply:
        # Hold every reply until all the requests are in flight: the server, the view and the
        # shared registry must serve them at the same time, or this times out.
        llm.wait_for_requests(THREADS, timeout=5)
        prompt = request.json()["messages"][-1]["content"]  # type: ignore[attr-defined]
        return llm.completion_reply(f"answer to {prompt}")

    llm.enqueue(answer_when_all_arrived, path="/v1/chat/completions", times=THREADS)
    results: List[Tuple[int, int, object]] = []
    failures: List[BaseException] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        try:
            response = post(f"{site}/llm/complete/", {"prompt": f"question {number}"})
            with lock:
                results.append((number, response.status_code, response.json()))
        except BaseException as exc:  # reported below: an exception in a thread fails nothing
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert failures == []
    assert sorted(number for number, _, _ in results) == list(range(THREADS))
    for number, status, body in results:
        assert status == 200, body
        assert body == {"text": f"answer to question {number}", "provider": "openai",
                        "model": "gpt-4o-mini", "finish_reason": "stop"}
    assert len(llm.requests) == THREADS
    assert {r.headers["Authorization"] for r in llm.requests} == {f"Bearer {KEY}"}


def test_the_registry_is_built_once_for_all_request_threads(llm: LoopbackServer, site: str) -> None:
    first = post(f"{site}/llm/complete/", {"prompt": "one"})
    shared = views.get_registry()
    second = post(f"{site}/llm/complete/", {"prompt": "two"})
    assert [first.json()["text"], second.json()["text"]] == ["echo: one", "echo: two"]
    assert views.get_registry() is shared


# --------------------------------------------------------------------------- error mapping


@pytest.mark.parametrize(
    ("reply", "status", "retry_after"),
    [
        ({"status": 429, "retry_after": 7}, 429, "7"),
        ({"status": 429, "retry_after": "0.2"}, 429, "1"),
        ({"status": 429}, 429, None),
        ({"status": 400, "message": "maximum context length exceeded"}, 400, None),
        ({"status": 404}, 400, None),
        ({"status": 500}, 502, None),
        ({"status": 503}, 502, None),
        ({"status": 401}, 502, None),
    ],
    ids=["429-retry-after", "429-rounded-up", "429-no-header", "400", "404", "500", "503", "401"],
)
def test_provider_errors_become_http_responses(
    llm: LoopbackServer, site: str, caplog: pytest.LogCaptureFixture,
    reply: dict, status: int, retry_after: object,
) -> None:
    llm.enqueue(llm.error_reply(**reply), path="/v1/chat/completions")
    with caplog.at_level("WARNING", logger=views.__name__):
        response = post(f"{site}/llm/complete/", {"prompt": "hi"})
    assert response.status_code == status
    assert response.headers.get("Retry-After") == retry_after
    assert set(response.json()) == {"error"}
    assert len(llm.requests) == 1
    # The provider's own words go to the log, not to the client; the key goes nowhere.
    logged = [r.getMessage() for r in caplog.records if r.name == views.__name__]
    assert len(logged) == 1 and logged[0].startswith("LLM call failed: openai: ")
    if "message" in reply:
        assert reply["message"] in logged[0]
        assert reply["message"] not in response.text
    assert KEY not in response.text + logged[0]


def test_a_provider_that_does_not_answer_in_time_is_a_504(llm: LoopbackServer, site: str) -> None:
    gate = Gate()
    llm.enqueue(Reply(hang=gate), path="/v1/chat/completions")
    try:
        with override_settings(PROVIDER_KIT_TIMEOUT=0.3):
            response = post(f"{site}/llm/complete/", {"prompt": "hi"})
    finally:
        gate.open()
    assert response.status_code == 504
    assert response.json() == {"error": "the language model did not answer in time"}


@pytest.mark.parametrize("body", [{}, {"prompt": ""}, {"prompt": 3}, ["hi"], {"prompt": "x" * 8001}])
def test_a_bad_prompt_is_a_400_without_calling_the_provider(
    llm: LoopbackServer, site: str, body: object
) -> None:
    response = post(f"{site}/llm/complete/", body)
    assert response.status_code == 400
    assert llm.requests == []


def test_only_post_is_allowed(llm: LoopbackServer, site: str) -> None:
    response = requests.get(f"{site}/llm/complete/", timeout=10)
    assert response.status_code == 405


# --------------------------------------------------------------------------- streaming


def test_the_stream_reaches_the_client_as_it_is_generated(llm: LoopbackServer, site: str) -> None:
    gate = Gate()
    llm.enqueue(llm.stream_reply(["Hel", gate, "lo", " world"]), path="/v1/chat/completions")
    try:
        with post(f"{site}/llm/stream/", {"prompt": "hi"}, stream=True) as response:
            assert response.status_code == 200
            assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
            assert response.raw.read(3) == b"Hel"  # while the rest waits at the gate
            assert not gate.is_open
            gate.open()
            assert response.raw.read() == b"lo world"
    finally:
        gate.open()


def test_a_stream_that_fails_before_its_first_token_gets_a_status(llm: LoopbackServer, site: str) -> None:
    llm.enqueue(llm.error_reply(429, retry_after=3), path="/v1/chat/completions")
    response = post(f"{site}/llm/stream/", {"prompt": "hi"})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"


def test_a_stream_that_fails_midway_ends_the_body_and_logs_why(
    llm: LoopbackServer, site: str, caplog: pytest.LogCaptureFixture
) -> None:
    llm.enqueue(llm.stream_reply(["partial", " answer", " lost"], error_after=2, error_message="overloaded"),
                path="/v1/chat/completions")
    with caplog.at_level("WARNING", logger=views.__name__):
        response = post(f"{site}/llm/stream/", {"prompt": "hi"})
    assert response.status_code == 200
    assert response.text == "partial answer"
    logged = [r.getMessage() for r in caplog.records if r.name == views.__name__]
    assert len(logged) == 1
    assert logged[0].startswith("LLM stream failed after it started: ") and "overloaded" in logged[0]


# --------------------------------------------------------------------------- the documented tests


def test_the_documented_test_module_passes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/django.rst's myapp/tests/test_views.py, run by pytest against the recipe's views."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\n")
    pytester.makepyfile(test_views=code_block("myapp/tests/test_views.py"))
    with override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["testserver"]):
        result = pytester.runpytest_inprocess(
            "-p", "provider_kit.testing.pytest_plugin", "-p", "no:cacheprovider"
        )
    result.assert_outcomes(passed=2)
