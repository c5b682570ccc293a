"""The Kafka feed of analytics: `strata worker --projection analytics` owns a chdb path, is
killed with SIGKILL mid-way and restarted; once stopped, the path it wrote equals a rebuild
from the event store (counts and content hashes)."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from commands.ports import CommandContext
from domain.access import OPERATOR
from domain.usage import UsageReport
from infra.adapters.clickhouse import ClickHouseAnalyticsStore, Target
from infra.bootstrap import Platform, bootstrap
from infra.config import Settings, from_env
from projections import analytics
from projections.projection import Projection
from projections.runner import CatchUpRunner
from tests.conftest import ADMIN_TOKEN
from tests.pipeline.conftest import PARTITIONS, Processes, env_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def kafka_settings(
    pg_schema: Any,
    redis_url: str,
    redis_prefix: str,
    kafka_bootstrap: str,
    kafka_topic_prefix: str,
    tmp_path: Path,
) -> Settings:
    return from_env(
        {},
        mode="distributed",
        data_dir=str(tmp_path / "data"),
        clickhouse_path=str(tmp_path / "chdb"),
        postgres_dsn=pg_schema.dsn,
        postgres_schema=pg_schema.schema,
        postgres_pool_size=4,
        redis_url=redis_url,
        redis_prefix=redis_prefix.rstrip(":"),
        kafka_bootstrap=kafka_bootstrap,
        kafka_topic_prefix=kafka_topic_prefix,
        kafka_partitions=PARTITIONS,
        projection_feed="kafka",
        admin_token=ADMIN_TOKEN,
        watermark_interval=0.2,
    )


class Strata(Processes):
    """`strata ...` run by this interpreter (independent of the venv's console script)."""

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self.started += 1
        log = (self.logs / f"{name}-{self.started}.log").open("wb")
        command = [sys.executable, "-c", "from infra.cli import main; main()", *args]
        process = subprocess.Popen(
            command, env=env_of(self.settings), stdout=log, stderr=subprocess.STDOUT
        )
        self.running[name] = process
        return process


@pytest.fixture
def processes(kafka_settings: Settings, tmp_path: Path) -> Iterator[Processes]:
    procs = Strata(kafka_settings, tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()


def start_worker(processes: Processes) -> None:
    processes.start("worker", "worker", "--projection", analytics.NAME)


def stop_worker(processes: Processes) -> None:
    worker = processes.running.pop("worker")
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=60)


async def write(platform: Platform, processes: Processes) -> None:
    """Accounts, record batches (with deletes) and usage reports; the worker is SIGKILLed
    twice along the way and restarted."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    transport = httpx.ASGITransport(app=platform.command_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        created = await api.post(
            "/v1/account/create", json={"name": "A", "email": "a@a.example"}, headers=admin
        )
        account = created.json()["data"]["id"]
        issued = await api.post(
            "/v1/apikey/generate",
            json={"account_id": account, "name": "w", "role": "owner"},
            headers=admin,
        )
        auth = {"Authorization": f"Bearer {issued.json()['data']['secret']}"}
        rng = random.Random(5)
        for batch in range(24):
            records = [
                {"id": f"r{rng.randrange(120)}", "data": {"b": batch, "v": rng.random()}}
                for _ in range(40)
            ]
            body = {"source": "events", "records": records}
            written = await api.post("/v1/ingest/batch", json=body, headers=auth)
            assert written.status_code == 200, written.text
            if batch % 4 == 3:
                await api.delete(f"/v1/data/events/{records[0]['id']}", headers=auth)
                hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
                report = UsageReport(account_id=account, hour=hour.isoformat(), calls={"read": 3})
                ctx = CommandContext(principal=OPERATOR, correlation_id="test")
                await asyncio.to_thread(platform.log.append, [report], ctx, lambda c: c)
            if batch in (8, 16):
                await asyncio.sleep(0.5)
                processes.kill("worker")
                start_worker(processes)


async def settled(platform: Platform, timeout: float = 90.0) -> None:
    """The worker's consumer group is within a few (watermark) messages of the end of every
    partition of the events topic: the relay keeps adding watermarks while it runs."""
    deadline = time.monotonic() + timeout
    while True:
        lag = await platform.consumer_lag(analytics.NAME)
        events = [p for p in lag if p.topic == platform.topics.events]
        if events and all(p.lag <= 10 for p in events):
            await asyncio.sleep(1.0)
            return
        assert time.monotonic() < deadline, lag
        await asyncio.sleep(0.5)


async def test_the_worker_writes_what_a_rebuild_writes(
    kafka_settings: Settings, processes: Processes
) -> None:
    platform = bootstrap(kafka_settings)
    try:
        await platform.ensure_topics(analytics.NAME)
        processes.relay()
        start_worker(processes)
        await write(platform, processes)
        head = await asyncio.to_thread(platform.log.head)
        for _ in range(5):  # until the stopped worker's checkpoints reach the head
            await settled(platform)
            stop_worker(processes)
            store = ClickHouseAnalyticsStore(Target.of(None, str(kafka_settings.clickhouse_path)))
            checkpoints = await store.checkpoints()
            if min(checkpoints.get(slot, 0) for slot in range(PARTITIONS)) >= head:
                break
            store.close()
            start_worker(processes)
        else:
            raise AssertionError(f"checkpoints {checkpoints} never reached {head}")
        try:
            projection = Projection(analytics.NAME, store, analytics.changes)
            live = await (await projection.writer()).dump()
            target = await projection.rebuild_into()
            await CatchUpRunner(platform.source, target, name="rebuild").catch_up()
            rebuilt = await target.writer.dump()
        finally:
            store.close()
        assert live == rebuilt
        assert live["records"]["count"] > 0
        assert live["usage_totals"]["records_ingested"] == 24 * 40
        assert live["usage_totals"]["api_calls.read"] == 6 * 3
    finally:
        await platform.aclose()
