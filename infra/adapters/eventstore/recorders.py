"""eventsourcing's application recorders, extended with what Strata needs in the same transaction.

Each recorder also keeps idempotent responses (written in the transaction that appends the
events, so a crash can never keep one without the other) and answers two extra queries: the
current version of many streams at once, and a stream's events with their global positions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

import psycopg
from eventsourcing.persistence import InterfaceError, Notification, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Composable, Identifier

IDEMPOTENCY_TABLE = "strata_idempotency"
APPEND_FUNCTION = "strata_append"

# Every Strata process creates its schema and tables on start (IF NOT EXISTS, CREATE OR
# REPLACE FUNCTION ...). PostgreSQL does not serialise concurrent DDL on its catalogs: two
# processes starting at once can fail with "tuple concurrently updated" or a duplicate key in
# pg_type/pg_namespace. One database-wide advisory lock makes them take turns.
DDL_LOCK = 0x5374_7261_7461_0DD1  # "Strata" + DDL: one key for every process and schema


@contextlib.contextmanager
def ddl_lock(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """Hold Strata's DDL advisory lock: a session lock on a connection of its own, because
    eventsourcing creates its types in transactions of their own (a transaction-scoped lock
    would not cover them)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (DDL_LOCK,))
        try:
            yield conn
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (DDL_LOCK,))


def _rendered(statement: Composable) -> bytes:
    """A statement as bytes, rendered once. psycopg renders a `Composed` statement again at
    every execute (quoting each identifier), and caches its parsing only for plain bytes:
    about a third of the write path's client CPU went there."""
    return statement.as_bytes(None)


@dataclass(frozen=True, slots=True)
class KeptResponse:
    scope: str
    key: str
    fingerprint: bytes
    status: int
    body: bytes


# Called inside the appending transaction with the positions just assigned.
OnRecorded = Callable[[Sequence[int]], KeptResponse | None]


@dataclass(frozen=True, slots=True)
class PositionedEvent:
    position: int
    stored: StoredEvent


class PostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore) -> None:
        super().__init__(datastore)
        # NOTIFY/LISTEN channels are per database, not per schema: named after the table
        # alone, every deployment (or test) in the database woke every other's listeners.
        self.channel_name = f"{datastore.schema}_{self.events_table_name}"[:63]
        schema = Identifier(datastore.schema)
        table = Identifier(self.events_table_name)
        idem = Identifier(IDEMPOTENCY_TABLE)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{idem} ("
                "scope text NOT NULL, key text NOT NULL, fingerprint bytea NOT NULL, "
                "status integer NOT NULL, body bytea NOT NULL, "
                "created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (scope, key))"
            ).format(schema=schema, idem=idem)
        )
        append = Identifier(APPEND_FUNCTION)

        def statement(text: str) -> bytes:
            return _rendered(SQL(text).format(schema=schema, table=table, idem=idem, append=append))

        self._insert_kept = statement(
            "INSERT INTO {schema}.{idem} (scope, key, fingerprint, status, body) "
            "VALUES (%s, %s, %s, %s, %s)"
        )
        self._select_kept = statement(
            "SELECT fingerprint, status, body FROM {schema}.{idem} WHERE scope = %s AND key = %s"
        )
        self._expire_kept = statement(
            "DELETE FROM {schema}.{idem} WHERE created_at < now() - make_interval(secs => %s)"
        )
        self._select_versions = statement(
            "SELECT originator_id, max(originator_version) AS version FROM {schema}.{table} "
            "WHERE originator_id = ANY(%b) GROUP BY originator_id"
        )
        # An append is one statement, so one round trip: a function that takes the table lock
        # (commit order = position order, so tailing readers never pass a gap that fills in
        # later), notifies the listeners and inserts. eventsourcing's own function (its
        # enable_db_functions) skips the lock, and its readers skip events. Four typed arrays
        # sent in binary: several times cheaper to adapt than an array of composite values.
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{append}("
                "ids uuid[], versions int8[], topics text[], states bytea[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql "
                "SET lock_timeout = {timeout} AS $$ BEGIN "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "RETURN QUERY INSERT INTO {schema}.{table} "
                "(originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(ids, versions, topics, states) RETURNING notification_id; "
                "END $$"
            ).format(
                schema=schema,
                append=append,
                table=table,
                channel=Identifier(self.channel_name),
                timeout=f"{datastore.lock_timeout}s",
            )
        )
        self._append = statement(
            "SELECT {schema}.{append}(%b::uuid[], %b::int8[], %b::text[], %b::bytea[]) AS id"
        )
        self._select_history = statement(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{table} WHERE originator_id = %s ORDER BY originator_version"
        )
        # eventsourcing's own statements on the hot paths, rendered once too.
        self._select_head = statement("SELECT MAX(notification_id) FROM {schema}.{table}")
        self._select_after = statement(
            "SELECT * FROM {schema}.{table} WHERE notification_id>%s "
            "ORDER BY notification_id LIMIT %s"
        )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def max_notification_id(self) -> int | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_head, prepare=True)
            row = curs.fetchone()
            return None if row is None else cast(int | None, row["max"])

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        if start is None or inclusive_of_start or stop is not None or topics:
            notifications: Sequence[Notification] = super().select_notifications(
                start, limit, stop, topics, inclusive_of_start=inclusive_of_start
            )
            return notifications
        # The one shape the log's readers use, without building the statement each time.
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_after, (start, limit), prepare=True)
            return [
                Notification(
                    id=row["notification_id"],
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
                for row in curs.fetchall()
            ]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """One statement, its own transaction; with `on_recorded`, a transaction that also
        keeps what it returns."""
        columns = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        on_recorded: OnRecorded | None = kwargs.get("on_recorded")
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            if on_recorded is None:
                curs.execute(self._append, columns, prepare=True)
                return [row["id"] for row in curs.fetchall()]
            with conn.transaction():
                curs.execute(self._append, columns, prepare=True)
                ids = [row["id"] for row in curs.fetchall()]
                kept = on_recorded(ids)
                if kept is not None:
                    curs.execute(
                        self._insert_kept,
                        (kept.scope, kept.key, kept.fingerprint, kept.status, kept.body),
                    )
            return ids

    def versions(self, stream_ids: Sequence[UUID]) -> dict[UUID, int]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_versions, (list(stream_ids),), prepare=True)
            return {row["originator_id"]: row["version"] for row in curs.fetchall()}

    def history(self, stream_id: UUID) -> list[PositionedEvent]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_history, (stream_id,), prepare=True)
            return [
                PositionedEvent(
                    position=row["notification_id"],
                    stored=StoredEvent(
                        originator_id=row["originator_id"],
                        originator_version=row["originator_version"],
                        topic=row["topic"],
                        state=bytes(row["state"]),
                    ),
                )
                for row in curs.fetchall()
            ]

    def recall(self, scope: str, key: str) -> tuple[bytes, int, bytes] | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_kept, (scope, key))
            row = curs.fetchone()
            if row is None:
                return None
            return bytes(row["fingerprint"]), row["status"], bytes(row["body"])

    def expire_kept(self, older_than_seconds: float) -> int:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._expire_kept, (older_than_seconds,))
            return curs.rowcount


