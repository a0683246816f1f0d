"""Tool calling on the Anthropic Messages protocol (issue 12; PROTOCOLS-2 §G.5-§G.7, §H.3),
against the loopback simulator: the tools and choices sent, tool_use blocks read whole and
streamed (input_json_delta by block index), the tool turns sent back (thinking first, then
tool_use; tool_result blocks first in one user turn), and the simulator's 400s for what the API
refuses. Conformance with the anthropic SDK: tests/test_conformance_anthropic_tools.py.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider_kit import AnthropicProvider, Completion, Image, Message, StreamChunk, Text, Tool, ToolCall, ToolResult
from provider_kit.errors import InvalidRequestError, ResponseFormatError, UnsupportedFeatureError
from provider_kit.testing import LoopbackServer, Reply

KEY = "sk-ant-tools-0123456789abcdef"
MakeProvider = Callable[..., AnthropicProvider]

WEATHER = Tool("get_weather", "Weather for a city",
               {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
TIME = Tool("get_time")  # no parameters
TOOLS = [WEATHER, TIME]


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer("anthropic", api_key=KEY) as server:
        yield server
    assert server.errors == []


@pytest.fixture
def make(server: LoopbackServer, provider_factory: Callable[..., MakeProvider]) -> MakeProvider:
    return provider_factory(AnthropicProvider, base_url=server.base_url, api_key=KEY, max_retries=0, timeout=10)


def streamed(chunks: Sequence[StreamChunk]) -> Completion:
    """A stream's chunks as the completion they add up to."""
    last = chunks[-1]
    return Completion(text="".join(c.text for c in chunks), model="", provider=last.provider or "",
                      finish_reason=last.finish_reason, usage=last.usage,
                      reasoning="".join(c.reasoning or "" for c in chunks) or None,
                      provider_state=last.provider_state, tool_calls=last.tool_calls)


def ask(provider: AnthropicProvider, stream: bool, prompt: Any, **kwargs: Any) -> Completion:
    if stream:
        return streamed(list(provider.stream(prompt, **kwargs)))
    return provider.complete(prompt, **kwargs)


def sse(name: str, **data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(dict(type=name, **data))}\n\n"


