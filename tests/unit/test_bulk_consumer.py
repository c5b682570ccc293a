"""BulkConsumer's acknowledgements and what faust then commits (`Consumer._new_offset`, the
offset its next commit writes), without a broker: the consumer is built, never started."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import faust
import pytest
from faust.types import TP

from streams.app import BUFFERED_BULKS, StreamSettings, build_app
from streams.bulk import BulkConsumer, BulkMessage, use_bulk_consumer

TOPIC = "events"
PARTITION = TP(TOPIC, 0)


@dataclass
class _Record:  # the fields of an aiokafka ConsumerRecord a bulk reads
    offset: int
    timestamp: int | None = 1_700_000_000_000
    timestamp_type: int = 0


@pytest.fixture
async def consumer() -> BulkConsumer:  # built on the test's loop
    app = faust.App(f"bulk-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1")
    use_bulk_consumer(app)
    app.topics.add(app.topic(TOPIC))
    await app.topics._update_indices()  # as on subscribing: a topic whose offsets are acked
    built = app.consumer
    assert isinstance(built, BulkConsumer)
    assert app.topics.acks_enabled_for(TOPIC)
    return built


def _bulk(consumer: BulkConsumer, offsets: list[int], first: int | None = None) -> BulkMessage:
    records = [_Record(offset) for offset in offsets]
    return consumer._bulk(PARTITION, records, offsets[0] if first is None else first, 1)


def test_a_bulk_carries_its_records_and_answers_for_its_last_offset(
    consumer: BulkConsumer,
) -> None:
    bulk = _bulk(consumer, [3, 4, 5])
    assert [record.offset for record in bulk.value] == [3, 4, 5]  # type: ignore[union-attr]
    assert (bulk.offset, bulk.first_offset, bulk.tp) == (5, 3, PARTITION)
    assert bulk.timestamp == 1_700_000_000.0


def test_acknowledged_bulks_are_committed_to_their_end(consumer: BulkConsumer) -> None:
    consumer._committed_offset[PARTITION] = 15
    first, second = _bulk(consumer, [15, 16]), _bulk(consumer, [17, 18, 19])
    assert consumer.ack(first)
    assert consumer.ack(second)
    assert consumer._new_offset(PARTITION) == 20


def test_a_bulk_not_acknowledged_is_not_committed(consumer: BulkConsumer) -> None:
    first, second, third = (
        _bulk(consumer, [0, 1]),
        _bulk(consumer, [2, 3]),
        _bulk(consumer, [4, 5]),
    )
    assert consumer.ack(first)
    assert consumer.ack(third)
    assert consumer._new_offset(PARTITION) == 2  # not past the second bulk
    assert consumer.ack(second)
    assert consumer._new_offset(PARTITION) == 6


def test_offsets_without_records_before_a_bulk_are_committed_with_it(
    consumer: BulkConsumer,
) -> None:
    consumer._committed_offset[PARTITION] = 10
    assert consumer.ack(_bulk(consumer, [10, 11]))
    assert consumer.ack(_bulk(consumer, [14, 15], first=12))  # 12 and 13 compacted away
    assert consumer._new_offset(PARTITION) == 16


def test_a_bulk_is_acknowledged_once(consumer: BulkConsumer) -> None:
    bulk = _bulk(consumer, [0, 1, 2])
    assert consumer.ack(bulk)
    assert not consumer.ack(bulk)
    assert consumer._n_acked == 3


def test_offsets_below_the_committed_one_are_not_acknowledged_again(
    consumer: BulkConsumer,
) -> None:
    consumer._committed_offset[PARTITION] = 8
    assert consumer.ack(_bulk(consumer, [5, 6, 7, 8, 9]))
    assert consumer._n_acked == 2
    assert consumer._new_offset(PARTITION) == 10


async def test_the_worker_buffers_a_bounded_number_of_bulks() -> None:
    """A bulk holds up to a whole partition fetch: faust's default buffer of 4,096 messages
    would be gigabytes of them while a backlog drains."""

    class _Worker:
        projection = type("P", (), {"name": "p"})()
        dead_letter = None

        async def handle(self, batch: object) -> None:
            return None

    settings = StreamSettings("127.0.0.1:1", f"g-{uuid.uuid4().hex[:8]}", ["t"], "t-dlq", 1)
    app = build_app(settings, _Worker())  # type: ignore[arg-type]
    (agent,) = app.agents.values()
    assert agent.channel.queue.maxsize == BUFFERED_BULKS
