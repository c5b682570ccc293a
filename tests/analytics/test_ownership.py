"""chdb has one owner per data path: `strata status` and `strata replay analytics` say so
clearly while another process owns it, and work once it has stopped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from infra.bootstrap import bootstrap
from infra.cli import main
from tests.conftest import embedded_settings

OWNER = """
import asyncio, sys, time
from infra.adapters.clickhouse import ClickHouseAnalyticsStore, Target
store = ClickHouseAnalyticsStore(Target.of(None, sys.argv[1]))
asyncio.run(store.active_generation())
print("owned", flush=True)
sys.stdin.read()  # until the test closes our stdin
store.close()
"""


def _invoke(args: list[str], data_dir: Path) -> Any:
    env: dict[str, str | None] = {
        "STRATA_ADMIN_TOKEN": "x",
        "STRATA_LOG_LEVEL": "warning",
        "COLUMNS": "200",
        # the suite exports the provisioned chdb path; this test needs the one under data_dir
        "STRATA_CLICKHOUSE_PATH": None,
        "STRATA_CLICKHOUSE_URL": None,
    }
    return CliRunner().invoke(main, [*args, "--data-dir", str(data_dir)], env=env)


def test_status_and_replay_name_the_owner(tmp_path: Path) -> None:
    data = embedded_settings(tmp_path / "data").data_path
    chdb = data / "clickhouse"
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(chdb)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == "owned"
        status = _invoke(["status", "--json"], data)
        assert status.exit_code == 0, status.output
        rows = {row["projection"]: row for row in json.loads(status.stdout)}
        assert rows["lookups"]["lag"] == 0
        assert rows["analytics"]["error"].startswith(
            f"chdb path {chdb} is owned by pid {owner.pid}"
        )
        table = _invoke(["status"], data)
        assert table.exit_code == 0
        assert "owned by pid" in table.stdout
        assert str(owner.pid) in table.stdout
        replay = _invoke(["replay", "analytics"], data)
        assert replay.exit_code == 1
        assert f"analytics: chdb path {chdb} is owned by pid {owner.pid}" in replay.output
    finally:
        assert owner.stdin is not None
        owner.stdin.close()
        owner.wait(timeout=30)
    replay = _invoke(["replay", "analytics"], data)
    assert replay.exit_code == 0, replay.output
    status = json.loads(_invoke(["status", "--json"], data).stdout)
    assert {"projection": "analytics", "generation": 2, "position": 0, "head": 0, "lag": 0} in (
        status
    )


async def test_the_read_api_process_feeds_analytics_on_chdb(tmp_path: Path) -> None:
    async def fed(url: str | None, **process: bool) -> list[str]:
        platform = bootstrap(embedded_settings(tmp_path / "data", clickhouse_url=url))
        try:
            assert platform.slots("analytics") == range(1)  # the log's one slot, embedded
            return [p.name for p in platform.log_fed(**process)]
        finally:
            await platform.aclose()

    chdb, server = None, "http://u:p@clickhouse.example:8123/strata"
    every = ["lookups", "search", "analytics", "webhooks"]
    assert await fed(chdb, projector=True, serves_reads=True) == every  # strata dev
    assert await fed(chdb, projector=True, serves_reads=False) == [  # projector
        "lookups",
        "search",
        "webhooks",
    ]
    assert await fed(chdb, projector=False, serves_reads=True) == ["analytics"]  # read API
    assert await fed(server, projector=True, serves_reads=False) == every
    assert await fed(server, projector=False, serves_reads=True) == []
