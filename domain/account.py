"""The Account aggregate: a customer of Strata, its plan and its lifecycle."""

from __future__ import annotations

import enum

from eventsourcing.domain import Aggregate, event

from domain import values
from domain.errors import (
    AccountClosedError,
    AccountSuspendedError,
    InvalidTransitionError,
    InvalidValueError,
)


class Plan(enum.StrEnum):
    BASIC = "basic"
    PRO = "pro"
    ENTERPRISE = "enterprise"


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


def parse_plan(value: str) -> Plan:
    try:
        return Plan(value)
    except ValueError:
        known = ", ".join(p.value for p in Plan)
        raise InvalidValueError("plan", f"must be one of {known}") from None


class Account(Aggregate):
    @event("Opened")
    def __init__(self, name: str, email: str, plan: str) -> None:
        self.name = name
        self.email = email
        self.plan = plan
        self.status = AccountStatus.ACTIVE.value

    @classmethod
    def open(cls, name: str, email: str, plan: str = Plan.BASIC.value) -> Account:
        return cls(
            name=values.display_name(name),
            email=values.email(email),
            plan=parse_plan(plan).value,
        )

    def update_profile(self, name: str | None = None, email: str | None = None) -> None:
        """Records only what changes; an update that changes nothing records nothing."""
        self._ensure_not_closed()
        new_name = values.display_name(name) if name is not None else None
        new_email = values.email(email) if email is not None else None
        if new_name == self.name:
            new_name = None
        if new_email == self.email:
            new_email = None
        if new_name is not None or new_email is not None:
            self._profile_updated(name=new_name, email=new_email)

    @event("ProfileUpdated")
    def _profile_updated(self, name: str | None, email: str | None) -> None:
        if name is not None:
            self.name = name
        if email is not None:
            self.email = email

    def change_plan(self, plan: str) -> None:
        self._ensure_not_closed()
        new_plan = parse_plan(plan).value
        if new_plan != self.plan:
            self._plan_changed(plan=new_plan, previous_plan=self.plan)

    @event("PlanChanged")
    def _plan_changed(self, plan: str, previous_plan: str) -> None:
        self.plan = plan

    @event("Suspended")
    def suspend(self, reason: str) -> None:
        self._ensure_not_closed()
        if self.status != AccountStatus.ACTIVE:
            raise InvalidTransitionError("only an active account can be suspended")
        self.status = AccountStatus.SUSPENDED.value

    @event("Reactivated")
    def reactivate(self) -> None:
        self._ensure_not_closed()
        if self.status != AccountStatus.SUSPENDED:
            raise InvalidTransitionError("only a suspended account can be reactivated")
        self.status = AccountStatus.ACTIVE.value

    @event("Closed")
    def close(self, reason: str) -> None:
        self._ensure_not_closed()
        self.status = AccountStatus.CLOSED.value

    def ensure_can_write(self) -> None:
        """Ingest and key management need an active account."""
        self._ensure_not_closed()
        if self.status == AccountStatus.SUSPENDED:
            raise AccountSuspendedError("the account is suspended")

    def _ensure_not_closed(self) -> None:
        if self.status == AccountStatus.CLOSED:
            raise AccountClosedError("the account is closed")
