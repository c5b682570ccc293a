"""A Faust stream worker commits a batch's offsets only once its handler returned.

faust's `take_events` acks a batch when its generator closes, which a stop does while the
agent is still handling the batch: without `streams.app.consume_batches` guarding it, the
batch's offsets were committed and its events lost to the partition's next owner. Each test
runs a real worker process (tests/pipeline/blocking_worker.py) against the real broker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.usefixtures("project_root_on_path"),
]

MESSAGES = 10
COMMIT_INTERVAL = 2.8  # faust's broker_commit_interval, seconds


async def _topic_with_messages(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1), NewTopic(topic + "-dlq", 1, 1)])
    finally:
        await admin.close()
    await _send(bootstrap, topic, MESSAGES)


async def _send(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(topic, b"%d" % i, key=b"k")
    finally:
        await producer.stop()


class _Worker:
    """A blocking_worker process on its own topic (and group), with MESSAGES waiting."""

    def __init__(self, bootstrap: str, topic: str, behaviour: str, tmp_path: Path) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.marker = tmp_path / "batches"
        self.log = tmp_path / "worker.log"
        env = {
            **os.environ,
            "STRATA_KAFKA_BOOTSTRAP": bootstrap,
            "TOPIC": topic,
            "GROUP": topic,
            "MARKER": str(self.marker),
            "BEHAVIOUR": behaviour,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.pipeline.blocking_worker"],
            env=env,
            cwd=tmp_path,  # faust writes its data directory here
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def batches(self) -> list[str]:
        """The size of each batch handed to the handler so far (an attempt each)."""
        return [line.split()[0] for line in self._lines()]

    def offsets(self) -> list[int]:
        """The offsets handed to the handler so far, in order."""
        return [int(offset) for line in self._lines() for offset in line.split()[1:]]

    def _lines(self) -> list[str]:
        return self.marker.read_text().splitlines() if self.marker.exists() else []

    async def handled(self, attempts: int = 1) -> None:
        """Wait until the handler was called `attempts` times (the worker still running)."""
        await self._until(lambda: len(self.batches()) >= attempts)

    async def took(self, records: int) -> None:
        """Wait until the handler was given `records` records in all."""
        await self._until(lambda: len(self.offsets()) >= records)

    async def _until(self, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 60
        while not done():
            tail = self.log.read_text(errors="replace")[-3000:]
            assert self.process.poll() is None, tail
            assert time.monotonic() < deadline, tail
            await asyncio.sleep(0.1)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    async def committed_up_to(self, offset: int) -> None:
        deadline = time.monotonic() + 4 * COMMIT_INTERVAL
        while (committed := await self.committed()) != offset:
            assert time.monotonic() < deadline, f"committed {committed}, not {offset}"
            await asyncio.sleep(0.2)

    async def committed(self) -> int | None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.topic)
        await consumer.start()
        try:
            committed: int | None = await consumer.committed(TopicPartition(self.topic, 0))
            return committed
        finally:
            await consumer.stop()


async def _worker(bootstrap: str, prefix: str, behaviour: str, tmp_path: Path) -> _Worker:
    """A worker started on a fresh topic, once its handler got the first batch."""
    topic = prefix + behaviour
    await _topic_with_messages(bootstrap, topic)
    worker = _Worker(bootstrap, topic, behaviour, tmp_path)
    await worker.handled()
    return worker


@pytest.fixture
def project_root_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    )


async def test_a_batch_cut_short_by_a_stop_is_not_committed(
    kafka_bootstrap: str, kafka_topic_prefix: str, tmp_path: Path
) -> None:
    worker = await _worker(kafka_bootstrap, kafka_topic_prefix, "block", tmp_path)
    worker.stop()
    assert await worker.committed() in (None, 0)


async def test_a_failing_handler_stops_the_worker_uncommitted(
    kafka_bootstrap: str, kafka_topic_prefix: str, tmp_path: Path
) -> None:
    worker = await _worker(kafka_bootstrap, kafka_topic_prefix, "raise", tmp_path)
    assert worker.process.wait(timeout=60) != 0
    assert worker.batches() == [str(MESSAGES)]  # no batch after the failed one
    assert await worker.committed() in (None, 0)


async def test_a_handled_batch_is_committed(
    kafka_bootstrap: str, kafka_topic_prefix: str, tmp_path: Path
) -> None:
    worker = await _worker(kafka_bootstrap, kafka_topic_prefix, "ok", tmp_path)
    worker.stop()
    assert await worker.committed() == MESSAGES


async def test_an_unreachable_read_model_is_waited_out(
    kafka_bootstrap: str, kafka_topic_prefix: str, tmp_path: Path
) -> None:
    worker = await _worker(kafka_bootstrap, kafka_topic_prefix, "unavailable", tmp_path)
    await worker.handled(attempts=2)  # the same batch, again
    worker.stop()
    assert worker.batches() == [str(MESSAGES), str(MESSAGES)]
    assert await worker.committed() == MESSAGES


async def test_commits_follow_the_handled_records_across_fetches_and_restarts(
    kafka_bootstrap: str, kafka_topic_prefix: str, tmp_path: Path
) -> None:
    """The worker takes a partition's share of each fetch as one message (streams/bulk.py):
    its commits must still follow every handled record, whether the group starts from
    nothing or from a committed offset, and across faust's periodic commits."""
    first = await _worker(kafka_bootstrap, kafka_topic_prefix, "ok", tmp_path / "first")
    first.stop()
    assert await first.committed() == MESSAGES

    topic = first.topic
    second = _Worker(kafka_bootstrap, topic, "ok", tmp_path / "second")
    await _send(kafka_bootstrap, topic, 5)
    await second.took(5)
    await second.committed_up_to(MESSAGES + 5)  # by a periodic commit, between fetches
    await _send(kafka_bootstrap, topic, 5)
    await second.took(10)
    second.stop()
    assert first.offsets() == list(range(MESSAGES))
    assert second.offsets() == list(range(MESSAGES, MESSAGES + 10))  # in order, once each
    assert await second.committed() == MESSAGES + 10
