"""The `lookups` projection: latest state of accounts, API keys, sources and records.

It serves reads by id and API-key authentication on the read side. Pure: events in,
changes out; a store adapter (Redis, or SQLite in the embedded mode) applies them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from projections.changes import AddMember, Change, Delete, Merge, Positioned, Put, RemoveMember
from projections.transforms import RULES as TRANSFORMATION_RULES
from schemas.events import ProjectedEvent

NAME = "lookups"

# ApiKey events on the public event topic carry no secret verifier; this projection takes
# them from the internal credentials feed instead (see docs/subscribers.md).
CREDENTIAL_EVENTS = ("ApiKey.",)

# The documents authentication reads (an API key and its account): a read API may cache
# them only if it hears of their changes (infra.adapters.documents.linkcache).
CREDENTIAL_DOCUMENTS = ("apikey:", "account:")


def account_key(account_id: str) -> str:
    return f"account:{account_id}"


def apikey_key(key_id: str) -> str:
    return f"apikey:{key_id}"


def record_key(account_id: str, source: str, key: str) -> str:
    return f"record:{account_id}:{source}:{key}"


def records_set(account_id: str, source: str) -> str:
    return f"records:{account_id}:{source}"


def sources_set(account_id: str) -> str:
    return f"sources:{account_id}"


def apikeys_set(account_id: str) -> str:
    return f"apikeys:{account_id}"


def _stamp(event: ProjectedEvent) -> dict[str, Any]:
    return {"version": event.version, "updated_at": event.timestamp.isoformat()}


def _account_opened(e: ProjectedEvent) -> list[Change]:
    p = e.payload
    doc = {
        "id": str(e.stream_id),
        "name": p["name"],
        "email": p["email"],
        "plan": p["plan"],
        "status": "active",
        "created_at": e.timestamp.isoformat(),
        **_stamp(e),
    }
    return [Put(account_key(str(e.stream_id)), doc)]


def _account_changed(fields: Callable[[dict[str, Any]], dict[str, Any]]) -> Rule:
    def rule(e: ProjectedEvent) -> list[Change]:
        return [Merge(account_key(str(e.stream_id)), {**fields(e.payload), **_stamp(e)})]

    return rule


def _key_issued(e: ProjectedEvent) -> list[Change]:
    p = e.payload
    key_id = str(e.stream_id)
    doc = {
        "id": key_id,
        "account_id": p["account_id"],
        "name": p["name"],
        "prefix": p["prefix"],
        "scopes": p["scopes"],
        "role": p.get("role", "member"),
        "secret_hash": p["secret_hash"],
        "status": "active",
        "created_at": e.timestamp.isoformat(),
        **_stamp(e),
    }
    return [Put(apikey_key(key_id), doc), AddMember(apikeys_set(p["account_id"]), key_id)]


def _key_changed(fields: Callable[[dict[str, Any]], dict[str, Any]]) -> Rule:
    def rule(e: ProjectedEvent) -> list[Change]:
        return [Merge(apikey_key(str(e.stream_id)), {**fields(e.payload), **_stamp(e)})]

    return rule


def _source_registered(e: ProjectedEvent) -> list[Change]:
    p = e.payload
    doc = {"account_id": p["account_id"], "name": p["name"], "created_at": e.timestamp.isoformat()}
    return [
        Put(f"source:{p['account_id']}:{p['name']}", doc),
        AddMember(sources_set(p["account_id"]), p["name"]),
    ]


def _record_upserted(e: ProjectedEvent) -> list[Change]:
    p = e.payload
    doc = {
        "source": p["source"],
        "id": p["key"],
        "data": p["data"],
        "position": e.position,
        **_stamp(e),
        **_present(p, "raw", "transform"),  # when a source pipeline transformed it
    }
    return [
        Put(record_key(p["account_id"], p["source"], p["key"]), doc),
        AddMember(records_set(p["account_id"], p["source"]), p["key"]),
    ]


def _record_deleted(e: ProjectedEvent) -> list[Change]:
    p = e.payload
    return [
        Delete(record_key(p["account_id"], p["source"], p["key"])),
        RemoveMember(records_set(p["account_id"], p["source"]), p["key"]),
    ]


def _present(payload: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: payload[name] for name in names if payload.get(name) is not None}


Rule = Callable[[ProjectedEvent], list[Change]]

RULES: dict[str, Rule] = {
    "Account.Opened": _account_opened,
    "Account.ProfileUpdated": _account_changed(lambda p: _present(p, "name", "email")),
    "Account.PlanChanged": _account_changed(lambda p: {"plan": p["plan"]}),
    "Account.Suspended": _account_changed(lambda p: {"status": "suspended"}),
    "Account.Reactivated": _account_changed(lambda p: {"status": "active"}),
    "Account.Closed": _account_changed(lambda p: {"status": "closed"}),
    "ApiKey.Issued": _key_issued,
    "ApiKey.Revoked": _key_changed(lambda p: {"status": "revoked"}),
    "ApiKey.Rotated": _key_changed(lambda p: {"secret_hash": p["secret_hash"]}),
    "Source.Registered": _source_registered,
    "Record.Created": _record_upserted,
    "Record.Updated": _record_upserted,
    "Record.Deleted": _record_deleted,
    **TRANSFORMATION_RULES,  # transformations and source pipelines (projections/transforms.py)
}


def changes(events: Iterable[ProjectedEvent]) -> list[Positioned]:
    """Every change the events ask for, in order. Unknown event types change nothing."""
    out: list[Positioned] = []
    for event in events:
        rule = RULES.get(event.type)
        if rule is not None:
            out.extend(Positioned(event.position, change) for change in rule(event))
    return out
