"""NDJSON ingest: read line by line, never the whole body; bad lines are reported, not fatal.

Valid lines are committed in chunks of `chunk_records`. With an Idempotency-Key, chunk i is
kept under '<key>#<i>' with its own fingerprint, so a retried stream replays the chunks that
were committed and writes only the rest (see docs/adr/0004-idempotency.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import msgspec

from commands.ingest import Entry
from domain import values
from domain.errors import InvalidValueError
from schemas.commands import StreamLine
from schemas.responses import BatchWritten, LineError, StreamWritten

MAX_REPORTED_ERRORS = 1000
_decoder = msgspec.json.Decoder(StreamLine)


class StreamRejectedError(Exception):
    """No line of the stream was valid."""

    def __init__(self, errors: list[LineError], total: int) -> None:
        super().__init__(f"none of the {total} lines was a valid record")
        self.details = [msgspec.structs.asdict(e) for e in errors]


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    entries: list[Entry]
    raw: list[bytes]


WriteChunk = Callable[[Chunk], Awaitable[BatchWritten]]


@dataclass
class _Tally:
    accepted: int = 0
    rejected: int = 0
    position: int | None = None
    errors: list[LineError] = field(default_factory=list)

    def reject(self, line: int, code: str, message: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(LineError(line=line, code=code, message=message))


async def ingest_ndjson(
    body: AsyncIterator[bytes],
    *,
    default_source: str | None,
    chunk_records: int,
    max_line_bytes: int,
    write: WriteChunk,
) -> StreamWritten:
    tally = _Tally()
    pending: list[Entry] = []
    raw: list[bytes] = []
    numbers: list[int] = []
    chunk_index = 0

    async def flush() -> None:
        nonlocal chunk_index, pending, raw, numbers
        if pending:
            written = await write(Chunk(chunk_index, pending, raw))
            tally.accepted += written.count
            tally.position = written.position
            # Transformations: lines a source's pipeline failed on (docs/transforms.md).
            for rejection in getattr(written, "errors", ()):
                where = f"step {rejection.step}: " if rejection.step is not None else ""
                tally.reject(numbers[rejection.index], rejection.code, where + rejection.message)
            chunk_index += 1
            pending, raw, numbers = [], [], []

    async for number, line in _lines(body, max_line_bytes):
        if line is None:
            tally.reject(number, "LINE_TOO_LONG", f"a line may hold at most {max_line_bytes} bytes")
            continue
        if not line.strip():
            continue
        entry = _parse(number, line, default_source, tally)
        if entry is not None:
            pending.append(entry)
            raw.append(line)
            numbers.append(number)
            if len(pending) >= chunk_records:
                await flush()
    await flush()
    if tally.accepted == 0 and tally.rejected > 0:
        raise StreamRejectedError(tally.errors, tally.rejected)
    return StreamWritten(
        accepted=tally.accepted,
        rejected=tally.rejected,
        position=tally.position,
        errors=tally.errors,
    )


def _parse(number: int, line: bytes, default_source: str | None, tally: _Tally) -> Entry | None:
    try:
        parsed = _decoder.decode(line)
    except msgspec.ValidationError as exc:
        tally.reject(number, "VALIDATION_FAILED", str(exc))
        return None
    except msgspec.DecodeError as exc:
        tally.reject(number, "MALFORMED_JSON", str(exc))
        return None
    source = parsed.source or default_source
    if source is None:
        tally.reject(number, "VALIDATION_FAILED", "no source: give it on the line or as ?source=")
        return None
    try:
        values.source_name(source)
        values.record_key(parsed.id)
    except InvalidValueError as exc:
        tally.reject(number, "INVALID_VALUE", exc.message)
        return None
    return Entry(source=source, key=parsed.id, data=parsed.data)


async def _lines(
    body: AsyncIterator[bytes], max_line_bytes: int
) -> AsyncIterator[tuple[int, bytes | None]]:
    """Numbered lines (1-based). An overlong line yields None once and is skipped to its end."""
    partial = b""
    number = 0
    skipping = False
    async for chunk in body:
        if not chunk:
            continue
        parts = chunk.split(b"\n")
        parts[0] = partial + parts[0]
        partial = parts.pop()
        for line in parts:
            if skipping:
                skipping = False
                continue
            number += 1
            yield number, (line if len(line) <= max_line_bytes else None)
        if len(partial) > max_line_bytes:
            if not skipping:
                number += 1
                skipping = True
                yield number, None
            partial = b""
    if partial and not skipping:
        number += 1
        yield number, (partial if len(partial) <= max_line_bytes else None)
