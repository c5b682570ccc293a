"""The event contract (schemas.contract): CloudEvents on Kafka, versions, generated files."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.ports import CommandContext
from domain.access import ALL_SCOPES, OPERATOR, Role, Scope
from domain.account import Account
from domain.apikey import ApiKey
from domain.record import Record, record_id
from domain.source import Source
from domain.transformation import Transformation
from domain.usage import UsageReport
from domain.webhook import Webhook
from infra.adapters.eventstore.codec import MetadataMapper, OrjsonTranscoder
from infra.adapters.eventstore.recorders import SQLiteRecorder
from infra.adapters.eventstore.store import EventLog
from schemas import contract, generate
from schemas.contract import (
    CODEC,
    TYPES,
    Codec,
    ContractError,
    EventType,
    Message,
    Watermark,
    decode,
    encode,
    is_control,
    watermark,
)
from schemas.contract.payloads import RecordCreatedV1
from schemas.events import ProjectedEvent

ROOT = Path(__file__).resolve().parents[2]

# --- strategies derived from the Structs, so a new type or field is covered without edits ----

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _values(t: mi.Type) -> st.SearchStrategy[Any]:
    if isinstance(t, mi.Metadata):
        return _values(t.type)
    if isinstance(t, mi.StrType):
        return st.text(max_size=30)
    if isinstance(t, mi.IntType):
        return st.integers(-(2**63), 2**63 - 1)
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.UnionType):
        return st.one_of(*(_values(member) for member in t.types))
    if isinstance(t, mi.ListType):
        return st.lists(_values(t.item_type), max_size=4)
    if isinstance(t, mi.DictType):
        values = json_values if isinstance(t.value_type, mi.AnyType) else _values(t.value_type)
        return st.dictionaries(st.text(max_size=10), values, max_size=5)
    raise NotImplementedError(f"add a strategy for {t!r}")


def payloads(entry: EventType) -> st.SearchStrategy[dict[str, Any]]:
    info = mi.type_info(entry.struct)
    assert isinstance(info, mi.StructType)
    return st.fixed_dictionaries(
        {f.encode_name: _values(f.type) for f in info.fields if f.required},
        optional={f.encode_name: _values(f.type) for f in info.fields if not f.required},
    )


offsets = st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)).map(
    lambda d: timezone(timedelta(minutes=d // timedelta(minutes=1)))
)
metadata = st.fixed_dictionaries(
    {},
    optional={key: st.text(max_size=40) for key, _ in contract.METADATA_HEADERS},
)


@st.composite
def events(draw: st.DrawFn, types: tuple[EventType, ...] = TYPES) -> ProjectedEvent:
    entry = draw(st.sampled_from(types))
    return ProjectedEvent(
        position=draw(st.integers(1, 2**63 - 1)),
        stream_id=draw(st.uuids()),
        version=draw(st.integers(1, 2**31)),
        type=entry.name,
        timestamp=draw(
            st.datetimes(
                min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=offsets
            )
        ),
        payload=draw(payloads(entry)),
        metadata=draw(metadata),
    )


def _headers(message: Message) -> dict[str, str]:
    return {name: value.decode() for name, value in message.headers}


# --- round trip ------------------------------------------------------------------------------


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(event=events())
def test_every_event_round_trips_unredacted(event: ProjectedEvent) -> None:
    message = encode(event, redact=False)
    assert decode(message.headers, message.value) == event
    assert message.key == str(event.stream_id).encode()
    assert not is_control(message.headers)


@given(event=events())
def test_redacted_events_round_trip_without_the_redacted_fields(event: ProjectedEvent) -> None:
    entry = CODEC.by_name(event.type)
    message = encode(event, redact=True)
    decoded = decode(message.headers, message.value)
    kept = {k: v for k, v in event.payload.items() if k not in entry.redacted}
    assert decoded == msgspec.structs.replace(event, payload=kept)
    assert not entry.redacted & set(json.loads(message.value))


def test_the_types_cover_the_decisions() -> None:
    assert {t.name for t in TYPES} == {
        *(
            f"Account.{e}"
            for e in ("Opened", "ProfileUpdated", "PlanChanged", "Suspended", "Reactivated")
        ),
        "Account.Closed",
        "ApiKey.Issued",
        "ApiKey.Revoked",
        "ApiKey.Rotated",
        "Source.Registered",
        "Record.Created",
        "Record.Updated",
        "Record.Deleted",
        "UsageReport.Recorded",
        "Transformation.Created",
        "Transformation.Revised",
        "Transformation.Archived",
        "Source.PipelineSet",
        "Source.PipelineCleared",
        *(
            f"Webhook.{e}"
            for e in (
                "Registered",
                "Updated",
                "SecretRotated",
                "Paused",
                "Resumed",
                "Deleted",
                "RedeliveryRequested",
            )
        ),
    }
    for entry in TYPES:
        aggregate, event = entry.name.split(".")
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", event).lower()
        family = "usage" if aggregate == "UsageReport" else aggregate.lower()
        assert entry.ce_type == f"strata.{family}.{snake}"
        assert entry.version == 1
        struct_prefix = "Usage" if aggregate == "UsageReport" else aggregate
        assert entry.struct.__name__ == f"{struct_prefix}{event}V{entry.version}"
        config = entry.struct.__struct_config__
        assert config.frozen
        assert not config.forbid_unknown_fields
    redacted = {t.name: t.redacted for t in TYPES if t.redacted}
    assert redacted == {
        "ApiKey.Issued": {"secret_hash"},
        "ApiKey.Rotated": {"secret_hash"},
        "Webhook.Registered": {"url", "secret_sealed"},
        "Webhook.Updated": {"url"},
        "Webhook.SecretRotated": {"secret_sealed", "previous_secret_sealed"},
    }


# --- the wire format, exactly ------------------------------------------------------------------

ACCOUNT = "0b6d1a5e-7a43-4bb8-9f0e-4ad0f1c2e3d4"
STREAM = record_id(ACCOUNT, "orders", "o-1")
CREATED = ProjectedEvent(
    position=42,
    stream_id=STREAM,
    version=3,
    type="Record.Created",
    timestamp=datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=timezone(timedelta(hours=2))),
    payload={"account_id": ACCOUNT, "source": "orders", "key": "o-1", "data": {"total": 9.5}},
    metadata={
        "correlation_id": "corr-1",
        "causation_id": "req-1",
        "actor": "operator",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    },
)


def test_headers_of_an_event_exactly() -> None:
    message = encode(CREATED, redact=True)
    assert message.key == str(STREAM).encode()
    assert message.value == (
        b'{"account_id":"0b6d1a5e-7a43-4bb8-9f0e-4ad0f1c2e3d4","source":"orders","key":"o-1",'
        b'"data":{"total":9.5}}'
    )
    assert message.headers == [
        ("ce_specversion", b"1.0"),
        ("ce_id", f"{STREAM}:3".encode()),
        ("ce_source", f"/accounts/{ACCOUNT}".encode()),
        ("ce_type", b"strata.record.created"),
        ("ce_subject", b"records/orders/o-1"),
        ("ce_time", b"2026-03-04T03:06:07.000890+00:00"),
        ("content-type", b"application/json"),
        ("ce_dataschema", b"urn:strata:schema:strata.record.created:1"),
        ("ce_dataversion", b"1"),
        ("ce_position", b"42"),
        ("ce_streamid", str(STREAM).encode()),
        ("ce_streamversion", b"3"),
        ("ce_correlationid", b"corr-1"),
        ("ce_causationid", b"req-1"),
        ("ce_actor", b"operator"),
        ("ce_traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    ]


def test_absent_metadata_is_omitted_and_other_metadata_is_not_published() -> None:
    event = msgspec.structs.replace(CREATED, metadata={"correlation_id": "c", "extra": "x"})
    message = encode(event, redact=False)
    names = [name for name, _ in message.headers]
    assert "ce_causationid" not in names
    assert "ce_actor" not in names
    assert b"x" not in [value for name, value in message.headers if name != "ce_correlationid"]
    decoded = decode(message.headers, message.value)
    assert isinstance(decoded, ProjectedEvent)
    assert decoded.metadata == {"correlation_id": "c"}


@pytest.mark.parametrize(
    ("kind", "payload", "subject", "account"),
    [
        ("Account.Suspended", {"reason": "r"}, "account", str(STREAM)),
        ("ApiKey.Revoked", {"account_id": ACCOUNT, "reason": "r"}, f"apikeys/{STREAM}", ACCOUNT),
        ("Source.Registered", {"account_id": ACCOUNT, "name": "orders"}, "sources/orders", ACCOUNT),
        (
            "Record.Deleted",
            {"account_id": ACCOUNT, "source": "s.1", "key": "a:b@c+d=e~f"},
            "records/s.1/a:b@c+d=e~f",
            ACCOUNT,
        ),
        (
            "Record.Deleted",
            {"account_id": ACCOUNT, "source": "s", "key": "a/b c%"},
            "records/s/a%2Fb%20c%25",
            ACCOUNT,
        ),
    ],
)
def test_subject_and_source(kind: str, payload: dict[str, Any], subject: str, account: str) -> None:
    event = msgspec.structs.replace(CREATED, type=kind, payload=payload)
    headers = _headers(encode(event, redact=True))
    assert headers["ce_subject"] == subject
    assert headers["ce_source"] == f"/accounts/{account}"


def test_apikey_secret_is_only_on_the_unredacted_message() -> None:
    issued = msgspec.structs.replace(
        CREATED,
        type="ApiKey.Issued",
        payload={
            "account_id": ACCOUNT,
            "name": "ci",
            "prefix": "sk_live_12345678",
            "secret_hash": "ab" * 32,
            "scopes": ["data:read"],
        },
    )
    public, full = encode(issued, redact=True), encode(issued, redact=False)
    assert b"secret_hash" not in public.value
    assert json.loads(full.value)["secret_hash"] == "ab" * 32
    assert public.headers == full.headers
    decoded = decode(public.headers, public.value)
    assert isinstance(decoded, ProjectedEvent)
    assert "secret_hash" not in decoded.payload
    assert decode(full.headers, full.value) == issued


def test_profile_update_keeps_its_nulls() -> None:
    event = msgspec.structs.replace(
        CREATED, type="Account.ProfileUpdated", payload={"name": "New", "email": None}
    )
    message = encode(event, redact=True)
    assert json.loads(message.value) == {"name": "New", "email": None}
    assert decode(message.headers, message.value) == event


# --- real domain events, as the event store projects them -----------------------------------------


def test_every_domain_event_fits_the_contract(tmp_path: Path) -> None:
    """The contract follows the domain: a field added to an event fails here, not in the relay."""
    from eventsourcing.sqlite import SQLiteDatastore  # noqa: PLC0415

    recorder = SQLiteRecorder(SQLiteDatastore(str(tmp_path / "events.sqlite"), pool_size=2))
    recorder.create_table()
    log = EventLog(recorder, MetadataMapper(transcoder=OrjsonTranscoder()))
    ctx = CommandContext(principal=OPERATOR, correlation_id="corr", causation_id="req")

    account = Account.open("Acme", "Ops@Acme.example")
    account.update_profile(email="it@acme.example")
    account.change_plan("pro")
    account.suspend("unpaid")
    account.reactivate()
    key = ApiKey.issue(
        key_id=uuid.uuid4(),
        account_id=account.id,
        name="ci",
        token="sk_live_" + "x" * 60,
        role=Role.MEMBER,
        scopes=[Scope.DATA_READ],
        granted_by=ALL_SCOPES,
    )
    key.rotate("sk_live_" + "y" * 60)
    key.revoke("leaked")
    source = Source(account_id=str(account.id), name="orders")
    created = Record.upsert_event(
        account_id=str(account.id),
        source="orders",
        key="o-1",
        data={"total": 1, "lines": [{"sku": "a", "qty": 2}]},
        current_version=None,
        timestamp=datetime.now(UTC),
    )
    log.append([account, key, source, created], ctx, lambda commit: commit)
    log.append(
        [
            Record.upsert_event(
                account_id=str(account.id),
                source="orders",
                key="o-1",
                data={"total": 2},
                current_version=1,
                timestamp=datetime.now(UTC),
            )
        ],
        ctx,
        lambda commit: commit,
    )
    record = log.load(Record, created.originator_id)
    record.delete()
    account.close("bye")
    usage = UsageReport(
        account_id=str(account.id), hour="2026-11-23T10:00:00+00:00", calls={"read": 3}
    )
    log.append([record, account, usage], ctx, lambda commit: commit)

    # Transformations: a versioned transform, a source pipeline, a transformed record.
    transformation = Transformation.define(
        account_id=account.id, name="orders v1", document={"steps": [{"drop": ["secret"]}]}
    )
    transformation.revise({"steps": [{"drop": ["secret", "internal"]}]}, name="orders")
    transformation.archive("replaced")
    source.set_pipeline(transformation.id, 2)
    transformed = Record.upsert_event(
        account_id=str(account.id),
        source="orders",
        key="o-2",
        data={"total": 1},
        raw={"total": 1, "secret": "s"},
        transform=f"{transformation.id}@2",
        current_version=None,
        timestamp=datetime.now(UTC),
    )
    log.append([transformation, source, transformed], ctx, lambda commit: commit)
    source.clear_pipeline()
    log.append([source], ctx, lambda commit: commit)

    # Webhooks: the whole lifecycle of an endpoint.
    webhook = Webhook(
        id=uuid.uuid4(),
        account_id=str(account.id),
        url="https://hooks.example.com/x?token=t",
        event_types=["strata.record.*"],
        description="",
        secret_sealed="v1.k.sealed",
    )
    webhook.update(event_types=["*"], url="https://hooks.example.com/y")
    webhook.rotate_secret("v1.k.sealed2")
    webhook.pause()
    webhook.resume()
    webhook.request_redelivery("0" * 32)
    webhook.delete()
    log.append([webhook], ctx, lambda commit: commit)

    projected = log.read(0, 100)
    assert {e.type for e in projected} == {t.name for t in TYPES}
    for event in projected:
        full = encode(event, redact=False)
        assert decode(full.headers, full.value) == event
        public = encode(event, redact=True)
        assert b"secret_hash" not in public.value
        assert b"sealed" not in public.value
        assert b"hooks.example.com" not in public.value
    log.close()


# --- versions and upcasting ---------------------------------------------------------------------


class RecordCreatedV2(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    account_id: str
    source: str
    key: str
    data: dict[str, Any]
    media_type: str


class RecordCreatedV3(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    account_id: str
    source: str
    key: str
    body: dict[str, Any]
    media_type: str


def _add_media_type(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "media_type": "application/json"}


def _rename_data(payload: dict[str, Any]) -> dict[str, Any]:
    body = payload.pop("data")
    return {**payload, "body": body}


def _with_record_created(**changes: Any) -> Codec:
    """Today's table, with Record.Created changed (dataclasses.replace re-validates)."""
    current = CODEC.by_name("Record.Created")
    return Codec([*(t for t in TYPES if t is not current), dataclasses.replace(current, **changes)])


