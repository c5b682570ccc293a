"""Webhook delivery fed by Kafka: `strata worker --projection webhooks`.

One Faust app (consumer group `<prefix>projection.webhooks`) with two agents and a task:

- the *directory* agent reads the credentials topic (one partition, every Webhook event in
  position order, unredacted) and applies them to the `webhooks` read model, moving the
  credentials slot's checkpoint (watermarks move it too);
- the *events* agent reads the events topic; before it plans the deliveries of an event at
  position P it waits until the directory has applied everything up to P (its credentials
  checkpoint), so an endpoint registered before P gets the event and one registered after
  does not. Deliveries are enqueued (idempotently: ids are derived from webhook and event)
  before the partition's slot checkpoint moves and before Kafka offsets are acknowledged;
- the *dispatcher* task sends what is due (projections.delivery.Dispatcher). Several
  workers share partitions and lanes (leases in the delivery store).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faust

from projections.changes import Positioned
from projections.delivery import DeliveryStore, Dispatcher, Planner
from projections.webhooks import EVENT_PREFIX, NAME, LogFedWebhooks
from schemas import contract
from schemas.events import ProjectedEvent
from streams.app import StreamSettings, consume_batches
from streams.worker import Incoming

log = logging.getLogger(__name__)

DIRECTORY_POLL = 0.02


@dataclass
class FeedStats:
    directory_applied: int = 0
    events_seen: int = 0
    enqueued: int = 0
    undecodable: int = 0


class KafkaWebhookFeed:
    """The transport-specific half: Kafka messages to directory changes and deliveries."""

    def __init__(
        self,
        projection: LogFedWebhooks,
        deliveries: DeliveryStore,
        planner: Planner,
        *,
        credentials_slot: int,
    ) -> None:
        self.projection = projection
        self.deliveries = deliveries
        self.planner = planner
        self.credentials_slot = credentials_slot
        self.stats = FeedStats()

    def _decode(self, message: Incoming) -> ProjectedEvent | contract.Watermark | None:
        try:
            return contract.decode(message.headers, message.value)
        except contract.ContractError:
            self.stats.undecodable += 1
            log.exception(
                "webhooks: skipping undecodable %s[%d]@%d",
                message.topic,
                message.partition,
                message.offset,
            )
            return None

    async def handle_credentials(self, messages: Sequence[Incoming]) -> None:
        """Webhook events from the credentials topic into the directory, in order."""
        events: list[ProjectedEvent] = []
        position = 0
        for message in messages:
            decoded = self._decode(message)
            if decoded is None:
                continue
            position = max(position, decoded.position)
            if isinstance(decoded, ProjectedEvent) and decoded.type.startswith(EVENT_PREFIX):
                events.append(decoded)
        if position == 0:
            return
        changes: list[Positioned] = self.projection.rules(events)
        await self.projection.commit(changes, self.credentials_slot, position)
        self.stats.directory_applied += len(events)

    async def handle_events(self, messages: Sequence[Incoming]) -> None:
        by_slot: dict[int, list[Incoming]] = {}
        for message in messages:
            by_slot.setdefault(message.partition, []).append(message)
        for slot, group in by_slot.items():
            await self._handle_slot(slot, group)

    async def _handle_slot(self, slot: int, messages: list[Incoming]) -> None:
        events: list[ProjectedEvent] = []
        position = 0
        for message in messages:
            decoded = self._decode(message)
            if decoded is None:
                continue
            position = max(position, decoded.position)
            if isinstance(decoded, ProjectedEvent):
                events.append(decoded)
        if position == 0:
            return
        if events:
            await self.directory_reached(events[-1].position)
            planned = await self.planner.plan(events, self.projection.directory)
            self.stats.events_seen += len(events)
            if planned:
                self.stats.enqueued += await self.deliveries.enqueue(planned)
        await self.projection.commit([], slot, position)

    async def directory_reached(self, position: int) -> None:
        """Wait until the directory has applied every Webhook event up to `position`."""
        started = time.monotonic()
        warned = started
        while True:
            checkpoints = await self.projection.checkpoints()
            if checkpoints.get(self.credentials_slot, 0) >= position:
                return
            now = time.monotonic()
            if now - warned > 30:
                warned = now
                log.warning(
                    "webhooks: waiting %.0fs for the directory to reach %d (is the credentials "
                    "topic being consumed?)",
                    now - started,
                    position,
                )
            await asyncio.sleep(DIRECTORY_POLL)


def build_app(
    settings: StreamSettings,
    *,
    events_topic: str,
    credentials_topic: str,
    feed: KafkaWebhookFeed,
    dispatcher: Dispatcher,
) -> faust.App:
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
    )
    credentials = app.topic(credentials_topic, key_type=bytes, value_type=bytes)
    events = app.topic(events_topic, key_type=bytes, value_type=bytes)

    @app.agent(credentials, concurrency=1, name=f"{NAME}-directory")
    async def directory(stream: faust.StreamT[Any]) -> None:
        await consume_batches(app, stream, feed.handle_credentials)

    @app.agent(events, concurrency=1, name=f"{NAME}-events")
    async def enqueue(stream: faust.StreamT[Any]) -> None:
        await consume_batches(app, stream, feed.handle_events)

    @app.task  # type: ignore[untyped-decorator]
    async def dispatch() -> None:
        # Runs until Faust stops the worker (cancellation); attempts in flight are retried
        # by whichever worker claims their lanes once the leases end.
        await dispatcher.run(asyncio.Event())

    return app
