"""Transformations in the `lookups` read model: every version of every transformation, the
account's list of them, and each source's pipeline. Pure rules, merged into lookups.RULES.

    transformation:<id>            name, latest_version, archived, account, times
    transformation:<id>:<version>  that version's document (written once, never changed)
    transformations:<account>      set of the account's transformation ids (archived included)
    source:<account>:<name>        gains `pipeline` ({transform_id, version} or null)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from projections.changes import AddMember, Change, Merge, Put
from schemas.events import ProjectedEvent


def transformation_key(transformation_id: str) -> str:
    return f"transformation:{transformation_id}"


def version_key(transformation_id: str, version: int) -> str:
    return f"transformation:{transformation_id}:{version}"


def transformations_set(account_id: str) -> str:
    return f"transformations:{account_id}"


def source_key(account_id: str, name: str) -> str:
    """The lookups projection's source document (written by Source.Registered)."""
    return f"source:{account_id}:{name}"


def _version(e: ProjectedEvent, name: str | None) -> Put:
    p = e.payload
    doc = {
        "id": str(e.stream_id),
        "account_id": p["account_id"],
        "version": p["version"],
        "document": p["document"],
        "created_at": e.timestamp.isoformat(),
    }
    if name is not None:
        doc["name"] = name
    return Put(version_key(str(e.stream_id), p["version"]), doc)


def _created(e: ProjectedEvent) -> list[Change]:
    p = e.payload
    tid = str(e.stream_id)
    at = e.timestamp.isoformat()
    doc = {
        "id": tid,
        "account_id": p["account_id"],
        "name": p["name"],
        "latest_version": p["version"],
        "archived": False,
        "created_at": at,
        "updated_at": at,
    }
    return [
        Put(transformation_key(tid), doc),
        _version(e, p["name"]),
        AddMember(transformations_set(p["account_id"]), tid),
    ]


def _revised(e: ProjectedEvent) -> list[Change]:
    p = e.payload
    fields: dict[str, Any] = {"latest_version": p["version"], "updated_at": e.timestamp.isoformat()}
    if p.get("name") is not None:
        fields["name"] = p["name"]
    return [Merge(transformation_key(str(e.stream_id)), fields), _version(e, p.get("name"))]


def _archived(e: ProjectedEvent) -> list[Change]:
    fields = {"archived": True, "updated_at": e.timestamp.isoformat()}
    return [Merge(transformation_key(str(e.stream_id)), fields)]


def _pipeline_set(e: ProjectedEvent) -> list[Change]:
    p = e.payload
    pipeline = {"transform_id": p["transform_id"], "version": p["transform_version"]}
    fields = {"pipeline": pipeline, "pipeline_updated_at": e.timestamp.isoformat()}
    return [Merge(source_key(p["account_id"], p["name"]), fields)]


def _pipeline_cleared(e: ProjectedEvent) -> list[Change]:
    p = e.payload
    fields = {"pipeline": None, "pipeline_updated_at": e.timestamp.isoformat()}
    return [Merge(source_key(p["account_id"], p["name"]), fields)]


RULES: dict[str, Callable[[ProjectedEvent], list[Change]]] = {
    "Transformation.Created": _created,
    "Transformation.Revised": _revised,
    "Transformation.Archived": _archived,
    "Source.PipelineSet": _pipeline_set,
    "Source.PipelineCleared": _pipeline_cleared,
}
