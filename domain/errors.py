"""Named rule violations. Entry points map them to responses; the domain never knows HTTP."""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every rule the domain enforces."""

    code = "DOMAIN_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(DomainError):
    """The addressed thing does not exist, or is not visible to the caller."""

    code = "NOT_FOUND"


class InvalidValueError(DomainError):
    """A value breaks a rule of its own (length, charset, range)."""

    code = "INVALID_VALUE"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class ConflictError(DomainError):
    """The command does not fit the aggregate's current state."""

    code = "CONFLICT"


class AccountClosedError(ConflictError):
    code = "ACCOUNT_CLOSED"


class AccountSuspendedError(ConflictError):
    code = "ACCOUNT_SUSPENDED"


class InvalidTransitionError(ConflictError):
    code = "INVALID_STATE_TRANSITION"


class ApiKeyRevokedError(ConflictError):
    code = "API_KEY_REVOKED"


class RecordDeletedError(NotFoundError):
    code = "NOT_FOUND"


class PermissionDeniedError(DomainError):
    """The caller is known but lacks a scope the action needs."""

    code = "INSUFFICIENT_SCOPE"
