"""Applies Kafka messages to a projection: the transport-specific half of a stream worker.

Messages are grouped by feed slot (topic partition). Within a slot they are in position
order; their changes are committed in one write together with the slot's checkpoint, so a
redelivered message changes nothing. Watermarks move the checkpoint without changes.

Poison messages (undecodable, or that the projection's rules cannot handle) go to the
dead-letter callback with the error, and the slot keeps flowing. A store that cannot be
reached is retried, with backoff, for as long as it takes: that is not the message's fault.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind

from projections.changes import Positioned
from projections.ports import StoreUnavailableError
from schemas import contract
from schemas.events import ProjectedEvent

log = logging.getLogger(__name__)
tracer = trace.get_tracer("strata.streams")
_UNTRACED = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)  # no provider installed


def _links(messages: Sequence[Incoming]) -> list[Link]:
    """Links to the traces of the requests that wrote the events of a batch (none when
    tracing is off: parsing every message's traceparent was ~10 % of the worker's CPU)."""
    if isinstance(trace.get_tracer_provider(), _UNTRACED):
        return []
    found: list[Link] = []
    for message in messages:
        value = next((v for k, v in message.headers if k == "ce_traceparent"), None)
        if value:
            context = propagate.extract({"traceparent": value.decode(errors="replace")})
            span_context = trace.get_current_span(context).get_span_context()
            if span_context.is_valid:
                found.append(Link(span_context))
    return found


@dataclass(frozen=True, slots=True)
class Incoming:
    """A consumed Kafka message, as the worker needs it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]]  # as the client gave them: a value may be None

    @classmethod
    def of_record(cls, record: Any) -> Incoming:
        """An aiokafka `ConsumerRecord`, as the worker needs it."""
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=record.headers or (),
        )


class Projection(Protocol):
    name: str

    def changes(self, event: ProjectedEvent) -> list[Positioned]: ...

    async def commit(self, changes: Sequence[Positioned], slot: int, position: int) -> None: ...


DeadLetter = Callable[[Incoming, BaseException], Awaitable[None]]


def dead_letter_headers(
    message: Incoming, error: BaseException, projection: str
) -> list[tuple[str, bytes]]:
    """A dead letter's headers: the original ones (a missing value as empty), then why and
    where it failed."""
    return [
        *((name, value if isinstance(value, bytes) else b"") for name, value in message.headers),
        ("strata-error", str(error)[:2000].encode()),
        ("strata-error-type", type(error).__name__.encode()),
        ("strata-source-topic", message.topic.encode()),
        ("strata-source-partition", str(message.partition).encode()),
        ("strata-source-offset", str(message.offset).encode()),
        ("strata-projection", projection.encode()),
        ("strata-failed-at", datetime.now(UTC).isoformat().encode()),
    ]


Accepts = Callable[[str, ProjectedEvent], bool]


@dataclass
class WorkerStats:
    applied: int = 0
    watermarks: int = 0
    dead_lettered: int = 0
    retries: int = 0
    by_slot: dict[int, int] = field(default_factory=dict)


class ProjectionWorker:
    def __init__(
        self,
        projection: Projection,
        *,
        slot_of: Callable[[str, int], int],
        accepts: Accepts,
        dead_letter: DeadLetter,
        max_attempts: int = 3,
        max_backoff: float = 10.0,
    ) -> None:
        self.projection = projection
        self.slot_of = slot_of
        self.accepts = accepts
        self.dead_letter = dead_letter
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.stats = WorkerStats()

    async def handle(self, messages: Sequence[Incoming]) -> None:
        with tracer.start_as_current_span(
            f"project {self.projection.name}",
            kind=SpanKind.CONSUMER,
            links=_links(messages),
            attributes={"messaging.batch.message_count": len(messages)},
        ):
            await self._handle(messages)

    async def _handle(self, messages: Sequence[Incoming]) -> None:
        by_slot: dict[int, list[Incoming]] = {}
        for message in messages:
            by_slot.setdefault(self.slot_of(message.topic, message.partition), []).append(message)
        for slot, group in by_slot.items():
            await self._handle_slot(slot, group)

    async def _handle_slot(self, slot: int, messages: list[Incoming]) -> None:
        changes: list[Positioned] = []
        applied: list[tuple[Incoming, list[Positioned]]] = []
        position = 0
        for message in messages:
            try:
                decoded = contract.decode(message.headers, message.value)
            except contract.ContractError as exc:
                await self._dead(message, exc)
                continue
            if isinstance(decoded, contract.Watermark):
                position = max(position, decoded.position)
                self.stats.watermarks += 1
                continue
            position = max(position, decoded.position)
            if not self.accepts(message.topic, decoded):
                continue
            try:
                own = self.projection.changes(decoded)
            except Exception as exc:
                await self._dead(message, exc)
                continue
            changes.extend(own)
            applied.append((message, own))
        if position == 0 and not changes:
            return
        await self._commit(slot, changes, position, applied)
        self.stats.applied += len(applied)
        self.stats.by_slot[slot] = position

    async def _commit(
        self,
        slot: int,
        changes: list[Positioned],
        position: int,
        applied: list[tuple[Incoming, list[Positioned]]],
    ) -> None:
        """Commit the batch; a store outage is waited out; a batch the store keeps refusing
        is split so the one event it cannot take goes to the dead letters."""
        failures = 0
        backoff = 0.1
        while True:
            try:
                await self.projection.commit(changes, slot, position)
            except StoreUnavailableError:
                name = self.projection.name
                log.warning("%s: store unavailable; retrying in %.1fs", name, backoff)
            except Exception:
                failures += 1
                log.exception("%s: commit failed (%d)", self.projection.name, failures)
                if failures >= self.max_attempts:
                    await self._commit_one_by_one(slot, position, applied)
                    return
            else:
                return
            self.stats.retries += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def _commit_one_by_one(
        self, slot: int, position: int, applied: list[tuple[Incoming, list[Positioned]]]
    ) -> None:
        for message, own in applied:
            for attempt in range(self.max_attempts):
                try:
                    await self.projection.commit(own, slot, own[-1].position if own else 0)
                    break
                except StoreUnavailableError:
                    raise
                except Exception as exc:
                    if attempt == self.max_attempts - 1:
                        await self._dead(message, exc)
        await self.projection.commit([], slot, position)

    async def _dead(self, message: Incoming, error: BaseException) -> None:
        log.error(
            "%s: dead-lettering %s[%d]@%d: %s",
            self.projection.name,
            message.topic,
            message.partition,
            message.offset,
            error,
        )
        await self.dead_letter(message, error)
        self.stats.dead_lettered += 1
