"""Builds a Litestar app with the gateway around it. Both APIs are built here, the same way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler

from infra.gateway.auth import (
    Authenticator,
    Prepare,
    authorization_guard,
    provide_meta,
    provide_principal,
)
from infra.gateway.context import RequestContextMiddleware
from infra.gateway.errors import EXCEPTION_HANDLERS
from infra.gateway.health import Check, health, jwks, readiness
from infra.gateway.metering import Meter
from infra.gateway.ratelimit import RateLimit

VERSION = "0.1.0"


def _constant(value: Any) -> Provide:
    async def provide() -> Any:
        return value

    return Provide(provide, use_cache=True)


def build_app(
    *,
    name: str,
    description: str,
    routes: Sequence[ControllerRouterHandler],
    authenticate: Authenticator,
    services: dict[str, Any],
    checks: dict[str, Check],
    max_body_bytes: int,
    prepare: Prepare | None = None,
    meter: Meter | None = None,
    rate_limit: RateLimit | None = None,
    cors_origins: Sequence[str] = (),
) -> Litestar:
    dependencies = {key: _constant(value) for key, value in services.items()}
    dependencies["checks"] = _constant(checks)
    dependencies["principal"] = Provide(provide_principal)
    dependencies["meta"] = Provide(provide_meta)
    return Litestar(
        route_handlers=[
            # Every API route sits behind the guard; health and the docs are public.
            Router(
                "/",
                route_handlers=list(routes),
                guards=[authorization_guard(authenticate, prepare, rate_limit)],
            ),
            health,
            readiness,
            jwks,
        ],
        dependencies=dependencies,
        middleware=[
            DefineMiddleware(
                RequestContextMiddleware, service=name, meter=meter, rate_limit=rate_limit
            )
        ],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        request_max_body_size=max_body_bytes,
        cors_config=CORSConfig(allow_origins=list(cors_origins)) if cors_origins else None,
        openapi_config=OpenAPIConfig(
            title=f"Strata {name}",
            version=VERSION,
            description=description,
            path="/docs",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(
                        type="http", scheme="bearer", description="An API key (sk_live_...)"
                    ),
                }
            ),
            security=[{"bearer": []}],
        ),
        debug=False,
        logging_config=None,
    )
