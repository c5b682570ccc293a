"""API calls are metered in memory and recorded as UsageReport events off the request path."""

from __future__ import annotations

import asyncio

from infra.gateway.metering import route_class
from tests.conftest import Stack


async def test_calls_are_counted_per_account_hour_and_class_then_recorded(stack: Stack) -> None:
    tenant = await stack.new_account()
    stack.platform.meter.take()  # forget the set-up calls
    head = await stack.head()
    await stack.command.post(
        "/v1/ingest", json={"source": "s", "id": "a", "data": {}}, headers=tenant.auth
    )
    for _ in range(3):
        await stack.read.get("/v1/data/s/a", params={"min_position": head}, headers=tenant.auth)
    await stack.read.get("/v1/data/s/a", headers={"Authorization": "Bearer nope"})  # not billed
    await stack.read.get("/health")  # not billed
    assert await stack.head() == head + 2  # the ingest's Source + Record: metering wrote nothing

    reports = await asyncio.to_thread(stack.platform.meter.flush, stack.platform.log)
    assert reports == 1
    (event,) = await stack.platform.source.read(head + 2, 10)
    assert event.type == "UsageReport.Recorded"
    assert event.payload["account_id"] == tenant.account_id
    assert event.payload["calls"] == {"ingest": 1, "read": 3}
    assert event.payload["hour"].endswith(":00:00+00:00")
    assert await asyncio.to_thread(stack.platform.meter.flush, stack.platform.log) == 0


def test_route_classes() -> None:
    assert route_class("command API", "/v1/ingest/batch") == "ingest"
    assert route_class("command API", "/v1/data/{source}/{record_id}") == "ingest"
    assert route_class("command API", "/v1/apikey/generate") == "command"
    assert route_class("read API", "/v1/data/{source}/{record_id}") == "read"
    assert route_class("read API", "/v1/data/{source}/search") == "search"
    assert route_class("read API", "/v1/data/query") == "query"
