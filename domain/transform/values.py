"""JSON values as transforms see them: size, truth, equality, casts and timestamps.

Everything here is deterministic: no wall clock, no locale-dependent parsing beyond the
C-locale month and day names of `%b`/`%a`, no time-zone database (offsets only).
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from domain.transform.errors import Codes, StepFailure
from domain.transform.limits import INT_MAX, INT_MIN, Limits
from domain.transform.paths import type_name

CAST_TYPES = ("string", "int", "float", "bool", "timestamp")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1}
_INT_TEXT = re.compile(r"[+-]?[0-9]{1,20}", re.ASCII)
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?", re.ASCII)
_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off"})
FORMAT_DIRECTIVES = frozenset("aAbBdfGHIjmMpSuVyYz%")
_ROUNDING = Context(prec=400, rounding=ROUND_HALF_UP)


# --- shape ------------------------------------------------------------------------------------


def json_problem(  # noqa: PLR0911, PLR0912 - one branch per JSON type
    value: Any, max_bytes: int, max_depth: int
) -> tuple[str, str] | None:
    """Why `value` is not a JSON value within the bounds: ("size"|"depth"|"type", message),
    or None. Iterative and stops early, so any input, however large or shared, is cheap.
    Size is that of its compact JSON (string escapes not counted)."""
    size = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                return "depth", f"nested deeper than {max_depth} levels"
            size += 1 + max(len(item), 1)
            for key, child in item.items():
                if not isinstance(key, str):
                    return "type", f"object keys must be strings, got {type(key).__name__}"
                size += _text_size(key) + 1
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > max_depth:
                return "depth", f"nested deeper than {max_depth} levels"
            size += 1 + max(len(item), 1)
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            size += _text_size(item)
        elif item is None or isinstance(item, bool):
            size += 4 if item is not False else 5
        elif isinstance(item, int):
            if not INT_MIN <= item <= 2**64 - 1:
                return "type", "integers must fit in 64 bits"
            size += len(str(item))
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "type", "numbers must be finite"
            size += len(repr(item))
        else:
            return "type", f"{type(item).__name__} is not a JSON value"
        if size > max_bytes:
            return "size", f"larger than {max_bytes} bytes as JSON"
    return None


def _text_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass")) + 2


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def truthy(value: Any) -> bool:
    """null, false, 0, "", [] and {} are false; everything else is true."""
    if value is None or value is False:
        return False
    if value is True:
        return True
    if is_number(value):
        return bool(value != 0)
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return True


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: 1 == 1.0, but true != 1 and "1" != 1. Iterative, so any
    nesting is fine."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if isinstance(x, dict) and isinstance(y, dict):
            if x.keys() != y.keys():
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif not _scalar_equal(x, y):
            return False
    return True


def _scalar_equal(x: Any, y: Any) -> bool:
    if isinstance(x, bool) or isinstance(y, bool):
        return isinstance(x, bool) and isinstance(y, bool) and x is y
    if is_number(x) and is_number(y):
        return bool(x == y)
    if isinstance(x, str) and isinstance(y, str):
        return x == y
    return x is None and y is None


# --- numbers ----------------------------------------------------------------------------------


def checked_int(value: int) -> int:
    if not INT_MIN <= value <= INT_MAX:
        raise StepFailure(Codes.NUMERIC_OVERFLOW, "the result does not fit in a 64-bit integer")
    return value


def checked_float(value: float) -> float:
    if not math.isfinite(value):
        raise StepFailure(Codes.NUMERIC_OVERFLOW, "the result is not a finite number")
    return value


def checked_number(value: int | float) -> int | float:
    return checked_int(value) if isinstance(value, int) else checked_float(value)


def round_half_up(value: int | float, digits: int) -> int | float:
    """Half away from zero, on the number's shortest decimal form (2.675 -> 2.68)."""
    exact = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    try:
        rounded = exact.quantize(Decimal(1).scaleb(-digits, _ROUNDING), context=_ROUNDING)
    except InvalidOperation:
        raise StepFailure(Codes.NUMERIC_OVERFLOW, "cannot round this number") from None
    if digits <= 0:
        return checked_int(int(rounded))
    return checked_float(float(rounded))


# --- strings ----------------------------------------------------------------------------------


def checked_string(value: str, limits: Limits) -> str:
    if len(value) > limits.max_string_length:
        raise StepFailure(
            Codes.STRING_TOO_LONG, f"a string would exceed {limits.max_string_length} characters"
        )
    return value


