"""The authorization matrix: every route of both apps, every kind of bad credential.

The routes come from the apps themselves: the route table (each handler's `opt` names the
scope it needs, or `public`) and the published OpenAPI documents, which must agree with it.
Nothing here lists the routes; a new route is in the matrix as soon as it exists, and the
checks below fail until it declares a scope (or public) and the matrix knows how to call it
(a path parameter it cannot fill, a JSON body it has no example of, a route it has no
cross-tenant expectation for).

Each guarded route is called with: no credentials; malformed `Authorization` headers (an
empty bearer, the right secret under another scheme or under none); an unknown API key; a
revoked key, and a valid JWT of it; an expired, a tampered, an `alg: none` and an
HS256-signed-with-the-public-key JWT; a key of the right account without the route's scope;
and the key of another tenant (for routes naming an account or a resource: exactly a 404,
never a 403; for listings: the caller's own, empty view). Every refusal must be the exact
status and error code in the error envelope, and no response may carry the victim's data, a
secret, the credential it was sent, or a stack trace; none of them may write an event.
Public routes must answer whatever credentials come along, without refusing them.

One test per mode (the `stack` fixture): about 650 requests, a few seconds in either mode
(the distributed run takes about 6 s on two cores).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from litestar import Litestar, get
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from domain.access import ALL_SCOPES, Principal, Scope
from domain.apikey import format_token
from infra.bootstrap import bootstrap
from infra.config import Settings
from infra.gateway.app import Gateway, build_app
from infra.gateway.auth import PUBLIC, SCOPE
from tests.conftest import ADMIN_TOKEN, Stack, Tenant, _client, assert_error, embedded_settings

CANARY = "canary-7f3e9b"
"""Written into the victim's account, record, transformation and webhook: it must never
appear in an answer to anyone else."""
TRANSFORM = {"steps": [{"rename": {"amt": "amount"}}]}
DOCS = "/docs"


# --- the route table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    app: str
    method: str
    path: str
    """The template as the OpenAPI documents write it: /v1/account/{account_id}."""
    params: tuple[str, ...]
    scope: Scope | None
    """None for a public route."""
    documented: bool

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


def _framework(handler: HTTPRouteHandler) -> bool:
    """Litestar's own routes: the OPTIONS answer beside every path, the OpenAPI documents
    (public, as the gateway declares them; `undeclared` still checks that it does)."""
    return str(handler.fn.__module__).startswith("litestar.")


def declarations(app: Litestar) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (route, opt) of the app's route table, Litestar's own routes included."""
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                for method in sorted(handler.http_methods):
                    yield f"{method} {route.path_format}", dict(handler.opt)


def undeclared(app: Litestar) -> list[str]:
    """Routes that declare neither a scope nor public, both, or a scope that is not one."""
    wrong = []
    for label, opt in declarations(app):
        scope, public = opt.get(SCOPE), bool(opt.get(PUBLIC))
        if (scope is None) == (not public) or (scope is not None and not isinstance(scope, Scope)):
            wrong.append(f"{label}: opt={opt}")
    return wrong


def route_table(app: Litestar, name: str, document: dict[str, Any]) -> list[Route]:
    documented = {
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    }
    routes = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if _framework(handler):
                continue
            for method in sorted(handler.http_methods):
                label = f"{method} {route.path_format}"
                routes.append(
                    Route(
                        app=name,
                        method=method,
                        path=route.path_format,
                        params=tuple(route.path_parameters),
                        scope=None if handler.opt.get(PUBLIC) else handler.opt.get(SCOPE),
                        documented=label in documented,
                    )
                )
    return routes


async def _document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(f"{DOCS}/openapi.json")
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- what the matrix knows about each route ---------------------------------------------------


@dataclass
class Victim:
    """The account under attack, with one of everything, and keys of every kind."""

    owner: Tenant
    transformation_id: str
    webhook_id: str
    webhook_secret: str
    delivery_id: str
    revoked: Tenant
    lacking: dict[Scope, Tenant]
    """For each scope, a key of the account holding every scope but that one."""

    @property
    def ids(self) -> list[str]:
        keys = [self.owner.key_id, self.revoked.key_id, *(k.key_id for k in self.lacking.values())]
        return [self.owner.account_id, self.transformation_id, self.webhook_id, *keys]

    @property
    def secrets(self) -> list[str]:
        keys = [self.owner, self.revoked, *self.lacking.values()]
        return [self.webhook_secret, *(k.secret for k in keys)]


