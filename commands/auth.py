"""Authentication for the command API, against the event store itself.

Writes must never be accepted from a key that was just revoked, so the write side reads the
key's own stream rather than an eventually consistent read model: each request asks the
event store for the key's and its account's current versions, and reuses their states
only when those did not move.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from uuid import UUID

from commands.ports import EventStore
from domain.access import OPERATOR, Principal, Scope
from domain.account import Account, AccountStatus
from domain.apikey import ApiKey, hash_token, key_id_of
from domain.errors import NotFoundError


class EventStoreAuthenticator:
    def __init__(self, store: EventStore, admin_token_hash: str | None) -> None:
        self.store = store
        self.admin_token_hash = admin_token_hash

    def __call__(self, token: str) -> Principal | None:
        """The principal of an API key (or the operator token); None if not valid."""
        if self.admin_token_hash and hmac.compare_digest(hash_token(token), self.admin_token_hash):
            return OPERATOR
        key_id = key_id_of(token)
        if key_id is None:
            return None
        return self._principal(key_id, lambda key: key.verify(token), None)

    def by_key(self, key_id: UUID, scopes: frozenset[Scope]) -> Principal | None:
        """The principal of an access token issued to key `key_id`: the key must still be
        active (revocation ends its tokens too), and scopes never exceed the key's."""
        return self._principal(key_id, lambda key: key.is_active, scopes)

    def _principal(
        self, key_id: UUID, valid: Callable[[ApiKey], bool], scopes: frozenset[Scope] | None
    ) -> Principal | None:
        # One round trip when both are cached: their current versions (a key never moves
        # to another account). Either one changed (a revocation, a suspension) is loaded.
        known = self.store.cached(ApiKey, key_id)
        streams = [key_id] if known is None else [key_id, UUID(known.account_id)]
        current = self.store.versions(streams)
        try:
            key = self.store.load_at(ApiKey, key_id, current.get(key_id))
            if not valid(key):
                return None
            account_id = UUID(key.account_id)
            account = self.store.load_at(Account, account_id, current.get(account_id))
        except NotFoundError:
            return None
        if account.status == AccountStatus.CLOSED:
            return None
        granted = key.scope_set if scopes is None else key.scope_set & scopes
        return Principal(scopes=granted, account_id=account.id, key_id=key.id, plan=account.plan)
