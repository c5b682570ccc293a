"""The read API keeps API keys (and failed logins) in process while it hears their change
notices (ADR 6): a revoked key is still refused once its revocation is applied, a failure
in another process is still counted, and nothing is trusted while the notices are not heard."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from domain.billing import DEFAULT_CATALOG
from infra.adapters.documents.linkcache import LinkCache
from infra.adapters.documents.redis import RedisDocumentStore
from infra.adapters.notices import RedisNotices
from infra.adapters.ratelimit import MemoryLimiter, RedisFailureBook
from infra.bootstrap import Platform, bootstrap
from infra.config import Settings
from infra.gateway.ratelimit import Policy, RateLimit
from tests.conftest import Stack, _client, assert_error, running_stack

pytestmark = pytest.mark.integration
distributed = pytest.mark.parametrize("settings", ["distributed"], indirect=True)


async def _until(check: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Wait (bounded: a failure, not a timing) until `check()` holds."""
    for _ in range(1000):
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


def _notices(platform: Platform) -> RedisNotices:
    assert platform.notices is not None
    return platform.notices


def _cache(platform: Platform) -> LinkCache:
    assert isinstance(platform.documents, RedisDocumentStore)
    assert platform.documents.cache is not None
    return platform.documents.cache


@contextlib.asynccontextmanager
async def _listening(platform: Platform) -> AsyncIterator[None]:
    async with platform.listening(platform.read_app()):
        await _until(lambda: _notices(platform).live, "the notices are live")
        yield


@pytest.fixture
async def listening(settings: Settings) -> AsyncIterator[Stack]:
    """Both APIs, a projection runner, and the read API's notices heard (its lifespan)."""
    platform = bootstrap(settings)
    async with running_stack(platform, _listening(platform)) as running:
        yield running


async def _overwrite(platform: Platform, key_id: str, **fields: Any) -> None:
    """Change the key's document behind the projection's back (no notice)."""
    store = platform.documents
    assert isinstance(store, RedisDocumentStore)
    name = store.namespace(await store.active_generation()) + f"apikey:{key_id}"
    await store.client.hset(name, mapping={k: orjson.dumps(v) for k, v in fields.items()})


@distributed
async def test_a_cached_key_is_refused_once_its_revocation_is_applied(listening: Stack) -> None:
    stack = listening
    tenant = await stack.new_account()
    assert (await stack.read.get("/v1/data/s/a", headers=tenant.auth)).status_code == 404
    assert _cache(stack.platform).entries  # kept...
    await _overwrite(stack.platform, tenant.key_id, status="revoked")
    served = await stack.read.get("/v1/data/s/a", headers=tenant.auth)
    assert served.status_code == 404  # ...and used: the change above announced nothing
    await _overwrite(stack.platform, tenant.key_id, status="active")

    revoked = await stack.command.delete(f"/v1/apikey/{tenant.key_id}", headers=tenant.auth)
    position = revoked.json()["data"]["position"]
    # Read-your-writes: once the read model reached the revocation, the key is refused.
    refused = await stack.read.get(f"/v1/data/s/a?min_position={position}", headers=tenant.auth)
    assert_error(refused, 401, "UNAUTHENTICATED")
    assert_error(await stack.read.get("/v1/data/s/a", headers=tenant.auth), 401, "UNAUTHENTICATED")


@distributed
async def test_an_account_change_reaches_cached_keys(listening: Stack) -> None:
    stack = listening
    tenant = await stack.new_account()
    assert (await stack.read.get("/v1/data/s/a", headers=tenant.auth)).status_code == 404
    closed = await stack.command.delete(f"/v1/account/{tenant.account_id}", headers=stack.admin)
    assert closed.status_code == 200, closed.text
    position = closed.json()["data"]["position"]
    refused = await stack.read.get(f"/v1/data/s/a?min_position={position}", headers=tenant.auth)
    assert_error(refused, 401, "UNAUTHENTICATED")


@distributed
async def test_nothing_is_cached_or_trusted_while_the_notices_are_not_heard(
    settings: Settings,
) -> None:
    platform = bootstrap(settings)
    stop = asyncio.Event()
    runner = asyncio.create_task(platform.runner(platform.lookups).run(stop))
    try:
        async with (
            _client(platform.command_app()) as command,
            _client(platform.read_app()) as read,
        ):
            stack = Stack(platform, command, read)
            tenant = await stack.new_account()
            async with _listening(platform):
                assert (await read.get("/v1/data/s/a", headers=tenant.auth)).status_code == 404
                assert _cache(platform).entries
            # Not listening: what was kept is gone and every read goes to Redis.
            assert not _notices(platform).live
            assert not _cache(platform).entries
            assert (await read.get("/v1/data/s/a", headers=tenant.auth)).status_code == 404
            assert not _cache(platform).entries
            await _overwrite(platform, tenant.key_id, status="revoked")
            refused = await read.get("/v1/data/s/a", headers=tenant.auth)
            assert_error(refused, 401, "UNAUTHENTICATED")
    finally:
        stop.set()
        await runner
        await platform.aclose()