def g7_events(signature: str = "EqQBCgIYAhIM...") -> List[str]:
    """§G.7's worked example, verbatim: thinking, text, then two parallel tool_use blocks, the
    second with no arguments (and no deltas)."""
    return [
        sse("message_start", message={
            "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 472, "output_tokens": 2, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0}}),
        sse("content_block_start", index=0, content_block={"type": "thinking", "thinking": "", "signature": ""}),
        sse("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "Need weather and time."}),
        sse("content_block_delta", index=0, delta={"type": "signature_delta", "signature": signature}),
        sse("content_block_stop", index=0),
        sse("content_block_start", index=1, content_block={"type": "text", "text": ""}),
        sse("content_block_delta", index=1, delta={"type": "text_delta", "text": "Checking both."}),
        sse("content_block_stop", index=1),
        sse("content_block_start", index=2, content_block={"type": "tool_use", "id": "toolu_01A",
                                                           "name": "get_weather", "input": {}}),
        sse("content_block_delta", index=2, delta={"type": "input_json_delta", "partial_json": ""}),
        sse("content_block_delta", index=2, delta={"type": "input_json_delta", "partial_json": '{"city": "Par'}),
        sse("content_block_delta", index=2, delta={"type": "input_json_delta", "partial_json": 'is"}'}),
        sse("content_block_stop", index=2),
        sse("content_block_start", index=3, content_block={"type": "tool_use", "id": "toolu_01B",
                                                           "name": "get_time", "input": {}}),
        sse("content_block_stop", index=3),
        sse("message_delta", delta={"stop_reason": "tool_use", "stop_sequence": None}, usage={"output_tokens": 89}),
        sse("message_stop"),
    ]


def g7_body(signature: str = "EqQBCgIYAhIM...") -> Dict[str, Any]:
    """The same answer as one JSON message."""
    return {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "thinking", "thinking": "Need weather and time.", "signature": signature},
                        {"type": "text", "text": "Checking both."},
                        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
                        {"type": "tool_use", "id": "toolu_01B", "name": "get_time", "input": {}}],
            "stop_reason": "tool_use", "stop_sequence": None,
            "usage": {"input_tokens": 472, "output_tokens": 89}}


G7_CALLS = (ToolCall("toolu_01A", "get_weather", {"city": "Paris"}), ToolCall("toolu_01B", "get_time", {}))


def sse_reply(events: Sequence[Any]) -> Reply:
    return Reply(200, chunks=list(events), content_type="text/event-stream; charset=utf-8")


# -- the request: tools and tool_choice -------------------------------------------------------------

@pytest.mark.parametrize("choice, parallel, expected", [
    (None, None, None),
    ("auto", None, {"type": "auto"}),
    ("required", None, {"type": "any"}),
    ("get_time", None, {"type": "tool", "name": "get_time"}),
    ("none", None, {"type": "none"}),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
    ("get_weather", False, {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}),
    # "none" makes no call at all, and {"type": "none"} has no such field: nothing more is sent.
    ("none", False, {"type": "none"}),
    (None, True, None),
    ("auto", True, {"type": "auto"}),
])
def test_tools_and_tool_choice_are_sent_in_the_api_shape(
    server: LoopbackServer, make: MakeProvider, choice: Optional[str], parallel: Optional[bool],
    expected: Optional[Dict[str, Any]],
) -> None:
    make().complete("Weather?", tools=TOOLS, tool_choice=choice, parallel_tool_calls=parallel)
    body = server.requests[0].json()
    assert body["tools"] == [
        {"name": "get_weather", "description": "Weather for a city", "input_schema": WEATHER.parameters},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},  # no empty description
    ]
    assert body.get("tool_choice") == expected


def test_a_plain_call_sends_no_tool_fields(server: LoopbackServer, make: MakeProvider) -> None:
    make().complete("hi", tools=[])
    assert not {"tools", "tool_choice"} & set(server.requests[0].json())


