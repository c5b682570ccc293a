"""The webhook API and deliveries end to end, in both modes, against a real HTTP receiver on
loopback (allow-listed): signatures verify, 5xx and timeouts are retried, dead letters can be
redelivered, each record's versions arrive in order, and a dead endpoint does not hold up
another one."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from projections.delivery import verify
from tests.conftest import Stack, Tenant, assert_error
from tests.webhooks.conftest import Receiver

RECORD_TYPES = ["strata.record.*"]


async def register(
    stack: Stack, tenant: Tenant, url: str, event_types: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    response = await stack.command.post(
        "/v1/webhooks",
        json={"url": url, "event_types": event_types or RECORD_TYPES, **extra},
        headers=tenant.auth,
    )
    assert response.status_code == 201, response.text
    created = dict(response.json()["data"])
    # Read your write: the webhooks read model has the endpoint before the test reads it.
    seen = await stack.read.get(
        f"/v1/webhooks/{created['id']}?min_position={created['position']}", headers=tenant.auth
    )
    assert seen.status_code == 200, seen.text
    return created


async def ingest(stack: Stack, tenant: Tenant, key: str, data: dict[str, Any]) -> int:
    response = await stack.command.post(
        "/v1/ingest", json={"source": "orders", "id": key, "data": data}, headers=tenant.auth
    )
    assert response.status_code == 200, response.text
    return int(response.json()["data"]["position"])


async def deliveries(stack: Stack, tenant: Tenant, webhook_id: str) -> list[dict[str, Any]]:
    response = await stack.read.get(
        f"/v1/webhooks/{webhook_id}/deliveries?limit=100", headers=tenant.auth
    )
    assert response.status_code == 200, response.text
    return list(response.json()["data"]["items"])


async def settled(
    stack: Stack, tenant: Tenant, webhook_id: str, count: int
) -> list[dict[str, Any]]:
    """Wait until `count` deliveries exist and none is pending."""
    deadline = time.monotonic() + 15
    while True:
        items = await deliveries(stack, tenant, webhook_id)
        if len(items) >= count and all(i["status"] != "pending" for i in items):
            return items
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries did not settle: {items}")
        await _sleep()


async def _sleep() -> None:
    await asyncio.sleep(0.05)


# --- management -------------------------------------------------------------------------------


async def test_register_read_update_delete(hooks: Stack, receiver: Receiver) -> None:
    tenant = await hooks.new_account()
    created = await register(hooks, tenant, receiver.url("/a"), description="orders feed")
    assert created["secret"].startswith("whsec_")
    assert created["status"] == "active"
    assert created["account_id"] == tenant.account_id
    webhook_id = created["id"]

    got = await hooks.read.get(
        f"/v1/webhooks/{webhook_id}?min_position={created['position']}", headers=tenant.auth
    )
    assert got.status_code == 200, got.text
    view = got.json()["data"]
    assert view["url"] == receiver.url("/a")
    assert view["event_types"] == RECORD_TYPES
    assert created["secret"] not in got.text
    assert "secret_sealed" not in got.text
    assert "whsec_" not in got.text

    changed = await hooks.command.put(
        f"/v1/webhooks/{webhook_id}",
        json={
            "event_types": ["strata.record.created", "strata.record.deleted"],
            "status": "paused",
        },
        headers=tenant.auth,
    )
    assert changed.status_code == 200, changed.text
    position = changed.json()["data"]["position"]
    listed = await hooks.read.get(f"/v1/webhooks?min_position={position}", headers=tenant.auth)
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["data"]["items"]
    assert item["status"] == "paused"
    assert item["event_types"] == ["strata.record.created", "strata.record.deleted"]

    deleted = await hooks.command.delete(f"/v1/webhooks/{webhook_id}", headers=tenant.auth)
    assert deleted.status_code == 200, deleted.text
    position = deleted.json()["data"]["position"]
    gone = await hooks.read.get(
        f"/v1/webhooks/{webhook_id}?min_position={position}", headers=tenant.auth
    )
    assert_error(gone, 404, "NOT_FOUND")
    listed = await hooks.read.get("/v1/webhooks", headers=tenant.auth)
    assert listed.json()["data"]["items"] == []
    again = await hooks.command.delete(f"/v1/webhooks/{webhook_id}", headers=tenant.auth)
    assert_error(again, 404, "NOT_FOUND")


async def test_another_tenant_sees_nothing(hooks: Stack, receiver: Receiver) -> None:
    owner, other = await hooks.new_account(), await hooks.new_account()
    created = await register(hooks, owner, receiver.url("/a"))
    webhook_id = created["id"]
    await hooks.caught_up(created["position"])
    for response in (
        await hooks.read.get(f"/v1/webhooks/{webhook_id}", headers=other.auth),
        await hooks.read.get(f"/v1/webhooks/{webhook_id}/deliveries", headers=other.auth),
        await hooks.command.put(
            f"/v1/webhooks/{webhook_id}", json={"description": "x"}, headers=other.auth
        ),
        await hooks.command.delete(f"/v1/webhooks/{webhook_id}", headers=other.auth),
        await hooks.command.post(f"/v1/webhooks/{webhook_id}/rotate-secret", headers=other.auth),
    ):
        assert_error(response, 404, "NOT_FOUND")
    listed = await hooks.read.get(f"/v1/webhooks?account_id={owner.account_id}", headers=other.auth)
    assert_error(listed, 404, "NOT_FOUND")


async def test_management_needs_account_admin(hooks: Stack, receiver: Receiver) -> None:
    member = await hooks.new_account(role="member")
    response = await hooks.command.post(
        "/v1/webhooks",
        json={"url": receiver.url("/a"), "event_types": ["*"]},
        headers=member.auth,
    )
    assert_error(response, 403, "INSUFFICIENT_SCOPE")
    assert_error(
        await hooks.read.get("/v1/webhooks", headers=member.auth), 403, "INSUFFICIENT_SCOPE"
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://127.0.0.1/x", "http or https"),
        ("http://user:pw@127.0.0.1/x", "credentials"),
        ("http://10.1.2.3/hook", "private address"),
        ("http://127.0.0.2/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::1]:8080/", "loopback"),
        ("http://[::ffff:10.0.0.1]/", "private address"),
        ("http://224.0.0.1/", "multicast"),
        ("http://0.0.0.0/", "address"),
        ("https:///nohost", "host"),
    ],
)
async def test_unsafe_urls_are_refused(hooks: Stack, url: str, why: str) -> None:
    tenant = await hooks.new_account()
    response = await hooks.command.post(
        "/v1/webhooks", json={"url": url, "event_types": ["*"]}, headers=tenant.auth
    )
    error = assert_error(response, 400, "INVALID_VALUE")
    assert why in error["message"], error


async def test_unknown_event_types_are_refused(hooks: Stack, receiver: Receiver) -> None:
    tenant = await hooks.new_account()
    for types in (["strata.recrd.*"], ["strata.record.exploded"], ["record.*"], []):
        response = await hooks.command.post(
            "/v1/webhooks",
            json={"url": receiver.url("/a"), "event_types": types},
            headers=tenant.auth,
        )
        assert response.status_code == 400, (types, response.text)


async def test_an_idempotent_retry_does_not_show_the_secret_again(
    hooks: Stack, receiver: Receiver
) -> None:
    tenant = await hooks.new_account()
    headers = {**tenant.auth, "Idempotency-Key": "hook-1"}
    body = {"url": receiver.url("/a"), "event_types": ["*"]}
    first = await hooks.command.post("/v1/webhooks", json=body, headers=headers)
    second = await hooks.command.post("/v1/webhooks", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["data"]["secret"].startswith("whsec_")
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json()["data"]["secret"] is None
    assert second.json()["data"]["id"] == first.json()["data"]["id"]


# --- deliveries -------------------------------------------------------------------------------


async def test_a_delivery_is_a_signed_cloud_event(hooks: Stack, receiver: Receiver) -> None:
    tenant = await hooks.new_account()
    created = await register(hooks, tenant, receiver.url("/ok"))
    position = await ingest(hooks, tenant, "o-1", {"total": 42})
    await receiver.wait_for(lambda: len(receiver.delivered("/ok")) == 1)
    [got] = receiver.delivered("/ok")

    assert got.headers["Content-Type"] == "application/cloudevents+json"
    assert verify(
        created["secret"],
        got.body,
        got.headers["Webhook-Timestamp"],
        got.headers["Webhook-Signature"],
    )
    assert not verify(
        created["secret"],
        got.body + b" ",
        got.headers["Webhook-Timestamp"],
        got.headers["Webhook-Signature"],
    )
    event = got.json
    assert event["specversion"] == "1.0"
    assert event["type"] == "strata.record.created"
    assert event["source"] == f"/accounts/{tenant.account_id}"
    assert event["subject"] == "records/orders/o-1"
    assert event["datacontenttype"] == "application/json"
    assert event["position"] == str(position)
    assert event["data"] == {
        "account_id": tenant.account_id,
        "source": "orders",
        "key": "o-1",
        "data": {"total": 42},
    }
    [item] = await settled(hooks, tenant, created["id"], 1)
    assert item["status"] == "delivered"
    assert item["id"] == got.headers["Webhook-Id"]
    assert item["event_type"] == "strata.record.created"
    assert [a["status_code"] for a in item["attempts"]] == [200]


async def test_only_matching_types_and_own_account(hooks: Stack, receiver: Receiver) -> None:
    tenant, other = await hooks.new_account(), await hooks.new_account()
    await register(hooks, tenant, receiver.url("/deleted"), ["strata.record.deleted"])
    await register(hooks, tenant, receiver.url("/all"), ["*"])
    await ingest(hooks, other, "x-1", {"n": 1})  # another account: never delivered
    await ingest(hooks, tenant, "o-1", {"n": 1})
    removed = await hooks.command.delete("/v1/data/orders/o-1", headers=tenant.auth)
    assert removed.status_code == 200
    await receiver.wait_for(lambda: len(receiver.delivered("/deleted")) == 1)
    await receiver.wait_for(
        lambda: (
            {r.json["type"] for r in receiver.delivered("/all")}
            >= {"strata.record.created", "strata.record.deleted", "strata.source.registered"}
        )
    )
    assert receiver.delivered("/deleted")[0].json["type"] == "strata.record.deleted"
    accounts = {r.json["source"] for r in receiver.received}
    assert accounts == {f"/accounts/{tenant.account_id}"}


async def test_5xx_and_timeouts_are_retried(hooks: Stack, receiver: Receiver) -> None:
    tenant = await hooks.new_account()
    flaky = await register(
        hooks, tenant, receiver.behave("/flaky", lambda n, _: 503 if n < 2 else 200)
    )
    slow = await register(
        hooks, tenant, receiver.behave("/slow", lambda n, _: "hang" if n == 0 else 204)
    )
    await ingest(hooks, tenant, "o-1", {"n": 1})
    [item] = await settled(hooks, tenant, flaky["id"], 1)
    assert item["status"] == "delivered"
    assert [a["status_code"] for a in item["attempts"]] == [503, 503, 200]
    assert item["attempts"][0]["error"] == "HTTP 503"
    [item] = await settled(hooks, tenant, slow["id"], 1)
    assert item["status"] == "delivered"
    assert item["attempts"][0]["status_code"] is None
    assert "timed out" in item["attempts"][0]["error"]
    assert item["attempts"][1]["status_code"] == 204


async def test_dead_letters_and_redelivery(hooks: Stack, receiver: Receiver) -> None:
    tenant = await hooks.new_account()
    healthy = {"on": False}
    created = await register(
        hooks, tenant, receiver.behave("/dead", lambda n, _: 200 if healthy["on"] else 500)
    )
    await ingest(hooks, tenant, "o-1", {"n": 1})
    [dead] = await settled(hooks, tenant, created["id"], 1)
    assert dead["status"] == "failed"
    assert len(dead["attempts"]) == 3  # webhook_max_attempts
    assert dead["next_attempt_at"] is None

    healthy["on"] = True
    url = f"/v1/webhooks/{created['id']}/deliveries/{dead['id']}/redeliver"
    response = await hooks.command.post(url, headers=tenant.auth)
    assert response.status_code == 202, response.text
    items = await settled(hooks, tenant, created["id"], 2)
    again = next(i for i in items if i["redelivery_of"] == dead["id"])
    assert again["status"] == "delivered"
    assert again["event_id"] == dead["event_id"]
    [got] = receiver.delivered("/dead")
    assert verify(
        created["secret"],
        got.body,
        got.headers["Webhook-Timestamp"],
        got.headers["Webhook-Signature"],
    )

    unknown = f"/v1/webhooks/{created['id']}/deliveries/{'0' * 32}/redeliver"
    assert_error(await hooks.command.post(unknown, headers=tenant.auth), 404, "NOT_FOUND")
    bad = f"/v1/webhooks/{created['id']}/deliveries/nope/redeliver"
    assert_error(await hooks.command.post(bad, headers=tenant.auth), 404, "NOT_FOUND")


async def test_each_record_is_delivered_in_order(hooks: Stack, receiver: Receiver) -> None:
    """Version n+1 of a record is not sent before version n succeeded, even when n needs
    retries; other records are not held up meanwhile."""
    tenant = await hooks.new_account()
    failures = {"left": 2}

    def first_version_of_a_fails_twice(n: int, event: Any) -> int:
        first_of_a = event["subject"] == "records/orders/a" and event["streamversion"] == "1"
        if first_of_a and failures["left"] > 0:
            failures["left"] -= 1
            return 500
        return 200

    await register(hooks, tenant, receiver.behave("/ordered", first_version_of_a_fails_twice))
    for version in range(1, 4):
        await ingest(hooks, tenant, "a", {"v": version})
        await ingest(hooks, tenant, f"b-{version}", {"v": version})

    def subject(name: str) -> list[Any]:
        return [r for r in receiver.received if r.json["subject"] == f"records/orders/{name}"]

    await receiver.wait_for(lambda: len([r for r in subject("a") if r.status == 200]) == 3)
    assert [(int(r.json["streamversion"]), r.status) for r in subject("a")] == [
        (1, 500),
        (1, 500),
        (1, 200),
        (2, 200),
        (3, 200),
    ]
    # b-1..b-3 went out while a's first version was still failing
    first_a_ok = next(r.at for r in subject("a") if r.status == 200)
    assert all(r.at < first_a_ok for name in ("b-1",) for r in subject(name))


async def test_a_dead_endpoint_does_not_slow_the_others(hooks: Stack, receiver: Receiver) -> None:
    """30 records: the hanging endpoint's attempts (0.5 s timeout each, 4 at a time) would
    hold a shared queue for >= 3.75 s; the healthy endpoint gets each record at once."""
    tenant = await hooks.new_account()
    await register(hooks, tenant, receiver.behave("/hang", lambda *_: "hang"))
    await register(hooks, tenant, receiver.behave("/fine", lambda *_: 200))
    written: dict[str, float] = {}
    for i in range(30):
        await ingest(hooks, tenant, f"o-{i}", {"i": i})
        written[f"records/orders/o-{i}"] = time.monotonic()

    def fine() -> dict[str, float]:
        return {
            r.json["subject"]: r.at
            for r in receiver.delivered("/fine")
            if r.json["type"] == "strata.record.created"
        }

    await receiver.wait_for(lambda: len(fine()) == 30, timeout=15)
    latency = max(at - written[subject] for subject, at in fine().items())
    # Behind a shared queue the last record would wait >= 3.75 s; half of that leaves room
    # for a loaded machine.
    assert latency < 1.8, latency
    assert receiver.hits["/hang"] >= 4  # the dead endpoint was being tried meanwhile


async def test_rotation_signs_with_both_secrets_for_a_while(
    hooks: Stack, receiver: Receiver
) -> None:
    tenant = await hooks.new_account()
    created = await register(hooks, tenant, receiver.url("/rot"))
    rotated = await hooks.command.post(
        f"/v1/webhooks/{created['id']}/rotate-secret", headers=tenant.auth
    )
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["data"]["secret"]
    assert new_secret.startswith("whsec_")
    assert new_secret != created["secret"]
    await ingest(hooks, tenant, "o-1", {"n": 1})
    await receiver.wait_for(lambda: len(receiver.delivered("/rot")) >= 1)
    got = receiver.delivered("/rot")[-1]
    signature = got.headers["Webhook-Signature"]
    assert len(signature.split()) == 2
    for secret in (new_secret, created["secret"]):
        assert verify(secret, got.body, got.headers["Webhook-Timestamp"], signature)
