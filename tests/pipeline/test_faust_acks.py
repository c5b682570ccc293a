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


async def _topic_with_messages(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1), NewTopic(topic + "-dlq", 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(MESSAGES):
            await producer.send_and_wait(topic, b"%d" % i, key=b"k")
    finally:
        await producer.stop()


class _Worker:
    """A blocking_worker process on its own topic (and group), with MESSAGES waiting."""

    def __init__(self, bootstrap: str, topic: str, behaviour: str, tmp_path: Path) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
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
        return self.marker.read_text().split() if self.marker.exists() else []

    async def handled(self, attempts: int = 1) -> None:
        """Wait until the handler was called `attempts` times (the worker still running)."""
        deadline = time.monotonic() + 60
        while len(self.batches()) < attempts:
            tail = self.log.read_text(errors="replace")[-3000:]
            assert self.process.poll() is None, tail
            assert time.monotonic() < deadline, tail
            await asyncio.sleep(0.1)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

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