@pytest.mark.parametrize("choice", ["required", "get_weather"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_forced_choice_with_budget_thinking_is_refused_before_sending(
    server: LoopbackServer, make: MakeProvider, choice: str, stream: bool
) -> None:
    with pytest.raises(UnsupportedFeatureError, match="manual \\(budget\\) thinking takes only tool_choice"):
        ask(make(), stream, "Weather?", tools=TOOLS, tool_choice=choice, reasoning="low")
    assert server.requests == []


def test_a_forced_choice_is_sent_with_adaptive_thinking_or_thinking_off(
    server: LoopbackServer, make: MakeProvider
) -> None:
    adaptive = make(model="claude-opus-4-8").complete("Weather?", tools=TOOLS, tool_choice="required",
                                                       reasoning="low")
    assert [call.name for call in adaptive.tool_calls] == ["get_weather", "get_time"]
    off = make().complete("Weather?", tools=TOOLS, tool_choice="get_time", reasoning=False)
    assert [call.name for call in off.tool_calls] == ["get_time"]
    auto = make().complete("Weather?", tools=TOOLS, tool_choice="auto", reasoning="low")
    assert auto.reasoning and len(auto.tool_calls) == 2
    assert [r.json().get("tool_choice") for r in server.requests] == [
        {"type": "any"}, {"type": "tool", "name": "get_time"}, {"type": "auto"}]


# -- answers: whole and streamed ---------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_the_g7_answer_gives_thinking_text_and_both_calls(
    server: LoopbackServer, make: MakeProvider, stream: bool
) -> None:
    server.enqueue(sse_reply(g7_events()) if stream else Reply(json=g7_body()))
    done = ask(make(), stream, "Weather and time?", tools=TOOLS)
    assert done.tool_calls == G7_CALLS
    assert [call.arguments for call in done.tool_calls] == [{"city": "Paris"}, {}]
    assert done.text == "Checking both."
    assert done.reasoning == "Need weather and time."
    assert done.provider_state == {"thinking_blocks": [
        {"type": "thinking", "thinking": "Need weather and time.", "signature": "EqQBCgIYAhIM..."}]}
    assert done.finish_reason == "tool_calls"


def test_streamed_and_whole_g7_answers_are_identical(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(sse_reply(g7_events()))
    server.enqueue(Reply(json=g7_body()))
    provider = make()
    chunks = list(provider.stream("Weather and time?", tools=TOOLS))
    whole = provider.complete("Weather and time?", tools=TOOLS)
    flowed = streamed(chunks)
    for field in ("text", "reasoning", "provider_state", "tool_calls", "finish_reason"):
        assert getattr(flowed, field) == getattr(whole, field), field
    # Each chunk on the way carries the call being built: its start, then each non-empty fragment.
    partials = [chunk.tool_call for chunk in chunks if chunk.tool_call is not None]
    assert [(p.id, p.raw_arguments) for p in partials] == [
        ("toolu_01A", ""), ("toolu_01A", '{"city": "Par'), ("toolu_01A", '{"city": "Paris"}'), ("toolu_01B", "")]
    assert all(chunk.tool_calls == () for chunk in chunks[:-1])


@pytest.mark.parametrize("fragments", [1, 4, 40])
def test_scripted_parallel_calls_streamed_and_whole_agree(
    server: LoopbackServer, make: MakeProvider, fragments: int
) -> None:
    calls = [("toolu_01A", "get_weather", {"city": "Zürich — 東京"}), ("toolu_01B", "get_time", {}),
             ("toolu_01C", "get_weather", {"city": 'quote " and \\ backslash'})]
    server.enqueue(server.stream_reply(["Checking ", "all."], tool_calls=calls, fragments=fragments))
    server.enqueue(server.completion_reply("Checking all.", tool_calls=calls))
    provider = make()
    chunks = list(provider.stream("go", tools=TOOLS))
    whole = provider.complete("go", tools=TOOLS)
    flowed = streamed(chunks)
    assert flowed.tool_calls == whole.tool_calls == tuple(ToolCall(*call) for call in calls)
    assert flowed.text == whole.text == "Checking all."
    assert flowed.finish_reason == whole.finish_reason == "tool_calls"
    assert sum(1 for chunk in chunks if chunk.tool_call is not None and chunk.tool_call.id == "toolu_01A") == \
        1 + min(fragments, len(json.dumps(calls[0][2], ensure_ascii=False)))


@pytest.mark.parametrize("deltas", [[], [""], ["", " "]], ids=["no-delta", "empty-delta", "blank"])
def test_a_tool_without_arguments_is_an_empty_object(
    server: LoopbackServer, make: MakeProvider, deltas: List[str]
) -> None:
    events = g7_events()
    head, tail = events[:13], events[-2:]  # up to the first call's stop; then message_delta, message_stop
    middle = [sse("content_block_start", index=3, content_block={"type": "tool_use", "id": "toolu_01B",
                                                                 "name": "get_time", "input": {}})]
    middle += [sse("content_block_delta", index=3, delta={"type": "input_json_delta", "partial_json": piece})
               for piece in deltas]
    middle.append(sse("content_block_stop", index=3))
    server.enqueue(sse_reply(head + middle + tail))
    done = streamed(list(make().stream("go", tools=TOOLS)))
    assert done.tool_calls == G7_CALLS
    assert done.tool_calls[1].arguments == {}


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_arguments_that_are_not_json_are_kept_raw_and_raise_on_access(
    server: LoopbackServer, make: MakeProvider, stream: bool
) -> None:
    raw = '{"city": "Par'  # cut short, as a max_tokens stop or eager_input_streaming can leave it
    calls = [("toolu_01A", "get_weather", raw), ("toolu_01B", "get_time", {})]
    server.enqueue(server.stream_reply([], tool_calls=calls, fragments=3) if stream
                   else server.completion_reply("", tool_calls=calls))
    done = ask(make(), stream, "go", tools=TOOLS)
    bad, good = done.tool_calls
    assert (bad.id, bad.name, bad.raw_arguments) == ("toolu_01A", "get_weather", raw)
    assert bad.arguments_error is not None and "not valid JSON" in bad.arguments_error
    with pytest.raises(ResponseFormatError, match="get_weather"):
        bad.arguments  # noqa: B018
    assert good.arguments == {}


def test_a_call_with_bad_arguments_is_sent_back_with_an_empty_input(
    server: LoopbackServer, make: MakeProvider
) -> None:
    call = ToolCall("toolu_01A", "get_weather", '{"city": ')
    history = [Message("user", "go"), Message("assistant", "", tool_calls=[call]),
               call.result("arguments are not valid JSON", is_error=True)]
    assert make().complete(history, tools=TOOLS).text == "results: arguments are not valid JSON"
    sent = server.requests[0].json()["messages"]
    assert sent[1]["content"] == [{"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {}}]
    assert sent[2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_01A",
                                   "content": "arguments are not valid JSON", "is_error": True}]


@pytest.mark.parametrize("input_value, raw", [("{\"city\": \"Paris\"}", '{"city": "Paris"}'),
                                              ([1, 2], "[1, 2]"), (None, "{}")])
def test_a_tool_use_input_that_is_not_an_object_does_not_fail_the_answer(
    server: LoopbackServer, make: MakeProvider, input_value: Any, raw: str
) -> None:
    body = dict(g7_body(), content=[{"type": "tool_use", "id": "toolu_01A", "name": "get_weather",
                                     "input": input_value}])
    server.enqueue(Reply(json=body))
    (call,) = make().complete("go", tools=TOOLS).tool_calls
    assert call.raw_arguments == raw


def test_a_tool_use_block_without_a_name_is_a_response_format_error(
    server: LoopbackServer, make: MakeProvider
) -> None:
    server.enqueue(Reply(json=dict(g7_body(), content=[{"type": "tool_use", "id": "toolu_01A", "input": {}}])))
    with pytest.raises(ResponseFormatError, match="tool_use block without a name"):
        make().complete("go", tools=TOOLS)


# -- sending the tool turns back ------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_a_two_turn_exchange_with_thinking_round_trips_against_the_simulator(
    server: LoopbackServer, make: MakeProvider, stream: bool
) -> None:
    provider = make()
    history: List[Any] = [Message("user", "Weather in Paris, and the time?")]
    first = ask(provider, stream, history, tools=TOOLS, reasoning="low")
    assert first.finish_reason == "tool_calls"
    assert [call.name for call in first.tool_calls] == ["get_weather", "get_time"]
    assert first.tool_calls[0].arguments == {"city": "Weather in Paris, and the time?"}
    assert first.reasoning and first.provider_state is not None
    history += [first.message, *(call.result(f"{call.name} ok") for call in first.tool_calls),
                Message("user", "Thanks; be short.")]
    second = ask(provider, stream, history, tools=TOOLS, reasoning="low")
    assert second.text == "results: get_weather ok | get_time ok"
    assert second.finish_reason == "stop" and second.tool_calls == ()

    sent = server.requests[1].json()["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    thinking, *calls = sent[1]["content"]
    assert thinking == first.provider_state["thinking_blocks"][0]  # first, unchanged: the simulator checks it
    assert calls == [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
                     for call in first.tool_calls]
    assert sent[2]["content"] == [
        {"type": "tool_result", "tool_use_id": first.tool_calls[0].id, "content": "get_weather ok"},
        {"type": "tool_result", "tool_use_id": first.tool_calls[1].id, "content": "get_time ok"},
        {"type": "text", "text": "Thanks; be short."},  # the user's text joins the turn, after the results
    ]


def test_a_result_with_parts_and_an_empty_result_are_sent_as_blocks(
    server: LoopbackServer, make: MakeProvider
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(16)
    calls = [ToolCall("toolu_01A", "get_weather", {"city": "Paris"}), ToolCall("toolu_01B", "get_time", {})]
    history = [Message("user", [Text("Weather?")]), Message("assistant", [Text("Checking.")], tool_calls=calls),
               ToolResult("toolu_01A", (Text("sunny"), Image.from_bytes(png))), ToolResult("toolu_01B", "")]
    make().complete(history, tools=TOOLS)
    sent = server.requests[0].json()["messages"]
    assert sent[1]["content"][0] == {"type": "text", "text": "Checking."}
    first, second = sent[2]["content"]
    assert first["content"][0] == {"type": "text", "text": "sunny"}
    assert first["content"][1]["type"] == "image" and first["content"][1]["source"]["media_type"] == "image/png"
    assert second == {"type": "tool_result", "tool_use_id": "toolu_01B"}  # no empty content


def test_openai_shaped_dicts_make_the_same_turns(server: LoopbackServer, make: MakeProvider) -> None:
    history = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "toolu_01A", "type": "function", "function": {"name": "get_weather",
                                                                 "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_01A", "content": "sunny"},
    ]
    assert make().complete(history, tools=TOOLS).text == "results: sunny"
    sent = server.requests[0].json()["messages"]
    assert sent[1:] == [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01A", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": "sunny"}]},
    ]


