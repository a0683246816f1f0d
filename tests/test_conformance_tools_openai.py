"""Tool calling conformance with the openai SDK (PROTOCOLS-2.md §G.1-§G.3): the same call sends
the same ``tools``, ``tool_choice``, ``parallel_tool_calls`` and tool turns; every tool-call
answer and stream the SDK parses (``create``, and ``chat.completions.stream(...)
.get_final_completion()``) is parsed by provider_kit to the same calls. Fixtures and clients are
those of test_conformance.py."""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import pytest
from test_conformance import _OpenAI, _provider, _sdk, _server
from test_openai_tools import TOOLS, WORKED_EXAMPLE, more, sse, start

import provider_kit as pk
from provider_kit.testing import LoopbackServer, Reply

MODEL = "gpt-4o-mini"
_TOOL_DICTS = [tool.to_dict() for tool in TOOLS]
_CALL = pk.ToolCall("call_A", "get_weather", '{"city": "Paris"}')
_HISTORY = [
    {"role": "user", "content": "Weather and time in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_A", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"id": "call_B", "type": "function", "function": {"name": "get_time", "arguments": '{"tz":"Europe/Paris"}'}}]},
    {"role": "tool", "tool_call_id": "call_A", "content": "22°C, sunny"},
    {"role": "tool", "tool_call_id": "call_B", "content": "14:05"},
]
#: provider_kit's own values for the same history: an assistant Message and ToolResults.
_PK_HISTORY = [
    pk.Message("user", "Weather and time in Paris?"),
    pk.Message("assistant", None, tool_calls=[
        _CALL, pk.ToolCall("call_B", "get_time", '{"tz":"Europe/Paris"}')]),
    _CALL.result("22°C, sunny"),
    pk.ToolResult("call_B", "14:05"),
]

#: (id, provider_kit's call arguments, the SDK's create() arguments besides model and messages)
REQUESTS: List[Tuple[str, Dict[str, Any], Dict[str, Any]]] = [
    ("tools", dict(tools=TOOLS), dict(tools=_TOOL_DICTS)),
    ("choice-auto", dict(tools=TOOLS, tool_choice="auto"), dict(tools=_TOOL_DICTS, tool_choice="auto")),
    ("choice-none", dict(tools=TOOLS, tool_choice="none"), dict(tools=_TOOL_DICTS, tool_choice="none")),
    ("choice-required", dict(tools=TOOLS, tool_choice="required", parallel_tool_calls=False),
     dict(tools=_TOOL_DICTS, tool_choice="required", parallel_tool_calls=False)),
    ("choice-named", dict(tools=TOOLS, tool_choice="get_time"),
     dict(tools=_TOOL_DICTS, tool_choice={"type": "function", "function": {"name": "get_time"}})),
    ("functions", dict(tools=[TOOLS[0].to_dict(), TOOLS[1]]), dict(tools=_TOOL_DICTS)),
]


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize(("case", "pk_call", "sdk_call"), REQUESTS, ids=[case[0] for case in REQUESTS])
def test_tool_request_matches_sdk(case: str, pk_call: Dict[str, Any], sdk_call: Dict[str, Any],
                                  stream: bool) -> None:
    sdk = _sdk("openai")
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    with _server("openai") as server:
        with _OpenAI.client(sdk, server) as client:
            _OpenAI.send(client, dict(model=MODEL, messages=messages, **sdk_call), stream)
        with _provider("openai", server) as provider:
            if stream:
                list(provider.stream(messages, **pk_call))
            else:
                provider.complete(messages, **pk_call)
        sdk_req, pk_req = server.requests
    assert pk_req.json() == sdk_req.json()


@pytest.mark.parametrize("as_values", [False, True], ids=["dicts", "values"])
def test_tool_turns_of_a_history_match_sdk(as_values: bool) -> None:
    sdk = _sdk("openai")
    with _server("openai") as server:
        with _OpenAI.client(sdk, server) as client:
            sdk_answer = client.chat.completions.create(model=MODEL, messages=_HISTORY, tools=_TOOL_DICTS)
        with _provider("openai", server) as provider:
            answer = provider.complete(_PK_HISTORY if as_values else _HISTORY, tools=TOOLS)
        sdk_req, pk_req = server.requests
    assert pk_req.json() == sdk_req.json()
    assert answer.text == sdk_answer.choices[0].message.content == "results: 22°C, sunny | 14:05"


# -- answers and streams --------------------------------------------------------------------------


def _sdk_calls(message: Any) -> List[Tuple[str, str, str]]:
    return [(call.id, call.function.name, call.function.arguments) for call in message.tool_calls or ()]


def _pk_calls(calls: Any) -> List[Tuple[str, str, str]]:
    return [(call.id, call.name, call.raw_arguments) for call in calls]


def _whole(calls: List[Tuple[str, str, str]], finish: str = "tool_calls", content: Any = None) -> Dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": MODEL, "choices": [{
        "index": 0, "finish_reason": finish, "logprobs": None,
        "message": {"role": "assistant", "content": content, "refusal": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            for call_id, name, arguments in calls]}}],
        "usage": {"prompt_tokens": 80, "completion_tokens": 40, "total_tokens": 120}}


