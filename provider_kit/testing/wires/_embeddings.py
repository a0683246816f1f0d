"""The simulated embeddings APIs: OpenAI's ``POST /v1/embeddings`` (also Azure's and the
compatible services') and Ollama's ``POST /api/embed``.

Vectors are deterministic: each is built from the SHA-256 of the model and the text, scaled to
unit length as real embedding models return them, so the same text gives the same vector on
every server and in every test, and two texts give different ones. The wire rules are the
SDKs' and the APIs' (``openai.resources.embeddings``, ``ollama._client.embed``): OpenAI takes at
most 2,048 inputs and 300,000 tokens per request, answers base64 float32 for
``encoding_format: "base64"`` (what its SDK asks for by default) and JSON floats otherwise,
and refuses ``dimensions`` for a model that cannot shorten its vectors.
"""

from __future__ import annotations

import base64
import hashlib
import math
import sys
from array import array
from typing import Any, Callable, Dict, List, Optional, Union

from .._reply import Reply
from ._base import JSONDict, tokens

#: OpenAI's limits per embeddings request (the SDK's docstring of ``embeddings.create``).
MAX_INPUTS = 2048
MAX_TOKENS = 300_000
#: The vector length of each model when the request asks for none; any other model: 768.
NATIVE_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "nomic-embed-text": 768,
    "all-minilm": 384,
    "mxbai-embed-large": 1024,
}
DEFAULT_DIMENSIONS = 768
#: Models whose vectors cannot be shortened (OpenAI's answer to ``dimensions`` for them).
FIXED_DIMENSION_MODELS = ("text-embedding-ada-002",)
_BIG_ENDIAN = sys.byteorder == "big"

ErrorReply = Callable[..., Reply]


def native_dimensions(model: str) -> int:
    name = model.rsplit("/", 1)[-1].split(":", 1)[0]
    return NATIVE_DIMENSIONS.get(name, DEFAULT_DIMENSIONS)


def vector(model: str, text: str, dimensions: int) -> array[float]:
    """The simulator's embedding of ``text``: unit length, ``dimensions`` float32 values."""
    digest = hashlib.sha256(f"{model}\0{text}".encode()).digest()
    values = [(byte - 127.5) / 127.5 for byte in digest]  # never 0: the norm is never 0
    repeats, tail = divmod(dimensions, len(values))
    norm = math.sqrt(repeats * sum(v * v for v in values) + sum(v * v for v in values[:tail]))
    unit = array("f", [v / norm for v in values])
    out = unit * repeats
    out.extend(unit[:tail])
    return out


def base64_of(values: array[float]) -> str:
    """``values`` as OpenAI's base64: little-endian float32."""
    if _BIG_ENDIAN:
        values = array("f", values)
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode("ascii")


def openai_embeddings(body: JSONDict, error_reply: ErrorReply, json_reply: Callable[[int, Any], Reply],
                      model: Optional[str] = None) -> Reply:
    """The answer to an OpenAI embeddings request body (``model``: Azure's deployment)."""
    model = model or body.get("model")
    if not model:
        return error_reply(400, "you must provide a model parameter", param="model")
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        return error_reply(400, "'$.input' is invalid. Please check the API reference: "
                                "https://platform.openai.com/docs/api-reference.", param="input")
    if len(texts) > MAX_INPUTS:
        return error_reply(400, f"Too many inputs. The max number of inputs is {MAX_INPUTS}. We recommend "
                                "breaking up the request into smaller batches.", param="input")
    count = sum(tokens(text) for text in texts)
    if count > MAX_TOKENS:
        return error_reply(400, f"Requested {count} tokens, max {MAX_TOKENS} tokens per request",
                           param="input", code="max_tokens_per_request")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        return error_reply(400, f"'{encoding}' is not one of ['float', 'base64'] - 'encoding_format'",
                           param="encoding_format")
    dimensions = _dimensions(body.get("dimensions"), str(model), error_reply)
    if isinstance(dimensions, Reply):
        return dimensions
    data: List[JSONDict] = []
    for index, text in enumerate(texts):
        values = vector(str(model), text, dimensions)
        embedding: Union[str, List[float]] = base64_of(values) if encoding == "base64" else values.tolist()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return json_reply(200, {"object": "list", "data": data, "model": str(model),
                            "usage": {"prompt_tokens": count, "total_tokens": count}})


def _dimensions(value: Any, model: str, error_reply: ErrorReply) -> Union[int, Reply]:
    if value is None:
        return native_dimensions(model)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return error_reply(400, f"Invalid value for 'dimensions' = {value}. Must be greater than 0.",
                           param="dimensions")
    if model.rsplit("/", 1)[-1] in FIXED_DIMENSION_MODELS:
        return error_reply(400, "This model does not support specifying dimensions.", param="dimensions")
    return min(value, native_dimensions(model))


def ollama_embeddings(body: Dict[str, Any], model: str, error_reply: ErrorReply,
                      json_reply: Callable[[int, Any], Reply]) -> Reply:
    """The answer to ``POST /api/embed`` (``input`` a string or a list of strings)."""
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        return error_reply(400, "invalid input type")
    dimensions = body.get("dimensions")
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int)
                                   or dimensions < 0):
        return error_reply(400, "dimensions must be a positive integer")
    native = native_dimensions(model)
    size = min(dimensions, native) if dimensions else native
    count = sum(tokens(text) for text in texts)
    return json_reply(200, {
        "model": str(body.get("model") or model),
        "embeddings": [vector(model, text, size).tolist() for text in texts],
        "total_duration": 14143917,
        "load_duration": 1019500,
        "prompt_eval_count": count,
    })
