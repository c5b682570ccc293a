"""Configuration comes from STRATA_* variables, validated at start."""

from __future__ import annotations

import pytest

from infra.config import from_env


def test_variables_and_defaults() -> None:
    settings = from_env({"STRATA_MODE": "distributed", "STRATA_READ_PORT": "9001"})
    assert (settings.mode, settings.read_port, settings.command_port) == ("distributed", 9001, 8000)


def test_invalid_values_stop_the_process_with_the_reason() -> None:
    with pytest.raises(SystemExit, match="mode"):
        from_env({"STRATA_MODE": "cluster"})
    with pytest.raises(SystemExit, match="command_port"):
        from_env({"STRATA_COMMAND_PORT": "eighty"})
