"""The outbox relay: publishes committed events from the event store to Kafka.

No command ever writes to Kafka (no dual write). The relay follows the notification log
(LISTEN/NOTIFY with a catch-up read), publishes with an idempotent producer (acks=all),
keyed by aggregate id so each aggregate's events stay in order within a partition, and
records its position in PostgreSQL only after the broker acknowledged the batch. A crash
re-publishes at most the unacknowledged tail (consumers dedupe), and never skips an event.

With each batch (in the same record batches, after its events), and at least every
`watermark_interval` when idle, it writes a watermark to every partition: "all events up
to position N for this partition are before this". Stream processors use them to know how
far a projection is complete (read-your-writes).

Under a steady stream of commits, `linger` seconds pass between the starts of two reads
that found less than a full batch: the commits of that time go out as one batch (one read,
one produce, one position saved) instead of a few each (Kafka's producers linger the same
way). A full batch is followed at once; a commit after a quiet spell goes out at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from psycopg import sql

from infra import tracing
from infra.adapters.eventstore.recorders import DDL_LOCK
from infra.adapters.kafka.partitioner import partition_of
from infra.adapters.kafka.topics import Topics
from projections.ports import EventSource
from schemas import contract
from schemas.events import ProjectedEvent

log = logging.getLogger(__name__)
tracer = trace.get_tracer("strata.relay")

CREDENTIAL_TYPES = contract.CREDENTIAL_TYPE_PREFIXES  # ApiKey and Webhook events


@dataclass
class RelayStats:
    published: int = 0
    batches: int = 0
    position: int = 0


class RelayPositions:
    """The relay's last acknowledged position, in the event store's database."""

    def __init__(self, dsn: str, schema: str, name: str = "kafka") -> None:
        self.dsn = dsn
        self.name = name
        self.table = sql.Identifier(schema, "strata_relay_positions")
        self._conn: psycopg.AsyncConnection | None = None

    async def _connection(self) -> psycopg.AsyncConnection:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
            async with self._conn.transaction():  # concurrent DDL takes turns (DDL_LOCK)
                await self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (DDL_LOCK,))
                await self._conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, position bigint "
                        "NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())"
                    ).format(self.table)
                )
        return self._conn

    async def load(self) -> int:
        conn = await self._connection()
        cursor = await conn.execute(
            sql.SQL("SELECT position FROM {} WHERE name = %s").format(self.table), (self.name,)
        )
        row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def save(self, position: int) -> None:
        conn = await self._connection()
        await conn.execute(
            sql.SQL(
                "INSERT INTO {t} (name, position) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE "
                "SET position = EXCLUDED.position, updated_at = now() "
                "WHERE {t}.position < EXCLUDED.position"
            ).format(t=self.table),
            (self.name, position),
        )

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


ProducerFactory = Callable[[], AIOKafkaProducer]


class Relay:
    def __init__(
        self,
        source: EventSource,
        positions: RelayPositions,
        producer: ProducerFactory,
        topics: Topics,
        *,
        batch_size: int = 2000,
        watermark_interval: float = 1.0,
        linger: float = 0.0,
    ) -> None:
        self.source = source
        self.positions = positions
        self.new_producer = producer
        self.topics = topics
        self.batch_size = batch_size
        self.watermark_interval = watermark_interval
        self.linger = linger
        self.stats = RelayStats()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set. Broker or database failures are retried with
        backoff from the last acknowledged position."""
        backoff = 0.2
        while not stop.is_set():
            producer = self.new_producer()
            try:
                await producer.start()
                await self._follow(producer, stop)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("relay failed; restarting from its last acknowledged position")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 10.0)
            else:
                backoff = 0.2
            finally:
                with contextlib.suppress(Exception):
                    await producer.stop()

    async def _follow(self, producer: AIOKafkaProducer, stop: asyncio.Event) -> None:
        position = await self.positions.load()
        self.stats.position = position
        partitions = sorted(await producer.partitions_for(self.topics.events))
        await self._watermarks(producer, partitions, position)
        last_watermark = time.monotonic()
        while not stop.is_set():
            began = time.monotonic()
            events = await self.source.read(position, self.batch_size)
            if events:
                await self._publish(producer, events, partitions)
                position = events[-1].position
                await self.positions.save(position)
                self.stats.position = position
                self.stats.batches += 1
                self.stats.published += len(events)
                last_watermark = time.monotonic()
                rest = self.linger - (last_watermark - began)
                if len(events) < self.batch_size and rest > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), rest)
                continue
            if time.monotonic() - last_watermark >= self.watermark_interval:
                await self._watermarks(producer, partitions, position)
                last_watermark = time.monotonic()
            wait = asyncio.ensure_future(self.source.wait(position, self.watermark_interval))
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait([wait, stopped], return_when=asyncio.FIRST_COMPLETED)
            for task in (wait, stopped):
                task.cancel()

    async def _publish(
        self,
        producer: AIOKafkaProducer,
        events: Sequence[ProjectedEvent],
        partitions: Sequence[int],
    ) -> None:
        """Send the batch, then its watermarks, and wait until the broker has acknowledged
        every message. The span links to the traces of the requests that wrote the events."""
        with tracer.start_as_current_span(
            "relay publish",
            kind=SpanKind.PRODUCER,
            links=tracing.links(e.metadata.get("traceparent") for e in events),
            attributes={"messaging.batch.message_count": len(events)},
        ):
            batches = _Batches(producer)
            for event in events:
                public = contract.encode(event, redact=True)
                await batches.add(self.topics.events, public)
                if event.type.startswith(CREDENTIAL_TYPES):
                    private = contract.encode(event, redact=False)
                    await batches.add(self.topics.credentials, private)
            # In the same record batches, after the events: one produce, not two.
            await self._add_watermarks(batches, partitions, events[-1].position)
            await batches.sent()

    async def _watermarks(
        self, producer: AIOKafkaProducer, partitions: Sequence[int], position: int
    ) -> None:
        batches = _Batches(producer)
        await self._add_watermarks(batches, partitions, position)
        await batches.sent()

    async def _add_watermarks(
        self, batches: _Batches, partitions: Sequence[int], position: int
    ) -> None:
        mark = contract.watermark(position)
        for p in partitions:
            await batches.add(self.topics.events, mark, partition=p)
        await batches.add(self.topics.credentials, mark, partition=0)


