"""A rebuild of the search index from the event store equals the incrementally built one
(same count, same content hash), in both modes; after the swap searches answer the same."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import uuid
from typing import Any

import orjson

from commands import ingest
from commands.ports import CommandContext
from domain.access import ALL_SCOPES, Principal
from domain.errors import DomainError
from infra.adapters.search.elastic import ElasticSearchIndex
from infra.bootstrap import Platform
from infra.config import Settings
from projections import search
from projections.runner import CatchUpRunner
from projections.search import Clause, SearchQuery, Sort
from tests.conftest import Stack

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]


def fingerprint(dump: dict[str, Any]) -> tuple[int, str]:
    docs = dump["docs"]
    return len(docs), hashlib.sha256(orjson.dumps(docs, option=orjson.OPT_SORT_KEYS)).hexdigest()


def write_history(platform: Platform, accounts: list[str], seed: int) -> None:
    """Upserts, deletes and re-creates of the same keys by two tenants, in random order."""
    rng = random.Random(seed)
    contexts = [
        CommandContext(Principal(ALL_SCOPES, uuid.UUID(a), uuid.uuid4()), "rebuild-test")
        for a in accounts
    ]
    for _ in range(60):
        ctx = rng.choice(contexts)
        source = rng.choice(["orders", "notes"])
        if rng.random() < 0.2:
            with contextlib.suppress(DomainError):  # deleting what is not there: no event
                ingest.delete_record(source, f"k{rng.randrange(12)}", platform.log, ctx)
            continue
        entries = [
            ingest.Entry(
                source,
                f"k{rng.randrange(12)}",
                {"text": " ".join(rng.choices(WORDS, k=4)), "n": rng.randrange(100)},
            )
            for _ in range(rng.randrange(1, 5))
        ]
        ingest.ingest(entries, platform.log, ctx)


async def test_rebuild_equals_incremental(stack: Stack, settings: Settings) -> None:
    platform = stack.platform
    tenants = [(await stack.new_account()).account_id for _ in range(2)]
    await asyncio.to_thread(write_history, platform, tenants, 7)
    head = await stack.head()
    live = platform.search
    # Incremental: the stack's runner, plus a catch-up in small batches to be sure.
    await CatchUpRunner(platform.source, live, name="incremental", batch_size=7).catch_up()
    assert await platform.watermark(search.NAME) == head
    incremental = await (await live.writer()).dump()
    assert incremental["docs"], "the history must leave documents to compare"

    target = await live.rebuild_into()
    reached = await CatchUpRunner(platform.source, target, name="rebuild").catch_up()
    await target.seal(reached, platform.slots(search.NAME))
    rebuilt = await target.writer.dump()
    assert fingerprint(rebuilt) == fingerprint(incremental)
    assert rebuilt == incremental
    assert await target.checkpoint() == head

    accounts = sorted({doc["account_id"] for doc in incremental["docs"].values()})
    queries = [
        SearchQuery(account, source, clauses, sort=sort, limit=100)
        for account in accounts
        for source in ("orders", "notes")
        for clauses in ((), (Clause("alpha"),), (Clause("beta"), Clause("gamma", exclude=True)))
        for sort in (Sort("id"), Sort("data", True, "n"), Sort("_score"))
    ]

    async def answers() -> list[Any]:
        out = []
        for query in queries:
            page = await platform.search_index.search(query)
            out.append((page.total, [(hit.record, hit.highlights) for hit in page.hits]))
        return out

    before = await answers()
    previous = await target.swap()
    if isinstance(platform.search_index, ElasticSearchIndex):
        platform.search_index._active = None  # drop the cached alias
    assert await platform.search_index.active_generation() == target.writer.generation
    assert await answers() == before
    await platform.search_index.drop(previous)
    assert await platform.watermark(search.NAME) == head
