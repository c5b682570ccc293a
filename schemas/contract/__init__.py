"""Strata's event contract: how events travel on Kafka, for Strata's own stream processors
and for other teams (docs/subscribers.md is the subscriber's guide).

- Every event type has a versioned payload Struct (`payloads`) registered in `types.TYPES`
  with its CloudEvents type, subject/account derivation and upcasters of older versions.
- On the wire: CloudEvents 1.0, Kafka protocol binding, binary content mode; JSON data.
  `encode` turns a `ProjectedEvent` into a `Message`; `decode` turns headers and value
  back into the same `ProjectedEvent` (older versions upcast), or a `Watermark`.
- `python -m schemas.generate` derives the JSON Schemas and the AsyncAPI document from
  the same Structs; CI fails when the committed files are stale.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.contract.codec import (
    CONTENT_TYPE,
    METADATA_HEADERS,
    SPECVERSION,
    Codec,
    ContractError,
    Message,
    Watermark,
    is_control,
)
from schemas.contract.types import (
    CONTROL_PREFIX,
    CREDENTIAL_TYPE_PREFIXES,
    TYPES,
    WATERMARK_TYPE,
    EventType,
    Upcaster,
)
from schemas.events import ProjectedEvent

EVENT_TOPIC = "events"
"""Suffix of the public topic (`{prefix}events`, default `strata.events`): every event,
ApiKey events redacted (no secret_hash). Keyed by stream id; N partitions."""

CREDENTIALS_TOPIC = "credentials"
"""Suffix of the internal topic (`{prefix}credentials`): full ApiKey events, for Strata's
own processors only. One partition, same encoding."""

DEFAULT_PREFIX = "strata."

CODEC = Codec(TYPES)

__all__ = [
    "CODEC",
    "CONTENT_TYPE",
    "CONTROL_PREFIX",
    "CREDENTIALS_TOPIC",
    "CREDENTIAL_TYPE_PREFIXES",
    "DEFAULT_PREFIX",
    "EVENT_TOPIC",
    "METADATA_HEADERS",
    "SPECVERSION",
    "TYPES",
    "WATERMARK_TYPE",
    "Codec",
    "ContractError",
    "EventType",
    "Message",
    "Upcaster",
    "Watermark",
    "decode",
    "encode",
    "is_control",
    "watermark",
]


def encode(event: ProjectedEvent, *, redact: bool) -> Message:
    """The Kafka message of `event`. `redact=True` (the public topic) drops credential
    verifiers (ApiKey secret_hash). Raises ContractError when the event does not fit."""
    return CODEC.encode(event, redact=redact)


def decode(headers: Sequence[tuple[str, bytes]], value: bytes) -> ProjectedEvent | Watermark:
    """The event (validated, upcast to the current version) or watermark a message carries.
    Raises ContractError, and nothing else, for anything it cannot read (a poison message)."""
    return CODEC.decode(headers, value)


def watermark(position: int) -> Message:
    """A watermark control message (no key: the relay writes it to each partition)."""
    return CODEC.watermark(position)
