"""``run_tools``: the loop that runs the tools a model asks for, against FakeProvider (its
tool turns are checked as the real APIs check them) and registries of them.

No test sleeps: concurrency is shown with a ``threading.Barrier`` (with a timeout) and hangs
with ``threading.Event``s; time bounds are generous upper bounds that only catch hangs.
"""

from __future__ import annotations

import contextvars
import pickle
import threading
import time
from typing import Any, Callable, Dict, Iterator, List

import pytest
from _kinds import CLASSES, SOME_KIND

from provider_kit import (
    Completion,
    ConfigError,
    MaxTurnsExceededError,
    Message,
    ProviderKitError,
    ProviderRegistry,
    RateLimitError,
    ServerError,
    Tool,
    ToolCall,
    ToolLoopError,
    ToolLoopTimeoutError,
    ToolResult,
    run_tools,
)
from provider_kit.testing import FakeProvider

WAIT = 10.0  # hang detection only
KEY = "sk-tool-loop-secret-0123456789"
NUMBERS = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
           "required": ["a", "b"]}
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

reply = FakeProvider.tool_call_reply


def tool(name: str, function: Callable[..., Any], parameters: Dict[str, Any] = NUMBERS) -> Tool:
    return Tool(name, f"the {name} tool", parameters, function)


def add(a: float, b: float) -> float:
    return a + b


def multiply(a: float, b: float) -> float:
    return a * b


ADD, MULTIPLY = tool("add", add), tool("multiply", multiply)


def results_sent(fake: FakeProvider, call: int) -> List[ToolResult]:
    """The tool results at the end of the ``call``-th request."""
    messages = fake.calls[call].messages
    tail: List[ToolResult] = []
    for message in reversed(messages):
        if not isinstance(message, ToolResult):
            break
        tail.insert(0, message)
    return tail


def tool_threads() -> List[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("provider_kit-tool")]


@pytest.fixture
def no_thread_left() -> Iterator[None]:
    """Every tool thread a test starts has ended by its end (joined with a generous bound)."""
    before = threading.active_count()
    yield
    for thread in tool_threads():
        thread.join(WAIT)
    assert tool_threads() == []
    assert threading.active_count() == before


# --------------------------------------------------------------------------- the exchange


def test_two_tools_two_turns_of_parallel_calls_run_concurrently(no_thread_left: None) -> None:
    barrier = threading.Barrier(2, timeout=WAIT)  # broken (an error result) unless both run at once

    def meeting(function: Callable[[float, float], float]) -> Callable[[float, float], float]:
        def run(a: float, b: float) -> float:
            barrier.wait()
            return function(a, b)
        return run

    tools = [tool("add", meeting(add)), tool("multiply", meeting(multiply))]
    fake = FakeProvider(replies=[
        reply([("add", {"a": 1, "b": 2}), ("multiply", {"a": 3, "b": 4})]),
        reply([("multiply", {"a": 3, "b": 12}), ("add", {"a": 5, "b": 6})]),
        "3 + 12 = 15, 36 and 11",
    ])
    completion = run_tools(fake, "Work it out.", tools=tools, timeout=WAIT)
    assert completion.text == "3 + 12 = 15, 36 and 11" and completion.tool_calls == ()
    assert [(result.name, result.content, result.is_error) for result in results_sent(fake, 1)] == [
        ("add", "3", False), ("multiply", "12", False)]
    assert [(result.name, result.content) for result in results_sent(fake, 2)] == [("multiply", "36"), ("add", "11")]
    roles = [message.role for message in completion.messages]
    assert roles == ["user", "assistant", "tool", "tool", "assistant", "tool", "tool", "assistant"]
    assert completion.messages[-1].text == completion.text
    assert list(completion.messages[:-1]) == fake.calls[2].messages  # what the last call was sent
    assert [tool.name for tool in fake.calls[0].kwargs["tools"]] == ["add", "multiply"]
    assert [call.method for call in fake.calls] == ["complete"] * 3


