"""Builds a Litestar app with the gateway around it. Both APIs are built here, the same way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    Schema,
    SecurityScheme,
)
from litestar.routes import HTTPRoute
from litestar.types import ControllerRouterHandler

from infra.gateway.auth import (
    PUBLIC,
    SCOPE,
    Authenticator,
    Prepare,
    authorization_guard,
    guard_hook,
    provide_meta,
    provide_principal,
)
from infra.gateway.context import RequestContextMiddleware
from infra.gateway.errors import EXCEPTION_HANDLERS
from infra.gateway.health import Check, detailed_health, health, jwks, readiness
from infra.gateway.metering import Meter
from infra.gateway.observability import metrics
from infra.gateway.ratelimit import RateLimit
from read_api.formats import MEDIA_TYPES, Format
from schemas.envelope import ErrorEnvelope

VERSION = "0.1.0"


def _constant(value: Any) -> Provide:
    async def provide() -> Any:
        return value

    return Provide(provide, use_cache=True)


@dataclass(frozen=True)
class Gateway:
    """What wraps every route of an app: authentication, limits, metering, hygiene."""

    authenticate: Authenticator
    max_body_bytes: int
    prepare: Prepare | None = None
    # What `prepare` reads from a request, documented on every guarded route (not declared
    # by each handler: Litestar would parse it again, ~20 us a request for nothing).
    prepared_parameters: tuple[Parameter, ...] = ()
    meter: Meter | None = None
    rate_limit: RateLimit | None = None
    timeout: float | None = None
    untimed: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    trust_forwarded_proto: bool = False

    def cors(self) -> CORSConfig | None:
        """An allow-list; a wildcard never goes with credentials."""
        if not self.cors_origins:
            return None
        return CORSConfig(
            allow_origins=list(self.cors_origins),
            allow_credentials="*" not in self.cors_origins,
            allow_headers=[
                "Authorization",
                "X-API-Key",
                "Content-Type",
                "Idempotency-Key",
                "X-Request-ID",
                "X-Correlation-ID",
                "X-Strata-Min-Position",
            ],
            expose_headers=[
                "X-Request-ID",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                "Retry-After",
                "X-Next-Cursor",
            ],
        )


ERROR_RESPONSES = {
    status: ResponseSpec(ErrorEnvelope, description=description, generate_examples=False)
    for status, description in {
        400: "Bad request: malformed JSON, invalid fields or parameters",
        401: "Missing or invalid credentials",
        403: "The credentials lack a scope this route needs",
        404: "No such resource (another tenant's resources are reported missing)",
        406: "No acceptable output format",
        408: "The request took too long",
        409: "Conflict with the current state, or a reused Idempotency-Key",
        413: "The request body is too large",
        422: "Understood but refused (e.g. a query limit was hit)",
        429: "Rate limited; see Retry-After",
        503: "A dependency is unavailable",
        504: "The read model did not reach min_position in time",
    }.items()
}


def _documented(
    routes: Sequence[ControllerRouterHandler], statuses: Sequence[int] | None = None
) -> list[ControllerRouterHandler]:
    """Every guarded route documents the error envelope for the statuses the gateway uses;
    public routes those the gateway answers before routing (per-IP limits, timeouts)."""
    errors = {s: ERROR_RESPONSES[s] for s in statuses} if statuses else ERROR_RESPONSES
    for handler in routes:
        if isinstance(handler, HTTPRouteHandler):
            handler.responses = {**errors, **(handler.responses or {})}
            # The scope a route needs is part of its contract: say it in the spec (OpenAPI
            # 3.1 lets any scheme list the roles it needs). Public routes name no scheme.
            scope = handler.opt.get(SCOPE)
            if scope is not None and not handler.opt.get(PUBLIC):
                handler.security = [{"bearer": [str(scope)]}]
    return list(routes)


PUBLIC_ERRORS = (408, 429, 503)


_FORMAT_SCHEMAS = {
    Format.NDJSON: Schema(type=OpenAPIType.STRING, description="One JSON object per row."),
    Format.CSV: Schema(type=OpenAPIType.STRING, description="A header line, then one per row."),
    Format.PARQUET: Schema(
        type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description="A Parquet file."
    ),
}


def _document_formats(app: Litestar) -> Litestar:
    """Routes with `opt={"formats": True}` answer 200 in every output format (`?format=`
    or Accept): add the other media types beside the JSON schema they declare."""
    spec = app.openapi_schema
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or spec.paths is None:
            continue
        for handler in route.route_handlers:
            item = spec.paths.get(route.path_format)
            if not handler.opt.get("formats") or item is None:
                continue
            for method in handler.http_methods:
                operation: Operation | None = getattr(item, method.lower(), None)
                ok = operation.responses.get("200") if operation and operation.responses else None
                if ok is not None and not isinstance(ok, Reference) and ok.content is not None:
                    for fmt, schema in _FORMAT_SCHEMAS.items():
                        ok.content[MEDIA_TYPES[fmt]] = OpenAPIMediaType(schema=schema)
    return app


def _document_parameters(app: Litestar, parameters: Sequence[Parameter]) -> Litestar:
    """Add `parameters` to every guarded operation of the app's OpenAPI document."""
    spec = app.openapi_schema
    if not parameters or spec.paths is None:
        return app
    for route in app.routes:
        item = spec.paths.get(route.path_format)
        if not isinstance(route, HTTPRoute) or item is None:
            continue
        for handler in route.route_handlers:
            if handler.opt.get(PUBLIC) or handler.opt.get(SCOPE) is None:
                continue
            for method in handler.http_methods:
                operation: Operation | None = getattr(item, method.lower(), None)
                if operation is not None:
                    operation.parameters = [*(operation.parameters or []), *parameters]
    return app


