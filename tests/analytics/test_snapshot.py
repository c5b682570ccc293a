"""Snapshots and the tail (ADR 9, amendment 2): whichever source a query reads (FINAL, the
snapshot alone, the snapshot and its tail), it answers as FINAL does and as a model of the
latest live records does, under updates, deletes, redelivery, out-of-order arrival and
compactions at any time."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.adapters.clickhouse import ClickHouseAnalyticsStore, Target, schema
from infra.adapters.clickhouse.hot import HotAccessors
from projections import analytics
from read_api.querylang import CompiledQuery, QueryLimits, compile_query, parse_query
from schemas.events import ProjectedEvent
from tests.analytics.conftest import ACCOUNT, Events, migrated_until

SLOTS = itertools.count(100)  # a fresh slot per delivery: no checkpoint skips a row
STATUSES = ("paid", "open", "void")
COUNTRIES = ("DE", "FR")
QUERIES: dict[str, dict[str, Any]] = {
    "by status": {
        "source": "s",
        "group_by": ["data.status"],
        "aggregates": [{"fn": "count"}, {"fn": "sum", "field": "data.n", "as": "total"}],
    },
    "paid by country": {
        "filters": [{"field": "data.status", "op": "eq", "value": "paid"}],
        "group_by": ["data.country"],
        "aggregates": [
            {"fn": "count"},
            {"fn": "sum", "field": "data.n", "as": "total"},
            {"fn": "max", "field": "data.n", "as": "top"},
        ],
    },
}


def model_answer(name: str, live: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """What QUERIES[name] answers over `live` (key -> data), in the compiler's row order."""
    groups: dict[Any, list[int]] = {}
    for data in live.values():
        if name == "by status":
            groups.setdefault(data["status"], []).append(data["n"])
        elif data["status"] == "paid":
            groups.setdefault(data["country"], []).append(data["n"])
    out = []
    for group, values in sorted(groups.items()):
        if name == "by status":
            out.append({"data.status": group, "count": len(values), "total": float(sum(values))})
        else:
            row = {"data.country": group, "count": len(values), "total": float(sum(values))}
            out.append({**row, "top": float(max(values))})
    return out


class World:
    """One account's events, what was delivered (in any order, some twice), and the model."""

    def __init__(self, store: ClickHouseAnalyticsStore) -> None:
        self.store = store
        self.account = str(uuid.uuid4())
        self.events = Events()
        self.pending: list[ProjectedEvent] = []
        self.delivered: list[ProjectedEvent] = []

    def put(self, key: int, status: int, country: int, n: int) -> None:
        data = {"status": STATUSES[status], "country": COUNTRIES[country], "n": n}
        self.pending.append(self.events.put("s", f"k{key}", data, account=self.account))

    def delete(self, key: int) -> None:
        if (self.account, "s", f"k{key}") in self.events.versions:
            self.pending.append(self.events.delete("s", f"k{key}", account=self.account))

    async def deliver(self, events: list[ProjectedEvent]) -> None:
        writer = self.store.writer(await self.store.active_generation())
        rows = analytics.changes(events)
        await writer.apply(rows, next(SLOTS), max(e.position for e in events))
        self.delivered += events

    def old_ones(self, rnd: random.Random) -> list[ProjectedEvent]:
        """A few delivered events, superseded ones when there are (the risky redeliveries)."""
        newest = self.newest()
        old = [e for e in self.delivered if e.version < newest[e.payload["key"]].version]
        pool = old or self.delivered
        return rnd.sample(pool, rnd.randint(1, min(3, len(pool))))

    def newest(self) -> dict[str, ProjectedEvent]:
        newest: dict[str, ProjectedEvent] = {}
        for event in self.delivered:
            key = event.payload["key"]
            if key not in newest or event.version > newest[key].version:
                newest[key] = event
        return newest

    def live(self) -> dict[str, dict[str, Any]]:
        """The newest delivered version of each record, unless it is a deletion."""
        newest = self.newest()
        return {k: e.payload["data"] for k, e in newest.items() if e.type != "Record.Deleted"}

    def compiled(self, name: str) -> CompiledQuery:
        return compile_query(parse_query(QUERIES[name]), self.account, QueryLimits())

    async def check(self) -> None:
        """Every source answers every query as the model does."""
        store = self.store
        generation = await store.active_generation()
        records = store.table(schema.RECORDS, generation)
        snapshot = await store.snapshot(generation)
        for name in QUERIES:
            compiled = self.compiled(name)
            expected = model_answer(name, self.live())
            final = await store.conn.rows(compiled.render(records), compiled.parameters)
            assert compiled.shape(final) == expected, ("FINAL", name)
            assert compiled.shape(await store.run(compiled)) == expected, ("run", name)
            if snapshot is not None:
                table = schema.snapshot_table(store.db, generation, snapshot.number)
                cut = snapshot.cut.strftime("%Y-%m-%d %H:%M:%S.%f")
                changes = store.writer(generation).changes
                sql = compiled.render_tail(table, changes, snapshot.columns)
                tail = await store.conn.rows(sql, {**compiled.parameters, "cut": cut})
                assert compiled.shape(tail) == expected, ("snapshot and tail", name)


