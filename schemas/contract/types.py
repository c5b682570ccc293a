"""The table of event types: names on both sides, payload Struct, version, upcasters."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from string import Formatter
from types import MappingProxyType
from typing import Any
from urllib.parse import quote
from uuid import UUID

import msgspec

from schemas.contract import payloads as p

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Brings a payload of version n (as a plain dict) to version n + 1."""


CE_TYPE = re.compile(r"strata\.[a-z]+(\.[a-z][a-z0-9_]*)+")
CONTROL_PREFIX = "strata.control."


def schema_urn(ce_type: str, version: int) -> str:
    return f"urn:strata:schema:{ce_type}:{version}"


# What `quote(..., safe=SEGMENT_SAFE)` leaves as it is: checked first, quoting is slower.
SEGMENT_SAFE = ":@+=~"
_UNQUOTED = re.compile(r"[A-Za-z0-9_.\-~:@+=]*")


def path_segment(value: Any) -> str:
    """A path segment of ce_subject / ce_source. Strata's naming rules never produce '/',
    '%' or spaces, so this is the value itself; anything else is percent-encoded."""
    text = value if isinstance(value, str) else str(value)
    return text if _UNQUOTED.fullmatch(text) else quote(text, safe=SEGMENT_SAFE)


@functools.cache
def _template_parts(template: str) -> tuple[tuple[str, str | None], ...]:
    """(literal text, field name or None) pairs, in order."""
    return tuple((text, name) for text, name, _, _ in Formatter().parse(template))


@functools.cache
def template_fields(template: str) -> frozenset[str]:
    return frozenset(name for _, name in _template_parts(template) if name is not None)


@dataclass(frozen=True)
class EventType:
    name: str
    """Strata's internal name, 'Aggregate.Event' (ProjectedEvent.type)."""
    ce_type: str
    """The CloudEvents type, 'strata.<aggregate>.<event>'."""
    version: int
    """The current payload version (ce_dataversion)."""
    struct: type[msgspec.Struct]
    """The payload of the current version."""
    subject: str
    """ce_subject, a template over `{stream_id}` and required payload fields, each value
    inserted as a path segment: 'records/{source}/{key}'."""
    account: str
    """The account the event belongs to (ce_source is /accounts/<it>), a template like
    `subject`: '{stream_id}' (Account events) or '{account_id}'."""
    upcasters: Mapping[int, Upcaster] = field(default_factory=dict)
    """{from_version: fn}: fn brings a payload of from_version to from_version + 1."""
    redacted: frozenset[str] = frozenset()
    """Payload fields dropped on the public topic (encode(..., redact=True))."""
    previous: Mapping[int, type[msgspec.Struct]] = field(default_factory=dict)
    """Structs of older versions still readable, kept so their JSON Schemas stay published."""

    def __post_init__(self) -> None:
        if not CE_TYPE.fullmatch(self.ce_type) or self.ce_type.startswith(CONTROL_PREFIX):
            raise ValueError(f"{self.name}: bad ce_type {self.ce_type!r}")
        if self.version < 1:
            raise ValueError(f"{self.name}: versions start at 1")
        froms = sorted(self.upcasters)
        if froms and froms != list(range(froms[0], self.version)):
            raise ValueError(
                f"{self.name}: upcasters must chain to version {self.version} without gaps "
                f"(have from-versions {froms})"
            )
        if froms and froms[0] < 1:
            raise ValueError(f"{self.name}: upcaster from version {froms[0]} < 1")
        if any(v >= self.version or v not in self.upcasters for v in self.previous):
            raise ValueError(f"{self.name}: previous Structs need an upcaster and v < current")
        required = {f.encode_name for f in msgspec.structs.fields(self.struct) if f.required}
        for template in (self.subject, self.account):
            if not template_fields(template) <= required | {"stream_id"}:
                raise ValueError(f"{self.name}: {template!r} uses fields the Struct may lack")
        optional = {f.encode_name for f in msgspec.structs.fields(self.struct) if not f.required}
        if not self.redacted <= optional:
            raise ValueError(f"{self.name}: redacted fields must be optional fields of the Struct")
        object.__setattr__(self, "upcasters", MappingProxyType(dict(self.upcasters)))
        object.__setattr__(self, "previous", MappingProxyType(dict(self.previous)))

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f.encode_name for f in msgspec.structs.fields(self.struct))

    @property
    def schema_urn(self) -> str:
        return schema_urn(self.ce_type, self.version)

    @property
    def readable_versions(self) -> range:
        """Versions this code can decode: current, and older ones it has upcasters for."""
        return range(min(self.upcasters, default=self.version), self.version + 1)

    def render(self, template: str, stream_id: UUID | str, payload: Mapping[str, Any]) -> str:
        """`subject` or `account` of one event (current-version payload)."""
        out = []
        for text, name in _template_parts(template):
            out.append(text)
            if name == "stream_id":
                out.append(str(stream_id))
            elif name is not None:
                out.append(path_segment(payload[name]))
        return "".join(out)

    def upcast(self, payload: dict[str, Any], version: int) -> dict[str, Any]:
        """`payload` of `version`, brought to the current version (KeyError: unreadable)."""
        for step in range(version, self.version):
            payload = self.upcasters[step](payload)
        return payload


