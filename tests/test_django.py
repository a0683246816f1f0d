"""The Django example project (``examples/django``), run as a real site would run it.

Django is configured from the example's own ``mysite/settings.py``: startproject's MIDDLEWARE,
CsrfViewMiddleware included, and its INSTALLED_APPS. Requests go through ``Client(
enforce_csrf_checks=True)`` and through a real threaded WSGI server, against loopback
simulators. Only the example's LOGGING is left out of this process (it would add a console
handler to every later test): ``test_the_logging_setting_makes_skips_visible`` checks it in a
subprocess, through ``manage.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from _kinds import OTHER_KIND, SOME_KIND

django = pytest.importorskip("django")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "django"
DOC = EXAMPLE.parent.parent / "docs" / "django.rst"
if str(EXAMPLE) not in sys.path:
    sys.path.insert(0, str(EXAMPLE))  # the example's packages, mysite and llm_api

from django.conf import settings  # noqa: E402

if not settings.configured:  # once per process (test_readme.py may configure Django later)
    previous = os.environ.get("DJANGO_SETTINGS_MODULE")
    os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
    try:
        settings.LOGGING_CONFIG = None  # loads mysite.settings; keep pytest's logging set-up
        django.setup()
    finally:
        if previous is None:
            del os.environ["DJANGO_SETTINGS_MODULE"]
        else:
            os.environ["DJANGO_SETTINGS_MODULE"] = previous
assert settings.ROOT_URLCONF == "mysite.urls", "Django was configured before tests/test_django.py"

import requests  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings, setup_test_environment, teardown_test_environment  # noqa: E402
from llm_api import registry as site_registry  # noqa: E402
from llm_api import views  # noqa: E402

from provider_kit import ProviderRegistry, ToolResult, load_config  # noqa: E402
from provider_kit.testing import FakeProvider, Gate, LoopbackServer, Reply  # noqa: E402

KEY = "sk-django-test-0123456789abcdef"
OPENAI_CHAT = "/v1/chat/completions"
ANTHROPIC_CHAT = "/v1/messages"
THREADS = 8
WAIT = 10.0  # hang detection only


@pytest.fixture(scope="module", autouse=True)
def test_environment() -> Iterator[None]:
    """What Django's test runner sets up: DEBUG off, "testserver" allowed, mail kept in memory."""
    setup_test_environment(debug=False)
    try:
        yield
    finally:
        teardown_test_environment()


class Simulators:
    """The example's providers, simulated: "primary" (OpenAI-compatible) and "backup" (Anthropic)."""

    def __init__(self, primary: LoopbackServer, backup: LoopbackServer) -> None:
        self.primary = primary
        self.backup = backup


@pytest.fixture
def llm(tmp_path: Path) -> Iterator[Simulators]:
    """Two loopback providers in a config file that settings.PROVIDER_KIT_CONFIG names."""
    with LoopbackServer(SOME_KIND, api_key=KEY) as primary, LoopbackServer(OTHER_KIND, api_key=KEY) as backup:
        config = tmp_path / "provider_kit.toml"
        config.write_text(
            'default_provider = "primary"\n'
            "[providers.primary]\n"
            f'type = "{SOME_KIND}"\n'
            f'base_url = "{primary.base_url}"\n'
            f'api_key = "{KEY}"\n'
            f'model = "{primary.models[0]}"\n'
            "max_retries = 0\n"
            "[providers.backup]\n"
            f'type = "{OTHER_KIND}"\n'
            f'base_url = "{backup.base_url}"\n'
            f'api_key = "{KEY}"\n'
            f'model = "{backup.models[0]}"\n'
            "max_retries = 0\n",
            encoding="utf-8",
        )
        # Changing the setting resets the site's registry (llm_api/registry.py), on exit too.
        with override_settings(PROVIDER_KIT_CONFIG=str(config), PROVIDER_KIT_TIMEOUT=5.0,
                               PROVIDER_KIT_FALLBACKS="healthy", LLM_API_TOKEN=None):
            yield Simulators(primary, backup)
    assert primary.errors == [] and backup.errors == []


def post(client: Client, path: str, body: object, **extra: Any) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json", **extra)


def events_of(text: str) -> List[Tuple[str, Dict[str, Any]]]:
    """The server-sent events of a body: ``(event name, decoded data)``, in order."""
    found = []
    for block in text.split("\n\n"):
        if not block:
            continue
        name, data = "message", []
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        found.append((name, json.loads("\n".join(data))))
    return found


def streamed(response: Any) -> str:
    try:
        return b"".join(response.streaming_content).decode("utf-8")
    finally:
        response.close()


