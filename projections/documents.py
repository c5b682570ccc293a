"""What is particular to document read models (Redis, or SQLite when embedded)."""

from __future__ import annotations

from projections.changes import AddMember, Delete, Positioned, Put, RemoveMember
from projections.memory import Documents


def document_repairs(changes: list[Positioned]) -> list[Positioned]:
    """The writes that make every document and membership these changes touch equal to
    what the changes, applied in order, produce. Merges depend on what came before, so a
    repair writes whole final states instead of replaying them."""
    final = Documents()
    final.apply_now(changes)
    docs: dict[str, None] = {}
    members: dict[tuple[str, str], None] = {}
    for item in changes:
        change = item.change
        if isinstance(change, AddMember | RemoveMember):
            members[(change.set, change.member)] = None
        else:
            docs[change.key] = None
    repairs: list[Positioned] = []
    for key in docs:
        doc = final.docs.get(key)
        repairs.append(Positioned(1, Put(key, doc) if doc is not None else Delete(key)))
    for set_key, member in members:
        present = member in final.sets.get(set_key, [])
        change = AddMember(set_key, member) if present else RemoveMember(set_key, member)
        repairs.append(Positioned(1, change))
    return repairs
