"""Transformation handlers: define, revise and archive transforms; set a source's pipeline;
and the pipeline hook ingest calls (docs/transforms.md).

The hook is free for sources without a pipeline: a source whose stream is still at version
1 (just registered) has never had one, and ingest already reads that version. Otherwise the
source's state and the compiled transform are cached by (stream, version) — an event-sourced
state at a version never changes — so steady ingest loads nothing extra.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from uuid import UUID

from commands.ports import CommandContext, Commit, EventStore
from domain import values
from domain.account import Account
from domain.errors import NotFoundError
from domain.source import Source, source_id
from domain.transform import (
    Dropped,
    Failed,
    RecordError,
    Transform,
    TransformFailedError,
    compile_transform,
)
from domain.transformation import Transformation, TransformRef
from schemas.responses import BatchWritten, RecordWritten
from schemas.transforms import (
    CreateTransformation,
    PipelineBatchWritten,
    PipelineRecordWritten,
    PipelineWritten,
    RecordRejection,
    ReviseTransformation,
    SetPipeline,
    TransformationWritten,
)

R = TypeVar("R")


# --- transformations ------------------------------------------------------------------------


def _written(t: Transformation) -> Callable[[Commit], TransformationWritten]:
    def result(commit: Commit) -> TransformationWritten:
        return TransformationWritten(
            id=str(t.id),
            name=t.name,
            version=t.latest,
            archived=t.archived,
            position=commit.position,
        )

    return result


def _writable_account(store: EventStore, ctx: CommandContext) -> UUID:
    account_id = ctx.principal.own_account()
    try:
        account = store.load(Account, account_id)
    except NotFoundError:
        raise NotFoundError("the account of this key no longer exists") from None
    account.ensure_can_write()
    return account_id


def load_transformation(
    store: EventStore, ctx: CommandContext, transformation_id: UUID
) -> Transformation:
    """One of the caller's account; another tenant's is reported missing."""
    try:
        transformation = store.load(Transformation, transformation_id)
    except NotFoundError:
        raise NotFoundError("no such transformation") from None
    ctx.principal.require_account(UUID(transformation.account_id))
    return transformation


def create_transformation(
    cmd: CreateTransformation, store: EventStore, ctx: CommandContext
) -> TransformationWritten:
    account_id = _writable_account(store, ctx)
    transformation = Transformation.define(
        account_id=account_id, name=cmd.name, document=cmd.transform
    )
    return store.append([transformation], ctx, _written(transformation))


def revise_transformation(
    transformation_id: UUID, cmd: ReviseTransformation, store: EventStore, ctx: CommandContext
) -> TransformationWritten:
    _writable_account(store, ctx)
    transformation = load_transformation(store, ctx, transformation_id)
    if not transformation.revise(cmd.transform, name=cmd.name):
        return _written(transformation)(Commit([store.head()]))
    return store.append([transformation], ctx, _written(transformation))


def archive_transformation(
    transformation_id: UUID, store: EventStore, ctx: CommandContext
) -> TransformationWritten:
    _writable_account(store, ctx)
    transformation = load_transformation(store, ctx, transformation_id)
    transformation.archive(reason="archived through the API")
    return store.append([transformation], ctx, _written(transformation))


# --- source pipelines -------------------------------------------------------------------------


def set_pipeline(
    source: str, cmd: SetPipeline, store: EventStore, ctx: CommandContext
) -> PipelineWritten:
    """The source (registered now if new) applies the transform version at ingest."""
    account_id = str(_writable_account(store, ctx))
    name = values.source_name(source)
    transformation = load_transformation(store, ctx, cmd.transform_id)
    transformation.ensure_active()
    compile_transform(transformation.document(cmd.version))  # exists, and compiles today
    sid = source_id(account_id, name)
    try:
        aggregate = store.load(Source, sid)
    except NotFoundError:
        aggregate = Source(account_id=account_id, name=name)
    ref = str(TransformRef(transformation.id, cmd.version))
    aggregate.set_pipeline(transformation.id, cmd.version)
    return _append_or_head(store, aggregate, ctx, name, ref)


def clear_pipeline(source: str, store: EventStore, ctx: CommandContext) -> PipelineWritten:
    account_id = str(_writable_account(store, ctx))
    name = values.source_name(source)
    try:
        aggregate = store.load(Source, source_id(account_id, name))
    except NotFoundError:
        raise NotFoundError(f"no such source {name!r}") from None
    aggregate.clear_pipeline()
    return _append_or_head(store, aggregate, ctx, name, None)


def _append_or_head(
    store: EventStore, source: Source, ctx: CommandContext, name: str, ref: str | None
) -> PipelineWritten:
    if not source.pending_events:
        return PipelineWritten(source=name, transform=ref, position=store.head())
    return store.append(
        [source],
        ctx,
        lambda commit: PipelineWritten(source=name, transform=ref, position=commit.position),
    )


# --- the ingest hook ----------------------------------------------------------------------------


class IngestEntry(Protocol):
    """What ingest hands the hook (commands.ingest.Entry)."""

    @property
    def source(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def data(self) -> dict[str, Any]: ...


E = TypeVar("E", bound=IngestEntry)


@dataclass(frozen=True, slots=True)
class Pipeline:
    ref: str
    transform: Transform


class _Cache:
    """Per event store: source state by (stream, version), compiled transforms by ref."""

    LIMIT = 4096

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pipelines: dict[tuple[UUID, int], tuple[str, int] | None] = {}
        self.transforms: dict[tuple[str, int], Transform] = {}

    def remember(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        with self.lock:
            if len(table) >= self.LIMIT:
                table.clear()
            table[key] = value


_caches: weakref.WeakKeyDictionary[Any, _Cache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def _cache(store: EventStore) -> _Cache:
    with _caches_lock:
        cache = _caches.get(store)
        if cache is None:
            cache = _caches[store] = _Cache()
        return cache


def pipeline_of(store: EventStore, sid: UUID, version: int) -> Pipeline | None:
    """The pipeline of the source whose stream `sid` is at `version`."""
    cache = _cache(store)
    key = (sid, version)
    if key in cache.pipelines:
        state = cache.pipelines[key]
    else:
        source = store.load(Source, sid)  # may be newer than `version`: use what it says now
        state = source.pipeline
        cache.remember(cache.pipelines, (sid, source.version), state)
    if state is None:
        return None
    transform_id, transform_version = state
    compiled = cache.transforms.get(state)
    if compiled is None:
        transformation = store.load(Transformation, UUID(transform_id))
        compiled = compile_transform(transformation.document(transform_version))
        cache.remember(cache.transforms, state, compiled)
    return Pipeline(ref=f"{transform_id}@{transform_version}", transform=compiled)


@dataclass
class Run:
    """What the sources' pipelines made of a list of entries: `entries` to write (with
    `raw` and `transform` set where a pipeline applied) at `kept` (indexes into the input),
    the ids a filter dropped and the records the transform failed on."""

    entries: list[Any]
    kept: list[int]
    pipelines: dict[str, str] = field(default_factory=dict)
    filtered: list[str] = field(default_factory=list)
    errors: list[RecordRejection] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.pipelines)

    def finish(self, result: Callable[[Commit], R]) -> Callable[[Commit], R]:
        """The command's result, with what the pipelines did (only when one applied)."""
        if not self.active:
            return result

        def extended(commit: Commit) -> R:
            return self.extend(result(commit))

        return extended

    def extend(self, written: R) -> R:
        out: Any = written
        if isinstance(written, BatchWritten):
            out = PipelineBatchWritten(
                source=written.source,
                count=written.count,
                position=written.position,
                records=written.records,
                pipelines=dict(self.pipelines),
                filtered=list(self.filtered),
                errors=list(self.errors),
            )
        elif isinstance(written, RecordWritten):
            out = PipelineRecordWritten(
                source=written.source,
                id=written.id,
                version=written.version,
                position=written.position,
                transform=next(iter(self.pipelines.values())),
            )
        typed: R = out
        return typed