def test_results_are_sent_in_the_calls_order_whatever_order_the_tools_end_in() -> None:
    second_done = threading.Event()

    def first(a: float, b: float) -> str:
        assert second_done.wait(WAIT)
        return "first"

    def second(a: float, b: float) -> str:
        second_done.set()
        return "second"

    fake = FakeProvider(replies=[reply([("first", {"a": 1, "b": 1}), ("second", {"a": 1, "b": 1})]), "ok"])
    run_tools(fake, "go", tools=[tool("first", first), tool("second", second)], timeout=WAIT)
    assert [result.content for result in results_sent(fake, 1)] == ["first", "second"]
    calls = fake.calls[0].messages  # the assistant turn's ids match the results'
    assert [result.tool_call_id for result in results_sent(fake, 1)] == [
        call.id for call in fake.calls[1].messages[len(calls)].tool_calls]


def test_a_value_other_than_text_is_sent_as_json_and_a_tool_result_as_it_is() -> None:
    def weather(city: str) -> Dict[str, Any]:
        return {"city": city, "celsius": 21}

    def note(city: str) -> ToolResult:
        return ToolResult("whatever-id", "written", is_error=False)

    fake = FakeProvider(replies=[reply([("weather", {"city": "Oslo"}), ("note", {"city": "Oslo"})]), "done"])
    run_tools(fake, "go", tools=[tool("weather", weather, CITY), tool("note", note, CITY)])
    sent = results_sent(fake, 1)
    assert sent[0].content == '{"city": "Oslo", "celsius": 21}'
    assert sent[1].content == "written" and sent[1].tool_call_id == fake.calls[1].messages[1].tool_calls[1].id


def test_system_is_the_first_message_of_the_exchange_and_a_conversation_is_taken() -> None:
    fake = FakeProvider(replies=[reply([("add", {"a": 1, "b": 1})]), "2"])
    history = [Message("user", "hi"), Message("assistant", "hello"), {"role": "user", "content": "1+1?"}]
    completion = run_tools(fake, history, tools=[ADD], system="Be brief.")
    assert [message.role for message in completion.messages[:4]] == ["system", "user", "assistant", "user"]
    assert completion.messages[0].text == "Be brief."
    assert "system" not in fake.calls[0].kwargs or fake.calls[0].kwargs["system"] is None


def test_plain_functions_are_tools_and_their_schema_is_what_the_provider_gets() -> None:
    def get_weather(city: str, unit: str = "celsius") -> str:
        """The weather in a city."""
        return f"rain in {city} ({unit})"

    fake = FakeProvider(replies=[reply([("get_weather", {"city": "Oslo"})]), "Rain."])
    run_tools(fake, "Weather in Oslo?", tools=[get_weather, MULTIPLY])
    (sent, _) = fake.calls[0].kwargs["tools"]
    assert (sent.name, sent.description, sent.function) == ("get_weather", "The weather in a city.", get_weather)
    assert sent.parameters["required"] == ["city"]
    assert results_sent(fake, 1)[0].content == "rain in Oslo (celsius)"


def test_an_answer_without_calls_ends_the_loop_at_once() -> None:
    fake = FakeProvider(replies=["no tools needed"])
    completion = run_tools(fake, "hi", tools=[ADD])
    assert completion.text == "no tools needed" and len(fake.calls) == 1
    assert [message.role for message in completion.messages] == ["user", "assistant"]


