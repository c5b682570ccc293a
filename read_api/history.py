"""Audit: a stream's events as history, and the state a stream had at a version or time.

Past state is computed by running the stream's prefix through the same projection rules that
build the live read model, so 'as of now' and the live read always agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from projections import lookups
from projections.memory import Documents
from read_api.consistency import InvalidQueryError
from schemas.events import ProjectedEvent
from schemas.responses import History, HistoryEntry

AsOf = int | datetime


def parse_as_of(value: str | None) -> AsOf | None:
    """A positive version number, or an ISO-8601 time (UTC when no offset is given)."""
    if value is None or value == "":
        return None
    if value.isdigit():
        version = int(value)
        if version < 1:
            raise InvalidQueryError("as_of version must be 1 or more")
        return version
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidQueryError("as_of must be a version number or an ISO-8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def prefix(events: Sequence[ProjectedEvent], as_of: AsOf) -> list[ProjectedEvent]:
    if isinstance(as_of, int):
        return [e for e in events if e.version <= as_of]
    return [e for e in events if e.timestamp <= as_of]


def state_as_of(events: Sequence[ProjectedEvent], as_of: AsOf, key: str) -> dict[str, Any] | None:
    docs = Documents()
    docs.apply_now(lookups.changes(prefix(events, as_of)))
    return docs.docs.get(key)


def history(stream_id: UUID, events: Sequence[ProjectedEvent]) -> History:
    return History(
        stream_id=str(stream_id),
        events=[
            HistoryEntry(
                type=e.type,
                version=e.version,
                timestamp=e.timestamp.isoformat(),
                position=e.position,
                payload=_public(e.payload),
                metadata=e.metadata,
            )
            for e in events
        ],
    )


def _public(payload: dict[str, Any]) -> dict[str, Any]:
    """Histories never show key hashes: a hash of a high-entropy secret is still not for sharing."""
    return {k: v for k, v in payload.items() if k != "secret_hash"}
