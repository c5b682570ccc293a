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

pytestmark = [pytest.mark.integration, pytest.mark.slow]

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


async def _committed(bootstrap: str, group: str, topic: str) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        committed: int | None = await consumer.committed(TopicPartition(topic, 0))
        return committed
    finally:
        await consumer.stop()


def _start(
    bootstrap: str, topic: str, behaviour: str, tmp_path: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    marker = tmp_path / "batches"
    env = {
        **os.environ,
        "STRATA_KAFKA_BOOTSTRAP": bootstrap,
        "TOPIC": topic,
        "GROUP": topic,
        "MARKER": str(marker),
        "BEHAVIOUR": behaviour,
    }
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.pipeline.blocking_worker"],
        env=env,
        cwd=tmp_path,  # faust writes its data directory here
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, marker


def _wait_for(marker: Path, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.1)


@pytest.fixture
def project_root_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    )


@pytest.mark.usefixtures("project_root_on_path")
async def test_a_batch_cut_short_by_a_stop_is_not_committed(
    kafka_bootstrap: str, kafka_topic_prefix: str, tmp_path: Path
) -> None:
    topic = kafka_topic_prefix + "block"
    await _topic_with_messages(kafka_bootstrap, topic)
    process, marker = _start(kafka_bootstrap, topic, "block", tmp_path)
    _wait_for(marker, process, tmp_path / "worker.log")
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert await _committed(kafka_bootstrap, topic, topic) in (None, 0)


@pytest.mark.usefixtures("project_root_on_path")
async def test_a_failing_handler_stops_the_worker_uncommitted(
    kafka_bootstrap: str, kafka_topic_prefix: str, tmp_path: Path
) -> None:
    topic = kafka_topic_prefix + "raise"
    await _topic_with_messages(kafka_bootstrap, topic)
    process, marker = _start(kafka_bootstrap, topic, "raise", tmp_path)
    _wait_for(marker, process, tmp_path / "worker.log")
    assert process.wait(timeout=60) != 0
    assert marker.read_text().split() == [str(MESSAGES)]  # no batch after the failed one
    assert await _committed(kafka_bootstrap, topic, topic) in (None, 0)


@pytest.mark.usefixtures("project_root_on_path")
async def test_a_handled_batch_is_committed(
    kafka_bootstrap: str, kafka_topic_prefix: str, tmp_path: Path
) -> None:
    topic = kafka_topic_prefix + "ok"
    await _topic_with_messages(kafka_bootstrap, topic)
    process, marker = _start(kafka_bootstrap, topic, "ok", tmp_path)
    _wait_for(marker, process, tmp_path / "worker.log")
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert await _committed(kafka_bootstrap, topic, topic) == MESSAGES


@pytest.mark.usefixtures("project_root_on_path")
async def test_an_unreachable_read_model_is_waited_out(
    kafka_bootstrap: str, kafka_topic_prefix: str, tmp_path: Path
) -> None:
    topic = kafka_topic_prefix + "unavailable"
    await _topic_with_messages(kafka_bootstrap, topic)
    process, marker = _start(kafka_bootstrap, topic, "unavailable", tmp_path)
    _wait_for(marker, process, tmp_path / "worker.log")
    deadline = time.monotonic() + 60
    while len(marker.read_text().split()) < 2:  # the same batch, again
        assert process.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert marker.read_text().split() == [str(MESSAGES), str(MESSAGES)]
    assert await _committed(kafka_bootstrap, topic, topic) == MESSAGES