def context_too_long(server: LoopbackServer) -> Reply:
    return server.error_reply(400, "the request exceeds the available context size")


# --------------------------------------------------------------------------- CSRF and the project


def test_the_api_answers_a_client_that_enforces_csrf_checks(llm: Simulators) -> None:
    client = Client(enforce_csrf_checks=True)
    response = post(client, "/llm/complete/", {"prompt": "hi"})
    assert response.status_code == 200, response.content
    assert response.json() == {"text": "echo: hi", "provider": "primary", "model": llm.primary.models[0],
                               "finish_reason": "stop"}
    response = post(client, "/llm/stream/", {"prompt": "hi"})
    assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
    assert events_of(streamed(response))[-1][0] == "done"


def test_csrf_protection_is_on_for_the_rest_of_the_site() -> None:
    # The exemption is the API's alone: startproject's CsrfViewMiddleware still guards the admin.
    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE
    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "a", "password": "b"})
    assert response.status_code == 403
    assert all(getattr(view, "csrf_exempt", False) for view in (views.complete, views.stream, views.orders))


def test_the_site_reads_the_config_file_named_in_settings(llm: Simulators, tmp_path: Path) -> None:
    first = site_registry.get_registry()
    assert sorted(first) == ["backup", "primary"]
    assert site_registry.get_registry() is first  # built once per process
    other = tmp_path / "other.toml"
    other.write_text(f'[providers.solo]\ntype = "{SOME_KIND}"\nbase_url = "{llm.primary.base_url}"\n'
                     f'api_key = "{KEY}"\n', encoding="utf-8")
    with override_settings(PROVIDER_KIT_CONFIG=str(other)):
        assert sorted(site_registry.get_registry()) == ["solo"]
        assert post(Client(), "/llm/complete/", {"prompt": "hi"}).json()["provider"] == "solo"
    assert sorted(site_registry.get_registry()) == ["backup", "primary"]


def test_the_shipped_settings_and_config_hold_no_secret() -> None:
    show = "from django.conf import settings as s; print(s.PROVIDER_KIT_CONFIG); print(s.SECRET_KEY)"
    result = run_manage("shell", "--verbosity", "0", "-c", show)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(EXAMPLE / "provider_kit.toml"),
                                          "django-insecure-development-only-not-for-production"]
    result = run_manage("shell", "--verbosity", "0", "-c", show, env={"DJANGO_SECRET_KEY": "from-the-environment",
                                                   "PROVIDER_KIT_CONFIG": "/etc/site/provider_kit.toml"})
    assert result.stdout.splitlines() == ["/etc/site/provider_kit.toml", "from-the-environment"]
    config = load_config(EXAMPLE / "provider_kit.toml")
    # Two hosted APIs, each in a table named after its type, and a local server.
    assert sorted(config.providers) == sorted([SOME_KIND, OTHER_KIND, "local"])
    assert all("api_key" not in spec.options for spec in config.providers.values())


# --------------------------------------------------------------------------- complete


def test_complete_falls_back_when_the_default_provider_refuses(llm: Simulators) -> None:
    llm.primary.enqueue(context_too_long(llm.primary), path=OPENAI_CHAT)
    response = post(Client(enforce_csrf_checks=True), "/llm/complete/", {"prompt": "a long one"})
    assert response.status_code == 200
    assert response.json()["provider"] == "backup" and response.json()["text"] == "echo: a long one"
    assert len(llm.primary.requests) == 1 and len(llm.backup.requests) == 1


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
def test_when_every_provider_fails_the_last_error_picks_the_status(
    llm: Simulators, caplog: pytest.LogCaptureFixture, reply: Dict[str, Any], status: int, retry_after: object
) -> None:
    llm.primary.enqueue(llm.primary.error_reply(500, "primary is down"), path=OPENAI_CHAT)
    llm.backup.enqueue(llm.backup.error_reply(**reply), path=ANTHROPIC_CHAT)
    with caplog.at_level("WARNING", logger=views.__name__):
        response = post(Client(enforce_csrf_checks=True), "/llm/complete/", {"prompt": "hi"})
    assert response.status_code == status
    assert response.get("Retry-After") == retry_after
    assert set(response.json()) == {"error"}
    # Every provider's own words go to the log, in one line; none to the client; the key nowhere.
    logged = [r.getMessage() for r in caplog.records if r.name == views.__name__]
    assert len(logged) == 1 and logged[0].startswith("LLM call failed: backup: ")
    assert "(before it: primary: primary is down" in logged[0]
    if "message" in reply:
        assert reply["message"] in logged[0] and reply["message"] not in response.content.decode()
    assert KEY not in response.content.decode() + logged[0]


