"""Every search store honours the same contract: idempotent, versioned by event position,
checkpointed per slot, with generations that swap atomically."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from elasticsearch import AsyncElasticsearch

from domain.record import record_id
from infra.adapters.search.elastic import MAPPING, ElasticSearchIndex, SearchIndexError
from infra.adapters.search.sqlite_fts import SQLiteSearchIndex
from projections.ports import StoreUnavailableError
from projections.search import (
    Clause,
    IndexDoc,
    RemoveDoc,
    SearchChange,
    SearchQuery,
    SearchStore,
    Sort,
)


@pytest.fixture(params=["sqlite", pytest.param("elasticsearch", marks=pytest.mark.integration)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SearchStore]:
    if request.param == "sqlite":
        sqlite = SQLiteSearchIndex(tmp_path / "search.sqlite")
        yield sqlite
        sqlite.close()
    else:
        client = AsyncElasticsearch(request.getfixturevalue("elasticsearch_url"))
        # Tiny bulk requests, so every test also crosses batch boundaries.
        yield ElasticSearchIndex(client, request.getfixturevalue("es_index_prefix"), batch_docs=3)
        await client.close()


def put(position: int, key: str, data: dict[str, Any], account: str = "acc") -> SearchChange:
    doc = IndexDoc(
        doc_id=str(record_id(account, "s", key)),
        account_id=account,
        source="s",
        key=key,
        version=position,
        updated_at=f"2026-01-01T00:00:{position:02d}+00:00",
        updated_us=position,
        data=data,
    )
    return SearchChange(position, doc)


def remove(position: int, key: str, account: str = "acc") -> SearchChange:
    doc_id = str(record_id(account, "s", key))
    return SearchChange(position, RemoveDoc(doc_id, account, "s", key))


async def found(store: SearchStore, account: str = "acc", **kwargs: Any) -> dict[str, Any]:
    page = await store.search(SearchQuery(account, "s", limit=100, **kwargs))
    return {hit.record["id"]: hit.record["data"] for hit in page.hits}


async def live(store: SearchStore) -> Any:
    return store.writer(await store.active_generation())


async def test_changes_apply_once_with_their_checkpoint(store: SearchStore) -> None:
    writer = await live(store)
    batch = [put(1, "a", {"n": 1}), put(2, "b", {"n": 2}), put(3, "a", {"n": 3}), remove(4, "b")]
    batch += [put(5, f"x{i}", {"i": i}) for i in range(5)]
    await writer.apply(batch, 0, 5)
    assert (await found(store))["a"] == {"n": 3}
    assert "b" not in await found(store)
    assert await store.checkpoints() == {0: 5}
    before = await writer.dump()
    # Redelivered, and overlapping with something new: only the new part applies.
    await writer.apply(batch, 0, 5)
    assert await writer.dump() == before
    await writer.apply([*batch, put(6, "a", {"n": 6})], 0, 6)
    assert (await found(store))["a"] == {"n": 6}
    assert await store.checkpoints() == {0: 6}
    await writer.apply([put(7, "c", {})], 1, 7)
    assert await store.checkpoints() == {0: 6, 1: 7}


async def test_an_older_write_never_replaces_a_newer_one(store: SearchStore) -> None:
    writer = await live(store)
    await writer.apply([put(10, "a", {"v": "new"})], 0, 10)
    # Another slot (its own checkpoint is behind) delivers older events of the same record.
    await writer.apply([put(7, "a", {"v": "old"}), remove(8, "a")], 1, 8)
    assert await found(store) == {"a": {"v": "new"}}
    docs = (await writer.dump())["docs"]
    assert [doc["position"] for doc in docs.values()] == [10]


async def test_delete_then_recreate(store: SearchStore) -> None:
    writer = await live(store)
    await writer.apply([put(1, "a", {"v": 1}), remove(2, "a")], 0, 2)
    assert await found(store) == {}
    await writer.apply([put(1, "a", {"v": 1})], 1, 1)  # a stale create stays deleted
    assert await found(store) == {}
    await writer.apply([remove(3, "missing")], 0, 3)  # deleting what is not there is fine
    await writer.apply([put(4, "a", {"v": 4})], 0, 4)
    assert await found(store) == {"a": {"v": 4}}
    docs = (await writer.dump())["docs"]
    assert [(d["id"], d["position"], d["version"]) for d in docs.values()] == [("a", 4, 4)]


async def test_checkpoints_only_move_forward_and_per_slot(store: SearchStore) -> None:
    writer = await live(store)
    await writer.apply([], 0, 5)
    await writer.apply([], 0, 3)
    await asyncio.gather(*(writer.apply([put(9 + s, f"s{s}", {})], s, 9 + s) for s in range(1, 6)))
    assert await store.checkpoints() == {0: 5, 1: 10, 2: 11, 3: 12, 4: 13, 5: 14}
    await writer.apply([put(1, "r", {})], -1, 0)  # a repair moves no checkpoint
    assert await store.checkpoints() == {0: 5, 1: 10, 2: 11, 3: 12, 4: 13, 5: 14}
    assert set(await found(store)) == {"s1", "s2", "s3", "s4", "s5", "r"}


async def test_generations_swap_atomically(store: SearchStore) -> None:
    old = await live(store)
    await old.apply([put(1, "k", {"v": "old"})], 0, 1)
    fresh = await store.new_generation()
    assert fresh.generation != old.generation
    assert await fresh.checkpoints() == {}
    await fresh.apply([put(1, "k", {"v": "new"}), put(2, "j", {"v": "only new"})], 0, 2)
    assert await found(store) == {"k": {"v": "old"}}
    await store.activate(fresh.generation)
    if isinstance(store, ElasticSearchIndex):
        store._active = None  # processes trust a cached alias for half a second
    assert await store.active_generation() == fresh.generation
    assert await found(store) == {"k": {"v": "new"}, "j": {"v": "only new"}}
    assert await store.checkpoints() == {0: 2}
    with pytest.raises(ValueError, match="active"):
        await store.drop(fresh.generation)
    await store.drop(old.generation)
    again = await store.new_generation()
    assert again.generation == fresh.generation + 1
    assert await again.checkpoints() == {}
    assert (await again.dump())["docs"] == {}


async def test_search_is_confined_to_one_account_and_source(store: SearchStore) -> None:
    writer = await live(store)
    elsewhere = put(3, "z", {"t": "apple"}).change
    assert isinstance(elsewhere, IndexDoc)
    other_source = SearchChange(3, msgspec.structs.replace(elsewhere, source="t"))
    await writer.apply(
        [put(1, "a", {"t": "apple"}), put(2, "b", {"t": "apple"}, account="other"), other_source],
        0,
        3,
    )
    for query in (SearchQuery("acc", "s"), SearchQuery("acc", "s", (Clause("apple"),))):
        page = await store.search(query)
        assert [hit.record["id"] for hit in page.hits] == ["a"]
        assert page.total == 1


async def test_sort_values_page_with_search_after(store: SearchStore) -> None:
    writer = await live(store)
    groups = ["b", "a", None, "c", "a", None, "b"]
    await writer.apply(
        [put(i + 1, f"k{i}", {"g": g} if g else {}) for i, g in enumerate(groups)], 0, len(groups)
    )
    for descending in (False, True):
        sort = Sort("data", descending, "g")
        seen: list[str] = []
        after = None
        while True:
            page = await store.search(SearchQuery("acc", "s", sort=sort, limit=2, after=after))
            seen += [hit.record["id"] for hit in page.hits]
            if not page.more:
                break
            after = page.hits[-1].sort
        # By value (ties by id), records without the field last either way.
        by_value = ["k3", "k0", "k6", "k1", "k4"] if descending else ["k1", "k4", "k0", "k6", "k3"]
        assert seen == [*by_value, "k2", "k5"]


@pytest.mark.integration
async def test_elastic_mapping_does_not_grow_with_customer_keys(
    elasticsearch_url: str, es_index_prefix: str
) -> None:
    client = AsyncElasticsearch(elasticsearch_url)
    store = ElasticSearchIndex(client, es_index_prefix)
    try:
        writer = await live(store)
        many = {f"field_{i}": {"nested": i, f"deep_{i}": [str(i)]} for i in range(300)}
        await writer.apply([put(1, "wide", many), put(2, "odd", {"": 1, "a.b": {"c": 2}})], 0, 2)
        mapping = await client.indices.get_mapping(index=store.index(writer.generation))
        properties = mapping[store.index(writer.generation)]["mappings"]["properties"]
        assert set(properties) == set(MAPPING["properties"])
        hits = await store.search(SearchQuery("acc", "s", filters=(("field_7.deep_7", "7"),)))
        assert [hit.record["id"] for hit in hits.hits] == ["wide"]
    finally:
        await client.close()


@pytest.mark.integration
async def test_elastic_item_errors_raise_and_keep_the_checkpoint(
    elasticsearch_url: str, es_index_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = AsyncElasticsearch(elasticsearch_url)
    store = ElasticSearchIndex(client, es_index_prefix)
    try:
        writer = await live(store)
        await writer.apply([put(1, "a", {"v": 1})], 0, 1)
        encode = type(writer)._encode

        def poisoned(self: Any, item: SearchChange) -> list[bytes]:
            lines = encode(self, item)
            if item.change.key == "bad":  # a field the strict mapping refuses
                lines[1] = lines[1][:-1] + b',"surprise":1}'
            return lines

        monkeypatch.setattr(type(writer), "_encode", poisoned)
        with pytest.raises(SearchIndexError, match="strict_dynamic_mapping"):
            await writer.apply([put(2, "good", {}), put(3, "bad", {})], 0, 3)
        assert await store.checkpoints() == {0: 1}
    finally:
        await client.close()


async def test_elastic_connection_failures_are_store_unavailable() -> None:
    client = AsyncElasticsearch("http://127.0.0.1:9", max_retries=0, request_timeout=2)
    store = ElasticSearchIndex(client, "nowhere-")
    try:
        with pytest.raises(StoreUnavailableError):
            await store.writer(1).apply([put(1, "a", {})], 0, 1)
        with pytest.raises(StoreUnavailableError):
            await store.search(SearchQuery("acc", "s"))
    finally:
        await client.close()


async def _sorted_keys(store: SearchStore) -> list[str]:
    page = await store.search(SearchQuery("acc", "s", sort=Sort("data", False, "n"), limit=10))
    return [hit.record["id"] for hit in page.hits]


async def test_sqlite_generations_made_before_sort_keys_get_them(tmp_path: Path) -> None:
    """A file from before the `sortkeys` table: reopened, every generation has it; documents
    written since sort by value, older ones as missing until a replay."""
    path = tmp_path / "search.sqlite"
    old = SQLiteSearchIndex(path)
    await (await old.new_generation()).apply([put(1, "old", {"n": 1})], 0, 1)
    await old.activate(2)
    for generation in (1, 2):
        old._write.execute(f"DROP TABLE {old.tables(generation).sortkeys}")
    old.close()
    store = SQLiteSearchIndex(path)
    try:
        writer = store.writer(2)
        await writer.apply([put(2, "ten", {"n": 10}), put(3, "nine", {"n": 9})], 0, 3)
        assert await _sorted_keys(store) == ["nine", "ten", "old"]
    finally:
        store.close()


@pytest.mark.integration
async def test_an_elastic_index_made_before_sort_keys_gets_the_field(
    elasticsearch_url: str, es_index_prefix: str
) -> None:
    """The mapping is strict: without `sortkeys` added on start, every write would fail."""
    client = AsyncElasticsearch(elasticsearch_url)
    store = ElasticSearchIndex(client, es_index_prefix)
    try:
        before = {k: v for k, v in MAPPING["properties"].items() if k != "sortkeys"}
        await client.indices.create(
            index=store.index(1), mappings={**MAPPING, "properties": before}
        )
        await client.indices.update_aliases(
            actions=[{"add": {"index": store.index(1), "alias": store.alias}}]
        )
        writer = store.writer(await store.active_generation())
        await writer.apply([put(1, "ten", {"n": 10}), put(2, "nine", {"n": 9})], 0, 2)
        await client.indices.refresh(index=store.alias)
        assert await _sorted_keys(store) == ["nine", "ten"]
    finally:
        await client.close()
