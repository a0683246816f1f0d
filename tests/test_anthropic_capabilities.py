"""AnthropicProvider beyond plain text, against the loopback simulator (PROTOCOLS-2 §E.3, §F.3,
§H.3, §I.2): image blocks, structured outputs, thinking (levels, blocks, signatures sent back,
streams), usage details, prompt caching, top_p/seed. The simulator checks what the API checks
(signatures, budgets, closed schemas, image limits), so a request it accepts is well formed."""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import requests

from provider_kit import AnthropicProvider, Completion, Image, Message, StreamChunk, Usage
from provider_kit.errors import ConfigError, InvalidRequestError, ResponseFormatError
from provider_kit.providers.anthropic import THINKING_BUDGETS, thinking_mode
from provider_kit.testing import LoopbackServer, Reply
from provider_kit.testing.wires._anthropic_features import REDACTED_THINKING_TRIGGER, sign

KEY = "sk-ant-caps-0123456789abcdef"
PATH = "/v1/messages"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(60)
JPEG = b"\xff\xd8\xff\xe0" + bytes(40)
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "count": {"type": "integer"}},
          "required": ["name", "count"]}

MakeProvider = Callable[..., AnthropicProvider]


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(AnthropicProvider.TYPE, api_key=KEY, models=["claude-sonnet-4-5", "claude-opus-4-8"]) as server:
        yield server
    assert server.errors == []


@pytest.fixture
def make(server: LoopbackServer, provider_factory: Callable[..., MakeProvider]) -> MakeProvider:
    return provider_factory(AnthropicProvider, base_url=server.base_url, api_key=KEY, max_retries=0, timeout=10)


def sent(server: LoopbackServer) -> Dict[str, Any]:
    body = server.last_request.json()
    assert isinstance(body, dict)
    return body


def refused(server: LoopbackServer, call: Callable[[], Any], *needles: str) -> ConfigError:
    """``call`` raises a ConfigError naming ``needles``, and nothing reached the server."""
    before = len(server.requests)
    with pytest.raises(ConfigError) as info:
        call()
    for needle in needles:
        assert needle in str(info.value)
    assert len(server.requests) == before
    return info.value


def drain(chunks: Iterator[StreamChunk]) -> List[StreamChunk]:
    return list(chunks)


# -- images ---------------------------------------------------------------------------------------

def test_images_go_as_base64_and_url_blocks_and_the_simulator_sees_them(
    server: LoopbackServer, make: MakeProvider
) -> None:
    completion = make().complete(["What is in these?", Image.from_bytes(PNG),
                                  Image.from_url("https://example.com/a.jpg", detail="high")])
    import base64

    assert sent(server)["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": base64.b64encode(PNG).decode()}},
        # detail is an OpenAI hint: Anthropic has none, so it is not sent.
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
    ]}]
    assert completion.text == ("echo: What is in these? [image/png image, 68 bytes] "
                               "[image at https://example.com/a.jpg]")


def test_an_image_in_a_multi_turn_user_message_and_a_stream(server: LoopbackServer, make: MakeProvider) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": [Image.from_bytes(JPEG), {"type": "text", "text": "and this?"}]}]
    text = "".join(chunk.text for chunk in make().stream(messages))
    assert text == "echo: [image/jpeg image, 44 bytes] and this?"
    body = sent(server)
    assert body["system"] == "Be brief." and body["messages"][1] == {"role": "assistant", "content": "Hello"}


def test_an_image_over_the_limit_is_refused_before_sending_with_the_limit(
    server: LoopbackServer, make: MakeProvider
) -> None:
    big = Image.from_bytes(PNG + bytes(3000))
    error = refused(server, lambda: make(max_image_bytes=4000).complete(["look", big]),
                    "image (part 1)", "3,068 bytes", "4,092 in base64", "limit of 4,000 base64 bytes")
    assert "scale it down" in str(error)
    make(max_image_bytes=4092).complete(["look", big])  # exactly at the limit: sent


def test_the_default_limit_is_the_apis_10_mb_of_base64(server: LoopbackServer, make: MakeProvider) -> None:
    # 7,864,320 bytes are exactly 10 MB in base64; one more byte is over.
    at_limit = Image.from_bytes(PNG + bytes(7_864_320 - len(PNG)))
    assert make().complete(["a", at_limit]).text.startswith("echo: a [image/png image, 7864320 bytes]")
    over = Image.from_bytes(PNG + bytes(7_864_321 - len(PNG)))
    refused(server, lambda: make().complete(["a", over]), "10,485,760", "(10 MB)")


