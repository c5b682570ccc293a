"""Token-bucket stores for the gateway's rate limiter: Redis (one atomic Lua script for all
buckets of a request, on the server's clock) and an in-process one for the embedded mode."""

from __future__ import annotations

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
