"""Replaying every event from zero rebuilds exactly what incremental projection built.

Random command sequences run through the real handlers and event store; the runner applies
them incrementally in random batch sizes, then a rebuild fills a fresh generation from zero.
Both must equal each other and the in-memory reference semantics, in every store.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import accounts, ingest
from commands.ports import CommandContext
from domain.access import ALL_SCOPES, OPERATOR, Principal
from domain.errors import DomainError
from infra.bootstrap import Platform, bootstrap
from infra.config import from_env
from projections import lookups
from projections.memory import Documents
from projections.runner import CatchUpRunner
from schemas.commands import CreateAccount, GenerateApiKey, UpdateAccount
from tests.conftest import embedded_settings

keys = st.sampled_from(["a", "b", "c", "d"])
sources = st.sampled_from(["orders", "clicks"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
records = st.dictionaries(st.text(max_size=6), json_values, max_size=4)

operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("upsert"), sources, st.lists(st.tuples(keys, records), min_size=1, max_size=4)
        ),
        st.tuples(st.just("delete"), sources, keys),
        st.tuples(st.just("profile"), st.sampled_from(["Acme", "Acme Corp", "Zed"])),
        st.tuples(st.just("plan"), st.sampled_from(["basic", "pro", "enterprise"])),
        st.tuples(st.just("status"), st.sampled_from(["active", "suspended"])),
        st.tuples(st.just("new_key")),
        st.tuples(st.just("revoke"), st.integers(0, 3)),
        st.tuples(st.just("project"), st.integers(1, 7)),
    ),
    max_size=30,
)


def _run(platform: Platform, ops: list[tuple[Any, ...]], redis_prefix: str | None = None) -> None:
    async def run() -> None:
        try:
            await _scenario(platform, ops)
        finally:
            if redis_prefix is not None:
                await _drop_redis(platform, redis_prefix)
            await platform.aclose()

    asyncio.run(run())


async def _scenario(platform: Platform, ops: list[tuple[Any, ...]]) -> None:
    log = platform.log
    operator = CommandContext(OPERATOR, "test")
    account = accounts.create_account(
        CreateAccount(name="Acme", email="a@acme.example"), log, operator
    )
    owner_id = uuid.UUID(account.id)
    owner = Principal(scopes=ALL_SCOPES, account_id=owner_id, key_id=uuid.uuid4())
    ctx = CommandContext(owner, "test")
    key_ids: list[uuid.UUID] = []
    live = platform.lookups

    def attempt(handler: Callable[..., object], *args: object) -> object:
        # A rule may refuse (deleting a missing record, writing while suspended): no event.
        with contextlib.suppress(DomainError):
            return handler(*args)
        return None

    for op in ops:
        kind = op[0]
        if kind == "upsert":
            entries = [ingest.Entry(op[1], key, data) for key, data in op[2]]
            attempt(ingest.ingest, entries, log, ctx)
        elif kind == "delete":
            attempt(ingest.delete_record, op[1], op[2], log, ctx)
        elif kind == "profile":
            attempt(accounts.update_account, owner_id, UpdateAccount(name=op[1]), log, ctx)
        elif kind == "plan":
            attempt(accounts.update_account, owner_id, UpdateAccount(plan=op[1]), log, ctx)
        elif kind == "status":
            attempt(accounts.update_account, owner_id, UpdateAccount(status=op[1]), log, operator)
        elif kind == "new_key":
            command = GenerateApiKey(name="k", scopes=["data:read"])
            issued = attempt(accounts.generate_api_key, command, log, ctx, lambda: "s" * 43)
            if issued is not None:
                key_ids.append(uuid.UUID(issued.id))  # type: ignore[attr-defined]
        elif kind == "revoke" and key_ids:
            attempt(accounts.revoke_api_key, key_ids[op[1] % len(key_ids)], log, ctx)
        elif kind == "project":
            await CatchUpRunner(platform.source, live, name="live", batch_size=op[1]).catch_up()

    await CatchUpRunner(platform.source, live, name="live", batch_size=3).catch_up()
    incremental = await (await live.writer()).dump()

    rebuilt_target = await live.rebuild_into()
    await CatchUpRunner(platform.source, rebuilt_target, name="rebuild").catch_up()
    rebuilt = await rebuilt_target.writer.dump()

    reference = Documents()
    reference.apply_now(lookups.changes(await platform.source.read(0, 1_000_000)))
    oracle = await reference.dump()

    assert incremental == rebuilt == oracle
    assert (
        await live.checkpoint() == await rebuilt_target.checkpoint() == await platform.source.head()
    )


SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(ops=operations)
def test_replay_equals_incremental_embedded(tmp_path: Path, ops: list[tuple[Any, ...]]) -> None:
    _run(bootstrap(embedded_settings(tmp_path / uuid.uuid4().hex)), ops)


@pytest.mark.integration
@SETTINGS
@given(ops=operations)
def test_replay_equals_incremental_distributed(
    postgres_dsn: str, redis_url: str, ops: list[tuple[Any, ...]]
) -> None:
    schema = "t_" + uuid.uuid4().hex[:12]
    prefix = "t_" + uuid.uuid4().hex[:12]
    platform = bootstrap(
        from_env(
            {},
            mode="distributed",
            postgres_dsn=postgres_dsn,
            postgres_schema=schema,
            postgres_pool_size=2,
            redis_url=redis_url,
            redis_prefix=prefix,
            admin_token="x",
        )
    )
    try:
        _run(platform, ops, redis_prefix=prefix)
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


async def _drop_redis(platform: Platform, prefix: str) -> None:
    store = platform.documents
    client = store.client  # type: ignore[attr-defined]
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)
