"""Document read models in a SQLite file: the embedded stand-in for Redis (docs/adr/0003)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from projections.changes import AddMember, Delete, Merge, Positioned, Put, RemoveMember
from projections.ports import linked_by_two_reads

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    name TEXT PRIMARY KEY, active INTEGER NOT NULL, latest INTEGER NOT NULL
);
"""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class SQLiteDocumentStore:
    """One named read model with generations. Writes run on one thread; reads on the caller's."""

    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name
        self._write = _connect(path)
        self._read = _connect(path)
        self._write.executescript(_SCHEMA)
        self._write.execute(
            "INSERT OR IGNORE INTO generations (name, active, latest) VALUES (?, 1, 1)", (name,)
        )
        self._create_tables(1)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{name}")

    def _tables(self, generation: int) -> tuple[str, str, str]:
        base = f"{self.name}_g{generation}"
        return f"{base}_docs", f"{base}_members", f"{base}_checkpoints"

    def _create_tables(self, generation: int) -> None:
        docs, members, checkpoints = self._tables(generation)
        self._write.executescript(
            f"CREATE TABLE IF NOT EXISTS {docs} (key TEXT PRIMARY KEY, body BLOB NOT NULL) "
            "WITHOUT ROWID;"
            f"CREATE TABLE IF NOT EXISTS {members} (set_key TEXT NOT NULL, member TEXT NOT NULL, "
            "PRIMARY KEY (set_key, member)) WITHOUT ROWID;"
            f"CREATE TABLE IF NOT EXISTS {checkpoints} "
            "(partition INTEGER PRIMARY KEY, position INTEGER NOT NULL);"
        )

    async def _on_writer(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    # DocumentStore
    async def active_generation(self) -> int:
        row = self._read.execute(
            "SELECT active FROM generations WHERE name = ?", (self.name,)
        ).fetchone()
        return int(row[0])

    def writer(self, generation: int) -> SQLiteGeneration:
        return SQLiteGeneration(self, generation)

    async def new_generation(self) -> SQLiteGeneration:
        def create() -> int:
            self._write.execute("BEGIN IMMEDIATE")
            try:
                self._write.execute(
                    "UPDATE generations SET latest = latest + 1 WHERE name = ?", (self.name,)
                )
                row = self._write.execute(
                    "SELECT latest FROM generations WHERE name = ?", (self.name,)
                ).fetchone()
                self._write.execute("COMMIT")
            except BaseException:
                self._write.execute("ROLLBACK")
                raise
            generation = int(row[0])
            self._create_tables(generation)
            return generation

        return self.writer(await self._on_writer(create))

    async def activate(self, generation: int) -> None:
        await self._on_writer(
            lambda: self._write.execute(
                "UPDATE generations SET active = ? WHERE name = ?", (generation, self.name)
            )
        )

    async def drop(self, generation: int) -> None:
        if generation == await self.active_generation():
            raise ValueError("cannot drop the active generation")

        def drop_tables() -> None:
            for table in self._tables(generation):
                self._write.execute(f"DROP TABLE IF EXISTS {table}")

        await self._on_writer(drop_tables)

    async def get(self, key: str) -> dict[str, Any] | None:
        return await self.writer(await self.active_generation()).get(key)

    async def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        return await self.writer(await self.active_generation()).get_many(keys)

    async def get_linked(
        self, key: str, field: str, prefix: str
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        return await self.writer(await self.active_generation()).get_linked(key, field, prefix)

    async def members(self, set_key: str, *, after: str | None, limit: int) -> list[str]:
        generation = self.writer(await self.active_generation())
        return await generation.members(set_key, after=after, limit=limit)

    async def checkpoints(self) -> dict[int, int]:
        return await self.writer(await self.active_generation()).checkpoints()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._write.close()
        self._read.close()


class SQLiteGeneration:
    def __init__(self, store: SQLiteDocumentStore, generation: int) -> None:
        self.store = store
        self.generation = generation
        self.docs, self.members_table, self.checkpoints_table = store._tables(generation)

    async def apply(self, changes: Sequence[Positioned], partition: int, position: int) -> None:
        await self.store._on_writer(lambda: self._apply(changes, partition, position))

    def _apply(self, changes: Sequence[Positioned], partition: int, position: int) -> None:
        conn = self.store._write
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                f"SELECT position FROM {self.checkpoints_table} WHERE partition = ?", (partition,)
            ).fetchone()
            floor = int(row[0]) if row else 0
            for item in changes:
                if item.position > floor:
                    self._apply_one(conn, item)
            if position > floor:
                conn.execute(
                    f"INSERT OR REPLACE INTO {self.checkpoints_table} (partition, position) "
                    "VALUES (?, ?)",
                    (partition, position),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _apply_one(self, conn: sqlite3.Connection, item: Positioned) -> None:
        change = item.change
        if isinstance(change, Put):
            conn.execute(
                f"INSERT OR REPLACE INTO {self.docs} (key, body) VALUES (?, ?)",
                (change.key, orjson.dumps(change.fields)),
            )
        elif isinstance(change, Merge):
            row = conn.execute(f"SELECT body FROM {self.docs} WHERE key = ?", (change.key,))
            found = row.fetchone()
            body = orjson.loads(found[0]) if found else {}
            body.update(change.fields)
            conn.execute(
                f"INSERT OR REPLACE INTO {self.docs} (key, body) VALUES (?, ?)",
                (change.key, orjson.dumps(body)),
            )
        elif isinstance(change, Delete):
            conn.execute(f"DELETE FROM {self.docs} WHERE key = ?", (change.key,))
        elif isinstance(change, AddMember):
            conn.execute(
                f"INSERT OR IGNORE INTO {self.members_table} (set_key, member) VALUES (?, ?)",
                (change.set, change.member),
            )
        elif isinstance(change, RemoveMember):
            conn.execute(
                f"DELETE FROM {self.members_table} WHERE set_key = ? AND member = ?",
                (change.set, change.member),
            )

    async def dump(self) -> dict[str, dict[str, Any]]:
        read = self.store._read
        docs = {
            key: orjson.loads(body)
            for key, body in read.execute(f"SELECT key, body FROM {self.docs} ORDER BY key")
        }
        sets: dict[str, Any] = {}
        for set_key, member in read.execute(
            f"SELECT set_key, member FROM {self.members_table} ORDER BY set_key, member"
        ):
            sets.setdefault(set_key, []).append(member)
        return {"docs": docs, "sets": sets}

    async def get(self, key: str) -> dict[str, Any] | None:
        row = self.store._read.execute(
            f"SELECT body FROM {self.docs} WHERE key = ?", (key,)
        ).fetchone()
        return orjson.loads(row[0]) if row else None

    async def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        return [await self.get(key) for key in keys]

    async def get_linked(
        self, key: str, field: str, prefix: str
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        return await linked_by_two_reads(self, key, field, prefix)

    async def members(self, set_key: str, *, after: str | None, limit: int) -> list[str]:
        rows = self.store._read.execute(
            f"SELECT member FROM {self.members_table} WHERE set_key = ? AND member > ? "
            "ORDER BY member LIMIT ?",
            (set_key, after or "", limit),
        ).fetchall()
        return [row[0] for row in rows]

    async def checkpoints(self) -> dict[int, int]:
        rows = self.store._read.execute(
            f"SELECT partition, position FROM {self.checkpoints_table}"
        ).fetchall()
        return {int(p): int(pos) for p, pos in rows}
