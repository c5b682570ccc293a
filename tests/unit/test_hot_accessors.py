"""Which data fields the next analytics snapshot holds as columns (infra/adapters/clickhouse/
hot.py), and how its columns are named."""

from __future__ import annotations

import pytest

from infra.adapters.clickhouse.hot import (
    HotAccessors,
    accessor_of,
    column_name,
    column_type,
    select_list,
)
from read_api.querylang import Accessor

STATUS = Accessor(("status",), "string")
AMOUNT = Accessor(("order", "amount"), "number")
COUNTRY = Accessor(("country",), "json")


def test_fields_read_often_enough_and_lately_are_hot_most_read_first() -> None:
    hot = HotAccessors(window=60, min_uses=2, max_columns=2, since=-100)
    hot.note([STATUS, AMOUNT, STATUS], now=0)  # one query reading status twice: one use
    assert hot.current(now=1) == []
    hot.note([STATUS, AMOUNT], now=10)
    hot.note([STATUS, COUNTRY], now=20)
    hot.note([COUNTRY], now=30)
    assert hot.current(now=31) == [STATUS, COUNTRY]  # 3, then 2 and 2 (ties by form): two
    assert hot.current(now=75) == [COUNTRY]  # uses older than the window are forgotten
    assert hot.current(now=200) == []


def test_a_query_without_data_fields_counts_as_served() -> None:
    hot = HotAccessors(window=60, since=0)
    assert not hot.queried(now=1)
    hot.note([], now=2)
    assert hot.queried(now=62)
    assert not hot.queried(now=63)


def test_many_uses_keep_a_bounded_memory() -> None:
    hot = HotAccessors(min_uses=2, since=0)
    for moment in range(10_000):
        hot.note([STATUS], now=moment)
    assert len(hot._uses[STATUS]) <= 4 * 2 + 64
    assert hot.current(now=10_000) == [STATUS]


@pytest.mark.parametrize("accessor", [STATUS, AMOUNT, COUNTRY, Accessor(("a_b", "c"), "has")])
def test_a_column_name_says_which_accessor_it_holds(accessor: Accessor) -> None:
    assert accessor_of(column_name(accessor)) == accessor


@pytest.mark.parametrize(
    "name", ["id", "fields", "hot/", "hot/string", "hot/sql/x", "hot/string/a`b", "hot/json//x"]
)
def test_other_columns_are_no_accessor(name: str) -> None:
    assert accessor_of(name) is None


def test_a_column_is_computed_by_the_compilers_expression_with_bound_names() -> None:
    names, exprs, parameters = select_list([AMOUNT, Accessor(("k",), "has")])
    assert names == ["hot/number/order/amount", "hot/has/k"]
    assert exprs[0].startswith("coalesce(toFloat64(fields.{h0_0:Identifier}.{h0_1:Identifier}")
    assert exprs[1] == "(isNotNull(fields.{h1_0:Identifier}) OR JSONHas(data, {h1_1:String}))"
    assert parameters == {"h0_0": "order", "h0_1": "amount", "h1_0": "k", "h1_1": "k"}
    with pytest.raises(ValueError, match="segment"):
        select_list([Accessor(("x`) DROP",), "string")])


@pytest.mark.parametrize(
    ("expression_type", "distinct", "column"),
    [
        ("Nullable(String)", 7, "LowCardinality(Nullable(String))"),
        ("String", 9_999, "LowCardinality(String)"),
        ("Nullable(String)", 10_000, "Nullable(String)"),  # many values: a plain string
        ("Nullable(Float64)", 3, "Nullable(Float64)"),
        ("UInt8", 2, "UInt8"),
    ],
)
def test_strings_with_few_values_are_low_cardinality(
    expression_type: str, distinct: int, column: str
) -> None:
    assert column_type(expression_type, distinct) == column


def test_a_new_process_keeps_the_latest_snapshots_fields_for_a_window() -> None:
    hot = HotAccessors(window=60, min_uses=1, max_columns=3, since=0)
    held = [COUNTRY, AMOUNT, Accessor(("z",), "bool")]
    hot.note([STATUS], now=1)
    assert hot.current(now=2, held=held) == [STATUS, Accessor(("z",), "bool"), COUNTRY]
    hot.note([STATUS], now=50)
    assert hot.current(now=61, held=held) == [STATUS]  # watched a whole window: its own choice