def test_call_kwargs_reach_every_call_and_a_forced_choice_only_the_first() -> None:
    fake = FakeProvider(replies=[reply([("add", {"a": 1, "b": 1})]), reply([("add", {"a": 2, "b": 2})]), "4"])
    run_tools(fake, "go", tools=[ADD], tool_choice="required", max_tokens=50, model="m-1")
    assert [call.kwargs.get("tool_choice") for call in fake.calls] == ["required", None, None]
    assert {(call.kwargs["max_tokens"], call.kwargs["model"]) for call in fake.calls} == {(50, "m-1")}
    fake = FakeProvider(replies=[reply([("add", {"a": 1, "b": 1})]), "2"])
    run_tools(fake, "go", tools=[ADD], tool_choice="auto")
    assert [call.kwargs.get("tool_choice") for call in fake.calls] == ["auto", "auto"]


def test_tools_run_in_a_copy_of_the_caller_s_context_and_hooks_in_its_thread() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")
    request_id.set("req-7")
    seen: Dict[str, Any] = {}

    def look(a: float, b: float) -> str:
        seen["tool"] = (request_id.get(), threading.get_ident())
        return "ok"

    def before(call: ToolCall) -> None:
        seen["before"] = threading.get_ident()

    def after(call: ToolCall, result: ToolResult) -> None:
        seen["after"] = threading.get_ident()

    fake = FakeProvider(replies=[reply([("look", {"a": 1, "b": 2})]), "ok"])
    run_tools(fake, "go", tools=[tool("look", look)], before_call=before, after_call=after)
    here = threading.get_ident()
    assert seen["before"] == here and seen["after"] == here
    assert seen["tool"][0] == "req-7" and seen["tool"][1] != here


# --------------------------------------------------------------------------- what the model is told


def test_a_tool_that_raises_becomes_an_error_result_the_model_sees() -> None:
    def weather(city: str) -> str:
        raise LookupError(f"no station near {city}")

    fake = FakeProvider(replies=[reply([("weather", {"city": "Atlantis"})]), "Sorry, no data."])
    completion = run_tools(fake, "Weather in Atlantis?", tools=[tool("weather", weather, CITY)])
    assert completion.text == "Sorry, no data."
    (result,) = results_sent(fake, 1)
    assert result.is_error and result.name == "weather"
    assert result.content == "LookupError: no station near Atlantis"


def test_an_error_result_never_shows_a_key_or_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    service_token = "tok-service-abcdef-987654"
    monkeypatch.setenv("WEATHER_SERVICE_TOKEN", service_token)

    def weather(city: str) -> str:
        raise PermissionError(f"Authorization: Bearer {KEY} refused; token={service_token}")

    fake = FakeProvider(api_key=KEY, replies=[reply([("weather", {"city": "Oslo"})]), "no"])
    run_tools(fake, "go", tools=[tool("weather", weather, CITY)])
    (result,) = results_sent(fake, 1)
    assert result.is_error and result.content.startswith("PermissionError: Authorization: Bearer ")
    assert KEY not in result.content and service_token not in result.content and "***" in result.content
    assert "Traceback" not in result.content and "line " not in result.content


def test_an_error_result_hides_the_key_of_any_provider_in_the_registry() -> None:
    # The registry's other provider (an HTTP one, never called) holds the key a tool leaks.
    http = CLASSES[SOME_KIND]("hosted", base_url="http://127.0.0.1:9/v1", api_key=KEY, model="m")
    fake = FakeProvider("local", replies=[reply([("weather", {"city": "Oslo"})]), "no"])

    def weather(city: str) -> str:
        raise RuntimeError(f"the upstream said: invalid key {KEY}")

    with ProviderRegistry([http, fake], default_provider="local") as registry:
        run_tools(registry, "go", tools=[tool("weather", weather, CITY)])
    (result,) = results_sent(fake, 1)
    assert result.content.startswith("RuntimeError: the upstream said: invalid key ")
    assert KEY not in result.content


def test_a_long_error_message_is_cut() -> None:
    def noisy(city: str) -> str:
        raise ValueError("x" * 5000)

    fake = FakeProvider(replies=[reply([("noisy", {"city": "a"})]), "ok"])
    run_tools(fake, "go", tools=[tool("noisy", noisy, CITY)])
    (result,) = results_sent(fake, 1)
    assert result.content.startswith("ValueError: xxx") and result.content.endswith("...")
    assert len(result.content) <= 1000


