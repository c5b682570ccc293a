"""`GET /v1/billing/{account_id}?period=YYYY-MM`: the month's invoice, computed on demand from
the account's plan history (its events) and its metered usage (a projection of events), so
the same events always produce the same invoice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter, SkipValidation

from domain.access import Scope
from domain.billing import API_CALLS, RECORDS, Catalog, invoice, period_bounds
from domain.errors import NotFoundError
from read_api.api import Events, Meta_, Principal_
from read_api.ports import UsageReader
from schemas.billing import InvoiceView, LineItemView
from schemas.envelope import Envelope
from schemas.events import ProjectedEvent

Period = Annotated[
    str | None,
    QueryParameter(
        name="period", pattern=r"^\d{4}-\d{2}$", description="YYYY-MM (default: this month)."
    ),
]


def plan_history(events: Sequence[ProjectedEvent]) -> list[tuple[datetime, str | None]]:
    """When the account was on which plan; None from its closing on."""
    history: list[tuple[datetime, str | None]] = []
    for event in events:
        if event.type in ("Account.Opened", "Account.PlanChanged"):
            history.append((event.timestamp, event.payload["plan"]))
        elif event.type == "Account.Closed":
            history.append((event.timestamp, None))
    return history


@get(
    "/v1/billing/{account_id:uuid}",
    opt={"scope": Scope.BILLING_READ, "reads": "analytics"},
    summary="The invoice of a month: fees and overage in integer minor units",
)
async def get_invoice(
    account_id: FromPath[UUID],
    principal: Principal_,
    events: Events,
    usage: NamedDependency[SkipValidation[UsageReader]],
    catalog: NamedDependency[SkipValidation[Catalog]],
    meta: Meta_,
    period: Period = None,
) -> Envelope[InvoiceView]:
    principal.require_account(account_id)
    month = period or datetime.now(UTC).strftime("%Y-%m")
    start, end = period_bounds(month)
    stream = await events.history(account_id)
    if not stream or stream[0].type != "Account.Opened":
        raise NotFoundError("no such account")
    rows = await usage.usage(str(account_id), start, end, "hour")
    hourly = [(r.period_start, RECORDS, r.records_ingested) for r in rows] + [
        (r.period_start, API_CALLS, sum(r.api_calls.values())) for r in rows
    ]
    bill = invoice(str(account_id), month, plan_history(stream), hourly, catalog)
    view = InvoiceView(
        account_id=bill.account_id,
        period=bill.period,
        currency=bill.currency,
        start=bill.start,
        end=bill.end,
        line_items=[
            LineItemView(
                description=i.description,
                plan=i.plan,
                metric=i.metric,
                quantity=i.quantity,
                included=i.included,
                unit_price_minor=i.unit_price_minor,
                per=i.per,
                amount_minor=i.amount_minor,
            )
            for i in bill.line_items
        ],
        total_minor=bill.total_minor,
    )
    return Envelope(data=view, meta=meta)
