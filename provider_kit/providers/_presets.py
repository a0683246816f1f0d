"""Presets: OpenAI-compatible services known by name (``type = "groq"``), each one row of data.

A preset is a :class:`Preset` value in :data:`PRESETS`: the service's base URL, key variable,
whether it needs a key, its base-URL variable when its SDK has one, its default model when one
is sensible, and its quirks (which max-tokens field it takes, the shape of its model listing,
its health endpoint...) as fields, not code. Each row becomes a provider type: a subclass of
:class:`PresetProvider` made from the row (:data:`PRESET_TYPES`), so that everything that
derives from the type classes (config loading, the registry, ``from_config(None)``, the CLI's
help) knows the presets with no edit of its own. Adding a service is adding a row here.

The facts come from PROTOCOLS-2.md §K and PROTOCOLS.md §A.8; a fact marked unverified there is
a default a configuration can override (``max_tokens_field``, ``check_model``, ``base_url``).
"""

from __future__ import annotations

from typing import Any, ClassVar, Dict, List, Mapping, NamedTuple, Optional, Tuple

from .._options import Validator, as_choice
from ..errors import ConfigError, ProviderConnectionError, ProviderError
from ._calls import RequestSpec
from ._listing import listing_problem
from .openai import OpenAIProvider

__all__ = ["PRESETS", "PRESET_TYPES", "Preset", "PresetProvider"]


class Preset(NamedTuple):
    """One OpenAI-compatible service: what a provider of its type needs to know.

    A NamedTuple rather than a dataclass: ``dataclasses`` costs milliseconds at import.
    """

    #: The ``type`` name in config files, and the provider's name when the environment adds it.
    name: str
    #: The service's name for people (the docs table, messages).
    label: str
    #: Includes the API version path (``/v1``...), as the service's OpenAI-SDK examples write it.
    base_url: str
    #: The conventional key variable, sent only to ``base_url``'s origin or the server
    #: ``base_url_env`` names; None when the service has no client-side key convention.
    api_key_env: Optional[str]
    #: Whether a server of this type needs a key (one on a loopback address never does).
    requires_key: bool = True
    #: The variable naming another server of the service, when its own SDK reads one.
    base_url_env: Optional[str] = None
    #: The model used when the config names none; "" when none is sensible (a local server
    #: serves whatever it loaded, a catalogue changes): then ``model`` must be configured.
    default_model: str = ""
    #: The request field of the output cap: ``"max_tokens"``, ``"max_completion_tokens"`` or
    #: ``"auto"`` (OpenAI's rule); the ``max_tokens_field`` option overrides it.
    max_tokens_field: str = "max_tokens"
    #: The model listing (GET, relative to ``base_url``); "" when the service has none.
    models_path: str = "/models"
    #: What the listing answers: ``"object"`` (``{"object": "list", "data": [...]}``) or
    #: ``"array"`` (a bare JSON array of models). Every preset accepts both.
    models_shape: str = "object"
    #: Whether the health check looks for the model in the listing by default.
    check_model: bool = True
    #: The health check's GET (relative to ``base_url``) when the model is not looked for;
    #: None: the model listing.
    health_path: Optional[str] = None
    #: The error body: ``"nested"`` (``{"error": {"message"...}}``) or ``"top-level"``
    #: (``{"object": "error", "message"...}``). Both are read; the simulator sends this one.
    error_shape: str = "nested"
    #: Whether ``error.code`` is the HTTP status as an integer rather than a string.
    integer_error_codes: bool = False
    #: An SSE comment line the service sends while it works (skipped, as comments are).
    stream_comment: Optional[str] = None
    #: Whether an error after generation began arrives with status 200 (in the body, or as a
    #: stream event); provider_kit raises it as the error it names either way.
    errors_after_200: bool = False
    #: Added to an "unreachable" health reason when ``base_url`` is this row's default.
    unreachable_hint: str = ""
    #: What a user should know, for the docs table.
    note: str = ""
    #: The structured-output modes the service takes: "schema" (``response_format``
    #: ``json_schema``) and "json" (``json_object``); the others are refused before sending
    #: (LM Studio rejects ``json_object``, DeepSeek knows only ``json_object``: §F.2).
    structured_output: Tuple[str, ...] = ("schema", "json")
    #: The field the service returns thinking text in, ``"reasoning_content"`` or
    #: ``"reasoning"`` (§H.2); None when it returns none or is not known. Both are read
    #: whatever this says; it is what the simulator sends and the name echoed back.
    reasoning_field: Optional[str] = None
    #: Whether an assistant turn sends its thinking back under ``reasoning_field`` (DeepSeek's
    #: rule: required on tool-call turns, ignored on others).
    echo_reasoning: bool = False
    #: The body fields of ``reasoning=False``; None: OpenAI's ``reasoning_effort: "none"``.
    reasoning_off: Optional[Mapping[str, Any]] = None
    #: The body field of ``seed=``.
    seed_field: str = "seed"
    #: The ``tool_choice`` forms the service honours ("auto", "none", "required", "name": one
    #: named tool); the others are refused before sending. Empty: no tool calling (``tools=``
    #: refused). llama.cpp reads only the strings: a named choice silently becomes "auto".
    tool_choices: Tuple[str, ...] = ("auto", "none", "required", "name")
    #: The rule tool-call ids sent back must follow: None, or ``"alnum9"`` (Mistral refuses
    #: any id but 9 letters and digits; foreign ids are rewritten the same way in a turn's calls
    #: and in the results answering them).
    tool_id_rule: Optional[str] = None
    #: JSON-schema keywords the service refuses in a tool's parameters, removed before sending.
    tool_schema_drop: Tuple[str, ...] = ()
    #: Whether the service has ``POST /embeddings`` (``embed()`` is refused before sending
    #: otherwise), its default embedding model ("" when ``model=`` or ``embedding_model``
    #: must name one), and the body field of ``dimensions=`` (Mistral's ``output_dimension``).
    embeddings: bool = True
    embedding_model: str = ""
    dimensions_field: str = "dimensions"


