"""The ClickHouse analytics store's contract, on chdb: idempotent writes with checkpoints,
versions, deletes, generations, migrations, the path lock; rebuild equals incremental."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.adapters.clickhouse import ChdbPathOwnedError, ClickHouseAnalyticsStore, Target
from infra.adapters.clickhouse.schema import MIGRATIONS, RECORDS
from projections import analytics
from projections.projection import Projection
from read_api.querylang import QueryLimits, compile_query, parse_query
from tests.analytics.conftest import ACCOUNT, OTHER, Events


async def latest(store: ClickHouseAnalyticsStore) -> dict[tuple[str, str, str], Any]:
    """Every live record of the active generation: (account, source, id) -> (version, data)."""
    table = store.table(RECORDS, await store.active_generation())
    rows = await store.conn.rows(
        f"SELECT account_id, source, id, version, data FROM {table} FINAL WHERE is_deleted = 0"
    )
    return {(a, s, i): (v, d) for a, s, i, v, d in rows}


async def count(store: ClickHouseAnalyticsStore, **query: Any) -> int:
    compiled = compile_query(parse_query(query), ACCOUNT, QueryLimits())
    rows = compiled.shape(await store.run(compiled))
    return int(rows[0]["count"]) if rows else 0


def projection(store: ClickHouseAnalyticsStore) -> Projection[analytics.AnalyticsChange]:
    return Projection(analytics.NAME, store, analytics.changes)


async def test_apply_is_idempotent_and_moves_the_checkpoint(
    store: ClickHouseAnalyticsStore, events: Events
) -> None:
    batch = [
        events.put("orders", "o-1", {"total": 10, "status": "paid"}),
        events.put("orders", "o-2", {"total": 5}),
        events.put("orders", "o-1", {"total": 12, "status": "paid"}),
        events.usage(datetime(2026, 3, 1, 10, tzinfo=UTC), {"read": 3, "query": 1}),
    ]
    live = projection(store)
    await live.apply(batch)
    assert await live.checkpoints() == {0: 4}
    before = await (await live.writer()).dump()
    assert before["records"]["count"] == 2
    assert before["usage_totals"] == {
        "api_calls.query": 1,
        "api_calls.read": 3,
        "bytes_ingested": sum(len(analytics.changes([e])[0].data) for e in batch[:3]),  # type: ignore[union-attr]
        "records_ingested": 3,
    }
    # Redelivery, and an overlapping batch: nothing below the checkpoint applies again...
    await live.apply(batch)
    more = events.put("orders", "o-3", {"total": 1})
    await live.apply([*batch[2:], more])
    after = await (await live.writer()).dump()
    assert after["usage_totals"]["records_ingested"] == 4
    assert after["records"]["count"] == 3
    assert await live.checkpoints() == {0: 5}
    # ...and even when a crash lost the checkpoint, rewritten rows are absorbed (same keys).
    writer = await live.writer()
    await writer.apply(analytics.changes(batch), 7, 4)
    assert (await writer.dump())["usage"] == after["usage"]
    assert (await writer.dump())["records"] == after["records"]
    assert await live.checkpoints() == {0: 5, 7: 4}


async def test_latest_version_wins_and_deletes_hide_records(
    store: ClickHouseAnalyticsStore, events: Events
) -> None:
    first = events.put("orders", "o-1", {"status": "paid"})
    second = events.put("orders", "o-1", {"status": "open"})
    gone = [events.put("orders", "o-2", {"status": "paid"})]
    gone.append(events.delete("orders", "o-2"))
    writer = store.writer(await store.active_generation())
    # The newer version first, the older one later (another slot): the newer one stays.
    await writer.apply(analytics.changes([second, *gone]), 0, gone[-1].position)
    await writer.apply(analytics.changes([first]), 1, first.position)
    assert await latest(store) == {(ACCOUNT, "orders", "o-1"): (2, '{"status":"open"}')}
    # Filters see the latest state only (FINAL before WHERE): the old "paid" is gone.
    paid = {"field": "data.status", "op": "eq", "value": "paid"}
    assert await count(store, filters=[paid]) == 0
    assert await count(store, filters=[{**paid, "value": "open"}]) == 1
    # A record deleted, then written again, is back (a higher version than the tombstone).
    again = events.put("orders", "o-2", {"status": "paid"})
    await writer.apply(analytics.changes([again]), 0, again.position)
    assert await count(store, filters=[paid]) == 1
    assert (await latest(store))[(ACCOUNT, "orders", "o-2")][0] == 3


async def test_generations_swap_and_drop(store: ClickHouseAnalyticsStore, events: Events) -> None:
    live = store.writer(await store.active_generation())
    old = events.put("orders", "o-1", {"v": "old"})
    await live.apply(analytics.changes([old]), 0, old.position)
    fresh = await store.new_generation()
    assert fresh.generation == live.generation + 1
    new = events.put("orders", "o-1", {"v": "new"})
    await fresh.apply(analytics.changes([old, new]), 0, new.position)
    assert (await latest(store))[(ACCOUNT, "orders", "o-1")] == (1, '{"v":"old"}')
    await store.activate(fresh.generation)
    assert (await latest(store))[(ACCOUNT, "orders", "o-1")] == (2, '{"v":"new"}')
    assert await store.checkpoints() == {0: new.position}
    with pytest.raises(ValueError, match="active"):
        await store.drop(fresh.generation)
    await store.drop(live.generation)
    tables = await store.conn.rows(
        "SELECT name FROM system.tables WHERE database = {d:String} ORDER BY name",
        {"d": store.db},
    )
    assert [t for (t,) in tables if t.endswith("_g1")] == []
    assert {"records_v2_g2", "usage_g2", "checkpoints_g2"} <= {t for (t,) in tables}


async def test_migrations_apply_once_and_survive_a_restart(chdb_path: str) -> None:
    first = ClickHouseAnalyticsStore(Target.of(None, chdb_path))
    try:
        await first.new_generation()
        applied = await first.conn.rows(
            f"SELECT version, generation FROM {first.db}.schema_migrations FINAL ORDER BY 1, 2"
        )
    finally:
        first.close()
    global_versions = [m.version for m in MIGRATIONS if not m.per_generation]
    per_generation = [m.version for m in MIGRATIONS if m.per_generation]
    expected = sorted(
        [(v, 0) for v in global_versions] + [(v, g) for v in per_generation for g in (1, 2)]
    )
    assert applied == expected
    again = ClickHouseAnalyticsStore(Target.of(None, chdb_path))
    try:
        assert await again.active_generation() == 1
        rows = await again.conn.rows(f"SELECT count() FROM {again.db}.schema_migrations")
        assert rows == [(len(expected),)]
    finally:
        again.close()


async def test_a_second_owner_of_the_path_is_refused_clearly(
    store: ClickHouseAnalyticsStore, chdb_path: str
) -> None:
    await store.active_generation()  # opens the engine and takes the lock
    rival = ClickHouseAnalyticsStore(Target.of(None, chdb_path))
    with pytest.raises(ChdbPathOwnedError, match=f"owned by pid {os.getpid()}"):
        await rival.active_generation()
    rival.close()
    script = (
        "import asyncio, sys\n"
        "from infra.adapters.clickhouse import ClickHouseAnalyticsStore, Target\n"
        "s = ClickHouseAnalyticsStore(Target.of(None, sys.argv[1]))\n"
        "try:\n    asyncio.run(s.active_generation())\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    other = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script, chdb_path],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"ChdbPathOwnedError chdb path {chdb_path} is owned by pid {os.getpid()}" in (
        other.stdout
    )


async def test_rebuild_equals_incremental(store: ClickHouseAnalyticsStore, events: Events) -> None:
    rng = random.Random(7)
    for i in range(600):
        account = ACCOUNT if rng.random() < 0.8 else OTHER
        key = f"k{rng.randrange(150)}"
        roll = rng.random()
        if roll < 0.1 and (account, "orders", key) in events.versions:
            events.delete("orders", key, account)
        elif roll < 0.2:
            hour = events.clock.replace(minute=0, second=0, microsecond=0)
            events.usage(hour, {"read": rng.randrange(1, 9), "search": rng.randrange(3)}, account)
        else:
            data = {"n": i, "status": rng.choice(["paid", "open"]), "nested": {"x": [i, "y"]}}
            events.put("orders", key, data, account)
    live = projection(store)
    position = 0
    while position < len(events.log):  # uneven batches, some redelivered in part
        size = rng.randrange(1, 60)
        start = max(0, position - rng.randrange(0, 10))
        await live.apply(events.log[start : position + size])
        position = min(position + size, len(events.log))
    incremental = await (await live.writer()).dump()
    target = await live.rebuild_into()
    await target.apply(events.log)
    rebuilt = await target.writer.dump()
    assert rebuilt == incremental
    # And both equal what the events say, computed here.
    alive = {k for k, v in events.versions.items()}
    deleted = set()
    for event in events.log:
        ident = (event.payload["account_id"], "orders", event.payload.get("key"))
        if event.type == "Record.Deleted":
            deleted.add(ident)
        elif event.type.startswith("Record."):
            deleted.discard(ident)
    assert incremental["records"]["count"] == len(alive - deleted)
    puts = sum(e.type in ("Record.Created", "Record.Updated") for e in events.log)
    assert incremental["usage_totals"]["records_ingested"] == puts
    await target.swap()
    assert (await live.writer()).generation == target.writer.generation


async def test_usage_sums_reports_per_period(
    store: ClickHouseAnalyticsStore, events: Events
) -> None:
    jan, feb = datetime(2026, 1, 31, 23, tzinfo=UTC), datetime(2026, 2, 1, 0, tzinfo=UTC)
    log = [
        events.usage(jan, {"read": 2, "query": 1}),
        events.usage(jan, {"read": 3}),  # another process, same account-hour
        events.usage(feb, {"search": 4, "ingest": 0}),
        events.usage(feb, {"read": 100}, account=OTHER),
    ]
    await projection(store).apply(log)
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    days = await store.usage(ACCOUNT, start, end, "day")
    assert [(d.period_start.day, d.api_calls, d.query_calls, d.search_calls) for d in days] == [
        (31, {"query": 1, "read": 5}, 1, 0),
        (1, {"search": 4}, 0, 4),
    ]
    hours = await store.usage(ACCOUNT, feb, end, "hour")
    assert [h.period_start for h in hours] == [feb]
    january = await store.month_total(ACCOUNT, datetime(2026, 1, 15).date())
    assert (january.period_start, january.api_calls) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        {"query": 1, "read": 5},
    )
    empty = await store.month_total(ACCOUNT, datetime(2026, 12, 1).date())
    assert (empty.period_start.month, empty.api_calls, empty.records_ingested) == (12, {}, 0)


async def test_inserts_at_a_lower_priority_apply_the_same(chdb_path: str, events: Events) -> None:
    """The projection's inserts may carry ClickHouse's os_thread_priority (the product's
    default); they write exactly what inserts without it write, text and times included."""
    store = ClickHouseAnalyticsStore(Target.of(None, chdb_path), insert_priority=19)
    try:
        assert store.insert_settings == {"os_thread_priority": 19}
        live = projection(store)
        batch = [
            events.put("orders", "o-1", {"total": 10}),
            events.put("orders", "o-2", {"total": 5}),
            events.put("orders", "o-1", {"total": 12}),
            events.delete("orders", "o-2"),
            events.put("orders", "o-3", {"note": 'quote " \\ slash\n', "city": "Zürich"}),
        ]
        odd = batch[-1]
        await live.apply(batch)
        assert await live.checkpoints() == {0: 5}
        text = analytics.changes([odd])[0].data  # type: ignore[union-attr]
        assert await latest(store) == {
            (ACCOUNT, "orders", "o-1"): (2, '{"total":12}'),
            (ACCOUNT, "orders", "o-3"): (1, text),
        }
        table = store.table(RECORDS, await store.active_generation())
        rows = await store.conn.rows(f"SELECT updated_at FROM {table} WHERE id = 'o-3'")
        assert rows == [(odd.timestamp,)]
    finally:
        store.close()
