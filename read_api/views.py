"""Read-model documents shaped into response bodies."""

from __future__ import annotations

from typing import Any

from schemas.responses import AccountView, ApiKeyView, RecordView


def account_view(doc: dict[str, Any]) -> AccountView:
    return AccountView(
        id=doc["id"],
        name=doc["name"],
        email=doc["email"],
        plan=doc["plan"],
        status=doc["status"],
        version=doc["version"],
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


def api_key_view(doc: dict[str, Any]) -> ApiKeyView:
    return ApiKeyView(
        id=doc["id"],
        account_id=doc["account_id"],
        name=doc["name"],
        prefix=doc["prefix"],
        scopes=doc["scopes"],
        role=doc.get("role", "member"),
        status=doc["status"],
        version=doc["version"],
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


def record_view(doc: dict[str, Any]) -> RecordView:
    return RecordView(
        source=doc["source"],
        id=doc["id"],
        data=doc["data"],
        version=doc["version"],
        updated_at=doc["updated_at"],
        position=doc["position"],
    )
