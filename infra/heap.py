"""The garbage collector, tuned for long-running processes.

CPython's cyclic collector walks every tracked object of the oldest generation on each full
collection: in a stream worker or an API process that is the ~170,000 objects start-up
leaves (modules, classes, the app), 100-130 ms a pass, while the requests and events that
trigger it leave almost nothing behind. Measured in `bench/pipeline.py` at 2,000 events/s:
full collections were 10 % of the Faust worker's CPU and 9-10 % of the read API's (all
collections 16 % and 13 %); docs/adr/0012-frozen-start-up-heap.md.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect what start-up left, then freeze the survivors (`gc.freeze`): full collections
    then only walk what was allocated since. Call once, when the process is set up."""
    gc.collect()
    gc.freeze()
