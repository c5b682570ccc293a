"""Datasets of bench/read.py, loaded into the read models' stores.

- search: synthetic `Record.Created` events through the search projection's rules
  (`projections.search.changes`) into Elasticsearch through its adapter
  (`ElasticGeneration.apply`), on a side slot so the feed's checkpoints are untouched;
- analytics: rows generated inside ClickHouse (`INSERT ... SELECT FROM numbers()`) into the
  records table the adapter created, shaped as the projection writes them (the ingested JSON
  as text, from which the table derives its typed `fields`), with older versions and
  tombstones so that FINAL has work to do; then compacted into a snapshot (ADR 9,
  amendment 2) that holds the fields `--queries` read as columns (amendment 3), as the read
  API's compactor would have done by the time the same queries come again. Run as
  `python bench/_read_data.py analytics ...` in its own process: chdb allows one owner per
  data path, and the read API takes it over afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from infra.adapters.clickhouse import ClickHouseAnalyticsStore, Target, schema  # noqa: E402
from projections import search  # noqa: E402
from read_api.querylang import QueryLimits, compile_query, parse_query  # noqa: E402
from schemas.events import ProjectedEvent  # noqa: E402

SIDE_SLOT = 99  # not a feed slot: loading never moves the projection's watermark
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

# ------------------------------------------------------------------ search documents

CATEGORIES = tuple(f"cat-{i:02d}" for i in range(20))
COLORS = ("red", "green", "blue", "black", "white", "grey", "navy", "olive", "teal", "amber")
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "te", "vi", "do", "pa", "ber", "lin", "tor")


def vocabulary(size: int, seed: int = 7) -> list[str]:
    """`size` distinct made-up words; used with a Zipf-like draw (a few are very common)."""
    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randrange(2, 5))))
    return sorted(words)


def search_data(rng: random.Random, words: list[str], weights: list[float]) -> dict[str, Any]:
    """A product-like document of ~400 B: a name, a 25-word description, exact fields."""
    return {
        "name": " ".join(rng.choices(words, weights, k=3)),
        "description": " ".join(rng.choices(words, weights, k=25)),
        "category": rng.choice(CATEGORIES),
        "color": rng.choice(COLORS),
        "price_cents": rng.randrange(100, 100_000),
        "stock": rng.randrange(0, 500),
        "tags": rng.sample(COLORS, 2),
    }


def search_events(
    account: str, source: str, count: int, seed: int = 11
) -> Iterator[ProjectedEvent]:
    rng = random.Random(seed)
    words = vocabulary(5000)
    weights = [1.0 / (rank + 1) for rank in range(len(words))]
    namespace = uuid.UUID(account)
    for n in range(count):
        key = f"d-{n:08d}"
        yield ProjectedEvent(
            position=n + 1,
            stream_id=uuid.uuid5(namespace, f"{source}/{key}"),
            version=1,
            type="Record.Created",
            timestamp=EPOCH + timedelta(seconds=n * 7),
            payload={
                "account_id": account,
                "source": source,
                "key": key,
                "data": search_data(rng, words, weights),
            },
        )


async def load_search(
    index: Any,
    account: str,
    source: str,
    count: int,
    batch: int = 10_000,
    concurrency: int = 3,
    progress: Any = None,
) -> float:
    """Index `count` documents through the adapter; returns the seconds it took. Up to
    `concurrency` batches are applied at once, so that this process encodes documents while
    Elasticsearch indexes the previous ones (each `apply` sends bulks of the adapter's size,
    1,000 documents, then refreshes)."""
    started = time.perf_counter()
    writer = index.writer(await index.active_generation())
    pending: list[ProjectedEvent] = []
    in_flight: set[asyncio.Task[None]] = set()
    done = 0

    async def drain(limit: int) -> None:
        while len(in_flight) > limit:
            finished, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            in_flight.difference_update(finished)
            for task in finished:
                task.result()  # a refused document fails the load

    for event in search_events(account, source, count):
        pending.append(event)
        if len(pending) == batch:
            await drain(concurrency - 1)
            in_flight.add(asyncio.create_task(writer.apply(search.changes(pending), SIDE_SLOT, 0)))
            await asyncio.sleep(0)  # let it send its first request before encoding more
            done += len(pending)
            pending = []
            if progress is not None:
                progress(done)
    if pending:
        in_flight.add(asyncio.create_task(writer.apply(search.changes(pending), SIDE_SLOT, 0)))
    await drain(0)
    return time.perf_counter() - started


# ------------------------------------------------------------------ analytics rows

STATUSES = ("pending", "paid", "packed", "shipped", "delivered", "refunded", "cancelled")
COUNTRIES = ("DE", "FR", "US", "GB", "NL", "ES", "IT", "SE", "PL", "JP", "BR", "CA")
CURRENCIES = ("EUR", "USD", "GBP", "SEK", "PLN", "JPY")
TAGS = ("gift", "promo", "b2b", "express", "first-order", "vip", "backorder", "fragile")


def _pick(options: tuple[str, ...], salt: int) -> str:
    quoted = ", ".join(f"'{o}'" for o in options)
    return f"[{quoted}][1 + cityHash64(n, {salt}) % {len(options)}]"


def _order_json(version_salt: int) -> str:
    """The JSON text of an order record (the shape bench/pipeline.py ingests), computed from
    `n`; `version_salt` varies the values between versions of one record."""
    s = version_salt
    tags = (
        "arrayStringConcat(arrayMap(t -> concat('\"', t, '\"'), "
        f"arrayFilter(t -> cityHash64(n, {s}, t) % 8 = 0, {list(TAGS)!r})), ',')"
    )
    return (
        "concat('{\"customer\":\"cus_', leftPad(toString(cityHash64(n, 1) % 2000000), 7, '0'), "
        f'\'","amount_cents":\', toString(100 + cityHash64(n, {s}, 2) % 250000), '
        f'\',"currency":"\', {_pick(CURRENCIES, 3)}, '
        f'\'","status":"\', {_pick(STATUSES, 4 + s)}, '
        f'\'","items":\', toString(1 + cityHash64(n, {s}, 5) % 8), '
        f'\',"country":"\', {_pick(COUNTRIES, 6)}, '
        '\'","created_at":"\', '
        "formatDateTime(toDateTime(1735689600 + cityHash64(n, 7) % 31536000, 'UTC'), "
        "'%Y-%m-%dT%H:%i:%SZ'), "
        f"'\",\"tags\":[', {tags}, ']}}')"
    )


def analytics_sql(table: str, account: str, source: str, count: int) -> list[str]:
    """Every record once (version 1, or 2 for the 10 % updated ones: their version 1 is an
    older row with other values); 1 % deleted (a version 3 tombstone, data '{}')."""
    start = int(EPOCH.timestamp())
    columns = "(account_id, source, id, version, updated_at, position, is_deleted, data)"
    head = f"INSERT INTO {table} {columns} SELECT '{account}', '{source}', "
    key = "concat('s-', leftPad(toString(n), 9, '0'))"
    moment = f"toDateTime64({start} + intDiv(n * 31536000, {count}) + {{lag}}, 6, 'UTC')"
    numbers = f"FROM (SELECT number AS n FROM numbers({count}))"
    return [
        # current state: version 2 for every tenth record, else 1
        f"{head}{key}, if(n % 10 = 0, 2, 1), {moment.format(lag=60)}, n * 2 + 2, 0, "
        f"{_order_json(0)} {numbers}",
        # the older version of every tenth record
        f"{head}{key}, 1, {moment.format(lag=0)}, n * 2 + 1, 0, {_order_json(1)} "
        f"{numbers} WHERE n % 10 = 0",
        # tombstones of one record in a hundred
        f"{head}{key}, 3, {moment.format(lag=120)}, n * 2 + 3, 1, '{{}}' "
        f"{numbers} WHERE n % 100 = 7",
    ]


def load_analytics(
    path: str, account: str, source: str, count: int, queries: list[dict[str, Any]]
) -> dict[str, Any]:
    """Create the schema through the adapter, then generate the rows in the engine."""
    store = ClickHouseAnalyticsStore(Target.of(None, path))
    try:
        generation = asyncio.run(store.active_generation())  # opens and migrates
        table = store.table(schema.RECORDS, generation)
        started = time.perf_counter()
        for statement in analytics_sql(table, account, source, count):

            def run(client: Any, sql: str = statement) -> None:
                client.command(sql, settings=schema.JSON_SETTINGS)  # as the adapter inserts

            store.conn.call(run)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        limits = QueryLimits()
        compiled = [compile_query(parse_query(q), account, limits) for q in queries]
        hot = {accessor for c in compiled for accessor, _ in c.accessors.values()}
        snapshot = asyncio.run(store.compact(columns=sorted(hot, key=repr)))
        compact_seconds = time.perf_counter() - started

        def facts(client: Any) -> list[Any]:
            rows = client.query(
                f"SELECT count(), countIf(is_deleted = 1), uniqExact(id) FROM {table}"
            ).result_rows
            parts = client.query(
                "SELECT count(), sum(rows), sum(data_compressed_bytes) FROM system.parts "
                "WHERE active AND database = {d:String} AND table = {t:String}",
                parameters={"d": store.db, "t": table.split(".", 1)[1]},
            ).result_rows
            return [*rows[0], *parts[0]]

        rows, tombstones, records, parts, _, compressed = store.conn.call(facts)
        return {
            "records": int(records),
            "rows": int(rows),
            "tombstones": int(tombstones),
            "parts": int(parts),
            "compressed_mib": round(int(compressed) / 2**20, 1),
            "load_s": round(seconds, 1),
            "compact_s": round(compact_seconds, 1),
            "table": table,
            "snapshot": schema.snapshot_table(store.db, generation, snapshot.number)
            if snapshot is not None
            else None,
        }
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["analytics"])
    parser.add_argument("--path", required=True, help="the chdb data path")
    parser.add_argument("--account", required=True)
    parser.add_argument("--source", default="sales")
    parser.add_argument("--count", type=int, default=10_000_000)
    parser.add_argument("--queries", default="[]", help="JSON: the queries seen before")
    args = parser.parse_args(argv)
    queries = json.loads(args.queries)
    print(json.dumps(load_analytics(args.path, args.account, args.source, args.count, queries)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
