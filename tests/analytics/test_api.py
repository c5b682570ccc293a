"""POST /v1/data/query and GET /v1/usage/{account_id}, in the embedded and distributed modes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from commands.ports import CommandContext
from domain.access import OPERATOR
from domain.usage import UsageReport
from infra.bootstrap import bootstrap
from infra.config import Settings
from tests.conftest import Stack, Tenant, assert_error, running_stack

ORDERS = [
    {"id": "o-1", "data": {"status": "paid", "total": 10, "country": "DE"}},
    {"id": "o-2", "data": {"status": "paid", "total": 32.5, "country": "FR"}},
    {"id": "o-3", "data": {"status": "open", "total": 7, "country": "DE"}},
    {"id": "o-4", "data": {"status": "x'); DROP TABLE records_g1; --", "total": 1}},
]


async def ingest(stack: Stack, tenant: Tenant, source: str, records: list[Any]) -> int:
    written = await stack.command.post(
        "/v1/ingest/batch", json={"source": source, "records": records}, headers=tenant.auth
    )
    assert written.status_code == 200, written.text
    return int(written.json()["data"]["position"])


async def query(stack: Stack, tenant: Tenant, body: Any, position: int = 0) -> Any:
    return await stack.read.post(
        "/v1/data/query", json=body, params={"min_position": position}, headers=tenant.auth
    )


async def test_query_groups_and_aggregates_the_callers_records(stack: Stack) -> None:
    tenant, other = await stack.new_account(), await stack.new_account()
    await ingest(stack, other, "orders", [{"id": "x", "data": {"status": "paid", "total": 99}}])
    await ingest(stack, tenant, "orders", ORDERS)
    await stack.command.delete("/v1/data/orders/o-3", headers=tenant.auth)
    position = await ingest(
        stack,
        tenant,
        "orders",
        [{"id": "o-1", "data": {"status": "paid", "total": 12, "country": "DE"}}],
    )
    body = {
        "source": "orders",
        "filters": [{"field": "data.status", "op": "eq", "value": "paid"}],
        "group_by": ["data.country"],
        "aggregates": [{"fn": "count"}, {"fn": "sum", "field": "data.total", "as": "revenue"}],
        "order_by": [{"field": "revenue", "dir": "desc"}],
    }
    response = await query(stack, tenant, body, position)  # waits for the analytics model
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["rows"] == [
        {"data.country": "FR", "count": 1, "revenue": 32.5},
        {"data.country": "DE", "count": 1, "revenue": 12.0},
    ]
    assert data["row_count"] == 2
    assert data["columns"] == [
        {"name": "data.country", "type": "json"},
        {"name": "count", "type": "int"},
        {"name": "revenue", "type": "float"},
    ]
    evil = ORDERS[3]["data"]["status"]
    same = {"filters": [{"field": "data.status", "op": "eq", "value": evil}], "group_by": ["id"]}
    found = await query(stack, tenant, same)
    assert found.json()["data"]["rows"] == [{"id": "o-4", "count": 1}]


async def test_bad_queries_are_400s_naming_the_problem(stack: Stack) -> None:
    tenant = await stack.new_account()
    unknown = await query(stack, tenant, {"group_by": ["data.a-b"]})
    error = assert_error(unknown, 400, "INVALID_QUERY")
    assert error["message"].startswith("$.group_by[0]: invalid field 'data.a-b'")
    assert error["details"] == [{"field": "$.group_by[0]", "message": error["message"][15:]}]
    typed = await query(
        stack, tenant, {"filters": [{"field": "version", "op": "gt", "value": "x"}]}
    )
    assert "$.filters[0].value" in assert_error(typed, 400, "INVALID_QUERY")["message"]
    shape = await query(stack, tenant, {"aggregates": [{"fn": "median", "field": "data.x"}]})
    assert "$.aggregates[0].fn" in assert_error(shape, 400, "VALIDATION_FAILED")["message"]
    extra = await query(stack, tenant, {"select": "*"})
    assert "select" in assert_error(extra, 400, "VALIDATION_FAILED")["message"]
    sql = await stack.read.post(
        "/v1/data/query", content=b"SELECT * FROM records_g1", headers=tenant.auth
    )
    assert_error(sql, 400, "MALFORMED_JSON")


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


async def report(stack: Stack, account: str, hour: datetime, calls: dict[str, int]) -> int:
    usage = UsageReport(account_id=account, hour=hour.isoformat(), calls=calls)
    ctx = CommandContext(principal=OPERATOR, correlation_id="test")
    commit = await asyncio.to_thread(stack.platform.log.append, [usage], ctx, lambda c: c)
    return max(commit.positions)


async def test_usage_per_hour_and_day(stack: Stack) -> None:
    tenant, other = await stack.new_account(), await stack.new_account()
    now = _hour(datetime.now(UTC))
    yesterday = now - timedelta(days=1)
    await ingest(stack, tenant, "orders", ORDERS)
    await ingest(stack, other, "orders", ORDERS)
    await report(stack, tenant.account_id, yesterday, {"read": 4, "query": 1})
    await report(stack, tenant.account_id, now, {"read": 2, "search": 3})
    await report(stack, tenant.account_id, now, {"read": 1, "ingest": 1})  # another process
    position = await report(stack, other.account_id, now, {"read": 50})
    sizes = sum(len(msgspec.json.encode(r["data"])) for r in ORDERS)

    hourly = await stack.read.get(
        f"/v1/usage/{tenant.account_id}",
        params={"from": (yesterday - timedelta(hours=1)).isoformat(), "min_position": position},
        headers=tenant.auth,
    )
    assert hourly.status_code == 200, hourly.text
    view = hourly.json()["data"]
    start = (yesterday - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert (view["granularity"], view["from"]) == ("hour", start)
    rows = {row["period_start"]: row for row in view["rows"]}
    at = now.isoformat().replace("+00:00", "Z")
    assert rows[yesterday.isoformat().replace("+00:00", "Z")] == {
        "period_start": yesterday.isoformat().replace("+00:00", "Z"),
        "records_ingested": 0,
        "bytes_ingested": 0,
        "api_calls": {"query": 1, "read": 4},
        "search_calls": 0,
        "query_calls": 1,
    }
    # Records ingested now fall in this hour too (their events' time).
    assert rows[at]["records_ingested"] == len(ORDERS)
    assert rows[at]["bytes_ingested"] == sizes
    assert rows[at]["api_calls"] == {"ingest": 1, "read": 3, "search": 3}
    assert view["total"]["api_calls"] == {"ingest": 1, "query": 1, "read": 7, "search": 3}
    assert view["total"]["records_ingested"] == len(ORDERS)

    daily = await stack.read.get(
        f"/v1/usage/{tenant.account_id}",
        params={"granularity": "day", "from": (now - timedelta(days=3)).date().isoformat()},
        headers=stack.admin,  # the operator may read any account's usage
    )
    days = daily.json()["data"]["rows"]
    assert sum(d["api_calls"].get("read", 0) for d in days) == 7
    assert all(d["period_start"].endswith("T00:00:00Z") for d in days)

    # Another tenant's usage is not found; a key without billing:read is refused.
    assert_error(
        await stack.read.get(f"/v1/usage/{tenant.account_id}", headers=other.auth), 404, "NOT_FOUND"
    )
    reader = await stack.new_account(role="member")
    assert_error(
        await stack.read.get(f"/v1/usage/{reader.account_id}", headers=reader.auth),
        403,
        "INSUFFICIENT_SCOPE",
    )
    bad = await stack.read.get(
        f"/v1/usage/{tenant.account_id}", params={"from": "yesterday"}, headers=tenant.auth
    )
    assert "from" in assert_error(bad, 400, "INVALID_PARAMETER")["message"]
    wide = await stack.read.get(
        f"/v1/usage/{tenant.account_id}", params={"from": "2020-01-01"}, headers=tenant.auth
    )
    assert "31 days" in assert_error(wide, 400, "INVALID_PARAMETER")["message"]


async def test_a_query_that_waits_for_its_writes_cuts_the_feeds_pace_short(
    settings: Settings,
) -> None:
    # A pace far longer than min_position_timeout: the second query can only answer 200
    # if waiting for its position made the feed apply what gathered at once.
    platform = bootstrap(msgspec.structs.replace(settings, analytics_pace=600.0))
    async with running_stack(platform) as stack:
        tenant = await stack.new_account()
        first = await ingest(stack, tenant, "orders", ORDERS[:1])
        counted = await query(stack, tenant, {"source": "orders"}, first)
        assert counted.status_code == 200, counted.text  # after a quiet spell: at once
        second = await ingest(stack, tenant, "orders", ORDERS[1:3])  # now inside the pace
        assert await platform.watermark("analytics") < second
        counted = await query(stack, tenant, {"source": "orders"}, second)
        assert counted.status_code == 200, counted.text
        assert counted.json()["data"]["rows"] == [{"count": 3}]
