"""Working-day calendar for case deadlines: chinesecalendar + administrator overrides (see engine.py)."""

from .engine import (
    DEFAULT_HOURS,
    MAX_SCAN_DAYS,
    MAX_SPAN_DAYS,
    DayOverride,
    WorkingCalendar,
    WorkingHours,
)

__all__ = [
    "DEFAULT_HOURS",
    "MAX_SCAN_DAYS",
    "MAX_SPAN_DAYS",
    "DayOverride",
    "WorkingCalendar",
    "WorkingHours",
]
