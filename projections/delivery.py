"""Webhook delivery, the transport-neutral core: which endpoints get an event, the CloudEvents
body, signatures, the retry schedule, and the dispatcher that sends what is due.

Ports (implemented in infra/adapters/webhooks): a `DeliveryStore` (SQLite embedded, Redis
distributed) holding deliveries in *lanes*, one per (webhook, event stream), so that a stream's
version n+1 is not sent before version n was delivered or dead-lettered; a `Sender` that POSTs
(and refuses private targets at connect time); a `SecretBox` that opens sealed secrets.

A delivery is attempted up to `max_attempts` times with exponential backoff and jitter, each
attempt bounded by a timeout; after the last failure it is dead-lettered (`failed`), which
unblocks its lane. Each webhook has its own concurrency budget, so a slow or dead endpoint
holds only its own lanes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

import msgspec

from domain.webhook import matches
from projections.ports import DocumentReader
from schemas import contract
from schemas.events import ProjectedEvent

log = logging.getLogger(__name__)

SIGNATURE_VERSION = "v1"
CONTENT_TYPE = "application/cloudevents+json"
USER_AGENT = "Strata-Webhooks/1"
REDELIVERY_EVENT = "Webhook.RedeliveryRequested"
Status = Literal["pending", "delivered", "failed"]
PENDING: Literal["pending"] = "pending"
DELIVERED: Literal["delivered"] = "delivered"
FAILED: Literal["failed"] = "failed"
MAX_ERROR_CHARS = 500


class Attempt(msgspec.Struct, frozen=True):
    number: int
    at: str
    """When the attempt started (ISO-8601, UTC)."""
    duration_ms: int
    status_code: int | None = None
    """The endpoint's HTTP status; null when no response came (timeout, refused, ...)."""
    error: str | None = None


class Delivery(msgspec.Struct, frozen=True):
    """One event for one endpoint, with every attempt made so far."""

    id: str
    webhook_id: str
    account_id: str
    lane: str
    """Deliveries of a lane go out in `position` order, one at a time: the event's stream id
    (per-aggregate order), or `redelivery:<id>` for a manual redelivery."""
    position: int
    event_id: str
    event_type: str
    body: str
    """The CloudEvent (structured JSON), exactly as sent; signed at each attempt."""
    created_at: str
    next_attempt_at: float
    """Epoch seconds."""
    status: Status = PENDING
    attempts: list[Attempt] = []
    redelivery_of: str | None = None
    finished_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.status != PENDING


def webhook_key(webhook_id: str) -> str:
    """A webhook's document in the `webhooks` read model (projections.webhooks)."""
    return f"webhook:{webhook_id}"


def webhooks_set(account_id: str) -> str:
    """The set of an account's webhook ids in the `webhooks` read model."""
    return f"webhooks:{account_id}"


def _now_iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")


def delivery_id(*parts: str) -> str:
    """Deterministic ids make enqueueing idempotent: a redelivered event enqueues nothing."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]


# --- ports ---------------------------------------------------------------------------------


@runtime_checkable
class DeliveryReader(Protocol):
    """What the read API needs: a webhook's delivery history."""

    async def get(self, webhook_id: str, delivery_id: str) -> Delivery | None: ...

    async def history(
        self, webhook_id: str, *, before: int | None, limit: int
    ) -> list[tuple[int, Delivery]]:
        """Newest first, each with its sequence number (the paging cursor), strictly
        before `before` when given."""
        ...


@runtime_checkable
class DeliveryStore(DeliveryReader, Protocol):
    async def enqueue(self, deliveries: Sequence[Delivery]) -> int:
        """Adds the deliveries whose id is new (others are left alone); returns how many."""
        ...

    async def claim(
        self,
        now: float,
        *,
        busy: Mapping[str, int],
        per_webhook: int,
        limit: int,
        lease: float,
    ) -> list[Delivery]:
        """Heads of due lanes (at most `per_webhook` less what is `busy` per webhook, `limit`
        in all), leased for `lease` seconds: nobody else claims those lanes until `finish` or
        the lease ends."""
        ...

    async def finish(self, delivery: Delivery, now: float) -> None:
        """Record an attempt's outcome. Terminal: the lane moves on to its next delivery;
        pending: the lane is due again at `delivery.next_attempt_at`. Ends the lease."""
        ...

    async def next_due(self) -> float | None:
        """When the earliest lane is due (None: nothing pending)."""
        ...


