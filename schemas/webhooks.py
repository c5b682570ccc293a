"""Request and response bodies of the webhook routes (`/v1/webhooks`)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import msgspec

Url = Annotated[
    str, msgspec.Meta(min_length=1, max_length=2048, examples=["https://hooks.example.com/strata"])
]
EventTypes = Annotated[
    list[Annotated[str, msgspec.Meta(max_length=100)]],
    msgspec.Meta(
        min_length=1,
        max_length=50,
        description="CloudEvents types (`strata.record.created`), families "
        "(`strata.record.*`) or `*`.",
        examples=[["strata.record.*"]],
    ),
]
Description = Annotated[str, msgspec.Meta(max_length=500)]


class CreateWebhook(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """`account_id` is needed only by the operator; a key registers for its own account."""

    url: Url
    event_types: EventTypes
    description: Description = ""
    account_id: UUID | None = None


class UpdateWebhook(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Every field is optional; only what is given changes. `status` pauses or resumes."""

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    status: Literal["active", "paused"] | None = None


class WebhookCreated(msgspec.Struct, frozen=True):
    """`secret` signs every delivery; it is shown once (null on an idempotent replay)."""

    id: str
    account_id: str
    url: str
    event_types: list[str]
    description: str
    status: str
    secret: str | None
    version: int
    position: int


class WebhookWritten(msgspec.Struct, frozen=True):
    id: str
    version: int
    position: int


class SecretRotated(msgspec.Struct, frozen=True):
    """The new secret, shown once. The previous one keeps signing (a second signature) for
    the grace period, so receivers can switch without dropping deliveries."""

    id: str
    secret: str | None
    previous_valid_until: str
    version: int
    position: int


class RedeliveryRequested(msgspec.Struct, frozen=True):
    """The redelivery is queued once the delivery worker reaches `position`; it appears in
    the history as a new delivery whose `redelivery_of` is `delivery_id`."""

    webhook_id: str
    delivery_id: str
    position: int


class WebhookView(msgspec.Struct, frozen=True):
    """A webhook. Its secret is never part of it."""

    id: str
    account_id: str
    url: str
    event_types: list[str]
    description: str
    status: str
    version: int
    created_at: str
    updated_at: str
    secret_rotated_at: str | None


class WebhookList(msgspec.Struct, frozen=True):
    items: list[WebhookView]
    next_cursor: str | None


class AttemptView(msgspec.Struct, frozen=True):
    number: int
    at: str
    duration_ms: int
    status_code: int | None
    error: str | None


class DeliveryView(msgspec.Struct, frozen=True):
    """`status`: pending (queued or retrying), delivered, or failed (dead-lettered after the
    last attempt; redeliver it by hand)."""

    id: str
    webhook_id: str
    event_id: str
    event_type: str
    position: int
    status: str
    attempts: list[AttemptView]
    created_at: str
    next_attempt_at: str | None
    redelivery_of: str | None


class DeliveryPage(msgspec.Struct, frozen=True):
    items: list[DeliveryView]
    next_cursor: str | None