#: Every preset, in the order the docs list them.
PRESETS: Tuple[Preset, ...] = (
    Preset(
        "groq", "Groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY",
        base_url_env="GROQ_BASE_URL",
        default_model="llama-3.1-8b-instant",
        max_tokens_field="max_completion_tokens",
        reasoning_field="reasoning",
        embeddings=False,
        note="rejects logprobs, logit_bias and messages[].name; n must be 1",
    ),
    Preset(
        "openrouter", "OpenRouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY",
        default_model="openrouter/auto",
        integer_error_codes=True,
        stream_comment="OPENROUTER PROCESSING",
        errors_after_200=True,
        reasoning_field="reasoning",
        note="model ids are vendor/model; attribution headers (HTTP-Referer, X-Title) go in headers",
    ),
    Preset(
        "mistral", "Mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY",
        default_model="mistral-small-latest",
        error_shape="top-level",
        seed_field="random_seed",
        tool_id_rule="alnum9",
        embedding_model="mistral-embed",
        dimensions_field="output_dimension",
        note='errors are a top-level {"object": "error", "message": ...}',
    ),
    Preset(
        "deepseek", "DeepSeek", "https://api.deepseek.com", "DEEPSEEK_API_KEY",
        default_model="deepseek-chat",
        structured_output=("json",),
        reasoning_field="reasoning_content",
        echo_reasoning=True,
        reasoning_off={"thinking": {"type": "disabled"}},
        embeddings=False,
        note="no /v1 in the base URL (also served under /v1)",
    ),
    Preset(
        "together", "Together AI", "https://api.together.xyz/v1", "TOGETHER_API_KEY",
        base_url_env="TOGETHER_BASE_URL",
        models_shape="array",
        note="no default model: set model; /models answers a bare JSON array",
    ),
    Preset(
        "fireworks", "Fireworks AI", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY",
        note="no default model: set model (accounts/fireworks/models/NAME)",
    ),
    Preset(
        "xai", "xAI", "https://api.x.ai/v1", "XAI_API_KEY",
        integer_error_codes=True,
        reasoning_field="reasoning_content",
        embeddings=False,
        note="no default model: set model (grok-...)",
    ),
    Preset(
        "gemini", "Gemini", "https://generativelanguage.googleapis.com/v1beta/openai/", "GEMINI_API_KEY",
        default_model="gemini-2.5-flash",
        tool_schema_drop=("additionalProperties", "examples"),
        embedding_model="gemini-embedding-001",
        note="Google's OpenAI-compatible endpoint",
    ),
    Preset(
        "lmstudio", "LM Studio", "http://localhost:1234/v1", None,
        requires_key=False,
        structured_output=("schema",),
        reasoning_field="reasoning_content",
        note="no key; no default model: set model to the identifier LM Studio shows",
    ),
    Preset(
        "vllm", "vLLM", "http://localhost:8000/v1", "VLLM_API_KEY",
        requires_key=False,
        integer_error_codes=True,
        reasoning_field="reasoning",
        reasoning_off={"chat_template_kwargs": {"enable_thinking": False}},
        note="the key only if the server was started with --api-key; no default model: set model",
    ),
    Preset(
        "llamacpp", "llama.cpp", "http://localhost:8080/v1", "LLAMA_API_KEY",
        requires_key=False,
        check_model=False,
        health_path="/health",
        integer_error_codes=True,
        reasoning_field="reasoning_content",
        tool_choices=("auto", "none", "required"),
        unreachable_hint=(
            "llama-server's default port is 8080, 9931 in releases since Aug 2026: "
            "set base_url to the port it listens on"
        ),
        note=(
            "the key only with --api-key; check_model is off (it lists only its alias and accepts "
            "any name); health via /health (503 while loading); the default port moves from 8080 "
            "to 9931: set base_url"
        ),
    ),
)


