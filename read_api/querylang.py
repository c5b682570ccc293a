"""The analytics query language, compiled to parameterized ClickHouse SQL. Pure.

Nothing a caller sends becomes SQL text: field names and functions are looked up in
whitelists and turn into fixed SQL fragments; every value and the account are bound
parameters (`{p0:String}`), every JSON path segment a bound identifier
(`fields.{p1:Identifier}.:String`, a typed subcolumn of the records' JSON column); result
columns are named `c0, c1...` in SQL and renamed here. A query that passes `compile_query`
runs; one that does not raises `QueryError` naming the offending part
(docs/adr/0009-analytics.md has the language).

A compiled query is an aggregation over row values (`r0, r1...`) that an inner query
computes from the latest live rows; the rows come from one of three sources, all exact
(ADR 9, amendment 2): the records table under FINAL, a compacted snapshot alone, or the
snapshot merged with the tail of rows changed since its cut. A data field's value is written
as a marker (`__a0__`) that rendering expands: to its expression over `fields`, or to a
column of the snapshot that holds that expression's values (`Accessor`, ADR 9 amendment 3).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import msgspec
import orjson

from domain import values
from schemas.query import Aggregate, Bucket, Column, Filter, Query

RECORDS = "__records__"
"""Stands for the records table in `CompiledQuery.sql`; the store renders the real name."""
SNAPSHOT = "__snapshot__"
CHANGES = "__changes__"
CUT = "{cut:DateTime64(6, 'UTC')}"
"""The snapshot's cut: the tail is every changes row inserted at or after it."""
TAIL_COLUMNS = "source, id, version, updated_at, is_deleted, data, fields"

MAX_DEPTH = 5
SEGMENT = re.compile(r"[A-Za-z0-9_]{1,64}")
ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_FILTERS = 50
MAX_GROUPS = 10
MAX_AGGREGATES = 20
MAX_IN_VALUES = 1000
MAX_LEVELS = 10
MAX_STRING = 4096
DEFAULT_LEVELS = (0.5, 0.9, 0.99)
MIN_YEAR, MAX_YEAR = 1900, 2261  # DateTime64(6) covers 1900-2299

BUCKETS = {
    "minute": "toStartOfMinute({})",
    "hour": "toStartOfHour({})",
    "day": "toStartOfDay({})",
    "week": "toDateTime64(toMonday({}), 6, 'UTC')",
    "month": "toDateTime64(toStartOfMonth({}), 6, 'UTC')",
}


class QueryError(Exception):
    """The query cannot be run as written; `where` is a JSON path into it."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.details = [{"field": where, "message": message}]


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """Per-query ClickHouse limits; hitting one is a QUERY_LIMIT_EXCEEDED error."""

    max_rows: int = 10_000
    max_execution_seconds: float = 10.0
    max_memory_bytes: int = 1 << 30
    default_limit: int = 100

    def settings(self) -> dict[str, Any]:
        return {
            "readonly": 2,  # defence in depth: a compiled query only ever reads
            "max_result_rows": self.max_rows,
            "result_overflow_mode": "throw",
            "max_execution_time": self.max_execution_seconds,
            "max_memory_usage": self.max_memory_bytes,
        }


Decoder = Callable[[Any], list[Any]]
Form = Literal["string", "number", "bool", "json", "has"]
FORMS: tuple[Form, ...] = get_args(Form)
MARKER = re.compile(r"__a[0-9]+__")


@dataclass(frozen=True, slots=True)
class Accessor:
    """A data field's value in one form: the typed value (`string`, `number`, `bool`), the
    JSON text (`json`) or whether the key is there (`has`). A snapshot may hold it as a
    column computed by `expression` when it was written."""

    path: tuple[str, ...]
    form: Form


def expression(form: Form, subcolumn: str, text_path: Callable[[], str]) -> str:
    """The SQL of an accessor, given its `fields` subcolumn (`fields.{p1:Identifier}`) and,
    for `has`, the arguments of a function on the JSON text (`data, {p2:String}`)."""
    if form == "string":
        return f"{subcolumn}.:String"
    if form == "number":
        integer, unsigned = f"toFloat64({subcolumn}.:Int64)", f"toFloat64({subcolumn}.:UInt64)"
        return f"coalesce({integer}, {subcolumn}.:Float64, {unsigned})"
    if form == "bool":
        return f"{subcolumn}.:Bool"
    if form == "json":
        return f"toJSONString({subcolumn})"
    # The key is there (even with null or an object): a value in the JSON column answers for
    # most rows; the others look in the text (short-circuit).
    return f"(isNotNull({subcolumn}) OR JSONHas({text_path()}))"


Columns = dict[Accessor, str]
"""A snapshot's accessor columns: accessor -> column name."""
NO_COLUMNS: Columns = {}


