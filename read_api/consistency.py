"""Read-your-writes: wait, bounded, until a read model has applied a given position."""

from __future__ import annotations

import asyncio
import time
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
    """The position a read must wait for: `?min_position=` wins over the header."""
    for name, raw in (("min_position", query), ("X-Strata-Min-Position", header)):
        if raw is None or raw == "":
            continue
        try:
            value = int(raw)
        except ValueError:
            raise InvalidQueryError(f"{name} must be an integer") from None
        if value < 0:
            raise InvalidQueryError(f"{name} must be a non-negative integer")
        return value
    return None


async def wait_for_position(
    wanted: int | None, reached: Callable[[], Awaitable[int]], timeout: float
) -> None:
    if wanted is None:
        return
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        current = await reached()
        if current >= wanted:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ConsistencyTimeoutError(wanted, current, timeout)
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.1)
