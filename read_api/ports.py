"""What the read side needs besides the read models: the event store's history of a stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable
from uuid import UUID

from schemas.events import ProjectedEvent


@runtime_checkable
class EventHistory(Protocol):
    async def history(self, stream_id: UUID) -> Sequence[ProjectedEvent]:
        """Every event of a stream, oldest first, with global positions."""
        ...

    async def head(self) -> int:
        """Position of the newest event in the store."""
        ...
