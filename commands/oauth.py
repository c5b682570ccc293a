"""`POST /v1/oauth/token`: the OAuth 2.0 client-credentials grant (RFC 6749 §4.4).

The client id is an API key's id and the client secret the key's secret. The answer is
short-lived access token (a JWT) with at most the key's scopes. Its bodies follow RFC 6749
(`access_token`, ... / `{"error": "invalid_client"}`), not Strata's envelope, because OAuth
clients parse exactly those.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import SkipValidation

from commands.auth import EventStoreAuthenticator
from commands.ports import TokenIssuer
from domain.access import Principal, Scope, parse_scopes
from domain.apikey import format_token, key_id_of
from domain.errors import InvalidValueError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class AccessToken(msgspec.Struct):
    """A successful token response (RFC 6749 §5.1)."""

    access_token: str
    token_type: str
    expires_in: int
    scope: str


class OAuthErrorBody(msgspec.Struct):
    """An error response (RFC 6749 §5.2); not Strata's envelope."""

    error: str
    error_description: str


def _oauth_error(status: int, error: str, description: str) -> Response[OAuthErrorBody]:
    headers = dict(NO_STORE)
    if error == "invalid_client":
        headers["WWW-Authenticate"] = 'Basic realm="strata"'
    return Response(OAuthErrorBody(error, description), status_code=status, headers=headers)


def _client(request: Request[Any, Any, Any], form: dict[str, str]) -> tuple[str, str] | None:
    """Client credentials from HTTP Basic (preferred by RFC 6749) or from the form."""
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    if "client_id" in form and "client_secret" in form:
        return form["client_id"], form["client_secret"]
    return None


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def _grant(form: dict[str, str], client: tuple[str, str] | None) -> tuple[UUID, str]:
    """The key id and the token to authenticate, or OAuthError."""
    if form.get("grant_type") != "client_credentials":
        raise OAuthError(400, "unsupported_grant_type", "grant_type must be client_credentials")
    if client is None:
        raise OAuthError(401, "invalid_client", "client authentication is required")
    client_id, secret = client
    try:
        claimed = UUID(client_id)
    except ValueError:
        raise OAuthError(401, "invalid_client", "unknown client or wrong secret") from None
    # The secret may be given whole (sk_live_...) or without its public part.
    return claimed, secret if key_id_of(secret) == claimed else format_token(claimed, secret)


def _authenticated(principal: Principal | None, claimed: UUID) -> Principal:
    if principal is None or principal.key_id != claimed:
        raise OAuthError(401, "invalid_client", "unknown client or wrong secret")
    return principal


def _scopes(form: dict[str, str], held: frozenset[Scope]) -> frozenset[Scope]:
    try:
        wanted = parse_scopes(form["scope"].split()) if form.get("scope") else held
    except InvalidValueError as exc:
        raise OAuthError(400, "invalid_scope", exc.message) from None
    if not wanted <= held:
        raise OAuthError(
            400, "invalid_scope", f"the key does not hold: {', '.join(sorted(wanted - held))}"
        )
    return wanted


@post(
    "/v1/oauth/token",
    status_code=200,
    opt={"public": True},
    responses={
        200: ResponseSpec(AccessToken, description="An access token", generate_examples=False),
        400: ResponseSpec(
            OAuthErrorBody,
            description="invalid_request, unsupported_grant_type or invalid_scope (RFC 6749)",
            generate_examples=False,
        ),
        401: ResponseSpec(
            OAuthErrorBody,
            description="invalid_client: unknown client or wrong secret (RFC 6749)",
            generate_examples=False,
        ),
    },
    summary="Exchange an API key for a short-lived access token (client credentials)",
    description="Form fields: grant_type=client_credentials, optional scope (space-separated). "
    "Client authentication: HTTP Basic with the key id and the key secret, or client_id and "
    "client_secret form fields.",
)
async def token(
    request: Request[Any, Any, Any],
    keys: NamedDependency[SkipValidation[EventStoreAuthenticator]],
    tokens: NamedDependency[SkipValidation[TokenIssuer]],
) -> Response[Any]:
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        claimed, token_value = _grant(form, _client(request, form))
        principal = _authenticated(await asyncio.to_thread(keys, token_value), claimed)
        wanted = _scopes(form, principal.scopes)
    except OAuthError as exc:
        return _oauth_error(exc.status, exc.error, exc.description)
    issued = await asyncio.to_thread(tokens.issue, principal, wanted)
    return Response(
        AccessToken(issued.access_token, "Bearer", issued.expires_in, issued.scope),
        headers=NO_STORE,
    )
