"""The analytics schema as an ordered list of versioned migrations, applied on start.

Global migrations run once per database; per-generation migrations run for every live
generation on start and, in order, for each new generation, so all generations share one
versioned DDL. Every statement is idempotent (IF NOT EXISTS), and `schema_migrations`
records what ran: a crash half-way, or two processes starting at once, are both harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROJECTION = "analytics"
RECORDS = "records_v2"
"""The records table (migration 4): the ingested JSON text and the same JSON as typed
subcolumns (`fields`); `records_gN`, migration 3's table of text only, is copied into it."""
CHANGES = "changes"
"""Migration 5: a copy of every record row as it is applied, with its insert time: the tail
that queries merge with the latest snapshot (ADR 9, amendment 2)."""
SNAPSHOTS = "snapshots"
"""Migration 5: the log of snapshots of a generation (ready, dropped) and their cuts."""

SNAPSHOT_DDL = """CREATE TABLE IF NOT EXISTS {table} (
    account_id LowCardinality(String),
    source LowCardinality(String),
    id String,
    version UInt64,
    updated_at DateTime64(6, 'UTC'),
    position UInt64,
    is_deleted UInt8,
    data String CODEC(ZSTD(3)),
    fields JSON,
    key_hash UInt64 MATERIALIZED cityHash64(source, id),
    INDEX updated_at_minmax updated_at TYPE minmax GRANULARITY 4
) ENGINE = MergeTree ORDER BY (account_id, source, id)"""
"""A snapshot: one row per record, the newest as of its cut (a tombstone for a deleted one),
read without FINAL. `key_hash` lets queries set aside the rows the tail replaces cheaply."""

