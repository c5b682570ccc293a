"""Command -> PostgreSQL -> relay -> Kafka -> worker -> Redis -> read API, and its faults."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from click.testing import CliRunner

from infra import provision
from infra.cli import main
from tests.conftest import Stack, assert_error
from tests.pipeline.conftest import Processes, caught_up, env_of, equals_rebuild, scrape

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def _ingest(stack: Stack, auth: dict[str, str], batches: int, size: int = 100) -> int:
    position = 0
    for batch in range(batches):
        records = [
            {"id": f"r{random.randrange(size * 3)}", "data": {"batch": batch, "i": i}}
            for i in range(size)
        ]
        response = await stack.command.post(
            "/v1/ingest/batch", json={"source": "orders", "records": records}, headers=auth
        )
        assert response.status_code == 200, response.text
        position = response.json()["data"]["position"]
        if batch % 5 == 4:
            await stack.command.delete(f"/v1/data/orders/{records[0]['id']}", headers=auth)
    return position


def _sample(text: str, name: str) -> float:
    """One sample's value from Prometheus text."""
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return float(line.rsplit(" ", 1)[1])


async def test_end_to_end_read_your_writes(kafka_stack: Stack, processes: Processes) -> None:
    stack = kafka_stack
    tenant = await stack.new_account()  # waits until the worker applied the key
    written = await stack.command.post(
        "/v1/ingest",
        json={"source": "orders", "id": "o-1", "data": {"total": 1}},
        headers=tenant.auth,
    )
    position = written.json()["data"]["position"]
    read = await stack.read.get(
        "/v1/data/orders/o-1", params={"min_position": position}, headers=tenant.auth
    )
    assert read.status_code == 200, read.text + processes.tail()
    assert read.json()["data"]["data"] == {"total": 1}
    revoked = await stack.command.delete(f"/v1/apikey/{tenant.key_id}", headers=tenant.auth)
    after = await stack.read.get(
        "/v1/data/orders/o-1",
        params={"min_position": revoked.json()["data"]["position"]},
        headers=tenant.auth,
    )
    assert_error(after, 401, "UNAUTHENTICATED")

    head = await caught_up(stack.platform)
    relayed = _sample(await scrape(processes.metrics_ports["relay"]), "strata_relay_position")
    assert relayed >= head  # relayed up to the head: the counters follow the relay's work
    assert (
        _sample(
            await scrape(processes.metrics_ports["relay"]), "strata_relay_events_published_total"
        )
        >= head
    )
    applied = _sample(
        await scrape(processes.metrics_ports["worker"]),
        'strata_worker_events_applied_total{projection="lookups"}',
    )
    assert applied >= 4  # the account, its key, the record, the revocation
    processes.kill("relay")  # no more watermarks: the group's committed offsets catch up
    env = env_of(stack.platform.settings)
    for _ in range(60):
        shown = await asyncio.to_thread(CliRunner().invoke, main, ["status", "--json"], env=env)
        assert shown.exit_code == 0, shown.output
        row = next(r for r in json.loads(shown.stdout) if r["projection"] == "lookups")
        assert row["lag"] == 0
        if row["kafka_lag"] == 0:
            break
        await asyncio.sleep(0.5)
    assert row["kafka_lag"] == 0, row


async def test_relay_and_worker_survive_kill_9(kafka_stack: Stack, processes: Processes) -> None:
    stack = kafka_stack
    tenant = await stack.new_account()
    writer = asyncio.create_task(_ingest(stack, tenant.auth, batches=40))
    for victim in ("relay", "worker", "relay", "worker"):
        await asyncio.sleep(0.5)
        processes.kill(victim)
        await asyncio.sleep(0.3)
        getattr(processes, victim)()
    await writer
    await caught_up(stack.platform)
    await equals_rebuild(stack.platform)


async def test_two_workers_share_partitions_and_survive_a_rebalance(
    kafka_stack: Stack, processes: Processes
) -> None:
    stack = kafka_stack
    tenant = await stack.new_account()
    processes.worker("second")
    writer = asyncio.create_task(_ingest(stack, tenant.auth, batches=30))
    await asyncio.sleep(2)
    processes.kill("worker")  # the survivor takes its partitions over
    await writer
    await caught_up(stack.platform)
    await equals_rebuild(stack.platform)
    lags = await stack.platform.consumer_lag("lookups")
    assert {lag.partition for lag in lags if lag.topic.endswith("events")} == {0, 1, 2}


async def test_the_batch_engine_takes_over_the_same_group(
    kafka_stack: Stack, processes: Processes
) -> None:
    """STRATA_WORKER_ENGINE=batch feeds the same ProjectionWorker whole Kafka fetches; it
    resumes the consumer group where the Faust worker left it (checkpoints skip what was
    applied). The two engines' group protocols differ (Faust has its own assignor), so the
    group must be empty when the engine changes: the Faust worker is stopped, not killed."""
    stack = kafka_stack
    tenant = await stack.new_account()
    await _ingest(stack, tenant.auth, batches=5)
    await asyncio.to_thread(processes.stop, "worker")
    processes.worker("batch", engine="batch")
    await _ingest(stack, tenant.auth, batches=10)
    await caught_up(stack.platform)
    await equals_rebuild(stack.platform)


async def test_broker_restart_under_load(kafka_stack: Stack, processes: Processes) -> None:
    stack = kafka_stack
    tenant = await stack.new_account()
    writer = asyncio.create_task(_ingest(stack, tenant.auth, batches=30))
    await asyncio.sleep(1)
    await asyncio.to_thread(provision.down, ["kafka"])
    await asyncio.sleep(2)
    await asyncio.to_thread(provision.up, ["kafka"])
    await writer
    await caught_up(stack.platform, timeout=120)
    await equals_rebuild(stack.platform)
