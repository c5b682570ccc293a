"""The data fields queries read most, which the next snapshot keeps as columns of their own.

A query over the snapshot reads a data field through `fields` (a `Dynamic` subcolumn, about
as slow as parsing per row over 10M rows) unless the snapshot holds that field's value, in
the form the query needs, as a plain column: computed once per compaction by the very
expression the query would have evaluated, so the answers are the same (ADR 9, amendment 3).
Which fields: those that at least `min_uses` queries read within the last `window` seconds,
the `max_columns` most read; and, until this process has watched queries for a whole window,
also those the latest snapshot holds (a restarted process keeps what its predecessor chose).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from read_api.querylang import FORMS, SEGMENT, Accessor, standalone

PREFIX = "hot/"
SAMPLE_ROWS = 1_000_000
LOW_CARDINALITY = 10_000
"""Below this many distinct values in the sample, a string column is LowCardinality."""


def column_name(accessor: Accessor) -> str:
    """`hot/string/customer/country`: path segments never hold a `/`."""
    return PREFIX + "/".join((accessor.form, *accessor.path))


def accessor_of(name: str) -> Accessor | None:
    if not name.startswith(PREFIX):
        return None
    form, *path = name.removeprefix(PREFIX).split("/")
    if not path or not all(SEGMENT.fullmatch(segment) for segment in path):
        return None  # not a name this module wrote: never rendered into a query
    if form not in FORMS:
        return None
    return Accessor(tuple(path), form)


def select_list(accessors: Iterable[Accessor]) -> tuple[list[str], list[str], dict[str, Any]]:
    """The column names, the expressions that compute them, and their parameters."""
    names, exprs, parameters = [], [], {}
    for i, accessor in enumerate(accessors):
        expr, bound = standalone(accessor, f"h{i}_")
        names.append(column_name(accessor))
        exprs.append(expr)
        parameters.update(bound)
    return names, exprs, parameters


def column_type(expression_type: str, distinct: int) -> str:
    """The column's type: the expression's, as LowCardinality for a string with few values."""
    if expression_type in ("String", "Nullable(String)") and distinct < LOW_CARDINALITY:
        return f"LowCardinality({expression_type})"
    return expression_type


class HotAccessors:
    """What this process's queries read, by recency and count."""

    def __init__(
        self,
        *,
        window: float = 3600.0,
        min_uses: int = 2,
        max_columns: int = 16,
        since: float | None = None,
    ) -> None:
        self.window = window
        self.min_uses = min_uses
        self.max_columns = max_columns
        self._uses: dict[Accessor, list[float]] = {}
        self.since = time.monotonic() if since is None else since
        """When this process began watching queries."""
        self.last_query: float | None = None

    def note(self, accessors: Iterable[Accessor], now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        self.last_query = moment
        for accessor in set(accessors):
            uses = self._uses.setdefault(accessor, [])
            uses.append(moment)
            if len(uses) > 4 * self.min_uses + 64:  # only the recent ones matter
                del uses[: len(uses) // 2]

    def queried(self, now: float | None = None) -> bool:
        """Whether this process served a query within the window."""
        moment = time.monotonic() if now is None else now
        return self.last_query is not None and moment - self.last_query <= self.window

    def current(self, now: float | None = None, held: Iterable[Accessor] = ()) -> list[Accessor]:
        """The accessors the next snapshot should hold, most read first, then those `held`
        by the latest snapshot while this process has watched for less than a window."""
        moment = time.monotonic() if now is None else now
        counts: dict[Accessor, int] = {}
        for accessor, uses in list(self._uses.items()):
            recent = [u for u in uses if moment - u <= self.window]
            if recent:
                self._uses[accessor] = recent
                counts[accessor] = len(recent)
            else:
                del self._uses[accessor]
        ranked = sorted(
            (a for a, n in counts.items() if n >= self.min_uses),
            key=lambda a: (-counts[a], a.form, a.path),
        )
        if moment - self.since < self.window:
            ranked += sorted((a for a in held if a not in ranked), key=lambda a: (a.form, a.path))
        return ranked[: self.max_columns]
