"""Appends commit in position order: a reader tailing the log while several processes
append never passes over a position that commits later (it would skip that event for good).

The append is one statement, a function that takes the events table's lock before its
positions are drawn; without that lock (as in eventsourcing's own function) this fails."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from commands.ports import CommandContext
from domain.access import OPERATOR
from domain.usage import UsageReport
from infra.bootstrap import bootstrap
from infra.config import from_env
from tests.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.integration

WRITERS = 4
APPENDS = 400
EVENTS_PER_APPEND = 3


def test_a_tailing_reader_sees_every_event_appended_concurrently(pg_schema: Any) -> None:
    platform = bootstrap(
        from_env(
            {},
            mode="distributed",
            postgres_dsn=pg_schema.dsn,
            postgres_schema=pg_schema.schema,
            postgres_pool_size=WRITERS + 1,
            admin_token=ADMIN_TOKEN,
        )
    )
    log = platform.log
    ctx = CommandContext(principal=OPERATOR, correlation_id="test")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0).isoformat()
    writing = threading.Event()
    seen: list[int] = []

    def write() -> None:
        for _ in range(APPENDS):
            reports = [
                UsageReport(account_id=str(uuid.uuid4()), hour=hour, calls={"read": 1})
                for _ in range(EVENTS_PER_APPEND)
            ]
            log.append(reports, ctx, lambda commit: commit)

    def tail() -> None:
        after = 0
        while writing.is_set() or log.head() > after:
            for event in log.read(after, 500):
                seen.append(event.position)
                after = event.position

    try:
        writing.set()
        writers = [threading.Thread(target=write) for _ in range(WRITERS)]
        reader = threading.Thread(target=tail)
        for thread in [*writers, reader]:
            thread.start()
        for thread in writers:
            thread.join()
        writing.clear()
        reader.join()
        everything = [event.position for event in log.read(0, 100_000)]
        assert len(everything) == WRITERS * APPENDS * EVENTS_PER_APPEND
        assert sorted(set(everything) - set(seen)) == [], "the tailing reader skipped these"
        assert seen == everything  # in order, each once
    finally:
        platform.log.close()
