"""Liveness and readiness, the same on both apps."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency
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


@get("/readiness", opt={"public": True}, summary="Dependencies are reachable")
async def readiness(checks: NamedDependency[SkipValidation[dict[str, Check]]]) -> Response[Health]:
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), timeout=2.0)
            results[name] = "ok"
        except Exception as exc:
            results[name] = f"failing: {type(exc).__name__}"
    ready = all(value == "ok" for value in results.values())
    return Response(
        Health(status="ready" if ready else "not_ready", checks=results),
        status_code=200 if ready else 503,
    )
