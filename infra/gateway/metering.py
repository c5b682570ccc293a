"""Metering API calls without touching a database on the request path.

Calls are counted in memory per (account, UTC hour, route class); a background task records
them every few seconds as `UsageReport` events (one per account and hour), so usage and
billing are reproducible from the event store. If recording fails the counts are kept for
the next attempt; at shutdown a last flush runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog

from commands.ports import CommandContext, EventStore
from domain.access import OPERATOR
from domain.usage import RouteClass, UsageReport

log = structlog.get_logger("strata.metering")

Key = tuple[str, str, str]  # (account id, hour, route class)


def route_class(service: str, path: str) -> RouteClass:
    """How a call is billed, from which app served it and its route template."""
    if "/search" in path:
        return RouteClass.SEARCH
    if path.startswith("/v1/data/query"):
        return RouteClass.QUERY
    if service == "command API":
        if path.startswith("/v1/ingest") or path.startswith("/v1/data/"):
            return RouteClass.INGEST
        return RouteClass.COMMAND
    return RouteClass.READ


class Meter:
    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.clock = clock
        self.counts: Counter[Key] = Counter()
        self._hour: tuple[datetime, datetime, str] | None = None

    def count(self, account_id: str, service: str, path: str) -> None:
        now = self.clock()
        hour = self._hour
        if hour is None or not hour[0] <= now < hour[1]:  # the hour's name, made once
            start = now.replace(minute=0, second=0, microsecond=0)
            hour = self._hour = (start, start + timedelta(hours=1), start.isoformat())
        self.counts[(account_id, hour[2], route_class(service, path).value)] += 1

    def take(self) -> Counter[Key]:
        taken, self.counts = self.counts, Counter()
        return taken

    def give_back(self, counts: Counter[Key]) -> None:
        self.counts.update(counts)

    def flush(self, store: EventStore) -> int:
        """Record what was counted; returns how many reports were appended."""
        taken = self.take()
        if not taken:
            return 0
        grouped: dict[tuple[str, str], dict[str, int]] = {}
        for (account, hour, kind), calls in taken.items():
            grouped.setdefault((account, hour), {})[kind] = calls
        reports = [
            UsageReport(account_id=account, hour=hour, calls=calls)
            for (account, hour), calls in sorted(grouped.items())
        ]
        ctx = CommandContext(principal=OPERATOR, correlation_id="metering")
        try:
            store.append(reports, ctx, lambda commit: commit)
        except Exception:
            self.give_back(taken)
            raise
        return len(reports)

    async def run(self, store: EventStore, stop: asyncio.Event, interval: float) -> None:
        """Flush every `interval` seconds, and once more when `stop` is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            try:
                await asyncio.to_thread(self.flush, store)
            except Exception:
                log.warning("usage flush failed; will retry", exc_info=True)
