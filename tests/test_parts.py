"""Content parts (``Text``, ``Image``), messages made of them, the list-of-parts shortcut, and the
refusal every provider type gives for an image until its wire mapping takes one."""

from __future__ import annotations

import base64
import copy
import pickle
from pathlib import Path
from typing import Any, Callable

import pytest
from _kinds import featureless
from _support import KEY, raises

from provider_kit import ConfigError, Image, Message, Text
from provider_kit.providers._base import HTTPProvider
from provider_kit.testing import FakeProvider, LoopbackServer
from provider_kit.types import as_messages

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 24
GIF = b"GIF89a" + b"\x00" * 24
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 16


# -- Image ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "media_type"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")],
)
def test_the_media_type_is_sniffed_from_the_bytes(tmp_path: Path, data: bytes, media_type: str) -> None:
    path = tmp_path / "picture.bin"  # the extension says nothing: the bytes do
    path.write_bytes(data)
    for image in (Image.from_path(path), Image.from_path(str(path)), Image.from_bytes(data)):
        assert image.media_type == media_type
        assert image.data == data and image.url is None and image.size == len(data)
        assert image.base64 == base64.b64encode(data).decode("ascii")
        assert image.data_url == f"data:{media_type};base64,{image.base64}"


def test_unknown_bytes_and_unsupported_media_types_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_bytes(b"%PDF-1.7 not an image")
    error = raises(ConfigError, Image.from_path, path)
    assert "notes.png" in str(error) and "unknown media type" in str(error) and "PNG" in str(error)
    assert "unknown media type" in str(raises(ConfigError, Image.from_bytes, b"hello"))
    assert "unsupported media type" in str(raises(ConfigError, Image.from_bytes, b"x" * 8, "image/tiff"))
    assert "does not match" in str(raises(ConfigError, Image.from_bytes, PNG, "image/jpeg"))
    assert "empty" in str(raises(ConfigError, Image.from_bytes, b""))
    assert "bytes" in str(raises(ConfigError, Image.from_bytes, "not bytes"))
    # A type the bytes cannot confirm is taken as said; an alias is normalised.
    assert Image.from_bytes(b"\x00" * 8, "image/jpg").media_type == "image/jpeg"


def test_a_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    error = raises(ConfigError, Image.from_path, tmp_path / "receipt.jpg")
    assert "receipt.jpg" in str(error) and "cannot read" in str(error)
    assert "cannot read" in str(raises(ConfigError, Image.from_path, tmp_path))  # a directory
    assert "path" in str(raises(ConfigError, Image.from_path, 42))


def test_urls_are_kept_never_fetched_and_data_urls_become_bytes() -> None:
    image = Image.from_url("https://example.com/a/receipt.JPG?sig=abc#top", detail="low")
    assert (image.url, image.media_type, image.data, image.detail) == (
        "https://example.com/a/receipt.JPG?sig=abc#top", "image/jpeg", None, "low")
    assert image.base64 is None and image.data_url is None and image.size is None
    assert Image.from_url("https://example.com/chart").media_type is None  # unknown: None
    inline = Image.from_url("data:image/png;base64," + base64.b64encode(PNG).decode())
    assert inline.data == PNG and inline.media_type == "image/png" and inline.url is None
    assert Image.from_url("data:;base64," + base64.b64encode(GIF).decode()).media_type == "image/gif"
    for bad in ("file:///etc/passwd", "receipt.jpg", "ftp://host/a.png"):
        assert "http(s) URL" in str(raises(ConfigError, Image.from_url, bad))
    assert "base64" in str(raises(ConfigError, Image.from_url, "data:image/png,rawbytes"))
    assert "not valid base64" in str(raises(ConfigError, Image.from_url, "data:image/png;base64,@@@"))
    assert "either data" in str(raises(ConfigError, Image))


def test_reprs_never_show_the_bytes_nor_a_urls_query_or_password() -> None:
    big = Image.from_bytes(PNG + b"\x07" * 100_000)
    assert repr(big) == f"Image(media_type='image/png', size={len(PNG) + 100_000})"
    signed = Image.from_url("https://user:hunter22@bucket.example/r.png?X-Amz-Signature=deadbeefcafe")
    shown = repr(signed)
    assert "deadbeefcafe" not in shown and "hunter22" not in shown and "bucket.example/r.png?..." in shown
    assert "Image(" in repr(Message("user", ["look", big])) and "\\x07" not in repr(Message("user", [big]))


def test_images_are_values_that_pickle_and_copy_and_cache_their_base64() -> None:
    image = Image.from_bytes(JPEG)
    encoded = image.base64
    assert image.base64 is encoded  # computed once
    for copied in (pickle.loads(pickle.dumps(image)), copy.deepcopy(image), image._replace()):
        assert copied == image and hash(copied) == hash(image)
    assert image != Image.from_bytes(PNG) and image._replace(detail="high").detail == "high"
    with pytest.raises(AttributeError):
        image.url = "https://x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        image._replace(colour="red")


