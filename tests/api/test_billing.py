"""Invoices from events: plan history and metered usage, in integer minor units, the same
again after the usage read model is rebuilt from the event store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from infra.bootstrap import bootstrap
from infra.config import Settings
from projections.runner import CatchUpRunner
from tests.conftest import Stack, _client, assert_error

PLANS = {
    "currency": "EUR",
    "plans": {
        "basic": {
            "monthly_fee": 0,
            "rate_limit_per_minute": None,
            "included": {"records_ingested": 0, "api_calls": 0},
            "overage": {
                "records_ingested": {"minor": 5, "per": 1},
                "api_calls": {"minor": 1, "per": 2},
            },
        },
        "pro": {"monthly_fee": 3000, "rate_limit_per_minute": None},
    },
}


@pytest.fixture
async def billed(settings: Settings, tmp_path: Path) -> AsyncIterator[Stack]:
    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps(PLANS))
    platform = bootstrap(msgspec.structs.replace(settings, plans_file=str(plans)))
    stop = asyncio.Event()
    runners = [
        asyncio.create_task(platform.runner(p).run(stop)) for p in platform.projections().values()
    ]
    try:
        async with _client(platform.command_app()) as command, _client(platform.read_app()) as read:
            yield Stack(platform, command, read)
    finally:
        stop.set()
        await asyncio.gather(*runners)
        await platform.aclose()


async def test_an_invoice_bills_usage_and_is_reproducible_from_events(billed: Stack) -> None:
    stack = billed
    tenant = await stack.new_account(plan="basic")
    records = [{"id": f"r{i}", "data": {"i": i}} for i in range(15)]
    await stack.command.post(
        "/v1/ingest/batch", json={"source": "s", "records": records}, headers=tenant.auth
    )
    stack.platform.meter.take()  # start metering from here: 7 calls follow
    for _ in range(6):
        await stack.read.get("/v1/data/s/r1", headers=tenant.auth)
    written = await stack.command.post(
        "/v1/ingest", json={"source": "s", "id": "r99", "data": {}}, headers=tenant.auth
    )
    await asyncio.to_thread(stack.platform.meter.flush, stack.platform.log)
    head = await stack.head()
    assert head > written.json()["data"]["position"]  # the usage report is an event

    period = datetime.now(UTC).strftime("%Y-%m")
    response = await stack.read.get(
        f"/v1/billing/{tenant.account_id}",
        params={"period": period, "min_position": head},
        headers=tenant.auth,
    )
    assert response.status_code == 200, response.text
    bill = response.json()["data"]
    assert (bill["currency"], bill["period"]) == ("EUR", period)
    items = {item["metric"]: item for item in bill["line_items"]}
    assert (items["records_ingested"]["quantity"], items["records_ingested"]["amount_minor"]) == (
        16,
        16 * 5,
    )
    assert (items["api_calls"]["quantity"], items["api_calls"]["amount_minor"]) == (7, 4)
    assert bill["total_minor"] == 80 + 4
    assert all(isinstance(item["amount_minor"], int) for item in bill["line_items"])

    # Rebuild the usage read model from the event store: the invoice does not change.
    analytics = stack.platform.projections()["analytics"]
    target = await analytics.rebuild_into()
    await CatchUpRunner(stack.platform.source, target, name="rebuild").catch_up()
    await target.swap()
    again = await stack.read.get(
        f"/v1/billing/{tenant.account_id}", params={"period": period}, headers=tenant.auth
    )
    assert again.json()["data"] == bill


async def test_billing_needs_billing_read_and_a_valid_period(billed: Stack) -> None:
    stack = billed
    owner = await stack.new_account()
    member = await stack.new_account(role="member")
    assert_error(
        await stack.read.get(f"/v1/billing/{member.account_id}", headers=member.auth),
        403,
        "INSUFFICIENT_SCOPE",
    )
    other = await stack.read.get(f"/v1/billing/{member.account_id}", headers=owner.auth)
    assert_error(other, 404, "NOT_FOUND")
    bad = await stack.read.get(
        f"/v1/billing/{owner.account_id}", params={"period": "11-2026"}, headers=owner.auth
    )
    assert bad.status_code == 400
    default = await stack.read.get(f"/v1/billing/{owner.account_id}", headers=owner.auth)
    assert default.json()["data"]["period"] == datetime.now(UTC).strftime("%Y-%m")
