"""Tool calling against ollama-python (0.6.x), the official SDK (PROTOCOLS-2.md §G.8), on the
same loopback server as tests/test_conformance.py (its fixtures and adapters are reused):

* requests: the same tools, assistant tool-call turns and tool results mean the same on the
  wire. The SDK sends less than provider_kit on purpose-free grounds, each difference asserted:
  its pydantic models have no ``id`` or ``function.index`` on a call and no ``tool_call_id`` on
  a message (servers since v0.12.10 route results by id), it leaves out an empty ``content``,
  and its ``Tool`` model keeps only ``type``, ``items``, ``description`` and ``enum`` of each
  property, dropping ``anyOf``, nested ``properties``/``required`` and ``additionalProperties``
  which the server's ``api.ToolProperty`` reads;
* responses and streams: what the SDK parses (names and arguments; it drops the ids) is what
  provider_kit parses, for parallel calls whole and streamed, thinking first, and servers
  that send no ids.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

import pytest
from test_conformance import ADAPTERS, MODELS, _provider, _sdk, _server

from provider_kit import Message, OllamaProvider, Tool, ToolCall, ToolResult
from provider_kit.testing import LoopbackServer, Reply

PROTOCOL = OllamaProvider.TYPE
PROMPT = "Weather and time in Paris?"

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather for a city.",
    "parameters": {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string", "description": "The city."},
        "unit": {"type": "string", "enum": ["c", "f"]}}}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Get the time.",
    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}, "days": {"type": "integer"}}}}}
#: What the server reads and ollama-python's Tool model drops (see the module docstring).
RICH = {"type": "function", "function": {
    "name": "book", "description": "Book a table.",
    "parameters": {"type": "object", "required": ["when"], "additionalProperties": False, "properties": {
        "when": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "party": {"type": "object", "properties": {"size": {"type": "integer"}}, "required": ["size"]}}}}}

CALLS = [ToolCall("call_k3j9x0ab", "get_weather", {"city": "Paris", "unit": "c"}),
         ToolCall("call_p2m7q1zz", "get_time", {"tz": "Europe/Paris"})]


def _sdk_history() -> List[Dict[str, Any]]:
    """The exchange as an ollama-python user writes it (tool_calls as the SDK's models hold them)."""
    return [
        {"role": "user", "content": PROMPT},
        {"role": "assistant", "content": "", "thinking": "Need weather and time.",
         "tool_calls": [{"function": {"name": call.name, "arguments": call.arguments}} for call in CALLS]},
        {"role": "tool", "tool_name": "get_weather", "content": "22°C"},
        {"role": "tool", "tool_name": "get_time", "content": "14:05"},
    ]


def _pk_history() -> List[Message]:
    return [
        Message("user", PROMPT),
        Message("assistant", "", provider_state={PROTOCOL: {"thinking": "Need weather and time."}}, tool_calls=CALLS),
        CALLS[0].result("22°C"),
        ToolResult("call_p2m7q1zz", "14:05"),  # no name: found among the earlier calls
    ]


def _without_what_the_sdk_cannot_send(pk_body: Dict[str, Any]) -> Dict[str, Any]:
    """provider_kit's body minus the fields ollama-python's models have no place for, each
    asserted present with the value Ollama documents (§G.8)."""
    body = json.loads(json.dumps(pk_body))
    for message in body["messages"]:
        if message["role"] == "assistant":
            assert message.pop("content") == ""  # the SDK leaves an empty content out
            for index, (call, sent) in enumerate(zip(CALLS, message["tool_calls"])):
                assert sent.pop("id") == call.id
                assert sent["function"].pop("index") == index
        if message["role"] == "tool":
            assert message.pop("tool_call_id") in {call.id for call in CALLS}
    return body


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_tools_and_tool_turns_mean_what_the_sdk_sends(stream: bool) -> None:
    sdk = _sdk(PROTOCOL)
    adapter = ADAPTERS[PROTOCOL]
    with _server(PROTOCOL) as server:
        with adapter.client(sdk, server) as client:
            adapter.send(client, dict(model=MODELS[PROTOCOL], messages=_sdk_history(), tools=[WEATHER, TIME]), stream)
        with _provider(PROTOCOL, server) as provider:
            tools = [Tool(t["function"]["name"], t["function"]["description"], t["function"]["parameters"])
                     for t in (WEATHER, TIME)]
            if stream:
                list(provider.stream(_pk_history(), tools=tools))
            else:
                provider.complete(_pk_history(), tools=tools)
        sdk_req, pk_req = server.requests

    assert (pk_req.method, pk_req.path) == (sdk_req.method, sdk_req.path)
    assert _without_what_the_sdk_cannot_send(pk_req.json()) == sdk_req.json()


def test_a_rich_schema_is_sent_whole_where_the_sdk_drops_what_the_server_reads() -> None:
    sdk = _sdk(PROTOCOL)
    adapter = ADAPTERS[PROTOCOL]
    with _server(PROTOCOL) as server:
        with adapter.client(sdk, server) as client:
            adapter.send(client, dict(model=MODELS[PROTOCOL], messages=[{"role": "user", "content": "x"}],
                                      tools=[RICH]), False)
        with _provider(PROTOCOL, server) as provider:
            provider.complete("x", tools=[RICH])
        sdk_req, pk_req = server.requests

    assert pk_req.json()["tools"] == [RICH]
    sdk_properties = sdk_req.json()["tools"][0]["function"]["parameters"]
    assert sdk_properties == {"type": "object", "required": ["when"],
                              "properties": {"when": {}, "party": {"type": "object"}}}


# -- responses: the same calls as the SDK parses ----------------------------------------------


def _wire_calls(calls: List[ToolCall], ids: bool = True) -> List[Dict[str, Any]]:
    return [{**({"id": call.id} if ids else {}),
             "function": {"index": index, "name": call.name, "arguments": call.arguments}}
            for index, call in enumerate(calls)]


def _line(message: Dict[str, Any], done: bool = False, **extra: Any) -> bytes:
    return json.dumps({"model": "llama3.2", "created_at": "2026-08-21T10:00:00.1Z",
                       "message": {"role": "assistant", "content": "", **message}, "done": done, **extra},
                      ensure_ascii=False).encode() + b"\n"


UNICODE_CALLS = [ToolCall("call_u1", "search", {"q": "héllo 👋 世界", "n": [1, 2.5, None, True]}),
                 ToolCall("call_u2", "search", {})]


def _stream_cases() -> List[Tuple[str, Any]]:
    done = dict(done=True, done_reason="stop", prompt_eval_count=9, eval_count=4)
    return [
        ("simulator", None),
        ("worked-example", [_line({"thinking": "Need weather"}), _line({"thinking": " and time."}),
                            _line({"tool_calls": _wire_calls(CALLS[:1])}),
                            _line({"tool_calls": [{**_wire_calls(CALLS)[1]}]}), _line({}, **done)]),
        ("batch-in-one-line-and-text", [_line({"content": "Checking."}), _line({"tool_calls": _wire_calls(CALLS)}),
                                        _line({}, **done)]),
        ("no-ids", [_line({"tool_calls": _wire_calls(CALLS, ids=False)}), _line({}, **done)]),
        ("unicode-arguments", [_line({"tool_calls": _wire_calls(UNICODE_CALLS)}), _line({}, **done)]),
    ]


def _sdk_calls(message: Any) -> List[Tuple[str, Dict[str, Any]]]:
    return [(call.function.name, dict(call.function.arguments)) for call in message.tool_calls or ()]


def _pk_calls(calls: Any) -> List[Tuple[str, Dict[str, Any]]]:
    return [(call.name, call.arguments) for call in calls]


@pytest.mark.parametrize("case", _stream_cases(), ids=lambda c: c[0])
def test_streamed_calls_parse_as_the_sdk_parses_them(case: Tuple[str, Any]) -> None:
    sdk = _sdk(PROTOCOL)
    _, lines = case

    def enqueue(server: LoopbackServer) -> None:
        if lines is not None:
            server.enqueue(Reply(chunks=lines, content_type="application/x-ndjson"))

    with _server(PROTOCOL) as server:
        enqueue(server)
        with ADAPTERS[PROTOCOL].client(sdk, server) as client:
            parts = list(client.chat(model=MODELS[PROTOCOL], messages=[{"role": "user", "content": PROMPT}],
                                     tools=[WEATHER, TIME], stream=True))
        enqueue(server)
        with _provider(PROTOCOL, server) as provider:
            chunks = list(provider.stream(PROMPT, tools=[WEATHER, TIME]))

    sdk_calls = [call for part in parts for call in _sdk_calls(part.message)]  # the SDK's docs: extend
    assert _pk_calls(chunks[-1].tool_calls) == sdk_calls and sdk_calls
    assert "".join(c.reasoning or "" for c in chunks) == "".join(p.message.thinking or "" for p in parts)
    assert "".join(c.text for c in chunks) == "".join(p.message.content or "" for p in parts)
    # The SDK says "stop" (§G.8); provider_kit's normalised finish for an answer with calls.
    assert parts[-1].done_reason == "stop" and chunks[-1].finish_reason == "tool_calls"
    if lines is not None and case[0] != "no-ids":
        # The ids the SDK drops are kept: those on the wire.
        wire_ids = [call["id"] for line in lines for call in json.loads(line)["message"].get("tool_calls", ())]
        assert [call.id for call in chunks[-1].tool_calls] == wire_ids


@pytest.mark.parametrize("case", _stream_cases(), ids=lambda c: c[0])
def test_whole_answers_with_calls_parse_as_the_sdk_parses_them(case: Tuple[str, Any]) -> None:
    sdk = _sdk(PROTOCOL)
    name, lines = case
    body = None
    if lines is not None:  # the same answer as one body: what the server aggregates when not streaming
        events = [json.loads(line) for line in lines]
        message = {"role": "assistant", "content": "".join(e["message"]["content"] for e in events),
                   "tool_calls": [call for e in events for call in e["message"].get("tool_calls", ())]}
        thinking = "".join(e["message"].get("thinking", "") for e in events)
        if thinking:
            message["thinking"] = thinking
        body = {**events[-1], "message": message}

    def enqueue(server: LoopbackServer) -> None:
        if body is not None:
            server.enqueue(Reply(json=body))

    with _server(PROTOCOL) as server:
        enqueue(server)
        with ADAPTERS[PROTOCOL].client(sdk, server) as client:
            reply = client.chat(model=MODELS[PROTOCOL], messages=[{"role": "user", "content": PROMPT}],
                                tools=[WEATHER, TIME])
        enqueue(server)
        with _provider(PROTOCOL, server) as provider:
            completion = provider.complete(PROMPT, tools=[WEATHER, TIME])

    assert _pk_calls(completion.tool_calls) == _sdk_calls(reply.message) != []
    assert (completion.reasoning or None) == (reply.message.thinking or None)
    assert completion.text == (reply.message.content or "")
    assert reply.done_reason == "stop" and completion.finish_reason == "tool_calls", name
