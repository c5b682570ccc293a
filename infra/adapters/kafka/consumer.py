"""A projection's stream worker on a plain Kafka consumer: whole fetches in, one commit out.

`strata worker --projection NAME` feeds a `ProjectionWorker` (streams/worker.py, the same code
whatever the transport) from the projection's consumer group. Each `getmany` batch goes to
`ProjectionWorker.handle` as it is (grouped by partition there, one store write per partition
with its checkpoint). Offsets are committed only once `handle` returned for them (every
second, when idle, when a rebalance takes partitions away, on stop), so a crash re-delivers
at most what was not committed, and the store's per-slot checkpoints skip what was already
applied: at-least-once delivery, effects once. Per-partition order is Kafka's; one task
handles one batch at a time.

Why not Faust's agent (docs/adr/0007-kafka-pipeline.md): Faust hands every message through its
consumer thread, a `wait_first` of four tasks, an Event, a queue, the stream iterator and an ack
of its own: ~4x the CPU of decoding and applying the message (docs/benchmarks.md, Pipeline).
This loop does per fetch what Faust does per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection, Sequence

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, KafkaError

from streams.worker import Incoming, ProjectionWorker, dead_letter_headers

log = logging.getLogger(__name__)

MAX_RECORDS = 2000  # messages per batch at most (one store write per partition per batch)
FETCH_TIMEOUT_MS = 1000  # how long one getmany waits when nothing is buffered
# The broker answers a fetch once it has FETCH_MIN_BYTES or after FETCH_MAX_WAIT_MS: under
# load, batches of tens of ms instead of a fetch (and a store write per partition) every few
# messages; like Faust's `take_events(within=50 ms)`, a bound on the latency it adds.
FETCH_MIN_BYTES = 256 * 1024
FETCH_MAX_WAIT_MS = 20
COMMIT_INTERVAL = 1.0  # seconds between offset commits (and on idle, revocation and stop)


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
        self._handled: dict[TopicPartition, int] = {}  # next offsets, handled, not committed
        self._committed_at = 0.0
        worker.dead_letter = self._dead_letter

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; a broken consumer is restarted, with backoff, from the
        group's committed offsets."""
        backoff = 0.2
        while not stop.is_set():
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=self.group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_partition_fetch_bytes=4 * 1024 * 1024,
                fetch_min_bytes=FETCH_MIN_BYTES,
                fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            )
            consumer.subscribe(self.topics, listener=_CommitOnRevoke(self, consumer))
            self._handled.clear()
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
                if batch:
                    await self.worker.handle(_incoming(batch))
                    for tp, records in batch.items():
                        if records:
                            self._handled[tp] = records[-1].offset + 1
                if not batch or time.monotonic() - self._committed_at >= COMMIT_INTERVAL:
                    await self.commit(consumer)
        finally:
            stopping.cancel()
            await self.commit(consumer)

    async def commit(
        self, consumer: AIOKafkaConsumer, only: Collection[TopicPartition] | None = None
    ) -> None:
        """Commit the offsets of the batches handled so far (of partitions `only`). Only what
        `handle` returned from is ever committed: a crash re-delivers the rest."""
        offsets = {tp: offset for tp, offset in self._handled.items() if only is None or tp in only}
        for tp in offsets:
            del self._handled[tp]
        if only is None:
            self._committed_at = time.monotonic()
        if not offsets:
            return
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


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits what was handled of the partitions a rebalance takes away, so their next owner
    does not get it again (it would skip it, by the checkpoints, but at a cost)."""

    def __init__(self, worker: BatchWorker, consumer: AIOKafkaConsumer) -> None:
        self.worker = worker
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        await self.worker.commit(self.consumer, only=set(revoked))

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        pass


def _incoming(batch: dict[TopicPartition, list[ConsumerRecord]]) -> list[Incoming]:
    return [Incoming.of_record(record) for records in batch.values() for record in records]
