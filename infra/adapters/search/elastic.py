"""Search documents in Elasticsearch: one index per generation, read through one alias.

`{prefix}search-g{N}` holds generation N; the alias `{prefix}search` names the active one and
is moved with one `_aliases` call, so readers switch atomically. Checkpoints live in
`{prefix}search-meta`, one document per generation, read with (realtime) GET and moved with
optimistic concurrency. Every write is routed by account and carries the event position as
an external version: a redelivered or older write is refused by Elasticsearch itself
(a version conflict, which means "already applied"). See docs/adr/0008-search.md.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from elasticsearch import (
    ApiError,
    AsyncElasticsearch,
    BadRequestError,
    ConflictError,
    NotFoundError,
    TransportError,
)

from infra.adapters.search.common import stored
from infra.adapters.search.elastic_query import hit, request
from projections.ports import StoreUnavailableError
from projections.search import (
    IndexDoc,
    SearchChange,
    SearchPage,
    SearchQuery,
    latest,
    sort_keys,
    terms,
    text_values,
)

MAPPING: dict[str, Any] = {
    # Customer keys never become fields: `data` is stored only, `terms` is one flattened
    # field (one Lucene field whatever the keys), anything else is refused.
    "dynamic": "strict",
    "_routing": {"required": True},
    "properties": {
        "account_id": {"type": "keyword"},
        "source": {"type": "keyword"},
        "id": {"type": "keyword"},
        "version": {"type": "long"},
        "position": {"type": "long"},
        "updated_at": {"type": "keyword", "index": False, "doc_values": False},
        "updated_us": {"type": "long"},
        "data": {"type": "object", "enabled": False},
        "terms": {"type": "flattened", "depth_limit": 1, "ignore_above": 256},
        # `projections.search.sort_key` per path: what `sort=data.<path>` orders by.
        "sortkeys": {"type": "flattened", "depth_limit": 1, "ignore_above": 300},
        "text": {"type": "text", "position_increment_gap": 100, "index_options": "offsets"},
    },
}
META_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "generation": {"type": "long"},
        "checkpoints": {"type": "object", "enabled": False},
    },
}
_POINTER_TTL = 0.5  # seconds a process trusts its cached view of the alias
_RETRYABLE = (429, 502, 503, 504)


class SearchIndexError(Exception):
    """Elasticsearch refused documents for a reason other than being already applied: the
    batch is not acknowledged (the runner retries; a Kafka worker dead-letters)."""


@contextlib.contextmanager
def _available() -> Iterator[None]:
    try:
        yield
    except TransportError as exc:
        raise StoreUnavailableError(f"Elasticsearch unavailable: {exc}") from exc
    except ApiError as exc:
        if exc.status_code in _RETRYABLE:
            raise StoreUnavailableError(f"Elasticsearch busy: {exc}") from exc
        raise


class ElasticSearchIndex:
    """A SearchStore in Elasticsearch."""

    def __init__(
        self,
        client: AsyncElasticsearch,
        prefix: str = "strata-",
        *,
        shards: int = 1,
        batch_docs: int = 1000,
        batch_bytes: int = 5 * 1024 * 1024,
    ) -> None:
        self.client = client
        self.alias = f"{prefix}search"
        self.meta = f"{prefix}search-meta"
        self.shards = shards
        self.batch_docs = batch_docs
        self.batch_bytes = batch_bytes
        self._ready = False
        self._active: tuple[int, float] | None = None

    def index(self, generation: int) -> str:
        return f"{self.alias}-g{generation}"

    async def _create(self, name: str, mappings: dict[str, Any], shards: int) -> bool:
        settings = {"number_of_shards": shards, "auto_expand_replicas": "0-1"}
        try:
            await self.client.indices.create(index=name, mappings=mappings, settings=settings)
        except BadRequestError as exc:
            if exc.error == "resource_already_exists_exception":
                return False
            raise
        return True

    async def _aliased(self) -> int | None:
        try:
            found = await self.client.indices.get_alias(name=self.alias)
        except NotFoundError:
            return None
        (name,) = found.body
        return int(name.rsplit("-g", 1)[1])

    async def ensure(self) -> None:
        """Create the meta index, and generation 1 behind the alias, if missing."""
        if self._ready:
            return
        with _available():
            await self._create(self.meta, META_MAPPING, 1)
            if await self._aliased() is None:
                await self._create(self.index(1), MAPPING, self.shards)
                actions = [{"add": {"index": self.index(1), "alias": self.alias}}]
                await self.client.indices.update_aliases(actions=actions)
            else:
                # Fields added to MAPPING since the index was made (adding is allowed on a
                # live index; documents written before lack them until `strata replay search`).
                await self.client.indices.put_mapping(
                    index=self.alias, properties=MAPPING["properties"]
                )
        self._ready = True

    # GenerationStore
    async def active_generation(self) -> int:
        now = time.monotonic()
        if self._active is not None and now - self._active[1] < _POINTER_TTL:
            return self._active[0]
        await self.ensure()
        with _available():
            generation = await self._aliased()
        if generation is None:
            raise StoreUnavailableError(f"alias {self.alias} is missing")
        self._active = (generation, now)
        return generation

    def writer(self, generation: int) -> ElasticGeneration:
        return ElasticGeneration(self, generation)

    async def new_generation(self) -> ElasticGeneration:
        await self.ensure()
        with _available():
            found = await self.client.indices.get(index=f"{self.alias}-g*")
            numbers = [
                int(n.rsplit("-g", 1)[1]) for n in found.body if n.rsplit("-g", 1)[1].isdigit()
            ]
            generation = max(numbers, default=0) + 1
            while not await self._create(self.index(generation), MAPPING, self.shards):
                generation += 1
            await self.client.options(ignore_status=404).delete(
                index=self.meta, id=f"g{generation}"
            )
        return self.writer(generation)

    async def activate(self, generation: int) -> None:
        await self.ensure()
        with _available():
            current = await self._aliased()
            actions: list[dict[str, Any]] = []
            if current is not None:
                actions.append({"remove": {"index": self.index(current), "alias": self.alias}})
            actions.append({"add": {"index": self.index(generation), "alias": self.alias}})
            await self.client.indices.update_aliases(actions=actions)
        self._active = None

    async def drop(self, generation: int) -> None:
        self._active = None
        if generation == await self.active_generation():
            raise ValueError("cannot drop the active generation")
        with _available():
            await self.client.options(ignore_status=404).indices.delete(
                index=self.index(generation)
            )
            await self.client.options(ignore_status=404).delete(
                index=self.meta, id=f"g{generation}"
            )

    async def checkpoints(self) -> dict[int, int]:
        return await self.writer(await self.active_generation()).checkpoints()

    # SearchReader
    async def search(self, query: SearchQuery) -> SearchPage:
        await self.ensure()
        with _available():
            found = await self.client.search(
                index=self.alias, routing=query.account_id, **request(query)
            )
        hits = found["hits"]["hits"]
        return SearchPage(
            hits=[hit(found_hit) for found_hit in hits[: query.limit]],
            total=int(found["hits"]["total"]["value"]),
            more=len(hits) > query.limit,
        )


class ElasticGeneration:
    """One generation's index, as the projection writes it."""

    def __init__(self, store: ElasticSearchIndex, generation: int) -> None:
        self.store = store
        self.client = store.client
        self.generation = generation
        self.index = store.index(generation)
        self._meta_id = f"g{generation}"

    async def _read(self) -> tuple[dict[int, int], tuple[int, int] | None]:
        try:
            found = await self.client.get(index=self.store.meta, id=self._meta_id)
        except NotFoundError:
            return {}, None
        positions = found["_source"].get("checkpoints", {})
        return {int(k): int(v) for k, v in positions.items()}, (
            found["_seq_no"],
            found["_primary_term"],
        )

    async def checkpoints(self) -> dict[int, int]:
        await self.store.ensure()
        with _available():
            return (await self._read())[0]

    async def apply(self, changes: Sequence[SearchChange], partition: int, position: int) -> None:
        await self.store.ensure()
        with _available():
            current, seq = await self._read()
            floor = current.get(partition, 0)
            todo = latest([item for item in changes if item.position > floor])
            if todo:
                for batch in self._batches(todo):
                    await self._bulk(batch)
                # Searches must see what the checkpoint will claim (read-your-writes).
                await self.client.indices.refresh(index=self.index)
            if position > floor:
                await self._advance(partition, position, current, seq)

    def _batches(self, todo: list[SearchChange]) -> Iterator[list[bytes]]:
        """NDJSON lines in bulk requests of at most `batch_docs` actions and (unless one
        document is bigger) `batch_bytes`."""
        lines: list[bytes] = []
        count = size = 0
        for item in todo:
            encoded = self._encode(item)
            weight = sum(len(line) + 1 for line in encoded)
            full = count >= self.store.batch_docs or size + weight > self.store.batch_bytes
            if lines and full:
                yield lines
                lines, count, size = [], 0, 0
            lines += encoded
            count += 1
            size += weight
        if lines:
            yield lines

    def _encode(self, item: SearchChange) -> list[bytes]:
        change = item.change
        meta = {
            "_index": self.index,
            "_id": change.doc_id,
            "routing": change.account_id,
            "version": item.position,
            "version_type": "external",
        }
        if not isinstance(change, IndexDoc):
            return [orjson.dumps({"delete": meta})]
        doc = stored(change, item.position)
        doc["terms"] = terms(change.data)
        doc["sortkeys"] = sort_keys(change.data)
        doc["text"] = [text for _, text in text_values(change.data)]
        return [orjson.dumps({"index": meta}), orjson.dumps(doc)]

    async def _bulk(self, lines: list[bytes]) -> None:
        # Lines are encoded here (to bound request bytes); the NDJSON serializer sends bytes as is.
        response = await self.client.bulk(operations=lines)  # type: ignore[arg-type]
        if not response["errors"]:
            return
        failures = []
        for item in response["items"]:
            ((action, result),) = item.items()
            status = int(result.get("status", 500))
            if status < 300 or status == 409 or (action == "delete" and status == 404):
                continue  # applied, or already applied (a newer or equal version is there)
            if status in _RETRYABLE:
                raise StoreUnavailableError(f"Elasticsearch refused a write: {result}")
            failures.append(f"{action} {result.get('_id')}: {result.get('error')}")
        if failures:
            raise SearchIndexError(f"{len(failures)} documents refused: {'; '.join(failures[:3])}")

    async def _advance(
        self, partition: int, position: int, current: dict[int, int], seq: tuple[int, int] | None
    ) -> None:
        """Move the slot's checkpoint forward, never back, beside concurrent writers of other
        slots (compare-and-set on the meta document)."""
        for _ in range(20):
            if current.get(partition, 0) >= position:
                return
            body = {
                "generation": self.generation,
                "checkpoints": {str(k): v for k, v in {**current, partition: position}.items()},
            }
            try:
                if seq is None:
                    await self.client.create(index=self.store.meta, id=self._meta_id, document=body)
                else:
                    await self.client.index(
                        index=self.store.meta,
                        id=self._meta_id,
                        document=body,
                        if_seq_no=seq[0],
                        if_primary_term=seq[1],
                    )
            except ConflictError:
                current, seq = await self._read()
            else:
                return
        raise StoreUnavailableError("checkpoint kept changing under concurrent writers")

    async def dump(self) -> dict[str, dict[str, Any]]:
        docs: dict[str, Any] = {}
        after: list[Any] | None = None
        with _available():
            await self.client.indices.refresh(index=self.index)
            while True:
                found = await self.client.search(
                    index=self.index,
                    size=1000,
                    sort=[{"account_id": "asc"}, {"source": "asc"}, {"id": "asc"}],
                    search_after=after,
                    source_excludes=["text", "terms", "sortkeys"],
                )
                hits = found["hits"]["hits"]
                for hit in hits:
                    docs[hit["_id"]] = hit["_source"]
                if not hits:
                    break
                after = hits[-1]["sort"]
        return {"docs": dict(sorted(docs.items()))}
