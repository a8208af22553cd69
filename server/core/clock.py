"""The one reading of the wall clock. Everything that needs "now" calls `utcnow()`; the district's own
"today" and "now" come from `server.definitions.clock`, which converts this instant into the scheme's zone.

Tests freeze this instant with time-machine (see tests/conftest.py) rather than patching call sites.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

DEFAULT_ZONE = "Asia/Shanghai"


def utcnow() -> dt.datetime:
    """The current instant, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def zone_named(name: str | None) -> ZoneInfo:
    """A time zone by IANA name; the schemes' default when none is given."""
    return ZoneInfo(name or DEFAULT_ZONE)
