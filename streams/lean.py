"""faust's per-message work that a Strata worker has no use for, taken out through faust's
extension points.

- `RawSchema`: keys and values stay the bytes on the wire. faust's default schema passes
  each through its serializer registry to arrive at the same bytes (the "raw" codec).
- `QuietMonitor`: faust's default sensor without its per-message bookkeeping (timestamps,
  counters and per-stream timings for faust's web views, which a worker does not serve:
  `web_enabled=False`). Offsets it tracks for faust itself (commits, end offsets) stay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust
from faust.sensors import Monitor
from faust.types import TP, AppT, EventT, Message, StreamT
from faust.types.codecs import CodecArg


class RawSchema(faust.Schema[bytes, bytes]):
    def __init__(self) -> None:
        super().__init__(key_type=bytes, value_type=bytes)

    def loads_key(
        self,
        app: AppT,
        message: Message,
        *,
        loads: Callable[..., Any] | None = None,
        serializer: CodecArg | None = None,
    ) -> Any:
        return message.key

    def loads_value(
        self,
        app: AppT,
        message: Message,
        *,
        loads: Callable[..., Any] | None = None,
        serializer: CodecArg | None = None,
    ) -> Any:
        return message.value


class QuietMonitor(Monitor):
    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        return None

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT[Any], event: EventT[Any]
    ) -> dict[str, Any] | None:
        return None

    def on_stream_event_out(
        self,
        tp: TP,
        offset: int,
        stream: StreamT[Any],
        event: EventT[Any],
        state: dict[str, Any] | None = None,
    ) -> None:
        return None

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        return None
