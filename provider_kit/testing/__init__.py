"""Helpers for testing code that uses provider_kit, without network or keys.

Never imported by ``provider_kit`` itself.
"""

from __future__ import annotations

from ._fake import FakeCall, FakeProvider

__all__ = ["FakeCall", "FakeProvider"]