JSON_SETTINGS: dict[str, Any] = {
    "input_format_try_infer_dates": 0,  # "2026-01-31" stays a String (not a Date)
    "input_format_try_infer_datetimes": 0,
    "json_type_escape_dots_in_keys": 1,  # {"a.b": 1} is not the path a.b of {"a": {"b": 1}}
    "type_json_skip_duplicated_paths": 1,  # so the escaped "a%2Eb" and "a.b" never collide
    # Arrays of mixed types are Array(Dynamic): [false, "a"] does not become ["false", "a"].
    "input_format_json_read_bools_as_strings": 0,
    "input_format_json_read_bools_as_numbers": 0,
    "input_format_json_read_numbers_as_strings": 0,
    "input_format_json_read_arrays_as_strings": 0,
    "input_format_json_read_objects_as_strings": 0,
}
"""How `data` becomes `fields`: settings of every statement that writes records. The
MATERIALIZED expression uses the inserting statement's settings (a column added by ALTER
would be computed with the server's defaults instead, so migration 4 copies the rows)."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    per_generation: bool = False


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "migration bookkeeping",
        (
            """CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
                version UInt32, generation UInt32, description String,
                applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
            ) ENGINE = ReplacingMergeTree ORDER BY (version, generation)""",
        ),
    ),
    Migration(
        2,
        "generation pointer: an append-only log of created/activated/dropped generations",
        (
            """CREATE TABLE IF NOT EXISTS {db}.generations (
                model LowCardinality(String), generation UInt32,
                event Enum8('created' = 1, 'activated' = 2, 'dropped' = 3),
                at DateTime64(6, 'UTC') DEFAULT now64(6)
            ) ENGINE = MergeTree ORDER BY (model, at)""",
        ),
    ),
    Migration(
        3,
        "records (latest state), usage (one row per event and metric), checkpoints",
        (
            # Latest state per record: the highest version wins; FINAL drops tombstones.
            # No time partitioning: every version of a record must share a part's partition
            # to be replaced. Account and source lead the key; a minmax index serves time.
            """CREATE TABLE IF NOT EXISTS {db}.records_g{g} (
                account_id String,
                source LowCardinality(String),
                id String,
                version UInt64,
                updated_at DateTime64(6, 'UTC'),
                position UInt64,
                is_deleted UInt8,
                data String CODEC(ZSTD(3)),
                INDEX updated_at_minmax updated_at TYPE minmax GRANULARITY 4
            ) ENGINE = ReplacingMergeTree(version, is_deleted)
            ORDER BY (account_id, source, id)""",
            # Keyed by the event's position, so a redelivered event replaces itself instead
            # of counting twice (a SummingMergeTree alone would double count it).
            """CREATE TABLE IF NOT EXISTS {db}.usage_g{g} (
                account_id String,
                hour DateTime('UTC'),
                metric LowCardinality(String),
                position UInt64,
                value UInt64
            ) ENGINE = ReplacingMergeTree
            PARTITION BY toYYYYMM(hour)
            ORDER BY (account_id, hour, metric, position)""",
            """CREATE TABLE IF NOT EXISTS {db}.checkpoints_g{g} (
                slot Int32, position UInt64, at DateTime64(3, 'UTC') DEFAULT now64(3)
            ) ENGINE = ReplacingMergeTree(position) ORDER BY slot""",
        ),
        per_generation=True,
    ),
    Migration(
        4,
        "records_v2: data also as a JSON column with typed subcolumns; records copied over",
        (
            # `fields` holds `data` as ClickHouse's JSON type: every path a typed subcolumn
            # (`fields.status.:String`), read alone; queries no longer parse the text. The
            # key and engine are migration 3's (latest state by FINAL). account_id is
            # LowCardinality: every query compares it on every row it reads.
            """CREATE TABLE IF NOT EXISTS {db}.records_v2_g{g} (
                account_id LowCardinality(String),
                source LowCardinality(String),
                id String,
                version UInt64,
                updated_at DateTime64(6, 'UTC'),
                position UInt64,
                is_deleted UInt8,
                data String CODEC(ZSTD(3)),
                fields JSON MATERIALIZED data,
                INDEX updated_at_minmax updated_at TYPE minmax GRANULARITY 4
            ) ENGINE = ReplacingMergeTree(version, is_deleted)
            ORDER BY (account_id, source, id)""",
            # Copy, then drop, migration 3's table. Re-creating it empty first makes the
            # three steps safe to repeat after a crash (a repeated copy is absorbed: same
            # keys and versions).
            """CREATE TABLE IF NOT EXISTS {db}.records_g{g} (
                account_id String, source LowCardinality(String), id String, version UInt64,
                updated_at DateTime64(6, 'UTC'), position UInt64, is_deleted UInt8,
                data String
            ) ENGINE = ReplacingMergeTree(version, is_deleted) ORDER BY (account_id, source, id)""",
            """INSERT INTO {db}.records_v2_g{g}
                (account_id, source, id, version, updated_at, position, is_deleted, data)
            SELECT account_id, source, id, version, updated_at, position, is_deleted, data
            FROM {db}.records_g{g}""",
            "DROP TABLE IF EXISTS {db}.records_g{g}",
        ),
        per_generation=True,
    ),
    Migration(
        5,
        "changes (the tail since the latest snapshot) and the snapshot log",
        (
            # Written after records, with the server's clock: a row that a snapshot did not
            # see was committed after the snapshot began, so its copy here is later than the
            # snapshot's cut. Dropped by day once older than every snapshot in use.
            """CREATE TABLE IF NOT EXISTS {db}.changes_g{g} (
                account_id LowCardinality(String),
                source LowCardinality(String),
                id String,
                version UInt64,
                updated_at DateTime64(6, 'UTC'),
                position UInt64,
                is_deleted UInt8,
                data String CODEC(ZSTD(3)),
                fields JSON MATERIALIZED data,
                inserted_at DateTime64(6, 'UTC') DEFAULT now64(6)
            ) ENGINE = MergeTree PARTITION BY toYYYYMMDD(inserted_at)
            ORDER BY (account_id, source, inserted_at)""",
            """CREATE TABLE IF NOT EXISTS {db}.snapshots_g{g} (
                snapshot UInt32, cut DateTime64(6, 'UTC'), rows UInt64,
                event Enum8('ready' = 1, 'dropped' = 2),
                at DateTime64(6, 'UTC') DEFAULT now64(6)
            ) ENGINE = MergeTree ORDER BY (snapshot, at)""",
        ),
        per_generation=True,
    ),
)

GENERATION_TABLES = (RECORDS, "records", "usage", "checkpoints", CHANGES, SNAPSHOTS)


def table(db: str, name: str, generation: int) -> str:
    return f"{db}.{name}_g{generation}"


def _applied(client: Any, db: str) -> set[tuple[int, int]]:
    rows = client.query(f"SELECT version, generation FROM {db}.schema_migrations").result_rows
    return {(int(v), int(g)) for v, g in rows}


def _run(client: Any, db: str, migration: Migration, generation: int) -> None:
    for statement in migration.statements:
        client.command(statement.format(db=db, g=generation), settings=JSON_SETTINGS)
    client.insert(
        f"{db}.schema_migrations",
        [[migration.version, generation, migration.description]],
        column_names=["version", "generation", "description"],
    )


def migrate_global(client: Any, db: str) -> None:
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}")
    _run_pending(client, db, [m for m in MIGRATIONS if not m.per_generation], 0)


def migrate_generation(client: Any, db: str, generation: int) -> None:
    _run_pending(client, db, [m for m in MIGRATIONS if m.per_generation], generation)


def _run_pending(client: Any, db: str, migrations: list[Migration], generation: int) -> None:
    bookkeeping = MIGRATIONS[0]
    if generation == 0:  # the table that records migrations must exist to be read
        for statement in bookkeeping.statements:
            client.command(statement.format(db=db, g=0))
    done = _applied(client, db)
    for migration in migrations:
        if (migration.version, generation) not in done:
            _run(client, db, migration, generation)


def live_generations(client: Any, db: str) -> list[int]:
    rows = client.query(
        f"SELECT generation FROM {db}.generations WHERE model = {{p:String}} "
        "GROUP BY generation HAVING countIf(event = 'dropped') = 0 ORDER BY generation",
        parameters={"p": PROJECTION},
    ).result_rows
    return [int(row[0]) for row in rows]


def latest_generation(client: Any, db: str) -> int:
    rows = client.query(
        f"SELECT max(generation) FROM {db}.generations WHERE model = {{p:String}}",
        parameters={"p": PROJECTION},
    ).result_rows
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def active_generation(client: Any, db: str) -> int:
    rows = client.query(
        f"SELECT argMax(generation, at), count() FROM {db}.generations "
        "WHERE model = {p:String} AND event = 'activated'",
        parameters={"p": PROJECTION},
    ).result_rows
    return int(rows[0][0]) if rows and rows[0][1] else 0


def record_generation(client: Any, db: str, generation: int, event: str) -> None:
    client.insert(
        f"{db}.generations",
        [[PROJECTION, generation, event]],
        column_names=["model", "generation", "event"],
    )


def create_generation(client: Any, db: str) -> int:
    generation = latest_generation(client, db) + 1
    migrate_generation(client, db, generation)
    record_generation(client, db, generation, "created")
    return generation


def start(client: Any, db: str) -> None:
    """Everything a process needs before its first read or write: global migrations, the
    per-generation ones for every live generation, and a first active generation."""
    migrate_global(client, db)
    for generation in live_generations(client, db):
        migrate_generation(client, db, generation)
    if active_generation(client, db) == 0:
        generation = create_generation(client, db)
        record_generation(client, db, generation, "activated")


def snapshot_table(db: str, generation: int, snapshot: int) -> str:
    return table(db, f"snapshot{snapshot}", generation)


def drop_generation(client: Any, db: str, generation: int) -> None:
    prefix = f"snapshot%\\_g{generation}"
    for (name,) in client.query(
        "SELECT name FROM system.tables WHERE database = {d:String} AND name LIKE {p:String}",
        parameters={"d": db, "p": prefix},
    ).result_rows:
        client.command(f"DROP TABLE IF EXISTS {db}.{name}")
    for name in GENERATION_TABLES:
        client.command(f"DROP TABLE IF EXISTS {table(db, name, generation)}")
    record_generation(client, db, generation, "dropped")