@dataclass(frozen=True, slots=True)
class SendResult:
    status_code: int | None
    error: str | None
    duration: float

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@runtime_checkable
class Sender(Protocol):
    async def send(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> SendResult:
        """POST once; never raises for the endpoint's failures (they are the result)."""
        ...


@runtime_checkable
class SecretBox(Protocol):
    def seal(self, secret: str, webhook_id: str) -> str: ...

    def open(self, sealed: str, webhook_id: str) -> str:
        """Raises ValueError when `sealed` cannot be opened (wrong key or webhook)."""
        ...


# --- signatures --------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """hex(HMAC-SHA256(key = the secret's UTF-8 bytes, message = "<timestamp>.<body>"))."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """`v1=<hex>`, one per secret, space-separated (two during a rotation's grace period)."""
    return " ".join(f"{SIGNATURE_VERSION}={sign(s, timestamp, body)}" for s in secrets)


def verify(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    tolerance: float = 300,
    now: float | None = None,
) -> bool:
    """What a receiver does (docs/webhooks.md): the timestamp must be within `tolerance`
    seconds of now (replay protection) and one of the v1 signatures must match."""
    if not timestamp.isdigit():
        return False
    moment = int(timestamp)
    current = time.time() if now is None else now
    if abs(current - moment) > tolerance:
        return False
    expected = sign(secret, moment, body)
    for part in signature.split():
        version, _, value = part.partition("=")
        if version == SIGNATURE_VERSION and hmac.compare_digest(value, expected):
            return True
    return False


# --- retries --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8
    base: float = 1.0
    """Seconds before the second attempt (before jitter); doubles after each failure."""
    cap: float = 3600.0
    timeout: float = 10.0
    """Seconds one attempt may take, connect to last byte."""

    def backoff(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        """Delay after the `failures`-th failed attempt: the exponential step
        min(cap, base * 2^(failures-1)), of which the upper half is jitter."""
        step = min(self.cap, self.base * 2.0 ** (failures - 1))
        return step / 2 + rand() * step / 2


# --- the CloudEvent a webhook receives ---------------------------------------------------------


def cloud_event(event: ProjectedEvent) -> tuple[str, str, str]:
    """(account id, ce type, body): the structured-mode CloudEvent of `event`, built from the
    contract's own attributes (redacted: the same fields as the public topic)."""
    message = contract.encode(event, redact=True)
    attrs: dict[str, Any] = {}
    for name, raw in message.headers:
        value = raw.decode()
        if name == "content-type":
            attrs["datacontenttype"] = value
        elif name.startswith("ce_"):
            attrs[name[3:]] = value
    attrs["data"] = msgspec.json.decode(message.value)
    account = str(attrs["source"]).removeprefix("/accounts/")
    return account, str(attrs["type"]), msgspec.json.encode(attrs).decode()


# --- which endpoints get an event ----------------------------------------------------------------


def active_at(doc: Mapping[str, Any], position: int) -> bool:
    """Whether the webhook took events at `position` (ADR 11: exact when fed in order)."""
    if doc.get("registered_position", 0) >= position:
        return False
    deleted = doc.get("deleted_position")
    if deleted is not None and deleted < position:
        return False
    paused = doc.get("paused_position")
    resumed = doc.get("resumed_position")
    if paused is None or paused > position:
        return True
    return resumed is not None and paused < resumed < position


class Planner:
    """Turns events into deliveries against the directory (documents of projections.webhooks)."""

    def __init__(self, deliveries: DeliveryReader, clock: Callable[[], float] = time.time) -> None:
        self.deliveries = deliveries
        self.clock = clock

    async def plan(
        self, events: Sequence[ProjectedEvent], directory: DocumentReader
    ) -> list[Delivery]:
        out: list[Delivery] = []
        cache: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            if event.type == REDELIVERY_EVENT:
                again = await self._redelivery(event)
                if again is not None:
                    out.append(again)
                continue
            try:
                account, ce_type, body = cloud_event(event)
            except contract.ContractError:
                log.warning("webhooks: %s at %d is not in the contract", event.type, event.position)
                continue
            if account not in cache:
                cache[account] = await endpoints(directory, account)
            out.extend(
                self._delivery(doc, event, ce_type, body)
                for doc in cache[account]
                if active_at(doc, event.position) and matches(doc["event_types"], ce_type)
            )
        return out

    def _delivery(
        self, doc: Mapping[str, Any], event: ProjectedEvent, ce_type: str, body: str
    ) -> Delivery:
        now = self.clock()
        event_id = f"{event.stream_id}:{event.version}"
        return Delivery(
            id=delivery_id(doc["id"], event_id),
            webhook_id=doc["id"],
            account_id=doc["account_id"],
            lane=str(event.stream_id),
            position=event.position,
            event_id=event_id,
            event_type=ce_type,
            body=body,
            created_at=_now_iso(now),
            next_attempt_at=now,
        )

    async def _redelivery(self, event: ProjectedEvent) -> Delivery | None:
        webhook_id = str(event.stream_id)
        original = await self.deliveries.get(webhook_id, event.payload["delivery_id"])
        if original is None:
            log.warning("webhooks: redelivery of unknown delivery %s", event.payload["delivery_id"])
            return None
        now = self.clock()
        new_id = delivery_id(webhook_id, "redelivery", f"{event.stream_id}:{event.version}")
        return msgspec.structs.replace(
            original,
            id=new_id,
            lane=f"redelivery:{new_id}",
            created_at=_now_iso(now),
            next_attempt_at=now,
            status=PENDING,
            attempts=[],
            redelivery_of=original.id,
            finished_at=None,
        )


async def endpoints(directory: DocumentReader, account_id: str) -> list[dict[str, Any]]:
    """Every webhook document of an account (deleted ones included: see `active_at`)."""
    ids: list[str] = []
    after: str | None = None
    while True:
        page = await directory.members(webhooks_set(account_id), after=after, limit=500)
        ids += page
        if len(page) < 500:
            break
        after = page[-1]
    docs = await directory.get_many([webhook_key(i) for i in ids]) if ids else []
    return [doc for doc in docs if doc is not None]


# --- the dispatcher -----------------------------------------------------------------------------


@dataclass
class DispatchStats:
    attempts: int = 0
    delivered: int = 0
    failed: int = 0
    retries: int = 0
    by_webhook: dict[str, int] = field(default_factory=dict)


class Dispatcher:
    """Sends due deliveries: claims lane heads (per-webhook budget), signs, POSTs, records."""

    def __init__(
        self,
        store: DeliveryStore,
        directory: DocumentReader,
        sender: Sender,
        secrets: SecretBox,
        policy: RetryPolicy,
        *,
        per_webhook: int = 4,
        max_in_flight: int = 64,
        poll: float = 0.1,
        rotation_grace: float = 86400.0,
        clock: Callable[[], float] = time.time,
        expire: Callable[[float], Awaitable[int]] | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.sender = sender
        self.secrets = secrets
        self.policy = policy
        self.per_webhook = per_webhook
        self.max_in_flight = max_in_flight
        self.poll = poll
        self.rotation_grace = rotation_grace
        self.clock = clock
        self.expire = expire
        self._expired_at = 0.0
        self.busy: dict[str, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.stats = DispatchStats()
        self._wake = asyncio.Event()

    @property
    def lease(self) -> float:
        return self.policy.timeout + 30.0

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set; in-flight attempts are then awaited."""
        backoff = 0.1
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                    await self._housekeeping()
                    backoff = 0.1
                    await self._idle(stop)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("webhook dispatcher failed; retrying in %.1fs", backoff)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), backoff)
                    backoff = min(backoff * 2, 10.0)
        finally:
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _housekeeping(self) -> None:
        """Forget finished deliveries past their retention, hourly (stores that need it)."""
        now = self.clock()
        if self.expire is not None and now - self._expired_at > 3600:
            self._expired_at = now
            await self.expire(now)

    async def _idle(self, stop: asyncio.Event) -> None:
        self._wake.clear()
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waits, timeout=self.poll, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()

    async def tick(self) -> int:
        """Claim and start what is due; returns how many attempts were started."""
        room = self.max_in_flight - len(self.tasks)
        if room <= 0:
            return 0
        claimed = await self.store.claim(
            self.clock(),
            busy=dict(self.busy),
            per_webhook=self.per_webhook,
            limit=room,
            lease=self.lease,
        )
        for delivery in claimed:
            self.busy[delivery.webhook_id] = self.busy.get(delivery.webhook_id, 0) + 1
            task = asyncio.create_task(self._attempt(delivery))
            self.tasks.add(task)
            task.add_done_callback(self._done(delivery.webhook_id))
        return len(claimed)

    def _done(self, webhook_id: str) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            self.tasks.discard(task)
            left = self.busy.get(webhook_id, 1) - 1
            if left:
                self.busy[webhook_id] = left
            else:
                self.busy.pop(webhook_id, None)
            self._wake.set()
            if not task.cancelled() and task.exception() is not None:
                log.error("webhook attempt crashed", exc_info=task.exception())

        return done

    async def _attempt(self, delivery: Delivery) -> None:
        doc = await self.directory.get(webhook_key(delivery.webhook_id))
        now = self.clock()
        if doc is None or doc.get("status") == "deleted":
            await self._record(delivery, now, None, "the webhook was deleted", terminal=True)
            return
        if doc.get("status") == "paused":
            # Held, not attempted: the lane waits until the webhook is resumed.
            held = msgspec.structs.replace(delivery, next_attempt_at=now + max(self.poll, 1.0))
            await self.store.finish(held, now)
            return
        try:
            secrets = self._secrets(doc, now)
        except ValueError as exc:
            await self._record(delivery, now, None, f"cannot open the signing secret: {exc}")
            return
        body = delivery.body.encode()
        timestamp = int(now)
        headers = {
            "Content-Type": CONTENT_TYPE,
            "User-Agent": USER_AGENT,
            "Webhook-Id": delivery.id,
            "Webhook-Timestamp": str(timestamp),
            "Webhook-Signature": signature_header(secrets, timestamp, body),
            "Webhook-Attempt": str(len(delivery.attempts) + 1),
        }
        self.stats.attempts += 1
        result = await self.sender.send(doc["url"], body, headers, self.policy.timeout)
        error = result.error
        if not result.ok and error is None:
            error = f"HTTP {result.status_code}"
        await self._record(
            delivery, now, result.status_code, None if result.ok else error, result.duration
        )

    def _secrets(self, doc: Mapping[str, Any], now: float) -> list[str]:
        webhook_id = str(doc["id"])
        secrets = [self.secrets.open(doc["secret_sealed"], webhook_id)]
        previous = doc.get("previous_secret_sealed")
        rotated = doc.get("secret_rotated_at")
        if previous and rotated:
            age = now - datetime.fromisoformat(rotated).timestamp()
            if age < self.rotation_grace:
                secrets.append(self.secrets.open(previous, webhook_id))
        return secrets

    async def _record(
        self,
        delivery: Delivery,
        started: float,
        status_code: int | None,
        error: str | None,
        duration: float = 0.0,
        *,
        terminal: bool = False,
    ) -> None:
        attempt = Attempt(
            number=len(delivery.attempts) + 1,
            at=_now_iso(started),
            duration_ms=round(duration * 1000),
            status_code=status_code,
            error=error[:MAX_ERROR_CHARS] if error else None,
        )
        attempts = [*delivery.attempts, attempt]
        now = self.clock()
        counts = self.stats.by_webhook
        counts[delivery.webhook_id] = counts.get(delivery.webhook_id, 0) + 1
        if error is None:
            status: Status = DELIVERED
            self.stats.delivered += 1
        elif terminal or len(attempts) >= self.policy.max_attempts:
            status = FAILED
            self.stats.failed += 1
            log.warning("webhook delivery %s dead-lettered: %s", delivery.id, error)
        else:
            status = PENDING
            self.stats.retries += 1
        updated = msgspec.structs.replace(
            delivery,
            attempts=attempts,
            status=status,
            next_attempt_at=now + self.policy.backoff(len(attempts)) if status == PENDING else now,
            finished_at=None if status == PENDING else now,
        )
        await self.store.finish(updated, now)
