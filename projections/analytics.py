"""The `analytics` projection: latest record states and usage rows for ClickHouse.

Pure: events in, rows out. Every row carries the position of the event that caused it, so a
store can skip what a slot already applied; and every row is a full, versioned fact (a
record's state at a version, one event's contribution to one usage metric), so applying a
row twice changes nothing (docs/adr/0009-analytics.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import msgspec

from schemas.events import ProjectedEvent

NAME = "analytics"

RECORDS_INGESTED = "records_ingested"
BYTES_INGESTED = "bytes_ingested"
API_CALLS = "api_calls."
"""Prefix of the per-route-class call metrics: `api_calls.ingest`, `api_calls.query`..."""


class RecordRow(msgspec.Struct, frozen=True, tag=True):
    """A record's state at `version` (a tombstone when `deleted`)."""

    position: int
    account_id: str
    source: str
    key: str
    version: int
    updated_at: datetime
    deleted: bool
    data: str
    """The record's data as JSON text, exactly as ingested ("{}" for a tombstone)."""


class UsageRow(msgspec.Struct, frozen=True, tag=True):
    """What the event at `position` adds to one usage metric of an account-hour."""

    position: int
    account_id: str
    hour: datetime
    metric: str
    value: int


AnalyticsChange = RecordRow | UsageRow


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour containing `moment` (naive times are taken as UTC)."""
    aware = moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _record_upserted(e: ProjectedEvent) -> list[AnalyticsChange]:
    p = e.payload
    data = msgspec.json.encode(p["data"])
    account = p["account_id"]
    hour = hour_of(e.timestamp)
    row = RecordRow(
        position=e.position,
        account_id=account,
        source=p["source"],
        key=p["key"],
        version=e.version,
        updated_at=e.timestamp,
        deleted=False,
        data=data.decode(),
    )
    return [
        row,
        UsageRow(e.position, account, hour, RECORDS_INGESTED, 1),
        UsageRow(e.position, account, hour, BYTES_INGESTED, len(data)),
    ]


def _record_deleted(e: ProjectedEvent) -> list[AnalyticsChange]:
    p = e.payload
    row = RecordRow(
        position=e.position,
        account_id=p["account_id"],
        source=p["source"],
        key=p["key"],
        version=e.version,
        updated_at=e.timestamp,
        deleted=True,
        data="{}",
    )
    return [row]


def _usage_recorded(e: ProjectedEvent) -> list[AnalyticsChange]:
    p = e.payload
    hour = hour_of(datetime.fromisoformat(p["hour"]))
    return [
        UsageRow(e.position, p["account_id"], hour, API_CALLS + route_class, int(calls))
        for route_class, calls in sorted(p["calls"].items())
        if calls
    ]


RULES = {
    "Record.Created": _record_upserted,
    "Record.Updated": _record_upserted,
    "Record.Deleted": _record_deleted,
    "UsageReport.Recorded": _usage_recorded,
}


def changes(events: Iterable[ProjectedEvent]) -> list[AnalyticsChange]:
    """Every row the events ask for, in order. Other event types change nothing."""
    out: list[AnalyticsChange] = []
    for event in events:
        rule = RULES.get(event.type)
        if rule is not None:
            out.extend(rule(event))
    return out
