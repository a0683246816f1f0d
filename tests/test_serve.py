"""``provider-kit serve`` and the simulator knobs behind it: LoopbackServer(port=, latency=),
scripted failures, the written config, and a clean stop on SIGINT/SIGTERM."""

from __future__ import annotations

import errno
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from _kinds import API_PREFIXES, CLASSES, KINDS, LOCAL_KIND, SOME_KIND

from provider_kit import ProviderRegistry, ServerError
from provider_kit._serve import FailureSchedule, simulators
from provider_kit.cli import main
from provider_kit.config import load_config
from provider_kit.errors import ConfigError
from provider_kit.providers import BUILTIN_TYPES
from provider_kit.testing import LoopbackServer

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


# -- LoopbackServer(port=..., latency=...) ---------------------------------------------------------


def test_loopback_server_listens_on_the_port_asked_for_and_can_restart_on_it_at_once():
    with LoopbackServer(SOME_KIND) as first:
        port = first.port
        with CLASSES[SOME_KIND](base_url=first.base_url, api_key="k") as provider:
            provider.complete("hi")  # a served connection leaves a TIME_WAIT socket behind
    with LoopbackServer(SOME_KIND, port=port) as again:
        assert again.port == port and again.base_url == f"http://127.0.0.1:{port}{API_PREFIXES[SOME_KIND]}"
        with CLASSES[SOME_KIND](base_url=again.base_url, api_key="k") as provider:
            assert provider.complete("hi").text == "echo: hi"


def test_a_port_in_use_raises_at_start():
    with LoopbackServer(SOME_KIND) as taken:
        server = LoopbackServer(SOME_KIND, port=taken.port)
        with pytest.raises(OSError) as raised:
            server.start()
        assert raised.value.errno == errno.EADDRINUSE
        server.close()


@pytest.mark.parametrize("options", [{"port": -1}, {"port": 65536}, {"port": "8000"}, {"port": True},
                                     {"latency": -0.1}, {"latency": float("nan")}, {"latency": "1"}])
def test_bad_port_or_latency_is_a_value_error(options):
    with pytest.raises(ValueError):
        LoopbackServer(SOME_KIND, **options)


def test_latency_delays_the_answer_and_every_stream_chunk():
    latency = 0.1
    with LoopbackServer(LOCAL_KIND, latency=latency) as server, \
            CLASSES[LOCAL_KIND](base_url=server.base_url, model=server.models[0]) as provider:
        started = time.monotonic()
        provider.complete("hi")
        assert time.monotonic() - started >= latency * 0.9
        started = time.monotonic()
        arrivals = [time.monotonic() for chunk in provider.stream("one two three") if chunk.text]
        assert len(arrivals) == 4  # "echo: ", "one ", "two ", "three"
        # Delays only add on a loaded machine, so bound the total, not each gap (a chunk read
        # late makes the next gap look short): the pause comes before every chunk after the first.
        assert arrivals[-1] - started >= 3 * latency * 0.9, [t - started for t in arrivals]
        server.latency = 0  # a knob that can be turned while the server runs
        started = time.monotonic()
        provider.complete("hi")
        assert time.monotonic() - started < latency * 0.9 + 5  # only an upper bound: no flake


def test_close_does_not_wait_for_a_long_latency():
    server = LoopbackServer(LOCAL_KIND, latency=60).start()
    failed = threading.Event()

    def call():
        with CLASSES[LOCAL_KIND](base_url=server.base_url, model=server.models[0], max_retries=0) as provider:
            try:
                provider.complete("hi", timeout=120)
            except Exception:
                failed.set()

    caller = threading.Thread(target=call)
    caller.start()
    server.wait_for_requests(1)
    started = time.monotonic()
    server.close()
    assert time.monotonic() - started < 10
    caller.join(30)
    assert failed.is_set() and not caller.is_alive()


# -- scripted failures ----------------------------------------------------------------------------


def _hosted(servers):
    """A client of the hosted example type's simulator among ``servers``."""
    server = servers[SOME_KIND]
    return CLASSES[SOME_KIND](base_url=server.base_url, api_key=server.api_key, max_retries=0)


def test_fail_every_nth_completion_request_with_the_protocols_own_error():
    with simulators(failures=FailureSchedule(every=2)) as servers, _hosted(servers) as provider:
        outcomes = []
        for _ in range(4):
            assert provider.health_check().ok  # health checks neither fail nor count
            try:
                outcomes.append(provider.complete("hi").text)
            except ServerError as error:
                assert error.status_code == 500 and "simulated failure" in str(error)
                outcomes.append("500")
        assert outcomes == ["echo: hi", "500", "echo: hi", "500"]


def test_fail_status_and_rate():
    with simulators(failures=FailureSchedule(rate=1.0, status=503)) as servers, _hosted(servers) as provider:
        for _ in range(3):
            with pytest.raises(ServerError) as raised:
                provider.complete("hi")
            assert raised.value.status_code == 503
    with simulators(failures=FailureSchedule(rate=0.0)) as servers, _hosted(servers) as provider:
        assert [provider.complete("hi").text for _ in range(3)] == ["echo: hi"] * 3


def test_a_seeded_fail_rate_repeats():
    def run(seed):
        schedule = FailureSchedule(rate=0.5, seed=seed)
        return [schedule.should_fail() for _ in range(64)]

    assert run(7) == run(7) and True in run(7) and False in run(7)


