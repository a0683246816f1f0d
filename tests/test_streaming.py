"""Tests for provider_kit._streaming: line splitting, SSE and NDJSON framing over byte chunks."""

from __future__ import annotations

import copy
import itertools
import json
import pickle
import time
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provider_kit._streaming import (
    DEFAULT_MAX_LINE_BYTES,
    SSEEvent,
    _split,
    iter_ndjson,
    iter_sse,
    load_json,
)
from provider_kit.errors import ResponseFormatError

# --- helpers -----------------------------------------------------------------------------------


def iter_lines(chunks: Iterable[bytes], *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[bytes]:
    """The line splitter under ``iter_sse`` (lines end with LF, CR or CRLF), tested on its own."""
    return _split(chunks, max_line_bytes, lf_only=False)


def split_at(data: bytes, cuts: Iterable[int]) -> List[bytes]:
    """``data`` cut at the given offsets; repeated offsets give empty chunks, as a reader may."""
    bounds = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def bytewise(data: bytes) -> List[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def outcome(
    decoder: Callable[..., Iterator[Any]], chunks: Sequence[bytes], **kw: Any
) -> Tuple[str, Optional[str]]:
    """What a decoder yields before it stops, and the ResponseFormatError message if it raised.

    Any other exception propagates and fails the test. ``repr`` keeps NaN comparable.
    """
    items: List[Any] = []
    try:
        for item in decoder(iter(chunks), **kw):
            items.append(item)
    except ResponseFormatError as exc:
        assert exc.provider is None
        return repr(items), str(exc)
    return repr(items), None


def ev(
    data: str = "",
    event: Optional[str] = None,
    id: Optional[str] = None,
    retry: Optional[int] = None,
) -> SSEEvent:
    return SSEEvent(event, data, id, retry)


# --- the example streams of PROTOCOLS.md -------------------------------------------------------

OPENAI_STREAM = b"""\
data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"r4N7vQ2m"}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"p9K3xT6w"}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null,"obfuscation":""}

data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}

data: [DONE]

"""

ANTHROPIC_STREAM = b"""\
event: message_start
data: {"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-opus-5", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}

event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 0}

event: message_delta
data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 15}}

event: message_stop
data: {"type": "message_stop"}

"""

OLLAMA_STREAM = b"""\
{"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00","message":{"role":"assistant","content":"The"},"done":false}
{"model":"llama3.2","created_at":"2023-08-04T08:52:19.397406455-07:00","message":{"role":"assistant","content":" sky"},"done":false}
{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":26,"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000}
"""


@pytest.mark.parametrize(
    "chunking", [lambda b: [b], bytewise, lambda b: split_at(b, range(0, len(b), 7))]
)
def test_openai_example_stream(chunking: Callable[[bytes], List[bytes]]) -> None:
    events = list(iter_sse(chunking(OPENAI_STREAM)))
    assert [e.event for e in events] == [None] * 5
    assert events[-1] == ev("[DONE]")
    chunks = [json.loads(e.data) for e in events[:-1]]
    assert [c["choices"][0]["delta"].get("content") for c in chunks[:3]] == ["", "Hello", None]
    assert chunks[2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[3]["choices"] == [] and chunks[3]["usage"]["total_tokens"] == 11


@pytest.mark.parametrize(
    "chunking", [lambda b: [b], bytewise, lambda b: split_at(b, range(0, len(b), 5))]
)
def test_anthropic_example_stream(chunking: Callable[[bytes], List[bytes]]) -> None:
    events = list(iter_sse(chunking(ANTHROPIC_STREAM)))
    assert [e.event for e in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    bodies = [json.loads(e.data) for e in events]
    assert [b["type"] for b in bodies] == [e.event for e in events]
    assert [b["delta"]["text"] for b in bodies if b["type"] == "content_block_delta"] == [
        "Hello",
        "!",
    ]
    assert bodies[6]["usage"] == {"output_tokens": 15}
    assert all(e.id is None and e.retry is None for e in events)


@pytest.mark.parametrize(
    "chunking", [lambda b: [b], bytewise, lambda b: split_at(b, range(0, len(b), 3))]
)
def test_ollama_example_stream(chunking: Callable[[bytes], List[bytes]]) -> None:
    values = list(iter_ndjson(chunking(OLLAMA_STREAM)))
    assert [v["message"]["content"] for v in values] == ["The", " sky", ""]
    assert [v["done"] for v in values] == [False, False, True]
    assert values[-1]["eval_count"] == 282 and values[-1]["done_reason"] == "stop"


# --- iter_lines ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        ([b"a\nb\n"], [b"a", b"b"]),
        ([b"a\r\nb\r\n"], [b"a", b"b"]),
        ([b"a\rb\r"], [b"a", b"b"]),
        ([b"a\n\r\nb\r\rc"], [b"a", b"", b"b", b"", b"c"]),
        ([b"a\r", b"\nb"], [b"a", b"b"]),  # psf/requests#3980: no spurious blank line
        ([b"a\r", b"", b"\nb"], [b"a", b"b"]),  # an empty read between CR and LF
        ([b"a\r", b"\n", b"\n"], [b"a", b""]),
        ([b"a\r", b"\r\n"], [b"a", b""]),
        ([b"a\n", b"\n"], [b"a", b""]),
        ([b"ab", b"c", b"d\ne"], [b"abcd", b"e"]),  # the unterminated tail is yielded too
        ([b"\n"], [b""]),
        ([b""], []),
        ([], []),
        # only CR/LF split: not VT, FF, FS, NEL, U+2028 (str.splitlines would split on all five)
        ([b"x\x0by\x0cz\x1c\xc2\x85\xe2\x80\xa8!\n"], [b"x\x0by\x0cz\x1c\xc2\x85\xe2\x80\xa8!"]),
    ],
)
def test_iter_lines_endings(chunks: List[bytes], lines: List[bytes]) -> None:
    assert list(iter_lines(iter(chunks))) == lines


def test_iter_lines_accepts_a_line_of_exactly_max_bytes() -> None:
    assert list(iter_lines([b"abcd\nab", b"cd"], max_line_bytes=4)) == [b"abcd", b"abcd"]


@pytest.mark.parametrize(
    "chunks", [[b"abcde\n"], [b"ab", b"cd", b"e\n"], [b"abcd", b"e"], [b"x\nabcde"]]
)
def test_iter_lines_rejects_a_longer_line(chunks: List[bytes]) -> None:
    with pytest.raises(ResponseFormatError, match="longer than 4 bytes"):
        list(iter_lines(chunks, max_line_bytes=4))


@pytest.mark.parametrize(
    "decode", [iter_lines, iter_sse, iter_ndjson], ids=["lines", "sse", "ndjson"]
)
def test_endless_line_is_refused_with_bounded_memory(decode: Callable[..., Iterator[Any]]) -> None:
    # An endless stream with no line end must fail, not buffer forever.
    with pytest.raises(ResponseFormatError):
        list(decode(itertools.repeat(b"data: xxxxxxxxx"), max_line_bytes=1000))


def test_default_max_line_bytes_is_generous() -> None:
    assert DEFAULT_MAX_LINE_BYTES >= 1024 * 1024
    line = b"d" * (DEFAULT_MAX_LINE_BYTES + 1)
    with pytest.raises(ResponseFormatError):
        list(iter_lines([line]))


def test_long_line_in_small_chunks_is_linear() -> None:
    # 64 Ki chunks of 64 bytes: re-scanning or re-joining the buffer per chunk would copy
    # ~128 GiB and take minutes; a linear splitter takes milliseconds. The bound only
    # detects that hang.
    chunks = [b"x" * 64] * 65536 + [b"\nend"]
    started = time.perf_counter()
    lines = list(iter_lines(chunks))
    assert time.perf_counter() - started < 3.0
    assert [len(line) for line in lines] == [64 * 65536, 3]


# --- incremental delivery ------------------------------------------------------------------------


def _first_then_fail(first: bytes, log: List[str]) -> Iterator[bytes]:
    log.append("first chunk read")
    yield first
    log.append("advanced")
    raise AssertionError("the decoder read past the chunk that completed the item")


@pytest.mark.parametrize(
    ("decode", "chunk", "expected"),
    [
        (iter_lines, b"abc\n", b"abc"),
        (iter_lines, b"abc\r", b"abc"),  # a final CR ends the line now, not after the next read
        (iter_sse, b"data: x\n\n", ev("x")),
        (iter_sse, b"data: x\r\n\r", ev("x")),
        (iter_ndjson, b'{"a": 1}\n', {"a": 1}),
    ],
)
def test_items_are_yielded_before_the_next_read(
    decode: Callable[..., Iterator[Any]], chunk: bytes, expected: Any
) -> None:
    log: List[str] = []
    items = decode(_first_then_fail(chunk, log))
    assert next(items) == expected
    assert log == ["first chunk read"]
    items.close()


# --- SSE -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "events"),
    [
        (b"data: a\r\ndata: b\r\n\r\n", [ev("a\nb")]),
        (b"data: a\rdata: b\r\revent: e\rdata: c\r\r", [ev("a\nb"), ev("c", "e")]),
        (b"data: a\n\r\ndata: b\r\rdata: c\r\n\n", [ev("a"), ev("b"), ev("c")]),
        (b": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\ndata: x\n\n", [ev("x")]),
        (b"data: x\n: keep-alive\ndata: y\n\n", [ev("x\ny")]),
        (b"data:x\n\n", [ev("x")]),
        (b"data:  x \n\n", [ev(" x ")]),  # only one leading space is removed
        (b"data\n\n", [ev("")]),  # a field without a colon has an empty value
        (b"data\ndata\n\n", [ev("\n")]),
        (b"event\ndata: x\n\n", [ev("x", "")]),
        (b"data: a:b: c\n\n", [ev("a:b: c")]),  # split at the first colon only
        (b"event: e\n\n", [ev("", "e")]),
        (b"foo: bar\nData: x\nevents: e\n\n", []),  # unknown (and case-different) fields
        (b"\n\n\n", []),
        (b"data: a\n\ndata: b\n", [ev("a")]),  # unterminated last event is dropped
        (b"data: a\n\ndata: b", [ev("a")]),
        (b"\xef\xbb\xbfdata: x\n\n", [ev("x")]),  # BOM at the start of the stream
        (b"data: a\n\n\xef\xbb\xbfdata: b\n\n", [ev("a")]),  # ... and only there
        (b"data: a\xe2\x80\xa8b\xc2\x85c\n\n", [ev("a\u2028b\x85c")]),  # raw U+2028 doesn't split
        (b"data: caf\xc3\xa9 \xf0\x9f\x98\x80\n\n", [ev("caf\u00e9 \U0001f600")]),
    ],
)
def test_sse_parsing(stream: bytes, events: List[SSEEvent]) -> None:
    assert list(iter_sse([stream])) == events
    assert list(iter_sse(bytewise(stream))) == events


def test_sse_crlf_straddling_chunks_is_one_line_end() -> None:
    # With psf/requests#3980 the LF would read as a blank line and dispatch "a" on its own.
    assert list(iter_sse([b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"])) == [ev("a\nb")]


def test_sse_bom_split_across_chunks() -> None:
    assert list(iter_sse([b"\xef", b"\xbb", b"\xbfdata: x\n\n"])) == [ev("x")]


def test_sse_id_persists_and_nul_ids_are_ignored() -> None:
    stream = b"id: 1\ndata: a\n\ndata: b\n\nid: 2\x00\ndata: c\n\nid\ndata: d\n\n"
    assert list(iter_sse([stream])) == [
        ev("a", id="1"),
        ev("b", id="1"),
        ev("c", id="1"),
        ev("d", id=""),
    ]


def test_sse_blank_line_without_new_fields_does_not_dispatch() -> None:
    # The last id persists but by itself sets nothing; the openai SDK would emit an extra event.
    assert list(iter_sse([b"id: 7\n\n\n\ndata: x\n\n\n"])) == [ev("", id="7"), ev("x", id="7")]
    assert list(iter_sse([b"id: \x00\n\n"])) == []


@pytest.mark.parametrize(
    "value", [b"15x", b"-1", b"+1", b" 1", b"1 5", b"", b"1_0", b"\xc2\xb2", b"\xd9\xa3"]
)
def test_sse_retry_must_be_ascii_digits(value: bytes) -> None:
    assert list(iter_sse([b"retry: " + value + b"\n\n"])) == []
    assert list(iter_sse([b"retry: 10\nretry: " + value + b"\n\n"])) == [ev(retry=10)]


def test_sse_retry_digits() -> None:
    stream = b"retry: 1500\ndata: a\n\ndata: b\n\nretry:0042\n\n"
    assert list(iter_sse([stream])) == [ev("a", retry=1500), ev("b"), ev(retry=42)]


def test_sse_retry_too_many_digits_does_not_escape() -> None:
    # int() refuses > sys.get_int_max_str_digits() digits on 3.11+ (and recent 3.9/3.10).
    events = list(iter_sse([b"retry: " + b"9" * 5000 + b"\n\ndata: x\n\n"]))
    assert events[-1] == ev("x") and len(events) <= 2


@pytest.mark.parametrize(
    "chunks",
    [
        [b"data: \xff\n\n"],
        [b"data: \xc3\n\n"],
        [b"\xff: comment\n"],
        [b"data: ok\n\n", b"data: \xed\xa0\x80\n\n"],
    ],
)
def test_sse_invalid_utf8_is_a_format_error(chunks: List[bytes]) -> None:
    with pytest.raises(ResponseFormatError, match="not UTF-8") as info:
        list(iter_sse(chunks))
    assert isinstance(info.value.__cause__, UnicodeDecodeError)
    assert info.value.provider is None


def test_sse_utf8_sequence_split_across_chunks() -> None:
    assert list(iter_sse([b"data: \xc3", b"\xa9\n\n"])) == [ev("\u00e9")]


# --- NDJSON --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "values"),
    [
        (b'{"a":1}\r\n{"b":2}\r\n', [{"a": 1}, {"b": 2}]),
        (b'\n  \n{"a":1}\n\t\r\n\n[1]\n', [{"a": 1}, [1]]),
        (b'{"a":1}\n"last"', [{"a": 1}, "last"]),  # final line without a newline
        (b'{"a":\r1}\n', [{"a": 1}]),  # a lone CR is JSON whitespace, not a line end
        (b'{"s":"a\xe2\x80\xa8b"}\n', [{"s": "a\u2028b"}]),
        (b"", []),
    ],
)
def test_ndjson_parsing(stream: bytes, values: List[Any]) -> None:
    assert list(iter_ndjson([stream])) == values
    assert list(iter_ndjson(bytewise(stream))) == values


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (b'{"a":1}\n{"a":\n', "not valid JSON"),
        (b"data: {}\n", "not valid JSON"),
        (b'{"a":"\xff"}\n', "not UTF-8"),
        (b'{\x00"\x00a\x00"\x00:\x001\x00}\x00\n', "not valid JSON"),  # never guessed as UTF-16
        (b"[" * 200_000 + b"\n", "not valid JSON"),  # RecursionError inside json
        (b"1" * 5000 + b"\n", "not valid JSON"),  # the int digit limit (a ValueError)
    ],
    ids=["truncated", "sse-in-ndjson", "bad-utf8", "utf16-like", "deep-nesting", "huge-int"],
)
def test_ndjson_bad_line_is_a_format_error(stream: bytes, reason: str) -> None:
    with pytest.raises(ResponseFormatError, match=reason) as info:
        list(iter_ndjson([stream]))
    assert info.value.provider is None
    assert len(str(info.value)) < 260


def test_ndjson_error_quotes_a_short_excerpt() -> None:
    with pytest.raises(ResponseFormatError) as info:
        list(iter_ndjson([b'{"oops": ' + b"x" * 10_000 + b"\n"]))
    message = str(info.value)
    assert '{"oops": xxx' in message and message.endswith("...")
    assert len(message) < 260


def test_ndjson_values_before_a_bad_line_are_delivered() -> None:
    assert outcome(iter_ndjson, [b'{"a":1}\n', b"nope\n", b'{"b":2}\n'])[0] == repr([{"a": 1}])


# --- SSEEvent ------------------------------------------------------------------------------------


def test_sse_event_value_semantics() -> None:
    event = SSEEvent("message_start", '{"a": 1}', "7", 100)
    assert (event.event, event.data, event.id, event.retry) == (
        "message_start",
        '{"a": 1}',
        "7",
        100,
    )
    assert event == SSEEvent(event="message_start", data='{"a": 1}', id="7", retry=100)
    assert event != SSEEvent("message_start", '{"a": 1}', "8", 100)
    assert event != ("message_start", '{"a": 1}', "7", 100)
    assert (
        len({event, copy.copy(event), pickle.loads(pickle.dumps(event)), copy.deepcopy(event)}) == 1
    )
    assert repr(event) == "SSEEvent(event='message_start', data='{\"a\": 1}', id='7', retry=100)"
    assert SSEEvent() == SSEEvent(None, "", None, None)
    with pytest.raises(AttributeError):
        event.data = "changed"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del event.event
    with pytest.raises(AttributeError):
        event.other = 1  # type: ignore[attr-defined]


# --- property tests ------------------------------------------------------------------------------

_chars = st.one_of(
    st.sampled_from(list("a :\u2028\u2029\x85\x0b\x0c\x1c\x00\u00e9\U0001f600\ufeff")),
    st.characters(exclude_categories=("Cs",), exclude_characters="\r\n"),
)
_text = st.text(_chars, max_size=8)
_NEWLINES = (b"\n", b"\r", b"\r\n")


@st.composite
def sse_streams(draw: st.DrawFn) -> Tuple[bytes, List[SSEEvent]]:
    """A serialised event stream and the events the WHATWG algorithm dispatches from it."""
    out: List[bytes] = []
    expected: List[SSEEvent] = []
    last_id: Optional[str] = None
    prev_cr = False

    def emit(line: str) -> None:
        nonlocal prev_cr
        choices = _NEWLINES
        if not line and prev_cr:
            choices = (b"\r", b"\r\n")  # CR then a bare LF would merge into one line end
        newline = draw(st.sampled_from(choices))
        prev_cr = newline == b"\r"
        out.append(line.encode("utf-8") + newline)

    if draw(st.booleans()):
        out.append(b"\xef\xbb\xbf")
    for _ in range(draw(st.integers(0, 5))):
        event: Optional[str] = None
        data: List[str] = []
        retry: Optional[int] = None
        dirty = False
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(st.sampled_from(["data", "event", "id", "retry", "comment", "unknown"]))
            value = draw(_text)
            if kind == "comment":
                emit(":" + value)
                continue
            if kind == "unknown":
                emit(draw(st.sampled_from(["foo", "Data", "EVENT", "ids", "x"])) + ": " + value)
                continue
            if kind == "retry" and draw(st.booleans()):
                value = "0" * draw(st.integers(0, 2)) + str(draw(st.integers(0, 10**6)))
            form = draw(st.integers(0, 2))
            if form == 0 or (form == 1 and value.startswith(" ")):
                emit(f"{kind}: {value}")
            elif form == 1:
                emit(f"{kind}:{value}")
            else:
                emit(kind)
                value = ""
            if kind == "data":
                data.append(value)
                dirty = True
            elif kind == "event":
                event, dirty = value, True
            elif kind == "id" and "\0" not in value:
                last_id, dirty = value, True
            elif kind == "retry" and value.isascii() and value.isdigit():
                retry, dirty = int(value), True
        if draw(st.booleans()):  # terminated: dispatch if anything was set
            emit("")
            if dirty:
                expected.append(SSEEvent(event, "\n".join(data), last_id, retry))
        else:
            break  # an unterminated event can only be the last one
    return b"".join(out), expected


@settings(deadline=None, max_examples=150)
@given(sse_streams(), st.data())
def test_sse_any_chunking_gives_the_model_events(
    case: Tuple[bytes, List[SSEEvent]], data: st.DataObject
) -> None:
    stream, expected = case
    assert list(iter_sse([stream])) == expected
    assert list(iter_sse(bytewise(stream))) == expected
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    assert list(iter_sse(split_at(stream, cuts))) == expected


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(_chars | st.sampled_from('\r\n"\\')),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def ndjson_streams(draw: st.DrawFn) -> Tuple[bytes, List[Any]]:
    values = draw(st.lists(_json_values, max_size=5))
    lines: List[bytes] = []
    for value in values:
        lines.extend(draw(st.lists(st.sampled_from([b"", b" ", b"\t\r", b"\r"]), max_size=2)))
        lines.append(json.dumps(value, ensure_ascii=draw(st.booleans())).encode("utf-8"))
    body = b"".join(line + draw(st.sampled_from([b"\n", b"\r\n"])) for line in lines)
    if lines and draw(st.booleans()):
        body = body.rstrip(b"\r\n")  # no newline after the last value
    return body, values


@settings(deadline=None, max_examples=100)
@given(ndjson_streams(), st.data())
def test_ndjson_any_chunking_gives_the_same_values(
    case: Tuple[bytes, List[Any]], data: st.DataObject
) -> None:
    stream, expected = case
    assert list(iter_ndjson([stream])) == expected
    assert list(iter_ndjson(bytewise(stream))) == expected
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    assert list(iter_ndjson(split_at(stream, cuts))) == expected


_noise = st.lists(
    st.sampled_from(
        [
            b"data:",
            b"event:",
            b"id:",
            b"retry:",
            b":",
            b" ",
            b"\r",
            b"\n",
            b"\r\n",
            b"\xef\xbb\xbf",
            b"\xff",
            b"\xc3",
            b"\xa9",
            b"1",
            b"\x00",
            b"{",
            b"}",
            b'"',
            b"[",
            b"]",
            b"NaN",
            b"-",
        ]
    )
    | st.binary(max_size=6),
    max_size=40,
).map(b"".join)


@settings(deadline=None, max_examples=300)
@given(
    _noise,
    st.data(),
    st.sampled_from([iter_lines, iter_sse, iter_ndjson]),
    st.sampled_from([None, 1, 3, 16]),
)
def test_arbitrary_bytes_give_items_or_format_error(
    stream: bytes,
    data: st.DataObject,
    decode: Callable[..., Iterator[Any]],
    max_line: Optional[int],
) -> None:
    kw = {} if max_line is None else {"max_line_bytes": max_line}
    whole = outcome(decode, [stream], **kw)
    assert outcome(decode, bytewise(stream), **kw) == whole
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    assert outcome(decode, split_at(stream, cuts), **kw) == whole


# --- differential test against the openai SDK's decoder -----------------------------------------

# Streams on which the WHATWG algorithm and the SDK agree. Known, deliberate differences are
# left out: the SDK dispatches an empty event on every blank line once any id was seen, skips an
# event whose only field is an empty ``event:``, accepts int() forms ("+1", " 1", "1_0") for
# retry, and keeps a leading BOM.
DIFFERENTIAL_STREAMS = [
    OPENAI_STREAM,
    ANTHROPIC_STREAM,
    b"data: a\r\ndata: b\r\n\r\n: c\r\rdata:x\n\ndata: \xe2\x80\xa8\xc2\x85\r\n\r\nevent: e\ndata\n\n",
    b"data: a\r\rdata: b\n\r\n\r\rdata: c\r\n\n: OPENROUTER PROCESSING\n\nretry: 5\ndata: d\n\n",
    b"foo: 1\ndata:  two spaces\nid: 9\ndata: x:y\n\nevent: last\ndata: z\n\ndata: dropped\n",
]


@pytest.mark.parametrize(
    "stream", DIFFERENTIAL_STREAMS, ids=["data-only-events", "named-events", "mixed", "cr", "fields"]
)
@pytest.mark.parametrize("step", [0, 1, 2, 3, 7])
def test_matches_the_openai_sdk_decoder(stream: bytes, step: int) -> None:
    sdk_streaming = pytest.importorskip("openai._streaming")
    chunks = [stream] if step == 0 else split_at(stream, range(step, len(stream), step))
    theirs = [
        (e.event, e.data, e.id, e.retry)
        for e in sdk_streaming.SSEDecoder().iter_bytes(iter(chunks))
    ]
    ours = [(e.event, e.data, e.id, e.retry) for e in iter_sse(chunks)]
    assert ours == theirs
    assert len(ours) >= 2



# --- load_json: json.loads, faster ---------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _json_outcome(load: Any, text: str) -> Any:
    try:
        return ("value", repr(load(text)))
    except Exception as error:  # the same class, whichever parser refuses it
        return ("error", type(error).__name__)


@settings(max_examples=300, deadline=None)
@given(value=_json_values, before=st.sampled_from(["", " ", "\n", "\t "]),
       after=st.sampled_from(["", " ", "\n", "x", "{}", ","]))
def test_load_json_accepts_and_refuses_exactly_what_json_loads_does(value: Any, before: str, after: str) -> None:
    text = before + json.dumps(value, separators=(",", ":")) + after
    assert _json_outcome(load_json, text) == _json_outcome(json.loads, text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet='{}[]":,0123456789.eE+-tfnrulasx \\', max_size=30))
def test_load_json_on_arbitrary_text_agrees_with_json_loads(text: str) -> None:
    assert _json_outcome(load_json, text) == _json_outcome(json.loads, text)
