"""Tool calling on Ollama's native chat API (PROTOCOLS-2.md §G.8, §H.4), against the loopback
simulator: the ``tools`` sent, the choices Ollama cannot express refused before sending, calls
read from whole answers and NDJSON streams (whole calls, a batch spread over lines, no ids on
old servers, arguments as a JSON string through proxies), and the tool turns sent back."""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
import requests
from _support import raises
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider_kit import Image, Message, OllamaProvider, StreamChunk, Text, Tool, ToolCall, ToolResult
from provider_kit.errors import ConfigError, InvalidRequestError, ResponseFormatError, UnsupportedFeatureError
from provider_kit.testing import LoopbackServer, Reply

MakeProvider = Callable[..., OllamaProvider]
KIND = OllamaProvider.TYPE

WEATHER = Tool("get_weather", "Get the weather for a city.",
               {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
TIME = Tool("get_time", "Get the time in a time zone.",
            {"type": "object", "properties": {"tz": {"type": "string"}, "days": {"type": "integer"}}})
TOOLS = [WEATHER, TIME]
SERVER_ID = re.compile(r"call_[a-z0-9]{8}")  # server/routes.go toolCallId()
GENERATED_ID = re.compile(r"call_[0-9a-f]{24}")  # provider_kit's new_tool_call_id()
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16

#: §G.8's worked example: thinking, then two calls in two lines, done_reason "stop".
WORKED_STREAM = [
    b'{"model":"qwen3","created_at":"2026-08-21T10:00:00.1Z","message":{"role":"assistant","content":"",'
    b'"thinking":"Need weather"},"done":false}\n',
    b'{"model":"qwen3","created_at":"2026-08-21T10:00:00.2Z","message":{"role":"assistant","content":"",'
    b'"thinking":" and time."},"done":false}\n',
    b'{"model":"qwen3","created_at":"2026-08-21T10:00:00.9Z","message":{"role":"assistant","content":"",'
    b'"tool_calls":[{"id":"call_k3j9x0ab","function":{"index":0,"name":"get_weather","arguments":'
    b'{"city":"Paris"}}}]},"done":false}\n',
    b'{"model":"qwen3","created_at":"2026-08-21T10:00:01.3Z","message":{"role":"assistant","content":"",'
    b'"tool_calls":[{"id":"call_p2m7q1zz","function":{"index":1,"name":"get_time","arguments":'
    b'{"tz":"Europe/Paris"}}}]},"done":false}\n',
    b'{"model":"qwen3","created_at":"2026-08-21T10:00:01.4Z","message":{"role":"assistant","content":""},'
    b'"done":true,"done_reason":"stop","total_duration":1400000000,"prompt_eval_count":180,"eval_count":61}\n',
]
WORKED_CALLS = (ToolCall("call_k3j9x0ab", "get_weather", {"city": "Paris"}),
                ToolCall("call_p2m7q1zz", "get_time", {"tz": "Europe/Paris"}))


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(KIND, models=["llama3.2:latest", "qwen3:8b", "gemma2:2b"]) as server:
        yield server
    assert server.errors == []


@pytest.fixture
def make(server: LoopbackServer, provider_factory: Callable[..., MakeProvider]) -> MakeProvider:
    return provider_factory(OllamaProvider, base_url=server.base_url, max_retries=0, timeout=10)


def streamed(provider: OllamaProvider, *args: Any, **kwargs: Any) -> Tuple[List[StreamChunk], StreamChunk]:
    chunks = list(provider.stream(*args, **kwargs))
    return chunks, chunks[-1]


def named(calls: Any) -> List[Tuple[str, Dict[str, Any]]]:
    return [(call.name, call.arguments) for call in calls]


# -- the request -------------------------------------------------------------------------------


def test_tools_are_sent_in_the_openai_function_shape(server: LoopbackServer, make: MakeProvider) -> None:
    make().complete("Weather in Paris?", tools=[WEATHER, {"type": "function", "function": {
        "name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}}])

    body = server.last_request.json()
    assert body["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Get the weather for a city.",
                                          "parameters": WEATHER.parameters}},
        {"type": "function", "function": {"name": "get_time",
                                          "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}},
    ]
    # Ollama has neither switch: nothing but the tools is added.
    assert "tool_choice" not in body and "parallel_tool_calls" not in body


def test_a_plain_call_sends_no_tools(server: LoopbackServer, make: MakeProvider) -> None:
    make().complete("hi", tools=[])
    assert "tools" not in server.last_request.json()


def test_auto_and_parallel_true_are_ollama_s_own_behaviour_and_send_the_tools_only(
        server: LoopbackServer, make: MakeProvider) -> None:
    completion = make().complete("Paris", tools=TOOLS, tool_choice="auto", parallel_tool_calls=True)

    assert len(completion.tool_calls) == 2
    body = server.last_request.json()
    assert [tool["function"]["name"] for tool in body["tools"]] == ["get_weather", "get_time"]
    assert "tool_choice" not in body and "parallel_tool_calls" not in body


@pytest.mark.parametrize("stream", [False, True])
def test_tool_choice_none_sends_no_tools_and_the_model_answers_in_text(
        server: LoopbackServer, make: MakeProvider, stream: bool) -> None:
    provider = make()
    if stream:
        chunks, last = streamed(provider, "Paris", tools=TOOLS, tool_choice="none")
        text, calls, finish = "".join(c.text for c in chunks), last.tool_calls, last.finish_reason
    else:
        completion = provider.complete("Paris", tools=TOOLS, tool_choice="none")
        text, calls, finish = completion.text, completion.tool_calls, completion.finish_reason

    assert "tools" not in server.last_request.json()
    assert (text, calls, finish) == ("echo: Paris", (), "stop")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("arguments, refused", [
    (dict(tool_choice="required"), "'required'"),
    (dict(tool_choice="get_time"), "a named tool"),
    (dict(tool_choice=TIME), "a named tool"),
    (dict(parallel_tool_calls=False), "one call"),
])
def test_choices_ollama_cannot_express_are_refused_before_sending(
        server: LoopbackServer, make: MakeProvider, arguments: Dict[str, Any], refused: str, stream: bool) -> None:
    provider = make(name="local")
    call = (lambda: list(provider.stream("Paris", tools=TOOLS, **arguments))) if stream else (
        lambda: provider.complete("Paris", tools=TOOLS, **arguments))

    error = raises(UnsupportedFeatureError, call)

    assert "local" in str(error) and KIND in str(error) and refused in str(error)
    assert server.requests == []


def test_a_model_without_tool_support_is_an_invalid_request(server: LoopbackServer, make: MakeProvider) -> None:
    error = raises(InvalidRequestError, make(model="gemma2:2b").complete, "Paris", tools=TOOLS)

    assert error.status_code == 400
    assert "registry.ollama.ai/library/gemma2:2b does not support tools" in str(error)
    # Without tools the same model answers.
    assert make(model="gemma2:2b").complete("Paris").text == "echo: Paris"


# -- reading calls -----------------------------------------------------------------------------


def test_parallel_calls_in_a_whole_answer(server: LoopbackServer, make: MakeProvider) -> None:
    completion = make().complete("Paris now", tools=TOOLS)

    assert named(completion.tool_calls) == [("get_weather", {"city": "Paris now"}),
                                            ("get_time", {"tz": "Paris now", "days": 2})]
    assert all(SERVER_ID.fullmatch(call.id) for call in completion.tool_calls)
    assert completion.finish_reason == "tool_calls"  # the wire said "stop"
    assert completion.text == ""
    assert completion.message.tool_calls == completion.tool_calls


def test_parallel_calls_in_a_stream_one_line_each(server: LoopbackServer, make: MakeProvider) -> None:
    chunks, last = streamed(make(), "Paris now", tools=TOOLS)

    partials = [chunk.tool_call for chunk in chunks if chunk.tool_call is not None]
    assert named(partials) == [("get_weather", {"city": "Paris now"}), ("get_time", {"tz": "Paris now", "days": 2})]
    assert last.tool_calls == tuple(partials)
    assert last.finish_reason == "tool_calls"
    assert "".join(chunk.text for chunk in chunks) == ""


def test_the_simulator_streams_one_whole_call_per_line(server: LoopbackServer) -> None:
    reply = _post(server, {"stream": True, "tools": [tool.to_dict() for tool in TOOLS],
                           "messages": [{"role": "user", "content": "Paris"}]})
    lines = [json.loads(line) for line in reply.content.splitlines()]

    calls = [line["message"]["tool_calls"] for line in lines if line["message"].get("tool_calls")]
    assert [[call["function"]["index"] for call in batch] for batch in calls] == [[0], [1]]
    assert all(SERVER_ID.fullmatch(batch[0]["id"]) for batch in calls)
    assert calls[0][0]["function"]["arguments"] == {"city": "Paris"}
    assert lines[-1]["done"] is True and lines[-1]["done_reason"] == "stop"


@pytest.mark.parametrize("quirks", [{}, {"tool_call_ids": False}, {"string_arguments": True}])
def test_streamed_and_whole_answers_give_the_same_calls(make: MakeProvider, quirks: Dict[str, Any]) -> None:
    scripted = [("call_a1", "get_weather", {"city": "Zürich", "nested": {"a": [1, 2.5, None]}}),
                ("call_b2", "get_time", "{\"tz\": \"UTC\"}"),
                ("call_c3", "get_time", "not json"),
                ("call_d4", "noop", "")]
    with LoopbackServer(KIND, quirks=quirks) as server:
        provider = make(base_url=server.base_url)
        server.enqueue(server.completion_reply("Let me check.", tool_calls=scripted))
        whole = provider.complete("x")
        server.enqueue(server.stream_reply(["Let ", "me ", "check."], tool_calls=scripted))
        chunks, last = streamed(provider, "x")

    assert last.tool_calls == whole.tool_calls
    assert [call.id for call in whole.tool_calls] == ["call_a1", "call_b2", "call_c3", "call_d4"]
    assert (last.finish_reason, whole.finish_reason) == ("tool_calls", "tool_calls")
    assert "".join(c.text for c in chunks) == whole.text == "Let me check."
    assert whole.tool_calls[0].arguments == {"city": "Zürich", "nested": {"a": [1, 2.5, None]}}
    assert whole.tool_calls[3].arguments == {}


def test_thinking_before_calls_the_worked_stream(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(Reply(chunks=WORKED_STREAM, content_type="application/x-ndjson"))
    chunks, last = streamed(make(model="qwen3"), "Weather and time in Paris?", tools=TOOLS)

    assert [c.reasoning for c in chunks if c.reasoning] == ["Need weather", " and time."]
    assert [c.tool_call for c in chunks if c.tool_call] == list(WORKED_CALLS)
    assert last.tool_calls == WORKED_CALLS
    assert last.finish_reason == "tool_calls"
    assert (last.usage.input_tokens, last.usage.output_tokens) == (180, 61)
    assert last.provider_state == {KIND: {"thinking": "Need weather and time."}}
    # The reasoning chunks come before the calls, as they arrived.
    kinds = ["reasoning" if c.reasoning else "call" for c in chunks if c.reasoning or c.tool_call]
    assert kinds == ["reasoning", "reasoning", "call", "call"]


def test_the_simulated_thinking_model_thinks_before_its_calls(server: LoopbackServer, make: MakeProvider) -> None:
    provider = make(model="qwen3:8b")
    completion = provider.complete("Paris", tools=TOOLS)
    chunks, last = streamed(provider, "Paris", tools=TOOLS)

    assert completion.reasoning == "Thinking (default) about: Paris"
    assert "".join(c.reasoning or "" for c in chunks) == completion.reasoning
    assert named(last.tool_calls) == named(completion.tool_calls) == [("get_weather", {"city": "Paris"}),
                                                                      ("get_time", {"tz": "Paris", "days": 1})]
    first_call = next(i for i, c in enumerate(chunks) if c.tool_call)
    assert all(not c.reasoning for c in chunks[first_call:])


@pytest.mark.parametrize("stream", [False, True])
def test_an_old_server_sends_no_ids_and_unique_ones_are_made(make: MakeProvider, stream: bool) -> None:
    with LoopbackServer(KIND, quirks={"tool_call_ids": False}) as server:
        provider = make(base_url=server.base_url)
        calls = streamed(provider, "Paris", tools=TOOLS)[1].tool_calls if stream else \
            provider.complete("Paris", tools=TOOLS).tool_calls
        again = provider.complete("Paris", tools=TOOLS).tool_calls
        reply = server.requests[0]
        assert reply.json()["tools"]

    assert len(calls) == 2
    ids = [call.id for call in calls + again]
    assert all(GENERATED_ID.fullmatch(call_id) for call_id in ids)
    assert len(set(ids)) == 4


@pytest.mark.parametrize("stream", [False, True])
def test_arguments_as_a_json_string_from_a_proxy(make: MakeProvider, stream: bool) -> None:
    with LoopbackServer(KIND, quirks={"string_arguments": True}) as server:
        provider = make(base_url=server.base_url)
        calls = streamed(provider, "Paris", tools=TOOLS)[1].tool_calls if stream else \
            provider.complete("Paris", tools=TOOLS).tool_calls

    assert named(calls) == [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "Paris", "days": 1})]


@pytest.mark.parametrize("stream", [False, True])
def test_empty_string_and_missing_arguments_are_no_arguments(
        server: LoopbackServer, make: MakeProvider, stream: bool) -> None:
    message = {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "function": {"index": 0, "name": "noop", "arguments": ""}},
        {"id": "call_2", "function": {"index": 1, "name": "noop2"}}]}
    body = {"model": "llama3.2", "message": message, "done": True, "done_reason": "stop"}
    if stream:
        server.enqueue(Reply(chunks=[json.dumps({**body, "done": False}).encode() + b"\n",
                                     json.dumps({"model": "llama3.2", "message": {"role": "assistant", "content": ""},
                                                 "done": True, "done_reason": "stop"}).encode() + b"\n"],
                             content_type="application/x-ndjson"))
        calls = streamed(make(), "x")[1].tool_calls
    else:
        server.enqueue(Reply(json=body))
        calls = make().complete("x").tool_calls

    assert [(call.id, call.name, call.arguments) for call in calls] == [("call_1", "noop", {}), ("call_2", "noop2", {})]


@pytest.mark.parametrize("stream", [False, True])
def test_invalid_json_arguments_are_delivered_and_reading_them_raises(
        server: LoopbackServer, make: MakeProvider, stream: bool) -> None:
    scripted = [("call_bad", "get_weather", '{"city": "Par'), ("call_list", "get_time", "[1, 2]")]
    if stream:
        server.enqueue(server.stream_reply([], tool_calls=scripted))
        calls = streamed(make(), "x")[1].tool_calls
    else:
        server.enqueue(server.completion_reply("", tool_calls=scripted))
        calls = make().complete("x").tool_calls

    bad, listed = calls
    assert bad.raw_arguments == '{"city": "Par' and bad.arguments_error is not None
    error = raises(ResponseFormatError, lambda: bad.arguments)
    assert "get_weather" in str(error) and "call_bad" in str(error)
    assert "not an object" in str(raises(ResponseFormatError, lambda: listed.arguments))


def test_a_call_of_the_wrong_shape_is_a_response_format_error(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(Reply(json={"model": "llama3.2", "done": True, "done_reason": "stop",
                               "message": {"role": "assistant", "content": "", "tool_calls": [{"function": "x"}]}}))
    raises(ResponseFormatError, make().complete, "x")


# -- answering calls: the tool turns sent back -------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_two_turn_exchange_by_hand(server: LoopbackServer, make: MakeProvider, stream: bool) -> None:
    provider = make(model="qwen3:8b")
    messages: List[Any] = [Message("user", "Weather and time in Paris?")]
    if stream:
        _, last = streamed(provider, messages, tools=TOOLS)
        calls, state = last.tool_calls, last.provider_state
        assistant = Message("assistant", "", provider_state=state, tool_calls=calls)
    else:
        first = provider.complete(messages, tools=TOOLS)
        calls, assistant = first.tool_calls, first.message
    messages += [assistant, *(call.result(f"{call.name} is fine") for call in calls)]

    if stream:
        chunks, last = streamed(provider, messages, tools=TOOLS)
        text, finish = "".join(c.text for c in chunks), last.finish_reason
    else:
        second = provider.complete(messages, tools=TOOLS)
        text, finish = second.text, second.finish_reason

    assert text == "results: get_weather is fine | get_time is fine"
    assert finish == "stop"
    sent = server.last_request.json()["messages"]
    assert sent == [
        {"role": "user", "content": "Weather and time in Paris?"},
        {"role": "assistant", "content": "", "thinking": "Thinking (default) about: Weather and time in Paris?",
         "tool_calls": [{"id": calls[0].id, "function": {"index": 0, "name": "get_weather",
                                                         "arguments": {"city": "Weather and time in Paris?"}}},
                        {"id": calls[1].id, "function": {"index": 1, "name": "get_time",
                                                         "arguments": {"tz": "Weather and time in Paris?",
                                                                       "days": 5}}}]},
        {"role": "tool", "tool_name": "get_weather", "tool_call_id": calls[0].id, "content": "get_weather is fine"},
        {"role": "tool", "tool_name": "get_time", "tool_call_id": calls[1].id, "content": "get_time is fine"},
    ]


def test_a_result_without_a_name_takes_the_name_of_its_call(server: LoopbackServer, make: MakeProvider) -> None:
    history = [{"role": "user", "content": "Paris"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                                     "arguments": "{\"city\": \"Paris\"}"}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    assert make().complete(history, tools=TOOLS).text == "results: sunny"

    sent = server.last_request.json()["messages"]
    assert sent[1] == {"role": "assistant", "content": "", "tool_calls": [
        {"id": "call_1", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}}]}
    assert sent[2] == {"role": "tool", "tool_name": "get_weather", "tool_call_id": "call_1", "content": "sunny"}


def test_a_result_answering_no_call_is_refused_before_sending(server: LoopbackServer, make: MakeProvider) -> None:
    history = [Message("user", "Paris"), ToolResult("call_missing", "sunny")]
    error = raises(ConfigError, make().complete, history, tools=TOOLS)

    assert "call_missing" in str(error) and "name=" in str(error)
    assert server.requests == []
    # With its name it is sent: Ollama routes by name.
    make().complete([Message("user", "Paris"), ToolResult("call_missing", "sunny", name="get_weather")])
    assert server.last_request.json()["messages"][1]["tool_name"] == "get_weather"


def test_invalid_arguments_go_back_as_an_empty_object(server: LoopbackServer, make: MakeProvider) -> None:
    server.enqueue(server.completion_reply("", tool_calls=[("call_bad", "get_weather", '{"city": "Par')]))
    first = make().complete("Paris", tools=TOOLS)
    (call,) = first.tool_calls
    failed = call.result(f"bad arguments: {call.arguments_error}", is_error=True)

    second = make().complete([Message("user", "Paris"), first.message, failed], tools=TOOLS)

    assert second.text.startswith("results: Error: bad arguments: arguments are not valid JSON")
    sent = server.last_request.json()["messages"]
    assert sent[1]["tool_calls"] == [{"id": "call_bad", "function": {"index": 0, "name": "get_weather",
                                                                     "arguments": {}}}]


@pytest.mark.parametrize("content, sent", [
    ("it broke", "Error: it broke"),
    ("Error: it broke", "Error: it broke"),
    ("error - it broke", "error - it broke"),
    ("", "Error"),
])
def test_an_error_result_says_so_in_its_content(
        server: LoopbackServer, make: MakeProvider, content: str, sent: str) -> None:
    make().complete([Message("user", "Paris"), ToolResult("call_1", content, is_error=True, name="get_weather")])
    assert server.last_request.json()["messages"][1]["content"] == sent


def test_images_a_tool_returned_go_in_the_tool_message_s_images(server: LoopbackServer, make: MakeProvider) -> None:
    result = ToolResult("call_1", (Text("the chart:"), Image.from_bytes(PNG, "image/png")), name="plot")
    make().complete([Message("user", "Plot it"), result])

    tool_turn = server.last_request.json()["messages"][1]
    assert tool_turn["content"] == "the chart:"
    assert tool_turn["images"] == [Image.from_bytes(PNG, "image/png").base64]


def test_a_gif_or_url_image_in_a_tool_result_is_refused(server: LoopbackServer, make: MakeProvider) -> None:
    gif = ToolResult("call_1", (Image.from_bytes(b"GIF89a" + b"\0" * 10, "image/gif"),), name="plot")
    url = ToolResult("call_1", (Image.from_url("https://example.com/x.png"),), name="plot")
    raises(UnsupportedFeatureError, make().complete, [Message("user", "Plot it"), gif])
    raises(UnsupportedFeatureError, make().complete, [Message("user", "Plot it"), url])
    assert server.requests == []


# -- the simulator's own behaviour, as the real server's ---------------------------------------


def _post(server: LoopbackServer, body: Dict[str, Any]) -> Any:
    return requests.post(server.base_url + "/api/chat", json={"model": "llama3.2", "stream": False, **body},
                         timeout=10)


def test_the_simulator_takes_a_tool_message_naming_no_tool_as_the_server_does(server: LoopbackServer) -> None:
    # Ollama takes it (its renderers call the tool "unknown"): nothing on the wire refuses it.
    reply = _post(server, {"messages": [
        {"role": "user", "content": "Paris"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "function": {
            "index": 0, "name": "get_weather", "arguments": {}}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "routed by id"},
        {"role": "tool", "tool_call_id": "call_other", "content": "lost"},
        {"role": "tool", "content": "lost too"}]})

    assert reply.status_code == 200
    assert reply.json()["message"]["content"] == "results: routed by id | unknown: lost | unknown: lost too"


@pytest.mark.parametrize("arguments", ['{"city": "Paris"}', "", [1]])
def test_the_simulator_refuses_arguments_that_are_not_an_object(server: LoopbackServer, arguments: Any) -> None:
    reply = _post(server, {"messages": [
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": arguments}}]}]})
    assert reply.status_code == 400
    assert "cannot unmarshal" in reply.json()["error"]


def test_the_simulator_makes_scripted_calls_from_its_quirk(make: MakeProvider) -> None:
    with LoopbackServer(KIND, quirks={"tool_calls": [("get_time", {"tz": "UTC"})]}) as server:
        completion = make(base_url=server.base_url).complete("x", tools=TOOLS)
    assert named(completion.tool_calls) == [("get_time", {"tz": "UTC"})]


# -- any split of a tool-call stream -----------------------------------------------------------


@pytest.fixture(scope="module")
def shared_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(KIND, models=["qwen3"]) as server:
        yield server


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=1, max_value=sum(map(len, WORKED_STREAM)) - 1), max_size=25))
def test_any_split_of_a_tool_call_stream_assembles_the_same_calls(shared_server: LoopbackServer,
                                                                  cuts: List[int]) -> None:
    data = b"".join(WORKED_STREAM)
    edges = [0, *sorted(set(cuts)), len(data)]
    shared_server.enqueue(Reply(chunks=[data[a:b] for a, b in zip(edges, edges[1:])],
                                content_type="application/x-ndjson"))
    with OllamaProvider("split", base_url=shared_server.base_url, model="qwen3", max_retries=0, timeout=10) as p:
        chunks, last = streamed(p, "x", tools=TOOLS)

    assert last.tool_calls == WORKED_CALLS
    assert [c.tool_call for c in chunks if c.tool_call] == list(WORKED_CALLS)
    assert "".join(c.reasoning or "" for c in chunks) == "Need weather and time."
    assert last.finish_reason == "tool_calls"


def test_a_plain_function_is_a_tool(server: LoopbackServer, make: MakeProvider) -> None:
    def get_weather(city: str) -> str:
        """Get the weather for a city.

        Args:
            city: The city.
        """
        return "sunny"

    completion = make().complete("Paris", tools=[get_weather])

    (tool,) = server.last_request.json()["tools"]
    assert tool["type"] == "function" and tool["function"]["name"] == "get_weather"
    assert tool["function"]["parameters"]["properties"]["city"]["type"] == "string"
    assert [(call.name, call.arguments) for call in completion.tool_calls] == [("get_weather", {"city": "Paris"})]
