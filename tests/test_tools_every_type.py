"""Issue 12's "done when": a two-tool, two-turn exchange with parallel calls runs through
``run_tools`` against the simulator of every provider type (the built-in types and every
preset), streamed and not, within one deadline.

The simulators answer tools alike (``testing/wires/_base.ToolPlan``): a request that offers
tools and ends with a user turn gets one call per tool, in parallel, each argument filled from
the prompt; a request that ends with tool results gets ``"results: "`` and the results joined
by ``" | "``. So the final text proves that both results went back in the protocol's own shape,
and in order.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from typing import Any, List

import pytest
from _kinds import CLASSES, KINDS

from provider_kit import ToolResult, run_tools
from provider_kit.providers import PRESET_TYPES, PRESETS
from provider_kit.testing import LoopbackServer

KEY = "sk-every-type-0123456789"
DEADLINE = 30.0  # one deadline for the whole loop; generous, it only catches hangs
#: Every provider type that has tool calling (a type without it refuses ``tools=``, tested apart).
TOOL_TYPES = [name for name, cls in {**CLASSES, **PRESET_TYPES}.items() if cls.TOOL_CHOICES]
PRESET_PATHS = {preset.name: urllib.parse.urlsplit(preset.base_url).path for preset in PRESETS}


def _provider(name: str, server: LoopbackServer) -> Any:
    if name in PRESET_TYPES:
        return PRESET_TYPES[name](base_url=server.url + PRESET_PATHS[name], api_key=KEY, model="loopback-model",
                                  max_retries=0)
    return CLASSES[name](base_url=server.base_url, api_key=KEY, max_retries=0)


def test_the_built_in_types_all_have_tool_calling() -> None:
    assert set(KINDS) <= set(TOOL_TYPES)


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
@pytest.mark.parametrize("name", TOOL_TYPES)
def test_two_tools_two_turns_of_parallel_calls_through_run_tools(name: str, streamed: bool) -> None:
    ran: List[str] = []
    both_running = threading.Barrier(2, timeout=DEADLINE)  # broken unless the two calls run at once

    def get_weather(city: str) -> str:
        """The weather in a city."""
        both_running.wait()
        ran.append("get_weather")
        return f"rain in {city}"

    def get_time(city: str) -> str:
        """The local time in a city."""
        both_running.wait()
        ran.append("get_time")
        return f"10:42 in {city}"

    chunks: List[Any] = []
    with LoopbackServer(name, api_key=KEY) as server, _provider(name, server) as provider:
        started = time.monotonic()
        answer = run_tools(provider, "Oslo", tools=[get_weather, get_time], timeout=DEADLINE,
                           on_chunk=chunks.append if streamed else None)
        elapsed = time.monotonic() - started
        requests = server.requests
    assert elapsed < DEADLINE
    assert sorted(ran) == ["get_time", "get_weather"]
    assert answer.text == "results: rain in Oslo | 10:42 in Oslo"
    assert answer.tool_calls == () and answer.finish_reason == "stop"
    assert [message.role for message in answer.messages] == ["user", "assistant", "tool", "tool", "assistant"]
    calls = answer.messages[1].tool_calls
    assert [(call.name, call.arguments) for call in calls] == [("get_weather", {"city": "Oslo"}),
                                                               ("get_time", {"city": "Oslo"})]
    assert len({call.id for call in calls}) == 2
    results = [message for message in answer.messages if isinstance(message, ToolResult)]
    assert [result.tool_call_id for result in results] == [call.id for call in calls]
    assert len(requests) == 2 and all(request.json().get("stream", False) is streamed for request in requests
                                      if "stream" in request.json() or streamed)
    if streamed:
        assert {chunk.tool_call.name for chunk in chunks if chunk.tool_call is not None} == {"get_weather",
                                                                                            "get_time"}
        assert "".join(chunk.text for chunk in chunks) == answer.text
