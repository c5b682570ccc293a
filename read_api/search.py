"""`GET /v1/data/{source}/search`: full-text search over one source's records.

Parameters are parsed here into an engine-neutral `SearchQuery`; the search store (Elastic-
search, or SQLite FTS5 embedded) runs it within the caller's account. Cursors are opaque:
base64url JSON of a fingerprint of the query and the last hit's sort values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import astuple, replace
from typing import Annotated, Any

import msgspec
import orjson
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter, SkipValidation

from domain import values
from domain.access import Scope
from projections import search
from projections.search import FIELD_PATH, Clause, SearchQuery, SearchReader, Sort
from read_api.api import Meta_, Principal_, get_record_history
from read_api.consistency import InvalidQueryError
from read_api.formats import Format, each, negotiate, render
from read_api.ports import EventHistory
from read_api.views import record_view
from schemas.envelope import Envelope
from schemas.responses import History
from schemas.search import SearchHit, SearchResults

MAX_Q_CHARS = 500
MAX_CLAUSES = 16
MAX_FILTERS = 10
MAX_FILTER_VALUE_CHARS = 256
MAX_CURSOR_CHARS = 4096
SORTS = "_score, updated_at, -updated_at, id, -id, data.<field>, -data.<field>"

_CLAUSE = re.compile(r'(-?)"([^"]*)"?|(-?)([^\s"]+)')
_WORD = re.compile(r"\w+")
_SEARCHABLE = re.compile(r"[^\W_]")
_FILTER = re.compile(r"filter\[(.*)\]", re.DOTALL)


class SearchParameterError(InvalidQueryError):
    """400 INVALID_PARAMETER, naming the query parameter at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.details = [{"field": field, "message": message, "in": "query"}]


def parse_q(raw: str | None) -> tuple[Clause, ...]:
    """Words (all must occur), "quoted phrases", `prefix*` words and `-excluded` words or
    phrases. Anything else is text: no operator of either engine can be injected."""
    if raw is None or not raw.strip():
        return ()
    if len(raw) > MAX_Q_CHARS:
        raise SearchParameterError("q", f"must be at most {MAX_Q_CHARS} characters")
    clauses = []
    for match in _CLAUSE.finditer(raw):
        if match.group(2) is not None:
            exclude, text, prefix = bool(match.group(1)), match.group(2), False
        else:
            exclude, text = bool(match.group(3)), match.group(4)
            prefix = text.endswith("*") and _WORD.fullmatch(text.rstrip("*")) is not None
        text = " ".join(text.rstrip("*" if prefix else "").replace("\\", " ").split())
        if _SEARCHABLE.search(text):
            clauses.append(Clause(text, prefix=prefix, exclude=exclude))
    if not clauses:
        raise SearchParameterError("q", "has no word to search for")
    if len(clauses) > MAX_CLAUSES:
        raise SearchParameterError("q", f"may hold at most {MAX_CLAUSES} words or phrases")
    if all(clause.exclude for clause in clauses):
        raise SearchParameterError("q", "needs at least one word that is not excluded (-word)")
    return tuple(clauses)


def parse_sort(raw: str | None) -> Sort:
    if raw is None or raw in ("", "_score"):
        return Sort("_score")
    descending = raw.startswith("-")
    name = raw[1:] if descending else raw
    if name == "updated_at":
        return Sort("updated_at", descending)
    if name == "id":
        return Sort("id", descending)
    if name.startswith("data.") and FIELD_PATH.fullmatch(name[5:]):
        return Sort("data", descending, name[5:])
    raise SearchParameterError("sort", f"must be one of {SORTS}")


def parse_filters(params: Any) -> tuple[tuple[str, str], ...]:
    """`filter[path]=value` pairs from the query string (repeated: all must match)."""
    out: list[tuple[str, str]] = []
    for name in params:
        if not name.startswith("filter"):
            continue
        match = _FILTER.fullmatch(name)
        if match is None or not FIELD_PATH.fullmatch(match.group(1)):
            raise SearchParameterError(
                name,
                "filters are filter[<field>]=<value>, <field> a path like a.b (A-Z a-z 0-9 _ . -)",
            )
        for value in params.getall(name):
            if len(value) > MAX_FILTER_VALUE_CHARS:
                raise SearchParameterError(name, f"must be at most {MAX_FILTER_VALUE_CHARS} chars")
            out.append((match.group(1), value))
    if len(out) > MAX_FILTERS:
        raise SearchParameterError("filter", f"at most {MAX_FILTERS} filters")
    return tuple(out)


def fingerprint(query: SearchQuery) -> str:
    """What a cursor is bound to: a cursor only continues the query it came from."""
    shape = [[astuple(c) for c in query.clauses], query.filters, query.key, astuple(query.sort)]
    return hashlib.sha256(orjson.dumps(shape)).hexdigest()[:16]


def encode_cursor(query: SearchQuery, after: tuple[Any, ...]) -> str:
    raw = orjson.dumps([fingerprint(query), *after])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_KINDS = {
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "string|null": lambda v: v is None or isinstance(v, str),
}


