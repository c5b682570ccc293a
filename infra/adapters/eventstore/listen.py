"""An EventSource woken by PostgreSQL LISTEN/NOTIFY (the recorder NOTIFYs in each append)."""

from __future__ import annotations

import psycopg

from infra.adapters.eventstore.store import EventLog, PollingEventSource


class ListenNotifyEventSource(PollingEventSource):
    """Waits on NOTIFY; polls slowly as a safety net should a notification be missed."""

    def __init__(self, log: EventLog, dsn: str, channel: str, safety_poll: float = 2.0) -> None:
        super().__init__(log, poll_interval=safety_poll)
        self.dsn = dsn
        self.channel = channel
        self._conn: psycopg.AsyncConnection | None = None

    async def _listen(self) -> psycopg.AsyncConnection:
        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        await conn.execute(
            psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(self.channel))
        )
        return conn

    async def wait(self, after: int, timeout: float) -> None:
        try:
            if self._conn is None or self._conn.closed:
                # Returning at once makes the caller read again now that LISTEN is in place,
                # so a commit between its last read and the LISTEN is not left waiting.
                self._conn = await self._listen()
                return
            async for _ in self._conn.notifies(
                timeout=min(timeout, self.poll_interval), stop_after=1
            ):
                break
        except psycopg.OperationalError:
            self._conn = None
            await super().wait(after, timeout)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