def test_an_unknown_tool_is_an_error_result_naming_the_tools() -> None:
    fake = FakeProvider(replies=[reply([("divide", {"a": 1, "b": 0}), ("add", {"a": 1, "b": 2})]), "3"])
    run_tools(fake, "go", tools=[ADD, MULTIPLY])
    unknown, known = results_sent(fake, 1)
    assert unknown.is_error and unknown.content == "unknown tool 'divide'; the tools are 'add', 'multiply'"
    assert (known.is_error, known.content) == (False, "3")


def test_arguments_that_are_not_json_or_do_not_fit_are_error_results_and_the_tool_does_not_run() -> None:
    ran: List[Any] = []

    def record(a: float, b: float) -> str:
        ran.append((a, b))
        return "ran"

    fake = FakeProvider(replies=[reply([
        ("record", '{"a": 1, "b": '),  # cut short: not JSON
        ("record", "[1, 2]"),  # JSON, not an object
        ("record", {"a": 1}),  # b missing
        ("record", {"a": 1, "b": 2, "c": 3}),  # c unknown
        ("record", {"a": 1, "b": 2}),
    ]), "done"])
    run_tools(fake, "go", tools=[tool("record", record)])
    results = results_sent(fake, 1)
    assert [result.is_error for result in results] == [True, True, True, True, False]
    assert results[0].content.startswith("invalid arguments: arguments are not valid JSON")
    assert results[1].content == "invalid arguments: arguments are a JSON list, not an object"
    assert results[2].content == "invalid arguments: missing a required argument: 'b'"
    assert results[3].content == "invalid arguments: got an unexpected keyword argument 'c'"
    assert ran == [(1, 2)]


# --------------------------------------------------------------------------- hooks


def test_before_call_can_refuse_a_call_and_the_model_is_told() -> None:
    ran: List[str] = []

    def delete(city: str) -> str:
        ran.append(city)
        return "deleted"

    def allow(call: ToolCall) -> bool:
        return call.arguments["city"] != "Paris"

    fake = FakeProvider(replies=[reply([("delete", {"city": "Paris"}), ("delete", {"city": "Rome"})]), "ok"])
    run_tools(fake, "go", tools=[tool("delete", delete, CITY)], before_call=allow)
    refused, allowed = results_sent(fake, 1)
    assert refused.is_error and refused.content == "the call was refused: delete was not allowed to run"
    assert (allowed.is_error, allowed.content) == (False, "deleted")
    assert ran == ["Rome"]


def test_before_call_can_answer_a_call_instead_of_the_tool() -> None:
    ran: List[str] = []

    def weather(city: str) -> str:
        ran.append(city)
        return "live"

    def cached(call: ToolCall) -> Any:
        city = call.arguments["city"]
        if city == "Oslo":
            return {"cached": True}
        if city == "Bergen":
            return call.result("rain, as always")
        return None

    fake = FakeProvider(replies=[reply([("weather", {"city": "Oslo"}), ("weather", {"city": "Bergen"}),
                                        ("weather", {"city": "Rome"})]), "ok"])
    run_tools(fake, "go", tools=[tool("weather", weather, CITY)], before_call=cached)
    assert [result.content for result in results_sent(fake, 1)] == ['{"cached": true}', "rain, as always", "live"]
    assert ran == ["Rome"]


def test_before_call_answering_another_call_is_a_config_error() -> None:
    fake = FakeProvider(replies=[reply([("add", {"a": 1, "b": 2})]), "3"])
    with pytest.raises(ConfigError, match="before_call returned a result for call 'other'"):
        run_tools(fake, "go", tools=[ADD], before_call=lambda call: ToolResult("other", "x"))


