"""The query language: what it means (run on chdb against known records) and what it refuses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from infra.adapters.clickhouse import ClickHouseAnalyticsStore
from read_api.ports import QueryLimitError
from read_api.querylang import QueryError, QueryLimits, compile_query, parse_query
from tests.analytics.conftest import ACCOUNT, DAY, EVIL, seed


@pytest.fixture
async def seeded(store: ClickHouseAnalyticsStore) -> ClickHouseAnalyticsStore:
    await seed(store)
    return store


async def run(store: ClickHouseAnalyticsStore, **raw: Any) -> list[dict[str, Any]]:
    compiled = compile_query(parse_query({"source": "orders", **raw}), ACCOUNT, QueryLimits())
    return compiled.shape(await store.run(compiled))


def refused(where: str, **raw: Any) -> str:
    with pytest.raises(QueryError) as caught:
        compile_query(parse_query({"source": "orders", **raw}), ACCOUNT, QueryLimits())
    assert caught.value.details[0]["field"] == where, caught.value
    return str(caught.value)


async def test_group_and_aggregate(seeded: ClickHouseAnalyticsStore) -> None:
    rows = await run(
        seeded,
        group_by=["data.country"],
        aggregates=[
            {"fn": "count"},
            {"fn": "sum", "field": "data.total", "as": "revenue"},
            {"fn": "avg", "field": "data.total"},
            {"fn": "max", "field": "data.total"},
            {"fn": "uniq", "field": "data.status"},
        ],
        order_by=[{"field": "revenue", "dir": "desc"}],
    )
    # A deleted record, another source and another account do not count; "7" is a string,
    # not a number; a null and a missing country are one (null) group.
    columns = ["data.country", "count", "revenue", "avg_data_total", "max_data_total"]
    columns.append("uniq_data_status")
    assert [list(row) for row in rows] == [columns] * 3
    assert [list(row.values()) for row in rows] == [
        ["FR", 1, 20.5, 20.5, 20.5, 1],
        ["DE", 2, 10.0, 10.0, 10.0, 2],
        [None, 2, 6.0, 3.0, 5.0, 2],
    ]


async def test_typed_filters(seeded: ClickHouseAnalyticsStore) -> None:
    async def ids(*filters: dict[str, Any]) -> list[str]:
        rows = await run(seeded, filters=list(filters), group_by=["id"])
        return [row["id"] for row in rows]

    assert await ids({"field": "data.total", "op": "gt", "value": 6}) == ["o-1", "o-2"]
    assert await ids({"field": "data.total", "op": "eq", "value": "7"}) == ["o-3"]
    assert await ids({"field": "data.status", "op": "ne", "value": "paid"}) == ["o-3", "o-4", "o-5"]
    assert await ids({"field": "data.status", "op": "in", "value": ["open", "void"]}) == [
        "o-3",
        "o-4",
    ]
    assert await ids({"field": "data.country", "op": "not_in", "value": ["DE"]}) == ["o-2"]
    assert await ids({"field": "data.status", "op": "contains", "value": "ai"}) == ["o-1", "o-2"]
    assert await ids({"field": "id", "op": "prefix", "value": "o-"}) == [
        f"o-{i}" for i in range(1, 6)
    ]
    assert await ids({"field": "data.flag", "op": "eq", "value": False}) == ["o-4"]
    assert await ids({"field": "data.flag", "op": "exists"}) == ["o-3", "o-4"]
    assert await ids({"field": "data.country", "op": "exists", "value": False}) == ["o-5"]
    assert await ids({"field": "data.customer.tier", "op": "eq", "value": "gold"}) == ["o-1"]
    early = {"field": "id", "op": "lte", "value": "o-2"}
    assert await ids({"field": "version", "op": "gte", "value": 1}, early) == ["o-1", "o-2"]
    second_day = (DAY + timedelta(days=1) - timedelta(minutes=1)).isoformat()
    assert await ids({"field": "updated_at", "op": "lt", "value": second_day}) == ["o-1", "o-4"]


async def test_time_buckets_range_and_quantiles(seeded: ClickHouseAnalyticsStore) -> None:
    rows = await run(
        seeded,
        group_by=[{"bucket": "day", "field": "updated_at"}],
        aggregates=[{"fn": "count"}, {"fn": "quantiles", "field": "data.total", "levels": [0, 1]}],
    )
    names = ["updated_at_day", "count", "quantiles_data_total_p0", "quantiles_data_total_p100"]
    assert [list(row) for row in rows] == [names] * 3
    assert [list(row.values()) for row in rows] == [
        ["2026-01-05T00:00:00+00:00", 2, 5.0, 10.0],
        ["2026-01-06T00:00:00+00:00", 2, 1.0, 20.5],
        ["2026-01-07T00:00:00+00:00", 1, None, None],
    ]
    window = {"from": "2026-01-06T00:00:00Z", "to": "2026-01-07T00:00:00+00:00"}
    assert await run(seeded, time_range=window) == [{"count": 2}]
    months = await run(seeded, group_by=[{"bucket": "month", "field": "data.day", "as": "m"}])
    assert months == [{"m": "2026-02-01T00:00:00+00:00", "count": 1}, {"m": None, "count": 4}]


async def test_injection_shaped_values_stay_data(seeded: ClickHouseAnalyticsStore) -> None:
    match = {"field": "data.status", "op": "eq", "value": EVIL}
    assert await run(seeded, filters=[match], group_by=["data.status"]) == [
        {"data.status": EVIL, "count": 1}
    ]
    tables = await seeded.conn.rows(
        "SELECT count() FROM system.tables WHERE database = {d:String} AND name = 'records_v2_g1'",
        {"d": seeded.db},
    )
    assert tables == [(1,)]
    refused("$.filters[0].field", filters=[{**match, "field": f"data.{EVIL}"}])
    refused("$.filters[0].field", filters=[{**match, "field": EVIL}])
    refused("$.aggregates[0].as", aggregates=[{"fn": "count", "as": EVIL}])
    refused("$.order_by[0].field", order_by=[{"field": EVIL}])


def test_refusals_name_the_problem() -> None:
    assert "unknown field" in refused("$.group_by[0]", group_by=["total"])
    assert "5 segments" in refused("$.group_by[0]", group_by=["data.a.b.c.d.e.f"])
    refused("$.group_by[0]", group_by=["data.a-b"])
    refused("$.group_by[0]", group_by=["data."])
    assert "integer" in refused(
        "$.filters[0].value", filters=[{"field": "version", "op": "eq", "value": "1"}]
    )
    refused("$.filters[0].value", filters=[{"field": "updated_at", "op": "gt", "value": "soon"}])
    refused("$.filters[0].op", filters=[{"field": "version", "op": "contains", "value": 1}])
    refused("$.filters[0].value", filters=[{"field": "data.x", "op": "contains", "value": 1}])
    refused("$.filters[0].value", filters=[{"field": "data.x", "op": "lt", "value": True}])
    refused("$.filters[0].value", filters=[{"field": "data.x", "op": "in", "value": []}])
    refused("$.filters[0].value", filters=[{"field": "data.x", "op": "in", "value": [1, "a"]}])
    refused("$.filters[0].op", filters=[{"field": "id", "op": "exists"}])
    refused("$.filters[0].op", filters=[{"field": "id", "op": "like", "value": "a"}])
    refused("$.filters[0]", filters=[{"field": "id", "op": "eq", "vlaue": "a"}])
    refused("$.aggregates[0].field", aggregates=[{"fn": "sum", "field": "id"}])
    refused("$.aggregates[0].field", aggregates=[{"fn": "avg"}])
    refused("$.aggregates[0].fn", aggregates=[{"fn": "median", "field": "data.x"}])
    bad_level = {"fn": "quantiles", "field": "data.x", "levels": [0.5, 2]}
    refused("$.aggregates[0].levels[1]", aggregates=[bad_level])
    assert "not a result column" in refused("$.order_by[0].field", order_by=[{"field": "id"}])
    twice = {"group_by": ["id"], "aggregates": [{"fn": "count", "as": "id"}]}
    assert "two result columns" in refused("$", **twice)
    assert "10000" in refused("$.limit", limit=10_001)
    refused("$.time_range", time_range={"from": "2026-02-01", "to": "2026-01-01"})
    refused("$.time_range.from", time_range={"from": "9999-01-01"})
    refused("$.source", source="Orders!")


def test_the_sql_binds_every_value() -> None:
    compiled = compile_query(
        parse_query(
            {
                "source": "orders",
                "filters": [{"field": "data.status", "op": "in", "value": ["paid", EVIL]}],
                "group_by": ["data.customer.tier"],
                "aggregates": [{"fn": "sum", "field": "data.total"}],
                "limit": 5,
            }
        ),
        ACCOUNT,
        QueryLimits(),
    )
    for value in (EVIL, "paid", ACCOUNT, "tier", "orders"):
        assert value not in compiled.sql
    assert compiled.parameters["p0"] == ACCOUNT
    assert ["paid", EVIL] in compiled.parameters.values()
    assert compiled.settings["result_overflow_mode"] == "throw"
    assert compiled.settings["readonly"] == 2


async def test_limits_are_reported_by_name(seeded: ClickHouseAnalyticsStore) -> None:
    limits = QueryLimits(max_memory_bytes=1)
    quantiles = {"fn": "quantiles", "field": "data.total"}
    query = parse_query({"group_by": ["id"], "aggregates": [quantiles]})
    with pytest.raises(QueryLimitError) as caught:
        await seeded.run(compile_query(query, ACCOUNT, limits))
    assert caught.value.details == [{"limit": "max_memory_usage", "value": 1}]
    assert "max_memory_usage" in str(caught.value)
