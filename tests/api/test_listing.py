"""`GET /v1/data/{source}`: paging and output formats, in both modes."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq

from tests.conftest import Stack, Tenant, assert_error


async def _seed(stack: Stack, count: int = 25) -> tuple[Tenant, int]:
    tenant = await stack.new_account()
    records = [{"id": f"r{i:03d}", "data": {"i": i, "tags": ["a", str(i)]}} for i in range(count)]
    written = await stack.command.post(
        "/v1/ingest/batch", json={"source": "items", "records": records}, headers=tenant.auth
    )
    assert written.status_code == 200
    position = written.json()["data"]["position"]
    if count > 5:
        deleted = await stack.command.delete("/v1/data/items/r005", headers=tenant.auth)
        position = deleted.json()["data"]["position"]
    await stack.caught_up(position)
    return tenant, position


async def test_pages_cover_every_record_once_in_key_order(stack: Stack) -> None:
    tenant, _ = await _seed(stack)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = await stack.read.get("/v1/data/items", params=params, headers=tenant.auth)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [row["id"] for row in body["data"]]
        cursor = body["meta"]["next_cursor"]
        pages += 1
        assert page.headers.get("x-next-cursor") == cursor
        if cursor is None:
            break
    assert seen == [f"r{i:03d}" for i in range(25) if i != 5]
    assert pages == 3
    first = (await stack.read.get("/v1/data/items", headers=tenant.auth)).json()["data"][0]
    assert first == {
        "source": "items",
        "id": "r000",
        "data": {"i": 0, "tags": ["a", "0"]},
        "version": 1,
        "updated_at": first["updated_at"],
        "position": first["position"],
        "deleted": False,
    }


async def test_formats_by_parameter_and_by_accept(stack: Stack) -> None:
    tenant, _ = await _seed(stack, count=3)
    ndjson = await stack.read.get("/v1/data/items?format=ndjson", headers=tenant.auth)
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    assert [json.loads(line)["id"] for line in ndjson.text.splitlines()] == ["r000", "r001", "r002"]

    as_csv = await stack.read.get(
        "/v1/data/items", headers={**tenant.auth, "Accept": "text/csv, application/json;q=0.5"}
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["id"] for r in rows] == ["r000", "r001", "r002"]
    assert json.loads(rows[1]["data"]) == {"i": 1, "tags": ["a", "1"]}

    parquet = await stack.read.get("/v1/data/items?format=parquet", headers=tenant.auth)
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column("id").to_pylist() == ["r000", "r001", "r002"]
    assert table.schema.field("version").type == "int64"
    assert json.loads(table.column("data").to_pylist()[2]) == {"i": 2, "tags": ["a", "2"]}

    refused = await stack.read.get(
        "/v1/data/items", headers={**tenant.auth, "Accept": "application/xml"}
    )
    assert_error(refused, 406, "NOT_ACCEPTABLE")
    unknown = await stack.read.get("/v1/data/items?format=xlsx", headers=tenant.auth)
    assert_error(unknown, 406, "NOT_ACCEPTABLE")


async def test_listing_is_per_tenant_and_validates_its_parameters(stack: Stack) -> None:
    tenant, _ = await _seed(stack, count=2)
    other = await stack.new_account()
    empty = await stack.read.get("/v1/data/items", headers=other.auth)
    assert empty.json()["data"] == []
    for params in ({"cursor": "!!!"}, {"limit": 0}, {"limit": 5000}):
        bad = await stack.read.get("/v1/data/items", params=params, headers=tenant.auth)
        assert bad.status_code == 400, (params, bad.text)
    assert_error(
        await stack.read.get("/v1/data/Bad Source", headers=tenant.auth), 400, "INVALID_VALUE"
    )