def test_a_hook_that_raises_stops_the_loop_before_any_tool_of_the_turn_runs() -> None:
    ran: List[str] = []

    def log(city: str) -> str:
        ran.append(city)
        return "x"

    def veto(call: ToolCall) -> None:
        if call.arguments["city"] == "b":
            raise PermissionError("not for this user")

    fake = FakeProvider(replies=[reply([("log", {"city": "a"}), ("log", {"city": "b"})]), "never"])
    with pytest.raises(PermissionError, match="not for this user"):
        run_tools(fake, "go", tools=[tool("log", log, CITY)], before_call=veto)
    assert ran == [] and len(fake.calls) == 1


def test_after_call_sees_every_result_and_may_replace_it() -> None:
    seen: List[Any] = []

    def fails(city: str) -> str:
        raise ValueError("down")

    def after(call: ToolCall, result: ToolResult) -> Any:
        seen.append((call.name, result.content, result.is_error))
        if result.is_error:
            return call.result("unavailable right now, do not retry", is_error=True)
        return None

    fake = FakeProvider(replies=[reply([("fails", {"city": "x"}), ("nope", {}), ("add", {"a": 1, "b": 1})]), "ok"])
    run_tools(fake, "go", tools=[tool("fails", fails, CITY), ADD], after_call=after)
    assert seen[0] == ("fails", "ValueError: down", True) and seen[2] == ("add", "2", False)
    assert seen[1][0] == "nope" and seen[1][2] is True
    assert [result.content for result in results_sent(fake, 1)] == [
        "unavailable right now, do not retry", "unavailable right now, do not retry", "2"]
    with pytest.raises(ConfigError, match="after_call must return a ToolResult or None"):
        run_tools(FakeProvider(replies=[reply([("add", {"a": 1, "b": 1})])]), "go", tools=[ADD],
                  after_call=lambda call, result: "text")


# --------------------------------------------------------------------------- turns and the deadline


def test_more_turns_than_max_turns_raise_with_the_exchange_which_can_be_carried_on() -> None:
    fake = FakeProvider(replies=[reply([("add", {"a": 1, "b": n})]) for n in range(3)] + ["done"])
    with pytest.raises(MaxTurnsExceededError, match=r"still called tools \(add\) after max_turns=2") as raised:
        run_tools(fake, "count", tools=[ADD], max_turns=2)
    assert len(fake.calls) == 2 and isinstance(raised.value, ToolLoopError)
    exchange = raised.value.messages
    assert [message.role for message in exchange] == ["user", "assistant", "tool", "assistant", "tool"]
    completion = run_tools(fake, list(exchange), tools=[ADD], max_turns=2)  # answered: a valid conversation
    assert completion.text == "done" and completion.messages[:5] == exchange


def test_the_timeout_covers_a_hanging_tool_which_is_abandoned_not_joined(no_thread_left: None) -> None:
    release = threading.Event()
    started = threading.Event()

    def hang(city: str) -> str:
        started.set()
        release.wait(WAIT)
        return "late"

    fake = FakeProvider(replies=[reply([("add", {"a": 1, "b": 2}), ("hang", {"city": "x"})]), "never"])
    begun = time.monotonic()
    try:
        with pytest.raises(ToolLoopTimeoutError, match=r"while tools ran \(hang still running") as raised:
            run_tools(fake, "go", tools=[ADD, tool("hang", hang, CITY)], timeout=0.5)
        assert time.monotonic() - begun < WAIT / 2
        assert started.is_set() and not release.is_set()
        assert isinstance(raised.value, TimeoutError) and isinstance(raised.value, ProviderKitError)
        assert [message.role for message in raised.value.messages] == ["user", "assistant"]
        assert len(fake.calls) == 1
    finally:
        release.set()  # the abandoned thread then ends (no_thread_left checks it)


