"""`strata infra`: install and run the real servers locally (tests and the distributed mode)."""

from __future__ import annotations

import click

from infra import provision


def _services(only: str | None) -> list[str] | None:
    return [s.strip() for s in only.split(",") if s.strip()] if only else None


only_option = click.option(
    "--only", default=None, help="Comma-separated subset: postgres,redis,kafka,elasticsearch."
)


@click.group()
def infra() -> None:
    """Provision PostgreSQL, Redis, Kafka and Elasticsearch on loopback (idempotent)."""


@infra.command()
@only_option
def up(only: str | None) -> None:
    """Install what is missing and start what is not running; prints the STRATA_* settings."""
    env = provision.up(_services(only))
    for name, value in env.items():
        click.echo(f"export {name}={value}")


@infra.command()
@only_option
def down(only: str | None) -> None:
    """Stop the servers `up` started (by their recorded PIDs)."""
    provision.down(_services(only))


@infra.command(name="status")
def infra_status() -> None:
    """Which servers are running, on which ports, with their logs."""
    for item in provision.status():
        click.echo(str(item))
