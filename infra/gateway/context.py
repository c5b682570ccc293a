"""Request ids, rate-limit headers, metering and one structured log line per request."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from random import getrandbits
from typing import Any

import msgspec
import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send
from opentelemetry.trace import Span

from infra.gateway import tracing
from infra.gateway.deadlines import Deadlines
from infra.gateway.metering import Meter
from infra.gateway.observability import observe, security_headers
from infra.gateway.ratelimit import (
    RateLimit,
    RateLimitedError,
    RateLimiterUnavailableError,
)
from schemas.envelope import ErrorBody, ErrorEnvelope, meta_now

REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")

log = structlog.get_logger("strata.http")


RATE_LIMIT_STATE = "rate_limit"


@dataclass
class _Outcome:
    status: int = 500
    responded: bool = False


CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def fresh_request_id(incoming: str | bytes | None) -> str:
    """The caller's X-Request-ID when it is well formed, else a new one."""
    raw = incoming.encode() if isinstance(incoming, str) else incoming
    if raw is not None and _VALID_REQUEST_ID.fullmatch(raw):
        return raw.decode()
    # 32 hex digits like a uuid4's, from the process's seeded generator: an id to correlate
    # logs, not a secret, and a third of uuid4's cost (no system call).
    return f"{getrandbits(128):032x}"


class RequestContextMiddleware:
    """Takes X-Request-ID from the request when it is well formed, else makes one; echoes it
    on the response and logs the request when it ends. Never logs headers or bodies."""

    def __init__(
        self,
        app: ASGIApp,
        service: str,
        meter: Meter | None = None,
        rate_limit: RateLimit | None = None,
        timeout: float | None = None,
        untimed: tuple[str, ...] = (),
        trust_forwarded_proto: bool = False,
    ) -> None:
        self.app = app
        self.service = service
        self.meter = meter
        self.rate_limit = rate_limit
        self.timeout = timeout
        self.deadlines = Deadlines(timeout) if timeout is not None else None
        self.untimed = untimed
        self.trust_forwarded_proto = trust_forwarded_proto

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = fresh_request_id(headers.get(REQUEST_ID_HEADER))
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        outcome = _Outcome()
        over_tls = scope.get("scheme") == "https" or (
            self.trust_forwarded_proto and headers.get(b"x-forwarded-proto") == b"https"
        )

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome.status = message["status"]
                outcome.responded = True
                extra = list(message.get("headers", []))
                extra.append((REQUEST_ID_HEADER, request_id.encode()))
                extra += security_headers(extra, over_tls)
                decision = state.get(RATE_LIMIT_STATE)
                if decision is not None and not any(k == b"x-ratelimit-limit" for k, _ in extra):
                    limits = decision.headers().items()
                    extra += [(k.lower().encode(), v.encode()) for k, v in limits]
                message["headers"] = extra
            await send(message)

        with tracing.server_span(self.service, scope, headers) as span:
            try:
                await self._respond(scope, receive, send_with_id, headers, outcome)
            finally:
                self._record(scope, span, outcome.status, started)

    async def _respond(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
        outcome: _Outcome,
    ) -> None:
        state = scope["state"]
        try:
            refused = await self._precheck(scope, headers, state)
            if refused is None:
                await self._within_timeout(scope, receive, send)
            else:
                await refused(scope, receive, send)
        except TimeoutError:
            if outcome.responded:
                raise  # a response already began: all that is left is to cut it
            message = f"the request took longer than {self.timeout:g}s"
            await refusal(state["request_id"], 408, "REQUEST_TIMEOUT", message)(
                scope, receive, send
            )

    def _record(self, scope: Scope, span: Span, status: int, started: float) -> None:
        """The request's span attributes, metrics, metering and log line."""
        request_id = scope["state"]["request_id"]
        route = str(scope.get("path_template") or scope.get("path", ""))
        span.update_name(f"{scope.get('method')} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        span.set_attribute("strata.request_id", request_id)
        elapsed = time.perf_counter() - started
        matched = route if scope.get("path_template") else "unmatched"
        observe(self.service, matched, str(scope.get("method")), status, elapsed)
        principal = scope["state"].get("principal")
        account = str(principal.account_id) if principal and principal.account_id else None
        if self.meter is not None and account is not None:
            self.meter.count(account, self.service, route)
        log.info(
            "request",
            client=client_ip(scope),
            service=self.service,
            method=scope.get("method"),
            route=route,
            status=status,
            duration_ms=round(elapsed * 1000, 2),
            request_id=request_id,
            account_id=account,
        )

    async def _within_timeout(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Bounded processing time, except for long uploads (NDJSON streams) by design."""
        path = str(scope.get("path", ""))
        if self.deadlines is None or path.startswith(self.untimed):
            await self.app(scope, receive, send)
            return
        async with self.deadlines():
            await self.app(scope, receive, send)

    async def _precheck(
        self, scope: Scope, headers: dict[bytes, bytes], state: dict[str, Any]
    ) -> ASGIApp | None:
        """Per-IP limits before routing: calls without credentials share an anonymous
        bucket; a client with too many failed authentications is refused outright."""
        if self.rate_limit is None:
            return None
        ip = client_ip(scope)
        try:
            if any(h in headers for h in CREDENTIAL_HEADERS):
                decision = await self.rate_limit.blocked_for_failures(ip)
            else:
                decision = await self.rate_limit.admit([self.rate_limit.policy.anonymous(ip)], ip)
        except RateLimitedError as exc:
            state[RATE_LIMIT_STATE] = exc.decision
            return refusal(state["request_id"], 429, "RATE_LIMITED", str(exc))
        except RateLimiterUnavailableError as exc:
            return refusal(state["request_id"], 503, "RATE_LIMITER_UNAVAILABLE", str(exc))
        if decision is not None:
            state[RATE_LIMIT_STATE] = decision
        return None


def refusal(request_id: str, status: int, code: str, message: str) -> ASGIApp:
    """An error envelope answered before routing (no Litestar request exists yet)."""
    body = msgspec.json.encode(
        ErrorEnvelope(
            error=ErrorBody(code=code, message=message, status=status),
            meta=meta_now(request_id),
        )
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return app