PARAMS: dict[str, Callable[[Victim], str]] = {
    "account_id": lambda v: v.owner.account_id,
    "key_id": lambda v: v.owner.key_id,
    "transformation_id": lambda v: v.transformation_id,
    "webhook_id": lambda v: v.webhook_id,
    "delivery_id": lambda v: v.delivery_id,
    "source": lambda v: "orders",
    "record_id": lambda v: "o-1",
}
"""How to fill each path parameter: always with the victim's own resources."""

Body = dict[str, Any] | bytes
BODIES: dict[str, Callable[[Victim], Body]] = {
    "POST /v1/account/create": lambda v: {"name": "Mallory", "email": "m@evil.example"},
    "PUT /v1/account/{account_id}": lambda v: {"name": "Mallory", "status": "suspended"},
    "POST /v1/apikey/generate": lambda v: {
        "name": "m",
        "role": "owner",
        "account_id": v.owner.account_id,
    },
    "POST /v1/ingest": lambda v: {"source": "orders", "id": "o-1", "data": {"evil": True}},
    "POST /v1/ingest/batch": lambda v: {"source": "orders", "records": [{"id": "o-1", "data": {}}]},
    "POST /v1/ingest/stream": lambda v: b'{"source": "orders", "id": "o-1", "data": {}}\n',
    "POST /v1/transform/custom": lambda v: {"name": "m", "transform": TRANSFORM},
    "PUT /v1/transform/custom/{transformation_id}": lambda v: {"transform": TRANSFORM},
    "PUT /v1/sources/{source}/pipeline": lambda v: {
        "transform_id": v.transformation_id,
        "version": 1,
    },
    "POST /v1/webhooks": lambda v: {
        "url": "https://hooks.example.com/mallory",
        "event_types": ["strata.record.*"],
        "account_id": v.owner.account_id,
    },
    "PUT /v1/webhooks/{webhook_id}": lambda v: {"url": "https://hooks.example.com/mallory"},
    "POST /v1/transform": lambda v: {
        "records": [{"amt": 1}],
        "id": v.transformation_id,
        "version": 1,
    },
    "POST /v1/data/query": lambda v: {"source": "orders"},
}
"""A valid body for each route that takes one (so another tenant's call reaches the
handler's ownership check), naming the victim's resources where the body can."""

QUERIES: dict[str, Callable[[Victim], dict[str, str]]] = {
    "GET /v1/webhooks": lambda v: {"account_id": v.owner.account_id},
}

NOT_FOUND = "not found"
"""Another tenant's resource is reported missing: exactly 404 NOT_FOUND."""
OWN = "own view"
"""A listing or query answers the caller's own (empty) view: 200, none of the victim's data."""
ALONE = "no other tenant's resource to name"

