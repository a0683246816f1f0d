"""OllamaProvider beyond plain text (issue 11; PROTOCOLS-2.md §E.4, §F.4, §H.4, §I.3) against
the loopback simulator: images in ``images`` as raw base64, ``format`` for ``schema=`` and
``json=True``, ``think`` and ``message.thinking`` (whole and streamed, and sent back with the
assistant turn), usage, ``top_p``/``seed`` in ``options``, ``extra_body`` and ``cache=True``.
Also what the simulator refuses, as the real server does.

The type is named through ``OllamaProvider.TYPE`` (the spelling rule of test_provider_types.py).
"""

from __future__ import annotations

import base64
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
import requests
from _support import raises

from provider_kit import Completion, Image, Message, OllamaProvider, StreamChunk, Text
from provider_kit.errors import ConfigError, InvalidRequestError, ResponseFormatError
from provider_kit.providers.ollama import STATE_KEY
from provider_kit.testing import LoopbackServer

KIND = OllamaProvider.TYPE
THINKER = "qwen3:8b"  # a model the simulator treats as thinking-capable
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(32))
JPEG = b"\xff\xd8\xff\xe0" + b"\x10" * 20
WEBP = b"RIFF\x1c\x00\x00\x00WEBPVP8 " + b"\x00" * 16
GIF = b"GIF89a" + b"\x00" * 20

MakeProvider = Callable[..., OllamaProvider]


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(KIND, models=["llama3.2:latest", THINKER]) as server:
        yield server
    assert server.errors == []


@pytest.fixture
def make(server: LoopbackServer, provider_factory: Callable[..., MakeProvider]) -> MakeProvider:
    return provider_factory(OllamaProvider, base_url=server.base_url, max_retries=0, timeout=10)


def both(provider: OllamaProvider, prompt: Any, **arguments: Any) -> Tuple[Completion, List[StreamChunk]]:
    """The same call complete and streamed."""
    return provider.complete(prompt, **arguments), list(provider.stream(prompt, **arguments))


def sent(server: LoopbackServer) -> List[Dict[str, Any]]:
    return [request.json() for request in server.requests]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- images ---------------------------------------------------------------------------------------


def test_an_image_goes_in_images_as_raw_base64_beside_the_text(server: LoopbackServer, make: MakeProvider) -> None:
    completion, chunks = both(make(), ["What is this?", Image.from_bytes(PNG)])
    for body in sent(server):
        assert body["messages"] == [{"role": "user", "content": "What is this?", "images": [b64(PNG)]}]
    # The simulator decoded what arrived and says so: the wire carried the bytes.
    expected = f"echo: What is this? [image 1: image/png, {len(PNG)} bytes]"
    assert completion.text == "".join(chunk.text for chunk in chunks) == expected


def test_several_images_keep_their_order_and_the_text_parts_are_joined(
    server: LoopbackServer, make: MakeProvider
) -> None:
    data_url = "data:image/webp;base64," + b64(WEBP)
    message = Message("user", [Text("Compare"), Image.from_bytes(JPEG), "these",
                               {"type": "image_url", "image_url": {"url": data_url}}, Image.from_bytes(PNG)])
    completion = make().complete([Message("system", "Be brief."), message])
    assert server.last_request.json()["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Compare\nthese", "images": [b64(JPEG), b64(WEBP), b64(PNG)]},
    ]
    assert completion.text.endswith(f"[image 1: image/jpeg, {len(JPEG)} bytes] [image 2: image/webp, "
                                    f"{len(WEBP)} bytes] [image 3: image/png, {len(PNG)} bytes]")


def test_a_message_of_text_parts_only_is_plain_content(server: LoopbackServer, make: MakeProvider) -> None:
    make().complete([Text("one"), "two"])
    assert server.last_request.json()["messages"] == [{"role": "user", "content": "one\ntwo"}]


