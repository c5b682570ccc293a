"""`strata dlq`: inspect and re-drive a projection's dead letters (Kafka feed)."""

from __future__ import annotations

import asyncio
import json

import click
from rich.console import Console
from rich.table import Table

from infra.bootstrap import DeadLetter, bootstrap
from infra.cli.options import json_option, settings_for

projection_option = click.option(
    "--projection", default="lookups", show_default=True, help="Whose dead letters."
)


@click.group()
def dlq() -> None:
    """Dead letters: events a stream worker could not apply (undecodable, or rejected by the
    projection's rules). The partition kept flowing; these wait here with their error."""


@dlq.command(name="list")
@projection_option
@click.option("--all", "show_all", is_flag=True, help="Include those already re-driven.")
@json_option
def list_(projection: str, show_all: bool, as_json: bool) -> None:
    """List dead letters: offset, event id and type, error, when it failed."""

    async def run() -> tuple[list[dict[str, int | str]], int]:
        platform = bootstrap(settings_for(None))
        try:
            letters, redriven = await platform.dead_letters(projection)
        finally:
            await platform.aclose()
        rows = [
            {
                "offset": letter.offset,
                "state": "redriven" if letter.offset < redriven else "pending",
                "id": letter.header("ce_id"),
                "type": letter.header("ce_type"),
                "source": f"{letter.header('strata-source-topic')}"
                f"[{letter.header('strata-source-partition')}]"
                f"@{letter.header('strata-source-offset')}",
                "error": f"{letter.header('strata-error-type')}: {letter.header('strata-error')}",
                "failed_at": letter.header("strata-failed-at"),
            }
            for letter in letters
            if show_all or letter.offset >= redriven
        ]
        return rows, redriven

    rows, _ = asyncio.run(run())
    if as_json:
        click.echo(json.dumps(rows))
        return
    table = Table(title=f"dead letters of {projection}")
    for column in ("offset", "state", "id", "type", "source", "error", "failed_at"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(row[c]) for c in row))
    Console().print(table)


@dlq.command()
@projection_option
def replay(projection: str) -> None:
    """Re-drive the pending dead letters, after the cause is fixed: each one's stream is
    re-read from the event store and the documents it touches are rewritten."""

    async def run() -> tuple[int, DeadLetter | None, str]:
        platform = bootstrap(settings_for(None))
        try:
            letters, redriven = await platform.dead_letters(projection)
            return await platform.redrive(projection, [x for x in letters if x.offset >= redriven])
        finally:
            await platform.aclose()

    done, stuck, reason = asyncio.run(run())
    click.echo(f"re-drove {done} dead letter(s) of {projection}", err=True)
    if stuck is not None:
        raise click.ClickException(
            f"stopped at offset {stuck.offset}: it still cannot be decoded ({reason}); "
            "deploy a version that reads it, then run this again"
        )
