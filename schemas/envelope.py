"""The response envelope every endpoint uses, on success and on error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import msgspec

T = TypeVar("T")


class Meta(msgspec.Struct, frozen=True):
    timestamp: str
    request_id: str


def meta_now(request_id: str) -> Meta:
    """A response's meta: when it was made (UTC, milliseconds) and its request's id."""
    return Meta(
        timestamp=datetime.now(UTC).isoformat(timespec="milliseconds"), request_id=request_id
    )


class Envelope(msgspec.Struct, Generic[T], frozen=True):
    data: T
    meta: Meta


class PageMeta(Meta, frozen=True):
    next_cursor: str | None = None
    """Pass as `cursor` for the next page; null on the last page."""


class Page(msgspec.Struct, Generic[T], frozen=True):
    """A page of a list as JSON (the other formats carry the cursor in `X-Next-Cursor`)."""

    data: list[T]
    meta: PageMeta


class ErrorBody(msgspec.Struct, frozen=True, omit_defaults=True):
    code: str
    message: str
    status: int
    details: list[dict[str, Any]] | None = None


class ErrorEnvelope(msgspec.Struct, frozen=True):
    error: ErrorBody
    meta: Meta
