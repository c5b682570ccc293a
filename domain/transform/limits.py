"""The bounds every transform runs within. Exceeding one at run time is a per-record error."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    max_steps: int = 50
    max_expression_depth: int = 20
    """Nesting of one expression: a literal or a field is depth 1."""
    max_expression_nodes: int = 200
    """Literals, fields and calls in one expression."""
    max_document_bytes: int = 64 * 1024
    """A whole transform document, as compact JSON."""
    max_document_depth: int = 64
    max_literal_chars: int = 4096
    """A string literal in an expression."""
    max_record_bytes: int = 1024 * 1024
    """A record going in and coming out, as compact JSON (escapes not counted)."""
    max_record_depth: int = 64
    """Nesting of objects and arrays within a record going in and coming out."""
    max_string_length: int = 64 * 1024
    """Characters of any string (or object key) a step produces."""
    max_path_segments: int = 32
    max_path_chars: int = 512
    max_format_chars: int = 100
    """A timestamp format (`%Y-%m-%d ...`)."""


DEFAULT_LIMITS = Limits()
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
