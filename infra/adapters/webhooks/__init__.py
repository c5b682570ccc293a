"""Webhook delivery adapters: the HTTP sender with its SSRF-safe resolver, the URL guard used at
registration, the key ring that seals signing secrets, and the delivery stores (SQLite
embedded, Redis distributed)."""
