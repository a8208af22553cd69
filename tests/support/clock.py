"""The suite's clock: every test runs at one instant chosen here, never the machine's date.

`FANGAN_TEST_NOW` (ISO 8601 with offset) picks the instant; by default a Friday in late November 2026. The
whole process travels there with time-machine before collection, and the clock then runs on (`tick`), so
every `datetime.now()`, `date.today()` and `time.time()` — in tests, services and the live server thread —
reads the same day. Tests build their dates from `NOW` and `TODAY` (the district's date in Beijing), so
`make test` can run the date-dependent ones again at awkward instants: the first working day of a year the
built-in calendar does not know, and 00:30 on the 1st in Beijing, when the UTC date is still the previous
month's last day.
"""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

ZONE = ZoneInfo("Asia/Shanghai")
DEFAULT_NOW = "2026-11-20T10:00:00+08:00"

NOW: dt.datetime = dt.datetime.fromisoformat(os.environ.get("FANGAN_TEST_NOW") or DEFAULT_NOW).astimezone(dt.UTC)
"""The instant the suite starts at, aware UTC."""

TODAY: dt.date = NOW.astimezone(ZONE).date()
"""The district's date at NOW (Beijing)."""


def month_start(day: dt.date, months: int = 0) -> dt.date:
    """The first day of `day`'s month, moved by `months` (negative: earlier)."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_end(day: dt.date) -> dt.date:
    """The last day of `day`'s month."""
    return month_start(day, 1) - dt.timedelta(days=1)


def month_key(day: dt.date) -> str:
    return f"{day:%Y-%m}"


def local(day: dt.date, hour: int = 10, minute: int = 0) -> dt.datetime:
    """An aware instant on a district day."""
    return dt.datetime.combine(day, dt.time(hour, minute), ZONE)