def _declare_framework_routes(app: Litestar) -> Litestar:
    """Litestar adds routes of its own: an OPTIONS answer (204 and `Allow`) beside every
    path, and the OpenAPI documents under `/docs`. They are public; say so, so that every
    route of the table declares a scope or public (the guard refuses a route that does not:
    without this, every OPTIONS request was a 500)."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            undeclared = not handler.opt.get(PUBLIC) and handler.opt.get(SCOPE) is None
            if undeclared and handler.fn.__module__.startswith("litestar."):
                handler.opt[PUBLIC] = True
    return app


def _resolve_dependencies_in_line(app: Litestar) -> Litestar:
    """Litestar resolves a handler's independent dependencies as concurrent tasks (an anyio
    task group per request). Ours are constants and reads of the request's state, with
    nothing to wait for: four tasks per read by id cost ~9 % of its CPU (cProfile) for no
    overlap. One dependency per batch makes Litestar await each in turn, in the order the
    batches already respect."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for _, model in route.route_handler_map.values():
            model.dependency_batches = [
                {one} for batch in model.dependency_batches for one in batch
            ]
    return app


def build_app(
    *,
    name: str,
    description: str,
    routes: Sequence[ControllerRouterHandler],
    services: dict[str, Any],
    checks: dict[str, Check],
    gateway: Gateway,
    lifespan: Sequence[Callable[[Litestar], AbstractAsyncContextManager[None]]] = (),
) -> Litestar:
    dependencies = {key: _constant(value) for key, value in services.items()}
    dependencies["checks"] = _constant(checks)
    dependencies["principal"] = Provide(provide_principal)
    dependencies["meta"] = Provide(provide_meta)
    guard = authorization_guard(gateway.authenticate, gateway.prepare, gateway.rate_limit)
    app = Litestar(
        route_handlers=[
            # Every API route sits behind the guard; health, metrics and docs are public. It
            # runs before the route's parameters are read, as a Litestar guard would (which
            # is handed a copy of the route's handler per request: ~4 % of a read's CPU).
            Router("/", route_handlers=_documented(routes), before_request=guard_hook(guard)),
            *_documented([health, readiness, detailed_health, jwks, metrics], PUBLIC_ERRORS),
        ],
        dependencies=dependencies,
        state=State(services),  # the same services, for a handler that skips injection
        middleware=[
            DefineMiddleware(
                RequestContextMiddleware,
                service=name,
                meter=gateway.meter,
                rate_limit=gateway.rate_limit,
                timeout=gateway.timeout,
                untimed=gateway.untimed,
                trust_forwarded_proto=gateway.trust_forwarded_proto,
            )
        ],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=list(lifespan),
        request_max_body_size=gateway.max_body_bytes,
        cors_config=gateway.cors(),
        openapi_config=OpenAPIConfig(
            title=f"Strata {name}",
            version=VERSION,
            description=description,
            path="/docs",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        description="An API key (sk_live_...) or an access token from "
                        "POST /v1/oauth/token. An operation lists the scope it needs.",
                    ),
                }
            ),
        ),
        debug=False,
        logging_config=None,
    )
    app = _document_parameters(_document_formats(app), gateway.prepared_parameters)
    return _resolve_dependencies_in_line(_declare_framework_routes(app))
