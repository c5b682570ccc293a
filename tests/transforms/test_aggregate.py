"""The Transformation aggregate (versions, archiving) and source pipelines, without I/O."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from domain.errors import InvalidValueError, NotFoundError
from domain.source import Source
from domain.transform import InvalidTransformError
from domain.transformation import Transformation, TransformationArchivedError, TransformRef

ACCOUNT = uuid.uuid4()
V1: dict[str, Any] = {"steps": [{"drop": ["secret"]}]}
V2: dict[str, Any] = {"steps": [{"drop": ["secret", "internal"]}]}


def _events(aggregate: Any) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


def test_every_revision_is_a_version_and_every_version_stays_readable() -> None:
    t = Transformation.define(account_id=ACCOUNT, name=" orders ", document=V1)
    assert (t.name, t.latest, t.document(), t.account_id) == ("orders", 1, V1, str(ACCOUNT))
    assert t.revise(V2) is True
    assert t.revise({"steps": [{"drop": ["secret", "internal"]}]}) is False  # unchanged
    assert t.revise(V2, name="orders") is False
    assert t.revise(V2, name="orders, cleaned") is True  # a rename is a version too
    assert (t.latest, t.name) == (3, "orders, cleaned")
    assert [t.document(v) for v in (1, 2, 3)] == [V1, V2, V2]
    assert _events(t) == ["Created", "Revised", "Revised"]
    t.archive("replaced")
    assert _events(t) == ["Archived"]
    assert t.document(1) == V1  # archived: still readable
    with pytest.raises(TransformationArchivedError):
        t.revise(V1)
    with pytest.raises(TransformationArchivedError):
        t.archive("again")
    with pytest.raises(NotFoundError):
        t.document(4)


def test_documents_are_validated_before_anything_is_recorded() -> None:
    with pytest.raises(InvalidTransformError) as caught:
        Transformation.define(account_id=ACCOUNT, name="x", document={"steps": [{"nope": 1}]})
    assert caught.value.field == "transform.steps[0]"
    t = Transformation.define(account_id=ACCOUNT, name="x", document=V1)
    t.collect_events()
    with pytest.raises(InvalidTransformError):
        t.revise({"steps": "no"})
    with pytest.raises(InvalidValueError):
        Transformation.define(account_id=ACCOUNT, name=" ", document=V1)
    assert t.collect_events() == []


def test_the_stored_document_is_a_copy() -> None:
    document = {"steps": [{"drop": ["a"]}]}
    t = Transformation.define(account_id=ACCOUNT, name="x", document=document)
    document["steps"].append({"drop": ["b"]})
    assert t.document(1) == {"steps": [{"drop": ["a"]}]}


def test_source_pipelines() -> None:
    source = Source(account_id=str(ACCOUNT), name="orders")
    assert source.pipeline is None
    transform_id = uuid.uuid4()
    assert source.set_pipeline(transform_id, 2) is True
    assert source.set_pipeline(transform_id, 2) is False
    assert source.pipeline == (str(transform_id), 2)
    source.clear_pipeline()
    assert source.pipeline is None
    with pytest.raises(NotFoundError):
        source.clear_pipeline()
    assert _events(source) == ["Registered", "PipelineSet", "PipelineCleared"]


def test_transform_references() -> None:
    tid = uuid.uuid4()
    assert TransformRef.parse(f"{tid}@3") == TransformRef(tid, 3)
    assert TransformRef.parse(tid.hex) == TransformRef(tid, None)
    assert str(TransformRef(tid, 3)) == f"{tid}@3"
    for bad in ("", "x@1", f"{tid}@0", f"{tid}@", f"{tid}@-1", f"{tid}@1@2"):
        with pytest.raises(InvalidValueError):
            TransformRef.parse(bad)
