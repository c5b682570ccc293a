"""An external subscriber written only from docs/subscribers.md gets every event once.

The Python example of the guide is run as it is, as a separate process, against a real
broker. The events reach the topic through a *publisher*: today one that does what the
relay does by hand (with the codec, watermarks, and the duplicates a crash causes); the real
relay can be plugged in as another `PublisherCase`.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import sys
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2

from domain.record import record_id
from domain.source import source_id
from infra.adapters.kafka.relay import Relay
from infra.adapters.kafka.topics import Topics
from schemas import contract
from schemas.events import ProjectedEvent

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 3
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

Publisher = Callable[[str, str, Sequence[ProjectedEvent]], Awaitable[None]]
"""(bootstrap, topic, events in commit order) -> every event is on the topic, at least once."""


# --- a realistic history: several aggregates, several versions each, interleaved ---------------


def history(seed: int = 7) -> list[ProjectedEvent]:
    rng = random.Random(seed)
    streams: list[tuple[uuid.UUID, list[tuple[str, dict[str, Any]]]]] = []
    for n in range(2):
        account = uuid.UUID(int=rng.getrandbits(128), version=4)
        acc = str(account)
        streams.append(
            (
                account,
                [
                    (
                        "Account.Opened",
                        {"name": f"Acme {n}", "email": "ops@acme.example", "plan": "basic"},
                    ),
                    ("Account.ProfileUpdated", {"name": None, "email": "it@acme.example"}),
                    ("Account.PlanChanged", {"plan": "pro", "previous_plan": "basic"}),
                    ("Account.Suspended", {"reason": "unpaid"}),
                    ("Account.Reactivated", {}),
                ],
            )
        )
        key = uuid.UUID(int=rng.getrandbits(128), version=4)
        streams.append(
            (
                key,
                [
                    (
                        "ApiKey.Issued",
                        {
                            "account_id": acc,
                            "name": "ci",
                            "prefix": f"sk_live_{key.hex[:8]}",
                            "secret_hash": "a" * 64,
                            "scopes": ["data:read", "ingest:write"],
                        },
                    ),
                    ("ApiKey.Rotated", {"account_id": acc, "secret_hash": "b" * 64}),
                    ("ApiKey.Revoked", {"account_id": acc, "reason": "rotated out"}),
                ],
            )
        )
        for source in ("orders", "users"):
            streams.append(
                (
                    source_id(acc, source),
                    [("Source.Registered", {"account_id": acc, "name": source})],
                )
            )
            for k in range(3):
                name = f"{source[0]}-{k}"
                fields = {"account_id": acc, "source": source, "key": name}
                versions = [("Record.Created", {**fields, "data": {"v": 1, "tags": ["new"]}})]
                versions += [
                    ("Record.Updated", {**fields, "data": {"v": v, "nested": {"n": v}}})
                    for v in range(2, 2 + rng.randrange(4))
                ]
                if k == 0:
                    versions += [
                        ("Record.Deleted", fields),
                        ("Record.Updated", {**fields, "data": {}}),
                    ]
                streams.append((record_id(acc, source, name), versions))

    # Interleave the streams as concurrent commands would, keeping each stream's order.
    pending = {stream: list(versions) for stream, versions in streams}
    version = dict.fromkeys(pending, 0)
    events: list[ProjectedEvent] = []
    while pending:
        stream = rng.choice(sorted(pending, key=str))
        kind, payload = pending[stream].pop(0)
        if not pending[stream]:
            del pending[stream]
        version[stream] += 1
        position = len(events) + 1
        events.append(
            ProjectedEvent(
                position=position,
                stream_id=stream,
                version=version[stream],
                type=kind,
                timestamp=T0 + timedelta(milliseconds=37 * position),
                payload=payload,
                metadata={"correlation_id": f"corr-{position // 3}", "actor": "operator"},
            )
        )
    return events


# --- publishers ------------------------------------------------------------------------------


async def _send_batch(
    producer: AIOKafkaProducer, topic: str, batch: Sequence[ProjectedEvent]
) -> None:
    acks = []
    for event in batch:
        message = contract.encode(event, redact=True)
        acks.append(
            await producer.send(topic, message.value, key=message.key, headers=message.headers)
        )
    await asyncio.gather(*acks)


async def _send_watermarks(producer: AIOKafkaProducer, topic: str, position: int) -> None:
    mark = contract.watermark(position)
    acks = [
        await producer.send(topic, mark.value, partition=p, headers=mark.headers)
        for p in range(PARTITIONS)
    ]
    await asyncio.gather(*acks)


async def publish_by_hand(bootstrap: str, topic: str, events: Sequence[ProjectedEvent]) -> None:
    """The relay's protocol by hand: batches, each followed by watermarks on every partition;
    the relay's saved position lags what the broker acknowledged; then it crashes, and a new
    relay resends from the saved position (duplicates). A broker failover resends a batch."""
    batches = [events[i : i + 7] for i in range(0, len(events), 7)]
    crash_after, saved = len(batches) // 2, len(batches) // 2 - 2

    async def relay(batches: Sequence[Sequence[ProjectedEvent]], failover: int | None) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, enable_idempotence=True, acks="all"
        )
        await producer.start()
        try:
            await _send_watermarks(producer, topic, 0)
            for n, batch in enumerate(batches):
                await _send_batch(producer, topic, batch)
                if n == failover:
                    await _send_batch(producer, topic, batch)
                await _send_watermarks(producer, topic, batch[-1].position)
        finally:
            await producer.stop()

    await relay(batches[:crash_after], failover=None)  # ... and crashes before saving more
    await relay(batches[saved:], failover=3)  # restarted from the saved position


@dataclass(frozen=True)
class PublisherCase:
    name: str
    publish: Publisher
    resends: bool
    """Whether this publisher certainly writes duplicates (so the test sees dedupe work)."""


class _ListSource:
    """The history as an EventSource, for the real relay."""

    def __init__(self, events: Sequence[ProjectedEvent]) -> None:
        self.events = list(events)

    async def read(self, after: int, limit: int) -> Sequence[ProjectedEvent]:
        return [e for e in self.events if e.position > after][:limit]

    async def head(self) -> int:
        return self.events[-1].position if self.events else 0

    async def wait(self, after: int, timeout: float) -> None:
        await asyncio.sleep(min(timeout, 0.05))


class _Positions:
    def __init__(self) -> None:
        self.position = 0

    async def load(self) -> int:
        return self.position

    async def save(self, position: int) -> None:
        self.position = max(self.position, position)

    async def close(self) -> None:
        return None


async def publish_with_the_relay(
    bootstrap: str, topic: str, events: Sequence[ProjectedEvent]
) -> None:
    """Strata's own relay, crashed once after a few batches and restarted behind its last
    saved position (as after a kill -9 between the broker's ack and the save)."""
    prefix = topic[: -len(contract.EVENT_TOPIC)]
    topics = Topics(prefix, PARTITIONS, 1)
    await create_topic(bootstrap, topics.credentials, 1)
    positions = _Positions()

    def producer() -> AIOKafkaProducer:
        return AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")

    async def run_until(position: int) -> None:
        relay = Relay(_ListSource(events), positions, producer, topics, batch_size=4)
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        while positions.position < position:
            await asyncio.sleep(0.02)
        stop.set()
        await task

    middle = events[len(events) // 2].position
    await run_until(middle)
    positions.position = events[len(events) // 4].position  # the save that never happened
    await run_until(events[-1].position)


PUBLISHERS = [
    PublisherCase("by-hand", publish_by_hand, resends=True),
    PublisherCase("relay", publish_with_the_relay, resends=True),
]


# --- the subscriber of the guide ----------------------------------------------------------------


def guide_example() -> str:
    guide = (ROOT / "docs/subscribers.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", guide, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "docs/subscribers.md must have exactly one python example"
    return str(blocks[0])


async def run_example(
    tmp_path: Path, env: dict[str, str], timeout: float = 120
) -> list[dict[str, Any]]:
    script = tmp_path / "subscriber.py"
    script.write_text(guide_example(), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        cwd=tmp_path,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()


async def read_raw(bootstrap: str, topic: str) -> list[Any]:
    """Every record on the topic, without a group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        records: list[Any] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


@pytest.mark.parametrize("case", PUBLISHERS, ids=lambda case: case.name)
async def test_a_subscriber_from_the_guide_gets_every_event_once_in_order(
    case: PublisherCase, kafka_bootstrap: str, kafka_topic_prefix: str, tmp_path: Path
) -> None:
    topic = f"{kafka_topic_prefix}{contract.EVENT_TOPIC}"
    await create_topic(kafka_bootstrap, topic, PARTITIONS)
    events = history()
    await case.publish(kafka_bootstrap, topic, events)

    raw = await read_raw(kafka_bootstrap, topic)
    control = [r for r in raw if contract.is_control(r.headers)]
    data = [r for r in raw if not contract.is_control(r.headers)]
    assert control, "the publisher wrote no watermark"
    assert {r.partition for r in control} == set(range(PARTITIONS))
    assert {contract.decode(r.headers, r.value) for r in control} <= {
        contract.Watermark(p) for p in range(len(events) + 1)
    }
    assert len({r.partition for r in data}) == PARTITIONS
    # keyed as the producer's send() keys: the documented partitioning (murmur2 of the key)
    assert all(r.partition == (murmur2(r.key) & 0x7FFFFFFF) % PARTITIONS for r in data)
    if case.resends:
        assert len(data) > len(events), "no duplicates were published"

    printed = await run_example(
        tmp_path,
        {
            "STRATA_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "STRATA_EVENTS_TOPIC": topic,
            "STRATA_SUBSCRIBER_GROUP": f"{kafka_topic_prefix}subscriber",
            "STRATA_SUBSCRIBER_MAX_IDLE": "4",
        },
    )

    assert not [p for p in printed if p["type"].startswith("strata.control.")]
    received = [(p["stream"], p["version"]) for p in printed]
    expected = {(str(e.stream_id), e.version): e for e in events}
    assert len(received) == len(set(received)), "a duplicate got through"
    assert set(received) == set(expected)
    per_stream: dict[str, list[int]] = defaultdict(list)
    for stream, version in received:
        per_stream[stream].append(version)
    for stream, versions in per_stream.items():
        assert versions == list(range(1, len(versions) + 1)), f"{stream} out of order: {versions}"

    for line in printed:
        event = expected[(line["stream"], line["version"])]
        entry = contract.CODEC.by_name(event.type)
        assert line["id"] == f"{event.stream_id}:{event.version}"
        assert line["type"] == entry.ce_type
        assert line["position"] == event.position
        assert line["dataversion"] == entry.version
        assert datetime.fromisoformat(line["time"]) == event.timestamp
        public = {k: v for k, v in event.payload.items() if k not in entry.redacted}
        assert line["data"] == public
        assert "secret_hash" not in line["data"]
