"""The pure parts: rules, query parsing, cursors, derived fields and highlight fragments."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.adapters.search.common import FRAGMENT_CHARS, POST, PRE, align, fragment, highlights
from infra.adapters.search.elastic_query import query_string
from infra.adapters.search.sqlite_query import match_expression
from projections import search
from projections.search import Clause, IndexDoc, RemoveDoc, SearchQuery, Sort, terms, text_values
from read_api.search import (
    SearchParameterError,
    decode_cursor,
    encode_cursor,
    parse_q,
    parse_sort,
)
from schemas.events import ProjectedEvent


def event(position: int, kind: str, **payload: object) -> ProjectedEvent:
    return ProjectedEvent(
        position=position,
        stream_id=uuid.UUID(int=7),
        version=position,
        type=kind,
        timestamp=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        payload={"account_id": "acc", "source": "s", "key": "k", **payload},
    )


def test_rules_index_records_and_ignore_everything_else() -> None:
    changes = search.changes(
        [
            event(1, "Record.Created", data={"a": 1}),
            event(2, "Account.Opened"),
            event(3, "Record.Deleted"),
        ]
    )
    assert [c.position for c in changes] == [1, 3]
    created, deleted = changes[0].change, changes[1].change
    assert isinstance(created, IndexDoc)
    assert isinstance(deleted, RemoveDoc)
    assert created.doc_id == deleted.doc_id == str(uuid.UUID(int=7))
    assert created.updated_us == 1767323045678901
    assert search.latest([*changes, changes[0]]) == [changes[1]]


def test_derived_fields_are_bounded_and_never_name_customer_fields_in_a_mapping() -> None:
    data = {
        "name": "Ann\x00Lee",
        "n": 5,
        "ok": True,
        "none": None,
        "tags": ["a", "a", "b"],
        "nested": {"deep": {"x": 1.5}},
        "long": "y" * 300,
        "bad key!": "z",
        "": {"e": 1},
    }
    assert text_values(data) == [
        ("name", "Ann Lee"),
        ("n", "5"),
        ("tags", "a"),
        ("tags", "a"),
        ("tags", "b"),
        ("nested.deep.x", "1.5"),
        ("long", "y" * 300),
        ("bad key!", "z"),
        (".e", "1"),
    ]
    assert terms(data) == {
        "name": ["Ann\x00Lee"],
        "n": ["5"],
        "ok": ["true"],
        "tags": ["a", "b"],
        "nested.deep.x": ["1.5"],
        ".e": ["1"],
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("apple", [Clause("apple")]),
        ("  two   words ", [Clause("two"), Clause("words")]),
        (
            '"a  phrase" -"not this" -no',
            [
                Clause("a phrase"),
                Clause("not this", exclude=True),
                Clause("no", exclude=True),
            ],
        ),
        ("pre* mid*dle", [Clause("pre", prefix=True), Clause("mid*dle")]),
        ('unterminated "quote here', [Clause("unterminated"), Clause("quote here")]),
        ("a\\b (x) -", [Clause("a b"), Clause("(x)")]),
    ],
)
def test_q_is_parsed_into_clauses(raw: str, expected: list[Clause]) -> None:
    assert list(parse_q(raw)) == expected


@pytest.mark.parametrize("raw", ["-a -b", "* ! ?", "x" * 501, " ".join(["w"] * 17)])
def test_q_without_something_to_find_is_refused(raw: str) -> None:
    with pytest.raises(SearchParameterError) as caught:
        parse_q(raw)
    assert caught.value.details[0]["field"] == "q"


def test_engine_syntax_is_built_from_clauses_only() -> None:
    clauses = parse_q('say "hi OR bye" -NEAR(x) fo* a"b')
    assert query_string(clauses) == '"say" "hi OR bye" -"NEAR(x)" fo* "a" "b"'
    assert (
        match_expression(clauses)
        == '("say" AND "hi OR bye" AND "fo" * AND "a" AND "b") NOT ("NEAR(x)")'
    )


def test_sorts() -> None:
    assert parse_sort(None) == Sort("_score")
    assert parse_sort("-updated_at") == Sort("updated_at", True)
    assert parse_sort("data.a.b") == Sort("data", False, "a.b")
    for bad in ("name", "-_score", "data.", "data.a b", "+id"):
        with pytest.raises(SearchParameterError, match="must be one of"):
            parse_sort(bad)


def test_cursors_round_trip_and_are_bound_to_their_query() -> None:
    query = SearchQuery("acc", "s", (Clause("x"),), sort=Sort("data", False, "g"))
    cursor = encode_cursor(query, (None, "k1"))
    assert decode_cursor(cursor, query) == (None, "k1")
    other = SearchQuery("acc", "s", (Clause("y"),), sort=Sort("data", False, "g"))
    with pytest.raises(SearchParameterError, match="another query"):
        decode_cursor(cursor, other)
    scored = SearchQuery("acc", "s", (Clause("x"),))
    for bad in ("", "!!", "e30", encode_cursor(scored, ("high", "k")), "x" * 5000):
        with pytest.raises(SearchParameterError, match="cursor"):
            decode_cursor(bad, scored)
    assert decode_cursor(encode_cursor(scored, (1.25, "k")), scored) == (1.25, "k")


def test_fragments_escape_text_and_mark_matches() -> None:
    assert fragment("plain") is None
    assert fragment(f"a <b> {PRE}hit{POST} & more") == "a &lt;b&gt; <em>hit</em> &amp; more"
    long = "x" * 300 + f" {PRE}needle{POST} " + "y" * 300
    piece = fragment(long)
    assert piece is not None
    assert piece.startswith("…")
    assert piece.endswith("…")
    assert "<em>needle</em>" in piece
    assert len(piece.replace("<em>", "").replace("</em>", "")) == FRAGMENT_CHARS + 2
    marked = [("a", f"{PRE}x{POST}"), ("a", f"{PRE}y{POST}")] * 3 + [("b", "none")]
    assert highlights(marked) == {"a": ["<em>x</em>", "<em>y</em>", "<em>x</em>"]}
    values = [("p", "same"), ("q", "same"), ("r", "other")]
    assert align(values, [f"{PRE}same{POST}", f"{PRE}same{POST}"]) == [
        ("p", f"{PRE}same{POST}"),
        ("q", f"{PRE}same{POST}"),
    ]


_numbers = st.one_of(st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False))
_scalars = st.one_of(_numbers, st.booleans(), st.text(max_size=20))


@given(_numbers, _numbers)
def test_sort_keys_order_numbers_by_value(a: float, b: float) -> None:
    ka, kb = search.sort_key(a), search.sort_key(b)
    assert ka is not None
    assert kb is not None
    if a < b:
        assert ka < kb
    elif a == b:
        assert ka == kb  # 0 and -0.0, 1 and 1.0 alike


@given(st.lists(_scalars, min_size=1, max_size=12))
def test_sort_keys_put_numbers_then_booleans_then_strings(values: list[object]) -> None:
    def rank(value: object) -> tuple[int, object]:
        if isinstance(value, bool):
            return (1, value)
        if isinstance(value, int | float):
            return (0, value)
        return (2, value)

    by_key = sorted(values, key=lambda v: search.sort_key(v) or "")
    assert [rank(v) for v in by_key] == sorted(rank(v) for v in values)


def test_sort_keys_per_path_skip_long_strings_like_terms() -> None:
    data = {"a": [3, "x", 3], "b": {"c": True}, "long": "l" * 300, "bad key": 1}
    assert search.sort_keys(data) == {
        "a": [search.sort_key(3), "2x"],
        "b.c": ["11"],
    }
