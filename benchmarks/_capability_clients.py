"""The clients of the structured-output and image scenarios, per protocol: the floor (a bare
``requests.Session`` posting the body provider_kit posts), provider_kit, and each official SDK
making the same call the way its documentation shows.

Each client is one ``call(prompt)``, returning what a user would go on with: the parsed JSON
(a dict, or an instance of the pydantic class), or the reply text. ``plain`` turns a result into
what the scenario compares with the expected value, outside the timed loop. Libraries are
imported inside the factories, as in ``_clients``.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable, Dict, List, Optional

import _clients
from _clients import API_KEY, MODELS
from _payloads import PNG, SCHEMA

#: The OpenAI ``response_format`` provider_kit sends for ``SCHEMA`` (strict: it is strict-compatible).
OPENAI_FORMAT = {"type": "json_schema", "json_schema": {"name": "Invoice", "schema": SCHEMA, "strict": True}}
#: Anthropic's structured output (PROTOCOLS-2.md §F.3).
ANTHROPIC_FORMAT = {"format": {"type": "json_schema", "schema": SCHEMA}}
ANTHROPIC_VERSION = "2023-06-01"


class Caller:
    """One configured client of a scenario: ``call(prompt)`` and ``close()``."""

    def __init__(self, call: Callable[[str], Any], close: Callable[[], None] = lambda: None) -> None:
        self.call = call
        self.close = close


class CallSpec:
    """How to build one client of a scenario.

    :param base: the ``_clients`` key whose selection (``--clients``, ``--quick``) includes this
        row: "requests" for the floors, "pk-<protocol>" for provider_kit, the SDK's key for an SDK.
    :param needs: modules needed beyond the base's own (pydantic for the class rows).
    :param counterpart: the SDK row doing the same work, for the "x SDK" ratio.
    """

    def __init__(self, key: str, label: str, protocol: str, base: str, factory: Callable[[str], Caller], *,
                 needs: tuple = (), counterpart: Optional[str] = None, plain: Callable[[Any], Any] = lambda x: x
                 ) -> None:
        self.key = key
        self.label = label
        self.protocol = protocol
        self.base = base
        self.factory = factory  # (base_url) -> Caller
        self.kind = _clients.BY_KEY[base].kind
        self.needs = needs
        self.counterpart = counterpart
        self.plain = plain

    def available(self) -> bool:
        import importlib.util

        modules = (_clients.BY_KEY[self.base].module, *self.needs)
        try:
            return all(importlib.util.find_spec(module) is not None for module in modules)
        except (ImportError, ValueError):
            return False


def _dumped(result: Any) -> Any:
    return result.model_dump()


def _invoice() -> type:
    from _invoice_model import Invoice

    return Invoice


def _b64() -> str:
    # Built on every call by every client that builds its own body: a user has the bytes, not the base64.
    return base64.b64encode(PNG).decode("ascii")


# -- the floor: the same body provider_kit posts, json.loads of the content --------------------------


def _session(protocol: str) -> Any:
    import requests

    session = requests.Session()
    if protocol == "anthropic":
        session.headers.update({"x-api-key": API_KEY, "anthropic-version": ANTHROPIC_VERSION})
    else:
        session.headers["Authorization"] = f"Bearer {API_KEY}"
    return session


def _chat_url(protocol: str, base_url: str) -> str:
    return base_url + {"openai": "/chat/completions", "anthropic": "/v1/messages", "ollama": "/api/chat"}[protocol]


def _body(protocol: str, content: Any, **more: Any) -> Dict[str, Any]:
    """The body provider_kit sends for one user message (checked by the same-wire test)."""
    messages: List[Dict[str, Any]] = [{"role": "user", "content": content}]
    if protocol == "openai":
        return {"messages": messages, "model": MODELS["openai"], **more}
    if protocol == "anthropic":
        return {"model": MODELS["anthropic"], "max_tokens": _clients.ANTHROPIC_MAX_TOKENS, "messages": messages,
                **more}
    return {"model": MODELS["ollama"], "messages": messages, "stream": False, **more}


def _reply_text(protocol: str, reply: Dict[str, Any]) -> str:
    if protocol == "openai":
        return str(reply["choices"][0]["message"]["content"])
    if protocol == "anthropic":
        return "".join(block["text"] for block in reply["content"] if block["type"] == "text")
    return str(reply["message"]["content"])


def _floor_structured(protocol: str) -> Callable[[str], Caller]:
    extra = {"openai": {"response_format": OPENAI_FORMAT}, "anthropic": {"output_config": ANTHROPIC_FORMAT},
             "ollama": {"format": SCHEMA}}[protocol]

    def build(base_url: str) -> Caller:
        session, url = _session(protocol), _chat_url(protocol, base_url)

        def call(prompt: str) -> Any:
            response = session.post(url, json=_body(protocol, prompt, **extra), timeout=30)
            response.raise_for_status()
            return json.loads(_reply_text(protocol, response.json()))

        return Caller(call, session.close)

    return build


def _image_content(protocol: str, prompt: str) -> Any:
    if protocol == "openai":
        return [{"type": "text", "text": prompt},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + _b64()}}]
    return [{"type": "text", "text": prompt},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": _b64()}}]


def _floor_image(protocol: str) -> Callable[[str], Caller]:
    def build(base_url: str) -> Caller:
        session, url = _session(protocol), _chat_url(protocol, base_url)

        def call(prompt: str) -> str:
            if protocol == "ollama":
                body = _body(protocol, prompt)
                body["messages"][0]["images"] = [_b64()]
            else:
                body = _body(protocol, _image_content(protocol, prompt))
            response = session.post(url, json=body, timeout=30)
            response.raise_for_status()
            return _reply_text(protocol, response.json())

        return Caller(call, session.close)

    return build


# -- provider_kit --------------------------------------------------------------------------------------


def _provider(protocol: str, base_url: str) -> Any:
    import provider_kit

    cls = {"openai": provider_kit.OpenAIProvider, "anthropic": provider_kit.AnthropicProvider,
           "ollama": provider_kit.OllamaProvider}[protocol]
    return cls(base_url=base_url, api_key=API_KEY, model=MODELS[protocol], max_retries=0)


def _pk_structured(protocol: str, with_class: bool) -> Callable[[str], Caller]:
    def build(base_url: str) -> Caller:
        provider = _provider(protocol, base_url)
        if with_class:
            schema = _invoice()

            def call(prompt: str) -> Any:
                return provider.complete(prompt, schema=schema).parsed
        else:
            def call(prompt: str) -> Any:
                return provider.complete(prompt, schema=SCHEMA).data

        return Caller(call, provider.close)

    return build


def _pk_image(protocol: str) -> Callable[[str], Caller]:
    def build(base_url: str) -> Caller:
        from provider_kit import Image

        provider = _provider(protocol, base_url)

        def call(prompt: str) -> str:
            return str(provider.complete([prompt, Image.from_bytes(PNG, "image/png")]).text)

        return Caller(call, provider.close)

    return build


# -- the SDKs ------------------------------------------------------------------------------------------


def _openai_structured(with_class: bool) -> Callable[[str], Caller]:
    def build(base_url: str) -> Caller:
        import openai

        client = openai.OpenAI(api_key=API_KEY, base_url=base_url, max_retries=0)
        model = MODELS["openai"]
        if with_class:
            invoice = _invoice()

            def call(prompt: str) -> Any:
                reply = client.chat.completions.parse(
                    model=model, messages=[{"role": "user", "content": prompt}], response_format=invoice)
                return reply.choices[0].message.parsed
        else:
            def call(prompt: str) -> Any:
                reply: Any = client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": prompt}],
                    response_format=OPENAI_FORMAT)  # type: ignore[arg-type]
                return json.loads(reply.choices[0].message.content)

        return Caller(call, client.close)

    return build


def _openai_image(base_url: str) -> Caller:
    import openai

    client = openai.OpenAI(api_key=API_KEY, base_url=base_url, max_retries=0)

    def call(prompt: str) -> str:
        reply: Any = client.chat.completions.create(
            model=MODELS["openai"], messages=[{"role": "user", "content": _image_content("openai", prompt)}])
        return str(reply.choices[0].message.content)

    return Caller(call, client.close)


def _anthropic_structured(with_class: bool) -> Callable[[str], Caller]:
    def build(base_url: str) -> Caller:
        import anthropic

        client = anthropic.Anthropic(api_key=API_KEY, base_url=base_url, max_retries=0)
        model, limit = MODELS["anthropic"], _clients.ANTHROPIC_MAX_TOKENS
        if with_class:
            invoice = _invoice()

            def call(prompt: str) -> Any:
                reply: Any = client.messages.parse(model=model, max_tokens=limit, output_format=invoice,
                                                   messages=[{"role": "user", "content": prompt}])
                return reply.parsed_output
        else:
            def call(prompt: str) -> Any:
                reply: Any = client.messages.create(model=model, max_tokens=limit, output_config=ANTHROPIC_FORMAT,
                                                    messages=[{"role": "user", "content": prompt}])  # type: ignore
                return json.loads("".join(block.text for block in reply.content if block.type == "text"))

        return Caller(call, client.close)

    return build


def _anthropic_image(base_url: str) -> Caller:
    import anthropic

    client = anthropic.Anthropic(api_key=API_KEY, base_url=base_url, max_retries=0)

    def call(prompt: str) -> str:
        reply: Any = client.messages.create(
            model=MODELS["anthropic"], max_tokens=_clients.ANTHROPIC_MAX_TOKENS,
            messages=[{"role": "user", "content": _image_content("anthropic", prompt)}])  # type: ignore
        return "".join(block.text for block in reply.content if block.type == "text")

    return Caller(call, client.close)


def _ollama_client(base_url: str) -> Any:
    import ollama

    return ollama.Client(host=base_url)


def _ollama_close(client: Any) -> Callable[[], None]:
    return getattr(getattr(client, "_client", None), "close", lambda: None)


def _ollama_structured(with_class: bool) -> Callable[[str], Caller]:
    def build(base_url: str) -> Caller:
        client, model = _ollama_client(base_url), MODELS["ollama"]
        if with_class:
            invoice: Any = _invoice()
            schema = invoice.model_json_schema()  # once: the docs build it per call, a careful user would not

            def call(prompt: str) -> Any:
                reply = client.chat(model=model, messages=[{"role": "user", "content": prompt}], format=schema)
                return invoice.model_validate_json(reply.message.content or "")
        else:
            def call(prompt: str) -> Any:
                reply = client.chat(model=model, messages=[{"role": "user", "content": prompt}], format=SCHEMA)
                return json.loads(reply.message.content or "")

        return Caller(call, _ollama_close(client))

    return build


def _ollama_image(base_url: str) -> Caller:
    client = _ollama_client(base_url)

    def call(prompt: str) -> str:
        # ollama-python base64-encodes bytes itself.
        reply = client.chat(model=MODELS["ollama"], messages=[{"role": "user", "content": prompt, "images": [PNG]}])
        return str(reply.message.content)

    return Caller(call, _ollama_close(client))


_NAMES = {"openai": "OpenAI", "anthropic": "Anthropic", "ollama": "Ollama"}
_SDK_CALLS = {
    "openai": ("`chat.completions.parse(response_format=Invoice)`", "`chat.completions.create()` + `json.loads`"),
    "anthropic": ("`messages.parse(output_format=Invoice)`", "`messages.create(output_config=...)` + `json.loads`"),
    "ollama": ("`chat(format=schema)` + `Invoice.model_validate_json`", "`chat(format=schema)` + `json.loads`"),
}
_SDK_STRUCTURED = {"openai": _openai_structured, "anthropic": _anthropic_structured, "ollama": _ollama_structured}
_SDK_IMAGE = {"openai": _openai_image, "anthropic": _anthropic_image, "ollama": _ollama_image}


def _structured_specs(protocol: str) -> List[CallSpec]:
    name, sdk = _NAMES[protocol], _clients.BY_KEY[protocol].label
    with_class, with_dict = _SDK_CALLS[protocol]
    return [
        CallSpec(f"requests-{protocol}", f"{name}: requests.Session + `json.loads` (floor)", protocol, "requests",
                 _floor_structured(protocol)),
        CallSpec(f"pk-{protocol}", f"{name}: provider_kit `schema=dict`", protocol, f"pk-{protocol}",
                 _pk_structured(protocol, False), counterpart=f"{protocol}-dict"),
        CallSpec(f"pk-{protocol}-class", f"{name}: provider_kit `schema=Invoice` (pydantic)", protocol,
                 f"pk-{protocol}", _pk_structured(protocol, True), needs=("pydantic",),
                 counterpart=f"{protocol}-class", plain=_dumped),
        CallSpec(f"{protocol}-class", f"{name}: {sdk} {with_class}", protocol, protocol,
                 _SDK_STRUCTURED[protocol](True), needs=("pydantic",), plain=_dumped),
        CallSpec(f"{protocol}-dict", f"{name}: {sdk} {with_dict}", protocol, protocol,
                 _SDK_STRUCTURED[protocol](False)),
    ]


def _image_specs(protocol: str) -> List[CallSpec]:
    name, sdk = _NAMES[protocol], _clients.BY_KEY[protocol].label
    return [
        CallSpec(f"requests-{protocol}", f"{name}: requests.Session, base64 per call (floor)", protocol, "requests",
                 _floor_image(protocol)),
        CallSpec(f"pk-{protocol}", f"{name}: provider_kit `Image.from_bytes`", protocol, f"pk-{protocol}",
                 _pk_image(protocol), counterpart=protocol),
        CallSpec(protocol, f"{name}: {sdk}", protocol, protocol, _SDK_IMAGE[protocol]),
    ]


PROTOCOLS = ("openai", "anthropic", "ollama")
STRUCTURED: List[CallSpec] = [spec for protocol in PROTOCOLS for spec in _structured_specs(protocol)]
IMAGE: List[CallSpec] = [spec for protocol in PROTOCOLS for spec in _image_specs(protocol)]
