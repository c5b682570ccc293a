"""The composition root: builds every adapter from Settings and wires the apps and runners.

Embedded vs distributed is decided here, once. Nothing else constructs adapters.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from uuid import UUID

import faust
import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewTopic
from elasticsearch import AsyncElasticsearch
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from litestar import Litestar
from litestar.openapi.spec import Parameter
from psycopg.conninfo import conninfo_to_dict
from redis.asyncio import BlockingConnectionPool, Redis

from commands.api import ROUTES as COMMAND_ROUTES
from commands.api import IngestLimits
from commands.auth import EventStoreAuthenticator
from commands.oauth import token as oauth_token
from commands.transforms_api import ROUTES as TRANSFORMS
from commands.webhooks import WebhookServices
from commands.webhooks_api import ROUTES as WEBHOOK_COMMAND_ROUTES
from domain.access import Principal, Scope
from domain.apikey import hash_token
from domain.billing import Catalog
from domain.webhook import AddressPolicy
from infra import metrics
from infra.adapters.clickhouse import ClickHouseAnalyticsStore, HotAccessors, Target
from infra.adapters.documents.redis import RedisDocumentStore
from infra.adapters.documents.sqlite import SQLiteDocumentStore
from infra.adapters.eventstore.codec import MetadataMapper, OrjsonTranscoder
from infra.adapters.eventstore.listen import ListenNotifyEventSource
from infra.adapters.eventstore.recorders import PostgresRecorder, SQLiteRecorder, ddl_lock
from infra.adapters.eventstore.store import EventLog, PollingEventSource
from infra.adapters.jwt import InvalidTokenError, JwtService, KeyRing
from infra.adapters.kafka.consumer import BatchWorker
from infra.adapters.kafka.inspect import (
    DeadLetter,
    PartitionLag,
    commit_offset,
    consumer_lag,
    read_all,
)
from infra.adapters.kafka.relay import Relay, RelayPositions
from infra.adapters.kafka.topics import Topics, ensure_topics
from infra.adapters.notices import RedisNotices
from infra.adapters.ratelimit import MemoryLimiter, RedisFailureBook, RedisLimiter
from infra.adapters.search.elastic import ElasticSearchIndex
from infra.adapters.search.sqlite_fts import SQLiteSearchIndex
from infra.adapters.webhooks.guard import UrlGuard
from infra.adapters.webhooks.redis_store import RedisDeliveryStore
from infra.adapters.webhooks.secretbox import KeyRingSecretBox
from infra.adapters.webhooks.sender import HttpSender
from infra.adapters.webhooks.sqlite_store import SQLiteDeliveryStore
from infra.config import Settings
from infra.gateway.app import Gateway, build_app
from infra.gateway.auth import Authenticator, Prepare, bearer
from infra.gateway.metering import Meter
from infra.gateway.ratelimit import FailureBook, Limiter, Policy, RateLimit
from infra.plans import load_catalog
from projections import analytics, lookups, search, webhooks
from projections.analytics import AnalyticsChange
from projections.changes import Positioned
from projections.delivery import DeliveryStore, Dispatcher, Planner, RetryPolicy
from projections.documents import document_repairs
from projections.ports import DocumentStore, EventSource
from projections.projection import Projection
from projections.runner import CatchUpRunner
from projections.search import SearchChange, SearchStore
from read_api.api import MIN_POSITION_PARAMETERS, min_position_gate
from read_api.api import ROUTES as READ_ROUTES
from read_api.auth import ReadModelAuthenticator
from read_api.billing import get_invoice
from read_api.listing import ROUTES as LISTING_ROUTES
from read_api.query import query_records
from read_api.querylang import QueryLimits
from read_api.search import ROUTES as SEARCH_ROUTES
from read_api.transforms import ROUTES as TRANSFORM_READS
from read_api.usage import get_usage
from read_api.webhooks import ROUTES as WEBHOOK_READ_ROUTES
from schemas import contract
from schemas.events import ProjectedEvent
from streams import webhooks as webhook_stream
from streams.app import StreamSettings
from streams.app import build_app as build_stream_app
from streams.worker import Incoming, ProjectionWorker


# --- webhooks (docs/adr/0011-webhooks.md) ---
@dataclass(frozen=True)
class WebhookStores:
    directory: DocumentStore
    """The `webhooks` read model (endpoints and sealed secrets)."""
    deliveries: DeliveryStore
    """The delivery queue and log."""


# --- end webhooks ---

__all__ = ["DeadLetter", "Platform", "bootstrap", "postgres_datastore"]

ADMIN_TOKEN_FILE = "admin-token.sha256"  # noqa: S105 - holds only a hash

ANALYTICS_BATCH = 10_000
"""Events the log-fed analytics projection reads and applies at once (at most)."""


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
    search_index: SearchStore
    admin_token_hash: str | None
    new_admin_token: str | None = None
    meter: Meter = field(default_factory=Meter)
    limiter: Limiter = field(default_factory=MemoryLimiter)
    failures: FailureBook | None = None
    notices: RedisNotices | None = None
    """Distributed: change notices that keep credentials and failed logins in process."""
    _closers: list[object] = field(default_factory=list)
    webhook_stores: WebhookStores = field(init=False)

    def slots(self, projection: str) -> range:
        """The feed slots projection `projection` has checkpoints for when complete."""
        if projection == analytics.NAME and self.analytics_in_read_api:
            return range(1)
        return self.settings.feed_slots(self.projections()[projection].reads_credentials)

    @property
    def feed_slots(self) -> range:
        """The lookups projection's slots (reads and authentication depend on it)."""
        return self.slots(lookups.NAME)

    @property
    def lookups(self) -> Projection[Positioned]:
        return Projection(
            lookups.NAME,
            self.documents,
            lookups.changes,
            repairs=document_repairs,
            reads_credentials=True,
        )

    @property
    def search(self) -> Projection[SearchChange]:
        return Projection(search.NAME, self.search_index, search.changes)

    @cached_property
    def analytics_store(self) -> ClickHouseAnalyticsStore:
        """ClickHouse, opened on first use: a server (STRATA_CLICKHOUSE_URL), or chdb, whose
        data path one process owns (docs/adr/0009-analytics.md)."""
        s = self.settings
        target = Target.of(s.clickhouse_url, str(s.clickhouse_data_path))
        hot = HotAccessors(max_columns=s.analytics_field_columns)
        store = ClickHouseAnalyticsStore(
            target, hot_accessors=hot, insert_priority=s.analytics_priority
        )
        self._closers.append(store.close)
        return store

    @property
    def analytics(self) -> Projection[AnalyticsChange]:
        return Projection(analytics.NAME, self.analytics_store, analytics.changes)

    @property
    def analytics_in_read_api(self) -> bool:
        """With chdb, the process serving the read API owns the engine, so it also feeds
        `analytics` from the log, whatever STRATA_PROJECTION_FEED says."""
        return self.settings.clickhouse_url is None

    def log_fed(self, *, projector: bool, serves_reads: bool) -> list[Projection[Any]]:
        """The projections a process feeds from the log: a projector feeds them all, except
        `analytics` on chdb, which the process serving the read API feeds."""
        fed = []
        for name, projection in self.projections().items():
            owned = name == analytics.NAME and self.analytics_in_read_api
            if serves_reads if owned else projector:
                fed.append(projection)
        return fed

    def projections(self) -> dict[str, Projection[Any]]:
        return {
            lookups.NAME: self.lookups,
            search.NAME: self.search,
            analytics.NAME: self.analytics,
            webhooks.NAME: self.webhooks,
        }

    # --- webhooks ---
    @property
    def webhooks(self) -> webhooks.LogFedWebhooks:
        stores = self.webhook_stores
        return webhooks.LogFedWebhooks(
            stores.directory, stores.deliveries, Planner(stores.deliveries)
        )

    @cached_property
    def webhook_policy(self) -> AddressPolicy:
        try:
            return AddressPolicy.parse(self.settings.webhook_allowlist)
        except ValueError as exc:
            raise SystemExit(f"STRATA_WEBHOOK_ALLOWLIST: {exc}") from None

    @cached_property
    def webhook_secrets(self) -> KeyRingSecretBox:
        s = self.settings
        path = (
            Path(s.webhook_keys_file) if s.webhook_keys_file else s.data_path / "webhook-keys.json"
        )
        return KeyRingSecretBox.from_file(path)

    def webhook_services(self) -> WebhookServices:
        return WebhookServices(
            secrets=self.webhook_secrets,
            guard=UrlGuard(self.webhook_policy),
            new_secret=lambda: secrets.token_urlsafe(32),
            rotation_grace=self.settings.webhook_rotation_grace_seconds,
        )

    def webhook_dispatcher(self) -> Dispatcher:
        """Sends due deliveries (with the log feed, beside the projection runner; with
        Kafka, inside `strata worker --projection webhooks`)."""
        s = self.settings
        sender = HttpSender(self.webhook_policy)
        self._closers.append(sender.close)
        stores = self.webhook_stores
        return Dispatcher(
            stores.deliveries,
            stores.directory,
            sender,
            self.webhook_secrets,
            RetryPolicy(
                max_attempts=s.webhook_max_attempts,
                base=s.webhook_retry_base_seconds,
                cap=s.webhook_retry_max_seconds,
                timeout=s.webhook_timeout_seconds,
            ),
            per_webhook=s.webhook_concurrency_per_endpoint,
            max_in_flight=s.webhook_max_in_flight,
            poll=s.webhook_poll_seconds,
            rotation_grace=s.webhook_rotation_grace_seconds,
            expire=getattr(stores.deliveries, "expire", None),
        )

    def webhook_stream_app(self) -> faust.App:
        topics = self.topics
        stores = self.webhook_stores
        feed = webhook_stream.KafkaWebhookFeed(
            self.webhooks,
            stores.deliveries,
            Planner(stores.deliveries),
            credentials_slot=topics.partitions,
        )
        return webhook_stream.build_app(
            StreamSettings(
                bootstrap=self.settings.kafka_bootstrap,
                group=self.consumer_group(webhooks.NAME),
                topics=[topics.events, topics.credentials],
                dead_letter_topic=topics.dead_letters(webhooks.NAME),
                replication=topics.replication,
            ),
            events_topic=topics.events,
            credentials_topic=topics.credentials,
            feed=feed,
            dispatcher=self.webhook_dispatcher(),
        )

    # --- end webhooks ---

    async def watermark(self, projection: str) -> int:
        """The position up to which `projection` has applied every event (its lowest
        checkpoint over the slots of its feed)."""
        checkpoints = await self.projections()[projection].checkpoints()
        return min(checkpoints.get(slot, 0) for slot in self.slots(projection))

    def runner(self, projection: Projection[Any]) -> CatchUpRunner:
        if projection.name != analytics.NAME:
            return CatchUpRunner(self.source, projection, name=projection.name)
        return self.analytics_runner

    @cached_property
    def analytics_runner(self) -> CatchUpRunner:
        """The log-fed analytics feed; the process's read API hurries it (read_app)."""
        # What gathered during a pace goes to ClickHouse as one apply, not in slices of the
        # runner's default 1,000: measured in chdb, 119 µs of CPU a row at 1,000-row
        # applies, 73-79 at 2,000, 48-51 at 5,000, 36 at 10,000 (parts to write and merge).
        return CatchUpRunner(
            self.source,
            self.analytics,
            name=analytics.NAME,
            pace=self.settings.analytics_pace,
            batch_size=ANALYTICS_BATCH,
        )

    @property
    def topics(self) -> Topics:
        s = self.settings
        return Topics(s.kafka_topic_prefix, s.kafka_partitions, s.kafka_replication)

    def relay(self) -> Relay:
        """The outbox relay (distributed mode): event store -> Kafka."""
        s = self.settings
        if not isinstance(self.source, ListenNotifyEventSource):
            raise SystemExit("the relay needs the distributed mode (PostgreSQL event store)")

        def producer() -> AIOKafkaProducer:
            return AIOKafkaProducer(
                bootstrap_servers=s.kafka_bootstrap,
                enable_idempotence=True,
                acks="all",
                linger_ms=2,
                max_batch_size=1024 * 1024,
                max_request_size=4 * 1024 * 1024,
            )

        positions = RelayPositions(s.postgres_dsn, s.postgres_schema)
        self._closers.append(positions.close)
        return Relay(
            self.source,
            positions,
            producer,
            self.topics,
            batch_size=s.relay_batch_size,
            watermark_interval=s.watermark_interval,
            linger=s.relay_linger,
        )

    async def ensure_topics(self, projection: str | None = None) -> None:
        """Create the event topics (and a projection's dead-letter topic) if missing."""
        topics = self.topics
        specs = topics.specs()
        if projection is not None:
            specs.append(NewTopic(topics.dead_letters(projection), 1, topics.replication))
        await ensure_topics(self.settings.kafka_bootstrap, specs)

    def stream_app(self, name: str) -> faust.App:
        """The Faust app that feeds projection `name` from Kafka (its own consumer group)."""
        if name == webhooks.NAME:
            return self.webhook_stream_app()
        worker, settings = self._projection_worker(name)
        return build_stream_app(settings, worker)

    def batch_worker(self, name: str) -> BatchWorker:
        """The stream worker that feeds projection `name` from Kafka in whole fetches (its own
        consumer group): what `strata worker` runs, except for webhooks (a Faust app)."""
        worker, settings = self._projection_worker(name)
        return BatchWorker(
            worker,
            bootstrap=settings.bootstrap,
            group=settings.group,
            topics=settings.topics,
            dead_letter_topic=settings.dead_letter_topic,
        )

    def _projection_worker(self, name: str) -> tuple[ProjectionWorker, StreamSettings]:
        projection = self.projections()[name]
        topics = self.topics
        credentials_slot = topics.partitions

        def slot_of(topic: str, partition: int) -> int:
            return credentials_slot if topic == topics.credentials else partition

        def accepts(topic: str, event: ProjectedEvent) -> bool:
            from_credentials = topic == topics.credentials
            if not projection.reads_credentials:
                return not from_credentials
            return from_credentials == event.type.startswith(lookups.CREDENTIAL_EVENTS)

        async def no_dead_letters(_message: Incoming, error: BaseException) -> None:
            raise error  # replaced by the transport with its dead-letter topic

        worker = ProjectionWorker(
            projection, slot_of=slot_of, accepts=accepts, dead_letter=no_dead_letters
        )
        metrics.PIPELINE.workers[name] = worker.stats
        settings = StreamSettings(
            bootstrap=self.settings.kafka_bootstrap,
            group=self.consumer_group(name),
            topics=[topics.events, topics.credentials]
            if projection.reads_credentials
            else [topics.events],
            dead_letter_topic=topics.dead_letters(name),
            replication=topics.replication,
        )
        return worker, settings

    def consumer_group(self, projection: str) -> str:
        return f"{self.topics.prefix}projection.{projection}"

    async def consumer_lag(self, projection: str) -> list[PartitionLag]:
        """Kafka lag of a projection's consumer group, per partition."""
        topics = self.topics
        reads_credentials = self.projections()[projection].reads_credentials
        return await consumer_lag(
            self.settings.kafka_bootstrap,
            self.consumer_group(projection),
            [topics.events, topics.credentials] if reads_credentials else [topics.events],
        )

    async def dead_letters(self, projection: str) -> tuple[list[DeadLetter], int]:
        """The projection's dead letters, and the offset from which they are not re-driven."""
        topics = self.topics
        letters = await read_all(self.settings.kafka_bootstrap, topics.dead_letters(projection))
        lag = await consumer_lag(
            self.settings.kafka_bootstrap,
            f"{self.consumer_group(projection)}.redrive",
            [topics.dead_letters(projection)],
        )
        return letters, max(lag[0].committed, 0) if lag else 0

    async def redrive(
        self, projection: str, letters: list[DeadLetter]
    ) -> tuple[int, DeadLetter | None, str]:
        """Repair what each dead letter's stream touches from the event store, in order, and
        mark it re-driven. Stops at the first that still cannot be decoded.
        Returns (how many were re-driven, the one it stopped at, why)."""
        target = self.projections()[projection]
        done = 0
        for letter in letters:
            try:
                event = contract.decode(letter.headers, letter.value)
            except contract.ContractError as exc:
                return done, letter, str(exc)
            if isinstance(event, contract.Watermark):
                continue
            await target.repair(await asyncio.to_thread(self.log.history, event.stream_id))
            await commit_offset(
                self.settings.kafka_bootstrap,
                f"{self.consumer_group(projection)}.redrive",
                self.topics.dead_letters(projection),
                letter.offset + 1,
            )
            done += 1
        return done, None, ""

    @cached_property
    def tokens(self) -> JwtService:
        """Access tokens (OAuth 2.0 client credentials) and the key ring that signs them."""
        s = self.settings
        path = Path(s.jwt_keys_file) if s.jwt_keys_file else s.data_path / "jwt-keys.json"
        ring = KeyRing(path, token_ttl=s.jwt_ttl_seconds)
        ring.ensure()
        return JwtService(ring, s.jwt_issuer, s.jwt_audience, s.jwt_ttl_seconds)

    @cached_property
    def catalog(self) -> Catalog:
        """Plans: fees, quotas, prices and rate limits (STRATA_PLANS_FILE or the defaults)."""
        return load_catalog(self.settings.plans_file)

    @cached_property
    def rate_limit(self) -> RateLimit:
        s = self.settings
        policy = Policy(
            catalog=self.catalog,
            anonymous_per_minute=s.rate_limit_anonymous_per_minute,
            failures_per_minute=s.rate_limit_failures_per_minute,
            failure_mode=s.rate_limit_failure_mode,
        )
        return RateLimit(self.limiter, policy, self.failures)

    @contextlib.asynccontextmanager
    async def listening(self, _: Litestar) -> AsyncIterator[None]:
        """An API's lifespan: hear change notices while it serves (once per process)."""
        notices = self.notices
        if notices is None or notices.running:
            yield
            return
        stop = asyncio.Event()
        task = asyncio.create_task(notices.run(stop), name="notices")
        try:
            yield
        finally:
            stop.set()
            await task

    def _verify_token(self, token: str) -> tuple[UUID, frozenset[Scope]] | None:
        try:
            return self.tokens.verify(token)
        except InvalidTokenError:
            return None

    def command_app(self) -> Litestar:
        authenticator = EventStoreAuthenticator(self.log, self.admin_token_hash)
        s = self.settings

        async def api_key(token: str) -> Principal | None:
            return await asyncio.to_thread(authenticator, token)

        async def by_key(key_id: UUID, scopes: frozenset[Scope]) -> Principal | None:
            return await asyncio.to_thread(authenticator.by_key, key_id, scopes)

        return build_app(
            name="command API",
            description="Commands: accounts, API keys and ingest. Every change is an event.",
            routes=[*COMMAND_ROUTES, *TRANSFORMS, oauth_token, *WEBHOOK_COMMAND_ROUTES],
            gateway=self._gateway(bearer(api_key, self._verify_token, by_key)),
            lifespan=[self.listening],
            services={
                "keys": authenticator,
                "positions": self.positions,
                "tokens": self.tokens,
                "jwks": self.tokens.jwks,
                "store": self.log,
                "new_secret": lambda: secrets.token_urlsafe(32),
                "webhook_services": self.webhook_services(),
                "deliveries": self.webhook_stores.deliveries,
                "limits": IngestLimits(
                    max_batch_records=s.max_batch_records,
                    max_body_bytes=s.max_body_bytes,
                    max_stream_bytes=s.max_stream_bytes,
                    max_line_bytes=s.max_line_bytes,
                    stream_chunk_records=s.stream_chunk_records,
                ),
            },
            checks={"event_store": lambda: asyncio.to_thread(self.log.head)},
        )

    def read_app(self) -> Litestar:
        s = self.settings
        keys = ReadModelAuthenticator(self.documents, self.admin_token_hash)
        return build_app(
            name="read API",
            description="Queries over the read models, audit histories and past states.",
            routes=[
                *READ_ROUTES,
                *LISTING_ROUTES,
                *TRANSFORM_READS,
                *SEARCH_ROUTES,
                query_records,
                get_usage,
                get_invoice,
                *WEBHOOK_READ_ROUTES,
            ],
            gateway=self._gateway(
                bearer(keys, self._verify_token, keys.by_key),
                prepare=min_position_gate(
                    self.documents,
                    s.min_position_timeout,
                    self.feed_slots,
                    others={
                        search.NAME: lambda: self.watermark(search.NAME),
                        analytics.NAME: lambda: self.watermark(analytics.NAME),
                        webhooks.NAME: lambda: self.watermark(webhooks.NAME),
                    },
                    settle=self.notices.settle if self.notices is not None else None,
                    # This process feeds analytics on chdb (ADR 0009): a read that waits
                    # for it cuts the feed's pace short.
                    hurry={analytics.NAME: self.analytics_runner.hurry}
                    if self.analytics_in_read_api
                    else None,
                ),
                prepared=MIN_POSITION_PARAMETERS,
            ),
            lifespan=[self.listening],
            services={
                "positions": self.positions,
                "docs": self.documents,
                "events": AsyncHistory(self.log),
                "search_index": self.search_index,
                "jwks": self.tokens.jwks,
                "analytics": self.analytics_store,
                "usage": self.analytics_store,
                "catalog": self.catalog,
                "webhook_docs": self.webhook_stores.directory,
                "deliveries": self.webhook_stores.deliveries,
                "query_limits": QueryLimits(
                    max_rows=s.query_max_rows,
                    max_execution_seconds=s.query_max_execution_seconds,
                    max_memory_bytes=s.query_max_memory_bytes,
                ),
            },
            checks={
                "event_store": lambda: asyncio.to_thread(self.log.head),
                "read_models": self.documents.checkpoints,
                "search_index": self.search_index.checkpoints,
                "analytics": self.analytics_store.checkpoints,
            },
        )

    def _gateway(
        self,
        authenticate: Authenticator,
        prepare: Prepare | None = None,
        prepared: tuple[Parameter, ...] = (),
    ) -> Gateway:
        s = self.settings
        origins = tuple(o.strip() for o in s.cors_origins.split(",") if o.strip())
        return Gateway(
            authenticate=authenticate,
            max_body_bytes=s.max_body_bytes,
            prepare=prepare,
            prepared_parameters=prepared,
            meter=self.meter,
            rate_limit=self.rate_limit,
            timeout=s.request_timeout_seconds,
            untimed=("/v1/ingest/stream",),
            cors_origins=origins,
            trust_forwarded_proto=s.trust_forwarded_proto,
        )

    async def positions(self) -> tuple[int, dict[str, int]]:
        """The log's head and each projection's watermark (for metrics and status)."""
        head = await asyncio.to_thread(self.log.head)
        applied: dict[str, int] = {}
        for name in self.projections():
            with contextlib.suppress(Exception):  # a store that is down is left out
                applied[name] = await self.watermark(name)
        return head, applied

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
    search_index = SQLiteSearchIndex(data / "search.sqlite", search.NAME)
    token_hash, new_token = _embedded_admin_token(settings, data)
    platform = Platform(
        settings=settings,
        log=log,
        documents=documents,
        source=PollingEventSource(log),
        search_index=search_index,
        admin_token_hash=token_hash,
        new_admin_token=new_token,
    )
    platform._closers += [documents.close, search_index.close]
    # webhooks: the directory beside lookups; deliveries in their own file
    directory = SQLiteDocumentStore(data / "readmodels.sqlite", webhooks.NAME)
    deliveries = SQLiteDeliveryStore(data / "webhooks.sqlite", settings.webhook_retention_seconds)
    platform.webhook_stores = WebhookStores(directory, deliveries)
    platform._closers += [directory.close, deliveries.close]
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
    with ddl_lock(settings.postgres_dsn) as conn:
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
    with ddl_lock(settings.postgres_dsn):
        recorder.create_table()
    log = EventLog(recorder, _mapper())
    # A bounded pool: a burst of requests waits for a connection instead of opening thousands.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=settings.redis_pool_size, timeout=10
    )
    redis = Redis(connection_pool=pool)
    documents = RedisDocumentStore(
        redis, lookups.NAME, prefix=settings.redis_prefix, watch=lookups.CREDENTIAL_DOCUMENTS
    )
    # An API process keeps API keys and failed logins in process while it hears their
    # changes (ADR 6): no Redis round trip for either on most requests.
    notices = RedisNotices(redis)
    notices.add(documents.channel, documents.cached(lambda: notices.live))
    failures = RedisFailureBook(redis, settings.redis_prefix, live=lambda: notices.live)
    notices.add(failures.channel, failures)
    source = ListenNotifyEventSource(log, settings.postgres_dsn, channel=recorder.channel_name)
    elastic = AsyncElasticsearch(settings.elasticsearch_url, request_timeout=30)
    platform = Platform(
        settings=settings,
        log=log,
        documents=documents,
        source=source,
        search_index=ElasticSearchIndex(elastic, settings.elasticsearch_index_prefix),
        admin_token_hash=hash_token(settings.admin_token),
        limiter=RedisLimiter(redis, settings.redis_prefix),
        failures=failures,
        notices=notices,
    )
    webhook_docs = RedisDocumentStore(redis, webhooks.NAME, prefix=settings.redis_prefix)
    platform.webhook_stores = WebhookStores(
        webhook_docs,
        RedisDeliveryStore(redis, settings.redis_prefix, settings.webhook_retention_seconds),
    )
    platform._closers += [redis.aclose, source.close, elastic.close]
    platform._closers += [documents.close, webhook_docs.close]  # each has a read connection
    return platform
