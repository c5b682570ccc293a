"""OpenTelemetry tracing: off unless an OTLP endpoint is configured.

A request's trace context travels command API -> event metadata (`traceparent`) -> the
relay (Kafka header `ce_traceparent`) -> the stream worker, so one trace shows a write
through to its projections. With no endpoint the API's no-op tracer costs next to nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Link

_state = {"configured": False}


def configure(service: str, exporter: SpanExporter | None = None) -> bool:
    """Install a tracer provider exporting over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT
    (or to `exporter`, e.g. in tests). Returns whether tracing is on."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if _state["configured"] or (exporter is None and not endpoint):
        return _state["configured"]
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _state["configured"] = True
    return True


def enabled() -> bool:
    """Whether a tracer provider is installed (without one, spans record nothing)."""
    return not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )


def links(traceparents: Iterable[str | None]) -> list[Link]:
    """Links to the traces that produced some events (a batch has many parents); none
    when no tracer provider is installed (the parsing costs CPU per event)."""
    if not enabled():
        return []
    found: list[Link] = []
    for value in traceparents:
        if value:
            context = trace.get_current_span(propagate.extract({"traceparent": value}))
            span_context = context.get_span_context()
            if span_context.is_valid:
                found.append(Link(span_context))
    return found
