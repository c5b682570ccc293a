"""What both search adapters share: the stored document, and highlight fragments.

Each engine marks the matched words of every full-text value it highlights with two control
characters (which the indexed text never contains); the fragments are cut from that here, so
both modes return the same shape: per customer path, HTML-escaped text with `<em>` matches.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any

from projections.search import IndexDoc

PRE, POST = "\x02", "\x03"
FRAGMENT_CHARS = 160
MAX_FRAGMENTS = 3
"""Per field."""
MAX_FIELDS = 10
"""Per hit."""
_MARKS = re.compile(f"({PRE}|{POST})")


def stored(doc: IndexDoc, position: int) -> dict[str, Any]:
    """The fields a dump compares (derived search fields are left out)."""
    return {
        "account_id": doc.account_id,
        "source": doc.source,
        "id": doc.key,
        "version": doc.version,
        "position": position,
        "updated_at": doc.updated_at,
        "updated_us": doc.updated_us,
        "data": doc.data,
    }


def record(doc: dict[str, Any]) -> dict[str, Any]:
    """What a hit shows of a stored document."""
    keys = ("source", "id", "data", "version", "updated_at", "position")
    return {key: doc[key] for key in keys}


def fragment(marked: str) -> str | None:
    """A window of at most FRAGMENT_CHARS around the first match, escaped, matches in <em>;
    None when nothing is marked."""
    segments: list[tuple[str, bool]] = []
    inside = False
    for part in _MARKS.split(marked):
        if part in (PRE, POST):
            inside = part == PRE
        elif part:
            segments.append((part, inside))
    first = 0
    for text, matched in segments:
        if matched:
            break
        first += len(text)
    else:
        return None
    length = sum(len(text) for text, _ in segments)
    start = max(0, min(first - FRAGMENT_CHARS // 4, length - FRAGMENT_CHARS))
    end = min(length, start + FRAGMENT_CHARS)
    out: list[str] = []
    offset = 0
    for text, matched in segments:
        lo, hi = max(offset, start), min(offset + len(text), end)
        if lo < hi:
            piece = html.escape(text[lo - offset : hi - offset], quote=False)
            out.append(f"<em>{piece}</em>" if matched else piece)
        offset += len(text)
    return ("…" if start > 0 else "") + "".join(out) + ("…" if end < length else "")


def highlights(marked: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """{path: fragments} from (path, marked value) pairs, bounded per field and per hit."""
    out: dict[str, list[str]] = {}
    for path, text in marked:
        piece = fragment(text)
        if piece is None or (path not in out and len(out) >= MAX_FIELDS):
            continue
        fragments = out.setdefault(path, [])
        if len(fragments) < MAX_FRAGMENTS:
            fragments.append(piece)
    return out


def align(values: list[tuple[str, str]], marked: list[str]) -> list[tuple[str, str]]:
    """Pair each highlighted value an engine returned (in field order, only those that
    matched) with the path of the full-text value it is."""
    out: list[tuple[str, str]] = []
    index = 0
    for text in marked:
        plain = text.replace(PRE, "").replace(POST, "")
        found = next((i for i in range(index, len(values)) if values[i][1] == plain), None)
        if found is None:
            found = next((i for i, (_, value) in enumerate(values) if value == plain), None)
        if found is not None:
            out.append((values[found][0], text))
            index = found + 1
    return out
