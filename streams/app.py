"""The Faust app of one projection: its own consumer group over the event topics.

`strata worker --projection NAME` runs it. Several workers of one projection share the
partitions (a consumer group) and survive rebalances: checkpoints live in the read model's
store, per partition, so whichever worker gets a partition resumes where it was applied.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust

from projections.ports import StoreUnavailableError
from streams.batching import ready_batches
from streams.bulk import use_bulk_consumer
from streams.eager import yield_every
from streams.lean import QuietMonitor, RawSchema
from streams.worker import Incoming, ProjectionWorker, dead_letter_headers

log = logging.getLogger(__name__)

MAX_BACKOFF = 10.0  # seconds between attempts while a read model is unreachable
BUFFERED_BULKS = 32
"""The agent's buffer, in bulks (streams/bulk.py): each holds at most one partition fetch
(faust's `consumer_max_fetch_size`, 1 MiB), so up to ~32 MiB wait in memory while a
backlog is drained, where faust's default of 4,096 would be up to 4 GiB. Under load a
batch of 1,000 records needs a few dozen bulks at most."""


@dataclass(frozen=True, slots=True)
class StreamSettings:
    bootstrap: str
    group: str
    topics: Sequence[str]
    dead_letter_topic: str
    replication: int


def build_app(settings: StreamSettings, worker: ProjectionWorker) -> faust.App:
    app = faust.App(
        settings.group,
        broker=f"kafka://{settings.bootstrap}",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        topic_replication_factor=settings.replication,
        stream_wait_empty=False,
        stream_buffer_maxsize=BUFFERED_BULKS,  # the agent's buffer (app.topic drops maxsize)
        monitor=QuietMonitor(),
    )
    use_bulk_consumer(app)
    yield_every()
    source = app.topic(*settings.topics, schema=RawSchema())
    dead_letters = app.topic(settings.dead_letter_topic, key_type=bytes, value_type=bytes)

    async def dead_letter(message: Incoming, error: BaseException) -> None:
        headers = dead_letter_headers(message, error, worker.projection.name)
        sent = await dead_letters.send(key=message.key, value=message.value, headers=headers)
        await sent  # acknowledged before the source offset can be committed

    worker.dead_letter = dead_letter

    @app.agent(source, concurrency=1)
    async def project(stream: faust.StreamT[Any]) -> None:
        await consume_batches(app, stream, worker.handle)

    return app


async def consume_batches(
    app: faust.App,
    stream: faust.StreamT[Any],
    handle: Callable[[list[Incoming]], Awaitable[None]],
) -> None:
    """Feed the stream to `handle` in batches as they are ready (streams/batching.py); a
    batch's events are acknowledged (so their offsets committed) only once `handle`
    returned for it.

    The stream's acks are manual (`noack`). faust's own batching, `take_events`, acks a batch
    in a `finally` that a stop runs while the agent is still inside `handle`: the batch's
    offsets were committed though its events were never applied, and the partition's next
    owner never saw them (measured: a worker stopped mid-batch committed all of it). A batch
    that did not finish here stays unacknowledged and is delivered again.

    A read model that cannot be reached is waited out. Any other handler error stops the
    worker (its supervisor restarts it from the committed offsets): faust would restart the
    agent on the messages after the failed batch, whose checkpoints would then make the
    failed ones be skipped for good.
    """
    # noack exists on faust-streaming's Stream; its type stubs lag behind.
    manual = stream.noack()  # type: ignore[attr-defined]
    async for events in ready_batches(manual.events(), manual.channel.queue, size=_records):
        try:
            await _until_the_store_answers(handle, _incoming(events))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.critical("stream handler failed; stopping the worker", exc_info=exc)
            await app.crash(exc)
            raise
        for event in events:
            await manual.ack(event)


async def _until_the_store_answers(
    handle: Callable[[list[Incoming]], Awaitable[None]], batch: list[Incoming]
) -> None:
    """A read model that cannot be reached is waited out, with backoff, for as long as it
    takes (not the batch's fault, and handlers are idempotent per batch)."""
    backoff = 0.1
    while True:
        try:
            await handle(batch)
        except StoreUnavailableError as exc:
            log.warning("read model unavailable (%s); retrying in %.1fs", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
        else:
            return


def _records(event: Any) -> int:
    value = event.value
    return len(value) if isinstance(value, list) else 1


def _incoming(events: list[Any]) -> list[Incoming]:
    """The messages of a batch: each bulk event's records (streams/bulk.py), or each
    event's message."""
    batch: list[Incoming] = []
    for event in events:
        value = event.value
        if isinstance(value, list):
            batch.extend(Incoming.of_record(record) for record in value)
        else:
            message = event.message
            headers = message.headers or ()
            if isinstance(headers, dict):
                headers = list(headers.items())
            batch.append(
                Incoming(
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=event.key,
                    value=value,
                    headers=headers,
                )
            )
    return batch
