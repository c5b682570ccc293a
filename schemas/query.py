"""Wire shapes of the analytics API: the JSON query language, its result, and usage rows.

The query language is documented in docs/adr/0009-analytics.md; read_api/querylang.py
validates a `Query` against the field and function whitelists and compiles it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

Op = Literal["eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "contains", "prefix", "exists"]
Fn = Literal["count", "sum", "avg", "min", "max", "uniq", "quantiles"]
BucketUnit = Literal["minute", "hour", "day", "week", "month"]
Scalar = str | int | float | bool

FieldName = Annotated[
    str,
    msgspec.Meta(
        description="`id`, `source`, `version`, `updated_at`, or `data.<path>` (segments of "
        "A-Z, a-z, 0-9, _; at most 5 deep), e.g. `data.customer.country`."
    ),
]


class Filter(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`field op value`. A filter on a data field matches only records where the field holds
    a value of the filter value's type (string, number or boolean)."""

    field: FieldName
    op: Op
    value: Scalar | list[Scalar] | None = None


class TimeRange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """On `updated_at`: from (inclusive) and to (exclusive), ISO-8601 times."""

    from_: str | None = msgspec.field(name="from", default=None)
    to: str | None = None


class Bucket(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Group by the start of the time bucket containing a time field."""

    bucket: BucketUnit
    field: FieldName = "updated_at"
    as_: str | None = msgspec.field(name="as", default=None)


class Aggregate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    fn: Fn
    field: FieldName | None = None
    as_: str | None = msgspec.field(name="as", default=None)
    levels: list[float] | None = None
    """For `quantiles`: the levels, each in [0, 1] (default 0.5, 0.9, 0.99)."""


class Order(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    field: Annotated[str, msgspec.Meta(description="A group field or an aggregate's name.")]
    dir: Literal["asc", "desc"] = "asc"


class Query(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An aggregate query over the latest state of the caller's live records."""

    source: str | None = None
    filters: list[Filter] = []
    time_range: TimeRange | None = None
    group_by: list[FieldName | Bucket] = []
    aggregates: list[Aggregate] = []
    order_by: list[Order] = []
    limit: int | None = None


class Column(msgspec.Struct, frozen=True):
    name: str
    type: Literal["string", "int", "float", "time", "json"]


class QueryResult(msgspec.Struct, frozen=True):
    """`rows`: one object per result row, keyed by the column names, in `columns` order."""

    columns: list[Column]
    rows: list[dict[str, Any]]
    row_count: int


class UsageRow(msgspec.Struct, frozen=True):
    """Usage of one account in one period (an hour, a day or a month)."""

    period_start: datetime
    records_ingested: int = 0
    bytes_ingested: int = 0
    api_calls: dict[str, int] = {}
    search_calls: int = 0
    query_calls: int = 0


class UsageView(msgspec.Struct, frozen=True):
    """Periods without usage are left out; `total` sums the whole range."""

    account_id: str
    granularity: Literal["hour", "day"]
    from_: datetime = msgspec.field(name="from")
    to: datetime
    rows: list[UsageRow]
    total: UsageRow
