"""Notices between processes over Redis pub/sub: one subscriber connection per process.

In-process knowledge kept fresh by notices (a cache of credentials, the addresses that
failed to log in) may be trusted only while this process surely hears every notice: `live`
is true while every channel is subscribed and the connection was heard from within
`stale_after` seconds (a PING goes out every `heartbeat`). Pub/sub drops what is published
while a subscriber is away, so each (re)subscription first tells its subscriber `deaf`, then
awaits its `resubscribed` (flush, or reload from Redis) before the channel counts as live.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Protocol

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

log = structlog.get_logger("strata.notices")


class Subscriber(Protocol):
    def heard(self, data: bytes) -> None:
        """A notice on the channel (called in order of publication)."""
        ...

    def deaf(self) -> None:
        """Notices may have been missed: stop trusting what they kept fresh."""
        ...

    async def resubscribed(self) -> None:
        """Subscribed again: catch up on what may have been missed."""
        ...


class RedisNotices:
    def __init__(self, client: Redis, *, heartbeat: float = 1.0, stale_after: float = 3.0) -> None:
        self.client = client
        self.heartbeat = heartbeat
        self.stale_after = stale_after
        self.subscribers: dict[str, Subscriber] = {}
        self.running = False
        self._subscribed: set[str] = set()
        self._heard = -float("inf")
        self._pubsub: PubSub | None = None
        self._settling: dict[str, asyncio.Future[None]] = {}

    def add(self, channel: str, subscriber: Subscriber) -> None:
        """Before `run`: `subscriber` hears every notice on `channel`."""
        self.subscribers[channel] = subscriber

    @property
    def live(self) -> bool:
        """Every notice published now will be heard (see the module's docstring)."""
        return (
            len(self._subscribed) == len(self.subscribers)
            and time.monotonic() - self._heard < self.stale_after
        )

    async def run(self, stop: asyncio.Event, retry_after: float = 0.5) -> None:
        """Listen until `stop`; reconnect after any failure (deaf meanwhile)."""
        self.running = True
        try:
            while not stop.is_set():
                pubsub = self.client.pubsub()
                try:
                    await pubsub.subscribe(*self.subscribers)
                    self._pubsub = pubsub
                    await self._listen(pubsub, stop)
                except (RedisError, OSError) as exc:
                    log.warning("notices: subscription lost; reconnecting", error=str(exc))
                finally:
                    self._pubsub = None
                    self._deaf()
                    with contextlib.suppress(RedisError, OSError):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=retry_after)
        finally:
            self.running = False

    async def settle(self, timeout: float = 1.0) -> None:
        """Return once every notice published before this call was heard: a PING on the
        subscriber connection is answered after them. Not live: nothing to do (what the
        notices keep fresh is not trusted then)."""
        pubsub = self._pubsub
        if pubsub is None or not self.live:
            return
        token = uuid.uuid4().hex
        answered = asyncio.get_running_loop().create_future()
        self._settling[token] = answered
        try:
            await pubsub.ping(token)
            await asyncio.wait_for(answered, timeout)
        except (TimeoutError, RedisError, OSError):
            self._heard = -float("inf")  # not live until the connection is heard again
        finally:
            self._settling.pop(token, None)

    async def _listen(self, pubsub: PubSub, stop: asyncio.Event) -> None:
        pinged = time.monotonic()
        while not stop.is_set():
            message = await pubsub.get_message(timeout=self.heartbeat)
            now = time.monotonic()
            if message is not None:
                await self._handle(message, now)
            if now - pinged >= self.heartbeat:
                await pubsub.ping()
                pinged = now

    async def _handle(self, message: dict[str, object], now: float) -> None:
        kind = message["type"]
        channel = _text(message.get("channel"))
        if kind == "message" and channel in self.subscribers:
            data = message["data"]
            self.subscribers[channel].heard(data if isinstance(data, bytes) else b"")
        elif kind == "subscribe" and channel in self.subscribers:
            # The first subscription, or redis-py's own after a reconnection.
            self._subscribed.discard(channel)
            subscriber = self.subscribers[channel]
            subscriber.deaf()
            await subscriber.resubscribed()
            self._subscribed.add(channel)
        elif kind == "pong":
            waiter = self._settling.get(_text(message.get("data")))
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        self._heard = now

    def _deaf(self) -> None:
        self._subscribed.clear()
        for subscriber in self.subscribers.values():
            subscriber.deaf()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
