"""Ingested records: one event stream per (account, source, key), so each record has a full history.

Ingest appends *blind*: an upsert is valid in every state of a record, so the next event
depends only on the stream's current version, never on its contents. That lets a batch of
records be written without loading them (see docs/adr/0002-one-stream-per-record.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from domain.errors import RecordDeletedError

RECORD_NAMESPACE = uuid5(NAMESPACE_URL, "https://strata.dev/ns/record")


def record_id(account_id: str, source: str, key: str) -> UUID:
    return uuid5(RECORD_NAMESPACE, f"{account_id}/{source}/{key}")


class Record(Aggregate):
    @dataclass(frozen=True)
    class Created(Aggregate.Created):
        account_id: str
        source: str
        key: str
        data: dict[str, Any]
        # Transformations: when the source's pipeline transformed the record, `data` is the
        # result, `raw` what was ingested and `transform` "<id>@<version>". Both are left out
        # of the event (absent, not null) otherwise.
        raw: dict[str, Any] | None = None
        transform: str | None = None

        def __post_init__(self) -> None:
            super().__post_init__()
            _leave_out_absent(self)

    @dataclass(frozen=True)
    class Updated(Aggregate.Event):
        account_id: str
        source: str
        key: str
        data: dict[str, Any]
        raw: dict[str, Any] | None = None  # as in Created
        transform: str | None = None

        def __post_init__(self) -> None:
            super().__post_init__()
            _leave_out_absent(self)

        def apply(self, aggregate: Any) -> None:
            aggregate.data = self.data
            aggregate.deleted = False

    @dataclass(frozen=True)
    class Deleted(Aggregate.Event):
        account_id: str
        source: str
        key: str

        def apply(self, aggregate: Any) -> None:
            aggregate.data = None
            aggregate.deleted = True

    def __init__(self, account_id: str, source: str, key: str, data: dict[str, Any]) -> None:
        self.account_id = account_id
        self.source = source
        self.key = key
        self.data: dict[str, Any] | None = data
        self.deleted = False

    @staticmethod
    def create_id(account_id: str, source: str, key: str) -> UUID:
        return record_id(account_id, source, key)

    @classmethod
    def upsert_event(
        cls,
        *,
        account_id: str,
        source: str,
        key: str,
        data: dict[str, Any],
        current_version: int | None,
        timestamp: datetime,
        stream_id: UUID | None = None,
        raw: dict[str, Any] | None = None,
        transform: str | None = None,
    ) -> Record.Created | Record.Updated:
        """The event that upserts a record whose stream is at `current_version` (None: new).

        `stream_id` may be passed when the caller already derived it (it must equal
        `record_id(account_id, source, key)`). `raw` and `transform`: see Created."""
        originator_id = stream_id or record_id(account_id, source, key)
        if current_version is None:
            return cls.Created(
                originator_topic=_RECORD_TOPIC,
                originator_id=originator_id,
                originator_version=cls.INITIAL_VERSION,
                timestamp=timestamp,
                account_id=account_id,
                source=source,
                key=key,
                data=data,
                raw=raw,
                transform=transform,
            )
        return cls.Updated(
            originator_id=originator_id,
            originator_version=current_version + 1,
            timestamp=timestamp,
            account_id=account_id,
            source=source,
            key=key,
            data=data,
            raw=raw,
            transform=transform,
        )

    def delete(self) -> None:
        if self.deleted:
            raise RecordDeletedError("no such record")
        self.trigger_event(
            self.Deleted, account_id=self.account_id, source=self.source, key=self.key
        )


def _leave_out_absent(event: Record.Created | Record.Updated) -> None:
    """Optional fields left at None are not stored with the event (its payload stays as it
    was before they existed); reading them then gives the class default, None."""
    for name in ("raw", "transform"):
        if vars(event).get(name, 0) is None:
            object.__delattr__(event, name)


_RECORD_TOPIC = get_topic(Record)
