"""Query-language fuzzing: every generated query is either refused with a QueryError naming
a part of it, or compiles to SQL that runs on chdb; no user text ever becomes SQL text."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import read_api.querylang as querylang
from infra.adapters.clickhouse import ClickHouseAnalyticsStore, Target
from read_api.querylang import (
    ALIAS,
    CompiledQuery,
    QueryError,
    QueryLimits,
    _level_name,
    compile_query,
    parse_query,
)
from tests.analytics.conftest import ACCOUNT, EVIL, seed

EXAMPLES = int(os.environ.get("STRATA_FUZZ_EXAMPLES", "600"))
LIMITS = QueryLimits(max_rows=500, max_execution_seconds=20)
INJECTIONS = [
    EVIL,
    "x' OR '1'='1",
    "a\\'); SELECT 1; --",
    "}{p0:String}",
    "{p0:String}",
    "$heredoc$",
    "data.status' --",
    "\x00",
    "`records_g1`",
    "records_g1 FINAL; DROP DATABASE strata",
]
FIELDS = [
    "id",
    "source",
    "version",
    "updated_at",
    "data.status",
    "data.total",
    "data.country",
    "data.customer.tier",
    "data.flag",
    "data.day",
    "data.missing",
    "data.a.b.c.d.e",
]
BAD_FIELDS = [
    "",
    "data",
    "data.",
    "data..x",
    "DATA.status",
    "data.a-b",
    "data.a.b.c.d.e.f",
    "data.é",
    "count()",
    *(f"data.{s}" for s in INJECTIONS),
    *INJECTIONS,
]
OPS = [*querylang.COMPARISONS, "in", "not_in", "contains", "prefix", "exists"]
FNS = ["count", "sum", "avg", "min", "max", "uniq", "quantiles"]
BUCKETS = list(querylang.BUCKETS)

texts = st.text(max_size=12)
times = st.one_of(
    st.sampled_from(["2026-01-05T10:00:00Z", "2026-01-06", "1800-01-01", "2026-13-01", "now"]),
    st.datetimes().map(lambda d: d.isoformat()),
    texts,
)
scalars = st.one_of(
    st.sampled_from(["paid", "DE", "7", "", "2026-01-05T10:00:00Z", *INJECTIONS]),
    texts,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(texts, scalars, max_size=2),
)


def query_shaped(
    fields: st.SearchStrategy[str],
    ops: st.SearchStrategy[str],
    fns: st.SearchStrategy[str],
    units: st.SearchStrategy[str],
    names: st.SearchStrategy[str],
    *,
    strict: bool,
) -> st.SearchStrategy[dict[str, Any]]:
    """Query-shaped dicts; `strict` keeps sources, directions, levels and times plausible."""
    some = scalars if strict else values
    filters = st.fixed_dictionaries(
        {"field": fields, "op": ops}, optional={"value": st.one_of(some, st.lists(scalars))}
    )
    buckets = st.fixed_dictionaries({"bucket": units}, optional={"field": fields, "as": names})
    levels = st.lists(st.one_of(st.floats(-1, 2), st.integers(-1, 2)), max_size=11)
    if strict:
        levels = st.one_of(st.none(), st.lists(st.floats(0, 1), min_size=1, max_size=4))
    aggregates = st.fixed_dictionaries(
        {"fn": fns}, optional={"field": fields, "as": names, "levels": levels}
    )
    orders = st.fixed_dictionaries(
        {"field": st.one_of(fields, names, st.sampled_from(["count", "sum_data_total"]))},
        optional={"dir": st.sampled_from(["asc", "desc"] if strict else ["asc", "desc", "up"])},
    )
    sources = st.sampled_from(["orders", "clicks"])
    moments = st.sampled_from(["2026-01-05T10:00:00Z", "2026-01-06", "2025-12-31T23:00:00+01:00"])
    return st.fixed_dictionaries(
        {},
        optional={
            "source": sources if strict else st.one_of(sources, texts),
            "filters": st.lists(filters, max_size=3),
            "time_range": st.fixed_dictionaries(
                {}, optional={"from": moments if strict else times, "to": times}
            ),
            "group_by": st.lists(st.one_of(fields, buckets), max_size=3),
            "aggregates": st.lists(aggregates, max_size=3),
            "order_by": st.lists(orders, max_size=2),
            "limit": st.one_of(st.integers(1, 50), st.integers(-5, 20_000)),
        },
    )


# Well-formed names and functions (values still arbitrary): most of these run.
well_formed = query_shaped(
    st.sampled_from(FIELDS),
    st.sampled_from(OPS),
    st.sampled_from(FNS),
    st.sampled_from(BUCKETS),
    st.from_regex(ALIAS, fullmatch=True),
    strict=True,
)
STRING_OPS = ["eq", "ne", "lt", "lte", "gt", "gte", "contains", "prefix"]
NUMBER_OPS = ["eq", "ne", "lt", "lte", "gt", "gte"]
DATA_FIELDS = [f for f in FIELDS if f.startswith("data.")]
strings = st.one_of(st.sampled_from(["paid", "DE", "7", "", *INJECTIONS]), st.text(max_size=8))
numbers = st.one_of(
    st.integers(-(2**62), 2**62), st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False)
)


@st.composite
def valid_filter(draw: st.DrawFn) -> dict[str, Any]:
    field = draw(st.sampled_from(FIELDS))
    if field == "version":
        value: Any = draw(st.integers(0, 2**62))
        op = draw(st.sampled_from(NUMBER_OPS))
    elif field == "updated_at":
        value = draw(st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2261, 1, 1)))
        value, op = value.isoformat(), draw(st.sampled_from(NUMBER_OPS))
    elif field in ("id", "source"):
        value, op = draw(strings), draw(st.sampled_from(STRING_OPS))
    else:
        kind = draw(st.sampled_from(["string", "number", "bool", "exists"]))
        if kind == "exists":
            return {"field": field, "op": "exists", "value": draw(st.booleans())}
        if kind == "bool":
            value, op = draw(st.booleans()), draw(st.sampled_from(["eq", "ne"]))
        elif kind == "number":
            value, op = draw(numbers), draw(st.sampled_from(NUMBER_OPS))
        else:
            value, op = draw(strings), draw(st.sampled_from(STRING_OPS))
    if draw(st.booleans()) and op in ("eq", "ne"):
        return {"field": field, "op": "in" if op == "eq" else "not_in", "value": [value]}
    return {"field": field, "op": op, "value": value}


@st.composite
def valid_query(draw: st.DrawFn) -> dict[str, Any]:
    """Queries that must compile (and then run)."""
    groups = draw(st.lists(st.sampled_from(FIELDS), max_size=2, unique=True))
    bucket = draw(st.one_of(st.none(), st.sampled_from(BUCKETS)))
    group_by: list[Any] = list(groups)
    if bucket is not None:
        field = draw(st.sampled_from(["updated_at", "data.day"]))
        group_by.append({"bucket": bucket, "field": field, "as": "t"})
    aggregates: list[dict[str, Any]] = [{"fn": "count", "as": "n"}]
    for i, fn in enumerate(draw(st.lists(st.sampled_from(FNS[1:]), max_size=3))):
        field = draw(st.sampled_from([*DATA_FIELDS, "version"]))
        agg: dict[str, Any] = {"fn": fn, "field": field, "as": f"a{i}"}
        if fn == "quantiles":
            # distinct result columns: 1.0 and 0.9999999999999999 are both `_p100`
            levels = st.lists(st.floats(0, 1), min_size=1, max_size=3, unique_by=_level_name)
            agg["levels"] = draw(levels)
        aggregates.append(agg)
    names = [*groups, *(["t"] if bucket else []), "n"]
    names += [a["as"] for a in aggregates if a["fn"] not in ("quantiles", "count")]
    order = draw(st.lists(st.sampled_from(names), max_size=2, unique=True))
    return {
        "source": draw(st.sampled_from(["orders", "clicks"])),
        "filters": draw(st.lists(valid_filter(), max_size=3)),
        "group_by": group_by,
        "aggregates": aggregates,
        "order_by": [
            {"field": name, "dir": draw(st.sampled_from(["asc", "desc"]))} for name in order
        ],
        "limit": draw(st.integers(1, LIMITS.max_rows)),
    }


# Anything in any place, and things that are no query at all: most of these are refused.
wild = st.one_of(
    query_shaped(
        st.one_of(st.sampled_from(FIELDS), st.sampled_from(BAD_FIELDS), texts),
        st.one_of(st.sampled_from(OPS), texts),
        st.one_of(st.sampled_from(FNS), texts),
        st.one_of(st.sampled_from(BUCKETS), texts),
        st.one_of(st.sampled_from(["count", "x", *INJECTIONS]), texts),
        strict=False,
    ),
    values,
    st.fixed_dictionaries({"extra": values}),
)

# Every word of the SQL must come from the compiler's own source (or be a generated alias
# or parameter name), and every quoted literal from a fixed set.
VOCABULARY = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", Path(querylang.__file__).read_text()))
LITERALS = {"String", "Bool", "Int64", "UInt64", "Double", "UTC", "", "null"}
PLACEHOLDER = re.compile(r"\{p\d+:[A-Za-z0-9(), ']+\}")


def assert_only_compiler_text(sql: str) -> None:
    bare = PLACEHOLDER.sub(" ", sql)
    for literal in re.findall(r"'([^']*)'", bare):
        assert literal in LITERALS, (literal, sql)
    bare = re.sub(r"'[^']*'", " ", bare)
    for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", bare):
        assert word in VOCABULARY or re.fullmatch(r"[cr]\d+", word), (word, sql)
    assert re.fullmatch(r"[A-Za-z0-9_ ,()=!<>\[\].:]*", bare), sql


def outcome(raw: Any) -> CompiledQuery | QueryError:
    try:
        return compile_query(parse_query(raw), ACCOUNT, LIMITS)
    except QueryError as exc:
        return exc


@pytest.fixture
def store(chdb_path: str) -> Iterator[ClickHouseAnalyticsStore]:
    analytics = ClickHouseAnalyticsStore(Target.of(None, chdb_path))
    asyncio.run(seed(analytics))
    try:
        yield analytics
    finally:
        analytics.close()


def run_checked(store: ClickHouseAnalyticsStore, raw: Any, compiled: CompiledQuery) -> None:
    assert_only_compiler_text(compiled.sql)
    rows = compiled.shape(asyncio.run(store.run(compiled)))  # never a server error
    assert len(rows) <= (raw.get("limit") or LIMITS.default_limit)
    assert all(list(row) == [c.name for c in compiled.columns] for row in rows)
    msgspec.json.encode(rows)  # every cell is JSON


def test_every_query_runs_or_is_refused_by_name(store: ClickHouseAnalyticsStore) -> None:
    @settings(max_examples=EXAMPLES, deadline=None)
    @given(raw=valid_query())
    def valid(raw: dict[str, Any]) -> None:
        compiled = outcome(raw)
        assert not isinstance(compiled, QueryError), (compiled, raw)
        run_checked(store, raw, compiled)

    @settings(max_examples=EXAMPLES, deadline=None)
    @given(raw=st.one_of(well_formed, wild))
    def anything(raw: Any) -> None:
        compiled = outcome(raw)
        if isinstance(compiled, QueryError):
            where = compiled.details[0]["field"]
            assert where.startswith("$"), compiled
            assert str(compiled).startswith(f"{where}: ")
            assert compiled.details[0]["message"]
            event("refused")
            return
        event("ran")
        run_checked(store, raw, compiled)

    valid()
    anything()
    # Afterwards the tables are all there and an injection-shaped value is still just data.
    tables = asyncio.run(
        store.conn.rows(
            "SELECT name FROM system.tables WHERE database = {d:String}", {"d": store.db}
        )
    )
    assert {"records_v2_g1", "usage_g1", "checkpoints_g1", "generations"} <= {t for (t,) in tables}
    for evil in INJECTIONS:
        raw = {"filters": [{"field": "data.status", "op": "eq", "value": evil}]}
        compiled = compile_query(parse_query(raw), ACCOUNT, LIMITS)
        expected = [{"count": 1 if evil == EVIL else 0}]
        assert compiled.shape(asyncio.run(store.run(compiled))) == expected
    found = compile_query(parse_query({"group_by": ["data.status"]}), ACCOUNT, LIMITS)
    assert {"data.status": EVIL, "count": 1} in found.shape(asyncio.run(store.run(found)))
