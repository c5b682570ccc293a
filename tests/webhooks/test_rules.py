"""Pure rules of webhooks: signatures and their verification, the retry schedule, SSRF
classification of addresses and URLs, event-type patterns, as-of matching, sealed secrets and
the connect-time resolver (with a fake DNS: no traffic leaves the machine)."""

from __future__ import annotations

import ipaddress
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidValueError, NotFoundError
from domain.webhook import (
    AddressPolicy,
    Webhook,
    address_problem,
    endpoint_url,
    event_type_patterns,
    matches,
)
from infra.adapters.webhooks.guard import RefusedAddressError, SafeResolver, UrlGuard
from infra.adapters.webhooks.secretbox import KeyRingSecretBox
from projections.delivery import RetryPolicy, active_at, sign, signature_header, verify
from schemas.contract import TYPES

KNOWN = [t.ce_type for t in TYPES]

# --- signatures ---------------------------------------------------------------------------------


@given(secret=st.text(min_size=1), body=st.binary(), timestamp=st.integers(0, 2**40))
def test_a_signature_verifies_only_its_body_and_timestamp(
    secret: str, body: bytes, timestamp: int
) -> None:
    header = signature_header([secret], timestamp, body)
    assert verify(secret, body, str(timestamp), header, now=timestamp)
    assert not verify(secret, body + b"x", str(timestamp), header, now=timestamp)
    assert not verify(secret + "x", body, str(timestamp), header, now=timestamp)
    assert not verify(secret, body, str(timestamp + 1), header, now=timestamp)


def test_the_signature_is_hmac_sha256_hex_over_timestamp_dot_body() -> None:
    import hashlib  # noqa: PLC0415
    import hmac  # noqa: PLC0415

    expected = hmac.new(b"whsec_k", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("whsec_k", 1700000000, b"{}") == expected
    assert signature_header(["whsec_k"], 1700000000, b"{}") == f"v1={expected}"


def test_replays_outside_the_tolerance_are_refused() -> None:
    header = signature_header(["s"], 1000, b"{}")
    assert verify("s", b"{}", "1000", header, now=1000 + 300)
    assert not verify("s", b"{}", "1000", header, now=1000 + 301)
    assert not verify("s", b"{}", "1000", header, now=1000 - 301)
    assert not verify("s", b"{}", "not-a-number", header, now=1000)


def test_during_a_rotation_either_secret_verifies() -> None:
    header = signature_header(["new", "old"], 5, b"b")
    assert verify("new", b"b", "5", header, now=5)
    assert verify("old", b"b", "5", header, now=5)
    assert not verify("other", b"b", "5", header, now=5)


# --- retries ------------------------------------------------------------------------------------


@given(
    failures=st.integers(1, 40),
    base=st.floats(0.01, 100),
    cap=st.floats(0.01, 10_000),
    rand=st.floats(0, 1, exclude_max=True),
)
def test_backoff_is_exponential_capped_with_the_upper_half_jittered(
    failures: int, base: float, cap: float, rand: float
) -> None:
    policy = RetryPolicy(base=base, cap=cap)
    step = min(cap, base * 2 ** (failures - 1))
    delay = policy.backoff(failures, lambda: rand)
    assert step / 2 <= delay <= step
    assert delay <= cap


def test_the_default_schedule() -> None:
    policy = RetryPolicy()
    lows = [policy.backoff(n, lambda: 0.0) for n in range(1, 8)]
    highs = [policy.backoff(n, lambda: 0.999999) for n in range(1, 8)]
    assert lows == [0.5, 1, 2, 4, 8, 16, 32]
    assert [round(h) for h in highs] == [1, 2, 4, 8, 16, 32, 64]


# --- SSRF -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "reserved"),
        ("240.0.0.1", "private"),  # Python counts 240/4 as private
        ("192.0.2.10", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.1.1.1", "private"),
        ("2002:a00:1::", "private"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
        ("::ffff:93.184.216.34", None),
    ],
)
def test_addresses_are_classified(address: str, problem: str | None) -> None:
    found = address_problem(ipaddress.ip_address(address))
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_the_allow_list_takes_cidrs_addresses_and_hosts() -> None:
    policy = AddressPolicy.parse("127.0.0.1/32, 10.0.0.0/8; hooks.internal, ::1")
    assert policy.refusal("x", ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal("x", ipaddress.ip_address("10.9.9.9")) is None
    assert policy.refusal("x", ipaddress.ip_address("::1")) is None
    assert policy.refusal("x", ipaddress.ip_address("127.0.0.2")) is not None
    assert policy.refusal("hooks.internal", ipaddress.ip_address("192.168.0.1")) is None
    assert policy.refusal("HOOKS.internal.", ipaddress.ip_address("192.168.0.1")) is None
    with pytest.raises(ValueError, match="no CIDR or host"):
        AddressPolicy.parse("not a host!")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://example.com",
        "http://u:p@example.com/",
        "http://example.com/#frag",
        "http://",
        "http://exa mple.com/",
        "http://example.com:0/",
        "http://example.com:99999/",
        "x" * 3000,
    ],
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidValueError):
        endpoint_url(url)


