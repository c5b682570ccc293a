"""The Webhook aggregate: an account's endpoint that receives its events over HTTP.

Also the rules every endpoint URL must follow (http(s) only; no private, loopback,
link-local, multicast or reserved targets unless an operator allow-list permits them) and
the matching of event types against an endpoint's patterns. The signing secret is never
recorded in clear: events carry it sealed (encrypted) by the write side (ADR 11).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import InvalidTransitionError, InvalidValueError, NotFoundError

SECRET_PREFIX = "whsec_"  # noqa: S105 - a public marker, not a secret
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 500
MAX_EVENT_TYPES = 50
DELIVERY_ID = re.compile(r"[0-9a-f]{32}")
_PATTERN = re.compile(r"\*|strata\.[a-z]+\.(\*|[a-z][a-z0-9_]*)")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class WebhookStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DELETED = "deleted"


# --- URLs and the addresses they may reach (SSRF protection) --------------------------------


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed endpoint URL: what a sender connects to."""

    url: str
    scheme: str
    host: str
    """Lower-cased host name, or an IP address literal without brackets."""
    port: int


def endpoint_url(value: str, field: str = "url") -> Endpoint:
    """An http(s) URL with a host, no credentials and no fragment."""
    url = value.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise InvalidValueError(field, f"must be a URL of at most {MAX_URL_LENGTH} characters")
    if any(ord(ch) <= 32 or ord(ch) == 127 for ch in url):
        raise InvalidValueError(field, "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidValueError(field, f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidValueError(field, "must use http or https")
    if parts.username is not None or parts.password is not None:
        raise InvalidValueError(field, "must not carry credentials (user:password@)")
    if parts.fragment:
        raise InvalidValueError(field, "must not have a fragment (#...)")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise InvalidValueError(field, "must name a host")
    if port == 0:
        raise InvalidValueError(field, "port 0 is not a port")
    return Endpoint(
        url=url, scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80)
    )


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, Teredo, NAT64), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: IPAddress) -> str | None:  # noqa: PLR0911 - one per class
    """Why an endpoint may not be reached at `address` (None: a public address)."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        problem = address_problem(embedded)
        return f"{problem} (embedded in {address})" if problem else None
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "a reserved address"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which targets an endpoint may resolve to: public addresses, plus what the operator's
    allow-list (STRATA_WEBHOOK_ALLOWLIST: CIDRs, addresses and host names) permits."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, allowlist: str) -> AddressPolicy:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in allowlist.replace(";", ",").split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not re.fullmatch(r"[a-z0-9_.-]{1,253}", entry):
                    raise ValueError(f"allow-list entry {raw!r} is no CIDR or host") from None
                hosts.add(entry.rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def host_allowed(self, host: str) -> bool:
        """An allow-listed host name is trusted whatever it resolves to."""
        return host.rstrip(".").lower() in self.hosts

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why `host` may not be reached at `address`, or None when it may."""
        if self.host_allowed(host):
            return None
        for network in self.networks:
            if network.version == address.version and address in network:
                return None
        problem = address_problem(address)
        if problem is None:
            return None
        return f"{host} resolves to {address}, {problem}; ask the operator to allow-list it"

    def check(self, host: str, addresses: Iterable[IPAddress]) -> None:
        """Raises InvalidValueError unless every address of `host` may be reached."""
        found = list(addresses)
        if not found:
            raise InvalidValueError("url", f"{host} does not resolve")
        for address in found:
            refusal = self.refusal(host, address)
            if refusal is not None:
                raise InvalidValueError("url", refusal)


# --- event type patterns ------------------------------------------------------------------


def event_type_patterns(values: Iterable[str], known: Iterable[str]) -> list[str]:
    """Patterns of the contract's CloudEvents types: an exact type (`strata.record.created`),
    a family (`strata.record.*`) or everything (`*`). Sorted, without duplicates."""
    known_types = frozenset(known)
    families = {t.rsplit(".", 1)[0] for t in known_types}
    patterns: set[str] = set()
    for value in values:
        pattern = value.strip()
        if not _PATTERN.fullmatch(pattern):
            raise InvalidValueError(
                "event_types", f"{value!r} is not an event type, a family.* or '*'"
            )
        if pattern != "*":
            family, _, name = pattern.rpartition(".")
            if (name == "*" and family not in families) or (
                name != "*" and pattern not in known_types
            ):
                raise InvalidValueError("event_types", f"no event type matches {value!r}")
        patterns.add(pattern)
    if not patterns:
        raise InvalidValueError("event_types", "name at least one event type")
    if len(patterns) > MAX_EVENT_TYPES:
        raise InvalidValueError("event_types", f"at most {MAX_EVENT_TYPES} patterns")
    return sorted(patterns)


