"""Idempotency-Key: a retried command has its effect once and answers the same."""

from __future__ import annotations

import asyncio

from tests.conftest import Stack, assert_error


async def _history_length(stack: Stack, auth: dict[str, str], path: str) -> int:
    response = await stack.read.get(f"{path}/history", headers=auth)
    return len(response.json()["data"]["events"])


async def test_retry_with_same_key_and_body_runs_once(stack: Stack) -> None:
    tenant = await stack.new_account()
    headers = {**tenant.auth, "Idempotency-Key": "order-7-attempt"}
    body = {"source": "orders", "id": "o-7", "data": {"total": 7}}
    first = await stack.command.post("/v1/ingest", json=body, headers=headers)
    head = await stack.head()
    second = await stack.command.post("/v1/ingest", json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert await stack.head() == head
    assert await _history_length(stack, tenant.auth, "/v1/data/orders/o-7") == 1


async def test_same_key_with_another_body_is_a_conflict(stack: Stack) -> None:
    tenant = await stack.new_account()
    headers = {**tenant.auth, "Idempotency-Key": "k1"}
    await stack.command.post(
        "/v1/ingest", json={"source": "s", "id": "a", "data": {"v": 1}}, headers=headers
    )
    head = await stack.head()
    other = await stack.command.post(
        "/v1/ingest", json={"source": "s", "id": "a", "data": {"v": 2}}, headers=headers
    )
    assert_error(other, 409, "IDEMPOTENCY_KEY_REUSED")
    assert await stack.head() == head


async def test_keys_are_scoped_to_the_caller(stack: Stack) -> None:
    first, second = await stack.new_account(), await stack.new_account()
    body = {"source": "s", "id": "a", "data": {"v": 1}}
    for tenant in (first, second):
        response = await stack.command.post(
            "/v1/ingest", json=body, headers={**tenant.auth, "Idempotency-Key": "same"}
        )
        assert response.status_code == 200
        assert "idempotent-replayed" not in response.headers


async def test_concurrent_duplicates_commit_once(stack: Stack) -> None:
    tenant = await stack.new_account()
    headers = {**tenant.auth, "Idempotency-Key": "burst"}
    body = {"source": "s", "records": [{"id": f"r{i}", "data": {"i": i}} for i in range(50)]}
    responses = await asyncio.gather(
        *(stack.command.post("/v1/ingest/batch", json=body, headers=headers) for _ in range(6))
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["data"]["position"] for r in responses}) == 1
    assert await _history_length(stack, tenant.auth, "/v1/data/s/r0") == 1


async def test_key_generation_replay_never_reveals_the_secret_again(stack: Stack) -> None:
    tenant = await stack.new_account()
    headers = {**tenant.auth, "Idempotency-Key": "new-key-1"}
    body = {"name": "ci", "scopes": ["data:read"]}
    first = await stack.command.post("/v1/apikey/generate", json=body, headers=headers)
    again = await stack.command.post("/v1/apikey/generate", json=body, headers=headers)
    assert first.json()["data"]["secret"].startswith("sk_live_")
    assert again.status_code == 201
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    assert again.json()["data"]["secret"] is None


async def test_stream_retry_replays_committed_chunks(stack: Stack) -> None:
    tenant = await stack.new_account()
    body = b"\n".join(b'{"id": "r%d", "data": {"i": %d}}' % (i, i) for i in range(2300))
    headers = {**tenant.auth, "Idempotency-Key": "bulk-load-1"}
    first = await stack.command.post(
        "/v1/ingest/stream", params={"source": "bulk"}, content=body, headers=headers
    )
    head = await stack.head()
    second = await stack.command.post(
        "/v1/ingest/stream", params={"source": "bulk"}, content=body, headers=headers
    )
    assert first.json()["data"] == second.json()["data"]
    assert await stack.head() == head
    changed = body.replace(b'"i": 5}', b'"i": -5}')
    conflict = await stack.command.post(
        "/v1/ingest/stream", params={"source": "bulk"}, content=changed, headers=headers
    )
    assert_error(conflict, 409, "IDEMPOTENCY_KEY_REUSED")
    assert await stack.head() == head


async def test_malformed_idempotency_key(stack: Stack) -> None:
    tenant = await stack.new_account()
    response = await stack.command.post(
        "/v1/ingest",
        json={"source": "s", "id": "a", "data": {}},
        headers={**tenant.auth, "Idempotency-Key": "has space"},
    )
    assert_error(response, 400, "INVALID_IDEMPOTENCY_KEY")
