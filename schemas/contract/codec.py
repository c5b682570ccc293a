"""CloudEvents 1.0 over Kafka, binary content mode: an event's attributes travel as `ce_*`
headers, its payload as the JSON message value (see docs/subscribers.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from schemas.contract.types import (
    CONTROL_PREFIX,
    WATERMARK_STRUCT,
    WATERMARK_TYPE,
    WATERMARK_VERSION,
    EventType,
    schema_urn,
)
from schemas.events import ProjectedEvent

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
WATERMARK_SOURCE = "/strata/relay"

METADATA_HEADERS: tuple[tuple[str, str], ...] = (
    ("correlation_id", "ce_correlationid"),
    ("causation_id", "ce_causationid"),
    ("actor", "ce_actor"),
    # W3C trace context, as the CloudEvents distributed-tracing extension names it.
    ("traceparent", "ce_traceparent"),
)
"""ProjectedEvent.metadata keys carried as extension attributes (omitted when absent).
Other metadata keys are not part of the contract and are not published."""

_REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type")


class ContractError(Exception):
    """A message (or event) the contract cannot represent: undecodable headers or value,
    an unknown type, an unreadable version or an invalid payload. On the consuming side
    it marks a poison message: retrying will not help."""


@dataclass(frozen=True)
class Message:
    """What to hand to a Kafka producer: key, value and headers (values UTF-8)."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class Watermark:
    """Every event with a position <= `position` for this partition came before this."""

    position: int


