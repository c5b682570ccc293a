"""The transform language, step by step and function by function (docs/transforms.md)."""

from __future__ import annotations

from typing import Any

import pytest

from domain.transform import (
    Codes,
    Dropped,
    Failed,
    InvalidTransformError,
    Limits,
    Ok,
    Result,
    compile_transform,
    compose,
)


def run(steps: list[Any], record: Any, limits: Limits | None = None) -> Result:
    transform = compile_transform({"steps": steps}, *(limits,) if limits else ())
    return transform.apply(record)


def ok(steps: list[Any], record: Any) -> dict[str, Any]:
    result = run(steps, record)
    assert isinstance(result, Ok), result
    return result.record


def failed(steps: list[Any], record: Any) -> tuple[str, int | None, str | None]:
    result = run(steps, record)
    assert isinstance(result, Failed), result
    return result.error.code, result.error.step, result.error.field


def compute(expr: Any, record: dict[str, Any] | None = None) -> Any:
    return ok([{"compute": {"field": "out", "expr": expr}}], record or {})["out"]


def op(name: str, *args: Any) -> dict[str, Any]:
    return {"op": name, "args": list(args)}


def f(path: str) -> dict[str, str]:
    return {"field": path}


def invalid(document: Any) -> list[dict[str, Any]]:
    with pytest.raises(InvalidTransformError) as caught:
        compile_transform(document)
    assert caught.value.code == "INVALID_TRANSFORM"
    return caught.value.details


# --- steps -------------------------------------------------------------------------------------

ORDER = {"id": 7, "customer": {"name": "Ann", "tier": "gold"}, "lines": [{"sku": "a"}], "x": None}


def test_select_keeps_the_listed_fields_in_order_nested_paths_nested() -> None:
    assert ok([{"select": ["customer.name", "id", "missing"]}], ORDER) == {
        "customer": {"name": "Ann"},
        "id": 7,
    }
    assert ok([{"select": ["$['customer'].tier"]}], ORDER) == {"customer": {"tier": "gold"}}


def test_rename_moves_values_at_once_so_swaps_work() -> None:
    assert ok([{"rename": {"customer.name": "name", "id": "order_id"}}], ORDER) == {
        "customer": {"tier": "gold"},
        "lines": [{"sku": "a"}],
        "x": None,
        "name": "Ann",
        "order_id": 7,
    }
    assert ok([{"rename": {"a": "b", "b": "a"}}], {"a": 1, "b": 2}) == {"b": 1, "a": 2}
    assert ok([{"rename": {"nope": "b"}}], {"a": 1}) == {"a": 1}


def test_drop_removes_fields_and_ignores_missing_ones() -> None:
    assert ok([{"drop": ["customer.tier", "lines", "nope.deeper"]}], ORDER) == {
        "id": 7,
        "customer": {"name": "Ann"},
        "x": None,
    }


@pytest.mark.parametrize(
    ("value", "to", "expected"),
    [
        ("42", "int", 42),
        (" -7 ", "int", -7),
        ("3.9", "int", 3),
        (-3.9, "int", -3),
        (True, "int", 1),
        ("1e3", "float", 1000.0),
        (2, "float", 2.0),
        ("Yes", "bool", True),
        ("off", "bool", False),
        (0, "bool", False),
        (12, "string", "12"),
        (1.5, "string", "1.5"),
        (False, "string", "false"),
        ({"a": [1, "x"]}, "string", '{"a":[1,"x"]}'),
        (None, "int", None),
        ("2026-03-04T05:06:07+02:00", "timestamp", "2026-03-04T03:06:07Z"),
        ("2026-03-04", "timestamp", "2026-03-04T00:00:00Z"),
        ("2026-03-04 05:06:07.25", "timestamp", "2026-03-04T05:06:07.250000Z"),
        (0, "timestamp", "1970-01-01T00:00:00Z"),
        (1.5, "timestamp", "1970-01-01T00:00:01.500000Z"),
    ],
)
def test_cast(value: Any, to: str, expected: Any) -> None:
    out = ok([{"cast": {"field": "v", "to": to}}], {"v": value})
    assert out == {"v": expected}
    assert type(out["v"]) is type(expected)


