"""The steps of a transform: each compiles from its JSON form (reporting every problem) into
an object that turns one record into the next, or drops it (filter).

Steps never change the record they are given: they return a new one (sharing what they
did not touch), so earlier states, the input included, stay intact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from domain.transform import values as v
from domain.transform.errors import Codes, Issue, StepFailure
from domain.transform.expressions import Env, Node, compile_expression
from domain.transform.limits import Limits
from domain.transform.paths import (
    MISSING,
    Path,
    PathError,
    get,
    parse_path,
    put,
    remove,
    type_name,
)

Record = dict[str, Any]


class Step(Protocol):
    @property
    def op(self) -> str: ...

    @property
    def field(self) -> str | None:
        """The field the step works on, named in its per-record errors (None: several)."""
        ...

    def apply(self, record: Record, limits: Limits) -> Record | None:
        """The next record, or None when the record is dropped. Raises StepFailure."""
        ...


IssueAt = Callable[[str, str], Issue]


class _Checker:
    """Collects a step's problems while reading its arguments."""

    def __init__(self, index: int, op: str, limits: Limits) -> None:
        self.index = index
        self.op = op
        self.limits = limits
        self.issues: list[Issue] = []

    def issue(self, field: str, message: str) -> Issue:
        return Issue(self.index, self.op, field, message)

    def add(self, field: str, message: str) -> None:
        self.issues.append(self.issue(field, message))

    def keys(self, raw: Any, required: set[str], optional: set[str]) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            names = ", ".join(sorted(required | optional))
            self.add("", f"{self.op} takes an object with {names}")
            return None
        for name in sorted(required - set(raw)):
            self.add(name, "is required")
        for name in sorted(set(raw) - required - optional):
            known = ", ".join(sorted(required | optional))
            self.add(str(name)[:40], f"unknown key; {self.op} takes {known}")
        return raw if not self.issues else None

    def path(self, raw: Any, field: str, *, writable: bool = True) -> Path | None:
        try:
            return parse_path(raw, self.limits, writable=writable)
        except PathError as exc:
            self.add(field, str(exc))
            return None

    def paths(self, raw: Any) -> list[Path]:
        if not isinstance(raw, list) or not raw:
            self.add("", f"{self.op} takes a non-empty array of field paths")
            return []
        found: list[Path] = []
        seen: set[str] = set()
        for i, item in enumerate(raw):
            path = self.path(item, f"[{i}]")
            if path is None:
                continue
            if path.text in seen:
                self.add(f"[{i}]", f"{path.text!r} is listed twice")
            seen.add(path.text)
            found.append(path)
        return found

    def expression(self, raw: Any, field: str) -> Node | None:
        node, problems = compile_expression(raw, self.limits, self.issue, field)
        self.issues.extend(problems)
        return node

    def literal(self, raw: Any, field: str) -> Any:
        problem = v.json_problem(raw, self.limits.max_document_bytes, 16)
        if problem is not None:
            self.add(field, f"not a usable value: {problem[1]}")
        return raw


# --- select, rename, drop ----------------------------------------------------------------------


@dataclass(frozen=True)
class Select:
    paths: tuple[Path, ...]
    op: str = "select"
    field: str | None = None

    def apply(self, record: Record, limits: Limits) -> Record | None:
        out: Record = {}
        for path in self.paths:
            value = get(record, path)
            if value is not MISSING:
                out = put(out, path, value)
        return out


@dataclass(frozen=True)
class Rename:
    pairs: tuple[tuple[Path, Path], ...]
    op: str = "rename"
    field: str | None = None

    def apply(self, record: Record, limits: Limits) -> Record | None:
        moved = [(target, get(record, source)) for source, target in self.pairs]
        for source, _ in self.pairs:
            record = remove(record, source)
        for target, value in moved:
            if value is not MISSING:
                record = put(record, target, value)
        return record


@dataclass(frozen=True)
class Drop:
    paths: tuple[Path, ...]
    op: str = "drop"
    field: str | None = None

    def apply(self, record: Record, limits: Limits) -> Record | None:
        for path in self.paths:
            record = remove(record, path)
        return record


def _select(raw: Any, c: _Checker) -> Step | None:
    paths = c.paths(raw)
    return Select(tuple(paths)) if not c.issues else None