def test_a_provider_that_does_not_answer_in_time_is_a_504(llm: Simulators) -> None:
    gate = Gate()
    llm.primary.enqueue(Reply(hang=gate), path=OPENAI_CHAT)
    try:
        with override_settings(PROVIDER_KIT_TIMEOUT=0.3, PROVIDER_KIT_FALLBACKS=None):
            response = post(Client(), "/llm/complete/", {"prompt": "hi"})
    finally:
        gate.open()
    assert response.status_code == 504
    assert response.json() == {"error": "the language model did not answer in time"}


@pytest.mark.parametrize("body", [{}, {"prompt": ""}, {"prompt": 3}, ["hi"], {"prompt": "x" * 8001}])
@pytest.mark.parametrize("path", ["/llm/complete/", "/llm/stream/"])
def test_a_bad_prompt_is_a_400_without_calling_a_provider(llm: Simulators, body: object, path: str) -> None:
    assert post(Client(enforce_csrf_checks=True), path, body).status_code == 400
    assert llm.primary.requests == [] and llm.backup.requests == []


def test_only_post_is_allowed(llm: Simulators) -> None:
    assert Client().get("/llm/complete/").status_code == 405
    assert Client().get("/llm/stream/").status_code == 405


def test_with_an_api_token_set_a_request_must_carry_it(llm: Simulators) -> None:
    client = Client(enforce_csrf_checks=True)
    with override_settings(LLM_API_TOKEN="t0ken-for-tests"):
        for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": "t0ken-for-tests"}):
            assert post(client, "/llm/complete/", {"prompt": "hi"}, **headers).status_code == 401
            assert post(client, "/llm/stream/", {"prompt": "hi"}, **headers).status_code == 401
        ok = post(client, "/llm/complete/", {"prompt": "hi"}, HTTP_AUTHORIZATION="Bearer t0ken-for-tests")
        assert ok.status_code == 200
    assert len(llm.primary.requests) == 1


# --------------------------------------------------------------------------- stream


