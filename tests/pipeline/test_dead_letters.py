"""Poison messages go to the dead-letter topic; the partition keeps flowing; re-drive repairs."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner, Result

from infra.cli import main
from projections import lookups
from projections.changes import Delete, Positioned
from schemas import contract
from tests.conftest import Stack
from tests.pipeline.conftest import Processes, caught_up, env_of, equals_rebuild

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def _dlq(stack: Stack, *args: str) -> Result:
    """The `strata dlq` CLI (in a thread: it runs its own event loop)."""
    env = env_of(stack.platform.settings)
    return await asyncio.to_thread(CliRunner().invoke, main, ["dlq", *args], env=env)


async def test_poison_goes_to_dead_letters_and_the_partition_flows_on(
    kafka_stack: Stack, processes: Processes
) -> None:
    stack = kafka_stack
    settings = stack.platform.settings
    tenant = await stack.new_account()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for partition in range(settings.kafka_partitions):  # one poison message in each
            await producer.send_and_wait(
                stack.platform.topics.events,
                b"\x00not json",
                key=b"poison",
                partition=partition,
                headers=[("ce_type", b"strata.record.created"), ("ce_id", b"poison")],
            )
    finally:
        await producer.stop()
    for i in range(50):
        response = await stack.command.post(
            "/v1/ingest", json={"source": "s", "id": f"r{i}", "data": {"i": i}}, headers=tenant.auth
        )
        assert response.status_code == 200
    await caught_up(stack.platform)  # every partition went past its poison message
    await equals_rebuild(stack.platform)

    listed = await _dlq(stack, "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert len(rows) == settings.kafka_partitions, processes.tail()
    assert {row["id"] for row in rows} == {"poison"}
    assert all(
        row["state"] == "pending" and row["error"].startswith("ContractError") for row in rows
    )

    stuck = await _dlq(stack, "replay")
    assert stuck.exit_code == 1
    assert "still cannot be decoded" in stuck.output


async def test_redrive_repairs_the_streams_of_dead_letters(
    kafka_stack: Stack, processes: Processes
) -> None:
    """A dead letter whose cause is gone: re-driving rewrites what its stream touches."""
    stack = kafka_stack
    platform = stack.platform
    tenant = await stack.new_account()
    written = await stack.command.post(
        "/v1/ingest", json={"source": "s", "id": "lost", "data": {"v": 1}}, headers=tenant.auth
    )
    await caught_up(platform)
    # Simulate an event the worker once dead-lettered: its effect is missing from the model.
    key = lookups.record_key(tenant.account_id, "s", "lost")
    stream = await platform.source.read(written.json()["data"]["position"] - 1, 1)
    event = stream[0]
    writer = await platform.lookups.writer()
    await writer.apply([Positioned(1, Delete(key))], -1, 0)
    assert await platform.documents.get(key) is None
    letter = contract.encode(event, redact=True)
    producer = AIOKafkaProducer(bootstrap_servers=platform.settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            platform.topics.dead_letters(lookups.NAME),
            letter.value,
            key=letter.key,
            headers=[
                *letter.headers,
                ("strata-error", b"simulated"),
                ("strata-error-type", b"KeyError"),
            ],
        )
    finally:
        await producer.stop()

    redriven = await _dlq(stack, "replay")
    assert redriven.exit_code == 0, redriven.output
    assert "re-drove 1 dead letter(s)" in redriven.output
    repaired = await platform.documents.get(key)
    assert repaired is not None
    assert repaired["data"] == {"v": 1}
    pending = json.loads((await _dlq(stack, "list", "--json")).stdout)
    assert pending == []
    everything = json.loads((await _dlq(stack, "list", "--json", "--all")).stdout)
    assert [row["state"] for row in everything] == ["redriven"]
    assert uuid.UUID(everything[0]["id"].split(":")[0]) == event.stream_id
