"""The `search` projection: every live record as a search document, and the search port.

Rules are pure: record events in, `SearchChange`s out (index or remove one document, tagged
with the event's position). A store adapter (Elasticsearch, or SQLite FTS5 in the embedded
mode) applies them idempotently: a document keeps the position of the event that wrote it and
an older or redelivered write never replaces a newer one (docs/adr/0008-search.md).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable

import msgspec
import orjson

from projections.ports import GenerationStore
from schemas.events import ProjectedEvent

NAME = "search"

# Customer paths that filters and sorts may name; only these are indexed as exact terms.
FIELD_PATH = re.compile(r"[A-Za-z0-9_.-]{1,100}")
# Longer values stay searchable as text but are not exact terms (ES `ignore_above`).
MAX_TERM_CHARS = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class IndexDoc(msgspec.Struct, frozen=True, tag=True):
    """Create or replace the document of a record."""

    doc_id: str
    account_id: str
    source: str
    key: str
    version: int
    updated_at: str
    updated_us: int
    """`updated_at` in microseconds since the epoch: what `sort=updated_at` orders by."""
    data: dict[str, Any]


class RemoveDoc(msgspec.Struct, frozen=True, tag=True):
    doc_id: str
    account_id: str
    source: str
    key: str


class SearchChange(msgspec.Struct, frozen=True, array_like=True):
    position: int
    change: IndexDoc | RemoveDoc


def _micros(moment: datetime) -> int:
    aware = moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)
    return (aware - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _upserted(e: ProjectedEvent) -> IndexDoc:
    p = e.payload
    return IndexDoc(
        doc_id=str(e.stream_id),
        account_id=p["account_id"],
        source=p["source"],
        key=p["key"],
        version=e.version,
        updated_at=e.timestamp.isoformat(),
        updated_us=_micros(e.timestamp),
        data=p["data"],
    )


def _deleted(e: ProjectedEvent) -> RemoveDoc:
    p = e.payload
    return RemoveDoc(str(e.stream_id), p["account_id"], p["source"], p["key"])


def changes(events: Iterable[ProjectedEvent]) -> list[SearchChange]:
    """One change per record event, in order. Other events change nothing."""
    out: list[SearchChange] = []
    for e in events:
        if e.type in ("Record.Created", "Record.Updated"):
            out.append(SearchChange(e.position, _upserted(e)))
        elif e.type == "Record.Deleted":
            out.append(SearchChange(e.position, _deleted(e)))
    return out


def latest(changes: Sequence[SearchChange]) -> list[SearchChange]:
    """The newest change of each document (by position): what applying them all amounts to,
    since every change writes a whole, versioned state."""
    newest: dict[str, SearchChange] = {}
    for item in changes:
        seen = newest.get(item.change.doc_id)
        if seen is None or item.position >= seen.position:
            newest[item.change.doc_id] = item
    return sorted(newest.values(), key=lambda item: item.position)


# ------------------------------------------------------------------ derived fields


def leaves(data: Any, path: str | None = None) -> Iterator[tuple[str, Any]]:
    """Every scalar of a JSON value with its dotted path; array indices are not part of the
    path (an array's items share their parent's path), like Elasticsearch's `flattened`."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from leaves(value, key if path is None else f"{path}.{key}")
    elif isinstance(data, list):
        for value in data:
            yield from leaves(value, path)
    elif data is not None and path is not None:
        yield path, data


