"""Content parts: what a message holds when it is more than one string.

A message's content is a ``str`` or a tuple of parts: ``Text`` and ``Image`` (tool calls and
results later). Callers may write a part as a plain string (text) or as an OpenAI-shaped dict
(``{"type": "text", ...}``, ``{"type": "image_url", "image_url": {"url": ...}}``, data URLs
included); ``as_content`` turns all of them into parts once, at the edge, so every protocol's
request hook sees the same values.

An ``Image`` is bytes with a sniffed media type, or a URL that provider_kit never fetches.
Nothing is encoded until a protocol asks: ``base64`` is computed on first use and kept. Reprs
never show the bytes, nor a URL's query string (a presigned URL's signature is a credential).
``base64`` is imported lazily: ``import provider_kit`` does not pay for it.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from ._secrets import mask_url
from ._value import _Value
from .errors import ConfigError

__all__ = ["IMAGE_MEDIA_TYPES", "Image", "Part", "Text", "as_content", "content_text", "sniff_media_type"]

#: The image media types every protocol takes (PROTOCOLS-2 §E): what bytes are sniffed as.
IMAGE_MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_MEDIA_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-png": "image/png"}
#: A URL's extension -> its media type, for ``Image.from_url`` (no ``mimetypes``: slow to import
#: and it reads the machine's tables, which differ between hosts).
_EXTENSIONS = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".webp": "image/webp"}
_KNOWN = "PNG, JPEG, GIF or WebP"


def sniff_media_type(data: bytes) -> Optional[str]:
    """The media type the first bytes say (PNG, JPEG, GIF, WebP), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _checked_media_type(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: media_type must be a string such as 'image/png', got {type(value).__name__}")
    media_type = value.strip().lower()
    media_type = _MEDIA_ALIASES.get(media_type, media_type)
    if media_type not in IMAGE_MEDIA_TYPES:
        raise ConfigError(f"{where}: unsupported media type {value!r}; images must be {_KNOWN} "
                          f"({', '.join(IMAGE_MEDIA_TYPES)})")
    return media_type


class Part(_Value):
    """Base class of the content parts (``Text``, ``Image``)."""

    __slots__ = ()

    def to_dict(self) -> Dict[str, Any]:
        raise NotImplementedError


class Text(Part):
    """A piece of text in a message's list of parts."""

    __slots__ = ("text",)
    text: str

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise ConfigError(f"Text needs a string, got {type(text).__name__}")
        self._set(text=text)

    def to_dict(self) -> Dict[str, Any]:
        """``{"type": "text", "text": ...}`` (the OpenAI shape, which ``complete`` accepts too)."""
        return {"type": "text", "text": self.text}


class Image(Part):
    """An image in a message: bytes and their media type, or a URL.

    Build one with ``Image.from_path(path)``, ``Image.from_bytes(data)`` or
    ``Image.from_url(url)``. ``media_type`` is one of ``IMAGE_MEDIA_TYPES`` (sniffed from the
    bytes; for a URL, read from its extension, else None); ``data`` the bytes (None for a URL);
    ``url`` an ``http(s)`` URL (None for bytes; a ``data:`` URL becomes bytes); ``detail`` the
    OpenAI-style resolution hint ("low", "high", "auto"...) when the caller gave one.
    ``base64``, ``data_url`` and ``size`` describe the bytes (None for a URL).

    provider_kit never fetches a URL: a protocol that cannot take one refuses it before sending.
    """

    __slots__ = ("media_type", "data", "url", "detail", "_base64")
    media_type: Optional[str]
    data: Optional[bytes]
    url: Optional[str]
    detail: Optional[str]
    _base64: Optional[str]

    def __init__(
        self,
        media_type: Optional[str] = None,
        data: Optional[bytes] = None,
        url: Optional[str] = None,
        detail: Optional[str] = None,
    ) -> None:
        where = "Image"
        if (data is None) == (url is None):
            given = "both" if data is not None else "neither"
            raise ConfigError(f"{where}: give either data (bytes) or url, not {given} "
                              "(Image.from_path / from_bytes / from_url build one)")
        if detail is not None and (not isinstance(detail, str) or not detail):
            raise ConfigError(f"{where}: detail must be a non-empty string such as 'low', got {detail!r}")
        if data is not None:
            if isinstance(data, (bytearray, memoryview)):
                data = bytes(data)
            if not isinstance(data, bytes):
                raise ConfigError(f"{where}: data must be bytes, got {type(data).__name__}")
            if not data:
                raise ConfigError(f"{where}: the image is empty (0 bytes)")
            sniffed = sniff_media_type(data)
            if media_type is None:
                if sniffed is None:
                    raise ConfigError(f"{where}: unknown media type: the bytes are not a {_KNOWN} image "
                                      "(pass media_type= if you know better)")
                media_type = sniffed
            else:
                media_type = _checked_media_type(media_type, where)
                if sniffed is not None and sniffed != media_type:
                    # Anthropic refuses a mismatch; the others would mislabel the image.
                    raise ConfigError(f"{where}: media_type {media_type!r} does not match the bytes, which are "
                                      f"{sniffed!r}")
        else:
            if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
                raise ConfigError(f"{where}: url must be an http(s) URL (Image.from_url also takes a data: URL), "
                                  f"got {_shown_url(url) if isinstance(url, str) else type(url).__name__!r}")
            if media_type is not None:
                media_type = _checked_media_type(media_type, where)
        self._set(media_type=media_type, data=data, url=url, detail=detail, _base64=None)

    # -- building

    @classmethod
    def from_path(cls, path: Union[str, os.PathLike[str]], media_type: Optional[str] = None,
                  *, detail: Optional[str] = None) -> Image:
        """The image in file ``path``; its media type sniffed from its first bytes.

        :raises ConfigError: when the file cannot be read or is not a PNG, JPEG, GIF or WebP.
        """
        try:
            name = os.fspath(path)
            with open(name, "rb") as file:
                data = file.read()
        except TypeError:
            raise ConfigError(f"Image.from_path needs a path, got {type(path).__name__}") from None
        except OSError as error:
            raise ConfigError(f"cannot read image {str(path)!r}: {error.strerror or error}") from None
        try:
            return cls(media_type, data, detail=detail)
        except ConfigError as error:
            raise ConfigError(f"image {str(path)!r}: {str(error).split(': ', 1)[-1]}") from None

    @classmethod
    def from_bytes(cls, data: bytes, media_type: Optional[str] = None, *, detail: Optional[str] = None) -> Image:
        """An image from its bytes; ``media_type`` is sniffed when not given, and checked
        against the bytes when given.

        :raises ConfigError: for empty data or an unknown or mismatched media type.
        """
        return cls(media_type, data, detail=detail)

    @classmethod
    def from_url(cls, url: str, media_type: Optional[str] = None, *, detail: Optional[str] = None) -> Image:
        """An image at an ``http(s)`` URL (sent as a URL; never fetched by provider_kit), or the
        bytes of a ``data:<media type>;base64,...`` URL.

        :raises ConfigError: for another scheme, or a data URL that is not base64 image data.
        """
        if isinstance(url, str) and url[:5].lower() == "data:":
            return cls._from_data_url(url, media_type, detail)
        if media_type is None and isinstance(url, str):
            path = url.split("?", 1)[0].split("#", 1)[0]
            media_type = _EXTENSIONS.get(os.path.splitext(path)[1].lower())
        return cls(media_type, url=url, detail=detail)

    @classmethod
    def _from_data_url(cls, url: str, media_type: Optional[str], detail: Optional[str]) -> Image:
        import base64
        import binascii

        header, comma, payload = url[5:].partition(",")
        params = [item.strip() for item in header.split(";")]
        if not comma or "base64" not in params[1:]:
            raise ConfigError("Image: a data URL must be 'data:<media type>;base64,<data>'")
        try:
            data = base64.b64decode(payload.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError("Image: the data URL's payload is not valid base64") from None
        return cls(media_type or params[0] or None, data, detail=detail)

    # -- what protocols send

    @property
    def base64(self) -> Optional[str]:
        """The bytes in base64 (no ``data:`` prefix), computed once; None for a URL."""
        if self.data is None:
            return None
        encoded = self._base64
        if encoded is None:
            import base64

            encoded = base64.b64encode(self.data).decode("ascii")
            object.__setattr__(self, "_base64", encoded)
        return encoded

    @property
    def data_url(self) -> Optional[str]:
        """``data:<media type>;base64,<data>``; None for a URL."""
        encoded = self.base64
        return None if encoded is None else f"data:{self.media_type};base64,{encoded}"

    @property
    def size(self) -> Optional[int]:
        """The number of bytes; None for a URL."""
        return None if self.data is None else len(self.data)

    def to_dict(self) -> Dict[str, Any]:
        """The OpenAI shape: ``{"type": "image_url", "image_url": {"url": <url or data URL>}}``."""
        image: Dict[str, Any] = {"url": self.url or self.data_url}
        if self.detail is not None:
            image["detail"] = self.detail
        return {"type": "image_url", "image_url": image}

    # -- value behaviour: the cached base64 is not a field

    def _fields(self) -> Tuple[Any, ...]:
        return (self.media_type, self.data, self.url, self.detail)

    def _replace(self, **changes: Any) -> Image:
        unknown = set(changes).difference(("media_type", "data", "url", "detail"))
        if unknown:
            raise TypeError(f"Image has no field {', '.join(sorted(unknown))}")
        fields = dict(zip(("media_type", "data", "url", "detail"), self._fields()))
        fields.update(changes)
        return Image(**fields)

    def __repr__(self) -> str:
        shown = [f"media_type={self.media_type!r}"]
        if self.data is not None:
            shown.append(f"size={len(self.data)}")
        else:
            shown.append(f"url={_shown_url(self.url or '')!r}")
        if self.detail is not None:
            shown.append(f"detail={self.detail!r}")
        return f"Image({', '.join(shown)})"


def _shown_url(url: str) -> str:
    """A URL as reprs and messages show it: no password, no query (it may hold a signature),
    and no more than 100 characters (a data URL passed where it does not belong)."""
    base, query, _ = url.partition("?")
    shown = mask_url(base) + ("?..." if query else "")
    return shown if len(shown) <= 100 else shown[:97] + "..."


#: What a message's content is once checked.
Content = Union[str, Tuple[Part, ...]]


def as_part(item: Any, where: str) -> Part:
    """One item of a list of parts as a ``Part``: a part, a string (text) or an OpenAI-shaped dict.

    :raises ConfigError: for anything else; ``where`` starts the message.
    """
    if isinstance(item, Part):
        return item
    if isinstance(item, str):
        return Text(item)
    if isinstance(item, Mapping):
        kind = item.get("type")
        if kind == "text":
            text = item.get("text")
            if not isinstance(text, str):
                raise ConfigError(f"{where}: a text part needs a string 'text', got {type(text).__name__}")
            return Text(text)
        if kind == "image_url":
            image = item.get("image_url")
            # A bare string is what Ollama's /v1 and others accept besides the OpenAI object.
            url = image.get("url") if isinstance(image, Mapping) else image
            if not isinstance(url, str):
                raise ConfigError(f"{where}: an image_url part needs image_url.url, a string")
            detail = image.get("detail") if isinstance(image, Mapping) else None
            try:
                return Image.from_url(url, detail=detail)
            except ConfigError as error:
                raise ConfigError(f"{where}: {error}") from None
        raise ConfigError(f"{where}: unknown part type {kind!r} (parts are strings, Text, Image, or dicts "
                          "of type 'text' or 'image_url')")
    raise ConfigError(f"{where} must be a string, a Text, an Image or a part dict, got {type(item).__name__}")


def is_part_like(item: Any) -> bool:
    """Whether ``item`` reads as a part rather than a message: a string, a ``Part``, or a dict
    with a ``type`` and no ``role`` (what makes a list one user message's parts)."""
    if isinstance(item, (str, Part)):
        return True
    return isinstance(item, Mapping) and "type" in item and "role" not in item


def as_content(content: Any, role: str) -> Content:
    """A message's content checked: a string as it is, a list of parts as a tuple of ``Part``.

    :raises ConfigError: for an empty list, an item that is no part, or anything else.
    """
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        if not content:
            raise ConfigError(f"message content for role {role!r} is an empty list of parts")
        return tuple(as_part(item, f"part {index} of a {role!r} message") for index, item in enumerate(content))
    raise ConfigError(
        f"message content must be a string or a list of parts, got {type(content).__name__} for role {role!r}"
    )


def content_text(content: Union[str, Sequence[Part]]) -> str:
    """The text of a content: the string itself, or the ``Text`` parts joined by newlines."""
    if isinstance(content, str):
        return content
    return "\n".join(part.text for part in content if isinstance(part, Text))