V2 = _with_record_created(
    version=2,
    struct=RecordCreatedV2,
    upcasters={1: _add_media_type},
    previous={1: RecordCreatedV1},
)
V3 = _with_record_created(
    version=3, struct=RecordCreatedV3, upcasters={1: _add_media_type, 2: _rename_data}
)


def test_an_older_version_is_upcast_on_read() -> None:
    message = encode(CREATED, redact=False)  # produced by today's code: v1
    decoded = V2.decode(message.headers, message.value)
    assert decoded == msgspec.structs.replace(
        CREATED, payload={**CREATED.payload, "media_type": "application/json"}
    )


def test_upcasters_chain_across_several_versions() -> None:
    from_v1 = encode(CREATED, redact=False)
    from_v2 = V2.encode(
        msgspec.structs.replace(CREATED, payload={**CREATED.payload, "media_type": "text/csv"}),
        redact=False,
    )
    assert _headers(from_v2)["ce_dataversion"] == "2"
    assert _headers(from_v2)["ce_dataschema"] == "urn:strata:schema:strata.record.created:2"
    first = V3.decode(from_v1.headers, from_v1.value)
    second = V3.decode(from_v2.headers, from_v2.value)
    assert isinstance(first, ProjectedEvent)
    assert isinstance(second, ProjectedEvent)
    expected = {"account_id": ACCOUNT, "source": "orders", "key": "o-1", "body": {"total": 9.5}}
    assert first.payload == {**expected, "media_type": "application/json"}
    assert second.payload == {**expected, "media_type": "text/csv"}


