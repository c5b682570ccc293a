"""Prometheus metrics of the headless processes (relay, stream workers, projector).

The APIs serve `/metrics` on their own port (infra/gateway/observability.py); a process
without HTTP serves the same registry on `STRATA_METRICS_PORT` when it is set. Counters
are read from the parts' own stats when scraped, so the hot paths only bump integers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class RelayCounts(Protocol):
    published: int
    batches: int
    position: int


class WorkerCounts(Protocol):
    applied: int
    watermarks: int
    dead_lettered: int
    retries: int


class PipelineCollector(Collector):
    """Throughput of the relay and of each stream worker in this process."""

    def __init__(self) -> None:
        self.relays: list[RelayCounts] = []
        self.workers: dict[str, WorkerCounts] = {}

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        if self.relays:
            published = CounterMetricFamily(
                "strata_relay_events_published", "Events the broker acknowledged"
            )
            batches = CounterMetricFamily("strata_relay_batches", "Batches published")
            position = GaugeMetricFamily(
                "strata_relay_position", "Last event-store position the broker acknowledged"
            )
            published.add_metric([], sum(r.published for r in self.relays))
            batches.add_metric([], sum(r.batches for r in self.relays))
            position.add_metric([], max(r.position for r in self.relays))
            yield from (published, batches, position)
        if self.workers:
            families = {
                "applied": CounterMetricFamily(
                    "strata_worker_events_applied",
                    "Events applied to the read model",
                    None,
                    ["projection"],
                ),
                "dead_lettered": CounterMetricFamily(
                    "strata_worker_dead_lettered",
                    "Events sent to the dead-letter topic",
                    None,
                    ["projection"],
                ),
                "retries": CounterMetricFamily(
                    "strata_worker_retries",
                    "Batches retried after a store error",
                    None,
                    ["projection"],
                ),
                "watermarks": CounterMetricFamily(
                    "strata_worker_watermarks",
                    "Partition watermarks consumed",
                    None,
                    ["projection"],
                ),
            }
            for name, counts in self.workers.items():
                for field, family in families.items():
                    family.add_metric([name], getattr(counts, field))
            yield from families.values()


PIPELINE = PipelineCollector()
REGISTRY.register(PIPELINE)


def serve(host: str, port: int | None) -> None:
    """Serve the registry on `port` (a daemon thread) when one is configured."""
    if port:
        start_http_server(port, addr=host)
