"""Store-neutral writes a projection asks for. Each store adapter turns them into its own terms.

Documents are flat field maps addressed by a key; sets are ordered by member (for paging).
Every change carries the position of the event that caused it, so a store can skip what it
already applied and a redelivered event changes nothing.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Put(msgspec.Struct, frozen=True, tag=True):
    """Replace the whole document."""

    key: str
    fields: dict[str, Any]


class Merge(msgspec.Struct, frozen=True, tag=True):
    """Set some fields of a document, creating it if missing."""

    key: str
    fields: dict[str, Any]


class Delete(msgspec.Struct, frozen=True, tag=True):
    key: str


class AddMember(msgspec.Struct, frozen=True, tag=True):
    set: str
    member: str


class RemoveMember(msgspec.Struct, frozen=True, tag=True):
    set: str
    member: str


Change = Put | Merge | Delete | AddMember | RemoveMember


class Positioned(msgspec.Struct, frozen=True, array_like=True):
    position: int
    change: Change
