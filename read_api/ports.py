"""What the read side needs besides the document read models: the event store's history of
a stream, and the analytics store's queries and usage."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal, Protocol, runtime_checkable
from uuid import UUID

from read_api.querylang import CompiledQuery
from schemas.events import ProjectedEvent
from schemas.query import UsageRow


@runtime_checkable
class EventHistory(Protocol):
    async def history(self, stream_id: UUID) -> Sequence[ProjectedEvent]:
        """Every event of a stream, oldest first, with global positions."""
        ...

    async def head(self) -> int:
        """Position of the newest event in the store."""
        ...


class QueryLimitError(Exception):
    """A query hit one of its ClickHouse limits (rows, execution time, memory)."""

    def __init__(self, limit: str, value: Any) -> None:
        super().__init__(
            f"the query exceeded {limit} = {value}; narrow it (filters, a shorter time range, "
            "fewer or coarser groups) and retry"
        )
        self.details = [{"limit": limit, "value": value}]


@runtime_checkable
class AnalyticsReader(Protocol):
    async def run(self, query: CompiledQuery) -> list[tuple[Any, ...]]:
        """The rows of a compiled query over the active generation's records; raises
        QueryLimitError when a limit of the query's settings is hit."""
        ...

    async def watermark(self, slots: Sequence[int]) -> int:
        """The position up to which every feed slot has been applied."""
        ...


@runtime_checkable
class UsageReader(Protocol):
    """Metered usage per account, what billing computes invoices from."""

    async def usage(
        self,
        account_id: str,
        start: datetime,
        end: datetime,
        granularity: Literal["hour", "day", "month"],
    ) -> list[UsageRow]:
        """Usage per period in [start, end), oldest first; periods without usage left out."""
        ...

    async def month_total(self, account_id: str, month: date) -> UsageRow:
        """Usage over the calendar month (UTC) containing `month`."""
        ...
