"""The analytics read model in ClickHouse: generations of records/usage/checkpoints tables.

Writes are idempotent without transactions: rows at or below the slot's checkpoint are
skipped, the data goes in (in bounded batches) before the checkpoint moves, and whatever a
crash makes us write twice is absorbed by ReplacingMergeTree (same key, same or older
version). Reads use FINAL, so they are exact before background merges happen. Records are
inserted as JSON text; the table derives their typed `fields` (schema.JSON_SETTINGS).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, Literal

from clickhouse_connect.driver.exceptions import DatabaseError

from infra.adapters.clickhouse import schema
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
from read_api.querylang import CompiledQuery
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


def _utc(moment: datetime) -> str:
    aware = moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


class ClickHouseAnalyticsStore:
    """GenerationStore of the `analytics` projection, and the query and usage reader."""

    def __init__(
        self,
        target: Target,
        *,
        pool_size: int = 4,
        insert_batch: int = 50_000,
        pointer_ttl: float = 0.5,
    ) -> None:
        self.db = target.database
        self.target = target
        self.insert_batch = insert_batch
        self.pointer_ttl = pointer_ttl
        self.conn = Connection(target, pool_size=pool_size, on_open=self._start)
        self._active: tuple[int, float] | None = None

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

    # --- read_api.ports.AnalyticsReader ----------------------------------------------------
    async def run(self, query: CompiledQuery) -> list[tuple[Any, ...]]:
        sql = query.render(self.table(schema.RECORDS, await self.active_generation()))
        try:
            return await self.conn.rows(sql, query.parameters, query.settings)
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
        records: list[list[Any]] = []
        usage: list[list[Any]] = []
        for change in changes:
            if change.position <= floor:
                continue
            if isinstance(change, RecordRow):
                records.append(
                    [
                        change.account_id,
                        change.source,
                        change.key,
                        change.version,
                        change.updated_at,
                        change.position,
                        int(change.deleted),
                        change.data,
                    ]
                )
            elif isinstance(change, UsageRow):
                usage.append(
                    [change.account_id, change.hour, change.metric, change.position, change.value]
                )
        batch = self.store.insert_batch
        for start in range(0, len(records), batch):
            client.insert(
                self.records,
                records[start : start + batch],
                column_names=RECORD_COLUMNS,
                settings=schema.JSON_SETTINGS,
            )
        for start in range(0, len(usage), batch):
            client.insert(self.usage, usage[start : start + batch], column_names=USAGE_COLUMNS)
        if position > floor:  # only after the data: a crash before this redelivers the batch
            client.insert(
                self.checkpoints_table, [[slot, position]], column_names=["slot", "position"]
            )

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
