"""The call arguments of issue 11 (``schema``, ``json``, ``reasoning``, ``top_p``, ``seed``,
``max_retries``, ``extra_headers``, ``extra_body``, ``cache``): one check for every provider and the
fake; what the call flow does with them for every type (per-call retries and headers, the
``extra_body`` merge); the refusals of a type that does not send a feature; the registry passing
them on."""

from __future__ import annotations

from typing import Any, Callable, Dict

import pytest
from _kinds import fast_retries, featureless
from _support import KEY, error_texts, raises

from provider_kit import ConfigError, InvalidRequestError, ProviderError, ProviderRegistry, ServerError
from provider_kit._call_args import OutputFormat, check_call_args
from provider_kit.providers._base import HTTPProvider
from provider_kit.providers._calls import ChatCall
from provider_kit.providers._features import CallFeatures
from provider_kit.testing import FakeProvider, LoopbackServer


class Invoice:
    """A pydantic-like class: only ``model_json_schema`` and ``model_validate``, no pydantic."""

    calls = 0

    def __init__(self, total: float) -> None:
        self.total = total

    @classmethod
    def model_json_schema(cls) -> Dict[str, Any]:
        cls.calls += 1
        return {"title": "Invoice", "type": "object", "properties": {"total": {"type": "number"}},
                "required": ["total"], "additionalProperties": False}

    @classmethod
    def model_validate(cls, data: Any) -> Invoice:
        return cls(**data)


BAD_ARGUMENTS = [
    ({"schema": "an object please"}, "schema must be a JSON-schema dict or a class with model_json_schema()"),
    ({"schema": Invoice(1.0)}, "pass the class, not an instance"),
    ({"schema": {"type": "object"}, "json": True}, "schema and json=True are exclusive"),
    ({"schema": {"default": {1, 2}}}, "schema cannot be sent as JSON"),
    ({"json": "yes"}, "json must be True or False"),
    ({"reasoning": "max"}, "reasoning must be one of 'low', 'medium', 'high' or False"),
    ({"reasoning": True}, "reasoning must be one of"),
    ({"top_p": 1.5}, "top_p must be a number from 0 to 1"),
    ({"top_p": True}, "top_p must be a number from 0 to 1"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"seed": False}, "seed must be an integer"),
    ({"max_retries": -1}, "max_retries must be a non-negative integer"),
    ({"max_retries": "3"}, "max_retries must be a non-negative integer"),
    ({"extra_headers": ["X-A"]}, "extra_headers must be a dict of strings"),
    ({"extra_headers": {"X-A": 1}}, "extra_headers['X-A'] must be a string, got int"),
    ({"extra_headers": {"": "v"}}, "non-empty string names"),
    ({"extra_headers": {"Bad:Name": "v"}}, "is not a valid HTTP header name"),
    ({"extra_headers": {"X-Api-Key": "sk-abc\n"}}, "has a line break or leading whitespace"),
    ({"extra_body": "options"}, "extra_body must be a dict"),
    ({"extra_body": {1: "x"}}, "extra_body must have non-empty string keys"),
    ({"extra_body": {"when": object()}}, "extra_body cannot be sent as JSON"),
    ({"extra_body": {"nan": float("nan")}}, "extra_body cannot be sent as JSON"),
    ({"cache": "yes"}, "cache must be True or False"),
]


@pytest.mark.parametrize(("arguments", "expected"), BAD_ARGUMENTS, ids=lambda v: str(v)[:40])
def test_bad_arguments_are_the_same_config_error_for_every_provider_and_the_fake(
    kind: str, server: LoopbackServer, make: Callable[..., HTTPProvider], arguments: Dict[str, Any], expected: str
) -> None:
    provider = make(server, max_retries=0)
    fake = FakeProvider(provider.name)
    for method in ("complete", "stream"):
        real = raises(ConfigError, getattr(provider, method), "hi", **arguments)
        faked = raises(ConfigError, getattr(fake, method), "hi", **arguments)
        assert expected in str(real) and str(real) == str(faked)
    assert server.requests == [] and fake.calls == []  # refused before anything is sent or recorded


def test_a_header_value_named_like_a_credential_is_never_quoted() -> None:
    error = raises(ConfigError, check_call_args, "p", "hi", extra_headers={"Authorization": 3})
    assert "must be a string, got int" in str(error)
    error = raises(ConfigError, check_call_args, "p", "hi", extra_headers={"X-Api-Key": " sk-secret-value"})
    assert "sk-secret-value" not in " ".join(error_texts(error)) and "carries the API key" in str(error)


