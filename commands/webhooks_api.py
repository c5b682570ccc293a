"""The command API's webhook routes (`/v1/webhooks`). Thin, like commands/api.py; reads of
webhooks and their deliveries are on the read API (read_api/webhooks.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from litestar import Request, Response, delete, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, SkipValidation

from commands import webhooks
from commands.api import IdempotencyKey, Meta_, Principal_, Store, _context, _replay
from commands.idempotency import checked_key, fingerprint
from commands.ports import CommandContext, IdempotencyClaim, IdempotencyRaceError
from domain.access import Scope
from domain.errors import NotFoundError
from domain.webhook import delivery_id as checked_delivery_id
from projections.delivery import DeliveryReader
from schemas.envelope import Envelope, Meta
from schemas.webhooks import (
    CreateWebhook,
    RedeliveryRequested,
    SecretRotated,
    UpdateWebhook,
    WebhookCreated,
    WebhookWritten,
)

R = TypeVar("R")
Services = NamedDependency[SkipValidation[webhooks.WebhookServices]]
Deliveries = NamedDependency[SkipValidation[DeliveryReader]]
ADMIN = {"scope": Scope.ACCOUNT_ADMIN}


def _shown_once(result: object) -> object:
    """What an idempotent replay returns: a signing secret is shown once and never kept."""
    if isinstance(result, WebhookCreated | SecretRotated):
        return msgspec.structs.replace(result, secret=None)
    return result


async def _execute(
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta,
    status: int,
    handler: Callable[[CommandContext], R],
) -> Response[Any]:
    """commands.api._execute, with the webhook secret left out of the kept response."""
    ctx = _context(request, principal)
    key = request.headers.get("idempotency-key")
    if key is None:
        result = await asyncio.to_thread(handler, ctx)
        return Response(Envelope(data=result, meta=meta), status_code=status)
    key = checked_key(key)
    body = await request.body()
    digest = fingerprint(request.method, request.url.path, request.url.query or "", body)
    kept = await asyncio.to_thread(store.recall, principal.subject, key)
    if kept is not None:
        return _replay(kept, digest)

    def render(result: object) -> tuple[int, bytes]:
        return status, msgspec.json.encode(Envelope(data=_shown_once(result), meta=meta))

    claim = IdempotencyClaim(scope=principal.subject, key=key, fingerprint=digest, render=render)
    try:
        result = await asyncio.to_thread(handler, replace(ctx, idempotency=claim))
    except IdempotencyRaceError as race:
        return _replay(race.stored, digest)
    return Response(Envelope(data=result, meta=meta), status_code=status)


@post(
    "/v1/webhooks",
    status_code=201,
    opt=ADMIN,
    summary="Register a webhook endpoint; its signing secret is shown once",
    description=(
        "The URL must be http(s) and resolve to public addresses only (private, loopback and "
        "link-local targets are refused unless the operator allow-lists them)."
    ),
)
async def create_webhook(
    data: JSONBody[CreateWebhook],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
    webhook_services: Services,
    idempotency_key: IdempotencyKey = None,
) -> Response[Envelope[WebhookCreated]]:
    return await _execute(
        request,
        principal,
        store,
        meta,
        201,
        lambda c: webhooks.create_webhook(data, store, c, webhook_services),
    )


@put(
    "/v1/webhooks/{webhook_id:uuid}",
    opt=ADMIN,
    summary="Change a webhook's URL, event types or description; pause or resume it",
)
async def update_webhook(
    webhook_id: FromPath[UUID],
    data: JSONBody[UpdateWebhook],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
    webhook_services: Services,
) -> Envelope[WebhookWritten]:
    ctx = _context(request, principal)
    result = await asyncio.to_thread(
        webhooks.update_webhook, webhook_id, data, store, ctx, webhook_services
    )
    return Envelope(data=result, meta=meta)


@delete(
    "/v1/webhooks/{webhook_id:uuid}",
    status_code=200,
    opt=ADMIN,
    summary="Delete a webhook (nothing more is delivered to it)",
)
async def delete_webhook(
    webhook_id: FromPath[UUID],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
) -> Envelope[WebhookWritten]:
    ctx = _context(request, principal)
    result = await asyncio.to_thread(webhooks.delete_webhook, webhook_id, store, ctx)
    return Envelope(data=result, meta=meta)


@post(
    "/v1/webhooks/{webhook_id:uuid}/rotate-secret",
    status_code=200,
    opt=ADMIN,
    summary="Replace the signing secret (shown once); the old one signs too for a grace period",
)
async def rotate_secret(
    webhook_id: FromPath[UUID],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
    webhook_services: Services,
    idempotency_key: IdempotencyKey = None,
) -> Response[Envelope[SecretRotated]]:
    return await _execute(
        request,
        principal,
        store,
        meta,
        200,
        lambda c: webhooks.rotate_secret(webhook_id, store, c, webhook_services),
    )


@post(
    "/v1/webhooks/{webhook_id:uuid}/deliveries/{delivery_id:str}/redeliver",
    status_code=202,
    opt=ADMIN,
    summary="Send a past delivery again (as a new delivery)",
)
async def redeliver(
    webhook_id: FromPath[UUID],
    delivery_id: FromPath[str],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
    deliveries: Deliveries,
    idempotency_key: IdempotencyKey = None,
) -> Response[Envelope[RedeliveryRequested]]:
    checked_delivery_id(delivery_id)
    if await deliveries.get(str(webhook_id), delivery_id) is None:
        raise NotFoundError("no such delivery")
    return await _execute(
        request,
        principal,
        store,
        meta,
        202,
        lambda c: webhooks.request_redelivery(webhook_id, delivery_id, store, c),
    )


ROUTES = [create_webhook, update_webhook, delete_webhook, rotate_secret, redeliver]
