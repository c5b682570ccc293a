"""The delivery log and queue in Redis (distributed mode), shared by every delivery worker and
read by the read API. Each change is one Lua script, so concurrent workers never claim one lane
twice and a lane never loses its place.

Keys under `<prefix>:webhooks:q:`: `d:<id>` the delivery (JSON); `lane:<webhook>:<lane>` the
pending ids by position; `due:<webhook>` lanes by due time; `due` webhooks by their earliest
due lane; `hist:<webhook>` ids by sequence (history); `seq` the sequence. Claiming a lane
pushes its due time past the lease. Finished deliveries expire after the retention period.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from projections.delivery import PENDING, Delivery
from projections.ports import StoreUnavailableError

_RESCORE = """
local function rescore(base, w)
  local first = redis.call('ZRANGE', base .. 'due:' .. w, 0, 0, 'WITHSCORES')
  if first[1] then
    redis.call('ZADD', base .. 'due', first[2], w)
  else
    redis.call('ZREM', base .. 'due', w)
  end
end
"""

_ENQUEUE = (
    _RESCORE
    + """
local base = ARGV[1]
local added = 0
for o = 2, #ARGV, 6 do
  local id, w, lane, pos, body, due = ARGV[o], ARGV[o+1], ARGV[o+2], ARGV[o+3], ARGV[o+4], ARGV[o+5]
  if redis.call('SET', base .. 'd:' .. id, body, 'NX') then
    added = added + 1
    redis.call('ZADD', base .. 'lane:' .. w .. ':' .. lane, pos, id)
    redis.call('ZADD', base .. 'due:' .. w, 'NX', due, lane)
    redis.call('ZADD', base .. 'hist:' .. w, redis.call('INCR', base .. 'seq'), id)
    rescore(base, w)
  end
end
return added
"""
)

_CLAIM = (
    _RESCORE
    + """
local base, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local limit, per = tonumber(ARGV[4]), tonumber(ARGV[5])
local busy = {}
for i = 6, #ARGV, 2 do busy[ARGV[i]] = tonumber(ARGV[i + 1]) end
local out = {}
local webhooks = redis.call('ZRANGEBYSCORE', base .. 'due', '-inf', now, 'LIMIT', 0, 1000)
for _, w in ipairs(webhooks) do
  if #out >= limit then break end
  local room = math.min(per - (busy[w] or 0), limit - #out)
  if room > 0 then
    local lanes = redis.call('ZRANGEBYSCORE', base .. 'due:' .. w, '-inf', now, 'LIMIT', 0, room)
    for _, lane in ipairs(lanes) do
      local lanekey = base .. 'lane:' .. w .. ':' .. lane
      local head = redis.call('ZRANGE', lanekey, 0, 0)[1]
      local body = head and redis.call('GET', base .. 'd:' .. head)
      if body then
        redis.call('ZADD', base .. 'due:' .. w, now + lease, lane)
        table.insert(out, body)
      elseif head then
        redis.call('ZREM', lanekey, head)
      else
        redis.call('ZREM', base .. 'due:' .. w, lane)
      end
    end
    rescore(base, w)
  end
end
return out
"""
)

_FINISH = (
    _RESCORE
    + """
local base, w, lane, id, body = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local status, due, ttl = ARGV[6], ARGV[7], tonumber(ARGV[8])
local key = base .. 'd:' .. id
local lanekey = base .. 'lane:' .. w .. ':' .. lane
redis.call('SET', key, body)
if status == 'pending' then
  redis.call('ZADD', base .. 'due:' .. w, due, lane)
else
  redis.call('ZREM', lanekey, id)
  if ttl > 0 then redis.call('EXPIRE', key, ttl) end
  if redis.call('ZCARD', lanekey) > 0 then
    redis.call('ZADD', base .. 'due:' .. w, due, lane)
  else
    redis.call('ZREM', base .. 'due:' .. w, lane)
  end
end
rescore(base, w)
return 1
"""
)

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Delivery).decode


@contextlib.contextmanager
def _available() -> Iterator[None]:
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailableError(f"redis: {exc}") from exc


def _score(value: float) -> str:
    return repr(float(value))


class RedisDeliveryStore:
    def __init__(self, client: Redis, prefix: str = "strata", retention: float = 7 * 86400.0):
        self.client = client
        self.base = f"{prefix}:webhooks:q:"
        self.retention = retention
        self._enqueue = client.register_script(_ENQUEUE)
        self._claim = client.register_script(_CLAIM)
        self._finish = client.register_script(_FINISH)

    async def enqueue(self, deliveries: Sequence[Delivery]) -> int:
        if not deliveries:
            return 0
        args: list[Any] = [self.base]
        for d in deliveries:
            args += [d.id, d.webhook_id, d.lane, d.position, _encode(d), _score(d.next_attempt_at)]
        with _available():
            return int(await self._enqueue(args=args))

    async def claim(
        self,
        now: float,
        *,
        busy: Mapping[str, int],
        per_webhook: int,
        limit: int,
        lease: float,
    ) -> list[Delivery]:
        args: list[Any] = [self.base, _score(now), _score(lease), limit, per_webhook]
        for webhook_id, count in busy.items():
            args += [webhook_id, count]
        with _available():
            bodies = await self._claim(args=args)
        return [_decode(body) for body in bodies]

    async def finish(self, delivery: Delivery, now: float) -> None:
        d = delivery
        due = d.next_attempt_at if d.status == PENDING else now
        ttl = 0 if d.status == PENDING else max(1, int(self.retention))
        args: list[Any] = [self.base, d.webhook_id, d.lane, d.id, _encode(d), d.status]
        args += [_score(due), ttl]
        with _available():
            await self._finish(args=args)

    async def next_due(self) -> float | None:
        with _available():
            first = await self.client.zrange(self.base + "due", 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def get(self, webhook_id: str, delivery_id: str) -> Delivery | None:
        with _available():
            raw = await self.client.get(self.base + "d:" + delivery_id)
        if raw is None:
            return None
        delivery = _decode(raw)
        return delivery if delivery.webhook_id == webhook_id else None

    async def history(
        self, webhook_id: str, *, before: int | None, limit: int
    ) -> list[tuple[int, Delivery]]:
        key = self.base + "hist:" + webhook_id
        top = f"({before}" if before is not None else "+inf"
        with _available():
            entries: list[Any] = await self.client.zrevrangebyscore(
                key, top, "-inf", start=0, num=limit, withscores=True
            )
            if not entries:
                return []
            ids = [m.decode() if isinstance(m, bytes) else str(m) for m, _ in entries]
            bodies = await self.client.mget([self.base + "d:" + i for i in ids])
        out: list[tuple[int, Delivery]] = []
        gone: list[str] = []
        for (_, seq), body, delivery_id in zip(entries, bodies, ids, strict=True):
            if body is None:
                gone.append(delivery_id)  # expired after its retention period
            else:
                out.append((int(seq), _decode(body)))
        if gone:
            with _available():
                await self.client.zrem(key, *gone)
        return out
