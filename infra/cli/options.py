"""Options shared by commands, and turning them into Settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from infra import logs
from infra.config import Settings, from_env

F = TypeVar("F", bound=Callable[..., Any])


def data_dir_option(fn: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Embedded mode: where Strata keeps its data (env STRATA_DATA_DIR; "
        "default ./strata-data). Setting it selects the embedded mode.",
    )(fn)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(
        fn
    )


def settings_for(data_dir: str | None, **overrides: Any) -> Settings:
    """The same configuration the servers read: env vars, with --data-dir forcing embedded."""
    if data_dir is not None:
        overrides["mode"] = "embedded"
        overrides["data_dir"] = data_dir
    settings = from_env(**overrides)
    logs.configure(settings.log_level, settings.log_format)
    return settings
