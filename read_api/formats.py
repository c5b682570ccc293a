"""Output formats for lists, queries and searches: JSON (default), NDJSON, CSV, Parquet.

Chosen by `?format=` or the Accept header. Rows are streamed: the body is produced while
rows are read, never built whole in memory (Parquet writes one row group per chunk).
Pagination travels in `meta.next_cursor` (JSON) and in `X-Next-Cursor` / `Link` headers.
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
from litestar.exceptions import HTTPException
from litestar.response import Stream

from schemas.envelope import Meta


class Format(enum.StrEnum):
    JSON = "json"
    NDJSON = "ndjson"
    CSV = "csv"
    PARQUET = "parquet"


MEDIA_TYPES: dict[Format, str] = {
    Format.JSON: "application/json",
    Format.NDJSON: "application/x-ndjson",
    Format.CSV: "text/csv; charset=utf-8",
    Format.PARQUET: "application/vnd.apache.parquet",
}
_ACCEPTED: dict[str, Format] = {
    "application/json": Format.JSON,
    "application/x-ndjson": Format.NDJSON,
    "application/ndjson": Format.NDJSON,
    "application/jsonl": Format.NDJSON,
    "text/csv": Format.CSV,
    "application/vnd.apache.parquet": Format.PARQUET,
    "application/x-parquet": Format.PARQUET,
    "*/*": Format.JSON,
    "application/*": Format.JSON,
}
CHUNK_ROWS = 500


class NotAcceptableError(HTTPException):
    status_code = 406


def negotiate(format_param: str | None, accept: str | None) -> Format:
    """`?format=` wins; else the first Accept type we serve; no preference means JSON."""
    if format_param:
        try:
            return Format(format_param.lower())
        except ValueError:
            known = ", ".join(f.value for f in Format)
            raise NotAcceptableError(f"format must be one of {known}") from None
    if not accept:
        return Format.JSON
    ranked = sorted(
        (_quality(part), index, part.split(";")[0].strip().lower())
        for index, part in enumerate(accept.split(","))
    )
    for quality, _, media in sorted(ranked, key=lambda r: (-r[0], r[1])):
        if quality > 0 and media in _ACCEPTED:
            return _ACCEPTED[media]
    served = ", ".join(sorted({m.split(";")[0] for m in MEDIA_TYPES.values()}))
    raise NotAcceptableError(f"cannot produce {accept!r}; this endpoint serves {served}")


def _quality(part: str) -> float:
    for param in part.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def render(
    rows: AsyncIterator[dict[str, Any]],
    *,
    fmt: Format,
    columns: Sequence[str],
    meta: Meta,
    next_cursor: str | None = None,
    extra: dict[str, Any] | None = None,
    types: dict[str, str] | None = None,
) -> Stream:
    """A streamed response. `extra` goes beside `data` in JSON (e.g. a search's total);
    `types` declares Parquet column types (time, int, float, bool; text otherwise)."""
    headers: dict[str, str] = {}
    if next_cursor is not None:
        headers["X-Next-Cursor"] = next_cursor
    producers = {
        Format.JSON: lambda: _json(rows, meta, next_cursor, extra),
        Format.NDJSON: lambda: _ndjson(rows),
        Format.CSV: lambda: _csv(rows, columns),
        Format.PARQUET: lambda: _parquet(rows, columns, types or {}),
    }
    return Stream(producers[fmt](), media_type=MEDIA_TYPES[fmt], headers=headers)


_encoder = msgspec.json.Encoder()


async def _json(
    rows: AsyncIterator[dict[str, Any]],
    meta: Meta,
    next_cursor: str | None,
    extra: dict[str, Any] | None,
) -> AsyncIterator[bytes]:
    yield b'{"data":['
    first = True
    async for row in rows:
        yield (b"" if first else b",") + _encoder.encode(row)
        first = False
    tail: dict[str, Any] = {**msgspec.structs.asdict(meta), "next_cursor": next_cursor}
    yield (
        b"],"
        + b"".join(
            b'"%s":%s,' % (key.encode(), _encoder.encode(value))
            for key, value in (extra or {}).items()
        )
        + b'"meta":'
        + _encoder.encode(tail)
        + b"}"
    )


async def _ndjson(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async for row in rows:
        yield _encoder.encode(row) + b"\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list | bool):
        return _encoder.encode(value).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


async def each(rows: Iterable[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """Rows already in memory, as the stream `render` takes."""
    for row in rows:
        yield row


async def _csv(rows: AsyncIterator[dict[str, Any]], columns: Sequence[str]) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    count = 0
    async for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
        count += 1
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


PARQUET_TYPES: dict[str, pa.DataType] = {
    "time": pa.timestamp("us", tz="UTC"),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
}


async def _parquet(
    rows: AsyncIterator[dict[str, Any]], columns: Sequence[str], types: dict[str, str]
) -> AsyncIterator[bytes]:
    """Columns typed as declared (time, int, float, bool); every other column is text, nested
    values as JSON. One row group per chunk of rows."""
    schema = pa.schema([(c, PARQUET_TYPES[types.get(c, "string")]) for c in columns])
    sink = io.BytesIO()
    writer = pq.ParquetWriter(sink, schema)

    def flush(batch: Iterable[dict[str, Any]]) -> bytes:
        table = pa.table(
            {c: _column([r.get(c) for r in batch], schema.field(c).type) for c in columns},
            schema,
        )
        writer.write_table(table)
        out = sink.getvalue()
        sink.seek(0)
        sink.truncate()
        return out

    chunk: list[dict[str, Any]] = []
    async for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            yield flush(chunk)
            chunk = []
    if chunk:
        yield flush(chunk)
    writer.close()
    yield sink.getvalue()


def _column(values: list[Any], kind: pa.DataType) -> pa.Array:
    if kind == pa.string():
        return pa.array([None if v is None else _cell(v) for v in values], type=kind)
    if pa.types.is_timestamp(kind):
        values = [datetime.fromisoformat(v) if isinstance(v, str) else v for v in values]
    return pa.array(values, type=kind)
