"""Authentication on the read side, from the `lookups` read model (no event-store access).

A revoked key stops working as soon as the projection applies the revocation.
"""

from __future__ import annotations

import hmac
from uuid import UUID

from domain.access import OPERATOR, Principal, parse_scopes
from domain.apikey import hash_token, key_id_of, token_matches
from projections import lookups
from projections.ports import DocumentReader


class ReadModelAuthenticator:
    def __init__(self, docs: DocumentReader, admin_token_hash: str | None) -> None:
        self.docs = docs
        self.admin_token_hash = admin_token_hash

    async def __call__(self, token: str) -> Principal | None:
        if self.admin_token_hash and hmac.compare_digest(hash_token(token), self.admin_token_hash):
            return OPERATOR
        key_id = key_id_of(token)
        if key_id is None:
            return None
        key = await self.docs.get(lookups.apikey_key(str(key_id)))
        if key is None or key.get("status") != "active":
            return None
        if not token_matches(token, key["secret_hash"]):
            return None
        account = await self.docs.get(lookups.account_key(key["account_id"]))
        if account is None or account.get("status") == "closed":
            return None
        return Principal(
            scopes=parse_scopes(key["scopes"]), account_id=UUID(key["account_id"]), key_id=key_id
        )