@pytest.fixture
def store(chdb_path: str) -> Iterator[ClickHouseAnalyticsStore]:
    analytics_store = ClickHouseAnalyticsStore(
        Target.of(None, chdb_path),
        pointer_ttl=0.0,
        max_tail=1_000,  # the snapshot-and-tail plan too, not only FINAL and the snapshot alone
        hot_accessors=HotAccessors(min_uses=1),  # fields read once become snapshot columns
    )
    try:
        yield analytics_store
    finally:
        analytics_store.close()


keys = st.integers(0, 3)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), keys, st.integers(0, 2), st.integers(0, 1), st.integers(0, 1000)),
        st.tuples(st.just("delete"), keys),
        st.tuples(st.just("hold"), st.booleans()),  # then events wait for a "deliver"
        st.tuples(st.just("deliver"), st.randoms(use_true_random=False)),
        st.tuples(st.just("redeliver"), st.randoms(use_true_random=False)),
        st.tuples(st.just("compact"), st.sampled_from([0.0, 0.0, 5.0])),
        st.tuples(st.just("check")),
    ),
    min_size=4,
    max_size=30,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_every_source_answers_as_final_and_the_model(
    store: ClickHouseAnalyticsStore, ops: list[tuple[Any, ...]]
) -> None:
    world = World(store)

    held = False

    async def play() -> None:
        nonlocal held
        for op in ops:
            if op[0] in ("put", "delete"):
                world.put(*op[1:]) if op[0] == "put" else world.delete(op[1])
                if not held and world.pending:
                    batch, world.pending = world.pending, []
                    await world.deliver(batch)
            elif op[0] == "hold":
                held = op[1]
            elif op[0] == "deliver" and world.pending:
                batch, world.pending = world.pending, []
                op[1].shuffle(batch)  # out of order, across slots
                cut = op[1].randint(1, len(batch))
                await world.deliver(batch[:cut])
                if cut < len(batch):
                    await world.deliver(batch[cut:])
            elif op[0] == "redeliver" and world.delivered:
                await world.deliver(world.old_ones(op[1]))
            elif op[0] == "compact":
                store.clock_margin = op[1]  # 0: the tail is often empty (the snapshot alone)
                await store.compact()
            elif op[0] == "check":
                await world.check()
        if world.pending:
            await world.deliver(world.pending)
        await world.check()

    asyncio.run(play())


async def test_old_versions_redelivered_after_a_compaction_change_nothing(
    store: ClickHouseAnalyticsStore,
) -> None:
    world = World(store)
    store.clock_margin = 0.0
    world.put(1, 0, 0, 10)
    world.put(1, 1, 0, 20)  # an update
    world.put(2, 0, 1, 30)
    world.delete(2)  # a deletion
    await world.deliver(world.pending)
    await store.compact()
    old = [e for e in world.delivered if e.version == 1]
    await world.deliver(old)  # older than the snapshot's rows, after its cut
    await world.check()


async def test_writes_during_a_compaction_are_in_its_tail(store: ClickHouseAnalyticsStore) -> None:
    world = World(store)
    for key in range(50):
        world.put(key, key % 3, key % 2, key)
    await world.deliver(world.pending)
    store.clock_margin = 0.0

    async def write() -> None:
        for round_ in range(10):
            world.pending = []
            for key in range(0, 50, 7):
                world.put(key, (key + round_) % 3, round_ % 2, 1000 + round_)
            world.delete(round_ * 5)
            await world.deliver(world.pending)

    await asyncio.gather(store.compact(), write())
    await world.check()
    await store.compact()
    await world.check()