def test_the_checked_arguments_and_what_a_schema_becomes() -> None:
    args = check_call_args("p", "hi", schema=Invoice, reasoning=False, top_p=0, seed=-7, max_retries=0,
                           extra_headers={"X-A": "1"}, extra_body={"a": [1]}, cache=False)
    assert isinstance(args.output, OutputFormat)
    assert (args.output.mode, args.output.name, args.output.cls) == ("schema", "Invoice", Invoice)
    assert args.output.schema == Invoice.model_json_schema()
    assert (args.reasoning, args.top_p, args.seed, args.max_retries, args.cache) == (False, 0, -7, 0, False)
    assert (args.extra_headers, args.extra_body) == ({"X-A": "1"}, {"a": [1]})
    named = check_call_args("p", "hi", schema={"title": "Line item (v2)", "type": "object"}).output
    assert named is not None and named.name == "Line_item__v2_" and named.cls is None  # OpenAI's name rule
    assert check_call_args("p", "hi", schema={}).output.name == "response"  # type: ignore[union-attr]
    assert check_call_args("p", "hi", json=True).output.mode == "json"  # type: ignore[union-attr]
    assert check_call_args("p", "hi", json=False).output is None


def test_a_schema_class_is_asked_for_its_schema_once() -> None:
    class Once(Invoice):
        calls = 0

    for _ in range(3):
        check_call_args("p", "hi", schema=Once)
    assert Once.calls == 1

    class Broken:
        @classmethod
        def model_json_schema(cls) -> Any:
            raise RuntimeError("unresolvable forward reference")

    assert "Broken.model_json_schema() failed: unresolvable" in str(
        raises(ConfigError, check_call_args, "p", "hi", schema=Broken))


def test_call_repr_shows_the_arguments_but_no_header_value() -> None:
    args = check_call_args("p", "hi", json=True, extra_headers={"X-Api-Key": "sk-hidden-1234"}, extra_body={"z": 1})
    call = ChatCall.from_args(args, "m", stream=False)
    shown = repr(call)
    assert "OutputFormat('json'" in shown and "extra_headers=['X-Api-Key']" in shown and "['z']" in shown
    assert "sk-hidden-1234" not in shown


# -- what the call flow does with them, for every type ------------------------------------------


def test_extra_body_is_merged_and_extra_headers_are_sent(
    server: LoopbackServer, make: Callable[..., HTTPProvider]
) -> None:
    provider = make(server)
    for method in ("complete", "stream"):
        reply = getattr(provider, method)(
            "hi", extra_body={"vendor_option": {"depth": 2}}, extra_headers={"X-Trace": "abc-1"})
        if method == "stream":
            list(reply)
        request = server.last_request
        assert request.json()["vendor_option"] == {"depth": 2}
        assert request.headers["x-trace"] == "abc-1"
    # The headers are this call's only.
    provider.complete("again")
    assert "x-trace" not in server.last_request.headers


def test_an_extra_body_key_provider_kit_sets_is_refused_never_overwritten(
    server: LoopbackServer, make: Callable[..., HTTPProvider]
) -> None:
    provider = make(server)
    for stream, method in ((False, provider.complete), (True, provider.stream)):
        call = ChatCall.from_args(check_call_args("p", "hi", max_tokens=5), provider.model, stream=stream)
        body = provider._build_request(call).body
        for key, value in body.items():  # every key the type sets, a nested one inside an object
            clash = {key: {next(iter(value)): "mine"}} if isinstance(value, dict) and value else {key: "mine"}
            path = f"{key}.{next(iter(value))}" if isinstance(value, dict) and value else key
            error = raises(ConfigError, method, "hi", max_tokens=5, extra_body=clash)
            assert f"extra_body key {path!r} collides with one provider_kit sets" in str(error)
    assert server.requests == []


def test_extra_body_objects_are_merged_key_by_key() -> None:
    provider = CallFeatures()
    provider._where = "test provider 'p'"
    body = {"options": {"temperature": 0}, "model": "m"}
    merged = provider._merge_extra_body(body, {"options": {"num_ctx": 8192}, "keep_alive": "5m"})
    assert merged == {"options": {"temperature": 0, "num_ctx": 8192}, "model": "m", "keep_alive": "5m"}
    assert body == {"options": {"temperature": 0}, "model": "m"}  # the protocol's dicts are not changed
    error = raises(ConfigError, provider._merge_extra_body, body, {"options": {"temperature": 1}})
    assert "'options.temperature' collides" in str(error)