def expand(text: str, accessors: dict[str, tuple[Accessor, str]], columns: Columns) -> str:
    """`text` with each marker replaced by its snapshot column, or else its expression."""

    def one(match: re.Match[str]) -> str:
        accessor, expr = accessors[match.group(0)]
        column = columns.get(accessor)
        return f"`{column}`" if column is not None else expr

    return MARKER.sub(one, text)


def standalone(accessor: Accessor, prefix: str) -> tuple[str, dict[str, Any]]:
    """An accessor's expression with its own parameters (`{prefix0:Identifier}`...), as a
    snapshot computes its column."""
    for segment in accessor.path:  # the compiler's rule, again: it goes into SQL as text
        if not SEGMENT.fullmatch(segment):
            raise ValueError(f"not a data path segment: {segment!r}")
    sql = _Sql(prefix=prefix)
    name = ".".join(("data", *accessor.path))
    marker = sql.accessor(Field(name, "json", path=accessor.path), accessor.form)
    return sql.accessors[marker][1], sql.parameters


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    outer: str
    """The aggregation, reading `r0, r1...` FROM (__rows__)."""
    rows: str
    """The row values the aggregation reads (`expr AS r0, ...`)."""
    scope: str
    """The account (and source) clauses."""
    filters: str
    """The caller's filters ("" when none): they apply to the latest state of each record."""
    parameters: dict[str, Any]
    settings: dict[str, Any]
    columns: list[Column]
    decoders: list[Decoder]
    """One per SQL column; each yields the values of one or more result columns."""
    accessors: dict[str, tuple[Accessor, str]] = field(default_factory=dict)
    """Marker -> the accessor it stands for in `rows` and `filters`, and its expression."""

    def _live(self, source: str, columns: Columns = NO_COLUMNS) -> str:
        where = f"{self.scope} AND is_deleted = 0{self.filters}"
        live = f"SELECT {self.rows} FROM {source} WHERE {where}"  # noqa: S608
        return expand(live, self.accessors, columns)

    @property
    def sql(self) -> str:
        """The query over the records table, latest state by FINAL (placeholder RECORDS)."""
        return self.outer.replace("__rows__", self._live(f"{RECORDS} FINAL"))

    def render(self, records_table: str) -> str:
        return self.sql.replace(RECORDS, records_table)

    def render_snapshot(self, snapshot: str, columns: Columns = NO_COLUMNS) -> str:
        """Over a snapshot of the latest live rows, when no row has changed since its cut;
        `columns` are the snapshot's accessor columns."""
        return self.outer.replace("__rows__", self._live(snapshot, columns))

    def render_tail(self, snapshot: str, changes: str, columns: Columns = NO_COLUMNS) -> str:
        """Over a snapshot and the tail of changes since its cut (parameter `cut`): the
        snapshot's rows except those of keys whose newest row is in the tail (`newer`),
        and those newest rows. A snapshot row beats a tail row of the same or a lower
        version (a redelivery); keys are matched by hash first, then exactly."""
        tail = f"{changes} WHERE {self.scope} AND inserted_at >= {CUT}"
        hashes = f"SELECT cityHash64(source, id) FROM {tail}"  # noqa: S608
        newer = (
            f"SELECT source, id, any(key_hash) AS key_hash FROM ("  # noqa: S608
            f"SELECT source, id, cityHash64(source, id) AS key_hash, version, 1 AS tail "
            f"FROM {tail} UNION ALL SELECT source, id, key_hash, version, 0 AS tail "
            f"FROM {snapshot} WHERE {self.scope} AND key_hash IN ({hashes})) "
            "GROUP BY source, id HAVING argMax(tail, (version, tail = 0)) = 1"
        )
        kept = (
            f" AND (key_hash NOT IN (SELECT key_hash FROM ({newer})) "  # noqa: S608
            f"OR (source, id) NOT IN (SELECT source, id FROM ({newer})))"
        )
        latest = (
            f"SELECT {TAIL_COLUMNS} FROM {tail} AND (source, id) IN (SELECT source, id "  # noqa: S608
            f"FROM ({newer})) ORDER BY source, id, version DESC LIMIT 1 BY source, id"
        )
        changed = f"SELECT {self.rows} FROM ({latest}) WHERE is_deleted = 0{self.filters}"  # noqa: S608
        changed = expand(changed, self.accessors, NO_COLUMNS)  # the tail has no such columns
        rows = f"{self._live(snapshot, columns)}{kept} UNION ALL {changed}"
        return self.outer.replace("__rows__", rows)

    def shape(self, rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
        names = [c.name for c in self.columns]
        out = []
        for row in rows:
            cells: list[Any] = []
            for decode, raw in zip(self.decoders, row, strict=True):
                cells.extend(decode(raw))
            out.append(dict(zip(names, cells, strict=True)))
        return out


# --- values ----------------------------------------------------------------------------------


def _text(raw: Any) -> list[Any]:
    return [raw]


def _int(raw: Any) -> list[Any]:
    return [None if raw is None else int(raw)]


def _float(raw: Any) -> list[Any]:
    return [None if raw is None or not math.isfinite(raw) else float(raw)]


def _time(raw: Any) -> list[Any]:
    if raw is None:
        return [None]
    moment = raw if raw.tzinfo is not None else raw.replace(tzinfo=UTC)
    return [moment.astimezone(UTC).isoformat()]


def _json(raw: Any) -> list[Any]:
    return [None if raw is None else orjson.loads(raw)]


def _floats(raw: Any) -> list[Any]:
    return [_float(x)[0] for x in raw]


DECODERS: dict[str, Decoder] = {
    "string": _text,
    "int": _int,
    "float": _float,
    "time": _time,
    "json": _json,
}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def _string(value: str, where: str) -> str:
    if len(value) > MAX_STRING:
        raise QueryError(where, f"strings may be at most {MAX_STRING} characters")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise QueryError(where, "is not valid Unicode text") from None
    return value


def _number(value: int | float, where: str) -> float:
    try:
        number = float(value)
    except OverflowError:
        raise QueryError(where, "number out of range") from None
    if not math.isfinite(number) or abs(number) > 1e300:
        raise QueryError(where, "number out of range")
    return number


def _moment(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise QueryError(where, "must be an ISO-8601 time, e.g. 2026-01-31T00:00:00Z")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise QueryError(where, "must be an ISO-8601 time, e.g. 2026-01-31T00:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise QueryError(where, "time out of range") from None
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise QueryError(where, f"time must be within the years {MIN_YEAR}-{MAX_YEAR}")
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


# --- fields ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    """A record field: a column (`kind` string, int or time) or a data path (`json`)."""

    name: str
    kind: Literal["string", "int", "time", "json"]
    column: str = ""
    path: tuple[str, ...] = ()


BUILTINS = {
    "id": Field("id", "string", "id"),
    "source": Field("source", "string", "source"),
    "version": Field("version", "int", "version"),
    "updated_at": Field("updated_at", "time", "updated_at"),
}


def _shown(name: str) -> str:
    return repr(name if len(name) <= 80 else name[:80] + "...")


def resolve(name: str, where: str) -> Field:
    if name in BUILTINS:
        return BUILTINS[name]
    head, _, rest = name.partition(".")
    if head != "data" or not rest:
        raise QueryError(
            where,
            f"unknown field {_shown(name)}: use id, source, version, updated_at or data.<path>",
        )
    path = tuple(rest.split("."))
    if len(path) > MAX_DEPTH:
        raise QueryError(where, f"data paths may be at most {MAX_DEPTH} segments deep")
    for segment in path:
        if not SEGMENT.fullmatch(segment):
            raise QueryError(
                where,
                f"invalid field {_shown(name)}: path segments are 1-64 of A-Z, a-z, 0-9, _",
            )
    return Field(name, "json", path=path)


# --- the compiler ----------------------------------------------------------------------------


@dataclass
class _Sql:
    prefix: str = "p"
    """Of the parameters' names (`{p0:String}`)."""
    parameters: dict[str, Any] = field(default_factory=dict)
    _paths: dict[tuple[str, ...], str] = field(default_factory=dict)
    _subcolumns: dict[tuple[str, ...], str] = field(default_factory=dict)
    rows: dict[str, str] = field(default_factory=dict)
    """Row expression -> its name (`r0`...) in the inner query."""
    markers: dict[Accessor, str] = field(default_factory=dict)
    accessors: dict[str, tuple[Accessor, str]] = field(default_factory=dict)

    def accessor(self, f: Field, form: Form) -> str:
        """The marker of `f`'s value in `form` (see `expression`)."""
        key = Accessor(f.path, form)
        if key not in self.markers:
            marker = f"__a{len(self.markers)}__"
            self.markers[key] = marker
            self.accessors[marker] = (
                key,
                expression(form, self.subcolumn(f), lambda: self.path(f)),
            )
        return self.markers[key]

    def row(self, expr: str) -> str:
        """`expr` as a value of the inner query's rows, which the aggregation reads."""
        return self.rows.setdefault(expr, f"r{len(self.rows)}")

    def bind(self, value: Any, sql_type: str) -> str:
        name = f"{self.prefix}{len(self.parameters)}"
        self.parameters[name] = value
        return "{" + name + ":" + sql_type + "}"

    def path(self, f: Field) -> str:
        """`data, {p1:String}, {p2:String}`: the arguments of a function on the JSON text."""
        if f.path not in self._paths:
            keys = ", ".join(self.bind(segment, "String") for segment in f.path)
            self._paths[f.path] = f"data, {keys}"
        return self._paths[f.path]

    def subcolumn(self, f: Field) -> str:
        """`fields.{p1:Identifier}.{p2:Identifier}`: the field's value in the JSON column
        (a Dynamic: NULL when absent, null, or an object)."""
        if f.path not in self._subcolumns:
            segments = ".".join(self.bind(segment, "Identifier") for segment in f.path)
            self._subcolumns[f.path] = f"fields.{segments}"
        return self._subcolumns[f.path]

    def typed(self, f: Field, kind: Literal["string", "number", "bool"]) -> str:
        """A data field's value if it has JSON type `kind`, else NULL: one typed subcolumn
        (numbers: the integer and float ones, as Float64)."""
        return self.accessor(f, kind)

    def raw(self, f: Field) -> str:
        """A data field's value as JSON text; NULL when absent, null or an object."""
        return self.accessor(f, "json")

    def has(self, f: Field) -> str:
        """Whether the record has the key, even with null or an object."""
        return self.accessor(f, "has")

    def moment(self, f: Field) -> str:
        if f.kind == "time":
            return f.column
        return f"parseDateTime64BestEffortOrNull({self.typed(f, 'string')}, 6, 'UTC')"


AGGREGATES = {
    "sum": "sum({})",
    "avg": "avgOrNull({})",
    "min": "minOrNull({})",
    "max": "maxOrNull({})",
}
COMPARISONS = {"eq": "=", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
OPS_BY_KIND = {
    "string": {"eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "contains", "prefix"},
    "int": {"eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in"},
    "time": {"eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in"},
}
OPS_BY_VALUE = {
    "string": {"eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "contains", "prefix"},
    "number": {"eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in"},
    "bool": {"eq", "ne", "in", "not_in"},
}


def _operand(sql: _Sql, f: Field, value: Any, where: str) -> tuple[str, str, Any]:
    """(SQL expression for the field, parameter type, bound value) for comparing to `value`."""
    kind = _kind(value)
    if kind == "other":
        raise QueryError(where, "must be a string, a number or a boolean")
    if f.kind == "json":
        if kind == "string":
            return sql.typed(f, "string"), "String", _string(value, where)
        if kind == "number":
            return sql.typed(f, "number"), "Float64", _number(value, where)
        return sql.typed(f, "bool"), "Bool", bool(value)
    if f.kind == "string":
        if kind != "string":
            raise QueryError(where, f"{f.name} is a string field: compare it with a string")
        return f.column, "String", _string(value, where)
    if f.kind == "int":
        if kind != "number" or not isinstance(value, int) or not 0 <= value < 2**63:
            raise QueryError(where, f"{f.name} is an integer field: compare it with an integer")
        return f.column, "Int64", value
    return f.column, "DateTime64(6, 'UTC')", _moment(value, where)


def _filter(sql: _Sql, flt: Filter, where: str) -> str:
    f = resolve(flt.field, f"{where}.field")
    op, value = flt.op, flt.value
    if op == "exists":
        if f.kind != "json":
            raise QueryError(f"{where}.op", "exists applies to data fields only")
        if value is not None and not isinstance(value, bool):
            raise QueryError(f"{where}.value", "exists takes true, false or no value")
        return f"{sql.has(f)} = {sql.bind(value is not False, 'Bool')}"
    if f.kind != "json" and op not in OPS_BY_KIND[f.kind]:
        raise QueryError(f"{where}.op", f"{op} does not apply to {f.name}")
    if op in ("in", "not_in"):
        return _membership(sql, f, op, value, where)
    if value is None or isinstance(value, list):
        raise QueryError(f"{where}.value", f"{op} takes one string, number or boolean")
    kind = _kind(value)
    if f.kind == "json" and op not in OPS_BY_VALUE.get(kind, set()):
        raise QueryError(f"{where}.value", f"{op} does not take a {kind} value")
    expr, sql_type, bound = _operand(sql, f, value, f"{where}.value")
    if op == "contains":
        return f"position({expr}, {sql.bind(bound, sql_type)}) > 0"
    if op == "prefix":
        return f"startsWith({expr}, {sql.bind(bound, sql_type)})"
    return f"{expr} {COMPARISONS[op]} {sql.bind(bound, sql_type)}"


def _membership(sql: _Sql, f: Field, op: str, value: Any, where: str) -> str:
    if not isinstance(value, list) or not value:
        raise QueryError(f"{where}.value", f"{op} takes a non-empty list")
    if len(value) > MAX_IN_VALUES:
        raise QueryError(f"{where}.value", f"{op} takes at most {MAX_IN_VALUES} values")
    kinds = {_kind(v) for v in value}
    if len(kinds) != 1:
        raise QueryError(f"{where}.value", "the values must all be strings, numbers or booleans")
    expr, sql_type, _ = _operand(sql, f, value[0], f"{where}.value[0]")
    bound = [_operand(sql, f, v, f"{where}.value[{i}]")[2] for i, v in enumerate(value)]
    keyword = "IN" if op == "in" else "NOT IN"
    return f"{expr} {keyword} {sql.bind(bound, f'Array({sql_type})')}"


@dataclass(frozen=True, slots=True)
class _Out:
    """One SQL output column and the result columns it becomes."""

    expr: str
    columns: list[Column]
    decoder: Decoder


def _group(sql: _Sql, spec: str | Bucket, where: str) -> _Out:
    if isinstance(spec, Bucket):
        f = resolve(spec.field, f"{where}.field")
        if f.kind not in ("time", "json"):
            raise QueryError(f"{where}.field", "buckets need updated_at or a data field")
        name = _alias(spec.as_, f"{where}.as") or f"{spec.field}_{spec.bucket}"
        expr = BUCKETS[spec.bucket].format(sql.moment(f))
        return _Out(sql.row(expr), [Column(name, "time")], _time)
    f = resolve(spec, where)
    if f.kind == "json":
        return _Out(sql.row(sql.raw(f)), [Column(f.name, "json")], _json)
    return _Out(sql.row(f.column), [Column(f.name, f.kind)], DECODERS[f.kind])


def _alias(alias: str | None, where: str) -> str | None:
    if alias is not None and not ALIAS.fullmatch(alias):
        raise QueryError(where, "names are 1-64 of A-Z, a-z, 0-9, _ and start with a letter or _")
    return alias


def _level_name(level: float) -> str:
    return "p" + f"{level * 100:g}".replace(".", "_").replace("-", "_").replace("+", "")


def _aggregate(sql: _Sql, agg: Aggregate, where: str) -> _Out:
    fn = agg.fn
    if agg.levels is not None and fn != "quantiles":
        raise QueryError(f"{where}.levels", "only quantiles takes levels")
    if agg.field is None:
        if fn != "count":
            raise QueryError(f"{where}.field", f"{fn} needs a field")
        name = _alias(agg.as_, f"{where}.as") or "count"
        return _Out("count()", [Column(name, "int")], _int)
    f = resolve(agg.field, f"{where}.field")
    name = _alias(agg.as_, f"{where}.as") or f"{fn}_{agg.field.replace('.', '_')}"
    if fn == "count":
        expr = f"countIf({sql.row(sql.has(f))})" if f.kind == "json" else "count()"
        return _Out(expr, [Column(name, "int")], _int)
    if fn == "uniq":
        target = sql.raw(f) if f.kind == "json" else f.column
        return _Out(f"uniq({sql.row(target)})", [Column(name, "int")], _int)
    kind: Literal["string", "int", "float", "time"]
    if f.kind == "json":
        value, kind = sql.row(sql.typed(f, "number")), "float"
    elif f.kind == "int" or fn in ("min", "max"):
        value, kind = sql.row(f.column), f.kind
    else:
        raise QueryError(f"{where}.field", f"{fn} needs a numeric field, not {f.name}")
    if fn == "quantiles":
        return _quantiles(sql, agg, value, name, where)
    result = "float" if fn == "avg" else kind
    return _Out(AGGREGATES[fn].format(value), [Column(name, result)], DECODERS[result])


def _quantiles(sql: _Sql, agg: Aggregate, value: str, name: str, where: str) -> _Out:
    levels = list(DEFAULT_LEVELS if agg.levels is None else agg.levels)
    if not 1 <= len(levels) <= MAX_LEVELS:
        raise QueryError(f"{where}.levels", f"give 1-{MAX_LEVELS} levels")
    for i, level in enumerate(levels):
        if not (isinstance(level, int | float) and 0 <= level <= 1):
            raise QueryError(f"{where}.levels[{i}]", "levels are numbers from 0 to 1")
    columns = [Column(f"{name}_{_level_name(level)}", "float") for level in levels]
    bound = ", ".join(sql.bind(float(level), "Float64") for level in levels)
    return _Out(f"quantiles({bound})({value})", columns, _floats)


def _where(sql: _Sql, query: Query, account: str) -> tuple[list[str], int]:
    """The WHERE clauses, and how many of them are the scope (account, source)."""
    clauses = [f"account_id = {sql.bind(account, 'String')}"]
    if query.source is not None:
        if not values.SOURCE_NAME.fullmatch(query.source):
            raise QueryError("$.source", "sources are 1-64 of a-z, 0-9, _ . - (first a-z or 0-9)")
        clauses.append(f"source = {sql.bind(query.source, 'String')}")
    scopes = len(clauses)
    if len(query.filters) > MAX_FILTERS:
        raise QueryError("$.filters", f"at most {MAX_FILTERS} filters")
    for i, flt in enumerate(query.filters):
        clauses.append(_filter(sql, flt, f"$.filters[{i}]"))
    if query.time_range is not None:
        bounds = query.time_range
        start = _moment(bounds.from_, "$.time_range.from") if bounds.from_ is not None else None
        end = _moment(bounds.to, "$.time_range.to") if bounds.to is not None else None
        if start is not None and end is not None and start >= end:
            raise QueryError("$.time_range", "from must be before to")
        time_type = "DateTime64(6, 'UTC')"
        if start is not None:
            clauses.append(f"updated_at >= {sql.bind(start, time_type)}")
        if end is not None:
            clauses.append(f"updated_at < {sql.bind(end, time_type)}")
    return clauses, scopes


def parse_query(raw: Any) -> Query:
    """A Query from decoded JSON; shape errors become QueryError naming the path."""
    try:
        return msgspec.convert(raw, Query)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        raise QueryError(where.rstrip("`") or "$", message) from None


def compile_query(query: Query, account: str, limits: QueryLimits) -> CompiledQuery:
    """The SQL, parameters and ClickHouse settings for `query` over `account`'s records."""
    sql = _Sql()
    clauses, scopes = _where(sql, query, account)
    if len(query.group_by) > MAX_GROUPS:
        raise QueryError("$.group_by", f"at most {MAX_GROUPS} group fields")
    if len(query.aggregates) > MAX_AGGREGATES:
        raise QueryError("$.aggregates", f"at most {MAX_AGGREGATES} aggregates")
    groups = [_group(sql, g, f"$.group_by[{i}]") for i, g in enumerate(query.group_by)]
    aggregates = query.aggregates or [Aggregate(fn="count")]
    outs = groups + [_aggregate(sql, a, f"$.aggregates[{i}]") for i, a in enumerate(aggregates)]
    columns = [c for out in outs for c in out.columns]
    seen: set[str] = set()
    for column in columns:
        if column.name in seen:
            raise QueryError("$", f"two result columns are named {column.name!r}: use `as`")
        seen.add(column.name)
    order = _order(query, outs, len(groups))
    limit = limits.default_limit if query.limit is None else query.limit
    if not 1 <= limit <= limits.max_rows:
        raise QueryError("$.limit", f"limit must be from 1 to {limits.max_rows}")
    select = ", ".join(f"{out.expr} AS c{i}" for i, out in enumerate(outs))
    rows = ", ".join(f"{expr} AS {name}" for expr, name in sql.rows.items()) or "1 AS r0"
    # Fixed fragments only: every value is a bound parameter.
    text = f"SELECT {select} FROM (__rows__)"  # noqa: S608
    if groups:
        text += " GROUP BY " + ", ".join(f"c{i}" for i in range(len(groups)))
    if order:
        text += " ORDER BY " + ", ".join(order)
    text += f" LIMIT {sql.bind(limit, 'UInt64')}"
    scope, filters = clauses[:scopes], clauses[scopes:]
    return CompiledQuery(
        outer=text,
        rows=rows,
        scope=" AND ".join(scope),
        filters="".join(f" AND {clause}" for clause in filters),
        parameters=sql.parameters,
        settings=limits.settings(),
        columns=columns,
        decoders=[out.decoder for out in outs],
        accessors=sql.accessors,
    )


def _order(query: Query, outs: list[_Out], groups: int) -> list[str]:
    """ORDER BY terms: the requested ones, then every group column (a stable order)."""
    positions: dict[str, str] = {}
    for i, out in enumerate(outs):
        if len(out.columns) == 1:
            positions[out.columns[0].name] = f"c{i}"
        else:
            for j, column in enumerate(out.columns, start=1):
                positions[column.name] = f"c{i}[{j}]"
    terms: list[str] = []
    used: set[str] = set()
    for i, order in enumerate(query.order_by):
        if order.field not in positions:
            known = ", ".join(positions)
            raise QueryError(
                f"$.order_by[{i}].field",
                f"{_shown(order.field)} is not a result column (one of: {known})",
            )
        position = positions[order.field]
        if position not in used:
            used.add(position)
            terms.append(f"{position} {'DESC' if order.dir == 'desc' else 'ASC'}")
    terms += [f"c{i} ASC" for i in range(groups) if f"c{i}" not in used]
    return terms
