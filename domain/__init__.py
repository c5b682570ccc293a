"""Strata's domain model: aggregates, their events and rules. No I/O, no frameworks."""
