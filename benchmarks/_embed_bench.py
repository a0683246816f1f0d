"""The embeddings scenario: 10,000 short texts at 1,536 dimensions, provider_kit against the
openai SDK, each in a fresh interpreter per round (CPU of the embedding call and the memory it
keeps: growth of the peak RSS from just before the call, with the vectors still held).

The server answers every ``/embeddings`` request with a canned body of as many base64 float32
vectors as the request has inputs (what the API sends for ``encoding_format: "base64"``, which
both clients ask for), built once per batch size: the server's work stays out of the picture.
The openai SDK sends a request as it is given, so its user batches the 10,000 texts by the API's
2,048 inputs per request, as provider_kit does by itself.

Run by ``run.py`` (``scenario``), and as ``python _embed_bench.py CLIENT BASE_URL COUNT``: one
measurement, printed as one JSON line.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from array import array
from typing import Any, Dict, List

import _guard

_guard.forbid_non_loopback()

DIMENSIONS = 1536
TEXTS = 10_000
MODEL = "text-embedding-3-small"
BATCH = 2048  # the API's most inputs per request
API_KEY = "sk-bench-embed-0123456789"
CLIENTS = ("pk", "openai")
#: Targets: CPU and memory growth, as ratios to the openai SDK's.
CPU_TARGET, MEMORY_TARGET = 0.5, 0.25


def vector_bytes(index: int) -> bytes:
    """Input ``index``'s vector as little-endian float32 (a few distinct values, cheap to make)."""
    values = array("f", [((index * 31 + position) % 97) / 97.0 for position in range(DIMENSIONS)])
    if sys.byteorder != "little":
        values.byteswap()
    return values.tobytes()


def install(server: Any) -> None:
    """Make ``server`` answer every embeddings request with canned base64 vectors."""
    import urllib.parse

    route = urllib.parse.urlsplit(server.base_url).path + "/embeddings"
    encoded = [base64.b64encode(vector_bytes(index)).decode("ascii") for index in range(97)]
    bodies: Dict[int, bytes] = {}

    def respond(request: Any) -> Any:
        server.enqueue(respond, path=route)
        body = request.json()
        inputs = body.get("input")
        if body.get("encoding_format") != "base64" or not isinstance(inputs, list):
            return server.error_reply(400, "benchmark: expected base64 embeddings of a list of inputs")
        count = len(inputs)
        if count not in bodies:
            data = [{"object": "embedding", "index": i, "embedding": encoded[i % 97]} for i in range(count)]
            bodies[count] = json.dumps({"object": "list", "data": data, "model": MODEL,
                                        "usage": {"prompt_tokens": 3 * count, "total_tokens": 3 * count}}).encode()
        from provider_kit.testing import Reply

        return Reply(200, body=bodies[count], content_type="application/json")

    server.enqueue(respond, path=route, times=4)


def _peak_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _embed_pk(base_url: str, texts: List[str]) -> Any:
    import provider_kit

    provider = provider_kit.OpenAIProvider(base_url=base_url, api_key=API_KEY, max_retries=0, timeout=120)
    started = time.process_time()
    result = provider.embed(texts, model=MODEL)
    return result.vectors, time.process_time() - started


def _embed_openai(base_url: str, texts: List[str]) -> Any:
    import openai

    client = openai.OpenAI(api_key=API_KEY, base_url=base_url, max_retries=0, timeout=120)
    started = time.process_time()
    vectors: List[Any] = []
    for start in range(0, len(texts), BATCH):
        reply = client.embeddings.create(model=MODEL, input=texts[start:start + BATCH])
        vectors += [item.embedding for item in reply.data]
    return vectors, time.process_time() - started


def measure(client: str, base_url: str, count: int) -> Dict[str, Any]:
    """One fresh-interpreter measurement: CPU of the call, peak RSS growth, and a check."""
    texts = [f"ticket {number}: the printer on floor {number % 7} is jammed again" for number in range(count)]
    embed = _embed_pk if client == "pk" else _embed_openai
    import provider_kit  # noqa: F401 - both clients' imports done before the baseline
    if client == "openai":
        import openai  # noqa: F401
    before = _rss_kib()
    vectors, cpu_s = embed(base_url, texts)
    growth = _peak_kib() - before
    expected = array("f")
    expected.frombytes(vector_bytes(((count - 1) % BATCH) % 97))  # the last input's place in its request
    if len(vectors) != count or len(vectors[-1]) != DIMENSIONS or list(vectors[-1]) != list(expected):
        raise SystemExit(f"{client}: wrong vectors ({len(vectors)} of {len(vectors[-1]) if vectors else 0})")
    return {"cpu_ms": cpu_s * 1000.0, "growth_mib": growth / 1024.0, "refused": _guard.refused}


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], sys.argv[2], int(sys.argv[3]))))


def scenario(urls: Dict[str, str], rounds: int, count: int, with_sdk: bool) -> Dict[str, Any]:
    """``rounds`` interleaved fresh-interpreter measurements of provider_kit, and of the openai
    SDK when it was chosen (``--clients``; not in ``--quick``) and is installed."""
    import importlib.util

    import _scenarios as sc

    clients = ["pk"] + (["openai"] if with_sdk and importlib.util.find_spec("openai") is not None else [])
    samples: Dict[str, List[Dict[str, Any]]] = {client: [] for client in clients}
    errors: Dict[str, str] = {}
    env = sc.child_env()
    for round_number in range(rounds):
        for client in sc.rotated(clients, round_number):
            if client in errors:
                continue
            try:
                _, _, out, _ = sc._run_python(["_embed_bench.py", client, urls["openai-embed"], str(count)], env)
            except RuntimeError as error:
                errors[client] = str(error)[-200:]
                sc.log(f"embeddings: {client} failed: {errors[client]}")
                continue
            samples[client].append(json.loads(out.strip().splitlines()[-1]))
    rows = {client: {"cpu_ms": [s["cpu_ms"] for s in runs], "growth_mib": [s["growth_mib"] for s in runs]}
            for client, runs in samples.items() if runs}
    return {"rows": rows, "errors": errors, "count": count}
