"""Command -> event -> projection -> read, for every route, in both modes."""

from __future__ import annotations

from tests.conftest import Stack, assert_error


async def test_record_lifecycle_reads_its_own_writes(stack: Stack) -> None:
    tenant = await stack.new_account()
    written = await stack.command.post(
        "/v1/ingest",
        json={"source": "orders", "id": "o-1", "data": {"total": 42}},
        headers=tenant.auth,
    )
    assert written.status_code == 200, written.text
    body = written.json()
    assert body["data"]["version"] == 1
    position = body["data"]["position"]
    assert body["meta"]["request_id"] == written.headers["x-request-id"]

    read = await stack.read.get(
        "/v1/data/orders/o-1", params={"min_position": position}, headers=tenant.auth
    )
    assert read.status_code == 200, read.text
    record = read.json()["data"]
    assert record["data"] == {"total": 42}
    assert record["version"] == 1
    assert record["position"] == position

    updated = await stack.command.post(
        "/v1/ingest/batch",
        json={"source": "orders", "records": [{"id": "o-1", "data": {"total": 43}}]},
        headers={**tenant.auth, "X-Correlation-ID": "checkout-77"},
    )
    assert updated.json()["data"]["records"] == [{"id": "o-1", "version": 2}]
    deleted = await stack.command.delete("/v1/data/orders/o-1", headers=tenant.auth)
    assert deleted.status_code == 200, deleted.text
    gone = await stack.read.get(
        "/v1/data/orders/o-1",
        headers={**tenant.auth, "X-Strata-Min-Position": str(deleted.json()["data"]["position"])},
    )
    assert_error(gone, 404, "NOT_FOUND")

    history = await stack.read.get("/v1/data/orders/o-1/history", headers=tenant.auth)
    events = history.json()["data"]["events"]
    assert [e["type"] for e in events] == ["Record.Created", "Record.Updated", "Record.Deleted"]
    assert [e["version"] for e in events] == [1, 2, 3]
    positions = [e["position"] for e in events]
    assert positions == sorted(positions)
    assert positions[0] == position
    assert events[0]["metadata"]["correlation_id"] == written.headers["x-request-id"]
    assert events[0]["metadata"]["causation_id"] == written.headers["x-request-id"]
    assert events[0]["metadata"]["actor"] == f"key:{tenant.key_id}"
    assert events[1]["metadata"]["correlation_id"] == "checkout-77"
    assert events[0]["payload"]["data"] == {"total": 42}

    past = await stack.read.get("/v1/data/orders/o-1", params={"as_of": 1}, headers=tenant.auth)
    assert past.json()["data"]["data"] == {"total": 42}
    at_time = await stack.read.get(
        "/v1/data/orders/o-1", params={"as_of": events[1]["timestamp"]}, headers=tenant.auth
    )
    assert at_time.json()["data"]["data"] == {"total": 43}
    after_delete = await stack.read.get(
        "/v1/data/orders/o-1", params={"as_of": 3}, headers=tenant.auth
    )
    assert_error(after_delete, 404, "NOT_FOUND")
    before_birth = await stack.read.get(
        "/v1/data/orders/o-1", params={"as_of": "2000-01-01T00:00:00Z"}, headers=tenant.auth
    )
    assert_error(before_birth, 404, "NOT_FOUND")


