"""The event store adapter: the write side's EventStore, the read side's history, the log."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import EventStore as LibraryEventStore
from eventsourcing.persistence import IntegrityError, Notification, StoredEvent

from commands.ports import (
    Appendable,
    CommandContext,
    Commit,
    ConcurrencyError,
    IdempotencyRaceError,
    StoredResponse,
)
from domain.errors import NotFoundError
from infra.adapters.eventstore.codec import META_KEY, MetadataMapper, event_type
from infra.adapters.eventstore.recorders import KeptResponse, PostgresRecorder, SQLiteRecorder
from schemas.events import ProjectedEvent

A = TypeVar("A", bound=Aggregate)
R = TypeVar("R")

Recorder = PostgresRecorder | SQLiteRecorder
STATES_CACHED = 10_000


class EventLog:
    """One event store (SQLite or PostgreSQL), seen through Strata's ports."""

    def __init__(self, recorder: Recorder, mapper: MetadataMapper) -> None:
        self.recorder = recorder
        self.mapper = mapper
        self.repository: Repository[UUID] = Repository(
            event_store=LibraryEventStore(mapper=mapper, recorder=recorder)
        )
        self._listeners: list[Callable[[int], None]] = []
        self._lock = threading.Lock()
        self._states: OrderedDict[UUID, Aggregate] = OrderedDict()
        """load_at's states by version: API keys and accounts, read by every command."""

    def on_commit(self, listener: Callable[[int], None]) -> None:
        """Called (from the committing thread) with the newest position after each append."""
        with self._lock:
            self._listeners.append(listener)

    # --- commands.ports.EventStore ---------------------------------------------------------
    def load(self, cls: type[A], aggregate_id: UUID) -> A:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFoundError(f"no such {cls.__name__.lower()}") from None
        if not isinstance(aggregate, cls):
            raise NotFoundError(f"no such {cls.__name__.lower()}")
        return aggregate

    def versions(self, stream_ids: Sequence[UUID]) -> dict[UUID, int]:
        return self.recorder.versions(stream_ids) if stream_ids else {}

    def load_at(self, cls: type[A], aggregate_id: UUID, version: int | None) -> A:
        known = self.cached(cls, aggregate_id)
        if version is not None and known is not None and known.version == version:
            return known
        aggregate = self.load(cls, aggregate_id)
        with self._lock:
            self._states[aggregate_id] = aggregate
            self._states.move_to_end(aggregate_id)
            if len(self._states) > STATES_CACHED:
                self._states.popitem(last=False)
        return aggregate

    def cached(self, cls: type[A], aggregate_id: UUID) -> A | None:
        known = self._states.get(aggregate_id)
        return known if isinstance(known, cls) else None

    def head(self) -> int:
        return self.recorder.max_notification_id() or 0

    def append(
        self, items: Sequence[Appendable], ctx: CommandContext, result: Callable[[Commit], R]
    ) -> R:
        events: list[DomainEventProtocol[UUID]] = []
        for item in items:
            if isinstance(item, Aggregate):
                events.extend(item.collect_events())
            else:
                events.append(item)
        if not events:
            raise ValueError("append needs at least one event")
        metadata = ctx.metadata()
        stored = [self.mapper.to_stored_event(event, metadata) for event in events]
        claim = ctx.idempotency
        outcome: list[R] = []

        def on_recorded(positions: Sequence[int]) -> KeptResponse | None:
            # Inside the appending transaction: the response is kept with the events.
            assert claim is not None
            outcome[:] = [result(Commit(positions))]  # a retried transaction renders it again
            status, body = claim.render(outcome[0])
            return KeptResponse(claim.scope, claim.key, claim.fingerprint, status, body)

        try:
            if claim is None:
                positions = self.recorder.insert_events(stored)
            else:
                positions = self.recorder.insert_events(stored, on_recorded=on_recorded)
        except IntegrityError:
            if claim is not None:
                kept = self.recall(claim.scope, claim.key)
                if kept is not None:
                    raise IdempotencyRaceError(kept) from None
            raise ConcurrencyError("a stream was changed concurrently; retry") from None
        if not positions:
            raise AssertionError("the event store recorded no positions")
        newest = max(positions)
        for listener in list(self._listeners):
            listener(newest)
        return outcome[0] if outcome else result(Commit(positions))

    def recall(self, scope: str, key: str) -> StoredResponse | None:
        row = self.recorder.recall(scope, key)
        return None if row is None else StoredResponse(*row)

    def expire_idempotency(self, older_than_seconds: float) -> int:
        return self.recorder.expire_kept(older_than_seconds)

    # --- reading, as plain events ----------------------------------------------------------
    def project(self, position: int, stored: StoredEvent) -> ProjectedEvent:
        state = self.mapper.decode_state(stored)
        metadata = state.pop(META_KEY, {})
        timestamp = state.pop("timestamp")
        state.pop("originator_topic", None)
        stream_id = stored.originator_id
        return ProjectedEvent(
            position=position,
            stream_id=stream_id if isinstance(stream_id, UUID) else UUID(stream_id),
            version=stored.originator_version,
            type=event_type(stored.topic),
            timestamp=timestamp,
            payload=state,
            metadata=metadata,
        )

    def history(self, stream_id: UUID) -> list[ProjectedEvent]:
        return [self.project(e.position, e.stored) for e in self.recorder.history(stream_id)]

    def read(self, after: int, limit: int) -> list[ProjectedEvent]:
        notifications: Sequence[Notification] = self.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        return [self.project(n.id, n) for n in notifications]

    def close(self) -> None:
        self.recorder.datastore.close()


class PollingEventSource:
    """The log as an async EventSource. Woken at once by commits in this process (embedded
    mode), and polls for commits made by other processes."""

    def __init__(self, log: EventLog, poll_interval: float = 0.25) -> None:
        self.log = log
        self.poll_interval = poll_interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        log.on_commit(self._committed)

    def _committed(self, _position: int) -> None:
        loop, changed = self._loop, self._changed
        if loop is not None and changed is not None and not loop.is_closed():
            loop.call_soon_threadsafe(changed.set)

    async def read(self, after: int, limit: int) -> Sequence[ProjectedEvent]:
        return await asyncio.to_thread(self.log.read, after, limit)

    async def head(self) -> int:
        return await asyncio.to_thread(self.log.head)

    async def wait(self, after: int, timeout: float) -> None:
        if self._changed is None:
            self._loop = asyncio.get_running_loop()
            self._changed = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), min(timeout, self.poll_interval))
        self._changed.clear()
