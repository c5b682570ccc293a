"""An EventSource woken by PostgreSQL LISTEN/NOTIFY (the recorder NOTIFYs in each append)."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
import structlog

from infra.adapters.eventstore.store import EventLog, PollingEventSource

log = structlog.get_logger("strata.eventstore")


class ListenNotifyEventSource(PollingEventSource):
    """Waits on NOTIFY; polls slowly as a safety net should a notification be missed.

    One source serves every runner of a process (a projector feeds several projections), so
    one listener task owns the LISTEN connection and wakes *every* waiter per notification:
    when each runner read `notifies()` itself, a notification woke only one of them and the
    others waited for their timeout (~1 s late read-your-writes and revocations)."""

    def __init__(self, log: EventLog, dsn: str, channel: str, safety_poll: float = 2.0) -> None:
        super().__init__(log, poll_interval=safety_poll)
        self.dsn = dsn
        self.channel = channel
        self._conn: psycopg.AsyncConnection | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listening: asyncio.Event | None = None
        self._wakeup: asyncio.Event | None = None
        self._early: set[int] = set()

    async def _listen(self) -> psycopg.AsyncConnection:
        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        await conn.execute(
            psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(self.channel))
        )
        return conn

    def _wake_all(self) -> None:
        woken, self._wakeup = self._wakeup, asyncio.Event()
        if woken is not None:
            woken.set()

    async def _run(self, listening: asyncio.Event) -> None:
        backoff = 0.2
        while True:
            try:
                self._conn = await self._listen()
                listening.set()
                self._wake_all()  # commits made while LISTEN was not in place: read again
                backoff = 0.2
                async for _ in self._conn.notifies():
                    self._wake_all()
            except psycopg.OperationalError as exc:
                log.warning("event store LISTEN connection lost; retrying", error=str(exc))
                listening.set()  # waiters fall back on the safety poll meanwhile
                self._conn = None
                self._wake_all()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def wait(self, after: int, timeout: float) -> None:
        if self._listener is None or self._listener.done():
            # Returning once LISTEN is in place makes the caller read again, so a commit
            # between its last read and the LISTEN is not left waiting.
            self._listening = asyncio.Event()
            self._wakeup = asyncio.Event()
            self._listener = asyncio.create_task(self._run(self._listening))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._listening.wait(), timeout)
            return
        woken = self._wakeup
        assert woken is not None
        # A commit between the caller's read and this wait notified before we took `woken`:
        # the head shows it, so read again at once instead of waiting for the next one (once
        # per position: should a read not see what the head shows, do not spin on it).
        if after not in self._early and await self.head() > after:
            if len(self._early) > 256:  # positions left behind by callers that moved on
                self._early.clear()
            self._early.add(after)
            return
        self._early.discard(after)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), min(timeout, self.poll_interval))

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