def scalar_text(value: Any) -> str | None:
    """How a scalar reads as full text: strings (control characters blanked) and numbers."""
    if isinstance(value, str):
        return _CONTROL.sub(" ", value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return orjson.dumps(value).decode()
    return None


def text_values(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, text) of every string and number, in document order: the full-text field."""
    out = []
    for path, value in leaves(data):
        text = scalar_text(value)
        if text is not None and text.strip():
            out.append((path, text))
    return out


def term_value(value: Any) -> str | None:
    """The exact-match form of a scalar: JSON text of numbers and booleans, strings as is."""
    if isinstance(value, str):
        return value if len(value) <= MAX_TERM_CHARS else None
    return orjson.dumps(value).decode()


def terms(data: dict[str, Any]) -> dict[str, list[str]]:
    """Exact terms per addressable path (what `filter[...]` uses)."""
    return _per_path(data, term_value)


def sort_key(value: Any) -> str | None:
    """A scalar as text whose byte order is the order `sort=data.<path>` promises: numbers
    by value (IEEE-754 bits made order-preserving, as 16 hex digits), then false and true,
    then strings (code point order). One encoding, so both engines sort alike."""
    if isinstance(value, bool):
        return "1" + ("1" if value else "0")
    if isinstance(value, int | float):
        number = float(value) if value != 0 else 0.0  # -0.0 sorts as 0
        (bits,) = struct.unpack(">Q", struct.pack(">d", number))
        bits = bits ^ 0xFFFF_FFFF_FFFF_FFFF if bits >> 63 else bits | 1 << 63
        return f"0{bits:016x}"
    if isinstance(value, str):
        return "2" + value if len(value) <= MAX_TERM_CHARS else None
    return None


def sort_keys(data: dict[str, Any]) -> dict[str, list[str]]:
    """Sort keys per addressable path (what `sort=data.<path>` orders by)."""
    return _per_path(data, sort_key)


def _per_path(data: dict[str, Any], form: Callable[[Any], str | None]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path, value in leaves(data):
        if not FIELD_PATH.fullmatch(path):
            continue
        term = form(value)
        if term is not None:
            values = out.setdefault(path, [])
            if term not in values:
                values.append(term)
    return out


# ------------------------------------------------------------------ queries


@dataclass(frozen=True)
class Clause:
    """One part of `q`: words to find as a phrase (one word is a phrase of one), optionally
    a prefix of the last word, or words that must not occur."""

    text: str
    prefix: bool = False
    exclude: bool = False


SortField = Literal["_score", "updated_at", "id", "data"]


@dataclass(frozen=True)
class Sort:
    field: SortField
    descending: bool = False
    path: str = ""
    """The customer path when `field` is "data"."""

    def cursor_shape(self) -> tuple[str, ...]:
        """Types of the sort values a hit carries (and a cursor must hold)."""
        shapes: dict[SortField, tuple[str, ...]] = {
            "_score": ("number", "string"),
            "updated_at": ("integer", "string"),
            "id": ("string",),
            "data": ("string|null", "string"),
        }
        return shapes[self.field]


@dataclass(frozen=True)
class SearchQuery:
    account_id: str
    source: str
    clauses: tuple[Clause, ...] = ()
    """Empty: every record of the source (score 0)."""
    filters: tuple[tuple[str, str], ...] = ()
    """(customer path, exact value) pairs, all of which must match."""
    key: str | None = None
    """Only the record with this key."""
    sort: Sort = Sort("_score")
    limit: int = 20
    after: tuple[Any, ...] | None = None
    """The sort values of the last hit of the previous page (`search_after`)."""


@dataclass(frozen=True)
class SearchHit:
    record: dict[str, Any]
    """source, id, data, version, updated_at, position."""
    score: float
    highlights: dict[str, list[str]]
    sort: tuple[Any, ...]


@dataclass(frozen=True)
class SearchPage:
    hits: list[SearchHit]
    total: int
    more: bool
    """Whether hits follow the last one returned."""


@runtime_checkable
class SearchReader(Protocol):
    async def search(self, query: SearchQuery) -> SearchPage:
        """Hits of the active generation, restricted to the query's account and source."""
        ...

    async def checkpoints(self) -> dict[int, int]: ...


@runtime_checkable
class SearchStore(GenerationStore[SearchChange], SearchReader, Protocol):
    """A search index with generations."""
