"""The search projection fed by Kafka (`strata relay` + `strata worker --projection search`),
its worker killed with SIGKILL mid-stream: the index ends equal to a rebuild from the log."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from commands import accounts, ingest
from commands.ports import CommandContext
from domain.access import ALL_SCOPES, OPERATOR, Principal
from infra.bootstrap import bootstrap
from infra.config import Settings, from_env
from projections import search
from projections.runner import CatchUpRunner
from schemas.commands import CreateAccount
from tests.conftest import ADMIN_TOKEN
from tests.pipeline.conftest import Processes

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def kafka_search_settings(
    pg_schema: Any,
    redis_url: str,
    redis_prefix: str,
    kafka_bootstrap: str,
    kafka_topic_prefix: str,
    elasticsearch_url: str,
    es_index_prefix: str,
) -> Settings:
    return from_env(
        {},
        mode="distributed",
        postgres_dsn=pg_schema.dsn,
        postgres_schema=pg_schema.schema,
        postgres_pool_size=4,
        redis_url=redis_url,
        redis_prefix=redis_prefix.rstrip(":"),
        kafka_bootstrap=kafka_bootstrap,
        kafka_topic_prefix=kafka_topic_prefix,
        kafka_partitions=3,
        elasticsearch_url=elasticsearch_url,
        elasticsearch_index_prefix=es_index_prefix,
        projection_feed="kafka",
        admin_token=ADMIN_TOKEN,
        watermark_interval=0.2,
    )


async def test_kafka_fed_index_survives_kill_9(
    kafka_search_settings: Settings, tmp_path: Path
) -> None:
    platform = bootstrap(kafka_search_settings)
    processes = Processes(kafka_search_settings, tmp_path)
    try:
        await platform.ensure_topics(search.NAME)
        log = platform.log
        account = accounts.create_account(
            CreateAccount(name="A", email="a@b.example"), log, CommandContext(OPERATOR, "t")
        )
        ctx = CommandContext(Principal(ALL_SCOPES, uuid.UUID(account.id), uuid.uuid4()), "t")
        done = threading.Event()

        def write() -> None:
            for batch in range(50):
                entries = [
                    ingest.Entry("orders", f"o-{(batch * 7 + i) % 90}", {"b": batch, "t": "x y"})
                    for i in range(20)
                ]
                ingest.ingest(entries, log, ctx)
                if batch % 5 == 0:
                    ingest.delete_record("orders", f"o-{(batch * 7) % 90}", log, ctx)
                time.sleep(0.1)
            done.set()

        processes.relay()
        processes.start("search", "worker", "--projection", search.NAME)

        async def beyond(position: int) -> None:
            deadline = time.monotonic() + 60
            while await platform.watermark(search.NAME) <= position:
                assert time.monotonic() < deadline, processes.tail()
                await asyncio.sleep(0.05)

        await beyond(0)  # the worker is up and consuming
        started = await asyncio.to_thread(log.head)
        writer = threading.Thread(target=write)
        writer.start()
        await beyond(started)
        assert not done.is_set()
        processes.kill("search")  # mid-stream: what it had not committed is redelivered
        processes.start("search", "worker", "--projection", search.NAME)
        await asyncio.to_thread(writer.join)
        head = await asyncio.to_thread(log.head)
        deadline = time.monotonic() + 90
        while await platform.watermark(search.NAME) < head:
            assert time.monotonic() < deadline, processes.tail()
            await asyncio.sleep(0.2)
        live = await (await platform.search.writer()).dump()

        target = await platform.search.rebuild_into()
        await CatchUpRunner(platform.source, target, name="rebuild").catch_up()
        assert await target.writer.dump() == live
        assert len(live["docs"]) > 50
        await target.discard()
    finally:
        processes.stop_all()
        await platform.aclose()