def test_each_model_call_gets_the_time_left() -> None:
    fake = FakeProvider(replies=[reply([("add", {"a": 1, "b": 2})]), "3"])
    run_tools(fake, "go", tools=[ADD], timeout=30)
    first, second = (call.kwargs["timeout"] for call in fake.calls)
    assert 0 < second < first <= 30


def test_a_deadline_spent_before_the_next_model_call_raises_with_the_exchange() -> None:
    begun = time.monotonic()

    def outlast_the_deadline(call: ToolCall, result: ToolResult) -> None:
        # A slow hook (an approval that took long): returns once the 0.2 s deadline is behind.
        while time.monotonic() < begun + 0.3:
            threading.Event().wait(0.01)

    fake = FakeProvider(replies=[reply([("add", {"a": 1, "b": 2})]), "never"])
    with pytest.raises(ToolLoopTimeoutError, match="timeout passed before model call 2") as raised:
        run_tools(fake, "go", tools=[ADD], timeout=0.2, after_call=outlast_the_deadline)
    assert len(fake.calls) == 1
    assert [message.role for message in raised.value.messages] == ["user", "assistant", "tool"]


def test_the_loop_errors_pickle_with_their_exchange() -> None:
    exchange = (Message("user", "hi"), Message("assistant", "", tool_calls=[ToolCall("c1", "add", {"a": 1})]))
    for error in (MaxTurnsExceededError("m", messages=exchange), ToolLoopTimeoutError("t", messages=exchange)):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error) and copy.messages == exchange


# --------------------------------------------------------------------------- registries


def test_run_tools_through_a_registry_falls_back_past_a_provider_that_refuses_the_choice() -> None:
    # Each turn is one registry.complete: the forced first turn falls back past "picky", which
    # cannot force a call; the second turn (choice no longer forced) is picky's again.
    picky = FakeProvider("picky", tool_choices={"auto"}, replies=["4, says picky"])
    able = FakeProvider("able", replies=[reply([("add", {"a": 2, "b": 2})])])
    with ProviderRegistry([picky, able], default_provider="picky") as registry:
        completion = run_tools(registry, "2+2?", tools=[ADD], tool_choice="required", fallbacks=["able"])
    assert (completion.provider, completion.text) == ("picky", "4, says picky")
    assert [call.kwargs.get("tool_choice") for call in able.calls] == ["required"]
    assert [call.kwargs.get("tool_choice") for call in picky.calls] == [None]  # its refusal was not recorded
    assert results_sent(picky, 0)[0].content == "4"
    assert [call.name for call in picky.calls[0].messages[1].tool_calls] == ["add"]  # able's turn, sent on


def test_each_turn_may_fall_back_to_another_provider_with_the_same_tools() -> None:
    outage = ServerError("first: HTTP 503", provider="first", status_code=503)
    first = FakeProvider("first", replies=[reply([("add", {"a": 1, "b": 2})]), outage])
    second = FakeProvider("second", replies=["3"])
    with ProviderRegistry([first, second], default_provider="first") as registry:
        completion = run_tools(registry, "1+2?", tools=[ADD], fallbacks=["second"])
    assert completion.provider == "second"
    assert [tool.name for tool in second.calls[0].kwargs["tools"]] == ["add"]
    assert second.calls[0].messages == first.calls[1].messages  # the same exchange, sent on


# --------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tools": [{"type": "function", "function": {"name": "add", "parameters": NUMBERS}}]},
         r"tools\[0\] \('add'\) has no function to run"),
        ({"tools": [Tool("add", "", NUMBERS)]}, r"tools\[0\] \('add'\) has no function to run"),
        ({"tools": []}, "tools must not be empty"),
        ({"tools": "add"}, "tools must be a list"),
        ({"tools": [ADD], "max_turns": 0}, "max_turns must be a positive integer"),
        ({"tools": [ADD], "max_turns": True}, "max_turns must be a positive integer"),
        ({"tools": [ADD], "timeout": 0}, "timeout must be a positive number"),
        ({"tools": [ADD], "timeout": float("inf")}, "timeout must be a positive number"),
        ({"tools": [ADD], "before_call": "yes"}, "before_call must be a function"),
        ({"tools": [ADD], "after_call": 3}, "after_call must be a function"),
    ],
)
def test_bad_arguments_are_config_errors_before_any_call(kwargs: Dict[str, Any], message: str) -> None:
    fake = FakeProvider()
    with pytest.raises(ConfigError, match=message):
        run_tools(fake, "go", **kwargs)
    assert fake.calls == []


