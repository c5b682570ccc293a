"""The command API's routes. Thin: parse, build the command, run its handler, wrap the result.

Handlers are synchronous (the event store is), so they run in worker threads.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec
from litestar import Request, Response, delete, post, put
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import (
    FromPath,
    HeaderParameter,
    JSONBody,
    QueryParameter,
    SkipValidation,
)
from opentelemetry import propagate

from commands import accounts
from commands.idempotency import (
    IdempotencyKeyReusedError,
    checked_key,
    fingerprint,
)
from commands.ingest import Entry, delete_record, ingest, ingest_one
from commands.ports import (
    CommandContext,
    EventStore,
    IdempotencyClaim,
    IdempotencyRaceError,
    SecretFactory,
    StoredResponse,
)
from commands.streaming import Chunk, ingest_ndjson
from domain.access import Principal, Scope
from domain.errors import InvalidValueError
from schemas.commands import CreateAccount, GenerateApiKey, IngestBatch, IngestRecord, UpdateAccount
from schemas.envelope import Envelope, Meta
from schemas.responses import (
    AccountWritten,
    ApiKeyIssued,
    BatchWritten,
    RecordWritten,
    StreamWritten,
    Written,
)

R = TypeVar("R")
JSON = "application/json"
_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(frozen=True, slots=True)
class IngestLimits:
    max_batch_records: int
    max_body_bytes: int
    max_stream_bytes: int
    max_line_bytes: int
    stream_chunk_records: int


def _context(request: Request[Any, Any, Any], principal: Principal) -> CommandContext:
    """The request id caused these events; X-Correlation-ID (when sent) ties several
    requests of one client operation together, else the request id does."""
    request_id: str = request.state.request_id
    correlation = request.headers.get("x-correlation-id", "")
    if not _CORRELATION_ID.fullmatch(correlation):
        correlation = request_id
    trace_context: dict[str, str] = {}
    propagate.inject(trace_context)
    return CommandContext(
        principal=principal,
        correlation_id=correlation,
        causation_id=request_id,
        traceparent=trace_context.get("traceparent"),
    )


def _redact(result: object) -> object:
    """What an idempotent replay returns: secrets are shown once and never kept."""
    if isinstance(result, ApiKeyIssued):
        return msgspec.structs.replace(result, secret=None)
    return result


def _replay(kept: StoredResponse, request_fingerprint: bytes) -> Response[Any]:
    if kept.fingerprint != request_fingerprint:
        raise IdempotencyKeyReusedError
    return Response(
        content=kept.body,
        status_code=kept.status,
        media_type=JSON,
        headers={"Idempotent-Replayed": "true"},
    )


async def _execute(
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
    status: int,
    handler: Callable[[CommandContext], R],
) -> Response[Any]:
    """Runs a handler once per Idempotency-Key; replays the kept response on a retry."""
    ctx = _context(request, principal)
    key = request.headers.get("idempotency-key")
    if key is None:
        result = await asyncio.to_thread(handler, ctx)
        return Response(Envelope(data=result, meta=meta), status_code=status)
    key = checked_key(key)
    body = await request.body()
    digest = fingerprint(request.method, request.url.path, request.url.query or "", body)
    kept = await asyncio.to_thread(store.recall, principal.subject, key)
    if kept is not None:
        return _replay(kept, digest)

    def render(result: object) -> tuple[int, bytes]:
        return status, msgspec.json.encode(Envelope(data=_redact(result), meta=meta))

    claim = IdempotencyClaim(scope=principal.subject, key=key, fingerprint=digest, render=render)
    try:
        result = await asyncio.to_thread(handler, replace(ctx, idempotency=claim))
    except IdempotencyRaceError as race:
        return _replay(race.stored, digest)
    return Response(Envelope(data=result, meta=meta), status_code=status)


IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        description="Retries with the same key and body run the command once.",
    ),
]
Principal_ = NamedDependency[Principal]
Meta_ = NamedDependency[Meta]
Store = NamedDependency[SkipValidation[EventStore]]
Secrets = NamedDependency[SkipValidation[SecretFactory]]
Limits = NamedDependency[IngestLimits]


@post(
    "/v1/account/create",
    status_code=201,
    opt={"scope": Scope.ACCOUNT_ADMIN},
    summary="Open an account (operator only)",
)
async def create_account(
    data: JSONBody[CreateAccount],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
    idempotency_key: IdempotencyKey = None,
) -> Response[Envelope[AccountWritten]]:
    return await _execute(
        request, principal, store, meta, 201, lambda c: accounts.create_account(data, store, c)
    )


@put(
    "/v1/account/{account_id:uuid}",
    opt={"scope": Scope.ACCOUNT_ADMIN},
    summary="Update profile, plan or status",
)
async def update_account(
    account_id: FromPath[UUID],
    data: JSONBody[UpdateAccount],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
) -> Envelope[AccountWritten]:
    ctx = _context(request, principal)
    result = await asyncio.to_thread(accounts.update_account, account_id, data, store, ctx)
    return Envelope(data=result, meta=meta)


@delete(
    "/v1/account/{account_id:uuid}",
    status_code=200,
    opt={"scope": Scope.ACCOUNT_OWNER},
    summary="Close an account (its keys stop working)",
)
async def close_account(
    account_id: FromPath[UUID],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
) -> Envelope[AccountWritten]:
    ctx = _context(request, principal)
    result = await asyncio.to_thread(accounts.close_account, account_id, store, ctx)
    return Envelope(data=result, meta=meta)


@post(
    "/v1/apikey/generate",
    status_code=201,
    opt={"scope": Scope.ACCOUNT_ADMIN},
    summary="Issue an API key; its secret is shown once",
)
async def generate_api_key(
    data: JSONBody[GenerateApiKey],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
    new_secret: Secrets,
    idempotency_key: IdempotencyKey = None,
) -> Response[Envelope[ApiKeyIssued]]:
    return await _execute(
        request,
        principal,
        store,
        meta,
        201,
        lambda c: accounts.generate_api_key(data, store, c, new_secret),
    )


@post(
    "/v1/apikey/{key_id:uuid}/rotate",
    status_code=200,
    opt={"scope": Scope.ACCOUNT_ADMIN},
    summary="Replace a key's secret; the old one stops working at once",
)
async def rotate_api_key(
    key_id: FromPath[UUID],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
    new_secret: Secrets,
    idempotency_key: IdempotencyKey = None,
) -> Response[Envelope[ApiKeyIssued]]:
    return await _execute(
        request,
        principal,
        store,
        meta,
        200,
        lambda c: accounts.rotate_api_key(key_id, store, c, new_secret),
    )


@delete(
    "/v1/apikey/{key_id:uuid}",
    status_code=200,
    opt={"scope": Scope.ACCOUNT_ADMIN},
    summary="Revoke an API key",
)
async def revoke_api_key(
    key_id: FromPath[UUID],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
) -> Envelope[Written]:
    ctx = _context(request, principal)
    result = await asyncio.to_thread(accounts.revoke_api_key, key_id, store, ctx)
    return Envelope(data=result, meta=meta)


@post("/v1/ingest", status_code=200, opt={"scope": Scope.INGEST_WRITE}, summary="Upsert one record")
async def ingest_record(
    data: JSONBody[IngestRecord],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
    idempotency_key: IdempotencyKey = None,
) -> Response[Envelope[RecordWritten]]:
    entry = Entry(source=data.source, key=data.id, data=data.data)
    return await _execute(
        request, principal, store, meta, 200, lambda c: ingest_one(entry, store, c)
    )


@post(
    "/v1/ingest/batch",
    status_code=200,
    opt={"scope": Scope.INGEST_WRITE},
    summary="Upsert many records of one source, atomically (all or nothing)",
)
async def ingest_batch(
    data: JSONBody[IngestBatch],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
    limits: Limits,
    idempotency_key: IdempotencyKey = None,
) -> Response[Envelope[BatchWritten]]:
    if len(data.records) > limits.max_batch_records:
        raise InvalidValueError(
            "records", f"a batch holds at most {limits.max_batch_records} records; split it"
        )
    entries = [Entry(source=data.source, key=r.id, data=r.data) for r in data.records]
    return await _execute(request, principal, store, meta, 200, lambda c: ingest(entries, store, c))


@post(
    "/v1/ingest/stream",
    status_code=200,
    opt={"scope": Scope.INGEST_WRITE},
    request_max_body_size=None,
    summary="Upsert records from an NDJSON body, one record per line",
    description=(
        "Read incrementally and committed in chunks. A bad line is rejected alone and reported "
        'by line number. Lines are {"id", "data"} and may name their own "source".'
    ),
)
async def ingest_stream(
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
    limits: Limits,
    source: Annotated[
        str | None,
        QueryParameter(name="source", required=False, description="Source of lines without one."),
    ] = None,
    idempotency_key: IdempotencyKey = None,
) -> Envelope[StreamWritten]:
    ctx = _context(request, principal)
    key = checked_key(idempotency_key) if idempotency_key is not None else None

    async def write(chunk: Chunk) -> BatchWritten:
        chunk_ctx = ctx
        if key is not None:
            chunk_key = f"{key}#{chunk.index}"
            digest = fingerprint(request.url.path, source or "", *chunk.raw)
            kept = await asyncio.to_thread(store.recall, principal.subject, chunk_key)
            if kept is not None:
                if kept.fingerprint != digest:
                    raise IdempotencyKeyReusedError
                return msgspec.json.decode(kept.body, type=BatchWritten)
            chunk_ctx = replace(
                ctx,
                idempotency=IdempotencyClaim(
                    scope=principal.subject,
                    key=chunk_key,
                    fingerprint=digest,
                    render=lambda result: (200, msgspec.json.encode(result)),
                ),
            )
        try:
            return await asyncio.to_thread(ingest, chunk.entries, store, chunk_ctx)
        except IdempotencyRaceError as race:
            return msgspec.json.decode(race.stored.body, type=BatchWritten)

    body = _StreamBody(request, limits.max_stream_bytes)
    result = await ingest_ndjson(
        body.chunks(),
        default_source=source,
        chunk_records=limits.stream_chunk_records,
        max_line_bytes=limits.max_line_bytes,
        write=write,
    )
    if body.blank:
        # Nothing was written: say so, rather than answer 200 with nothing accepted.
        raise ValidationException(
            "the request body is empty",
            extra=[{"key": "$", "message": EMPTY_STREAM, "source": "body"}],
        )
    return Envelope(data=result, meta=meta)


EMPTY_STREAM = "the request body is empty: send one JSON record per line"


class _StreamBody:
    """The request body, read incrementally up to a limit; notes whether it held anything."""

    def __init__(self, request: Request[Any, Any, Any], max_bytes: int) -> None:
        self.request = request
        self.max_bytes = max_bytes
        self.blank = True

    async def chunks(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self.request.stream():
            seen += len(chunk)
            if seen > self.max_bytes:
                raise RequestEntityTooLarge
            if self.blank and chunk.strip():
                self.blank = False
            yield chunk


@delete(
    "/v1/data/{source:str}/{record_id:str}",
    status_code=200,
    opt={"scope": Scope.INGEST_WRITE},
    summary="Delete a record (a tombstone: it leaves reads, its history stays)",
)
async def delete_data(
    source: FromPath[str],
    record_id: FromPath[str],
    request: Request[Any, Any, Any],
    principal: Principal_,
    store: Store,
    meta: Meta_,
) -> Envelope[RecordWritten]:
    ctx = _context(request, principal)
    result = await asyncio.to_thread(delete_record, source, record_id, store, ctx)
    return Envelope(data=result, meta=meta)


ROUTES = [
    create_account,
    update_account,
    close_account,
    generate_api_key,
    rotate_api_key,
    revoke_api_key,
    ingest_record,
    ingest_batch,
    ingest_stream,
    delete_data,
]
