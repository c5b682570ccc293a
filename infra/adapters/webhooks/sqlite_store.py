"""The delivery log and queue in a SQLite file (embedded mode): `<data-dir>/webhooks.sqlite`.

`deliveries` holds every delivery (the whole record as JSON, plus the columns queries need);
`lanes` holds one row per (webhook, lane) with pending deliveries and when its head is due.
Claiming a lane pushes its due time past the lease, which is what keeps two dispatchers off
the same lane; finishing sets it to the next attempt (or the next head) or removes it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import msgspec

from projections.delivery import PENDING, Delivery

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    webhook_id TEXT NOT NULL,
    lane TEXT NOT NULL,
    position INTEGER NOT NULL,
    status TEXT NOT NULL,
    finished_at REAL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_pending
    ON deliveries (webhook_id, lane, position) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_history ON deliveries (webhook_id, seq);
CREATE INDEX IF NOT EXISTS deliveries_finished ON deliveries (finished_at)
    WHERE finished_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS lanes (
    webhook_id TEXT NOT NULL,
    lane TEXT NOT NULL,
    due REAL NOT NULL,
    PRIMARY KEY (webhook_id, lane)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lanes_due ON lanes (due);
"""

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Delivery).decode


class SQLiteDeliveryStore:
    def __init__(self, path: Path, retention: float = 7 * 86400.0) -> None:
        self.path = path
        self.retention = retention
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-webhooks")

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def enqueue(self, deliveries: Sequence[Delivery]) -> int:
        def write(conn: sqlite3.Connection) -> int:
            added = 0
            for d in deliveries:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO deliveries "
                    "(id, webhook_id, lane, position, status, body) VALUES (?, ?, ?, ?, ?, ?)",
                    (d.id, d.webhook_id, d.lane, d.position, d.status, _encode(d)),
                )
                if cursor.rowcount:
                    added += 1
                    conn.execute(
                        "INSERT OR IGNORE INTO lanes (webhook_id, lane, due) VALUES (?, ?, ?)",
                        (d.webhook_id, d.lane, d.next_attempt_at),
                    )
            return added

        return await self._run(lambda: self._tx(write))

    async def claim(
        self,
        now: float,
        *,
        busy: Mapping[str, int],
        per_webhook: int,
        limit: int,
        lease: float,
    ) -> list[Delivery]:
        def take(conn: sqlite3.Connection) -> list[Delivery]:
            # At most `per_webhook` lanes of each webhook, so one with a backlog of due
            # lanes cannot crowd the others out of the candidates.
            rows = conn.execute(
                "SELECT webhook_id, lane FROM (SELECT webhook_id, lane, due, ROW_NUMBER() "
                "OVER (PARTITION BY webhook_id ORDER BY due) AS rn FROM lanes WHERE due <= ?) "
                "WHERE rn <= ? ORDER BY due LIMIT ?",
                (now, per_webhook, max(limit * 4, 256)),
            ).fetchall()
            taken: dict[str, int] = {}
            out: list[Delivery] = []
            for webhook_id, lane in rows:
                if len(out) >= limit:
                    break
                if taken.get(webhook_id, 0) + busy.get(webhook_id, 0) >= per_webhook:
                    continue
                head = conn.execute(
                    "SELECT body FROM deliveries WHERE webhook_id = ? AND lane = ? "
                    "AND status = 'pending' ORDER BY position LIMIT 1",
                    (webhook_id, lane),
                ).fetchone()
                if head is None:
                    conn.execute(
                        "DELETE FROM lanes WHERE webhook_id = ? AND lane = ?", (webhook_id, lane)
                    )
                    continue
                conn.execute(
                    "UPDATE lanes SET due = ? WHERE webhook_id = ? AND lane = ?",
                    (now + lease, webhook_id, lane),
                )
                taken[webhook_id] = taken.get(webhook_id, 0) + 1
                out.append(_decode(head[0]))
            return out

        return await self._run(lambda: self._tx(take))

    async def finish(self, delivery: Delivery, now: float) -> None:
        d = delivery

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE deliveries SET status = ?, finished_at = ?, body = ? WHERE id = ?",
                (d.status, d.finished_at, _encode(d), d.id),
            )
            if d.status == PENDING:
                due: float | None = d.next_attempt_at
            else:
                head = conn.execute(
                    "SELECT body FROM deliveries WHERE webhook_id = ? AND lane = ? "
                    "AND status = 'pending' ORDER BY position LIMIT 1",
                    (d.webhook_id, d.lane),
                ).fetchone()
                due = None if head is None else max(_decode(head[0]).next_attempt_at, now)
            if due is None:
                conn.execute(
                    "DELETE FROM lanes WHERE webhook_id = ? AND lane = ?", (d.webhook_id, d.lane)
                )
            else:
                conn.execute(
                    "INSERT INTO lanes (webhook_id, lane, due) VALUES (?, ?, ?) "
                    "ON CONFLICT (webhook_id, lane) DO UPDATE SET due = excluded.due",
                    (d.webhook_id, d.lane, due),
                )

        await self._run(lambda: self._tx(write))

    async def next_due(self) -> float | None:
        row = await self._run(lambda: self._conn.execute("SELECT MIN(due) FROM lanes").fetchone())
        return None if row is None or row[0] is None else float(row[0])

    async def get(self, webhook_id: str, delivery_id: str) -> Delivery | None:
        row = await self._run(
            lambda: self._conn.execute(
                "SELECT body FROM deliveries WHERE id = ? AND webhook_id = ?",
                (delivery_id, webhook_id),
            ).fetchone()
        )
        return None if row is None else _decode(row[0])

    async def history(
        self, webhook_id: str, *, before: int | None, limit: int
    ) -> list[tuple[int, Delivery]]:
        rows = await self._run(
            lambda: self._conn.execute(
                "SELECT seq, body FROM deliveries WHERE webhook_id = ? AND seq < ? "
                "ORDER BY seq DESC LIMIT ?",
                (webhook_id, before if before is not None else 2**62, limit),
            ).fetchall()
        )
        return [(int(seq), _decode(body)) for seq, body in rows]

    async def expire(self, now: float) -> int:
        """Forget finished deliveries older than the retention period."""
        cutoff = now - self.retention
        return await self._run(
            lambda: (
                self._conn.execute(
                    "DELETE FROM deliveries WHERE finished_at IS NOT NULL AND finished_at < ?",
                    (cutoff,),
                ).rowcount
            )
        )

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._conn.close()
