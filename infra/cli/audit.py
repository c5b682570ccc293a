"""`strata audit`: a stream's history from the event store, or its state at a past point."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import click
import msgspec
from rich.console import Console
from rich.table import Table

from domain.record import record_id
from infra.bootstrap import bootstrap
from infra.cli.options import data_dir_option, json_option, settings_for
from projections import lookups
from read_api import history as audit_history
from read_api.views import account_view, record_view
from schemas.events import ProjectedEvent

as_of_option = click.option(
    "--as-of", default=None, help="Show the state at this version number or ISO-8601 time."
)


def _load(data_dir: str | None, stream_id: UUID) -> list[ProjectedEvent]:
    async def run() -> list[ProjectedEvent]:
        platform = bootstrap(settings_for(data_dir))
        try:
            return await asyncio.to_thread(platform.log.history, stream_id)
        finally:
            await platform.aclose()

    events = asyncio.run(run())
    if not events:
        raise click.ClickException(f"no events for stream {stream_id}")
    return events


def _print(
    stream_id: UUID, events: Sequence[ProjectedEvent], as_json: bool, state: Any | None
) -> None:
    if state is not None:
        click.echo(json.dumps(msgspec.to_builtins(state), indent=None if as_json else 2))
        return
    history = audit_history.history(stream_id, events)
    if as_json:
        click.echo(msgspec.json.encode(history).decode())
        return
    table = Table(title=str(stream_id))
    for column in ("position", "version", "type", "timestamp", "payload"):
        table.add_column(column, overflow="fold")  # audit output never elides
    for entry in history.events:
        payload = json.dumps(entry.payload, separators=(",", ":"))
        table.add_row(
            str(entry.position),
            str(entry.version),
            entry.type,
            entry.timestamp,
            payload if len(payload) < 120 else payload[:117] + "...",
        )
    Console().print(table)


def _state(events: Sequence[ProjectedEvent], as_of: str, key: str) -> dict[str, Any]:
    moment = audit_history.parse_as_of(as_of)
    assert moment is not None
    doc = audit_history.state_as_of(events, moment, key)
    if doc is None:
        raise click.ClickException("it did not exist at that version or time")
    return doc


@click.group()
def audit() -> None:
    """Print histories straight from the event store."""


@audit.command()
@click.argument("account_id", type=click.UUID)
@as_of_option
@json_option
@data_dir_option
def account(account_id: UUID, as_of: str | None, as_json: bool, data_dir: str | None) -> None:
    """Every event of ACCOUNT_ID, or its state --as-of a version or time."""
    events = _load(data_dir, account_id)
    state = (
        account_view(_state(events, as_of, lookups.account_key(str(account_id)))) if as_of else None
    )
    _print(account_id, events, as_json, state)


@audit.command()
@click.argument("source")
@click.argument("record")
@click.option("--account", "account_id", type=click.UUID, required=True, help="The owner account.")
@as_of_option
@json_option
@data_dir_option
def record(
    source: str,
    record: str,
    account_id: UUID,
    as_of: str | None,
    as_json: bool,
    data_dir: str | None,
) -> None:
    """Every event of record RECORD in SOURCE of --account, or its state --as-of."""
    stream_id = record_id(str(account_id), source, record)
    events = _load(data_dir, stream_id)
    key = lookups.record_key(str(account_id), source, record)
    state = record_view(_state(events, as_of, key)) if as_of else None
    _print(stream_id, events, as_json, state)
