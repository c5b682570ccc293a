"""infra.heap.settle: start-up's survivors leave the collector's walks; its garbage does not
stay behind frozen."""

from __future__ import annotations

import gc
import weakref

from infra import heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_settle_collects_garbage_then_freezes_the_survivors() -> None:
    kept = _Node()
    garbage = _Node()
    gone = weakref.ref(garbage)
    del garbage
    try:
        heap.settle()
        assert gone() is None  # collected first, not frozen with the rest
        assert gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects())  # frozen: out of every walk
    finally:
        gc.unfreeze()
    assert any(o is kept for o in gc.get_objects())
