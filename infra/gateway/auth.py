"""Authentication and scopes. Every route states, in its `opt`, the scope it needs or that it
is public; one guard enforces it, so no route can forget."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from litestar.connection import ASGIConnection, Request
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from domain.access import Principal, Scope
from infra.gateway.context import RATE_LIMIT_STATE
from infra.gateway.ratelimit import RateLimit
from schemas.envelope import Meta, meta_now

Authenticator = Callable[[str], Awaitable[Principal | None]]
ByKey = Callable[[UUID, frozenset[Scope]], Awaitable[Principal | None]]
VerifyToken = Callable[[str], tuple[UUID, frozenset[Scope]] | None]


def looks_like_jwt(token: str) -> bool:
    return token.startswith("eyJ") and token.count(".") == 2


def bearer(api_keys: Authenticator, verify_token: VerifyToken, by_key: ByKey) -> Authenticator:
    """`Authorization: Bearer` accepts an API key or an access token (a JWT) issued for one;
    a token counts only while its key is active."""

    async def authenticate(token: str) -> Principal | None:
        if looks_like_jwt(token):
            verified = verify_token(token)
            return None if verified is None else await by_key(*verified)
        return await api_keys(token)

    return authenticate


PUBLIC = "public"
SCOPE = "scope"


def credentials_of(connection: ASGIConnection) -> str | None:  # type: ignore[type-arg]
    authorization = connection.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return ""
    api_key = connection.headers.get("x-api-key")
    return api_key.strip() if api_key is not None else None


Prepare = Callable[[ASGIConnection], Awaitable[None]]  # type: ignore[type-arg]


def authorization_guard(
    authenticate: Authenticator,
    prepare: Prepare | None = None,
    rate_limit: RateLimit | None = None,
) -> Callable[..., Awaitable[None]]:
    """`prepare` runs before authentication; the read API uses it to wait for
    `min_position`, so a key issued by that very write is already readable."""

    async def guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:  # type: ignore[type-arg]
        if handler.opt.get(PUBLIC):
            return
        needed: Scope | None = handler.opt.get(SCOPE)
        if needed is None:
            raise RuntimeError(f"route {handler} declares neither a scope nor public")
        if prepare is not None:
            await prepare(connection)
        token = credentials_of(connection)
        if not token:
            raise NotAuthorizedException("missing credentials: send Authorization: Bearer <key>")
        principal = await authenticate(token)
        ip = connection.client.host if connection.client else "unknown"
        if principal is None:
            if rate_limit is not None:
                await rate_limit.failed(ip)
            raise NotAuthorizedException("invalid credentials")
        state = connection.scope.setdefault("state", {})  # `.state` wraps it anew at each use
        state["principal"] = principal
        if rate_limit is not None:
            buckets = rate_limit.policy.for_principal(principal)
            decision = await rate_limit.admit(buckets, f"key {principal.key_id}")
            if decision is not None:
                state[RATE_LIMIT_STATE] = decision
        principal.require(needed)

    return guard


def guard_hook(
    guard: Callable[[ASGIConnection, BaseRouteHandler], Awaitable[None]],  # type: ignore[type-arg]
) -> Callable[[Request], Awaitable[None]]:  # type: ignore[type-arg]
    """The guard as a `before_request` hook of the request's own route handler."""

    async def before_request(request: Request) -> None:  # type: ignore[type-arg]
        await guard(request, request.route_handler)

    return before_request


async def provide_principal(request: Request) -> Principal:  # type: ignore[type-arg]
    principal: Principal = request.state.principal
    return principal


async def provide_meta(request: Request) -> Meta:  # type: ignore[type-arg]
    return meta_now(request.state.request_id)
