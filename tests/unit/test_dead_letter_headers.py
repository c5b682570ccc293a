"""streams.worker.dead_letter_headers: a dead letter keeps the original headers as Kafka
takes them (a header without a value as empty bytes) and says why and where it failed."""

from __future__ import annotations

from streams.worker import Incoming, dead_letter_headers


def test_original_headers_come_first_and_a_missing_value_is_empty() -> None:
    message = Incoming(
        topic="events",
        partition=3,
        offset=41,
        key=b"k",
        value=b"{}",
        headers=(("ce_type", b"x"), ("ce_id", None)),  # type: ignore[arg-type]
    )
    headers = dead_letter_headers(message, ValueError("bad"), "lookups")
    assert headers[:2] == [("ce_type", b"x"), ("ce_id", b"")]
    named = dict(headers[2:])
    assert named["strata-error"] == b"bad"
    assert named["strata-error-type"] == b"ValueError"
    assert (named["strata-source-topic"], named["strata-source-partition"]) == (b"events", b"3")
    assert (named["strata-source-offset"], named["strata-projection"]) == (b"41", b"lookups")
    assert all(isinstance(value, bytes) for _, value in headers)
