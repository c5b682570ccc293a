"""Roles map to scopes; a key never carries more than its role or its issuer holds."""

from __future__ import annotations

from tests.conftest import Stack, assert_error


async def _key(stack: Stack, auth: dict[str, str], **body: object) -> dict[str, str]:
    issued = await stack.command.post(
        "/v1/apikey/generate", json={"name": "k", **body}, headers=auth
    )
    assert issued.status_code == 201, issued.text
    await stack.caught_up(issued.json()["data"]["position"])
    return {"Authorization": f"Bearer {issued.json()['data']['secret']}"}


async def test_roles_grant_their_scopes_and_no_more(stack: Stack) -> None:
    owner = await stack.new_account(role="owner")
    admin = await _key(stack, owner.auth, role="admin")
    member = await _key(stack, admin, role="member")
    viewer = await _key(stack, admin, role="viewer")

    beyond = await stack.command.post(
        "/v1/apikey/generate", json={"name": "x", "role": "owner"}, headers=admin
    )
    assert_error(beyond, 403, "INSUFFICIENT_SCOPE")  # admin lacks account:owner
    narrowed = await stack.command.post(
        "/v1/apikey/generate",
        json={"name": "x", "role": "viewer", "scopes": ["ingest:write"]},
        headers=admin,
    )
    error = assert_error(narrowed, 400, "INVALID_VALUE")
    assert "beyond the viewer role" in error["message"]

    write = {"source": "s", "id": "a", "data": {}}
    assert (await stack.command.post("/v1/ingest", json=write, headers=member)).status_code == 200
    assert_error(
        await stack.command.post("/v1/ingest", json=write, headers=viewer),
        403,
        "INSUFFICIENT_SCOPE",
    )
    assert_error(
        await stack.command.post("/v1/apikey/generate", json={"name": "x"}, headers=member),
        403,
        "INSUFFICIENT_SCOPE",
    )
    account = f"/v1/account/{owner.account_id}"
    assert_error(await stack.command.delete(account, headers=admin), 403, "INSUFFICIENT_SCOPE")
    assert (await stack.command.delete(account, headers=owner.auth)).status_code == 200