def test_a_target_without_complete_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="target must be a provider or a registry"):
        run_tools("fake", "go", tools=[ADD])


def test_a_provider_error_is_raised_as_complete_raises_it() -> None:
    fake = FakeProvider(replies=[reply([("add", {"a": 1, "b": 2})]), RateLimitError("slow down", provider="fake")])
    with pytest.raises(RateLimitError, match="slow down"):
        run_tools(fake, "go", tools=[ADD])


def test_a_completion_is_returned_with_its_own_fields() -> None:
    scripted = Completion("final", model="m-9", provider="fake", finish_reason="stop")
    fake = FakeProvider(replies=[reply([("add", {"a": 1, "b": 2})]), scripted])
    completion = run_tools(fake, "go", tools=[ADD])
    assert (completion.text, completion.model, completion.finish_reason) == ("final", "m-9", "stop")
    assert completion.messages is not None and scripted.messages is None


# --------------------------------------------------------------------------- streamed turns and totals


def test_on_chunk_streams_every_turn_and_the_answer_is_assembled_from_the_chunks() -> None:
    fake = FakeProvider(replies=[
        reply([("add", {"a": 1, "b": 2}), ("multiply", {"a": 3, "b": 4})], text="Working."),
        "The sums are 3 and 12",
    ])
    seen: List[Any] = []
    completion = run_tools(fake, "Work it out.", tools=[ADD, MULTIPLY], on_chunk=seen.append, timeout=WAIT)
    assert [call.method for call in fake.calls] == ["stream", "stream"]
    assert completion.text == "The sums are 3 and 12" and completion.tool_calls == ()
    streamed_text = "".join(chunk.text for chunk in seen)
    assert streamed_text == "Working.The sums are 3 and 12"
    partial_names = {chunk.tool_call.name for chunk in seen if chunk.tool_call is not None}
    assert partial_names == {"add", "multiply"}
    first_turn = completion.messages[1]
    assert [(call.name, call.arguments) for call in first_turn.tool_calls] == [
        ("add", {"a": 1, "b": 2}), ("multiply", {"a": 3, "b": 4})]
    assert first_turn.text == "Working."
    assert [(result.name, result.content) for result in results_sent(fake, 1)] == [("add", "3"), ("multiply", "12")]


def test_on_chunk_must_be_callable_and_the_target_must_stream() -> None:
    with pytest.raises(ConfigError, match="on_chunk"):
        run_tools(FakeProvider(), "go", tools=[ADD], on_chunk="print")

    class CompleteOnly:
        def complete(self, *args: Any, **kwargs: Any) -> Completion:
            raise AssertionError("never called")

    with pytest.raises(ConfigError, match="stream"):
        run_tools(CompleteOnly(), "go", tools=[ADD], on_chunk=print)


def test_the_answer_s_usage_is_the_sum_of_every_model_call() -> None:
    from provider_kit import Usage

    first = reply([("add", {"a": 1, "b": 2})])._replace(usage=Usage(10, 4, reasoning_tokens=2))
    second = Completion("3", provider="fake", usage=Usage(25, 6, cached_input_tokens=10))
    fake = FakeProvider(replies=[first, second])
    completion = run_tools(fake, "go", tools=[ADD])
    assert completion.usage == Usage(35, 10, 45, cached_input_tokens=10, reasoning_tokens=2)
    assert completion.latency_s >= 0
