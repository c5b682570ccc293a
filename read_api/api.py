"""The read API's routes: lookups by id, audit histories, and past states (`as_of`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any
from uuid import UUID

from litestar import Request, get
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.enums import ParamType
from litestar.openapi.spec import OpenAPIType, Parameter, Schema
from litestar.params import FromPath, QueryParameter, SkipValidation

from domain import values
from domain.access import Principal, Scope
from domain.account import Account
from domain.errors import NotFoundError
from domain.record import record_id
from projections import lookups
from projections.ports import DocumentReader
from read_api import history as audit
from read_api.consistency import PositionWatcher, min_position_of
from read_api.ports import EventHistory
from read_api.transforms import RawParam, TransformParam, resolve, transform_view
from read_api.views import account_view, api_key_view
from schemas.envelope import Envelope, Meta, meta_now
from schemas.responses import AccountView, ApiKeyView, History, RecordView

# `min_position` is applied by `min_position_gate` before authentication (a key issued by
# the awaited write must already be known), on every route; the gateway documents it on each.
MIN_POSITION_PARAMETERS = (
    Parameter(
        name="min_position",
        param_in=ParamType.QUERY,
        schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
        description="Wait (bounded) until the read model has applied this event-store position.",
    ),
    Parameter(
        name="X-Strata-Min-Position",
        param_in=ParamType.HEADER,
        schema=Schema(type=OpenAPIType.INTEGER, minimum=0),
        description="Same as min_position.",
    ),
)
AsOfParam = Annotated[
    str | None,
    QueryParameter(
        name="as_of",
        required=False,
        description="A version number or an ISO-8601 time: the state as it was then.",
    ),
]
Principal_ = NamedDependency[Principal]
Meta_ = NamedDependency[Meta]
Docs = NamedDependency[SkipValidation[DocumentReader]]
Events = NamedDependency[SkipValidation[EventHistory]]


async def watermark(docs: DocumentReader, slots: Sequence[int]) -> int:
    """The position up to which the read model has applied every event: the lowest
    checkpoint over the slots of its feed (one for the log; one per Kafka partition)."""
    checkpoints = await docs.checkpoints()
    return min(checkpoints.get(slot, 0) for slot in slots)


def min_position_gate(
    docs: DocumentReader,
    timeout: float,
    slots: Sequence[int],
    others: Mapping[str, Callable[[], Awaitable[int]]] | None = None,
    settle: Callable[[], Awaitable[None]] | None = None,
    hurry: Mapping[str, Callable[[], None]] | None = None,
) -> Callable[[ASGIConnection[Any, Any, Any, Any]], Awaitable[None]]:
    """Every route waits for the lookups read model (authentication reads it); a route whose
    `opt` names another read model (`"reads": "search"`) also waits for its watermark.
    `settle`, when the process caches credentials from the read model, then waits until
    the cache heard of every change up to there (a key revoked by then is refused).
    `hurry` names the read models this process feeds at a pace, and how to cut it short
    when a read waits for them."""
    extra = dict(others or {})
    hurries = dict(hurry or {})

    def reached_of(other: Callable[[], Awaitable[int]] | None) -> Callable[[], Awaitable[int]]:
        async def reached() -> int:
            lowest = await watermark(docs, slots)
            return lowest if other is None else min(lowest, await other())

        return reached

    # One watcher per combination of read models a route waits for, shared by its requests.
    watchers: dict[str | None, PositionWatcher] = {None: PositionWatcher(reached_of(None))}
    for name, other in extra.items():
        watchers[name] = PositionWatcher(reached_of(other), hurry=hurries.get(name))

    async def gate(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        wanted = min_position_of(
            connection.query_params.get("min_position"),
            connection.headers.get("x-strata-min-position"),
        )
        if wanted is None:
            return
        await watchers[connection.route_handler.opt.get("reads")].wait(wanted, timeout)
        if settle is not None:
            await settle()

    return gate


async def _past(events: EventHistory, stream_id: UUID, as_of: str, key: str) -> dict[str, Any]:
    moment = audit.parse_as_of(as_of)
    assert moment is not None
    stream = await events.history(stream_id)
    doc = audit.state_as_of(stream, moment, key)
    if doc is None:
        raise NotFoundError("it did not exist at that version or time")
    return doc


@get(
    "/v1/data/{source:str}/{record_id:str}",
    opt={"scope": Scope.DATA_READ},
    summary="A record's latest state (or its state `as_of` a version or time)",
)
async def get_record(
    source: FromPath[str],
    record_id: FromPath[str],
    request: Request[Any, Any, Any],
    as_of: AsOfParam = None,
    transform: TransformParam = None,
    raw: RawParam = False,
) -> Envelope[RecordView]:
    # The busiest route takes what other routes have injected straight from the request's
    # state (the scope's dict: `request.state` wraps it anew at each use) and the app's
    # state: resolving four dependencies cost ~30 us of a ~600 us read.
    state = request.scope["state"]
    principal: Principal = state["principal"]
    docs: DocumentReader = request.app.state.docs
    account = str(principal.own_account())
    values.source_name(source)
    values.record_key(record_id)
    key = lookups.record_key(account, source, record_id)
    # Transformations: `transform=<id>@<version>` and `raw=true` (read_api/transforms.py).
    chosen, ref = await resolve(docs, account, transform) if transform else (None, "")
    if as_of:
        stream = _record_stream(account, source, record_id)
        doc = await _past(request.app.state.events, stream, as_of, key)
    else:
        found = await docs.get(key)
        if found is None:
            raise NotFoundError("no such record")
        doc = found
    return Envelope(data=transform_view(doc, chosen, ref, raw), meta=meta_now(state["request_id"]))


def _record_stream(account: str, source: str, key: str) -> UUID:
    return record_id(account, source, key)


@get(
    "/v1/data/{source:str}/{record_id:str}/history",
    opt={"scope": Scope.DATA_READ},
    summary="Every event of a record, in order",
)
async def get_record_history(
    source: FromPath[str],
    record_id: FromPath[str],
    principal: Principal_,
    events: Events,
    meta: Meta_,
) -> Envelope[History]:
    account = str(principal.own_account())
    values.source_name(source)
    values.record_key(record_id)
    stream = _record_stream(account, source, record_id)
    found = await events.history(stream)
    if not found:
        raise NotFoundError("no such record")
    return Envelope(data=audit.history(stream, found), meta=meta)


@get(
    "/v1/account/{account_id:uuid}",
    opt={"scope": Scope.ACCOUNT_ADMIN},
    summary="An account (or its state `as_of` a version or time)",
)
async def get_account(
    account_id: FromPath[UUID],
    principal: Principal_,
    docs: Docs,
    events: Events,
    meta: Meta_,
    as_of: AsOfParam = None,
) -> Envelope[AccountView]:
    principal.require_account(account_id)
    key = lookups.account_key(str(account_id))
    if as_of:
        return Envelope(data=account_view(await _past(events, account_id, as_of, key)), meta=meta)
    doc = await docs.get(key)
    if doc is None:
        raise NotFoundError("no such account")
    return Envelope(data=account_view(doc), meta=meta)


@get(
    "/v1/account/{account_id:uuid}/history",
    opt={"scope": Scope.ACCOUNT_ADMIN},
    summary="Every event of an account, in order",
)
async def get_account_history(
    account_id: FromPath[UUID], principal: Principal_, events: Events, meta: Meta_
) -> Envelope[History]:
    principal.require_account(account_id)
    found = await events.history(account_id)
    if not found or found[0].type != f"{Account.__name__}.Opened":
        raise NotFoundError("no such account")
    return Envelope(data=audit.history(account_id, found), meta=meta)


@get(
    "/v1/apikey/{key_id:uuid}",
    opt={"scope": Scope.ACCOUNT_ADMIN},
    summary="An API key's metadata (never its secret)",
)
async def get_api_key(
    key_id: FromPath[UUID],
    principal: Principal_,
    docs: Docs,
    events: Events,
    meta: Meta_,
    as_of: AsOfParam = None,
) -> Envelope[ApiKeyView]:
    key = lookups.apikey_key(str(key_id))
    if as_of:
        doc = await _past(events, key_id, as_of, key)
    else:
        found = await docs.get(key)
        if found is None:
            raise NotFoundError("no such api key")
        doc = found
    principal.require_account(UUID(doc["account_id"]))
    return Envelope(data=api_key_view(doc), meta=meta)


ROUTES = [get_record, get_record_history, get_account, get_account_history, get_api_key]
