"""Every document store adapter honours the same contract as the in-memory reference."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from infra.adapters.documents.redis import RedisDocumentStore
from infra.adapters.documents.sqlite import SQLiteDocumentStore
from projections.changes import AddMember, Delete, Merge, Positioned, Put, RemoveMember
from projections.memory import MemoryDocumentStore
from projections.ports import DocumentStore


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.integration)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocumentStore]:
    if request.param == "memory":
        yield MemoryDocumentStore()
    elif request.param == "sqlite":
        sqlite = SQLiteDocumentStore(tmp_path / "docs.sqlite", "lookups")
        yield sqlite
        sqlite.close()
    else:
        client = Redis.from_url(request.getfixturevalue("redis_url"))
        yield RedisDocumentStore(client, "lookups", prefix=request.getfixturevalue("redis_prefix"))
        await client.aclose()


async def test_changes_apply_once_with_their_checkpoint(store: DocumentStore) -> None:
    writer = store.writer(await store.active_generation())
    batch = [
        Positioned(1, Put("doc:a", {"n": 1, "nested": {"x": [1, 2]}})),
        Positioned(2, Merge("doc:a", {"m": "two"})),
        Positioned(2, AddMember("set", "b")),
        Positioned(2, AddMember("set", "a")),
        Positioned(3, Put("doc:b", {"n": 3})),
        Positioned(4, Delete("doc:b")),
    ]
    await writer.apply(batch, partition=0, position=4)
    assert await store.get("doc:a") == {"n": 1, "nested": {"x": [1, 2]}, "m": "two"}
    assert await store.get("doc:b") is None
    assert await store.checkpoints() == {0: 4}
    # Redelivery, and an overlapping batch: only positions above the checkpoint apply.
    await writer.apply([*batch, Positioned(5, Merge("doc:a", {"n": 5}))], partition=0, position=5)
    await writer.apply(batch, partition=0, position=4)
    assert (await store.get("doc:a"))["n"] == 5  # type: ignore[index]
    assert await store.checkpoints() == {0: 5}
    await writer.apply([Positioned(6, Put("doc:c", {}))], partition=1, position=6)
    assert await store.checkpoints() == {0: 5, 1: 6}
    assert await store.get_many(["doc:a", "missing"]) == [await store.get("doc:a"), None]


async def test_a_document_and_the_one_it_names_read_together(store: DocumentStore) -> None:
    writer = store.writer(await store.active_generation())
    await writer.apply(
        [
            Positioned(1, Put("account:a1", {"plan": "pro", "status": "active"})),
            Positioned(1, Put("apikey:k1", {"account_id": "a1", "scopes": ["data:read"]})),
            Positioned(1, Put("apikey:k2", {"account_id": "gone"})),
            Positioned(1, Put("apikey:k3", {"account_id": 7})),  # not a string: names nothing
            Positioned(1, Put("apikey:k4", {"name": "no link"})),
        ],
        partition=0,
        position=1,
    )
    key, account = await store.get_linked("apikey:k1", "account_id", "account:")
    assert key == {"account_id": "a1", "scopes": ["data:read"]}
    assert account == {"plan": "pro", "status": "active"}
    assert await store.get_linked("apikey:k2", "account_id", "account:") == (
        {"account_id": "gone"},
        None,
    )
    assert (await store.get_linked("apikey:k3", "account_id", "account:"))[1] is None
    assert (await store.get_linked("apikey:k4", "account_id", "account:"))[1] is None
    assert await store.get_linked("apikey:none", "account_id", "account:") == (None, None)


async def test_members_page_in_order(store: DocumentStore) -> None:
    writer = store.writer(await store.active_generation())
    names = [f"r{i:03d}" for i in range(25)]
    await writer.apply([Positioned(1, AddMember("s", n)) for n in reversed(names)], 0, 1)
    await writer.apply([Positioned(2, RemoveMember("s", "r010"))], 0, 2)
    first = await store.members("s", after=None, limit=10)
    second = await store.members("s", after=first[-1], limit=10)
    rest = await store.members("s", after=second[-1], limit=10)
    assert first + second + rest == [n for n in names if n != "r010"]
    assert await store.members("none", after=None, limit=10) == []


async def test_generations_swap_atomically(store: DocumentStore) -> None:
    live = store.writer(await store.active_generation())
    await live.apply([Positioned(1, Put("k", {"v": "old"}))], 0, 1)
    fresh = await store.new_generation()
    assert fresh.generation != live.generation
    await fresh.apply([Positioned(1, Put("k", {"v": "new"}))], 0, 1)
    assert await store.get("k") == {"v": "old"}
    await store.activate(fresh.generation)
    if isinstance(store, RedisDocumentStore):
        store._active = None  # readers trust a cached pointer for half a second
    assert await store.get("k") == {"v": "new"}
    with pytest.raises(ValueError, match="active"):
        await store.drop(fresh.generation)
    await store.drop(live.generation)
    await fresh.apply([Positioned(2, Merge("k", {"again": True}))], 0, 2)
    assert await store.get("k") == {"v": "new", "again": True}
    assert (await fresh.dump())["docs"] == {"k": {"v": "new", "again": True}}
