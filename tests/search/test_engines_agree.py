"""Both search stores answer like a plain-Python reference: which records match (words,
filters, tenant), in which order (every sort but relevance), paged by cursor without
duplicates or gaps. Random histories of upserts and deletes, random queries."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.record import record_id
from infra.adapters.search.elastic import ElasticSearchIndex
from infra.adapters.search.sqlite_fts import SQLiteSearchIndex
from projections.search import (
    Clause,
    IndexDoc,
    RemoveDoc,
    SearchChange,
    SearchQuery,
    SearchStore,
    Sort,
    sort_keys,
    terms,
    text_values,
)

WORDS = ["red", "green", "blue", "Red"]
scalars = st.one_of(
    st.sampled_from(["x", "y", "Y", "x y", "red fox", "green", "l" * 300]),
    st.integers(-12, 12),  # numbers sort by value: 9 before 10, -5 before 2
    st.sampled_from([2.5, -0.5, 100.0, 1e15]),
    st.booleans(),
    st.none(),
)
records = st.fixed_dictionaries(
    {},
    optional={
        "a": scalars,
        "c": st.fixed_dictionaries({}, optional={"d": scalars}),
        "tags": st.lists(scalars, max_size=3),
        "note": st.sampled_from(WORDS),
    },
)
history = st.lists(
    st.tuples(st.sampled_from([f"k{i}" for i in range(8)]), st.none() | records),
    min_size=1,
    max_size=25,
)
sorts = st.sampled_from(
    [Sort("id"), Sort("id", True), Sort("updated_at"), Sort("updated_at", True)]
    + [Sort("data", desc, path) for desc in (False, True) for path in ("a", "tags", "c.d")]
)
queries = st.tuples(
    st.lists(
        st.tuples(st.sampled_from(["a", "tags", "c.d"]), st.sampled_from(["x", "Y", "1", "true"])),
        max_size=2,
    ),
    st.none() | st.sampled_from(["red", "green", "fox"]),
    sorts,
    st.integers(1, 4),
)


def reference(docs: dict[str, dict[str, Any]], query: SearchQuery) -> list[str]:
    """The keys a query must return, in order: the semantics the ADR states."""
    found = []
    for key, doc in docs.items():
        exact = terms(doc["data"])
        if any(value not in exact.get(path, []) for path, value in query.filters):
            continue
        words = {
            w for _, text in text_values(doc["data"]) for w in re.findall(r"\w+", text.lower())
        }
        if any(clause.text not in words for clause in query.clauses):
            continue
        found.append((key, doc, exact))
    s = query.sort
    if s.field == "id":
        return sorted((key for key, _, _ in found), reverse=s.descending)
    if s.field == "updated_at":
        ordered = sorted(found, key=lambda f: f[0])
        return [
            f[0] for f in sorted(ordered, key=lambda f: f[1]["updated_us"], reverse=s.descending)
        ]
    keyed = [(key, sort_keys(doc["data"]).get(s.path)) for key, doc, _ in found]
    present = [(key, keys) for key, keys in keyed if keys]
    missing = sorted(key for key, keys in keyed if not keys)
    pick = max if s.descending else min
    ordered = sorted(present, key=lambda f: f[0])
    ordered = sorted(ordered, key=lambda f: pick(f[1]), reverse=s.descending)
    return [f[0] for f in ordered] + missing


async def check(store: SearchStore, ops: list[Any], asked: list[Any], positions: Any) -> None:
    account, other = str(uuid.uuid4()), str(uuid.uuid4())
    docs: dict[str, dict[str, Any]] = {}
    changes = []
    for key, data in ops:
        position = next(positions)
        doc_id = str(record_id(account, "s", key))
        if data is None:
            changes.append(SearchChange(position, RemoveDoc(doc_id, account, "s", key)))
            docs.pop(key, None)
            continue
        doc = IndexDoc(doc_id, account, "s", key, 1, "t", position // 3, data)
        changes.append(SearchChange(position, doc))
        docs[key] = {"data": data, "updated_us": position // 3}
        # The same record in another tenant: it must never show up.
        twin = IndexDoc(str(record_id(other, "s", key)), other, "s", key, 1, "t", 0, data)
        changes.append(SearchChange(next(positions), twin))
    writer = store.writer(await store.active_generation())
    await writer.apply(changes, 0, changes[-1].position)
    for filters, word, sort, limit in asked:
        clauses = (Clause(word),) if word else ()
        query = SearchQuery(account, "s", clauses, tuple(filters), sort=sort, limit=limit)
        expected = reference(docs, query)
        seen: list[str] = []
        page = await store.search(query)
        assert page.total == len(expected), (query, expected)
        seen += [hit.record["id"] for hit in page.hits]
        while page.more:
            after = page.hits[-1].sort
            page = await store.search(dataclasses.replace(query, after=after))
            seen += [hit.record["id"] for hit in page.hits]
        assert seen == expected, (query, docs)


SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
positions = itertools.count(1)  # one store per test, positions only grow


@SETTINGS
@given(ops=history, asked=st.lists(queries, min_size=1, max_size=6))
def test_sqlite_agrees_with_the_reference(tmp_path: Path, ops: list[Any], asked: list[Any]) -> None:
    async def run() -> None:
        store = SQLiteSearchIndex(tmp_path / "search.sqlite")
        try:
            await check(store, ops, asked, positions)
        finally:
            store.close()

    asyncio.run(run())


@pytest.mark.integration
@SETTINGS
@given(ops=history, asked=st.lists(queries, min_size=1, max_size=6))
def test_elasticsearch_agrees_with_the_reference(
    elasticsearch_url: str, es_index_prefix: str, ops: list[Any], asked: list[Any]
) -> None:
    async def run() -> None:
        client = AsyncElasticsearch(elasticsearch_url)
        try:
            await check(ElasticSearchIndex(client, es_index_prefix), ops, asked, positions)
        finally:
            await client.close()

    asyncio.run(run())
