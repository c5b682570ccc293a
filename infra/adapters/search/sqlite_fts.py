"""Search documents in SQLite FTS5: the embedded stand-in for Elasticsearch (docs/adr/0008).

Per generation: a documents table, an FTS5 table over the full-text values (one row per
document, values joined by a separator), an exact-terms table for filters and sorts on
customer paths, tombstones (the position of each delete, so an older write never
resurrects a document) and checkpoints, all written in one transaction. A pointer table
names the active generation. Writes run on one thread, searches on another.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from infra.adapters.search.common import stored
from infra.adapters.search.sqlite_query import COLUMNS, SEP, Search, Tables, stored_row
from projections.search import (
    IndexDoc,
    SearchChange,
    SearchPage,
    SearchQuery,
    latest,
    sort_keys,
    terms,
    text_values,
)

T = TypeVar("T")

# Like Elasticsearch's standard analyzer as far as FTS5 goes: lowercase, no folding of
# diacritics, `_` inside words (values are joined by SEP, never part of a token).
TOKENIZER = "unicode61 remove_diacritics 0 tokenchars '_'"


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class SQLiteSearchIndex:
    """A SearchStore in one SQLite file."""

    def __init__(self, path: Path, name: str = "search") -> None:
        self.name = name
        self._write = _connect(path)
        self._read = _connect(path)
        self._write.execute(
            "CREATE TABLE IF NOT EXISTS generations "
            "(name TEXT PRIMARY KEY, active INTEGER NOT NULL, latest INTEGER NOT NULL)"
        )
        self._write.execute(
            "INSERT OR IGNORE INTO generations (name, active, latest) VALUES (?, 1, 1)", (name,)
        )
        # Generation 1 exists implicitly; older generations get the tables added since.
        for generation in sorted({1, *self._existing_generations()}):
            self._create_tables(generation)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{name}-w")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{name}-r")

    def tables(self, generation: int) -> Tables:
        base = f"{self.name}_g{generation}"
        return Tables(*(f"{base}_{t}" for t in Tables._fields))

    def _existing_generations(self) -> list[int]:
        prefix = f"{self.name}_g"
        rows = self._write.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ? ESCAPE '\\'",
            (prefix.replace("_", "\\_") + "%\\_docs",),
        ).fetchall()
        found = (row[0][len(prefix) : -len("_docs")] for row in rows)
        return sorted(int(number) for number in found if number.isdigit())

    def _create_tables(self, generation: int) -> None:
        t = self.tables(generation)
        self._write.executescript(
            f"CREATE TABLE IF NOT EXISTS {t.docs} (rowid INTEGER PRIMARY KEY, "
            "doc_id TEXT NOT NULL UNIQUE, account_id TEXT NOT NULL, source TEXT NOT NULL, "
            "key TEXT NOT NULL, version INTEGER NOT NULL, position INTEGER NOT NULL, "
            "updated_at TEXT NOT NULL, updated_us INTEGER NOT NULL, data BLOB NOT NULL);"
            f"CREATE INDEX IF NOT EXISTS {t.docs}_key ON {t.docs} (account_id, source, key);"
            f"CREATE INDEX IF NOT EXISTS {t.docs}_updated "
            f"ON {t.docs} (account_id, source, updated_us);"
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {t.fts} "
            f"USING fts5(text, tokenize=\"{TOKENIZER}\", prefix='2 3');"
            f"CREATE TABLE IF NOT EXISTS {t.terms} "
            "(doc INTEGER NOT NULL, path TEXT NOT NULL, value TEXT NOT NULL);"
            f"CREATE INDEX IF NOT EXISTS {t.terms}_value ON {t.terms} (path, value, doc);"
            f"CREATE INDEX IF NOT EXISTS {t.terms}_doc ON {t.terms} (doc, path, value);"
            f"CREATE TABLE IF NOT EXISTS {t.gone} "
            "(doc_id TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;"
            f"CREATE TABLE IF NOT EXISTS {t.checkpoints} "
            "(slot INTEGER PRIMARY KEY, position INTEGER NOT NULL);"
            # What `sort=data.<path>` orders by (projections.search.sort_key). Added after
            # the first release: created here for older generations too (empty until
            # `strata replay search` rewrites their documents).
            f"CREATE TABLE IF NOT EXISTS {t.sortkeys} "
            "(doc INTEGER NOT NULL, path TEXT NOT NULL, value TEXT NOT NULL);"
            f"CREATE INDEX IF NOT EXISTS {t.sortkeys}_doc ON {t.sortkeys} (doc, path, value);"
        )

    async def _on_writer(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn)

    async def _on_reader(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._reader, fn)

    def _active_now(self) -> int:
        row = self._read.execute(
            "SELECT active FROM generations WHERE name = ?", (self.name,)
        ).fetchone()
        return int(row[0])

    # GenerationStore
    async def active_generation(self) -> int:
        return await self._on_reader(self._active_now)

    def writer(self, generation: int) -> SQLiteSearchGeneration:
        return SQLiteSearchGeneration(self, generation)

    async def new_generation(self) -> SQLiteSearchGeneration:
        def create() -> int:
            row = self._write.execute(
                "UPDATE generations SET latest = latest + 1 WHERE name = ? RETURNING latest",
                (self.name,),
            ).fetchone()
            self._create_tables(int(row[0]))
            return int(row[0])

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
            for table in self.tables(generation):
                self._write.execute(f"DROP TABLE IF EXISTS {table}")

        await self._on_writer(drop_tables)

    async def checkpoints(self) -> dict[int, int]:
        return await self.writer(await self.active_generation()).checkpoints()

    # SearchReader
    async def search(self, query: SearchQuery) -> SearchPage:
        return await self._on_reader(
            lambda: Search(self._read, self.tables(self._active_now()), query).run()
        )

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)
        self._write.close()
        self._read.close()


class SQLiteSearchGeneration:
    def __init__(self, store: SQLiteSearchIndex, generation: int) -> None:
        self.store = store
        self.generation = generation
        self.t = store.tables(generation)

    async def apply(self, changes: Sequence[SearchChange], partition: int, position: int) -> None:
        await self.store._on_writer(lambda: self._apply(changes, partition, position))

    def _apply(self, changes: Sequence[SearchChange], partition: int, position: int) -> None:
        conn = self.store._write
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                f"SELECT position FROM {self.t.checkpoints} WHERE slot = ?", (partition,)
            ).fetchone()
            floor = int(row[0]) if row else 0
            for item in latest([item for item in changes if item.position > floor]):
                self._apply_one(conn, item)
            if position > floor:
                conn.execute(
                    f"INSERT OR REPLACE INTO {self.t.checkpoints} (slot, position) VALUES (?, ?)",
                    (partition, position),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _apply_one(self, conn: sqlite3.Connection, item: SearchChange) -> None:
        t, change = self.t, item.change
        row = conn.execute(
            f"SELECT rowid, position FROM {t.docs} WHERE doc_id = ?", (change.doc_id,)
        ).fetchone()
        gone = conn.execute(
            f"SELECT position FROM {t.gone} WHERE doc_id = ?", (change.doc_id,)
        ).fetchone()
        if item.position <= max(row[1] if row else 0, gone[0] if gone else 0):
            return  # an older or redelivered write: a newer one is already there
        if row is not None:
            conn.execute(f"DELETE FROM {t.fts} WHERE rowid = ?", (row[0],))
            conn.execute(f"DELETE FROM {t.terms} WHERE doc = ?", (row[0],))
            conn.execute(f"DELETE FROM {t.sortkeys} WHERE doc = ?", (row[0],))
            conn.execute(f"DELETE FROM {t.docs} WHERE rowid = ?", (row[0],))
        if not isinstance(change, IndexDoc):
            conn.execute(
                f"INSERT OR REPLACE INTO {t.gone} (doc_id, position) VALUES (?, ?)",
                (change.doc_id, item.position),
            )
            return
        conn.execute(f"DELETE FROM {t.gone} WHERE doc_id = ?", (change.doc_id,))
        doc = stored(change, item.position)
        cursor = conn.execute(
            f"INSERT INTO {t.docs} (doc_id, account_id, source, key, version, position, "
            "updated_at, updated_us, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                change.doc_id,
                doc["account_id"],
                doc["source"],
                doc["id"],
                doc["version"],
                doc["position"],
                doc["updated_at"],
                doc["updated_us"],
                orjson.dumps(change.data),
            ),
        )
        rowid = cursor.lastrowid
        text = SEP.join(value for _, value in text_values(change.data))
        conn.execute(f"INSERT INTO {t.fts} (rowid, text) VALUES (?, ?)", (rowid, text))
        conn.executemany(
            f"INSERT INTO {t.terms} (doc, path, value) VALUES (?, ?, ?)",
            [(rowid, path, v) for path, values in terms(change.data).items() for v in values],
        )
        conn.executemany(
            f"INSERT INTO {t.sortkeys} (doc, path, value) VALUES (?, ?, ?)",
            [(rowid, path, v) for path, values in sort_keys(change.data).items() for v in values],
        )

    async def checkpoints(self) -> dict[int, int]:
        def read() -> dict[int, int]:
            rows = self.store._read.execute(f"SELECT slot, position FROM {self.t.checkpoints}")
            return {int(slot): int(position) for slot, position in rows}

        return await self.store._on_reader(read)

    async def dump(self) -> dict[str, dict[str, Any]]:
        def read() -> dict[str, dict[str, Any]]:
            rows = self.store._read.execute(
                f"SELECT {COLUMNS} FROM {self.t.docs} d ORDER BY d.doc_id"
            ).fetchall()
            return {"docs": {row[1]: stored_row(row) for row in rows}}

        return await self.store._on_reader(read)
