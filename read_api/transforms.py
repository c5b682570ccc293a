"""Read side of transformations (docs/transforms.md): definitions and every version of them,
the try-out endpoint, sources' pipelines, and the read-time `transform=` of record reads.

Definitions come from the `lookups` read model (projections/transforms.py), so they honour
`min_position` like every other read. A compiled transform is cached per (account, id,
version): a version never changes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter, SkipValidation
from litestar.types import ExceptionHandlersMap

from domain import values
from domain.access import Principal, Scope
from domain.errors import InvalidValueError, NotFoundError
from domain.transform import (
    Dropped,
    Failed,
    InvalidTransformError,
    Ok,
    Result,
    Transform,
    TransformFailedError,
    compile_transform,
    compose,
)
from domain.transformation import TransformRef
from projections.ports import DocumentReader
from projections.transforms import source_key, transformation_key, transformations_set, version_key
from read_api import history as audit
from read_api.consistency import InvalidQueryError
from read_api.cursors import decode_cursor, encode_cursor
from read_api.ports import EventHistory
from read_api.views import record_view
from schemas.envelope import Envelope, Meta
from schemas.responses import History, RecordView
from schemas.transforms import (
    PipelineView,
    TransformationList,
    TransformationSummary,
    TransformationView,
    TryResult,
    TryResults,
    TryTransform,
    error_body,
)

MAX_CHAINED = 5
Principal_ = NamedDependency[Principal]
Meta_ = NamedDependency[Meta]
Docs = NamedDependency[SkipValidation[DocumentReader]]
Events = NamedDependency[SkipValidation[EventHistory]]

TransformParam = Annotated[
    str | None,
    QueryParameter(
        name="transform",
        required=False,
        description=(
            "Apply a stored transform as the record is read: `<id>@<version>` (or `<id>` for "
            f"the latest). Up to {MAX_CHAINED}, comma-separated, are applied in order."
        ),
    ),
]
RawParam = Annotated[
    bool,
    QueryParameter(
        name="raw",
        required=False,
        description="Read the record as ingested, before its source's pipeline transformed it.",
    ),
]


# --- loading transforms -------------------------------------------------------------------------


class _Compiled:
    LIMIT = 1024

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.table: dict[tuple[str, str, int], Transform] = {}

    def get(self, account: str, tid: str, version: int, document: Any) -> Transform:
        key = (account, tid, version)
        found = self.table.get(key)
        if found is None:
            found = compile_transform(document)
            with self.lock:
                if len(self.table) >= self.LIMIT:
                    self.table.clear()
                self.table[key] = found
        return found


_compiled = _Compiled()


async def _owned(docs: DocumentReader, account: str, transformation_id: UUID) -> dict[str, Any]:
    head = await docs.get(transformation_key(str(transformation_id)))
    if head is None or head.get("account_id") != account:
        raise NotFoundError("no such transformation")
    return head


async def _version(docs: DocumentReader, transformation_id: UUID, version: int) -> dict[str, Any]:
    found = await docs.get(version_key(str(transformation_id), version))
    if found is None:
        raise NotFoundError(f"transformation {transformation_id} has no version {version}")
    return found


async def resolve(docs: DocumentReader, account: str, refs: str) -> tuple[Transform, str]:
    """The transform `refs` names (`<id>@<version>[,<id>@<version>...]`, composed in order)
    and the exact references it resolved to."""
    parts = [part for part in refs.split(",") if part.strip()]
    if not parts or len(parts) > MAX_CHAINED:
        raise InvalidValueError("transform", f"names 1 to {MAX_CHAINED} transforms")
    transforms: list[Transform] = []
    exact: list[str] = []
    for part in parts:
        ref = TransformRef.parse(part)
        head = await _owned(docs, account, ref.id)
        version = ref.version if ref.version is not None else int(head["latest_version"])
        found = await _version(docs, ref.id, version)
        transforms.append(_compiled.get(account, str(ref.id), version, found["document"]))
        exact.append(str(TransformRef(ref.id, version)))
    if len(transforms) == 1:
        return transforms[0], exact[0]
    return compose(*transforms), ",".join(exact)


def source_data(doc: dict[str, Any], raw: bool) -> dict[str, Any]:
    """The record's data as served: as its pipeline made it, or as ingested (`raw`)."""
    if raw and doc.get("raw") is not None:
        data: dict[str, Any] = doc["raw"]
        return data
    data = doc["data"]
    return data


