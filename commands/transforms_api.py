"""Command routes of transformations: define, revise, archive; set or clear a source's
pipeline. Thin, like commands.api (POSTs honour Idempotency-Key the same way)."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from litestar import Request, Response, delete, post, put
from litestar.params import FromPath, JSONBody
from litestar.types import ExceptionHandlersMap

from commands import transforms
from commands.api import IdempotencyKey, Meta_, Principal_, Store, _context, _execute
from domain.access import Scope
from domain.transform import InvalidTransformError
from schemas.envelope import Envelope
from schemas.transforms import (
    CreateTransformation,
    PipelineWritten,
    ReviseTransformation,
    SetPipeline,
    TransformationWritten,
    error_body,
)


def invalid_transform(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """400 INVALID_TRANSFORM with every problem in `details` ({step, op, field, path,
    message}); the gateway's generic handler would keep only the first field."""
    assert isinstance(exc, InvalidTransformError)
    request_id = request.scope.get("state", {}).get("request_id", "")
    body = error_body(request_id, 400, exc.code, exc.message, exc.details)
    return Response(content=body, status_code=400, media_type="application/json")


HANDLERS: ExceptionHandlersMap = {InvalidTransformError: invalid_transform}


@post(
    "/v1/transform/custom",
    status_code=201,
    opt={"scope": Scope.ACCOUNT_ADMIN},
    exception_handlers=HANDLERS,
    summary="Define a transformation (its version 1)",
    description="The document is validated first; every problem is reported by step and field.",
)
async def create_transformation(
    data: JSONBody[CreateTransformation],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
    idempotency_key: IdempotencyKey = None,
) -> Response[Envelope[TransformationWritten]]:
    return await _execute(
        request,
        principal,
        store,
        meta,
        201,
        lambda c: transforms.create_transformation(data, store, c),
    )


@put(
    "/v1/transform/custom/{transformation_id:uuid}",
    opt={"scope": Scope.ACCOUNT_ADMIN},
    exception_handlers=HANDLERS,
    summary="Revise a transformation: a new version (earlier versions stay readable)",
)
async def revise_transformation(
    transformation_id: FromPath[UUID],
    data: JSONBody[ReviseTransformation],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
) -> Envelope[TransformationWritten]:
    ctx = _context(request, principal)
    result = await asyncio.to_thread(
        transforms.revise_transformation, transformation_id, data, store, ctx
    )
    return Envelope(data=result, meta=meta)


@delete(
    "/v1/transform/custom/{transformation_id:uuid}",
    status_code=200,
    opt={"scope": Scope.ACCOUNT_ADMIN},
    summary="Archive a transformation (no new versions or uses; every version stays readable)",
)
async def archive_transformation(
    transformation_id: FromPath[UUID],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
) -> Envelope[TransformationWritten]:
    ctx = _context(request, principal)
    result = await asyncio.to_thread(
        transforms.archive_transformation, transformation_id, store, ctx
    )
    return Envelope(data=result, meta=meta)


@put(
    "/v1/sources/{source:str}/pipeline",
    opt={"scope": Scope.ACCOUNT_ADMIN},
    summary="Apply a transform version to everything ingested into the source from now on",
    description=(
        "Record events then keep both the raw and the transformed record; reads serve the "
        "transformed one (`raw=true` for the other)."
    ),
)
async def set_pipeline(
    source: FromPath[str],
    data: JSONBody[SetPipeline],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
) -> Envelope[PipelineWritten]:
    ctx = _context(request, principal)
    result = await asyncio.to_thread(transforms.set_pipeline, source, data, store, ctx)
    return Envelope(data=result, meta=meta)


@delete(
    "/v1/sources/{source:str}/pipeline",
    status_code=200,
    opt={"scope": Scope.ACCOUNT_ADMIN},
    summary="Remove the source's pipeline: records are stored as ingested again",
)
async def clear_pipeline(
    source: FromPath[str],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
) -> Envelope[PipelineWritten]:
    ctx = _context(request, principal)
    result = await asyncio.to_thread(transforms.clear_pipeline, source, store, ctx)
    return Envelope(data=result, meta=meta)


ROUTES = [
    create_transformation,
    revise_transformation,
    archive_transformation,
    set_pipeline,
    clear_pipeline,
]
