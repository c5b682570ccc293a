"""Tenant isolation: another tenant's resources are reported missing, never forbidden."""

from __future__ import annotations

from tests.conftest import Stack, assert_error


async def test_a_key_sees_only_its_own_account(stack: Stack) -> None:
    owner, other = await stack.new_account(), await stack.new_account()
    written = await stack.command.post(
        "/v1/ingest", json={"source": "s", "id": "secret", "data": {"x": 1}}, headers=owner.auth
    )
    wait = {"min_position": written.json()["data"]["position"]}
    mine = await stack.read.get("/v1/data/s/secret", params=wait, headers=owner.auth)
    assert mine.status_code == 200

    for path in (
        "/v1/data/s/secret",
        "/v1/data/s/secret/history",
        f"/v1/account/{owner.account_id}",
        f"/v1/account/{owner.account_id}/history",
        f"/v1/apikey/{owner.key_id}",
    ):
        assert_error(await stack.read.get(path, params=wait, headers=other.auth), 404, "NOT_FOUND")

    attempts = [
        stack.command.delete("/v1/data/s/secret", headers=other.auth),
        stack.command.put(
            f"/v1/account/{owner.account_id}", json={"name": "x"}, headers=other.auth
        ),
        stack.command.delete(f"/v1/account/{owner.account_id}", headers=other.auth),
        stack.command.delete(f"/v1/apikey/{owner.key_id}", headers=other.auth),
        stack.command.post(f"/v1/apikey/{owner.key_id}/rotate", headers=other.auth),
        stack.command.post(
            "/v1/apikey/generate",
            json={"account_id": owner.account_id, "name": "x", "scopes": ["data:read"]},
            headers=other.auth,
        ),
    ]
    head = await stack.head()
    for attempt in attempts:
        assert_error(await attempt, 404, "NOT_FOUND")
    assert await stack.head() == head
    # The other tenant's own namespace is untouched by the owner's record.
    same_name = await stack.read.get("/v1/data/s/secret", headers=other.auth)
    assert_error(same_name, 404, "NOT_FOUND")


async def test_only_the_operator_opens_accounts(stack: Stack) -> None:
    tenant = await stack.new_account()
    response = await stack.command.post(
        "/v1/account/create", json={"name": "x", "email": "x@y.example"}, headers=tenant.auth
    )
    assert_error(response, 403, "INSUFFICIENT_SCOPE")


async def test_operator_cannot_make_data_calls_without_an_account(stack: Stack) -> None:
    response = await stack.command.post(
        "/v1/ingest", json={"source": "s", "id": "a", "data": {}}, headers=stack.admin
    )
    assert_error(response, 403, "INSUFFICIENT_SCOPE")
