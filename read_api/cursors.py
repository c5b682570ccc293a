"""Opaque page cursors: clients pass them back verbatim; tampered ones are a 400."""

from __future__ import annotations

import base64
from typing import Any

import msgspec

from read_api.consistency import InvalidQueryError


def encode_cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(position)).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    if cursor is None or cursor == "":
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return msgspec.json.decode(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, msgspec.DecodeError):
        raise InvalidQueryError("cursor is not one this API returned") from None
