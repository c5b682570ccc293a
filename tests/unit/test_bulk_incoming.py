"""streams.app turns a batch of bulk events (streams/bulk.py) back into their records, in
order, and still takes faust's one-message events (the webhooks worker's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.app import _incoming, _records


@dataclass
class _Record:  # an aiokafka ConsumerRecord's fields the worker reads
    offset: int
    topic: str = "events"
    partition: int = 2
    key: bytes | None = b"k"
    value: bytes = b"{}"
    headers: list[tuple[str, bytes]] | None = field(default_factory=lambda: [("ce_id", b"x")])


@dataclass
class _Message:
    topic: str
    partition: int
    offset: int
    headers: Any


@dataclass
class _Event:
    value: Any
    key: bytes | None = None
    message: _Message | None = None


def test_the_records_of_bulk_events_come_out_in_order() -> None:
    events = [_Event([_Record(5), _Record(6)]), _Event([_Record(7, headers=None)])]
    batch = _incoming(events)
    assert [(m.topic, m.partition, m.offset) for m in batch] == [
        ("events", 2, 5),
        ("events", 2, 6),
        ("events", 2, 7),
    ]
    assert batch[0].headers == [("ce_id", b"x")]
    assert batch[2].headers == ()
    assert [_records(event) for event in events] == [2, 1]


def test_a_message_per_event_is_taken_as_it_was() -> None:
    event = _Event(b"v", key=b"k", message=_Message("t", 0, 9, {"ce_id": b"x"}))
    (message,) = _incoming([event])
    assert (message.topic, message.offset, message.key, message.value) == ("t", 9, b"k", b"v")
    assert message.headers == [("ce_id", b"x")]
    assert _records(event) == 1
