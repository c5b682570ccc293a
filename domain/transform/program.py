"""A compiled transform: validated once, applied to any number of records, never raising."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from domain.transform.errors import Codes, InvalidTransformError, Issue, RecordError, StepFailure
from domain.transform.limits import DEFAULT_LIMITS, Limits
from domain.transform.steps import Step, compile_step
from domain.transform.values import json_problem


@dataclass(frozen=True, slots=True)
class Ok:
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Dropped:
    """A filter step (`step`, 0-based) dropped the record."""

    step: int


@dataclass(frozen=True, slots=True)
class Failed:
    error: RecordError


Result = Ok | Dropped | Failed


@dataclass(frozen=True, eq=False)
class Transform:
    """Build with `compile_transform`. `document` is the validated document (a copy)."""

    document: dict[str, Any]
    steps: tuple[Step, ...]
    limits: Limits

    def apply(self, record: Any) -> Result:  # noqa: PLR0911 - one return per outcome
        """Total: every input gives Ok, Dropped or Failed. The input is never changed; the
        output may share values with it."""
        limits = self.limits
        if not isinstance(record, dict):
            return _failed(None, None, Codes.NOT_AN_OBJECT, "a record is a JSON object")
        problem = json_problem(record, limits.max_record_bytes, limits.max_record_depth)
        if problem is not None:
            return _failed(None, None, *_input_problem(problem))
        current: dict[str, Any] = record
        for index, step in enumerate(self.steps):
            try:
                out = step.apply(current, limits)
            except StepFailure as failure:
                return _failed(index, failure.field or step.field, failure.code, failure.message)
            except Exception as exc:  # a bug, never a customer's fault: still one record's error
                message = f"internal error in step {index} ({step.op}): {type(exc).__name__}"
                return _failed(index, step.field, Codes.INTERNAL_ERROR, message)
            if out is None:
                return Dropped(index)
            current = out
        problem = json_problem(current, limits.max_record_bytes, limits.max_record_depth)
        if problem is not None:
            return _failed(None, None, *_output_problem(problem))
        return Ok(current)

    def apply_all(self, records: Iterable[Any]) -> list[Result]:
        return [self.apply(record) for record in records]


def _failed(step: int | None, field: str | None, code: str, message: str) -> Failed:
    return Failed(RecordError(step=step, field=field, code=code, message=message))


def _input_problem(problem: tuple[str, str]) -> tuple[str, str]:
    kind, message = problem
    code = {"size": Codes.RECORD_TOO_LARGE, "depth": Codes.RECORD_TOO_DEEP}.get(
        kind, Codes.NOT_JSON
    )
    return code, f"the record is {message}" if kind != "type" else message


def _output_problem(problem: tuple[str, str]) -> tuple[str, str]:
    kind, message = problem
    code = {"size": Codes.OUTPUT_TOO_LARGE, "depth": Codes.OUTPUT_TOO_DEEP}.get(
        kind, Codes.NOT_JSON
    )
    return code, f"the transformed record would be {message}" if kind != "type" else message


def compile_transform(document: Any, limits: Limits = DEFAULT_LIMITS) -> Transform:
    """The document as a Transform, or InvalidTransformError naming every problem."""
    problem = json_problem(document, limits.max_document_bytes, limits.max_document_depth)
    if problem is not None:
        raise InvalidTransformError([Issue(None, None, "", f"the document is {problem[1]}")])
    if not isinstance(document, dict) or set(document) != {"steps"}:
        raise InvalidTransformError(
            [Issue(None, None, "", 'a transform is an object {"steps": [...]}')]
        )
    raw_steps = document["steps"]
    if not isinstance(raw_steps, list):
        raise InvalidTransformError([Issue(None, None, "steps", "steps is an array")])
    if len(raw_steps) > limits.max_steps:
        raise InvalidTransformError(
            [Issue(None, None, "steps", f"a transform has at most {limits.max_steps} steps")]
        )
    steps: list[Step] = []
    issues: list[Issue] = []
    for index, raw in enumerate(raw_steps):
        step, problems = compile_step(raw, index, limits)
        issues.extend(problems)
        if step is not None:
            steps.append(step)
    if issues:
        raise InvalidTransformError(issues)
    return Transform(document=_copy(document), steps=tuple(steps), limits=limits)


def compose(first: Transform, *rest: Transform) -> Transform:
    """The transform that runs `first`'s steps, then each of `rest`'s: for every record
    `first` keeps, `compose(a, b).apply(r)` equals `b.apply(a.apply(r).record)` (errors
    numbering steps in the composed transform). Raises InvalidTransformError when the result
    breaks a limit (e.g. too many steps)."""
    steps: list[Any] = list(first.document["steps"])
    for transform in rest:
        steps.extend(transform.document["steps"])
    return compile_transform({"steps": steps}, first.limits)


def _copy(document: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(document))
    return copied
