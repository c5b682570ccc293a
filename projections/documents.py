"""A projection that keeps a document read model (Redis, or SQLite when embedded)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from projections.changes import Positioned
from projections.ports import DocumentStore, DocumentWriter
from schemas.events import ProjectedEvent

Rules = Callable[[Iterable[ProjectedEvent]], list[Positioned]]


class DocumentProjection:
    """Feeds events through pure rules into the store's active generation."""

    def __init__(self, name: str, store: DocumentStore, rules: Rules) -> None:
        self.name = name
        self.store = store
        self.rules = rules
        self._writer: DocumentWriter | None = None

    async def writer(self) -> DocumentWriter:
        """The active generation's writer; follows a swap made by a rebuild elsewhere."""
        generation = await self.store.active_generation()
        if self._writer is None or self._writer.generation != generation:
            self._writer = self.store.writer(generation)
        return self._writer

    async def checkpoint(self, partition: int = 0) -> int:
        writer = await self.writer()
        return (await writer.checkpoints()).get(partition, 0)

    async def apply(self, events: Sequence[ProjectedEvent], partition: int = 0) -> None:
        if events:
            writer = await self.writer()
            await writer.apply(self.rules(events), partition, events[-1].position)

    async def rewind(self, position: int, partition: int = 0) -> None:
        """Re-apply events after `position` on the live read model. Safe because every rule
        sets state from its event alone: re-applying a suffix of the log converges."""
        writer = await self.writer()
        await writer.rewind(partition, position)

    async def rebuild_into(self) -> RebuildTarget:
        return RebuildTarget(self, await self.store.new_generation())


class RebuildTarget:
    """A fresh generation being filled by a replay; `swap` makes it the live one."""

    def __init__(self, projection: DocumentProjection, writer: DocumentWriter) -> None:
        self.projection = projection
        self.writer = writer

    async def checkpoint(self, partition: int = 0) -> int:
        return (await self.writer.checkpoints()).get(partition, 0)

    async def apply(self, events: Sequence[ProjectedEvent], partition: int = 0) -> None:
        if events:
            await self.writer.apply(self.projection.rules(events), partition, events[-1].position)

    async def swap(self) -> int:
        """Activate the rebuilt generation; returns the generation it replaced."""
        store = self.projection.store
        previous = await store.active_generation()
        await store.activate(self.writer.generation)
        return previous

    async def discard(self) -> None:
        await self.projection.store.drop(self.writer.generation)
