"""Authentication for the command API, against the event store itself.

Writes must never be accepted from a key that was just revoked, so the write side reads the
key's own stream rather than an eventually consistent read model.
"""

from __future__ import annotations

import hmac
from uuid import UUID

from commands.ports import EventStore
from domain.access import OPERATOR, Principal
from domain.account import Account, AccountStatus
from domain.apikey import ApiKey, hash_token, key_id_of
from domain.errors import NotFoundError


class EventStoreAuthenticator:
    def __init__(self, store: EventStore, admin_token_hash: str | None) -> None:
        self.store = store
        self.admin_token_hash = admin_token_hash

    def __call__(self, token: str) -> Principal | None:
        if self.admin_token_hash and hmac.compare_digest(hash_token(token), self.admin_token_hash):
            return OPERATOR
        key_id = key_id_of(token)
        if key_id is None:
            return None
        try:
            key = self.store.load(ApiKey, key_id)
            if not key.verify(token):
                return None
            account = self.store.load(Account, UUID(key.account_id))
        except NotFoundError:
            return None
        if account.status == AccountStatus.CLOSED:
            return None
        return Principal(scopes=key.scope_set, account_id=account.id, key_id=key.id)
