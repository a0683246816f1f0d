"""Helpers for testing code that uses provider_kit, without network or keys.

* ``FakeProvider``: a scripted in-memory provider.
* ``LoopbackServer``: a real HTTP/1.1 server on 127.0.0.1 that speaks the OpenAI, Anthropic or
  Ollama wire format, with scripted replies (``Reply``), faults, gates (``Gate``) and a record of
  every request.

Never imported by ``provider_kit`` itself.
"""

from __future__ import annotations

from ._fake import FakeCall, FakeProvider
from ._server import Gate, LoopbackServer, RecordedRequest, Reply

__all__ = ["FakeCall", "FakeProvider", "Gate", "LoopbackServer", "RecordedRequest", "Reply"]
