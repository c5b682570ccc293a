"""Topic names and their explicit creation (the broker never auto-creates)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str
    partitions: int
    replication: int

    @property
    def events(self) -> str:
        """Every event, ApiKey verifiers redacted: the public contract."""
        return f"{self.prefix}events"

    @property
    def credentials(self) -> str:
        """Full ApiKey events, for Strata's own processors only."""
        return f"{self.prefix}credentials"

    def dead_letters(self, projection: str) -> str:
        return f"{self.prefix}dlq.{projection}"

    def specs(self) -> list[NewTopic]:
        return [
            NewTopic(self.events, self.partitions, self.replication),
            NewTopic(self.credentials, 1, self.replication),
        ]


async def ensure_topics(bootstrap: str, topics: list[NewTopic]) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if not missing:
            return
        response = await admin.create_topics(missing)
        for name, code, *_ in getattr(response, "topic_errors", []):
            if code not in (0, TopicAlreadyExistsError.errno):
                raise RuntimeError(f"could not create Kafka topic {name}: error code {code}")
        log.info("created Kafka topics %s", ", ".join(t.name for t in missing))
    finally:
        await admin.close()