def _account(event: str, struct: type[msgspec.Struct], ce_event: str) -> EventType:
    return EventType(
        name=f"Account.{event}",
        ce_type=f"strata.account.{ce_event}",
        version=1,
        struct=struct,
        subject="account",
        account="{stream_id}",
    )


def _apikey(event: str, struct: type[msgspec.Struct], redacted: Iterable[str] = ()) -> EventType:
    return EventType(
        name=f"ApiKey.{event}",
        ce_type=f"strata.apikey.{event.lower()}",
        version=1,
        struct=struct,
        subject="apikeys/{stream_id}",
        account="{account_id}",
        redacted=frozenset(redacted),
    )


def _webhook(event: str, struct: type[msgspec.Struct], redacted: Iterable[str] = ()) -> EventType:
    return EventType(
        name=f"Webhook.{event}",
        ce_type="strata.webhook." + re.sub(r"(?<!^)(?=[A-Z])", "_", event).lower(),
        version=1,
        struct=struct,
        subject="webhooks/{stream_id}",
        account="{account_id}",
        redacted=frozenset(redacted),
    )


def _record(event: str, struct: type[msgspec.Struct]) -> EventType:
    return EventType(
        name=f"Record.{event}",
        ce_type=f"strata.record.{event.lower()}",
        version=1,
        struct=struct,
        subject="records/{source}/{key}",
        account="{account_id}",
    )


def _transformation(event: str, struct: type[msgspec.Struct]) -> EventType:
    return EventType(
        name=f"Transformation.{event}",
        ce_type=f"strata.transformation.{event.lower()}",
        version=1,
        struct=struct,
        subject="transformations/{stream_id}",
        account="{account_id}",
    )


def _source_pipeline(event: str, struct: type[msgspec.Struct], ce_event: str) -> EventType:
    return EventType(
        name=f"Source.{event}",
        ce_type=f"strata.source.{ce_event}",
        version=1,
        struct=struct,
        subject="sources/{name}",
        account="{account_id}",
    )


TYPES: tuple[EventType, ...] = (
    _account("Opened", p.AccountOpenedV1, "opened"),
    _account("ProfileUpdated", p.AccountProfileUpdatedV1, "profile_updated"),
    _account("PlanChanged", p.AccountPlanChangedV1, "plan_changed"),
    _account("Suspended", p.AccountSuspendedV1, "suspended"),
    _account("Reactivated", p.AccountReactivatedV1, "reactivated"),
    _account("Closed", p.AccountClosedV1, "closed"),
    _apikey("Issued", p.ApiKeyIssuedV1, redacted=["secret_hash"]),
    _apikey("Revoked", p.ApiKeyRevokedV1),
    _apikey("Rotated", p.ApiKeyRotatedV1, redacted=["secret_hash"]),
    EventType(
        name="Source.Registered",
        ce_type="strata.source.registered",
        version=1,
        struct=p.SourceRegisteredV1,
        subject="sources/{name}",
        account="{account_id}",
    ),
    _record("Created", p.RecordCreatedV1),
    _record("Updated", p.RecordUpdatedV1),
    _record("Deleted", p.RecordDeletedV1),
    EventType(
        name="UsageReport.Recorded",
        ce_type="strata.usage.recorded",
        version=1,
        struct=p.UsageRecordedV1,
        subject="usage/{hour}",
        account="{account_id}",
    ),
    _webhook("Registered", p.WebhookRegisteredV1, redacted=["url", "secret_sealed"]),
    _webhook("Updated", p.WebhookUpdatedV1, redacted=["url"]),
    _webhook(
        "SecretRotated",
        p.WebhookSecretRotatedV1,
        redacted=["secret_sealed", "previous_secret_sealed"],
    ),
    _webhook("Paused", p.WebhookPausedV1),
    _webhook("Resumed", p.WebhookResumedV1),
    _webhook("Deleted", p.WebhookDeletedV1),
    _webhook("RedeliveryRequested", p.WebhookRedeliveryRequestedV1),
    # Transformations (docs/transforms.md)
    _transformation("Created", p.TransformationCreatedV1),
    _transformation("Revised", p.TransformationRevisedV1),
    _transformation("Archived", p.TransformationArchivedV1),
    _source_pipeline("PipelineSet", p.SourcePipelineSetV1, "pipeline_set"),
    _source_pipeline("PipelineCleared", p.SourcePipelineClearedV1, "pipeline_cleared"),
)
"""Every event type Strata publishes. A new type goes here (and in docs/subscribers.md)."""

CREDENTIAL_TYPE_PREFIXES = ("ApiKey.", "Webhook.")
"""Types also published, unredacted, on the internal credentials topic (Webhook events
there feed the webhook delivery worker its endpoints and sealed secrets, in order)."""

WATERMARK_TYPE = "strata.control.watermark"
WATERMARK_VERSION = 1
WATERMARK_STRUCT = p.WatermarkV1
