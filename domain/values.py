"""Rules for the small values commands carry: names, keys, emails."""

from __future__ import annotations

import re

from domain.errors import InvalidValueError

SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
RECORD_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@+=~-]{0,199}")
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,253}\.[^@\s.]{2,63}")
MAX_NAME_LENGTH = 200


def source_name(value: str, field: str = "source") -> str:
    if not SOURCE_NAME.fullmatch(value):
        raise InvalidValueError(
            field,
            "must be 1-64 chars of a-z, 0-9, '_', '.', '-' and start with a letter or digit",
        )
    return value


def record_key(value: str, field: str = "id") -> str:
    if not RECORD_KEY.fullmatch(value):
        raise InvalidValueError(
            field,
            "must be 1-200 chars of letters, digits and _ . : @ + = ~ - "
            "and start with a letter or digit",
        )
    return value


def display_name(value: str, field: str = "name") -> str:
    stripped = value.strip()
    if not stripped or len(stripped) > MAX_NAME_LENGTH:
        raise InvalidValueError(field, f"must be 1-{MAX_NAME_LENGTH} non-blank characters")
    if any(ord(ch) < 32 for ch in stripped):
        raise InvalidValueError(field, "must not contain control characters")
    return stripped


def email(value: str, field: str = "email") -> str:
    if not EMAIL.fullmatch(value):
        raise InvalidValueError(field, "must be an email address")
    return value.lower()
