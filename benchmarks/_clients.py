"""The clients the benchmarks compare, each behind the same three calls: complete, stream, close.

Every library is imported inside its factory, so importing this module costs nothing and a
memory child measures only the library it was asked for. Each adapter does what a careful user
of that library would write, no more: one long-lived client, JSON in, text out.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional
from urllib.parse import urlsplit

API_KEY = "sk-bench-not-a-real-key"
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5", "ollama": "llama3.2"}
#: Anthropic requires max_tokens; both Anthropic clients send provider_kit's default.
ANTHROPIC_MAX_TOKENS = 4096
#: Keeps LiteLLM from downloading its model price list at import (it would try GitHub).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


class Client:
    """One configured client; ``complete`` returns the reply text, ``stream`` yields text pieces."""

    def __init__(
        self,
        complete: Callable[[str], str],
        stream: Callable[[str], Iterator[str]],
        close: Callable[[], None] = lambda: None,
    ) -> None:
        self.complete = complete
        self.stream = stream
        self.close = close


class Spec:
    """How to build one client: its row label, the protocol it speaks and the module it needs."""

    def __init__(
        self,
        key: str,
        label: str,
        protocol: str,
        module: str,
        factory: Callable[[str, int], Client],
        kind: str,
    ) -> None:
        self.key = key
        self.label = label
        self.protocol = protocol
        self.module = module  # imported by the import-cost scenario; absent means skipped
        self.factory = factory  # (base_url, threads) -> Client
        self.kind = kind  # "floor", "provider_kit" or "alternative"

    def available(self) -> bool:
        import importlib.util

        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False


def _messages(prompt: str) -> List[Dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def _sse_openai_text(data: bytes) -> Optional[str]:
    """The text of one OpenAI ``data:`` payload, "" for none, None at ``[DONE]``."""
    if data == b"[DONE]":
        return None
    event = json.loads(data)
    return "".join(choice["delta"].get("content") or "" for choice in event["choices"])


# -- the floor ---------------------------------------------------------------------------------


def _requests_client(trust_env: bool) -> Callable[[str, int], Client]:
    def build(base_url: str, threads: int) -> Client:
        import requests
        import requests.adapters

        session = requests.Session()
        session.trust_env = trust_env
        if threads > 10:
            # requests' default pool keeps 10 connections; more threads would reconnect on
            # every call and log "Connection pool is full". Any threaded user raises it.
            adapter = requests.adapters.HTTPAdapter(pool_maxsize=threads)
            session.mount("http://", adapter)
        session.headers["Authorization"] = f"Bearer {API_KEY}"
        url = base_url + "/chat/completions"
        model = MODELS["openai"]

        def complete(prompt: str) -> str:
            response = session.post(url, json={"model": model, "messages": _messages(prompt)}, timeout=30)
            response.raise_for_status()
            return str(response.json()["choices"][0]["message"]["content"])

        def stream(prompt: str) -> Iterator[str]:
            body = {"model": model, "messages": _messages(prompt), "stream": True}
            with session.post(url, json=body, stream=True, timeout=30) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    if line.startswith(b"data: "):
                        text = _sse_openai_text(line[6:])
                        if text is None:
                            return
                        if text:
                            yield text

        return Client(complete, stream, session.close)

    return build


def _http_client(base_url: str, threads: int) -> Client:
    import http.client

    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + "/chat/completions"
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
    model = MODELS["openai"]
    # http.client connections are not thread-safe: one per thread.
    local = threading.local()
    opened: List[http.client.HTTPConnection] = []

    def connection() -> http.client.HTTPConnection:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(host, port, timeout=30)
            opened.append(conn)
        return conn

    def complete(prompt: str) -> str:
        conn = connection()
        conn.request("POST", path, json.dumps({"model": model, "messages": _messages(prompt)}), headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        return str(json.loads(data)["choices"][0]["message"]["content"])

    def stream(prompt: str) -> Iterator[str]:
        conn = connection()
        body = json.dumps({"model": model, "messages": _messages(prompt), "stream": True})
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        buffer = b""
        try:
            while True:
                data = response.read1(65536)
                if not data:
                    return
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.startswith(b"data: "):
                        text = _sse_openai_text(line[6:].rstrip(b"\r"))
                        if text is None:
                            return
                        if text:
                            yield text
        finally:
            response.read()  # drain, so a keep-alive connection can be reused

    def close() -> None:
        for conn in opened:
            conn.close()

    return Client(complete, stream, close)


# -- provider_kit ------------------------------------------------------------------------------


def _provider_kit(protocol: str) -> Callable[[str, int], Client]:
    def build(base_url: str, threads: int) -> Client:
        import provider_kit

        cls = {
            "openai": provider_kit.OpenAIProvider,
            "anthropic": provider_kit.AnthropicProvider,
            "ollama": provider_kit.OllamaProvider,
        }[protocol]
        provider = cls(base_url=base_url, api_key=API_KEY, model=MODELS[protocol], max_retries=0)

        def complete(prompt: str) -> str:
            return str(provider.complete(prompt).text)

        def stream(prompt: str) -> Iterator[str]:
            for chunk in provider.stream(prompt):
                if chunk.text:
                    yield chunk.text

        return Client(complete, stream, provider.close)

    return build


# -- what users would pick instead ---------------------------------------------------------------


def _openai_sdk(base_url: str, threads: int) -> Client:
    import openai

    client = openai.OpenAI(api_key=API_KEY, base_url=base_url, max_retries=0)
    model = MODELS["openai"]

    def complete(prompt: str) -> str:
        reply: Any = client.chat.completions.create(model=model, messages=_messages(prompt))  # type: ignore[arg-type]
        return str(reply.choices[0].message.content)

    def stream(prompt: str) -> Iterator[str]:
        events: Any = client.chat.completions.create(
            model=model, messages=_messages(prompt), stream=True  # type: ignore[arg-type]
        )
        with events:
            for event in events:
                for choice in event.choices:
                    if choice.delta.content:
                        yield choice.delta.content

    return Client(complete, stream, client.close)


def _anthropic_sdk(base_url: str, threads: int) -> Client:
    import anthropic

    client = anthropic.Anthropic(api_key=API_KEY, base_url=base_url, max_retries=0)
    model = MODELS["anthropic"]

    def complete(prompt: str) -> str:
        reply: Any = client.messages.create(
            model=model, max_tokens=ANTHROPIC_MAX_TOKENS, messages=_messages(prompt)  # type: ignore
        )
        return "".join(block.text for block in reply.content if block.type == "text")

    def stream(prompt: str) -> Iterator[str]:
        events: Any = client.messages.create(
            model=model, max_tokens=ANTHROPIC_MAX_TOKENS, messages=_messages(prompt), stream=True  # type: ignore
        )
        with events:
            for event in events:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    yield event.delta.text

    return Client(complete, stream, client.close)


def _ollama_sdk(base_url: str, threads: int) -> Client:
    import ollama

    client = ollama.Client(host=base_url)
    model = MODELS["ollama"]

    def complete(prompt: str) -> str:
        return str(client.chat(model=model, messages=_messages(prompt)).message.content)

    def stream(prompt: str) -> Iterator[str]:
        for part in client.chat(model=model, messages=_messages(prompt), stream=True):
            if part.message.content:
                yield part.message.content

    inner = getattr(client, "_client", None)
    return Client(complete, stream, getattr(inner, "close", lambda: None))


def _litellm(base_url: str, threads: int) -> Client:
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    model = "openai/" + MODELS["openai"]

    def complete(prompt: str) -> str:
        reply = litellm.completion(
            model=model, messages=_messages(prompt), api_base=base_url, api_key=API_KEY
        )
        return str(reply.choices[0].message.content)

    def stream(prompt: str) -> Iterator[str]:
        events = litellm.completion(
            model=model, messages=_messages(prompt), api_base=base_url, api_key=API_KEY, stream=True
        )
        for event in events:
            if event.choices and event.choices[0].delta.content:
                yield event.choices[0].delta.content

    return Client(complete, stream)


SPECS: List[Spec] = [
    Spec("requests", "requests.Session (floor)", "openai", "requests", _requests_client(True), "floor"),
    Spec("requests-no-env", "requests.Session, trust_env=False", "openai", "requests",
         _requests_client(False), "floor"),
    Spec("http.client", "http.client", "openai", "http.client", _http_client, "floor"),
    Spec("pk-openai", "provider_kit OpenAIProvider", "openai", "provider_kit", _provider_kit("openai"),
         "provider_kit"),
    Spec("pk-anthropic", "provider_kit AnthropicProvider", "anthropic", "provider_kit",
         _provider_kit("anthropic"), "provider_kit"),
    Spec("pk-ollama", "provider_kit OllamaProvider", "ollama", "provider_kit", _provider_kit("ollama"),
         "provider_kit"),
    Spec("openai", "openai SDK", "openai", "openai", _openai_sdk, "alternative"),
    Spec("anthropic", "anthropic SDK", "anthropic", "anthropic", _anthropic_sdk, "alternative"),
    Spec("ollama", "ollama SDK", "ollama", "ollama", _ollama_sdk, "alternative"),
    Spec("litellm", "LiteLLM", "openai", "litellm", _litellm, "alternative"),
]
BY_KEY: Dict[str, Spec] = {spec.key: spec for spec in SPECS}
