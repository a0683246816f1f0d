"""``provider-kit demo``: the whole flow with no key and no network.

It starts the loopback protocol simulators from ``provider_kit.testing`` (one server per
built-in provider type, on 127.0.0.1), builds a registry pointed at them, and shows the
health table, one completion per provider and one stream as it arrives.
"""

from __future__ import annotations

import time
from typing import List, TextIO, Union

from ._serve import PROTOCOLS, simulated_type_names, simulator_config, simulators
from .providers import BUILTIN_TYPES
from .registry import ProviderRegistry

#: Pause between streamed words, so the demo shows a stream arriving rather than a block.
STREAM_PAUSE_S = 0.08
DEMO_KEY = "sk-demo-not-a-real-key"
STREAM_WORDS = ("Streams", "arrive", "word", "by", "word", "as", "the", "server", "sends", "them")


def run_demo(out: TextIO) -> int:
    """Run the demo, writing to ``out``; returns the exit code."""
    with simulators(api_key=DEMO_KEY) as servers:
        # The stream is shown by a type that needs a key: the one a real set-up would use.
        streamed = next((p for p in PROTOCOLS if BUILTIN_TYPES[p].REQUIRES_KEY), PROTOCOLS[0])
        config = simulator_config(servers, default=streamed)
        print(f"provider-kit demo: {len(servers)} LOCAL SIMULATORS on 127.0.0.1 that speak the", file=out)
        print(f"{simulated_type_names()} wire protocols. No key, no network, no real model.\n", file=out)
        for protocol, server in servers.items():
            print(f"  {protocol:<9} simulator at {server.base_url}", file=out)

        with ProviderRegistry.from_config(config) as registry:
            print("\n$ provider-kit health", file=out)
            print(registry.health_check_all(timeout=5), file=out)

            print("\n$ provider-kit complete -p NAME 'What is provider_kit?'", file=out)
            for name in registry.names():
                completion = registry[name].complete("What is provider_kit?", max_tokens=50)
                print(
                    f"  {name:<9} -> {completion.text!r}  "
                    f"[{completion.finish_reason}, {completion.usage.total_tokens} tokens, "
                    f"{completion.latency_s * 1000:.0f} ms]",
                    file=out,
                )

            pieces: List[Union[str, float]] = []
            for word in STREAM_WORDS:
                pieces.extend([word + " ", STREAM_PAUSE_S])
            # The next request this server gets is the stream's: health and completions are done.
            server = servers[streamed]
            server.enqueue(server.stream_reply(pieces))
            print(f"\n$ provider-kit complete --stream -p {registry.default.name} 'Stream something'", file=out)
            out.write("  ")
            started = time.monotonic()
            first = None
            for chunk in registry.default.stream("Stream something"):
                if chunk.text and first is None:
                    first = time.monotonic() - started
                out.write(chunk.text)
                out.flush()
            total = time.monotonic() - started
            print(f"\n  (first words after {(first or 0) * 1000:.0f} ms, whole stream {total * 1000:.0f} ms)", file=out)
        variables = " / ".join(v for v in (BUILTIN_TYPES[p].enabling_env_var() for p in PROTOCOLS) if v)
        print(f"\nNext: set {variables} (or write provider_kit.toml)", file=out)
        print("and run `provider-kit health` and `provider-kit complete 'Hello'` against real providers,", file=out)
        print("or keep these simulators running with `provider-kit serve` to try a notebook or a web app.", file=out)
    return 0
