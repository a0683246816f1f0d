"""Tool calling against the anthropic SDK (issue 12; PROTOCOLS-2 §G.5-§G.7, §H.3).

* requests: the same tools, tool_choice and tool turns (thinking blocks, tool_use, tool_result
  blocks first in one user turn), built by the SDK and by provider_kit, reach the loopback
  server as the same JSON;
* answers: the same bytes, read by ``client.messages.create`` and by
  ``client.messages.stream(...).get_final_message()`` (the SDK's own accumulator, with jiter's
  partial JSON), give the same calls, text, thinking blocks and stop reason as provider_kit.

The SDK and the helpers come from tests/test_conformance.py.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import pytest
from test_conformance import MODELS, _Anthropic, _provider, _sdk, _sdk_anthropic_version, _server

import provider_kit as pk
from provider_kit.testing import LoopbackServer, Reply

WEATHER = pk.Tool("get_weather", "Weather for a city",
                  {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
TIME = pk.Tool("get_time")
TOOLS = [WEATHER, TIME]
SDK_TOOLS = [{"name": "get_weather", "description": "Weather for a city", "input_schema": WEATHER.parameters},
             {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}]
MODEL = MODELS["anthropic"]


def _thinking(text: str) -> Dict[str, Any]:
    """A thinking block as the simulator signs it (it refuses any other on the way back)."""
    from provider_kit.testing.wires._anthropic_features import sign

    return {"type": "thinking", "thinking": text, "signature": sign("thinking", text)}


_PARIS = pk.ToolCall("toolu_01A", "get_weather", {"city": "Paris"})
_NOW = pk.ToolCall("toolu_01B", "get_time", {})
_SDK_USES = [{"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
             {"type": "tool_use", "id": "toolu_01B", "name": "get_time", "input": {}}]


class ToolRequest(NamedTuple):
    id: str
    pk_call: Callable[[], Dict[str, Any]]
    sdk_call: Dict[str, Any]


TOOL_REQUESTS = [
    ToolRequest("tools-auto", lambda: dict(prompt="Weather?", tools=TOOLS, max_tokens=64),
                dict(max_tokens=64, messages=[{"role": "user", "content": "Weather?"}], tools=SDK_TOOLS)),
    ToolRequest("required-one-call",
                lambda: dict(prompt="Weather?", tools=TOOLS, tool_choice="required", parallel_tool_calls=False,
                             max_tokens=64),
                dict(max_tokens=64, messages=[{"role": "user", "content": "Weather?"}], tools=SDK_TOOLS,
                     tool_choice={"type": "any", "disable_parallel_tool_use": True})),
    ToolRequest("named-tool", lambda: dict(prompt="Time?", tools=TOOLS, tool_choice=TIME, max_tokens=64),
                dict(max_tokens=64, messages=[{"role": "user", "content": "Time?"}], tools=SDK_TOOLS,
                     tool_choice={"type": "tool", "name": "get_time"})),
    ToolRequest("none", lambda: dict(prompt="Hi", tools=TOOLS, tool_choice="none", max_tokens=64),
                dict(max_tokens=64, messages=[{"role": "user", "content": "Hi"}], tools=SDK_TOOLS,
                     tool_choice={"type": "none"})),
    # The tool loop with budget thinking: the assistant turn sent back with its thinking block
    # first, then text and tool_use; the results first in one user turn, the user's text after.
    ToolRequest(
        "results-with-thinking",
        lambda: dict(prompt=[
            pk.Message("user", "Weather and time?"),
            pk.Message("assistant", "Checking both.", {"thinking_blocks": [_thinking("Need both.")]},
                       tool_calls=[_PARIS, _NOW]),
            _PARIS.result("22°C, sunny"), _NOW.result("clock offline", is_error=True),
            pk.Message("user", "Anything else?")], tools=TOOLS, reasoning="low", max_tokens=2048),
        dict(max_tokens=2048, tools=SDK_TOOLS, thinking={"type": "enabled", "budget_tokens": 1024}, messages=[
            {"role": "user", "content": "Weather and time?"},
            {"role": "assistant", "content": [_thinking("Need both."), {"type": "text", "text": "Checking both."},
                                              *_SDK_USES]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "22°C, sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_01B", "content": "clock offline", "is_error": True},
                {"type": "text", "text": "Anything else?"}]}])),
    ToolRequest(
        "result-parts-after-a-call-only-turn",
        lambda: dict(prompt=[
            pk.Message("user", "Time?"), pk.Message("assistant", "", tool_calls=[_NOW]),
            pk.ToolResult("toolu_01B", (pk.Text("noon"), pk.Text("UTC")))], tools=TOOLS, max_tokens=64),
        dict(max_tokens=64, tools=SDK_TOOLS, messages=[
            {"role": "user", "content": "Time?"},
            {"role": "assistant", "content": [_SDK_USES[1]]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01B", "content": [
                {"type": "text", "text": "noon"}, {"type": "text", "text": "UTC"}]}]}])),
]


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("case", TOOL_REQUESTS, ids=lambda c: c.id)
def test_tool_request_matches_sdk(case: ToolRequest, stream: bool) -> None:
    sdk = _sdk("anthropic")
    with _server("anthropic") as server:
        with _Anthropic.client(sdk, server) as client:
            _Anthropic.send(client, {"model": MODEL, **case.sdk_call}, stream)
        with _provider("anthropic", server, anthropic_version=_sdk_anthropic_version(sdk)) as provider:
            call = case.pk_call()
            prompt = call.pop("prompt")
            if stream:
                for _ in provider.stream(prompt, **call):
                    pass
            else:
                provider.complete(prompt, **call)
        sdk_req, pk_req = server.requests
    assert pk_req.json() == sdk_req.json()


# -- answers -----------------------------------------------------------------------------------

def _event(name: str, **data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(dict(type=name, **data), ensure_ascii=False)}\n\n"


def _stream_of(body: Dict[str, Any], fragments: int) -> List[str]:
    """``body`` as the API streams it: thinking deltas and their signature, text deltas, each
    tool_use's JSON text in ``fragments`` input_json_delta pieces after an empty one (none for
    ``{}``)."""
    start = dict(body, content=[], stop_reason=None, usage={"input_tokens": 10, "output_tokens": 1})
    events = [_event("message_start", message=start)]
    for index, block in enumerate(body["content"]):
        kind = block["type"]
        if kind == "thinking":
            events.append(_event("content_block_start", index=index,
                                 content_block={"type": "thinking", "thinking": "", "signature": ""}))
            events.append(_event("content_block_delta", index=index,
                                 delta={"type": "thinking_delta", "thinking": block["thinking"]}))
            events.append(_event("content_block_delta", index=index,
                                 delta={"type": "signature_delta", "signature": block["signature"]}))
        elif kind == "text":
            events.append(_event("content_block_start", index=index, content_block={"type": "text", "text": ""}))
            events.append(_event("content_block_delta", index=index,
                                 delta={"type": "text_delta", "text": block["text"]}))
        else:
            events.append(_event("content_block_start", index=index, content_block=dict(block, input={})))
            text = json.dumps(block["input"], ensure_ascii=False) if block["input"] else ""
            if text:
                size = max(1, -(-len(text) // fragments))
                pieces = ["", *(text[i:i + size] for i in range(0, len(text), size))]
                events += [_event("content_block_delta", index=index,
                                  delta={"type": "input_json_delta", "partial_json": piece}) for piece in pieces]
        events.append(_event("content_block_stop", index=index))
    events.append(_event("message_delta", delta={"stop_reason": body["stop_reason"], "stop_sequence": None},
                         usage={"output_tokens": 30}))
    events.append(_event("message_stop"))
    return events


def _body(*content: Dict[str, Any], stop_reason: str = "tool_use") -> Dict[str, Any]:
    return {"id": "msg_01", "type": "message", "role": "assistant", "model": MODEL, "content": list(content),
            "stop_reason": stop_reason, "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 30}}


_ANSWERS = {
    "thinking-text-two-calls": _body({"type": "thinking", "thinking": "Need weather and time.", "signature": "EqQB"},
                                     {"type": "text", "text": "Checking both."}, *_SDK_USES),
    "three-parallel-unicode": _body(
        *_SDK_USES, {"type": "tool_use", "id": "toolu_01C", "name": "get_weather",
                     "input": {"city": "Zürich — 東京", "note": 'a "quote" \\ and\nnewline', "n": [1, 2.5, None]}}),
    "no-argument-call-only": _body(_SDK_USES[1]),
    "interleaved-text": _body({"type": "text", "text": "First, "}, _SDK_USES[0], {"type": "text", "text": "then."},
                              _SDK_USES[1]),
    "call-then-max-tokens": _body({"type": "text", "text": "Let me check."}, _SDK_USES[0], stop_reason="max_tokens"),
}


class Seen(NamedTuple):
    calls: List[Tuple[str, str, Any]]
    text: str
    thinking: List[Dict[str, Any]]
    finish: Optional[str]


_FINISH = {"tool_use": "tool_calls", "end_turn": "stop", "max_tokens": "length"}


def _sdk_seen(message: Any) -> Seen:
    return Seen([(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"],
                "".join(b.text for b in message.content if b.type == "text"),
                [b.model_dump(exclude_none=True) for b in message.content if b.type == "thinking"],
                _FINISH.get(message.stop_reason, message.stop_reason))


def _pk_seen(done: Any, chunks: Optional[List[pk.StreamChunk]] = None) -> Seen:
    if chunks is not None:
        last = chunks[-1]
        calls, text, state, finish = last.tool_calls, "".join(c.text for c in chunks), last.provider_state, \
            last.finish_reason
    else:
        calls, text, state, finish = done.tool_calls, done.text, done.provider_state, done.finish_reason
    return Seen([(c.id, c.name, c.arguments) for c in calls], text, (state or {}).get("thinking_blocks", []), finish)


@pytest.mark.parametrize("stream, fragments", [(False, 0), (True, 1), (True, 7)],
                         ids=["create", "stream-whole-json", "stream-7-fragments"])
@pytest.mark.parametrize("case", list(_ANSWERS), ids=list(_ANSWERS))
def test_tool_calls_are_read_as_the_sdk_reads_them(case: str, stream: bool, fragments: int) -> None:
    sdk = _sdk("anthropic")
    body = _ANSWERS[case]
    events = _stream_of(body, fragments or 1)
    call = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "go"}], "tools": SDK_TOOLS}
    with _server("anthropic") as server:
        def reply(_: LoopbackServer) -> Reply:
            if stream:
                return Reply(200, chunks=events, content_type="text/event-stream; charset=utf-8")
            return Reply(200, json=body)

        server.enqueue(reply(server), times=2)
        with _Anthropic.client(sdk, server) as client:
            if stream:
                with client.messages.stream(**call) as sdk_events:
                    message = sdk_events.get_final_message()
            else:
                message = client.messages.create(**call)
        with _provider("anthropic", server) as provider:
            if stream:
                chunks = list(provider.stream("go", tools=TOOLS, max_tokens=64))
                pk_seen = _pk_seen(None, chunks)
            else:
                pk_seen = _pk_seen(provider.complete("go", tools=TOOLS, max_tokens=64))
    sdk_seen = _sdk_seen(message)
    expected_finish = "length" if body["stop_reason"] == "max_tokens" else "tool_calls"
    assert pk_seen == sdk_seen._replace(finish=expected_finish)


def test_the_simulators_tool_answers_read_the_same_for_the_sdk_and_provider_kit() -> None:
    """The simulator's own answers (thinking, then parallel tool_use; streamed in fragments)."""
    sdk = _sdk("anthropic")
    call = {"model": MODEL, "max_tokens": 2048, "messages": [{"role": "user", "content": "Weather?"}],
            "tools": SDK_TOOLS, "thinking": {"type": "enabled", "budget_tokens": 1024}}
    with _server("anthropic") as server:
        with _Anthropic.client(sdk, server) as client:
            whole = client.messages.create(**call)
            with client.messages.stream(**call) as events:
                final = events.get_final_message()
        with _provider("anthropic", server) as provider:
            done = provider.complete("Weather?", tools=TOOLS, reasoning="low", max_tokens=2048)
            chunks = list(provider.stream("Weather?", tools=TOOLS, reasoning="low", max_tokens=2048))

    def shape(seen: Seen) -> Tuple[Any, ...]:  # ids are fresh per answer
        return ([(name, arguments) for _, name, arguments in seen.calls], seen.text, seen.thinking, seen.finish)

    assert shape(_pk_seen(done)) == shape(_pk_seen(None, chunks)) == shape(_sdk_seen(whole)._replace(
        finish="tool_calls")) == shape(_sdk_seen(final)._replace(finish="tool_calls"))
    assert [name for name, _ in shape(_pk_seen(done))[0]] == ["get_weather", "get_time"]
