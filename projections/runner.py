"""Feeds a projection from the event store's notification log, in order, from its checkpoint.

The checkpoint lives in the projection's own store and moves in the same write as the
changes, so a restart resumes exactly where the last applied batch ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from projections.ports import EventSource, Feedable

log = logging.getLogger(__name__)


class CatchUpRunner:
    def __init__(
        self,
        source: EventSource,
        target: Feedable,
        *,
        name: str,
        batch_size: int = 1000,
        idle_wait: float = 1.0,
        max_backoff: float = 10.0,
        start_after: int = 0,
        pace: float = 0.0,
    ) -> None:
        self.source = source
        self.target = target
        self.name = name
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self.max_backoff = max_backoff
        self.start_after = start_after
        self.pace = pace
        """Seconds to let events gather after applying some, so a steady stream is applied
        in fewer, larger batches (ClickHouse: every insert is a part to merge). An event
        after a quiet spell is applied at once, and `hurry()` cuts a pace short."""
        self._hurried = asyncio.Event()

    def hurry(self) -> None:
        """Someone waits for what gathered (a read with `min_position`): apply it now,
        not at the end of the pace."""
        self._hurried.set()

    async def catch_up(self, progress: Callable[[int], None] | None = None) -> int:
        """Apply everything up to the current end of the log; returns the checkpoint."""
        position = max(await self.target.checkpoint(), self.start_after)
        while True:
            events = await self.source.read(position, self.batch_size)
            if not events:
                return position
            await self.target.apply(events)
            position = events[-1].position
            if progress is not None:
                progress(position)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the log until `stop` is set. Failures are retried with backoff, never skipped."""
        backoff = 0.1
        self._hurried = asyncio.Event()  # of this loop (tests run several)
        while not stop.is_set():
            try:
                if self.pace:
                    await self._paced_step(stop)
                else:
                    position = await self.catch_up()
                    await _until_first(self.source.wait(position, self.idle_wait), stop.wait())
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("projection %s failed; retrying in %.1fs", self.name, backoff)
                await _until_first(asyncio.sleep(backoff), stop.wait())
                backoff = min(backoff * 2, self.max_backoff)

    async def _paced_step(self, stop: asyncio.Event) -> None:
        """One read and one apply of what gathered, then the pace (none while a full batch
        shows more is waiting). Catching up to the end in one go would follow the batch
        with the few events that arrived while it was applied: small applies again."""
        self._hurried.clear()  # a hurry from here on is for events this step may not read
        position = max(await self.target.checkpoint(), self.start_after)
        events = await self.source.read(position, self.batch_size)
        if not events:
            await _until_first(self.source.wait(position, self.idle_wait), stop.wait())
            return
        await self.target.apply(events)
        if len(events) < self.batch_size:
            await _until_first(asyncio.sleep(self.pace), stop.wait(), self._hurried.wait())


async def _until_first(*aws: object) -> None:
    tasks = [asyncio.ensure_future(aw) for aw in aws]  # type: ignore[call-overload]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
