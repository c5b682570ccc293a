"""Hash reads of one event-loop turn go to Redis as one pipeline on the reader's own
connection, each getting its own answer (or its own error), as if read alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from infra.adapters.documents.batching import HashReads

pytestmark = pytest.mark.integration


@pytest.fixture
async def reads(redis: Redis) -> AsyncIterator[HashReads]:
    reader = HashReads(redis)
    try:
        yield reader
    finally:
        await reader.aclose()


def _count_sends(reads: HashReads) -> list[int]:
    """How many commands each send to Redis carried."""
    sends: list[int] = []
    original = reads.connection.pack_commands

    def counting(commands: Any) -> Any:
        commands = list(commands)
        sends.append(len(commands))
        return original(commands)

    reads.connection.pack_commands = counting  # type: ignore[method-assign]
    return sends


async def test_reads_of_one_turn_share_a_pipeline(
    redis: Redis, reads: HashReads, redis_prefix: str
) -> None:
    for i in range(5):
        await redis.hset(f"{redis_prefix}h{i}", mapping={"n": str(i)})
    await redis.set(f"{redis_prefix}not-a-hash", "x")
    sends = _count_sends(reads)
    names = [f"{redis_prefix}h{i}" for i in range(5)] + [f"{redis_prefix}missing"]
    results = await asyncio.gather(
        *(reads.hgetall(n) for n in names),
        reads.hgetall(f"{redis_prefix}not-a-hash"),
        return_exceptions=True,
    )
    assert sends == [7]
    assert results[:5] == [{b"n": str(i).encode()} for i in range(5)]
    assert results[5] == {}
    assert isinstance(results[6], ResponseError)  # WRONGTYPE: that read's error alone
    assert await reads.hgetall(f"{redis_prefix}h3") == {b"n": b"3"}  # alone
    assert sends == [7, 1]


async def test_reads_arriving_while_a_batch_is_out_form_the_next(
    redis: Redis, reads: HashReads, redis_prefix: str
) -> None:
    await redis.hset(f"{redis_prefix}h", mapping={"n": "1"})
    sends = _count_sends(reads)
    first = asyncio.create_task(reads.hgetall(f"{redis_prefix}h"))
    await asyncio.sleep(0)  # the first batch is out
    later = [asyncio.create_task(reads.hgetall(f"{redis_prefix}h")) for _ in range(3)]
    assert await asyncio.gather(first, *later) == [{b"n": b"1"}] * 4
    assert sends == [1, 3]


async def test_a_dropped_connection_is_reopened_without_an_error(
    redis: Redis, reads: HashReads, redis_prefix: str
) -> None:
    await redis.hset(f"{redis_prefix}h", mapping={"n": "1"})
    assert await reads.hgetall(f"{redis_prefix}h") == {b"n": b"1"}
    await reads.connection.send_command("CLIENT", "ID")  # idle between batches
    await redis.execute_command("CLIENT", "KILL", "ID", await reads.connection.read_response())
    assert await reads.hgetall(f"{redis_prefix}h") == {b"n": b"1"}


async def test_a_connection_failure_reaches_every_read_of_the_batch() -> None:
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    reads = HashReads(dead)
    try:
        results = await asyncio.gather(
            reads.hgetall("a"), reads.hgetall("b"), return_exceptions=True
        )
        assert all(isinstance(r, RedisConnectionError) for r in results), results
        assert reads.sender is None  # and the next read starts a new sender
        (again,) = await asyncio.gather(reads.hgetall("c"), return_exceptions=True)
        assert isinstance(again, RedisConnectionError)
    finally:
        await reads.aclose()
        await dead.aclose()


async def test_closing_cancels_the_reads_in_flight(
    redis: Redis, reads: HashReads, redis_prefix: str
) -> None:
    await redis.hset(f"{redis_prefix}h", mapping={"n": "1"})
    out = [asyncio.create_task(reads.hgetall(f"{redis_prefix}h")) for _ in range(3)]
    await asyncio.sleep(0)  # the batch is out
    await reads.aclose()
    results = await asyncio.gather(*out, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results), results
    assert reads.sender is None
    assert reads.pending == []
    assert await reads.hgetall(f"{redis_prefix}h") == {b"n": b"1"}  # reconnects