def test_per_call_max_retries_is_honoured(server: LoopbackServer, make: Callable[..., HTTPProvider]) -> None:
    provider = fast_retries(make(server, max_retries=3))
    server.enqueue(server.error_reply(500), times=10)
    with pytest.raises(ServerError):
        provider.complete("hi", max_retries=0)
    assert len(server.requests) == 1
    with pytest.raises(ServerError):
        list(provider.stream("hi", max_retries=1))
    assert len(server.requests) == 3
    with pytest.raises(ServerError):
        provider.complete("hi")  # the provider's own count again
    assert len(server.requests) == 7


def test_a_per_call_credential_header_is_attached_and_masked_in_errors(
    server: LoopbackServer, make: Callable[..., HTTPProvider]
) -> None:
    secret = "tok-per-call-6b1d2e9f"
    provider = make(server, max_retries=0)
    server.enqueue(server.error_reply(400, f"bad header X-Upstream-Token: {secret}"), times=2)
    for method in ("complete", "stream"):
        call = getattr(provider, method)
        error = raises(InvalidRequestError, lambda c=call: list(c("hi", extra_headers={"X-Upstream-Token": secret})))
        texts = " ".join(error_texts(error))
        assert secret not in texts and "X-Upstream-Token: ***" in texts
        assert server.last_request.headers["x-upstream-token"] == secret  # it was sent
    assert KEY not in repr(provider)


# -- a type that does not send a feature refuses it before sending ------------------------------


@pytest.mark.parametrize(
    ("arguments", "feature"),
    [
        ({"schema": {"type": "object"}}, "structured output (schema=)"),
        ({"json": True}, "structured output (json=True)"),
        ({"reasoning": "high"}, "reasoning='high'"),
        ({"reasoning": False}, "reasoning=False"),
        ({"top_p": 0.9}, "top_p"),
        ({"seed": 7}, "seed"),
        ({"cache": True}, "cache=True"),
    ],
)
def test_the_default_hooks_refuse_with_the_type_and_the_feature(
    kind: str, server: LoopbackServer, arguments: Dict[str, Any], feature: str
) -> None:
    provider = featureless(kind)(base_url=server.base_url, api_key=KEY, max_retries=0)
    try:
        for method in ("complete", "stream"):
            error = raises(ConfigError, getattr(provider, method), "hi", **arguments)
            assert f"{kind} provider" in str(error) and feature in str(error)
        provider.complete("hi", cache=False, json=False)  # nothing asked for: nothing refused
    finally:
        provider.close()
    assert len(server.requests) == 1


def test_a_level_a_type_cannot_honour_names_those_it_can(server: LoopbackServer, kind: str) -> None:
    class Partial(featureless(kind)):  # type: ignore[misc]
        REASONING_LEVELS = frozenset({"high", False})

        def _apply_reasoning(self, body: Dict[str, Any], call: ChatCall) -> None:
            body["x_reasoning"] = call.reasoning

    provider = Partial(base_url=server.base_url, api_key=KEY)
    try:
        error = raises(ConfigError, provider.complete, "hi", reasoning="low")
        assert "reasoning='low'" in str(error) and "it takes reasoning=False, reasoning='high'" in str(error)
        provider.complete("hi", reasoning="high")
        assert server.last_request.json()["x_reasoning"] == "high"
    finally:
        provider.close()


# -- the registry passes every argument on -------------------------------------------------------


def test_the_registry_passes_every_new_argument_to_each_provider_tried(make_fake: Callable[..., Any]) -> None:
    first = make_fake("first", replies=[ProviderError("down", provider="first")] * 3)
    second = make_fake("second")
    registry = ProviderRegistry([first, second], default_provider="first")
    arguments: Dict[str, Any] = {
        "schema": {"type": "object"}, "reasoning": "low", "top_p": 0.5, "seed": 3, "max_retries": 1,
        "extra_headers": {"X-A": "1"}, "extra_body": {"k": 1}, "cache": True,
    }
    completion = registry.complete("hi", fallbacks=["second"], **arguments)
    assert completion.data == {"echo": "hi"} and completion.provider == "second"
    list(registry.stream("hi", fallbacks=["second"], json=True))
    results = registry.map(["a", "b"], provider="second", **arguments)
    assert [r.data for r in results] == [{"echo": "a"}, {"echo": "b"}]
    for call in (first.calls[0], second.calls[0], second.calls[2]):
        assert {key: call.kwargs[key] for key in arguments} == arguments
    assert second.calls[1].kwargs["json"] is True and first.calls[1].kwargs["json"] is True
