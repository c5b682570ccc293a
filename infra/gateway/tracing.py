"""Spans for HTTP requests, continuing a caller's W3C trace context when it sends one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from litestar.types import Scope
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind

from infra import tracing

tracer = trace.get_tracer("strata.http")


_TRACE_HEADERS = (b"traceparent", b"tracestate")


@contextmanager
def server_span(service: str, scope: Scope, headers: dict[bytes, bytes]) -> Iterator[Span]:
    if not tracing.enabled() and not any(name in headers for name in _TRACE_HEADERS):
        # Tracing off and no caller context to carry on (into event metadata): nothing to
        # record, so skip the carrier, the extraction and the context switch.
        yield trace.INVALID_SPAN
        return
    carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()}
    context = propagate.extract(carrier)
    name = f"{scope.get('method')} {scope.get('path')}"
    with tracer.start_as_current_span(
        name, context=context, kind=SpanKind.SERVER, attributes={"strata.service": service}
    ) as span:
        yield span


def current_traceparent() -> str | None:
    """The current span's context as a `traceparent` value, when one is being recorded."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")