def test_a_newer_version_than_the_consumer_knows_is_refused() -> None:
    message = V2.encode(
        msgspec.structs.replace(CREATED, payload={**CREATED.payload, "media_type": "x"}),
        redact=False,
    )
    with pytest.raises(ContractError, match="newer than this consumer"):
        decode(message.headers, message.value)


def test_versions_without_an_upcaster_are_unreadable() -> None:
    only_from_2 = _with_record_created(
        version=3, struct=RecordCreatedV3, upcasters={2: _rename_data}
    )
    message = encode(CREATED, redact=False)
    with pytest.raises(ContractError, match="no longer readable"):
        only_from_2.decode(message.headers, message.value)


def test_an_old_payload_is_checked_against_its_own_struct() -> None:
    message = encode(CREATED, redact=False)
    broken = msgspec.json.encode({**CREATED.payload, "key": 7})
    with pytest.raises(ContractError):
        V2.decode(message.headers, broken)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"version": 3, "struct": RecordCreatedV3, "upcasters": {1: _add_media_type}}, "chain"),
        ({"version": 2, "struct": RecordCreatedV2, "previous": {1: RecordCreatedV1}}, "upcaster"),
        ({"subject": "records/{nope}"}, "Struct may lack"),
        ({"redacted": frozenset({"data"})}, "optional"),
        ({"ce_type": "strata.control.created"}, "ce_type"),
        ({"ce_type": "Record.Created"}, "ce_type"),
    ],
)
def test_the_table_rejects_inconsistent_entries(changes: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        dataclasses.replace(CODEC.by_name("Record.Created"), **changes)


def test_additive_fields_from_a_newer_producer_are_ignored() -> None:
    message = encode(CREATED, redact=False)
    newer = msgspec.json.encode({**CREATED.payload, "added_later": {"x": 1}})
    assert decode(message.headers, newer) == CREATED


def test_the_producer_refuses_fields_the_contract_lacks() -> None:
    event = msgspec.structs.replace(CREATED, payload={**CREATED.payload, "surprise": 1})
    with pytest.raises(ContractError, match="surprise"):
        encode(event, redact=False)


@pytest.mark.parametrize(
    "event",
    [
        msgspec.structs.replace(CREATED, type="Record.Exploded"),
        msgspec.structs.replace(CREATED, payload={"account_id": ACCOUNT}),
        msgspec.structs.replace(CREATED, payload={**CREATED.payload, "key": 1}),
        msgspec.structs.replace(CREATED, timestamp=datetime(2026, 1, 1)),
        msgspec.structs.replace(CREATED, position=0),
        msgspec.structs.replace(CREATED, version=0),
        msgspec.structs.replace(CREATED, metadata={"actor": 7}),
        msgspec.structs.replace(CREATED, payload={**CREATED.payload, "data": {"x": 1j}}),
    ],
)
def test_events_that_do_not_fit_raise_contract_error(event: ProjectedEvent) -> None:
    with pytest.raises(ContractError):
        encode(event, redact=False)


# --- watermarks and control messages ------------------------------------------------------------


def test_watermark() -> None:
    message = watermark(17)
    assert message.key is None
    assert json.loads(message.value) == {"position": 17}
    headers = _headers(message)
    assert headers["ce_type"] == "strata.control.watermark"
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_position"] == "17"
    assert datetime.fromisoformat(headers["ce_time"]).utcoffset() == timedelta(0)
    assert is_control(message.headers)
    assert decode(message.headers, message.value) == Watermark(17)
    with pytest.raises(ValueError, match="int >= 0"):
        watermark(-1)


def test_unknown_control_messages_are_control_but_undecodable() -> None:
    mark = watermark(1)
    headers = [(n, b"strata.control.heartbeat" if n == "ce_type" else v) for n, v in mark.headers]
    assert is_control(headers)
    with pytest.raises(ContractError, match="unknown control"):
        decode(headers, mark.value)


@pytest.mark.parametrize("headers", [[], [("ce_type", None)], None, [(1, 2)], "ce_type"])
def test_is_control_never_raises(headers: Any) -> None:
    assert is_control(headers) is False


# --- garbage in: ContractError, and nothing else ----------------------------------------------

header_values = st.one_of(st.binary(max_size=40), st.text(max_size=40).map(str.encode), st.none())
NAMES = [name for name, _ in encode(CREATED, redact=False).headers]


@given(
    headers=st.lists(
        st.tuples(st.sampled_from([*NAMES, "other", ""]) | st.text(max_size=10), header_values),
        max_size=20,
    ),
    value=st.binary(max_size=200) | json_values.map(msgspec.json.encode),
)
def test_garbage_raises_contract_error(headers: list[tuple[str, bytes]], value: bytes) -> None:
    try:
        decoded = decode(headers, value)
    except ContractError:
        return
    assert isinstance(decoded, ProjectedEvent | Watermark)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[list[Any], Any]:
    """A valid message (event or watermark) with a few headers or the value spoilt."""
    base = draw(st.sampled_from([encode(CREATED, redact=False), watermark(5)]))
    event = draw(events())
    base = draw(st.sampled_from([base, encode(event, redact=True)]))
    headers: list[Any] = list(base.headers)
    value: Any = base.value
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["drop", "replace", "duplicate", "value", "type"]))
        index = draw(st.integers(0, len(headers) - 1)) if headers else 0
        if action == "drop" and headers:
            headers.pop(index)
        elif action == "replace" and headers:
            headers[index] = (headers[index][0], draw(header_values))
        elif action == "duplicate" and headers:
            headers.append(headers[index])
        elif action == "value":
            value = draw(
                st.binary(max_size=60)
                | json_values.map(msgspec.json.encode)
                | st.sampled_from([None, "text", 3, b"", b"[]", b"{}", b"null"])
            )
        else:
            value = draw(st.sampled_from([None, 1, [1], "x"]))
    return headers, value


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(message=mutated())
def test_spoilt_messages_decode_or_raise_contract_error(message: tuple[list[Any], Any]) -> None:
    headers, value = message
    with contextlib.suppress(ContractError):
        decode(headers, value)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"ce_specversion": b"0.3"}, "specversion"),
        ({"content-type": b"application/xml"}, "content-type"),
        ({"ce_type": b"strata.record.exploded"}, "unknown ce_type"),
        ({"ce_dataversion": b"0"}, "ce_dataversion"),
        ({"ce_dataversion": b"\xd9\xa1"}, "ce_dataversion"),  # an Arabic-Indic one
        ({"ce_position": b" 42"}, "ce_position"),
        ({"ce_streamversion": b"4"}, "ce_id"),
        ({"ce_dataschema": b"urn:strata:schema:strata.record.created:2"}, "ce_dataschema"),
        ({"ce_time": b"2026-03-04T03:06:07"}, "UTC offset"),
        ({"ce_time": b"yesterday"}, "RFC 3339"),
        ({"ce_streamid": b"not-a-uuid"}, "undecodable"),
        ({"ce_id": b"\xff"}, "UTF-8"),
    ],
)
def test_specific_rejections(change: dict[str, bytes], error: str) -> None:
    message = encode(CREATED, redact=False)
    headers = [(name, change.get(name, value)) for name, value in message.headers]
    with pytest.raises(ContractError, match=error):
        decode(headers, message.value)