def test_cast_with_formats_and_units() -> None:
    step = {"cast": {"field": "t", "to": "timestamp", "format": "%d/%m/%Y %H:%M"}}
    assert ok([step], {"t": "04/03/2026 05:06"}) == {"t": "2026-03-04T05:06:00Z"}
    with_offset = {"cast": {"field": "t", "to": "timestamp", "format": "%Y%m%d %H%M %z"}}
    assert ok([with_offset], {"t": "20260304 0506 +0100"}) == {"t": "2026-03-04T04:06:00Z"}
    millis = {"cast": {"field": "t", "to": "timestamp", "unit": "ms"}}
    assert ok([millis], {"t": 1_700_000_000_123}) == {"t": "2023-11-14T22:13:20.123000Z"}
    formatted = {"cast": {"field": "t", "to": "string", "format": "%Y/%m/%d"}}
    assert ok([formatted], {"t": "2026-03-04T23:59:59-05:00"}) == {"t": "2026/03/05"}


@pytest.mark.parametrize(
    ("value", "to"),
    [
        ("abc", "int"),
        ("٣", "int"),  # not ASCII digits
        ("99999999999999999999", "int"),
        (1e300, "int"),
        ("nan", "float"),
        ("inf", "float"),
        ("maybe", "bool"),
        ("yesterday", "timestamp"),
        (True, "timestamp"),
        (10**15, "timestamp"),
        ([1], "int"),
    ],
)
def test_cast_failures_are_per_record_errors_naming_the_field(value: Any, to: str) -> None:
    assert failed([{"cast": {"field": "a.v", "to": to}}], {"a": {"v": value}}) == (
        Codes.CAST_FAILED,
        0,
        "a.v",
    )


def test_cast_on_error_null_and_missing_fields() -> None:
    step = {"cast": {"field": "v", "to": "int", "on_error": "null"}}
    assert ok([step], {"v": "x"}) == {"v": None}
    assert ok([step], {"w": 1}) == {"w": 1}


def test_default_fills_missing_and_null_fields_only() -> None:
    step = {"default": {"a": 0, "b.c": {"k": [1]}, "d": "x"}}
    assert ok([step], {"a": None, "d": "kept"}) == {"a": 0, "d": "kept", "b": {"c": {"k": [1]}}}
    transform = compile_transform({"steps": [step]})
    first = transform.apply({})
    assert isinstance(first, Ok)
    first.record["b"]["c"]["k"].append(2)  # outputs never alias the document
    second = transform.apply({})
    assert isinstance(second, Ok)
    assert second.record["b"] == {"c": {"k": [1]}}


def test_compute_writes_a_field_from_an_expression() -> None:
    step = {"compute": {"field": "totals.gross", "expr": op("mul", f("net"), 1.2)}}
    assert ok([step], {"net": 10}) == {"net": 10, "totals": {"gross": 12.0}}


def test_filter_drops_records_whose_expression_is_falsy() -> None:
    steps = [{"filter": {"expr": op("ge", f("qty"), 1)}}, {"drop": ["qty"]}]
    assert run(steps, {"qty": 0}) == Dropped(0)
    assert run(steps, {}) == Dropped(0)  # null compares to null: falsy
    assert run(steps, {"qty": 3}) == Ok({})
    for falsy in (None, False, 0, 0.0, "", [], {}):
        assert run([{"filter": {"expr": f("v")}}], {"v": falsy}) == Dropped(0)
    for truthy in (True, 1, -0.5, "0", [0], {"a": None}):
        assert isinstance(run([{"filter": {"expr": f("v")}}], {"v": truthy}), Ok)


