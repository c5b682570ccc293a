"""Configuration: environment variables only (12-factor). Read once, by the composition root."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

Mode = Literal["embedded", "distributed"]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    mode: Mode = "embedded"
    data_dir: str = "strata-data"
    host: str = "127.0.0.1"
    command_port: int = 8000
    read_port: int = 8001
    metrics_port: int | None = None
    """Prometheus /metrics of a process without an API (relay, worker, projector), served on
    this port when set. The APIs serve /metrics on their own port."""
    admin_token: str | None = None

    postgres_dsn: str = "postgresql://strata:strata@127.0.0.1:5432/strata"
    postgres_schema: str = "public"
    postgres_pool_size: int = 10
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "strata"
    redis_pool_size: int = 64
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = "strata."
    kafka_partitions: int = 6
    kafka_replication: int = 1
    projection_feed: Literal["log", "kafka"] | None = None
    """Who feeds the projections: the event store's log (`strata dev`, `strata projector`)
    or Kafka (`strata relay` + `strata worker`). Default: log embedded, kafka distributed."""
    relay_batch_size: int = 2000
    watermark_interval: float = 1.0
    relay_linger: float = 0.1
    """Seconds between the starts of two relay reads under a steady stream of commits, so
    that they go to Kafka as one batch (a full batch and a commit after a quiet spell go
    at once)."""
    worker_engine: Literal["faust", "batch"] = "faust"
    """How `strata worker` consumes for a projection: a Faust agent (`faust`, the design's
    stream processor), or whole Kafka fetches handed to the same projection code (`batch`,
    less CPU per event: docs/adr/0007-kafka-pipeline.md). Webhooks are always Faust."""
    elasticsearch_url: str = "http://127.0.0.1:9200"
    elasticsearch_index_prefix: str = "strata-"
    """The search index is `<prefix>search` (an alias over `<prefix>search-g<N>`)."""
    clickhouse_url: str | None = None
    """A ClickHouse server, http(s)://user:password@host:8123/database. Unset: chdb in-process
    at clickhouse_path, which one process owns (docs/adr/0009-analytics.md)."""
    clickhouse_path: str | None = None
    """The chdb data path without clickhouse_url (default <data dir>/clickhouse)."""
    analytics_pace: float = 1.0
    """Seconds the log-fed analytics projection lets events gather after applying some:
    ClickHouse takes fewer, larger inserts far more cheaply (0: apply each notification)."""
    analytics_priority: int = 10
    """The nice value (0-19) of ClickHouse's threads while they insert into analytics: when
    the cores are busy, the analytics feed falls behind instead of slowing requests and the
    other projections (0: the same priority as everything else)."""
    analytics_field_columns: int = 16
    """How many of the data fields queries read most (twice within an hour) the analytics
    snapshot keeps as columns of their own, read instead of the JSON column (0: none)."""
    query_max_rows: int = 10_000
    query_max_execution_seconds: float = 10.0
    query_max_memory_bytes: int = 1 << 30

    log_level: str = "info"
    log_format: Literal["json", "console"] = "json"

    max_body_bytes: int = 10 * 1024 * 1024
    request_timeout_seconds: float = 30.0
    """Longest a request may take (408 after, checked every tenth of it, at most every
    second); NDJSON uploads are exempt."""
    cors_origins: str = ""
    """Comma-separated origins allowed to call the APIs from a browser (none by default)."""
    trust_forwarded_proto: bool = False
    """Behind a TLS-terminating proxy: trust X-Forwarded-Proto (for HSTS)."""
    max_batch_records: int = 10_000
    max_record_bytes: int = 256 * 1024
    max_line_bytes: int = 1024 * 1024
    max_stream_bytes: int = 1024 * 1024 * 1024
    stream_chunk_records: int = 1000
    min_position_timeout: float = 5.0
    idempotency_ttl_seconds: float = 24 * 3600.0
    usage_flush_seconds: float = 10.0
    jwt_issuer: str = "strata"
    jwt_audience: str = "strata-api"
    jwt_ttl_seconds: int = 900
    plans_file: str | None = None
    """JSON with the plans' fees, quotas, prices and rate limits (default: built in)."""
    rate_limit_anonymous_per_minute: int = 120
    rate_limit_failures_per_minute: int = 20
    rate_limit_failure_mode: Literal["open", "closed"] = "open"
    """What happens when the limiter's store (Redis) is unreachable: let calls through or
    refuse them with 503."""
    jwt_keys_file: str | None = None
    """The signing-key ring (JSON, 0600); default <data dir>/jwt-keys.json. Every process of
    a deployment must read the same file (e.g. a mounted secret volume)."""
    # --- webhooks (docs/webhooks.md, docs/adr/0011-webhooks.md) ---
    webhook_allowlist: str = ""
    """CIDRs, addresses and host names webhook endpoints may reach although they are private,
    loopback or link-local (comma-separated; default none)."""
    webhook_keys_file: str | None = None
    """The key ring that seals webhook signing secrets (JSON, 0600); default
    <data dir>/webhook-keys.json. Every process of a deployment must read the same file."""
    webhook_max_attempts: int = 8
    webhook_retry_base_seconds: float = 1.0
    webhook_retry_max_seconds: float = 3600.0
    webhook_timeout_seconds: float = 10.0
    webhook_concurrency_per_endpoint: int = 4
    webhook_max_in_flight: int = 64
    webhook_poll_seconds: float = 0.1
    webhook_rotation_grace_seconds: float = 86400.0
    webhook_retention_seconds: float = 7 * 86400.0
    """How long finished deliveries stay in the history."""
    # --- end webhooks ---

    @property
    def feed(self) -> Literal["log", "kafka"]:
        if self.projection_feed is not None:
            return self.projection_feed
        return "kafka" if self.mode == "distributed" else "log"

    def feed_slots(self, reads_credentials: bool) -> range:
        """Checkpoint slots a complete projection has: one for the log; one per partition of
        the events topic (plus one for the credentials topic if it reads it) with Kafka."""
        if self.feed == "log":
            return range(1)
        return range(self.kafka_partitions + (1 if reads_credentials else 0))

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def clickhouse_data_path(self) -> Path:
        if self.clickhouse_path:
            return Path(self.clickhouse_path).expanduser().resolve()
        return self.data_path / "clickhouse"


# Each setting is read from STRATA_<NAME>; the README documents them with these defaults.
ENV_PREFIX = "STRATA_"


def from_env(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    source = os.environ if env is None else env
    raw: dict[str, object] = {}
    for name in Settings.__struct_fields__:
        value = source.get(ENV_PREFIX + name.upper())
        if value not in (None, ""):
            raw[name] = value
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SystemExit(f"invalid configuration: {exc} (check the STRATA_* variables)") from exc


def env_names() -> list[tuple[str, object]]:
    """Every variable with its default, for documentation and `strata config`."""
    defaults = Settings()
    return [
        (ENV_PREFIX + name.upper(), getattr(defaults, name)) for name in Settings.__struct_fields__
    ]
