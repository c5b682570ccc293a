"""Shared fixtures: the platform in either mode, with in-process HTTP clients."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.bootstrap import Platform, bootstrap
from infra.config import Settings, from_env

pytest_plugins = ["tests.fixtures.engines"]

ADMIN_TOKEN = "st_admin_test-token"


def embedded_settings(data_dir: Path, **overrides: Any) -> Settings:
    return from_env(
        {}, mode="embedded", data_dir=str(data_dir), admin_token=ADMIN_TOKEN, **overrides
    )


@pytest.fixture(params=["embedded", pytest.param("distributed", marks=pytest.mark.integration)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The platform's settings in each mode: embedded (SQLite) and distributed (real servers)."""
    overrides: dict[str, Any] = {"min_position_timeout": 2.0}
    if request.param == "embedded":
        return embedded_settings(tmp_path / "data", **overrides)
    pg = request.getfixturevalue("pg_schema")
    prefix = request.getfixturevalue("redis_prefix")
    return from_env(
        {},
        mode="distributed",
        data_dir=str(tmp_path / "data"),  # the JWT key ring lives here
        postgres_dsn=pg.dsn,
        postgres_schema=pg.schema,
        postgres_pool_size=4,
        redis_url=request.getfixturevalue("redis_url"),
        redis_prefix=prefix.rstrip(":"),
        elasticsearch_url=request.getfixturevalue("elasticsearch_url"),
        elasticsearch_index_prefix=request.getfixturevalue("es_index_prefix"),
        admin_token=ADMIN_TOKEN,
        projection_feed="log",  # the runner below; Kafka-fed projections have their own tests
        **overrides,
    )


class Stack:
    """Both APIs of one platform, with a live projection runner behind them."""

    def __init__(
        self,
        platform: Platform,
        command: httpx.AsyncClient,
        read: httpx.AsyncClient,
        patience: float = 10.0,
    ):
        self.platform = platform
        self.command = command
        self.read = read
        self.admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        self.patience = patience
        """How long `caught_up` waits by default (a Kafka worker may still be starting)."""

    async def new_account(self, role: str = "owner", plan: str = "basic") -> Tenant:
        created = await self.command.post(
            "/v1/account/create",
            json={"name": "Acme", "email": "ops@acme.example", "plan": plan},
            headers=self.admin,
        )
        assert created.status_code == 201, created.text
        account_id = created.json()["data"]["id"]
        issued = await self.command.post(
            "/v1/apikey/generate",
            json={"account_id": account_id, "name": "test", "role": role},
            headers=self.admin,
        )
        assert issued.status_code == 201, issued.text
        body = issued.json()["data"]
        await self.caught_up(body["position"])
        return Tenant(account_id, body["id"], body["secret"], body["position"])

    async def caught_up(self, position: int, timeout: float | None = None) -> None:
        """Wait until the read side has applied `position` (so the key authenticates there)."""
        timeout = self.patience if timeout is None else timeout
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            checkpoints = await self.platform.documents.checkpoints()
            if min(checkpoints.get(s, 0) for s in self.platform.feed_slots) >= position:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"the read model did not reach {position} in {timeout}s")
            await asyncio.sleep(0.005)

    async def head(self) -> int:
        return await asyncio.to_thread(self.platform.log.head)


class Tenant:
    def __init__(self, account_id: str, key_id: str, secret: str, position: int) -> None:
        self.account_id = account_id
        self.key_id = key_id
        self.secret = secret
        self.position = position

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


@pytest.fixture
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    async with running_stack(bootstrap(settings)) as running:
        yield running


@contextlib.asynccontextmanager
async def running_stack(
    platform: Platform, around: contextlib.AbstractAsyncContextManager[Any] | None = None
) -> AsyncIterator[Stack]:
    """Both APIs of `platform` with its projection runners, inside `around` if given; the
    platform is closed after."""
    stop = asyncio.Event()
    runners = [
        asyncio.create_task(platform.runner(projection).run(stop))
        for projection in platform.projections().values()
    ]
    try:
        # In-process ASGI, in this event loop, so the projection runner above keeps running
        # while a test awaits a response (a test client on its own thread would starve it).
        async with (
            around or contextlib.nullcontext(),
            _client(platform.command_app()) as command,
            _client(platform.read_app()) as read,
        ):
            yield Stack(platform, command, read)
    finally:
        stop.set()
        await asyncio.gather(*runners)
        await platform.aclose()


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The error envelope, with the expected status and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "meta"}, body
    assert body["error"]["status"] == status
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    assert body["meta"]["request_id"] == response.headers["x-request-id"]
    return dict(body["error"])
