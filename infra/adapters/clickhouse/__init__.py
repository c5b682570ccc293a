"""ClickHouse through clickhouse-connect: a server over HTTP, or chdb in-process (ADR 0009)."""

from infra.adapters.clickhouse.connection import ChdbPathOwnedError, Target
from infra.adapters.clickhouse.hot import HotAccessors
from infra.adapters.clickhouse.store import ClickHouseAnalyticsStore, ClickHouseGeneration

__all__ = [
    "ChdbPathOwnedError",
    "ClickHouseAnalyticsStore",
    "ClickHouseGeneration",
    "HotAccessors",
    "Target",
]
