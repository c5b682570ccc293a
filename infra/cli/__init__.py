"""The `strata` command line: one entry point over the same handlers, queries and settings."""

from __future__ import annotations

from infra.cli.main import main

__all__ = ["main"]
