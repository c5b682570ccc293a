"""Domain rules, without any infrastructure."""

from __future__ import annotations

import uuid

import pytest

from domain.access import ALL_SCOPES, OPERATOR, Principal, Role, Scope
from domain.account import Account
from domain.apikey import ApiKey, format_token, key_id_of, public_prefix
from domain.errors import (
    AccountClosedError,
    AccountSuspendedError,
    ApiKeyRevokedError,
    InvalidTransitionError,
    InvalidValueError,
    NotFoundError,
    PermissionDeniedError,
    RecordDeletedError,
)
from domain.record import Record


def test_account_lifecycle_rules() -> None:
    account = Account.open("Acme", "Ops@Acme.io", "pro")
    assert account.email == "ops@acme.io"
    account.update_profile(name="Acme")  # unchanged: records nothing
    account.change_plan("pro")
    assert [type(e).__name__ for e in account.collect_events()] == ["Opened"]
    account.suspend("late payment")
    with pytest.raises(AccountSuspendedError):
        account.ensure_can_write()
    with pytest.raises(InvalidTransitionError):
        account.suspend("again")
    account.reactivate()
    account.close("bye")
    with pytest.raises(AccountClosedError):
        account.change_plan("basic")
    with pytest.raises(InvalidValueError):
        Account.open("Acme", "not-an-email")
    with pytest.raises(InvalidValueError):
        Account.open("Acme", "a@b.example", "platinum")


def test_keys_grant_only_what_the_issuer_holds_and_verify_in_constant_time() -> None:
    key_id = uuid.uuid4()
    token = format_token(key_id, "x" * 43)
    limited = frozenset({Scope.DATA_READ})
    with pytest.raises(PermissionDeniedError):
        ApiKey.issue(
            key_id=key_id,
            account_id=uuid.uuid4(),
            name="k",
            token=token,
            role=Role.MEMBER,
            scopes=[Scope.INGEST_WRITE],
            granted_by=limited,
        )
    key = ApiKey.issue(
        key_id=key_id,
        account_id=uuid.uuid4(),
        name="k",
        token=token,
        role=Role.MEMBER,
        scopes=[Scope.DATA_READ],
        granted_by=ALL_SCOPES,
    )
    assert key.prefix == public_prefix(key_id) == token[:16]
    assert key_id_of(token) == key_id
    assert key.verify(token)
    assert not key.verify(token + "x")
    assert token not in repr(vars(key))
    key.revoke("leaked")
    assert not key.verify(token)
    with pytest.raises(ApiKeyRevokedError):
        key.rotate(format_token(key_id, "y" * 43))


@pytest.mark.parametrize("token", ["", "sk_live_", "sk_test_" + "0" * 60, "sk_live_" + "z" * 60])
def test_malformed_tokens_name_no_key(token: str) -> None:
    assert key_id_of(token) is None


def test_records_upsert_blind_and_tombstone() -> None:
    created = Record.upsert_event(
        account_id="a",
        source="s",
        key="k",
        data={"v": 1},
        current_version=None,
        timestamp=Record.Event.create_timestamp(),
    )
    record = created.mutate(None)
    assert record is not None
    record.delete()
    with pytest.raises(RecordDeletedError):
        record.delete()
    revived = Record.upsert_event(
        account_id="a",
        source="s",
        key="k",
        data={"v": 2},
        current_version=record.version,
        timestamp=Record.Event.create_timestamp(),
    )
    revived.mutate(record)
    assert (record.data, record.deleted, record.version) == ({"v": 2}, False, 3)


def test_principals_hide_other_tenants() -> None:
    mine = uuid.uuid4()
    principal = Principal(scopes=frozenset({Scope.DATA_READ}), account_id=mine, key_id=uuid.uuid4())
    principal.require_account(mine)
    with pytest.raises(NotFoundError):
        principal.require_account(uuid.uuid4())
    with pytest.raises(PermissionDeniedError):
        principal.require(Scope.ACCOUNT_ADMIN)
    with pytest.raises(PermissionDeniedError):
        principal.require_operator()
    OPERATOR.require_account(uuid.uuid4())
    with pytest.raises(PermissionDeniedError):
        OPERATOR.own_account()
