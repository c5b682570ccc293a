"""Document read-model stores: Redis (distributed) and SQLite (embedded)."""
