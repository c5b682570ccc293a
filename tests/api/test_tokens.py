"""OAuth 2.0 client credentials: ES256 access tokens accepted by both APIs, and refused
when expired, tampered, unsigned, signed otherwise, or issued to a revoked key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.conftest import Stack, Tenant, assert_error


def _basic(tenant: Tenant) -> dict[str, str]:
    raw = f"{tenant.key_id}:{tenant.secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def _token(stack: Stack, tenant: Tenant, **form: str) -> dict[str, Any]:
    response = await stack.command.post(
        "/v1/oauth/token",
        data={"grant_type": "client_credentials", **form},
        headers=_basic(tenant),
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return dict(response.json())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_token_works_on_both_apis_like_its_key(stack: Stack) -> None:
    tenant = await stack.new_account()
    issued = await _token(stack, tenant)
    assert issued["token_type"] == "Bearer"
    assert issued["expires_in"] == 900
    assert set(issued["scope"].split()) >= {"ingest:write", "data:read"}
    auth = _bearer(issued["access_token"])
    written = await stack.command.post(
        "/v1/ingest", json={"source": "s", "id": "a", "data": {"v": 1}}, headers=auth
    )
    assert written.status_code == 200, written.text
    read = await stack.read.get(
        "/v1/data/s/a", params={"min_position": written.json()["data"]["position"]}, headers=auth
    )
    assert read.json()["data"]["data"] == {"v": 1}

    form = await stack.command.post(
        "/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": tenant.key_id,
            "client_secret": tenant.secret,
            "scope": "data:read",
        },
    )
    narrow = _bearer(form.json()["access_token"])
    assert form.json()["scope"] == "data:read"
    refused = await stack.command.post(
        "/v1/ingest", json={"source": "s", "id": "b", "data": {}}, headers=narrow
    )
    assert_error(refused, 403, "INSUFFICIENT_SCOPE")


async def test_the_token_endpoint_speaks_rfc_6749(stack: Stack) -> None:
    tenant = await stack.new_account()
    wrong = Tenant(tenant.account_id, tenant.key_id, tenant.secret[:-2] + "xx", 0)
    cases = [
        ({"grant_type": "password"}, _basic(tenant), 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials"}, {}, 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, _basic(wrong), 401, "invalid_client"),
        (
            {"grant_type": "client_credentials", "scope": "root"},
            _basic(tenant),
            400,
            "invalid_scope",
        ),
    ]
    for form, headers, status, error in cases:
        response = await stack.command.post("/v1/oauth/token", data=form, headers=headers)
        assert response.status_code == status, (form, response.text)
        assert response.json()["error"] == error
    viewer = await stack.command.post(
        "/v1/apikey/generate", json={"name": "v", "role": "viewer"}, headers=tenant.auth
    )
    body = viewer.json()["data"]
    escalate = await stack.command.post(
        "/v1/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": body["id"],
            "client_secret": body["secret"],
            "scope": "ingest:write",
        },
    )
    assert (escalate.status_code, escalate.json()["error"]) == (400, "invalid_scope")


async def test_jwks_verifies_tokens_and_rotation_keeps_old_tokens_valid(stack: Stack) -> None:
    tenant = await stack.new_account()
    before = (await _token(stack, tenant))["access_token"]
    keys = (await stack.read.get("/.well-known/jwks.json")).json()["keys"]
    assert [k["kty"] for k in keys] == ["EC"]
    assert "d" not in keys[0]  # public only
    public = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(before, public, algorithms=["ES256"], audience="strata-api")
    assert (claims["sub"], claims["acc"], claims["iss"]) == (
        tenant.key_id,
        tenant.account_id,
        "strata",
    )

    stack.platform.tokens.ring.rotate()
    after = (await _token(stack, tenant))["access_token"]
    assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
    assert len((await stack.command.get("/.well-known/jwks.json")).json()["keys"]) == 2
    for token in (before, after):
        response = await stack.read.get("/v1/data/s/none", headers=_bearer(token))
        assert_error(response, 404, "NOT_FOUND")  # authenticated, then simply not found


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _hmac_signed(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _forge(stack: Stack, tenant: Tenant, **changes: Any) -> str:
    key = stack.platform.tokens.ring.signing_key()
    now = int(time.time())
    claims = {
        "iss": "strata",
        "aud": "strata-api",
        "sub": tenant.key_id,
        "acc": tenant.account_id,
        "scope": "data:read",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        **changes,
    }
    return jwt.encode(claims, key.private_key(), algorithm="ES256", headers={"kid": key.kid})


@pytest.mark.parametrize(
    "spoil",
    [
        "expired",
        "not_yet",
        "wrong_audience",
        "wrong_issuer",
        "tampered",
        "alg_none",
        "hs256_confusion",
        "unknown_kid",
    ],
)
async def test_bad_tokens_are_refused_on_both_apis(stack: Stack, spoil: str) -> None:
    tenant = await stack.new_account()
    now = int(time.time())
    good = _forge(stack, tenant)
    header, _payload, signature = good.split(".")
    tokens = {
        "expired": _forge(stack, tenant, exp=now - 120, iat=now - 300, nbf=now - 300),
        "not_yet": _forge(stack, tenant, nbf=now + 600),
        "wrong_audience": _forge(stack, tenant, aud="someone-else"),
        "wrong_issuer": _forge(stack, tenant, iss="evil"),
        "tampered": ".".join(
            [
                header,
                base64.urlsafe_b64encode(
                    json.dumps(
                        {
                            **jwt.decode(good, options={"verify_signature": False}),
                            "scope": "account:owner",
                        }
                    ).encode()
                )
                .decode()
                .rstrip("="),
                signature,
            ]
        ),
        "alg_none": jwt.encode(
            jwt.decode(good, options={"verify_signature": False}), key=None, algorithm="none"
        ),
        "hs256_confusion": _hmac_signed(
            {"alg": "HS256", "kid": jwt.get_unverified_header(good)["kid"]},
            jwt.decode(good, options={"verify_signature": False}),
            # the classic confusion: the public key used as an HMAC secret
            stack.platform.tokens.ring.signing_key()
            .private_key()
            .public_key()
            .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        ),
        "unknown_kid": jwt.encode(
            jwt.decode(good, options={"verify_signature": False}),
            stack.platform.tokens.ring.signing_key().private_key(),
            algorithm="ES256",
            headers={"kid": "nope"},
        ),
    }
    auth = _bearer(tokens[spoil])
    assert_error(await stack.read.get("/v1/data/s/a", headers=auth), 401, "UNAUTHENTICATED")
    assert_error(
        await stack.command.post(
            "/v1/ingest", json={"source": "s", "id": "a", "data": {}}, headers=auth
        ),
        401,
        "UNAUTHENTICATED",
    )


async def test_revoking_the_key_ends_its_tokens(stack: Stack) -> None:
    tenant = await stack.new_account()
    auth = _bearer((await _token(stack, tenant))["access_token"])
    revoked = await stack.command.delete(f"/v1/apikey/{tenant.key_id}", headers=tenant.auth)
    await stack.caught_up(revoked.json()["data"]["position"])
    write = {"source": "s", "id": "a", "data": {}}
    assert_error(
        await stack.command.post("/v1/ingest", json=write, headers=auth), 401, "UNAUTHENTICATED"
    )
    assert_error(await stack.read.get("/v1/data/s/a", headers=auth), 401, "UNAUTHENTICATED")
