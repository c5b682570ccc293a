"""SSRF protection: endpoint addresses are checked when a webhook is registered (or its URL
changed) and again at every connection, because DNS answers can change.

`UrlGuard` (registration) resolves the host and refuses the URL if *any* address is private,
loopback, link-local, multicast or reserved and not allow-listed. `SafeResolver` (delivery)
is aiohttp's resolver with the same filter, so the connection goes to an address that was
checked in that very resolution (no time-of-check/time-of-use gap through DNS rebinding).
"""

from __future__ import annotations

import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from domain.errors import InvalidValueError
from domain.webhook import AddressPolicy, Endpoint, IPAddress, ip_literal


class RefusedAddressError(OSError):
    """The endpoint resolves to an address the policy refuses."""


def _ip(text: str) -> IPAddress:
    address = ip_literal(text.split("%", 1)[0])  # drop an IPv6 zone id
    if address is None:
        raise RefusedAddressError(f"resolver returned {text!r}, not an address")
    return address


class UrlGuard:
    """Checks an endpoint at registration time (synchronous: handlers run in threads)."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy

    def __call__(self, endpoint: Endpoint) -> None:
        literal = ip_literal(endpoint.host)
        if literal is not None:
            self.policy.check(endpoint.host, [literal])
            return
        if self.policy.host_allowed(endpoint.host):
            return
        try:
            infos = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise InvalidValueError("url", f"{endpoint.host} does not resolve") from None
        self.policy.check(endpoint.host, [_ip(str(info[4][0])) for info in infos])


def refusal(policy: AddressPolicy, host: str, address: str) -> str | None:
    return policy.refusal(host, _ip(address))


class SafeResolver(AbstractResolver):
    """aiohttp resolver that refuses a host if any of its addresses is refused."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self.policy = policy
        self.inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        if self.policy.host_allowed(host):
            return results
        for result in results:
            why = refusal(self.policy, host, result["host"])
            if why is not None:
                raise RefusedAddressError(why)
        return results

    async def close(self) -> None:
        await self.inner.close()


def describe(exc: BaseException) -> str:
    """A short, safe error text for the delivery log."""
    cause: Any = exc
    while cause is not None:
        if isinstance(cause, RefusedAddressError):
            return f"refused: {cause}"
        cause = cause.__cause__ or getattr(cause, "os_error", None)
    return f"{type(exc).__name__}: {exc}"[:500]
