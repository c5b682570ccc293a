"""What a search sends to Elasticsearch and how its answer reads: query, sort, highlight.

Tenant isolation lives here: every query filters on the caller's account and source (the
adapter also routes the request by account).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from infra.adapters.search.common import POST, PRE, align, highlights, record
from projections.search import Clause, SearchHit, SearchQuery, Sort, text_values

SQS_FLAGS = "AND|NOT|PHRASE|PREFIX|WHITESPACE|ESCAPE"
_SPECIAL = re.compile(r'([+|\-"*()~\\\s])')
HIGHLIGHT: dict[str, Any] = {
    # The whole matching values, marked; common.fragment cuts them the same way for both modes.
    "fields": {"text": {"number_of_fragments": 0}},
    "pre_tags": [PRE],
    "post_tags": [POST],
    "max_analyzed_offset": 1_000_000,
}


def request(q: SearchQuery) -> dict[str, Any]:
    """The search API's parameters for one page of `q` (one more hit than asked, to know
    whether another page follows)."""
    out: dict[str, Any] = {
        "query": query(q),
        "sort": sort(q.sort),
        "size": q.limit + 1,
        "track_total_hits": True,
        "track_scores": True,
        "source_excludes": ["text", "terms", "sortkeys"],
    }
    if q.after is not None:
        out["search_after"] = list(q.after)
    if q.clauses:
        out["highlight"] = HIGHLIGHT
    return out


def _escape(text: str) -> str:
    return _SPECIAL.sub(r"\\\1", text)


def query_string(clauses: Sequence[Clause]) -> str:
    """`simple_query_string` syntax rebuilt from parsed clauses: the user's text never
    reaches the parser except as quoted phrases or escaped prefix words."""
    parts = []
    for clause in clauses:
        if clause.prefix:
            body = _escape(clause.text) + "*"
        else:
            body = '"' + clause.text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(("-" if clause.exclude else "") + body)
    return " ".join(parts)


def query(q: SearchQuery) -> dict[str, Any]:
    # Tenant isolation: every query is routed by account and filtered on it.
    filters: list[dict[str, Any]] = [
        {"term": {"account_id": q.account_id}},
        {"term": {"source": q.source}},
    ]
    if q.key is not None:
        filters.append({"term": {"id": q.key}})
    filters += [{"term": {f"terms.{path}": value}} for path, value in q.filters]
    boolean: dict[str, Any] = {"filter": filters}
    if q.clauses:
        sqs = {
            "query": query_string(q.clauses),
            "fields": ["text"],
            "default_operator": "and",
            "flags": SQS_FLAGS,
        }
        boolean["must"] = [{"simple_query_string": sqs}]
    return {"bool": boolean}


def sort(by: Sort) -> list[dict[str, Any]]:
    order = "desc" if by.descending else "asc"
    tiebreak = {"id": "asc"}
    if by.field == "_score":
        return [{"_score": "desc"}, tiebreak]
    if by.field == "updated_at":
        return [{"updated_us": order}, tiebreak]
    if by.field == "id":
        return [{"id": order}]
    return [{f"sortkeys.{by.path}": {"order": order, "missing": "_last"}}, tiebreak]


def hit(found: dict[str, Any]) -> SearchHit:
    source = found["_source"]
    marked = found.get("highlight", {}).get("text", [])
    return SearchHit(
        record=record(source),
        score=float(found.get("_score") or 0.0),
        highlights=highlights(align(text_values(source["data"]), marked)),
        sort=tuple(found["sort"]),
    )
