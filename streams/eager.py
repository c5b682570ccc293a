"""A Faust consumer that hands each fetched message on without four tasks per message, and
a stream iterator that does not turn the event loop before every event.

faust's fetch loop (`Consumer._drain_messages`) passes every message to the topic
conductor through `wait_first(callback(message), suspend_flow.wait())`, so a rebalance
can abandon a callback that waits for room in a full stream buffer. That call creates
four tasks and an `asyncio.wait` per message: measured, ~95 of the ~165 µs of CPU a
Faust worker spent per event with a no-op handler.

Almost every callback finishes without waiting. `EagerConsumer.wait_first` runs the
first awaitable one step in place (what Python 3.12's eager tasks do); only one that
blocks goes on, as the rest of itself, into mode's `wait_first`, which races it against
the other waits exactly as before. Same results, same cancellation: only the tasks of
callbacks that never waited are gone.

faust's compiled stream iterator awaits `asyncio.sleep(0)` before every event, so each
event cost a turn of the event loop (and its `epoll` call): ~1/3 of the rest of a
worker's CPU. `yield_every` makes it yield every 64th event instead; other tasks still
get the loop within a few milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, cast

import faust
import faust._cython.streams as compiled_streams
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitArgT, WaitResults
from mode.utils.times import Seconds


class _Rest:
    """The rest of a coroutine that was run one step and is waiting on `awaited`."""

    __slots__ = ("_awaited", "_coro")

    def __init__(self, coro: Coroutine[Any, Any, Any], awaited: Any) -> None:
        self._coro = coro
        self._awaited = awaited

    def __await__(self) -> Generator[Any, None, Any]:
        coro, awaited = self._coro, self._awaited
        while True:
            try:
                yield awaited
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation, thrown on into the coroutine
                try:
                    awaited = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    awaited = coro.send(None)
                except StopIteration as done:
                    return done.value


def _close_unawaited(waits: tuple[WaitArgT, ...]) -> None:
    for wait in waits:
        if asyncio.iscoroutine(wait):
            wait.close()  # never started: closing it spares a "never awaited" warning


class EagerConsumer(faust_aiokafka.Consumer):
    async def wait_first(self, *coros: WaitArgT, timeout: Seconds | None = None) -> WaitResults:
        # mode annotates `timeout: Seconds = None`; None is its "no timeout".
        timeout = cast(Seconds, timeout)
        first = coros[0] if coros else None
        if not asyncio.iscoroutine(first) or self._stopped.is_set() or self._crashed.is_set():
            return await super().wait_first(*coros, timeout=timeout)
        try:
            awaited = first.send(None)
        except StopIteration as finished:
            _close_unawaited(coros[1:])
            if self._stopped.is_set() or self._crashed.is_set():
                return WaitResults([], [], True)
            return WaitResults([first], [finished.value], False)
        except BaseException:
            _close_unawaited(coros[1:])
            raise
        rest = _Rest(first, awaited)
        waited = await super().wait_first(rest, *coros[1:], timeout=timeout)
        done = [first if wait is rest else wait for wait in waited.done]
        return WaitResults(done, waited.results, waited.stopped)


class _Transport(faust_aiokafka.Transport):
    Consumer = EagerConsumer


def use_eager_consumer(app: faust.App) -> None:
    """Give `app` the eager consumer; call before the app creates topics or agents."""
    app.transport = _Transport(app.conf.broker_consumer, app)


YIELD_EVERY = 64


class _NoTurn:
    """An awaitable that completes at once, without giving the loop a turn."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # a generator that ends at once


_NO_TURN = _NoTurn()


class _EveryNth:
    """`asyncio.sleep` as the stream iterator calls it, yielding every nth `sleep(0)`."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.seen = 0

    def __call__(self, delay: float, result: Any = None) -> Awaitable[Any]:
        if delay:
            return asyncio.sleep(delay, result)
        self.seen += 1
        if self.seen < self.n:
            return _NO_TURN
        self.seen = 0
        return asyncio.sleep(0)


def yield_every(n: int = YIELD_EVERY) -> None:
    """Make faust's compiled stream iterator yield to the loop every `n` events."""
    compiled_streams.sleep = _EveryNth(n)
