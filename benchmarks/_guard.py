"""Keeps every benchmark on this machine: connections to anything but loopback fail at once.

Some libraries fetch data at import or on first use (LiteLLM's model price list, tokenizer
files). Installed in every benchmark process before any client library is imported; it only
wraps name resolution and ``connect``, which happen once per connection, not once per call.
"""

from __future__ import annotations

import socket
from typing import Any, List

#: Attempts that were refused, for the report (a library that tried is worth knowing about).
refused: List[str] = []


def forbid_non_loopback() -> None:
    """Make any connection to a host other than loopback fail at once, in this process.

    Some libraries fetch data at import or first call (LiteLLM's price list, tokenizer files);
    a benchmark must never send traffic off this machine.
    """
    allowed_names = {"127.0.0.1", "localhost", "::1"}
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def loopback(address: Any) -> bool:
        if isinstance(address, tuple) and address:
            host = str(address[0])
            return host in allowed_names or host.startswith("127.")
        return True  # AF_UNIX paths

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is None or host in ("", b""):
            return real_getaddrinfo(host, *args, **kwargs)  # a wildcard bind, not a peer
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in allowed_names and not name.startswith("127."):
            refused.append(name)
            raise socket.gaierror(socket.EAI_NONAME, f"benchmarks: {name} is not loopback")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        if not loopback(address):
            refused.append(repr(address))
            raise ConnectionRefusedError(f"benchmarks: {address!r} is not loopback")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not loopback(address):
            refused.append(repr(address))
            raise ConnectionRefusedError(f"benchmarks: {address!r} is not loopback")
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