class SQLiteRecorder(SQLiteApplicationRecorder):
    def __init__(self, datastore: SQLiteDatastore) -> None:
        super().__init__(datastore)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {IDEMPOTENCY_TABLE} ("
            "scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint BLOB NOT NULL, "
            "status INTEGER NOT NULL, body BLOB NOT NULL, "
            "created_at REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0), "
            "PRIMARY KEY (scope, key))",
        ]

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        on_recorded: OnRecorded | None = kwargs.get("on_recorded")
        if on_recorded is not None and ids:
            kept = on_recorded(ids)
            if kept is not None:
                c.execute(
                    f"INSERT INTO {IDEMPOTENCY_TABLE} (scope, key, fingerprint, status, body) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (kept.scope, kept.key, kept.fingerprint, kept.status, kept.body),
                )
        return ids

    def versions(self, stream_ids: Sequence[UUID]) -> dict[UUID, int]:
        found: dict[UUID, int] = {}
        ids = [stream_id.hex for stream_id in stream_ids]
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                c.execute(
                    f"SELECT originator_id, max(originator_version) FROM {self.events_table_name} "
                    f"WHERE originator_id IN ({','.join('?' * len(chunk))}) GROUP BY originator_id",
                    chunk,
                )
                found.update({UUID(hex=row[0]): row[1] for row in c.fetchall()})
        return found

    def history(self, stream_id: UUID) -> list[PositionedEvent]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT rowid, originator_version, topic, state FROM {self.events_table_name} "
                "WHERE originator_id = ? ORDER BY originator_version",
                (stream_id.hex,),
            )
            return [
                PositionedEvent(
                    position=row[0],
                    stored=StoredEvent(
                        originator_id=stream_id,
                        originator_version=row[1],
                        topic=row[2],
                        state=row[3],
                    ),
                )
                for row in c.fetchall()
            ]

    def recall(self, scope: str, key: str) -> tuple[bytes, int, bytes] | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT fingerprint, status, body FROM {IDEMPOTENCY_TABLE} "
                "WHERE scope = ? AND key = ?",
                (scope, key),
            )
            row = c.fetchone()
            return None if row is None else (bytes(row[0]), row[1], bytes(row[2]))

    def expire_kept(self, older_than_seconds: float) -> int:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"DELETE FROM {IDEMPOTENCY_TABLE} "
                "WHERE created_at < (julianday('now') - 2440587.5) * 86400.0 - ?",
                (older_than_seconds,),
            )
            c.execute("SELECT changes()")
            return int(c.fetchone()[0])