async def test_store_picks_snapshot_tail_or_final(store: ClickHouseAnalyticsStore) -> None:
    world = World(store)
    store.clock_margin = 0.0
    store.max_tail = 100
    compiled = world.compiled("by status")
    assert "FINAL" in (await store._sql(compiled))[0]  # no snapshot yet
    for key in range(5):
        world.put(key, key % 3, 0, key)
    await world.deliver(world.pending)
    await store.compact()
    sql, _ = await store._sql(compiled)
    assert "FINAL" not in sql  # nothing changed since the cut: the snapshot alone
    assert "UNION" not in sql
    world.pending = [world.events.put("other", "k1", {"n": 1}, account=world.account)]
    await world.deliver(world.pending)
    assert "UNION" not in (await store._sql(compiled))[0]  # a change in another source
    world.pending = []
    world.put(1, 0, 0, 99)
    await world.deliver(world.pending)
    assert "UNION ALL" in (await store._sql(compiled))[0]
    store.max_tail = 0
    assert "FINAL" in (await store._sql(compiled))[0]  # a long tail: FINAL is cheaper
    await world.check()


async def test_compaction_keeps_one_previous_snapshot_and_logs(
    store: ClickHouseAnalyticsStore, caplog: pytest.LogCaptureFixture
) -> None:
    world = World(store)
    world.put(1, 0, 0, 1)
    await world.deliver(world.pending)
    caplog.set_level(logging.INFO, logger="strata.analytics")
    made = [await store.compact() for _ in range(3)]
    assert all(s is not None and s.rows == 1 for s in made)
    tables = await store.conn.rows(
        "SELECT name FROM system.tables WHERE database = {d:String} AND name LIKE 'snapshot%'",
        {"d": store.db},
    )
    kept = {f"snapshot{s.number}_g1" for s in made[1:] if s is not None}
    assert {t for (t,) in tables} == kept | {"snapshots_g1"}
    assert sum("ready: 1 rows" in r.getMessage() for r in caplog.records) == 3
    await world.check()


async def test_compact_forever_snapshots_then_stops(store: ClickHouseAnalyticsStore) -> None:
    world = World(store)
    world.put(1, 0, 0, 1)
    await world.deliver(world.pending)
    stop = asyncio.Event()
    task = asyncio.create_task(store.compact_forever(stop, interval=0.05))
    await asyncio.sleep(0.5)  # ten checks: no query yet, so no snapshot (nobody would read it)
    assert await store.snapshot(await store.active_generation()) is None
    await store.run(world.compiled("by status"))
    for _ in range(200):
        if await store.snapshot(await store.active_generation()) is not None:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 30)
    assert await store.snapshot(await store.active_generation()) is not None


async def test_a_rebuilt_generation_is_compacted_and_the_old_one_dropped(
    store: ClickHouseAnalyticsStore,
) -> None:
    world = World(store)
    world.put(1, 0, 0, 1)
    world.put(2, 0, 1, 2)
    await world.deliver(world.pending)
    await store.compact()
    fresh = await store.new_generation()
    await fresh.apply(analytics.changes(world.delivered), 0, world.delivered[-1].position)
    await store.activate(fresh.generation)
    await store.drop(1)
    assert await store.compact() is not None
    assert (await store.snapshot(fresh.generation)) is not None
    tables = await store.conn.rows(
        "SELECT name FROM system.tables WHERE database = {d:String}", {"d": store.db}
    )
    assert [t for (t,) in tables if t.endswith("_g1")] == []
    await world.check()


async def test_a_generation_before_migration_5_is_upgraded(chdb_path: str, events: Events) -> None:
    old = ClickHouseAnalyticsStore(Target.of(None, chdb_path))
    try:

        def before_5(client: Any) -> None:
            migrated_until(client, old.db, 4)
            rows = [
                r
                for r in analytics.changes(
                    [events.put("s", "a", {"status": "paid", "country": "DE", "n": 1})]
                )
                if isinstance(r, analytics.RecordRow)
            ]
            client.insert(
                f"{old.db}.records_v2_g1",
                [[r.account_id, r.source, r.key, r.version, r.updated_at, r.position, 0, r.data]
                 for r in rows],
                column_names=["account_id", "source", "id", "version", "updated_at",
                              "position", "is_deleted", "data"],
                settings=schema.JSON_SETTINGS,
            )  # fmt: skip

        old.conn.on_open = before_5
        await old.active_generation()
    finally:
        old.close()
    store = ClickHouseAnalyticsStore(Target.of(None, chdb_path), pointer_ttl=0.0)
    try:
        compiled = compile_query(parse_query(QUERIES["by status"]), ACCOUNT, QueryLimits())
        assert compiled.shape(await store.run(compiled)) == [
            {"data.status": "paid", "count": 1, "total": 1.0}
        ]
        assert await store.compact() is not None  # the row written before the upgrade too
        assert compiled.shape(await store.run(compiled)) == [
            {"data.status": "paid", "count": 1, "total": 1.0}
        ]
        versions = await store.conn.rows(
            f"SELECT version FROM {store.db}.schema_migrations WHERE generation = 1"
        )
        assert 5 in {v for (v,) in versions}
    finally:
        store.close()


