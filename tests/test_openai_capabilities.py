"""OpenAI Chat Completions beyond text (issue 11; PROTOCOLS-2.md §E.1, §F.1, §H.1-2, §I.1):
images, structured output, refusals, reasoning, usage details, top_p/seed and cache=True,
against the OpenAI simulator, which checks and answers each shape as the real API does."""

from __future__ import annotations

import base64
import json
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
import requests

from provider_kit import Image, Message, OpenAIProvider, StreamChunk, Text, Usage
from provider_kit.errors import ConfigError, InvalidRequestError, ResponseFormatError
from provider_kit.testing import LoopbackServer, Reply

KEY = "sk-test-capabilities-12345678"
PROTOCOL = OpenAIProvider.TYPE
#: The smallest PNG: its signature and an IHDR start (enough for the media type sniffer).
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}

MakeProvider = Callable[..., OpenAIProvider]


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(PROTOCOL, api_key=KEY, models=["gpt-4o-mini", "o4-mini"]) as server:
        yield server
    assert server.errors == []


@pytest.fixture
def make(server: LoopbackServer, provider_factory: Callable[..., MakeProvider]) -> MakeProvider:
    return provider_factory(OpenAIProvider, base_url=server.base_url, api_key=KEY, max_retries=0, timeout=10)


def _last(chunks: List[StreamChunk]) -> StreamChunk:
    assert chunks, "the stream yielded nothing"
    return chunks[-1]


def _sent(server: LoopbackServer) -> Dict[str, Any]:
    body = server.last_request.json()
    assert isinstance(body, dict)
    return body


# -- images --------------------------------------------------------------------------------------


def test_image_bytes_go_as_a_data_url_part_and_the_server_sees_them(server: LoopbackServer,
                                                                   make: MakeProvider) -> None:
    completion = make().complete(["What is this?", Image.from_bytes(PNG, detail="low")])
    content = _sent(server)["messages"][0]["content"]
    assert content == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode(),
                                            "detail": "low"}},
    ]
    assert completion.text == f"echo: What is this? [image image/png {len(PNG)} bytes detail=low]"


def test_an_image_url_is_sent_as_is_without_detail_unless_set(server: LoopbackServer, make: MakeProvider) -> None:
    url = "https://example.com/receipt.jpg?size=large"
    chunks = list(make().stream([Image.from_url(url), Text("Total?")]))
    content = _sent(server)["messages"][0]["content"]
    assert content == [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "Total?"}]
    assert "".join(chunk.text for chunk in chunks) == f"echo: [image {url}] Total?"


def test_text_only_parts_go_as_a_string(server: LoopbackServer, make: MakeProvider) -> None:
    make().complete([Message("system", (Text("Be terse."),)), Message("user", (Text("a"), Text("b")))])
    assert _sent(server)["messages"] == [{"role": "system", "content": "Be terse."},
                                         {"role": "user", "content": "a\nb"}]


@pytest.mark.parametrize("role", ["system", "assistant"])
def test_an_image_outside_a_user_message_is_refused_before_sending(server: LoopbackServer, make: MakeProvider,
                                                                    role: str) -> None:
    message = Message(role, ("look", Image.from_bytes(PNG)))
    with pytest.raises(ConfigError, match="only in user messages"):
        make().complete([message, Message("user", "hi")])
    assert server.requests == []


