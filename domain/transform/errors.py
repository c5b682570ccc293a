"""What goes wrong with transforms: invalid documents (all at once) and failing records (one each).

A document that breaks a rule is refused before anything runs, with every problem found
(`InvalidTransformError.issues`), each naming the step and the field within it. A record a
valid transform cannot process yields a `RecordError`; it never raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain.errors import InvalidValueError

MAX_REPORTED_ISSUES = 20


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem of a document. `step` is the 0-based index of the step (None for the
    document itself), `op` the step's kind, `field` where inside the step (e.g. `to`,
    `expr.args[1].op`)."""

    step: int | None
    op: str | None
    field: str
    message: str

    @property
    def path(self) -> str:
        """Where, as a path into the document: `steps[2].cast.to`."""
        if self.step is None:
            return self.field
        base = f"steps[{self.step}]"
        if self.op is not None:
            base = f"{base}.{self.op}"
        if not self.field:
            return base
        return f"{base}{self.field}" if self.field.startswith("[") else f"{base}.{self.field}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "op": self.op,
            "field": self.field,
            "path": self.path,
            "message": self.message,
        }


class InvalidTransformError(InvalidValueError):
    """A transform document breaks the language's rules. `details` lists every issue."""

    code = "INVALID_TRANSFORM"

    def __init__(self, issues: Sequence[Issue], where: str = "transform") -> None:
        if not issues:
            raise ValueError("an invalid transform has at least one issue")
        kept = list(issues[:MAX_REPORTED_ISSUES])
        first = kept[0]
        more = len(issues) - 1
        summary = first.message if not more else f"{first.message} (and {more} more problems)"
        super().__init__(f"{where}.{first.path}" if where else first.path, summary)
        self.issues = tuple(kept)
        self.details = [issue.as_dict() for issue in kept]


@dataclass(frozen=True, slots=True)
class RecordError:
    """Why one record could not be transformed. `step` is None for the checks made before
    the first step (the input) or after the last (the output); `field` names the field the
    failing step was working on, when it has one."""

    step: int | None
    field: str | None
    code: str
    message: str

    def as_dict(self, index: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {} if index is None else {"index": index}
        out.update(step=self.step, field=self.field, code=self.code, message=self.message)
        return out


class TransformFailedError(InvalidValueError):
    """A record a transform could not process, where one record is all there is (ingesting
    one record, reading one record with `transform=`)."""

    code = "TRANSFORM_FAILED"

    def __init__(self, error: RecordError, where: str = "data", transform: str = "") -> None:
        at = f"step {error.step}" if error.step is not None else "its size and shape checks"
        of = f" of {transform}" if transform else ""
        field = f"{where}.{error.field}" if error.field else where
        super().__init__(field, f"{error.code} at {at}{of}: {error.message}")
        self.error = error
        self.details = [error.as_dict(0)]


class StepFailure(Exception):  # noqa: N818 - internal signal, caught inside `apply`
    """Raised inside a step (or expression) for the record at hand; `apply` turns it into a
    RecordError. Never escapes the package."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


class Codes:
    """Per-record error codes."""

    NOT_AN_OBJECT = "NOT_AN_OBJECT"
    NOT_JSON = "NOT_JSON"
    RECORD_TOO_LARGE = "RECORD_TOO_LARGE"
    RECORD_TOO_DEEP = "RECORD_TOO_DEEP"
    OUTPUT_TOO_LARGE = "OUTPUT_TOO_LARGE"
    OUTPUT_TOO_DEEP = "OUTPUT_TOO_DEEP"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    CAST_FAILED = "CAST_FAILED"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    DIVISION_BY_ZERO = "DIVISION_BY_ZERO"
    NUMERIC_OVERFLOW = "NUMERIC_OVERFLOW"
    STRING_TOO_LONG = "STRING_TOO_LONG"
    INVALID_TIMESTAMP = "INVALID_TIMESTAMP"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    PATH_CONFLICT = "PATH_CONFLICT"
    KEY_CONFLICT = "KEY_CONFLICT"
    INTERNAL_ERROR = "INTERNAL_ERROR"
