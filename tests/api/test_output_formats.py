"""Search hits and query results in every output format, in both modes; the OpenAPI specs
list the formats of each route that serves them."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import Stack, Tenant, assert_error

ORDERS = [
    {"id": "o-1", "data": {"status": "paid", "total": 10, "note": "red apple"}},
    {"id": "o-2", "data": {"status": "paid", "total": 32.5, "note": "green apple"}},
    {"id": "o-3", "data": {"status": "open", "total": 7, "note": "pear"}},
]
QUERY = {
    "source": "orders",
    "group_by": ["data.status"],
    "aggregates": [{"fn": "count"}, {"fn": "sum", "field": "data.total", "as": "revenue"}],
    "order_by": [{"field": "data.status"}],
}


async def _seed(stack: Stack) -> tuple[Tenant, int]:
    tenant = await stack.new_account()
    written = await stack.command.post(
        "/v1/ingest/batch", json={"source": "orders", "records": ORDERS}, headers=tenant.auth
    )
    assert written.status_code == 200, written.text
    return tenant, int(written.json()["data"]["position"])


async def test_search_hits_as_ndjson_csv_and_parquet(stack: Stack) -> None:
    tenant, position = await _seed(stack)
    params = {"q": "apple", "sort": "id", "min_position": position, "limit": 1}
    url = "/v1/data/orders/search"

    ndjson = await stack.read.get(url, params={**params, "format": "ndjson"}, headers=tenant.auth)
    assert ndjson.status_code == 200, ndjson.text
    assert ndjson.headers["content-type"].startswith("application/x-ndjson")
    assert ndjson.headers["x-total-count"] == "2"
    (hit,) = [json.loads(line) for line in ndjson.text.splitlines()]
    assert hit["id"] == "o-1"
    assert hit["data"] == ORDERS[0]["data"]
    assert hit["source"] == "orders"
    assert hit["version"] == 1
    assert "<em>" in json.dumps(hit["highlights"])
    cursor = ndjson.headers["x-next-cursor"]

    as_csv = await stack.read.get(
        url, params={**params, "cursor": cursor}, headers={**tenant.auth, "Accept": "text/csv"}
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    (row,) = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert row["id"] == "o-2"
    assert json.loads(row["data"]) == ORDERS[1]["data"]
    datetime.fromisoformat(row["updated_at"])
    assert "x-next-cursor" not in as_csv.headers  # the last page

    parquet = await stack.read.get(
        url, params={**params, "limit": 10, "format": "parquet"}, headers=tenant.auth
    )
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column("id").to_pylist() == ["o-1", "o-2"]
    assert table.schema.field("score").type == pa.float64()
    assert table.schema.field("updated_at").type == pa.timestamp("us", tz="UTC")

    as_json = await stack.read.get(url, params=params, headers=tenant.auth)
    assert as_json.json()["data"]["total"] == 2  # JSON keeps its envelope


async def test_query_results_as_ndjson_csv_and_parquet(stack: Stack) -> None:
    tenant, position = await _seed(stack)
    url = f"/v1/data/query?min_position={position}"
    expected = [
        {"data.status": "open", "count": 1, "revenue": 7.0},
        {"data.status": "paid", "count": 2, "revenue": 42.5},
    ]
    as_json = await stack.read.post(url, json=QUERY, headers=tenant.auth)
    assert as_json.status_code == 200, as_json.text
    assert as_json.json()["data"]["rows"] == expected

    ndjson = await stack.read.post(f"{url}&format=ndjson", json=QUERY, headers=tenant.auth)
    assert [json.loads(line) for line in ndjson.text.splitlines()] == expected

    as_csv = await stack.read.post(
        url, json=QUERY, headers={**tenant.auth, "Accept": "text/csv;q=0.9, */*;q=0.1"}
    )
    assert as_csv.text.splitlines() == ["data.status,count,revenue", "open,1,7.0", "paid,2,42.5"]

    parquet = await stack.read.post(f"{url}&format=parquet", json=QUERY, headers=tenant.auth)
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.to_pylist() == expected
    assert table.schema.field("count").type == pa.int64()

    refused = await stack.read.post(f"{url}&format=xml", json=QUERY, headers=tenant.auth)
    assert_error(refused, 406, "NOT_ACCEPTABLE")
    invalid = await stack.read.post(
        f"{url}&format=csv", json={**QUERY, "group_by": ["nope"]}, headers=tenant.auth
    )
    assert_error(invalid, 400, "INVALID_QUERY")  # errors stay JSON envelopes


async def test_the_read_spec_lists_every_format_of_the_routes_that_serve_them(
    stack: Stack,
) -> None:
    spec = (await stack.read.get("/docs/openapi.json")).json()
    formatted = {
        ("/v1/data/{source}", "get"),
        ("/v1/data/{source}/search", "get"),
        ("/v1/data/query", "post"),
    }
    for path, method in formatted:
        ok = spec["paths"][path][method]["responses"]["200"]
        assert set(ok["content"]) == {
            "application/json",
            "application/x-ndjson",
            "text/csv; charset=utf-8",
            "application/vnd.apache.parquet",
        }, path
        assert ok["content"]["application/json"]["schema"].get("$ref"), path
    names = {p["name"] for p in spec["paths"]["/v1/data/query"]["post"]["parameters"]}
    assert "format" in names
