"""A Faust worker over `streams.app.build_app` whose handler misbehaves on purpose.

Run as a process by test_faust_acks.py: `python -m tests.pipeline.blocking_worker`.
Environment: TOPIC, GROUP, STRATA_KAFKA_BOOTSTRAP, MARKER (a file written when a batch
arrives: its size, then its offsets, one line each), and BEHAVIOUR: `block` (never
returns), `raise`, `unavailable` (the read model is unreachable on the first attempt) or
`ok`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

import faust

from projections.ports import StoreUnavailableError
from streams.app import StreamSettings, build_app
from streams.worker import Incoming


class _Projection:
    name = "blocking"


class BlockingWorker:
    projection = _Projection()
    failed_once = False

    async def dead_letter(self, message: Incoming, error: BaseException) -> None:
        raise AssertionError("no dead letters expected")

    async def handle(self, messages: Sequence[Incoming]) -> None:
        with open(os.environ["MARKER"], "a") as marker:  # noqa: ASYNC230 (a few bytes)
            offsets = " ".join(str(message.offset) for message in messages)
            marker.write(f"{len(messages)} {offsets}\n")
        behaviour = os.environ["BEHAVIOUR"]
        if behaviour == "block":
            await asyncio.Event().wait()
        if behaviour == "raise":
            raise RuntimeError("the handler failed")
        if behaviour == "unavailable" and not self.failed_once:
            self.failed_once = True
            raise StoreUnavailableError("the read model is down")


settings = StreamSettings(
    bootstrap=os.environ["STRATA_KAFKA_BOOTSTRAP"],
    group=os.environ["GROUP"],
    topics=[os.environ["TOPIC"]],
    dead_letter_topic=os.environ["TOPIC"] + "-dlq",
    replication=1,
)
app = build_app(settings, BlockingWorker())  # type: ignore[arg-type]

if __name__ == "__main__":
    faust.Worker(
        app, loglevel="WARNING", quiet=True
    ).execute_from_commandline()  # as `strata worker`
