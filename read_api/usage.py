"""`GET /v1/usage/{account_id}`: an account's metered usage per hour or day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter, SkipValidation

from domain.access import Scope
from read_api.api import Meta_, Principal_
from read_api.consistency import InvalidQueryError
from read_api.ports import UsageReader
from schemas.envelope import Envelope
from schemas.query import UsageRow, UsageView

Granularity = Literal["hour", "day"]
STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
DEFAULT_SPAN = {"hour": timedelta(hours=24), "day": timedelta(days=30)}
MAX_SPAN = {"hour": timedelta(days=31), "day": timedelta(days=400)}

Usage = NamedDependency[SkipValidation[UsageReader]]
MOMENT = "ISO-8601 time or date (UTC unless it has an offset)"
From = Annotated[str | None, QueryParameter(name="from", description=f"{MOMENT}; inclusive.")]
To = Annotated[str | None, QueryParameter(name="to", description=f"{MOMENT}; exclusive.")]
GranularityParam = Annotated[
    Granularity, QueryParameter(name="granularity", description="hour (default) or day.")
]


def _floor(moment: datetime, granularity: Granularity) -> datetime:
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if granularity == "day" else moment


def _ceil(moment: datetime, granularity: Granularity) -> datetime:
    floor = _floor(moment, granularity)
    return floor if floor == moment else floor + STEP[granularity]


def _parse(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidQueryError(f"{name} must be an ISO-8601 time or date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidQueryError(f"{name} is out of range") from None


def usage_range(
    start: str | None, end: str | None, granularity: Granularity, now: datetime
) -> tuple[datetime, datetime]:
    """[from, to) widened to whole periods; by default the last 24 hours or 30 days."""
    to = _ceil(_parse(end, "to") if end else now, granularity)
    since = _floor(_parse(start, "from"), granularity) if start else to - DEFAULT_SPAN[granularity]
    if since >= to:
        raise InvalidQueryError("from must be before to")
    if to - since > MAX_SPAN[granularity]:
        days = MAX_SPAN[granularity].days
        raise InvalidQueryError(f"at most {days} days at {granularity} granularity")
    return since, to


def total(rows: list[UsageRow], start: datetime) -> UsageRow:
    calls: dict[str, int] = {}
    for row in rows:
        for name, n in row.api_calls.items():
            calls[name] = calls.get(name, 0) + n
    return UsageRow(
        period_start=start,
        records_ingested=sum(r.records_ingested for r in rows),
        bytes_ingested=sum(r.bytes_ingested for r in rows),
        api_calls=calls,
        search_calls=sum(r.search_calls for r in rows),
        query_calls=sum(r.query_calls for r in rows),
    )


@get(
    "/v1/usage/{account_id:uuid}",
    opt={"scope": Scope.BILLING_READ, "reads": "analytics"},
    summary="Metered usage per hour or day: records and bytes ingested, API calls by class",
)
async def get_usage(
    account_id: FromPath[UUID],
    principal: Principal_,
    usage: Usage,
    meta: Meta_,
    start: From = None,
    to: To = None,
    granularity: GranularityParam = "hour",
) -> Envelope[UsageView]:
    """Periods without usage are left out; `total` covers the whole range. `from` is
    inclusive and `to` exclusive, both widened to whole periods."""
    principal.require_account(account_id)
    since, until = usage_range(start, to, granularity, datetime.now(UTC))
    rows = await usage.usage(str(account_id), since, until, granularity)
    view = UsageView(
        account_id=str(account_id),
        granularity=granularity,
        from_=since,
        to=until,
        rows=rows,
        total=total(rows, since),
    )
    return Envelope(data=view, meta=meta)
