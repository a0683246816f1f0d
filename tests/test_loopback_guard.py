"""The suite's own guard (conftest.loopback_only): nothing reaches past this machine."""

from __future__ import annotations

import socket

import pytest

from provider_kit import OpenAIProvider, ProviderConnectionError


def test_non_loopback_names_do_not_resolve():
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("api.openai.com", 443)
    assert socket.getaddrinfo("127.0.0.1", 80)
    assert socket.getaddrinfo("localhost", 80)


def test_non_loopback_addresses_are_not_connected_to():
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError, match="test guard"):
        sock.connect(("10.255.255.1", 53))


def test_a_provider_pointed_outside_fails_as_unresolvable():
    provider = OpenAIProvider(base_url="https://api.openai.com/v1", api_key="sk-guard-000000", max_retries=0)
    with provider, pytest.raises(ProviderConnectionError, match="could not be resolved"):
        provider.complete("hi", timeout=2)
