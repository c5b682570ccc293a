"""Event serialisation keeps customer data exactly, whatever its shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from domain.record import Record
from infra.adapters.eventstore.codec import META_KEY, MetadataMapper, OrjsonTranscoder, event_type

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(data=st.dictionaries(st.text(), json_values, max_size=6))
def test_record_data_round_trips_unchanged(data: dict[str, Any]) -> None:
    mapper = MetadataMapper(transcoder=OrjsonTranscoder())
    event = Record.upsert_event(
        account_id="a",
        source="s",
        key="k",
        data=data,
        current_version=None,
        timestamp=datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC),
    )
    stored = mapper.to_stored_event(event, {"correlation_id": "c"})
    decoded = mapper.to_domain_event(stored)
    assert decoded.data == data  # type: ignore[attr-defined]
    assert decoded.timestamp == event.timestamp
    assert META_KEY not in vars(decoded)
    assert mapper.decode_state(stored)[META_KEY] == {"correlation_id": "c"}


def test_tag_shaped_customer_data_is_not_interpreted() -> None:
    """eventsourcing's JSONTranscoder would turn this into a UUID (or fail); ours keeps it."""
    mapper = MetadataMapper(transcoder=OrjsonTranscoder())
    data = {"x": {"_type_": "uuid_hex", "_data_": "not-a-uuid"}}
    event = Record.upsert_event(
        account_id="a",
        source="s",
        key="k",
        data=data,
        current_version=3,
        timestamp=datetime.now(UTC),
    )
    assert mapper.to_domain_event(mapper.to_stored_event(event)).data == data  # type: ignore[attr-defined]


def test_event_type_names() -> None:
    assert event_type("domain.record:Record.Created") == "Record.Created"
