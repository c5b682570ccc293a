"""`strata infra`: install and run the real servers locally (tests and the distributed mode)."""

from __future__ import annotations

import click

from infra import provision

only_option = click.option(
    "--only",
    default=None,
    help=f"Comma-separated subset of: {','.join(provision.SERVICES)} (default: all).",
)


def _services(only: str | None) -> list[str] | None:
    return [s.strip() for s in only.split(",") if s.strip()] if only else None


def _run(action: str, fn: object) -> object:
    try:
        return fn() if callable(fn) else None
    except provision.ProvisionError as exc:
        raise click.ClickException(f"infra {action} failed: {exc}") from exc


@click.group()
def infra() -> None:
    """Provision PostgreSQL, Redis, Kafka and Elasticsearch on loopback (idempotent).

    ClickHouse runs in-process through chdb; see docs/infra.md.
    """


@infra.command()
@only_option
def up(only: str | None) -> None:
    """Install what is missing, start what is not running; print the STRATA_* settings."""
    env = _run("up", lambda: provision.up(_services(only)))
    assert isinstance(env, dict)
    for name, value in env.items():
        click.echo(f"export {name}={value}")


@infra.command()
@only_option
@click.option("--purge", is_flag=True, help="Also delete the servers' data (not the downloads).")
def down(only: str | None, purge: bool) -> None:
    """Stop the servers `up` started (by their recorded PIDs)."""
    _run("down", lambda: provision.down(_services(only), purge=purge))


@infra.command(name="status")
@only_option
def infra_status(only: str | None) -> None:
    """Each server's state, PID, memory, address and log."""
    rows = provision.status(_services(only))
    click.echo(f"{'service':<14}{'state':<13}{'pid':<9}{'rss':<10}{'address':<45}log")
    for row in rows:
        click.echo(row.line())
    if not all(r.state in ("running", "in-process") for r in rows):
        raise SystemExit(3)