def test_flatten_the_whole_record_or_one_field() -> None:
    record = {"a": {"b": {"c": 1}, "d": []}, "e": {}, "f": 2}
    assert ok([{"flatten": {}}], record) == {"a.b.c": 1, "a.d": [], "e": {}, "f": 2}
    assert ok([{"flatten": {"separator": "_"}}], record)["a_b_c"] == 1
    assert ok([{"flatten": {"field": "a"}}], record) == {"a.b.c": 1, "a.d": [], "e": {}, "f": 2}
    nested = {"x": {"a": {"b": 1}, "keep": 0}}
    assert ok([{"flatten": {"field": "x.a"}}], nested) == {"x": {"a.b": 1, "keep": 0}}
    assert ok([{"flatten": {"field": "f"}}], record) == record  # not an object: unchanged


def test_flatten_conflicts_are_errors() -> None:
    assert failed([{"flatten": {}}], {"a.b": 1, "a": {"b": 2}})[0] == Codes.KEY_CONFLICT
    assert failed([{"flatten": {"field": "a"}}], {"a.b": 1, "a": {"b": 2}})[0] == Codes.KEY_CONFLICT


def test_nest_by_prefix_and_by_separator() -> None:
    step = {"nest": {"prefix": "addr_", "into": "address"}}
    record = {"addr_city": "Oslo", "name": "n", "addr_zip": "1", "address": {"country": "NO"}}
    assert ok([step], record) == {
        "name": "n",
        "address": {"country": "NO", "city": "Oslo", "zip": "1"},
    }
    assert ok([{"nest": {"separator": "."}}], {"a.b": 1, "a.c.d": 2, "e": 3}) == {
        "a": {"b": 1, "c": {"d": 2}},
        "e": 3,
    }
    assert ok([{"nest": {"separator": "."}}], {"a": {"x": 1}, "a.y": 2}) == {"a": {"x": 1, "y": 2}}
    assert failed([{"nest": {"separator": "."}}], {"a": 1, "a.b": 2})[0] == Codes.KEY_CONFLICT
    assert failed([step], {"addr_x": 1, "address": "street"})[0] == Codes.PATH_CONFLICT


def test_extract_reads_json_paths() -> None:
    record = {"items": [{"sku": "a", "tags": ["x", "y"]}, {"sku": "b"}], "odd key": {"k.v": 5}}
    steps = [
        {"extract": {"field": "first", "path": "$.items[0].sku"}},
        {"extract": {"field": "last", "path": "$.items[-1].sku"}},
        {"extract": {"field": "tag", "path": "$.items[0].tags[1]"}},
        {"extract": {"field": "odd", "path": "$['odd key'][\"k.v\"]"}},
        {"extract": {"field": "none", "path": "$.items[5].sku"}},
        {"extract": {"field": "fallback", "path": "$.nope", "default": "n/a"}},
        {"drop": ["items", "odd key"]},
    ]
    assert ok(steps, record) == {"first": "a", "last": "b", "tag": "y", "odd": 5, "fallback": "n/a"}


def test_writing_through_a_non_object_is_a_path_conflict() -> None:
    assert failed([{"compute": {"field": "a.b", "expr": 1}}], {"a": 5}) == (
        Codes.PATH_CONFLICT,
        0,
        "a.b",
    )
    assert ok([{"compute": {"field": "a.b", "expr": 1}}], {"a": None}) == {"a": {"b": 1}}


def test_steps_never_change_their_input() -> None:
    record = {"a": {"b": [1, {"c": 2}]}, "d": "x"}
    snapshot = repr(record)
    steps = [
        {"rename": {"a.b": "moved"}},
        {"compute": {"field": "moved", "expr": {"literal": []}}},
        {"flatten": {}},
        {"nest": {"separator": "."}},
        {"default": {"d": 1}},
        {"drop": ["d"]},
    ]
    assert isinstance(run(steps, record), Ok)
    assert repr(record) == snapshot