def decode_cursor(raw: str, query: SearchQuery) -> tuple[Any, ...]:
    bad = SearchParameterError("cursor", "is not a cursor this endpoint returned")
    if len(raw) > MAX_CURSOR_CHARS:
        raise bad
    try:
        padded = raw + "=" * (-len(raw) % 4)
        decoded = orjson.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        raise bad from None
    shape = query.sort.cursor_shape()
    if not isinstance(decoded, list) or len(decoded) != len(shape) + 1:
        raise bad
    if decoded[0] != fingerprint(query):
        raise SearchParameterError(
            "cursor", "belongs to another query: keep q, filter[...], id and sort unchanged"
        )
    after = tuple(decoded[1:])
    if not all(_KINDS[kind](value) for kind, value in zip(shape, after, strict=True)):
        raise bad
    return after


Q = Annotated[
    str | None,
    QueryParameter(
        name="q",
        required=False,
        description='Words (all must occur), "phrases", prefix* and -excluded words.',
    ),
]
FilterDoc = Annotated[
    str | None,
    QueryParameter(
        name="filter[field]",
        required=False,
        description="Exact value of a field of the data (a dotted path); up to 10, all must "
        "match. Replace `field` with the path, e.g. filter[address.city]=Paris.",
    ),
]
SortParam = Annotated[
    str | None, QueryParameter(name="sort", required=False, description=f"One of {SORTS}.")
]
Limit = Annotated[int, QueryParameter(name="limit", required=False, ge=1, le=100)]
Cursor = Annotated[
    str | None,
    QueryParameter(name="cursor", required=False, description="`next_cursor` of the page before."),
]
Key = Annotated[
    str | None,
    QueryParameter(
        name="id",
        required=False,
        description="Only the record with this key (how a record keyed `search` is read).",
    ),
]
FormatParam = Annotated[
    str | None,
    QueryParameter(
        name="format",
        required=False,
        description="json (default), ndjson, csv or parquet: one row per hit (id, score, the "
        "record's fields, highlights); the total is in X-Total-Count.",
    ),
]
HIT_COLUMNS = ["id", "score", "source", "version", "updated_at", "position", "data", "highlights"]
HIT_TYPES = {"score": "float", "version": "int", "position": "int", "updated_at": "time"}
SearchIndex = NamedDependency[SkipValidation[SearchReader]]
Events = NamedDependency[SkipValidation[EventHistory]]


@get(
    "/v1/data/{source:str}/search",
    opt={"scope": Scope.DATA_READ, "reads": search.NAME, "formats": True},
    responses={
        200: ResponseSpec(
            Envelope[SearchResults],
            description="A page of hits (JSON); or, by `?format=` or Accept, one row per hit "
            "in NDJSON, CSV or Parquet.",
        )
    },
    summary="Search a source's records: relevance-ranked hits with highlights",
)
async def search_records(
    source: FromPath[str],
    request: Request[Any, Any, Any],
    principal: Principal_,
    search_index: SearchIndex,
    meta: Meta_,
    q: Q = None,
    filter_doc: FilterDoc = None,
    sort: SortParam = None,
    limit: Limit = 20,
    cursor: Cursor = None,
    key: Key = None,
    format: FormatParam = None,  # noqa: A002 - the query parameter's public name
) -> Response[Any]:
    account = str(principal.own_account())
    values.source_name(source)
    fmt = negotiate(format, request.headers.get("accept"))
    if key is not None and not values.RECORD_KEY.fullmatch(key):
        raise SearchParameterError("id", "is not a record key")
    query = SearchQuery(
        account_id=account,
        source=source,
        clauses=parse_q(q),
        filters=parse_filters(request.query_params),
        key=key,
        sort=parse_sort(sort),
        limit=limit,
    )
    if cursor:
        query = replace(query, after=decode_cursor(cursor, query))
    page = await search_index.search(query)
    hits = [
        SearchHit(
            id=hit.record["id"],
            score=hit.score,
            highlights=hit.highlights,
            record=record_view(hit.record),
        )
        for hit in page.hits
    ]
    after = page.hits[-1].sort if page.more and page.hits else None
    next_cursor = encode_cursor(query, after) if after is not None else None
    if fmt is not Format.JSON:
        rows = [
            {**msgspec.structs.asdict(hit.record), "score": hit.score, "highlights": hit.highlights}
            for hit in hits
        ]
        response = render(
            each(rows),
            fmt=fmt,
            columns=HIT_COLUMNS,
            meta=meta,
            next_cursor=next_cursor,
            types=HIT_TYPES,
        )
        response.headers["X-Total-Count"] = str(page.total)
        return response
    # A Response, not the envelope itself: Litestar then keeps each format's media type.
    return Response(Envelope(data=SearchResults(hits, page.total, next_cursor), meta=meta))


@get(
    "/v1/data/{source:str}/search/history",
    opt={"scope": Scope.DATA_READ},
    include_in_schema=False,
)
async def search_record_history(
    source: FromPath[str], principal: Principal_, events: Events, meta: Meta_
) -> Envelope[History]:
    """The static `search` segment shadows `/v1/data/{source}/{record_id}/history` for a
    record keyed `search` (Litestar does not fall back to the parameter route): serve it."""
    result: Envelope[History] = await get_record_history.fn(
        source=source, record_id="search", principal=principal, events=events, meta=meta
    )
    return result


ROUTES = [search_records, search_record_history]
