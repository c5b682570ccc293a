"""Request and response bodies of the transformation endpoints (docs/transforms.md)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec

from schemas.envelope import ErrorBody, ErrorEnvelope, meta_now
from schemas.responses import BatchWritten, RecordWritten

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Document = Annotated[
    dict[str, Any],
    msgspec.Meta(
        description='A transform document: {"steps": [...]} (see docs/transforms.md).',
        examples=[
            {"steps": [{"rename": {"amt": "amount"}}, {"cast": {"field": "amount", "to": "float"}}]}
        ],
    ),
]
Version = Annotated[int, msgspec.Meta(ge=1, le=999_999_999)]
MAX_TRY_RECORDS = 1000


# --- requests ---------------------------------------------------------------------------------


class CreateTransformation(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: Name
    transform: Document


class ReviseTransformation(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A new version with this document (and, optionally, a new name)."""

    transform: Document
    name: Name | None = None


class SetPipeline(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Ingest into the source applies this transform version from now on."""

    transform_id: UUID
    version: Version


class TryTransform(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Either `transform` (a document, inline) or `id` (and `version`, else the latest)."""

    records: Annotated[list[Any], msgspec.Meta(min_length=1, max_length=MAX_TRY_RECORDS)]
    transform: Document | None = None
    id: UUID | None = None
    version: Version | None = None


# --- responses --------------------------------------------------------------------------------


class TransformationWritten(msgspec.Struct, frozen=True):
    id: str
    name: str
    version: int
    """The transformation's latest version after the command."""
    archived: bool
    position: int


class TransformationView(msgspec.Struct, frozen=True):
    id: str
    name: str
    version: int
    """The version shown (the latest unless `?version=` asked for another)."""
    latest_version: int
    archived: bool
    transform: dict[str, Any]
    version_created_at: str
    created_at: str
    updated_at: str


class TransformationSummary(msgspec.Struct, frozen=True):
    id: str
    name: str
    latest_version: int
    archived: bool
    created_at: str
    updated_at: str


class TransformationList(msgspec.Struct, frozen=True):
    transformations: list[TransformationSummary]
    next_cursor: str | None


class PipelineWritten(msgspec.Struct, frozen=True):
    source: str
    transform: str | None
    """`<id>@<version>` applied at ingest from now on; null: no pipeline."""
    position: int


class PipelineView(msgspec.Struct, frozen=True):
    source: str
    transform: str | None
    transform_id: str | None
    version: int | None
    updated_at: str | None


class TryResult(msgspec.Struct, frozen=True, omit_defaults=True):
    """One record's outcome: `ok` with `record`, `dropped` by filter `step`, or `error` with
    `step`, `field`, `code` and `message`."""

    index: int
    status: str
    record: dict[str, Any] | None = None
    step: int | None = None
    field: str | None = None
    code: str | None = None
    message: str | None = None


class TryResults(msgspec.Struct, frozen=True):
    transform: str | None
    """`<id>@<version>` when a stored transformation was applied; null for an inline one."""
    ok: int
    dropped: int
    failed: int
    results: list[TryResult]


class RecordRejection(msgspec.Struct, frozen=True):
    """A record a source's pipeline could not transform (it was not written)."""

    index: int
    id: str
    step: int | None
    field: str | None
    code: str
    message: str


class PipelineBatchWritten(BatchWritten, frozen=True):
    """A batch into sources with a pipeline: `count` and `records` are what was written;
    `filtered` the ids a filter step dropped; `errors` the records the transform failed on."""

    pipelines: dict[str, str] = msgspec.field(default_factory=dict)
    """Source -> `<id>@<version>` applied."""
    filtered: list[str] = msgspec.field(default_factory=list)
    errors: list[RecordRejection] = msgspec.field(default_factory=list)


class PipelineRecordWritten(RecordWritten, frozen=True):
    """One record into a source with a pipeline. `filtered`: a filter step dropped it and
    nothing was written (`version` is then the record's current version, 0 if none)."""

    transform: str = ""
    filtered: bool = False


# --- errors -----------------------------------------------------------------------------------


def error_body(
    request_id: str, status: int, code: str, message: str, details: list[dict[str, Any]]
) -> bytes:
    """The error envelope, for routes that answer transform errors with every detail."""
    meta = meta_now(request_id)
    body = ErrorEnvelope(
        error=ErrorBody(code=code, message=message, status=status, details=details), meta=meta
    )
    return msgspec.json.encode(body)