def test_a_tool_message_that_is_no_tool_result_is_refused(server: LoopbackServer, make: MakeProvider) -> None:
    with pytest.raises(InvalidRequestError, match="must be a ToolResult"):
        make().complete([Message("user", "hi"), Message("tool", "orphan")])
    assert server.requests == []


def test_cache_marks_the_last_tool_result(server: LoopbackServer, make: MakeProvider) -> None:
    call = ToolCall("toolu_01A", "get_time", {})
    make().complete([Message("user", "time?"), Message("assistant", "", tool_calls=[call]), call.result("noon")],
                    tools=TOOLS, cache=True)
    last = server.requests[0].json()["messages"][-1]["content"][-1]
    assert last == {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "noon",
                    "cache_control": {"type": "ephemeral"}}


# -- the simulator refuses what the API refuses -----------------------------------------------------------

def test_tool_use_without_its_results_right_after_is_refused(server: LoopbackServer, make: MakeProvider) -> None:
    call = ToolCall("toolu_01X", "get_time", {})
    with pytest.raises(InvalidRequestError) as caught:
        make().complete([Message("user", "time?"), Message("assistant", "", tool_calls=[call]),
                         Message("user", "never mind")], tools=TOOLS)
    assert ("messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_01X. "
            "Each `tool_use` block must have a corresponding `tool_result` block in the next message.") \
        in str(caught.value)