def _where(event: ProjectedEvent) -> str:
    return f"{event.type} at position {event.position}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Codec:
    """Encodes and decodes the event types of one table (the module functions use `TYPES`;
    tests build codecs of other tables, e.g. to exercise upcasting)."""

    def __init__(self, types: Iterable[EventType]) -> None:
        self.types = tuple(types)
        self._by_name = {t.name: t for t in self.types}
        self._by_ce_type = {t.ce_type: t for t in self.types}
        if len(self._by_name) != len(self.types) or len(self._by_ce_type) != len(self.types):
            raise ValueError("event type names and ce_types must be unique")
        self._fields = {t.name: frozenset(t.fields) for t in self.types}
        # Per-type constants of the consuming side, computed once (decode is per message).
        self._readable = {t.name: t.readable_versions for t in self.types}
        self._urns = {
            t.name: {v: schema_urn(t.ce_type, v) for v in t.readable_versions} for t in self.types
        }
        self._current = {t.name: msgspec.json.Decoder(t.struct) for t in self.types}
        # The producing side's headers that are the same for every event of a type.
        self._constant = {
            t.name: (
                ("ce_specversion", SPECVERSION.encode()),
                ("ce_type", t.ce_type.encode()),
                ("content-type", CONTENT_TYPE.encode()),
                ("ce_dataschema", t.schema_urn.encode()),
                ("ce_dataversion", str(t.version).encode()),
            )
            for t in self.types
        }

    def by_name(self, name: str) -> EventType:
        try:
            return self._by_name[name]
        except KeyError:
            raise ContractError(f"unknown event type {name!r}") from None

    def by_ce_type(self, ce_type: str) -> EventType:
        try:
            return self._by_ce_type[ce_type]
        except KeyError:
            raise ContractError(f"unknown ce_type {ce_type!r}") from None

    # --- producing ----------------------------------------------------------------------------

    def encode(self, event: ProjectedEvent, *, redact: bool) -> Message:
        try:
            return self._encode(event, redact=redact)
        except ContractError:
            raise
        except Exception as exc:
            raise ContractError(f"cannot encode event: {exc}") from exc

    def _encode(self, event: ProjectedEvent, *, redact: bool) -> Message:
        entry = self.by_name(event.type)
        if not self._fields[entry.name].issuperset(event.payload):
            unknown = set(event.payload) - self._fields[entry.name]
            raise ContractError(
                f"{_where(event)}: payload fields {sorted(unknown)} are not in the contract "
                f"(add them to {entry.struct.__name__})"
            )
        try:
            payload = msgspec.convert(event.payload, entry.struct)
        except msgspec.ValidationError as exc:
            raise ContractError(f"{_where(event)}: invalid payload: {exc}") from None
        if redact and entry.redacted:
            payload = msgspec.structs.replace(
                payload, **dict.fromkeys(entry.redacted, msgspec.UNSET)
            )
        if not isinstance(event.stream_id, UUID):
            raise ContractError(f"{_where(event)}: stream_id must be a UUID")
        if not (_is_int(event.position) and event.position >= 1):
            raise ContractError(f"{_where(event)}: position must be an int >= 1")
        if not (_is_int(event.version) and event.version >= 1):
            raise ContractError(f"{_where(event)}: version must be an int >= 1")
        if event.timestamp.utcoffset() is None:
            raise ContractError(f"{_where(event)}: the timestamp must be timezone-aware")
        stream_id = str(event.stream_id)
        version = str(event.version)
        specversion, ce_type, content_type, dataschema, dataversion = self._constant[entry.name]
        source = "/accounts/" + entry.render(entry.account, stream_id, event.payload)
        time = event.timestamp.astimezone(UTC).isoformat(timespec="microseconds")
        headers = [
            specversion,
            ("ce_id", f"{stream_id}:{version}".encode()),
            ("ce_source", source.encode()),
            ce_type,
            ("ce_subject", entry.render(entry.subject, stream_id, event.payload).encode()),
            ("ce_time", time.encode()),
            content_type,
            dataschema,
            dataversion,
            ("ce_position", str(event.position).encode()),
            ("ce_streamid", stream_id.encode()),
            ("ce_streamversion", version.encode()),
        ]
        metadata = event.metadata
        for key, header in METADATA_HEADERS:
            value = metadata.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise ContractError(f"{_where(event)}: metadata {key} must be a string")
            headers.append((header, value.encode()))
        return Message(key=stream_id.encode(), value=msgspec.json.encode(payload), headers=headers)

    # --- consuming ----------------------------------------------------------------------------

    def decode(
        self, headers: Sequence[tuple[str, bytes]], value: bytes
    ) -> ProjectedEvent | Watermark:
        try:
            return self._decode(headers, value)
        except ContractError:
            raise
        except Exception as exc:
            raise ContractError(f"undecodable message: {exc!r}") from exc

    def _decode(
        self, headers: Sequence[tuple[str, bytes]], value: bytes
    ) -> ProjectedEvent | Watermark:
        attrs = _attributes(headers)
        missing = [name for name in _REQUIRED if name not in attrs]
        if missing:
            raise ContractError(f"not a CloudEvent: missing headers {missing}")
        if attrs["ce_specversion"] != SPECVERSION:
            raise ContractError(f"unsupported ce_specversion {attrs['ce_specversion']!r}")
        media = attrs.get("content-type", "")
        if media != CONTENT_TYPE:
            media = media.partition(";")[0].strip().lower()
            if media != CONTENT_TYPE:
                raise ContractError(f"content-type must be {CONTENT_TYPE}, got {media!r}")
        if not isinstance(value, bytes | bytearray | memoryview):
            raise ContractError("the message has no value")
        ce_type = attrs["ce_type"]
        if ce_type.startswith(CONTROL_PREFIX):
            if ce_type != WATERMARK_TYPE:
                raise ContractError(f"unknown control message {ce_type!r}")
            mark = msgspec.json.decode(value, type=WATERMARK_STRUCT)
            return Watermark(position=mark.position)

        entry = self.by_ce_type(ce_type)
        version = _number(attrs, "ce_dataversion", minimum=1)
        if version > entry.version:
            raise ContractError(
                f"{ce_type} v{version} is newer than this consumer (v{entry.version}): upgrade it"
            )
        if version not in self._readable[entry.name]:
            raise ContractError(f"{ce_type} v{version} is no longer readable")
        schema = attrs.get("ce_dataschema")
        if schema is not None and schema != self._urns[entry.name][version]:
            raise ContractError(f"ce_dataschema {schema!r} does not match {ce_type} v{version}")
        position = _number(attrs, "ce_position", minimum=1)
        stream_version = _number(attrs, "ce_streamversion", minimum=1)
        stream_id = UUID(_required(attrs, "ce_streamid"))
        if attrs["ce_id"] != f"{stream_id}:{stream_version}":
            raise ContractError("ce_id must be <ce_streamid>:<ce_streamversion>")
        timestamp = _time(_required(attrs, "ce_time"))
        return ProjectedEvent(
            position=position,
            stream_id=stream_id,
            version=stream_version,
            type=entry.name,
            timestamp=timestamp,
            payload=self._payload(entry, version, value),
            metadata={key: attrs[header] for key, header in METADATA_HEADERS if header in attrs},
        )

    def _payload(self, entry: EventType, version: int, value: bytes) -> dict[str, Any]:
        """The payload as the current version's Struct would give it, as builtins."""
        if version == entry.version:  # no upcast: straight into the Struct
            current = self._current[entry.name].decode(value)
        else:
            raw = msgspec.json.decode(value, type=dict[str, Any])
            if version in entry.previous:
                msgspec.convert(raw, entry.previous[version])
            current = msgspec.convert(entry.upcast(raw, version), entry.struct)
        payload: dict[str, Any] = msgspec.to_builtins(current)
        return payload

    # --- control ------------------------------------------------------------------------------

    @staticmethod
    def watermark(position: int) -> Message:
        if not (_is_int(position) and position >= 0):
            raise ValueError("a watermark position is an int >= 0")
        headers = [
            ("ce_specversion", SPECVERSION),
            ("ce_id", f"watermark:{position}"),
            ("ce_source", WATERMARK_SOURCE),
            ("ce_type", WATERMARK_TYPE),
            ("ce_time", datetime.now(UTC).isoformat(timespec="microseconds")),
            ("content-type", CONTENT_TYPE),
            ("ce_dataschema", schema_urn(WATERMARK_TYPE, WATERMARK_VERSION)),
            ("ce_dataversion", str(WATERMARK_VERSION)),
            ("ce_position", str(position)),
        ]
        return Message(
            key=None,
            value=msgspec.json.encode(WATERMARK_STRUCT(position=position)),
            headers=[(name, value.encode()) for name, value in headers],
        )


