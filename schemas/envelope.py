"""The response envelope every endpoint uses, on success and on error."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")


class Meta(msgspec.Struct, frozen=True):
    timestamp: str
    request_id: str


class Envelope(msgspec.Struct, Generic[T], frozen=True):
    data: T
    meta: Meta


class ErrorBody(msgspec.Struct, frozen=True, omit_defaults=True):
    code: str
    message: str
    status: int
    details: list[dict[str, Any]] | None = None


class ErrorEnvelope(msgspec.Struct, frozen=True):
    error: ErrorBody
    meta: Meta