def run_pipelines(
    entries: Sequence[E],
    source_ids: dict[str, UUID],
    versions: dict[UUID, int],
    store: EventStore,
    with_raw: Callable[[E, dict[str, Any], dict[str, Any], str], E],
) -> Run:
    """Applies each source's pipeline to its entries. `with_raw(entry, data, raw, ref)` makes
    the entry to write. Sources without a pipeline pass through untouched."""
    pipelines: dict[str, Pipeline] = {}
    for name, sid in source_ids.items():
        version = versions.get(sid)
        if version is not None and version > 1:
            pipeline = pipeline_of(store, sid, version)
            if pipeline is not None:
                pipelines[name] = pipeline
    if not pipelines:
        return Run(entries=list(entries), kept=list(range(len(entries))))
    run = Run(entries=[], kept=[], pipelines={n: p.ref for n, p in pipelines.items()})
    for index, entry in enumerate(entries):
        pipeline = pipelines.get(entry.source)
        if pipeline is None:
            run.entries.append(entry)
            run.kept.append(index)
            continue
        result = pipeline.transform.apply(entry.data)
        if isinstance(result, Dropped):
            run.filtered.append(entry.key)
        elif isinstance(result, Failed):
            e = result.error
            run.errors.append(
                RecordRejection(
                    index=index,
                    id=entry.key,
                    step=e.step,
                    field=e.field,
                    code=e.code,
                    message=e.message,
                )
            )
        else:
            run.entries.append(with_raw(entry, result.record, entry.data, pipeline.ref))
            run.kept.append(index)
    return run


def unwritten_one(
    run: Run, entry: IngestEntry, current_version: int, head: int
) -> PipelineRecordWritten:
    """The answer for one record the pipeline did not let through: an error when the
    transform failed on it, a 'filtered' result when a filter dropped it."""
    ref = run.pipelines.get(entry.source, "")
    if run.errors:
        e = run.errors[0]
        error = RecordError(e.step, e.field, e.code, e.message)
        raise TransformFailedError(error, where="data", transform=ref)
    return PipelineRecordWritten(
        source=entry.source,
        id=entry.key,
        version=current_version,
        position=head,
        transform=ref,
        filtered=True,
    )
