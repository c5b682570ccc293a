"""Rate limiting: token buckets per API key and per account (sized by the account's plan),
per client IP for calls without credentials, and a tighter per-IP bucket for failed logins.

Every response carries X-RateLimit-Limit/-Remaining/-Reset of the tightest bucket that
applied (Reset: seconds until it is full again); a refusal is 429 with Retry-After. The
buckets live in Redis (distributed, one atomic script per request) or in process (embedded).
If the limiter's store cannot be reached, `STRATA_RATE_LIMIT_FAILURE_MODE` decides: `open`
lets requests through (and logs), `closed` refuses them with 503.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import structlog

from domain.access import Principal
from domain.billing import Catalog

log = structlog.get_logger("strata.ratelimit")

FailureMode = Literal["open", "closed"]


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str
    capacity: int
    per_seconds: float = 60.0

    @property
    def refill_per_second(self) -> float:
        return self.capacity / self.per_seconds


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float
    """Until the tightest bucket is full again."""
    retry_after: float
    """Until the next token, when refused."""

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_seconds)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return headers


class LimiterUnavailableError(Exception):
    """The limiter's store could not be reached."""


class Limiter(Protocol):
    async def hit(self, buckets: Sequence[Bucket]) -> Decision:
        """Take one token from every bucket, or none if any is empty (atomically)."""
        ...

    async def peek(self, bucket: Bucket) -> Decision:
        """The bucket's state, without taking a token."""
        ...


class FailureBook(Protocol):
    """Which clients failed to authenticate lately, known without asking the limiter."""

    def clean(self, ip: str) -> bool:
        """True only if `ip` surely has no failed authentication in its bucket's window."""
        ...

    async def record(self, ip: str, seconds: float) -> None:
        """`ip` failed; its failures bucket is full again in `seconds`: noted here, and
        told to the other processes."""
        ...


class RateLimitedError(Exception):
    def __init__(self, decision: Decision, message: str) -> None:
        super().__init__(message)
        self.decision = decision


class RateLimiterUnavailableError(Exception):
    """The limiter is down and configured to fail closed."""


@dataclass(frozen=True, slots=True)
class Policy:
    catalog: Catalog
    anonymous_per_minute: int = 60
    failures_per_minute: int = 10
    failure_mode: FailureMode = "open"

    def for_principal(self, principal: Principal) -> list[Bucket]:
        """Key and account buckets at the plan's rate; none for the operator or unlimited."""
        if principal.account_id is None or principal.plan is None:
            return []
        per_minute = self.catalog.terms(principal.plan).rate_limit_per_minute
        if per_minute is None:
            return []
        buckets = [Bucket(f"account:{principal.account_id}", per_minute)]
        if principal.key_id is not None:
            buckets.insert(0, Bucket(f"key:{principal.key_id}", per_minute))
        return buckets

    def anonymous(self, ip: str) -> Bucket:
        return Bucket(f"ip:{ip}", self.anonymous_per_minute)

    def failures(self, ip: str) -> Bucket:
        return Bucket(f"failed:{ip}", self.failures_per_minute)


class RateLimit:
    """The gateway's use of a Limiter under a Policy. With a FailureBook, a client with no
    failed authentication on record is not checked against the limiter (nothing to find)."""

    def __init__(
        self, limiter: Limiter, policy: Policy, failures: FailureBook | None = None
    ) -> None:
        self.limiter = limiter
        self.policy = policy
        self.failures = failures

    async def admit(self, buckets: Sequence[Bucket], what: str) -> Decision | None:
        """A decision to report (None when nothing limits this call); raises when refused."""
        if not buckets:
            return None
        try:
            decision = await self.limiter.hit(buckets)
        except LimiterUnavailableError:
            if self.policy.failure_mode == "closed":
                raise RateLimiterUnavailableError("the rate limiter is unavailable") from None
            log.warning("rate limiter unavailable; letting the call through", what=what)
            return None
        if not decision.allowed:
            raise RateLimitedError(decision, f"too many requests ({what}); retry later")
        return decision

    async def blocked_for_failures(self, ip: str) -> Decision | None:
        """Refuse at once a client that failed to authenticate too often."""
        if self.failures is not None and self.failures.clean(ip):
            return full(self.policy.failures(ip))  # what the limiter would answer
        try:
            decision = await self.limiter.peek(self.policy.failures(ip))
        except LimiterUnavailableError:
            return None
        if decision.remaining < 1:
            raise RateLimitedError(
                decision, "too many failed authentications from this address; retry later"
            )
        return decision

    async def failed(self, ip: str) -> None:
        bucket = self.policy.failures(ip)
        decision = None
        with contextlib.suppress(LimiterUnavailableError):
            decision = await self.limiter.hit([bucket])
        if self.failures is not None:
            # Held until the bucket is full again (+1 s: the server's clock, the notice).
            refill = bucket.per_seconds if decision is None else decision.reset_seconds
            await self.failures.record(ip, refill + 1.0)


def full(bucket: Bucket) -> Decision:
    """A bucket no token was taken from lately."""
    return Decision(
        allowed=True,
        limit=bucket.capacity,
        remaining=bucket.capacity,
        reset_seconds=0.0,
        retry_after=0.0,
    )
