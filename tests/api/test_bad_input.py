"""Bad input gets a clear error envelope, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Stack, assert_error


@pytest.mark.parametrize(
    ("path", "body", "code", "field"),
    [
        ("/v1/ingest", b'{"source": "s", "id": "a", "data": {', "MALFORMED_JSON", None),
        ("/v1/ingest", b'{"source": "s", "id": "a"}', "VALIDATION_FAILED", "$"),
        ("/v1/ingest", b'{"source": 5, "id": "a", "data": {}}', "VALIDATION_FAILED", "$.source"),
        ("/v1/ingest", b'{"source": "s", "id": "a", "data": []}', "VALIDATION_FAILED", "$.data"),
        (
            "/v1/ingest",
            b'{"source": "S P", "id": "a", "data": {}}',
            "VALIDATION_FAILED",
            "$.source",
        ),
        (
            "/v1/ingest",
            b'{"source": "s", "id": "a", "data": {}, "extra": 1}',
            "VALIDATION_FAILED",
            "$",
        ),
        (
            "/v1/ingest/batch",
            b'{"source": "s", "records": [{"id": "ok", "data": {}}, {"id": "a", "data": 3}]}',
            "VALIDATION_FAILED",
            "$.records[1].data",
        ),
        ("/v1/ingest/batch", b'{"source": "s", "records": []}', "VALIDATION_FAILED", "$.records"),
        (
            "/v1/apikey/generate",
            b'{"name": "k", "scopes": ["root"]}',
            "VALIDATION_FAILED",
            "$.scopes[0]",
        ),
        ("/v1/ingest", b"[]", "VALIDATION_FAILED", "$"),
    ],
)
async def test_bad_bodies_are_rejected_with_nothing_written(
    stack: Stack, path: str, body: bytes, code: str, field: str | None
) -> None:
    tenant = await stack.new_account()
    head = await stack.head()
    response = await stack.command.post(
        path, content=body, headers={**tenant.auth, "Content-Type": "application/json"}
    )
    error = assert_error(response, 400, code)
    if field is not None:
        assert error["details"][0]["field"] == field, error
    assert await stack.head() == head


async def test_oversized_body_is_413(stack: Stack) -> None:
    tenant = await stack.new_account()
    head = await stack.head()
    big = b'{"source": "s", "id": "a", "data": {"blob": "' + b"x" * (11 * 1024 * 1024) + b'"}}'
    response = await stack.command.post(
        "/v1/ingest", content=big, headers={**tenant.auth, "Content-Type": "application/json"}
    )
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    assert await stack.head() == head


async def test_overlong_ndjson_line_is_rejected_alone(stack: Stack) -> None:
    tenant = await stack.new_account()
    long_line = b'{"id": "big", "data": {"blob": "' + b"y" * (1024 * 1024 + 10) + b'"}}'
    body = b'{"id": "a", "data": {}}\n' + long_line + b'\n{"id": "b", "data": {}}\n'
    response = await stack.command.post(
        "/v1/ingest/stream", params={"source": "s"}, content=body, headers=tenant.auth
    )
    assert response.status_code == 200, response.text
    result = response.json()["data"]
    assert (result["accepted"], result["rejected"]) == (2, 1)
    assert result["errors"][0] == {
        "line": 2,
        "code": "LINE_TOO_LONG",
        "message": "a line may hold at most 1048576 bytes",
    }


async def test_a_stream_without_one_valid_line_is_422(stack: Stack) -> None:
    tenant = await stack.new_account()
    head = await stack.head()
    response = await stack.command.post(
        "/v1/ingest/stream", params={"source": "s"}, content=b"nope\n{}\n", headers=tenant.auth
    )
    error = assert_error(response, 422, "NO_VALID_RECORDS")
    assert [d["line"] for d in error["details"]] == [1, 2]
    assert await stack.head() == head


async def test_batch_is_atomic(stack: Stack) -> None:
    tenant = await stack.new_account()
    head = await stack.head()
    records: list[dict[str, Any]] = [{"id": f"r{i}", "data": {}} for i in range(5)]
    records.append({"id": "-bad", "data": {}})
    response = await stack.command.post(
        "/v1/ingest/batch", json={"source": "s", "records": records}, headers=tenant.auth
    )
    assert_error(response, 400, "VALIDATION_FAILED")
    assert await stack.head() == head
    assert_error(await stack.read.get("/v1/data/s/r0", headers=tenant.auth), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/data/nosuch/x"),
        ("get", "/v1/data/s/nosuch"),
        ("get", "/v1/data/s/nosuch/history"),
        ("get", "/v1/account/00000000-0000-0000-0000-000000000000"),
        ("get", "/v1/apikey/00000000-0000-0000-0000-000000000000"),
    ],
)
async def test_unknown_resources_are_404(stack: Stack, method: str, path: str) -> None:
    tenant = await stack.new_account()
    assert_error(await getattr(stack.read, method)(path, headers=tenant.auth), 404, "NOT_FOUND")


async def test_unknown_things_on_the_command_side(stack: Stack) -> None:
    tenant = await stack.new_account()
    head = await stack.head()
    assert_error(
        await stack.command.delete("/v1/data/s/nosuch", headers=tenant.auth), 404, "NOT_FOUND"
    )
    missing = "/v1/apikey/00000000-0000-0000-0000-000000000000"
    assert_error(await stack.command.delete(missing, headers=tenant.auth), 404, "NOT_FOUND")
    assert_error(await stack.command.get("/v1/nope", headers=tenant.auth), 404, "NOT_FOUND")
    assert_error(
        await stack.command.get("/v1/ingest", headers=tenant.auth), 405, "METHOD_NOT_ALLOWED"
    )
    assert await stack.head() == head


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing credentials"),
        ({"Authorization": "Basic abc"}, "missing credentials"),
        ({"Authorization": "Bearer sk_live_nothing"}, "invalid credentials"),
        ({"X-API-Key": "sk_live_" + "0" * 32 + "x" * 43}, "invalid credentials"),
    ],
)
async def test_bad_credentials_are_401(stack: Stack, headers: dict[str, str], message: str) -> None:
    for client, path in ((stack.command, "/v1/apikey/generate"), (stack.read, "/v1/data/s/a")):
        call = client.post if client is stack.command else client.get
        error = assert_error(await call(path, headers=headers), 401, "UNAUTHENTICATED")
        assert error["message"].startswith(message)


async def test_bad_query_parameters_are_400(stack: Stack) -> None:
    tenant = await stack.new_account()
    for params in ({"min_position": "-1"}, {"min_position": "x"}, {"as_of": "yesterday"}):
        response = await stack.read.get("/v1/data/s/a", params=params, headers=tenant.auth)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"]["code"] in {"VALIDATION_FAILED", "INVALID_PARAMETER"}


async def test_min_position_beyond_reach_is_504(stack: Stack) -> None:
    tenant = await stack.new_account()
    response = await stack.read.get(
        "/v1/data/s/a", headers={**tenant.auth, "X-Strata-Min-Position": "999999"}
    )
    assert_error(response, 504, "CONSISTENCY_TIMEOUT")
