"""The clients of the streamed tool-call scenario, per protocol: the floor (a hand-written
``requests`` loop that decodes the stream and joins the argument fragments), provider_kit's
``stream(tools=...)``, and each official SDK's own way of assembling a streamed tool call.

The server answers every request with the same stream: two parallel calls whose arguments arrive
in ``FRAGMENTS`` pieces in all (OpenAI ``delta.tool_calls``, Anthropic ``input_json_delta``;
Ollama sends whole calls, one NDJSON line each, so its row measures two lines, not 400). Every
client returns ``[(id, name, arguments dict)]``, compared with ``EXPECTED`` outside the timed loop.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

import _clients
from _capability_clients import ANTHROPIC_VERSION, PROTOCOLS, Caller, CallSpec, _chat_url, _provider, _session
from _clients import API_KEY, MODELS

#: The argument fragments of the two calls together (the issue's "400 fragments").
FRAGMENTS = 400
#: Two calls with arguments long enough that every fragment carries a few characters.
CALLS: List[Tuple[str, str, Dict[str, Any]]] = [
    ("call_weather01", "get_weather", {"city": "Paris", "days": list(range(1, 15)), "units": "metric",
                                       "detail": "hourly forecast with wind, rain and humidity " * 6}),
    ("call_clock0002", "get_time", {"tz": "Europe/Paris", "format": "iso8601", "zones": ["UTC", "Asia/Tokyo"] * 8,
                                    "note": "the local time and the offsets of the other zones " * 6}),
]
EXPECTED = [(call_id, name, arguments) for call_id, name, arguments in CALLS]
#: The tools every client offers (the server's answer does not depend on them).
TOOLS = [
    {"type": "function", "function": {"name": name, "description": f"{name} tool",
                                      "parameters": {"type": "object", "properties": {}}}}
    for _, name, _ in CALLS
]
ANTHROPIC_TOOLS = [{"name": tool["function"]["name"], "description": tool["function"]["description"],
                    "input_schema": tool["function"]["parameters"]} for tool in TOOLS]


def install_tool_stream(server: Any, copies: int = 4) -> None:
    """Make ``server`` answer every chat request with the two-call stream, forever.

    The simulator checks each request first (its 400 is returned as is: a request the real API
    would refuse); a request it accepts that offers no tools or does not stream is a 400 too.
    Each scripted reply queues its successor; ``copies`` of them allow that many at once.
    """
    simulate = getattr(getattr(server, "_wire", None), "simulate", None)
    if simulate is None:
        raise RuntimeError("provider_kit.testing.LoopbackServer changed: update install_tool_stream")
    reply = server.stream_reply([], tool_calls=CALLS, fragments=FRAGMENTS // len(CALLS))

    def respond(request: Any) -> Any:
        server.enqueue(respond)
        checked = simulate(server, request)
        if checked.status != 200:
            return checked
        body = request.json()
        if not body.get("tools") or body.get("stream") is not True:
            return server.error_reply(400, "benchmark: not a streamed tool request")
        return reply

    server.enqueue(respond, times=copies)


# -- the floor: decode the stream by hand --------------------------------------------------------------


def _floor_openai(lines: Any) -> List[Tuple[str, str, Dict[str, Any]]]:
    calls: Dict[int, List[Any]] = {}
    for line in lines:
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        for choice in json.loads(line[6:]).get("choices") or ():
            for delta in choice["delta"].get("tool_calls") or ():
                entry = calls.get(delta["index"])
                if entry is None:
                    entry = calls[delta["index"]] = [delta.get("id"), delta["function"].get("name"), []]
                entry[2].append(delta["function"].get("arguments") or "")
    return [(entry[0], entry[1], json.loads("".join(entry[2]))) for entry in calls.values()]


def _floor_anthropic(lines: Any) -> List[Tuple[str, str, Dict[str, Any]]]:
    calls: Dict[int, List[Any]] = {}
    for line in lines:
        if not line.startswith(b"data: "):
            continue
        event = json.loads(line[6:])
        kind = event["type"]
        if kind == "content_block_start" and event["content_block"]["type"] == "tool_use":
            block = event["content_block"]
            calls[event["index"]] = [block["id"], block["name"], []]
        elif kind == "content_block_delta" and event["delta"]["type"] == "input_json_delta":
            calls[event["index"]][2].append(event["delta"]["partial_json"])
    return [(entry[0], entry[1], json.loads("".join(entry[2]) or "{}")) for entry in calls.values()]


def _floor_ollama(lines: Any) -> List[Tuple[str, str, Dict[str, Any]]]:
    calls = []
    for line in lines:
        if line:
            for call in json.loads(line)["message"].get("tool_calls") or ():
                function = call["function"]
                calls.append((call.get("id"), function["name"], function["arguments"]))
    return calls


_FLOORS = {"openai": _floor_openai, "anthropic": _floor_anthropic, "ollama": _floor_ollama}


def _floor(protocol: str) -> Any:
    def build(base_url: str) -> Caller:
        session, url = _session(protocol), _chat_url(protocol, base_url)
        if protocol == "anthropic":
            session.headers["anthropic-version"] = ANTHROPIC_VERSION
        decode = _FLOORS[protocol]
        tools = ANTHROPIC_TOOLS if protocol == "anthropic" else TOOLS

        def call(prompt: str) -> Any:
            body: Dict[str, Any] = {"model": MODELS[protocol], "messages": [{"role": "user", "content": prompt}],
                                    "tools": tools, "stream": True}
            if protocol == "anthropic":
                body["max_tokens"] = _clients.ANTHROPIC_MAX_TOKENS
            with session.post(url, json=body, stream=True, timeout=30) as response:
                response.raise_for_status()
                return decode(response.iter_lines())

        return Caller(call, session.close)

    return build


# -- provider_kit ----------------------------------------------------------------------------------------


def _pk(protocol: str) -> Any:
    def build(base_url: str) -> Caller:
        provider = _provider(protocol, base_url)

        def call(prompt: str) -> Any:
            last: Any = None
            for chunk in provider.stream(prompt, tools=TOOLS):
                last = chunk  # a user would show each chunk; the last carries the calls
            return [(c.id, c.name, c.arguments) for c in last.tool_calls]

        return Caller(call, provider.close)

    return build


# -- the SDKs --------------------------------------------------------------------------------------------


def _openai(base_url: str) -> Caller:
    import openai

    client = openai.OpenAI(api_key=API_KEY, base_url=base_url, max_retries=0)

    def call(prompt: str) -> Any:
        with client.chat.completions.stream(model=MODELS["openai"], messages=[{"role": "user", "content": prompt}],
                                            tools=TOOLS) as stream:  # type: ignore[arg-type]
            message = stream.get_final_completion().choices[0].message
        return [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or ()]

    return Caller(call, client.close)


def _anthropic(base_url: str) -> Caller:
    import anthropic

    client = anthropic.Anthropic(api_key=API_KEY, base_url=base_url, max_retries=0)

    def call(prompt: str) -> Any:
        with client.messages.stream(model=MODELS["anthropic"], max_tokens=_clients.ANTHROPIC_MAX_TOKENS,
                                    messages=[{"role": "user", "content": prompt}],
                                    tools=ANTHROPIC_TOOLS) as stream:  # type: ignore[arg-type]
            message = stream.get_final_message()
        return [(block.id, block.name, block.input) for block in message.content if block.type == "tool_use"]

    return Caller(call, client.close)


def _ollama(base_url: str) -> Caller:
    import ollama

    client = ollama.Client(host=base_url)

    def call(prompt: str) -> Any:
        calls = []
        for chunk in client.chat(model=MODELS["ollama"], messages=[{"role": "user", "content": prompt}],
                                 tools=TOOLS, stream=True):
            calls.extend(chunk.message.tool_calls or ())
        # ollama-python drops the ids (PROTOCOLS-2.md §G.8): compared by name and arguments.
        return [(None, c.function.name, dict(c.function.arguments)) for c in calls]

    return Caller(call, getattr(getattr(client, "_client", None), "close", lambda: None))


_SDKS = {"openai": (_openai, "`chat.completions.stream(...).get_final_completion()`"),
         "anthropic": (_anthropic, "`messages.stream(...).get_final_message()`"),
         "ollama": (_ollama, "`chat(stream=True)`, calls gathered with `extend`")}
_NAMES = {"openai": "OpenAI", "anthropic": "Anthropic", "ollama": "Ollama"}


def _specs(protocol: str) -> List[CallSpec]:
    name, (sdk, how) = _NAMES[protocol], _SDKS[protocol]
    return [
        CallSpec(f"requests-{protocol}", f"{name}: requests, stream decoded by hand (floor)", protocol, "requests",
                 _floor(protocol)),
        CallSpec(f"pk-{protocol}", f"{name}: provider_kit `stream(tools=...)`", protocol, f"pk-{protocol}",
                 _pk(protocol), counterpart=protocol),
        CallSpec(protocol, f"{name}: {_clients.BY_KEY[protocol].label} {how}", protocol, protocol, sdk),
    ]


TOOL_STREAM: List[CallSpec] = [spec for protocol in PROTOCOLS for spec in _specs(protocol)]
#: The most provider_kit may cost, as a ratio to the SDK's CPU for the same stream (the issue's targets).
SDK_TARGETS = {"openai": 0.15, "anthropic": 0.30}


def expected_for(protocol: str) -> List[Tuple[Any, str, Dict[str, Any]]]:
    """What every client of ``protocol`` must return (ollama-python drops the ids: its row has none)."""
    return EXPECTED
