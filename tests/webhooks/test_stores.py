"""Both delivery stores (SQLite embedded, Redis distributed) against the same contract: enqueue
is idempotent, a lane hands out one delivery at a time in position order, claims respect the
per-webhook budget and leases, finishing moves the lane on, history pages newest first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from infra.adapters.webhooks.redis_store import RedisDeliveryStore
from infra.adapters.webhooks.sqlite_store import SQLiteDeliveryStore
from projections.delivery import DELIVERED, FAILED, Attempt, Delivery, DeliveryStore

NOW = 1_800_000_000.0


def delivery(webhook: str, lane: str, position: int, **fields: Any) -> Delivery:
    return Delivery(
        id=f"{webhook}{lane}{position:04d}".ljust(32, "0")[:32],
        webhook_id=webhook,
        account_id="acct",
        lane=lane,
        position=position,
        event_id=f"{lane}:{position}",
        event_type="strata.record.created",
        body="{}",
        created_at="2027-01-15T08:00:00+00:00",
        next_attempt_at=NOW,
        **fields,
    )


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.integration)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DeliveryStore]:
    if request.param == "sqlite":
        sqlite = SQLiteDeliveryStore(tmp_path / "webhooks.sqlite")
        yield sqlite
        sqlite.close()
        return
    from redis.asyncio import Redis  # noqa: PLC0415

    client = Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisDeliveryStore(client, request.getfixturevalue("redis_prefix").rstrip(":"))
    await client.aclose()


async def claim(store: DeliveryStore, now: float = NOW, **kw: Any) -> list[Delivery]:
    args = {"busy": {}, "per_webhook": 4, "limit": 100, "lease": 30.0, **kw}
    return await store.claim(now, **args)


async def test_enqueue_is_idempotent(store: DeliveryStore) -> None:
    batch = [delivery("w1", "s1", 1), delivery("w1", "s1", 2)]
    assert await store.enqueue(batch) == 2
    assert await store.enqueue(batch) == 0
    assert await store.get("w1", batch[0].id) == batch[0]
    assert await store.get("w2", batch[0].id) is None


async def test_a_lane_hands_out_its_head_only_and_moves_on(store: DeliveryStore) -> None:
    await store.enqueue([delivery("w1", "s1", p) for p in (1, 2, 3)])
    [head] = await claim(store)
    assert head.position == 1
    assert await claim(store) == []  # leased
    retry = msgspec.structs.replace(
        head,
        attempts=[Attempt(number=1, at="t", duration_ms=1, status_code=500)],
        next_attempt_at=NOW + 10,
    )
    await store.finish(retry, NOW)
    assert await claim(store, NOW + 5) == []  # waiting for its retry: version 2 waits too
    [again] = await claim(store, NOW + 10)
    assert again.id == head.id
    assert again.attempts == retry.attempts
    await store.finish(msgspec.structs.replace(again, status=DELIVERED, finished_at=NOW), NOW)
    [second] = await claim(store, NOW + 10)
    assert second.position == 2
    await store.finish(msgspec.structs.replace(second, status=FAILED, finished_at=NOW), NOW)
    [third] = await claim(store, NOW + 10)
    assert third.position == 3
    await store.finish(msgspec.structs.replace(third, status=DELIVERED, finished_at=NOW), NOW)
    assert await claim(store, NOW + 100) == []
    assert await store.next_due() is None


async def test_an_expired_lease_is_claimed_again(store: DeliveryStore) -> None:
    await store.enqueue([delivery("w1", "s1", 1)])
    [first] = await claim(store, lease=5.0)
    assert await claim(store, NOW + 4) == []
    [again] = await claim(store, NOW + 6)
    assert again.id == first.id


async def test_claims_respect_the_per_webhook_budget(store: DeliveryStore) -> None:
    await store.enqueue([delivery("wa", f"s{i}", 1) for i in range(10)])
    await store.enqueue([delivery("wb", f"s{i}", 1) for i in range(3)])
    got = await claim(store, per_webhook=2, busy={"wa": 1})
    by_webhook = {w: sum(d.webhook_id == w for d in got) for w in ("wa", "wb")}
    assert by_webhook == {"wa": 1, "wb": 2}
    got = await claim(store, per_webhook=4, limit=3)
    assert len(got) == 3


async def test_history_pages_newest_first(store: DeliveryStore) -> None:
    await store.enqueue([delivery("w1", f"s{i}", i) for i in range(1, 6)])
    await store.enqueue([delivery("w2", "x", 1)])
    first = await store.history("w1", before=None, limit=2)
    assert [d.position for _, d in first] == [5, 4]
    rest = await store.history("w1", before=first[-1][0], limit=10)
    assert [d.position for _, d in rest] == [3, 2, 1]
    assert await store.history("w3", before=None, limit=10) == []
