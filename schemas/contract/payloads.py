"""The payload of every event type, one msgspec Struct per (type, version).

Rules for changing these (see docs/subscribers.md, "Versioning"):

- Within a version, changes are additive only: a new field gets a default and goes last.
  Structs ignore unknown fields (`forbid_unknown_fields=False`), so a consumer built
  against an older revision of a version keeps working when producers add fields.
- Anything else (renaming, removing, retyping, changing meaning) is a new version: add a
  `...V2` Struct, keep the old one in the type's `previous` mapping so its JSON Schema stays
  published, and register an upcaster from 1 to 2 in `schemas/contract/types.py`.
- After any change run `python -m schemas.generate` and commit the regenerated files.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

AccountId = Annotated[str, msgspec.Meta(description="The account's id (a UUID, canonical form).")]
Reason = Annotated[str, msgspec.Meta(description="Free text given by whoever made the change.")]
Plan = Annotated[
    str, msgspec.Meta(description="The plan: basic, pro or enterprise (more may be added).")
]
SourceName = Annotated[
    str, msgspec.Meta(description="The source's name: 1-64 chars of a-z, 0-9, '_', '.', '-'.")
]
RecordKey = Annotated[
    str,
    msgspec.Meta(description="The record's key within its source (the `id` of the data API)."),
]
RecordData = Annotated[
    dict[str, Any],
    msgspec.Meta(
        description=(
            "The record's full new content: as ingested, or as the source's pipeline "
            "transformed it (then `raw` holds what was ingested)."
        )
    ),
]
SecretHash = Annotated[
    str,
    msgspec.Meta(
        description=(
            "SHA-256 (hex) of the key's secret. Present only on the internal credentials "
            "topic; redacted (absent) on the public events topic."
        )
    ),
]


# --- Account: stream id = account id ------------------------------------------------------


class AccountOpenedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """An account was opened. The stream id is the new account's id."""

    name: Annotated[str, msgspec.Meta(description="The account's display name.")]
    email: Annotated[str, msgspec.Meta(description="Contact email, lower-cased.")]
    plan: Plan


class AccountProfileUpdatedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """An account's name and/or email changed; a field that did not change is null."""

    name: str | None
    email: str | None


class AccountPlanChangedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """An account moved to another plan."""

    plan: Plan
    previous_plan: Plan


class AccountSuspendedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """An account was suspended: it can no longer ingest or manage keys."""

    reason: Reason


class AccountReactivatedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A suspended account became active again."""


class AccountClosedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """An account was closed, for good."""

    reason: Reason


# --- ApiKey: stream id = key id -------------------------------------------------------------


class ApiKeyIssuedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """An API key was issued to an account. The stream id is the key's id."""

    account_id: AccountId
    name: Annotated[str, msgspec.Meta(description="The key's display name.")]
    prefix: Annotated[str, msgspec.Meta(description="The token's public prefix, for display.")]
    scopes: Annotated[list[str], msgspec.Meta(description="Scopes granted, sorted.")]
    secret_hash: SecretHash | msgspec.UnsetType = msgspec.UNSET
    role: (
        Annotated[
            str,
            msgspec.Meta(
                description="owner, admin, member or viewer. Added within version 1: "
                "absent on older events, which were all 'member'."
            ),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET


class ApiKeyRevokedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """An API key was revoked: it authenticates no more."""

    account_id: AccountId
    reason: Reason


class ApiKeyRotatedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """An API key's secret was replaced; the old secret stopped working at once."""

    account_id: AccountId
    secret_hash: SecretHash | msgspec.UnsetType = msgspec.UNSET


# --- Source: stream id = uuid5(account/name) ---------------------------------------------------


class SourceRegisteredV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A source was registered, implicitly, by the first record ingested into it."""

    account_id: AccountId
    name: SourceName


# --- Record: stream id = uuid5(account/source/key) ----------------------------------------------

RawData = Annotated[
    dict[str, Any],
    msgspec.Meta(
        description=(
            "What was ingested, when the source's pipeline transformed it into `data`. "
            "Added within version 1: absent when no pipeline applied."
        )
    ),
]
TransformRef = Annotated[
    str,
    msgspec.Meta(
        description=(
            "`<transformation id>@<version>`: the transform the source's pipeline applied. "
            "Added within version 1: absent when no pipeline applied."
        )
    ),
]


class RecordCreatedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A record was ingested for the first time."""

    account_id: AccountId
    source: SourceName
    key: RecordKey
    data: RecordData
    raw: RawData | msgspec.UnsetType = msgspec.UNSET
    transform: TransformRef | msgspec.UnsetType = msgspec.UNSET


class RecordUpdatedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A record was ingested again (or after its deletion): `data` replaces its content."""

    account_id: AccountId
    source: SourceName
    key: RecordKey
    data: RecordData
    raw: RawData | msgspec.UnsetType = msgspec.UNSET
    transform: TransformRef | msgspec.UnsetType = msgspec.UNSET


class RecordDeletedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A record was deleted. Its history stays; a later ingest revives it (Record.Updated)."""

    account_id: AccountId
    source: SourceName
    key: RecordKey


# --- control messages ----------------------------------------------------------------------------


class WatermarkV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """Control message (ce_type strata.control.watermark): every event with a position up to
    `position` destined for this partition was written before this message. Subscribers skip it.
    """

    position: Annotated[int, msgspec.Meta(ge=0)]


# --- UsageReport: stream id = a new id per report ----------------------------------------------


class UsageRecordedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """API calls one Strata process served for an account within one UTC hour (metering).
    Several reports may cover the same account and hour: sum them."""

    account_id: AccountId
    hour: Annotated[str, msgspec.Meta(description="Start of the UTC hour, ISO-8601.")]
    calls: Annotated[
        dict[str, int],
        msgspec.Meta(description="Calls per route class: ingest, command, read, search, query."),
    ]


# --- Transformation: stream id = the transformation's id ---------------------------------------

TransformDocument = Annotated[
    dict[str, Any],
    msgspec.Meta(description='The transform document, {"steps": [...]} (docs/transforms.md).'),
]
TransformVersion = Annotated[
    int, msgspec.Meta(description="The transform's version this event made: 1, 2, 3, ...")
]


class TransformationCreatedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """An account defined a transformation; this is its version 1."""

    account_id: AccountId
    name: Annotated[str, msgspec.Meta(description="The transformation's display name.")]
    document: TransformDocument
    version: TransformVersion


class TransformationRevisedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A transformation got a new version (earlier versions stay as they were)."""

    account_id: AccountId
    version: TransformVersion
    document: TransformDocument
    name: Annotated[str | None, msgspec.Meta(description="The new name; null: unchanged.")]


class TransformationArchivedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A transformation was archived ("deleted"): no new versions or uses; every version
    stays readable."""

    account_id: AccountId
    reason: Reason


# --- Source pipelines: stream id = uuid5(account/name), as Source.Registered ---------------------


class SourcePipelineSetV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """Records ingested into the source from now on are transformed by this transform version
    (the events keep both the raw and the transformed record)."""

    account_id: AccountId
    name: SourceName
    transform_id: Annotated[str, msgspec.Meta(description="The transformation's id.")]
    transform_version: TransformVersion


class SourcePipelineClearedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """The source's pipeline was removed: records are stored as ingested again."""

    account_id: AccountId
    name: SourceName


# --- Webhook: stream id = webhook id ------------------------------------------------------------

SealedSecret = Annotated[
    str,
    msgspec.Meta(
        description=(
            "The signing secret, encrypted with Strata's webhook key ring (never in clear). "
            "Present only on the internal credentials topic; redacted on the events topic."
        )
    ),
]
WebhookUrl = Annotated[
    str,
    msgspec.Meta(
        description=(
            "The endpoint URL (it may embed a token, so it is present only on the internal "
            "credentials topic; redacted on the events topic)."
        )
    ),
]
EventTypePatterns = Annotated[
    list[str],
    msgspec.Meta(description="CloudEvents types, `strata.<family>.*` or `*`, sorted."),
]


class WebhookRegisteredV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """An account registered a webhook endpoint. The stream id is the webhook's id."""

    account_id: AccountId
    event_types: EventTypePatterns
    description: Annotated[str, msgspec.Meta(description="Free text, may be empty.")]
    url: WebhookUrl | msgspec.UnsetType = msgspec.UNSET
    secret_sealed: SealedSecret | msgspec.UnsetType = msgspec.UNSET


class WebhookUpdatedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A webhook's URL, event types and/or description changed; what did not change is null."""

    account_id: AccountId
    event_types: EventTypePatterns | None
    description: str | None
    url: WebhookUrl | msgspec.UnsetType | None = msgspec.UNSET


class WebhookSecretRotatedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A webhook's signing secret was replaced (the old one still signs for a grace period)."""

    account_id: AccountId
    secret_sealed: SealedSecret | msgspec.UnsetType = msgspec.UNSET
    previous_secret_sealed: SealedSecret | msgspec.UnsetType = msgspec.UNSET


class WebhookPausedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A webhook was paused: events after this are not delivered to it."""

    account_id: AccountId


class WebhookResumedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A paused webhook was resumed: events after this are delivered again."""

    account_id: AccountId


class WebhookDeletedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A webhook was deleted, for good."""

    account_id: AccountId


class WebhookRedeliveryRequestedV1(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """Someone asked for a past delivery of this webhook to be sent again."""

    account_id: AccountId
    delivery_id: Annotated[str, msgspec.Meta(description="The delivery to send again.")]