@pytest.mark.parametrize("role", ["assistant", "system"])
def test_images_outside_user_turns_are_refused(server: LoopbackServer, make: MakeProvider, role: str) -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": role, "content": ["see", Image.from_bytes(PNG)]},
                {"role": "user", "content": "and?"}]
    refused(server, lambda: make().complete(messages), f"image parts in a {role!r} message")


# -- the simulator refuses what the API refuses ----------------------------------------------------

def _image_block(data: str, media_type: str = "image/png") -> Dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _user(*blocks: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [{"role": "user", "content": list(blocks)}]


_PNG64 = "iVBORw0KGgoAAAAA"
_OBJECT = {"type": "object", "properties": {"a": {"type": "integer"}}}
_BAD_REQUESTS = {
    "oversized-image": ({"messages": _user(_image_block("A" * (10 * 1024 * 1024 + 4)))}, "exceeds 10 MB maximum"),
    "unknown-media-type": ({"messages": _user(_image_block(_PNG64, "image/bmp"))}, "media_type"),
    "data-url-prefix": ({"messages": _user(_image_block("data:image/png;base64," + _PNG64))}, "data: URL prefix"),
    "media-type-mismatch": ({"messages": _user(_image_block(_PNG64, "image/jpeg"))},
                            "does not match the provided media type"),
    "image-in-assistant": ({"messages": [{"role": "user", "content": "a"},
                                         {"role": "assistant", "content": [_image_block(_PNG64)]},
                                         {"role": "user", "content": "b"}]}, "only allowed in user messages"),
    "empty-text-block": ({"messages": _user({"type": "text", "text": ""})}, "must be non-empty"),
    "budget-not-below-max-tokens": ({"max_tokens": 2048, "thinking": {"type": "enabled", "budget_tokens": 2048}},
                                    "`max_tokens` must be greater than `thinking.budget_tokens`"),
    "budget-under-1024": ({"thinking": {"type": "enabled", "budget_tokens": 1000}}, "greater than or equal to 1024"),
    "temperature-with-thinking": ({"temperature": 0.5, "thinking": {"type": "enabled", "budget_tokens": 1024}},
                                  "`temperature` may only be set to 1"),
    "top-p-with-thinking": ({"top_p": 0.9, "thinking": {"type": "enabled", "budget_tokens": 1024}}, "`top_p`"),
    "adaptive-on-a-manual-model": ({"thinking": {"type": "adaptive"}}, '"thinking.type.adaptive" is not supported'),
    "manual-on-an-adaptive-model": ({"model": "claude-opus-4-8", "thinking": {"type": "enabled",
                                                                               "budget_tokens": 1024}},
                                    '"thinking.type.enabled" is not supported'),
    "open-object-schema": ({"output_config": {"format": {"type": "json_schema", "schema": _OBJECT}}},
                           "'additionalProperties' must be explicitly set to false"),
    "numeric-constraint": ({"output_config": {"format": {"type": "json_schema", "schema": {
        "type": "object", "additionalProperties": False,
        "properties": {"a": {"type": "integer", "minimum": 0}}}}}}, "'minimum' is not supported"),
    "unknown-effort": ({"output_config": {"effort": "extreme"}}, "output_config.effort"),
    "five-cache-breakpoints": ({"cache_control": {"type": "ephemeral"}, "messages": _user(
        *[{"type": "text", "text": f"t{i}", "cache_control": {"type": "ephemeral"}} for i in range(4)])},
        "A maximum of 4 blocks with cache_control"),
    "tampered-thinking": ({"messages": [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "changed", "signature": sign("thinking", "x")},
            {"type": "text", "text": "b"}]},
        {"role": "user", "content": "c"}]}, "Invalid `signature` in `thinking` block"),
    "schema-with-prefill": ({"output_config": {"format": {"type": "json_schema", "schema": {"type": "string"}}},
                             "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "{"}]},
                            "Prefilling the assistant message is not supported"),
}


@pytest.mark.parametrize("case", list(_BAD_REQUESTS), ids=list(_BAD_REQUESTS))
def test_the_simulator_refuses_what_the_api_refuses(server: LoopbackServer, case: str) -> None:
    fields, message = _BAD_REQUESTS[case]
    body = {"model": "claude-sonnet-4-5", "max_tokens": 4096, "messages": [{"role": "user", "content": "hi"}],
            **fields}
    answer = requests.post(server.url_for(PATH), json=body, timeout=10,
                           headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and message in error["message"]


# -- structured output ----------------------------------------------------------------------------

def test_a_schema_goes_as_output_config_format_rewritten_as_the_api_needs(
    server: LoopbackServer, make: MakeProvider
) -> None:
    schema = {"type": "object", "title": "Item",
              "properties": {"name": {"type": "string", "minLength": 2, "description": "Its name"},
                             "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                             "kind": {"oneOf": [{"type": "string", "format": "email"}, {"type": "null"}]}},
              "required": ["name"]}
    original = json.dumps(schema)
    completion = make().complete("Extract", schema=schema)
    assert json.dumps(schema) == original  # the caller's dict is not changed
    assert sent(server)["output_config"] == {"format": {"type": "json_schema", "schema": {
        "type": "object", "title": "Item", "additionalProperties": False, "required": ["name"],
        "properties": {
            "name": {"type": "string", "description": "Its name\n\n{minLength: 2}"},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "{maxItems: 3}"},
            "kind": {"anyOf": [{"type": "string", "format": "email"}, {"type": "null"}]},
        }}}}
    assert completion.data == {"name": "echo", "tags": ["echo"], "kind": "echo@example.com"}
    assert completion.parsed == completion.data and completion.finish_reason == "stop"


def test_a_pydantic_model_gives_an_instance_complete_and_stream_alike(
    server: LoopbackServer, make: MakeProvider
) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Invoice(pydantic.BaseModel):  # type: ignore[misc, name-defined]
        number: str
        total: float
        paid: bool = False

    completion = make().complete("Read the invoice", schema=Invoice)
    assert completion.parsed == Invoice(number="echo", total=4.5, paid=True)
    format_sent = sent(server)["output_config"]["format"]["schema"]
    assert format_sent["additionalProperties"] is False and format_sent["required"] == ["number", "total"]
    chunks = drain(make().stream("Read the invoice", schema=Invoice))
    assert "".join(chunk.text for chunk in chunks) == completion.text
    assert chunks[-1].data == completion.data and chunks[-1].parsed == completion.parsed


class _Point:
    """A duck-typed schema class (no pydantic needed) whose schema needs rewriting."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    @classmethod
    def model_json_schema(cls) -> Dict[str, Any]:
        return {"type": "object", "title": "Point", "properties": {"x": {"type": "integer", "minimum": 0}},
                "required": ["x"]}


def test_a_class_schema_is_rewritten_once_and_sent_alike_on_every_call(
    server: LoopbackServer, make: MakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provider_kit.providers import _anthropic_schema
    from provider_kit.providers import anthropic as anthropic_module

    rewritten: List[Any] = []
    rewrite = _anthropic_schema.anthropic_schema

    def counting(schema: Dict[str, Any]) -> Dict[str, Any]:
        rewritten.append(schema)
        return rewrite(schema)

    monkeypatch.setattr(_anthropic_schema, "anthropic_schema", counting)
    # Wherever the provider looks the rewrite up, it is counted.
    monkeypatch.setattr(anthropic_module, "anthropic_schema", counting, raising=False)
    provider = make()
    formats = []
    for _ in range(3):
        completion = provider.complete("Where?", schema=_Point)
        assert isinstance(completion.parsed, _Point) and set(completion.parsed.fields) == {"x"}
        formats.append(sent(server)["output_config"])
    assert len([schema for schema in rewritten if schema.get("title") == "Point"]) == 1  # (~25 us a call)
    assert formats[0] == formats[1] == formats[2] == {"format": {"type": "json_schema", "schema": {
        "type": "object", "title": "Point", "additionalProperties": False, "required": ["x"],
        "properties": {"x": {"type": "integer", "description": "{minimum: 0}"}}}}}
    assert _Point.model_json_schema()["properties"]["x"] == {"type": "integer", "minimum": 0}


def test_a_dict_schema_changed_between_calls_is_rewritten_again(server: LoopbackServer, make: MakeProvider) -> None:
    schema: Dict[str, Any] = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    provider = make()
    provider.complete("Where?", schema=schema)
    schema["properties"]["y"] = {"type": "string"}  # the caller's dict: never kept by identity
    provider.complete("Where?", schema=schema)
    assert set(sent(server)["output_config"]["format"]["schema"]["properties"]) == {"x", "y"}


def test_json_true_is_refused_clearly(server: LoopbackServer, make: MakeProvider) -> None:
    refused(server, lambda: make().complete("x", json=True), "json=True", "no 'any JSON object' mode", "schema=")


def test_a_schema_after_a_prefilled_assistant_turn_is_refused(server: LoopbackServer, make: MakeProvider) -> None:
    messages = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "{"}]
    refused(server, lambda: make().complete(messages, schema=SCHEMA), "prefilled assistant turn")


def test_a_schema_with_nothing_to_say_is_refused(server: LoopbackServer, make: MakeProvider) -> None:
    bad = {"type": "object", "properties": {"a": {"description": "anything"}}}
    refused(server, lambda: make().complete("x", schema=bad), "schema=", "nothing says what it allows")


def test_json_cut_short_by_max_tokens_is_a_format_error_both_ways(server: LoopbackServer, make: MakeProvider) -> None:
    with pytest.raises(ResponseFormatError, match="cut short by max_tokens"):
        make().complete("x", schema=SCHEMA, max_tokens=1)
    with pytest.raises(ResponseFormatError, match="cut short by max_tokens"):
        drain(make().stream("x", schema=SCHEMA, max_tokens=1))


def test_a_refusal_is_reported_as_such_not_as_a_parse_error(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(server.completion_reply("I can't help with that.", finish_reason="refusal"))
    completion = make().complete("x", schema=SCHEMA)
    assert (completion.finish_reason, completion.data, completion.text) == (
        "content_filter", None, "I can't help with that.")
    server.enqueue(server.stream_reply(["I can't", " help."], finish_reason="refusal"))
    chunks = drain(make().stream("x", schema=SCHEMA))
    assert (chunks[-1].finish_reason, chunks[-1].data) == ("content_filter", None)


# -- reasoning ------------------------------------------------------------------------------------

@pytest.mark.parametrize("level", ["low", "medium", "high"])
def test_levels_map_to_budget_tokens_with_room_for_the_answer(
    server: LoopbackServer, make: MakeProvider, level: str
) -> None:
    budget = {"low": 1024, "medium": 4096, "high": 16384}[level]
    assert THINKING_BUDGETS[level] == budget
    make().complete("Think", reasoning=level)
    body = sent(server)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == 4096 + budget and "output_config" not in body
    make().complete("Think", reasoning=level, max_tokens=budget + 1)
    assert sent(server)["max_tokens"] == budget + 1  # the caller's own limit is kept


def test_a_max_tokens_not_above_the_budget_is_refused(server: LoopbackServer, make: MakeProvider) -> None:
    refused(server, lambda: make().complete("x", reasoning="medium", max_tokens=4096),
            "reasoning='medium'", "4096 tokens, must be below max_tokens (got 4096")


def test_the_thinking_budgets_option(server: LoopbackServer, make: MakeProvider) -> None:
    make(thinking_budgets={"high": 32000}).complete("x", reasoning="high", max_tokens=40000)
    assert sent(server)["thinking"] == {"type": "enabled", "budget_tokens": 32000}
    for bad in ({"high": 512}, {"extreme": 2048}, [1024]):
        with pytest.raises(ConfigError, match="thinking_budgets"):
            make(thinking_budgets=bad)


def test_adaptive_models_get_adaptive_thinking_and_effort(server: LoopbackServer, make: MakeProvider) -> None:
    provider = make(model="claude-opus-4-8")
    completion = provider.complete("Think", reasoning="high", schema=SCHEMA)
    body = sent(server)
    assert body["thinking"] == {"type": "adaptive"}
    assert body["output_config"]["effort"] == "high" and body["output_config"]["format"]["type"] == "json_schema"
    assert completion.reasoning and completion.data == {"name": "echo", "count": 42}
    provider.complete("Think", reasoning=False)
    assert sent(server)["thinking"] == {"type": "disabled"}  # such models may think by default
    make().complete("Think", reasoning=False)
    assert "thinking" not in sent(server)  # budget-mode models think only when asked
    # The option overrides the model's version; the server refuses a mode the model lacks.
    with pytest.raises(InvalidRequestError, match=re.escape('"thinking.type.adaptive" is not supported')):
        make(thinking="adaptive").complete("x", reasoning="low")
    assert sent(server)["thinking"] == {"type": "adaptive"}
    with pytest.raises(InvalidRequestError, match=re.escape('"thinking.type.enabled" is not supported')):
        make(model="claude-opus-4-8", thinking="budget").complete("x", reasoning="low")


@pytest.mark.parametrize("model, mode", [
    ("claude-sonnet-4-5", "budget"), ("claude-sonnet-4-5-20250929", "budget"), ("claude-opus-4-20250514", "budget"),
    ("claude-opus-4-1-20250805", "budget"), ("claude-3-7-sonnet-20250219", "budget"), ("claude-haiku-4-5", "budget"),
    ("claude-opus-4-6", "adaptive"), ("claude-sonnet-4-6", "adaptive"), ("claude-opus-4-8", "adaptive"),
    ("claude-opus-5", "adaptive"), ("claude-fable-5", "adaptive"), ("anthropic.claude-sonnet-5-v1:0", "adaptive"),
    ("my-alias", "budget"),
])
def test_thinking_mode_reads_the_model_version(model: str, mode: str) -> None:
    assert thinking_mode(model) == mode
    assert thinking_mode(model, "adaptive") == "adaptive" and thinking_mode(model, "budget") == "budget"


def test_temperature_and_top_p_are_checked_against_thinking(server: LoopbackServer, make: MakeProvider) -> None:
    refused(server, lambda: make().complete("x", reasoning="low", temperature=0.7), "temperature but 1")
    refused(server, lambda: make().complete("x", reasoning="low", top_p=0.9), "top_p from 0.95 to 1")
    make().complete("x", reasoning="low", temperature=1, top_p=0.97)
    assert (sent(server)["temperature"], sent(server)["top_p"]) == (1, 0.97)


def test_thinking_is_reasoning_the_same_whole_and_streamed(server: LoopbackServer, make: MakeProvider) -> None:
    provider = make()
    completion = provider.complete("Think about it", reasoning="low")
    thinking = "The user wrote 14 characters; I will echo them."
    assert completion.reasoning == thinking and completion.text == "echo: Think about it"
    assert completion.provider_state == {"thinking_blocks": [
        {"type": "thinking", "thinking": thinking, "signature": sign("thinking", thinking)}]}
    # Nine words of thinking and four of text: output_tokens counts both (as the API's does).
    assert completion.usage.reasoning_tokens == 9 and completion.usage.output_tokens == 9 + 4
    chunks = drain(provider.stream("Think about it", reasoning="low"))
    assert "".join(chunk.reasoning for chunk in chunks) == completion.reasoning
    assert "".join(chunk.text for chunk in chunks) == completion.text
    assert all(not (chunk.reasoning and chunk.text) for chunk in chunks)  # never mixed
    assert chunks[-1].provider_state == completion.provider_state and chunks[-1].usage == completion.usage


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_completion_message_sends_the_signed_thinking_back_unchanged(
    server: LoopbackServer, make: MakeProvider, stream: bool
) -> None:
    provider = make()
    question = Message("user", "Think about it")
    if stream:
        last = drain(provider.stream([question], reasoning="low"))[-1]
        first = Completion("echo: Think about it", provider_state=last.provider_state)
    else:
        first = provider.complete([question], reasoning="low")
    second = provider.complete([question, first.message, Message("user", "Go on")], reasoning="low")
    assert second.text == "echo: Go on"  # the simulator checked the signature
    assistant = sent(server)["messages"][1]
    assert assistant == {"role": "assistant", "content": [
        *first.provider_state["thinking_blocks"], {"type": "text", "text": "echo: Think about it"}]}
    # A changed block is refused by the server, as the API does.
    block = dict(first.provider_state["thinking_blocks"][0], thinking="edited")
    tampered = Message("assistant", first.text, {"thinking_blocks": [block]})
    with pytest.raises(InvalidRequestError, match="Invalid `signature`"):
        provider.complete([question, tampered, Message("user", "Go on")], reasoning="low")


def test_redacted_thinking_is_kept_and_sent_back(server: LoopbackServer, make: MakeProvider) -> None:
    provider = make()
    completion = provider.complete(REDACTED_THINKING_TRIGGER, reasoning="low")
    assert completion.reasoning is None
    [block] = completion.provider_state["thinking_blocks"]
    assert block["type"] == "redacted_thinking"
    chunks = drain(provider.stream(REDACTED_THINKING_TRIGGER, reasoning="low"))
    assert chunks[-1].provider_state == completion.provider_state
    assert all(chunk.reasoning == "" for chunk in chunks)
    provider.complete([Message("user", REDACTED_THINKING_TRIGGER), completion.message, Message("user", "more")],
                      reasoning="low")
    assert sent(server)["messages"][1]["content"][0] == block


def test_a_malformed_provider_state_is_refused(server: LoopbackServer, make: MakeProvider) -> None:
    turn = Message("assistant", "hi", {"thinking_blocks": [{"type": "text", "text": "no"}]})
    refused(server, lambda: make().complete([Message("user", "a"), turn, Message("user", "b")]),
            "provider_state['thinking_blocks']")
    other = Message("assistant", "hi", {"reasoning_content": "another protocol's"})
    make().complete([Message("user", "a"), other, Message("user", "b")])
    assert sent(server)["messages"][1] == {"role": "assistant", "content": "hi"}


def _script(server: LoopbackServer, blocks: List[Dict[str, Any]], usage: Optional[Dict[str, Any]] = None) -> None:
    """The same message, whole then streamed."""
    usage = usage or {"input_tokens": 10, "output_tokens": 30, "output_tokens_details": {"thinking_tokens": 20}}
    body = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": blocks,
            "stop_reason": "end_turn", "stop_sequence": None, "usage": usage}
    server.enqueue(Reply(json=body))

    def ev(name: str, **data: Any) -> str:
        return f"event: {name}\ndata: {json.dumps(dict({'type': name}, **data))}\n\n"

    events = [ev("message_start", message=dict(body, content=[], stop_reason=None,
                                               usage={"input_tokens": 10, "output_tokens": 1}))]
    for index, block in enumerate(blocks):
        if block["type"] == "thinking":
            events.append(ev("content_block_start", index=index,
                             content_block={"type": "thinking", "thinking": "", "signature": ""}))
            if block["thinking"]:
                events.append(ev("content_block_delta", index=index,
                                 delta={"type": "thinking_delta", "thinking": block["thinking"]}))
            events.append(ev("content_block_delta", index=index,
                             delta={"type": "signature_delta", "signature": block["signature"]}))
        elif block["type"] == "text":
            events.append(ev("content_block_start", index=index, content_block={"type": "text", "text": ""}))
            events.append(ev("content_block_delta", index=index, delta={"type": "text_delta", "text": block["text"]}))
        else:
            events.append(ev("content_block_start", index=index, content_block=block))
        events.append(ev("content_block_stop", index=index))
    events.append(ev("message_delta", delta={"stop_reason": "end_turn", "stop_sequence": None},
                     usage={"output_tokens": 30, "output_tokens_details": {"thinking_tokens": 20}}))
    events.append(ev("message_stop"))
    server.enqueue(Reply(chunks=events, content_type="text/event-stream"))


def test_several_thinking_blocks_join_the_same_way_whole_and_streamed(
    server: LoopbackServer, make: MakeProvider
) -> None:
    blocks = [{"type": "thinking", "thinking": "First.", "signature": "s1"},
              {"type": "redacted_thinking", "data": "opaque"},
              {"type": "thinking", "thinking": "", "signature": "s2"},  # display "omitted"
              {"type": "thinking", "thinking": "Second.", "signature": "s3"},
              {"type": "text", "text": "Done."}]
    _script(server, blocks)
    completion = make().complete("x", reasoning="low")
    chunks = drain(make().stream("x", reasoning="low"))
    assert completion.reasoning == "First.\n\nSecond." == "".join(chunk.reasoning for chunk in chunks)
    assert completion.provider_state == {"thinking_blocks": blocks[:4]} == chunks[-1].provider_state
    assert completion.usage == Usage(10, 30, reasoning_tokens=20) == chunks[-1].usage


def test_omitted_thinking_has_no_reasoning_but_keeps_its_signature(
    server: LoopbackServer, make: MakeProvider
) -> None:
    blocks = [{"type": "thinking", "thinking": "", "signature": "sig"}, {"type": "text", "text": "Hi"}]
    _script(server, blocks)
    completion = make().complete("x", reasoning="low")
    last = drain(make().stream("x", reasoning="low"))[-1]
    assert completion.reasoning is None and completion.provider_state == {"thinking_blocks": blocks[:1]}
    assert last.provider_state == completion.provider_state


# -- usage and prompt caching ---------------------------------------------------------------------

SYSTEM = "You are a careful assistant who answers in one short sentence."


def test_cache_true_marks_the_system_prompt_and_the_last_message(server: LoopbackServer, make: MakeProvider) -> None:
    provider = make()
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is two plus two?"}]
    first = provider.complete(messages, cache=True)
    marker = {"type": "ephemeral"}
    body = sent(server)
    assert body["system"] == [{"type": "text", "text": SYSTEM, "cache_control": marker}]
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "What is two plus two?", "cache_control": marker}]}]
    # 11 + 5 words of prompt, all written to the cache; input_tokens counts every input token.
    assert first.usage == Usage(16, 6, cached_input_tokens=0, cache_creation_input_tokens=16)
    second = provider.complete(messages, cache=True)
    assert second.usage == Usage(16, 6, cached_input_tokens=16, cache_creation_input_tokens=0)
    # A growing conversation reads the earlier prefix and writes the new turns (6 + 4 words).
    longer = [*messages, second.message, {"role": "user", "content": "And three plus three?"}]
    third = provider.complete(longer, cache=True)
    assert third.usage == Usage(26, 5, cached_input_tokens=16, cache_creation_input_tokens=10)
    last = drain(provider.stream(longer, cache=True))[-1]
    assert last.usage == Usage(26, 5, cached_input_tokens=26, cache_creation_input_tokens=0)


def test_the_cache_option_marks_every_call_unless_the_call_says_no(
    server: LoopbackServer, make: MakeProvider
) -> None:
    provider = make(cache=True)
    provider.complete("Hello there", system=SYSTEM)
    assert sent(server)["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    provider.complete("Hello there", system=SYSTEM, cache=False)
    assert sent(server)["system"] == SYSTEM and sent(server)["messages"][0]["content"] == "Hello there"
    make().complete("Hello there")
    assert sent(server)["messages"][0]["content"] == "Hello there"  # off by default


def test_cache_marks_the_last_block_that_can_carry_it(server: LoopbackServer, make: MakeProvider) -> None:
    make().complete([{"role": "user", "content": ["Look", Image.from_bytes(PNG), ""]}], cache=True)
    blocks = sent(server)["messages"][0]["content"]
    assert [block.get("cache_control") for block in blocks] == [None, {"type": "ephemeral"}]  # "" is dropped


def test_no_usage_details_reported_means_none(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(Reply(json={"id": "m", "type": "message", "role": "assistant", "model": "c", "content": [],
                               "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 1}}))
    assert make().complete("x").usage == Usage(3, 1)


# -- top_p and seed -------------------------------------------------------------------------------

def test_top_p_is_sent_and_seed_is_refused(server: LoopbackServer, make: MakeProvider) -> None:
    make().complete("x", top_p=0.5)
    assert sent(server)["top_p"] == 0.5
    refused(server, lambda: make().complete("x", seed=7), "seed", f"the {AnthropicProvider.TYPE} provider type")
    refused(server, lambda: make(anthropic_version="2026-10-21").complete("x", top_p=0.5),
            "top_p", "2026-10-21 does not accept it")


def test_extra_body_cannot_overwrite_the_thinking_we_set(server: LoopbackServer, make: MakeProvider) -> None:
    refused(server, lambda: make().complete("x", reasoning="low", extra_body={"thinking": {"type": "disabled"}}),
            "'thinking.type' collides")
    make().complete("x", extra_body={"metadata": {"user_id": "u1"}}, reasoning="low")
    assert sent(server)["metadata"] == {"user_id": "u1"}


def test_zero_cache_counts_are_reported_as_zero(server: LoopbackServer, make: MakeProvider) -> None:
    # The API (and the simulator) report both cache counts as 0 on a call that used no cache:
    # reported, so 0, not None (None is for a server that leaves them out).
    completion = make().complete("hi")
    assert completion.raw["usage"]["cache_read_input_tokens"] == 0
    assert completion.usage == Usage(1, 2, cached_input_tokens=0, cache_creation_input_tokens=0)
