"""Expressions: a small JSON AST evaluated without eval/exec, over a whitelist of functions.

    1, "text", true, null               literals (strings are always literal text)
    {"literal": <any JSON value>}       a literal array or object (or any value)
    {"field": "a.b"} / {"field": "$.items[0].sku"}   a field of the record (absent: null)
    {"op": "add", "args": [<expr>, ...]} a call of a function of the table below

Depth and size are bounded when compiling; evaluation visits every node at most once, so
it always ends. Functions return null when an argument is null, except the ones marked
null-aware (coalesce, if, and, or, not, is_null, eq, ne, in, lookup).
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from domain.transform import values as v
from domain.transform.errors import Codes, Issue, StepFailure
from domain.transform.limits import Limits
from domain.transform.paths import MISSING, Path, PathError, get, parse_path, type_name


@dataclass(frozen=True, slots=True)
class Env:
    record: dict[str, Any]
    limits: Limits


class Node(Protocol):
    def eval(self, env: Env) -> Any: ...


@dataclass(frozen=True, slots=True)
class Lit:
    value: Any

    def eval(self, env: Env) -> Any:
        if isinstance(self.value, dict | list):
            return _copy(self.value)  # outputs never alias the compiled transform
        return self.value


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(x) for k, x in value.items()}
    if isinstance(value, list):
        return [_copy(x) for x in value]
    return value


@dataclass(frozen=True, slots=True)
class Field:
    path: Path

    def eval(self, env: Env) -> Any:
        found = get(env.record, self.path)
        return None if found is MISSING else found


@dataclass(frozen=True, slots=True)
class Call:
    fn: Fn
    args: tuple[Node, ...]

    def eval(self, env: Env) -> Any:
        return self.fn.run(self.args, env)


Strict = Callable[[list[Any], Limits], Any]
Lazy = Callable[[Sequence[Node], Env], Any]
Validator = Callable[[Any, Limits], str | None]


@dataclass(frozen=True)
class Fn:
    name: str
    min_args: int
    max_args: int | None
    strict: Strict | None = None
    lazy: Lazy | None = None
    literal_args: Mapping[int, Validator] = field(default_factory=dict)
    """Arguments that must be literals, with their rule (e.g. a date unit)."""
    null_aware: bool = False

    def run(self, args: Sequence[Node], env: Env) -> Any:
        if self.lazy is not None:
            return self.lazy(args, env)
        values = [arg.eval(env) for arg in args]
        if not self.null_aware and any(value is None for value in values):
            return None
        assert self.strict is not None
        return self.strict(values, env.limits)

    @property
    def arity(self) -> str:
        if self.max_args == self.min_args:
            return f"{self.min_args}"
        if self.max_args is None:
            return f"{self.min_args} or more"
        return f"{self.min_args} to {self.max_args}"


FUNCTIONS: dict[str, Fn] = {}


def _strict(
    name: str,
    min_args: int,
    max_args: int | None = -1,
    literal_args: Mapping[int, Validator] | None = None,
    *,
    null_aware: bool = False,
) -> Callable[[Strict], Strict]:
    def register(impl: Strict) -> Strict:
        FUNCTIONS[name] = Fn(
            name,
            min_args,
            min_args if max_args == -1 else max_args,
            strict=impl,
            literal_args=literal_args or {},
            null_aware=null_aware,
        )
        return impl

    return register


def _lazy(name: str, min_args: int, max_args: int | None = -1) -> Callable[[Lazy], Lazy]:
    def register(impl: Lazy) -> Lazy:
        FUNCTIONS[name] = Fn(
            name, min_args, min_args if max_args == -1 else max_args, lazy=impl, null_aware=True
        )
        return impl

    return register


# --- argument checks ------------------------------------------------------------------------


def _mismatch(fn: str, index: int, wanted: str, got: Any) -> StepFailure:
    return StepFailure(
        Codes.TYPE_MISMATCH, f"{fn}: argument {index + 1} must be {wanted}, got {type_name(got)}"
    )


def _number(fn: str, args: list[Any], index: int) -> int | float:
    value = args[index]
    if not v.is_number(value):
        raise _mismatch(fn, index, "a number", value)
    number: int | float = value
    return number


def _integer(fn: str, args: list[Any], index: int) -> int:
    value = args[index]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _mismatch(fn, index, "an integer", value)
    return value


def _string(fn: str, args: list[Any], index: int) -> str:
    value = args[index]
    if not isinstance(value, str):
        raise _mismatch(fn, index, "a string", value)
    return value


def _scalar_text(fn: str, args: list[Any], index: int, limits: Limits) -> str:
    value = args[index]
    if isinstance(value, dict | list):
        raise _mismatch(fn, index, "a string, number or boolean", value)
    return v.to_text(value, limits)


# --- arithmetic ------------------------------------------------------------------------------


@_strict("add", 2, None)
def _add(args: list[Any], limits: Limits) -> Any:
    total: int | float = 0
    for i in range(len(args)):
        total = total + _number("add", args, i)
    return v.checked_number(total)


@_strict("sub", 2)
def _sub(args: list[Any], limits: Limits) -> Any:
    return v.checked_number(_number("sub", args, 0) - _number("sub", args, 1))


@_strict("mul", 2, None)
def _mul(args: list[Any], limits: Limits) -> Any:
    product: int | float = 1
    for i in range(len(args)):
        product = product * _number("mul", args, i)
        if isinstance(product, int):
            v.checked_int(product)  # checked each time: no huge intermediate integers
    return v.checked_number(product)


@_strict("div", 2)
def _div(args: list[Any], limits: Limits) -> Any:
    a, b = _number("div", args, 0), _number("div", args, 1)
    if b == 0:
        raise StepFailure(Codes.DIVISION_BY_ZERO, "div: division by zero")
    try:
        return v.checked_float(a / b)
    except OverflowError:
        raise StepFailure(Codes.NUMERIC_OVERFLOW, "div: the result is too large") from None


@_strict("mod", 2)
def _mod(args: list[Any], limits: Limits) -> Any:
    a, b = _number("mod", args, 0), _number("mod", args, 1)
    if b == 0:
        raise StepFailure(Codes.DIVISION_BY_ZERO, "mod: division by zero")
    return v.checked_number(a % b)


@_strict("neg", 1)
def _neg(args: list[Any], limits: Limits) -> Any:
    return v.checked_number(-_number("neg", args, 0))


@_strict("abs", 1)
def _abs(args: list[Any], limits: Limits) -> Any:
    return v.checked_number(abs(_number("abs", args, 0)))


@_strict("round", 1, 2)
def _round(args: list[Any], limits: Limits) -> Any:
    number = _number("round", args, 0)
    digits = _integer("round", args, 1) if len(args) > 1 else 0
    if not -15 <= digits <= 15:
        raise StepFailure(Codes.INVALID_ARGUMENT, "round: digits must be between -15 and 15")
    return v.round_half_up(number, digits)


@_strict("floor", 1)
def _floor(args: list[Any], limits: Limits) -> Any:
    return v.checked_int(math.floor(_number("floor", args, 0)))


@_strict("ceil", 1)
def _ceil(args: list[Any], limits: Limits) -> Any:
    return v.checked_int(math.ceil(_number("ceil", args, 0)))


def _ordered(fn: str, args: list[Any]) -> list[Any]:
    """Arguments that can be ordered together: all numbers or all strings."""
    for i, arg in enumerate(args):
        if not (v.is_number(arg) or isinstance(arg, str)):
            raise _mismatch(fn, i, "a number or a string", arg)
    if all(v.is_number(a) for a in args) or all(isinstance(a, str) for a in args):
        return args
    raise StepFailure(
        Codes.TYPE_MISMATCH, f"{fn}: compares numbers with numbers, strings with strings"
    )


@_strict("min", 1, None)
def _min(args: list[Any], limits: Limits) -> Any:
    return min(_ordered("min", args))


@_strict("max", 1, None)
def _max(args: list[Any], limits: Limits) -> Any:
    return max(_ordered("max", args))


# --- comparison and logic -------------------------------------------------------------------


@_strict("eq", 2, null_aware=True)
def _eq(args: list[Any], limits: Limits) -> Any:
    return v.json_equal(args[0], args[1])


@_strict("ne", 2, null_aware=True)
def _ne(args: list[Any], limits: Limits) -> Any:
    return not v.json_equal(args[0], args[1])


def _comparison(name: str, test: Callable[[Any, Any], bool]) -> None:
    def compare(args: list[Any], limits: Limits) -> Any:
        a, b = _ordered(name, args)
        return test(a, b)

    _strict(name, 2)(compare)


_comparison("lt", lambda a, b: a < b)
_comparison("le", lambda a, b: a <= b)
_comparison("gt", lambda a, b: a > b)
_comparison("ge", lambda a, b: a >= b)


@_lazy("and", 1, None)
def _and(args: Sequence[Node], env: Env) -> Any:
    return all(v.truthy(arg.eval(env)) for arg in args)


@_lazy("or", 1, None)
def _or(args: Sequence[Node], env: Env) -> Any:
    return any(v.truthy(arg.eval(env)) for arg in args)


@_strict("not", 1, null_aware=True)
def _not(args: list[Any], limits: Limits) -> Any:
    return not v.truthy(args[0])


@_lazy("if", 3)
def _if(args: Sequence[Node], env: Env) -> Any:
    return args[1].eval(env) if v.truthy(args[0].eval(env)) else args[2].eval(env)


@_lazy("coalesce", 1, None)
def _coalesce(args: Sequence[Node], env: Env) -> Any:
    for arg in args:
        value = arg.eval(env)
        if value is not None:
            return value
    return None


@_strict("is_null", 1, null_aware=True)
def _is_null(args: list[Any], limits: Limits) -> Any:
    return args[0] is None


@_strict("in", 2, null_aware=True)
def _in(args: list[Any], limits: Limits) -> Any:
    needle, haystack = args
    if haystack is None:
        return None
    if not isinstance(haystack, list):
        raise _mismatch("in", 1, "an array", haystack)
    return any(v.json_equal(needle, item) for item in haystack)


@_strict("lookup", 2, 3, null_aware=True)
def _lookup(args: list[Any], limits: Limits) -> Any:
    key, table = args[0], args[1]
    default = args[2] if len(args) > 2 else None
    if not isinstance(table, dict):
        raise _mismatch("lookup", 1, "an object", table)
    if key is None:
        return default
    if isinstance(key, dict | list):
        raise _mismatch("lookup", 0, "a string, number or boolean", key)
    return table.get(v.to_text(key, limits), default)


# --- strings ---------------------------------------------------------------------------------


@_strict("concat", 1, None)
def _concat(args: list[Any], limits: Limits) -> Any:
    parts = [_scalar_text("concat", args, i, limits) for i in range(len(args))]
    if sum(len(p) for p in parts) > limits.max_string_length:
        v.checked_string("x" * (limits.max_string_length + 1), limits)
    return "".join(parts)


@_strict("lower", 1)
def _lower(args: list[Any], limits: Limits) -> Any:
    return v.checked_string(_string("lower", args, 0).lower(), limits)


@_strict("upper", 1)
def _upper(args: list[Any], limits: Limits) -> Any:
    return v.checked_string(_string("upper", args, 0).upper(), limits)


@_strict("trim", 1)
def _trim(args: list[Any], limits: Limits) -> Any:
    return _string("trim", args, 0).strip()


@_strict("substr", 2, 3)
def _substr(args: list[Any], limits: Limits) -> Any:
    text = _string("substr", args, 0)
    start = _integer("substr", args, 1)
    length = _integer("substr", args, 2) if len(args) > 2 else None
    if length is not None and length < 0:
        raise StepFailure(Codes.INVALID_ARGUMENT, "substr: length must not be negative")
    n = len(text)
    begin = max(n + start, 0) if start < 0 else min(start, n)
    end = n if length is None else min(begin + length, n)
    return text[begin:end]


@_strict("len", 1)
def _len(args: list[Any], limits: Limits) -> Any:
    value = args[0]
    if not isinstance(value, str | list | dict):
        raise _mismatch("len", 0, "a string, array or object", value)
    return len(value)


@_strict("replace", 3)
def _replace(args: list[Any], limits: Limits) -> Any:
    text, old, new = (_string("replace", args, i) for i in range(3))
    if not old:
        raise StepFailure(Codes.INVALID_ARGUMENT, "replace: the text to replace cannot be empty")
    growth = text.count(old) * (len(new) - len(old))
    if len(text) + growth > limits.max_string_length:
        v.checked_string("x" * (limits.max_string_length + 1), limits)
    return text.replace(old, new)


@_strict("contains", 2)
def _contains(args: list[Any], limits: Limits) -> Any:
    return _string("contains", args, 1) in _string("contains", args, 0)


@_strict("starts_with", 2)
def _starts_with(args: list[Any], limits: Limits) -> Any:
    return _string("starts_with", args, 0).startswith(_string("starts_with", args, 1))


@_strict("ends_with", 2)
def _ends_with(args: list[Any], limits: Limits) -> Any:
    return _string("ends_with", args, 0).endswith(_string("ends_with", args, 1))


@_strict("split", 2)
def _split(args: list[Any], limits: Limits) -> Any:
    text, separator = _string("split", args, 0), _string("split", args, 1)
    if not separator:
        raise StepFailure(Codes.INVALID_ARGUMENT, "split: the separator cannot be empty")
    return text.split(separator)


@_strict("join", 2)
def _join(args: list[Any], limits: Limits) -> Any:
    items, separator = args[0], _string("join", args, 1)
    if not isinstance(items, list):
        raise _mismatch("join", 0, "an array", items)
    parts = []
    for item in items:
        if isinstance(item, dict | list) or item is None:
            raise StepFailure(
                Codes.TYPE_MISMATCH, "join: array items must be strings, numbers or booleans"
            )
        parts.append(v.to_text(item, limits))
    total = sum(len(p) for p in parts) + len(separator) * max(len(parts) - 1, 0)
    if total > limits.max_string_length:
        v.checked_string("x" * (limits.max_string_length + 1), limits)
    return separator.join(parts)


# --- conversions -----------------------------------------------------------------------------


@_strict("to_string", 1)
def _to_string(args: list[Any], limits: Limits) -> Any:
    return v.cast(args[0], "string", limits)


@_strict("to_int", 1)
def _to_int(args: list[Any], limits: Limits) -> Any:
    return v.to_int(args[0])


@_strict("to_float", 1)
def _to_float(args: list[Any], limits: Limits) -> Any:
    return v.to_float(args[0])


@_strict("to_bool", 1)
def _to_bool(args: list[Any], limits: Limits) -> Any:
    return v.to_bool(args[0])


# --- dates -----------------------------------------------------------------------------------

TRUNC_UNITS = ("year", "quarter", "month", "week", "day", "hour", "minute", "second")
ADD_UNITS = ("years", "months", "weeks", "days", "hours", "minutes", "seconds", "milliseconds")
DIFF_UNITS = ("weeks", "days", "hours", "minutes", "seconds", "milliseconds")
PARTS = (
    "year",
    "quarter",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "microsecond",
    "weekday",
    "day_of_year",
    "week",
    "epoch",
    "epoch_ms",
)
_FIXED = {
    "weeks": timedelta(weeks=1),
    "days": timedelta(days=1),
    "hours": timedelta(hours=1),
    "minutes": timedelta(minutes=1),
    "seconds": timedelta(seconds=1),
    "milliseconds": timedelta(milliseconds=1),
}


def _one_of(options: Sequence[str]) -> Validator:
    def check(value: Any, limits: Limits) -> str | None:
        if value in options:
            return None
        return "must be one of " + ", ".join(options)

    return check


def _format(value: Any, limits: Limits) -> str | None:
    return v.format_problem(value, limits)


def _out_of_range(fn: str) -> StepFailure:
    return StepFailure(Codes.OUT_OF_RANGE, f"{fn}: the result is outside years 1-9999")


@_strict("parse_timestamp", 1, 2, {1: _format})
def _parse_timestamp(args: list[Any], limits: Limits) -> Any:
    value = args[0]
    fmt = args[1] if len(args) > 1 else None
    return v.canonical(v.to_timestamp(value, limits, fmt))


@_strict("format_timestamp", 2, 2, {1: _format})
def _format_timestamp(args: list[Any], limits: Limits) -> Any:
    return v.format_timestamp(v.parse_iso(args[0]), args[1])


@_strict("date_trunc", 2, 2, {1: _one_of(TRUNC_UNITS)})
def _date_trunc(args: list[Any], limits: Limits) -> Any:
    moment, unit = v.parse_iso(args[0]), args[1]
    if unit == "week":  # back to Monday 00:00 (ISO weeks)
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        try:
            return v.canonical(day - timedelta(days=day.weekday()))
        except OverflowError:
            raise _out_of_range("date_trunc") from None
    kept = TRUNC_UNITS.index(unit)  # year 0, quarter 1, month 2, (week 3), day 4, ..., second 7
    if unit == "year":
        month = 1
    elif unit == "quarter":
        month = ((moment.month - 1) // 3) * 3 + 1
    else:
        month = moment.month
    return v.canonical(
        moment.replace(
            month=month,
            day=1 if kept <= 2 else moment.day,
            hour=0 if kept <= 4 else moment.hour,
            minute=0 if kept <= 5 else moment.minute,
            second=0 if kept <= 6 else moment.second,
            microsecond=0,
        )
    )


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + (moment.month - 1) + months
    year, month0 = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise _out_of_range("date_add")
    last_day = calendar.monthrange(year, month0 + 1)[1]
    return moment.replace(year=year, month=month0 + 1, day=min(moment.day, last_day))


@_strict("date_add", 3, 3, {2: _one_of(ADD_UNITS)})
def _date_add(args: list[Any], limits: Limits) -> Any:
    moment = v.parse_iso(args[0])
    amount = _integer("date_add", args, 1)
    unit = args[2]
    if abs(amount) > 10**12:
        raise _out_of_range("date_add")
    try:
        if unit in ("years", "months"):
            return v.canonical(_add_months(moment, amount * (12 if unit == "years" else 1)))
        return v.canonical(moment + _FIXED[unit] * amount)
    except OverflowError:
        raise _out_of_range("date_add") from None


@_strict("date_diff", 3, 3, {2: _one_of(DIFF_UNITS)})
def _date_diff(args: list[Any], limits: Limits) -> Any:
    start, end = v.parse_iso(args[0]), v.parse_iso(args[1])
    span = end - start
    micros = (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds
    per = _FIXED[args[2]] // timedelta(microseconds=1)
    whole = abs(micros) // per
    return whole if micros >= 0 else -whole  # toward zero


@_strict("date_part", 2, 2, {1: _one_of(PARTS)})
def _date_part(args: list[Any], limits: Limits) -> Any:
    moment, part = v.parse_iso(args[0]), args[1]
    if part == "quarter":
        return (moment.month - 1) // 3 + 1
    if part == "weekday":
        return moment.isoweekday()
    if part == "day_of_year":
        return moment.timetuple().tm_yday
    if part == "week":
        return moment.isocalendar()[1]
    if part in ("epoch", "epoch_ms"):
        span = moment - v.EPOCH
        micros = (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds
        return micros // (1_000_000 if part == "epoch" else 1_000)
    value: int = getattr(moment, part)
    return value


# --- compiling -------------------------------------------------------------------------------

SHAPE = (
    'an expression is a literal (number, string, true, false, null), {"field": path}, '
    '{"literal": value} or {"op": name, "args": [...]}'
)


class _Budget:
    def __init__(self, limit: int) -> None:
        self.left = limit


def compile_expression(
    raw: Any, limits: Limits, issue: Callable[[str, str], Issue], where: str = "expr"
) -> tuple[Node | None, list[Issue]]:
    """The expression `raw` compiled, or None with the issues found. `issue(field, message)`
    places a problem within the step."""
    issues: list[Issue] = []
    node = _compile(raw, limits, issue, where, 1, _Budget(limits.max_expression_nodes), issues)
    return (node if not issues else None), issues


def _compile(  # noqa: PLR0911 - one return per expression form
    raw: Any,
    limits: Limits,
    issue: Callable[[str, str], Issue],
    where: str,
    depth: int,
    budget: _Budget,
    issues: list[Issue],
) -> Node | None:
    if depth > limits.max_expression_depth:
        issues.append(issue(where, f"expressions nest at most {limits.max_expression_depth} deep"))
        return None
    budget.left -= 1
    if budget.left < 0:
        if budget.left == -1:
            issues.append(
                issue(where, f"an expression has at most {limits.max_expression_nodes} nodes")
            )
        return None
    if raw is None or isinstance(raw, bool | int | float | str):
        problem = _literal_problem(raw, limits)
        if problem:
            issues.append(issue(where, problem))
            return None
        return Lit(raw)
    if not isinstance(raw, dict):
        issues.append(issue(where, SHAPE))
        return None
    keys = set(raw)
    if keys == {"literal"}:
        shape = v.json_problem(raw["literal"], limits.max_document_bytes, 16)
        if shape is not None:
            issues.append(issue(f"{where}.literal", f"not a usable literal: {shape[1]}"))
            return None
        return Lit(raw["literal"])
    if keys == {"field"}:
        try:
            return Field(parse_path(raw["field"], limits, writable=False))
        except PathError as exc:
            issues.append(issue(f"{where}.field", str(exc)))
            return None
    if keys in ({"op"}, {"op", "args"}):
        return _call(raw, limits, issue, where, depth, budget, issues)
    issues.append(issue(where, SHAPE))
    return None


def _call(
    raw: dict[str, Any],
    limits: Limits,
    issue: Callable[[str, str], Issue],
    where: str,
    depth: int,
    budget: _Budget,
    issues: list[Issue],
) -> Node | None:
    name = raw["op"]
    fn = FUNCTIONS.get(name) if isinstance(name, str) else None
    if fn is None:
        shown = name if isinstance(name, str) else type_name(name)
        issues.append(
            issue(f"{where}.op", f"unknown function {str(shown)[:40]!r}; see docs/transforms.md")
        )
        return None
    raw_args = raw.get("args", [])
    if not isinstance(raw_args, list):
        issues.append(issue(f"{where}.args", "args is an array of expressions"))
        return None
    count = len(raw_args)
    if count < fn.min_args or (fn.max_args is not None and count > fn.max_args):
        issues.append(issue(f"{where}.args", f"{name} takes {fn.arity} arguments, got {count}"))
        return None
    before = len(issues)
    args: list[Node] = []
    for i, raw_arg in enumerate(raw_args):
        at = f"{where}.args[{i}]"
        rule = fn.literal_args.get(i)
        if rule is not None:
            if not isinstance(raw_arg, str):
                issues.append(issue(at, f"{name}: argument {i + 1} must be a literal string"))
                continue
            problem = rule(raw_arg, limits)
            if problem is not None:
                issues.append(issue(at, f"{name}: argument {i + 1} {problem}"))
                continue
        node = _compile(raw_arg, limits, issue, at, depth + 1, budget, issues)
        if node is not None:
            args.append(node)
    if len(issues) > before:
        return None
    return Call(fn, tuple(args))


def _literal_problem(value: Any, limits: Limits) -> str | None:
    if isinstance(value, str) and len(value) > limits.max_literal_chars:
        return f"a string literal has at most {limits.max_literal_chars} characters"
    if isinstance(value, float) and not math.isfinite(value):
        return "numbers must be finite"
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        return "integers must fit in 64 bits"
    return None
