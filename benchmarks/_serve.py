"""The loopback servers in a process of their own, so their work never competes for the client's GIL.

Run by ``run.py``: starts one ``LoopbackServer`` per protocol, one per protocol that answers
every chat request with the canned structured-output answer (``<protocol>-structured``), one
that answers with the streamed two-call tool answer (``<protocol>-tools``), and an OpenAI one for
the embeddings scenario (``openai-embed``), prints
their base URLs as one JSON line, serves until its stdin closes, then prints how much CPU it spent and exits.
"""

from __future__ import annotations

import json
import sys
import time

import _embed_bench
from _payloads import install_structured_answer
from _tool_clients import install_tool_stream

from provider_kit.testing import LoopbackServer

PROTOCOLS = ("openai", "anthropic", "ollama")


def main() -> None:
    servers = {protocol: LoopbackServer(protocol) for protocol in PROTOCOLS}
    servers.update({f"{protocol}-structured": LoopbackServer(protocol) for protocol in PROTOCOLS})
    servers.update({f"{protocol}-tools": LoopbackServer(protocol) for protocol in PROTOCOLS})
    servers["openai-embed"] = LoopbackServer("openai", api_key=_embed_bench.API_KEY)
    for name, server in servers.items():
        server.start()
        if name.endswith("-structured"):
            install_structured_answer(server, server.protocol or "")
        elif name.endswith("-tools"):
            install_tool_stream(server)
        elif name == "openai-embed":
            _embed_bench.install(server)
    try:
        print(json.dumps({protocol: server.base_url for protocol, server in servers.items()}), flush=True)
        sys.stdin.read()  # the parent closes our stdin to stop us
    finally:
        for server in servers.values():
            server.close()
    errors = [repr(error) for server in servers.values() for error in server.errors]
    print(json.dumps({"cpu_s": time.process_time(), "errors": errors[:5]}), flush=True)


if __name__ == "__main__":
    main()
