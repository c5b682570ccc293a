"""Transformations over HTTP, in both modes: definitions and their versions, try-out, source
pipelines at ingest, and read-time `transform=`."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pyarrow.parquet as pq

from domain.transform import compile_transform, compose
from tests.conftest import Stack, Tenant, assert_error

CLEAN: dict[str, Any] = {
    "steps": [
        {"rename": {"amt": "amount"}},
        {"cast": {"field": "amount", "to": "float"}},
        {"default": {"currency": "EUR"}},
        {"filter": {"expr": {"op": "gt", "args": [{"field": "amount"}, 0]}}},
        {"drop": ["internal"]},
    ]
}
CLEAN_V2: dict[str, Any] = {
    "steps": [
        *CLEAN["steps"],
        {
            "compute": {
                "field": "label",
                "expr": {"op": "concat", "args": [{"field": "currency"}, " ", {"field": "amount"}]},
            }
        },
    ]
}
UPPER: dict[str, Any] = {
    "steps": [
        {"compute": {"field": "currency", "expr": {"op": "lower", "args": [{"field": "currency"}]}}}
    ]
}


async def _define(
    stack: Stack, tenant: Tenant, document: dict[str, Any], name: str = "clean"
) -> str:
    created = await stack.command.post(
        "/v1/transform/custom", json={"name": name, "transform": document}, headers=tenant.auth
    )
    assert created.status_code == 201, created.text
    await stack.caught_up(created.json()["data"]["position"])
    return str(created.json()["data"]["id"])


async def _key(stack: Stack, tenant: Tenant, role: str) -> dict[str, str]:
    issued = await stack.command.post(
        "/v1/apikey/generate", json={"name": role, "role": role}, headers=tenant.auth
    )
    assert issued.status_code == 201, issued.text
    await stack.caught_up(issued.json()["data"]["position"])
    return {"Authorization": f"Bearer {issued.json()['data']['secret']}"}


async def test_transformations_are_versioned_and_every_version_stays_readable(stack: Stack) -> None:
    tenant = await stack.new_account()
    auth = tenant.auth
    body = {"name": "clean", "transform": CLEAN}
    first = await stack.command.post(
        "/v1/transform/custom", json=body, headers={**auth, "Idempotency-Key": "t-1"}
    )
    assert first.status_code == 201, first.text
    again = await stack.command.post(
        "/v1/transform/custom", json=body, headers={**auth, "Idempotency-Key": "t-1"}
    )
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["data"] == first.json()["data"]
    created = first.json()["data"]
    tid = created["id"]
    assert (created["name"], created["version"], created["archived"]) == ("clean", 1, False)

    revised = await stack.command.put(
        f"/v1/transform/custom/{tid}", json={"transform": CLEAN_V2}, headers=auth
    )
    assert revised.json()["data"]["version"] == 2, revised.text
    unchanged = await stack.command.put(
        f"/v1/transform/custom/{tid}", json={"transform": CLEAN_V2}, headers=auth
    )
    assert unchanged.json()["data"]["version"] == 2
    position = unchanged.json()["data"]["position"]

    read = {"min_position": position}
    latest = (await stack.read.get(f"/v1/transform/custom/{tid}", params=read, headers=auth)).json()
    assert latest["data"]["version"] == 2
    assert latest["data"]["latest_version"] == 2
    assert latest["data"]["transform"] == CLEAN_V2
    v1 = await stack.read.get(f"/v1/transform/custom/{tid}?version=1", headers=auth)
    assert v1.json()["data"]["transform"] == CLEAN
    assert_error(
        await stack.read.get(f"/v1/transform/custom/{tid}?version=3", headers=auth),
        404,
        "NOT_FOUND",
    )

    archived = await stack.command.delete(f"/v1/transform/custom/{tid}", headers=auth)
    assert archived.json()["data"]["archived"] is True
    read = {"min_position": archived.json()["data"]["position"]}
    for version, document in ((1, CLEAN), (2, CLEAN_V2)):
        old = await stack.read.get(
            f"/v1/transform/custom/{tid}", params={**read, "version": version}, headers=auth
        )
        assert old.json()["data"]["transform"] == document
        assert old.json()["data"]["archived"] is True
    assert_error(
        await stack.command.put(
            f"/v1/transform/custom/{tid}", json={"transform": CLEAN}, headers=auth
        ),
        409,
        "TRANSFORMATION_ARCHIVED",
    )
    listed = (await stack.read.get("/v1/transform/custom", headers=auth)).json()["data"]
    assert listed["transformations"] == []
    listed = (await stack.read.get("/v1/transform/custom?archived=true", headers=auth)).json()
    assert [t["id"] for t in listed["data"]["transformations"]] == [tid]

    history = (await stack.read.get(f"/v1/transform/custom/{tid}/history", headers=auth)).json()
    events = history["data"]["events"]
    assert [e["type"] for e in events] == [
        "Transformation.Created",
        "Transformation.Revised",
        "Transformation.Archived",
    ]
    assert [e["payload"].get("document") for e in events[:2]] == [CLEAN, CLEAN_V2]


async def test_invalid_documents_name_every_problem(stack: Stack) -> None:
    tenant = await stack.new_account()
    bad = {"steps": [{"cast": {"field": "a", "to": "money"}}, {"drop": ["ok"]}, {"explode": {}}]}
    for response in (
        await stack.command.post(
            "/v1/transform/custom", json={"name": "x", "transform": bad}, headers=tenant.auth
        ),
        await stack.read.post(
            "/v1/transform", json={"transform": bad, "records": [{}]}, headers=tenant.auth
        ),
    ):
        error = assert_error(response, 400, "INVALID_TRANSFORM")
        assert [(d["step"], d["path"]) for d in error["details"]] == [
            (0, "steps[0].cast.to"),
            (2, "steps[2]"),
        ]
        assert error["message"].startswith("transform.steps[0].cast.to: must be one of")
    tid = await _define(stack, tenant, CLEAN)
    revised = await stack.command.put(
        f"/v1/transform/custom/{tid}", json={"transform": bad}, headers=tenant.auth
    )
    assert assert_error(revised, 400, "INVALID_TRANSFORM")["details"][1]["step"] == 2
    assert_error(
        await stack.command.post(
            "/v1/transform/custom",
            json={"name": "x", "transform": CLEAN, "x": 1},
            headers=tenant.auth,
        ),
        400,
        "VALIDATION_FAILED",
    )


async def test_try_out_inline_or_by_id(stack: Stack) -> None:
    tenant = await stack.new_account()
    records = [{"amt": "12.5", "internal": 1}, {"amt": "0"}, {"amt": "x"}, [1, 2]]
    tried = await stack.read.post(
        "/v1/transform", json={"transform": CLEAN, "records": records}, headers=tenant.auth
    )
    assert tried.status_code == 200, tried.text
    data = tried.json()["data"]
    assert (data["ok"], data["dropped"], data["failed"], data["transform"]) == (1, 1, 2, None)
    assert data["results"] == [
        {"index": 0, "status": "ok", "record": {"amount": 12.5, "currency": "EUR"}},
        {"index": 1, "status": "dropped", "step": 3},
        {
            "index": 2,
            "status": "error",
            "step": 1,
            "field": "amount",
            "code": "CAST_FAILED",
            "message": "cannot cast string 'x' to float",
        },
        {
            "index": 3,
            "status": "error",
            "code": "NOT_AN_OBJECT",
            "message": "a record is a JSON object",
        },
    ]
    tid = await _define(stack, tenant, CLEAN)
    by_id = await stack.read.post(
        "/v1/transform", json={"id": tid, "version": 1, "records": records[:1]}, headers=tenant.auth
    )
    assert by_id.json()["data"]["transform"] == f"{tid}@1"
    assert by_id.json()["data"]["results"][0]["record"] == {"amount": 12.5, "currency": "EUR"}
    latest = await stack.read.post(
        "/v1/transform", json={"id": tid, "records": [{}]}, headers=tenant.auth
    )
    assert latest.json()["data"]["transform"] == f"{tid}@1"
    for body in (
        {"records": [{}]},
        {"transform": CLEAN, "id": tid, "records": [{}]},
        {"transform": CLEAN, "version": 1, "records": [{}]},
    ):
        assert_error(
            await stack.read.post("/v1/transform", json=body, headers=tenant.auth),
            400,
            "INVALID_VALUE",
        )
    assert_error(
        await stack.read.post(
            "/v1/transform", json={"transform": CLEAN, "records": []}, headers=tenant.auth
        ),
        400,
        "VALIDATION_FAILED",
    )


async def test_scopes_and_tenant_isolation(stack: Stack) -> None:
    owner = await stack.new_account()
    tid = await _define(stack, owner, CLEAN)
    member = await _key(stack, owner, "member")
    viewer = await _key(stack, owner, "viewer")
    assert_error(
        await stack.command.post(
            "/v1/transform/custom", json={"name": "x", "transform": CLEAN}, headers=member
        ),
        403,
        "INSUFFICIENT_SCOPE",
    )
    assert_error(
        await stack.command.put(
            "/v1/sources/s/pipeline", json={"transform_id": tid, "version": 1}, headers=member
        ),
        403,
        "INSUFFICIENT_SCOPE",
    )
    for auth in (member, viewer):
        assert (
            await stack.read.get(f"/v1/transform/custom/{tid}", headers=auth)
        ).status_code == 200
        tried = await stack.read.post(
            "/v1/transform", json={"id": tid, "records": [{}]}, headers=auth
        )
        assert tried.status_code == 200

    other = await stack.new_account()
    assert_error(
        await stack.read.get(f"/v1/transform/custom/{tid}", headers=other.auth), 404, "NOT_FOUND"
    )
    assert_error(
        await stack.read.get(f"/v1/transform/custom/{tid}/history", headers=other.auth),
        404,
        "NOT_FOUND",
    )
    assert_error(
        await stack.command.put(
            f"/v1/transform/custom/{tid}", json={"transform": CLEAN}, headers=other.auth
        ),
        404,
        "NOT_FOUND",
    )
    assert_error(
        await stack.command.delete(f"/v1/transform/custom/{tid}", headers=other.auth),
        404,
        "NOT_FOUND",
    )
    assert_error(
        await stack.read.post(
            "/v1/transform", json={"id": tid, "records": [{}]}, headers=other.auth
        ),
        404,
        "NOT_FOUND",
    )
    assert_error(
        await stack.command.put(
            "/v1/sources/s/pipeline", json={"transform_id": tid, "version": 1}, headers=other.auth
        ),
        404,
        "NOT_FOUND",
    )
    listed = await stack.read.get("/v1/transform/custom", headers=other.auth)
    assert listed.json()["data"]["transformations"] == []
    written = await stack.command.post(
        "/v1/ingest", json={"source": "s", "id": "r", "data": {}}, headers=other.auth
    )
    await stack.caught_up(written.json()["data"]["position"])
    assert_error(
        await stack.read.get(f"/v1/data/s/r?transform={tid}@1", headers=other.auth),
        404,
        "NOT_FOUND",
    )


async def test_a_source_pipeline_transforms_at_ingest_and_keeps_the_raw_record(
    stack: Stack,
) -> None:
    tenant = await stack.new_account()
    auth = tenant.auth
    tid = await _define(stack, tenant, CLEAN)
    pipeline = await stack.command.put(
        "/v1/sources/orders/pipeline", json={"transform_id": tid, "version": 1}, headers=auth
    )
    assert pipeline.json()["data"] == {
        "source": "orders",
        "transform": f"{tid}@1",
        "position": pipeline.json()["data"]["position"],
    }
    batch = await stack.command.post(
        "/v1/ingest/batch",
        json={
            "source": "orders",
            "records": [
                {"id": "o-1", "data": {"amt": "12.5", "internal": "x"}},
                {"id": "o-2", "data": {"amt": 0}},
                {"id": "o-3", "data": {"amt": "lots"}},
                {"id": "o-4", "data": {"amt": 3, "currency": "USD"}},
            ],
        },
        headers=auth,
    )
    assert batch.status_code == 200, batch.text
    written = batch.json()["data"]
    assert written["count"] == 2
    assert [r["id"] for r in written["records"]] == ["o-1", "o-4"]
    assert written["pipelines"] == {"orders": f"{tid}@1"}
    assert written["filtered"] == ["o-2"]
    assert written["errors"] == [
        {
            "index": 2,
            "id": "o-3",
            "step": 1,
            "field": "amount",
            "code": "CAST_FAILED",
            "message": "cannot cast string 'lots' to float",
        }
    ]
    await stack.caught_up(written["position"])

    record = (await stack.read.get("/v1/data/orders/o-1", headers=auth)).json()["data"]
    assert record["data"] == {"amount": 12.5, "currency": "EUR"}
    raw = (await stack.read.get("/v1/data/orders/o-1?raw=true", headers=auth)).json()["data"]
    assert raw["data"] == {"amt": "12.5", "internal": "x"}
    assert_error(await stack.read.get("/v1/data/orders/o-2", headers=auth), 404, "NOT_FOUND")
    history = (await stack.read.get("/v1/data/orders/o-1/history", headers=auth)).json()
    payload = history["data"]["events"][0]["payload"]
    assert payload["data"] == {"amount": 12.5, "currency": "EUR"}
    assert payload["raw"] == {"amt": "12.5", "internal": "x"}
    assert payload["transform"] == f"{tid}@1"

    one = await stack.command.post(
        "/v1/ingest", json={"source": "orders", "id": "o-5", "data": {"amt": "x"}}, headers=auth
    )
    error = assert_error(one, 400, "TRANSFORM_FAILED")
    assert error["details"] == [{"field": "data.amount"}]
    assert f"CAST_FAILED at step 1 of {tid}@1" in error["message"]
    dropped = await stack.command.post(
        "/v1/ingest", json={"source": "orders", "id": "o-1", "data": {"amt": -1}}, headers=auth
    )
    assert dropped.status_code == 200, dropped.text
    assert dropped.json()["data"]["filtered"] is True
    assert dropped.json()["data"]["version"] == 1  # o-1 unchanged
    kept = await stack.command.post(
        "/v1/ingest", json={"source": "orders", "id": "o-6", "data": {"amt": 1}}, headers=auth
    )
    assert kept.json()["data"]["transform"] == f"{tid}@1"
    assert kept.json()["data"]["filtered"] is False

    lines = "\n".join(
        json.dumps({"id": f"s-{i}", "data": {"amt": value}})
        for i, value in enumerate([1, "bad", -1, 2])
    )
    streamed = await stack.command.post(
        "/v1/ingest/stream?source=orders", content=lines.encode(), headers=auth
    )
    assert streamed.status_code == 200, streamed.text
    assert streamed.json()["data"]["accepted"] == 2
    assert streamed.json()["data"]["errors"] == [
        {"line": 2, "code": "CAST_FAILED", "message": "step 1: cannot cast string 'bad' to float"}
    ]

    # A new version: the pipeline moves to it; stored records keep what v1 made of them, and
    # v2 can be re-applied to their raw data at read time.
    await stack.command.put(
        f"/v1/transform/custom/{tid}", json={"transform": CLEAN_V2}, headers=auth
    )
    moved = await stack.command.put(
        "/v1/sources/orders/pipeline", json={"transform_id": tid, "version": 2}, headers=auth
    )
    later = await stack.command.post(
        "/v1/ingest", json={"source": "orders", "id": "o-7", "data": {"amt": 2}}, headers=auth
    )
    await stack.caught_up(later.json()["data"]["position"])
    assert later.json()["data"]["transform"] == f"{tid}@2"
    seven = (await stack.read.get("/v1/data/orders/o-7", headers=auth)).json()["data"]["data"]
    assert seven == {"amount": 2.0, "currency": "EUR", "label": "EUR 2.0"}
    replayed = await stack.read.get(f"/v1/data/orders/o-1?raw=true&transform={tid}@2", headers=auth)
    assert replayed.json()["data"]["data"]["label"] == "EUR 12.5"
    shown = (await stack.read.get("/v1/sources/orders/pipeline", headers=auth)).json()["data"]
    assert (shown["transform"], shown["version"]) == (f"{tid}@2", 2)
    assert moved.json()["data"]["transform"] == f"{tid}@2"

    cleared = await stack.command.delete("/v1/sources/orders/pipeline", headers=auth)
    assert cleared.json()["data"]["transform"] is None
    plain = await stack.command.post(
        "/v1/ingest", json={"source": "orders", "id": "o-8", "data": {"amt": "as is"}}, headers=auth
    )
    assert set(plain.json()["data"]) == {"source", "id", "version", "position"}
    await stack.caught_up(plain.json()["data"]["position"])
    eight = (await stack.read.get("/v1/data/orders/o-8", headers=auth)).json()["data"]["data"]
    assert eight == {"amt": "as is"}
    assert_error(
        await stack.command.delete("/v1/sources/orders/pipeline", headers=auth), 404, "NOT_FOUND"
    )


async def test_pipelines_need_an_existing_active_version(stack: Stack) -> None:
    tenant = await stack.new_account()
    tid = await _define(stack, tenant, CLEAN)
    for body, status, code in (
        ({"transform_id": tid, "version": 2}, 404, "NOT_FOUND"),
        ({"transform_id": "00000000-0000-4000-8000-000000000000", "version": 1}, 404, "NOT_FOUND"),
        ({"transform_id": tid, "version": 0}, 400, "VALIDATION_FAILED"),
    ):
        response = await stack.command.put(
            "/v1/sources/orders/pipeline", json=body, headers=tenant.auth
        )
        assert_error(response, status, code)
    set_now = await stack.command.put(
        "/v1/sources/new-source/pipeline",
        json={"transform_id": tid, "version": 1},
        headers=tenant.auth,
    )
    assert set_now.status_code == 200, set_now.text  # a new source is registered with it
    await stack.command.delete(f"/v1/transform/custom/{tid}", headers=tenant.auth)
    assert_error(
        await stack.command.put(
            "/v1/sources/orders/pipeline",
            json={"transform_id": tid, "version": 1},
            headers=tenant.auth,
        ),
        409,
        "TRANSFORMATION_ARCHIVED",
    )
    # An archived transformation keeps running where it is already the pipeline.
    written = await stack.command.post(
        "/v1/ingest",
        json={"source": "new-source", "id": "a", "data": {"amt": "1"}},
        headers=tenant.auth,
    )
    assert written.json()["data"]["transform"] == f"{tid}@1"


async def test_read_time_transforms_with_every_output_format(stack: Stack) -> None:
    tenant = await stack.new_account()
    auth = tenant.auth
    tid = await _define(stack, tenant, CLEAN)
    lower = await _define(stack, tenant, UPPER, name="lower")
    records = [
        {"id": "a", "data": {"amt": "1.5", "internal": True, "currency": "USD"}},
        {"id": "b", "data": {"amt": "-2"}},
        {"id": "c", "data": {"amt": "oops"}},
        {"id": "d", "data": {"amt": 4}},
    ]
    written = await stack.command.post(
        "/v1/ingest/batch", json={"source": "items", "records": records}, headers=auth
    )
    await stack.caught_up(written.json()["data"]["position"])
    ref = f"{tid}@1"

    one = (await stack.read.get(f"/v1/data/items/a?transform={ref}", headers=auth)).json()["data"]
    assert one["data"] == {"amount": 1.5, "currency": "USD"}
    assert one["version"] == 1
    assert_error(
        await stack.read.get(f"/v1/data/items/b?transform={ref}", headers=auth), 404, "NOT_FOUND"
    )
    failed = assert_error(
        await stack.read.get(f"/v1/data/items/c?transform={ref}", headers=auth),
        400,
        "TRANSFORM_FAILED",
    )
    assert failed["details"] == [{"field": "data.amount"}]
    past = await stack.read.get(f"/v1/data/items/a?as_of=1&transform={tid}", headers=auth)
    assert past.json()["data"]["data"] == {"amount": 1.5, "currency": "USD"}
    chained = await stack.read.get(f"/v1/data/items/a?transform={ref},{lower}@1", headers=auth)
    expected = compose(compile_transform(CLEAN), compile_transform(UPPER)).apply(records[0]["data"])
    assert chained.json()["data"]["data"] == {"amount": 1.5, "currency": "usd"}
    assert expected.record == chained.json()["data"]["data"]  # type: ignore[union-attr]

    listed = (await stack.read.get(f"/v1/data/items?transform={ref}", headers=auth)).json()
    assert [(r["id"], r["data"]) for r in listed["data"]] == [
        ("a", {"amount": 1.5, "currency": "USD"}),
        ("d", {"amount": 4.0, "currency": "EUR"}),
    ]
    assert [(e["id"], e["code"], e["step"]) for e in listed["transform_errors"]] == [
        ("c", "CAST_FAILED", 1)
    ]
    as_csv = await stack.read.get(f"/v1/data/items?transform={ref}&format=csv", headers=auth)
    assert as_csv.headers["x-transform-errors"] == "1"
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [json.loads(r["data"]) for r in rows] == [r["data"] for r in listed["data"]]
    ndjson = await stack.read.get(f"/v1/data/items?transform={ref}&format=ndjson", headers=auth)
    assert [json.loads(line)["id"] for line in ndjson.text.splitlines()] == ["a", "d"]
    parquet = await stack.read.get(f"/v1/data/items?transform={ref}&format=parquet", headers=auth)
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column("id").to_pylist() == ["a", "d"]
    plain = (await stack.read.get("/v1/data/items", headers=auth)).json()
    assert "transform_errors" not in plain
    assert len(plain["data"]) == 4

    for bad in ("nope", f"{tid}@0", f"{tid}@9", ",".join([ref] * 6)):
        response = await stack.read.get(f"/v1/data/items/a?transform={bad}", headers=auth)
        assert response.status_code in (400, 404), (bad, response.text)
