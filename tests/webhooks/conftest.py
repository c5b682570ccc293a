"""Webhook fixtures: a real HTTP receiver on loopback, and the platform with its projection
runners *and* the delivery dispatcher running (both modes, through the `settings` fixture)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from aiohttp import web

from infra.bootstrap import bootstrap
from infra.config import Settings
from tests.conftest import Stack, _client
from tests.pipeline.conftest import kafka_settings  # noqa: F401 - a fixture of test_kafka

Behaviour = Callable[..., int | str]
"""Given how many times this path was hit before (0-based) and the request's JSON body,
answer a status, or "hang"."""


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float

    @property
    def json(self) -> Any:
        return msgspec.json.decode(self.body)


@dataclass
class Receiver:
    """An HTTP endpoint on 127.0.0.1 that can succeed, fail (5xx) or hang, per path."""

    port: int = 0
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def behave(self, path: str, behaviour: Behaviour) -> str:
        self.behaviours[path] = behaviour
        return self.url(path)

    def delivered(self, path: str) -> list[Received]:
        """Requests to `path` that were answered 2xx."""
        return [r for r in self.received if r.path == path and 200 <= r.status < 300]

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path
        count = self.hits.get(path, 0)
        self.hits[path] = count + 1
        body = await request.read()
        behaviour = self.behaviours.get(path, lambda *_: 200)
        answer = behaviour(count, msgspec.json.decode(body)) if body else behaviour(count, None)
        if answer == "hang":
            await asyncio.sleep(30)
            answer = 200
        assert isinstance(answer, int)
        self.received.append(Received(path, dict(request.headers), body, answer, time.monotonic()))
        return web.Response(status=answer, text="ok" if answer < 300 else "nope")

    async def wait_for(
        self, check: Callable[[], bool], timeout: float = 15.0, what: str = "deliveries"
    ) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: {self.received!r}"[:3000])
            await asyncio.sleep(0.02)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", recv.handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recv.port = int(runner.addresses[0][1])
    try:
        yield recv
    finally:
        await runner.cleanup()


FAST = {
    "webhook_allowlist": "127.0.0.1/32",
    "webhook_max_attempts": 3,
    "webhook_retry_base_seconds": 0.05,
    "webhook_retry_max_seconds": 0.2,
    "webhook_timeout_seconds": 0.5,
    "webhook_poll_seconds": 0.02,
}


def fast(settings: Settings, **overrides: Any) -> Settings:
    return msgspec.structs.replace(settings, **{**FAST, **overrides})


@pytest.fixture
async def hooks(settings: Settings) -> AsyncIterator[Stack]:
    """The platform (either mode) with every projection runner and the webhook dispatcher."""
    platform = bootstrap(fast(settings))
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(platform.runner(projection).run(stop))
        for projection in platform.projections().values()
    ]
    dispatcher = platform.webhook_dispatcher()
    tasks.append(asyncio.create_task(dispatcher.run(stop)))
    try:
        async with (
            _client(platform.command_app()) as command,
            _client(platform.read_app()) as read,
        ):
            stack = Stack(platform, command, read)
            stack.dispatcher = dispatcher  # type: ignore[attr-defined]
            yield stack
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await platform.aclose()
