"""The three built-in provider types as the tests address them, and a shared retry speed-up."""

from __future__ import annotations

from typing import Dict, Type

from provider_kit import AnthropicProvider, OllamaProvider, OpenAIProvider
from provider_kit._retry import RetryPolicy
from provider_kit.providers._base import HTTPProvider

KINDS = ("openai", "anthropic", "ollama")
CLASSES: Dict[str, Type[HTTPProvider]] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "ollama": OllamaProvider,
}
CHAT_PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages", "ollama": "/api/chat"}


def fast_retries(provider: HTTPProvider) -> HTTPProvider:
    """Shrink the backoff (not the retry count) for tests about whether a call is retried, not
    when; the backoff itself is timed in test_transport's exponential-backoff test."""
    policy = provider._transport.retry
    provider._transport.retry = RetryPolicy(policy.max_retries, backoff_base=0.001, backoff_max=0.002)
    return provider
