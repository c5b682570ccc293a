"""Handlers for accounts and their API keys: load, call one domain method, append."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid4

from commands.ports import CommandContext, Commit, EventStore, SecretFactory
from domain.access import Principal, parse_role, parse_scopes
from domain.account import Account
from domain.apikey import ApiKey, format_token
from schemas.commands import CreateAccount, GenerateApiKey, UpdateAccount
from schemas.responses import AccountWritten, ApiKeyIssued, Written


def _written(account: Account) -> Callable[[Commit], AccountWritten]:
    def result(commit: Commit) -> AccountWritten:
        return AccountWritten(id=str(account.id), version=account.version, position=commit.position)

    return result


def create_account(cmd: CreateAccount, store: EventStore, ctx: CommandContext) -> AccountWritten:
    ctx.principal.require_operator()
    account = Account.open(name=cmd.name, email=cmd.email, plan=cmd.plan)
    return store.append([account], ctx, _written(account))


def load_account(store: EventStore, principal: Principal, account_id: UUID) -> Account:
    """An account the caller may act on; another tenant's account is reported missing."""
    principal.require_account(account_id)
    return store.load(Account, account_id)


def update_account(
    account_id: UUID, cmd: UpdateAccount, store: EventStore, ctx: CommandContext
) -> AccountWritten:
    account = load_account(store, ctx.principal, account_id)
    account.update_profile(name=cmd.name, email=cmd.email)
    if cmd.plan is not None:
        account.change_plan(cmd.plan)
    if cmd.status == "suspended" and account.status != "suspended":
        account.suspend(reason=cmd.reason)
    elif cmd.status == "active" and account.status == "suspended":
        account.reactivate()
    return _append_or_head(store, account, ctx)


def close_account(account_id: UUID, store: EventStore, ctx: CommandContext) -> AccountWritten:
    account = load_account(store, ctx.principal, account_id)
    account.close(reason="closed through the API")
    return store.append([account], ctx, _written(account))


def _append_or_head(store: EventStore, account: Account, ctx: CommandContext) -> AccountWritten:
    """A change that records nothing still answers with a position the reader can wait for."""
    pending = account.pending_events
    if pending:
        return store.append([account], ctx, _written(account))
    return AccountWritten(id=str(account.id), version=account.version, position=store.head())


def generate_api_key(
    cmd: GenerateApiKey, store: EventStore, ctx: CommandContext, new_secret: SecretFactory
) -> ApiKeyIssued:
    principal = ctx.principal
    account_id = cmd.account_id or principal.own_account()
    account = load_account(store, principal, account_id)
    account.ensure_can_write()
    key_id = uuid4()
    token = format_token(key_id, new_secret())
    key = ApiKey.issue(
        key_id=key_id,
        account_id=account.id,
        name=cmd.name,
        token=token,
        role=parse_role(cmd.role),
        scopes=parse_scopes(cmd.scopes) if cmd.scopes is not None else None,
        granted_by=principal.scopes,
    )
    return store.append([key], ctx, _issued(key, token))


def rotate_api_key(
    key_id: UUID, store: EventStore, ctx: CommandContext, new_secret: SecretFactory
) -> ApiKeyIssued:
    key = load_api_key(store, ctx.principal, key_id)
    token = format_token(key.id, new_secret())
    key.rotate(token)
    return store.append([key], ctx, _issued(key, token))


def revoke_api_key(key_id: UUID, store: EventStore, ctx: CommandContext) -> Written:
    key = load_api_key(store, ctx.principal, key_id)
    key.revoke(reason="revoked through the API")
    return store.append([key], ctx, lambda commit: Written(position=commit.position))


def load_api_key(store: EventStore, principal: Principal, key_id: UUID) -> ApiKey:
    key = store.load(ApiKey, key_id)
    principal.require_account(UUID(key.account_id))
    return key


def _issued(key: ApiKey, token: str) -> Callable[[Commit], ApiKeyIssued]:
    def result(commit: Commit) -> ApiKeyIssued:
        return ApiKeyIssued(
            id=str(key.id),
            account_id=key.account_id,
            prefix=key.prefix,
            scopes=list(key.scopes),
            role=key.role,
            secret=token,
            version=key.version,
            position=commit.position,
        )

    return result
