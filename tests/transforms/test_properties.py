"""Properties of the transform language, over random documents and random records:

- total: every record (JSON or not) gives Ok, Dropped or Failed; nothing raises, no internal
  error, the output is JSON within the limits, the input is left as it was;
- deterministic: the same document and record always give the same result;
- validation is total too: any JSON document compiles or raises InvalidTransformError;
- composition: for every record `a` keeps, compose(a, b) gives what b gives on a's output
  (step numbers shifted by len(a)); records `a` drops or fails on are dropped or failed the
  same way; composition is associative and the empty transform is its identity;
- flatten then nest (same separator) gives the record back when no key holds the separator.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from domain.transform import (
    Codes,
    Dropped,
    Failed,
    InvalidTransformError,
    Limits,
    Ok,
    Result,
    Transform,
    compile_transform,
    compose,
)
from domain.transform.errors import RecordError
from domain.transform.expressions import ADD_UNITS, DIFF_UNITS, FUNCTIONS, PARTS, TRUNC_UNITS
from domain.transform.values import json_problem

KEYS = ["a", "b", "c", "id", "x.y", "n"]
FIELDS = ["a", "b", "c", "a.b", "b.c", "c.a.b", "id", "n", "new"]
READ_PATHS = [*FIELDS, "$.a[0]", "$.b[-1].c", "$['x.y']", "$.a"]
TIMES = ["2026-03-04T05:06:07Z", "1999-12-31T23:59:59.5+02:00", "2026-03-04", "0001-01-01T00:00:00"]
FORMATS = ["%Y-%m-%d", "%d/%m/%Y %H:%M", "%Y%m%dT%H%M%S%z", "%a %b %d %Y"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["1", "2.5", "yes", "", " x ", *TIMES]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)
records = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), json_values, max_size=6)
not_json = st.one_of(
    st.lists(scalars, max_size=3),
    scalars,
    st.builds(lambda v: {"a": v}, st.sampled_from([float("nan"), (1, 2), 2**80, {1: 2}, b"x"])),
)


# --- random valid documents -----------------------------------------------------------------------


def _literal_arg(fn: str, index: int) -> st.SearchStrategy[Any] | None:
    table: dict[tuple[str, int], st.SearchStrategy[Any]] = {
        ("date_trunc", 1): st.sampled_from(TRUNC_UNITS),
        ("date_add", 2): st.sampled_from(ADD_UNITS),
        ("date_diff", 2): st.sampled_from(DIFF_UNITS),
        ("date_part", 1): st.sampled_from(PARTS),
        ("parse_timestamp", 1): st.sampled_from(FORMATS),
        ("format_timestamp", 1): st.sampled_from(FORMATS),
    }
    return table.get((fn, index))


expr_leaves = st.one_of(
    scalars,
    st.sampled_from(READ_PATHS).map(lambda p: {"field": p}),
    json_values.map(lambda v: {"literal": v}),
)


@st.composite
def calls(draw: st.DrawFn, inner: st.SearchStrategy[Any]) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(FUNCTIONS)))
    fn = FUNCTIONS[name]
    high = fn.max_args if fn.max_args is not None else fn.min_args + 2
    count = draw(st.integers(fn.min_args, high))
    args = []
    for i in range(count):
        literal = _literal_arg(name, i)
        args.append(draw(literal if literal is not None else inner))
    return {"op": name, "args": args}


expressions = st.recursive(expr_leaves, calls, max_leaves=12)
fields = st.sampled_from(FIELDS)


def steps() -> st.SearchStrategy[dict[str, Any]]:
    path_lists = st.lists(fields, min_size=1, max_size=4, unique=True)
    cast = st.fixed_dictionaries(
        {"field": fields, "to": st.sampled_from(["string", "int", "float", "bool", "timestamp"])},
        optional={"on_error": st.sampled_from(["fail", "null"])},
    )
    return st.one_of(
        path_lists.map(lambda p: {"select": p}),
        path_lists.map(lambda p: {"drop": p}),
        st.dictionaries(fields, fields, min_size=1, max_size=3)
        .filter(lambda m: len(set(m.values())) == len(m))
        .map(lambda m: {"rename": m}),
        cast.map(lambda c: {"cast": c}),
        st.just({"cast": {"field": "a", "to": "timestamp", "format": "%Y-%m-%d"}}),
        st.dictionaries(fields, json_values, min_size=1, max_size=3).map(lambda d: {"default": d}),
        st.builds(lambda f, e: {"compute": {"field": f, "expr": e}}, fields, expressions),
        expressions.map(lambda e: {"filter": {"expr": e}}),
        st.fixed_dictionaries(
            {}, optional={"field": fields, "separator": st.sampled_from([".", "_", "::"])}
        ).map(lambda a: {"flatten": a}),
        st.builds(
            lambda p, i: {"nest": {"prefix": p, "into": i}},
            st.sampled_from(["a", "x.", "n"]),
            fields,
        ),
        st.sampled_from([".", "_"]).map(lambda s: {"nest": {"separator": s}}),
        st.builds(
            lambda f, p: {"extract": {"field": f, "path": p}}, fields, st.sampled_from(READ_PATHS)
        ),
    )


documents = st.lists(steps(), max_size=8).map(lambda s: {"steps": s})
LIMITS = Limits(max_record_bytes=20_000, max_string_length=2_000)


def compiled(document: dict[str, Any]) -> Transform:
    return compile_transform(document, LIMITS)


def _check(result: Result) -> None:
    assert isinstance(result, Ok | Dropped | Failed)
    if isinstance(result, Ok):
        assert isinstance(result.record, dict)
        assert json_problem(result.record, LIMITS.max_record_bytes, LIMITS.max_record_depth) is None
    if isinstance(result, Failed):
        assert result.error.code != Codes.INTERNAL_ERROR, result.error


SETTINGS = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)


@SETTINGS
@given(document=documents, record=records | not_json)
def test_apply_is_total_and_leaves_its_input_alone(document: dict[str, Any], record: Any) -> None:
    transform = compiled(document)
    before = repr(record)
    _check(transform.apply(record))
    assert repr(record) == before


@SETTINGS
@given(document=documents, record=records)
def test_apply_is_deterministic(document: dict[str, Any], record: dict[str, Any]) -> None:
    first = compiled(document).apply(copy.deepcopy(record))
    again = compiled(copy.deepcopy(document))
    assert again.apply(copy.deepcopy(record)) == first
    assert again.apply(record) == first


def _spoil(document: dict[str, Any]) -> Any:
    """A valid document with its last step's arguments swapped for another step's."""
    steps = document["steps"]
    if len(steps) < 2:
        return {"steps": [*steps, {"cast": {"field": 1}}]}
    (op_a, _), (_, args_b) = next(iter(steps[-1].items())), next(iter(steps[0].items()))
    return {"steps": [*steps[:-1], {op_a: args_b}]}


@SETTINGS
@given(document=json_values | documents.map(_spoil))
def test_validation_is_total(document: Any) -> None:
    problems: list[dict[str, Any]] = []
    try:
        compiled(document)
    except InvalidTransformError as exc:
        problems = exc.details
        assert problems, "an invalid document names at least one problem"
    keys = {"step", "op", "field", "path", "message"}
    assert all(set(problem) == keys for problem in problems)


def _shifted(result: Result, by: int) -> Result:
    if isinstance(result, Dropped):
        return Dropped(result.step + by)
    if isinstance(result, Failed) and result.error.step is not None:
        e = result.error
        return Failed(
            RecordError(e.step + by if e.step is not None else None, e.field, e.code, e.message)
        )
    return result


@SETTINGS
@given(first=documents, second=documents, record=records)
def test_composition(first: dict[str, Any], second: dict[str, Any], record: dict[str, Any]) -> None:
    a, b = compiled(first), compiled(second)
    both = compose(a, b)
    assert len(both.steps) == len(a.steps) + len(b.steps)
    through_a = a.apply(record)
    combined = both.apply(record)
    if isinstance(through_a, Ok):
        assert combined == _shifted(b.apply(through_a.record), len(a.steps))
    elif isinstance(through_a, Dropped) or through_a.error.step is not None:
        assert combined == through_a
    _check(combined)


@settings(max_examples=100, deadline=None)
@given(first=documents, second=documents, third=documents, record=records)
def test_composition_is_associative_with_an_identity(
    first: dict[str, Any], second: dict[str, Any], third: dict[str, Any], record: dict[str, Any]
) -> None:
    a, b, c = compiled(first), compiled(second), compiled(third)
    left, right = compose(compose(a, b), c), compose(a, compose(b, c))
    assert left.document == right.document
    assert left.apply(record) == right.apply(record)
    identity = compiled({"steps": []})
    assert (
        compose(identity, a).apply(record) == a.apply(record) == compose(a, identity).apply(record)
    )


nested_records = st.recursive(
    scalars | st.lists(scalars, max_size=2),
    lambda inner: st.dictionaries(st.text("abcxyz_-", min_size=0, max_size=3), inner, max_size=3),
    max_leaves=15,
).filter(lambda r: isinstance(r, dict))


@SETTINGS
@given(record=nested_records, separator=st.sampled_from([".", "/", "::"]))
def test_flatten_then_nest_is_the_identity(record: dict[str, Any], separator: str) -> None:
    assume(_no_key_holds(record, separator))
    both = compiled(
        {"steps": [{"flatten": {"separator": separator}}, {"nest": {"separator": separator}}]}
    )
    assert both.apply(record) == Ok(record)


def _no_key_holds(value: Any, separator: str) -> bool:
    if isinstance(value, dict):
        return all(separator not in k and _no_key_holds(v, separator) for k, v in value.items())
    return True