async def test_a_read_that_began_before_a_notice_is_not_kept() -> None:
    cache = LinkCache(("apikey:", "account:"), trusted=lambda: True)
    epoch = cache.epoch
    cache.heard(b"g1")  # a change was announced while the read was in flight
    cache.put(("ns", "apikey:k"), ({"status": "active"}, {}), epoch)
    assert cache.get(("ns", "apikey:k")) is None
    cache.put(("ns", "apikey:k"), ({"status": "active"}, {}), cache.epoch)
    assert cache.get(("ns", "apikey:k")) is not None
    untrusted = LinkCache(("apikey:",), trusted=lambda: False)
    untrusted.put(("ns", "apikey:k"), ({}, {}), untrusted.epoch)
    assert untrusted.get(("ns", "apikey:k")) is None


@contextlib.asynccontextmanager
async def _process(redis: Redis, prefix: str) -> AsyncIterator[RedisFailureBook]:
    """What one API process has: a failure book kept by its notices."""
    notices = RedisNotices(redis)
    book = RedisFailureBook(redis, prefix, live=lambda: notices.live)
    notices.add(book.channel, book)
    stop = asyncio.Event()
    task = asyncio.create_task(notices.run(stop))
    try:
        await _until(lambda: notices.live, "the notices are live")
        yield book
    finally:
        stop.set()
        await task


@pytest.mark.integration
async def test_a_failed_login_in_one_process_is_known_in_the_others(
    redis: Redis, redis_prefix: str
) -> None:
    prefix = redis_prefix.rstrip(":")
    async with _process(redis, prefix) as here, _process(redis, prefix) as there:
        assert here.clean("10.0.0.1")
        assert there.clean("10.0.0.1")
        await here.record("10.0.0.1", 60.0)
        assert not here.clean("10.0.0.1")  # at once in the process that saw it
        await _until(lambda: not there.clean("10.0.0.1"), "the other process heard it")
        assert there.clean("10.0.0.2")
    # A process that starts (or resubscribes) later loads the failures still held.
    async with _process(redis, prefix) as later:
        assert not later.clean("10.0.0.1")
        assert later.clean("10.0.0.2")


@pytest.mark.integration
async def test_a_book_not_heard_from_trusts_nobody(redis: Redis, redis_prefix: str) -> None:
    notices = RedisNotices(redis)
    book = RedisFailureBook(redis, redis_prefix.rstrip(":"), live=lambda: notices.live)
    notices.add(book.channel, book)
    assert not book.clean("10.0.0.3")  # never subscribed: the limiter is asked


@distributed
async def test_clients_in_good_standing_get_the_same_headers_and_failures_still_block(
    settings: Settings, listening: Stack
) -> None:
    stack = listening
    tenant = await stack.new_account(plan="enterprise")  # unlimited: only the failures bucket
    served = await stack.read.get("/v1/data/s/a", headers=tenant.auth)
    assert _notices(stack.platform).live
    limit = str(settings.rate_limit_failures_per_minute)
    assert served.headers["x-ratelimit-limit"] == limit
    assert served.headers["x-ratelimit-remaining"] == limit
    assert served.headers["x-ratelimit-reset"] == "0"
    bad = {"Authorization": "Bearer sk_live_" + "0" * 75}
    for _ in range(settings.rate_limit_failures_per_minute):
        assert_error(await stack.read.get("/v1/data/s/a", headers=bad), 401, "UNAUTHENTICATED")
    blocked = await stack.read.get("/v1/data/s/a", headers=tenant.auth)
    error = assert_error(blocked, 429, "RATE_LIMITED")
    assert "failed authentications" in error["message"]
    assert blocked.headers["x-ratelimit-remaining"] == "0"


class _Book:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, float]] = []

    def clean(self, ip: str) -> bool:
        return not any(held == ip for held, _ in self.recorded)

    async def record(self, ip: str, seconds: float) -> None:
        self.recorded.append((ip, seconds))


async def test_a_failure_is_held_until_its_bucket_is_full_again() -> None:
    clock = [0.0]
    book = _Book()
    limit = RateLimit(
        MemoryLimiter(lambda: clock[0]), Policy(DEFAULT_CATALOG, failures_per_minute=10), book
    )
    full = await limit.blocked_for_failures("10.0.0.4")  # clean: answered without the limiter
    assert full == await MemoryLimiter().peek(limit.policy.failures("10.0.0.4"))
    await limit.failed("10.0.0.4")
    await limit.failed("10.0.0.4")
    # 10 a minute: one token back every 6 s (+1 s of margin).
    assert book.recorded == [("10.0.0.4", 7.0), ("10.0.0.4", 13.0)]
    peeked = await limit.blocked_for_failures("10.0.0.4")
    assert peeked is not None
    assert peeked.remaining == 8