def test_an_image_url_is_refused_before_sending(server: LoopbackServer, make: MakeProvider) -> None:
    provider = make()
    for call in (provider.complete, lambda *a: list(provider.stream(*a))):
        error = raises(ConfigError, call, ["Describe", Image.from_url("https://example.com/cat.png")])
        assert "image URL" in str(error) and "never fetches a URL" in str(error)
        assert "Image.from_path" in str(error) and KIND in str(error)
    assert server.requests == []


def test_a_gif_is_refused_before_sending(server: LoopbackServer, make: MakeProvider) -> None:
    error = raises(ConfigError, make().complete, ["Describe", Image.from_bytes(GIF)])
    assert "image/gif" in str(error) and "PNG, JPEG or WebP" in str(error)
    assert server.requests == []


def test_the_simulator_refuses_a_data_url_prefix_as_the_server_does(
    server: LoopbackServer, session: requests.Session
) -> None:
    def chat(images: List[Any]) -> requests.Response:
        message = {"role": "user", "content": "hi", "images": images}
        return session.post(server.url + "/api/chat", json={"model": "llama3.2", "messages": [message],
                                                            "stream": False}, timeout=10)

    prefixed = chat(["data:image/png;base64," + b64(PNG)])
    assert prefixed.status_code == 400
    assert prefixed.json() == {"error": "illegal base64 data at input byte 4"}
    url = chat(["https://example.com/cat.png"])
    assert url.status_code == 400 and url.json()["error"].startswith("illegal base64 data at input byte 5")
    not_an_image = chat([b64(b"just some text")])
    assert not_an_image.status_code == 400 and "unknown format" in not_an_image.json()["error"]
    assert chat([b64(PNG)]).json()["message"]["content"].endswith(f"[image 1: image/png, {len(PNG)} bytes]")


# -- structured output ----------------------------------------------------------------------------

INVOICE = {
    "title": "Invoice", "type": "object",
    "properties": {"total": {"type": "number"}, "currency": {"type": "string", "enum": ["EUR", "USD"]},
                   "lines": {"type": "array", "items": {"$ref": "#/$defs/Line"}}},
    "required": ["total", "currency", "lines"],
    "$defs": {"Line": {"type": "object", "properties": {"item": {"type": "string"}, "qty": {"type": "integer"}}}},
}


def test_a_schema_is_sent_as_format_unchanged_and_the_answer_parsed(server: LoopbackServer, make: MakeProvider) -> None:
    completion, chunks = both(make(), "Total?", schema=INVOICE)
    for body in sent(server):
        assert body["format"] == INVOICE and "response_format" not in body
    expected = {"total": 1.5, "currency": "EUR", "lines": [{"item": "Total?", "qty": 1}]}
    assert completion.data == completion.parsed == expected
    assert chunks[-1].data == chunks[-1].parsed == expected
    assert "".join(chunk.text for chunk in chunks) == completion.text


def test_a_pydantic_model_is_sent_as_its_json_schema_and_parsed_into_it(
    server: LoopbackServer, make: MakeProvider
) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Ticket(pydantic.BaseModel):
        category: str
        urgent: bool = False

    completion, chunks = both(make(), "Printer on fire", schema=Ticket)
    assert server.last_request.json()["format"] == Ticket.model_json_schema()
    assert completion.parsed == chunks[-1].parsed == Ticket(category="Printer on fire", urgent=True)


def test_json_true_is_format_json(server: LoopbackServer, make: MakeProvider) -> None:
    completion, chunks = both(make(), "hi", json=True)
    assert [body["format"] for body in sent(server)] == ["json", "json"]
    assert completion.data == chunks[-1].data == {"echo": "hi"}


def test_json_cut_short_by_max_tokens_is_a_format_error_in_both(server: LoopbackServer, make: MakeProvider) -> None:
    provider = make()
    cut = raises(ResponseFormatError, provider.complete, "a b c d e f", schema=INVOICE, max_tokens=2)
    cut_stream = raises(ResponseFormatError, lambda: list(provider.stream("a b c d e f", schema=INVOICE,
                                                                          max_tokens=2)))
    assert str(cut) == str(cut_stream) and "cut short by max_tokens" in str(cut)
    assert server.last_request.json()["options"] == {"num_predict": 2}


