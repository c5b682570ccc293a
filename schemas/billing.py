"""The invoice as the API returns it: money in integer minor units, never floats."""

from __future__ import annotations

from datetime import datetime

import msgspec


class LineItemView(msgspec.Struct, frozen=True):
    description: str
    plan: str
    metric: str | None
    """None for the plan's fee."""
    quantity: int
    """Units used (a metric), or seconds the plan was held (the fee)."""
    included: int
    unit_price_minor: int
    per: int
    """The price is for every started `per` units (for a fee: the period's seconds)."""
    amount_minor: int


class InvoiceView(msgspec.Struct, frozen=True):
    account_id: str
    period: str
    currency: str
    start: datetime
    end: datetime
    line_items: list[LineItemView]
    total_minor: int
