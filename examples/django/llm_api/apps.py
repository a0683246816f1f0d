from django.apps import AppConfig


class LlmApiConfig(AppConfig):
    name = "llm_api"
    verbose_name = "LLM API (provider_kit)"