def is_control(headers: Iterable[tuple[str, bytes]]) -> bool:
    """True for Strata's control messages (ce_type strata.control.*), which subscribers skip.
    Never raises: anything unreadable is 'not control' (decode will reject it)."""
    prefix = CONTROL_PREFIX.encode()
    try:
        return any(
            name == "ce_type" and isinstance(value, bytes) and value.startswith(prefix)
            for name, value in headers
        )
    except (TypeError, ValueError):
        return False


def _attributes(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    """The CloudEvents headers as text. Other headers (tracing, ...) are ignored."""
    try:  # the common case, cheaply; anything unusual is judged by the exact pass below
        pairs = [
            (name, raw.decode())
            for name, raw in headers
            if name.startswith("ce_") or name == "content-type"
        ]
        attrs = dict(pairs)
        if len(attrs) == len(pairs):
            return attrs
    except Exception:  # noqa: S110 - the exact pass names the problem
        pass
    return _attributes_exactly(headers)


def _attributes_exactly(headers: Sequence[tuple[str, bytes]]) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for name, raw in headers:
        if not isinstance(name, str):
            raise ContractError("header names must be strings")
        if not (name.startswith("ce_") or name == "content-type"):
            continue
        if name in attrs:
            raise ContractError(f"header {name} appears twice")
        if not isinstance(raw, bytes | bytearray | memoryview):
            raise ContractError(f"header {name} has no value")
        try:
            attrs[name] = bytes(raw).decode()
        except UnicodeDecodeError:
            raise ContractError(f"header {name} is not UTF-8") from None
    return attrs


def _required(attrs: dict[str, str], name: str) -> str:
    try:
        return attrs[name]
    except KeyError:
        raise ContractError(f"missing header {name}") from None


def _number(attrs: dict[str, str], name: str, *, minimum: int) -> int:
    text = _required(attrs, name)
    # 1 to 20 ASCII digits (isdigit alone would take other scripts' digits)
    if not (len(text) <= 20 and text.isascii() and text.isdigit()) or int(text) < minimum:
        raise ContractError(f"header {name} must be an integer >= {minimum}, got {text!r}")
    return int(text)


def _time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ContractError(f"ce_time {text!r} is not an RFC 3339 timestamp") from None
    if moment.utcoffset() is None:
        raise ContractError(f"ce_time {text!r} has no UTC offset")
    return moment.astimezone(UTC)