# --- expressions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (op("add", 1, 2, 3), 6),
        (op("add", 1, 0.5), 1.5),
        (op("sub", 1, 3), -2),
        (op("mul", 2, 3, 4), 24),
        (op("div", 7, 2), 3.5),
        (op("div", 6, 3), 2.0),
        (op("mod", -7, 3), 2),
        (op("neg", 2), -2),
        (op("abs", -2.5), 2.5),
        (op("round", 2.5), 3),
        (op("round", -2.5), -3),
        (op("round", 2.675, 2), 2.68),
        (op("round", 1234, -2), 1200),
        (op("floor", -1.5), -2),
        (op("ceil", 1.2), 2),
        (op("min", 3, 1, 2), 1),
        (op("max", "a", "c", "b"), "c"),
        (op("add", 1, None), None),
        (op("eq", 1, 1.0), True),
        (op("eq", True, 1), False),
        (op("eq", None, None), True),
        (op("eq", {"literal": {"a": [1]}}, {"literal": {"a": [1.0]}}), True),
        (op("ne", "1", 1), True),
        (op("lt", "a", "b"), True),
        (op("ge", 2, 2.0), True),
        (op("lt", None, 1), None),
        (op("and", 1, "x", True), True),
        (op("and", 1, 0), False),
        (op("or", None, ""), False),
        (op("or", None, "x"), True),
        (op("not", None), True),
        (op("if", op("gt", 2, 1), "yes", "no"), "yes"),
        (op("if", None, "yes", "no"), "no"),
        (op("coalesce", None, None, 3, 4), 3),
        (op("is_null", None), True),
        (op("in", "b", {"literal": ["a", "b"]}), True),
        (op("in", 1, {"literal": [True]}), False),
        (op("lookup", "DE", {"literal": {"DE": "Germany"}}, "?"), "Germany"),
        (op("lookup", "FR", {"literal": {"DE": "Germany"}}, "?"), "?"),
        (op("lookup", 1, {"literal": {"1": "one"}}), "one"),
        (op("concat", "a", 1, True, 1.5), "a1true1.5"),
        (op("concat", "a", None), None),
        (op("lower", "ÀB"), "àb"),
        (op("upper", "straße"), "STRASSE"),
        (op("trim", "  x "), "x"),
        (op("substr", "abcdef", 1, 3), "bcd"),
        (op("substr", "abcdef", -2), "ef"),
        (op("substr", "abc", 5), ""),
        (op("substr", "abcdef", -10, 2), "ab"),
        (op("len", "héllo"), 5),
        (op("len", {"literal": [1, 2]}), 2),
        (op("replace", "a-b-c", "-", "+"), "a+b+c"),
        (op("contains", "abc", "b"), True),
        (op("starts_with", "abc", "ab"), True),
        (op("ends_with", "abc", "bc"), True),
        (op("split", "a,b,,c", ","), ["a", "b", "", "c"]),
        (op("join", {"literal": ["a", 1, True]}, "-"), "a-1-true"),
        (op("to_string", 3), "3"),
        (op("to_int", "12"), 12),
        (op("to_float", "1.5"), 1.5),
        (op("to_bool", "no"), False),
    ],
)
def test_functions(expr: Any, expected: Any) -> None:
    result = compute(expr)
    assert result == expected
    assert type(result) is type(expected)


