"""How the embedded search index answers a query: FTS5 match, filters, sort, cursor, page.

Tenant isolation lives here: every query is confined to the caller's account and source.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson

from infra.adapters.search.common import POST, PRE, highlights, record
from projections.search import Clause, SearchHit, SearchPage, SearchQuery, Sort, text_values

SEP = "\x1e"
"""Between the text values of a document in its FTS5 row: never part of a token."""
COLUMNS = "d.rowid, d.doc_id, d.account_id, d.source, d.key, d.version, d.position, "
COLUMNS += "d.updated_at, d.updated_us, d.data"


class Tables(NamedTuple):
    docs: str
    fts: str
    terms: str
    gone: str
    checkpoints: str
    sortkeys: str


def stored_row(row: Sequence[Any]) -> dict[str, Any]:
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


class Search:
    """One query against one generation, on the reader thread."""

    def __init__(self, conn: sqlite3.Connection, tables: Tables, query: SearchQuery) -> None:
        self.conn = conn
        self.t = tables
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
        keys = self.t.sortkeys
        value = f"(SELECT {pick}(value) FROM {keys} t WHERE t.doc = d.rowid AND t.path = ?)"
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
            f"SELECT {COLUMNS} FROM {self.t.docs} d WHERE d.rowid IN ({marks})", rowids
        )
        return {row[0]: stored_row(row) for row in rows}

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
