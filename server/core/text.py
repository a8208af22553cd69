"""Free text as people type it, made safe to store: no control characters but line breaks and tabs (PostgreSQL
refuses a NUL in a string, and no page or export wants the others)."""

from __future__ import annotations


def clean_text(value: str | None, limit: int) -> str:
    """`value` without control characters (line breaks and tabs kept), trimmed, at most `limit` characters."""
    return "".join(c for c in (value or "") if c.isprintable() or c in "\n\t").strip()[:limit]
