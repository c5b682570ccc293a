"""`POST /v1/data/query`: aggregate queries over the caller's records (the analytics store).

The body is the JSON query language of schemas/query.py, compiled by read_api/querylang.py
to parameterized SQL within the caller's account; users never send SQL.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, QueryParameter, SkipValidation

from domain.access import Scope
from read_api.api import Meta_, Principal_
from read_api.formats import Format, each, negotiate, render
from read_api.ports import AnalyticsReader
from read_api.querylang import QueryLimits, compile_query
from schemas.envelope import Envelope
from schemas.query import Query, QueryResult

Analytics = NamedDependency[SkipValidation[AnalyticsReader]]
Limits = NamedDependency[SkipValidation[QueryLimits]]
FormatParam = Annotated[
    str | None,
    QueryParameter(
        name="format",
        required=False,
        description="json (default), ndjson, csv or parquet: one row per result row, the "
        "columns in order (Parquet typed by column type).",
    ),
]


@post(
    "/v1/data/query",
    opt={"scope": Scope.DATA_READ, "reads": "analytics", "formats": True},
    responses={
        200: ResponseSpec(
            Envelope[QueryResult],
            description="The result rows (JSON); or, by `?format=` or Accept, NDJSON, CSV "
            "or Parquet.",
        )
    },
    status_code=200,
    summary="Filter, group and aggregate records (a JSON query language; never SQL)",
)
async def query_records(
    data: JSONBody[Query],
    request: Request[Any, Any, Any],
    principal: Principal_,
    analytics: Analytics,
    query_limits: Limits,
    meta: Meta_,
    format: FormatParam = None,  # noqa: A002 - the query parameter's public name
) -> Response[Any]:
    """Counts, sums, averages, extremes, distinct counts and quantiles of the latest state
    of the account's live records, grouped by fields and time buckets. A query that breaks
    the language is a 400 naming the part (`INVALID_QUERY`); one that hits a row, time or
    memory limit is a 422 naming the limit (`QUERY_LIMIT_EXCEEDED`)."""
    fmt = negotiate(format, request.headers.get("accept"))
    compiled = compile_query(data, str(principal.own_account()), query_limits)
    rows = compiled.shape(await analytics.run(compiled))
    if fmt is not Format.JSON:
        return render(
            each(rows),
            fmt=fmt,
            columns=[c.name for c in compiled.columns],
            meta=meta,
            types={c.name: c.type for c in compiled.columns if c.type != "json"},
        )
    result = QueryResult(columns=compiled.columns, rows=rows, row_count=len(rows))
    # A Response, not the envelope itself: Litestar then keeps each format's media type.
    return Response(Envelope(data=result, meta=meta))
