"""Operating the read side: `replay`, `status`, `config`."""

from __future__ import annotations

import asyncio
import json

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from infra.bootstrap import Platform, bootstrap
from infra.cli.options import data_dir_option, json_option, settings_for
from infra.config import Settings, env_names
from projections import analytics
from projections.ports import StoreUnavailableError
from projections.runner import CatchUpRunner

# How long a rebuilt generation is live before the old one is dropped, so that running
# projectors (which re-read the active generation at least this often) have moved over.
SWAP_GRACE_SECONDS = 2.0


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


async def _replay(settings: Settings, name: str, from_position: int | None) -> None:
    platform = bootstrap(settings)
    try:
        projections = platform.projections()
        if name not in projections:
            raise click.BadParameter(f"unknown projection; known: {', '.join(projections)}")
        projection = projections[name]
        head = await platform.source.head()
        with _progress() as progress:
            task = progress.add_task(f"replaying {name}", total=max(head, 1))

            def advance(position: int) -> None:
                progress.update(task, completed=position, total=max(position, head))

            target = await projection.rebuild_into()
            runner = CatchUpRunner(
                platform.source,
                target,
                name=name,
                batch_size=5000,
                start_after=(from_position or 1) - 1,
            )
            try:
                reached = await runner.catch_up(progress=advance)
                await target.seal(reached, platform.slots(name))
            except BaseException:
                await target.discard()
                raise
            previous = await target.swap()
            progress.update(task, completed=max(reached, 1), total=max(reached, 1))
            await asyncio.sleep(SWAP_GRACE_SECONDS)
            await projection.store.drop(previous)
        click.echo(f"{name}: replayed up to position {reached}", err=True)
    finally:
        await platform.aclose()


@click.command()
@click.argument("projection")
@click.option(
    "--from-position",
    type=click.IntRange(min=1),
    default=None,
    help="Replay only events from this position on (default: from the first). Only for "
    "read models that need no older events: the others come out incomplete.",
)
@data_dir_option
def replay(projection: str, from_position: int | None, data_dir: str | None) -> None:
    """Rebuild PROJECTION (e.g. `lookups`) from the event store, with progress.

    The rebuild fills a new generation beside the live one, then swaps them atomically, so
    the read API keeps serving throughout; live feeds carry on in the new generation.
    """
    try:
        asyncio.run(_replay(settings_for(data_dir), projection, from_position))
    except StoreUnavailableError as exc:  # e.g. a chdb path another process owns
        raise click.ClickException(f"{projection}: {exc}") from None


async def _status(platform: Platform) -> list[dict[str, int | str]]:
    head = await platform.source.head()
    rows: list[dict[str, int | str]] = []
    for name, projection in platform.projections().items():
        try:
            writer = await projection.writer()
            checkpoints = await writer.checkpoints()
        except StoreUnavailableError as exc:  # e.g. a chdb path another process owns
            rows.append({"projection": name, "error": str(exc)})
            continue
        position = min(checkpoints.get(slot, 0) for slot in platform.slots(name))
        row: dict[str, int | str] = {
            "projection": name,
            "generation": writer.generation,
            "position": position,
            "head": head,
            "lag": head - position,
        }
        log_fed = name == analytics.NAME and platform.analytics_in_read_api
        if platform.settings.feed == "kafka" and not log_fed:
            row["kafka_lag"] = sum(p.lag for p in await platform.consumer_lag(name))
        rows.append(row)
    return rows


@click.command()
@data_dir_option
@json_option
def status(data_dir: str | None, as_json: bool) -> None:
    """Each projection's position and lag behind the event store's head (in events); with
    the Kafka feed also its consumer group's lag (in messages)."""

    async def run() -> list[dict[str, int | str]]:
        platform = bootstrap(settings_for(data_dir))
        try:
            return await _status(platform)
        finally:
            await platform.aclose()

    rows = asyncio.run(run())
    if as_json:
        click.echo(json.dumps(rows))
        return
    columns = list(dict.fromkeys(c for row in rows for c in row)) or ["projection"]
    table = Table(*columns)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    Console().print(table)


@click.command()
def config() -> None:
    """Every STRATA_* environment variable with its default."""
    for name, default in env_names():
        click.echo(f"{name}={'' if default is None else default}")
