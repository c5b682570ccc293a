"""Kafka: topic administration and the outbox relay (event store -> Kafka)."""
