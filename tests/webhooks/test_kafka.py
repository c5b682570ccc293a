"""Webhooks in the distributed mode fed by Kafka: `strata relay`, `strata worker --projection
lookups` and `strata worker --projection webhooks` run as processes; the delivery agent takes
its endpoints from the credentials topic and POSTs to a receiver on loopback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from infra.bootstrap import bootstrap
from infra.config import Settings
from projections import lookups, webhooks
from projections.delivery import verify
from tests.conftest import Stack, Tenant, _client
from tests.pipeline.conftest import Processes
from tests.webhooks.conftest import FAST, Receiver

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def new_account(stack: Stack) -> Tenant:
    """Stack.new_account, waiting longer: the lookups worker is a process still starting."""
    created = await stack.command.post(
        "/v1/account/create",
        json={"name": "Acme", "email": "ops@acme.example"},
        headers=stack.admin,
    )
    assert created.status_code == 201, created.text
    account_id = created.json()["data"]["id"]
    issued = await stack.command.post(
        "/v1/apikey/generate",
        json={"account_id": account_id, "name": "test", "role": "owner"},
        headers=stack.admin,
    )
    assert issued.status_code == 201, issued.text
    body = issued.json()["data"]
    await stack.caught_up(body["position"], timeout=120)
    return Tenant(account_id, body["id"], body["secret"], body["position"])


async def test_the_faust_agent_delivers_in_order(
    kafka_settings: Settings, tmp_path: Path, receiver: Receiver
) -> None:
    settings = msgspec.structs.replace(kafka_settings, **FAST)
    platform = bootstrap(settings)
    processes = Processes(settings, tmp_path)
    try:
        await platform.ensure_topics(lookups.NAME)
        await platform.ensure_topics(webhooks.NAME)
        async with (
            _client(platform.command_app()) as command,
            _client(platform.read_app()) as read,
        ):
            processes.relay()
            processes.worker()
            processes.start("webhooks", "worker", "--projection", webhooks.NAME)
            stack = Stack(platform, command, read)
            tenant = await new_account(stack)
            flaky = {"left": 1}

            def first_fails(n: int, event: Any) -> int:
                if flaky["left"] > 0:
                    flaky["left"] -= 1
                    return 502
                return 200

            created = await command.post(
                "/v1/webhooks",
                json={
                    "url": receiver.behave("/k", first_fails),
                    "event_types": ["strata.record.*"],
                },
                headers=tenant.auth,
            )
            assert created.status_code == 201, created.text
            hook = created.json()["data"]
            for version in range(1, 4):
                for key in ("a", "b"):
                    response = await command.post(
                        "/v1/ingest",
                        json={"source": "orders", "id": key, "data": {"v": version}},
                        headers=tenant.auth,
                    )
                    assert response.status_code == 200, response.text
            try:
                await receiver.wait_for(lambda: len(receiver.delivered("/k")) == 6, timeout=90)
            except AssertionError:
                raise AssertionError(processes.tail()) from None
            for got in receiver.delivered("/k"):
                assert verify(
                    hook["secret"],
                    got.body,
                    got.headers["Webhook-Timestamp"],
                    got.headers["Webhook-Signature"],
                )
            for key in ("a", "b"):
                versions = [
                    int(r.json["streamversion"])
                    for r in receiver.delivered("/k")
                    if r.json["subject"] == f"records/orders/{key}"
                ]
                assert versions == [1, 2, 3], (key, versions)

            # The history is read from Redis by the read API, once the worker's slots passed.
            deadline = time.monotonic() + 30
            while True:
                listed = await read.get(
                    f"/v1/webhooks/{hook['id']}/deliveries", headers=tenant.auth
                )
                assert listed.status_code == 200, listed.text
                items = listed.json()["data"]["items"]
                if len(items) == 6 and all(i["status"] == "delivered" for i in items):
                    break
                assert time.monotonic() < deadline, items
                await asyncio.sleep(0.2)
            assert sorted(len(i["attempts"]) for i in items) == [1, 1, 1, 1, 1, 2]
    finally:
        processes.stop_all()
        await platform.aclose()