CROSS_TENANT: dict[str, str] = {
    "POST /v1/account/create": ALONE,  # the operator's alone; a key is refused by scope
    "PUT /v1/account/{account_id}": NOT_FOUND,
    "DELETE /v1/account/{account_id}": NOT_FOUND,
    "POST /v1/apikey/generate": NOT_FOUND,
    "POST /v1/apikey/{key_id}/rotate": NOT_FOUND,
    "DELETE /v1/apikey/{key_id}": NOT_FOUND,
    "POST /v1/ingest": ALONE,  # a key writes its own account's sources only
    "POST /v1/ingest/batch": ALONE,
    "POST /v1/ingest/stream": ALONE,
    "DELETE /v1/data/{source}/{record_id}": NOT_FOUND,
    "POST /v1/transform/custom": ALONE,
    "PUT /v1/transform/custom/{transformation_id}": NOT_FOUND,
    "DELETE /v1/transform/custom/{transformation_id}": NOT_FOUND,
    "PUT /v1/sources/{source}/pipeline": NOT_FOUND,
    "DELETE /v1/sources/{source}/pipeline": NOT_FOUND,
    "POST /v1/webhooks": NOT_FOUND,
    "PUT /v1/webhooks/{webhook_id}": NOT_FOUND,
    "DELETE /v1/webhooks/{webhook_id}": NOT_FOUND,
    "POST /v1/webhooks/{webhook_id}/rotate-secret": NOT_FOUND,
    "POST /v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver": NOT_FOUND,
    "GET /v1/data/{source}/{record_id}": NOT_FOUND,
    "GET /v1/data/{source}/{record_id}/history": NOT_FOUND,
    "GET /v1/account/{account_id}": NOT_FOUND,
    "GET /v1/account/{account_id}/history": NOT_FOUND,
    "GET /v1/apikey/{key_id}": NOT_FOUND,
    "GET /v1/data/{source}": OWN,
    "GET /v1/data/query": OWN,
    "GET /v1/transform/custom": OWN,
    "GET /v1/transform/custom/{transformation_id}": NOT_FOUND,
    "GET /v1/transform/custom/{transformation_id}/history": NOT_FOUND,
    "POST /v1/transform": NOT_FOUND,
    "GET /v1/sources/{source}/pipeline": NOT_FOUND,
    "GET /v1/data/{source}/search": OWN,
    "GET /v1/data/{source}/search/history": NOT_FOUND,
    "POST /v1/data/query": OWN,
    "GET /v1/usage/{account_id}": NOT_FOUND,
    "GET /v1/billing/{account_id}": NOT_FOUND,
    "GET /v1/webhooks": NOT_FOUND,
    "GET /v1/webhooks/{webhook_id}": NOT_FOUND,
    "GET /v1/webhooks/{webhook_id}/deliveries": NOT_FOUND,
}
"""What another tenant's owner key (every scope) gets on each guarded route."""

VISIBLE_TO_THE_VICTIM_EXCEPT = {"GET /v1/data/{source}/search/history"}
"""Read routes the victim itself gets a 404 on (it has no record keyed `search`)."""


# --- the credentials --------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Forger:
    """Access tokens for the victim's owner key, each spoiled one way; `good()` is not."""

    def __init__(self, stack: Stack, owner: Tenant) -> None:
        self.key = stack.platform.tokens.ring.signing_key()
        self.settings = stack.platform.settings
        self.owner = owner

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "sub": self.owner.key_id,
            "acc": self.owner.account_id,
            "scope": " ".join(sorted(ALL_SCOPES)),
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            **changes,
        }

    def signed(self, claims: dict[str, Any]) -> str:
        private = self.key.private_key()
        return jwt.encode(claims, private, algorithm="ES256", headers={"kid": self.key.kid})

    def good(self, key: Tenant | None = None) -> str:
        """Well-formed and validly signed, for the owner's key or another of the account."""
        return self.signed(self.claims(sub=(key or self.owner).key_id))

    def expired(self) -> str:
        now = int(time.time())
        return self.signed(self.claims(iat=now - 3600, nbf=now - 3600, exp=now - 600))

    def tampered(self) -> str:
        """Signed for `data:read` alone, then the payload widened to every scope."""
        header, _, signature = self.signed(self.claims(scope="data:read")).split(".")
        return f"{header}.{_b64(json.dumps(self.claims()).encode())}.{signature}"

    def alg_none(self) -> str:
        header = {"alg": "none", "typ": "JWT", "kid": self.key.kid}
        return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(self.claims()).encode())}."

    def hs256_with_public_key(self) -> str:
        """The classic confusion: the verifier's public key used as an HMAC secret."""
        public = self.key.private_key().public_key()
        secret = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        header = {"alg": "HS256", "typ": "JWT", "kid": self.key.kid}
        signing_input = (
            f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(self.claims()).encode())}"
        )
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refusals(victim: Victim, forger: Forger) -> dict[str, dict[str, str]]:
    """Credential cases every guarded route answers with 401 UNAUTHENTICATED."""
    owner = victim.owner
    basic = base64.b64encode(f"{owner.key_id}:{owner.secret}".encode()).decode()
    return {
        "no credentials": {},
        "malformed: empty bearer": {"Authorization": "Bearer "},
        "malformed: the key under Basic": {"Authorization": f"Basic {basic}"},
        "malformed: the key without a scheme": {"Authorization": owner.secret},
        "unknown API key": bearer(format_token(uuid.uuid4(), "x" * 43)),
        "revoked API key": bearer(victim.revoked.secret),
        "a valid JWT of the revoked key": bearer(forger.good(victim.revoked)),
        "expired JWT": bearer(forger.expired()),
        "tampered JWT": bearer(forger.tampered()),
        "alg none JWT": bearer(forger.alg_none()),
        "HS256 JWT signed with the public key": bearer(forger.hs256_with_public_key()),
    }


