"""Ingest handlers: records are appended blind, one stream per record, in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast
from uuid import UUID

from commands.ports import Appendable, CommandContext, Commit, ConcurrencyError, EventStore
from commands.transforms import run_pipelines, unwritten_one
from domain import values
from domain.account import Account
from domain.errors import NotFoundError
from domain.record import Record, record_id
from domain.source import Source, source_id
from schemas.responses import BatchWritten, RecordVersion, RecordWritten

ATTEMPTS = 3
R = TypeVar("R")
Upsert = Record.Created | Record.Updated


@dataclass(frozen=True, slots=True)
class Entry:
    source: str
    key: str
    data: dict[str, Any]
    raw: dict[str, Any] | None = None
    """Set (with `transform`) when the source's pipeline transformed `data` from it."""
    transform: str | None = None


def ingest(entries: Sequence[Entry], store: EventStore, ctx: CommandContext) -> BatchWritten:
    """Upserts every entry or none. Concurrent writers to the same records are retried."""
    return _upsert(entries, store, ctx, _batch_written)


def ingest_one(entry: Entry, store: EventStore, ctx: CommandContext) -> RecordWritten:
    def written(_: list[str], events: list[Upsert]) -> Callable[[Commit], RecordWritten]:
        return lambda commit: RecordWritten(
            source=entry.source,
            id=entry.key,
            version=events[0].originator_version,
            position=commit.position,
        )

    return _upsert([entry], store, ctx, written, single=True)


def _upsert(
    entries: Sequence[Entry],
    store: EventStore,
    ctx: CommandContext,
    written: Callable[[list[str], list[Upsert]], Callable[[Commit], R]],
    *,
    single: bool = False,
) -> R:
    account = ctx.principal.own_account()
    account_id = str(account)
    for entry in entries:
        values.source_name(entry.source)
        values.record_key(entry.key)
    sources = sorted({entry.source for entry in entries})
    stream_ids = [record_id(account_id, e.source, e.key) for e in entries]
    source_ids = {name: source_id(account_id, name) for name in sources}
    for attempt in range(ATTEMPTS):
        # The account's version comes with the others: its state is reused while unchanged.
        versions = store.versions([account, *source_ids.values(), *set(stream_ids)])
        writable_account(store, account, versions.pop(account, None))
        # Transformations: each source's pipeline transforms its entries, drops or rejects
        # some (they are not written); a no-op for sources without one (docs/transforms.md).
        run = run_pipelines(entries, source_ids, versions, store, _with_raw)
        if single and not run.entries:
            head = store.head()
            unwritten = unwritten_one(run, entries[0], versions.get(stream_ids[0], 0), head)
            return cast(R, unwritten)
        kept_ids = [stream_ids[i] for i in run.kept] if run.active else stream_ids
        items: list[Appendable] = [
            Source(account_id=account_id, name=name)
            for name, sid in source_ids.items()
            if sid not in versions
        ]
        events = _upserts(account_id, run.entries, kept_ids, versions)
        items.extend(events)
        result = run.finish(written(sources, events))
        if not items:  # the pipelines let nothing through
            return result(Commit([store.head()]))
        try:
            return store.append(items, ctx, result)
        except ConcurrencyError:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _upserts(
    account_id: str, entries: Sequence[Entry], stream_ids: Sequence[UUID], versions: dict[UUID, int]
) -> list[Upsert]:
    timestamp = Record.Event.create_timestamp()
    current: dict[UUID, int] = dict(versions)
    events: list[Upsert] = []
    for entry, stream_id in zip(entries, stream_ids, strict=True):
        event = Record.upsert_event(
            account_id=account_id,
            source=entry.source,
            key=entry.key,
            data=entry.data,
            current_version=current.get(stream_id),
            timestamp=timestamp,
            stream_id=stream_id,
            raw=entry.raw,
            transform=entry.transform,
        )
        current[stream_id] = event.originator_version
        events.append(event)
    return events


def _with_raw(entry: Entry, data: dict[str, Any], raw: dict[str, Any], ref: str) -> Entry:
    return replace(entry, data=data, raw=raw, transform=ref)


def _batch_written(sources: list[str], events: list[Upsert]) -> Callable[[Commit], BatchWritten]:
    def result(commit: Commit) -> BatchWritten:
        return BatchWritten(
            source=sources[0] if len(sources) == 1 else "*",
            count=len(events),
            position=commit.position,
            records=[RecordVersion(id=e.key, version=e.originator_version) for e in events],
        )

    return result


def delete_record(source: str, key: str, store: EventStore, ctx: CommandContext) -> RecordWritten:
    """A tombstone: the record leaves the read models, its history stays."""
    account_id = str(ctx.principal.own_account())
    writable_account(store, UUID(account_id))
    stream_id = record_id(account_id, values.source_name(source), values.record_key(key))
    record = store.load(Record, stream_id)
    record.delete()
    return store.append(
        [record],
        ctx,
        lambda commit: RecordWritten(
            source=source, id=key, version=record.version, position=commit.position
        ),
    )


def writable_account(store: EventStore, account_id: UUID, version: int | None = None) -> Account:
    """The account, which must accept writes; `version`: its current version, just read
    (the state at it may come from the store's cache; do not change it)."""
    try:
        account = store.load_at(Account, account_id, version)
    except NotFoundError:
        raise NotFoundError("the account of this key no longer exists") from None
    account.ensure_can_write()
    return account
