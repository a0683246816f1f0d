"""_secrets: the one redactor every place that hides a key uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _kinds import CLASSES, KINDS

from provider_kit._secrets import Redactor

KEY = "sk-secret-0123456789abcdef"
PACKAGE = Path(__file__).resolve().parents[1] / "provider_kit"


def test_request_redactor_hides_header_values_the_bare_bearer_key_and_the_url_password() -> None:
    redactor = Redactor.for_request({"Authorization": f"Bearer {KEY}"}, "http://user:p%40ss-word@gw/v1")
    text = f"echo {KEY} and Bearer {KEY} via p%40ss-word and p@ss-word"
    assert redactor.redact(text) == "echo *** and *** via *** and ***"
    assert redactor.quotes_secret(f"x{KEY}x") and not redactor.quotes_secret("nothing here")


def test_short_values_are_not_searched_for() -> None:
    assert Redactor(["abc"]).redact("abcabc") == "abcabc"
    assert not Redactor(["abc"])


def test_options_redactor_masks_nested_secret_options_as_mask_secret_shows_them() -> None:
    redactor = Redactor.for_options({"api_key": KEY, "headers": {"x-api-key": "sk-other-0123456789"}, "model": "m"})
    assert redactor.redact(f"{KEY} / sk-other-0123456789 / m") == "***cdef / ***6789 / m"


def test_reraise_hides_a_cause_that_quotes_a_secret() -> None:
    redactor = Redactor([KEY])
    for cause, hidden in ((ValueError(f"bad {KEY}"), True), (ValueError("bad input"), False)):
        with pytest.raises(RuntimeError) as caught:
            try:
                raise cause
            except ValueError as exc:
                redactor.reraise(RuntimeError("translated"), exc)
        assert caught.value.__cause__ is (None if hidden else cause)
        assert caught.value.__suppress_context__


def test_the_hide_the_cause_idiom_is_written_once() -> None:
    # "if redacting changed the text, raise ... from None": only Redactor.reraise may decide it.
    pattern = re.compile(r"redact\([^)]*\)\s*!=")
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if pattern.search(p.read_text("utf-8"))]
    assert offenders == []


def test_the_call_log_file_never_holds_a_key_or_a_credential_header(tmp_path: Path) -> None:
    """Every kind of call, failures quoting the key included: the log's bytes (database, WAL)
    hold neither the key nor a secret header's value."""
    from provider_kit import CallLog, ProviderError
    from provider_kit.testing import LoopbackServer

    key, token = "sk-log-sweep-0123456789abcdef", "tok-log-sweep-9876543210"
    path = tmp_path / "calls.sqlite3"
    for kind in KINDS:
        with LoopbackServer(kind) as server:
            provider = CLASSES[kind](base_url=server.base_url, api_key=key, max_retries=0,
                                     headers={"X-Api-Token": token}, on_call=CallLog(path))
            with provider:
                provider.complete("Hello")
                list(provider.stream("Hello"))
                server.enqueue(server.error_reply(401, f"Incorrect API key provided: {key}"))
                with pytest.raises(ProviderError):
                    provider.complete("Hello")
    assert len(CallLog(path).entries(100)) == 3 * len(KINDS)
    files = list(tmp_path.glob("calls.sqlite3*"))
    assert path in files
    for candidate in files:
        data = candidate.read_bytes()
        assert key.encode() not in data and token.encode() not in data, candidate.name