# --- setting the scene ----------------------------------------------------------------------


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings, with room for the matrix: it fails authentication hundreds of
    times from one client (the per-IP limits have their own tests, test_rate_limits.py), and
    the victim's webhook points at a name that does not resolve here."""
    return msgspec.structs.replace(
        settings,
        rate_limit_failures_per_minute=1_000_000,
        rate_limit_anonymous_per_minute=1_000_000,
        webhook_allowlist="hooks.example.com",
    )


async def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, response.text
    return dict(response.json()["data"])


async def _victim(stack: Stack) -> Victim:
    owner = await stack.new_account(plan="pro")
    auth = owner.auth
    await _ok(
        await stack.command.put(
            f"/v1/account/{owner.account_id}",
            json={"name": f"Victim {CANARY}", "email": f"{CANARY}@victim.example"},
            headers=auth,
        )
    )
    record = {"source": "orders", "id": "o-1", "data": {"secret": CANARY, "amt": 1}}
    await _ok(await stack.command.post("/v1/ingest", json=record, headers=auth))
    transformation = await _ok(
        await stack.command.post(
            "/v1/transform/custom", json={"name": CANARY, "transform": TRANSFORM}, headers=auth
        )
    )
    pipeline = {"transform_id": transformation["id"], "version": 1}
    await _ok(await stack.command.put("/v1/sources/orders/pipeline", json=pipeline, headers=auth))
    hook = {
        "url": "https://hooks.example.com/victim",
        "event_types": ["strata.record.*"],
        "description": CANARY,
    }
    webhook = await _ok(await stack.command.post("/v1/webhooks", json=hook, headers=auth))
    again = {"source": "orders", "id": "o-2", "data": {"secret": CANARY}}
    await _ok(await stack.command.post("/v1/ingest", json=again, headers=auth))

    async def key(role: str, scopes: list[str] | None = None) -> Tenant:
        body: dict[str, Any] = {"name": f"{role} {CANARY}", "role": role}
        if scopes is not None:
            body["scopes"] = scopes
        issued = await _ok(await stack.command.post("/v1/apikey/generate", json=body, headers=auth))
        return Tenant(owner.account_id, issued["id"], issued["secret"], issued["position"])

    lacking = {
        scope: await key("owner", sorted(ALL_SCOPES - {scope})) for scope in sorted(ALL_SCOPES)
    }
    revoked = await key("admin")
    gone = await _ok(await stack.command.delete(f"/v1/apikey/{revoked.key_id}", headers=auth))
    await stack.caught_up(gone["position"])
    delivery = await _first_delivery(stack, owner, webhook["id"])
    return Victim(
        owner=owner,
        transformation_id=transformation["id"],
        webhook_id=webhook["id"],
        webhook_secret=webhook["secret"],
        delivery_id=delivery,
        revoked=revoked,
        lacking=lacking,
    )


async def _first_delivery(stack: Stack, owner: Tenant, webhook_id: str) -> str:
    """The id of a delivery the victim's webhook was given (the webhooks projection plans
    them from the record events, a moment after they are written)."""
    deadline = time.monotonic() + stack.patience
    while True:
        listed = await stack.read.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=owner.auth)
        items = (await _ok(listed))["items"]
        if items:
            return str(items[0]["id"])
        assert time.monotonic() < deadline, "no delivery was planned for the victim's webhook"
        await asyncio.sleep(0.02)


# --- one call, and what it must answer ----------------------------------------------------------


@dataclass
class Call:
    route: Route
    case: str
    headers: dict[str, str]

    def request(self, victim: Victim) -> tuple[str, dict[str, Any]]:
        path = self.route.path
        for name in self.route.params:
            path = path.replace(f"{{{name}}}", PARAMS[name](victim))
        body = BODIES.get(self.route.label)
        sent = body(victim) if body is not None else None
        kwargs: dict[str, Any] = {"headers": self.headers}
        if isinstance(sent, bytes):
            kwargs["content"] = sent
        elif sent is not None:
            kwargs["json"] = sent
        query = QUERIES.get(self.route.label)
        if query is not None:
            kwargs["params"] = query(victim)
        return path, kwargs

    def where(self) -> str:
        return f"{self.route.app} {self.route.label} [{self.case}]"