@pytest.mark.parametrize(
    "content, expected",
    [
        ([{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}], "base64-encoded data URL"),
        ([{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}], "base64-encoded data URL"),
        ([{"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "ultra"}}], "'ultra'"),
    ],
    ids=["bad-base64", "bmp", "bad-detail"],
)
def test_the_simulator_refuses_the_images_the_api_refuses(server: LoopbackServer, content: Any,
                                                          expected: str) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}
    reply = requests.post(server.base_url + "/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert reply.status_code == 400
    assert expected in reply.json()["error"]["message"]
    system = {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": [
        {"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]}
    reply = requests.post(server.base_url + "/chat/completions", json=system,
                          headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert reply.status_code == 400 and "only allowed for messages with role 'user'" in reply.json()["error"]["message"]


# -- structured output ---------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_a_strict_compatible_schema_is_sent_strict_and_parsed(server: LoopbackServer, make: MakeProvider,
                                                               stream: bool) -> None:
    provider = make()
    if stream:
        result: Any = _last(list(provider.stream("Who?", schema=PERSON)))
    else:
        result = provider.complete("Who?", schema=PERSON)
    assert _sent(server)["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "response", "schema": PERSON, "strict": True}}
    assert result.data == result.parsed == {"name": "echo: Who?", "age": 1}


def test_a_schema_strict_mode_cannot_take_is_sent_unchanged_and_not_strict(server: LoopbackServer,
                                                                           make: MakeProvider) -> None:
    tags = {"type": "array", "items": {"type": "string"}}
    loose = {"type": "object", "title": "Loose", "properties": {"name": {"type": "string"}, "tags": tags},
             "required": ["name"]}
    before = json.dumps(loose, sort_keys=True)
    completion = make().complete("Who?", schema=loose)
    spec = _sent(server)["response_format"]["json_schema"]
    assert spec == {"name": "Loose", "schema": loose, "strict": False}
    assert json.dumps(loose, sort_keys=True) == before  # the caller's dict is not touched
    assert completion.data == {"name": "echo: Who?", "tags": ["echo: Who?"]}


def test_strict_mode_is_checked_in_nested_objects(server: LoopbackServer, make: MakeProvider) -> None:
    nested = {"type": "object", "additionalProperties": False, "required": ["who"],
              "properties": {"who": {"type": "object", "properties": {"name": {"type": "string"}},
                                     "required": ["name"]}}}
    make().complete("Who?", schema=nested)
    assert _sent(server)["response_format"]["json_schema"]["strict"] is False


def test_a_class_is_made_strict_as_the_sdk_parse_does(server: LoopbackServer, make: MakeProvider) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Person(pydantic.BaseModel):
        name: str
        nickname: Optional[str] = None

    completion = make().complete("Who?", schema=Person)
    spec = _sent(server)["response_format"]["json_schema"]
    assert spec["name"] == "Person" and spec["strict"] is True
    assert spec["schema"]["additionalProperties"] is False
    assert spec["schema"]["required"] == ["name", "nickname"]
    assert "default" not in spec["schema"]["properties"]["nickname"]
    assert isinstance(completion.parsed, Person) and completion.parsed.name == "echo: Who?"


class _Point:
    """A duck-typed schema class (no pydantic needed): a loose schema the strict rule completes."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    @classmethod
    def model_json_schema(cls) -> Dict[str, Any]:
        return {"type": "object", "title": "Point", "properties": {"x": {"type": "integer"}}}


def test_a_class_is_made_strict_once_and_sent_alike_on_every_call(server: LoopbackServer, make: MakeProvider,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from provider_kit.providers import _openai_schema

    made: List[Any] = []
    make_strict = _openai_schema._make_strict

    def counting(node: Any, root: Any) -> Any:
        if node is root:
            made.append(root)
        return make_strict(node, root)

    monkeypatch.setattr(_openai_schema, "_make_strict", counting)
    provider = make()
    bodies = []
    for _ in range(3):
        completion = provider.complete("Where?", schema=_Point)
        assert isinstance(completion.parsed, _Point) and completion.parsed.fields == {"x": 1}
        bodies.append(_sent(server)["response_format"])
    assert len(made) == 1  # made strict on the first call only (it cost ~100 us a call)
    assert bodies[0] == bodies[1] == bodies[2] == {"type": "json_schema", "json_schema": {
        "name": "_Point", "strict": True, "schema": {
            "type": "object", "title": "Point", "properties": {"x": {"type": "integer"}}, "required": ["x"],
            "additionalProperties": False}}}
    assert _Point.model_json_schema() == {"type": "object", "title": "Point", "properties": {"x": {"type": "integer"}}}


def test_a_dict_schema_changed_between_calls_is_checked_again(server: LoopbackServer, make: MakeProvider) -> None:
    schema: Dict[str, Any] = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    provider = make()
    provider.complete("Where?", schema=schema)
    assert _sent(server)["response_format"]["json_schema"]["strict"] is False
    schema["additionalProperties"] = False  # the caller's dict: never cached by identity
    provider.complete("Where?", schema=schema)
    assert _sent(server)["response_format"]["json_schema"] == {"name": "response", "schema": schema, "strict": True}


def test_the_simulator_refuses_strict_mode_without_additional_properties_false(server: LoopbackServer) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "A", "schema": schema, "strict": True}}}
    reply = requests.post(server.base_url + "/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert reply.status_code == 400
    assert reply.json()["error"]["message"] == (
        "Invalid schema for response_format 'A': In context=(), 'additionalProperties' is required to be "
        "supplied and to be false.")


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_json_true_sends_json_object(server: LoopbackServer, make: MakeProvider, stream: bool) -> None:
    provider = make()
    prompt = "Answer in JSON: hi"
    result: Any = _last(list(provider.stream(prompt, json=True))) if stream else provider.complete(prompt, json=True)
    assert _sent(server)["response_format"] == {"type": "json_object"}
    assert result.data == {"echo": prompt}


def test_json_true_without_the_word_json_gets_the_apis_400(make: MakeProvider) -> None:
    with pytest.raises(InvalidRequestError, match="must contain the word 'json'"):
        make().complete("hi", json=True)


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_a_refusal_is_content_filter_with_its_text_never_a_parse_error(server: LoopbackServer,
                                                                       make: MakeProvider, stream: bool) -> None:
    server.quirks["refusal"] = "I'm sorry, I can't help with that."
    provider = make()
    if stream:
        chunks = list(provider.stream("Who?", schema=PERSON))
        text, last = "".join(chunk.text for chunk in chunks), _last(chunks)
    else:
        last = provider.complete("Who?", schema=PERSON)
        text = last.text
    assert text == "I'm sorry, I can't help with that."
    assert last.finish_reason == "content_filter"
    assert last.data is None and last.parsed is None


def test_json_cut_short_by_max_tokens_is_a_response_format_error(make: MakeProvider) -> None:
    with pytest.raises(ResponseFormatError, match="cut short by max_tokens"):
        make().complete("Who?", schema=PERSON, max_tokens=2)


# -- reasoning -----------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["low", "medium", "high"])
def test_reasoning_levels_send_reasoning_effort(server: LoopbackServer, make: MakeProvider, level: str) -> None:
    completion = make(model="o4-mini").complete("Think.", reasoning=level)
    assert _sent(server)["reasoning_effort"] == level
    # api.openai.com returns no thinking text, only its count (part of the output tokens).
    assert completion.reasoning is None and completion.provider_state is None
    assert completion.usage.reasoning_tokens and completion.usage.reasoning_tokens < completion.usage.output_tokens


def test_reasoning_false_sends_effort_none(server: LoopbackServer, make: MakeProvider) -> None:
    completion = make(model="o4-mini").complete("Quick.", reasoning=False)
    assert _sent(server)["reasoning_effort"] == "none"
    assert completion.usage.reasoning_tokens == 0


def test_a_model_without_reasoning_gets_the_apis_400(make: MakeProvider) -> None:
    with pytest.raises(InvalidRequestError, match="'reasoning_effort' is not supported with this model"):
        make(model="gpt-4o-mini").complete("Think.", reasoning="low")


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_text_of_compatible_servers_whole_and_streamed_agree(provider_factory: Callable[..., Any],
                                                                       field: str) -> None:
    with LoopbackServer(PROTOCOL, quirks={"reasoning_field": field, "reasoning_models": None}) as server:
        make = provider_factory(OpenAIProvider, base_url=server.base_url, max_retries=0, timeout=10)
        provider = make(model="qwen3")
        whole = provider.complete("Why?", reasoning="high")
        chunks = list(provider.stream("Why?", reasoning="high"))
    assert whole.reasoning == "thinking about: Why?"
    assert whole.text == "echo: Why?"  # never mixed into the text
    assert whole.provider_state == {field: "thinking about: Why?"}
    assert "".join(chunk.reasoning for chunk in chunks) == whole.reasoning
    assert all(not (chunk.reasoning and chunk.text) for chunk in chunks)
    assert "".join(chunk.text for chunk in chunks) == whole.text
    assert _last(chunks).provider_state == whole.provider_state
    assert _last(chunks).usage == whole.usage and whole.usage.reasoning_tokens == 3


def test_a_delta_with_both_reasoning_fields_is_read_once(server: LoopbackServer, make: MakeProvider) -> None:
    def event(delta: Dict[str, Any], finish: Optional[str] = None) -> bytes:
        body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    server.enqueue(Reply(chunks=[event({"role": "assistant", "reasoning": "A", "reasoning_content": "A"}),
                                 event({"reasoning": "B", "reasoning_content": "B"}), event({"content": "ok"}),
                                 event({}, "stop"), b"data: [DONE]\n\n"], content_type="text/event-stream"))
    chunks = list(make().stream("hi"))
    assert "".join(chunk.reasoning for chunk in chunks) == "AB"
    assert _last(chunks).provider_state == {"reasoning_content": "AB"}


def test_the_message_round_trip_sends_no_reasoning_field_to_openai(server: LoopbackServer,
                                                                   make: MakeProvider) -> None:
    server.quirks.update(reasoning_field="reasoning_content")
    provider = make()
    first = provider.complete("One?")
    assert first.message.provider_state == {"reasoning_content": "thinking about: One?"}
    server.quirks.update(reasoning_field=None)  # api.openai.com refuses unknown message fields
    provider.complete([Message("user", "One?"), first.message, Message("user", "Two?")])
    assert _sent(server)["messages"][1] == {"role": "assistant", "content": "echo: One?"}


# -- usage, sampling, caching ----------------------------------------------------------------------


def test_a_repeated_prompt_prefix_is_reported_cached_and_counted_in_the_input(server: LoopbackServer,
                                                                              make: MakeProvider) -> None:
    provider = make()
    history = [Message("system", "You are a careful assistant who reads long documents."), Message("user", "One?")]
    first = provider.complete(history)
    second = provider.complete([*history, first.message, Message("user", "Two?")])
    assert first.usage.cached_input_tokens == 0
    assert second.usage.cached_input_tokens == first.usage.input_tokens
    assert second.usage.input_tokens > second.usage.cached_input_tokens  # cached ones are included


def test_usage_details_are_read_and_missing_ones_are_unknown(server: LoopbackServer, make: MakeProvider) -> None:
    body = {"id": "c", "object": "chat.completion", "created": 1, "model": "o4-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 2000, "completion_tokens": 300, "total_tokens": 2300,
                      "prompt_tokens_details": {"cached_tokens": 1536, "cache_write_tokens": 64},
                      "completion_tokens_details": {"reasoning_tokens": 256}}}
    server.enqueue(Reply(json=body))
    server.enqueue(Reply(json=dict(body, usage={"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4})))
    provider = make()
    assert provider.complete("hi").usage == Usage(2000, 300, 2300, cached_input_tokens=1536,
                                                  cache_creation_input_tokens=64, reasoning_tokens=256)
    assert provider.complete("hi").usage == Usage(3, 1, 4)


def test_top_p_and_seed_are_sent(server: LoopbackServer, make: MakeProvider) -> None:
    make().complete("hi", top_p=0.5, seed=7)
    body = _sent(server)
    assert (body["top_p"], body["seed"]) == (0.5, 7)


def test_cache_true_is_accepted_and_sends_nothing(server: LoopbackServer, make: MakeProvider) -> None:
    provider = make()
    provider.complete("hi")
    plain = _sent(server)
    completion = provider.complete("hi", cache=True)
    assert _sent(server) == plain  # OpenAI caches prompt prefixes on its own
    assert completion.usage.cached_input_tokens is not None


def test_extra_body_cannot_overwrite_the_response_format(server: LoopbackServer, make: MakeProvider) -> None:
    with pytest.raises(ConfigError, match="response_format"):
        make().complete("json?", json=True, extra_body={"response_format": {"type": "text"}})
    assert server.requests == []