def served(doc: dict[str, Any], raw: bool) -> dict[str, Any]:
    """The read-model document with `data` as asked for (no transform)."""
    return doc if not raw or doc.get("raw") is None else {**doc, "data": doc["raw"]}


def transform_view(
    doc: dict[str, Any], transform: Transform | None, ref: str, raw: bool
) -> RecordView:
    """A record read with `transform=`: its (raw) data transformed. A record the transform
    drops is reported missing; one it fails on is a 400 TRANSFORM_FAILED."""
    if transform is None:
        return record_view(served(doc, raw))
    result = transform.apply(source_data(doc, raw))
    if isinstance(result, Dropped):
        raise NotFoundError(f"the transform {ref} filters this record out (step {result.step})")
    if isinstance(result, Failed):
        raise TransformFailedError(result.error, where="data", transform=ref)
    return record_view({**doc, "data": result.record})


def transform_rows(
    docs: Sequence[dict[str, Any] | None], transform: Transform | None, raw: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Listing rows (records with their data transformed; dropped ones left out) and the
    per-record errors ({id, step, field, code, message}) of records left out on failure."""
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for doc in docs:
        if doc is None:
            continue
        if transform is None:
            rows.append(msgspec.structs.asdict(record_view(served(doc, raw))))
            continue
        result = transform.apply(source_data(doc, raw))
        if isinstance(result, Ok):
            rows.append(msgspec.structs.asdict(record_view({**doc, "data": result.record})))
        elif isinstance(result, Failed):
            errors.append({"id": doc["id"], **result.error.as_dict()})
    return rows, errors


# --- routes -----------------------------------------------------------------------------------


def invalid_transform(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """400 INVALID_TRANSFORM with every problem in `details`."""
    assert isinstance(exc, InvalidTransformError)
    request_id = request.scope.get("state", {}).get("request_id", "")
    body = error_body(request_id, 400, exc.code, exc.message, exc.details)
    return Response(content=body, status_code=400, media_type="application/json")


HANDLERS: ExceptionHandlersMap = {InvalidTransformError: invalid_transform}


def _summary(doc: dict[str, Any]) -> TransformationSummary:
    return TransformationSummary(
        id=doc["id"],
        name=doc["name"],
        latest_version=doc["latest_version"],
        archived=doc["archived"],
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


@get(
    "/v1/transform/custom",
    opt={"scope": Scope.DATA_READ},
    summary="The account's transformations (archived ones with `archived=true`)",
)
async def list_transformations(
    principal: Principal_,
    docs: Docs,
    meta: Meta_,
    limit: Annotated[int, QueryParameter(name="limit", ge=1, le=100)] = 50,
    cursor: Annotated[str | None, QueryParameter(name="cursor")] = None,
    archived: Annotated[
        bool, QueryParameter(name="archived", description="Include archived transformations.")
    ] = False,
) -> Envelope[TransformationList]:
    account = str(principal.own_account())
    after = decode_cursor(cursor)
    if after is not None and not isinstance(after, str):
        raise InvalidQueryError("cursor is not one this API returned")
    ids = await docs.members(transformations_set(account), after=after, limit=limit + 1)
    page, more = ids[:limit], len(ids) > limit
    found = await docs.get_many([transformation_key(tid) for tid in page])
    items = [
        _summary(doc) for doc in found if doc is not None and (archived or not doc["archived"])
    ]
    next_cursor = encode_cursor(page[-1]) if more and page else None
    return Envelope(data=TransformationList(items, next_cursor), meta=meta)


@get(
    "/v1/transform/custom/{transformation_id:uuid}",
    opt={"scope": Scope.DATA_READ},
    summary="A transformation: its latest version, or any version (`?version=N`)",
)
async def get_transformation(
    transformation_id: FromPath[UUID],
    principal: Principal_,
    docs: Docs,
    meta: Meta_,
    version: Annotated[int | None, QueryParameter(name="version", ge=1)] = None,
) -> Envelope[TransformationView]:
    account = str(principal.own_account())
    head = await _owned(docs, account, transformation_id)
    shown = version if version is not None else int(head["latest_version"])
    found = await _version(docs, transformation_id, shown)
    view = TransformationView(
        id=head["id"],
        name=head["name"],
        version=shown,
        latest_version=head["latest_version"],
        archived=head["archived"],
        transform=found["document"],
        version_created_at=found["created_at"],
        created_at=head["created_at"],
        updated_at=head["updated_at"],
    )
    return Envelope(data=view, meta=meta)


@get(
    "/v1/transform/custom/{transformation_id:uuid}/history",
    opt={"scope": Scope.DATA_READ},
    summary="Every event of a transformation, in order (its audit trail)",
)
async def get_transformation_history(
    transformation_id: FromPath[UUID], principal: Principal_, events: Events, meta: Meta_
) -> Envelope[History]:
    account = str(principal.own_account())
    found = await events.history(transformation_id)
    if (
        not found
        or found[0].type != "Transformation.Created"
        or found[0].payload.get("account_id") != account
    ):
        raise NotFoundError("no such transformation")
    return Envelope(data=audit.history(transformation_id, found), meta=meta)


def _try_result(index: int, result: Result) -> TryResult:
    if isinstance(result, Ok):
        return TryResult(index=index, status="ok", record=result.record)
    if isinstance(result, Dropped):
        return TryResult(index=index, status="dropped", step=result.step)
    e = result.error
    return TryResult(
        index=index, status="error", step=e.step, field=e.field, code=e.code, message=e.message
    )


@post(
    "/v1/transform",
    status_code=200,
    opt={"scope": Scope.DATA_READ},
    exception_handlers=HANDLERS,
    summary="Try a transform (inline, or stored by id) on the records sent; nothing is stored",
)
async def try_transform(
    data: JSONBody[TryTransform], principal: Principal_, docs: Docs, meta: Meta_
) -> Envelope[TryResults]:
    account = str(principal.own_account())
    if (data.transform is None) == (data.id is None):
        raise InvalidValueError("transform", 'give either "transform" (a document) or "id"')
    if data.transform is not None and data.version is not None:
        raise InvalidValueError("version", 'goes with "id", not with an inline "transform"')
    ref: str | None = None
    if data.id is not None:
        named = str(data.id) if data.version is None else f"{data.id}@{data.version}"
        transform, ref = await resolve(docs, account, named)
    else:
        transform = await asyncio.to_thread(compile_transform, data.transform)
    results = await asyncio.to_thread(transform.apply_all, data.records)
    shaped = [_try_result(i, r) for i, r in enumerate(results)]
    outcome = TryResults(
        transform=ref,
        ok=sum(1 for r in results if isinstance(r, Ok)),
        dropped=sum(1 for r in results if isinstance(r, Dropped)),
        failed=sum(1 for r in results if isinstance(r, Failed)),
        results=shaped,
    )
    return Envelope(data=outcome, meta=meta)


@get(
    "/v1/sources/{source:str}/pipeline",
    opt={"scope": Scope.DATA_READ},
    summary="The transform version the source applies at ingest (null: none)",
)
async def get_pipeline(
    source: FromPath[str], principal: Principal_, docs: Docs, meta: Meta_
) -> Envelope[PipelineView]:
    account = str(principal.own_account())
    values.source_name(source)
    doc = await docs.get(source_key(account, source))
    if doc is None:
        raise NotFoundError(f"no such source {source!r}")
    pipeline = doc.get("pipeline")
    view = PipelineView(
        source=source,
        transform=f"{pipeline['transform_id']}@{pipeline['version']}" if pipeline else None,
        transform_id=pipeline["transform_id"] if pipeline else None,
        version=pipeline["version"] if pipeline else None,
        updated_at=doc.get("pipeline_updated_at"),
    )
    return Envelope(data=view, meta=meta)


ROUTES = [
    list_transformations,
    get_transformation,
    get_transformation_history,
    try_transform,
    get_pipeline,
]
