"""The transform language: declarative JSON documents that reshape records, safely.

A document is `{"steps": [...]}`; each step is one of select, rename, drop, cast, default,
compute, filter, flatten, nest, extract (docs/transforms.md is the reference). Documents are
validated and compiled once (`compile_transform`), then applied to records: `apply` is
deterministic and total — every input gives `Ok(record)`, `Dropped(step)` or
`Failed(RecordError)`; nothing raises, nothing is evaluated as code, every run is bounded.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from domain.transform.errors import (
    Codes,
    InvalidTransformError,
    Issue,
    RecordError,
    TransformFailedError,
)
from domain.transform.limits import DEFAULT_LIMITS, Limits
from domain.transform.program import (
    Dropped,
    Failed,
    Ok,
    Result,
    Transform,
    compile_transform,
    compose,
)

__all__ = [
    "DEFAULT_LIMITS",
    "Codes",
    "Dropped",
    "Failed",
    "InvalidTransformError",
    "Issue",
    "Limits",
    "Ok",
    "RecordError",
    "Result",
    "Transform",
    "TransformFailedError",
    "compile_transform",
    "compose",
]
