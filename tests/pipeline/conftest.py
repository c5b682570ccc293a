"""The distributed pipeline for real: PostgreSQL -> relay -> Kafka -> stream workers -> Redis.

The relay and the workers run as `strata relay` / `strata worker` processes (so they can be
killed with SIGKILL); the command and read APIs run in-process against the same servers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.bootstrap import Platform, bootstrap
from infra.config import Settings, from_env
from projections import lookups
from projections.memory import Documents
from tests.conftest import ADMIN_TOKEN, Stack

STRATA = str(Path(sys.executable).with_name("strata"))
PARTITIONS = 3


@pytest.fixture
def kafka_settings(
    pg_schema: Any,
    redis_url: str,
    redis_prefix: str,
    kafka_bootstrap: str,
    kafka_topic_prefix: str,
    elasticsearch_url: str,
    es_index_prefix: str,
    tmp_path: Path,
) -> Settings:
    return from_env(
        {},
        mode="distributed",
        data_dir=str(tmp_path / "data"),  # e.g. the chdb path `strata status` opens
        postgres_dsn=pg_schema.dsn,
        postgres_schema=pg_schema.schema,
        postgres_pool_size=4,
        redis_url=redis_url,
        redis_prefix=redis_prefix.rstrip(":"),
        elasticsearch_url=elasticsearch_url,
        elasticsearch_index_prefix=es_index_prefix,
        kafka_bootstrap=kafka_bootstrap,
        kafka_topic_prefix=kafka_topic_prefix,
        kafka_partitions=PARTITIONS,
        projection_feed="kafka",
        admin_token=ADMIN_TOKEN,
        min_position_timeout=15.0,
        watermark_interval=0.2,
    )


def env_of(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    for name in Settings.__struct_fields__:
        value = getattr(settings, name)
        if value is not None:
            env[f"STRATA_{name.upper()}"] = str(value)
    env["STRATA_LOG_LEVEL"] = "warning"
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def scrape(port: int) -> str:
    """The Prometheus text a headless process serves (STRATA_METRICS_PORT)."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    response.raise_for_status()
    return response.text


class Processes:
    """`strata relay` / `strata worker` processes of one test, stopped at the end."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings = settings
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.metrics_ports: dict[str, int] = {}
        self.started = 0

    def start(self, name: str, *args: str, **env_vars: str) -> subprocess.Popen[bytes]:
        self.started += 1
        log = (self.logs / f"{name}-{self.started}.log").open("wb")
        self.metrics_ports[name] = free_port()
        env = {
            **env_of(self.settings),
            "STRATA_METRICS_PORT": str(self.metrics_ports[name]),
            **env_vars,
        }
        process = subprocess.Popen([STRATA, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
        self.running[name] = process
        return process

    def relay(self) -> subprocess.Popen[bytes]:
        return self.start("relay", "relay")

    def worker(self, name: str = "worker", engine: str = "faust") -> subprocess.Popen[bytes]:
        """A `strata worker` (STRATA_WORKER_ENGINE: `faust` by default, or `batch`)."""
        return self.start(name, "worker", "--projection", lookups.NAME, STRATA_WORKER_ENGINE=engine)

    def stop(self, name: str) -> None:
        """SIGTERM, and wait: a worker leaves its consumer group on the way out."""
        process = self.running.pop(name)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.running.values():
            process.send_signal(signal.SIGTERM)
        for name, process in list(self.running.items()):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            self.running.pop(name)

    def tail(self) -> str:
        return "\n".join(
            f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:]
            for path in sorted(self.logs.glob("*.log"))
        )


@pytest.fixture
def processes(kafka_settings: Settings, tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(kafka_settings, tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
async def kafka_stack(kafka_settings: Settings, processes: Processes) -> AsyncIterator[Stack]:
    platform = bootstrap(kafka_settings)
    await platform.ensure_topics(lookups.NAME)
    processes.relay()
    processes.worker()
    try:
        async with _client(platform.command_app()) as command, _client(platform.read_app()) as read:
            yield Stack(platform, command, read, patience=60.0)  # workers start slowly
    finally:
        await platform.aclose()


async def caught_up(platform: Platform, timeout: float = 60.0) -> int:
    """Wait until every feed slot of the projection has reached the event store's head."""
    head = await asyncio.to_thread(platform.log.head)
    deadline = time.monotonic() + timeout
    while True:
        checkpoints = await platform.documents.checkpoints()
        reached = min(checkpoints.get(s, 0) for s in platform.feed_slots)
        if reached >= head:
            return head
        if time.monotonic() > deadline:
            raise AssertionError(f"projection at {reached} ({checkpoints}), head {head}")
        await asyncio.sleep(0.1)


async def equals_rebuild(platform: Platform) -> None:
    """The live read model equals a rebuild from the whole event store."""
    live = await (await platform.lookups.writer()).dump()
    reference = Documents()
    reference.apply_now(lookups.changes(await platform.source.read(0, 100_000_000)))
    expected = await reference.dump()
    assert live["docs"].keys() == expected["docs"].keys()
    assert live == expected