def test_tolerated_variations() -> None:
    message = encode(CREATED, redact=False)
    headers = [
        ("traceparent", b"00-abc-def-01"),
        *[
            (name, b"application/json; charset=utf-8" if name == "content-type" else value)
            for name, value in message.headers
        ],
    ]
    assert decode(headers, message.value) == CREATED
    zulu = [(n, b"2026-03-04T03:06:07.00089Z" if n == "ce_time" else v) for n, v in message.headers]
    assert decode(zulu, message.value) == CREATED


def test_duplicate_and_missing_headers() -> None:
    message = encode(CREATED, redact=False)
    with pytest.raises(ContractError, match="twice"):
        decode([*message.headers, ("ce_type", b"strata.record.created")], message.value)
    with pytest.raises(ContractError, match="missing"):
        decode([h for h in message.headers if h[0] != "ce_source"], message.value)
    with pytest.raises(ContractError, match="ce_time"):
        decode([h for h in message.headers if h[0] != "ce_time"], message.value)


# --- generated files and docs --------------------------------------------------------------------


def test_generated_files_are_up_to_date() -> None:
    assert generate.problems() == [], "run `python -m schemas.generate` and commit the result"


def test_generation_is_deterministic_and_the_check_finds_drift(tmp_path: Path) -> None:
    assert generate.render() == generate.render()
    assert generate.problems(tmp_path)[0].startswith("missing:")
    generate.write(tmp_path)
    assert generate.problems(tmp_path) == []
    assert all(text.endswith("}\n") for text in generate.render().values())
    stale = tmp_path / "jsonschema/strata.record.created.v1.json"
    stale.write_text(stale.read_text().replace("record", "recor"))
    (tmp_path / "jsonschema/strata.record.created.v0.json").write_text("{}\n")
    assert generate.problems(tmp_path) == [
        "stale:   schemas/jsonschema/strata.record.created.v1.json",
        "extra:   schemas/jsonschema/strata.record.created.v0.json",
    ]
    assert len(generate.write(tmp_path)) == 2
    assert generate.problems(tmp_path) == []


