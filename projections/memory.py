"""Document read models held in memory: the reference semantics every store adapter matches.

Used to compute past states (`as_of`) from a stream's events, and as the oracle in tests.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any

from projections.changes import AddMember, Delete, Merge, Positioned, Put, RemoveMember
from projections.ports import linked_by_two_reads


class Documents:
    """One generation: documents, ordered sets and per-partition checkpoints."""

    def __init__(self, generation: int = 1) -> None:
        self.generation = generation
        self.docs: dict[str, dict[str, Any]] = {}
        self.sets: dict[str, list[str]] = {}
        self.positions: dict[int, int] = {}

    def apply_now(
        self, changes: Iterable[Positioned], partition: int = 0, position: int = 0
    ) -> None:
        floor = self.positions.get(partition, 0)
        for item in changes:
            if item.position > floor:
                self._apply_one(item)
        if position > floor:
            self.positions[partition] = position

    def _apply_one(self, item: Positioned) -> None:
        change = item.change
        if isinstance(change, Put):
            self.docs[change.key] = dict(change.fields)
        elif isinstance(change, Merge):
            self.docs.setdefault(change.key, {}).update(change.fields)
        elif isinstance(change, Delete):
            self.docs.pop(change.key, None)
        elif isinstance(change, AddMember):
            members = self.sets.setdefault(change.set, [])
            index = bisect.bisect_left(members, change.member)
            if index == len(members) or members[index] != change.member:
                members.insert(index, change.member)
        elif isinstance(change, RemoveMember):
            members = self.sets.get(change.set, [])
            index = bisect.bisect_left(members, change.member)
            if index < len(members) and members[index] == change.member:
                members.pop(index)
                if not members:
                    del self.sets[change.set]

    # DocumentWriter / DocumentReader
    async def apply(self, changes: Sequence[Positioned], partition: int, position: int) -> None:
        self.apply_now(changes, partition, position)

    async def dump(self) -> dict[str, dict[str, Any]]:
        return {
            "docs": {key: dict(doc) for key, doc in self.docs.items()},
            "sets": {key: list(members) for key, members in self.sets.items()},
        }

    async def get(self, key: str) -> dict[str, Any] | None:
        doc = self.docs.get(key)
        return dict(doc) if doc is not None else None

    async def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        return [await self.get(key) for key in keys]

    async def get_linked(
        self, key: str, field: str, prefix: str
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        return await linked_by_two_reads(self, key, field, prefix)

    async def members(self, set_key: str, *, after: str | None, limit: int) -> list[str]:
        members = self.sets.get(set_key, [])
        start = bisect.bisect_right(members, after) if after is not None else 0
        return members[start : start + limit]

    async def checkpoints(self) -> dict[int, int]:
        return dict(self.positions)


class MemoryDocumentStore:
    """A DocumentStore with generations, in memory."""

    def __init__(self) -> None:
        self.generations: dict[int, Documents] = {1: Documents(1)}
        self.active = 1

    async def active_generation(self) -> int:
        return self.active

    def writer(self, generation: int) -> Documents:
        return self.generations.setdefault(generation, Documents(generation))

    async def new_generation(self) -> Documents:
        generation = max(self.generations) + 1
        return self.writer(generation)

    async def activate(self, generation: int) -> None:
        self.active = generation

    async def drop(self, generation: int) -> None:
        if generation == self.active:
            raise ValueError("cannot drop the active generation")
        self.generations.pop(generation, None)

    async def get(self, key: str) -> dict[str, Any] | None:
        return await self.generations[self.active].get(key)

    async def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        return await self.generations[self.active].get_many(keys)

    async def get_linked(
        self, key: str, field: str, prefix: str
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        return await self.generations[self.active].get_linked(key, field, prefix)

    async def members(self, set_key: str, *, after: str | None, limit: int) -> list[str]:
        return await self.generations[self.active].members(set_key, after=after, limit=limit)

    async def checkpoints(self) -> dict[int, int]:
        return await self.generations[self.active].checkpoints()
