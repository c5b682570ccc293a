"""Who is calling and what they may do: principals and scopes."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from domain.errors import InvalidValueError, NotFoundError, PermissionDeniedError


class Scope(enum.StrEnum):
    INGEST_WRITE = "ingest:write"
    DATA_READ = "data:read"
    ACCOUNT_ADMIN = "account:admin"
    """Profile, keys, plan and status of the account."""
    ACCOUNT_OWNER = "account:owner"
    """Closing the account."""
    BILLING_READ = "billing:read"
    """Usage and invoices."""


ALL_SCOPES: frozenset[Scope] = frozenset(Scope)


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.OWNER: ALL_SCOPES,
    Role.ADMIN: frozenset(
        {Scope.ACCOUNT_ADMIN, Scope.BILLING_READ, Scope.INGEST_WRITE, Scope.DATA_READ}
    ),
    Role.MEMBER: frozenset({Scope.INGEST_WRITE, Scope.DATA_READ}),
    Role.VIEWER: frozenset({Scope.DATA_READ}),
}


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise InvalidValueError("role", f"must be one of {known}") from None


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the operator (no account) or an API key of one account."""

    scopes: frozenset[Scope]
    account_id: UUID | None = None
    key_id: UUID | None = None
    plan: str | None = None
    """The account's plan when authenticated (rate limits follow it)."""

    @property
    def is_operator(self) -> bool:
        return self.account_id is None

    @property
    def subject(self) -> str:
        """A stable name for the caller, used to scope idempotency keys and logs."""
        return f"key:{self.key_id}" if self.key_id is not None else "operator"

    def require(self, scope: Scope) -> None:
        if scope not in self.scopes:
            raise PermissionDeniedError(f"this credential lacks the '{scope}' scope")

    def require_account(self, account_id: UUID) -> None:
        """Tenant isolation: another account's resource is reported missing, never forbidden."""
        if not self.is_operator and self.account_id != account_id:
            raise NotFoundError("no such resource")

    def require_operator(self) -> None:
        if not self.is_operator:
            raise PermissionDeniedError("only the operator may do this")

    def own_account(self) -> UUID:
        """The account a data call acts on; the operator has none."""
        if self.account_id is None:
            raise PermissionDeniedError("data calls need an API key of an account")
        return self.account_id


OPERATOR = Principal(scopes=ALL_SCOPES)


_SCOPES_BY_VALUE: dict[str, Scope] = {scope.value: scope for scope in Scope}


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Runs on every authenticated read: a dict lookup per scope, the message only on error."""
    scopes: set[Scope] = set()
    for value in values:
        scope = _SCOPES_BY_VALUE.get(value)
        if scope is None:
            known = ", ".join(sorted(ALL_SCOPES))
            raise InvalidValueError("scopes", f"unknown scope '{value}' (known: {known})")
        scopes.add(scope)
    return frozenset(scopes)