async def test_compactions_take_at_most_their_share_of_a_core(
    store: ClickHouseAnalyticsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each compaction rewrites the whole generation: under a steady stream of changes
    they must not run back to back (at 2,000 events/s a 10,000-row tail is 5 s)."""
    spans: list[tuple[float, float]] = []

    async def due(*_: object, **__: object) -> bool:
        return True  # a tail always long enough

    async def compact(generation: int | None = None) -> None:
        started = time.monotonic()
        await asyncio.sleep(0.05)  # a compaction that takes 50 ms
        spans.append((started, time.monotonic()))

    store.hot.note([])  # a query was served
    monkeypatch.setattr(store.conn, "run", due)
    monkeypatch.setattr(store, "compact", compact)
    monkeypatch.setattr(store, "active_generation", lambda: asyncio.sleep(0, 1))
    stop = asyncio.Event()
    task = asyncio.create_task(store.compact_forever(stop, interval=0.005, max_share=0.25))
    while len(spans) < 3:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    for (_, ended), (next_started, _) in itertools.pairwise(spans):
        assert next_started - ended >= 3 * 0.05  # rest: took * (1 / 0.25 - 1)


async def test_fields_queries_read_become_snapshot_columns(
    store: ClickHouseAnalyticsStore,
) -> None:
    world = World(store)
    store.clock_margin = 0.0
    for key in range(6):
        world.put(key, key % 3, key % 2, key * 10)
    await world.deliver(world.pending)
    assert (await store.compact()) is not None
    compiled = world.compiled("paid by country")
    sql, _ = await store._sql(compiled)
    assert "fields" in sql
    assert "hot/" not in sql  # nothing was hot at that compaction
    await world.check()  # reads every field of QUERIES: now they are hot
    writer = store.writer(await store.active_generation())
    hot = store.hot.current()
    due = await store.conn.run(lambda c: writer.compaction_due(c, tail_rows=10**6, max_age=1e6))
    assert not due  # no tail, and no field asked for
    is_due = await store.conn.run(
        lambda c: writer.compaction_due(c, tail_rows=10**6, max_age=1e6, columns=hot)
    )
    assert is_due  # a hot field is not in the snapshot yet
    made = await store.compact()
    assert made is not None
    assert set(made.columns) == set(hot)
    table = schema.snapshot_table(store.db, writer.generation, made.number)
    types = dict(
        await store.conn.rows(
            "SELECT name, type FROM system.columns WHERE database = {d:String} "
            "AND table = {t:String} AND startsWith(name, 'hot/')",
            {"d": store.db, "t": table.split(".", 1)[1]},
        )
    )
    assert types["hot/string/status"] == "LowCardinality(Nullable(String))"  # three values
    assert types["hot/number/n"] == "Nullable(Float64)"
    store.hot = HotAccessors(min_uses=1)  # as after a restart: nothing read yet
    again = await store.compact()
    assert again is not None
    assert set(again.columns) == set(hot)  # what the latest snapshot held is kept
    assert not await store.conn.run(
        lambda c: writer.compaction_due(c, tail_rows=10**6, max_age=1e6, columns=hot)
    )
    sql, _ = await store._sql(compiled)
    assert "fields" not in sql
    assert "`hot/string/status`" in sql
    await world.check()
    world.put(1, 0, 1, 777)  # a change: FINAL again, then the snapshot and its tail
    await world.deliver(world.pending)
    await world.check()


async def test_the_column_lists_of_old_snapshots_are_forgotten(
    store: ClickHouseAnalyticsStore,
) -> None:
    world = World(store)
    world.put(1, 0, 0, 1)
    await world.deliver(world.pending)
    generation = await store.active_generation()
    for _ in range(10):
        made = await store.compact()
        assert made is not None
        assert await store.snapshot(generation) is not None  # reads its column list
    assert len(store.snapshot_columns) <= 8
    assert (generation, made.number) in store.snapshot_columns