def _drop(raw: Any, c: _Checker) -> Step | None:
    paths = c.paths(raw)
    return Drop(tuple(paths)) if not c.issues else None


def _rename(raw: Any, c: _Checker) -> Step | None:
    if not isinstance(raw, dict) or not raw:
        c.add("", 'rename takes a non-empty object {"from": "to", ...}')
        return None
    pairs: list[tuple[Path, Path]] = []
    targets: set[str] = set()
    for source_text, target_text in raw.items():
        source = c.path(source_text, str(source_text)[:80])
        target = c.path(target_text, str(source_text)[:80])
        if source is None or target is None:
            continue
        if target.text in targets:
            c.add(source.text, f"{target.text!r} is the target of two renames")
        targets.add(target.text)
        pairs.append((source, target))
    return Rename(tuple(pairs)) if not c.issues else None


# --- cast, default, compute, filter ---------------------------------------------------------------


@dataclass(frozen=True)
class Cast:
    path: Path
    to: str
    format: str | None
    unit: str
    on_error: str
    op: str = "cast"

    @property
    def field(self) -> str | None:
        return self.path.text

    def apply(self, record: Record, limits: Limits) -> Record | None:
        value = get(record, self.path)
        if value is MISSING:
            return record
        try:
            cast = v.cast(value, self.to, limits, self.format, self.unit)
        except StepFailure:
            if self.on_error != "null":
                raise
            cast = None
        return put(record, self.path, cast)


def _cast(raw: Any, c: _Checker) -> Step | None:
    args = c.keys(raw, {"field", "to"}, {"format", "unit", "on_error"})
    if args is None:
        return None
    path = c.path(args["field"], "field")
    to = args["to"]
    if to not in v.CAST_TYPES:
        c.add("to", "must be one of " + ", ".join(v.CAST_TYPES))
    fmt = args.get("format")
    if fmt is not None:
        problem = v.format_problem(fmt, c.limits)
        if problem:
            c.add("format", problem)
        elif to not in ("timestamp", "string"):
            c.add("format", "applies to casts to timestamp (parsing) or string (formatting)")
    unit = args.get("unit", "s")
    if unit not in v.EPOCH_UNITS:
        c.add("unit", "must be one of " + ", ".join(v.EPOCH_UNITS))
    elif "unit" in args and to not in ("timestamp", "string"):
        c.add("unit", "applies to casts of epoch numbers to timestamp (or string with format)")
    on_error = args.get("on_error", "fail")
    if on_error not in ("fail", "null"):
        c.add("on_error", "must be fail or null")
    if c.issues or path is None:
        return None
    return Cast(path, to, fmt, unit, on_error)


@dataclass(frozen=True)
class Default:
    pairs: tuple[tuple[Path, Any], ...]
    op: str = "default"
    field: str | None = None

    def apply(self, record: Record, limits: Limits) -> Record | None:
        for path, value in self.pairs:
            if get(record, path) in (MISSING, None):
                record = put(record, path, _fresh(value))
        return record


def _fresh(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _fresh(x) for k, x in value.items()}
    if isinstance(value, list):
        return [_fresh(x) for x in value]
    return value


def _default(raw: Any, c: _Checker) -> Step | None:
    if not isinstance(raw, dict) or not raw:
        c.add("", 'default takes a non-empty object {"field": value, ...}')
        return None
    pairs = []
    for text, value in raw.items():
        path = c.path(text, str(text)[:80])
        c.literal(value, str(text)[:80])
        if path is not None:
            pairs.append((path, value))
    return Default(tuple(pairs)) if not c.issues else None


@dataclass(frozen=True)
class Compute:
    path: Path
    expr: Node
    op: str = "compute"

    @property
    def field(self) -> str | None:
        return self.path.text

    def apply(self, record: Record, limits: Limits) -> Record | None:
        return put(record, self.path, self.expr.eval(Env(record, limits)))


def _compute(raw: Any, c: _Checker) -> Step | None:
    args = c.keys(raw, {"field", "expr"}, set())
    if args is None:
        return None
    path = c.path(args["field"], "field")
    expr = c.expression(args["expr"], "expr")
    return Compute(path, expr) if path is not None and expr is not None else None


