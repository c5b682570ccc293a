"""The decoder's fast paths give exactly what the general ones give, errors included."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.contract import CODEC, TYPES, ContractError, EventType
from schemas.contract.codec import _attributes, _attributes_exactly
from tests.unit.test_contract import json_values, mutated, payloads


def _general(entry: EventType, value: bytes) -> dict[str, Any]:
    """The payload the way any version is read: JSON to a dict, then into the Struct."""
    raw = msgspec.json.decode(value, type=dict[str, Any])
    payload: dict[str, Any] = msgspec.to_builtins(msgspec.convert(raw, entry.struct))
    return payload


def _outcome(read: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", read(*args)
    except (msgspec.ValidationError, msgspec.DecodeError, ContractError) as exc:
        return "error", type(exc)


@st.composite
def values(draw: st.DrawFn) -> tuple[EventType, bytes]:
    """A payload of a current-version type: valid, spoilt or garbage."""
    entry = draw(st.sampled_from(TYPES))
    payload: dict[str, Any] = draw(payloads(entry))
    spoil = draw(st.sampled_from(["none", "field", "extra", "garbage"]))
    if spoil == "field" and payload:
        payload[draw(st.sampled_from(sorted(payload)))] = draw(json_values)
    elif spoil == "extra":
        payload[draw(st.text(max_size=8))] = draw(json_values)
    value = msgspec.json.encode(payload)
    if spoil == "garbage":
        value = draw(st.binary(max_size=40) | json_values.map(msgspec.json.encode))
    return entry, value


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(case=values())
def test_the_payload_straight_into_the_struct_equals_the_general_path(
    case: tuple[EventType, bytes],
) -> None:
    entry, value = case
    fast = _outcome(CODEC._payload, entry, entry.version, value)
    general = _outcome(_general, entry, value)
    assert fast[0] == general[0]
    if fast[0] == "ok":
        assert fast == general


def _attrs(read: Any, headers: Any) -> tuple[str, Any]:
    try:
        return "ok", read(headers)
    except ContractError as exc:
        return "error", str(exc)
    except Exception as exc:  # the exact pass raising anything else is judged the same way
        return "raised", type(exc)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(message=mutated())
def test_the_cheap_header_pass_equals_the_exact_one(message: tuple[list[Any], Any]) -> None:
    headers, _ = message
    assert _attrs(_attributes, headers) == _attrs(_attributes_exactly, headers)


@pytest.mark.parametrize(
    "headers",
    [
        [(b"ce_type", b"x")],
        [(1, b"x")],
        [("ce_type", b"a"), ("ce_type", b"b")],
        [("ce_type", None)],
        [("ce_type", "text")],
        [("ce_type", memoryview(b"strata.record.created"))],
        [("ce_type", bytearray(b"strata.record.created"))],
        [("ce_id", b"\xff")],
        [("other", None), ("other", b"1"), ("content-type", b"application/json")],
    ],
)
def test_the_header_passes_agree_on_odd_headers(headers: list[Any]) -> None:
    assert _attrs(_attributes, headers) == _attrs(_attributes_exactly, headers)
