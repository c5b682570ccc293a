"""The Transformation aggregate: a named transform of an account, versioned.

Every revision appends a version (1, 2, 3, ...) holding the whole document; versions never
change, so `<id>@<version>` always means the same transform. Archiving ("delete") stops
revisions and new uses, and keeps every version readable for audit. The documents are
validated by the transform language (`domain.transform`) before anything is recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain import values
from domain.errors import ConflictError, InvalidValueError, NotFoundError
from domain.transform import DEFAULT_LIMITS, Limits, compile_transform
from domain.transform.values import json_equal

_REF = re.compile(r"([0-9a-fA-F-]{32,36})(?:@([1-9][0-9]{0,8}))?")


class TransformationArchivedError(ConflictError):
    code = "TRANSFORMATION_ARCHIVED"


@dataclass(frozen=True, slots=True)
class TransformRef:
    """`<id>@<version>`; `version` None means the latest (accepted where documented)."""

    id: UUID
    version: int | None = None

    def __str__(self) -> str:
        return str(self.id) if self.version is None else f"{self.id}@{self.version}"

    @classmethod
    def parse(cls, text: str, field: str = "transform") -> TransformRef:
        match = _REF.fullmatch(text.strip())
        if match is None:
            raise InvalidValueError(field, "must be <transform id>@<version> (or <transform id>)")
        try:
            transform_id = UUID(match.group(1))
        except ValueError:
            raise InvalidValueError(field, "the transform id is not a UUID") from None
        version = int(match.group(2)) if match.group(2) else None
        return cls(transform_id, version)


class Transformation(Aggregate):
    """Every event names the account, so consumers can place it without state."""

    @event("Created")
    def __init__(self, account_id: str, name: str, document: dict[str, Any], version: int) -> None:
        self.account_id = account_id
        self.name = name
        self.documents: list[dict[str, Any]] = [document]
        self.archived = False

    @classmethod
    def define(
        cls, *, account_id: UUID, name: str, document: Any, limits: Limits = DEFAULT_LIMITS
    ) -> Transformation:
        """Raises InvalidTransformError (naming every problem) for an invalid document."""
        checked_name = values.display_name(name)
        compiled = compile_transform(document, limits)
        return cls(
            account_id=str(account_id), name=checked_name, document=compiled.document, version=1
        )

    @property
    def latest(self) -> int:
        """The newest version number."""
        return len(self.documents)

    def document(self, version: int | None = None) -> dict[str, Any]:
        """The document of `version` (the latest when None)."""
        if version is None:
            return self.documents[-1]
        if not 1 <= version <= len(self.documents):
            raise NotFoundError(f"transformation {self.id} has no version {version}")
        return self.documents[version - 1]

    def revise(
        self, document: Any, name: str | None = None, limits: Limits = DEFAULT_LIMITS
    ) -> bool:
        """Appends a version; False (nothing recorded) when neither the document nor the
        name changes."""
        self.ensure_active()
        compiled = compile_transform(document, limits)
        new_name = values.display_name(name) if name is not None else None
        if new_name == self.name:
            new_name = None
        if new_name is None and json_equal(compiled.document, self.documents[-1]):
            return False
        self._revised(
            account_id=self.account_id,
            version=self.latest + 1,
            document=compiled.document,
            name=new_name,
        )
        return True

    @event("Revised")
    def _revised(
        self, account_id: str, version: int, document: dict[str, Any], name: str | None
    ) -> None:
        self.documents.append(document)
        if name is not None:
            self.name = name

    def archive(self, reason: str) -> None:
        self.ensure_active()
        self._archived(account_id=self.account_id, reason=reason)

    @event("Archived")
    def _archived(self, account_id: str, reason: str) -> None:
        self.archived = True

    def ensure_active(self) -> None:
        if self.archived:
            raise TransformationArchivedError(
                f"transformation {self.id} is archived: its versions stay readable, "
                "but it cannot be revised or newly used"
            )
