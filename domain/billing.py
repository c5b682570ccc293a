"""Plans and invoices. Pure: an invoice is a function of the account's plan history and its
hourly usage, both derived from events, so the same events always bill the same amounts.

Money is in integer minor units (cents); proration rounds half up per line item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from domain.errors import InvalidValueError

HOUR = timedelta(hours=1)
RECORDS = "records_ingested"
API_CALLS = "api_calls"
BILLED_METRICS = (RECORDS, API_CALLS)


@dataclass(frozen=True, slots=True)
class Price:
    """`minor` currency units for every started `per` units beyond the quota."""

    minor: int
    per: int


@dataclass(frozen=True, slots=True)
class PlanTerms:
    name: str
    monthly_fee: int
    included: Mapping[str, int]
    overage: Mapping[str, Price]
    rate_limit_per_minute: int | None
    """None: unlimited."""


@dataclass(frozen=True, slots=True)
class Catalog:
    currency: str
    plans: Mapping[str, PlanTerms]

    def terms(self, plan: str) -> PlanTerms:
        try:
            return self.plans[plan]
        except KeyError:
            raise InvalidValueError("plan", f"no terms for plan '{plan}'") from None


DEFAULT_CATALOG = Catalog(
    currency="USD",
    plans={
        "basic": PlanTerms(
            "basic",
            monthly_fee=0,
            included={RECORDS: 100_000, API_CALLS: 100_000},
            overage={RECORDS: Price(50, 1000), API_CALLS: Price(10, 1000)},
            rate_limit_per_minute=1_000,
        ),
        "pro": PlanTerms(
            "pro",
            monthly_fee=4_900,
            included={RECORDS: 5_000_000, API_CALLS: 2_000_000},
            overage={RECORDS: Price(20, 1000), API_CALLS: Price(5, 1000)},
            rate_limit_per_minute=10_000,
        ),
        "enterprise": PlanTerms(
            "enterprise",
            monthly_fee=99_900,
            included={RECORDS: 100_000_000, API_CALLS: 50_000_000},
            overage={RECORDS: Price(10, 1000), API_CALLS: Price(2, 1000)},
            rate_limit_per_minute=None,
        ),
    },
)


@dataclass(frozen=True, slots=True)
class PlanSpan:
    plan: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class LineItem:
    description: str
    plan: str
    metric: str | None
    quantity: int
    """Units billed: seconds of the period for a fee, units used for a metric."""
    included: int
    unit_price_minor: int
    per: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class Invoice:
    account_id: str
    period: str
    currency: str
    start: datetime
    end: datetime
    line_items: list[LineItem] = field(default_factory=list)

    @property
    def total_minor(self) -> int:
        return sum(item.amount_minor for item in self.line_items)


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """'2026-11' -> [2026-11-01, 2026-12-01) in UTC."""
    try:
        year, month = (int(part) for part in period.split("-"))
        start = datetime(year, month, 1, tzinfo=UTC)
    except ValueError:
        raise InvalidValueError("period", "must be YYYY-MM") from None
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def plan_spans(
    history: Sequence[tuple[datetime, str | None]], start: datetime, end: datetime
) -> list[PlanSpan]:
    """The plan in effect over [start, end), from (when, plan) changes; None = closed."""
    spans: list[PlanSpan] = []
    ordered = sorted(history, key=lambda change: change[0])
    for index, (since, plan) in enumerate(ordered):
        until = ordered[index + 1][0] if index + 1 < len(ordered) else end
        lo, hi = max(since, start), min(until, end)
        if plan is not None and lo < hi:
            spans.append(PlanSpan(plan, lo, hi))
    return spans


def _share(amount: int, part: float, whole: float) -> int:
    """amount * part / whole, rounded half up, in integers (seconds are whole numbers)."""
    numerator = amount * int(part) * 2 + int(whole)
    return numerator // (2 * int(whole))


def invoice(
    account_id: str,
    period: str,
    history: Sequence[tuple[datetime, str | None]],
    hourly_usage: Sequence[tuple[datetime, str, int]],
    catalog: Catalog = DEFAULT_CATALOG,
) -> Invoice:
    """Fees and quotas prorate by the seconds each plan was in effect; usage is billed
    against the plan in effect at the hour it happened. `history` is in the order the changes
    happened. Overage is charged per started `per` units."""
    start, end = period_bounds(period)
    seconds = (end - start).total_seconds()
    bill = Invoice(account_id, period, catalog.currency, start, end)
    spans = plan_spans(history, start, end)
    usage_of = _attribute(spans, hourly_usage)
    for index, span in enumerate(spans):
        terms = catalog.terms(span.plan)
        held = (span.end - span.start).total_seconds()
        if terms.monthly_fee:
            bill.line_items.append(
                LineItem(
                    description=f"{terms.name} plan, {_day(span.start)} to {_day(span.end)}",
                    plan=terms.name,
                    metric=None,
                    quantity=int(held),
                    included=0,
                    unit_price_minor=terms.monthly_fee,
                    per=int(seconds),
                    amount_minor=_share(terms.monthly_fee, held, seconds),
                )
            )
        for metric in BILLED_METRICS:
            used = usage_of[index].get(metric, 0)
            included = _share(terms.included.get(metric, 0), held, seconds)
            price = terms.overage.get(metric, Price(0, 1))
            over = max(used - included, 0)
            bill.line_items.append(
                LineItem(
                    description=f"{metric.replace('_', ' ')} on {terms.name}",
                    plan=terms.name,
                    metric=metric,
                    quantity=used,
                    included=included,
                    unit_price_minor=price.minor,
                    per=price.per,
                    amount_minor=-(-over // price.per) * price.minor,
                )
            )
    return bill


def _attribute(
    spans: Sequence[PlanSpan], hourly_usage: Sequence[tuple[datetime, str, int]]
) -> list[dict[str, int]]:
    """Usage per span: an hour's usage goes to the plan that held most of that hour (the
    later one on a tie); hours no plan held (before opening, after closing) are not billed."""
    totals: list[dict[str, int]] = [{} for _ in spans]
    for hour, metric, value in hourly_usage:
        until = hour + HOUR
        overlaps = [
            (min(until, s.end) - max(hour, s.start), index)
            for index, s in enumerate(spans)
            if s.start < until and hour < s.end
        ]
        if overlaps:
            _, index = max(overlaps)
            totals[index][metric] = totals[index].get(metric, 0) + value
    return totals


def _day(moment: datetime) -> str:
    return moment.date().isoformat()