def test_a_result_for_an_unknown_call_is_refused(server: LoopbackServer, make: MakeProvider) -> None:
    call = ToolCall("toolu_01X", "get_time", {})
    with pytest.raises(InvalidRequestError, match=re.escape("messages.2.content.1: unexpected `tool_use_id` found "
                                                            "in `tool_result` blocks: toolu_01Y")):
        make().complete([Message("user", "time?"), Message("assistant", "", tool_calls=[call]), call.result("noon"),
                         ToolResult("toolu_01Y", "stray")], tools=TOOLS)


def test_budget_thinking_refuses_a_tool_loop_turn_without_its_thinking_block(
    server: LoopbackServer, make: MakeProvider
) -> None:
    call = ToolCall("toolu_01X", "get_time", {})
    history = [Message("user", "time?"), Message("assistant", "", tool_calls=[call]), call.result("noon")]
    with pytest.raises(InvalidRequestError, match=re.escape("messages.1.content.0.type: Expected `thinking` or "
                                                            "`redacted_thinking`, but found `tool_use`")):
        make().complete(history, tools=TOOLS, reasoning="low")
    # Adaptive thinking drops the requirement.
    assert make(model="claude-opus-4-8").complete(history, tools=TOOLS, reasoning="low").text == "results: noon"


def post(server: LoopbackServer, body: Dict[str, Any]) -> Tuple[int, str]:
    """A raw request to the simulator: what provider_kit would never send."""
    response = requests.post(server.url + "/v1/messages", json=dict({"model": "claude-sonnet-4-5",
                                                                    "max_tokens": 2048}, **body),
                             headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"}, timeout=10)
    return response.status_code, response.json().get("error", {}).get("message", "")


_USE = {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01X", "name": "get_time", "input": {}}]}
_RESULT = {"type": "tool_result", "tool_use_id": "toolu_01X", "content": "noon"}
_ASK = {"role": "user", "content": "time?"}
_TIME = {"name": "get_time", "input_schema": {"type": "object"}}


@pytest.mark.parametrize("body, message", [
    ({"messages": [_ASK, _USE, {"role": "user", "content": [{"type": "text", "text": "first"}, _RESULT]}],
      "tools": [_TIME]},
     "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_01X."),
    ({"messages": [_ASK], "tools": [{"name": "get time", "input_schema": {"type": "object"}}]},
     "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"),
    ({"messages": [_ASK], "tools": [{"name": "get_time", "input_schema": {"type": "array"}}]},
     "tools.0.custom.input_schema.type: Input should be 'object'"),
    ({"messages": [_ASK], "tools": [_TIME, _TIME]}, "tools: Tool names must be unique."),
    ({"messages": [_ASK], "tools": [_TIME], "tool_choice": {"type": "any"},
      "thinking": {"type": "enabled", "budget_tokens": 1024}},
     "Thinking may not be enabled when tool_choice forces tool use."),
    ({"messages": [_ASK], "tools": [_TIME], "tool_choice": {"type": "none", "disable_parallel_tool_use": True}},
     "tool_choice.none.disable_parallel_tool_use: Extra inputs are not permitted"),
    ({"messages": [_ASK], "tools": [_TIME], "tool_choice": {"type": "tool", "name": "get_weather"}},
     "tool_choice.tool.name: Tool 'get_weather' not found in tools"),
    ({"messages": [_ASK, {"role": "assistant", "content": [dict(_USE["content"][0], input="{}")]},
                   {"role": "user", "content": [_RESULT]}], "tools": [_TIME]},
     "messages.1.content.0.tool_use.input: Input should be a valid dictionary"),
], ids=["text-before-result", "bad-name", "schema-not-object", "duplicate-names", "forced-with-budget-thinking",
        "none-with-parallel-flag", "unknown-named-tool", "input-not-object"])
def test_the_simulator_refuses_what_the_api_refuses(
    server: LoopbackServer, body: Dict[str, Any], message: str
) -> None:
    status, said = post(server, body)
    assert status == 400 and said.startswith(message), said


# -- any split of a tool-call stream into network chunks ------------------------------------------------

@pytest.fixture(scope="module")
def split_server() -> Iterator[LoopbackServer]:
    with LoopbackServer("anthropic") as server:
        yield server


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_split_of_a_tool_call_stream_assembles_to_the_same_calls(
    split_server: LoopbackServer, data: st.DataObject
) -> None:
    body = "".join(g7_events()).encode()
    cuts = sorted(data.draw(st.lists(st.integers(1, len(body) - 1), max_size=25, unique=True)))
    chunks = [body[start:end] for start, end in zip([0, *cuts], [*cuts, len(body)])]
    split_server.enqueue(Reply(200, chunks=chunks, content_type="text/event-stream"))
    with AnthropicProvider("split", base_url=split_server.base_url, max_retries=0, timeout=10) as provider:
        done = streamed(list(provider.stream("go", tools=TOOLS)))
    assert done.tool_calls == G7_CALLS
    assert (done.text, done.reasoning, done.finish_reason) == ("Checking both.", "Need weather and time.", "tool_calls")