class PresetProvider(OpenAIProvider):
    """An OpenAI-compatible service described by a :class:`Preset` (its ``PRESET``).

    The class of each preset is made from its row (:func:`preset_type`); this base holds the
    behaviour the rows' fields select. Options: the common ones and ``max_tokens_field``
    (OpenAI's ``organization`` / ``project`` are for api.openai.com only).
    """

    PRESET: ClassVar[Preset]
    EXTRA_OPTIONS: ClassVar[Dict[str, Validator]] = {
        "max_tokens_field": as_choice("auto", "max_tokens", "max_completion_tokens"),
    }

    @classmethod
    def display_name(cls) -> str:
        return cls.PRESET.label

    def _configure(self, options: Mapping[str, Any]) -> None:
        self.organization = None
        self.project = None
        self.max_tokens_field = options.get("max_tokens_field", self.PRESET.max_tokens_field)
        if "check_model" not in options:
            self.check_model = self.PRESET.check_model

    def validate_config(self) -> None:
        if not self.model:
            raise ConfigError(
                f"{self.TYPE} provider {self.name!r}: no model configured ({self.PRESET.label} has no "
                f"default model: set model in its config; `provider-kit models {self.name}` lists them)"
            )
        super().validate_config()

    def _embed_body(self, model: str, texts: List[str], dimensions: Optional[int]) -> Dict[str, Any]:
        body = super()._embed_body(model, texts, dimensions)
        field = self.PRESET.dimensions_field
        if dimensions is not None and field != "dimensions":
            body = {(field if key == "dimensions" else key): value for key, value in body.items()}
        return body

    def _models_page(self, data: Any) -> Tuple[List[str], Optional[Dict[str, str]]]:
        # A bare array (Together's) is the same listing without its envelope.
        return super()._models_page({"data": data} if isinstance(data, list) else data)

    def _health_request(self) -> RequestSpec:
        return RequestSpec(self.PRESET.health_path or self.MODELS_PATH, method="GET")

    def _health_problem(self, data: Any) -> Optional[str]:
        if self.PRESET.health_path:
            # llama.cpp: {"status": "ok"} when ready; a 503 while loading is an error already.
            status = data.get("status") if isinstance(data, dict) else None
            return None if status in (None, "ok") else f"error: the server reports status {status!r}"
        return listing_problem({"data": data} if isinstance(data, list) else data)

    def _health_reason(self, error: ProviderError) -> str:
        reason = super()._health_reason(error)
        hint = self.PRESET.unreachable_hint
        default = self.base_url.rstrip("/") == self.DEFAULT_BASE_URL.rstrip("/")
        if hint and default and isinstance(error, ProviderConnectionError):
            reason += f" ({hint})"
        return reason


def preset_type(preset: Preset) -> type:
    """The provider class of ``preset``: a :class:`PresetProvider` with the row's facts as its
    class attributes (``TYPE``, ``DEFAULT_BASE_URL``, ``API_KEY_ENV``...)."""
    class_name = "".join(ch for ch in preset.label.title() if ch.isalnum()) + "Provider"
    key = f"``${preset.api_key_env}``" if preset.api_key_env else "no key variable"
    attributes: Dict[str, Any] = {
        "__module__": __name__,
        "__qualname__": class_name,
        "__doc__": f"{preset.label} (``type = {preset.name!r}``): OpenAI Chat Completions at "
        f"``{preset.base_url}``, {key}; see :data:`PRESETS`.",
        "PRESET": preset,
        "TYPE": preset.name,
        "DEFAULT_BASE_URL": preset.base_url,
        "BASE_URL_ENV": preset.base_url_env,
        "API_KEY_ENV": preset.api_key_env,
        "REQUIRES_KEY": preset.requires_key,
        "DEFAULT_MODEL": preset.default_model,
        "MODELS_PATH": preset.models_path,
        "STRUCTURED_OUTPUT_MODES": frozenset(preset.structured_output),
        "ECHO_REASONING": preset.echo_reasoning,
        "SEED_FIELD": preset.seed_field,
        "REASONING_FIELD": preset.reasoning_field,
        "TOOL_CHOICES": frozenset(preset.tool_choices),
        "TOOL_ID_RULE": preset.tool_id_rule,
        "TOOL_SCHEMA_DROP": tuple(preset.tool_schema_drop),
        "EMBEDDINGS_PATH": "/embeddings" if preset.embeddings else "",
        "EMBEDDING_MODEL": preset.embedding_model,
    }
    if preset.reasoning_off is not None:
        attributes["REASONING_OFF"] = preset.reasoning_off
    return type(class_name, (PresetProvider,), attributes)


#: Preset name -> its provider class, in the order of :data:`PRESETS`.
PRESET_TYPES: Dict[str, type] = {preset.name: preset_type(preset) for preset in PRESETS}
