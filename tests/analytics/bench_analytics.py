"""Measure the analytics store on chdb: projection writes and queries over N records.

    .venv/bin/python -m tests.analytics.bench_analytics [N=1000000] [UPDATED_SHARE=0.1]

Not collected by pytest. Writes go through the projection's rules and the store's apply, in
batches of 1,000 events like the log runner; queries through the compiler, as the API runs
them. Figures from this machine are in docs/adr/0009-analytics.md.
"""

from __future__ import annotations

import asyncio
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.adapters.clickhouse import ClickHouseAnalyticsStore, Target
from projections import analytics
from read_api.querylang import QueryLimits, compile_query, parse_query
from schemas.events import ProjectedEvent

ACCOUNT = "11111111-1111-1111-1111-111111111111"
COUNTRIES = [f"C{i:02d}" for i in range(30)]
STATUSES = ["paid", "open", "void", "refunded"]
QUERIES: dict[str, dict[str, Any]] = {
    "count": {"source": "orders"},
    "count by status": {"source": "orders", "group_by": ["data.status"]},
    "paid revenue by country and day, with quantiles": {
        "source": "orders",
        "filters": [{"field": "data.status", "op": "eq", "value": "paid"}],
        "group_by": ["data.country", {"bucket": "day", "field": "updated_at"}],
        "aggregates": [
            {"fn": "count"},
            {"fn": "sum", "field": "data.total", "as": "revenue"},
            {"fn": "quantiles", "field": "data.total", "levels": [0.5, 0.99]},
        ],
        "order_by": [{"field": "revenue", "dir": "desc"}],
        "limit": 1000,
    },
    "distinct customers per country, one week": {
        "source": "orders",
        "time_range": {"from": "2026-01-03T00:00:00Z", "to": "2026-01-10T00:00:00Z"},
        "group_by": ["data.country"],
        "aggregates": [{"fn": "uniq", "field": "data.customer"}],
    },
    "one key prefix": {
        "source": "orders",
        "filters": [{"field": "id", "op": "prefix", "value": "o-12345"}],
        "aggregates": [{"fn": "max", "field": "data.total"}],
    },
}


def events(n: int, updated_share: float) -> list[ProjectedEvent]:
    rng = random.Random(1)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[ProjectedEvent] = []
    keys = [f"o-{i}" for i in range(n)]
    versions: dict[str, int] = {}
    order = keys + rng.sample(keys, int(n * updated_share))
    for position, key in enumerate(order, start=1):
        version = versions.get(key, 0) + 1
        versions[key] = version
        data = {
            "status": rng.choice(STATUSES),
            "country": rng.choice(COUNTRIES),
            "total": round(rng.random() * 200, 2),
            "customer": f"c{rng.randrange(n // 10 or 1)}",
        }
        out.append(
            ProjectedEvent(
                position=position,
                stream_id=uuid.uuid5(uuid.NAMESPACE_URL, key),
                version=version,
                type="Record.Created" if version == 1 else "Record.Updated",
                timestamp=start + timedelta(seconds=position * 2),
                payload={"account_id": ACCOUNT, "source": "orders", "key": key, "data": data},
            )
        )
    return out


async def main(n: int, updated_share: float) -> None:
    log = events(n, updated_share)
    path = tempfile.mkdtemp(prefix="strata-bench-chdb-")
    store = ClickHouseAnalyticsStore(Target.of(None, path))
    try:
        writer = store.writer(await store.active_generation())
        began = time.perf_counter()
        for start in range(0, len(log), 1000):
            batch = log[start : start + 1000]
            await writer.apply(analytics.changes(batch), 0, batch[-1].position)
        took = time.perf_counter() - began
        rate = len(log) / took
        print(f"applied {len(log):,} events ({n:,} records) in {took:.1f}s: {rate:,.0f}/s")
        limits = QueryLimits(max_execution_seconds=60)
        for name, raw in QUERIES.items():
            compiled = compile_query(parse_query(raw), ACCOUNT, limits)
            times = []
            for _ in range(5):
                began = time.perf_counter()
                rows = compiled.shape(await store.run(compiled))
                times.append(time.perf_counter() - began)
            median, best = statistics.median(times) * 1000, min(times) * 1000
            print(f"{name}: median {median:.0f} ms, best {best:.0f} ms, {len(rows)} rows")
        parts = await store.conn.rows(
            "SELECT table, sum(rows), formatReadableSize(sum(data_compressed_bytes)) "
            "FROM system.parts WHERE active AND database = 'strata' GROUP BY table ORDER BY 1"
        )
        print("tables:", parts)
    finally:
        store.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MiB; data in {path}")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    share = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1
    asyncio.run(main(count, share))
