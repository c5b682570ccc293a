"""A projection's stream worker on a plain Kafka consumer: whole fetches in, one commit out.

`strata worker --projection NAME` feeds a `ProjectionWorker` (streams/worker.py, the same code
whatever the transport) from the projection's consumer group. Each `getmany` batch goes to
`ProjectionWorker.handle` as it is (grouped by partition there, one store write per partition
with its checkpoint); the batch's offsets are committed only after `handle` returned, so a crash
re-delivers at most the batches not yet committed, and the store's per-slot checkpoints skip
what was already applied: at-least-once delivery, effects once. Per-partition order is Kafka's;
one task handles one batch at a time.

Why not Faust's agent (docs/adr/0007-kafka-pipeline.md): Faust hands every message through its
consumer thread, a `wait_first` of four tasks, an Event, a queue, the stream iterator and an ack
of its own, ~100 µs of CPU per message, more than decoding and applying it (docs/benchmarks.md,
Pipeline). This loop does per fetch what Faust does per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from streams.worker import Incoming, ProjectionWorker, dead_letter_headers

log = logging.getLogger(__name__)

MAX_RECORDS = 2000  # messages per batch at most (one store write per partition per batch)
FETCH_TIMEOUT_MS = 1000  # how long one getmany waits when nothing is buffered


class BatchWorker:
    """Runs a ProjectionWorker over a consumer group until stopped."""

    def __init__(
        self,
        worker: ProjectionWorker,
        *,
        bootstrap: str,
        group: str,
        topics: Sequence[str],
        dead_letter_topic: str,
        max_records: int = MAX_RECORDS,
    ) -> None:
        self.worker = worker
        self.bootstrap = bootstrap
        self.group = group
        self.topics = list(topics)
        self.dead_letter_topic = dead_letter_topic
        self.max_records = max_records
        self._producer: AIOKafkaProducer | None = None
        worker.dead_letter = self._dead_letter

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; a broken consumer is restarted, with backoff, from the
        group's committed offsets."""
        backoff = 0.2
        while not stop.is_set():
            consumer = AIOKafkaConsumer(
                *self.topics,
                bootstrap_servers=self.bootstrap,
                group_id=self.group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_partition_fetch_bytes=4 * 1024 * 1024,
            )
            self._producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True
            )
            try:
                await self._producer.start()
                await consumer.start()
                await self._consume(consumer, stop)
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "%s: consumer failed; restarting from the committed offsets", self.group
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                with contextlib.suppress(Exception):
                    await self._producer.stop()

    async def _consume(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                fetch = asyncio.ensure_future(
                    consumer.getmany(timeout_ms=FETCH_TIMEOUT_MS, max_records=self.max_records)
                )
                await asyncio.wait([fetch, stopping], return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    fetch.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await fetch
                    return
                batch = fetch.result()
                if not batch:
                    continue
                await self.worker.handle(_incoming(batch))
                await self._commit(consumer, batch)
        finally:
            stopping.cancel()

    async def _commit(
        self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[ConsumerRecord]]
    ) -> None:
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance took the partitions, or the broker is away: the next owner (or this
            # worker, later) gets them again from the last commit; the checkpoints skip them.
            log.warning(
                "%s: offsets not committed (%s); they will be re-delivered", self.group, exc
            )

    async def _dead_letter(self, message: Incoming, error: BaseException) -> None:
        assert self._producer is not None
        headers = dead_letter_headers(message, error, self.worker.projection.name)
        sent = await self._producer.send(
            self.dead_letter_topic, message.value, key=message.key, headers=headers
        )
        await sent  # acknowledged before the source offset can be committed


def _incoming(batch: dict[TopicPartition, list[ConsumerRecord]]) -> list[Incoming]:
    return [
        Incoming(
            topic=r.topic,
            partition=r.partition,
            offset=r.offset,
            key=r.key,
            value=r.value,
            headers=[(k, v if isinstance(v, bytes) else b"") for k, v in r.headers],
        )
        for records in batch.values()
        for r in records
    ]
