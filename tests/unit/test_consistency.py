"""read_api.consistency.PositionWatcher: one watcher for every read waiting on min_position."""

from __future__ import annotations

import asyncio

import pytest

from read_api.consistency import ConsistencyTimeoutError, PositionWatcher


class Watermark:
    """A fake watermark; counts reads and can hold them open."""

    def __init__(self) -> None:
        self.value = 0
        self.reads = 0
        self.error: Exception | None = None
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> int:
        self.reads += 1
        value = self.value  # what the read sees is what was there when it started
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return value


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_position_already_applied_costs_one_read() -> None:
    mark = Watermark()
    mark.value = 7
    watcher = PositionWatcher(mark, interval=0)
    await watcher.wait(7, timeout=1)
    await watcher.wait(None, timeout=1)
    assert mark.reads == 1


async def test_many_waiting_reads_share_one_watcher() -> None:
    mark = Watermark()
    watcher = PositionWatcher(mark, interval=0.3)
    waiting = [asyncio.create_task(watcher.wait(10 + i, timeout=30)) for i in range(50)]
    await settle()
    assert not any(task.done() for task in waiting)
    assert mark.reads == 50 + 1  # each request's own first read, then one for all of them
    mark.value = 30
    await asyncio.wait(waiting, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    await settle()
    assert sum(task.done() for task in waiting) == 21  # wanted 10 .. 30
    mark.value = 59
    await asyncio.wait(waiting, timeout=5)
    assert all(task.done() and task.exception() is None for task in waiting)
    await settle()
    assert not watcher.running  # nobody waits: it stopped


async def test_a_read_that_started_before_a_waiter_joined_does_not_release_it() -> None:
    mark = Watermark()
    watcher = PositionWatcher(mark, interval=0)
    first = asyncio.create_task(watcher.wait(1, timeout=30))
    await settle()
    mark.gate = asyncio.Event()  # the watcher's next read starts and is held open
    await asyncio.sleep(0.01)
    reads = mark.reads
    mark.value = 5  # applied after that read started: it still returns the old value
    mark.gate.set()
    mark.gate = None
    await asyncio.wait_for(first, 5)
    assert mark.reads > reads


async def test_the_timeout_names_the_position_reached() -> None:
    mark = Watermark()
    mark.value = 3
    watcher = PositionWatcher(mark, interval=0.001)
    with pytest.raises(ConsistencyTimeoutError, match="reached position 3, not 9"):
        await watcher.wait(9, timeout=0.05)
    await settle()
    assert watcher.waiting == 0


async def test_a_failing_read_fails_the_waiting_reads() -> None:
    mark = Watermark()
    watcher = PositionWatcher(mark, interval=0.001)
    waiting = [asyncio.create_task(watcher.wait(5, timeout=30)) for _ in range(3)]
    await asyncio.sleep(0.01)
    mark.error = ConnectionError("store down")
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    mark.error = None
    mark.value = 5
    await watcher.wait(5, timeout=1)  # the next wait works again


async def test_a_cancelled_read_leaves_the_watcher() -> None:
    mark = Watermark()
    watcher = PositionWatcher(mark, interval=0.001)
    task = asyncio.create_task(watcher.wait(5, timeout=30))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.01)
    assert watcher.waiting == 0
    assert not watcher.running


async def test_only_a_read_that_must_wait_hurries_the_feed() -> None:
    mark, hurried = Watermark(), []
    mark.value = 7
    watcher = PositionWatcher(mark, interval=0.001, hurry=lambda: hurried.append(True))
    await watcher.wait(7, timeout=1)
    assert hurried == []  # already there
    waiting = asyncio.create_task(watcher.wait(9, timeout=5))
    await settle()
    assert hurried == [True]
    mark.value = 9
    await waiting