@pytest.mark.parametrize("options", [{"every": 0}, {"rate": 1.5}, {"rate": -0.1}, {"status": 200}])
def test_bad_failure_options(options):
    with pytest.raises(ValueError):
        FailureSchedule(**options)


# -- ports of `serve` -----------------------------------------------------------------------------


def _consecutive_free_ports(count):
    """A port N with N to N+count-1 free right now (another process may still take one)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first > 65536 - count:
            continue
        sockets = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    pytest.skip(f"no {count} consecutive free ports")


def test_serve_ports_are_consecutive_from_n_one_per_type():
    count = len(BUILTIN_TYPES)
    for _ in range(5):  # another test may take a port between the probe and the bind
        port = _consecutive_free_ports(count)
        try:
            with simulators(port) as servers:
                assert [server.port for server in servers.values()] == list(range(port, port + count))
                assert list(servers) == list(BUILTIN_TYPES)
                return
        except ConfigError:
            continue
    pytest.fail(f"could not bind {count} consecutive ports")


def test_serve_port_in_use_message(capsys):
    with LoopbackServer(SOME_KIND) as taken:
        code = main(["serve", "--quiet", "--port", str(taken.port)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and captured.err.count("\n") == 1
    assert f"127.0.0.1:{taken.port}" in captured.err and "--port" in captured.err


@pytest.mark.parametrize(("argv", "mistake"), [
    (["--port", "65534"], "--port"), (["--port", "x"], "--port"), (["--latency", "-1"], "--latency"),
    (["--fail-rate", "2"], "--fail-rate"), (["--fail-every", "0"], "--fail-every"),
    (["--fail-status", "200"], "--fail-status"), (["--config", "x.toml"], "--config"),
])
def test_serve_rejects_bad_options_with_one_line(capsys, argv, mistake):
    code = main(["serve", *argv])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and captured.err.count("\n") == 1 and mistake in captured.err


# -- `provider-kit serve` end to end --------------------------------------------------------------


class _Serve:
    """``python -m provider_kit serve ARGV`` as a child process whose stdout lines are read in a
    thread, so that waiting for the "ready" line has a deadline."""

    def __init__(self, *argv):
        self.process = subprocess.Popen([sys.executable, "-m", "provider_kit", "serve", *map(str, argv)],
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        self.stderr = []
        self._readers = [threading.Thread(target=self._read, args=(self.process.stdout, self.lines.put)),
                         threading.Thread(target=self._read, args=(self.process.stderr, self.stderr.append))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, sink):
        for line in stream:
            sink(line)
        sink(None)

    def wait_ready(self, timeout=60):
        out = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, f"serve ended before it was ready: {''.join(self.stderr[:-1])}"
            out.append(line)
            if line.startswith("# ready"):
                return "".join(out)

    def stop(self, signum=signal.SIGINT, timeout=15):
        self.process.send_signal(signum)
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for reader in self._readers:
            reader.join(10)
        self.process.stdout.close()
        self.process.stderr.close()


def _cli(*argv, stdin=None):
    return subprocess.run([sys.executable, "-m", "provider_kit", *map(str, argv)], input=stdin,
                          capture_output=True, text=True, timeout=60)


@posix_only
@pytest.mark.slow
def test_serve_writes_a_config_that_the_cli_uses_and_stops_cleanly_on_sigint(tmp_path):
    path = tmp_path / "provider_kit.toml"
    serve = _Serve("--port", "0", "--write", path)
    try:
        out = serve.wait_ready()
        assert f"config written to {path}" in out
        config = load_config(path)
        assert sorted(config.as_dict()["providers"]) == sorted(BUILTIN_TYPES)
        assert "made-up test keys" in path.read_text(encoding="utf-8")

        health = _cli("health", "--config", path)
        assert health.returncode == 0, health.stdout + health.stderr
        assert {line.split()[0]: line.split()[1] for line in health.stdout.splitlines()[1:]} == {
            name: "ok" for name in BUILTIN_TYPES}
        for name in BUILTIN_TYPES:
            answer = _cli("complete", "-p", name, "--config", path, "Hello simulators")
            assert (answer.returncode, answer.stdout) == (0, "echo: Hello simulators\n"), answer.stderr

        started = time.monotonic()
        assert serve.stop(signal.SIGINT) == 0
        assert time.monotonic() - started < 15
        log = "".join(line for line in serve.stderr if line)
        assert "POST /v1/messages -> 200" in log and log.endswith("provider-kit serve: stopped\n")
        assert "Traceback" not in log
    finally:
        serve.close()


@posix_only
@pytest.mark.slow
def test_serve_prints_a_toml_config_with_its_knobs_and_stops_on_sigterm(tmp_path):
    serve = _Serve("--quiet", "--latency", "0.01", "--fail-every", "1", "--fail-status", "503")
    try:
        out = serve.wait_ready()
        path = tmp_path / "printed.toml"
        path.write_text(out, encoding="utf-8")  # everything printed is TOML
        registry_config = load_config(path)
        assert registry_config.default_provider == KINDS[0]  # the first type
        with ProviderRegistry.from_config(path) as registry:
            assert registry.health_check_all(timeout=10).ok  # health checks never fail on purpose
            with pytest.raises(ServerError) as raised:
                registry.get(LOCAL_KIND).complete("hi", timeout=10)
            assert raised.value.status_code == 503 and "simulated failure" in str(raised.value)
        assert serve.stop(signal.SIGTERM) == 0
        assert "".join(line for line in serve.stderr if line) == ""
    finally:
        serve.close()
