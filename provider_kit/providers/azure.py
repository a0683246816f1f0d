"""Azure OpenAI: the OpenAI Chat Completions wire behind an Azure resource's URLs and key header.
Wire facts: PROTOCOLS-2.md §J; configured from the variables ``openai.AzureOpenAI`` reads.

Two URL styles, chosen by ``api_version``:

* classic (``api_version = "2024-10-21"``...):
  ``POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`` with the
  key in an ``api-key`` header (no ``Authorization``);
* v1 (``api_version = "v1"``, a ``base_url`` ending in ``/openai/v1``, or no version at all):
  ``POST {endpoint}/openai/v1/chat/completions``, plain OpenAI: ``Authorization: Bearer``,
  the deployment as ``model``, no ``api-version``.

The request bodies, answers, streams and finish reasons are OpenAI's, parsed by the OpenAI
provider this class extends; only the URL, the credential header and the error reading differ.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Tuple

from .._options import Validator, as_choice, as_str, as_url, check_options
from ..errors import ConfigError
from ._calls import ChatCall, RequestSpec
from .openai import OpenAIProvider

#: The variable ``openai.AzureOpenAI`` reads for ``api_version``.
API_VERSION_ENV = "OPENAI_API_VERSION"
#: The ``api_version`` that selects the v1 API (no ``api-version`` query).
V1 = "v1"
#: A classic api-version: a date, with ``-preview`` for preview versions.
_DATED_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
#: The first api-version that accepts ``stream_options`` (2024-09-01-preview; GA 2024-10-21).
#: Older ones answer 400 to it, so their streams carry no usage.
STREAM_OPTIONS_SINCE = "2024-09-01"
#: The first classic api-versions that take ``response_format`` ``json_schema``
#: (2024-08-01-preview; GA 2024-10-21) and ``reasoning_effort`` (2024-12-01-preview); older
#: ones answer 400, so those calls are refused before sending, naming the version to use.
JSON_SCHEMA_SINCE = "2024-08-01"
REASONING_EFFORT_SINCE = "2024-12-01"
#: The first classic api-version that takes ``tools`` and ``tool_choice`` (2023-12-01-preview;
#: the ones before knew only the legacy ``functions``).
TOOLS_SINCE = "2023-12-01"
_V1_SUFFIX = "/openai/v1"
_CLASSIC_SUFFIX = "/openai"


def as_api_version(value: Any) -> str:
    """``"v1"`` or a dated api-version (``2024-10-21``, ``2025-04-01-preview``)."""
    text = as_str(value).strip()
    if text != V1 and not _DATED_VERSION.fullmatch(text):
        raise ValueError('must be "v1" or a dated api-version such as "2024-10-21" or "2025-04-01-preview"')
    return text


class AzureOpenAIProvider(OpenAIProvider):
    """Azure OpenAI (an Azure resource's deployments), both URL styles.

    Options beyond the common ones:

    ``endpoint``
        The resource's address, ``https://RESOURCE.openai.azure.com`` (default
        ``$AZURE_OPENAI_ENDPOINT``). ``base_url`` is accepted instead (not both): the endpoint,
        or ``{endpoint}/openai`` (what ``AzureOpenAI(base_url=...)`` takes), or
        ``{endpoint}/openai/v1`` (which selects the v1 API).
    ``deployment``
        The deployment to call (default: ``model``; ``model`` defaults to it in turn). A
        ``model`` given to ``complete()`` / ``stream()`` names the deployment for that call.
    ``api_version``
        A dated api-version for the classic URLs, or ``"v1"`` (default
        ``$OPENAI_API_VERSION``, else ``"v1"``).
    ``max_tokens_field``
        As for OpenAI; ``"auto"`` sends ``max_completion_tokens`` on v1, and on the classic URLs
        ``max_tokens`` unless the deployment is named like a reasoning model (o1, o3, gpt-5...).

    ``$AZURE_OPENAI_API_KEY`` is sent only to the endpoint ``$AZURE_OPENAI_ENDPOINT`` names:
    Azure has no default host, so a table that sets its own ``endpoint`` or ``base_url`` names
    its key (``api_key_env``, ``api_key``), even when it is that same variable.

    Images, ``schema=`` / ``json=True``, ``reasoning=``, ``top_p``/``seed``, the usage details
    and ``cache=True`` (automatic caching: nothing to send) are OpenAI's. On the classic URLs,
    ``schema=`` needs api-version 2024-08-01-preview or later, ``reasoning=`` 2024-12-01-preview
    and ``tools=`` 2023-12-01-preview or later: with an older one they are refused before
    sending. Tool calling is OpenAI's, tool turns of the history included.

    The health check and ``models()`` list the resource's models (``GET {endpoint}/openai/models``):
    that proves the endpoint and the key, not that a deployment exists, so ``check_model`` is
    off by default (a deployment's name is not a model id).
    """

    TYPE = "azure"
    #: None: every Azure resource has its own host.
    DEFAULT_BASE_URL = ""
    BASE_URL_ENV = "AZURE_OPENAI_ENDPOINT"
    API_KEY_ENV = "AZURE_OPENAI_API_KEY"
    #: The portal names a deployment after its model unless told otherwise.
    DEFAULT_MODEL = "gpt-4o-mini"
    MODELS_PATH = "/models"
    #: Deployments are not models: the listing cannot say whether one exists.
    CHECK_MODEL = False
    #: The embeddings deployment, named after its model as the portal does unless told otherwise.
    EMBEDDING_MODEL = "text-embedding-3-small"
    EXTRA_OPTIONS: ClassVar[Dict[str, Validator]] = {
        "endpoint": as_url,
        "deployment": as_str,
        "api_version": as_api_version,
        "max_tokens_field": as_choice("auto", "max_tokens", "max_completion_tokens"),
    }

    @classmethod
    def display_name(cls) -> str:
        return "Azure OpenAI"

    def __init__(
        self,
        name: Optional[str] = None,
        *,
        endpoint: Optional[str] = None,
        base_url: Optional[str] = None,
        **options: Any,
    ) -> None:
        where = f"{self.TYPE} provider {name or self.TYPE!r}"
        if endpoint is not None and base_url is not None:
            raise ConfigError(f"{where}: endpoint and base_url name the same thing; set one of them")
        if endpoint is not None:
            # Checked under its own name here: below, it is the base_url.
            endpoint = check_options({"endpoint": endpoint}, {"endpoint": as_url}, where=where)["endpoint"]
        # A configured endpoint is a configured base_url: it gets no conventional key.
        super().__init__(name, base_url=endpoint if endpoint is not None else base_url, **options)

    def _configure(self, options: Mapping[str, Any]) -> None:
        where = f"{self.TYPE} provider {self.name!r}"
        endpoint, url_style = self._split_base_url(self.base_url, where)
        version = options.get("api_version") or self._api_version_from_env(where)
        if url_style == V1 and version not in (None, V1):
            raise ConfigError(
                f"{where}: base_url ends in {_V1_SUFFIX}, the v1 API, which takes no api-version; "
                f"remove api_version = {version!r} or use the endpoint as base_url"
            )
        #: ``"v1"``, or the dated api-version sent with every classic request.
        self.api_version: str = version or V1
        #: The resource's address, without ``/openai``; "" when none is configured.
        self.endpoint: str = endpoint
        if endpoint:
            self.base_url = endpoint + (_V1_SUFFIX if self.uses_v1 else _CLASSIC_SUFFIX)
        deployment = options.get("deployment")
        if deployment and "model" not in options:
            self.model = deployment
        #: The deployment called when a call names no other model.
        self.deployment: str = deployment or self.model
        self.max_tokens_field: str = options.get("max_tokens_field", "auto")
        self.organization = self.project = None  # OpenAI-only headers

    @property
    def uses_v1(self) -> bool:
        """Whether requests go to the v1 API (else to the classic deployment URLs)."""
        return self.api_version == V1

    @staticmethod
    def _split_base_url(url: str, where: str) -> Tuple[str, Optional[str]]:
        """(the endpoint, ``"v1"`` when the URL names the v1 API, else None)."""
        if not url:
            return "", None
        parts = urllib.parse.urlsplit(url)
        if parts.query or parts.fragment:
            raise ConfigError(
                f"{where}: the endpoint must be a URL without a query (give api-version as api_version)"
            )
        path = parts.path.rstrip("/")
        if "/openai/deployments" in path + "/":
            raise ConfigError(
                f"{where}: the endpoint must not name a deployment (...{path}); "
                "give the resource's address and the deployment as deployment"
            )
        style = None
        if path.endswith(_V1_SUFFIX):
            path, style = path[: -len(_V1_SUFFIX)], V1
        elif path.endswith(_CLASSIC_SUFFIX):
            path = path[: -len(_CLASSIC_SUFFIX)]
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", "")), style

    def _api_version_from_env(self, where: str) -> Optional[str]:
        value = os.environ.get(API_VERSION_ENV)
        if not value or not value.strip():
            return None
        try:
            return as_api_version(value)
        except ValueError as error:
            raise ConfigError(f"{where}: ${API_VERSION_ENV}={value.strip()!r}: {error}") from None

    def _validate_connection(self) -> None:
        """:raises ConfigError: with no endpoint or no key."""
        if not self.endpoint:
            raise ConfigError(
                f"{self.TYPE} provider {self.name!r}: no endpoint (set ${self.BASE_URL_ENV}, or "
                "endpoint in its config: https://RESOURCE.openai.azure.com)"
            )
        super()._validate_connection()

    def _headers(self, api_key: Optional[str]) -> Tuple[Dict[str, str], Dict[str, str]]:
        if self.uses_v1:
            return {}, ({"Authorization": f"Bearer {api_key}"} if api_key else {})
        return {}, ({"api-key": api_key} if api_key else {})

    def _query(self) -> Optional[Dict[str, str]]:
        return None if self.uses_v1 else {"api-version": self.api_version}

    def _max_tokens_key(self, model: str) -> str:
        if self.max_tokens_field == "auto" and self.uses_v1:
            return "max_completion_tokens"
        return super()._max_tokens_key(model)

    def _build_request(self, call: ChatCall) -> RequestSpec:
        # A model named by the call is that call's deployment; else the configured one.
        deployment = self.deployment if call.model == self.model else call.model
        body = self._chat_body(call)
        body["model"] = deployment  # what AzureOpenAI sends: the deployment, also in the path
        if call.stream and not self.uses_v1 and self.api_version[:10] < STREAM_OPTIONS_SINCE:
            del body["stream_options"]
        if self.uses_v1:
            return RequestSpec("/chat/completions", body)
        path = f"/deployments/{urllib.parse.quote(deployment, safe='')}/chat/completions"
        return RequestSpec(path, body, query=self._query())

    def _embed_request(self, model: str, texts: List[str], dimensions: Optional[int]) -> RequestSpec:
        # ``model`` is the embeddings deployment (``embedding_model``, or the call's).
        body = self._embed_body(model, texts, dimensions)
        if self.uses_v1:
            return RequestSpec("/embeddings", body)
        path = f"/deployments/{urllib.parse.quote(model, safe='')}/embeddings"
        return RequestSpec(path, body, query=self._query())

    def _apply_output_format(self, body: Dict[str, Any], call: ChatCall) -> None:
        if call.output is not None and call.output.mode == "schema":
            self._require_version("structured output (schema=)", JSON_SCHEMA_SINCE)
        super()._apply_output_format(body, call)

    def _apply_reasoning(self, body: Dict[str, Any], call: ChatCall) -> None:
        self._require_version(f"reasoning={call.reasoning!r}", REASONING_EFFORT_SINCE)
        super()._apply_reasoning(body, call)

    def _apply_tools(self, body: Dict[str, Any], call: ChatCall) -> None:
        self._require_version("tools=", TOOLS_SINCE)
        super()._apply_tools(body, call)

    def _require_version(self, feature: str, since: str) -> None:
        """:raises ConfigError: when the classic api-version predates ``since``."""
        if not self.uses_v1 and self.api_version[:10] < since:
            raise self._refuse(
                feature,
                f"api_version {self.api_version!r} does not take it; use {since}-preview or later (or \"v1\")",
            )

    def _health_request(self) -> RequestSpec:
        return RequestSpec(self.MODELS_PATH, method="GET", query=self._query())

    def _models_request(self, query: Optional[Dict[str, str]]) -> Optional[RequestSpec]:
        return RequestSpec(self.MODELS_PATH, method="GET", query={**(self._query() or {}), **(query or {})})

    def _error_detail(self, status: int, body: str) -> Optional[str]:
        """Azure's content-filter refusal (HTTP 400, ``code: content_filter``), said plainly
        with the categories that tripped it; None for any other error."""
        return content_filter_detail(body) if status == 400 else None

    def describe(self) -> Dict[str, Any]:
        described = super().describe()
        described.update(deployment=self.deployment, api_version=self.api_version)
        return described


def content_filter_detail(body: str) -> Optional[str]:
    """``"blocked by Azure's content filter (hate: medium): <message>"`` for a content-filter
    error body (PROTOCOLS-2.md §J.4), else None."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) or error.get("code") != "content_filter":
        return None
    inner = error.get("innererror")
    results = inner.get("content_filter_result") if isinstance(inner, dict) else None
    tripped = []
    if isinstance(results, dict):
        for category, result in results.items():
            if isinstance(result, dict) and result.get("filtered"):
                severity = result.get("severity")
                tripped.append(f"{category}: {severity}" if isinstance(severity, str) else str(category))
    categories = f" ({', '.join(tripped)})" if tripped else ""
    message = error.get("message")
    detail = f": {message}" if isinstance(message, str) and message.strip() else ""
    return f"blocked by Azure's content filter{categories}{detail}"
