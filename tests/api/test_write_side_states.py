"""The write side reuses an API key's and its account's states while their versions do not
move (commands/auth.py, EventStore.load_at): one round trip per request instead of three,
and every revocation, suspension and reactivation still takes effect at the next request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.conftest import Stack, assert_error


@contextmanager
def _loads(stack: Stack) -> Iterator[list[str]]:
    """The aggregate loads the event store serves meanwhile (types loaded)."""
    log = stack.platform.log
    loaded: list[str] = []
    real = log.load

    def counting(cls: type[Any], aggregate_id: Any) -> Any:
        loaded.append(cls.__name__)
        return real(cls, aggregate_id)

    log.load = counting  # type: ignore[method-assign]
    try:
        yield loaded
    finally:
        del log.load


async def _ingest(stack: Stack, auth: dict[str, str], key: str) -> Any:
    return await stack.command.post(
        "/v1/ingest", json={"source": "s", "id": key, "data": {"n": 1}}, headers=auth
    )


async def test_states_are_reused_until_their_versions_move(stack: Stack) -> None:
    tenant = await stack.new_account()
    account = f"/v1/account/{tenant.account_id}"
    assert (await _ingest(stack, tenant.auth, "r0")).status_code == 200
    with _loads(stack) as loaded:
        assert (await _ingest(stack, tenant.auth, "r1")).status_code == 200
    assert loaded == []  # key and account unchanged: their states were reused

    suspended = await stack.command.put(
        account, json={"status": "suspended", "reason": "billing"}, headers=stack.admin
    )
    assert suspended.status_code == 200, suspended.text
    with _loads(stack) as loaded:
        assert_error(await _ingest(stack, tenant.auth, "r2"), 403, "ACCOUNT_SUSPENDED")
    assert "Account" in loaded  # its version moved: loaded again

    reactivated = await stack.command.put(account, json={"status": "active"}, headers=stack.admin)
    assert reactivated.status_code == 200, reactivated.text
    assert (await _ingest(stack, tenant.auth, "r3")).status_code == 200

    issued = await stack.command.post(
        "/v1/apikey/generate",
        json={"name": "writer", "scopes": ["ingest:write"]},
        headers=tenant.auth,
    )
    writer = {"Authorization": f"Bearer {issued.json()['data']['secret']}"}
    assert (await _ingest(stack, writer, "r4")).status_code == 200
    assert (await _ingest(stack, writer, "r5")).status_code == 200
    revoked = await stack.command.delete(
        f"/v1/apikey/{issued.json()['data']['id']}", headers=tenant.auth
    )
    assert revoked.status_code == 200, revoked.text
    assert_error(await _ingest(stack, writer, "r6"), 401, "UNAUTHENTICATED")
    assert (await _ingest(stack, tenant.auth, "r7")).status_code == 200
