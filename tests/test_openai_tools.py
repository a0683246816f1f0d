"""Tool calling on the OpenAI Chat Completions wire (PROTOCOLS-2.md §G.1-§G.4, §H.2), against the
loopback simulators of OpenAI, Azure and the OpenAI-compatible presets: what is sent (tools,
choices, the tool turns of a history), how calls are read (whole, streamed in fragments,
interleaved, repeated ids and names, reused indices, invalid JSON), and what the simulators
refuse as the real services do."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import provider_kit as pk
from provider_kit.errors import InvalidRequestError, ResponseFormatError, UnsupportedFeatureError
from provider_kit.providers import PROVIDER_TYPES, OpenAIProvider, Preset
from provider_kit.providers._presets import preset_type
from provider_kit.testing import LoopbackServer, Reply

KEY = "sk-tools-0123456789abcdef"
WEATHER = pk.Tool("get_weather", "Get the weather for a city.",
                  {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
TIME = pk.Tool("get_time", "", {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]})
TOOLS = [WEATHER, TIME]
CALL_A = ("call_A", "get_weather", {"city": "Paris"})
CALL_B = ("call_B", "get_time", {"tz": "Europe/Paris"})


@contextlib.contextmanager
def served(kind: str = "openai", **options: Any) -> Iterator[Tuple[LoopbackServer, Any]]:
    """A simulator of ``kind`` and a provider of that type pointed at it."""
    quirks = options.pop("quirks", None)
    with LoopbackServer(kind, api_key=KEY, quirks=quirks) as server:
        options.setdefault("model", server.models[0])
        cls = options.pop("cls", PROVIDER_TYPES[kind])
        with cls(base_url=server.base_url, api_key=KEY, max_retries=0, timeout=10, **options) as provider:
            yield server, provider
        assert server.errors == []


def last_body(server: LoopbackServer) -> Dict[str, Any]:
    return server.requests[-1].json()


def triples(calls: Sequence[pk.ToolCall]) -> List[Tuple[str, str, str]]:
    return [(call.id, call.name, call.raw_arguments) for call in calls]


def streamed(provider: Any, prompt: Any = "Weather?", **kwargs: Any) -> Tuple[List[pk.StreamChunk], pk.StreamChunk]:
    chunks = list(provider.stream(prompt, **kwargs))
    return chunks[:-1], chunks[-1]


HEAD = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o-mini"}


def sse(*deltas: Any, finish: str = "tool_calls") -> bytes:
    """A stream of ``deltas`` (each a delta dict, or a list of ``tool_calls`` fragments), the
    finish chunk, a usage chunk and ``[DONE]``, as §G.3's worked example."""
    events = []
    for delta in deltas:
        delta = {"tool_calls": delta} if isinstance(delta, list) else delta
        events.append(dict(HEAD, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]))
    events.append(dict(HEAD, choices=[{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]))
    events.append(dict(HEAD, choices=[], usage={"prompt_tokens": 80, "completion_tokens": 40, "total_tokens": 120}))
    return b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events) + b"data: [DONE]\n\n"


def start(index: int, call_id: Optional[str], name: str, arguments: str = "") -> Dict[str, Any]:
    fragment: Dict[str, Any] = {"index": index, "type": "function", "function": {"name": name, "arguments": arguments}}
    if call_id is not None:
        fragment["id"] = call_id
    return fragment


def more(index: int, arguments: str) -> Dict[str, Any]:
    return {"index": index, "function": {"arguments": arguments}}


#: §G.3's worked example, two parallel calls.
WORKED_EXAMPLE = sse(
    {"role": "assistant", "content": None, "tool_calls": [start(0, "call_A", "get_weather")]},
    [more(0, '{"city": ')], [more(0, '"Paris"}')],
    [start(1, "call_B", "get_time")], [more(1, '{"tz": "Europe/Paris"}')],
)
WORKED_CALLS = [("call_A", "get_weather", '{"city": "Paris"}'), ("call_B", "get_time", '{"tz": "Europe/Paris"}')]


