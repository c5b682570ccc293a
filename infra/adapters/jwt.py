"""Short-lived access tokens: ES256 JWTs signed with a rotating key ring.

The ring is a JSON file (0600) every process of a deployment reads: the newest key signs;
keys retired by a rotation keep verifying until every token they signed has expired, so
rotation needs no downtime. Verification accepts only ES256 from the ring, by `kid` (no
`alg: none`, no algorithm confusion), and checks exp/nbf/iat with a small leeway, iss, aud.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from commands.ports import IssuedToken
from domain.access import Principal, Scope, parse_scopes

ALGORITHM = "ES256"
LEEWAY_SECONDS = 30


class InvalidTokenError(Exception):
    """The token is not one this deployment issued, or no longer valid."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_pem: str
    created_at: float
    retired_at: float | None = None

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        key = serialization.load_pem_private_key(self.private_pem.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key


def new_signing_key() -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return SigningKey(kid=uuid.uuid4().hex[:16], private_pem=pem, created_at=time.time())


class KeyRing:
    """The signing keys of a deployment, in a JSON file; reloaded when it changes."""

    def __init__(self, path: Path, token_ttl: float) -> None:
        self.path = path
        self.token_ttl = token_ttl
        self._keys: list[SigningKey] = []
        self._loaded_mtime = -1.0
        self._lock = threading.Lock()

    def ensure(self) -> None:
        """Create the ring with one key if the file does not exist yet. Processes that
        start together race here: the first file linked in place wins, and every process
        then uses it (a ring replaced by a later starter would orphan tokens already
        signed, and two writers of one temporary file failed the slower one)."""
        with self._lock:
            if self.path.exists():
                return
            temporary = self._temporary([new_signing_key()])
            try:
                os.link(temporary, self.path)  # atomic, and refuses to replace
            except FileExistsError:
                pass
            finally:
                temporary.unlink()
            self._loaded_mtime = -2.0  # force a reload

    def rotate(self) -> SigningKey:
        """A new signing key; the current one retires and verifies until its tokens expire."""
        with self._lock, self._exclusive():
            self._loaded_mtime = -2.0  # another process may have rotated since
            keys = self._read()
            now = time.time()
            keys = [
                k if k.retired_at else SigningKey(k.kid, k.private_pem, k.created_at, now)
                for k in keys
            ]
            fresh = new_signing_key()
            self._write([*self._live(keys, now), fresh])
            return fresh

    def live(self) -> list[SigningKey]:
        with self._lock:
            return self._live(self._read(), time.time())

    def signing_key(self) -> SigningKey:
        active = [k for k in self.live() if k.retired_at is None]
        if not active:
            raise RuntimeError(f"no signing key in {self.path}; run `strata keys rotate`")
        return max(active, key=lambda k: k.created_at)

    def _live(self, keys: list[SigningKey], now: float) -> list[SigningKey]:
        grace = self.token_ttl + LEEWAY_SECONDS
        return [k for k in keys if k.retired_at is None or now - k.retired_at < grace]

    def _read(self) -> list[SigningKey]:
        mtime = self.path.stat().st_mtime if self.path.exists() else -1.0
        if mtime != self._loaded_mtime:
            raw = json.loads(self.path.read_text()) if mtime >= 0 else {"keys": []}
            self._keys = [SigningKey(**entry) for entry in raw["keys"]]
            self._loaded_mtime = mtime
        return list(self._keys)

    def _write(self, keys: list[SigningKey]) -> None:
        self._temporary(keys).replace(self.path)
        self._loaded_mtime = -2.0  # force a reload

    def _temporary(self, keys: list[SigningKey]) -> Path:
        """The ring written to a file of this writer's own, beside the ring (0600)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"keys": [vars_of(k) for k in keys]}, handle)
        return temporary

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Rotations of all processes take turns (an advisory lock beside the ring)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(f".{self.path.name}.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def vars_of(key: SigningKey) -> dict[str, Any]:
    return {
        "kid": key.kid,
        "private_pem": key.private_pem,
        "created_at": key.created_at,
        "retired_at": key.retired_at,
    }


class JwtService:
    """Issues and verifies the access tokens of one deployment."""

    def __init__(self, ring: KeyRing, issuer: str, audience: str, ttl: int) -> None:
        self.ring = ring
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl

    def issue(self, principal: Principal, scopes: frozenset[Scope]) -> IssuedToken:
        key = self.ring.signing_key()
        now = int(time.time())
        scope = " ".join(sorted(scopes))
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(principal.key_id),
            "acc": str(principal.account_id),
            "scope": scope,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, key.private_key(), algorithm=ALGORITHM, headers={"kid": key.kid})
        return IssuedToken(access_token=token, expires_in=self.ttl, scope=scope)

    def verify(self, token: str) -> tuple[uuid.UUID, frozenset[Scope]]:
        """(key id, scopes) of a valid token; InvalidTokenError otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidTokenError("malformed token") from exc
        if header.get("alg") != ALGORITHM:
            raise InvalidTokenError("unsupported algorithm")
        key = next((k for k in self.ring.live() if k.kid == header.get("kid")), None)
        if key is None:
            raise InvalidTokenError("unknown signing key")
        try:
            claims = jwt.decode(
                token,
                key.private_key().public_key(),
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
            )
            return uuid.UUID(claims["sub"]), parse_scopes(str(claims.get("scope", "")).split())
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            raise InvalidTokenError(str(exc)) from exc

    def jwks(self) -> dict[str, Any]:
        """The public keys, as a JSON Web Key Set (retired keys included while they verify)."""
        keys = []
        for key in self.ring.live():
            jwk = json.loads(ECAlgorithm.to_jwk(key.private_key().public_key()))
            keys.append({**jwk, "kid": key.kid, "use": "sig", "alg": ALGORITHM})
        return {"keys": keys}


def looks_like_jwt(token: str) -> bool:
    return token.startswith("eyJ") and token.count(".") == 2