def test_the_check_command_fails_on_stale_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(generate, "HERE", tmp_path)
    monkeypatch.setattr(generate.problems, "__defaults__", (tmp_path, None))
    monkeypatch.setattr(generate.write, "__defaults__", (tmp_path, None))
    assert generate.main(["--check"]) == 1
    assert "missing: schemas/asyncapi.json" in capsys.readouterr().err
    assert generate.main([]) == 0
    assert generate.main(["--check"]) == 0


def test_json_schemas_are_the_structs_schemas() -> None:
    files = generate.render()
    for entry in TYPES:
        schema = json.loads(files[f"jsonschema/{entry.ce_type}.v{entry.version}.json"])
        assert schema["$id"] == entry.schema_urn
        assert schema["title"] == entry.struct.__name__
        assert set(schema.get("properties", {})) == set(entry.fields)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [
            *([node["$ref"]] if isinstance(node.get("$ref"), str) else []),
            *(ref for value in node.values() for ref in _refs(value)),
        ]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_asyncapi_document() -> None:
    document = json.loads(generate.render()["asyncapi.json"])
    assert document["asyncapi"] == "3.0.0"
    for ref in _refs(document):
        node = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]  # every internal reference resolves
    channels = document["channels"]
    assert channels["events"]["address"] == "strata.events"
    assert channels["credentials"]["address"] == "strata.credentials"
    assert set(channels["events"]["messages"]) == {t.ce_type for t in TYPES} | {
        contract.WATERMARK_TYPE
    }
    assert set(channels["credentials"]["messages"]) == {
        "strata.apikey.issued",
        "strata.apikey.revoked",
        "strata.apikey.rotated",
        *(t.ce_type for t in TYPES if t.name.startswith("Webhook.")),
        contract.WATERMARK_TYPE,
    }
    assert {op["action"] for op in document["operations"].values()} == {"receive"}
    headers = document["components"]["messages"]["strata.record.created"]["headers"]
    assert set(headers["properties"]) == set(NAMES)


def test_the_subscriber_guide_lists_every_type_with_its_schema() -> None:
    guide = (ROOT / "docs/subscribers.md").read_text()
    for entry in TYPES:
        link = f"../schemas/jsonschema/{entry.ce_type}.v{entry.version}.json"
        assert f"[`{entry.ce_type}`]({link})" in guide, entry.ce_type
        assert (ROOT / "docs" / link).resolve().is_file()
    for name in NAMES:
        assert f"`{name}`" in guide, name
