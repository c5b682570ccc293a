"""CatchUpRunner's pace: a steady stream is applied in fewer, larger batches; an event
after a quiet spell at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, cast

from projections.runner import CatchUpRunner
from schemas.events import ProjectedEvent


class _Log:
    def __init__(self) -> None:
        self.positions: list[int] = []
        self.changed = asyncio.Event()

    def append(self, count: int) -> None:
        start = len(self.positions)
        self.positions.extend(range(start + 1, start + count + 1))
        self.changed.set()

    async def read(self, after: int, limit: int) -> Sequence[ProjectedEvent]:
        found = [p for p in self.positions if p > after][:limit]
        return [cast(ProjectedEvent, _Event(p)) for p in found]

    async def head(self) -> int:
        return len(self.positions)

    async def wait(self, after: int, timeout: float) -> None:
        if len(self.positions) > after:
            return
        self.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), timeout)


class _Event:
    def __init__(self, position: int) -> None:
        self.position = position


class _Target:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.applied = 0

    async def checkpoint(self, partition: int = 0) -> int:
        return self.applied

    async def apply(self, events: Sequence[Any], partition: int = 0) -> None:
        self.batches.append([e.position for e in events])
        self.applied = events[-1].position


async def _until(condition: Any) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.005)


async def _feed(pace: float) -> list[list[int]]:
    log, target, stop = _Log(), _Target(), asyncio.Event()
    runner = CatchUpRunner(log, target, name="t", pace=pace, idle_wait=0.05)  # type: ignore[arg-type]
    task = asyncio.create_task(runner.run(stop))
    log.append(1)
    await _until(lambda: target.applied == 1)  # after a quiet spell: at once
    for _ in range(9):  # a steady stream, well inside one pace
        log.append(1)
        await asyncio.sleep(0.01)
    await _until(lambda: target.applied == 10)
    stop.set()
    await task
    return target.batches


async def test_a_paced_runner_gathers_a_stream_into_one_batch() -> None:
    assert await _feed(pace=1.0) == [[1], [2, 3, 4, 5, 6, 7, 8, 9, 10]]


async def test_without_pace_each_notification_is_applied() -> None:
    batches = await _feed(pace=0.0)
    assert len(batches) > 2
    assert [p for batch in batches for p in batch] == list(range(1, 11))


async def test_full_batches_go_on_at_once_and_the_rest_waits_for_the_pace() -> None:
    log, target, stop = _Log(), _Target(), asyncio.Event()
    runner = CatchUpRunner(log, target, name="t", pace=0.5, batch_size=5, idle_wait=0.05)  # type: ignore[arg-type]
    log.append(12)
    arrived_while_applying: list[int] = []
    apply = target.apply

    async def slow_apply(events: Sequence[Any], partition: int = 0) -> None:
        await apply(events, partition)
        if len(target.batches) == 3:  # the last of the backlog: more arrives meanwhile
            log.append(2)
            arrived_while_applying.extend(log.positions[-2:])

    target.apply = slow_apply  # type: ignore[method-assign]
    task = asyncio.create_task(runner.run(stop))
    await _until(lambda: target.applied == 12)
    assert target.batches == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12]]  # no pause between
    await asyncio.sleep(0.25)  # inside the pace: what arrived during the apply waits
    assert target.applied == 12
    await _until(lambda: target.applied == 14)
    assert target.batches[-1] == arrived_while_applying == [13, 14]
    stop.set()
    await task


async def test_a_hurry_cuts_the_pace_short() -> None:
    log, target, stop = _Log(), _Target(), asyncio.Event()
    runner = CatchUpRunner(log, target, name="t", pace=600.0, idle_wait=0.05)  # type: ignore[arg-type]
    task = asyncio.create_task(runner.run(stop))
    log.append(1)
    await _until(lambda: target.applied == 1)  # after a quiet spell: at once
    log.append(2)
    await asyncio.sleep(0.1)
    assert target.applied == 1  # gathering for the pace
    runner.hurry()
    await _until(lambda: target.applied == 3)
    assert target.batches == [[1], [2, 3]]
    stop.set()
    await task
