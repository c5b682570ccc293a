"""Processes of the distributed mode starting at once all create the event store's tables
(CREATE ... IF NOT EXISTS, CREATE OR REPLACE FUNCTION): they take turns (an advisory lock)
instead of failing with "tuple concurrently updated" or a duplicate pg_type key."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg import sql

from infra.bootstrap import bootstrap
from infra.config import from_env
from tests.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.integration

STARTING = 8


def test_processes_starting_at_once_create_the_event_store_together(
    pg_schema: Any, redis_url: str, redis_prefix: str
) -> None:
    # A schema nobody created yet: CREATE SCHEMA races too.
    schema = f"{pg_schema.schema}_fresh"
    settings = from_env(
        {},
        mode="distributed",
        postgres_dsn=pg_schema.dsn,
        postgres_schema=schema,
        postgres_pool_size=1,
        redis_url=redis_url,
        redis_prefix=redis_prefix.rstrip(":"),
        admin_token=ADMIN_TOKEN,
    )
    gate = threading.Barrier(STARTING)

    def start() -> int:
        gate.wait()
        platform = bootstrap(settings)
        try:
            return platform.log.head()
        finally:
            platform.log.close()

    try:
        with ThreadPoolExecutor(STARTING) as pool:
            heads = [f.result() for f in [pool.submit(start) for _ in range(STARTING)]]
        assert heads == [0] * STARTING
    finally:
        with psycopg.connect(pg_schema.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