TS = "2026-03-04T05:06:07.5Z"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (op("parse_timestamp", "04.03.2026", "%d.%m.%Y"), "2026-03-04T00:00:00Z"),
        (op("parse_timestamp", "2026-03-04T05:06:07+01:00"), "2026-03-04T04:06:07Z"),
        (op("format_timestamp", TS, "%Y-%m-%d %H:%M"), "2026-03-04 05:06"),
        (op("format_timestamp", TS, "%a %d %b %Y"), "Wed 04 Mar 2026"),
        (op("date_trunc", TS, "year"), "2026-01-01T00:00:00Z"),
        (op("date_trunc", "2026-08-19T10:00:00Z", "quarter"), "2026-07-01T00:00:00Z"),
        (op("date_trunc", TS, "month"), "2026-03-01T00:00:00Z"),
        (op("date_trunc", TS, "week"), "2026-03-02T00:00:00Z"),
        (op("date_trunc", TS, "day"), "2026-03-04T00:00:00Z"),
        (op("date_trunc", TS, "hour"), "2026-03-04T05:00:00Z"),
        (op("date_trunc", TS, "minute"), "2026-03-04T05:06:00Z"),
        (op("date_trunc", TS, "second"), "2026-03-04T05:06:07Z"),
        (op("date_add", TS, 1, "days"), "2026-03-05T05:06:07.500000Z"),
        (op("date_add", "2026-01-31T00:00:00Z", 1, "months"), "2026-02-28T00:00:00Z"),
        (op("date_add", "2024-02-29T00:00:00Z", -12, "months"), "2023-02-28T00:00:00Z"),
        (op("date_add", "2024-02-29T00:00:00Z", 1, "years"), "2025-02-28T00:00:00Z"),
        (op("date_add", TS, -90, "minutes"), "2026-03-04T03:36:07.500000Z"),
        (op("date_diff", "2026-03-01T00:00:00Z", TS, "days"), 3),
        (op("date_diff", TS, "2026-03-01T00:00:00Z", "hours"), -77),
        (op("date_diff", "2026-03-01T00:00:00Z", "2026-03-01T00:00:01.5Z", "milliseconds"), 1500),
        (op("date_part", TS, "year"), 2026),
        (op("date_part", TS, "quarter"), 1),
        (op("date_part", TS, "weekday"), 3),
        (op("date_part", TS, "day_of_year"), 63),
        (op("date_part", TS, "week"), 10),
        (op("date_part", TS, "microsecond"), 500000),
        (op("date_part", "1970-01-02T00:00:00Z", "epoch"), 86400),
        (op("date_part", "1969-12-31T23:59:59.999Z", "epoch_ms"), -1),
    ],
)
def test_date_functions(expr: Any, expected: Any) -> None:
    assert compute(expr) == expected


@pytest.mark.parametrize(
    ("expr", "code"),
    [
        (op("add", "1", 2), Codes.TYPE_MISMATCH),
        (op("add", True, 2), Codes.TYPE_MISMATCH),
        (op("div", 1, 0), Codes.DIVISION_BY_ZERO),
        (op("mod", 1, 0.0), Codes.DIVISION_BY_ZERO),
        (op("mul", 2**62, 4), Codes.NUMERIC_OVERFLOW),
        (op("mul", 1e308, 10), Codes.NUMERIC_OVERFLOW),
        (op("neg", -(2**63)), Codes.NUMERIC_OVERFLOW),
        (op("floor", 1e300), Codes.NUMERIC_OVERFLOW),
        (op("round", 1.5, 99), Codes.INVALID_ARGUMENT),
        (op("lt", 1, "a"), Codes.TYPE_MISMATCH),
        (op("min", 1, "a"), Codes.TYPE_MISMATCH),
        (op("lower", 1), Codes.TYPE_MISMATCH),
        (op("substr", "abc", 0, -1), Codes.INVALID_ARGUMENT),
        (op("split", "abc", ""), Codes.INVALID_ARGUMENT),
        (op("join", {"literal": [[1]]}, ","), Codes.TYPE_MISMATCH),
        (op("concat", {"literal": [1]}), Codes.TYPE_MISMATCH),
        (op("in", 1, "abc"), Codes.TYPE_MISMATCH),
        (op("to_int", "x"), Codes.CAST_FAILED),
        (op("date_add", "2026-01-01", 1, "days"), None),  # a valid date: no error
        (op("date_add", "9999-12-31T00:00:00Z", 1, "days"), Codes.OUT_OF_RANGE),
        (op("date_add", "9999-12-31T00:00:00Z", 1, "months"), Codes.OUT_OF_RANGE),
        (op("date_part", "not a time", "year"), Codes.INVALID_TIMESTAMP),
        (op("date_part", 5, "year"), Codes.TYPE_MISMATCH),
    ],
)
def test_runtime_errors(expr: Any, code: str | None) -> None:
    result = run([{"compute": {"field": "out", "expr": expr}}], {})
    if code is None:
        assert isinstance(result, Ok)
    else:
        assert isinstance(result, Failed), result
        assert (result.error.code, result.error.step, result.error.field) == (code, 0, "out")


