"""The shared structured-output step (a reply's text and finish reason -> ``data``/``parsed``, or
``ResponseFormatError``), used alike by ``complete``, a stream's final chunk and ``FakeProvider``;
reasoning, usage details and ``provider_state`` carried through the call flow; the display."""

from __future__ import annotations

import json
import pickle
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from _kinds import CLASSES
from _support import KEY, error_texts, raises

from provider_kit import Completion, Message, ResponseFormatError, StreamChunk, Usage
from provider_kit._call_args import check_call_args
from provider_kit._structured import structured_result
from provider_kit.providers._answers import ParsedAnswer
from provider_kit.providers._calls import ChatCall
from provider_kit.testing import FakeProvider, LoopbackServer


class Invoice:
    """Pydantic-like (``model_json_schema`` and ``model_validate``), without pydantic."""

    def __init__(self, total: float, currency: str = "EUR") -> None:
        if not isinstance(total, (int, float)):
            raise ValueError(f"total must be a number, got {total!r}")
        self.total, self.currency = total, currency

    @classmethod
    def model_json_schema(cls) -> Dict[str, Any]:
        return {"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]}

    @classmethod
    def model_validate(cls, data: Any) -> Invoice:
        if not isinstance(data, dict):
            raise ValueError("Input should be a valid dictionary")
        return cls(**data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Invoice) and (self.total, self.currency) == (other.total, other.currency)

    def __repr__(self) -> str:
        return f"Invoice(total={self.total!r}, currency={self.currency!r})"


class Point:
    """A plain class: built as ``Point(**data)``."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    @classmethod
    def model_json_schema(cls) -> Dict[str, Any]:
        return {"type": "object"}


def _output(schema: Any = None) -> Any:
    return check_call_args("p", "hi", schema=schema, json=None if schema is not None else True).output


# -- the step ----------------------------------------------------------------------------------


def test_json_becomes_data_and_a_class_becomes_parsed() -> None:
    assert structured_result(None, "not json", "stop", provider="p") == (None, None)  # nothing asked
    assert structured_result(_output(), '{"a": [1, 2]}', "stop", provider="p") == ({"a": [1, 2]}, {"a": [1, 2]})
    assert structured_result(_output({"type": "array"}), "[1]", None, provider="p") == ([1], [1])
    data, parsed = structured_result(_output(Invoice), '{"total": 12.5}', "stop", provider="p")
    assert data == {"total": 12.5} and parsed == Invoice(12.5)
    data, parsed = structured_result(_output(Point), '{"x": 1, "y": 2}', "stop", provider="p")
    assert isinstance(parsed, Point) and (parsed.x, parsed.y) == (1, 2)
    # A fenced reply (some servers' JSON modes still add one) is read the same.
    fenced = '```json\n{"total": 3}\n```'
    assert structured_result(_output(Invoice), fenced, "stop", provider="p")[1] == Invoice(3)
    assert structured_result(_output(), '```\n{"a": 1}\n```', "stop", provider="p")[0] == {"a": 1}


def test_a_refusal_is_not_a_parse_error() -> None:
    assert structured_result(_output(Invoice), "I can't help with that.", "content_filter", provider="p") == (
        None, None)


@pytest.mark.parametrize(
    ("output", "text", "finish", "expected"),
    [
        (None, '{"total": 1', "length", "cut short by max_tokens"),
        (None, "Sure! Here is the JSON you asked for", "stop", "the reply is not valid JSON"),
        (None, "  ", "stop", "the reply is empty, not JSON"),
        (Invoice, '{"total": "twelve"}', "stop", "does not fit Invoice (ValueError: total must be a number"),
        (Invoice, "[1, 2]", "stop", "does not fit Invoice"),
        (Point, '{"x": 1}', "stop", "does not fit Point (TypeError"),
        (Point, "[1]", "stop", "expected a JSON object, got list"),
        (None, "[" * 100_000, "stop", "nested too deeply"),
    ],
)
def test_what_cannot_be_used_is_a_response_format_error(output: Any, text: str, finish: str, expected: str) -> None:
    error = raises(ResponseFormatError, structured_result, _output(output), text, finish, provider="p",
                   request_id="req-1")
    assert expected in str(error) and str(error).startswith("p: ")
    assert error.provider == "p" and error.request_id == "req-1" and error.finish_reason == finish
    assert error.body == text[:64 * 1024] and len(str(error)) < 700  # an excerpt, the text in .body
    assert pickle.loads(pickle.dumps(error)).finish_reason == finish


def test_the_excerpt_keeps_both_ends_and_masks_secrets() -> None:
    text = "The key is sk-secret-1234567 " + "x" * 1000 + " THE END"
    error = raises(ResponseFormatError, structured_result, _output(), text, "stop", provider="p",
                   redact=lambda t: t.replace("sk-secret-1234567", "***"))
    assert "sk-secret-1234567" not in " ".join([*error_texts(error), error.body]) and "THE END" in str(error)


# -- through the call flow, for every type: complete and stream agree --------------------------


def _wire_value(kind: str, normalised: str) -> Optional[str]:
    """The wire's finish reason that ``kind`` normalises to ``normalised`` (None: it has none)."""
    return next((wire for wire, value in CLASSES[kind].FINISH_REASONS.items() if value == normalised), None)


def _structured(kind: str) -> type:
    """``kind``'s class, able to ask for JSON (the wire mapping is its own module's job: here
    the hook marks the body so the test sees it ran)."""

    def apply(self: Any, body: Dict[str, Any], call: ChatCall) -> None:
        body["x_output"] = call.output.mode

    return type(f"Structured{CLASSES[kind].__name__}", (CLASSES[kind],),
                {"STRUCTURED_OUTPUT_MODES": frozenset({"schema", "json"}), "_apply_output_format": apply})


def _both(server: LoopbackServer, provider: Any, text: str, finish: Optional[str], **arguments: Any
          ) -> Tuple[Any, List[StreamChunk]]:
    """The completion and the stream of the same scripted reply (an exception stands for either)."""
    results: List[Any] = []
    server.enqueue(server.completion_reply(text, finish_reason=finish))
    server.enqueue(server.stream_reply([text[: len(text) // 2], text[len(text) // 2 :]], finish_reason=finish))
    for call in (lambda: provider.complete("hi", **arguments), lambda: list(provider.stream("hi", **arguments))):
        try:
            results.append(call())
        except ResponseFormatError as error:
            results.append(error)
    return results[0], results[1]


def test_complete_and_stream_build_the_same_data(kind: str, server: LoopbackServer) -> None:
    provider = _structured(kind)(base_url=server.base_url, api_key=KEY, max_retries=0)
    try:
        completion, chunks = _both(server, provider, '{"total": 12.5, "currency": "USD"}', None, schema=Invoice)
        assert server.last_request.json()["x_output"] == "schema"
        assert completion.data == chunks[-1].data == {"total": 12.5, "currency": "USD"}
        assert completion.parsed == chunks[-1].parsed == Invoice(12.5, "USD")
        assert all(chunk.data is None for chunk in chunks[:-1])
        assert "".join(chunk.text for chunk in chunks) == completion.text
        cut, cut_stream = _both(server, provider, '{"total": 1', _wire_value(kind, "length"), json=True)
        assert isinstance(cut, ResponseFormatError) and isinstance(cut_stream, ResponseFormatError)
        assert str(cut) == str(cut_stream) and "cut short by max_tokens" in str(cut)
        refusal = _wire_value(kind, "content_filter")
        if refusal is not None:
            declined, declined_stream = _both(server, provider, "I can't help with that.", refusal, schema=Invoice)
            assert declined.data is None and declined.finish_reason == "content_filter"
            assert declined_stream[-1].data is None and declined.text == "I can't help with that."
        plain = provider.complete("hi")  # no schema: no data, whatever the text
        assert plain.data is None and plain.parsed is None
    finally:
        provider.close()


def test_reasoning_and_provider_state_from_the_parse_hook_reach_both_results(kind: str, server: LoopbackServer) -> None:
    """A type whose parser returns a ``ParsedAnswer``: the completion carries reasoning, usage
    details and provider_state, and a stream answered with a whole JSON body yields the same."""
    base = CLASSES[kind]

    def parse(self: Any, data: Any) -> ParsedAnswer:
        answer = ParsedAnswer.of(base._parse_completion(self, data))
        usage = answer.usage._replace(reasoning_tokens=2, cached_input_tokens=1)
        return ParsedAnswer(answer.text, answer.model, answer.finish_reason, usage, "Let me think.", {"sig": "s1"})

    cls = type(f"Thinking{base.__name__}", (base,), {"_parse_completion": parse})
    provider = cls(base_url=server.base_url, api_key=KEY, max_retries=0)
    try:
        completion = provider.complete("hi")
        assert completion.reasoning == "Let me think." and completion.provider_state == {"sig": "s1"}
        assert completion.usage.reasoning_tokens == 2 and completion.usage.cached_input_tokens == 1
        assert completion.message == Message("assistant", completion.text, {"sig": "s1"})
        if CLASSES[kind].STREAM_DECODER.lines_as_json:
            return  # an NDJSON type reads a JSON-labelled body as its lines, not as one answer
        server.enqueue(server.completion_reply("Hello!"))  # a whole JSON answer to a stream request
        chunks = list(provider.stream("hi"))
        assert [chunk.reasoning for chunk in chunks] == ["Let me think.", "", ""]
        assert "".join(chunk.text for chunk in chunks) == "Hello!"
        assert chunks[-1].provider_state == {"sig": "s1"} and chunks[-1].usage.reasoning_tokens == 2
    finally:
        provider.close()


# -- the fake uses the same step ----------------------------------------------------------------


def test_the_fake_builds_data_with_the_same_step(make_fake: Callable[..., FakeProvider]) -> None:
    fake = make_fake("fake", replies=[
        '{"total": 3}', {"total": 4}, Completion('{"total": 1', finish_reason="length"), "not json",
        Completion("No.", finish_reason="content_filter"),
    ])
    assert fake.complete("a", schema=Invoice).parsed == Invoice(3)
    streamed = list(fake.stream("b", schema=Invoice))
    assert streamed[-1].parsed == Invoice(4) and json.loads("".join(c.text for c in streamed)) == {"total": 4}
    with pytest.raises(ResponseFormatError, match="cut short by max_tokens"):
        fake.complete("c", json=True)
    with pytest.raises(ResponseFormatError, match="not valid JSON"):
        list(fake.stream("d", json=True))
    assert fake.complete("e", schema=Invoice).data is None  # a refusal
    assert fake.complete("f", json=True).data == {"echo": "f"}  # unscripted: JSON all the same
    assert fake.calls[0].kwargs["schema"] is Invoice and "schema" not in fake.calls[-1].kwargs


def test_the_fake_scripts_reasoning(make_fake: Callable[..., FakeProvider]) -> None:
    fake = make_fake("fake", reasoning="First, add it up.")
    completion = fake.complete("total?")
    assert completion.reasoning == "First, add it up." and "add it up" not in completion.text
    chunks = list(fake.stream("total?"))
    assert "".join(chunk.reasoning for chunk in chunks) == completion.reasoning
    assert "".join(chunk.text for chunk in chunks) == completion.text
    assert all(not chunk.text for chunk in chunks if chunk.reasoning)  # thinking never mixed into text
    assert fake.complete("x", reasoning=False).reasoning is None
    scripted = make_fake("scripted", replies=[Completion("42", reasoning="hm", provider_state={"s": 1})])
    assert list(scripted.stream("q"))[-1].provider_state == {"s": 1}


# -- the values --------------------------------------------------------------------------------


def test_new_fields_compare_pickle_replace_and_show() -> None:
    usage = Usage(10, 5, cached_input_tokens=4, cache_creation_input_tokens=2, reasoning_tokens=3)
    completion = Completion('{"total": 1}', "m", "p", "stop", usage, None, 0.2, data={"total": 1},
                            parsed=Invoice(1), reasoning="Adding.\nDone.", provider_state={"sig": "x"})
    assert pickle.loads(pickle.dumps(completion)) == completion
    assert completion._replace(reasoning=None).reasoning is None and completion != completion._replace(data=None)
    assert completion.to_dict()["data"] == {"total": 1} and completion.to_dict()["reasoning"] == "Adding.\nDone."
    assert completion.to_dict()["usage"] == {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15,
                                             "cached_input_tokens": 4, "cache_creation_input_tokens": 2,
                                             "reasoning_tokens": 3}
    assert "data" not in Completion("x").to_dict() and Usage(1, 2).to_dict() == {
        "input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    assert repr(Usage(1, 2, reasoning_tokens=1)) == (
        "Usage(input_tokens=1, output_tokens=2, total_tokens=3, reasoning_tokens=1)")
    shown = repr(completion)
    assert "reasoning:\n    Adding.\n    Done." in shown and '"total": 1' in shown
    assert "parsed: Invoice(total=1" in shown
    assert "cached in" in shown and "reasoning tokens" in shown
    html = completion._repr_html_()
    assert "<details>" in html and "Adding." in html and "&quot;total&quot;: 1" in html
    chunk = StreamChunk("", "stop", usage, "p", reasoning="", data={"a": 1}, parsed={"a": 1})
    assert pickle.loads(pickle.dumps(chunk)) == chunk and "data={'a': 1}" in repr(chunk)
    assert repr(StreamChunk("t")) == "StreamChunk(text='t', finish_reason=None, usage=None, provider=None)"