def to_text(value: Any, limits: Limits) -> str:
    """How a scalar reads as text: numbers as in JSON, true/false, objects and arrays as
    compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    problem = json_problem(value, limits.max_string_length, limits.max_record_depth)
    if problem is not None:
        raise StepFailure(Codes.STRING_TOO_LONG, f"cannot write this value as text: {problem[1]}")
    return _compact_json(value)


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


# --- casts ------------------------------------------------------------------------------------


def _cast_failed(value: Any, to: str, why: str = "") -> StepFailure:
    shown = (
        repr(value) if not isinstance(value, str) or len(value) <= 40 else repr(value[:40]) + "..."
    )
    return StepFailure(
        Codes.CAST_FAILED,
        f"cannot cast {type_name(value)} {shown} to {to}{': ' + why if why else ''}",
    )


def cast(  # noqa: PLR0911 - one return per target type
    value: Any, to: str, limits: Limits, fmt: str | None = None, unit: str = "s"
) -> Any:
    """`value` as type `to`; null stays null. Raises StepFailure(CAST_FAILED)."""
    if value is None:
        return None
    if to == "string":
        if fmt is not None:
            return format_timestamp(to_timestamp(value, limits, None, unit), fmt)
        return checked_string(to_text(value, limits), limits)
    if to == "int":
        return to_int(value)
    if to == "float":
        return to_float(value)
    if to == "bool":
        return to_bool(value)
    if to == "timestamp":
        return canonical(to_timestamp(value, limits, fmt, unit))
    raise AssertionError(f"unknown cast type {to}")


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise _cast_failed(value, "int", "out of the 64-bit range")
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or not INT_MIN <= value <= INT_MAX:
            raise _cast_failed(value, "int", "out of the 64-bit range")
        return int(value)  # toward zero
    if isinstance(value, str):
        text = value.strip()
        if _INT_TEXT.fullmatch(text):
            number = int(text)
            if INT_MIN <= number <= INT_MAX:
                return number
            raise _cast_failed(value, "int", "out of the 64-bit range")
        if len(text) <= 400 and _FLOAT_TEXT.fullmatch(text):
            return to_int(float(text))
    raise _cast_failed(value, "int")


def to_float(value: Any) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int):
        return float(value) if abs(value) < 2**1023 else math.inf
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _cast_failed(value, "float", "not a finite number")
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) <= 400 and _FLOAT_TEXT.fullmatch(text):
            number = float(text)
            if math.isfinite(number):
                return number
            raise _cast_failed(value, "float", "out of range")
    raise _cast_failed(value, "float")


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if is_number(value):
        return bool(value != 0)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _cast_failed(value, "bool", "strings must be true/false, yes/no, on/off, 1/0, t/f, y/n")


# --- timestamps ---------------------------------------------------------------------------------


def format_problem(fmt: Any, limits: Limits) -> str | None:
    """Why `fmt` is not an allowed timestamp format, or None."""
    if not isinstance(fmt, str) or not fmt:
        return "a format is a non-empty string"
    if len(fmt) > limits.max_format_chars:
        return f"a format has at most {limits.max_format_chars} characters"
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            if i + 1 >= len(fmt) or fmt[i + 1] not in FORMAT_DIRECTIVES:
                allowed = " ".join("%" + d for d in sorted(FORMAT_DIRECTIVES))
                return f"unsupported directive at {i}; allowed: {allowed}"
            i += 2
        else:
            i += 1
    return None


def canonical(moment: datetime) -> str:
    """ISO-8601 in UTC with a Z: 2026-03-04T05:06:07Z, or ...07.123456Z."""
    m = moment.astimezone(UTC) if moment.utcoffset() else moment.replace(tzinfo=UTC)
    base = f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    return f"{base}.{m.microsecond:06d}Z" if m.microsecond else f"{base}Z"


def parse_iso(value: Any) -> datetime:
    """A timestamp value: an ISO-8601 string (no offset means UTC), in UTC."""
    if not isinstance(value, str):
        raise StepFailure(
            Codes.TYPE_MISMATCH, f"a timestamp is an ISO-8601 string, got {type_name(value)}"
        )
    if len(value) > 64:
        raise StepFailure(Codes.INVALID_TIMESTAMP, "not an ISO-8601 timestamp (too long)")
    try:
        moment = datetime.fromisoformat(value.strip())
        return _utc(moment)
    except (ValueError, OverflowError):
        raise StepFailure(
            Codes.INVALID_TIMESTAMP, f"{value[:64]!r} is not an ISO-8601 timestamp"
        ) from None


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def to_timestamp(value: Any, limits: Limits, fmt: str | None = None, unit: str = "s") -> datetime:
    """Strings by `fmt` (strptime directives) or as ISO-8601; numbers as time since the
    Unix epoch in `unit` (s, ms, us). A time without an offset is UTC."""
    try:
        if isinstance(value, str):
            if fmt is None:
                return parse_iso(value)
            if len(value) > 200:
                raise _cast_failed(value, "timestamp", "too long")
            return _utc(datetime.strptime(value.strip(), fmt))  # naive means UTC: _utc
        if is_number(value):
            if isinstance(value, float) and not math.isfinite(value):
                raise _cast_failed(value, "timestamp", "not a finite number")
            micros = value * EPOCH_UNITS[unit]
            return EPOCH + timedelta(microseconds=micros)
    except StepFailure as failure:
        why = "" if failure.code == Codes.TYPE_MISMATCH else "not ISO-8601"
        raise _cast_failed(value, "timestamp", why) from None
    except (ValueError, OverflowError) as exc:
        raise _cast_failed(value, "timestamp", str(exc)[:100]) from None
    raise _cast_failed(value, "timestamp")


def format_timestamp(moment: datetime, fmt: str) -> str:
    try:
        return moment.strftime(fmt)
    except (ValueError, OverflowError) as exc:
        raise StepFailure(Codes.OUT_OF_RANGE, f"cannot format this timestamp: {exc}") from None