def test_strings_are_bounded() -> None:
    limits = Limits(max_string_length=10)
    steps = [{"compute": {"field": "s", "expr": op("concat", f("s"), f("s"))}}]
    assert isinstance(run(steps, {"s": "abcde"}, limits), Ok)
    result = run(steps, {"s": "abcdef"}, limits)
    assert isinstance(result, Failed)
    assert result.error.code == Codes.STRING_TOO_LONG
    replace = [{"compute": {"field": "s", "expr": op("replace", f("s"), "a", "aaaa")}}]
    result = run(replace, {"s": "aaaa"}, limits)
    assert isinstance(result, Failed)
    assert result.error.code == Codes.STRING_TOO_LONG


def test_records_are_bounded_going_in_and_coming_out() -> None:
    limits = Limits(max_record_bytes=100, max_record_depth=3)
    copy = [{"compute": {"field": "b", "expr": f("a")}}]
    assert isinstance(run(copy, {"a": "x" * 40}, limits), Ok)
    too_big = run(copy, {"a": "x" * 60}, limits)
    assert isinstance(too_big, Failed)
    assert (too_big.error.code, too_big.error.step) == (Codes.OUTPUT_TOO_LARGE, None)
    huge = run(copy, {"a": "x" * 200}, limits)
    assert isinstance(huge, Failed)
    assert huge.error.code == Codes.RECORD_TOO_LARGE
    deep = run(copy, {"a": {"b": {"c": {}}}}, limits)
    assert isinstance(deep, Failed)
    assert deep.error.code == Codes.RECORD_TOO_DEEP
    deeper = run([{"compute": {"field": "x.y.z", "expr": {"literal": {}}}}], {}, limits)
    assert isinstance(deeper, Failed)
    assert deeper.error.code == Codes.OUTPUT_TOO_DEEP


@pytest.mark.parametrize(
    ("record", "code"),
    [
        ([1, 2], Codes.NOT_AN_OBJECT),
        ("text", Codes.NOT_AN_OBJECT),
        (None, Codes.NOT_AN_OBJECT),
        ({"a": float("nan")}, Codes.NOT_JSON),
        ({"a": {1: 2}}, Codes.NOT_JSON),
        ({"a": (1, 2)}, Codes.NOT_JSON),
        ({"a": 2**70}, Codes.NOT_JSON),
    ],
)
def test_inputs_that_are_not_json_objects(record: Any, code: str) -> None:
    result = run([{"drop": ["a"]}], record)
    assert isinstance(result, Failed)
    assert (result.error.code, result.error.step, result.error.field) == (code, None, None)


def test_deeply_shared_structures_are_measured_cheaply() -> None:
    """A record doubling its JSON size at each step (by sharing) fails fast on size."""
    steps = [{"compute": {"field": f"k{i}", "expr": {"field": "$"}}} for i in range(40)]
    result = run(steps, {"a": "x" * 100})
    assert isinstance(result, Failed)
    assert result.error.code == Codes.OUTPUT_TOO_LARGE


# --- validation ----------------------------------------------------------------------------------


