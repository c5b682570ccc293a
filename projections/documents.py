"""A projection that keeps a document read model (Redis, or SQLite when embedded)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from projections.changes import AddMember, Delete, Positioned, Put, RemoveMember
from projections.memory import Documents
from projections.ports import DocumentStore, DocumentWriter
from schemas.events import ProjectedEvent

Rules = Callable[[Iterable[ProjectedEvent]], list[Positioned]]

# Repairs are written outside every feed's slot, so no checkpoint moves (position 0).
REPAIR_SLOT = -1


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
            await self.commit(self.rules(events), partition, events[-1].position)

    def changes(self, event: ProjectedEvent) -> list[Positioned]:
        """The changes one event asks for (pure; raising means the event is poison)."""
        return self.rules([event])

    async def commit(self, changes: Sequence[Positioned], slot: int, position: int) -> None:
        """Apply changes and move the slot's checkpoint to `position`, atomically."""
        writer = await self.writer()
        await writer.apply(changes, slot, position)

    async def repair(self, stream: Sequence[ProjectedEvent]) -> int:
        """Rewrite every document and membership a stream's events touch, from the stream's
        whole history: how a dead-lettered event is re-driven once its cause is fixed.
        Returns how many writes it made. Checkpoints are not moved."""
        changes = self.rules(stream)
        final = Documents()
        final.apply_now(changes)
        docs: dict[str, None] = {}
        members: dict[tuple[str, str], None] = {}
        for item in changes:
            change = item.change
            if isinstance(change, AddMember | RemoveMember):
                members[(change.set, change.member)] = None
            else:
                docs[change.key] = None
        repairs: list[Positioned] = []
        for key in docs:
            doc = final.docs.get(key)
            repairs.append(Positioned(1, Put(key, doc) if doc is not None else Delete(key)))
        for set_key, member in members:
            present = member in final.sets.get(set_key, [])
            change = AddMember(set_key, member) if present else RemoveMember(set_key, member)
            repairs.append(Positioned(1, change))
        writer = await self.writer()
        await writer.apply(repairs, REPAIR_SLOT, 0)
        return len(repairs)

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