# -- Message content ------------------------------------------------------------------------------


def test_a_message_takes_parts_strings_and_openai_shaped_dicts() -> None:
    image = Image.from_bytes(PNG)
    url = "data:image/png;base64," + image.base64  # type: ignore[operator]
    message = Message("user", [
        "What is the total?",
        Text("Answer briefly."),
        {"type": "text", "text": "In euros."},
        {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
        {"type": "image_url", "image_url": "https://example.com/a.webp"},  # the bare string some servers take
        image,
    ])
    assert message.content == (
        Text("What is the total?"), Text("Answer briefly."), Text("In euros."),
        image._replace(detail="high"), Image.from_url("https://example.com/a.webp"), image,
    )
    assert message.text == "What is the total?\nAnswer briefly.\nIn euros."
    assert Message("user", "plain").text == "plain"
    # to_dict gives the dict form back, and it reads as the same message.
    assert as_messages([message.to_dict()]) == [message]
    assert pickle.loads(pickle.dumps(message)) == message and hash(message) == hash(Message(**{
        "role": "user", "content": list(message.content)}))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ([], "empty list of parts"),
        ([42], "must be a string, a Text, an Image or a part dict, got int"),
        ([{"type": "audio"}], "unknown part type 'audio'"),
        ([{"type": "text", "text": 3}], "needs a string 'text'"),
        ([{"type": "image_url", "image_url": {}}], "image_url.url"),
        ([{"type": "image_url", "image_url": {"url": "ftp://x/a.png"}}], "http(s) URL"),
        (b"bytes", "must be a string or a list of parts, got bytes"),
        ({"type": "text"}, "must be a string or a list of parts, got dict"),
    ],
)
def test_bad_content_is_a_config_error(content: Any, expected: str) -> None:
    assert expected in str(raises(ConfigError, Message, "user", content))


def test_provider_state_is_carried_compared_and_round_tripped() -> None:
    turn = Message("assistant", "42", {"signature": "sig-1"})
    assert turn.provider_state == {"signature": "sig-1"} and turn != Message("assistant", "42")
    assert turn.to_dict() == {"role": "assistant", "content": "42", "provider_state": {"signature": "sig-1"}}
    assert as_messages([turn.to_dict()]) == [turn]
    assert repr(turn) == "Message(role='assistant', content='42', provider_state={...})"  # opaque, not dumped
    assert repr(Message("user", "hi")) == "Message(role='user', content='hi')"
    assert "dict" in str(raises(ConfigError, Message, "assistant", "x", ["not", "a", "dict"]))


# -- the list-of-parts shortcut -------------------------------------------------------------------


def test_a_list_of_strings_and_parts_is_one_user_message() -> None:
    image = Image.from_bytes(GIF)
    assert as_messages(["What is the total?", image]) == [Message("user", ["What is the total?", image])]
    assert as_messages(["one", "two"], system="be brief") == [
        Message("system", "be brief"), Message("user", [Text("one"), Text("two")])]
    assert as_messages([{"type": "text", "text": "hi"}]) == [Message("user", [Text("hi")])]
    # Messages stay messages; a dict with a role is a message even with a "type" key.
    assert as_messages([{"role": "user", "content": "hi", "type": "message"}]) == [Message("user", "hi")]


def test_messages_and_parts_do_not_mix() -> None:
    error = raises(ConfigError, as_messages, [Message("user", "hi"), "and this?"])
    assert "message 1 is a part" in str(error) and "not both" in str(error)
    assert "message 0 has no role" in str(raises(ConfigError, as_messages, [{"content": "x"}]))
    assert "list of parts" in str(raises(ConfigError, as_messages, Image.from_bytes(PNG)))


def test_the_fake_records_parts_and_answers_the_text(make_fake: Callable[..., FakeProvider]) -> None:
    fake = make_fake("fake")
    image = Image.from_bytes(WEBP)
    assert fake.complete(["What is this?", image]).text == "echo: What is this?"
    call = fake.calls[0]
    assert call.messages == [Message("user", ["What is this?", image])]
    assert call.images == [image] and call.prompt == "What is this?"


# -- every type refuses an image until its wire mapping takes one --------------------------------


def test_the_default_content_hook_sends_text_parts_as_text_and_refuses_an_image(
    kind: str, server: LoopbackServer
) -> None:
    provider: HTTPProvider = featureless(kind)(base_url=server.base_url, api_key=KEY, max_retries=0)
    try:
        assert provider.complete(["Say", Text("hi")]).text  # the text parts, joined, as plain content
        assert '"Say\\nhi"' in server.last_request.body.decode()  # one JSON string: the parts' text
        sent = len(server.requests)
        error = raises(ConfigError, provider.complete, ["What is this?", Image.from_bytes(PNG)])
        assert kind in str(error) and "image parts" in str(error) and provider.name in str(error)
        assert len(server.requests) == sent  # refused before sending
    finally:
        provider.close()
