"""Request ids and one structured log line per request."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from infra.gateway.metering import Meter

REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")

log = structlog.get_logger("strata.http")


def fresh_request_id(incoming: str | bytes | None) -> str:
    """The caller's X-Request-ID when it is well formed, else a new one."""
    raw = incoming.encode() if isinstance(incoming, str) else incoming
    if raw is not None and _VALID_REQUEST_ID.fullmatch(raw):
        return raw.decode()
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Takes X-Request-ID from the request when it is well formed, else makes one; echoes it
    on the response and logs the request when it ends. Never logs headers or bodies."""

    def __init__(self, app: ASGIApp, service: str, meter: Meter | None = None) -> None:
        self.app = app
        self.service = service
        self.meter = meter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = fresh_request_id(dict(scope["headers"]).get(REQUEST_ID_HEADER))
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("path_template") or scope.get("path", "")
            principal = scope.get("state", {}).get("principal")
            if self.meter is not None and principal is not None and principal.account_id:
                self.meter.count(str(principal.account_id), self.service, route)
            log.info(
                "request",
                service=self.service,
                method=scope.get("method"),
                route=route,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                request_id=request_id,
                account_id=str(principal.account_id)
                if principal and principal.account_id
                else None,
            )
