"""The analytics read model in ClickHouse: generations of records/usage/checkpoints tables.

Writes are idempotent without transactions: rows at or below the slot's checkpoint are
skipped, the data goes in (in bounded batches) before the checkpoint moves, and whatever a
crash makes us write twice is absorbed by ReplacingMergeTree (same key, same or older
version). Records are inserted as JSON text; the table derives their typed `fields`
(schema.JSON_SETTINGS). Every record row is also copied into `changes` (the tail), after it
is in `records`.

Queries read the latest live state exactly (ADR 9, amendment 2): from the latest snapshot
alone when nothing in their scope changed since its cut; from the snapshot merged with that
tail when it is at most `max_tail` rows (0 by default: measured slower than FINAL); else,
and before the first snapshot, from `records` under FINAL. `compact` writes a new snapshot
from `records` (FINAL) in the background, without blocking reads or writes; the snapshot also
holds, as columns, the data fields this process's queries read most (`hot`), which queries
over it then read instead of `fields`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, Literal

import msgspec
from clickhouse_connect.driver.exceptions import DatabaseError

from infra.adapters.clickhouse import hot, schema
from infra.adapters.clickhouse.connection import Connection, Target, error_code
from projections.analytics import (
    API_CALLS,
    BYTES_INGESTED,
    RECORDS_INGESTED,
    AnalyticsChange,
    RecordRow,
    UsageRow,
)
from read_api.ports import QueryLimitError
from read_api.querylang import Accessor, Columns, CompiledQuery
from schemas.query import UsageRow as UsageView

RECORD_COLUMNS = [
    "account_id",
    "source",
    "id",
    "version",
    "updated_at",
    "position",
    "is_deleted",
    "data",
]
USAGE_COLUMNS = ["account_id", "hour", "metric", "position", "value"]

# The projection's rows go to ClickHouse as JSON text, one array per row, encoded by msgspec
# in C: clickhouse-connect's Native encoding in Python was half of the read API's CPU per
# event on the analytics feed. Times go as UTC ("2026-01-05T09:00:00.123456Z"), which
# ClickHouse's basic date-time parsing reads (best_effort would also change how the JSON
# column infers the types of data fields).
ROW_FORMAT = "JSONCompactEachRow"
ZERO = timedelta(0)
_ROW_ENCODER = msgspec.json.Encoder()


def _in_utc(moment: datetime) -> datetime:
    """`moment` as UTC, as msgspec then writes it ("...Z"); a naive one is taken as UTC."""
    offset = moment.utcoffset()
    if offset is None:
        return moment.replace(tzinfo=UTC)
    return moment if offset == ZERO else moment.astimezone(UTC)


def _insert_rows(
    client: Any, table: str, columns: Sequence[str], rows: list[bytes], settings: dict[str, Any]
) -> None:
    client.raw_insert(table, columns, b"\n".join(rows), settings=settings, fmt=ROW_FORMAT)


# ClickHouse error codes of the per-query limits, and the setting each one names.
LIMITS = {
    396: "max_result_rows",  # TOO_MANY_ROWS_OR_BYTES
    159: "max_execution_time",  # TIMEOUT_EXCEEDED
    160: "max_execution_time",  # TOO_SLOW (estimated to exceed it)
    241: "max_memory_usage",  # MEMORY_LIMIT_EXCEEDED
}
Granularity = Literal["hour", "day", "month"]
PERIODS: dict[str, str] = {
    "hour": "toStartOfHour(hour)",
    "day": "toStartOfDay(hour)",
    "month": "toDateTime(toStartOfMonth(hour), 'UTC')",
}


log = logging.getLogger("strata.analytics")
SNAPSHOT_COLUMNS = "account_id, source, id, version, updated_at, position, is_deleted, data"


@dataclass(frozen=True, slots=True)
class Snapshot:
    number: int
    cut: datetime
    rows: int
    columns: Columns = field(default_factory=dict)
    """The data fields it holds as columns (hot.py): accessor -> column name."""


def _utc(moment: datetime) -> str:
    return _in_utc(moment).strftime("%Y-%m-%d %H:%M:%S")


class ClickHouseAnalyticsStore:
    """GenerationStore of the `analytics` projection, and the query and usage reader."""

    def __init__(
        self,
        target: Target,
        *,
        pool_size: int = 4,
        insert_batch: int = 50_000,
        pointer_ttl: float = 0.5,
        max_tail: int = 0,
        compact_threads: int = 1,
        clock_margin: float = 5.0,
        hot_accessors: hot.HotAccessors | None = None,
        insert_priority: int = 0,
    ) -> None:
        self.db = target.database
        self.target = target
        self.insert_batch = insert_batch
        self.pointer_ttl = pointer_ttl
        self.max_tail = max_tail
        """Above this many tail rows in a query's scope, it reads FINAL instead of the
        snapshot merged with the tail. 0 by default: that merge measured slower than FINAL
        with 1,000 tail rows over 10M records (ADR 9, amendment 2)."""
        self.compact_threads = compact_threads
        self.clock_margin = clock_margin
        """A snapshot's cut is this many seconds before it reads: the clock may step back."""
        self.hot = hot_accessors or hot.HotAccessors()
        """The data fields queries read most, which the next snapshot holds as columns."""
        self.insert_settings = {"os_thread_priority": insert_priority} if insert_priority else {}
        """Settings of the projection's inserts: ClickHouse renices the threads that run an
        insert, for that insert only (below the requests and queries served meanwhile)."""
        self.conn = Connection(target, pool_size=pool_size, on_open=self._start)
        self._active: tuple[int, float] | None = None
        self._snapshot: tuple[int, Snapshot | None, float] | None = None
        self.snapshot_columns: dict[tuple[int, int], Columns] = {}

    def _start(self, client: Any) -> None:
        schema.start(client, self.db)

    def table(self, name: str, generation: int) -> str:
        return schema.table(self.db, name, generation)

    # --- GenerationStore -------------------------------------------------------------------
    async def active_generation(self) -> int:
        """The generation readers see; re-read at most every `pointer_ttl` seconds."""
        now = time.monotonic()
        if self._active is not None and now - self._active[1] < self.pointer_ttl:
            return self._active[0]
        generation = await self.conn.run(lambda c: schema.active_generation(c, self.db))
        self._active = (generation, now)
        return generation

    def writer(self, generation: int) -> ClickHouseGeneration:
        return ClickHouseGeneration(self, generation)

    async def new_generation(self) -> ClickHouseGeneration:
        generation = await self.conn.run(lambda c: schema.create_generation(c, self.db))
        return self.writer(generation)

    async def activate(self, generation: int) -> None:
        await self.conn.run(lambda c: schema.record_generation(c, self.db, generation, "activated"))
        self._active = None

    async def drop(self, generation: int) -> None:
        self._active = None
        if generation == await self.active_generation():
            raise ValueError("cannot drop the active generation")
        await self.conn.run(lambda c: schema.drop_generation(c, self.db, generation))

    async def checkpoints(self) -> dict[int, int]:
        return await self.writer(await self.active_generation()).checkpoints()

    async def watermark(self, slots: Sequence[int]) -> int:
        checkpoints = await self.checkpoints()
        return min(checkpoints.get(slot, 0) for slot in slots)

    # --- snapshots -------------------------------------------------------------------------
    async def snapshot(self, generation: int) -> Snapshot | None:
        """The generation's latest snapshot; re-read at most every `pointer_ttl` seconds."""
        now = time.monotonic()
        cached = self._snapshot
        if cached is not None and cached[0] == generation and now - cached[2] < self.pointer_ttl:
            return cached[1]
        found = await self.conn.run(lambda c: self.writer(generation).latest_snapshot(c))
        self._snapshot = (generation, found, now)
        return found

    async def compact(
        self, generation: int | None = None, columns: Sequence[Accessor] | None = None
    ) -> Snapshot | None:
        """Write a new snapshot of `generation` (default: the active one) with `columns`
        (default: the hot ones), publish it, and drop what no reader needs any more. None
        when the generation has no records."""
        target = await self.active_generation() if generation is None else generation
        if columns is None:
            latest = await self.snapshot(target)
            wanted = self.hot.current(held=latest.columns if latest else ())
        else:
            wanted = list(columns)
        made = await self.conn.run(
            lambda c: self.writer(target).compact(c, self.compact_threads, wanted)
        )
        self._snapshot = None
        return made

    async def compact_forever(
        self, stop: asyncio.Event, *, interval: float = 10.0, tail_rows: int = 10_000,
        max_age: float = 600.0, max_share: float = 0.1,
    ) -> None:  # fmt: skip
        """Compact the active generation in the background: when it has records but no
        snapshot, when its tail reaches `tail_rows`, when a tail is older than `max_age`
        seconds, or when queries read a field the snapshot does not hold as a column; and
        only while this process serves queries (one within the hot set's window: a snapshot
        serves queries, and without them it would cost CPU for nothing). A compaction
        rewrites the whole generation, so after one that took `d` seconds the next
        waits at least `d * (1 / max_share - 1)`: compactions use at most `max_share` of a
        core on average however large the generation grows (sources written meanwhile are
        read under FINAL). Errors are logged and retried later."""
        rest_until = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() >= rest_until and self.hot.queried():
                    writer = self.writer(await self.active_generation())
                    due = partial(
                        writer.compaction_due,
                        tail_rows=tail_rows,
                        max_age=max_age,
                        columns=self.hot.current(),
                    )
                    if await self.conn.run(due):
                        started = time.monotonic()
                        await self.compact(writer.generation)
                        took = time.monotonic() - started
                        rest_until = time.monotonic() + took * (1 / max_share - 1)
            except Exception:
                log.warning("analytics compaction failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    # --- read_api.ports.AnalyticsReader ----------------------------------------------------
    async def _sql(self, query: CompiledQuery) -> tuple[str, dict[str, Any]]:
        """The query over the cheapest exact source (module docstring)."""
        generation = await self.active_generation()
        records = self.table(schema.RECORDS, generation)
        snapshot = await self.snapshot(generation)
        if snapshot is None:
            return query.render(records), query.parameters
        writer = self.writer(generation)
        tail = await self.conn.run(lambda c: writer.tail_rows(c, snapshot, query))
        if tail > self.max_tail:
            return query.render(records), query.parameters
        table = schema.snapshot_table(self.db, generation, snapshot.number)
        if tail == 0:
            return query.render_snapshot(table, snapshot.columns), query.parameters
        parameters = {**query.parameters, "cut": _micros(snapshot.cut)}
        return query.render_tail(table, writer.changes, snapshot.columns), parameters

    async def run(self, query: CompiledQuery) -> list[tuple[Any, ...]]:
        self.hot.note(accessor for accessor, _ in query.accessors.values())
        sql, parameters = await self._sql(query)
        try:
            return await self.conn.rows(sql, parameters, query.settings)
        except DatabaseError as exc:
            limit = LIMITS.get(error_code(exc) or 0)
            if limit is None:
                raise
            raise QueryLimitError(limit, query.settings.get(limit)) from exc

    # --- read_api.ports.UsageReader --------------------------------------------------------
    async def usage(
        self, account_id: str, start: datetime, end: datetime, granularity: Granularity
    ) -> list[UsageView]:
        """Usage per period (hour, day or month) in [start, end); periods without any
        usage are left out."""
        table = self.table("usage", await self.active_generation())
        rows = await self.conn.rows(
            f"SELECT {PERIODS[granularity]} AS period, metric, sum(value) FROM {table} FINAL "
            "WHERE account_id = {a:String} AND hour >= {s:DateTime('UTC')} "
            "AND hour < {e:DateTime('UTC')} GROUP BY period, metric ORDER BY period, metric",
            {"a": account_id, "s": _utc(start), "e": _utc(end)},
        )
        periods: dict[datetime, dict[str, int]] = {}
        for period, metric, total in rows:
            periods.setdefault(period, {})[metric] = int(total)
        return [usage_row(period, metrics) for period, metrics in periods.items()]

    async def month_total(self, account_id: str, month: date) -> UsageView:
        """One account's usage over one calendar month (UTC)."""
        start = datetime(month.year, month.month, 1, tzinfo=UTC)
        end = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
        rows = await self.usage(account_id, start, end, "month")
        return rows[0] if rows else UsageView(period_start=start)

    def close(self) -> None:
        self.conn.close()


def _micros(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def usage_row(period: datetime, metrics: dict[str, int]) -> UsageView:
    calls = {
        name.removeprefix(API_CALLS): n for name, n in metrics.items() if name.startswith(API_CALLS)
    }
    return UsageView(
        period_start=period.astimezone(UTC),
        records_ingested=metrics.get(RECORDS_INGESTED, 0),
        bytes_ingested=metrics.get(BYTES_INGESTED, 0),
        api_calls=calls,
        search_calls=calls.get("search", 0),
        query_calls=calls.get("query", 0),
    )


class ClickHouseGeneration:
    """One generation, as the projection writes it."""

    def __init__(self, store: ClickHouseAnalyticsStore, generation: int) -> None:
        self.store = store
        self.generation = generation
        self.records = store.table(schema.RECORDS, generation)
        self.usage = store.table("usage", generation)
        self.checkpoints_table = store.table("checkpoints", generation)
        self.changes = store.table(schema.CHANGES, generation)
        self.snapshots = store.table(schema.SNAPSHOTS, generation)

    async def apply(
        self, changes: Sequence[AnalyticsChange], partition: int, position: int
    ) -> None:
        await self.store.conn.run(lambda c: self._apply(c, changes, partition, position))

    def _floor(self, client: Any, slot: int) -> int:
        rows = client.query(
            f"SELECT max(position) FROM {self.checkpoints_table} WHERE slot = {{s:Int32}}",
            parameters={"s": slot},
        ).result_rows
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    def _apply(
        self, client: Any, changes: Sequence[AnalyticsChange], slot: int, position: int
    ) -> None:
        floor = self._floor(client, slot)
        records: list[bytes] = []
        usage: list[bytes] = []
        encode = _ROW_ENCODER.encode
        for change in changes:
            if change.position <= floor:
                continue
            if isinstance(change, RecordRow):
                records.append(
                    encode(
                        (
                            change.account_id,
                            change.source,
                            change.key,
                            change.version,
                            _in_utc(change.updated_at),
                            change.position,
                            int(change.deleted),
                            change.data,
                        )
                    )
                )
            elif isinstance(change, UsageRow):
                row = (change.account_id, _in_utc(change.hour), change.metric, change.position)
                usage.append(encode((*row, change.value)))
        batch = self.store.insert_batch
        settings = self.store.insert_settings
        json_settings = {**schema.JSON_SETTINGS, **settings}
        # records, then their copies in the tail: a copy's insert time is then later than
        # the row's commit, so a snapshot that missed the row has a cut before its copy.
        for table in (self.records, self.changes):
            for start in range(0, len(records), batch):
                rows = records[start : start + batch]
                _insert_rows(client, table, RECORD_COLUMNS, rows, json_settings)
        for start in range(0, len(usage), batch):
            _insert_rows(client, self.usage, USAGE_COLUMNS, usage[start : start + batch], settings)
        if position > floor:  # only after the data: a crash before this redelivers the batch
            mark = [encode((slot, position))]
            _insert_rows(client, self.checkpoints_table, ["slot", "position"], mark, settings)

    async def checkpoints(self) -> dict[int, int]:
        rows = await self.store.conn.rows(
            f"SELECT slot, max(position) FROM {self.checkpoints_table} GROUP BY slot"
        )
        return {int(slot): int(position) for slot, position in rows}

    async def dump(self) -> dict[str, dict[str, Any]]:
        """Counts and order-independent content hashes (rebuild vs incremental)."""
        records = await self.store.conn.rows(
            "SELECT count(), sum(cityHash64(account_id, source, id, version, updated_at, "
            f"position, data, toJSONString(fields))) FROM {self.records} FINAL "
            "WHERE is_deleted = 0"
        )
        usage = await self.store.conn.rows(
            "SELECT count(), sum(cityHash64(account_id, hour, metric, position, value)) "
            f"FROM {self.usage} FINAL"
        )
        totals = await self.store.conn.rows(
            f"SELECT metric, sum(value) FROM {self.usage} FINAL GROUP BY metric ORDER BY metric"
        )
        return {
            "records": {"count": int(records[0][0]), "hash": int(records[0][1])},
            "usage": {"count": int(usage[0][0]), "hash": int(usage[0][1])},
            "usage_totals": {str(metric): int(total) for metric, total in totals},
        }

    # --- snapshots (compaction) -------------------------------------------------------------
    def latest_snapshot(self, client: Any) -> Snapshot | None:
        """The ready snapshot with the latest cut."""
        rows = client.query(
            f"SELECT snapshot, cut, rows FROM {self.snapshots} WHERE event = 'ready' "
            f"AND snapshot NOT IN (SELECT snapshot FROM {self.snapshots} WHERE event = "
            "'dropped') ORDER BY cut DESC LIMIT 1"
        ).result_rows
        if not rows:
            return None
        number = int(rows[0][0])
        return Snapshot(number, rows[0][1], int(rows[0][2]), self._columns(client, number))

    def _columns(self, client: Any, number: int) -> Columns:
        """The snapshot's accessor columns (a snapshot never changes: read once)."""
        known = self.store.snapshot_columns
        if (self.generation, number) not in known:
            table = schema.snapshot_table(self.store.db, self.generation, number)
            names = client.query(
                "SELECT name FROM system.columns WHERE database = {d:String} "
                "AND table = {t:String} AND startsWith(name, {p:String})",
                parameters={"d": self.store.db, "t": table.split(".", 1)[1], "p": hot.PREFIX},
            ).result_rows
            found = {hot.accessor_of(name): name for (name,) in names}
            known[(self.generation, number)] = {a: n for a, n in found.items() if a is not None}
            while len(known) > 8:  # snapshots come and go: keep the latest few
                del known[next(iter(known))]
        return known[(self.generation, number)]

    def tail_rows(self, client: Any, snapshot: Snapshot, query: CompiledQuery | None = None) -> int:
        """Rows applied since `snapshot`'s cut: all, or those in `query`'s scope (its
        account, and source if it names one)."""
        scope = "" if query is None else f" AND {query.scope}"
        rows = client.query(
            f"SELECT count() FROM {self.changes} WHERE inserted_at >= {{cut:DateTime64(6, 'UTC')}}"
            + scope,
            parameters={**(query.parameters if query else {}), "cut": _micros(snapshot.cut)},
        ).result_rows
        return int(rows[0][0])

    def compaction_due(
        self,
        client: Any,
        *,
        tail_rows: int,
        max_age: float,
        columns: Sequence[Accessor] = (),
    ) -> bool:
        snapshot = self.latest_snapshot(client)
        if snapshot is None:
            rows = client.query(f"SELECT count() FROM {self.records} LIMIT 1").result_rows
            return int(rows[0][0]) > 0
        if any(accessor not in snapshot.columns for accessor in columns):
            return True
        tail = self.tail_rows(client, snapshot)
        age = (datetime.now(UTC) - snapshot.cut).total_seconds()
        return tail >= tail_rows or (tail > 0 and age >= max_age)

    def compact(
        self, client: Any, threads: int = 1, columns: Sequence[Accessor] = ()
    ) -> Snapshot | None:
        """Snapshot the newest row of every record (the newest tombstone of each deleted
        one, then live rows under FINAL, with `columns` computed), merge it into one part,
        publish it, then drop the snapshots and tail days older than the previous one
        (readers may still use it)."""
        started = time.monotonic()
        settings = {**schema.JSON_SETTINGS, "max_threads": threads}
        cut = client.query(
            "SELECT now64(6) - toIntervalMicrosecond({m:UInt64})",
            parameters={"m": int(self.store.clock_margin * 1e6)},
        )
        cut_at: datetime = cut.result_rows[0][0]
        number = 1 + secrets.randbelow(2**31 - 1)  # unique even if two processes compact
        table = schema.snapshot_table(self.store.db, self.generation, number)
        log.info("analytics g%d: snapshot %d started (cut %s)", self.generation, number, cut_at)
        client.command(schema.SNAPSHOT_DDL.format(table=table))
        names, exprs, parameters = hot.select_list(columns)
        if names:
            types = self._column_types(client, exprs, parameters)
            if types is None:  # no records
                client.command(f"DROP TABLE IF EXISTS {table}")
                return None
            for name, column_type in zip(names, types, strict=True):
                client.command(f"ALTER TABLE {table} ADD COLUMN `{name}` {column_type}")
        extra = "".join(f", `{name}`" for name in names)
        computed = "".join(f", {expr}" for expr in exprs)
        # Tombstones first, live rows second: a record deleted between the two reads is
        # then missing from the snapshot (its tombstone is in the tail) instead of in it
        # twice, live and deleted, with the tail's copy of the deletion losing to the
        # snapshot's. A live row read second is never older than a tombstone read first.
        client.command(
            f"INSERT INTO {table} ({SNAPSHOT_COLUMNS}) SELECT account_id, source, id, "
            "max(version), max(updated_at), max(position), 1, '{}' "
            f"FROM {self.records} WHERE is_deleted = 1 GROUP BY account_id, source, id",
            settings=settings,
        )
        client.command(
            f"INSERT INTO {table} ({SNAPSHOT_COLUMNS}, fields{extra}) SELECT account_id, "
            f"source, id, version, updated_at, position, 0, data, fields{computed} "
            f"FROM {self.records} FINAL WHERE is_deleted = 0",
            parameters=parameters,
            settings=settings,
        )
        written = time.monotonic() - started
        client.command(f"OPTIMIZE TABLE {table} FINAL", settings=settings)
        rows = int(client.query(f"SELECT count() FROM {table}").result_rows[0][0])
        if rows == 0:
            client.command(f"DROP TABLE IF EXISTS {table}")
            return None
        previous = self.latest_snapshot(client)
        client.insert(
            self.snapshots,
            [[number, cut_at, rows, "ready"]],
            column_names=["snapshot", "cut", "rows", "event"],
        )
        log.info(
            "analytics g%d: snapshot %d ready: %d rows, %d field columns, in %.1f s "
            "(written in %.1f s)",
            self.generation, number, rows, len(names), time.monotonic() - started, written,
        )  # fmt: skip
        if previous is not None:
            self._forget_before(client, previous)
        return Snapshot(number, cut_at, rows, dict(zip(columns, names, strict=True)))

    def _column_types(
        self, client: Any, exprs: list[str], parameters: dict[str, Any]
    ) -> list[str] | None:
        """Each expression's type; strings with few distinct values (in a sample of the
        records) as LowCardinality: a third faster to filter and group by over 10M rows."""
        sample = f"(SELECT {', '.join(f'{e} AS e{i}' for i, e in enumerate(exprs))} FROM "
        sample += f"{self.records} LIMIT {hot.SAMPLE_ROWS})"
        row = client.query(
            "SELECT count(), "
            + ", ".join(f"any(toTypeName(e{i})), uniq(e{i})" for i in range(len(exprs)))
            + f" FROM {sample}",
            parameters=parameters,
        ).result_rows[0]
        if not row[0]:
            return None
        pairs = zip(row[1::2], row[2::2], strict=True)
        return [hot.column_type(str(t), int(n)) for t, n in pairs]

    def _forget_before(self, client: Any, kept: Snapshot) -> None:
        """Drop the snapshots older than `kept` and the tail's days before its cut."""
        older = client.query(
            f"SELECT DISTINCT snapshot FROM {self.snapshots} WHERE event = 'ready' "
            f"AND cut < {{c:DateTime64(6, 'UTC')}} AND snapshot NOT IN (SELECT snapshot "
            f"FROM {self.snapshots} WHERE event = 'dropped')",
            parameters={"c": _micros(kept.cut)},
        ).result_rows
        for (number,) in older:
            table = schema.snapshot_table(self.store.db, self.generation, int(number))
            client.command(f"DROP TABLE IF EXISTS {table}")
            client.insert(
                self.snapshots,
                [[int(number), kept.cut, 0, "dropped"]],
                column_names=["snapshot", "cut", "rows", "event"],
            )
        day = int(kept.cut.astimezone(UTC).strftime("%Y%m%d"))
        partitions = client.query(
            "SELECT DISTINCT partition_id FROM system.parts WHERE active AND database = "
            "{d:String} AND table = {t:String}",
            parameters={"d": self.store.db, "t": self.changes.split(".", 1)[1]},
        ).result_rows
        for (partition,) in partitions:
            if int(partition) < day:
                client.command(f"ALTER TABLE {self.changes} DROP PARTITION ID '{int(partition)}'")
