"""A projector killed (SIGKILL) mid-stream and restarted loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from commands import accounts, ingest
from commands.ports import CommandContext
from domain.access import ALL_SCOPES, OPERATOR, Principal
from infra.bootstrap import Platform, bootstrap
from infra.config import Settings
from projections import lookups
from projections.memory import Documents
from schemas.commands import CreateAccount

STRATA = str(Path(sys.executable).with_name("strata"))


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "STRATA_MODE": settings.mode,
        "STRATA_DATA_DIR": settings.data_dir,
        "STRATA_POSTGRES_DSN": settings.postgres_dsn,
        "STRATA_POSTGRES_SCHEMA": settings.postgres_schema,
        "STRATA_REDIS_URL": settings.redis_url,
        "STRATA_REDIS_PREFIX": settings.redis_prefix,
        "STRATA_ELASTICSEARCH_URL": settings.elasticsearch_url,
        "STRATA_ELASTICSEARCH_INDEX_PREFIX": settings.elasticsearch_index_prefix,
        "STRATA_ADMIN_TOKEN": settings.admin_token or "",
        "STRATA_LOG_LEVEL": "warning",
        "STRATA_PROJECTION_FEED": settings.feed,
    }


def _start(settings: Settings) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [STRATA, "projector"], env=_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


@pytest.mark.slow
def test_projector_survives_kill_9(settings: Settings) -> None:
    platform = bootstrap(settings)
    log = platform.log
    operator = CommandContext(OPERATOR, "restart-test")
    account = accounts.create_account(CreateAccount(name="A", email="a@b.example"), log, operator)
    ctx = CommandContext(Principal(ALL_SCOPES, uuid.UUID(account.id), uuid.uuid4()), "restart-test")
    done = threading.Event()

    def write() -> None:
        for batch in range(60):
            entries = [
                ingest.Entry("orders", f"o-{(batch * 37 + i) % 400}", {"batch": batch, "i": i})
                for i in range(100)
            ]
            ingest.ingest(entries, log, ctx)
            if batch % 7 == 0:
                ingest.delete_record("orders", f"o-{batch % 400}", log, ctx)
            time.sleep(0.01)
        done.set()

    writer = threading.Thread(target=write)
    projector = _start(settings)
    writer.start()
    kills = 0
    try:
        while not done.is_set() and kills < 3:
            time.sleep(0.4)
            projector.send_signal(signal.SIGKILL)
            projector.wait()
            kills += 1
            projector = _start(settings)
        writer.join()
        head = log.head()
        asyncio.run(_caught_up_and_equal_to_a_rebuild(platform, head))
    finally:
        projector.send_signal(signal.SIGTERM)
        assert projector.wait(timeout=20) == 0, projector.stderr.read() if projector.stderr else ""
    assert kills >= 1


async def _caught_up_and_equal_to_a_rebuild(platform: Platform, head: int) -> None:
    try:
        deadline = time.monotonic() + 30
        while await platform.lookups.checkpoint() < head:
            assert time.monotonic() < deadline, f"projector did not reach {head}"
            await asyncio.sleep(0.05)
        live = await (await platform.lookups.writer()).dump()
        reference = Documents()
        reference.apply_now(lookups.changes(await platform.source.read(0, 10_000_000)))
        assert live == await reference.dump()
        assert await platform.lookups.checkpoint() == head
    finally:
        await platform.aclose()
