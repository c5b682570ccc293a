"""Kafka + Faust stream processors: a second runner feeding the same projections (issue 4)."""