async def test_account_lifecycle(stack: Stack) -> None:
    tenant = await stack.new_account(plan="pro")
    account = f"/v1/account/{tenant.account_id}"
    seen = await stack.read.get(
        account, params={"min_position": tenant.position}, headers=tenant.auth
    )
    assert seen.json()["data"]["plan"] == "pro"
    assert seen.json()["data"]["status"] == "active"

    changed = await stack.command.put(
        account, json={"name": "Acme Corp", "plan": "enterprise"}, headers=tenant.auth
    )
    assert changed.status_code == 200, changed.text
    suspended = await stack.command.put(
        account, json={"status": "suspended", "reason": "billing"}, headers=stack.admin
    )
    position = suspended.json()["data"]["position"]
    view = await stack.read.get(account, params={"min_position": position}, headers=tenant.auth)
    assert view.json()["data"] | {"updated_at": None, "created_at": None} == {
        "id": tenant.account_id,
        "name": "Acme Corp",
        "email": "ops@acme.example",
        "plan": "enterprise",
        "status": "suspended",
        "version": 4,
        "created_at": None,
        "updated_at": None,
    }
    refused = await stack.command.post(
        "/v1/ingest", json={"source": "s", "id": "x", "data": {}}, headers=tenant.auth
    )
    assert_error(refused, 403, "ACCOUNT_SUSPENDED")
    again = await stack.command.put(account, json={"status": "active"}, headers=stack.admin)
    assert again.json()["data"]["version"] == 5

    unchanged = await stack.command.put(account, json={"name": "Acme Corp"}, headers=tenant.auth)
    assert unchanged.json()["data"]["version"] == 5

    history = await stack.read.get(f"{account}/history", headers=tenant.auth)
    assert [e["type"] for e in history.json()["data"]["events"]] == [
        "Account.Opened",
        "Account.ProfileUpdated",
        "Account.PlanChanged",
        "Account.Suspended",
        "Account.Reactivated",
    ]
    original = await stack.read.get(account, params={"as_of": 1}, headers=tenant.auth)
    assert original.json()["data"]["name"] == "Acme"
    assert original.json()["data"]["plan"] == "pro"

    closed = await stack.command.delete(account, headers=stack.admin)
    assert closed.status_code == 200, closed.text
    after = await stack.command.post(
        "/v1/ingest", json={"source": "s", "id": "x", "data": {}}, headers=tenant.auth
    )
    assert_error(after, 401, "UNAUTHENTICATED")
    reopen = await stack.command.put(account, json={"name": "x"}, headers=stack.admin)
    assert_error(reopen, 409, "ACCOUNT_CLOSED")


async def test_api_keys_issue_read_rotate_revoke(stack: Stack) -> None:
    tenant = await stack.new_account()
    issued = await stack.command.post(
        "/v1/apikey/generate",
        json={"name": "reader", "scopes": ["data:read"]},
        headers=tenant.auth,
    )
    assert issued.status_code == 201, issued.text
    key = issued.json()["data"]
    assert key["secret"].startswith("sk_live_")
    assert key["prefix"] == key["secret"][:16]
    assert key["scopes"] == ["data:read"]

    meta = await stack.read.get(
        f"/v1/apikey/{key['id']}", params={"min_position": key["position"]}, headers=tenant.auth
    )
    assert meta.status_code == 200, meta.text
    assert set(meta.json()["data"]) == {
        "id",
        "account_id",
        "name",
        "prefix",
        "scopes",
        "role",
        "status",
        "version",
        "created_at",
        "updated_at",
    }
    assert key["secret"] not in meta.text

    reader = {"Authorization": f"Bearer {key['secret']}"}
    await stack.command.post(
        "/v1/ingest", json={"source": "s", "id": "r1", "data": {"a": 1}}, headers=tenant.auth
    )
    denied = await stack.command.post(
        "/v1/ingest", json={"source": "s", "id": "r2", "data": {}}, headers=reader
    )
    assert_error(denied, 403, "INSUFFICIENT_SCOPE")
    escalation = await stack.command.post(
        "/v1/apikey/generate", json={"name": "x", "scopes": ["ingest:write"]}, headers=reader
    )
    assert_error(escalation, 403, "INSUFFICIENT_SCOPE")

    rotated = await stack.command.post(f"/v1/apikey/{key['id']}/rotate", headers=tenant.auth)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["data"]["secret"]
    assert new_secret != key["secret"]
    position = rotated.json()["data"]["position"]
    stale = await stack.read.get("/v1/data/s/r1", params={"min_position": position}, headers=reader)
    assert_error(stale, 401, "UNAUTHENTICATED")
    fresh = {"Authorization": f"Bearer {new_secret}"}
    assert (await stack.read.get("/v1/data/s/r1", headers=fresh)).status_code == 200

    revoked = await stack.command.delete(f"/v1/apikey/{key['id']}", headers=tenant.auth)
    assert revoked.status_code == 200, revoked.text
    # The write side checks the event store itself: refused at once.
    denied_write = await stack.command.post(
        "/v1/apikey/generate", json={"name": "x", "scopes": ["data:read"]}, headers=fresh
    )
    assert_error(denied_write, 401, "UNAUTHENTICATED")
    # The read side refuses once the projection has applied the revocation.
    await stack.caught_up(revoked.json()["data"]["position"])
    assert_error(await stack.read.get("/v1/data/s/r1", headers=fresh), 401, "UNAUTHENTICATED")
    history = await stack.read.get(
        f"/v1/apikey/{key['id']}", params={"as_of": 1}, headers=tenant.auth
    )
    assert history.json()["data"]["status"] == "active"
    again = await stack.command.delete(f"/v1/apikey/{key['id']}", headers=tenant.auth)
    assert_error(again, 409, "API_KEY_REVOKED")


