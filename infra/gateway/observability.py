"""Prometheus metrics of the APIs, and security headers on every response."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.params import SkipValidation
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REQUESTS = Counter(
    "strata_http_requests_total", "HTTP requests served", ["service", "route", "method", "status"]
)
LATENCY = Histogram(
    "strata_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
AUTH_FAILURES = Counter("strata_auth_failures_total", "Failed authentications", ["service"])
RATE_LIMITED = Counter("strata_rate_limited_total", "Calls refused by a rate limit", ["service"])
PROJECTION_POSITION = Gauge(
    "strata_projection_position", "Position up to which a projection applied", ["projection"]
)
PROJECTION_LAG = Gauge(
    "strata_projection_lag_events", "Events a projection is behind the log's head", ["projection"]
)
EVENT_STORE_HEAD = Gauge("strata_event_store_head", "Position of the newest event")

Positions = Callable[[], Awaitable[tuple[int, dict[str, int]]]]


_SERIES: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}


def observe(service: str, route: str, method: str, status: int, seconds: float) -> None:
    # A label set's series, looked up once (`labels()` costs more than the update itself).
    series = _SERIES.get((service, route, method, status))
    if series is None:
        series = (
            REQUESTS.labels(service, route, method, str(status)),
            LATENCY.labels(service, route),
        )
        _SERIES[(service, route, method, status)] = series
    series[0].inc()
    series[1].observe(seconds)
    if status == 401:
        AUTH_FAILURES.labels(service).inc()
    elif status == 429:
        RATE_LIMITED.labels(service).inc()


@get("/metrics", opt={"public": True}, summary="Prometheus metrics", include_in_schema=False)
async def metrics(
    positions: NamedDependency[SkipValidation[Positions]],
) -> Response[bytes]:
    """Projection positions are read when scraped, so they are current in every process."""
    try:
        head, applied = await positions()
    except Exception:
        head, applied = -1, {}
    if head >= 0:
        EVENT_STORE_HEAD.set(head)
        for name, position in applied.items():
            PROJECTION_POSITION.labels(name).set(position)
            PROJECTION_LAG.labels(name).set(max(head - position, 0))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
# The interactive docs load their UI from a CDN; nothing else may run or be framed.
DOCS_CSP = (
    b"default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net "
    b"https://unpkg.com; style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net "
    b"https://unpkg.com https://fonts.googleapis.com; font-src https://fonts.gstatic.com "
    b"https://cdn.jsdelivr.net; img-src 'self' data: https://cdn.jsdelivr.net; "
    b"connect-src 'self'; frame-ancestors 'none'"
)
HSTS = b"max-age=63072000; includeSubDomains"


def security_headers(
    present: Iterable[tuple[bytes, bytes]], over_tls: bool
) -> list[tuple[bytes, bytes]]:
    """Headers to add to a response; HSTS only when served over TLS."""
    names = {name.lower() for name, _ in present}
    content_type = next((v for k, v in present if k.lower() == b"content-type"), b"")
    extra = [header for header in SECURITY_HEADERS if header[0] not in names]
    if b"content-security-policy" not in names:
        html = content_type.startswith(b"text/html")
        extra.append((b"content-security-policy", DOCS_CSP if html else API_CSP))
    if over_tls:
        extra.append((b"strict-transport-security", HSTS))
    return extra