STACK_TRACE = re.compile(r"Traceback|File \"|line \d+, in ")


def leaks(response: httpx.Response, call: Call, victim: Victim, sent: str) -> list[str]:
    """What the answer gives away: the victim's data, ids it was not asked about, a secret,
    the credential presented, the operator token, a stack trace."""
    text = response.text
    found = [
        "the victim's data" if CANARY in text else "",
        "a stack trace" if STACK_TRACE.search(text) else "",
        "the operator token" if ADMIN_TOKEN in text else "",
        "a private key" if "PRIVATE KEY" in text else "",
    ]
    found += ["a secret" for secret in victim.secrets if secret in text]
    presented = [v.split(" ", 1)[-1] for v in call.headers.values()]
    found += ["the credential sent" for token in presented if len(token) >= 16 and token in text]
    found += [f"the id {i}" for i in victim.ids if i in text and i not in sent]
    return [f for f in found if f]


def judge(
    response: httpx.Response, call: Call, expected: tuple[int, str] | str, sent: str
) -> str | None:
    """None if the answer is right, else what is wrong with it."""
    try:
        if expected == OWN:
            assert response.status_code == 200, response.text
        elif expected == "public":
            assert response.status_code not in (401, 403), response.text
            assert response.status_code < 500, response.text
        else:
            assert isinstance(expected, tuple)
            status, code = expected
            assert_error(response, status, code)
            if status == 401:
                assert response.headers.get("www-authenticate") == "Bearer", response.headers
    except AssertionError:
        body = response.text[:240]
        return f"{call.where()}: expected {expected}, got {response.status_code} {body}"
    return None


# --- the tests ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Litestar, Litestar]]:
    """Both apps as the platform builds them (nothing is served; only their tables are read)."""
    platform = bootstrap(embedded_settings(tmp_path_factory.mktemp("routes") / "data"))
    yield platform.command_app(), platform.read_app()
    asyncio.run(platform.aclose())


def test_every_route_declares_a_scope_or_that_it_is_public(
    apps: tuple[Litestar, Litestar],
) -> None:
    for app in apps:
        assert undeclared(app) == []
        assert len(list(declarations(app))) > 20


async def test_a_route_without_a_declaration_is_caught_and_never_served() -> None:
    """What happens to a route someone adds without a scope: this file's checks name it,
    and the guard refuses to serve it rather than serve it unguarded."""

    async def nobody(token: str) -> Principal | None:
        return None

    @get("/v1/forgotten", summary="A route without a scope", sync_to_thread=False)
    def forgotten() -> dict[str, str]:
        return {"data": CANARY}

    app = build_app(
        name="test API",
        description="",
        routes=[forgotten],
        services={"positions": None, "jwks": dict},
        checks={},
        gateway=Gateway(authenticate=nobody, max_body_bytes=1024),
    )
    assert undeclared(app) == ["GET /v1/forgotten: opt={}"]
    async with _client(app) as client:
        for headers in ({}, bearer(format_token(uuid.uuid4(), "x" * 43))):
            response = await client.get("/v1/forgotten", headers=headers)
            assert_error(response, 500, "INTERNAL_ERROR")
            assert CANARY not in response.text


async def test_the_documents_agree_with_the_route_table(apps: tuple[Litestar, Litestar]) -> None:
    """Every documented operation is a route, and its `security` names the route's scope
    (public routes name none); the routes left out of the documents are ours to know."""
    hidden: set[str] = set()
    for name, app in zip(("command", "read"), apps, strict=True):
        async with _client(app) as client:
            document = await _document(client)
        table = {route.label: route for route in route_table(app, name, document)}
        for path, item in document["paths"].items():
            for method, operation in item.items():
                label = f"{method.upper()} {path}"
                assert label in table, f"{name}: {label} is documented but not a route"
                route = table[label]
                wanted = None if route.scope is None else [{"bearer": [str(route.scope)]}]
                assert operation.get("security") == wanted, (label, operation.get("security"))
        hidden |= {f"{name} {r.label}" for r in table.values() if not r.documented}
    assert hidden == {
        "command GET /metrics",
        "read GET /metrics",
        "read GET /v1/data/{source}/search/history",
        "read GET /v1/data/query",
    }


