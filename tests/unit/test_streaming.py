"""NDJSON parsing: lines are the same however the body is chunked; bad lines are reported."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.streaming import Chunk, StreamRejectedError, _lines, ingest_ndjson
from schemas.responses import BatchWritten, RecordVersion


async def _chunks(data: bytes, cuts: list[int]) -> AsyncIterator[bytes]:
    start = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}):
        yield data[start:cut]
        start = cut
    yield data[start:]


async def _collect(data: bytes, cuts: list[int], limit: int) -> list[tuple[int, bytes | None]]:
    return [item async for item in _lines(_chunks(data, cuts), limit)]


def _expected(data: bytes, limit: int) -> list[tuple[int, bytes | None]]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [(n, line if len(line) <= limit else None) for n, line in enumerate(lines, 1)]


@given(
    lines=st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=20),
    cuts=st.lists(st.integers(0, 10_000), max_size=12),
    limit=st.integers(1, 40),
    trailing=st.booleans(),
)
def test_chunking_never_changes_the_lines(
    lines: list[bytes], cuts: list[int], limit: int, trailing: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if trailing and lines else b"")
    assert asyncio.run(_collect(data, cuts, limit)) == _expected(data, limit)


def test_lines_are_reported_by_number_and_valid_ones_written_in_chunks() -> None:
    written: list[Chunk] = []

    async def write(chunk: Chunk) -> BatchWritten:
        written.append(chunk)
        versions = [RecordVersion(id=e.key, version=1) for e in chunk.entries]
        return BatchWritten(
            source="s", count=len(versions), position=len(written), records=versions
        )

    body = (
        b'{"id":"a","data":{}}\n{"id":"b"}\n\n'
        b'{"id":"c","data":{},"source":"x"}\n[1]\n{"id":"d","data":{}}'
    )
    result = asyncio.run(
        ingest_ndjson(
            _chunks(body, [5, 17]),
            default_source="s",
            chunk_records=2,
            max_line_bytes=100,
            write=write,
        )
    )
    assert [[e.key for e in c.entries] for c in written] == [["a", "c"], ["d"]]
    assert written[0].entries[1].source == "x"
    assert (result.accepted, result.rejected, result.position) == (3, 2, 2)
    assert [(e.line, e.code) for e in result.errors] == [
        (2, "VALIDATION_FAILED"),
        (5, "VALIDATION_FAILED"),
    ]


def test_a_line_without_a_source_is_rejected_when_there_is_no_default() -> None:
    async def write(chunk: Chunk) -> BatchWritten:
        raise AssertionError("nothing valid to write")

    with pytest.raises(StreamRejectedError, match="none of the 1 lines") as rejected:
        asyncio.run(
            ingest_ndjson(
                _chunks(b'{"id":"a","data":{}}', []),
                default_source=None,
                chunk_records=10,
                max_line_bytes=100,
                write=write,
            )
        )
    assert rejected.value.details[0]["message"].startswith("no source")
