"""Field paths: `a.b.c` (dotted) or JSON paths `$.a['b.c'][0]`, read and written without
mutating anything (writes copy the objects along the path).

Dotted segments are object keys. A JSON path starts with `$` and continues with `.name`,
`['name']` / `["name"]` (any key, quotes escaped with a backslash) and `[n]` (an array
index; negative counts from the end). Indexes may be read but never written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.transform.errors import Codes, StepFailure
from domain.transform.limits import Limits


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""What reading an absent path gives (distinct from a present null)."""

Segment = str | int


class PathError(ValueError):
    """The text is not a path (a validation problem, reported as an Issue)."""


@dataclass(frozen=True, slots=True)
class Path:
    text: str
    segments: tuple[Segment, ...]

    @property
    def writable(self) -> bool:
        return bool(self.segments) and all(isinstance(s, str) for s in self.segments)

    def __str__(self) -> str:
        return self.text


def parse_path(text: Any, limits: Limits, *, writable: bool) -> Path:
    if not isinstance(text, str):
        raise PathError("a field path is a string")
    if not text:
        raise PathError("a field path cannot be empty")
    if len(text) > limits.max_path_chars:
        raise PathError(f"a field path has at most {limits.max_path_chars} characters")
    if text.startswith("$"):
        segments = _json_path(text)
    else:
        parts = text.split(".")
        if any(part == "" for part in parts):
            raise PathError(
                f"{text!r}: dotted paths have no empty segments (use $['a.b'] for such keys)"
            )
        segments = tuple(parts)
    if len(segments) > limits.max_path_segments:
        raise PathError(f"a field path has at most {limits.max_path_segments} segments")
    path = Path(text, segments)
    if writable and not path.writable:
        raise PathError(
            f"{text!r}: a field to write is a path of object keys "
            "(no array index, not the record itself)"
        )
    return path


def _json_path(text: str) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    i, n = 1, len(text)
    while i < n:
        ch = text[i]
        if ch == ".":
            j = i + 1
            while j < n and text[j] not in ".[":
                j += 1
            if j == i + 1:
                raise PathError(f"{text!r}: empty name after '.' at {i}")
            segments.append(text[i + 1 : j])
            i = j
        elif ch == "[":
            if i + 1 < n and text[i + 1] in "'\"":
                quote = text[i + 1]
                j = i + 2
                name: list[str] = []
                while j < n and text[j] != quote:
                    if text[j] == "\\" and j + 1 < n:
                        j += 1
                    name.append(text[j])
                    j += 1
                if j + 1 >= n or text[j + 1] != "]":
                    raise PathError(f"{text!r}: unterminated [{quote}...{quote}] at {i}")
                segments.append("".join(name))
                i = j + 2
            else:
                close = text.find("]", i)
                number = text[i + 1 : close] if close > 0 else ""
                digits = number[1:] if number.startswith("-") else number
                if not digits or not digits.isascii() or not digits.isdigit() or len(digits) > 9:
                    raise PathError(f"{text!r}: [..] holds an array index or a quoted name at {i}")
                segments.append(int(number))
                i = close + 1
        else:
            raise PathError(f"{text!r}: expected '.' or '[' at {i}")
    return tuple(segments)


def get(value: Any, path: Path) -> Any:
    """The value at `path`, or MISSING."""
    for segment in path.segments:
        if isinstance(segment, str):
            if not isinstance(value, dict):
                return MISSING
            value = value.get(segment, MISSING)
            if value is MISSING:
                return MISSING
        else:
            if not isinstance(value, list):
                return MISSING
            index = segment + len(value) if segment < 0 else segment
            if not 0 <= index < len(value):
                return MISSING
            value = value[index]
    return value


def put(record: dict[str, Any], path: Path, value: Any) -> dict[str, Any]:
    """A copy of `record` with `value` at `path`; missing (or null) objects on the way are
    created. A non-object on the way is a PATH_CONFLICT."""
    return _put(record, path.segments, value, path)


def _put(
    obj: dict[str, Any], segments: tuple[Segment, ...], value: Any, path: Path
) -> dict[str, Any]:
    head = segments[0]
    assert isinstance(head, str)
    out = dict(obj)
    if len(segments) == 1:
        out[head] = value
        return out
    child = obj.get(head)
    if child is None:
        child = {}
    elif not isinstance(child, dict):
        raise StepFailure(
            Codes.PATH_CONFLICT,
            f"cannot write {path.text!r}: {head!r} holds a {type_name(child)}, not an object",
            path.text,
        )
    out[head] = _put(child, segments[1:], value, path)
    return out


def remove(record: dict[str, Any], path: Path) -> dict[str, Any]:
    """A copy of `record` without `path` (the record itself when the path is absent)."""
    return _remove(record, path.segments)


def _remove(obj: dict[str, Any], segments: tuple[Segment, ...]) -> dict[str, Any]:
    head = segments[0]
    assert isinstance(head, str)
    if head not in obj:
        return obj
    if len(segments) == 1:
        out = dict(obj)
        del out[head]
        return out
    child = obj[head]
    if not isinstance(child, dict):
        return obj
    changed = _remove(child, segments[1:])
    if changed is child:
        return obj
    out = dict(obj)
    out[head] = changed
    return out


def type_name(value: Any) -> str:  # noqa: PLR0911 - one per JSON type
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
