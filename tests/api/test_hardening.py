"""Gateway hygiene: security headers, CORS allow-list, request timeouts, metrics, health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import pytest

from infra.bootstrap import bootstrap
from infra.config import Settings
from tests.conftest import Stack, _client, assert_error


@pytest.fixture
async def tuned(settings: Settings) -> AsyncIterator[Stack]:
    platform = bootstrap(
        msgspec.structs.replace(
            settings,
            request_timeout_seconds=0.5,
            min_position_timeout=5.0,
            cors_origins="https://app.example.com",
            trust_forwarded_proto=True,
        )
    )
    stop = asyncio.Event()
    # The read models open (chdb's start and migrations) before any request: a request's
    # 0.5 s must not include the projections' start-up on a busy machine.
    for projection in platform.projections().values():
        await platform.runner(projection).catch_up()
    runners = [
        asyncio.create_task(platform.runner(p).run(stop)) for p in platform.projections().values()
    ]
    try:
        async with _client(platform.command_app()) as command, _client(platform.read_app()) as read:
            yield Stack(platform, command, read)
    finally:
        stop.set()
        await asyncio.gather(*runners)
        await platform.aclose()


async def test_security_headers_everywhere(stack: Stack) -> None:
    tenant = await stack.new_account()
    for response in (
        await stack.read.get("/v1/data/s/a", headers=tenant.auth),
        await stack.command.get("/health"),
        await stack.command.get("/v1/nope"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        assert "strict-transport-security" not in response.headers  # plain HTTP here
    docs = await stack.read.get("/docs")
    assert docs.headers["content-type"].startswith("text/html")
    assert "script-src" in docs.headers["content-security-policy"]


async def test_hsts_behind_a_tls_proxy_and_cors_from_the_allow_list(tuned: Stack) -> None:
    forwarded = await tuned.read.get("/health", headers={"X-Forwarded-Proto": "https"})
    assert forwarded.headers["strict-transport-security"].startswith("max-age=")
    preflight = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    allowed = await tuned.read.options(
        "/v1/data/s/a", headers={"Origin": "https://app.example.com", **preflight}
    )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    denied = await tuned.read.options(
        "/v1/data/s/a", headers={"Origin": "https://evil.example", **preflight}
    )
    assert denied.headers.get("access-control-allow-origin") != "https://evil.example"
    assert "access-control-allow-origin" not in (await tuned.read.get("/health")).headers


async def test_a_request_that_takes_too_long_is_408(tuned: Stack) -> None:
    tenant = await tuned.new_account()
    slow = await tuned.read.get("/v1/data/s/a", params={"min_position": 10**9}, headers=tenant.auth)
    error = assert_error(slow, 408, "REQUEST_TIMEOUT")
    assert "0.5s" in error["message"]


async def test_metrics_and_detailed_health(stack: Stack) -> None:
    tenant = await stack.new_account()
    await stack.read.get("/v1/data/s/a", headers=tenant.auth)
    await stack.read.get("/v1/data/s/a", headers={"Authorization": "Bearer sk_live_nope"})
    scraped = (await stack.read.get("/metrics")).text
    route = 'route="/v1/data/{source}/{record_id}",service="read API"'
    assert f'strata_http_requests_total{{method="GET",{route},status="404"}}' in scraped
    assert 'strata_auth_failures_total{service="read API"}' in scraped
    assert f'strata_http_request_duration_seconds_bucket{{le="0.005",{route}}}' in scraped
    assert 'strata_projection_position{projection="lookups"}' in scraped
    assert "strata_projection_lag_events" in scraped
    detailed = await stack.read.get("/health/detailed")
    assert detailed.status_code == 200, detailed.text
    body = detailed.json()
    assert body["status"] == "ok"
    assert {"event_store", "read_models"} <= set(body["dependencies"])
    assert all(d["status"] == "ok" and d["latency_ms"] >= 0 for d in body["dependencies"].values())
