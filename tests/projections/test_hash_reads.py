"""Hash reads of one event-loop turn go to Redis as one pipeline, each getting its own answer
(or its own error), as if read alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from infra.adapters.documents.batching import HashReads

pytestmark = pytest.mark.integration


async def test_reads_of_one_turn_share_a_pipeline(redis: Redis, redis_prefix: str) -> None:
    for i in range(5):
        await redis.hset(f"{redis_prefix}h{i}", mapping={"n": str(i)})
    await redis.set(f"{redis_prefix}not-a-hash", "x")
    reads = HashReads(redis)
    pipelines: list[int] = []
    original = redis.pipeline

    def counting(*args: Any, **kwargs: Any) -> Any:
        pipelines.append(1)
        return original(*args, **kwargs)

    redis.pipeline = counting  # type: ignore[method-assign]
    names = [f"{redis_prefix}h{i}" for i in range(5)] + [f"{redis_prefix}missing"]
    results = await asyncio.gather(
        *(reads.hgetall(n) for n in names),
        reads.hgetall(f"{redis_prefix}not-a-hash"),
        return_exceptions=True,
    )
    assert pipelines == [1]
    assert results[:5] == [{b"n": str(i).encode()} for i in range(5)]
    assert results[5] == {}
    assert isinstance(results[6], ResponseError)  # WRONGTYPE: that read's error alone
    assert await reads.hgetall(f"{redis_prefix}h3") == {b"n": b"3"}  # alone: no pipeline
    assert pipelines == [1]


async def test_a_connection_failure_reaches_every_read_of_the_batch() -> None:
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    reads = HashReads(dead)
    try:
        results = await asyncio.gather(
            reads.hgetall("a"), reads.hgetall("b"), return_exceptions=True
        )
        assert all(isinstance(r, RedisConnectionError) for r in results), results
    finally:
        await dead.aclose()