def matches(patterns: Iterable[str], ce_type: str) -> bool:
    for pattern in patterns:
        if pattern in ("*", ce_type):
            return True
        if pattern.endswith(".*") and ce_type.startswith(pattern[:-1]):
            return True
    return False


def description(value: str) -> str:
    text = value.strip()
    if len(text) > MAX_DESCRIPTION_LENGTH:
        raise InvalidValueError("description", f"at most {MAX_DESCRIPTION_LENGTH} characters")
    if any(ord(ch) < 32 and ch not in "\t\n" for ch in text):
        raise InvalidValueError("description", "must not contain control characters")
    return text


def delivery_id(value: str) -> str:
    if not DELIVERY_ID.fullmatch(value):
        raise NotFoundError("no such delivery")
    return value


# --- the aggregate ----------------------------------------------------------------------------


class Webhook(Aggregate):
    """Every event names the webhook's account, so consumers can place it without state.

    `secret_sealed` is the signing secret encrypted by the write side's key ring; only
    Strata's delivery worker can open it (it must sign with it, so a hash would not do).
    """

    @event("Registered")
    def __init__(
        self,
        id: UUID,  # noqa: A002 - eventsourcing takes a caller-chosen aggregate id this way
        account_id: str,
        url: str,
        event_types: list[str],
        description: str,
        secret_sealed: str,
    ) -> None:
        self.account_id = account_id
        self.url = url
        self.event_types = event_types
        self.description = description
        self.secret_sealed = secret_sealed
        self.status = WebhookStatus.ACTIVE.value

    @property
    def is_deleted(self) -> bool:
        return self.status == WebhookStatus.DELETED

    def _ensure_not_deleted(self) -> None:
        if self.is_deleted:
            raise NotFoundError("no such webhook")

    def update(
        self,
        url: str | None = None,
        event_types: list[str] | None = None,
        description: str | None = None,
    ) -> None:
        """Records only what changes; an update that changes nothing records nothing."""
        self._ensure_not_deleted()
        new_url = url if url is not None and url != self.url else None
        new_types = event_types if event_types not in (None, self.event_types) else None
        new_description = (
            description if description is not None and description != self.description else None
        )
        if new_url is not None or new_types is not None or new_description is not None:
            self._updated(
                account_id=self.account_id,
                url=new_url,
                event_types=new_types,
                description=new_description,
            )

    @event("Updated")
    def _updated(
        self,
        account_id: str,
        url: str | None,
        event_types: list[str] | None,
        description: str | None,
    ) -> None:
        if url is not None:
            self.url = url
        if event_types is not None:
            self.event_types = event_types
        if description is not None:
            self.description = description

    def rotate_secret(self, secret_sealed: str) -> None:
        self._ensure_not_deleted()
        self._secret_rotated(
            account_id=self.account_id,
            secret_sealed=secret_sealed,
            previous_secret_sealed=self.secret_sealed,
        )

    @event("SecretRotated")
    def _secret_rotated(
        self, account_id: str, secret_sealed: str, previous_secret_sealed: str
    ) -> None:
        self.secret_sealed = secret_sealed

    def pause(self) -> None:
        self._ensure_not_deleted()
        if self.status != WebhookStatus.ACTIVE:
            raise InvalidTransitionError("only an active webhook can be paused")
        self._paused(account_id=self.account_id)

    @event("Paused")
    def _paused(self, account_id: str) -> None:
        self.status = WebhookStatus.PAUSED.value

    def resume(self) -> None:
        self._ensure_not_deleted()
        if self.status != WebhookStatus.PAUSED:
            raise InvalidTransitionError("only a paused webhook can be resumed")
        self._resumed(account_id=self.account_id)

    @event("Resumed")
    def _resumed(self, account_id: str) -> None:
        self.status = WebhookStatus.ACTIVE.value

    def delete(self) -> None:
        self._ensure_not_deleted()
        self._deleted(account_id=self.account_id)

    @event("Deleted")
    def _deleted(self, account_id: str) -> None:
        self.status = WebhookStatus.DELETED.value

    def request_redelivery(self, delivery: str) -> None:
        """Asks the delivery worker to send a past delivery again (a new delivery)."""
        self._ensure_not_deleted()
        self._redelivery_requested(account_id=self.account_id, delivery_id=delivery_id(delivery))

    @event("RedeliveryRequested")
    def _redelivery_requested(self, account_id: str, delivery_id: str) -> None:
        pass
