"""GET /v1/data/{source}/search through the real apps, in both modes (SQLite FTS5 embedded,
Elasticsearch distributed): same endpoint, same semantics."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Stack, Tenant, assert_error

FILLER = [
    {"title": f"filler {i}", "body": "nothing to see in this record", "n": i} for i in range(12)
]


async def ingest(stack: Stack, tenant: Tenant, source: str, records: list[dict[str, Any]]) -> int:
    response = await stack.command.post(
        "/v1/ingest/batch", json={"source": source, "records": records}, headers=tenant.auth
    )
    assert response.status_code == 200, response.text
    return int(response.json()["data"]["position"])


async def search(
    stack: Stack, tenant: Tenant, source: str, position: int | None = None, **params: Any
) -> dict[str, Any]:
    if position is not None:
        params["min_position"] = position
    response = await stack.read.get(f"/v1/data/{source}/search", params=params, headers=tenant.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["meta"]["request_id"] == response.headers["x-request-id"]
    return dict(body["data"])


def ids(found: dict[str, Any]) -> list[str]:
    return [hit["id"] for hit in found["hits"]]


async def test_hits_are_ranked_highlighted_and_counted(stack: Stack) -> None:
    tenant = await stack.new_account()
    records = [
        {"id": "strong", "data": {"title": "apple apple apple", "body": "apple", "n": 1}},
        {
            "id": "medium",
            "data": {
                "title": "banana",
                "body": "an apple a day keeps the doctor away, said the old apple farmer "
                "who lived near the long and winding river",
            },
        },
        {
            "id": "weak",
            "data": {
                "note": "one apple among many other words in this rather long sentence about "
                "fruit, vegetables, markets, prices, seasons, weather and the harvest"
            },
        },
        *({"id": f"f{i}", "data": doc} for i, doc in enumerate(FILLER)),
    ]
    position = await ingest(stack, tenant, "fruit", records)
    found = await search(stack, tenant, "fruit", position, q="apple")
    assert found["total"] == 3
    assert ids(found) == ["strong", "medium", "weak"]
    scores = [hit["score"] for hit in found["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert scores[-1] > 0
    assert found["next_cursor"] is None
    top = found["hits"][0]
    assert top["highlights"] == {
        "title": ["<em>apple</em> <em>apple</em> <em>apple</em>"],
        "body": ["<em>apple</em>"],
    }
    assert top["record"] | {"updated_at": None, "position": None} == {
        "source": "fruit",
        "id": "strong",
        "data": {"title": "apple apple apple", "body": "apple", "n": 1},
        "version": 1,
        "updated_at": None,
        "position": None,
        "deleted": False,
    }
    assert list(found["hits"][1]["highlights"]) == ["body"]
    assert found["hits"][1]["highlights"]["body"][0].startswith("an <em>apple</em> a day")
    # Numbers are text too; markup in customer data comes back escaped.
    position = await ingest(
        stack, tenant, "fruit", [{"id": "html", "data": {"code": 4711, "x": "<b>4711</b> & co"}}]
    )
    numbered = await search(stack, tenant, "fruit", position, q="4711")
    assert ids(numbered) == ["html"]
    assert numbered["hits"][0]["highlights"] == {
        "code": ["<em>4711</em>"],
        "x": ["&lt;b&gt;<em>4711</em>&lt;/b&gt; &amp; co"],
    }


async def test_query_syntax_phrases_prefixes_and_exclusions(stack: Stack) -> None:
    tenant = await stack.new_account()
    position = await ingest(
        stack,
        tenant,
        "notes",
        [
            {"id": "a", "data": {"text": "the quick brown fox"}},
            {"id": "b", "data": {"text": "brown quick dog", "tags": ["lazy"]}},
            {"id": "c", "data": {"text": "quickly done"}},
            *({"id": f"f{i}", "data": doc} for i, doc in enumerate(FILLER)),
        ],
    )
    assert sorted(ids(await search(stack, tenant, "notes", position, q="quick brown"))) == [
        "a",
        "b",
    ]
    assert ids(await search(stack, tenant, "notes", q='"quick brown"')) == ["a"]
    assert sorted(ids(await search(stack, tenant, "notes", q="quick*"))) == ["a", "b", "c"]
    assert ids(await search(stack, tenant, "notes", q="quick -lazy")) == ["a"]
    assert ids(await search(stack, tenant, "notes", q='brown -"quick brown"')) == ["b"]
    assert ids(await search(stack, tenant, "notes", q="QUICK fox")) == ["a"]
    # Operator characters of either engine are plain text here.
    for odd in ('fox" OR "dog', "fox) | (dog", "fox AND NOT dog", "fox~2", "NEAR(fox dog)"):
        found = await search(stack, tenant, "notes", q=odd)
        assert set(ids(found)) <= {"a", "b"}


async def test_tenants_never_see_each_other(stack: Stack) -> None:
    owner, other = await stack.new_account(), await stack.new_account()
    await ingest(stack, owner, "s", [{"id": "mine", "data": {"secret": "zebra", "k": "v"}}])
    position = await ingest(
        stack,
        other,
        "s",
        [{"id": "mine", "data": {"secret": "zebra other"}}, {"id": "x", "data": {"k": "v"}}],
    )
    found = await search(stack, owner, "s", position, q="zebra")
    assert found["total"] == 1
    assert found["hits"][0]["record"]["data"] == {"secret": "zebra", "k": "v"}
    assert ids(await search(stack, owner, "s", **{"filter[k]": "v"})) == ["mine"]
    assert ids(await search(stack, owner, "s")) == ["mine"]
    theirs = await search(stack, other, "s", q="zebra")
    assert theirs["hits"][0]["record"]["data"] == {"secret": "zebra other"}
    assert theirs["total"] == 1
    # Sources are separate too; an unknown source is an empty result, not an error.
    assert (await search(stack, owner, "elsewhere", q="zebra"))["total"] == 0


async def test_filters_match_exact_values_of_any_field(stack: Stack) -> None:
    tenant = await stack.new_account()
    docs = {
        "a": {"status": "active", "address": {"city": "Paris"}, "tags": ["red", "big"], "n": 5},
        "b": {"status": "active", "address": {"city": "Lyon"}, "tags": ["blue"], "vip": True},
        "c": {"status": "closed", "address": {"city": "Paris"}, "n": 5.5, "note": "Paris"},
        "d": {"status": "Active", "items": [{"sku": "x1"}, {"sku": "x2"}]},
    }
    position = await ingest(stack, tenant, "c", [{"id": k, "data": v} for k, v in docs.items()])

    async def matching(**filters: str) -> list[str]:
        params = {f"filter[{k}]": v for k, v in filters.items()}
        return sorted(ids(await search(stack, tenant, "c", position, **params)))

    assert await matching(status="active") == ["a", "b"]
    assert await matching(**{"address.city": "Paris"}) == ["a", "c"]
    assert await matching(status="active", **{"address.city": "Paris"}) == ["a"]
    assert await matching(tags="red") == ["a"]
    assert await matching(n="5") == ["a"]
    assert await matching(n="5.5") == ["c"]
    assert await matching(vip="true") == ["b"]
    assert await matching(**{"items.sku": "x2"}) == ["d"]
    assert await matching(status="activ") == []
    assert await matching(missing="x") == []
    both = await search(stack, tenant, "c", q="paris", **{"filter[status]": "closed"})
    assert ids(both) == ["c"]
    # Several values for one field: all must match.
    response = await stack.read.get(
        "/v1/data/c/search",
        params=[("filter[tags]", "red"), ("filter[tags]", "big")],
        headers=tenant.auth,
    )
    assert ids(response.json()["data"]) == ["a"]


async def test_sorts(stack: Stack) -> None:
    tenant = await stack.new_account()
    position = 0
    for key, name in [("k2", "bob"), ("k1", "carol"), ("k3", "alice"), ("k4", None)]:
        data = {"name": name} if name else {"other": 1}
        position = await ingest(stack, tenant, "people", [{"id": key, "data": data}])

    async def order(sort: str) -> list[str]:
        return ids(await search(stack, tenant, "people", position, sort=sort))

    assert await order("id") == ["k1", "k2", "k3", "k4"]
    assert await order("-id") == ["k4", "k3", "k2", "k1"]
    assert await order("updated_at") == ["k2", "k1", "k3", "k4"]
    assert await order("-updated_at") == ["k4", "k3", "k1", "k2"]
    assert await order("data.name") == ["k3", "k2", "k1", "k4"]  # missing values last
    assert await order("-data.name") == ["k1", "k2", "k3", "k4"]
    assert await order("_score") == ["k1", "k2", "k3", "k4"]  # no q: all 0, then by id


async def test_numbers_sort_by_value_then_booleans_then_strings(stack: Stack) -> None:
    tenant = await stack.new_account()
    values = {"n1": 9, "n2": 10, "n3": -5, "n4": 2.5, "n5": 100, "b": True, "s": "10", "m": None}
    records = [
        {"id": key, "data": {"price": value} if value is not None else {}}
        for key, value in values.items()
    ]
    position = await ingest(stack, tenant, "items", records)

    async def order(sort: str) -> list[str]:
        return ids(await search(stack, tenant, "items", position, sort=sort))

    ascending = ["n3", "n4", "n1", "n2", "n5", "b", "s", "m"]  # missing last either way
    assert await order("data.price") == ascending
    assert await order("-data.price") == [*reversed(ascending[:-1]), "m"]
    seen: list[str] = []
    params: dict[str, Any] = {"sort": "data.price", "limit": 3}
    while True:  # cursors follow the same order
        page = await search(stack, tenant, "items", position, **params)
        seen += ids(page)
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == ascending


@pytest.mark.parametrize(
    ("sort", "q"),
    [("_score", "common"), ("id", None), ("-updated_at", None), ("data.group", None)],
)
async def test_cursor_pages_through_every_hit_once(stack: Stack, sort: str, q: str | None) -> None:
    tenant = await stack.new_account()
    records = [
        {
            "id": f"r{i:02d}",
            "data": {"text": "common " + "word " * (i % 5), "group": f"g{i % 4}"}
            | ({"group": None} if i % 7 == 0 else {}),
        }
        for i in range(23)
    ]
    position = await ingest(stack, tenant, "p", records)
    params: dict[str, Any] = {"sort": sort, "limit": 5}
    if q:
        params["q"] = q
    everything = await search(stack, tenant, "p", position, **{**params, "limit": 100})
    assert everything["total"] == 23
    assert everything["next_cursor"] is None
    pages: list[list[str]] = []
    cursor = None
    while True:
        found = await search(stack, tenant, "p", **params, **({"cursor": cursor} if cursor else {}))
        assert found["total"] == 23
        pages.append(ids(found))
        cursor = found["next_cursor"]
        if cursor is None:
            break
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    assert [key for page in pages for key in page] == ids(everything)


async def test_bad_parameters_are_400_naming_the_parameter(stack: Stack) -> None:
    tenant = await stack.new_account()
    await ingest(stack, tenant, "s", [{"id": "a", "data": {"x": "y"}}])
    other_query = await search(stack, tenant, "s", sort="id", limit=1)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"sort": "price"}, "INVALID_PARAMETER", "sort"),
        ({"sort": "-_score"}, "INVALID_PARAMETER", "sort"),
        ({"sort": "data.bad field"}, "INVALID_PARAMETER", "sort"),
        ({"limit": 0}, "VALIDATION_FAILED", "limit"),
        ({"limit": 101}, "VALIDATION_FAILED", "limit"),
        ({"limit": "ten"}, "VALIDATION_FAILED", "limit"),
        ({"cursor": "garbage!"}, "INVALID_PARAMETER", "cursor"),
        ({"cursor": "WzEsMl0"}, "INVALID_PARAMETER", "cursor"),  # [1,2]
        (
            {"cursor": other_query["next_cursor"] or "x", "sort": "-id"},
            "INVALID_PARAMETER",
            "cursor",
        ),
        ({"filter[bad field]": "x"}, "INVALID_PARAMETER", "filter[bad field]"),
        ({"filter[]": "x"}, "INVALID_PARAMETER", "filter[]"),
        ({"filterx": "x"}, "INVALID_PARAMETER", "filterx"),
        ({f"filter[f{i}]": "x" for i in range(11)}, "INVALID_PARAMETER", "filter"),
        ({"filter[a]": "x" * 300}, "INVALID_PARAMETER", "filter[a]"),
        ({"q": "-only -excluded"}, "INVALID_PARAMETER", "q"),
        ({"q": "*** !!"}, "INVALID_PARAMETER", "q"),
        ({"q": "x" * 501}, "INVALID_PARAMETER", "q"),
        ({"id": "not a key!"}, "INVALID_PARAMETER", "id"),
        ({"min_position": "soon"}, "INVALID_PARAMETER", None),
    ]
    for params, code, field in cases:
        response = await stack.read.get("/v1/data/s/search", params=params, headers=tenant.auth)
        error = assert_error(response, 400, code)
        if field is not None:
            assert error["details"][0]["field"] == field, (params, error)
    bad_source = await stack.read.get("/v1/data/Not%20A%20Source/search", headers=tenant.auth)
    assert_error(bad_source, 400, "INVALID_VALUE")
    assert_error(await stack.read.get("/v1/data/s/search"), 401, "UNAUTHENTICATED")


async def test_reads_its_own_writes_with_min_position(stack: Stack) -> None:
    tenant = await stack.new_account()
    written = await ingest(stack, tenant, "s", [{"id": "k", "data": {"word": "first"}}])
    assert ids(await search(stack, tenant, "s", written, q="first")) == ["k"]
    updated = await ingest(stack, tenant, "s", [{"id": "k", "data": {"word": "second"}}])
    found = await search(stack, tenant, "s", updated, q="second")
    assert ids(found) == ["k"]
    assert found["hits"][0]["record"]["version"] == 2
    assert found["hits"][0]["record"]["position"] == updated
    assert (await search(stack, tenant, "s", q="first"))["total"] == 0
    deleted = await stack.command.delete("/v1/data/s/k", headers=tenant.auth)
    position = deleted.json()["data"]["position"]
    header = {**tenant.auth, "X-Strata-Min-Position": str(position)}
    gone = await stack.read.get("/v1/data/s/search", params={"q": "second"}, headers=header)
    assert gone.json()["data"]["total"] == 0
    recreated = await ingest(stack, tenant, "s", [{"id": "k", "data": {"word": "third"}}])
    back = await search(stack, tenant, "s", recreated, q="third")
    assert back["hits"][0]["record"]["version"] == 4
    beyond = await stack.read.get(
        "/v1/data/s/search", params={"min_position": recreated + 1000}, headers=tenant.auth
    )
    assert_error(beyond, 504, "CONSISTENCY_TIMEOUT")


async def test_a_record_keyed_search(stack: Stack) -> None:
    """`/v1/data/{source}/search` is the search route (the static segment wins over the
    record route); the record keyed `search` is read with `?id=search`, and its history at
    its usual address."""
    tenant = await stack.new_account()
    position = await ingest(
        stack,
        tenant,
        "s",
        [{"id": "search", "data": {"v": "the record"}}, {"id": "other", "data": {"v": "x"}}],
    )
    listing = await search(stack, tenant, "s", position)
    assert sorted(ids(listing)) == ["other", "search"]
    exact = await search(stack, tenant, "s", id="search")
    assert [hit["record"]["data"] for hit in exact["hits"]] == [{"v": "the record"}]
    history = await stack.read.get("/v1/data/s/search/history", headers=tenant.auth)
    assert history.status_code == 200, history.text
    assert [e["type"] for e in history.json()["data"]["events"]] == ["Record.Created"]
    plain = await stack.read.get("/v1/data/s/other", headers=tenant.auth)
    assert plain.json()["data"]["data"] == {"v": "x"}
    spec = (await stack.read.get("/docs/openapi.json")).json()["paths"]
    assert "/v1/data/{source}/search" in spec