def test_validation_reports_every_problem_with_its_step_and_field() -> None:
    details = invalid(
        {
            "steps": [
                {"cast": {"field": "a", "to": "money"}},
                {"select": ["ok"]},
                {"compute": {"field": "$.x[0]", "expr": op("nope")}},
                {"bogus": 1},
                {"filter": {"expr": op("add", 1)}},
                {"rename": {"a": "c", "b": "c"}},
                {"cast": {"field": "t", "to": "int", "format": "%Y"}},
                {"compute": {"field": "d", "expr": op("date_trunc", f("t"), "fortnight")}},
                {"compute": {"field": "d", "expr": op("format_timestamp", f("t"), "%c")}},
                {"cast": {"field": "a", "to": "int", "extra": 1}},
            ]
        }
    )
    paths = [d["path"] for d in details]
    assert paths == [
        "steps[0].cast.to",
        "steps[2].compute.field",
        "steps[2].compute.expr.op",
        "steps[3]",
        "steps[4].filter.expr.args",
        "steps[5].rename.b",
        "steps[6].cast.format",
        "steps[7].compute.expr.args[1]",
        "steps[8].compute.expr.args[1]",
        "steps[9].cast.extra",
    ]
    assert details[0] == {
        "step": 0,
        "op": "cast",
        "field": "to",
        "path": "steps[0].cast.to",
        "message": "must be one of string, int, float, bool, timestamp",
    }


@pytest.mark.parametrize(
    "document",
    [
        None,
        [],
        {},
        {"steps": {}},
        {"steps": [], "extra": 1},
        {"steps": [{}]},
        {"steps": [{"select": [], "drop": []}]},
        {"steps": [{"select": []}]},
        {"steps": [{"select": ["a..b"]}]},
        {"steps": [{"select": ["$.a[x]"]}]},
        {"steps": [{"drop": ["$"]}]},
        {"steps": [{"select": ["a", "a"]}]},
        {"steps": [{"default": {"a": float("inf")}}]},
        {"steps": [{"flatten": {"separator": ""}}]},
        {"steps": [{"nest": {"prefix": "", "into": "x"}}]},
        {"steps": [{"extract": {"field": "a", "path": "$.b["}}]},
        {"steps": [{"compute": {"field": "a", "expr": [1, 2]}}]},
        {"steps": [{"compute": {"field": "a", "expr": {"op": "add", "args": 1}}}]},
        {"steps": [{"compute": {"field": "a", "expr": {"field": "b", "op": "x"}}}]},
        {"steps": [{"compute": {"field": "a", "expr": "x" * 5000}}]},
        {"steps": [{"compute": {"field": "a", "expr": 2**64}}]},
    ],
)
def test_invalid_documents(document: Any) -> None:
    assert invalid(document)


def test_limits_on_documents() -> None:
    assert invalid({"steps": [{"drop": ["a"]}] * 51})[0]["message"].endswith("at most 50 steps")
    deep: Any = 1
    for _ in range(21):
        deep = op("neg", deep)
    details = invalid({"steps": [{"compute": {"field": "a", "expr": deep}}]})
    assert "nest at most 20" in details[0]["message"]
    wide = op("add", *([1] * 300))
    assert (
        "at most 200 nodes"
        in invalid({"steps": [{"compute": {"field": "a", "expr": wide}}]})[0]["message"]
    )
    nested: Any = []
    for _ in range(100):
        nested = [nested]
    assert invalid({"steps": [{"default": {"a": nested}}]})


def test_the_document_is_kept_as_given_and_compose_concatenates() -> None:
    first = compile_transform({"steps": [{"rename": {"a": "b"}}]})
    second = compile_transform({"steps": [{"cast": {"field": "b", "to": "int"}}]})
    both = compose(first, second)
    assert both.document == {
        "steps": [{"rename": {"a": "b"}}, {"cast": {"field": "b", "to": "int"}}]
    }
    assert both.apply({"a": "5"}) == Ok({"b": 5})
    failure = both.apply({"a": "x"})
    assert isinstance(failure, Failed)
    assert failure.error.step == 1  # numbered in the composed transform
    with pytest.raises(InvalidTransformError):
        compose(*[compile_transform({"steps": [{"drop": ["a"]}] * 30})] * 2)
