"""The ApiKey aggregate. Only a hash of the secret and a short public prefix are ever recorded."""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Iterable
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import values
from domain.access import ROLE_SCOPES, Role, Scope
from domain.errors import ApiKeyRevokedError, InvalidValueError, PermissionDeniedError

TOKEN_PREFIX = "sk_live_"  # noqa: S105 - a public marker, not a secret
_ID_HEX_LENGTH = 32


class KeyStatus(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


def hash_token(token: str) -> str:
    """Secrets are 256-bit random, so a fast hash is enough (no password stretching needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def format_token(key_id: UUID, secret: str) -> str:
    return f"{TOKEN_PREFIX}{key_id.hex}{secret}"


def public_prefix(key_id: UUID) -> str:
    return f"{TOKEN_PREFIX}{key_id.hex[:8]}"


def key_id_of(token: str) -> UUID | None:
    """The key a presented token claims to be; None when it is not shaped like one."""
    if not token.startswith(TOKEN_PREFIX) or len(token) < len(TOKEN_PREFIX) + _ID_HEX_LENGTH + 16:
        return None
    try:
        return UUID(hex=token[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + _ID_HEX_LENGTH])
    except ValueError:
        return None


def token_matches(token: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), secret_hash)


class ApiKey(Aggregate):
    """Every event names the key's account, so consumers can place it without state."""

    @event("Issued")
    def __init__(
        self,
        id: UUID,  # noqa: A002 - eventsourcing takes a caller-chosen aggregate id this way
        account_id: str,
        name: str,
        prefix: str,
        secret_hash: str,
        scopes: list[str],
        role: str = Role.MEMBER.value,
    ) -> None:
        self.account_id = account_id
        self.name = name
        self.prefix = prefix
        self.secret_hash = secret_hash
        self.scopes = scopes
        self.role = role
        self.status = KeyStatus.ACTIVE.value

    @classmethod
    def issue(
        cls,
        *,
        key_id: UUID,
        account_id: UUID,
        name: str,
        token: str,
        role: Role,
        granted_by: frozenset[Scope],
        scopes: Iterable[Scope] | None = None,
    ) -> ApiKey:
        """A key has a role; its scopes are the role's, or a narrower set. A key may carry
        only scopes its issuer holds."""
        allowed = ROLE_SCOPES[role]
        requested = allowed if scopes is None else frozenset(scopes)
        if not requested:
            raise InvalidValueError("scopes", "at least one scope is required")
        if requested - allowed:
            names = ", ".join(sorted(requested - allowed))
            raise InvalidValueError("scopes", f"beyond the {role} role: {names}")
        beyond = requested - granted_by
        if beyond:
            names = ", ".join(sorted(beyond))
            raise PermissionDeniedError(f"cannot grant scopes the caller lacks: {names}")
        return cls(
            id=key_id,
            account_id=str(account_id),
            name=values.display_name(name),
            prefix=public_prefix(key_id),
            secret_hash=hash_token(token),
            scopes=sorted(scope.value for scope in requested),
            role=role.value,
        )

    @property
    def is_active(self) -> bool:
        return self.status == KeyStatus.ACTIVE

    @property
    def scope_set(self) -> frozenset[Scope]:
        return frozenset(Scope(s) for s in self.scopes)

    def revoke(self, reason: str) -> None:
        if not self.is_active:
            raise ApiKeyRevokedError("the key is already revoked")
        self._revoked(account_id=self.account_id, reason=reason)

    @event("Revoked")
    def _revoked(self, account_id: str, reason: str) -> None:
        self.status = KeyStatus.REVOKED.value

    def rotate(self, token: str) -> None:
        """Replaces the secret; the old secret stops working at once."""
        if not self.is_active:
            raise ApiKeyRevokedError("a revoked key cannot be rotated")
        self._rotated(account_id=self.account_id, secret_hash=hash_token(token))

    @event("Rotated")
    def _rotated(self, account_id: str, secret_hash: str) -> None:
        self.secret_hash = secret_hash

    def verify(self, token: str) -> bool:
        return self.is_active and token_matches(token, self.secret_hash)