def test_the_simulator_refuses_a_format_that_is_neither_json_nor_a_schema(
    server: LoopbackServer, session: requests.Session
) -> None:
    reply = session.post(server.url + "/api/chat", json={"model": "llama3.2", "format": "xml", "stream": False,
                                                         "messages": [{"role": "user", "content": "hi"}]}, timeout=10)
    assert reply.status_code == 400 and "invalid format" in reply.json()["error"]


# -- reasoning ------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["low", "medium", "high"])
def test_a_level_is_sent_as_think_and_the_thinking_is_reasoning_never_text(
    server: LoopbackServer, make: MakeProvider, level: str
) -> None:
    completion, chunks = both(make(model=THINKER), "Why is the sky blue?", reasoning=level)
    assert [body["think"] for body in sent(server)] == [level, level]
    thinking = f"Thinking ({level}) about: Why is the sky blue?"
    assert completion.reasoning == thinking and completion.text == "echo: Why is the sky blue?"
    assert "".join(chunk.reasoning for chunk in chunks) == thinking  # streamed and whole agree
    assert "".join(chunk.text for chunk in chunks) == completion.text
    assert all(not (chunk.text and chunk.reasoning) for chunk in chunks)
    reasoning_at = [index for index, chunk in enumerate(chunks) if chunk.reasoning]
    assert reasoning_at and max(reasoning_at) < min(i for i, chunk in enumerate(chunks) if chunk.text)
    state = {STATE_KEY: {"thinking": thinking}}
    assert completion.provider_state == chunks[-1].provider_state == state
    assert completion.message == Message("assistant", completion.text, state)


def test_reasoning_false_sends_think_false_and_a_thinking_model_thinks_by_default(
    server: LoopbackServer, make: MakeProvider
) -> None:
    provider = make(model=THINKER)
    quiet, quiet_chunks = both(provider, "hi", reasoning=False)
    assert [body["think"] for body in sent(server)] == [False, False]
    assert quiet.reasoning is None and quiet.provider_state is None
    assert [chunk.reasoning for chunk in quiet_chunks] == [""] * len(quiet_chunks)
    default = provider.complete("hi")
    assert "think" not in server.last_request.json()
    assert default.reasoning == "Thinking (default) about: hi"


def test_reasoning_on_a_model_that_cannot_think_is_the_servers_400(server: LoopbackServer, make: MakeProvider) -> None:
    error = raises(InvalidRequestError, make().complete, "hi", reasoning="high")
    assert '"llama3.2" does not support thinking' in str(error) and error.status_code == 400
    make().complete("hi", reasoning=False)  # false is fine on any model, as on the server


def test_the_thinking_goes_back_with_the_appended_assistant_turn(server: LoopbackServer, make: MakeProvider) -> None:
    provider = make(model=THINKER)
    first = provider.complete("Plan a trip", reasoning="low")
    history = [Message("user", "Plan a trip"), first.message, Message("user", "Shorter please")]
    provider.complete(history, reasoning="low")
    assert server.last_request.json()["messages"] == [
        {"role": "user", "content": "Plan a trip"},
        {"role": "assistant", "content": "echo: Plan a trip", "thinking": "Thinking (low) about: Plan a trip"},
        {"role": "user", "content": "Shorter please"},
    ]
    # A streamed turn carries the same state on its last chunk.
    chunks = list(provider.stream("Plan a trip", reasoning="low"))
    streamed = Message("assistant", "".join(c.text for c in chunks), chunks[-1].provider_state)
    assert streamed == first.message


def test_a_bad_thinking_state_is_refused_and_another_protocols_state_is_not_sent(
    server: LoopbackServer, make: MakeProvider
) -> None:
    provider = make()
    bad = Message("assistant", "x", {STATE_KEY: {"thinking": 3}})
    assert "must be a string" in str(raises(ConfigError, provider.complete, [Message("user", "q"), bad]))
    assert server.requests == []
    foreign = Message("assistant", "x", {"thinking": "someone else's", "signature": "s"})
    provider.complete([Message("user", "q"), foreign, Message("user", "again")])
    assert server.last_request.json()["messages"][1] == {"role": "assistant", "content": "x"}


