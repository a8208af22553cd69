"""Working-day and working-hour arithmetic for case deadlines .

Pure module: no Flask, no SQLAlchemy. The web layer loads the administrator's holiday table, builds
`DayOverride` rows and a `WorkingCalendar`, and converts to and from the scheme's time zone.

Which days are working days, in order of precedence:

1. An override (administrator-edited table): `working=True` is a makeup workday , `working=False`
   a holiday. Overrides beat chinesecalendar. If the table lists the same date twice, the later row wins.
2. chinesecalendar (`use_builtin=True`), which knows 2004–2026 in version 1.11 and raises
   NotImplementedError for every other year, before 2004 included.
3. Otherwise Monday–Friday. This fallback never raises.

A year is "known" when chinesecalendar supports it or the administrator marked it complete (`complete_years`:
the State Council's notice for that year entered in full, usually by `fangan calendar import`). A few rows
entered by hand do not make a year known: its other days still fall back to Monday–Friday, with the warning.
`knows(day)` and `unknown_years(first, last)` tell pages when to warn that a result relied on the plain
Monday–Friday fallback, e.g. `cal.unknown_years(start.date(), deadline.date())`.

Times:

* Datetimes are naive local wall-clock time in the scheme's time zone; aware datetimes raise ValueError.
* Each working day has one working period `[hours.start, hours.end)`, 09:00–17:30 (8.5 h) by default.
  `hours_per_day` is its length. There is no lunch break.
* Counting starts at the first working moment at or after `start`: a time before the period on a working day
  moves to that day's start; a time at or after the period's end, or on a non-working day, moves to the next
  working day's start. So Sat 11:00 + 1 working day = Mon 09:00 + 8.5 h = Mon 17:30.
* `add_working_days(start, n)` is exactly `add_working_hours(start, n * hours_per_day)`: Wed 10:00 + 1 day =
  Thu 10:00; fractional days are allowed (0.5 day = 4.25 h by default). A deadline that exactly uses up a
  working period lands at that period's end (17:30), not at the next day's 09:00. Adding 0 returns the
  clamped start.
* Precision is whole seconds: `start` loses its microseconds, the amount is rounded to the nearest second,
  so every result from the add methods has microsecond 0. The between methods measure exactly.
* `working_hours_between(a, b)` is the working time inside `[a, b]`; negative when `b < a`. Non-working time
  is simply not counted, so `working_hours_between(s, add_working_hours(s, h)) == h` (to the second).
  `working_days_between` divides it by `hours_per_day`.
* Negative, NaN or infinite amounts raise ValueError. An addition that would scan more than `MAX_SCAN_DAYS`
  calendar days (about ten years), and a between / working_days_in span longer than `MAX_SPAN_DAYS`, raise
  ValueError instead of running for a long time.

`day_name(day)` gives the override's name, else chinesecalendar's holiday name in Chinese .
chinesecalendar also names makeup workdays after their holiday (Sun 20 Sep 2026 carries the National Day name),
so combine it with `is_working_day` when showing it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cache
from types import ModuleType

from ..core.cache import memoize

_cc: ModuleType | None
try:
    import chinese_calendar as _cc
except ImportError:  # pragma: no cover - declared dependency; degrade to Monday–Friday rather than fail to import
    _cc = None

MAX_SCAN_DAYS = 3660
MAX_SPAN_DAYS = 36600

_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class DayOverride:
    """One row of the administrator's table: a makeup workday (working=True) or a holiday (working=False)."""

    day: date
    working: bool
    name: str = ""

    def __post_init__(self) -> None:
        # datetime is a date subclass but never equals a date in dict lookups, so store the plain date
        if isinstance(self.day, datetime):
            object.__setattr__(self, "day", self.day.date())
        elif not isinstance(self.day, date):
            raise TypeError(f"DayOverride.day must be a date, got {type(self.day).__name__}")


@dataclass(frozen=True)
class WorkingHours:
    """The single working period of each working day; its length is one working day."""

    start: time = time(9, 0)
    end: time = time(17, 30)

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            if not isinstance(value, time):
                raise TypeError(f"working hours must be datetime.time values, got {type(value).__name__}")
            if value.tzinfo is not None:
                raise ValueError("working hours must be naive local times")
            if value.microsecond:
                # results promise whole seconds; a fractional period boundary would break that
                raise ValueError("working hours must be whole seconds")
        if not self.start < self.end:
            raise ValueError(f"working hours start {self.start} must be before end {self.end}")

    @property
    def seconds(self) -> int:
        """Length of the working period in seconds."""
        return _seconds_of(self.end) - _seconds_of(self.start)


DEFAULT_HOURS = WorkingHours()


def _seconds_of(value: time) -> int:
    """Seconds since midnight of a naive time."""
    return value.hour * 3600 + value.minute * 60 + value.second


@memoize(256)  # years come from data; chinesecalendar's answer for one never changes
def _builtin_knows_year(year: int) -> bool:
    """Whether chinesecalendar has data for the year (it raises NotImplementedError otherwise)."""
    if _cc is None:
        return False
    try:
        _cc.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


