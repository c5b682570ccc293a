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
from typing import Any, NamedTuple, TypeVar

import orjson

from infra.adapters.search.common import POST, PRE, highlights, record, stored
from projections.search import (
    Clause,
    IndexDoc,
    SearchChange,
    SearchHit,
    SearchPage,
    SearchQuery,
    Sort,
    latest,
    terms,
    text_values,
)

T = TypeVar("T")

# Like Elasticsearch's standard analyzer as far as FTS5 goes: lowercase, no folding of
# diacritics, `_` inside words; values are joined by a separator that is never a token.
TOKENIZER = "unicode61 remove_diacritics 0 tokenchars '_'"
SEP = "\x1e"
_COLUMNS = "d.rowid, d.doc_id, d.account_id, d.source, d.key, d.version, d.position, "
_COLUMNS += "d.updated_at, d.updated_us, d.data"


class Tables(NamedTuple):
    docs: str
    fts: str
    terms: str
    gone: str
    checkpoints: str


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
        self._create_tables(1)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{name}-w")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{name}-r")

    def tables(self, generation: int) -> Tables:
        base = f"{self.name}_g{generation}"
        return Tables(*(f"{base}_{t}" for t in ("docs", "fts", "terms", "gone", "checkpoints")))

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
        return await self._on_reader(lambda: _Search(self, self._active_now(), query).run())

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

    async def checkpoints(self) -> dict[int, int]:
        def read() -> dict[int, int]:
            rows = self.store._read.execute(f"SELECT slot, position FROM {self.t.checkpoints}")
            return {int(slot): int(position) for slot, position in rows}

        return await self.store._on_reader(read)

    async def dump(self) -> dict[str, dict[str, Any]]:
        def read() -> dict[str, dict[str, Any]]:
            rows = self.store._read.execute(
                f"SELECT {_COLUMNS} FROM {self.t.docs} d ORDER BY d.doc_id"
            ).fetchall()
            return {"docs": {row[1]: _stored(row) for row in rows}}

        return await self.store._on_reader(read)


def _stored(row: Sequence[Any]) -> dict[str, Any]:
    _, _, account_id, source, key, version, position, updated_at, updated_us, data = row
    return {
        "account_id": account_id,
        "source": source,
        "id": key,
        "version": version,
        "position": position,
        "updated_at": updated_at,
        "updated_us": updated_us,
        "data": orjson.loads(data),
    }


def match_expression(clauses: Sequence[Clause]) -> str:
    """An FTS5 query from parsed clauses: every clause is a quoted phrase (FTS5 tokenizes
    inside the quotes), so no user text is ever FTS5 syntax."""

    def phrase(clause: Clause) -> str:
        quoted = '"' + clause.text.replace('"', '""') + '"'
        return quoted + " *" if clause.prefix else quoted

    expression = " AND ".join(phrase(c) for c in clauses if not c.exclude)
    excluded = [phrase(c) for c in clauses if c.exclude]
    if excluded:
        expression = f"({expression}) NOT ({' OR '.join(excluded)})"
    return expression


