"""Read-your-writes: wait, bounded, until a read model has applied a given position."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class ConsistencyTimeoutError(Exception):
    def __init__(self, wanted: int, reached: int, waited: float) -> None:
        super().__init__(
            f"the read model reached position {reached}, not {wanted}, within {waited:.1f}s; "
            "retry later or lower min_position"
        )


class InvalidQueryError(Exception):
    """A query parameter or header that cannot be understood."""


def min_position_of(query: int | str | None, header: str | None) -> int | None:
    """The position a read must wait for: `?min_position=` wins over the header (both are
    checked when both are sent)."""
    wanted: int | None = None
    for name, raw in (("min_position", query), ("X-Strata-Min-Position", header)):
        if raw is None or raw == "":
            continue
        try:
            value = int(raw)
        except ValueError:
            raise InvalidQueryError(f"{name} must be an integer") from None
        if value < 0:
            raise InvalidQueryError(f"{name} must be a non-negative integer")
        wanted = value if wanted is None else wanted
    return wanted


POLL_INTERVAL = 0.005  # seconds between the shared watcher's reads while anyone waits


class PositionWatcher:
    """Read-your-writes waits of a whole process on one watcher.

    A read with `min_position` first reads the watermark itself (one read, as it always
    did); when the read model is not there yet it joins the watcher, and one task reads the
    watermark every `interval` for all the waiting reads and wakes each as soon as a read
    that *started after it joined* shows its position. The store sees one read per interval
    however many requests wait (it used to be one poll loop per request, backing off to
    100 ms: both more load and up to 100 ms late), and visibility follows the apply within
    an interval. The task stops when nobody waits.
    """

    def __init__(
        self,
        reached: Callable[[], Awaitable[int]],
        *,
        interval: float = POLL_INTERVAL,
        hurry: Callable[[], None] | None = None,
    ) -> None:
        self._reached = reached
        self._hurry = hurry
        """Tells an in-process feed that a read waits (it may be letting events gather)."""
        self._interval = interval
        self._joining: list[tuple[int, asyncio.Future[None]]] = []
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []
        self._last = 0
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def waiting(self) -> int:
        """How many reads wait (0: the watcher's task has stopped or is about to)."""
        return sum(not f.done() for _, f in [*self._joining, *self._waiting])

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def wait(self, wanted: int | None, timeout: float) -> None:
        """Return once the read model has applied `wanted`; ConsistencyTimeoutError after
        `timeout` seconds; whatever reading the watermark raised, if it failed."""
        if wanted is None:
            return
        current = await self._reached()
        if current >= wanted:
            return
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests): forget the old one's waiters
            self._loop, self._task = loop, None
            self._joining, self._waiting = [], []
        self._last = max(self._last, current)
        if self._hurry is not None:
            self._hurry()
        future: asyncio.Future[None] = loop.create_future()
        self._joining.append((wanted, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._watch(), name="min_position watcher")
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            raise ConsistencyTimeoutError(wanted, self._last, timeout) from None
        finally:
            future.cancel()  # a no-op once done; lets the watcher drop a waiter that left

    async def _watch(self) -> None:
        while self._joining or self._waiting:
            # Who joined before this read starts may be woken by it.
            self._waiting.extend(self._joining)
            self._joining.clear()
            try:
                value = await self._reached()
            except Exception as exc:
                for _, future in self._waiting:
                    if not future.done():
                        future.set_exception(exc)
                self._waiting.clear()
            else:
                self._last = value
                still: list[tuple[int, asyncio.Future[None]]] = []
                for wanted, future in self._waiting:
                    if future.done():
                        continue
                    if value >= wanted:
                        future.set_result(None)
                    else:
                        still.append((wanted, future))
                self._waiting = still
            if self._joining or self._waiting:
                await asyncio.sleep(self._interval)
