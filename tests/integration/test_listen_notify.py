"""One LISTEN/NOTIFY source serves every runner of a process (a projector feeds several
projections): a commit wakes all of them, not one (the others used to sleep until their
timeout, so read-your-writes and revocations were ~1 s late behind `strata projector`)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from commands.ports import CommandContext
from domain.access import OPERATOR
from domain.usage import UsageReport
from infra.adapters.eventstore.listen import ListenNotifyEventSource
from infra.bootstrap import Platform, bootstrap
from infra.config import from_env
from tests.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.integration

WAITERS = 4
NEVER = 60.0  # the safety poll and the waits' timeout: only a notification ends them sooner


def _platform(postgres_dsn: str, schema: str, redis_url: str) -> Platform:
    return bootstrap(
        from_env(
            {},
            mode="distributed",
            postgres_dsn=postgres_dsn,
            postgres_schema=schema,
            postgres_pool_size=2,
            redis_url=redis_url,
            admin_token=ADMIN_TOKEN,
        )
    )


def _listener(platform: Platform) -> ListenNotifyEventSource:
    """A source of its own on the platform's channel, woken only by notifications."""
    assert isinstance(platform.source, ListenNotifyEventSource)
    dsn = platform.settings.postgres_dsn
    return ListenNotifyEventSource(platform.log, dsn, platform.source.channel, safety_poll=NEVER)


async def test_a_commit_wakes_every_waiter(pg_schema: Any, redis_url: str) -> None:
    platform = _platform(pg_schema.dsn, pg_schema.schema, redis_url)
    source = _listener(platform)
    try:
        await source.wait(0, NEVER)  # the first wait returns once LISTEN is in place

        async def commit() -> int:
            hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
            report = UsageReport(
                account_id=str(uuid.uuid4()), hour=hour.isoformat(), calls={"read": 1}
            )
            ctx = CommandContext(principal=OPERATOR, correlation_id="test")
            await asyncio.to_thread(platform.log.append, [report], ctx, lambda c: c)
            return await source.head()

        head = await commit()
        for _ in range(3):  # every time, not just the first
            waiters = [asyncio.create_task(source.wait(head, NEVER)) for _ in range(WAITERS)]
            await asyncio.sleep(0.2)  # all of them are waiting now
            assert not any(w.done() for w in waiters)
            head = await commit()
            _, pending = await asyncio.wait(waiters, timeout=NEVER / 2)
            assert not pending, f"{len(pending)} of {WAITERS} waiters were not woken"
    finally:
        await source.close()
        await platform.aclose()


async def test_a_commit_in_another_schema_wakes_no_one(
    postgres_dsn: str, redis_url: str, pg_schema: Any
) -> None:
    """NOTIFY channels are per database: each schema's recorder has its own channel, so
    another deployment's (or test's) commits do not wake this one's listeners."""
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    other_schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(other_schema)))

    mine = _platform(postgres_dsn, pg_schema.schema, redis_url)
    other = _platform(postgres_dsn, other_schema, redis_url)
    assert mine.source.channel != other.source.channel  # type: ignore[attr-defined]
    source = _listener(mine)
    try:
        await source.wait(0, NEVER)  # listening
        head = await source.head()
        waiter = asyncio.create_task(source.wait(head, NEVER))
        await asyncio.sleep(0.2)
        ctx = CommandContext(principal=OPERATOR, correlation_id="test")

        def report() -> UsageReport:
            hour = "2026-01-01T00:00:00+00:00"
            return UsageReport(account_id=str(uuid.uuid4()), hour=hour, calls={"read": 1})

        await asyncio.to_thread(other.log.append, [report()], ctx, lambda c: c)
        await asyncio.sleep(1.0)
        assert not waiter.done()  # the other schema's commit did not wake it
        await asyncio.to_thread(mine.log.append, [report()], ctx, lambda c: c)
        await asyncio.wait_for(waiter, NEVER / 2)  # its own does
    finally:
        await source.close()
        await mine.aclose()
        await other.aclose()
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(other_schema))
            )
