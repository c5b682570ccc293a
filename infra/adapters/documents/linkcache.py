"""Documents read together (`get_linked`: an API key and its account) kept in process.

Trusted only while the change notices of the documents' store are live (infra.adapters.
notices). The projection's apply script publishes a notice whenever it changes a watched
document, in the same atomic step, and any notice empties the cache: a hit is the state as of
the last notice heard. A read that began before a notice was heard is not kept (the epoch
moved), so a stale read can never outlive the notice that made it stale.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Linked = tuple[dict[str, Any], dict[str, Any]]


class LinkCache:
    def __init__(
        self, prefixes: tuple[str, ...], trusted: Callable[[], bool], capacity: int = 10_000
    ) -> None:
        self.prefixes = prefixes
        self.trusted = trusted
        self.capacity = capacity
        self.epoch = 0
        self.entries: dict[tuple[str, ...], Linked] = {}

    def covers(self, key: str, prefix: str) -> bool:
        """Both documents are watched: their changes are announced."""
        return key.startswith(self.prefixes) and prefix.startswith(self.prefixes)

    def get(self, key: tuple[str, ...]) -> Linked | None:
        return self.entries.get(key) if self.trusted() else None

    def put(self, key: tuple[str, ...], value: Linked, epoch: int) -> None:
        """Keep `value`, read since `epoch`, unless a notice was heard meanwhile."""
        if epoch != self.epoch or not self.trusted():
            return
        if len(self.entries) >= self.capacity:
            self.entries.clear()
        self.entries[key] = value

    def clear(self) -> None:
        self.epoch += 1
        self.entries.clear()

    # As a notices subscriber: every notice, and every doubt, empties the cache.
    def heard(self, data: bytes) -> None:
        self.clear()

    def deaf(self) -> None:
        self.clear()

    async def resubscribed(self) -> None:
        self.clear()
