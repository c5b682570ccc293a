"""A Faust consumer that hands each partition's share of a fetch on as one message.

faust turns every fetched record into a `Message`, passes it through its conductor to the
topic's channel, wraps it in an `Event`, puts it on the stream's queue, takes it off in the
stream's iterator and acknowledges it: a third of a Faust worker's CPU per event in a
profile, all of it for records a Strata worker applies in batches anyway.

`BulkConsumer.getmany` yields one message per partition per fetch instead, whose value is
the partition's records (aiokafka `ConsumerRecord`s, in offset order) and whose offset is
the last of them. What faust did per message it now does per bulk:
- the read offset: records below it (re-delivered after a seek) are dropped as faust drops
  such messages, and it moves to the bulk's last offset;
- acknowledgement: a bulk is acknowledged once its records were applied, and then answers
  for every offset from the one after the partition's previous bulk to its last record
  (offsets without a record, e.g. compacted, included: what faust's gaps did per message).
  faust commits the longest run of acknowledged offsets after the committed one, so a bulk
  that was not acknowledged is never committed, as a message would not be;
- flow control, rebalances (a bulk of a generation that ended is dropped) and the stream's
  buffer limit (now counted in bulks).

`streams.app.consume_batches` turns a batch of such events back into their records. The
webhooks worker (streams/webhooks.py) keeps faust's message per record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.tuples import ConsumerMessage, ack_lock
from mode.utils.futures import notify

from streams.eager import EagerConsumer


class BulkConsumer(EagerConsumer):
    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, ConsumerMessage]]:
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            self.log.dev("getmany called while flow not active. Seek back to committed offsets.")
            try:
                await self.perform_seek()
            except Exception as exc:
                self.log.warning(f"exception performing seek when flow not active {exc}")
            return
        read_offset = self._read_offset
        for tp, records_of_tp in records.items():
            if not self.flow_active or self.app.consumer_generation_id != generation_id:
                break
            if not (
                active_partitions is None
                or tp in active_partitions
                or tp in self._buffered_partitions
            ):
                continue
            start = read_offset.get(tp)
            fetched = records_of_tp
            if start is not None and fetched and fetched[0].offset < start:
                fetched = [record for record in fetched if record.offset >= start]
            if not fetched:
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            # the read offset is the next one to read after a seek, else the last one read
            first = fetched[0].offset if start is None else min(fetched[0].offset, start + 1)
            yield tp, self._bulk(tp, fetched, first, generation_id)

    def _bulk(self, tp: TP, fetched: Sequence[Any], first: int, generation_id: int) -> BulkMessage:
        last = fetched[-1]
        timestamp = last.timestamp / 1000.0 if last.timestamp is not None else None
        bulk = BulkMessage(
            topic=tp.topic,
            partition=tp.partition,
            offset=last.offset,
            timestamp=cast(float, timestamp),  # faust's own messages pass None alike
            timestamp_type=last.timestamp_type,
            headers=None,
            key=None,
            value=cast(bytes, list(fetched)),  # faust types a value as bytes
            checksum=None,
            tp=tp,
            generation_id=generation_id,
        )
        bulk.first_offset = first
        return bulk

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Nothing: a bulk answers for the offsets before its first record itself (faust
        would record them as a gap, which double-counts the bulk's last offset and so
        splits the run it commits)."""

    def ack(self, message: Message) -> bool:
        if not isinstance(message, BulkMessage):
            return super().ack(message)
        with ack_lock:  # as faust's own ack: one step with the other acks' bookkeeping
            if message.acked:
                return False
            message.acked = True
            self._unacked_messages.discard(message)
            try:
                if not self.app.topics.acks_enabled_for(message.topic):
                    return False
                tp = message.tp
                committed = self._committed_offset[tp]
                start = message.first_offset
                if committed is not None:
                    start = max(start, committed)
                index = self._acked_index[tp]
                offsets = [o for o in range(start, message.offset + 1) if o not in index]
                index.update(offsets)
                self._acked[tp].extend(offsets)
                self._n_acked += len(offsets)
                return bool(offsets)
            finally:
                notify(self._waiting_for_ack)


class BulkMessage(ConsumerMessage):
    """A partition's share of one fetch: `value` holds its records, `offset` is the last
    one's, and `first_offset` the first offset it answers for."""

    __slots__ = ("first_offset",)
    first_offset: int


class _Transport(faust_aiokafka.Transport):
    Consumer = BulkConsumer


def use_bulk_consumer(app: faust.App) -> None:
    """Give `app` the bulk consumer; call before the app creates topics or agents."""
    app.transport = _Transport(app.conf.broker_consumer, app)
