"""One trace from the request through the event to its projection (OpenTelemetry)."""

from __future__ import annotations

import asyncio

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from infra import tracing
from schemas import contract
from streams.worker import Incoming, ProjectionWorker
from tests.conftest import Stack

EXPORTER = InMemorySpanExporter()
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def _spans() -> list[object]:
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.force_flush()
    return list(EXPORTER.get_finished_spans())


async def test_a_write_is_traced_through_its_event_to_the_projection(stack: Stack) -> None:
    tracing.configure("strata-test", exporter=EXPORTER)
    tenant = await stack.new_account()
    written = await stack.command.post(
        "/v1/ingest",
        json={"source": "s", "id": "a", "data": {}},
        headers={**tenant.auth, "traceparent": CALLER},
    )
    assert written.status_code == 200
    server = [s for s in _spans() if s.name == "POST /v1/ingest"]  # type: ignore[attr-defined]
    assert server, [s.name for s in _spans()]  # type: ignore[attr-defined]
    span = server[-1]
    assert format(span.context.trace_id, "032x") == TRACE_ID  # continues the caller's trace
    assert span.attributes["http.route"] == "/v1/ingest"

    events = await stack.platform.source.read(written.json()["data"]["position"] - 2, 10)
    record = next(e for e in events if e.type == "Record.Created")
    assert record.metadata["traceparent"].split("-")[1] == TRACE_ID

    message = contract.encode(record, redact=True)
    assert ("ce_traceparent", record.metadata["traceparent"].encode()) in message.headers
    worker = ProjectionWorker(
        stack.platform.lookups,
        slot_of=lambda topic, partition: 1000,
        accepts=lambda topic, event: True,
        dead_letter=lambda m, e: asyncio.sleep(0),
    )
    await worker.handle([Incoming("events", 0, 0, message.key, message.value, message.headers)])
    applied = [s for s in _spans() if s.name == "project lookups"]  # type: ignore[attr-defined]
    assert [format(link.context.trace_id, "032x") for link in applied[-1].links] == [TRACE_ID]
