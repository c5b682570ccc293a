"""Idempotency-Key handling shared by every POST of the command API."""

from __future__ import annotations

import hashlib
import re

IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


class IdempotencyKeyReusedError(Exception):
    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was already used with a different request; use a new key"
        )


class InvalidIdempotencyKeyError(Exception):
    def __init__(self) -> None:
        super().__init__("Idempotency-Key must be 1-255 printable ASCII characters without spaces")


def checked_key(value: str) -> str:
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidIdempotencyKeyError
    return value


def fingerprint(*parts: bytes | str) -> bytes:
    """A digest of everything that makes two requests 'the same request'."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.digest()
