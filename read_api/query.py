"""`POST /v1/data/query`: aggregate queries over the caller's records (the analytics store).

The body is the JSON query language of schemas/query.py, compiled by read_api/querylang.py
to parameterized SQL within the caller's account; users never send SQL.
"""

from __future__ import annotations

from litestar import post
from litestar.di import NamedDependency
from litestar.params import JSONBody, SkipValidation

from domain.access import Scope
from read_api.api import Meta_, MinPosition, MinPositionHeader, Principal_
from read_api.ports import AnalyticsReader
from read_api.querylang import QueryLimits, compile_query
from schemas.envelope import Envelope
from schemas.query import Query, QueryResult

Analytics = NamedDependency[SkipValidation[AnalyticsReader]]
Limits = NamedDependency[SkipValidation[QueryLimits]]


@post(
    "/v1/data/query",
    opt={"scope": Scope.DATA_READ, "reads": "analytics"},
    status_code=200,
    summary="Filter, group and aggregate records (a JSON query language; never SQL)",
)
async def query_records(
    data: JSONBody[Query],
    principal: Principal_,
    analytics: Analytics,
    query_limits: Limits,
    meta: Meta_,
    min_position: MinPosition = None,
    min_position_header: MinPositionHeader = None,
) -> Envelope[QueryResult]:
    """Counts, sums, averages, extremes, distinct counts and quantiles of the latest state
    of the account's live records, grouped by fields and time buckets. A query that breaks
    the language is a 400 naming the part (`INVALID_QUERY`); one that hits a row, time or
    memory limit is a 422 naming the limit (`QUERY_LIMIT_EXCEEDED`)."""
    compiled = compile_query(data, str(principal.own_account()), query_limits)
    rows = compiled.shape(await analytics.run(compiled))
    return Envelope(
        data=QueryResult(columns=compiled.columns, rows=rows, row_count=len(rows)), meta=meta
    )
