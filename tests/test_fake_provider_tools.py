"""FakeProvider with tools: scripted calls (complete and stream alike), the tool arguments
recorded, the tool turns of a conversation checked as the real APIs check them, and the
registry passing tools through complete, stream and map (and falling back past a refusal)."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from _kinds import SOME_KIND, featureless

from provider_kit import (
    ConfigError,
    InvalidRequestError,
    Message,
    ProviderRegistry,
    Tool,
    ToolCall,
    ToolResult,
    UnsupportedFeatureError,
)
from provider_kit.testing import FakeProvider

reply = FakeProvider.tool_call_reply
WEATHER = Tool("weather", "The weather in a city", {"type": "object", "properties": {"city": {"type": "string"}}})
TIME = Tool("time", "The time in a city", {"type": "object", "properties": {"city": {"type": "string"}}})
KEY = "sk-fake-tools-0123456789abcdef"


def two_calls() -> Any:
    return reply([("weather", {"city": "Oslo"}), ToolCall("call_t", "time", {"city": "Lima"})], text="Checking.")


# --------------------------------------------------------------------------- scripted calls


def test_a_scripted_tool_call_reply_is_what_complete_returns() -> None:
    fake = FakeProvider("scripted", model="m-1", replies=[two_calls()])
    completion = fake.complete("Weather in Oslo, time in Lima?", tools=[WEATHER, TIME])
    assert completion.finish_reason == "tool_calls" and completion.text == "Checking."
    assert (completion.provider, completion.model) == ("scripted", "m-1")  # filled in: who answered
    weather, time = completion.tool_calls
    assert (weather.name, weather.arguments, time.id, time.name) == ("weather", {"city": "Oslo"}, "call_t", "time")
    assert weather.id.startswith("call_") and weather.id != time.id
    assert completion.message.tool_calls == completion.tool_calls


def test_scripted_ids_are_unique_across_replies() -> None:
    first, second = reply([("weather", {})]), reply([("weather", {})])
    assert first.tool_calls[0].id != second.tool_calls[0].id
    assert reply([{"name": "weather", "id": "mine"}]).tool_calls[0].id == "mine"


def test_arguments_scripted_as_text_are_kept_raw_even_when_they_are_not_json() -> None:
    fake = FakeProvider(replies=[reply([("weather", '{"city": "Os')])])
    (call,) = fake.complete("hi", tools=[WEATHER]).tool_calls
    assert call.raw_arguments == '{"city": "Os' and call.arguments_error is not None


@pytest.mark.parametrize("calls", [[], "weather", [("weather",)], [42], ("weather", {})])
def test_a_malformed_script_is_a_config_error(calls: Any) -> None:
    with pytest.raises(ConfigError):
        reply(calls)


def test_a_stream_sends_each_call_in_fragments_and_the_calls_on_its_last_chunk() -> None:
    fake = FakeProvider(replies=[two_calls(), two_calls()])
    expected = fake.complete("hi", tools=[WEATHER, TIME]).tool_calls
    chunks = list(fake.stream("hi", tools=[WEATHER, TIME]))
    assert "".join(chunk.text for chunk in chunks) == "Checking."
    partial = [chunk.tool_call for chunk in chunks if chunk.tool_call is not None]
    assert [call.name for call in partial][:1] == ["weather"] and partial[0].raw_arguments == ""
    by_id: Dict[str, List[str]] = {}
    for call in partial:
        by_id.setdefault(call.id, []).append(call.raw_arguments)
    for growth in by_id.values():  # each chunk holds the call as far as it has arrived
        assert all(later.startswith(earlier) for earlier, later in zip(growth, growth[1:]))
        assert len(growth) >= 3
    last = chunks[-1]
    assert last.finish_reason == "tool_calls"
    assert [(call.name, call.arguments) for call in last.tool_calls] == [
        (call.name, call.arguments) for call in expected]
    assert [growth[-1] for growth in by_id.values()] == [call.raw_arguments for call in last.tool_calls]
    assert all(chunk.tool_calls == () for chunk in chunks[:-1])


def test_tools_choice_and_parallel_flag_are_recorded_as_passed() -> None:
    fake = FakeProvider()
    fake.complete("hi", tools=[WEATHER], tool_choice="weather", parallel_tool_calls=False)
    list(fake.stream("hi", tools=[WEATHER, TIME], tool_choice="required"))
    complete, stream = fake.calls
    assert complete.kwargs["tools"] == [WEATHER] and complete.kwargs["tool_choice"] == "weather"
    assert complete.kwargs["parallel_tool_calls"] is False
    assert stream.kwargs["tools"] == [WEATHER, TIME] and "parallel_tool_calls" not in stream.kwargs
    fake.complete("hi")
    assert "tools" not in fake.calls[-1].kwargs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tool_choice": "auto"}, "tool_choice='auto' needs tools="),
        ({"tools": [WEATHER], "tool_choice": "nope"}, "one of the tools' names"),
        ({"tools": "weather"}, "tools must be a list"),
        ({"tools": [WEATHER], "parallel_tool_calls": "no"}, "parallel_tool_calls must be True or False"),
    ],
)
def test_tool_arguments_are_checked_as_every_real_provider_checks_them(kwargs: Dict[str, Any], message: str) -> None:
    fake = FakeProvider()
    with pytest.raises(ConfigError, match=message):
        fake.complete("hi", **kwargs)
    assert fake.calls == []


def test_a_choice_outside_tool_choices_is_refused_before_anything_is_recorded() -> None:
    fake = FakeProvider(tool_choices={"auto", "none"})
    with pytest.raises(UnsupportedFeatureError, match="tool_choice='required' is not supported"):
        fake.complete("hi", tools=[WEATHER], tool_choice="required")
    with pytest.raises(UnsupportedFeatureError, match="tool_choice='weather' is not supported"):
        fake.stream("hi", tools=[WEATHER], tool_choice="weather")
    fake.complete("hi", tools=[WEATHER], tool_choice="auto")
    assert len(fake.calls) == 1
    with pytest.raises(UnsupportedFeatureError, match="no tool calling"):
        FakeProvider(tool_choices=()).complete("hi", tools=[WEATHER])
    with pytest.raises(ConfigError, match="tool_choices must be of"):
        FakeProvider(tool_choices={"any"})


# --------------------------------------------------------------------------- tool turns checked


def asked() -> Message:
    return Message("assistant", "", tool_calls=[ToolCall("c1", "weather", {"city": "Oslo"}),
                                                ToolCall("c2", "time", {"city": "Lima"})])


def test_a_conversation_whose_calls_are_all_answered_is_taken() -> None:
    fake = FakeProvider(replies=["It is sunny and noon."])
    conversation: List[Any] = [Message("user", "hi"), asked(), ToolResult("c2", "noon"),
                               {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                               Message("assistant", "Sunny, noon."), Message("user", "thanks")]
    assert fake.complete(conversation, tools=[WEATHER, TIME]).text == "It is sunny and noon."


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ([ToolResult("c1", "sunny")], r"tool calls c2 \(time\) of the last assistant turn were not answered"),
        ([ToolResult("c1", "sunny"), Message("user", "and?")],
         r"message 3 \(user\) comes before the tool calls c2 \(time\) of the assistant turn were all answered"),
        ([ToolResult("c1", "a"), ToolResult("c2", "b"), ToolResult("c9", "c")],
         r"message 4: a tool result for 'c9' answers no call"),
        ([ToolResult("c1", "a"), ToolResult("c1", "b")], r"message 3: a tool result for 'c1' answers again no call"),
        ([], r"tool calls c1 \(weather\), c2 \(time\) of the last assistant turn were not answered"),
    ],
)
def test_unmatched_tool_turns_are_a_400_as_the_real_apis_answer(tail: List[Message], message: str) -> None:
    fake = FakeProvider(replies=["never sent"])
    conversation = [Message("user", "hi"), asked(), *tail]
    for method in (fake.complete, fake.stream):
        with pytest.raises(InvalidRequestError, match=message) as raised:
            method(conversation, tools=[WEATHER, TIME])
        assert raised.value.status_code == 400 and raised.value.provider == "fake"
    assert [call.method for call in fake.calls] == ["complete", "stream"]  # sent, then refused
    assert fake.complete("again").text == "never sent"  # a refused call used no reply


def test_a_result_with_no_call_before_it_is_a_400() -> None:
    fake = FakeProvider()
    with pytest.raises(InvalidRequestError, match="a tool result for 'c1' answers no call"):
        fake.complete([Message("user", "hi"), ToolResult("c1", "sunny")])


# --------------------------------------------------------------------------- through a registry


def test_the_registry_passes_tools_through_complete_stream_and_map() -> None:
    fake = FakeProvider(replies=[two_calls(), two_calls()])
    with ProviderRegistry([fake]) as registry:
        completion = registry.complete("hi", tools=[WEATHER, TIME], tool_choice="required")
        chunks = list(registry.stream("hi", tools=[WEATHER], parallel_tool_calls=False))
        results = registry.map(["a", "b"], tools=[TIME], tool_choice="time", return_exceptions=False)
    assert [call.name for call in completion.tool_calls] == ["weather", "time"]
    assert [call.name for call in chunks[-1].tool_calls] == ["weather", "time"]
    assert sorted(result.text for result in results) == ["echo: a", "echo: b"]
    kwargs = [call.kwargs for call in fake.calls]
    assert (kwargs[0]["tools"], kwargs[0]["tool_choice"]) == ([WEATHER, TIME], "required")
    assert (kwargs[1]["tools"], kwargs[1]["parallel_tool_calls"]) == ([WEATHER], False)
    assert [(k["tools"], k["tool_choice"]) for k in kwargs[2:]] == [([TIME], "time")] * 2


def test_a_provider_refusing_the_choice_falls_back_to_the_next_with_the_same_tools() -> None:
    picky = FakeProvider("picky", tool_choices={"auto"})
    able = FakeProvider("able", replies=[two_calls(), two_calls(), two_calls()])
    with ProviderRegistry([picky, able], default_provider="picky") as registry:
        completion = registry.complete("hi", tools=[WEATHER, TIME], tool_choice="weather", fallbacks=["able"])
        chunks = list(registry.stream("hi", tools=[WEATHER, TIME], tool_choice="required", fallbacks=["able"]))
        (mapped,) = registry.map(["hi"], tools=[WEATHER], tool_choice="required", fallbacks=["able"],
                                 return_exceptions=False)
    assert completion.provider == "able" and chunks[-1].provider == "able" and mapped.provider == "able"
    assert picky.calls == []
    assert [call.kwargs["tools"] for call in able.calls] == [[WEATHER, TIME], [WEATHER, TIME], [WEATHER]]


def test_a_provider_type_without_tool_calling_falls_back_too() -> None:
    # A type whose tool hooks refuse (what a type that has not mapped tools does): nothing sent.
    plain = featureless(SOME_KIND)("plain", base_url="http://127.0.0.1:9/v1", api_key=KEY, model="m")
    able = FakeProvider("able", replies=[two_calls()])
    with ProviderRegistry([plain, able], default_provider="plain") as registry:
        completion = registry.complete("hi", tools=[WEATHER, TIME], fallbacks=["able"])
        assert completion.provider == "able" and len(completion.tool_calls) == 2
        with pytest.raises(UnsupportedFeatureError, match="plain"):
            registry.complete("hi", tools=[WEATHER])