def test_urls_keep_their_form_and_get_a_port() -> None:
    endpoint = endpoint_url("HTTPS://Hooks.Example.com/a?b=c")
    assert (endpoint.scheme, endpoint.host, endpoint.port) == ("https", "hooks.example.com", 443)
    assert endpoint.url == "HTTPS://Hooks.Example.com/a?b=c"
    assert endpoint_url("http://[::1]:81/").host == "::1"


def test_the_registration_guard_refuses_private_literals_without_dns() -> None:
    guard = UrlGuard(AddressPolicy.parse("127.0.0.1/32"))
    guard(endpoint_url("http://127.0.0.1:9/"))
    with pytest.raises(InvalidValueError, match="private"):
        guard(endpoint_url("http://192.168.0.1/"))
    guard_hosts = UrlGuard(AddressPolicy.parse("hooks.internal"))
    guard_hosts(endpoint_url("http://hooks.internal/"))  # allow-listed by name: no lookup


class FakeDNS(AbstractResolver):
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.answers[host]
        ]

    async def close(self) -> None:
        pass


async def test_the_connect_time_resolver_refuses_rebinding() -> None:
    dns = FakeDNS(
        {
            "public.example": ["93.184.216.34"],
            "rebound.example": ["93.184.216.34", "169.254.169.254"],
            "inside.example": ["10.0.0.5"],
            "allowed.internal": ["10.0.0.6"],
        }
    )
    resolver = SafeResolver(AddressPolicy.parse("allowed.internal"), dns)
    assert [r["host"] for r in await resolver.resolve("public.example", 443)] == ["93.184.216.34"]
    assert [r["host"] for r in await resolver.resolve("allowed.internal", 80)] == ["10.0.0.6"]
    for host in ("rebound.example", "inside.example"):
        with pytest.raises(RefusedAddressError):
            await resolver.resolve(host, 443)


# --- event types and as-of matching -----------------------------------------------------------


def test_patterns() -> None:
    assert event_type_patterns(["strata.record.*", "*", "strata.record.*"], KNOWN) == [
        "*",
        "strata.record.*",
    ]
    for bad in (["strata.nope.*"], ["strata.record.nope"], ["strata.*"], ["record"], []):
        with pytest.raises(InvalidValueError):
            event_type_patterns(bad, KNOWN)
    assert matches(["strata.record.*"], "strata.record.created")
    assert not matches(["strata.record.*"], "strata.recordx.created")
    assert matches(["*"], "strata.webhook.paused")
    assert matches(["strata.account.closed"], "strata.account.closed")
    assert not matches(["strata.account.closed"], "strata.account.opened")


def _doc(**positions: Any) -> dict[str, Any]:
    return {"registered_position": 10, **positions}


@pytest.mark.parametrize(
    ("doc", "active", "inactive"),
    [
        (_doc(), [11, 1000], [5, 10]),
        (_doc(deleted_position=20), [11, 19], [21]),
        (_doc(paused_position=20), [11, 19], [21, 30]),
        (_doc(paused_position=20, resumed_position=30), [11, 19, 31], [21, 29]),
    ],
)
def test_a_webhook_takes_events_after_its_registration_while_active(
    doc: dict[str, Any], active: list[int], inactive: list[int]
) -> None:
    assert all(active_at(doc, p) for p in active)
    assert not any(active_at(doc, p) for p in inactive)


def test_the_aggregate_lifecycle() -> None:
    hook = Webhook(
        id=uuid.uuid4(),
        account_id="a",
        url="https://x.example/",
        event_types=["*"],
        description="",
        secret_sealed="s1",
    )
    hook.update(url="https://x.example/", event_types=["*"], description="")
    assert len(hook.pending_events) == 1  # nothing changed, nothing recorded
    hook.pause()
    with pytest.raises(InvalidValueError.__mro__[1]):  # DomainError
        hook.pause()
    hook.resume()
    hook.rotate_secret("s2")
    assert hook.pending_events[-1].previous_secret_sealed == "s1"  # type: ignore[attr-defined]
    with pytest.raises(NotFoundError):
        hook.request_redelivery("not-an-id")
    hook.delete()
    with pytest.raises(NotFoundError):
        hook.update(description="x")


# --- sealed secrets ------------------------------------------------------------------------------


def test_sealed_secrets_open_only_for_their_webhook_and_ring(tmp_path: Path) -> None:
    ring = KeyRingSecretBox.from_file(tmp_path / "keys.json")
    assert oct((tmp_path / "keys.json").stat().st_mode & 0o777) == "0o600"
    sealed = ring.seal("whsec_abc", "hook-1")
    assert "whsec_abc" not in sealed
    assert ring.open(sealed, "hook-1") == "whsec_abc"
    assert ring.seal("whsec_abc", "hook-1") != sealed  # a fresh nonce each time
    with pytest.raises(ValueError, match="does not open"):
        ring.open(sealed, "hook-2")
    again = KeyRingSecretBox.from_file(tmp_path / "keys.json")
    assert again.open(sealed, "hook-1") == "whsec_abc"
    other = KeyRingSecretBox.from_file(tmp_path / "other.json")
    with pytest.raises(ValueError, match="not in the ring"):
        other.open(sealed, "hook-1")
