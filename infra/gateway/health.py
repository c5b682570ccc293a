"""Liveness, readiness and a detailed health report, the same on both apps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import SkipValidation

from schemas.responses import Health

Check = Callable[[], Awaitable[object]]


@get("/health", opt={"public": True}, summary="The process is up", include_in_schema=True)
async def health() -> Health:
    return Health(status="ok")


@get(
    "/.well-known/jwks.json",
    opt={"public": True},
    summary="Public keys that verify Strata's access tokens (JWKS)",
)
async def jwks(
    jwks: NamedDependency[SkipValidation[Callable[[], dict[str, Any]]]],
) -> dict[str, Any]:
    return jwks()


class DependencyHealth(msgspec.Struct, frozen=True):
    status: str
    latency_ms: float
    error: str | None = None


class DetailedHealth(msgspec.Struct, frozen=True):
    status: str
    dependencies: dict[str, DependencyHealth]


async def _probe(check: Check) -> DependencyHealth:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout=2.0)
    except Exception as exc:
        elapsed = round((time.perf_counter() - started) * 1000, 2)
        return DependencyHealth("failing", elapsed, type(exc).__name__)
    return DependencyHealth("ok", round((time.perf_counter() - started) * 1000, 2))


async def _probe_all(checks: dict[str, Check]) -> dict[str, DependencyHealth]:
    probes = await asyncio.gather(*(_probe(check) for check in checks.values()))
    return dict(zip(checks, probes, strict=True))


Checks = NamedDependency[SkipValidation[dict[str, Check]]]


@get(
    "/readiness",
    opt={"public": True},
    responses={503: ResponseSpec(Health, description="Not ready: a dependency is failing")},
    summary="Dependencies are reachable",
)
async def readiness(checks: Checks) -> Response[Health]:
    """Ready once every dependency answers (stores reachable, schemas migrated)."""
    results = await _probe_all(checks)
    ready = all(r.status == "ok" for r in results.values())
    summary = {
        name: r.status if r.error is None else f"failing: {r.error}" for name, r in results.items()
    }
    return Response(
        Health(status="ready" if ready else "not_ready", checks=summary),
        status_code=200 if ready else 503,
    )


@get(
    "/health/detailed",
    opt={"public": True},
    responses={503: ResponseSpec(DetailedHealth, description="Degraded: a dependency is failing")},
    summary="Each dependency's status and latency",
)
async def detailed_health(checks: Checks) -> Response[DetailedHealth]:
    results = await _probe_all(checks)
    ok = all(r.status == "ok" for r in results.values())
    return Response(
        DetailedHealth(status="ok" if ok else "degraded", dependencies=results),
        status_code=200 if ok else 503,
    )
