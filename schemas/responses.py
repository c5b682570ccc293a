"""Response bodies (the `data` member of the envelope)."""

from __future__ import annotations

from typing import Any

import msgspec


class AccountView(msgspec.Struct, frozen=True):
    id: str
    name: str
    email: str
    plan: str
    status: str
    version: int
    created_at: str
    updated_at: str


class ApiKeyView(msgspec.Struct, frozen=True):
    """Key metadata. The secret is never part of it."""

    id: str
    account_id: str
    name: str
    prefix: str
    scopes: list[str]
    role: str
    status: str
    version: int
    created_at: str
    updated_at: str


class Written(msgspec.Struct, frozen=True):
    """What every command returns: the event-store position its events reached."""

    position: int


class AccountWritten(msgspec.Struct, frozen=True):
    id: str
    version: int
    position: int


class ApiKeyIssued(msgspec.Struct, frozen=True):
    """`secret` is shown once. A replayed idempotent request returns it as null."""

    id: str
    account_id: str
    prefix: str
    scopes: list[str]
    role: str
    secret: str | None
    version: int
    position: int


class RecordWritten(msgspec.Struct, frozen=True):
    source: str
    id: str
    version: int
    position: int


class BatchWritten(msgspec.Struct, frozen=True):
    source: str
    count: int
    position: int
    records: list[RecordVersion]


class RecordVersion(msgspec.Struct, frozen=True, array_like=False):
    id: str
    version: int


class LineError(msgspec.Struct, frozen=True):
    line: int
    code: str
    message: str


class StreamWritten(msgspec.Struct, frozen=True):
    accepted: int
    rejected: int
    position: int | None
    errors: list[LineError]


class RecordView(msgspec.Struct, frozen=True):
    source: str
    id: str
    data: dict[str, Any] | None
    version: int
    updated_at: str
    position: int
    deleted: bool = False


class HistoryEntry(msgspec.Struct, frozen=True):
    type: str
    version: int
    timestamp: str
    position: int
    payload: dict[str, Any]
    metadata: dict[str, Any]


class History(msgspec.Struct, frozen=True):
    stream_id: str
    events: list[HistoryEntry]


class Health(msgspec.Struct, frozen=True):
    status: str
    checks: dict[str, str] = {}
