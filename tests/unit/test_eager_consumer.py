"""EagerConsumer.wait_first: mode's results and cancellation, without a task for a
callback that never waits (no broker: the consumer is built, never started)."""

from __future__ import annotations

import asyncio
import uuid
import warnings

import faust
import faust._cython.streams as compiled_streams
import pytest

from streams.eager import EagerConsumer, use_eager_consumer, yield_every


@pytest.fixture
async def consumer() -> EagerConsumer:  # built on the test's loop
    app = faust.App(f"eager-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1")
    use_eager_consumer(app)
    built = app.consumer
    assert isinstance(built, EagerConsumer)
    return built


def _tasks() -> int:
    return len(asyncio.all_tasks())


async def test_a_callback_that_never_waits_runs_in_place(consumer: EagerConsumer) -> None:
    async def callback() -> str:
        return "delivered"

    suspended = asyncio.Event()
    call = callback()
    before = _tasks()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the unstarted suspend wait must be closed
        results = await consumer.wait_first(call, suspended.wait())
    assert results.done == [call]
    assert results.results == ["delivered"]
    assert not results.stopped
    assert _tasks() == before


async def test_a_callback_that_waits_finishes_as_itself(consumer: EagerConsumer) -> None:
    room = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def callback() -> str:
        steps.append("first step")
        await asyncio.sleep(0)
        steps.append("after a bare yield")
        got = await room
        return f"delivered after {got}"

    asyncio.get_running_loop().call_later(0.01, room.set_result, "room")
    call = callback()
    results = await consumer.wait_first(call, asyncio.Event().wait())
    assert results.done == [call]
    assert results.results == ["delivered after room"]
    assert steps == ["first step", "after a bare yield"]


async def test_a_suspension_abandons_a_waiting_callback(consumer: EagerConsumer) -> None:
    suspended = asyncio.Event()
    cleanup: list[str] = []

    async def callback() -> None:
        try:
            await asyncio.get_running_loop().create_future()  # a buffer that stays full
        except asyncio.CancelledError:
            cleanup.append("cancelled")
            raise

    asyncio.get_running_loop().call_later(0.01, suspended.set)
    call, suspension = callback(), suspended.wait()
    results = await consumer.wait_first(call, suspension)
    assert results.done == [suspension]  # the suspension won, as with mode's wait_first
    assert results.results == [True]
    await asyncio.sleep(0)
    assert cleanup == ["cancelled"]


async def test_errors_propagate_before_and_after_a_wait(consumer: EagerConsumer) -> None:
    async def fails_at_once() -> None:
        raise ValueError("undecodable")

    async def fails_later() -> None:
        await asyncio.sleep(0)
        raise KeyError("later")

    with pytest.raises(ValueError, match="undecodable"):
        await consumer.wait_first(fails_at_once(), asyncio.Event().wait())
    with pytest.raises(KeyError, match="later"):
        await consumer.wait_first(fails_later(), asyncio.Event().wait())


async def test_a_stopped_consumer_reports_stopped(consumer: EagerConsumer) -> None:
    async def callback() -> str:
        return "delivered"

    consumer._stopped.set()
    results = await consumer.wait_first(callback(), asyncio.Event().wait())
    assert results.stopped
    assert results.done == []


async def test_the_stream_iterator_yields_to_the_loop_every_nth_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(compiled_streams, "sleep", compiled_streams.sleep)  # restored after
    yield_every(4)
    seen_at_turn: list[int] = []
    for event in range(1, 9):
        asyncio.get_running_loop().call_soon(seen_at_turn.append, event)
        await compiled_streams.sleep(0)  # what faust awaits before each event
        seen_at_turn.append(-event)
    # other callbacks run only at every 4th event's turn
    assert seen_at_turn == [-1, -2, -3, 1, 2, 3, 4, -4, -5, -6, -7, 5, 6, 7, 8, -8]
    assert await compiled_streams.sleep(0.001, "slept") == "slept"  # a real sleep stays one
