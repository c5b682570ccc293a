"""What the write side needs from the outside world, as small interfaces (ports)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.access import Principal, Scope

A = TypeVar("A", bound=Aggregate)
R = TypeVar("R")


class ConcurrencyError(Exception):
    """Another command appended to one of the same streams first; retrying may succeed."""


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response kept for an idempotency key, replayed verbatim on a retry."""

    fingerprint: bytes
    status: int
    body: bytes


class IdempotencyRaceError(Exception):
    """A concurrent request with the same idempotency key committed first."""

    def __init__(self, stored: StoredResponse) -> None:
        super().__init__("idempotency key used concurrently")
        self.stored = stored


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """Asks the event store to keep the response in the same transaction as the events.

    `render` turns the handler's result into the response to keep; it runs inside the
    transaction, after positions are known, so a crash can never separate the two.
    """

    scope: str
    key: str
    fingerprint: bytes
    render: Callable[[Any], tuple[int, bytes]]


@dataclass(frozen=True, slots=True)
class CommandContext:
    principal: Principal
    correlation_id: str
    causation_id: str | None = None
    idempotency: IdempotencyClaim | None = None
    traceparent: str | None = None
    """W3C trace context of the request, so the events' processing joins its trace."""

    def metadata(self) -> dict[str, str]:
        meta = {"correlation_id": self.correlation_id, "actor": self.principal.subject}
        if self.causation_id:
            meta["causation_id"] = self.causation_id
        if self.traceparent:
            meta["traceparent"] = self.traceparent
        return meta


@dataclass(frozen=True, slots=True)
class Commit:
    """Where a command's events landed in the global order."""

    positions: Sequence[int]

    @property
    def position(self) -> int:
        return max(self.positions)


Appendable = Aggregate | Aggregate.Event


@runtime_checkable
class EventStore(Protocol):
    """The event store as the write side sees it."""

    def load(self, cls: type[A], aggregate_id: UUID) -> A:
        """The aggregate, or NotFoundError when it does not exist or is another type."""
        ...

    def versions(self, stream_ids: Sequence[UUID]) -> dict[UUID, int]:
        """Current version of each stream that exists (absent streams are left out)."""
        ...

    def load_at(self, cls: type[A], aggregate_id: UUID, version: int | None) -> A:
        """The aggregate at `version`, which the caller has just read as current with
        `versions()`: from a cache of states by version (an aggregate's state at a version
        never changes), else loaded (`None`: loaded; NotFoundError as `load`). The
        instance may be shared between requests: read it, never change it."""
        ...

    def cached(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """The newest state of the aggregate in that cache, without reading the store: a
        hint of which streams to ask `versions()` about, never a basis for a decision."""
        ...

    def append(
        self,
        items: Sequence[Appendable],
        ctx: CommandContext,
        result: Callable[[Commit], R],
    ) -> R:
        """Appends atomically, derives the result from the commit, keeps it for idempotency.

        Raises ConcurrencyError when a stream moved on, IdempotencyRaceError when a
        concurrent request with the same idempotency key won.
        """
        ...

    def head(self) -> int:
        """The position of the newest event in the store (0 when empty)."""
        ...

    def recall(self, scope: str, key: str) -> StoredResponse | None:
        """The response kept for an idempotency key, if any."""
        ...


@dataclass(frozen=True, slots=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str


@runtime_checkable
class TokenIssuer(Protocol):
    """Mints short-lived access tokens for an authenticated API key."""

    def issue(self, principal: Principal, scopes: frozenset[Scope]) -> IssuedToken: ...


@runtime_checkable
class SecretFactory(Protocol):
    def __call__(self) -> str: ...
