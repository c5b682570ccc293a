"""The `webhooks` projection: each account's webhook endpoints (the delivery worker's directory
and what `GET /v1/webhooks` reads), and the enqueueing of deliveries.

Directory documents (`webhook:<id>`, members of `webhooks:<account>`) keep, besides what the
API shows, the sealed signing secret(s) and the positions at which the webhook was
registered, paused, resumed and deleted, so that an event at position P is matched against
the endpoints as they were at P (exactly when fed in order from the log; with Kafka, exactly
unless a webhook was paused and resumed again after P).

Fed from the log, the projection enqueues deliveries itself, in order, before it moves its
checkpoint (`LogFedWebhooks`); fed from Kafka, `streams/webhooks.py` does the same with the
directory taken from the credentials topic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from projections.changes import AddMember, Change, Delete, Merge, Positioned, Put
from projections.delivery import DeliveryStore, Planner, webhook_key, webhooks_set
from projections.ports import DocumentStore
from projections.projection import Projection
from schemas.events import ProjectedEvent

NAME = "webhooks"
EVENT_PREFIX = "Webhook."


__all__ = ["NAME", "LogFedWebhooks", "changes", "repairs", "webhook_key", "webhooks_set"]


def _stamp(event: ProjectedEvent) -> dict[str, Any]:
    return {"version": event.version, "updated_at": event.timestamp.isoformat()}


def _registered(e: ProjectedEvent) -> list[Change]:
    p = e.payload
    webhook_id = str(e.stream_id)
    doc = {
        "id": webhook_id,
        "account_id": p["account_id"],
        "url": p.get("url", ""),
        "event_types": p["event_types"],
        "description": p["description"],
        "status": "active",
        "secret_sealed": p.get("secret_sealed", ""),
        "previous_secret_sealed": None,
        "secret_rotated_at": None,
        "registered_position": e.position,
        "paused_position": None,
        "resumed_position": None,
        "deleted_position": None,
        "created_at": e.timestamp.isoformat(),
        **_stamp(e),
    }
    return [Put(webhook_key(webhook_id), doc), AddMember(webhooks_set(p["account_id"]), webhook_id)]


def _updated(e: ProjectedEvent) -> list[Change]:
    p = e.payload
    fields = {name: p[name] for name in ("url", "event_types", "description") if p.get(name)}
    if p.get("description") == "":
        fields["description"] = ""
    return [Merge(webhook_key(str(e.stream_id)), {**fields, **_stamp(e)})]


def _rotated(e: ProjectedEvent) -> list[Change]:
    """The event carries the previous secret too, so it keeps signing for a grace period."""
    p = e.payload
    fields = {
        "secret_sealed": p.get("secret_sealed", ""),
        "previous_secret_sealed": p.get("previous_secret_sealed"),
        "secret_rotated_at": e.timestamp.isoformat(),
    }
    return [Merge(webhook_key(str(e.stream_id)), {**fields, **_stamp(e)})]


def _status(status: str, field: str) -> Any:
    def rule(e: ProjectedEvent) -> list[Change]:
        fields = {"status": status, field: e.position, **_stamp(e)}
        return [Merge(webhook_key(str(e.stream_id)), fields)]

    return rule


def _deleted(e: ProjectedEvent) -> list[Change]:
    """The document stays (marked deleted) so that events before the deletion are still
    matched to it by a lagging Kafka partition (the API hides it)."""
    webhook_id = str(e.stream_id)
    fields = {"status": "deleted", "deleted_position": e.position, **_stamp(e)}
    return [Merge(webhook_key(webhook_id), fields)]


RULES = {
    "Webhook.Registered": _registered,
    "Webhook.Updated": _updated,
    "Webhook.SecretRotated": _rotated,
    "Webhook.Paused": _status("paused", "paused_position"),
    "Webhook.Resumed": _status("active", "resumed_position"),
    "Webhook.Deleted": _deleted,
}


def changes(events: Iterable[ProjectedEvent]) -> list[Positioned]:
    """Directory changes, in order. Other event types change nothing."""
    out: list[Positioned] = []
    for event in events:
        rule = RULES.get(event.type)
        if rule is not None:
            out.extend(Positioned(event.position, change) for change in rule(event))
    return out


def repairs(changed: list[Positioned]) -> list[Positioned]:
    """A stream's whole history rewrites its document: drop it first, then re-apply."""
    keys = {c.change.key for c in changed if isinstance(c.change, Put | Merge)}
    return [*(Positioned(0, Delete(key)) for key in sorted(keys)), *changed]


class LogFedWebhooks(Projection[Positioned]):
    """The projection as the log runner feeds it: every batch's deliveries are enqueued
    (idempotently) before the directory changes and the checkpoint are committed, and a
    batch is cut after each Webhook event so later events see the directory it changed."""

    def __init__(
        self,
        store: DocumentStore,
        deliveries: DeliveryStore,
        planner: Planner,
    ) -> None:
        super().__init__(NAME, store, changes, repairs=repairs, reads_credentials=True)
        self.directory = store
        self.deliveries = deliveries
        self.planner = planner

    async def apply(self, events: Sequence[ProjectedEvent], partition: int = 0) -> None:
        start = 0
        for index, event in enumerate(events):
            if event.type.startswith(EVENT_PREFIX):
                await self._segment(events[start : index + 1], partition)
                start = index + 1
        if start < len(events):
            await self._segment(events[start:], partition)

    async def _segment(self, events: Sequence[ProjectedEvent], partition: int) -> None:
        writer = await self.writer()
        if events[-1].position <= (await writer.checkpoints()).get(partition, 0):
            return  # already applied (a restart re-reads from the checkpoint; be safe anyway)
        planned = await self.planner.plan(events, self.directory)
        if planned:
            await self.deliveries.enqueue(planned)
        await self.commit(self.rules(events), partition, events[-1].position)
