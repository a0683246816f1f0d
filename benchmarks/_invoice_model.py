"""The pydantic classes of ``_payloads.SCHEMA`` (imported only by the clients that pass a class)."""

from __future__ import annotations

from typing import List

from pydantic import BaseModel


class Address(BaseModel):
    street: str
    city: str
    postal_code: str
    country: str


class Party(BaseModel):
    name: str
    vat_id: str
    address: Address


class LineItem(BaseModel):
    sku: str
    description: str
    quantity: int
    unit_price: float
    total: float


class Invoice(BaseModel):
    invoice_number: str
    issue_date: str
    due_date: str
    currency: str
    vendor: Party
    customer: Party
    line_items: List[LineItem]
    subtotal: float
    tax_rate: float
    tax: float
    total: float
    paid: bool
    notes: str
