"""Request bodies of the command API. Unknown fields are rejected so typos never pass silently."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

PlanName = Literal["basic", "pro", "enterprise"]
ScopeName = Literal["ingest:write", "data:read", "account:admin", "account:owner", "billing:read"]
RoleName = Literal["owner", "admin", "member", "viewer"]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
SourceName = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", examples=["orders"])
]
RecordKey = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@+=~-]{0,199}$", examples=["order-1001"])
]
Reason = Annotated[str, msgspec.Meta(max_length=500)]


class CreateAccount(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: Name
    email: Email
    plan: PlanName = "basic"


class UpdateAccount(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Every field is optional; only what is given changes."""

    name: Name | None = None
    email: Email | None = None
    plan: PlanName | None = None
    status: Literal["active", "suspended"] | None = None
    reason: Reason = ""


class GenerateApiKey(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """`account_id` is needed only by the operator; a key acts on its own account.
    The key gets its role's scopes, or `scopes` when given (a subset of the role's)."""

    name: Name
    role: RoleName = "member"
    scopes: Annotated[list[ScopeName], msgspec.Meta(min_length=1)] | None = None
    account_id: UUID | None = None


class IngestRecord(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    source: SourceName
    id: RecordKey
    data: dict[str, Any]


class BatchRecord(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: RecordKey
    data: dict[str, Any]


class IngestBatch(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    source: SourceName
    records: Annotated[list[BatchRecord], msgspec.Meta(min_length=1)]


class StreamLine(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One NDJSON line of `POST /v1/ingest/stream`; `source` defaults to the `source` query."""

    id: RecordKey
    data: dict[str, Any]
    source: SourceName | None = None
