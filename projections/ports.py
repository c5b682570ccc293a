"""What projections need from the outside: an event source and stores for their read models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from projections.changes import Positioned
from schemas.events import ProjectedEvent


class StoreUnavailableError(Exception):
    """A store could not be reached (connection refused, timeout, loading). Worth retrying,
    unlike an error caused by the data, which makes an event poison."""


# {"docs": {key: fields}, "sets": {set key: sorted members}}
Dump = dict[str, dict[str, Any]]

C_contra = TypeVar("C_contra", contravariant=True)


@runtime_checkable
class GenerationWriter(Protocol[C_contra]):
    """One generation of a read model, as its projection writes it. Every kind of store
    (documents, search, analytics) implements this for its own change type."""

    generation: int

    async def apply(self, changes: Sequence[C_contra], partition: int, position: int) -> None:
        """Apply, atomically where the store allows and idempotently always, the changes
        newer than the partition's checkpoint; then move the checkpoint to `position`."""
        ...

    async def checkpoints(self) -> dict[int, int]:
        """Per feed slot, the position of the last event applied."""
        ...

    async def dump(self) -> Dump:
        """Everything in this generation, for comparisons (rebuild vs incremental)."""
        ...


@runtime_checkable
class GenerationStore(Protocol[C_contra]):
    """A read model with generations, so a rebuild can happen beside live reads."""

    async def active_generation(self) -> int: ...

    def writer(self, generation: int) -> GenerationWriter[C_contra]: ...

    async def new_generation(self) -> GenerationWriter[C_contra]:
        """An empty, inactive generation to rebuild into."""
        ...

    async def activate(self, generation: int) -> None:
        """Make `generation` the one readers see (an atomic pointer swap)."""
        ...

    async def drop(self, generation: int) -> None: ...


@runtime_checkable
class EventSource(Protocol):
    """The event store's notification log, read in global order."""

    async def read(self, after: int, limit: int) -> Sequence[ProjectedEvent]:
        """Events with position > after, oldest first, at most `limit`."""
        ...

    async def head(self) -> int:
        """Position of the newest event (0 when empty)."""
        ...

    async def wait(self, after: int, timeout: float) -> None:
        """Return once events after `after` may exist, or when `timeout` elapses."""
        ...


@runtime_checkable
class DocumentReader(Protocol):
    """Read access to the active generation of a document read model."""

    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]: ...

    async def get_linked(
        self, key: str, field: str, prefix: str
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """A document and the one its string `field` names (`prefix` + the value), read
        together: one round trip where the store is remote (e.g. an API key and its account,
        on every authenticated request)."""
        ...

    async def members(self, set_key: str, *, after: str | None, limit: int) -> list[str]:
        """Members of an ordered set, ascending, strictly after `after`."""
        ...

    async def checkpoints(self) -> dict[int, int]:
        """Per source partition, the position of the last event applied."""
        ...


async def linked_by_two_reads(
    reader: DocumentReader, key: str, field: str, prefix: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """`get_linked` for stores where a read is cheap (in process)."""
    doc = await reader.get(key)
    target = doc.get(field) if doc is not None else None
    if not isinstance(target, str):
        return doc, None
    return doc, await reader.get(prefix + target)


@runtime_checkable
class DocumentWriter(DocumentReader, Protocol):
    """One generation of a document read model, as its projection writes it."""

    generation: int

    async def apply(self, changes: Sequence[Positioned], partition: int, position: int) -> None:
        """Apply, atomically, the changes newer than the partition's checkpoint; then move
        the checkpoint to `position`. Changes at or below the checkpoint are skipped."""
        ...

    async def dump(self) -> Dump:
        """Everything in this generation, for comparisons (rebuild vs incremental)."""
        ...


@runtime_checkable
class DocumentStore(DocumentReader, Protocol):
    """A document read model with generations, so a rebuild can happen beside live reads."""

    async def active_generation(self) -> int: ...

    def writer(self, generation: int) -> DocumentWriter: ...

    async def new_generation(self) -> DocumentWriter:
        """An empty, inactive generation to rebuild into."""
        ...

    async def activate(self, generation: int) -> None:
        """Make `generation` the one readers see (an atomic pointer swap)."""
        ...

    async def drop(self, generation: int) -> None: ...


@runtime_checkable
class Feedable(Protocol):
    """Anything a runner can feed: a live projection or a rebuild target."""

    async def checkpoint(self, partition: int = 0) -> int: ...

    async def apply(self, events: Sequence[ProjectedEvent], partition: int = 0) -> None: ...