async def test_stream_ingest_reports_bad_lines_and_keeps_good_ones(stack: Stack) -> None:
    tenant = await stack.new_account()
    body = (
        b'{"id": "a", "data": {"n": 1}}\n'
        b"this is not json\n"
        b"\n"
        b'{"id": "b", "data": {"n": 2}, "source": "other"}\n'
        b'{"id": "c"}\n'
        b'{"id": "bad id!", "data": {}}\n'
        b'{"id": "d", "data": {"n": 4}}'
    )
    response = await stack.command.post(
        "/v1/ingest/stream", params={"source": "clicks"}, content=body, headers=tenant.auth
    )
    assert response.status_code == 200, response.text
    result = response.json()["data"]
    assert (result["accepted"], result["rejected"]) == (3, 3)
    assert [(e["line"], e["code"]) for e in result["errors"]] == [
        (2, "MALFORMED_JSON"),
        (5, "VALIDATION_FAILED"),
        (6, "VALIDATION_FAILED"),
    ]
    position = result["position"]
    for path, expected in (("clicks/a", 1), ("other/b", 2), ("clicks/d", 4)):
        got = await stack.read.get(
            f"/v1/data/{path}", params={"min_position": position}, headers=tenant.auth
        )
        assert got.json()["data"]["data"] == {"n": expected}
    assert_error(await stack.read.get("/v1/data/clicks/c", headers=tenant.auth), 404, "NOT_FOUND")


async def test_stream_ingest_commits_in_chunks(stack: Stack) -> None:
    tenant = await stack.new_account()
    lines = b"\n".join(b'{"id": "r%d", "data": {"i": %d}}' % (i, i) for i in range(2500))

    async def body():  # type: ignore[no-untyped-def]
        for start in range(0, len(lines), 7001):  # chunks that split lines anywhere
            yield lines[start : start + 7001]

    response = await stack.command.post(
        "/v1/ingest/stream", params={"source": "bulk"}, content=body(), headers=tenant.auth
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["accepted"] == 2500
    last = await stack.read.get(
        "/v1/data/bulk/r2499",
        params={"min_position": response.json()["data"]["position"]},
        headers=tenant.auth,
    )
    assert last.json()["data"]["data"] == {"i": 2499}


async def test_health_readiness_and_openapi(stack: Stack) -> None:
    for client in (stack.command, stack.read):
        assert (await client.get("/health")).json() == {"status": "ok", "checks": {}}
        ready = await client.get("/readiness")
        assert ready.status_code == 200, ready.text
        spec = (await client.get("/docs/openapi.json")).json()
        assert spec["openapi"].startswith("3.1")
        assert (await client.get("/docs")).status_code == 200
    command_paths = (await stack.command.get("/docs/openapi.json")).json()["paths"]
    assert {"/v1/account/create", "/v1/ingest", "/v1/ingest/batch", "/v1/ingest/stream"} <= set(
        command_paths
    )
    read_paths = (await stack.read.get("/docs/openapi.json")).json()["paths"]
    assert "/v1/data/{source}/{record_id}/history" in read_paths


async def test_every_guarded_read_route_documents_min_position(stack: Stack) -> None:
    """The gate reads `min_position` on every route; the spec says so on each, once."""
    paths = (await stack.read.get("/docs/openapi.json")).json()["paths"]
    guarded = [
        operation
        for item in paths.values()
        for operation in item.values()
        if isinstance(operation, dict) and operation.get("security")
    ]
    assert len(guarded) > 10
    for operation in guarded:
        names = [(p["name"], p["in"]) for p in operation.get("parameters", [])]
        assert names.count(("min_position", "query")) == 1, operation["operationId"]
        assert names.count(("X-Strata-Min-Position", "header")) == 1, operation["operationId"]
    for public in (paths["/health"]["get"], paths["/readiness"]["get"]):
        assert all(p["name"] != "min_position" for p in public.get("parameters", []))
    command = (await stack.command.get("/docs/openapi.json")).json()["paths"]
    ingest = command["/v1/ingest"]["post"]
    assert all(p["name"] != "min_position" for p in ingest.get("parameters", []))