class _Batches:
    """Messages gathered into one record batch per partition, each sent as a whole: a
    `send()` per message cost a coroutine, futures and an event-loop turn per event.
    Partitions are chosen as `send()` chooses them (the producer's partitioner over the
    key), so an aggregate's events stay on its partition; within a partition, batches go
    in the order filled."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.partitions: dict[str, list[int]] = {}
        self.open: dict[tuple[str, int], BatchBuilder] = {}
        self.acks: list[asyncio.Future[Any]] = []

    async def add(
        self, topic: str, message: contract.Message, *, partition: int | None = None
    ) -> None:
        if partition is None:
            if message.key is None:
                raise ValueError("an event's message has its aggregate id as key")
            if topic not in self.partitions:
                self.partitions[topic] = sorted(await self.producer.partitions_for(topic))
            every = self.partitions[topic]
            partition = partition_of(message.key, every)  # as send() would choose it
        builder = self.open.get((topic, partition))
        if builder is None:
            builder = self.open[(topic, partition)] = self.producer.create_batch()
        if self._append(builder, message):
            return
        await self._send(topic, partition)  # full: send it, start the next
        builder = self.open[(topic, partition)] = self.producer.create_batch()
        if not self._append(builder, message):  # larger than a batch may be
            del self.open[(topic, partition)]
            self.acks.append(
                await self.producer.send(
                    topic,
                    message.value,
                    key=message.key,
                    partition=partition,
                    headers=message.headers,
                )
            )

    async def sent(self) -> None:
        """Send what is gathered and wait until the broker acknowledged every message."""
        for topic, partition in list(self.open):
            await self._send(topic, partition)
        await asyncio.gather(*self.acks)

    @staticmethod
    def _append(builder: BatchBuilder, message: contract.Message) -> bool:
        appended = builder.append(
            timestamp=None, key=message.key, value=message.value, headers=message.headers
        )
        return appended is not None

    async def _send(self, topic: str, partition: int) -> None:
        builder = self.open.pop((topic, partition))
        if builder.record_count():
            self.acks.append(await self.producer.send_batch(builder, topic, partition=partition))