@dataclass(frozen=True)
class Filter:
    expr: Node
    op: str = "filter"
    field: str | None = None

    def apply(self, record: Record, limits: Limits) -> Record | None:
        return record if v.truthy(self.expr.eval(Env(record, limits))) else None


def _filter(raw: Any, c: _Checker) -> Step | None:
    args = c.keys(raw, {"expr"}, set())
    if args is None:
        return None
    expr = c.expression(args["expr"], "expr")
    return Filter(expr) if expr is not None else None


# --- flatten, nest, extract -------------------------------------------------------------------


def _conflict(key: str) -> StepFailure:
    return StepFailure(Codes.KEY_CONFLICT, f"two values would share the key {key[:80]!r}", key)


def _flat_items(
    obj: Record, base: str | None, sep: str, limits: Limits
) -> Iterator[tuple[str, Any]]:
    """Leaves of `obj` (depth first, in key order) under keys joined by `sep`. Empty objects
    and arrays are leaves. Iterative: any nesting is fine."""
    stack: list[tuple[str | None, Iterator[tuple[str, Any]]]] = [(base, iter(obj.items()))]
    while stack:
        prefix, items = stack[-1]
        item = next(items, None)
        if item is None:
            stack.pop()
            continue
        key, value = item
        full = key if prefix is None else prefix + sep + key
        if len(full) > limits.max_string_length:
            raise StepFailure(Codes.STRING_TOO_LONG, "a flattened key would be too long", full[:80])
        if isinstance(value, dict) and value:
            stack.append((full, iter(value.items())))
        else:
            yield full, value


@dataclass(frozen=True)
class Flatten:
    path: Path | None
    separator: str
    op: str = "flatten"

    @property
    def field(self) -> str | None:
        return self.path.text if self.path is not None else None

    def apply(self, record: Record, limits: Limits) -> Record | None:
        if self.path is None:
            out: Record = {}
            for key, value in _flat_items(record, None, self.separator, limits):
                if key in out:
                    raise _conflict(key)
                out[key] = value
            return out
        target = get(record, self.path)
        if not isinstance(target, dict) or not target:
            return record
        *parent_segments, name = self.path.segments
        assert isinstance(name, str)
        parent_path = Path("", tuple(parent_segments))
        parent = get(record, parent_path) if parent_segments else record
        assert isinstance(parent, dict)
        flat = dict(_flat_items(target, name, self.separator, limits))
        rebuilt: Record = {}
        for key, value in parent.items():
            if key == name:
                for flat_key, flat_value in flat.items():
                    if flat_key in rebuilt or (flat_key in parent and flat_key != name):
                        raise _conflict(flat_key)
                    rebuilt[flat_key] = flat_value
            elif key in rebuilt:
                raise _conflict(key)
            else:
                rebuilt[key] = value
        return put(record, parent_path, rebuilt) if parent_segments else rebuilt


def _separator(raw: Any, c: _Checker, field: str = "separator") -> str:
    if not isinstance(raw, str) or not 1 <= len(raw) <= 8:
        c.add(field, "a separator is a string of 1-8 characters")
        return "."
    return raw


def _flatten(raw: Any, c: _Checker) -> Step | None:
    args = c.keys(raw, set(), {"field", "separator"})
    if args is None:
        return None
    path = c.path(args["field"], "field") if "field" in args else None
    separator = _separator(args.get("separator", "."), c)
    return Flatten(path, separator) if not c.issues else None


@dataclass(frozen=True)
class NestPrefix:
    prefix: str
    into: Path
    op: str = "nest"

    @property
    def field(self) -> str | None:
        return self.into.text

    def apply(self, record: Record, limits: Limits) -> Record | None:
        size = len(self.prefix)
        moved = [
            (k[size:], x) for k, x in record.items() if len(k) > size and k.startswith(self.prefix)
        ]
        if not moved:
            return record
        rest = {
            k: x for k, x in record.items() if not (len(k) > size and k.startswith(self.prefix))
        }
        target = get(rest, self.into)
        if target is MISSING or target is None:
            target = {}
        elif not isinstance(target, dict):
            raise StepFailure(
                Codes.PATH_CONFLICT,
                f"{self.into.text!r} holds a {type_name(target)}, not an object",
            )
        nested = dict(target)
        for key, value in moved:
            if key in nested:
                raise _conflict(key)
            nested[key] = value
        return put(rest, self.into, nested)


