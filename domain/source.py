"""The Source aggregate: a named stream of records within an account."""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

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
