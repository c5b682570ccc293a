"""Search index adapters: Elasticsearch (distributed) and SQLite FTS5 (embedded)."""
