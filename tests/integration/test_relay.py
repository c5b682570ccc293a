"""The relay against a real broker: what its watermarks promise, and how it batches a
steady stream of commits (its linger)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from infra.adapters.kafka.relay import Relay
from infra.adapters.kafka.topics import Topics
from schemas import contract
from schemas.events import ProjectedEvent
from tests.integration.test_subscriber_contract import (
    PARTITIONS,
    _Positions,
    create_topic,
    history,
    read_raw,
)

pytestmark = pytest.mark.integration


class _GrowingLog:
    """An event source whose events arrive over time; `wait` returns when one does."""

    def __init__(self, events: Sequence[ProjectedEvent] = ()) -> None:
        self.events = list(events)
        self.arrived = asyncio.Event()

    def commit(self, event: ProjectedEvent) -> None:
        self.events.append(event)
        self.arrived.set()

    async def read(self, after: int, limit: int) -> Sequence[ProjectedEvent]:
        return [e for e in self.events if e.position > after][:limit]

    async def head(self) -> int:
        return self.events[-1].position if self.events else 0

    async def wait(self, after: int, timeout: float) -> None:
        self.arrived.clear()
        if await self.head() > after:
            return
        try:
            await asyncio.wait_for(self.arrived.wait(), timeout)
        except TimeoutError:
            return


async def _relay(
    bootstrap: str, prefix: str, log: _GrowingLog, **options: float
) -> tuple[Relay, _Positions, asyncio.Event, asyncio.Task[None]]:
    topics = Topics(prefix, PARTITIONS, 1)
    await create_topic(bootstrap, topics.events, PARTITIONS)
    await create_topic(bootstrap, topics.credentials, 1)
    positions = _Positions()

    def producer() -> AIOKafkaProducer:
        return AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")

    relay = Relay(log, positions, producer, topics, **options)  # type: ignore[arg-type]
    stop = asyncio.Event()
    return relay, positions, stop, asyncio.create_task(relay.run(stop))


async def _until_published(positions: _Positions, position: int) -> None:
    async with asyncio.timeout(60):
        while positions.position < position:
            await asyncio.sleep(0.01)


async def test_a_watermark_follows_every_event_it_covers_on_its_partition(
    kafka_bootstrap: str, kafka_topic_prefix: str
) -> None:
    events = history()
    log = _GrowingLog(events)
    _, positions, stop, task = await _relay(kafka_bootstrap, kafka_topic_prefix, log, batch_size=4)
    await _until_published(positions, events[-1].position)
    stop.set()
    await task

    raw = await read_raw(kafka_bootstrap, f"{kafka_topic_prefix}{contract.EVENT_TOPIC}")
    partition_of = {
        e.position: (murmur2(contract.encode(e, redact=True).key or b"") & 0x7FFFFFFF) % PARTITIONS
        for e in events
    }
    marks = 0
    for partition in range(PARTITIONS):
        seen: set[int] = set()
        for record in sorted((r for r in raw if r.partition == partition), key=lambda r: r.offset):
            decoded = contract.decode(record.headers, record.value)
            if isinstance(decoded, contract.Watermark):
                covered = {
                    p for p, at in partition_of.items() if at == partition and p <= decoded.position
                }
                missing = sorted(covered - seen)
                assert not missing, f"partition {partition}: {decoded.position} before {missing}"
                marks += 1
            else:
                seen.add(decoded.position)
        assert seen == {p for p, at in partition_of.items() if at == partition}
    assert marks >= PARTITIONS * (len(events) // 4)  # one per partition with each batch


async def test_a_steady_stream_of_commits_goes_out_in_lingered_batches(
    kafka_bootstrap: str, kafka_topic_prefix: str
) -> None:
    events = history()[:10]
    log = _GrowingLog(events[:1])
    relay, positions, stop, task = await _relay(
        kafka_bootstrap, kafka_topic_prefix, log, batch_size=100, linger=2.0
    )
    await _until_published(positions, 1)  # after a quiet spell: at once
    assert relay.stats.batches == 1
    for event in events[1:]:  # nine commits, well inside the linger
        log.commit(event)
        await asyncio.sleep(0.01)
    await _until_published(positions, 10)
    assert relay.stats.batches == 2  # gathered: one read, one produce, one save
    stop.set()
    await task
