"""`strata keys`: the ring of keys that sign access tokens."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from infra.bootstrap import bootstrap
from infra.cli.options import data_dir_option, json_option, settings_for


@click.group()
def keys() -> None:
    """Signing keys of access tokens (ES256). Rotate regularly: the new key signs at once,
    the old one keeps verifying until every token it signed has expired (no downtime)."""


def _when(stamp: float | None) -> str:
    return "" if stamp is None else datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")


@keys.command(name="list")
@data_dir_option
@json_option
def list_keys(data_dir: str | None, as_json: bool) -> None:
    """The keys that sign or still verify tokens (never their private parts)."""
    ring = bootstrap(settings_for(data_dir)).tokens.ring
    signing = ring.signing_key().kid
    rows = [
        {
            "kid": key.kid,
            "created_at": _when(key.created_at),
            "retired_at": _when(key.retired_at),
            "signing": key.kid == signing,
        }
        for key in ring.live()
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        state = "signs" if row["signing"] else f"verifies (retired {row['retired_at']})"
        click.echo(f"{row['kid']}  created {row['created_at']}  {state}")


@keys.command()
@data_dir_option
def rotate(data_dir: str | None) -> None:
    """Make a new signing key; the current one retires."""
    fresh = bootstrap(settings_for(data_dir)).tokens.ring.rotate()
    click.echo(f"signing with {fresh.kid} from now on", err=True)
