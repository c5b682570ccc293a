"""streams.lean: the raw schema hands faust events the wire's bytes, headers included; the
quiet monitor still records what faust itself reads from it (no broker needed)."""

from __future__ import annotations

import uuid

import faust
from faust.types import TP, Message

from streams.lean import QuietMonitor, RawSchema


def _message(key: bytes | None, value: bytes) -> Message:
    return Message(
        topic="t",
        partition=2,
        offset=7,
        timestamp=0.0,
        timestamp_type=0,
        headers=[("ce_type", b"x")],
        key=key,
        value=value,
        checksum=None,
    )


async def test_the_raw_schema_decodes_to_the_bytes_on_the_wire() -> None:
    app = faust.App(f"lean-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1")
    topic = app.topic("t", schema=RawSchema())
    decode = topic.schema.compile(app)
    for key, value in [(b"\x00k\xff", b'{"a": 1}'), (None, b""), (b"k", b"\x80not json")]:
        event = await decode(_message(key, value))
        assert (event.key, event.value) == (key, value)
        assert event.message.headers == [("ce_type", b"x")]


def test_the_quiet_monitor_keeps_what_faust_reads_from_it() -> None:
    monitor = QuietMonitor()
    tp = TP("t", 0)
    monitor.on_message_in(tp, 1, _message(b"k", b"v"))
    assert monitor.messages_received_total == 0  # no per-message bookkeeping
    monitor.track_tp_end_offset(tp, 10)
    assert monitor.tp_end_offsets[tp] == 10