def play(server: LoopbackServer, body: bytes, chunks: Optional[Sequence[bytes]] = None) -> None:
    server.enqueue(Reply(200, chunks=list(chunks) if chunks is not None else [body],
                         content_type="text/event-stream"))


# -- what is sent ---------------------------------------------------------------------------------


def test_tools_are_sent_as_the_sdk_sends_them_and_choices_only_when_given() -> None:
    with served() as (server, provider):
        provider.complete("Weather?", tools=TOOLS)
        body = last_body(server)
        assert body["tools"] == [
            {"type": "function", "function": {"name": "get_weather", "description": "Get the weather for a city.",
                                              "parameters": WEATHER.parameters}},
            {"type": "function", "function": {"name": "get_time", "parameters": TIME.parameters}},  # no ""
        ]
        assert "tool_choice" not in body and "parallel_tool_calls" not in body


@pytest.mark.parametrize(("choice", "wire"), [
    ("auto", "auto"), ("none", "none"), ("required", "required"),
    ("get_time", {"type": "function", "function": {"name": "get_time"}}),
])
def test_each_tool_choice_form(choice: str, wire: Any) -> None:
    with served() as (server, provider):
        completion = provider.complete("Weather?", tools=TOOLS, tool_choice=choice, parallel_tool_calls=False)
        body = last_body(server)
    assert body["tool_choice"] == wire and body["parallel_tool_calls"] is False
    # The simulated model follows the choice: none answers in text, a name calls that tool only,
    # and parallel_tool_calls=False makes one call at most.
    expected = {"none": [], "get_time": ["get_time"]}.get(choice, ["get_weather"])
    assert [call.name for call in completion.tool_calls] == expected
    assert completion.finish_reason == ("tool_calls" if expected else "stop")


def test_a_call_without_tools_sends_no_tool_keys_and_an_empty_list_is_no_tools() -> None:
    with served() as (server, provider):
        provider.complete("Hi")
        provider.complete("Hi", tools=[])
        plain, empty = (request.json() for request in server.requests)
    for body in (plain, empty):
        assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(body)
    assert plain == empty


def test_a_named_choice_is_refused_where_the_service_cannot_honour_it_before_sending() -> None:
    # llama.cpp reads tool_choice as a string only: a named choice would silently be "auto".
    with served("llamacpp") as (server, provider):
        with pytest.raises(UnsupportedFeatureError, match=r"tool_choice='get_time'.*named tool"):
            provider.complete("Weather?", tools=TOOLS, tool_choice="get_time")
        assert server.requests == []
        provider.complete("Weather?", tools=TOOLS, tool_choice="required")
        assert last_body(server)["tool_choice"] == "required"


def test_the_simulated_llamacpp_reads_a_named_choice_as_auto() -> None:
    # Why the refusal above matters: sent anyway, the choice is ignored and every tool is called.
    with served("llamacpp", cls=OpenAIProvider) as (_, provider):
        completion = provider.complete("Weather?", tools=TOOLS, tool_choice="get_time")
    assert [call.name for call in completion.tool_calls] == ["get_weather", "get_time"]


def test_a_service_without_tool_calling_refuses_tools_before_sending() -> None:
    cls = preset_type(Preset("notools", "No Tools", "http://127.0.0.1:9/v1", None, requires_key=False,
                             tool_choices=()))
    with LoopbackServer("openai") as server, cls(base_url=server.base_url, model="m", max_retries=0) as provider:
        with pytest.raises(UnsupportedFeatureError, match="no tool calling"):
            provider.complete("Weather?", tools=TOOLS)
        assert server.requests == []


