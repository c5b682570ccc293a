"""Smoke tests: each engine of the distributed mode, through the client Strata uses.

The servers are started by the fixtures in tests/fixtures/engines.py (infra.provision).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import clickhouse_connect
import psycopg
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError
from elasticsearch import AsyncElasticsearch
from psycopg import sql

pytestmark = pytest.mark.integration  # async tests run via asyncio_mode = "auto"


async def test_postgres_roundtrip(pg_schema: tuple[str, str]) -> None:

    dsn, schema = pg_schema
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        table = sql.Identifier(schema, "events")
        await conn.execute(
            sql.SQL("CREATE TABLE {} (id bigserial PRIMARY KEY, body jsonb NOT NULL)").format(table)
        )
        await conn.execute(
            sql.SQL("INSERT INTO {} (body) VALUES (%s::jsonb), (%s::jsonb)").format(table),
            ['{"n": 1}', '{"n": 2}'],
        )
        await conn.commit()
        cur = await conn.execute(sql.SQL("SELECT sum((body->>'n')::int) FROM {}").format(table))
        assert await cur.fetchone() == (3,)
        cur = await conn.execute("SHOW fsync")
        assert await cur.fetchone() == ("on",)


async def test_redis_roundtrip(redis_url: str, redis_prefix: str) -> None:

    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.set(f"{redis_prefix}greeting", "hello", ex=60)
        await client.incrby(f"{redis_prefix}counter", 5)
        assert await client.get(f"{redis_prefix}greeting") == b"hello"
        assert await client.get(f"{redis_prefix}counter") == b"5"
    finally:
        await client.aclose()


async def test_kafka_idempotent_roundtrip(kafka_bootstrap: str, kafka_topic_prefix: str) -> None:

    topic = f"{kafka_topic_prefix}events"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, f"event-{i}".encode(), key=b"stream-1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"{kafka_topic_prefix}group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        deadline = time.monotonic() + 30
        while len(received) < 10 and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            for messages in batches.values():
                received.extend(m.value for m in messages if m.value is not None)
        await consumer.commit()
    finally:
        await consumer.stop()
    # one key -> one partition -> order preserved, exactly once
    assert received == [f"event-{i}".encode() for i in range(10)]


async def test_kafka_topics_are_not_auto_created(
    kafka_bootstrap: str, kafka_topic_prefix: str
) -> None:

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, request_timeout_ms=3000)
    await producer.start()
    try:
        with pytest.raises((KafkaTimeoutError, UnknownTopicOrPartitionError)):
            await asyncio.wait_for(
                producer.send_and_wait(f"{kafka_topic_prefix}missing", b"x"), timeout=10
            )
    finally:
        await producer.stop()


FAUST_APP = """
import faust

app = faust.App(
    {app_id!r},
    broker="kafka://{bootstrap}",
    store="memory://",
    topic_replication_factor=1,
    topic_partitions=1,
    web_enabled=False,
)
source = app.topic({topic!r}, value_type=bytes, value_serializer="raw")
counts = app.Table("counts", default=int, partitions=1)


@app.agent(source)
async def count(stream):
    async for event in stream:
        counts["seen"] += 1
        print(f"FAUST-SEEN {{counts['seen']}}", flush=True)
"""


@pytest.mark.slow
async def test_faust_worker_against_kafka(
    kafka_bootstrap: str, kafka_topic_prefix: str, tmp_path: Path
) -> None:
    """The Kafka version decision rests on this: faust-streaming talks to this broker
    and creates its own internal topics (changelog, leader) with the admin API."""

    topic = f"{kafka_topic_prefix}faust-in"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(topic, f"e{i}".encode())
    finally:
        await producer.stop()

    app_id = f"{kafka_topic_prefix}app"
    (tmp_path / "faustapp.py").write_text(
        textwrap.dedent(FAUST_APP.format(app_id=app_id, bootstrap=kafka_bootstrap, topic=topic))
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "faust", "-A", "faustapp", "--datadir", str(tmp_path / "data"),
        "worker", "-l", "warn", "--without-web",
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    output: list[str] = []
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(90):
            while not any("FAUST-SEEN 3" in line for line in output):
                line = await proc.stdout.readline()
                if not line:
                    break
                output.append(line.decode(errors="replace").rstrip())
    except TimeoutError:
        pass
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    assert any("FAUST-SEEN 3" in line for line in output), "\n".join(output[-40:])

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        topics = await admin.list_topics()
    finally:
        await admin.close()
    assert f"{app_id}-counts-changelog" in topics


async def test_elasticsearch_index_and_search(elasticsearch_url: str, es_index_prefix: str) -> None:

    index = f"{es_index_prefix}orders"
    client = AsyncElasticsearch(elasticsearch_url)
    try:
        await client.indices.create(
            index=index,
            mappings={"properties": {"title": {"type": "text"}, "status": {"type": "keyword"}}},
        )
        await client.index(index=index, id="1", document={"title": "blue shoes", "status": "open"})
        await client.index(index=index, id="2", document={"title": "red hat", "status": "done"})
        await client.indices.refresh(index=index)
        found = await client.search(index=index, query={"match": {"title": "shoes"}})
        assert [hit["_id"] for hit in found["hits"]["hits"]] == ["1"]
        agg = await client.search(
            index=index, size=0, aggs={"by_status": {"terms": {"field": "status"}}}
        )
        buckets = {b["key"]: b["doc_count"] for b in agg["aggregations"]["by_status"]["buckets"]}
        assert buckets == {"open": 1, "done": 1}
    finally:
        await client.close()


def test_clickhouse_through_chdb(chdb_path: str) -> None:

    client = clickhouse_connect.get_client(interface="chdb", path=chdb_path)
    try:
        client.command(
            "CREATE TABLE order_totals (day Date, tenant String, amount Decimal(18, 2)) "
            "ENGINE = MergeTree ORDER BY (tenant, day)"
        )
        client.insert(
            "order_totals",
            [
                [date(2026, 1, 1), "acme", Decimal("10.50")],
                [date(2026, 1, 1), "acme", Decimal("4.50")],
                [date(2026, 1, 2), "globex", Decimal("7.00")],
            ],
            column_names=["day", "tenant", "amount"],
        )
        rows = client.query(
            "SELECT tenant, sum(amount) FROM order_totals GROUP BY tenant ORDER BY tenant"
        ).result_rows
        assert rows == [("acme", Decimal("15.00")), ("globex", Decimal("7.00"))]
        assert int((client.server_version or "0").split(".")[0]) >= 24
    finally:
        client.close()
