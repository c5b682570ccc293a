"""Request deadlines on one periodic check: late work ends as TimeoutError, within the
timeout plus the check's resolution; nothing else is cancelled."""

from __future__ import annotations

import asyncio
import time

import pytest

from infra.gateway.deadlines import Deadlines


async def test_late_work_ends_as_a_timeout_within_the_resolution() -> None:
    deadlines = Deadlines(0.2)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with deadlines():
            await asyncio.sleep(5)
    assert time.monotonic() - started >= 0.2  # not before its deadline (and long before 5 s)
    assert not deadlines.running  # expired entries live there too: nothing is left behind


async def test_work_in_time_is_untouched_and_the_check_stops() -> None:
    deadlines = Deadlines(0.2)
    for _ in range(3):
        async with deadlines():
            await asyncio.sleep(0.01)
    await asyncio.sleep(deadlines.resolution * 2)
    assert deadlines._timer is None  # nothing running: no periodic check left
    async with deadlines():  # and a later request arms it again
        await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        async with deadlines():
            await asyncio.sleep(5)


async def test_only_the_late_request_of_several_times_out() -> None:
    deadlines = Deadlines(0.2)

    async def request(seconds: float) -> str:
        async with deadlines():
            await asyncio.sleep(seconds)
        return "done"

    results = await asyncio.gather(request(0.01), request(5), request(0.05), return_exceptions=True)
    assert results[0] == "done"
    assert results[2] == "done"
    assert isinstance(results[1], TimeoutError)


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    deadlines = Deadlines(5)

    async def request() -> None:
        async with deadlines():
            await asyncio.sleep(5)

    task = asyncio.create_task(request())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not deadlines.running


def test_one_instance_serves_successive_event_loops() -> None:
    deadlines = Deadlines(0.1)

    async def late() -> None:
        async with deadlines():
            await asyncio.sleep(5)

    for _ in range(2):  # the first loop's pending check must not stall the second's
        with pytest.raises(TimeoutError):
            asyncio.run(asyncio.wait_for(late(), 3))


async def test_a_zero_timeout_ends_work_at_once_without_spinning() -> None:
    deadlines = Deadlines(0)
    assert deadlines.resolution > 0
    with pytest.raises(TimeoutError):
        async with deadlines():
            await asyncio.sleep(5)
