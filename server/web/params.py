"""Parsing of ids and dates from query strings and forms: bad or absurd values become None, never a 500."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import urlsplit

from flask import url_for
from werkzeug.routing import IntegerConverter

T = TypeVar("T")
MAX_ID = 2**31 - 1  # the largest id a PostgreSQL integer column holds
EARLIEST, LATEST = dt.date(2000, 1, 1), dt.date(2100, 12, 31)


def parse_id(value: str | None) -> int | None:
    if not value or not value.isascii() or not value.isdigit() or len(value) > 10:
        return None
    number = int(value)
    return number if 0 < number <= MAX_ID else None


def parse_date(value: str | None) -> dt.date | None:
    try:
        day = dt.date.fromisoformat((value or "").strip())
    except ValueError:
        return None
    return day if EARLIEST <= day <= LATEST else None


def parse_search(value: str | None, limit: int = 100) -> str:
    """Words to find by name: printable characters only, trimmed, at most `limit`."""
    return "".join(c for c in (value or "") if c.isprintable()).strip()[:limit]


def by_name(rows: list[T], q: str, name_of: Callable[[T], object]) -> list[T]:
    """The rows whose name (in any language of a definition text) contains `q`, case aside; all without `q`."""
    from .i18n import tr

    if not q:
        return rows
    wanted = q.casefold()
    return [r for r in rows if wanted in str(tr(name_of(r)) or "").casefold()]


class IdConverter(IntegerConverter):
    """`<int:…>` in routes, bounded so that an absurd id is a 404 instead of an overflow."""

    def __init__(self, map, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, A002
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def safe_next(target: str | None) -> str:
    """Only a same-site path: never an open redirect (browsers drop tabs and newlines, so refuse them too)."""
    if (not target or any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in target) or "\\" in target
            or not target.startswith("/") or target.startswith("//")):
        return url_for("home.index")
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else url_for("home.index")


@dataclass(frozen=True)
class Paged(Generic[T]):
    """One page of a list already worked out (a page past the end shows the last one)."""

    rows: list[T]
    page: int
    pages: int
    total: int

    @classmethod
    def of(cls, items: list[T], page: int | None, per_page: int) -> Paged[T]:
        pages = max(1, -(-len(items) // per_page))
        page = min(max(page or 1, 1), pages)
        return cls(items[(page - 1) * per_page:page * per_page], page, pages, len(items))


def parse_coordinate(text: str | None, limit: float) -> float | None:
    """A latitude (limit 90) or longitude (limit 180) from a query, or None for anything else."""
    try:
        value = float((text or "").strip()[:32])
    except ValueError:
        return None
    return value if math.isfinite(value) and -limit <= value <= limit else None
