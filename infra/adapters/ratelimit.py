"""Token-bucket stores for the gateway's rate limiter: Redis (one atomic Lua script for all
buckets of a request, on the server's clock) and an in-process one for the embedded mode."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infra.gateway.ratelimit import Bucket, Decision, LimiterUnavailableError

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local take = tonumber(ARGV[1])
local tokens = {}
local allowed = 1
for i = 1, #KEYS do
  local cap = tonumber(ARGV[2 * i])
  local rate = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
  local have = tonumber(state[1]) or cap
  local since = tonumber(state[2]) or now
  have = math.min(cap, have + math.max(0, now - since) * rate)
  tokens[i] = have
  if have < 1 then allowed = 0 end
end
local out = {allowed}
for i = 1, #KEYS do
  local cap = tonumber(ARGV[2 * i])
  local rate = tonumber(ARGV[2 * i + 1])
  local have = tokens[i]
  if take == 1 and allowed == 1 then have = have - 1 end
  if take == 1 then
    redis.call('HSET', KEYS[i], 'tokens', tostring(have), 'ts', now)
    redis.call('PEXPIRE', KEYS[i], math.ceil((cap - have) / rate) + 1000)
  end
  out[#out + 1] = tostring(have)
end
return out
"""


def _decision(buckets: Sequence[Bucket], allowed: bool, tokens: Sequence[float]) -> Decision:
    """Report the tightest bucket: the one with the fewest whole tokens left."""
    index = min(range(len(buckets)), key=lambda i: tokens[i])
    bucket, have = buckets[index], tokens[index]
    rate = bucket.refill_per_second
    return Decision(
        allowed=allowed,
        limit=bucket.capacity,
        remaining=max(0, math.floor(have)),
        reset_seconds=(bucket.capacity - have) / rate,
        retry_after=0.0 if have >= 1 else (1 - have) / rate,
    )


class RedisLimiter:
    def __init__(self, client: Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_TAKE)

    async def _run(self, buckets: Sequence[Bucket], take: bool) -> Decision:
        args: list[float | int] = [1 if take else 0]
        for bucket in buckets:
            args += [bucket.capacity, bucket.refill_per_second / 1000.0]
        try:
            out = await self._script(keys=[f"{self.prefix}:rl:{b.key}" for b in buckets], args=args)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise LimiterUnavailableError(str(exc)) from exc
        return _decision(buckets, int(out[0]) == 1, [float(v) for v in out[1:]])

    async def hit(self, buckets: Sequence[Bucket]) -> Decision:
        return await self._run(buckets, take=True)

    async def peek(self, bucket: Bucket) -> Decision:
        return await self._run([bucket], take=False)


# KEYS: the book (a sorted set: address -> until, ms on the server's clock). ARGV: address,
# hold (ms), channel. Notes the failure (never shortening a longer hold), forgets the
# expired, and announces "<address> <hold ms>".
_RECORD_FAILURE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hold = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], 'GT', now + hold, ARGV[1])
if redis.call('PTTL', KEYS[1]) < hold then redis.call('PEXPIRE', KEYS[1], hold) end
redis.call('PUBLISH', ARGV[3], ARGV[1] .. ' ' .. ARGV[2])
"""

# KEYS: the book. Every address still held, and for how many ms more.
_HELD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rows = redis.call('ZRANGE', KEYS[1], now, '+inf', 'BYSCORE', 'WITHSCORES')
for i = 2, #rows, 2 do rows[i] = tostring(tonumber(rows[i]) - now) end
return rows
"""


class RedisFailureBook:
    """Addresses that failed to authenticate, each until its failures bucket is full again,
    known in every process: each failure is kept in a sorted set and published; a process
    hears the publications (a notices subscriber on `channel`) and reloads the set whenever
    it (re)subscribes. Trusted only while `live()`."""

    def __init__(
        self,
        client: Redis,
        prefix: str,
        live: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.key = f"{prefix}:rl:failed-addresses"
        self.channel = f"{prefix}:rl:failed"
        self.live = live
        self.clock = clock
        self.ready = False
        self.until: dict[str, float] = {}
        self._record = client.register_script(_RECORD_FAILURE)
        self._held = client.register_script(_HELD)

    def clean(self, ip: str) -> bool:
        if not (self.ready and self.live()):
            return False
        until = self.until.get(ip)
        return until is None or until <= self.clock()

    async def record(self, ip: str, seconds: float) -> None:
        self._note(ip, seconds)
        args: list[str | int] = [ip, math.ceil(seconds * 1000), self.channel]
        # Unreachable: the limiter will not have it either (other processes are not live).
        with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
            await self._record(keys=[self.key], args=args)

    def _note(self, ip: str, seconds: float) -> None:
        now = self.clock()
        if len(self.until) > 100_000:
            self.until = {k: v for k, v in self.until.items() if v > now}
        self.until[ip] = max(self.until.get(ip, now), now + seconds)

    # As a notices subscriber.
    def heard(self, data: bytes) -> None:
        ip, _, ms = data.decode().rpartition(" ")
        self._note(ip, int(ms) / 1000)

    def deaf(self) -> None:
        self.ready = False

    async def resubscribed(self) -> None:
        rows = await self._held(keys=[self.key])
        for ip, left_ms in zip(rows[::2], rows[1::2], strict=True):
            self._note(ip.decode() if isinstance(ip, bytes) else str(ip), float(left_ms) / 1000)
        self.ready = True


class MemoryLimiter:
    """The same buckets in this process (the embedded mode serves from one process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.state: dict[str, tuple[float, float]] = {}

    def _tokens(self, bucket: Bucket, now: float) -> float:
        have, since = self.state.get(bucket.key, (float(bucket.capacity), now))
        return min(float(bucket.capacity), have + max(0.0, now - since) * bucket.refill_per_second)

    async def hit(self, buckets: Sequence[Bucket]) -> Decision:
        now = self._now()
        tokens = [self._tokens(b, now) for b in buckets]
        allowed = all(t >= 1 for t in tokens)
        if allowed:
            tokens = [t - 1 for t in tokens]
        for bucket, have in zip(buckets, tokens, strict=True):
            self.state[bucket.key] = (have, now)
        return _decision(buckets, allowed, tokens)

    async def peek(self, bucket: Bucket) -> Decision:
        return _decision([bucket], True, [self._tokens(bucket, self._now())])

    def _now(self) -> float:
        return self.clock()
