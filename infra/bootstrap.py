"""The composition root: builds every adapter from Settings and wires the apps and runners.

Embedded vs distributed is decided here, once. Nothing else constructs adapters.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

import psycopg
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from litestar import Litestar
from psycopg.conninfo import conninfo_to_dict
from redis.asyncio import Redis

from commands.api import ROUTES as COMMAND_ROUTES
from commands.api import IngestLimits
from commands.auth import EventStoreAuthenticator
from domain.apikey import hash_token
from infra.adapters.documents.redis import RedisDocumentStore
from infra.adapters.documents.sqlite import SQLiteDocumentStore
from infra.adapters.eventstore.codec import MetadataMapper, OrjsonTranscoder
from infra.adapters.eventstore.listen import ListenNotifyEventSource
from infra.adapters.eventstore.recorders import PostgresRecorder, SQLiteRecorder
from infra.adapters.eventstore.store import EventLog, PollingEventSource
from infra.config import Settings
from infra.gateway.app import build_app
from projections import lookups
from projections.documents import DocumentProjection
from projections.ports import DocumentStore, EventSource
from projections.runner import CatchUpRunner
from read_api.api import ROUTES as READ_ROUTES
from read_api.api import min_position_gate
from read_api.auth import ReadModelAuthenticator
from schemas.events import ProjectedEvent

ADMIN_TOKEN_FILE = "admin-token.sha256"  # noqa: S105 - holds only a hash


class AsyncHistory:
    """The read side's EventHistory over the (synchronous) event log."""

    def __init__(self, log: EventLog) -> None:
        self.log = log

    async def history(self, stream_id: UUID) -> Sequence[ProjectedEvent]:
        return await asyncio.to_thread(self.log.history, stream_id)

    async def head(self) -> int:
        return await asyncio.to_thread(self.log.head)


@dataclass
class Platform:
    """Everything a Strata process may need, built from one Settings."""

    settings: Settings
    log: EventLog
    documents: DocumentStore
    source: EventSource
    admin_token_hash: str | None
    new_admin_token: str | None = None
    _closers: list[object] = field(default_factory=list)

    @property
    def lookups(self) -> DocumentProjection:
        return DocumentProjection(lookups.NAME, self.documents, lookups.changes)

    def projections(self) -> dict[str, DocumentProjection]:
        return {lookups.NAME: self.lookups}

    def runner(self, projection: DocumentProjection) -> CatchUpRunner:
        return CatchUpRunner(self.source, projection, name=projection.name)

    def command_app(self) -> Litestar:
        authenticator = EventStoreAuthenticator(self.log, self.admin_token_hash)
        s = self.settings

        async def authenticate(token: str):  # type: ignore[no-untyped-def]
            return await asyncio.to_thread(authenticator, token)

        return build_app(
            name="command API",
            description="Commands: accounts, API keys and ingest. Every change is an event.",
            routes=COMMAND_ROUTES,
            authenticate=authenticate,
            services={
                "store": self.log,
                "new_secret": lambda: secrets.token_urlsafe(32),
                "limits": IngestLimits(
                    max_batch_records=s.max_batch_records,
                    max_body_bytes=s.max_body_bytes,
                    max_stream_bytes=s.max_stream_bytes,
                    max_line_bytes=s.max_line_bytes,
                    stream_chunk_records=s.stream_chunk_records,
                ),
            },
            checks={"event_store": lambda: asyncio.to_thread(self.log.head)},
            max_body_bytes=s.max_body_bytes,
        )

    def read_app(self) -> Litestar:
        s = self.settings
        return build_app(
            name="read API",
            description="Queries over the read models, audit histories and past states.",
            routes=READ_ROUTES,
            authenticate=ReadModelAuthenticator(self.documents, self.admin_token_hash),
            prepare=min_position_gate(self.documents, s.min_position_timeout),
            services={"docs": self.documents, "events": AsyncHistory(self.log)},
            checks={
                "event_store": lambda: asyncio.to_thread(self.log.head),
                "read_models": self.documents.checkpoints,
            },
            max_body_bytes=s.max_body_bytes,
        )

    async def aclose(self) -> None:
        try:
            for closer in reversed(self._closers):
                result = closer() if callable(closer) else None
                if asyncio.iscoroutine(result):
                    await result
        finally:
            self.log.close()


def bootstrap(settings: Settings) -> Platform:
    if settings.mode == "embedded":
        return _embedded(settings)
    return _distributed(settings)


def _mapper() -> MetadataMapper:
    return MetadataMapper(transcoder=OrjsonTranscoder())


def _embedded(settings: Settings) -> Platform:
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True)
    recorder = SQLiteRecorder(SQLiteDatastore(str(data / "events.sqlite"), pool_size=8))
    recorder.create_table()
    log = EventLog(recorder, _mapper())
    documents = SQLiteDocumentStore(data / "readmodels.sqlite", lookups.NAME)
    token_hash, new_token = _embedded_admin_token(settings, data)
    platform = Platform(
        settings=settings,
        log=log,
        documents=documents,
        source=PollingEventSource(log),
        admin_token_hash=token_hash,
        new_admin_token=new_token,
    )
    platform._closers.append(documents.close)
    return platform


def _embedded_admin_token(settings: Settings, data: Path) -> tuple[str, str | None]:
    """The operator token: STRATA_ADMIN_TOKEN if set, else made once and only its hash kept."""
    if settings.admin_token:
        return hash_token(settings.admin_token), None
    path = data / ADMIN_TOKEN_FILE
    if path.exists():
        return path.read_text().strip(), None
    token = "st_admin_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(hash_token(token))
    return hash_token(token), token


def postgres_datastore(settings: Settings) -> PostgresDatastore:
    params = conninfo_to_dict(settings.postgres_dsn)
    schema = settings.postgres_schema
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(psycopg.sql.Identifier(schema))
        )
    return PostgresDatastore(
        dbname=str(params.get("dbname", "strata")),
        host=str(params.get("host", "127.0.0.1")),
        port=str(params.get("port", "5432")),
        user=str(params.get("user", "strata")),
        password=str(params.get("password", "")),
        pool_size=settings.postgres_pool_size,
        max_overflow=settings.postgres_pool_size,
        schema=schema,
    )


def _distributed(settings: Settings) -> Platform:
    if not settings.admin_token:
        raise SystemExit("STRATA_ADMIN_TOKEN must be set in the distributed mode")
    recorder = PostgresRecorder(postgres_datastore(settings))
    recorder.create_table()
    log = EventLog(recorder, _mapper())
    redis = Redis.from_url(settings.redis_url)
    documents = RedisDocumentStore(redis, lookups.NAME, prefix=settings.redis_prefix)
    source = ListenNotifyEventSource(log, settings.postgres_dsn, channel=recorder.channel_name)
    platform = Platform(
        settings=settings,
        log=log,
        documents=documents,
        source=source,
        admin_token_hash=hash_token(settings.admin_token),
    )
    platform._closers += [redis.aclose, source.close]
    return platform
