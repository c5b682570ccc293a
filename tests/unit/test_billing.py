"""Invoices from plan history and hourly usage: integer money, proration, overage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.billing import API_CALLS, DEFAULT_CATALOG, RECORDS, invoice, period_bounds, plan_spans
from domain.errors import InvalidValueError

NOV = datetime(2026, 11, 1, tzinfo=UTC)


def test_a_whole_month_on_one_plan() -> None:
    bill = invoice("a", "2026-11", [(datetime(2026, 1, 1, tzinfo=UTC), "pro")], [])
    fee, records, calls = bill.line_items
    assert (fee.amount_minor, fee.metric) == (4_900, None)
    assert (records.metric, records.quantity, records.included, records.amount_minor) == (
        RECORDS,
        0,
        5_000_000,
        0,
    )
    assert calls.included == 2_000_000
    assert bill.total_minor == 4_900
    assert bill.currency == "USD"


def test_overage_is_billed_per_started_thousand() -> None:
    usage = [(NOV + timedelta(hours=3), RECORDS, 150_000), (NOV, API_CALLS, 100_001)]
    bill = invoice("a", "2026-11", [(NOV, "basic")], usage)
    by_metric = {item.metric: item for item in bill.line_items}
    assert by_metric[RECORDS].amount_minor == 50 * 50  # 50 000 over, 50 cents per 1 000
    assert by_metric[API_CALLS].amount_minor == 10  # 1 over: a started thousand
    assert bill.total_minor == 2_510


def test_a_mid_month_upgrade_prorates_fees_and_quotas_and_bills_usage_where_it_fell() -> None:
    upgrade = NOV + timedelta(days=15)  # November has 30 days: half and half
    history = [(datetime(2026, 10, 3, tzinfo=UTC), "basic"), (upgrade, "pro")]
    usage = [
        (NOV + timedelta(days=1), RECORDS, 60_000),
        (upgrade + timedelta(hours=1), RECORDS, 60_000),
    ]
    bill = invoice("a", "2026-11", history, usage)
    basic_records = next(i for i in bill.line_items if i.plan == "basic" and i.metric == RECORDS)
    assert (basic_records.quantity, basic_records.included) == (60_000, 50_000)
    assert basic_records.amount_minor == 10 * 50
    pro_fee = next(i for i in bill.line_items if i.plan == "pro" and i.metric is None)
    assert pro_fee.amount_minor == 2_450
    pro_records = next(i for i in bill.line_items if i.plan == "pro" and i.metric == RECORDS)
    assert (pro_records.quantity, pro_records.included, pro_records.amount_minor) == (
        60_000,
        2_500_000,
        0,
    )
    assert bill.total_minor == 500 + 2_450


def test_plan_spans_cover_opening_and_closing_inside_the_period() -> None:
    opened, closed = NOV + timedelta(days=10), NOV + timedelta(days=20)
    spans = plan_spans([(opened, "pro"), (closed, None)], *period_bounds("2026-11"))
    assert [(s.plan, s.start, s.end) for s in spans] == [("pro", opened, closed)]


def test_periods_are_calendar_months() -> None:
    assert period_bounds("2026-12") == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    with pytest.raises(InvalidValueError):
        period_bounds("november")


hours = st.integers(0, 30 * 24 - 1).map(lambda h: NOV + timedelta(hours=h))
usage_rows = st.lists(
    st.tuples(hours, st.sampled_from([RECORDS, API_CALLS]), st.integers(0, 10_000_000)),
    max_size=20,
)
changes = st.lists(
    st.tuples(hours, st.sampled_from(sorted(DEFAULT_CATALOG.plans))), min_size=1, max_size=4
)


@given(history=changes, usage=usage_rows)
def test_invoices_are_integral_non_negative_and_deterministic(
    history: list[tuple[datetime, str]], usage: list[tuple[datetime, str, int]]
) -> None:
    first = invoice("a", "2026-11", history, usage)
    assert first == invoice("a", "2026-11", history, list(reversed(usage)))
    assert all(isinstance(i.amount_minor, int) and i.amount_minor >= 0 for i in first.line_items)
    assert first.total_minor == sum(i.amount_minor for i in first.line_items)
    billed = sum(i.quantity for i in first.line_items if i.metric is not None)
    opened = min(h for h, _ in history)
    counted = sum(v for hour, _, v in usage if hour + timedelta(hours=1) > opened)
    assert billed == counted  # every unit of usage lands on exactly one plan span


@given(usage=usage_rows, split=st.integers(1, 5))
def test_splitting_usage_rows_changes_nothing(
    usage: list[tuple[datetime, str, int]], split: int
) -> None:
    history = [(NOV, "basic")]
    pieces = [
        (h, m, v // split + (1 if i < v % split else 0)) for h, m, v in usage for i in range(split)
    ]
    assert invoice("a", "2026-11", history, usage) == invoice("a", "2026-11", history, pieces)
