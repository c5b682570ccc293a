"""Authentication on the read side, from the `lookups` read model (no event-store access).

A revoked key stops working as soon as the projection applies the revocation.
"""

from __future__ import annotations

import hmac
from uuid import UUID

from domain.access import OPERATOR, Principal, Scope, parse_scopes
from domain.apikey import hash_token, key_id_of
from projections import lookups
from projections.ports import DocumentReader


class ReadModelAuthenticator:
    def __init__(self, docs: DocumentReader, admin_token_hash: str | None) -> None:
        self.docs = docs
        self.admin_token_hash = admin_token_hash

    async def __call__(self, token: str) -> Principal | None:
        """The principal of an API key (or the operator token); None if not valid."""
        hashed = hash_token(token)
        if self.admin_token_hash and hmac.compare_digest(hashed, self.admin_token_hash):
            return OPERATOR
        key_id = key_id_of(token)
        if key_id is None:
            return None
        return await self._principal(key_id, hashed, None)

    async def by_key(self, key_id: UUID, scopes: frozenset[Scope]) -> Principal | None:
        """The principal of an access token issued to key `key_id` (still active)."""
        return await self._principal(key_id, None, scopes)

    async def _principal(
        self, key_id: UUID, token_hash: str | None, scopes: frozenset[Scope] | None
    ) -> Principal | None:
        key, account = await self.docs.get_linked(
            lookups.apikey_key(str(key_id)), "account_id", lookups.account_key("")
        )
        if key is None or key.get("status") != "active":
            return None
        if token_hash is not None and not hmac.compare_digest(token_hash, key["secret_hash"]):
            return None
        if account is None or account.get("status") == "closed":
            return None
        held = parse_scopes(key["scopes"])
        return Principal(
            scopes=held if scopes is None else held & scopes,
            account_id=UUID(key["account_id"]),
            key_id=key_id,
            plan=account.get("plan"),
        )
