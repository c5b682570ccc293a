"""Reading Kafka's own bookkeeping: consumer-group lag, and the dead-letter topics."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    GroupCoordinatorNotAvailableError,
    NotCoordinatorForGroupError,
)
from aiokafka.structs import OffsetAndMetadata

# A group coordinator is briefly unavailable while a broker loads __consumer_offsets
# (just after start, or after a group's first commit): ask again rather than fail.
_COORDINATOR_BUSY = (
    CoordinatorLoadInProgressError,
    GroupCoordinatorNotAvailableError,
    NotCoordinatorForGroupError,
)
_COORDINATOR_ATTEMPTS = 20


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(self.end - max(self.committed, 0), 0)


async def consumer_lag(bootstrap: str, group: str, topics: Sequence[str]) -> list[PartitionLag]:
    """Per partition, the group's committed offset and the end offset (-1: nothing committed)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(
                consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
            )
        ]
        committed = await _committed_offsets(admin, group, partitions)
        ends = await consumer.end_offsets(partitions)
        return [
            PartitionLag(tp.topic, tp.partition, _offset(committed.get(tp)), ends[tp])
            for tp in partitions
        ]
    finally:
        await consumer.stop()
        await admin.close()


async def _committed_offsets(
    admin: AIOKafkaAdminClient, group: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, OffsetAndMetadata]:
    for attempt in range(_COORDINATOR_ATTEMPTS):
        try:
            offsets: dict[
                TopicPartition, OffsetAndMetadata
            ] = await admin.list_consumer_group_offsets(group, partitions=partitions)
        except _COORDINATOR_BUSY:
            if attempt == _COORDINATOR_ATTEMPTS - 1:
                raise
            await asyncio.sleep(min(0.1 * 2**attempt, 1.0))
        else:
            return offsets
    raise AssertionError("unreachable")


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # metadata for a topic not subscribed to
    return consumer.partitions_for_topic(topic) or set()


def _offset(value: OffsetAndMetadata | None) -> int:
    return -1 if value is None else int(value.offset)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return ""


async def read_all(bootstrap: str, topic: str) -> list[DeadLetter]:
    """Every message of a single-partition topic, from the first to the current end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.seek(tp, (await consumer.beginning_offsets([tp]))[tp])
        found: list[DeadLetter] = []
        while (await consumer.position(tp)) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            found.extend(
                DeadLetter(m.offset, m.key, m.value, list(m.headers)) for m in batch.get(tp, [])
            )
        return found
    finally:
        await consumer.stop()


async def commit_offset(bootstrap: str, group: str, topic: str, offset: int) -> None:
    """Record `offset` as the next one `group` would read (marks earlier ones as handled)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.commit({tp: offset})
    finally:
        await consumer.stop()