async def test_the_matrix_knows_every_route(apps: tuple[Litestar, Litestar]) -> None:
    """A new route fails here until the matrix can call it and knows what another tenant
    must get: fill its path parameters, give it a body, state its cross-tenant answer."""
    for name, app in zip(("command", "read"), apps, strict=True):
        async with _client(app) as client:
            document = await _document(client)
        takes_json = {
            f"{method.upper()} {path}"
            for path, item in document["paths"].items()
            for method, operation in item.items()
            if "application/json" in operation.get("requestBody", {}).get("content", {})
        }
        for route in route_table(app, name, document):
            assert set(route.params) <= set(PARAMS), f"fill {route.label}'s parameters: PARAMS"
            if route.scope is None:
                continue
            assert route.scope in ALL_SCOPES, f"{route.label}: {route.scope} is not a scope"
            assert route.label in CROSS_TENANT, f"add {route.label} to CROSS_TENANT"
            if route.label in takes_json:
                assert route.label in BODIES, f"add a valid body of {route.label} to BODIES"


def _apps(stack: Stack) -> list[tuple[str, httpx.AsyncClient, Litestar]]:
    return [
        ("command", stack.command, stack.platform.command_app()),
        ("read", stack.read, stack.platform.read_app()),
    ]


async def test_authorization_matrix(stack: Stack) -> None:
    victim = await _victim(stack)
    intruder = await stack.new_account(plan="pro")
    forger = Forger(stack, victim.owner)
    bad = refusals(victim, forger)
    await _controls(stack, victim, forger)

    head = await stack.head()
    failures: list[str] = []
    cells = 0
    for name, client, app in _apps(stack):
        for route in route_table(app, name, await _document(client)):
            plan: list[tuple[Call, tuple[int, str] | str]] = []
            if route.scope is None:
                everyone = {**bad, "an intruder's key": intruder.auth}
                plan += [(Call(route, case, h), "public") for case, h in everyone.items()]
            else:
                unauthenticated = (401, "UNAUTHENTICATED")
                plan += [(Call(route, case, h), unauthenticated) for case, h in bad.items()]
                lacking = victim.lacking[route.scope].auth
                plan.append(
                    (Call(route, f"lacks {route.scope}", lacking), (403, "INSUFFICIENT_SCOPE"))
                )
                across = CROSS_TENANT.get(route.label, ALONE)
                if across != ALONE:
                    expected = (404, "NOT_FOUND") if across == NOT_FOUND else OWN
                    plan.append((Call(route, "another tenant", intruder.auth), expected))
            for call, expected in plan:
                path, kwargs = call.request(victim)
                response = await client.request(route.method, path, **kwargs)
                sent = path + json.dumps(kwargs.get("json")) + json.dumps(kwargs.get("params"))
                cells += 1
                failure = judge(response, call, expected, sent)
                if failure is not None:
                    failures.append(failure)
                failures += [
                    f"{call.where()}: leaks {what}" for what in leaks(response, call, victim, sent)
                ]
    assert not failures, f"{len(failures)} of {cells} cells are wrong:\n" + "\n".join(failures)
    assert cells > 500
    assert await stack.head() == head, "a refused call wrote an event"


async def _controls(stack: Stack, victim: Victim, forger: Forger) -> None:
    """The victim's own credentials work, so each refusal above is about its one defect:
    its owner key, that key in a well-formed JWT, and every read route it can see."""
    account = f"/v1/account/{victim.owner.account_id}"
    for auth in (victim.owner.auth, bearer(forger.good())):
        assert (await stack.read.get(account, headers=auth)).status_code == 200
    # The leak detector sees the victim's data where it is: in the victim's own answers.
    own = Call(Route("read", "GET", "/v1/data/orders/o-1", (), None, True), "victim", {})
    mine = await stack.read.get("/v1/data/orders/o-1", headers=victim.owner.auth)
    assert "the victim's data" in leaks(mine, own, victim, sent="")
    for name, client, app in _apps(stack):
        for route in route_table(app, name, await _document(client)):
            if route.method != "GET" or CROSS_TENANT.get(route.label) != NOT_FOUND:
                continue
            if route.label in VISIBLE_TO_THE_VICTIM_EXCEPT:
                continue
            path, kwargs = Call(route, "the victim", victim.owner.auth).request(victim)
            response = await client.get(path, **kwargs)
            assert response.status_code == 200, (route.label, response.text)