def test_thinking_and_a_schema_together(server: LoopbackServer, make: MakeProvider) -> None:
    completion, chunks = both(make(model=THINKER), "Total?", schema=INVOICE, reasoning="medium")
    assert completion.reasoning == "Thinking (medium) about: Total?"
    assert completion.data == chunks[-1].data and completion.data["currency"] == "EUR"


def test_the_simulator_refuses_an_unknown_think_value(server: LoopbackServer, session: requests.Session) -> None:
    reply = session.post(server.url + "/api/chat", json={"model": THINKER, "think": "extreme", "stream": False,
                                                         "messages": [{"role": "user", "content": "hi"}]}, timeout=10)
    assert reply.status_code == 400 and reply.json()["error"].startswith('invalid think value: "extreme"')


# -- usage ----------------------------------------------------------------------------------------


def test_usage_counts_thinking_as_output_and_reports_no_cache_details(
    server: LoopbackServer, make: MakeProvider
) -> None:
    completion, chunks = both(make(model=THINKER), "one two", reasoning="high")
    usage = completion.usage
    assert usage == chunks[-1].usage
    # eval_count covers the thinking (5 words) and the text (3); prompt_eval_count the prompt
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (2, 8, 10)
    assert usage.cached_input_tokens is None and usage.cache_creation_input_tokens is None
    assert usage.reasoning_tokens is None  # Ollama does not report how many were thinking


# -- sampling, extra_body, cache ------------------------------------------------------------------


def test_top_p_and_seed_go_in_options(server: LoopbackServer, make: MakeProvider) -> None:
    both(make(), "hi", temperature=0.1, top_p=0.9, seed=42)
    for body in sent(server):
        assert body["options"] == {"temperature": 0.1, "top_p": 0.9, "seed": 42}
        assert "top_p" not in body and "seed" not in body
    make().complete("hi", seed=0)
    assert server.last_request.json()["options"] == {"seed": 0}


def test_extra_body_merges_into_the_body_and_its_options(server: LoopbackServer, make: MakeProvider) -> None:
    make().complete("hi", max_tokens=5, seed=1, extra_body={"options": {"num_ctx": 8192}, "logprobs": True})
    body = server.last_request.json()
    assert body["options"] == {"num_predict": 5, "seed": 1, "num_ctx": 8192} and body["logprobs"] is True


@pytest.mark.parametrize(
    ("arguments", "key"),
    [
        ({"temperature": 0.5, "extra_body": {"options": {"temperature": 1.0}}}, "options.temperature"),
        ({"seed": 1, "extra_body": {"options": {"seed": 2}}}, "options.seed"),
        ({"reasoning": False, "extra_body": {"think": True}}, "think"),
        ({"json": True, "extra_body": {"format": {"type": "object"}}}, "format"),
        ({"extra_body": {"messages": []}}, "messages"),
    ],
)
def test_extra_body_never_overwrites_what_provider_kit_sets(
    server: LoopbackServer, make: MakeProvider, arguments: Dict[str, Any], key: str
) -> None:
    error = raises(ConfigError, make().complete, "hi", **arguments)
    assert repr(key) in str(error)
    assert server.requests == []


def test_extra_body_can_ask_for_thinking_without_a_level(server: LoopbackServer, make: MakeProvider) -> None:
    # reasoning= has levels only; a server whose model rejects a level takes think: true this way.
    completion = make(model=THINKER).complete("hi", extra_body={"think": True})
    assert server.last_request.json()["think"] is True and completion.reasoning == "Thinking (on) about: hi"


def test_cache_true_sends_nothing_more(server: LoopbackServer, make: MakeProvider) -> None:
    provider = make()
    provider.complete("hi", cache=True)
    list(provider.stream("hi", cache=True))
    provider.complete("hi")
    list(provider.stream("hi"))
    bodies = sent(server)
    assert bodies[0] == bodies[2] and bodies[1] == bodies[3]
