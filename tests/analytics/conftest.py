"""Fixtures of the analytics tests: a store on a private chdb path, and event builders."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from infra.adapters.clickhouse import ClickHouseAnalyticsStore, Target
from infra.adapters.clickhouse.schema import MIGRATIONS
from projections import analytics
from schemas.events import ProjectedEvent

ACCOUNT = "11111111-1111-1111-1111-111111111111"
OTHER = "22222222-2222-2222-2222-222222222222"
T0 = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
EVIL = "x'); DROP TABLE records_g1; --"
DAY = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
async def store(chdb_path: str) -> AsyncIterator[ClickHouseAnalyticsStore]:
    """The analytics store on this test's own chdb path (one path per process at a time:
    it is closed, releasing the engine, before the next test opens another)."""
    analytics = ClickHouseAnalyticsStore(Target.of(None, chdb_path), pointer_ttl=0.0)
    try:
        yield analytics
    finally:
        analytics.close()


class Events:
    """Builds a plausible event log: positions increase, record streams keep versions."""

    def __init__(self, start: datetime = T0) -> None:
        self.position = itertools.count(1)
        self.versions: dict[tuple[str, str, str], int] = {}
        self.clock = start
        self.log: list[ProjectedEvent] = []

    def _event(
        self, type_: str, stream: uuid.UUID, version: int, payload: dict[str, Any]
    ) -> ProjectedEvent:
        self.clock += timedelta(minutes=7)
        event = ProjectedEvent(
            position=next(self.position),
            stream_id=stream,
            version=version,
            type=type_,
            timestamp=self.clock,
            payload=payload,
        )
        self.log.append(event)
        return event

    def put(
        self, source: str, key: str, data: dict[str, Any], account: str = ACCOUNT
    ) -> ProjectedEvent:
        ident = (account, source, key)
        version = self.versions.get(ident, 0) + 1
        self.versions[ident] = version
        kind = "Record.Created" if version == 1 else "Record.Updated"
        stream = uuid.uuid5(uuid.NAMESPACE_URL, "/".join(ident))
        payload = {"account_id": account, "source": source, "key": key, "data": data}
        return self._event(kind, stream, version, payload)

    def delete(self, source: str, key: str, account: str = ACCOUNT) -> ProjectedEvent:
        ident = (account, source, key)
        version = self.versions[ident] + 1
        self.versions[ident] = version
        stream = uuid.uuid5(uuid.NAMESPACE_URL, "/".join(ident))
        payload = {"account_id": account, "source": source, "key": key}
        return self._event("Record.Deleted", stream, version, payload)

    def usage(
        self, hour: datetime, calls: dict[str, int], account: str = ACCOUNT
    ) -> ProjectedEvent:
        payload = {"account_id": account, "hour": hour.isoformat(), "calls": calls}
        return self._event("UsageReport.Recorded", uuid.uuid4(), 1, payload)


@pytest.fixture
def events() -> Events:
    return Events()


async def seed(store: ClickHouseAnalyticsStore) -> Events:
    """Known records (the query tests' expectations are written against them)."""
    events = Events(start=DAY)
    rows: list[tuple[str, dict[str, Any]]] = [
        ("o-1", {"status": "paid", "total": 10, "country": "DE", "customer": {"tier": "gold"}}),
        ("o-2", {"status": "paid", "total": 20.5, "country": "FR", "day": "2026-02-01"}),
        ("o-3", {"status": "open", "total": "7", "country": "DE", "flag": True}),
        ("o-4", {"status": "void", "total": 5, "country": None, "flag": False}),
        ("o-5", {"status": EVIL, "total": 1}),
        ("o-6", {"status": "paid", "total": 1000, "country": "DE"}),
    ]
    for i, (key, data) in enumerate(rows):
        events.clock = DAY + timedelta(days=i % 3) - timedelta(minutes=7)
        events.put("orders", key, data)
    events.delete("orders", "o-6")
    events.put("clicks", "c-1", {"status": "paid", "total": 99, "country": "DE"})
    events.put("orders", "o-1", {"status": "paid", "total": 3}, account=OTHER)
    writer = store.writer(await store.active_generation())
    await writer.apply(analytics.changes(events.log), 0, len(events.log))
    return events


def migrated_until(client: Any, db: str, applied: int) -> None:
    """A deployment of an older version: the first `applied` migrations run and recorded,
    generation 1 created and active (upgrade tests open the store over it)."""
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    for migration in MIGRATIONS[:applied]:
        generation = 1 if migration.per_generation else 0
        for statement in migration.statements:
            client.command(statement.format(db=db, g=generation))
        client.insert(
            f"{db}.schema_migrations",
            [[migration.version, generation, migration.description]],
            column_names=["version", "generation", "description"],
        )
    client.insert(
        f"{db}.generations",
        [["analytics", 1, "created"], ["analytics", 1, "activated"]],
        column_names=["model", "generation", "event"],
    )
