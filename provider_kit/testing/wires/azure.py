"""The Azure OpenAI wire (PROTOCOLS-2.md §J): OpenAI's bodies behind an Azure resource's URLs.

The simulator is the resource: ``server.base_url`` is its endpoint, and ``server.models`` are
its deployments (listed by ``/openai/models`` too, although a real resource lists its base
models there, not its deployments). It answers both URL styles, and refuses what Azure refuses:

* classic, ``/openai/deployments/{deployment}/chat/completions?api-version=...`` and
  ``/openai/models?api-version=...``: no ``api-version`` is a 404 "Resource not found" (the
  gateway finds no route), a malformed one a 400; the key must come as ``api-key`` (a bearer
  token there is an Entra ID token, and a key is not one); ``stream_options`` before
  api-version 2024-09-01 is an unrecognised argument (400);
* v1, ``/openai/v1/chat/completions`` and ``/openai/v1/models``: no ``api-version``, the
  deployment as ``model``, the key as ``Authorization: Bearer`` or ``api-key``;
* an unknown deployment is a 404 ``DeploymentNotFound``.

Answers carry Azure's extra keys: ``prompt_filter_results`` and ``choices[].content_filter_results``,
and a stream starts with a chunk with ``"choices": []`` and only the prompt's filter results.
``error_reply(400, code="content_filter")`` is the content filter's refusal of a prompt, and
``completion_reply(finish_reason="content_filter")`` a filtered answer.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .._reply import Chunk, RecordedRequest, Reply, _dumps
from ._base import JSONDict, Piece
from ._embeddings import openai_embeddings
from .openai import OpenAIWire

if TYPE_CHECKING:
    from .._server import LoopbackServer

_DATED_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
#: The first api-version that knows ``stream_options``.
STREAM_OPTIONS_SINCE = "2024-09-01"
#: The first api-version that knows each request field (Azure's api-version lifecycle page):
#: ``response_format`` ``json_schema`` since 2024-08-01-preview, ``reasoning_effort`` since
#: 2024-12-01-preview, ``tools`` and ``tool_choice`` since 2023-12-01-preview. Older versions
#: refuse them as unrecognised arguments.
FIELDS_SINCE = {"reasoning_effort": "2024-12-01", "tools": "2023-12-01", "tool_choice": "2023-12-01"}
JSON_SCHEMA_SINCE = "2024-08-01"
_CLASSIC = "/openai/"
_V1 = "/openai/v1/"
_SAFE = {"filtered": False, "severity": "safe"}
_CATEGORIES = ("hate", "self_harm", "sexual", "violence")

MISSING_KEY = ("Access denied due to missing subscription key. Make sure to include subscription key "
               "when making requests to an API.")
WRONG_KEY = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide "
             "a valid key for an active subscription and use a correct regional API endpoint for your "
             "resource.")
BAD_TOKEN = ("Unauthorized. Access token is missing, invalid, audience is incorrect "
             "(https://cognitiveservices.azure.com), or have expired.")
NO_DEPLOYMENT = ("The API deployment for this resource does not exist. If you created the deployment "
                 "within the last 5 minutes, please wait a moment and try again.")
FILTERED_PROMPT = ("The response was filtered due to the prompt triggering Azure OpenAI's content "
                   "management policy. Please modify your prompt and retry. To learn more about our "
                   "content filtering policies please read our documentation: "
                   "https://go.microsoft.com/fwlink/?linkid=2198766")


def filter_results(tripped: Sequence[str] = (), severity: str = "medium") -> JSONDict:
    """A ``content_filter_results`` object: ``tripped`` categories filtered at ``severity``."""
    return {category: ({"filtered": True, "severity": severity} if category in tripped else dict(_SAFE))
            for category in _CATEGORIES}


class AzureWire(OpenAIWire):
    name = "azure"
    api_prefix = ""  # the simulator's base_url is the resource's endpoint
    default_models = ("gpt-4o-mini", "gpt-4o")  # deployments, named after their models
    errors = {
        400: ("invalid_request_error", "Invalid request."),
        401: ("", WRONG_KEY),
        403: ("", "Public access is disabled. Please configure private endpoint."),
        404: ("", "Resource not found"),
        429: ("", "Requests to the ChatCompletions_Create Operation under Azure OpenAI API have exceeded "
                  "call rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second."),
        500: ("server_error", "The server had an error while processing your request. Sorry about that!"),
        503: ("server_error", "The service is temporarily unable to process your request. Please try again later."),
    }

    def id_headers(self) -> Dict[str, str]:
        request_id = self.request_id()
        return {"x-request-id": request_id, "apim-request-id": request_id, "x-ms-region": "Sweden Central"}

    def error_reply(self, status: int, message: Optional[str] = None, *, type: Optional[str] = None,
                    code: Optional[str] = None, **kwargs: Any) -> Reply:
        """Azure's error bodies: OpenAI's shape for what the model service refuses, and
        ``{"error": {"code", "message"}}`` for the gateway's own errors (auth, routing,
        throttling; ``type=""`` asks for that shape). ``code="content_filter"`` is the content
        filter's refusal of a prompt. ``kwargs``: ``param``, ``retry_after``, ``retry_after_ms`` and
        ``headers``, as for every wire."""
        param: Optional[str] = kwargs.get("param")
        retry_after: Union[int, float, str, None] = kwargs.get("retry_after")
        retry_after_ms: Optional[int] = kwargs.get("retry_after_ms")
        headers: Optional[Mapping[str, str]] = kwargs.get("headers")
        default_type, default_message = self.errors.get(status, self.errors[500 if status >= 500 else 400])
        if code == "content_filter":
            message = message or FILTERED_PROMPT
            param = param or "prompt"
        elif type == "" or (type is None and not default_type):
            type, code = "", code or str(status)
        out = self.id_headers()
        if retry_after is not None:
            out["retry-after"] = str(retry_after)
        if retry_after_ms is not None:
            out["retry-after-ms"] = str(retry_after_ms)
        out.update(headers or {})
        body = self.error_body(message or default_message, default_type if type is None else type, code, param,
                               out["x-request-id"])
        return Reply(status, json=body, content_type=self.json_type, headers=out)

    def error_body(self, message: str, type: str, code: Optional[str], param: Optional[str],
                   request_id: str) -> JSONDict:
        if code == "content_filter":  # a prompt refused by the content filter (§J.4)
            return {"error": {"message": message, "type": None, "param": param, "code": code, "status": 400,
                              "innererror": {"code": "ResponsibleAIPolicyViolation",
                                             "content_filter_result": filter_results(("hate",))}}}
        if not type:
            return {"error": {"code": code, "message": message}}
        return {"error": {"message": message, "type": type, "param": param, "code": code}}

    def completion(self, text: str, model: str, finish_reason: str, input_tokens: int,
                   output_tokens: int, include_usage: bool = True, **details: Any) -> JSONDict:
        body = super().completion(text, model, finish_reason, input_tokens, output_tokens, include_usage, **details)
        del body["service_tier"]
        tripped = ("violence",) if finish_reason == "content_filter" else ()
        body["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": filter_results()}]
        body["choices"][0]["content_filter_results"] = filter_results(tripped)
        return body

    def stream_parts(self, pieces: Sequence[Piece], *, model: str, finish_reason: str,
                     input_tokens: int, output_tokens: int, include_usage: bool,
                     error_after: Optional[int], error: Tuple[str, str], terminate: bool,
                     obfuscate: bool = True, **details: Any) -> List[Chunk]:
        parts = super().stream_parts(pieces, model=model, finish_reason=finish_reason, input_tokens=input_tokens,
                                     output_tokens=output_tokens, include_usage=include_usage,
                                     error_after=error_after, error=error, terminate=terminate, obfuscate=False,
                                     **details)
        return [self._prompt_filter_chunk(), *parts]

    def tool_call_stream_parts(self, pieces: Sequence[Piece], calls: Sequence[Any], **details: Any) -> List[Chunk]:
        details["obfuscate"] = False
        return [self._prompt_filter_chunk(), *super().tool_call_stream_parts(pieces, calls, **details)]

    @staticmethod
    def _prompt_filter_chunk() -> bytes:
        """The prompt's filter results, in a first chunk with no choice and no id (§J.4)."""
        return b"data: " + _dumps({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                                   "prompt_filter_results": [{"prompt_index": 0,
                                                              "content_filter_results": filter_results()}]}) + b"\n\n"

    # -- the simulator

    def simulate(self, server: LoopbackServer, request: RecordedRequest) -> Reply:
        path = request.path
        if not path.startswith(_CLASSIC):
            return self.error_reply(404)
        v1 = path.startswith(_V1)
        version = request.query.get("api-version")
        if not v1:
            if version is None:
                return self.error_reply(404)  # no route without a version
            if not _DATED_VERSION.fullmatch(version):
                return self.error_reply(400, "API version not supported", code="BadRequest", type="")
        refused = self._check_key(server, request, v1)
        if refused is not None:
            return refused
        route = path[len(_V1 if v1 else _CLASSIC):]
        if request.method == "GET" and route == "models":
            return self.json_reply(200, {"object": "list", "data": [self._model(m) for m in server.models]})
        if request.method == "POST" and v1 and route == "chat/completions":
            body = self.parse_json(request)
            if isinstance(body, Reply):
                return body
            if not body.get("model"):
                return self.error_reply(400, "you must provide a model parameter", param="model")
            return self._deployment_chat(server, body, str(body["model"]), None)
        parts = route.split("/")
        if request.method == "POST" and (route == "embeddings" if v1 else (
                len(parts) == 3 and parts[0] == "deployments" and parts[2] == "embeddings")):
            return self._embeddings(server, request, None if v1 else parts[1])
        if request.method == "POST" and not v1 and len(parts) == 4 and parts[0] == "deployments" \
                and parts[2:] == ["chat", "completions"]:
            body = self.parse_json(request)
            if isinstance(body, Reply):
                return body
            return self._deployment_chat(server, body, parts[1], version)
        return self.error_reply(404)

    def _embeddings(self, server: LoopbackServer, request: RecordedRequest, deployment: Optional[str]) -> Reply:
        """An embeddings request to a deployment (the path's, or on v1 the body's ``model``)."""
        body = self.parse_json(request)
        if isinstance(body, Reply):
            return body
        name = deployment or body.get("model")
        if not name:
            return self.error_reply(400, "you must provide a model parameter", param="model")
        if name not in server.models:
            return self.error_reply(404, NO_DEPLOYMENT, code="DeploymentNotFound")
        return openai_embeddings(body, self.error_reply, self.json_reply, model=str(name))

    def _check_key(self, server: LoopbackServer, request: RecordedRequest, v1: bool) -> Optional[Reply]:
        if server.api_key is None:
            return None
        key = request.headers.get("api-key")
        auth = request.headers.get("Authorization")
        if key is None and v1 and auth is not None and auth.startswith("Bearer "):
            key = auth[len("Bearer "):]
        if key is None and auth is not None:
            return self.error_reply(401, BAD_TOKEN)  # a bearer token on the classic URLs is Entra ID's
        if key is None:
            return self.error_reply(401, MISSING_KEY)
        if key != server.api_key:
            return self.error_reply(401, WRONG_KEY)
        return None

    @staticmethod
    def _model(model: str) -> JSONDict:
        return {"id": model, "object": "model", "created_at": 1715558400, "status": "succeeded",
                "capabilities": {"chat_completion": True, "completion": False, "embeddings": False,
                                 "fine_tune": False, "inference": True},
                "lifecycle_status": "generally-available",
                "deprecation": {"inference": int(time.time()) + 365 * 86400}}

    def _deployment_chat(self, server: LoopbackServer, body: JSONDict, deployment: str,
                         version: Optional[str]) -> Reply:
        if deployment not in server.models:
            return self.error_reply(404, NO_DEPLOYMENT, code="DeploymentNotFound")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.error_reply(400, "'messages' is a required property", param="messages")
        stream = body.get("stream") is True
        options = body.get("stream_options")
        if options is not None and version is not None and version[:10] < STREAM_OPTIONS_SINCE:
            return self.error_reply(400, "Unrecognized request argument supplied: stream_options")
        if options is not None and not stream:
            return self.error_reply(400, "The 'stream_options' parameter is only allowed when 'stream' "
                                    "is enabled.", param="stream_options")
        response_format = body.get("response_format")
        if version is not None and isinstance(response_format, dict) and \
                response_format.get("type") == "json_schema" and version[:10] < JSON_SCHEMA_SINCE:
            return self.error_reply(400, "Invalid parameter: 'response_format' of type 'json_schema' is not "
                                    "supported with this api-version.", param="response_format")
        if version is not None:
            for field, since in FIELDS_SINCE.items():
                if field in body and version[:10] < since:
                    return self.error_reply(400, f"Unrecognized request argument supplied: {field}")
        return self.chat_answer(server, body, deployment, stream)