@dataclass(frozen=True)
class NestSeparator:
    separator: str
    op: str = "nest"
    field: str | None = None

    def apply(self, record: Record, limits: Limits) -> Record | None:
        out: Record = {}
        built: set[int] = {id(out)}  # objects made here, safe to fill in
        keep: list[Record] = [out]  # keeps them alive, so their ids stay theirs
        for key, value in record.items():
            parts = key.split(self.separator)
            if len(parts) > limits.max_path_segments:
                raise StepFailure(
                    Codes.RECORD_TOO_DEEP,
                    f"a key splits into more than {limits.max_path_segments} levels",
                    key[:80],
                )
            node = out
            for part in parts[:-1]:
                child = node.get(part, MISSING)
                if child is MISSING:
                    child = {}
                elif not isinstance(child, dict):
                    raise _conflict(key)
                if id(child) not in built:
                    child = dict(child)
                    built.add(id(child))
                    keep.append(child)
                node[part] = child
                node = child
            leaf = parts[-1]
            if leaf in node:
                existing = node[leaf]
                if isinstance(existing, dict) and isinstance(value, dict):
                    merged = dict(existing) if id(existing) not in built else existing
                    for k, x in value.items():
                        if k in merged:
                            raise _conflict(key)
                        merged[k] = x
                    built.add(id(merged))
                    keep.append(merged)
                    node[leaf] = merged
                    continue
                raise _conflict(key)
            node[leaf] = value
        return out


def _nest(raw: Any, c: _Checker) -> Step | None:
    if isinstance(raw, dict) and "separator" in raw:
        args = c.keys(raw, {"separator"}, set())
        if args is None:
            return None
        separator = _separator(args["separator"], c)
        return NestSeparator(separator) if not c.issues else None
    args = c.keys(raw, {"prefix", "into"}, set())
    if args is None:
        return None
    prefix = args["prefix"]
    if not isinstance(prefix, str) or not prefix or len(prefix) > c.limits.max_path_chars:
        c.add("prefix", "a prefix is a non-empty string")
    into = c.path(args["into"], "into")
    if c.issues or into is None:
        return None
    return NestPrefix(prefix, into)


@dataclass(frozen=True)
class Extract:
    path: Path
    source: Path
    has_default: bool
    default: Any
    op: str = "extract"

    @property
    def field(self) -> str | None:
        return self.path.text

    def apply(self, record: Record, limits: Limits) -> Record | None:
        value = get(record, self.source)
        if value is MISSING:
            if not self.has_default:
                return record
            value = _fresh(self.default)
        return put(record, self.path, value)


def _extract(raw: Any, c: _Checker) -> Step | None:
    args = c.keys(raw, {"field", "path"}, {"default"})
    if args is None:
        return None
    path = c.path(args["field"], "field")
    source = c.path(args["path"], "path", writable=False)
    if "default" in args:
        c.literal(args["default"], "default")
    if c.issues or path is None or source is None:
        return None
    return Extract(path, source, "default" in args, args.get("default"))


COMPILERS: dict[str, Callable[[Any, _Checker], Step | None]] = {
    "select": _select,
    "rename": _rename,
    "drop": _drop,
    "cast": _cast,
    "default": _default,
    "compute": _compute,
    "filter": _filter,
    "flatten": _flatten,
    "nest": _nest,
    "extract": _extract,
}


def compile_step(raw: Any, index: int, limits: Limits) -> tuple[Step | None, list[Issue]]:
    if not isinstance(raw, dict) or len(raw) != 1:
        ops = ", ".join(COMPILERS)
        return None, [Issue(index, None, "", f"a step is an object with exactly one of: {ops}")]
    ((op, args),) = raw.items()
    compiler = COMPILERS.get(op)
    if compiler is None:
        ops = ", ".join(COMPILERS)
        return None, [Issue(index, None, "", f"unknown step {str(op)[:40]!r}; steps are {ops}")]
    checker = _Checker(index, op, limits)
    step = compiler(args, checker)
    return (step if not checker.issues else None), checker.issues
