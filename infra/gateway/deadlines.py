"""Request deadlines on one periodic check per process instead of one timer per request.

`asyncio.timeout` arms a timer for every request and cancels it at the end; at ~1,500
requests/s with a 30-s timeout the loop's timer heap holds tens of thousands of cancelled
timers, and a read by id paid ~40-60 us for its deadline. Here a request notes its task and
deadline in a dict; one check every `resolution` seconds (a tenth of the timeout, at most
one second) cancels the late ones. A late request ends within its timeout plus the
resolution, raising TimeoutError as `asyncio.timeout` does (and with the same rule: only a
cancellation the deadline caused becomes a TimeoutError).
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType
from typing import Any

EXPIRED = math.inf  # a deadline already acted on: never due again


class Deadlines:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.resolution = min(1.0, max(seconds / 10, 0.001))  # never a busy loop
        # Each running request's task and deadline; EXPIRED once the check cancelled it.
        self.running: dict[asyncio.Task[Any], float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self) -> Deadline:
        return Deadline(self)

    def _enter(self, task: asyncio.Task[Any]) -> None:
        loop = asyncio.get_running_loop()
        self.running[task] = loop.time() + self.seconds
        if self._timer is None or self._loop is not loop:  # a new loop (tests): a new check
            self._loop = loop
            self._timer = loop.call_later(self.resolution, self._check)

    def _check(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for task, deadline in self.running.items():
            if deadline <= now:
                self.running[task] = EXPIRED
                task.cancel()
        self._timer = self._loop.call_later(self.resolution, self._check) if self.running else None


class Deadline:
    """`async with deadlines():` around one request's work, in the task that runs it."""

    __slots__ = ("_cancelling", "_deadlines", "_task")

    def __init__(self, deadlines: Deadlines) -> None:
        self._deadlines = deadlines

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline needs a running task")
        self._task = task
        self._cancelling = task.cancelling()
        self._deadlines._enter(task)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task = self._task
        expired = self._deadlines.running.pop(task) == EXPIRED
        # asyncio.timeout's rule: uncancel what the check cancelled; only that cancellation,
        # with no other pending, becomes a TimeoutError.
        if expired and task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc
