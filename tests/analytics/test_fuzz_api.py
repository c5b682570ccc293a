"""The query language fuzzed through HTTP: every body is a 200 or a 400 naming the problem,
never a 500; afterwards the tables are intact and injection-shaped values still data."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.bootstrap import Platform, bootstrap
from tests.analytics.test_api import ORDERS, ingest, query
from tests.analytics.test_fuzz import INJECTIONS, valid_query, well_formed, wild
from tests.conftest import Stack, Tenant, embedded_settings

T = TypeVar("T")
EXAMPLES = int(os.environ.get("STRATA_FUZZ_API_EXAMPLES", "200"))
REFUSALS = {"INVALID_QUERY", "VALIDATION_FAILED"}


class Loop:
    """An event loop on a thread: the platform and its projection runners live there while
    hypothesis (synchronous) sends one request per example."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@dataclass
class Api:
    loop: Loop
    platform: Platform
    stack: Stack
    tenant: Tenant
    stop: asyncio.Event
    runners: list[asyncio.Task[None]]

    def post(self, body: Any) -> httpx.Response:
        """POST `body` as JSON (`None` too, as `null`)."""
        request = self.stack.read.post(
            "/v1/data/query",
            content=json.dumps(body),
            headers={**self.tenant.auth, "Content-Type": "application/json"},
        )
        return self.loop.run(request)


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    loop = Loop()

    async def up() -> Api:
        platform = bootstrap(embedded_settings(tmp_path / "data"))
        stop = asyncio.Event()
        runners = [
            asyncio.create_task(platform.runner(p).run(stop))
            for p in platform.projections().values()
        ]
        stack = Stack(platform, _client(platform.command_app()), _client(platform.read_app()))
        tenant = await stack.new_account(plan="enterprise")  # no rate limit in the way
        position = await ingest(stack, tenant, "orders", ORDERS)
        warm = await query(stack, tenant, {}, position)
        assert warm.status_code == 200, warm.text
        return Api(loop, platform, stack, tenant, stop, runners)

    async def down(api: Api) -> None:
        api.stop.set()
        await asyncio.gather(*api.runners)
        await api.stack.command.aclose()
        await api.stack.read.aclose()
        await api.platform.aclose()

    started = loop.run(up())
    try:
        yield started
    finally:
        loop.run(down(started))
        loop.close()


def test_every_body_is_a_200_or_a_400_naming_the_problem(api: Api) -> None:
    @settings(max_examples=EXAMPLES, deadline=None)
    @given(body=st.one_of(valid_query(), well_formed, wild))
    def check(body: Any) -> None:
        response = api.post(body)
        assert response.status_code in (200, 400), response.text
        if response.status_code == 400:
            error = response.json()["error"]
            assert error["code"] in REFUSALS, error
            assert error["message"].startswith("$"), error  # a JSON path into the query
        else:
            data = response.json()["data"]
            assert data["row_count"] == len(data["rows"])

    check()
    evil = ORDERS[3]["data"]["status"]
    same = {"filters": [{"field": "data.status", "op": "eq", "value": evil}]}
    assert api.post({**same, "group_by": ["data.status"]}).json()["data"]["rows"] == [
        {"data.status": evil, "count": 1}
    ]
    for other in INJECTIONS[1:]:
        body = {"filters": [{"field": "data.status", "op": "eq", "value": other}]}
        assert api.post(body).json()["data"]["rows"] == [{"count": 0}]
    assert api.post({}).json()["data"]["rows"] == [{"count": len(ORDERS)}]