def _builtin_detail(day: date) -> tuple[bool, str | None]:
    """chinesecalendar's (is_holiday, English name), as get_holiday_detail() computes it.

    Reads the library's exported `workdays` / `holidays` tables directly: get_holiday_detail() rescans the whole
    table on every call (~35 µs), which made a cold 300-working-day deadline cost ~20 ms.
    """
    if _cc is None:  # pragma: no cover - callers check _builtin_knows_year() first
        return day.weekday() > 4, None
    name = _cc.workdays.get(day)
    if name is not None:
        return False, name
    name = _cc.holidays.get(day)
    if name is not None:
        return True, name
    return day.weekday() > 4, None


@cache
def _chinese_name(english: str) -> str:
    """Chinese name of a chinesecalendar holiday, or the English one if the enum does not list it."""
    if _cc is None:  # pragma: no cover - names only come from chinesecalendar
        return english
    try:
        return str(_cc.Holiday(english).chinese)
    except ValueError:
        return english


def _as_date(value: date) -> date:
    """Plain date from a date or datetime argument."""
    if isinstance(value, datetime):
        return value.date()
    if not isinstance(value, date):
        raise TypeError(f"expected a date, got {type(value).__name__}")
    return value


def _as_moment(value: datetime) -> datetime:
    """Check a datetime argument is naive local time."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is not None:
        raise ValueError("datetimes must be naive local time in the scheme's time zone")
    return value


def _amount_seconds(amount: float, unit_seconds: float) -> int:
    """Validate a non-negative finite amount and convert it to whole seconds."""
    value = float(amount)
    if not math.isfinite(value):
        raise ValueError(f"amount must be finite, got {amount!r}")
    if value < 0:
        raise ValueError(f"amount must not be negative, got {amount!r}")
    return round(value * unit_seconds)


def _next_day(day: date) -> date:
    """The following calendar day; ValueError instead of OverflowError at the end of the calendar."""
    if day == date.max:
        raise ValueError("date out of range")
    return day + _ONE_DAY


def _previous_day(day: date) -> date:
    if day == date.min:
        raise ValueError("date out of range")
    return day - _ONE_DAY


class WorkingCalendar:
    """Working days (chinesecalendar + administrator overrides + Monday–Friday fallback) and working hours."""

    def __init__(
        self,
        overrides: Iterable[DayOverride] = (),
        hours: WorkingHours = DEFAULT_HOURS,
        use_builtin: bool = True,
        complete_years: Iterable[int] = (),
    ) -> None:
        if not isinstance(hours, WorkingHours):
            raise TypeError("hours must be a WorkingHours")
        self._overrides: dict[date, DayOverride] = {}
        for override in overrides:
            if not isinstance(override, DayOverride):
                raise TypeError(f"overrides must be DayOverride values, got {type(override).__name__}")
            self._overrides[override.day] = override
        self._complete_years = frozenset(int(year) for year in complete_years)
        self.hours = hours
        self.use_builtin = use_builtin
        self._day_seconds = hours.seconds

    @property
    def hours_per_day(self) -> float:
        """Length of one working day in hours (8.5 by default)."""
        return self._day_seconds / 3600

    @property
    def complete_years(self) -> frozenset[int]:
        """Years the administrator marked complete."""
        return self._complete_years

    @property
    def overrides(self) -> tuple[DayOverride, ...]:
        """The effective overrides, sorted by day."""
        return tuple(self._overrides[day] for day in sorted(self._overrides))

    def _builtin(self, year: int) -> bool:
        """Whether chinesecalendar is used and knows the year."""
        return self.use_builtin and _builtin_knows_year(year)

    def is_working_day(self, day: date) -> bool:
        """Whether the day is a working day: override, else chinesecalendar, else Monday–Friday."""
        day = _as_date(day)
        override = self._overrides.get(day)
        if override is not None:
            return bool(override.working)
        if self._builtin(day.year):
            return not _builtin_detail(day)[0]
        return day.weekday() < 5

    def knows(self, day: date) -> bool:
        """False when the day's year is covered by neither source, i.e. the Monday–Friday fallback applies."""
        year = _as_date(day).year
        return year in self._complete_years or self._builtin(year)

    def unknown_years(self, start: date, end: date) -> list[int]:
        """Years in [start, end] that neither source knows (empty when end < start), for warnings."""
        first, last = _as_date(start).year, _as_date(end).year
        return [year for year in range(first, last + 1) if year not in self._complete_years and not self._builtin(year)]

    def day_name(self, day: date) -> str | None:
        """Holiday name from the override, else chinesecalendar's Chinese name; None for ordinary days."""
        day = _as_date(day)
        override = self._overrides.get(day)
        if override is not None:
            # the administrator's row describes the day entirely, even with an empty name
            return override.name or None
        if self._builtin(day.year):
            name = _builtin_detail(day)[1]
            return _chinese_name(name) if name else None
        return None

    def _period(self, day: date) -> tuple[datetime, datetime]:
        """Start and end of the day's working period."""
        return datetime.combine(day, self.hours.start), datetime.combine(day, self.hours.end)

    def _next_working_day(self, day: date) -> date:
        """First working day strictly after the day, scanning at most MAX_SCAN_DAYS days."""
        for _ in range(MAX_SCAN_DAYS):
            day = _next_day(day)
            if self.is_working_day(day):
                return day
        raise ValueError(f"no working day within {MAX_SCAN_DAYS} days after {day}")

    def next_working_moment(self, moment: datetime) -> datetime:
        """First working moment at or after `moment` (microseconds dropped): where counting starts."""
        moment = _as_moment(moment).replace(microsecond=0)
        day = moment.date()
        if self.is_working_day(day):
            start, end = self._period(day)
            if moment < start:
                return start
            if moment < end:
                return moment
        return self._period(self._next_working_day(day))[0]

    def _add_seconds(self, start: datetime, seconds: int) -> datetime:
        """Move forward by whole seconds of working time, skipping whole days at once."""
        moment = self.next_working_moment(start)
        day = moment.date()
        available = int((self._period(day)[1] - moment).total_seconds())
        if seconds <= available:
            return moment + timedelta(seconds=seconds)
        remaining = seconds - available
        # one dictionary lookup per calendar day: fast enough for years of working days
        for _ in range(MAX_SCAN_DAYS):
            day = _next_day(day)
            if not self.is_working_day(day):
                continue
            if remaining <= self._day_seconds:
                return self._period(day)[0] + timedelta(seconds=remaining)
            remaining -= self._day_seconds
        raise ValueError(f"deadline lies more than {MAX_SCAN_DAYS} calendar days after {start}")

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment `hours` of working time after `start` (clamped forward to working time first)."""
        return self._add_seconds(start, _amount_seconds(hours, 3600))

    def earliest_start(self, end: datetime, hours: float) -> datetime:
        """The earliest moment from which `hours` of working time reach `end`: `add_working_hours(t, hours) >=
        end` from it on (for an `end` inside working time, as deadlines are). When a due-soon warning falls due."""
        remaining = _amount_seconds(hours, 3600)
        end = _as_moment(end).replace(microsecond=0)
        day = end.date()
        start, close = self._period(day)
        if not self.is_working_day(day) or end <= start:  # before the day's work: the last working period's end
            day = self._previous_working_day(day)
            start, close = self._period(day)
        moment = min(end, close)
        for _ in range(MAX_SCAN_DAYS):
            available = int((moment - start).total_seconds())
            if remaining < available:
                return moment - timedelta(seconds=remaining)
            # Working time reached back to the period's start: from the previous period's end on, adding
            # `hours` also lands here (adding starts at the next working moment).
            remaining -= available
            day = self._previous_working_day(day)
            start, moment = self._period(day)
        raise ValueError(f"more than {MAX_SCAN_DAYS} calendar days before {end}")

    def _previous_working_day(self, day: date) -> date:
        for _ in range(MAX_SCAN_DAYS):
            day = _previous_day(day)
            if self.is_working_day(day):
                return day
        raise ValueError(f"no working day within {MAX_SCAN_DAYS} days before {day}")

    def add_working_days(self, start: datetime, days: float) -> datetime:
        """The moment `days` working days after `start`; one working day = hours_per_day of working time."""
        return self._add_seconds(start, _amount_seconds(days, self._day_seconds))

    def working_hours_between(self, start: datetime, end: datetime) -> float:
        """Working hours inside [start, end]; negative if end < start."""
        start, end = _as_moment(start), _as_moment(end)
        if end < start:
            return -self.working_hours_between(end, start)
        first, last = start.date(), end.date()
        if (last - first).days > MAX_SPAN_DAYS:
            raise ValueError(f"span longer than {MAX_SPAN_DAYS} days")
        total = timedelta()
        day = first
        while True:
            if self.is_working_day(day):
                period_start, period_end = self._period(day)
                low, high = max(start, period_start), min(end, period_end)
                if high > low:
                    total += high - low
            if day >= last:
                break
            day = _next_day(day)
        return total.total_seconds() / 3600

    def working_days_between(self, start: datetime, end: datetime) -> float:
        """Working days inside [start, end] (working hours / hours_per_day); negative if end < start."""
        return self.working_hours_between(start, end) / self.hours_per_day

    def working_days_in(self, first: date, last: date) -> list[date]:
        """Working days from first to last inclusive (empty when last < first)."""
        first, last = _as_date(first), _as_date(last)
        if last < first:
            return []
        if (last - first).days > MAX_SPAN_DAYS:
            raise ValueError(f"span longer than {MAX_SPAN_DAYS} days")
        days = []
        day = first
        while True:
            if self.is_working_day(day):
                days.append(day)
            if day >= last:
                return days
            day = _next_day(day)
