"""Resources after faults (issue 9): ``provider.close()`` closes every pooled socket at once,
whatever failed before (dropped connections, resets mid-body, error statuses) and whatever
references the caller keeps to the errors, not when the garbage collector runs.

Sockets are counted on the client side through Linux ``/proc`` (fds whose TCP peer is the
loopback server's port), right after ``close()`` returns: nothing to wait for.
"""

from __future__ import annotations

import gc
import os
import threading
from typing import Any, Dict, List, Optional

import pytest
from _kinds import CHAT_PATHS, CLASSES

from provider_kit import ProviderError, ResponseFormatError
from provider_kit.testing import LoopbackServer, Reply

KEY = "sk-close-after-faults-1234"

pytestmark = pytest.mark.skipif(
    not os.path.exists("/proc/self/net/tcp"), reason="counts sockets through Linux /proc"
)


def _socket_peers() -> Dict[int, int]:
    """fd -> remote TCP port of every socket this process holds open (Linux ``/proc``)."""
    inodes = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes[target[8:-1]] = int(fd)
    peers = {}
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table, encoding="ascii") as lines:
                next(lines)
                for line in lines:
                    fields = line.split()
                    if fields[9] in inodes:
                        peers[inodes[fields[9]]] = int(fields[2].rsplit(":", 1)[1], 16)
        except OSError:
            continue
    return peers


def client_sockets_to(port: int) -> List[int]:
    """The fds of this process's open connections to ``port``: client sockets, whatever their
    state (established, or half-closed by the server)."""
    return [fd for fd, peer in _socket_peers().items() if peer == port]


@pytest.mark.parametrize("fault", ["reset", "reset-mid-body", "error-status"])
def test_close_releases_every_socket_after_faults_under_concurrency(kind: str, fault: str) -> None:
    """Sixteen threads share one provider; one request in twenty fails. Afterwards close()
    closes every socket at once: not when the garbage collector runs, and whatever references
    the caller keeps to the errors (a batch's results hold them, tracebacks and all)."""
    threads, calls_each = 16, 10
    counter = iter(range(1, 10**6))
    lock = threading.Lock()

    with LoopbackServer(kind) as server:
        def answer(request: Any) -> Reply:
            with lock:
                number = next(counter)
            if number % 20:
                return server.completion_reply("ok")
            if fault == "reset":
                return Reply(reset=True)  # dropped before any answer (a RST)
            if fault == "reset-mid-body":
                return Reply(200, json={"partial": "x" * 100}, reset_after=10)
            return server.error_reply(503)

        server.enqueue(answer, path=CHAT_PATHS[kind], times=threads * calls_each)
        provider = CLASSES[kind](base_url=server.base_url, api_key=KEY, max_retries=0)
        kept: List[Optional[BaseException]] = []  # like registry.map(return_exceptions=True)
        start = threading.Barrier(threads)

        def work() -> None:
            start.wait()
            for _ in range(calls_each):
                try:
                    provider.complete("hi")
                    kept.append(None)
                except ProviderError as error:
                    kept.append(error)

        gc_was_enabled = gc.isenabled()
        gc.disable()  # only close() may free the sockets here
        try:
            workers = [threading.Thread(target=work) for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(30)
            assert not any(worker.is_alive() for worker in workers)
            failures = [error for error in kept if error is not None]
            assert len(kept) == threads * calls_each and len(failures) == threads * calls_each // 20
            assert client_sockets_to(server.port)  # the pool holds connections before close()
            provider.close()
            assert client_sockets_to(server.port) == []
        finally:
            if gc_was_enabled:
                gc.enable()
        # Closed, the provider still works: it opens a new pool.
        assert provider.complete("again").text == "echo: again"
        provider.close()
        assert client_sockets_to(server.port) == []


def test_close_releases_the_socket_of_an_abandoned_stream_error(kind: str) -> None:
    with LoopbackServer(kind) as server:
        provider = CLASSES[kind](base_url=server.base_url, api_key=KEY, max_retries=0)
        server.enqueue(server.stream_reply(["a", "b", "c"], terminate=False))
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with pytest.raises(ResponseFormatError) as info:
                list(provider.stream("hi"))
            provider.close()
            assert client_sockets_to(server.port) == []
            assert info.value is not None  # the error, and its traceback, are still referenced
        finally:
            if gc_was_enabled:
                gc.enable()

