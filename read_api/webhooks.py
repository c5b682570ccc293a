"""The read API's webhook routes: webhooks (from the `webhooks` read model) and their
delivery history (from the delivery log). Neither ever shows a signing secret."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter, SkipValidation

from domain.access import Principal, Scope
from domain.errors import NotFoundError
from projections.delivery import PENDING, Delivery, DeliveryReader, webhook_key, webhooks_set
from projections.ports import DocumentReader
from projections.webhooks import NAME
from read_api.consistency import InvalidQueryError
from read_api.cursors import decode_cursor, encode_cursor
from schemas.envelope import Envelope, Meta
from schemas.webhooks import (
    AttemptView,
    DeliveryPage,
    DeliveryView,
    WebhookList,
    WebhookView,
)

MAX_PAGE = 100
OPT = {"scope": Scope.ACCOUNT_ADMIN, "reads": NAME}

Limit = Annotated[int, QueryParameter(name="limit", ge=1, le=MAX_PAGE, description="Page size.")]
Cursor = Annotated[
    str | None, QueryParameter(name="cursor", description="`next_cursor` of the previous page.")
]
AccountParam = Annotated[
    UUID | None,
    QueryParameter(name="account_id", description="The account (the operator must name one)."),
]
Principal_ = NamedDependency[Principal]
Meta_ = NamedDependency[Meta]
WebhookDocs = NamedDependency[SkipValidation[DocumentReader]]
Deliveries = NamedDependency[SkipValidation[DeliveryReader]]


def webhook_view(doc: dict[str, Any]) -> WebhookView:
    return WebhookView(
        id=doc["id"],
        account_id=doc["account_id"],
        url=doc["url"],
        event_types=list(doc["event_types"]),
        description=doc["description"],
        status=doc["status"],
        version=doc["version"],
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
        secret_rotated_at=doc.get("secret_rotated_at"),
    )


def delivery_view(delivery: Delivery) -> DeliveryView:
    pending = delivery.status == PENDING
    return DeliveryView(
        id=delivery.id,
        webhook_id=delivery.webhook_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        position=delivery.position,
        status=delivery.status,
        attempts=[
            AttemptView(
                number=a.number,
                at=a.at,
                duration_ms=a.duration_ms,
                status_code=a.status_code,
                error=a.error,
            )
            for a in delivery.attempts
        ],
        created_at=delivery.created_at,
        next_attempt_at=(
            datetime.fromtimestamp(delivery.next_attempt_at, UTC).isoformat(timespec="seconds")
            if pending
            else None
        ),
        redelivery_of=delivery.redelivery_of,
    )


async def _webhook(docs: DocumentReader, principal: Principal, webhook_id: UUID) -> dict[str, Any]:
    doc = await docs.get(webhook_key(str(webhook_id)))
    if doc is None or doc.get("status") == "deleted":
        raise NotFoundError("no such webhook")
    principal.require_account(UUID(doc["account_id"]))
    return doc


@get("/v1/webhooks", opt=OPT, summary="The account's webhooks, paged")
async def list_webhooks(
    principal: Principal_,
    webhook_docs: WebhookDocs,
    meta: Meta_,
    account_id: AccountParam = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Envelope[WebhookList]:
    account = account_id or principal.own_account()
    principal.require_account(account)
    after = decode_cursor(cursor)
    if after is not None and not isinstance(after, str):
        raise InvalidQueryError("cursor is not one this API returned")
    items: list[WebhookView] = []
    exhausted = False
    while len(items) < limit and not exhausted:  # deleted webhooks stay in the set: skipped
        ids = await webhook_docs.members(webhooks_set(str(account)), after=after, limit=limit)
        exhausted = len(ids) < limit
        docs = await webhook_docs.get_many([webhook_key(i) for i in ids])
        for webhook_id, doc in zip(ids, docs, strict=True):
            if len(items) == limit:
                exhausted = False
                break
            after = webhook_id
            if doc is not None and doc.get("status") != "deleted":
                items.append(webhook_view(doc))
    next_cursor = encode_cursor(after) if not exhausted and items else None
    return Envelope(data=WebhookList(items=items, next_cursor=next_cursor), meta=meta)


@get("/v1/webhooks/{webhook_id:uuid}", opt=OPT, summary="A webhook (never its secret)")
async def get_webhook(
    webhook_id: FromPath[UUID],
    principal: Principal_,
    webhook_docs: WebhookDocs,
    meta: Meta_,
) -> Envelope[WebhookView]:
    doc = await _webhook(webhook_docs, principal, webhook_id)
    return Envelope(data=webhook_view(doc), meta=meta)


@get(
    "/v1/webhooks/{webhook_id:uuid}/deliveries",
    opt=OPT,
    summary="A webhook's deliveries, newest first, with every attempt",
)
async def list_deliveries(
    webhook_id: FromPath[UUID],
    principal: Principal_,
    webhook_docs: WebhookDocs,
    deliveries: Deliveries,
    meta: Meta_,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Envelope[DeliveryPage]:
    await _webhook(webhook_docs, principal, webhook_id)
    before = decode_cursor(cursor)
    if before is not None and (not isinstance(before, int) or isinstance(before, bool)):
        raise InvalidQueryError("cursor is not one this API returned")
    page = await deliveries.history(str(webhook_id), before=before, limit=limit + 1)
    more = len(page) > limit
    page = page[:limit]
    next_cursor = encode_cursor(page[-1][0]) if more and page else None
    items = [delivery_view(delivery) for _, delivery in page]
    return Envelope(data=DeliveryPage(items=items, next_cursor=next_cursor), meta=meta)


ROUTES = [list_webhooks, get_webhook, list_deliveries]
