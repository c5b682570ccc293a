"""Document read models in Redis: hashes for documents, sorted sets for ordered members.

A batch is applied by one Lua script, atomically with its checkpoint, so a redelivered batch
changes nothing. Keys are built inside the script from one namespace, which is fine on a
single node or a replicated primary; a Redis Cluster would need hash tags (not supported yet).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import msgspec
import orjson
from redis.asyncio import Redis
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infra.adapters.documents.batching import HashReads
from infra.adapters.documents.linkcache import LinkCache
from projections.changes import AddMember, Delete, Merge, Positioned, Put, RemoveMember
from projections.ports import StoreUnavailableError

# ARGV: namespace, slot, checkpoint, then the batch's changes as ONE MessagePack array of
# [position, op, key, fields-or-member] (one argument, not ~20 per change: packing many
# arguments in Python cost more than the script). Field values are JSON text. Then a channel
# and the watched key prefixes: when a document under one of them changes, one notice on
# the channel, in the same atomic step (readers' caches of watched documents hear it).
_APPLY = """
local ns = ARGV[1]
local cpkey = ns .. '__checkpoints__'
local partition = ARGV[2]
local position = tonumber(ARGV[3])
local floor = tonumber(redis.call('HGET', cpkey, partition) or '0')
local changes = cmsgpack.unpack(ARGV[4])
local announced = false
for _, change in ipairs(changes) do
  if change[1] > floor then
    local op = change[2]
    local key = ns .. change[3]
    local arg = change[4]
    if not announced and op ~= 'add' and op ~= 'rem' then
      for i = 6, #ARGV do
        if not announced and string.sub(change[3], 1, #ARGV[i]) == ARGV[i] then
          -- Before the change: no client runs between the two, and a script that fails
          -- half-way has still announced what it did.
          redis.call('PUBLISH', ARGV[5], ns)
          announced = true
        end
      end
    end
    if op == 'put' then
      redis.call('DEL', key)
      if #arg > 0 then redis.call('HSET', key, unpack(arg)) end
    elseif op == 'merge' then
      if #arg > 0 then redis.call('HSET', key, unpack(arg)) end
    elseif op == 'del' then
      redis.call('DEL', key)
    elseif op == 'add' then
      redis.call('ZADD', key, 0, arg)
    elseif op == 'rem' then
      redis.call('ZREM', key, arg)
    end
  end
end
if position > floor then redis.call('HSET', cpkey, partition, position) end
return floor
"""

# ARGV: namespace, key, field, prefix. The document at key, and the one its field's JSON
# string value names (prefix .. value), or {} when there is none.
_GET_LINKED = """
local doc = redis.call('HGETALL', ARGV[1] .. ARGV[2])
local target
for i = 1, #doc, 2 do
  if doc[i] == ARGV[3] then target = doc[i + 1] break end
end
if target == nil then return {doc, {}} end
local ok, value = pcall(cjson.decode, target)
if not ok or type(value) ~= 'string' then return {doc, {}} end
return {doc, redis.call('HGETALL', ARGV[1] .. ARGV[4] .. value)}
"""

_POINTER_TTL = 0.5  # seconds a reader trusts its cached view of the active generation


_pack = msgspec.msgpack.Encoder().encode


def _fields(fields: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name, value in fields.items():
        out.append(name)
        out.append(orjson.dumps(value).decode())  # MessagePack str: cmsgpack reads no bin
    return out


def _encode(changes: Sequence[Positioned]) -> bytes:
    packed: list[tuple[int, str, str, list[str] | str]] = []
    for item in changes:
        change = item.change
        if isinstance(change, Put):
            packed.append((item.position, "put", change.key, _fields(change.fields)))
        elif isinstance(change, Merge):
            packed.append((item.position, "merge", change.key, _fields(change.fields)))
        elif isinstance(change, Delete):
            packed.append((item.position, "del", change.key, ""))
        elif isinstance(change, AddMember):
            packed.append((item.position, "add", change.set, change.member))
        elif isinstance(change, RemoveMember):
            packed.append((item.position, "rem", change.set, change.member))
    return _pack(packed)


class RedisDocumentStore:
    """`watch`: key prefixes whose changes are announced on `channel`; with `cache` (built by
    `cached`), readers keep `get_linked` results of watched documents in process."""

    def __init__(
        self,
        client: Redis,
        name: str,
        prefix: str = "strata",
        watch: tuple[str, ...] = (),
    ) -> None:
        self.client = client
        self.name = name
        self.base = f"{prefix}:{name}"
        self.watch = watch
        self.channel = f"{self.base}:changed"
        self.cache: LinkCache | None = None
        self.reads = HashReads(client)
        self._apply = client.register_script(_APPLY)
        self._get_linked = client.register_script(_GET_LINKED)
        self._active: tuple[int, float] | None = None

    async def close(self) -> None:
        """Closes the store's own read connection (the client is the caller's)."""
        await self.reads.aclose()

    def cached(self, trusted: Callable[[], bool]) -> LinkCache:
        """Cache linked reads of watched documents while `trusted()` (the channel's notices
        are heard); subscribe the returned cache to `channel`."""
        self.cache = LinkCache(self.watch, trusted)
        return self.cache

    def namespace(self, generation: int) -> str:
        return f"{self.base}:g{generation}:"

    async def active_generation(self) -> int:
        now = time.monotonic()
        if self._active is not None and now - self._active[1] < _POINTER_TTL:
            return self._active[0]
        raw = await self.client.get(f"{self.base}:active")
        generation = int(raw) if raw is not None else 1
        self._active = (generation, now)
        return generation

    def writer(self, generation: int) -> RedisGeneration:
        return RedisGeneration(self, generation)

    async def new_generation(self) -> RedisGeneration:
        await self.client.set(f"{self.base}:latest", 1, nx=True)  # generation 1 exists implicitly
        return self.writer(int(await self.client.incr(f"{self.base}:latest")))

    async def activate(self, generation: int) -> None:
        await self.client.set(f"{self.base}:active", generation)
        self._active = None
        if self.watch:
            await self.client.publish(self.channel, self.namespace(generation))

    async def drop(self, generation: int) -> None:
        if generation == await self.active_generation():
            raise ValueError("cannot drop the active generation")
        pattern = self.namespace(generation) + "*"
        batch: list[bytes] = []
        async for key in self.client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await self.client.unlink(*batch)
                batch.clear()
        if batch:
            await self.client.unlink(*batch)

    async def get(self, key: str) -> dict[str, Any] | None:
        return await self.writer(await self.active_generation()).get(key)

    async def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        return await self.writer(await self.active_generation()).get_many(keys)

    async def get_linked(
        self, key: str, field: str, prefix: str
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        generation = self.writer(await self.active_generation())
        cache = self.cache
        if cache is None or not cache.covers(key, prefix):
            return await generation.get_linked(key, field, prefix)
        cache_key = (generation.ns, key, field, prefix)
        hit = cache.get(cache_key)
        if hit is not None:
            return hit
        epoch = cache.epoch
        doc, linked = await generation.get_linked(key, field, prefix)
        if doc is not None and linked is not None:  # absent documents are never kept
            cache.put(cache_key, (doc, linked), epoch)
        return doc, linked

    async def members(self, set_key: str, *, after: str | None, limit: int) -> list[str]:
        generation = self.writer(await self.active_generation())
        return await generation.members(set_key, after=after, limit=limit)

    async def checkpoints(self) -> dict[int, int]:
        return await self.writer(await self.active_generation()).checkpoints()


class RedisGeneration:
    def __init__(self, store: RedisDocumentStore, generation: int) -> None:
        self.store = store
        self.generation = generation
        self.ns = store.namespace(generation)

    async def apply(self, changes: Sequence[Positioned], partition: int, position: int) -> None:
        store = self.store
        args: list[str | int | bytes] = [self.ns, partition, position, _encode(changes)]
        args += [store.channel, *store.watch]
        with _available():
            await store._apply(args=args)

    async def dump(self) -> dict[str, dict[str, Any]]:
        client = self.store.client
        docs: dict[str, Any] = {}
        sets: dict[str, Any] = {}
        async for raw_key in client.scan_iter(match=self.ns + "*", count=1000):
            name = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            key = name[len(self.ns) :]
            if key == "__checkpoints__":
                continue
            kind = await client.type(raw_key)
            if kind in (b"hash", "hash"):
                docs[key] = _decode(await client.hgetall(raw_key))
            elif kind in (b"zset", "zset"):
                members = await client.zrange(raw_key, 0, -1)
                sets[key] = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
        return {"docs": dict(sorted(docs.items())), "sets": dict(sorted(sets.items()))}

    async def get(self, key: str) -> dict[str, Any] | None:
        with _available():
            raw = await self.store.reads.hgetall(self.ns + key)
        return _decode(raw) if raw else None

    async def get_linked(
        self, key: str, field: str, prefix: str
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        with _available():
            doc, linked = await self.store._get_linked(args=[self.ns, key, field, prefix])
        return (_pairs(doc) if doc else None), (_pairs(linked) if linked else None)

    async def get_many(self, keys: Sequence[str]) -> list[dict[str, Any] | None]:
        async with self.store.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(self.ns + key)
            rows = await pipe.execute()
        return [_decode(raw) if raw else None for raw in rows]

    async def members(self, set_key: str, *, after: str | None, limit: int) -> list[str]:
        start = f"({after}" if after is not None else "-"
        raw = await self.store.client.zrange(
            self.ns + set_key, start, "+", bylex=True, offset=0, num=limit
        )
        return [m.decode() if isinstance(m, bytes) else str(m) for m in raw]

    async def checkpoints(self) -> dict[int, int]:
        with _available():
            raw = await self.store.client.hgetall(self.ns + "__checkpoints__")
        return {int(k): int(v) for k, v in raw.items()}


@contextlib.contextmanager
def _available() -> Iterator[None]:
    """Connection trouble is the store's, not the data's: say so, so callers retry."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, BusyLoadingError) as exc:
        raise StoreUnavailableError(f"Redis unavailable: {exc}") from exc


def _pairs(flat: Sequence[Any]) -> dict[str, Any]:
    """A document from a script's flat [field, value, ...] reply."""
    return _decode(dict(zip(flat[::2], flat[1::2], strict=True)))


def _decode(raw: Mapping[Any, Any]) -> dict[str, Any]:
    return {(k.decode() if isinstance(k, bytes) else k): orjson.loads(v) for k, v in raw.items()}
