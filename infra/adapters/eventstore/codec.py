"""How events are serialised: orjson, with event metadata kept beside the event's own state.

eventsourcing's JSONTranscoder tags typed values as {"_type_": ..., "_data_": ...} anywhere
in the document, so a customer record shaped like a tag would be corrupted on decode. Strata
events keep only JSON-native values, except the top-level `timestamp`, which is restored here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

META_KEY = "__meta__"


class OrjsonTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def decode(self, data: bytes) -> Any:
        state = orjson.loads(data)
        timestamp = state.get("timestamp")
        if isinstance(timestamp, str):
            state["timestamp"] = datetime.fromisoformat(timestamp)
        return state


class MetadataMapper(Mapper[Any]):
    """A Mapper that stores correlation/causation metadata with each event."""

    def to_stored_event(
        self, domain_event: DomainEventProtocol[Any], metadata: dict[str, str] | None = None
    ) -> StoredEvent:
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        if metadata:
            state[META_KEY] = metadata
        data = self.transcoder.encode(state)
        if self.compressor:
            data = self.compressor.compress(data)
        if self.cipher:
            data = self.cipher.encrypt(data)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(domain_event)),
            state=data,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[Any]:
        event = super().to_domain_event(stored_event)
        vars(event).pop(META_KEY, None)
        return event

    def decode_state(self, stored_event: StoredEvent) -> dict[str, Any]:
        """The event's state as plain data (metadata included), without building the event."""
        data = stored_event.state
        if self.cipher:
            data = self.cipher.decrypt(data)
        if self.compressor:
            data = self.compressor.decompress(data)
        state: dict[str, Any] = self.transcoder.decode(data)
        return state


def event_type(topic: str) -> str:
    """'domain.record:Record.Created' -> 'Record.Created'."""
    return topic.rpartition(":")[2]