def test_gemini_gets_parameters_without_the_keywords_it_refuses() -> None:
    parameters = {"type": "object", "additionalProperties": False, "examples": [{"examples": 1}],
                  "properties": {"examples": {"type": "integer", "examples": [3]},
                                 "where": {"type": "object", "additionalProperties": False,
                                           "properties": {"additionalProperties": {"type": "string"}}}}}
    tool = pk.Tool("count", "Count.", parameters)
    with served("gemini") as (server, provider):
        provider.complete("Count", tools=[tool])
        sent = last_body(server)["tools"][0]["function"]["parameters"]
    assert sent == {"type": "object", "properties": {
        "examples": {"type": "integer"},  # a property named like a keyword stays
        "where": {"type": "object", "properties": {"additionalProperties": {"type": "string"}}}}}
    assert tool.parameters == parameters  # the caller's schema is not changed
    with served() as (server, provider):
        provider.complete("Count", tools=[tool])
        assert last_body(server)["tools"][0]["function"]["parameters"] == parameters  # OpenAI: as given


# -- reading calls --------------------------------------------------------------------------------


def test_parallel_calls_whole_and_streamed_are_the_same_calls() -> None:
    with served() as (server, provider):
        server.enqueue(server.completion_reply("", tool_calls=[CALL_A, CALL_B]))
        whole = provider.complete("Weather?", tools=TOOLS)
        server.enqueue(server.stream_reply((), tool_calls=[CALL_A, CALL_B], fragments=4))
        parts, final = streamed(provider, tools=TOOLS)
    expected = [("call_A", "get_weather", '{"city": "Paris"}'), ("call_B", "get_time", '{"tz": "Europe/Paris"}')]
    assert triples(whole.tool_calls) == triples(final.tool_calls) == expected
    assert whole.tool_calls[0].arguments == {"city": "Paris"}
    assert whole.finish_reason == final.finish_reason == "tool_calls"
    assert whole.text == "" and whole.message.tool_calls == whole.tool_calls
    # Each fragment is a chunk carrying the call as far as it has arrived, growing to the whole.
    partials = [chunk.tool_call for chunk in parts if chunk.tool_call is not None]
    assert len(partials) > 4 and all(chunk.text == "" for chunk in parts)
    firsts = [p for p in partials if p.id == "call_A"]
    assert firsts[0].raw_arguments == "" and firsts[-1].raw_arguments == '{"city": "Paris"}'
    assert all(b.raw_arguments.startswith(a.raw_arguments) for a, b in zip(firsts, firsts[1:]))


def test_the_worked_example_of_the_protocol_notes() -> None:
    with served() as (server, provider):
        play(server, WORKED_EXAMPLE)
        _, final = streamed(provider, tools=TOOLS)
    assert triples(final.tool_calls) == WORKED_CALLS
    assert final.finish_reason == "tool_calls"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (80, 40)


def test_interleaved_fragments_and_several_in_one_chunk() -> None:
    body = sse(
        {"role": "assistant", "content": "Let me check. "},
        [start(0, "call_A", "get_weather"), start(1, "call_B", "get_time", '{"tz"')],
        [more(1, ': "Europe'), more(0, '{"city"')],
        [more(0, ': "Par'), more(0, 'is"}'), more(1, '/Paris"}')],
    )
    with served() as (server, provider):
        play(server, body)
        parts, final = streamed(provider, tools=TOOLS)
    assert triples(final.tool_calls) == WORKED_CALLS  # in the order they started
    assert "".join(chunk.text for chunk in parts) == "Let me check. "


def test_an_id_and_name_repeated_in_every_fragment_are_taken_once() -> None:
    # The openai SDK ends up with id "call_Acall_A" and name "get_weatherget_weather" (§G.3).
    body = sse(*([start(0, "call_A", "get_weather", piece)] for piece in ('{"city"', ': "Paris"', "}")))
    with served() as (server, provider):
        play(server, body)
        _, final = streamed(provider, tools=TOOLS)
    assert triples(final.tool_calls) == [("call_A", "get_weather", '{"city": "Paris"}')]


