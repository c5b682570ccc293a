"""One table maps every failure to the error envelope: status, UPPER_SNAKE code, message."""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

from commands.idempotency import IdempotencyKeyReusedError, InvalidIdempotencyKeyError
from commands.ports import ConcurrencyError
from commands.streaming import StreamRejectedError
from domain import errors as domain
from infra.gateway.context import fresh_request_id
from infra.gateway.observability import security_headers
from infra.gateway.ratelimit import RateLimitedError, RateLimiterUnavailableError
from projections.ports import StoreUnavailableError
from read_api.consistency import ConsistencyTimeoutError, InvalidQueryError
from read_api.ports import QueryLimitError
from read_api.querylang import QueryError
from schemas.envelope import ErrorBody, ErrorEnvelope, meta_now

log = structlog.get_logger("strata.errors")

# Order matters: the first class that matches wins, so subclasses come first.
DOMAIN_STATUS: list[tuple[type[domain.DomainError], int]] = [
    (domain.AccountSuspendedError, 403),
    (domain.PermissionDeniedError, 403),
    (domain.NotFoundError, 404),
    (domain.InvalidValueError, 400),
    (domain.ConflictError, 409),
]

APPLICATION_ERRORS: dict[type[Exception], tuple[int, str]] = {
    ConcurrencyError: (409, "CONCURRENT_MODIFICATION"),
    IdempotencyKeyReusedError: (409, "IDEMPOTENCY_KEY_REUSED"),
    InvalidIdempotencyKeyError: (400, "INVALID_IDEMPOTENCY_KEY"),
    ConsistencyTimeoutError: (504, "CONSISTENCY_TIMEOUT"),
    InvalidQueryError: (400, "INVALID_PARAMETER"),
    QueryError: (400, "INVALID_QUERY"),
    QueryLimitError: (422, "QUERY_LIMIT_EXCEEDED"),
    StreamRejectedError: (422, "NO_VALID_RECORDS"),
    StoreUnavailableError: (503, "READ_MODEL_UNAVAILABLE"),
    RateLimiterUnavailableError: (503, "RATE_LIMITER_UNAVAILABLE"),
}

HTTP_CODES: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    408: "REQUEST_TIMEOUT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "UNPROCESSABLE",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "UNAVAILABLE",
    504: "TIMEOUT",
}


def error_response(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id is None:
        # No route matched, so the request-context middleware never ran: do its part here.
        request_id = fresh_request_id(request.headers.get("x-request-id"))
        hygiene = security_headers([(b"content-type", b"application/json")], over_tls=False)
        headers = {
            **(headers or {}),
            **{k.decode(): v.decode() for k, v in hygiene},
            "X-Request-ID": request_id,
        }
    meta = meta_now(request_id)
    body = ErrorEnvelope(
        error=ErrorBody(code=code, message=message, status=status, details=details), meta=meta
    )
    return Response(
        content=msgspec.json.encode(body),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _malformed(exc: BaseException) -> bool:
    """Did the body fail to parse as JSON at all (as opposed to failing the schema)?"""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, msgspec.DecodeError) and not isinstance(seen, msgspec.ValidationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "malformed" in str(getattr(exc, "detail", "")).lower()


def _body_path(exc: ValidationException) -> tuple[str, str] | None:
    """msgspec's own message names the exact path (`$.data.records[1].id` for the body
    parameter `data`); Litestar's summary drops it, so read it from the cause."""
    cause = exc.__cause__
    if not isinstance(cause, msgspec.ValidationError):
        return None
    message, _, where = str(cause).partition(" - at `")
    path = where.rstrip("`")
    if path != "$.data" and not path.startswith(("$.data.", "$.data[")):
        return None
    return "$" + path[len("$.data") :], message


def _no_body(exc: ValidationException) -> bool:
    """A route takes a JSON body (Litestar's `data`) and none was sent at all."""
    cause = exc.__cause__
    return isinstance(cause, msgspec.ValidationError) and str(cause) == (
        "Object missing required field `data`"
    )


EMPTY_BODY = "the request body is empty: send a JSON object"


def _validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[bytes]:
    body = _body_path(exc)
    if _no_body(exc):
        details = [{"field": "$", "message": EMPTY_BODY, "in": "body"}]
    elif body is not None:
        field, message = body
        details = [{"field": field, "message": message, "in": "body"}]
    else:
        details = [
            {
                "field": item.get("key", ""),
                "message": item.get("message", ""),
                "in": item.get("source"),
            }
            for item in (exc.extra if isinstance(exc.extra, list) else [])
        ]
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details) or str(exc.detail)
    return error_response(request, 400, "VALIDATION_FAILED", summary, details)


def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    if isinstance(exc, HTTPException) and exc.status_code == 400 and _malformed(exc):
        message = f"the body is not valid JSON: {exc.detail}"
        return error_response(request, 400, "MALFORMED_JSON", message)
    if isinstance(exc, ValidationException):
        return _validation(request, exc)
    if isinstance(exc, domain.DomainError):
        status = next((s for cls, s in DOMAIN_STATUS if isinstance(exc, cls)), 400)
        details = [{"field": exc.field}] if isinstance(exc, domain.InvalidValueError) else None
        return error_response(request, status, exc.code, exc.message, details)
    if isinstance(exc, RateLimitedError):
        return error_response(
            request, 429, "RATE_LIMITED", str(exc), headers=exc.decision.headers()
        )
    for cls, (status, code) in APPLICATION_ERRORS.items():
        if isinstance(exc, cls):
            details = getattr(exc, "details", None)
            return error_response(request, status, code, str(exc), details)
    if isinstance(exc, NotAuthorizedException):
        return error_response(
            request, 401, "UNAUTHENTICATED", str(exc.detail), headers={"WWW-Authenticate": "Bearer"}
        )
    if isinstance(exc, PermissionDeniedException):
        return error_response(request, 403, "FORBIDDEN", str(exc.detail))
    if isinstance(exc, NotFoundException):
        return error_response(request, 404, "NOT_FOUND", "no such route or resource")
    if isinstance(exc, MethodNotAllowedException):
        # Litestar names the route's methods in `Allow` (RFC 9110 requires it on a 405).
        return error_response(
            request, 405, "METHOD_NOT_ALLOWED", str(exc.detail), headers=exc.headers
        )
    if isinstance(exc, RequestEntityTooLarge):
        return error_response(request, 413, "PAYLOAD_TOO_LARGE", "the request body is too large")
    if isinstance(exc, HTTPException):
        code = HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        return error_response(request, exc.status_code, code, str(exc.detail), headers=exc.headers)
    log.error(
        "unhandled error", exc_info=exc, request_id=request.scope.get("state", {}).get("request_id")
    )
    return error_response(request, 500, "INTERNAL_ERROR", "an unexpected error occurred")


EXCEPTION_HANDLERS = {Exception: handle}
