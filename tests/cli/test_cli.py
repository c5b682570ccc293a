"""The `strata` CLI over the same configuration as the servers: status, audit, replay."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from commands import accounts, ingest
from commands.ports import CommandContext
from domain.access import ALL_SCOPES, OPERATOR, Principal
from infra.bootstrap import Platform, bootstrap
from infra.cli import main
from infra.config import Settings
from projections.runner import CatchUpRunner
from schemas.commands import CreateAccount, UpdateAccount


def _seed(settings: Settings, projected: bool) -> dict[str, Any]:
    """An account with a few record writes; optionally projected."""

    async def seed() -> dict[str, Any]:
        platform: Platform = bootstrap(settings)
        try:
            log = platform.log
            operator = CommandContext(OPERATOR, "cli-test")
            account = accounts.create_account(
                CreateAccount(name="Acme", email="a@acme.example"), log, operator
            )
            account_id = uuid.UUID(account.id)
            ctx = CommandContext(Principal(ALL_SCOPES, account_id, uuid.uuid4()), "cli-test")
            accounts.update_account(account_id, UpdateAccount(plan="pro"), log, ctx)
            for total in (1, 2, 3):
                ingest.ingest_one(ingest.Entry("orders", "o-1", {"total": total}), log, ctx)
            if projected:
                await CatchUpRunner(platform.source, platform.lookups, name="t").catch_up()
            return {"account": account.id, "head": log.head()}
        finally:
            await platform.aclose()

    return asyncio.run(seed())


def _invoke(args: list[str], settings: Settings) -> Any:
    env = {
        "STRATA_MODE": settings.mode,
        "STRATA_DATA_DIR": settings.data_dir,
        "STRATA_POSTGRES_DSN": settings.postgres_dsn,
        "STRATA_POSTGRES_SCHEMA": settings.postgres_schema,
        "STRATA_REDIS_URL": settings.redis_url,
        "STRATA_REDIS_PREFIX": settings.redis_prefix,
        "STRATA_ELASTICSEARCH_URL": settings.elasticsearch_url,
        "STRATA_ELASTICSEARCH_INDEX_PREFIX": settings.elasticsearch_index_prefix,
        "STRATA_ADMIN_TOKEN": settings.admin_token or "",
        "STRATA_LOG_LEVEL": "warning",
        "STRATA_PROJECTION_FEED": settings.feed,
        "COLUMNS": "200",
    }
    result = CliRunner().invoke(main, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_status_audit_and_replay(settings: Settings) -> None:
    seeded = _seed(settings, projected=False)
    status = json.loads(_invoke(["status", "--json"], settings).stdout)
    assert status == [
        {
            "projection": name,
            "generation": 1,
            "position": 0,
            "head": seeded["head"],
            "lag": seeded["head"],
        }
        for name in ("lookups", "search", "analytics", "webhooks")
    ]

    replayed = _invoke(["replay", "lookups"], settings)
    assert f"replayed up to position {seeded['head']}" in replayed.stderr
    after = json.loads(_invoke(["status", "--json"], settings).stdout)[0]
    assert (after["generation"], after["position"], after["lag"]) == (2, seeded["head"], 0)

    history = json.loads(
        _invoke(["audit", "account", seeded["account"], "--json"], settings).stdout
    )
    assert [e["type"] for e in history["events"]] == ["Account.Opened", "Account.PlanChanged"]
    table = _invoke(["audit", "account", seeded["account"]], settings).stdout
    assert "Account.PlanChanged" in table

    record = ["audit", "record", "orders", "o-1", "--account", seeded["account"]]
    events = json.loads(_invoke([*record, "--json"], settings).stdout)["events"]
    assert [e["payload"]["data"]["total"] for e in events] == [1, 2, 3]
    past = json.loads(_invoke([*record, "--as-of", "2", "--json"], settings).stdout)
    assert (past["data"], past["version"]) == ({"total": 2}, 2)

    partial = _invoke(["replay", "lookups", "--from-position", "3"], settings)
    assert f"replayed up to position {seeded['head']}" in partial.stderr
    after = json.loads(_invoke(["status", "--json"], settings).stdout)[0]
    assert (after["generation"], after["lag"]) == (3, 0)


def test_audit_of_an_unknown_stream_fails_clearly(settings: Settings) -> None:
    env_settings = settings
    result = CliRunner().invoke(
        main,
        ["audit", "account", str(uuid.uuid4())],
        env={
            "STRATA_MODE": env_settings.mode,
            "STRATA_DATA_DIR": env_settings.data_dir,
            "STRATA_POSTGRES_DSN": env_settings.postgres_dsn,
            "STRATA_POSTGRES_SCHEMA": env_settings.postgres_schema,
            "STRATA_REDIS_URL": env_settings.redis_url,
            "STRATA_REDIS_PREFIX": env_settings.redis_prefix,
            "STRATA_ADMIN_TOKEN": "x",
        },
    )
    assert result.exit_code == 1
    assert "no events for stream" in result.output


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["dev"],
        ["serve"],
        ["projector"],
        ["replay"],
        ["status"],
        ["audit"],
        ["audit", "account"],
        ["audit", "record"],
        ["infra"],
        ["infra", "up"],
        ["config"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_unknown_projection_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["replay", "nope", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown projection" in result.output


def test_signing_keys_rotate(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path)]
    first = json.loads(runner.invoke(main, ["keys", "list", "--json", *args]).stdout)
    assert [k["signing"] for k in first] == [True]
    assert runner.invoke(main, ["keys", "rotate", *args]).exit_code == 0
    after = json.loads(runner.invoke(main, ["keys", "list", "--json", *args]).stdout)
    assert [(k["kid"] == first[0]["kid"], k["signing"]) for k in after] == [
        (True, False),
        (False, True),
    ]
    assert after[0]["retired_at"]
