"""Metering: API calls counted in memory by a serving process, recorded as events.

Counting happens off the request path; a process records what it counted for an account
within an hour as one `UsageReport` (its own one-event stream, so reports from many processes
never contend). Billing is then reproducible from the event store alone.
"""

from __future__ import annotations

import enum

from eventsourcing.domain import Aggregate, event


class RouteClass(enum.StrEnum):
    """What a call is billed as."""

    INGEST = "ingest"
    COMMAND = "command"
    READ = "read"
    SEARCH = "search"
    QUERY = "query"


class UsageReport(Aggregate):
    @event("Recorded")
    def __init__(self, account_id: str, hour: str, calls: dict[str, int]) -> None:
        """`hour`: ISO-8601 start of the UTC hour; `calls`: route class -> number of calls."""
        self.account_id = account_id
        self.hour = hour
        self.calls = calls
