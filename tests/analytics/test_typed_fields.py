"""The records' typed JSON column (`fields`, migration 4): what a data field means when its
values differ in type between records, that every JSON document the API accepts is stored,
and that a generation in migration 3's layout is copied into it on start."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from infra.adapters.clickhouse import ClickHouseAnalyticsStore, Target
from infra.adapters.clickhouse.hot import HotAccessors
from infra.adapters.clickhouse.schema import RECORDS
from projections import analytics
from read_api.querylang import Accessor, QueryLimits, compile_query, parse_query
from tests.analytics.conftest import ACCOUNT, Events, migrated_until

EXAMPLES = int(os.environ.get("STRATA_FUZZ_EXAMPLES", "600")) // 30  # 20: each runs ~8 queries


async def query(store: ClickHouseAnalyticsStore, account: str = ACCOUNT, **raw: Any) -> Any:
    compiled = compile_query(parse_query({"source": "s", **raw}), account, QueryLimits())
    return compiled.shape(await store.run(compiled))


async def ids(store: ClickHouseAnalyticsStore, *filters: dict[str, Any]) -> list[str]:
    rows = await query(store, filters=list(filters), group_by=["id"])
    return [row["id"] for row in rows]


MIXED = {
    "r-str": {"v": "7", "day": "2026-02-01", "stamp": "2026-02-01T10:00:00Z"},
    "r-int": {"v": 7},
    "r-float": {"v": 7.5},
    "r-bool": {"v": True},
    "r-null": {"v": None},
    "r-object": {"v": {"w": 1}},
    "r-array": {"v": [1, "x"]},
    "r-missing": {"other": 1},
    "r-dotted": {"v.w": 2, "big": 2**70},
}


async def test_a_field_of_mixed_types(store: ClickHouseAnalyticsStore, events: Events) -> None:
    for key, data in MIXED.items():
        events.put("s", key, data)
    await store.writer(1).apply(analytics.changes(events.log), 0, len(events.log))
    store.hot = HotAccessors(min_uses=1, max_columns=64)
    store.clock_margin = 0.0  # every row before the cut: queries read the snapshot alone
    await answers_mixed(store)  # under FINAL
    made = await store.compact()  # with every field those queries read as a column
    assert made is not None
    assert {Accessor(("v",), "has"), Accessor(("v", "w"), "number")} <= made.columns.keys()
    assert len(made.columns) == len(store.hot.current())
    compiled = compile_query(parse_query({"group_by": ["data.v"]}), ACCOUNT, QueryLimits())
    sql, _ = await store._sql(compiled)
    assert "`hot/json/v`" in sql
    assert "fields" not in sql
    await answers_mixed(store)  # the same, over the snapshot's columns


async def answers_mixed(store: ClickHouseAnalyticsStore) -> None:
    def f(op: str, value: Any = None, field: str = "data.v") -> dict[str, Any]:
        return {"field": field, "op": op, "value": value}

    # A filter matches the values of its own JSON type only; numbers compare as numbers.
    assert await ids(store, f("eq", "7")) == ["r-str"]
    assert await ids(store, f("eq", 7)) == ["r-int"]
    assert await ids(store, f("gte", 7)) == ["r-float", "r-int"]
    assert await ids(store, f("in", [7.5, 8])) == ["r-float"]
    assert await ids(store, f("eq", True)) == ["r-bool"]
    assert await ids(store, f("ne", "x")) == ["r-str"]
    # exists: the key is there, whatever its value (null and objects included).
    present = ["r-array", "r-bool", "r-float", "r-int", "r-null", "r-object", "r-str"]
    assert await ids(store, f("exists", True)) == present
    assert await ids(store, f("exists", False)) == ["r-dotted", "r-missing"]
    assert await ids(store, f("eq", 1, "data.v.w")) == ["r-object"]
    # A key with a dot is not a path: data.v.w is only {"v": {"w": ...}}.
    assert await ids(store, f("exists", True, "data.v.w")) == ["r-object"]
    # Strings that look like times stay strings (no Date inference); buckets parse them.
    assert await ids(store, f("eq", "2026-02-01", "data.day")) == ["r-str"]
    assert await ids(store, f("prefix", "2026-02-01T", "data.stamp")) == ["r-str"]
    months = await query(store, group_by=[{"bucket": "month", "field": "data.stamp", "as": "m"}])
    assert {"m": "2026-02-01T00:00:00+00:00", "count": 1} in months
    # Integers beyond 64 bits are strings to the JSON column (documented in ADR 9).
    assert await ids(store, f("eq", str(2**70), "data.big")) == ["r-dotted"]
    # Groups are JSON values; null, missing and objects are the one null group.
    rows = await query(store, group_by=["data.v"], order_by=[{"field": "count", "dir": "desc"}])
    assert rows == [  # ties in the order of their JSON text
        {"data.v": None, "count": 4},
        {"data.v": "7", "count": 1},
        {"data.v": 7, "count": 1},
        {"data.v": 7.5, "count": 1},
        {"data.v": [1, "x"], "count": 1},
        {"data.v": True, "count": 1},
    ]
    aggregates = [
        {"fn": "sum", "field": "data.v", "as": "total"},
        {"fn": "count", "field": "data.v", "as": "having"},
        {"fn": "uniq", "field": "data.v", "as": "values"},
        {"fn": "max", "field": "data.v", "as": "top"},
    ]
    assert await query(store, aggregates=aggregates) == [
        {"total": 14.5, "having": 7, "values": 5, "top": 7.5}
    ]


# --- a property: the query language over random records equals a model of it ------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from(["a", "b", "7", "2026-01-01", "", "x'); --"]),
    st.text(max_size=6),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
documents = st.fixed_dictionaries(
    {}, optional={"v": json_values, "o": st.fixed_dictionaries({}, optional={"w": scalars})}
).flatmap(
    lambda d: st.dictionaries(st.text(max_size=5), json_values, max_size=3).map(
        lambda extra: {**extra, **d}
    )
)
probes = st.one_of(
    st.booleans(),
    st.integers(-(2**62), 2**62),
    st.floats(-1e300, 1e300, allow_nan=False),
    st.sampled_from(["a", "7", "2026-01-01", ""]),
    st.text(max_size=6),
)
steps = st.lists(
    st.tuples(st.sampled_from(["put", "put", "put", "delete"]), st.integers(0, 5), documents),
    min_size=1,
    max_size=12,
)


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def at(data: dict[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    for segment in path:
        if not isinstance(data, dict) or segment not in data:
            return False, None
        data = data[segment]
    return True, data


def matches(value: Any, probe: Any) -> bool:
    if kind(value) != kind(probe):
        return False
    if kind(probe) == "number":
        return bool(float(value) == float(probe))
    return bool(value == probe)


def group_value(value: Any) -> Any:
    """What grouping by a field yields: objects are no value; inside arrays, objects lose
    their null and empty members (see `agrees` for a null element)."""
    if isinstance(value, dict):
        return None
    return _in_array(value)


def numbers_as_floats(value: Any) -> Any:
    """Numbers compare as Float64 (2.0 is 2; 5.260934377028083e16 reads back as the integer
    52609343770280830, the same double)."""
    if isinstance(value, list):
        return [numbers_as_floats(v) for v in value]
    if isinstance(value, dict):
        return {k: numbers_as_floats(v) for k, v in value.items()}
    return float(value) if kind(value) == "number" else value


def agrees(got: Any, want: Any, in_array: bool = False) -> bool:
    """`got` is `want`, but a null element of an array may read as `[]` or `{}`: the engine
    types an array by its other elements or, when they do not decide (`[null]`), by the type
    another record of the same insert gave the path, and Array(Array) keeps no null."""
    if in_array and want is None and got in ([], {}):
        return True
    if isinstance(want, list):
        return (
            isinstance(got, list)
            and len(got) == len(want)
            and all(agrees(g, w, True) for g, w in zip(got, want, strict=True))
        )
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and got.keys() == want.keys()
            and all(agrees(got[k], w) for k, w in want.items())
        )
    return bool(got == want)


def _in_array(value: Any) -> Any:
    if isinstance(value, list):
        return [_in_array(v) for v in value]
    if isinstance(value, dict):
        kept = {k: _in_array(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in kept.items() if v != {}}
    return value


@pytest.fixture
def sync_store(chdb_path: str) -> Iterator[ClickHouseAnalyticsStore]:
    store = ClickHouseAnalyticsStore(Target.of(None, chdb_path), pointer_ttl=0.0)
    try:
        yield store
    finally:
        store.close()


def test_queries_over_random_records_equal_the_model(
    sync_store: ClickHouseAnalyticsStore,
) -> None:
    accounts = iter(range(10**6))

    @settings(max_examples=EXAMPLES, deadline=None)
    @given(steps=steps, probe=probes)
    @example(steps=[("put", 0, {"v": [None, {}]})], probe=False)  # Array(Nullable(JSON))
    @example(steps=[("put", 0, {"v": [None, [1]]})], probe=False)  # Array(Array(...)): no null
    @example(steps=[("put", 0, {"v": [[1]]}), ("put", 1, {"v": [None]})], probe=False)
    def check(steps: list[tuple[str, int, dict[str, Any]]], probe: Any) -> None:
        n = next(accounts)  # an account and slots of its own: positions start at 1 again
        account = f"00000000-0000-4000-8000-{n:012d}"
        events = Events()
        live: dict[str, dict[str, Any]] = {}
        for action, k, data in steps:
            key = f"k{k}"
            if action == "delete" and key in live:
                events.delete("s", key, account)
                del live[key]
            elif action == "put":
                events.put("s", key, msgspec.json.decode(msgspec.json.encode(data)), account)
                live[key] = data
        store = sync_store
        writer = store.writer(1)
        changes = analytics.changes(events.log)
        # Redelivered in part, on another slot: nothing changes.
        asyncio.run(writer.apply(changes, 2 * n, len(events.log)))
        asyncio.run(writer.apply(changes[: len(changes) // 2], 2 * n + 1, len(events.log)))

        def run(**raw: Any) -> Any:
            return asyncio.run(query(store, account, **raw))

        for field, path in (("data.v", ("v",)), ("data.o.w", ("o", "w"))):
            found = {k: at(d, path) for k, d in live.items()}
            flt = {"field": field, "op": "eq", "value": probe}
            expected = sorted(k for k, (ok, v) in found.items() if ok and matches(v, probe))
            got = [r["id"] for r in run(filters=[flt], group_by=["id"])]
            assert got == expected
            having = sorted(k for k, (ok, _) in found.items() if ok)
            exists = {"field": field, "op": "exists", "value": True}
            assert [r["id"] for r in run(filters=[exists], group_by=["id"])] == having
            rows = run(group_by=["id", field])
            got_groups = {r["id"]: numbers_as_floats(r[field]) for r in rows}
            want_groups = {k: numbers_as_floats(group_value(v)) for k, (_, v) in found.items()}
            assert got_groups.keys() == want_groups.keys()
            for k, want in want_groups.items():
                assert agrees(got_groups[k], want), (k, got_groups[k], want)
            numbers = [float(v) for ok, v in found.values() if ok and kind(v) == "number"]
            total = run(aggregates=[{"fn": "sum", "field": field, "as": "t"}])
            if numbers:
                assert math.isclose(total[0]["t"], math.fsum(numbers), rel_tol=1e-9, abs_tol=1e-9)

    check()


# --- migration: a generation in migration 3's layout is copied, and answers -------------


async def test_a_generation_of_the_old_layout_is_copied_on_start(
    chdb_path: str, events: Events
) -> None:
    old = ClickHouseAnalyticsStore(Target.of(None, chdb_path))
    try:
        # What a deployment before migration 4 had: migrations 1-3 and their table.
        def before_4(client: Any) -> None:
            migrated_until(client, old.db, 3)

        old.conn.on_open = before_4
        await old.active_generation()
        rows = [
            events.put("s", "a", {"v": "2026-01-01", "n": 2}),
            events.put("s", "a", {"v": "2026-01-01", "n": 3}),
            events.put("s", "b", {"n": 1}),
        ]
        rows.append(events.delete("s", "b"))
        values = [
            [
                r.account_id,
                r.source,
                r.key,
                r.version,
                r.updated_at,
                r.position,
                int(r.deleted),
                r.data,
            ]
            for r in analytics.changes(rows)
            if isinstance(r, analytics.RecordRow)
        ]
        await old.conn.run(
            lambda c: c.insert(
                f"{old.db}.records_g1",
                values,
                column_names=[
                    "account_id", "source", "id", "version", "updated_at", "position",
                    "is_deleted", "data",
                ],
            )
        )  # fmt: skip
    finally:
        old.close()
    store = ClickHouseAnalyticsStore(Target.of(None, chdb_path))
    try:
        filters = [{"field": "data.v", "op": "eq", "value": "2026-01-01"}]
        sums = [{"fn": "sum", "field": "data.n", "as": "n"}]
        assert await query(store, filters=filters, aggregates=sums) == [{"n": 3.0}]
        assert await query(store) == [{"count": 1}]
        tables = await store.conn.rows(
            "SELECT name FROM system.tables WHERE database = {d:String}", {"d": store.db}
        )
        names = {t for (t,) in tables}
        assert f"{RECORDS}_g1" in names
        assert "records_g1" not in names
    finally:
        store.close()
