"""The event store: eventsourcing's recorders (SQLite or PostgreSQL) behind Strata's ports."""