def test_the_stream_is_server_sent_events_with_a_final_done_event(llm: Simulators) -> None:
    llm.primary.enqueue(llm.primary.stream_reply(["Hel", "lo", " world"]), path=OPENAI_CHAT)
    response = post(Client(enforce_csrf_checks=True), "/llm/stream/", {"prompt": "hi"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream" and response["Cache-Control"] == "no-cache"
    events = events_of(streamed(response))
    assert events[:-1] == [("message", {"text": text, "provider": "primary"}) for text in ("Hel", "lo", " world")]
    name, done = events[-1]
    assert name == "done" and done["provider"] == "primary" and done["finish_reason"] == "stop"
    assert done["usage"]["output_tokens"] == 3


def test_the_stream_falls_back_until_the_first_chunk(llm: Simulators) -> None:
    llm.primary.enqueue(llm.primary.error_reply(503), path=OPENAI_CHAT)
    response = post(Client(enforce_csrf_checks=True), "/llm/stream/", {"prompt": "hi"})
    events = events_of(streamed(response))
    assert "".join(data["text"] for name, data in events if name == "message") == "echo: hi"
    assert {data["provider"] for _, data in events} == {"backup"}
    assert events[-1][0] == "done"


# --------------------------------------------------------------------------- tools with an approval hook


@pytest.fixture
def orders_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    """The site's registry holds one scripted model, whose requests show what the tools sent."""
    fake = FakeProvider("primary")
    with ProviderRegistry([fake]) as registry, override_settings(
            PROVIDER_KIT_TIMEOUT=WAIT, PROVIDER_KIT_FALLBACKS=None, LLM_API_TOKEN=None):
        monkeypatch.setattr(site_registry, "_registry", registry)
        yield fake


def cancel_b2() -> Any:
    return FakeProvider.tool_call_reply([("order_status", {"order_id": "B2"}), ("cancel_order", {"order_id": "B2"})])


def tool_results(fake: FakeProvider) -> List[Tuple[str, str, bool]]:
    return [(message.name, message.content, message.is_error) for message in fake.calls[-1].messages
            if isinstance(message, ToolResult)]


def test_an_allowed_tool_call_runs_and_the_model_reads_its_result(orders_model: FakeProvider) -> None:
    orders_model.add_replies(cancel_b2(), "Order B2 was processing; it is cancelled now.")
    response = post(Client(enforce_csrf_checks=True), "/llm/orders/",
                    {"prompt": "Cancel order B2 if it has not shipped.", "allow_changes": True})
    assert response.status_code == 200, response.content
    assert response.json() == {
        "text": "Order B2 was processing; it is cancelled now.", "provider": "primary",
        "calls": [{"name": "order_status", "arguments": {"order_id": "B2"}, "refused": False},
                  {"name": "cancel_order", "arguments": {"order_id": "B2"}, "refused": False}],
    }
    assert tool_results(orders_model) == [("order_status", "processing", False),
                                          ("cancel_order", "order B2 cancelled", False)]


def test_a_call_the_request_did_not_allow_is_refused_and_the_model_is_told(orders_model: FakeProvider) -> None:
    orders_model.add_replies(cancel_b2(), "I may not cancel orders; B2 is processing.")
    response = post(Client(enforce_csrf_checks=True), "/llm/orders/", {"prompt": "Cancel order B2."})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["text"] == "I may not cancel orders; B2 is processing."
    assert [(call["name"], call["refused"]) for call in body["calls"]] == [("order_status", False),
                                                                         ("cancel_order", True)]
    assert tool_results(orders_model) == [
        ("order_status", "processing", False),
        ("cancel_order", "the call was refused: cancel_order was not allowed to run", True)]


def test_a_model_that_keeps_calling_tools_is_a_502(orders_model: FakeProvider) -> None:
    orders_model.add_replies(*[cancel_b2() for _ in range(4)])
    response = post(Client(enforce_csrf_checks=True), "/llm/orders/", {"prompt": "Loop.", "allow_changes": True})
    assert response.status_code == 502 and len(orders_model.calls) == 4
    assert response.json() == {"error": "the language model did not come to an answer"}


def test_a_stream_that_fails_before_its_first_chunk_gets_a_status(llm: Simulators) -> None:
    llm.primary.enqueue(llm.primary.error_reply(500), path=OPENAI_CHAT)
    llm.backup.enqueue(llm.backup.error_reply(429, retry_after=3), path=ANTHROPIC_CHAT)
    response = post(Client(enforce_csrf_checks=True), "/llm/stream/", {"prompt": "hi"})
    assert response.status_code == 429 and response["Retry-After"] == "3"


def test_a_stream_that_fails_midway_ends_with_an_error_event(
    llm: Simulators, caplog: pytest.LogCaptureFixture
) -> None:
    llm.primary.enqueue(llm.primary.stream_reply(["partial", " answer", " lost"], error_after=2,
                                                 error_message="overloaded"), path=OPENAI_CHAT)
    with caplog.at_level("WARNING", logger=views.__name__):
        response = post(Client(enforce_csrf_checks=True), "/llm/stream/", {"prompt": "hi"})
        events = events_of(streamed(response))
    assert response.status_code == 200  # already sent when the failure came
    assert events[:2] == [("message", {"text": "partial", "provider": "primary"}),
                          ("message", {"text": " answer", "provider": "primary"})]
    assert events[2][0] == "error" and events[2][1]["provider"] == "primary"
    assert len(events) == 3  # no "done": the client knows the answer is incomplete
    assert llm.backup.requests == []  # no second answer spliced on
    logged = [r.getMessage() for r in caplog.records if r.name == views.__name__]
    assert len(logged) == 1 and logged[0].startswith("LLM stream failed after it started: ")
    assert "overloaded" in logged[0] and "overloaded" not in events[2][1]["error"]


# --------------------------------------------------------------------------- a real threaded server


class JoiningWSGIServer(ThreadedWSGIServer):
    """Django's threaded development server, but ``server_close()`` joins every request thread."""

    daemon_threads = False
    block_on_close = True


@pytest.fixture
def site(llm: Simulators) -> Iterator[str]:
    """The example project served by a threaded WSGI server on 127.0.0.1; its base URL."""
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


def test_eight_concurrent_requests_complete_stream_fall_back_and_report_errors(
    llm: Simulators, site: str
) -> None:
    primary = llm.primary

    def primary_reply(request: Any) -> Reply:
        # Hold every answer until all eight requests are in flight: the server, the views and
        # the shared registry must serve them at the same time, or this times out.
        primary.wait_for_requests(THREADS, timeout=WAIT)
        body = request.json()
        prompt = body["messages"][-1]["content"]
        if "long" in prompt:
            return context_too_long(primary)
        if not body.get("stream"):
            return primary.completion_reply(f"answer to {prompt}")
        if "break" in prompt:
            return primary.stream_reply(["partial", " answer", " lost"], error_after=2)
        return primary.stream_reply(["answer", f" to {prompt}"])

    primary.enqueue(primary_reply, path=OPENAI_CHAT, times=THREADS)
    calls = [("complete", "c-short-1"), ("complete", "c-short-2"), ("complete", "c-long-1"),
             ("complete", "c-long-2"), ("stream", "s-short-1"), ("stream", "s-long-1"),
             ("stream", "s-long-2"), ("stream", "s-break-1")]

    def call(kind: str, prompt: str) -> Tuple[int, str, str]:
        response = requests.post(f"{site}/llm/{kind}/", json={"prompt": prompt}, timeout=WAIT)
        return response.status_code, response.headers["Content-Type"], response.text

    with ThreadPoolExecutor(THREADS) as pool:
        results = dict(zip(calls, pool.map(lambda c: call(*c), calls)))

    for (kind, prompt), (status, content_type, text) in results.items():
        assert status == 200, (prompt, text)
        if kind == "complete":
            body = json.loads(text)
            expected = ("backup", f"echo: {prompt}") if "long" in prompt else ("primary", f"answer to {prompt}")
            assert (body["provider"], body["text"]) == expected
            continue
        assert content_type == "text/event-stream"
        events = events_of(text)
        streamed_text = "".join(data["text"] for name, data in events if name == "message")
        if "break" in prompt:
            assert streamed_text == "partial answer"
            assert [name for name, _ in events][-1] == "error" and events[-1][1]["provider"] == "primary"
            continue
        expected = ("backup", f"echo: {prompt}") if "long" in prompt else ("primary", f"answer to {prompt}")
        assert ({data["provider"] for _, data in events}, streamed_text) == ({expected[0]}, expected[1])
        assert events[-1][0] == "done"
    assert len(primary.requests) == THREADS
    assert sorted(r.json()["messages"][-1]["content"] for r in llm.backup.requests) == [
        "c-long-1", "c-long-2", "s-long-1", "s-long-2"]
    assert {r.headers["Authorization"] for r in primary.requests} == {f"Bearer {KEY}"}


def test_the_stream_reaches_the_client_as_it_is_generated(llm: Simulators, site: str) -> None:
    gate = Gate()
    llm.primary.enqueue(llm.primary.stream_reply(["Hel", gate, "lo"]), path=OPENAI_CHAT)
    try:
        with requests.post(f"{site}/llm/stream/", json={"prompt": "hi"}, stream=True, timeout=WAIT) as response:
            assert response.status_code == 200
            first = views.sse({"text": "Hel", "provider": "primary"}).encode()
            assert response.raw.read(len(first)) == first
            assert not gate.is_open  # the first event arrived while the rest waits at the gate
            gate.open()
            rest = response.raw.read().decode()
        assert [name for name, _ in events_of(first.decode() + rest)] == ["message", "message", "done"]
    finally:
        gate.open()


# --------------------------------------------------------------------------- manage.py


def run_manage(*args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """``python manage.py ARGS`` in the example directory, as a developer would run it."""
    root = str(EXAMPLE.parent.parent)  # this checkout's provider_kit comes first
    environ = {**os.environ, **(env or {})}
    environ["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [environ.get("PYTHONPATH")])])
    environ.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=EXAMPLE, env=environ,
                          capture_output=True, text=True, timeout=60)


def test_the_project_passes_django_system_checks() -> None:
    result = run_manage("check")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_logging_setting_makes_skips_visible(tmp_path: Path) -> None:
    # A provider skipped for a missing key must show up in the site's log, via settings.LOGGING.
    config = tmp_path / "provider_kit.toml"
    config.write_text(f'[providers.primary]\ntype = "{SOME_KIND}"\nbase_url = "http://127.0.0.1:9/v1"\n'
                      f'api_key = "{KEY}"\n[providers.claude]\ntype = "{OTHER_KIND}"\n', encoding="utf-8")
    show = "from llm_api.registry import get_registry; print(sorted(get_registry()))"
    result = run_manage("shell", "--verbosity", "0", "-c", show, env={"PROVIDER_KIT_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['primary']"
    assert "WARNING provider_kit: skipping provider 'claude'" in result.stderr
    assert KEY not in result.stdout + result.stderr


def test_the_documented_logging_setting_is_the_example_s() -> None:
    import mysite.settings

    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"^``mysite/settings.py``:\n\n\.\. code-block:: python\n\n((?:(?:    .*)?\n)+)", text, re.M)
    assert match, "docs/django.rst shows the LOGGING setting"
    shown: Dict[str, Any] = {}
    exec(textwrap.dedent(match.group(1)), shown)
    assert shown["LOGGING"] == mysite.settings.LOGGING
    assert "provider_kit" in shown["LOGGING"]["loggers"]
