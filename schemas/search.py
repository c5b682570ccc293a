"""Response bodies of the search endpoint (the `data` member of the envelope)."""

from __future__ import annotations

import msgspec

from schemas.responses import RecordView


class SearchHit(msgspec.Struct, frozen=True):
    id: str
    """The record's key."""
    score: float
    """Relevance (higher first); 0 without `q`. Engine-specific: compare only within a page."""
    highlights: dict[str, list[str]]
    """Per customer field path, fragments of HTML: text escaped, matched words in <em>."""
    record: RecordView


class SearchResults(msgspec.Struct, frozen=True):
    hits: list[SearchHit]
    total: int
    """Every match of the query, whatever the cursor."""
    next_cursor: str | None
    """Pass as `cursor` (with the same q, filters, id and sort) for the next page."""
