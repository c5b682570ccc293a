"""The Source aggregate: a named stream of records within an account."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.errors import NotFoundError

SOURCE_NAMESPACE = uuid5(NAMESPACE_URL, "https://strata.dev/ns/source")


def source_id(account_id: str, name: str) -> UUID:
    return uuid5(SOURCE_NAMESPACE, f"{account_id}/{name}")


class Source(Aggregate):
    """Registered implicitly by the first record ingested into it."""

    @staticmethod
    def create_id(account_id: str, name: str) -> UUID:
        return source_id(account_id, name)

    @event("Registered")
    def __init__(self, account_id: str, name: str) -> None:
        self.account_id = account_id
        self.name = name
        self.pipeline: tuple[str, int] | None = None

    # --- transformations: the pipeline applied at ingest (docs/transforms.md) ------------------

    def set_pipeline(self, transform_id: UUID, version: int) -> bool:
        """Ingest applies transform `transform_id` at `version` from now on. False (nothing
        recorded) when that is already the pipeline."""
        if self.pipeline == (str(transform_id), version):
            return False
        self._pipeline_set(
            account_id=self.account_id,
            name=self.name,
            transform_id=str(transform_id),
            transform_version=version,
        )
        return True

    @event("PipelineSet")
    def _pipeline_set(
        self, account_id: str, name: str, transform_id: str, transform_version: int
    ) -> None:
        self.pipeline = (transform_id, transform_version)

    def clear_pipeline(self) -> None:
        if self.pipeline is None:
            raise NotFoundError(f"source {self.name!r} has no pipeline")
        self._pipeline_cleared(account_id=self.account_id, name=self.name)

    @event("PipelineCleared")
    def _pipeline_cleared(self, account_id: str, name: str) -> None:
        self.pipeline = None
