"""A projection: pure rules from events to store-specific changes, applied by generation.

The same class serves every kind of read model; what differs is the change type and the
store adapter (documents in Redis/SQLite, search, analytics).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

from projections.ports import GenerationStore, GenerationWriter
from schemas.events import ProjectedEvent

C = TypeVar("C")
Rules = Callable[[Iterable[ProjectedEvent]], list[C]]

# Repairs are written outside every feed's slot, so no checkpoint moves (position 0).
REPAIR_SLOT = -1


class Projection(Generic[C]):
    """Feeds events through pure rules into the store's active generation.

    `repairs` turns the changes of a stream's whole history into changes that rewrite
    what the stream touches (identity for stores whose writes are full, versioned states).
    `reads_credentials`: take ApiKey events from the internal credentials feed.
    """

    def __init__(
        self,
        name: str,
        store: GenerationStore[C],
        rules: Rules[C],
        *,
        repairs: Callable[[list[C]], list[C]] = lambda changes: changes,
        reads_credentials: bool = False,
    ) -> None:
        self.name = name
        self.store = store
        self.rules = rules
        self.repairs = repairs
        self.reads_credentials = reads_credentials
        self._writer: GenerationWriter[C] | None = None

    async def writer(self) -> GenerationWriter[C]:
        """The active generation's writer; follows a swap made by a rebuild elsewhere."""
        generation = await self.store.active_generation()
        if self._writer is None or self._writer.generation != generation:
            self._writer = self.store.writer(generation)
        return self._writer

    async def checkpoint(self, partition: int = 0) -> int:
        return (await self.checkpoints()).get(partition, 0)

    async def checkpoints(self) -> dict[int, int]:
        return await (await self.writer()).checkpoints()

    async def apply(self, events: Sequence[ProjectedEvent], partition: int = 0) -> None:
        if events:
            await self.commit(self.rules(events), partition, events[-1].position)

    def changes(self, event: ProjectedEvent) -> list[C]:
        """The changes one event asks for (pure; raising means the event is poison)."""
        return self.rules([event])

    async def commit(self, changes: Sequence[C], slot: int, position: int) -> None:
        """Apply changes and move the slot's checkpoint to `position`."""
        writer = await self.writer()
        await writer.apply(changes, slot, position)

    async def repair(self, stream: Sequence[ProjectedEvent]) -> int:
        """Rewrite what a stream's events touch from the stream's whole history: how a
        dead-lettered event is re-driven once its cause is fixed. Checkpoints stay."""
        repairs = self.repairs(self.rules(stream))
        writer = await self.writer()
        await writer.apply(repairs, REPAIR_SLOT, 0)
        return len(repairs)

    async def rebuild_into(self) -> RebuildTarget[C]:
        return RebuildTarget(self, await self.store.new_generation())


class RebuildTarget(Generic[C]):
    """A fresh generation being filled by a replay; `swap` makes it the live one."""

    def __init__(self, projection: Projection[C], writer: GenerationWriter[C]) -> None:
        self.projection = projection
        self.writer = writer

    async def checkpoint(self, partition: int = 0) -> int:
        return (await self.writer.checkpoints()).get(partition, 0)

    async def apply(self, events: Sequence[ProjectedEvent], partition: int = 0) -> None:
        if events:
            await self.writer.apply(self.projection.rules(events), partition, events[-1].position)

    async def seal(self, position: int, slots: Iterable[int]) -> None:
        """Mark every feed slot as complete up to `position`: the rebuild applied all events up
        to it from the log, so a live feed (e.g. Kafka partitions) may skip what it redelivers."""
        for slot in slots:
            await self.writer.apply([], slot, position)

    async def swap(self) -> int:
        """Activate the rebuilt generation; returns the generation it replaced."""
        store = self.projection.store
        previous = await store.active_generation()
        await store.activate(self.writer.generation)
        return previous

    async def discard(self) -> None:
        await self.projection.store.drop(self.writer.generation)
