"""The `strata` group and its subcommands."""

from __future__ import annotations

import click

from infra.cli import audit, dlq, infra_cmd, keys, ops, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Strata: an event-sourced data platform, offered as an API.

    Configuration comes from STRATA_* environment variables (see `strata config`);
    --data-dir selects the embedded mode with its data in that folder.
    """


main.add_command(serve.dev)
main.add_command(serve.serve)
main.add_command(serve.projector)
main.add_command(serve.relay)
main.add_command(serve.worker)
main.add_command(ops.replay)
main.add_command(ops.status)
main.add_command(ops.config)
main.add_command(audit.audit)
main.add_command(dlq.dlq)
main.add_command(keys.keys)
main.add_command(infra_cmd.infra)
