"""streams.batching.ready_batches: a batch ends when the buffer runs dry (or is full); only a
batch that starts from idle waits, once, for the rest of its burst."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from streams.batching import ready_batches


class _Stream:
    """Events through a queue, as a faust stream takes them from its channel's buffer."""

    def __init__(self) -> None:
        self.buffer: asyncio.Queue[int] = asyncio.Queue()

    def put(self, *events: int) -> None:
        for event in events:
            self.buffer.put_nowait(event)

    async def events(self) -> AsyncIterator[int]:
        while True:
            yield await self.buffer.get()


def _batches(stream: _Stream, **options: Any) -> AsyncIterator[list[Any]]:
    return ready_batches(stream.events(), stream.buffer, **options)  # type: ignore[arg-type]


async def test_what_is_buffered_goes_as_one_batch() -> None:
    stream = _Stream()
    stream.put(*range(250))
    batches = _batches(stream, gather=0.0)
    assert await anext(batches) == list(range(250))


async def test_a_full_batch_goes_at_once_and_the_rest_follows() -> None:
    stream = _Stream()
    stream.put(*range(25))
    batches = _batches(stream, max_size=10, gather=0.0)
    assert [len(await anext(batches)) for _ in range(3)] == [10, 10, 5]


async def test_a_batch_from_idle_gathers_what_arrives_within_its_wait() -> None:
    stream = _Stream()
    batches = _batches(stream, gather=0.2)
    first = asyncio.ensure_future(anext(batches))
    await asyncio.sleep(0.01)
    stream.put(1)  # from idle: its batch waits up to 0.2 s
    await asyncio.sleep(0.05)
    stream.put(2, 3)
    later = asyncio.get_running_loop().call_later(0.5, stream.put, 4)  # after the wait
    assert await first == [1, 2, 3]
    later.cancel()


async def test_events_buffered_while_a_batch_was_handled_go_on_without_a_wait() -> None:
    stream = _Stream()
    batches = _batches(stream, gather=1.0)
    stream.put(1)
    started = time.monotonic()
    first = asyncio.ensure_future(anext(batches))
    await asyncio.sleep(0.1)
    stream.put(2)  # arrives during the first batch's 1 s wait: joins it
    assert await first == [1, 2]
    assert time.monotonic() - started >= 1.0
    stream.put(3, 4)  # buffered while the first batch was "handled"
    started = time.monotonic()
    assert await asyncio.wait_for(anext(batches), 0.5) == [3, 4]
    assert time.monotonic() - started < 0.5


async def test_a_batch_is_full_by_the_records_its_events_hold() -> None:
    stream = _Stream()
    stream.put(4, 4, 4, 4)  # four bulk events of four records each
    batches = _batches(stream, max_size=10, gather=0.0, size=lambda event: event)
    assert await anext(batches) == [4, 4, 4]  # 12 records: full at the third
    assert await anext(batches) == [4]