class _Search:
    """One query against one generation, on the reader thread."""

    def __init__(self, store: SQLiteSearchIndex, generation: int, query: SearchQuery) -> None:
        self.conn = store._read
        self.t = store.tables(generation)
        self.q = query

    def _matching(self) -> tuple[str, list[Any], str]:
        """FROM ... WHERE ... of every hit (tenant and source always), and the score."""
        t, q = self.t, self.q
        where = ["d.account_id = ?", "d.source = ?"]
        params: list[Any] = [q.account_id, q.source]
        if q.key is not None:
            where.append("d.key = ?")
            params.append(q.key)
        for path, value in q.filters:
            where.append(
                f"EXISTS (SELECT 1 FROM {t.terms} t "
                "WHERE t.doc = d.rowid AND t.path = ? AND t.value = ?)"
            )
            params += [path, value]
        if not q.clauses:
            return f"{t.docs} d WHERE {' AND '.join(where)}", params, "0.0"
        source = f"{t.fts} CROSS JOIN {t.docs} d ON d.rowid = {t.fts}.rowid"  # FTS5 first
        where.insert(0, f"{t.fts} MATCH ?")
        params.insert(0, match_expression(q.clauses))
        return f"{source} WHERE {' AND '.join(where)}", params, f"-bm25({t.fts})"

    def _order(self, sort: Sort) -> tuple[str, list[Any], str, str, list[Any]]:
        """(sort value expression, its params, ORDER BY, cursor condition, its params)."""
        after = self.q.after
        up = ">" if not sort.descending else "<"
        way = "DESC" if sort.descending else "ASC"
        if sort.field == "_score":
            cond = "(score < ? OR (score = ? AND key > ?))"
            args = [after[0], after[0], after[1]] if after else []
            return "NULL", [], "score DESC, key ASC", cond, args
        if sort.field == "updated_at":
            cond = f"(updated_us {up} ? OR (updated_us = ? AND key > ?))"
            args = [after[0], after[0], after[1]] if after else []
            return "NULL", [], f"updated_us {way}, key ASC", cond, args
        if sort.field == "id":
            return "NULL", [], f"key {way}", f"key {up} ?", [after[0]] if after else []
        pick = "MAX" if sort.descending else "MIN"  # like Elasticsearch on many values
        value = f"(SELECT {pick}(value) FROM {self.t.terms} t WHERE t.doc = d.rowid AND t.path = ?)"
        order = f"sv IS NULL, sv {way}, key ASC"  # missing values last, either way
        if after and after[0] is None:
            return value, [sort.path], order, "(sv IS NULL AND key > ?)", [after[1]]
        cond = f"(sv IS NULL OR sv {up} ? OR (sv = ? AND key > ?))"
        return value, [sort.path], order, cond, [after[0], after[0], after[1]] if after else []

    def run(self) -> SearchPage:
        q = self.q
        matching, params, score = self._matching()
        value, value_params, order, cond, cond_params = self._order(q.sort)
        total = int(self.conn.execute(f"SELECT COUNT(*) FROM {matching}", params).fetchone()[0])
        rows = self.conn.execute(
            f"SELECT rid, key, score, updated_us, sv FROM (SELECT d.rowid AS rid, d.key AS key, "
            f"d.updated_us AS updated_us, {score} AS score, {value} AS sv FROM {matching}) "
            f"WHERE {cond if q.after else '1'} ORDER BY {order} LIMIT ?",
            [*value_params, *params, *(cond_params if q.after else []), q.limit + 1],
        ).fetchall()
        page = rows[: q.limit]
        docs = self._docs([row[0] for row in page])
        marked = self._highlighted([row[0] for row in page]) if q.clauses else {}
        hits = []
        for rid, key, hit_score, updated_us, sv in page:
            doc = docs[rid]
            values = text_values(doc["data"])
            parts = marked[rid].split(SEP) if rid in marked else []
            pairs = [(path, text) for (path, _), text in zip(values, parts, strict=False)]
            sort = {"_score": (hit_score, key), "updated_at": (updated_us, key), "id": (key,)}
            hits.append(
                SearchHit(
                    record=record(doc),
                    score=float(hit_score),
                    highlights=highlights(pairs),
                    sort=sort.get(q.sort.field, (sv, key)),
                )
            )
        return SearchPage(hits=hits, total=total, more=len(rows) > q.limit)

    def _docs(self, rowids: list[int]) -> dict[int, dict[str, Any]]:
        if not rowids:
            return {}
        marks = ", ".join("?" * len(rowids))
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM {self.t.docs} d WHERE d.rowid IN ({marks})", rowids
        )
        return {row[0]: _stored(row) for row in rows}

    def _highlighted(self, rowids: list[int]) -> dict[int, str]:
        if not rowids:
            return {}
        fts = self.t.fts
        marks = ", ".join("?" * len(rowids))
        rows = self.conn.execute(
            f"SELECT rowid, highlight({fts}, 0, ?, ?) FROM {fts} "
            f"WHERE {fts} MATCH ? AND rowid IN ({marks})",
            [PRE, POST, match_expression(self.q.clauses), *rowids],
        )
        return {int(rowid): str(text) for rowid, text in rows}
