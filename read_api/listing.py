"""`GET /v1/data/{source}`: a source's records in key order, paged, in any output format."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter, SkipValidation
from litestar.response import Stream

from domain import values
from domain.access import Principal, Scope
from projections import lookups
from projections.ports import DocumentReader
from read_api.consistency import InvalidQueryError
from read_api.cursors import decode_cursor, encode_cursor
from read_api.formats import negotiate, render
from read_api.transforms import RawParam, TransformParam, resolve, transform_rows
from schemas.envelope import Meta, Page
from schemas.responses import RecordView

RECORD_COLUMNS = ["source", "id", "version", "updated_at", "position", "data"]
RECORD_TYPES = {"version": "int", "position": "int", "updated_at": "time"}
MAX_PAGE = 1000

Limit = Annotated[int, QueryParameter(name="limit", ge=1, le=MAX_PAGE, description="Page size.")]
Cursor = Annotated[
    str | None, QueryParameter(name="cursor", description="`next_cursor` of the previous page.")
]
FormatParam = Annotated[
    str | None,
    QueryParameter(name="format", description="json (default), ndjson, csv or parquet."),
]


@get(
    "/v1/data/{source:str}",
    opt={"scope": Scope.DATA_READ, "formats": True},
    responses={
        200: ResponseSpec(
            Page[RecordView],
            description="A page of records (JSON); or, by `?format=` or Accept, one row per "
            "record in NDJSON, CSV or Parquet.",
        )
    },
    summary="A source's records, in id order, paged (JSON, NDJSON, CSV or Parquet)",
)
async def list_records(
    source: FromPath[str],
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    docs: NamedDependency[SkipValidation[DocumentReader]],
    meta: NamedDependency[Meta],
    limit: Limit = 100,
    cursor: Cursor = None,
    format: FormatParam = None,  # noqa: A002 - the query parameter's public name
    transform: TransformParam = None,
    raw: RawParam = False,
) -> Stream:
    account = str(principal.own_account())
    values.source_name(source)
    fmt = negotiate(format, request.headers.get("accept"))
    after = decode_cursor(cursor)
    if after is not None and not isinstance(after, str):
        raise InvalidQueryError("cursor is not one this API returned")
    keys = await docs.members(lookups.records_set(account, source), after=after, limit=limit + 1)
    page, more = keys[:limit], len(keys) > limit
    found = await docs.get_many([lookups.record_key(account, source, key) for key in page])
    # Transformations: `transform=` applies to each record (those it drops are left out, those
    # it fails on too, reported in `transform_errors` / X-Transform-Errors); `raw=true` reads
    # them as ingested (read_api/transforms.py).
    chosen = (await resolve(docs, account, transform))[0] if transform else None
    shaped, errors = await asyncio.to_thread(transform_rows, found, chosen, raw)

    async def rows() -> AsyncIterator[dict[str, Any]]:
        for row in shaped:  # records deleted between reading keys and documents are left out
            yield row

    response = render(
        rows(),
        fmt=fmt,
        columns=RECORD_COLUMNS,
        meta=meta,
        next_cursor=encode_cursor(page[-1]) if more and page else None,
        extra={"transform_errors": errors} if chosen is not None else None,
        types=RECORD_TYPES,
    )
    if chosen is not None:
        response.headers["X-Transform-Errors"] = str(len(errors))
    return response


@get("/v1/data/query", opt={"scope": Scope.DATA_READ, "formats": True}, include_in_schema=False)
async def list_query_source(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    docs: NamedDependency[SkipValidation[DocumentReader]],
    meta: NamedDependency[Meta],
    limit: Limit = 100,
    cursor: Cursor = None,
    format: FormatParam = None,  # noqa: A002 - the query parameter's public name
    transform: TransformParam = None,
    raw: RawParam = False,
) -> Stream:
    """`POST /v1/data/query` makes `query` a static segment, which shadows
    `GET /v1/data/{source}` for a source named `query` (Litestar does not fall back to the
    parameter route): list it here."""
    result: Stream = await list_records.fn(
        source="query",
        request=request,
        principal=principal,
        docs=docs,
        meta=meta,
        limit=limit,
        cursor=cursor,
        format=format,
        transform=transform,
        raw=raw,
    )
    return result


ROUTES = [list_records, list_query_source]