def test_whole_calls_reusing_index_zero_are_told_apart_by_their_ids() -> None:
    # Ollama's /v1 sends each call whole, in one delta; some servers give every call index 0.
    body = sse([start(0, "call_A", "get_weather", '{"city": "Paris"}')],
               [start(0, "call_B", "get_time", '{"tz": "Europe/Paris"}')], finish="stop")
    with served() as (server, provider):
        play(server, body)
        _, final = streamed(provider, tools=TOOLS)
        server.enqueue(server.completion_reply("", tool_calls=[CALL_A, CALL_B], finish_reason="stop"))
        whole = provider.complete("Weather?", tools=TOOLS)
    assert triples(final.tool_calls) == triples(whole.tool_calls) == WORKED_CALLS
    assert final.finish_reason == whole.finish_reason == "tool_calls"  # "stop" with calls


def test_a_call_without_an_id_gets_one() -> None:
    with served() as (server, provider):
        play(server, sse([start(0, None, "get_weather", "{}")]))
        _, final = streamed(provider, tools=TOOLS)
        server.enqueue(server.completion_reply("", tool_calls=[("", "get_time", {})]))
        whole = provider.complete("Weather?", tools=TOOLS)
    for call in (*final.tool_calls, *whole.tool_calls):
        assert re.fullmatch(r"call_\w+", call.id)


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_invalid_json_arguments_are_delivered_raw_and_arguments_raises(stream: bool) -> None:
    calls = [("call_bad", "get_weather", '{"city": "Par'), ("call_empty", "get_time", "")]
    with served() as (server, provider):
        if stream:
            server.enqueue(server.stream_reply((), tool_calls=calls))
            _, answer = streamed(provider, tools=TOOLS)
        else:
            server.enqueue(server.completion_reply("", tool_calls=calls))
            answer = provider.complete("Weather?", tools=TOOLS)
    bad, empty = answer.tool_calls
    assert bad.raw_arguments == '{"city": "Par' and "not valid JSON" in bad.arguments_error
    with pytest.raises(ResponseFormatError, match="get_weather"):
        bad.arguments  # noqa: B018
    assert empty.arguments == {}  # "" means no arguments


def test_text_beside_calls_and_a_text_answer_have_their_finish_reasons() -> None:
    with served() as (server, provider):
        server.enqueue(server.completion_reply("Checking.", tool_calls=[CALL_A]))
        completion = provider.complete("Weather?", tools=TOOLS)
        server.enqueue(server.stream_reply(["Check", "ing."], tool_calls=[CALL_A]))
        parts, final = streamed(provider, tools=TOOLS)
    assert completion.text == "Checking." == "".join(chunk.text for chunk in parts)
    assert triples(completion.tool_calls) == triples(final.tool_calls)


def test_a_call_with_no_name_is_a_response_format_error() -> None:
    with served() as (server, provider):
        play(server, sse([{"index": 0, "id": "call_A", "function": {"arguments": "{}"}}]))
        with pytest.raises(ResponseFormatError, match="no function name"):
            streamed(provider, tools=TOOLS)


# -- the history: sending calls and results back --------------------------------------------------


