"""An event as projections and subscribers see it, whichever transport delivered it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec


class ProjectedEvent(msgspec.Struct, frozen=True):
    position: int
    """Global position in the event store (notification id)."""
    stream_id: UUID
    version: int
    type: str
    """'Aggregate.Event', e.g. 'Record.Created'."""
    timestamp: datetime
    payload: dict[str, Any]
    metadata: dict[str, Any] = {}
