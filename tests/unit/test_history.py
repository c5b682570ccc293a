"""Past states (`as_of`) and their parsing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from projections import lookups
from read_api.consistency import InvalidQueryError, min_position_of
from read_api.history import parse_as_of, state_as_of
from schemas.events import ProjectedEvent

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STREAM = uuid.uuid4()


def _event(version: int, kind: str, **payload: object) -> ProjectedEvent:
    return ProjectedEvent(
        position=version * 10,
        stream_id=STREAM,
        version=version,
        type=kind,
        timestamp=T0 + timedelta(minutes=version),
        payload={"account_id": "a", "source": "s", "key": "k", **payload},
    )


EVENTS = [
    _event(1, "Record.Created", data={"v": 1}),
    _event(2, "Record.Updated", data={"v": 2}),
    _event(3, "Record.Deleted"),
    _event(4, "Record.Updated", data={"v": 4}),
]
KEY = lookups.record_key("a", "s", "k")


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (1, {"v": 1}),
        (2, {"v": 2}),
        (3, None),
        (4, {"v": 4}),
        (99, {"v": 4}),
        (T0 + timedelta(minutes=2, seconds=30), {"v": 2}),
        (T0, None),
    ],
)
def test_state_as_of(as_of: int | datetime, expected: dict[str, int] | None) -> None:
    doc = state_as_of(EVENTS, as_of, KEY)
    assert (doc["data"] if doc else None) == expected


def test_parse_as_of() -> None:
    assert parse_as_of("3") == 3
    assert parse_as_of("2026-01-01T00:00:00Z") == T0
    assert parse_as_of("2026-01-01T00:00:00") == T0
    assert parse_as_of(None) is None
    for bad in ("0", "yesterday", "-1"):
        with pytest.raises(InvalidQueryError):
            parse_as_of(bad)


def test_min_position_prefers_the_query() -> None:
    assert min_position_of("5", "7") == 5
    assert min_position_of(None, "7") == 7
    assert min_position_of(None, None) is None
    with pytest.raises(InvalidQueryError):
        min_position_of(None, "x")
    with pytest.raises(InvalidQueryError, match="X-Strata-Min-Position"):
        min_position_of("0", "-1")  # the header is checked even when the query wins