@pytest.mark.parametrize("kind", ["openai", "azure", "mistral", "deepseek"])
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_a_two_turn_exchange_by_hand(kind: str, stream: bool) -> None:
    with served(kind) as (server, provider):
        messages: List[Any] = [pk.Message("user", "Weather in Paris?")]
        if stream:
            _, final = streamed(provider, messages, tools=TOOLS)
            assistant = pk.Message("assistant", "", final.provider_state, final.tool_calls)
        else:
            assistant = provider.complete(messages, tools=TOOLS).message
        assert [call.name for call in assistant.tool_calls] == ["get_weather", "get_time"]
        messages += [assistant, *(call.result(f"{call.name} done") for call in assistant.tool_calls)]
        answer = provider.complete(messages, tools=TOOLS)
        sent = last_body(server)["messages"]
    assert answer.text == "results: get_weather done | get_time done" and answer.finish_reason == "stop"
    assert sent[1]["role"] == "assistant" and sent[1]["content"] is None
    assert [call["function"]["name"] for call in sent[1]["tool_calls"]] == ["get_weather", "get_time"]
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == assistant.tool_calls[0].raw_arguments
    assert [(m["role"], m["tool_call_id"]) for m in sent[2:]] == [
        ("tool", call["id"]) for call in sent[1]["tool_calls"]]
    if kind == "deepseek":  # the thinking of the tool-call turn goes back with it (§H.2)
        assert sent[1]["reasoning_content"] == "thinking about: Weather in Paris?"
    else:
        assert "reasoning_content" not in sent[1] and "reasoning" not in sent[1]


def test_tool_turns_given_as_openai_dicts_are_sent_as_given() -> None:
    history = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_A", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_A", "content": "22°C, sunny"},
    ]
    with served() as (server, provider):
        provider.complete(history, tools=TOOLS)
        assert last_body(server)["messages"] == history


def test_an_error_result_says_so_in_its_text() -> None:
    call = pk.ToolCall("call_A", "get_weather", {"city": "Atlantis"})
    history = [pk.Message("user", "Weather?"), pk.Message("assistant", None, tool_calls=[call])]
    with served() as (server, provider):
        provider.complete([*history, call.result("no such city", is_error=True)])
        assert last_body(server)["messages"][-1]["content"] == "Error: no such city"
        provider.complete([*history, call.result("error: no such city", is_error=True)])
        assert last_body(server)["messages"][-1]["content"] == "error: no such city"
        provider.complete([*history, call.result({"ok": True})])
        assert last_body(server)["messages"][-1]["content"] == '{"ok": true}'
        provider.complete([*history, call.result([pk.Text("a"), pk.Text("b")])])
        assert last_body(server)["messages"][-1]["content"] == "a\nb"


def test_an_image_in_a_tool_result_is_refused_before_sending() -> None:
    call = pk.ToolCall("call_A", "get_weather", {"city": "Paris"})
    image = pk.Image.from_url("https://example.com/map.png")
    history = [pk.Message("user", "Weather?"), pk.Message("assistant", None, tool_calls=[call]),
               call.result([pk.Text("map:"), image])]
    with served() as (server, provider):
        with pytest.raises(UnsupportedFeatureError, match=r"image parts in a tool result.*only text"):
            provider.complete(history)
        assert server.requests == []


def test_mistral_gets_foreign_ids_rewritten_the_same_way_in_calls_and_results() -> None:
    calls = [pk.ToolCall("toolu_01AbCdEf", "get_weather", {"city": "Paris"}),
             pk.ToolCall("call_0fypS1hVX", "get_time", {"tz": "UTC"}), pk.ToolCall("Ab3dE6gH9", "get_time", {})]
    history = [pk.Message("user", "Weather?"), pk.Message("assistant", "", tool_calls=calls),
               *(call.result("ok") for call in reversed(calls))]
    with served("mistral") as (server, provider):
        provider.complete(history, tools=TOOLS)
        provider.complete(history, tools=TOOLS)
        first, second = (request.json()["messages"] for request in server.requests)
    ids = [call["id"] for call in first[1]["tool_calls"]]
    assert all(re.fullmatch(r"[a-zA-Z0-9]{9}", call_id) for call_id in ids) and len(set(ids)) == 3
    assert ids[2] == "Ab3dE6gH9"  # an id Mistral made is kept
    assert [m["tool_call_id"] for m in first[2:]] == ids[::-1]
    assert first == second  # deterministic


