"""What the structured-output and image scenarios send and expect: one canned 2 KB JSON answer
with its schema, one generated PNG, and the responder that makes a loopback server play the answer.

Every client of a scenario gets the same answer and is checked against the same value, so no
client can look fast by reading less. The pydantic classes of the same schema are in
``_invoice_model`` (pydantic is imported only by the clients that use it).
"""

from __future__ import annotations

import json
import random
import struct
import zlib
from typing import Any, Dict, List

#: The chat path of each protocol, where the canned answer is played.
CHAT_PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages", "ollama": "/api/chat"}
#: The request field that asks each protocol for structured output (checked by the responder).
STRUCTURED_FIELDS = {"openai": "response_format", "anthropic": "output_config", "ollama": "format"}
#: The prompt every structured-output call sends (the answer is canned; the prompt is the same).
STRUCTURED_PROMPT = "Extract the invoice in the attached text as JSON: vendor, customer, line items, totals."


def _party(name: str, vat: str, street: str, city: str, code: str, country: str) -> Dict[str, Any]:
    return {"name": name, "vat_id": vat,
            "address": {"street": street, "city": city, "postal_code": code, "country": country}}


def _line_items() -> List[Dict[str, Any]]:
    # Prices are multiples of 1/4, so every total is exact in binary floating point.
    items = [
        ("WID-1001", "Stainless steel widget, 40 mm, brushed finish", 12, 3.25),
        ("WID-1002", "Stainless steel widget, 60 mm, brushed finish", 8, 4.75),
        ("BRK-2210", "Mounting bracket, galvanised, pack of 4", 5, 9.5),
        ("SCR-0550", "Hex screws M5 x 20, box of 100", 3, 6.25),
        ("GSK-7781", "Rubber gasket set, food grade", 10, 1.75),
        ("CBL-3003", "Braided cable, 2 m, with crimped ends", 6, 7.5),
        ("LBL-0042", "Printed asset labels, roll of 500", 2, 14.25),
        ("SVC-0001", "On-site installation, per hour", 4, 65.0),
        ("SVC-0002", "Travel flat rate, zone B", 1, 45.0),
        ("PKG-0300", "Export packaging, wooden crate", 1, 38.5),
    ]
    return [{"sku": sku, "description": text, "quantity": quantity, "unit_price": price,
             "total": quantity * price} for sku, text, quantity, price in items]


def structured_answer() -> Dict[str, Any]:
    """The canned answer, as the clients must parse it."""
    items = _line_items()
    subtotal = sum(item["total"] for item in items)
    return {
        "invoice_number": "INV-2026-004211",
        "issue_date": "2026-11-02",
        "due_date": "2026-12-02",
        "currency": "EUR",
        "vendor": _party("Nordwerk Industriebedarf GmbH", "DE811907980", "Hafenstrasse 17", "Bremen", "28217",
                         "DE"),
        "customer": _party("Atelier Lumiere SARL", "FR40303265045", "12 rue des Tanneurs", "Lyon", "69002", "FR"),
        "line_items": items,
        "subtotal": subtotal,
        "tax_rate": 0.25,
        "tax": subtotal * 0.25,
        "total": subtotal * 1.25,
        "paid": False,
        "notes": "Payment within 30 days by bank transfer; please quote the invoice number. Goods remain our "
                 "property until paid in full. Questions: accounts@nordwerk.example, +49 421 555 0199.",
    }


#: The canned answer as the server sends it (about 2 KB).
STRUCTURED_TEXT = json.dumps(structured_answer())


def _object(properties: Dict[str, Any]) -> Dict[str, Any]:
    # Strict-compatible (every property required, no others) for OpenAI strict mode and Anthropic.
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


_STRING, _NUMBER = {"type": "string"}, {"type": "number"}
_ADDRESS = _object({"street": _STRING, "city": _STRING, "postal_code": _STRING, "country": _STRING})
_PARTY = _object({"name": _STRING, "vat_id": _STRING, "address": _ADDRESS})
_LINE_ITEM = _object({"sku": _STRING, "description": _STRING, "quantity": {"type": "integer"},
                      "unit_price": _NUMBER, "total": _NUMBER})
#: The schema, as a caller would write it by hand (``title`` names it "Invoice", as the class does).
SCHEMA: Dict[str, Any] = {
    "title": "Invoice",
    **_object({
        "invoice_number": _STRING, "issue_date": _STRING, "due_date": _STRING, "currency": _STRING,
        "vendor": _PARTY, "customer": _PARTY, "line_items": {"type": "array", "items": _LINE_ITEM},
        "subtotal": _NUMBER, "tax_rate": _NUMBER, "tax": _NUMBER, "total": _NUMBER,
        "paid": {"type": "boolean"}, "notes": _STRING,
    }),
}


def png_bytes(width: int = 96, height: int = 96, seed: int = 11) -> bytes:
    """A valid RGB PNG of noise (incompressible: ~28 KB for 96 x 96), the same bytes every time."""
    noise = random.Random(seed)
    rows = b"".join(b"\x00" + bytes(noise.getrandbits(8) for _ in range(width * 3)) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b""))


PNG = png_bytes()


def install_structured_answer(server: Any, protocol: str, copies: int = 4) -> None:
    """Make ``server`` answer every chat request with the canned JSON, forever.

    Each request is first answered by the simulator, whose 400 (a request the real API would
    reject, e.g. OpenAI strict mode with a schema that is not strict-compatible) is returned as
    is; a request that does not ask for structured output is a 400 too. Only a request the
    simulator accepts gets the canned answer. Each scripted reply queues its successor, so the
    queue never runs dry; ``copies`` of them allow that many concurrent requests.
    """
    simulate = getattr(getattr(server, "_wire", None), "simulate", None)
    if simulate is None:
        raise RuntimeError("provider_kit.testing.LoopbackServer changed: update install_structured_answer")
    canned = server.completion_reply(STRUCTURED_TEXT)
    path, field = CHAT_PATHS[protocol], STRUCTURED_FIELDS[protocol]

    def respond(request: Any) -> Any:
        server.enqueue(respond, path=path)
        checked = simulate(server, request)
        if checked.status != 200:
            return checked
        body = request.json()
        if not body.get(field):
            return server.error_reply(400, f"benchmark: the request has no {field!r}: not a structured-output call")
        return canned

    server.enqueue(respond, path=path, times=copies)


def expect_equal(key: str, got: Any, expected: Any) -> None:
    if got != expected:
        raise AssertionError(f"{key}: parsed answer differs from the canned one: {str(got)[:120]}")