ANSWERS = {
    "parallel": _whole([("call_A", "get_weather", '{"city": "Paris"}'), ("call_B", "get_time", '{"tz": "UTC"}')]),
    "with-text": _whole([("call_A", "get_weather", '{"city": "Paris"}')], content="Let me check."),
    "invalid-json": _whole([("call_A", "get_weather", '{"city": "Par')]),
    "empty-arguments": _whole([("call_A", "get_time", "")]),
    "stop-with-calls": _whole([("call_A", "get_time", "{}")], finish="stop"),
}


@pytest.mark.parametrize("name", list(ANSWERS))
def test_tool_call_answer_is_read_as_the_sdk_reads_it(name: str) -> None:
    sdk = _sdk("openai")
    with _server("openai") as server:
        server.enqueue(Reply(200, json=ANSWERS[name]), times=2)
        with _OpenAI.client(sdk, server) as client:
            reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "?"}],
                                                   tools=_TOOL_DICTS)
        with _provider("openai", server) as provider:
            ours = provider.complete("?", tools=TOOLS)
    message = reply.choices[0].message
    assert _pk_calls(ours.tool_calls) == _sdk_calls(message)
    assert ours.text == (message.content or "")
    if reply.choices[0].finish_reason == "stop":  # provider_kit says why the turn ended: its calls
        assert ours.finish_reason == "tool_calls"
    else:
        assert ours.finish_reason == reply.choices[0].finish_reason


STREAMS = {
    "worked-example": WORKED_EXAMPLE,
    "interleaved": sse(
        [start(0, "call_A", "get_weather"), start(1, "call_B", "get_time", '{"tz"')],
        [more(1, ': "UTC"}'), more(0, '{"city"')], [more(0, ': "Par'), more(0, 'is"}')]),
    "text-then-calls": sse({"role": "assistant", "content": "Checking. "},
                           [start(0, "call_A", "get_weather", '{"city": "Paris"}')]),
    "one-call-many-fragments": sse([start(0, "call_A", "get_weather")],
                                   *([more(0, piece)] for piece in ('{"', 'city', '": "', "Pa", "ris", '"}'))),
}


def _sdk_final(sdk: Any, server: LoopbackServer) -> Any:
    with _OpenAI.client(sdk, server) as client, client.chat.completions.stream(
            model=MODEL, messages=[{"role": "user", "content": "?"}], tools=_TOOL_DICTS,
            stream_options={"include_usage": True}) as events:
        return events.get_final_completion()


@pytest.mark.parametrize("name", list(STREAMS))
def test_tool_call_stream_is_assembled_as_the_sdk_assembles_it(name: str) -> None:
    sdk = _sdk("openai")
    with _server("openai") as server:
        server.enqueue(Reply(200, chunks=[STREAMS[name]], content_type="text/event-stream"), times=2)
        final = _sdk_final(sdk, server)
        with _provider("openai", server) as provider:
            chunks = list(provider.stream("?", tools=TOOLS))
    choice = final.choices[0]
    assert _pk_calls(chunks[-1].tool_calls) == _sdk_calls(choice.message)
    assert chunks[-1].finish_reason == choice.finish_reason == "tool_calls"
    assert "".join(chunk.text for chunk in chunks) == (choice.message.content or "")
    assert chunks[-1].usage.total_tokens == final.usage.total_tokens


def test_the_simulators_stream_is_assembled_as_the_sdk_assembles_it() -> None:
    sdk = _sdk("openai")
    calls = [("call_A", "get_weather", {"city": "Paris"}), ("call_B", "get_time", '{"tz": "U')]
    with _server("openai") as server:
        server.enqueue(server.stream_reply(["Let ", "me ", "see."], tool_calls=calls, fragments=5), times=2)
        final = _sdk_final(sdk, server)
        with _provider("openai", server) as provider:
            chunks = list(provider.stream("?", tools=TOOLS))
    assert _pk_calls(chunks[-1].tool_calls) == _sdk_calls(final.choices[0].message)
    assert "".join(chunk.text for chunk in chunks) == final.choices[0].message.content == "Let me see."


def test_repeated_ids_and_names_where_provider_kit_does_better_than_the_sdk() -> None:
    # §G.3 rule 2: the SDK concatenates every string field, so a server that repeats id and name
    # in each fragment gives it "call_Acall_A"; provider_kit takes them once.
    sdk = _sdk("openai")
    stream = sse(*([start(0, "call_A", "get_weather", piece)] for piece in ('{"city"', ': "Paris"}')))
    with _server("openai") as server:
        server.enqueue(Reply(200, chunks=[stream], content_type="text/event-stream"), times=2)
        final = _sdk_final(sdk, server)
        with _provider("openai", server) as provider:
            chunks = list(provider.stream("?", tools=TOOLS))
    (sdk_id, sdk_name, sdk_arguments), = _sdk_calls(final.choices[0].message)
    assert (sdk_id, sdk_name) == ("call_Acall_A", "get_weatherget_weather")
    assert _pk_calls(chunks[-1].tool_calls) == [("call_A", "get_weather", sdk_arguments)]
    assert sdk_arguments == '{"city": "Paris"}'