def test_mistral_refuses_a_foreign_id_as_mistral_words_it() -> None:
    call = pk.ToolCall("call_0fypS1hVX", "get_weather", {"city": "Paris"})
    history = [pk.Message("user", "Weather?"), pk.Message("assistant", "", tool_calls=[call]), call.result("ok")]
    refused = pytest.raises(InvalidRequestError, match="Tool call id was call_0fypS1hVX but must be a-z, A-Z, "
                                                      "0-9, with a length of 9")
    with served("mistral", cls=OpenAIProvider) as (_, provider), refused:  # a plain client does not rewrite
        provider.complete(history)


def test_deepseek_gets_reasoning_content_on_every_tool_call_turn() -> None:
    call = pk.ToolCall("call_A", "get_weather", {"city": "Paris"})
    history = [pk.Message("user", "Weather?"), pk.Message("assistant", "", tool_calls=[call]), call.result("ok")]
    with served("deepseek") as (server, provider):
        provider.complete(history)  # a turn the caller wrote, with no thinking: the field, empty
        assert last_body(server)["messages"][1]["reasoning_content"] == ""
    with served("deepseek", cls=OpenAIProvider) as (_, provider):
        with pytest.raises(InvalidRequestError, match="Missing reasoning_content field in the assistant message "
                                                      "at message index 1"):
            provider.complete(history)
        provider.complete(history, extra_body={"thinking": {"type": "disabled"}})  # not needed then


# -- what the simulator refuses, as the real API does ---------------------------------------------


@pytest.mark.parametrize(("extra", "message"), [
    ({"tools": []}, "Invalid 'tools': empty array"),
    ({"tools": [{"type": "function", "function": {"name": "get weather"}}]},
     r"Invalid 'tools\[0\].function.name': string does not match pattern"),
    ({"tools": [{"type": "function", "function": {"name": "x" * 65}}]}, "string too long"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]},
     "schema must be a JSON Schema of 'type: \"object\"'"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}],
      "tool_choice": {"type": "function", "function": {"name": "g"}}}, "function 'g', which is not in 'tools'"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "any"},
     "Supported values are: 'none', 'auto', and 'required'"),
    ({"tool_choice": "auto"}, "'tool_choice' is only allowed when 'tools' are specified"),
    ({"parallel_tool_calls": False}, "'parallel_tool_calls' is only allowed when 'tools' are specified"),
], ids=["empty", "bad-name", "long-name", "not-object", "unknown-choice", "bad-choice", "choice-alone",
        "parallel-alone"])
def test_the_simulator_refuses_malformed_tool_requests(extra: Dict[str, Any], message: str) -> None:
    with served() as (_, provider), pytest.raises(InvalidRequestError, match=message) as caught:
        provider.complete("Weather?", extra_body=extra)
    assert caught.value.status_code == 400


def _dicts(*messages: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [{"role": "user", "content": "Weather?"}, *messages]


_CALLS_AB = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "call_A", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}},
    {"id": "call_B", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]}


@pytest.mark.parametrize(("history", "message"), [
    (_dicts({"role": "tool", "tool_call_id": "call_X", "content": "22°C"}),
     "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."),
    (_dicts(_CALLS_AB, {"role": "tool", "tool_call_id": "call_X", "content": "22°C"}),
     "must be a response to a preceeding message with 'tool_calls'"),
    (_dicts(_CALLS_AB, {"role": "tool", "tool_call_id": "call_A", "content": "22°C"},
            {"role": "user", "content": "And?"}),
     "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
     "'tool_call_id'. The following tool_call_ids did not have response messages: call_B"),
    (_dicts(_CALLS_AB), "did not have response messages: call_A, call_B"),
    (_dicts(_CALLS_AB, {"role": "tool", "tool_call_id": "call_A", "content": "1"},
            {"role": "tool", "tool_call_id": "call_B", "content": "2"},
            {"role": "assistant", "content": "Done."},
            {"role": "tool", "tool_call_id": "call_A", "content": "again"}),
     "must be a response to a preceeding message"),
], ids=["no-call", "unknown-id", "unanswered", "unanswered-at-end", "answer-after-text"])
def test_the_simulator_refuses_tool_turns_out_of_order(history: List[Dict[str, Any]], message: str) -> None:
    with served() as (_, provider), pytest.raises(InvalidRequestError, match=re.escape(message)):
        provider.complete(history)


