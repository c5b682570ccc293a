"""Handlers for webhooks: register, change, pause/resume, rotate the secret, delete, and ask
for a redelivery. The signing secret is generated here, shown once, and recorded only sealed
(encrypted with the webhook key ring, docs/adr/0011-webhooks.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from commands.accounts import load_account
from commands.ports import CommandContext, Commit, EventStore, SecretFactory
from domain.access import Principal
from domain.errors import NotFoundError
from domain.webhook import (
    SECRET_PREFIX,
    Endpoint,
    Webhook,
    WebhookStatus,
    description,
    endpoint_url,
    event_type_patterns,
)
from projections.delivery import SecretBox
from schemas import contract
from schemas.webhooks import (
    CreateWebhook,
    RedeliveryRequested,
    SecretRotated,
    UpdateWebhook,
    WebhookCreated,
    WebhookWritten,
)

KNOWN_EVENT_TYPES = tuple(t.ce_type for t in contract.TYPES)


@dataclass(frozen=True)
class WebhookServices:
    """What the webhook handlers need besides the event store."""

    secrets: SecretBox
    guard: Callable[[Endpoint], None]
    """Raises InvalidValueError when the endpoint may not be reached (SSRF protection)."""
    new_secret: SecretFactory
    rotation_grace: float


def _endpoint(url: str, services: WebhookServices) -> str:
    endpoint = endpoint_url(url)
    services.guard(endpoint)
    return endpoint.url


def create_webhook(
    cmd: CreateWebhook, store: EventStore, ctx: CommandContext, services: WebhookServices
) -> WebhookCreated:
    principal = ctx.principal
    account = load_account(store, principal, cmd.account_id or principal.own_account())
    account.ensure_can_write()
    webhook_id = uuid4()
    secret = SECRET_PREFIX + services.new_secret()
    webhook = Webhook(
        id=webhook_id,
        account_id=str(account.id),
        url=_endpoint(cmd.url, services),
        event_types=event_type_patterns(cmd.event_types, KNOWN_EVENT_TYPES),
        description=description(cmd.description),
        secret_sealed=services.secrets.seal(secret, str(webhook_id)),
    )

    def result(commit: Commit) -> WebhookCreated:
        return WebhookCreated(
            id=str(webhook.id),
            account_id=webhook.account_id,
            url=webhook.url,
            event_types=list(webhook.event_types),
            description=webhook.description,
            status=webhook.status,
            secret=secret,
            version=webhook.version,
            position=commit.position,
        )

    return store.append([webhook], ctx, result)


def load_webhook(store: EventStore, principal: Principal, webhook_id: UUID) -> Webhook:
    """A webhook the caller may act on; another tenant's, or a deleted one, is missing."""
    webhook = store.load(Webhook, webhook_id)
    principal.require_account(UUID(webhook.account_id))
    if webhook.is_deleted:
        raise NotFoundError("no such webhook")
    return webhook


def _written(webhook: Webhook) -> Callable[[Commit], WebhookWritten]:
    def result(commit: Commit) -> WebhookWritten:
        return WebhookWritten(id=str(webhook.id), version=webhook.version, position=commit.position)

    return result


def update_webhook(
    webhook_id: UUID,
    cmd: UpdateWebhook,
    store: EventStore,
    ctx: CommandContext,
    services: WebhookServices,
) -> WebhookWritten:
    webhook = load_webhook(store, ctx.principal, webhook_id)
    webhook.update(
        url=_endpoint(cmd.url, services) if cmd.url is not None else None,
        event_types=(
            event_type_patterns(cmd.event_types, KNOWN_EVENT_TYPES)
            if cmd.event_types is not None
            else None
        ),
        description=description(cmd.description) if cmd.description is not None else None,
    )
    if cmd.status == "paused" and webhook.status != WebhookStatus.PAUSED:
        webhook.pause()
    elif cmd.status == "active" and webhook.status == WebhookStatus.PAUSED:
        webhook.resume()
    if webhook.pending_events:
        return store.append([webhook], ctx, _written(webhook))
    return WebhookWritten(id=str(webhook.id), version=webhook.version, position=store.head())


def delete_webhook(webhook_id: UUID, store: EventStore, ctx: CommandContext) -> WebhookWritten:
    webhook = load_webhook(store, ctx.principal, webhook_id)
    webhook.delete()
    return store.append([webhook], ctx, _written(webhook))


def rotate_secret(
    webhook_id: UUID, store: EventStore, ctx: CommandContext, services: WebhookServices
) -> SecretRotated:
    webhook = load_webhook(store, ctx.principal, webhook_id)
    secret = SECRET_PREFIX + services.new_secret()
    webhook.rotate_secret(services.secrets.seal(secret, str(webhook.id)))
    until = datetime.now(UTC) + timedelta(seconds=services.rotation_grace)

    def result(commit: Commit) -> SecretRotated:
        return SecretRotated(
            id=str(webhook.id),
            secret=secret,
            previous_valid_until=until.isoformat(timespec="seconds"),
            version=webhook.version,
            position=commit.position,
        )

    return store.append([webhook], ctx, result)


def request_redelivery(
    webhook_id: UUID, delivery_id: str, store: EventStore, ctx: CommandContext
) -> RedeliveryRequested:
    webhook = load_webhook(store, ctx.principal, webhook_id)
    webhook.request_redelivery(delivery_id)

    def result(commit: Commit) -> RedeliveryRequested:
        return RedeliveryRequested(
            webhook_id=str(webhook.id), delivery_id=delivery_id, position=commit.position
        )

    return store.append([webhook], ctx, result)