def test_the_simulator_refuses_arguments_that_are_not_a_string() -> None:
    history = _dicts({"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_A", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "tool_call_id": "call_A", "content": "22°C"})
    import requests  # a raw request: provider_kit always sends the arguments as text

    with LoopbackServer("openai") as server:
        reply = requests.post(server.base_url + "/chat/completions",
                              json={"model": "gpt-4o-mini", "messages": history}, timeout=10)
        assert reply.status_code == 400
        assert "Invalid type for 'messages[1].tool_calls[0].function.arguments': expected a string, but got an " \
               "object instead." in reply.text


# -- Azure ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("api_version", ["v1", "2024-10-21"])
def test_azure_tool_calls_streamed_and_not(api_version: str) -> None:
    with served("azure", api_version=api_version) as (server, provider):
        whole = provider.complete("Weather?", tools=TOOLS, tool_choice="get_weather")
        _, final = streamed(provider, tools=TOOLS)
        body = last_body(server)
    assert [call.name for call in whole.tool_calls] == ["get_weather"]
    assert [call.name for call in final.tool_calls] == ["get_weather", "get_time"]
    assert final.tool_calls[0].arguments == {"city": "Weather?"}
    assert body["tools"][0]["function"]["name"] == "get_weather"


def test_azure_refuses_tools_on_an_api_version_before_them() -> None:
    with served("azure", api_version="2023-05-15") as (server, provider):
        with pytest.raises(UnsupportedFeatureError, match=r"tools=.*2023-12-01-preview"):
            provider.complete("Weather?", tools=TOOLS)
        assert server.requests == []


# -- scripted calls, and any split of a stream ------------------------------------------------------


def test_the_tool_calls_quirk_scripts_the_model() -> None:
    with served(quirks={"tool_calls": [("get_time", '{"tz": "UT')]}) as (_, provider):
        _, final = streamed(provider, tools=TOOLS)
        whole = provider.complete("Weather?", tools=TOOLS)
    assert [(c.name, c.raw_arguments) for c in final.tool_calls] == [("get_time", '{"tz": "UT')] == [
        (c.name, c.raw_arguments) for c in whole.tool_calls]


_STREAM_SERVER: Dict[str, Any] = {}


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_split_of_a_tool_call_stream_assembles_the_same_calls(data: st.DataObject) -> None:
    stream = data.draw(st.sampled_from([WORKED_EXAMPLE, sse(
        [start(0, "call_A", "get_weather"), start(1, "call_B", "get_time", '{"tz"')],
        [more(1, ': "Europe/Paris"}'), more(0, '{"city": "Pa')], [more(0, 'ris"}')])]))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=16)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    if "server" not in _STREAM_SERVER:  # one server for every example: starting one per example is slow
        server = LoopbackServer("openai").__enter__()
        _STREAM_SERVER.update(server=server, provider=OpenAIProvider(
            base_url=server.base_url, model="gpt-4o-mini", max_retries=0, timeout=10))
    server, provider = _STREAM_SERVER["server"], _STREAM_SERVER["provider"]
    play(server, stream, [piece for piece in pieces if piece])
    _, final = streamed(provider, tools=TOOLS)
    assert triples(final.tool_calls) == WORKED_CALLS
    assert final.finish_reason == "tool_calls"


@pytest.fixture(scope="module", autouse=True)
def _close_stream_server() -> Iterator[None]:
    yield
    if "server" in _STREAM_SERVER:
        _STREAM_SERVER["provider"].close()
        _STREAM_SERVER["server"].__exit__(None, None, None)
        assert _STREAM_SERVER["server"].errors == []
        _STREAM_SERVER.clear()
