"""Patrol rules as plain data: calendar-aligned periods, counting days and what each subject owes.

Pure module: no Flask, no SQLAlchemy. The service turns a rule and a date range into counting days
(`counting_days`), has the database count records per subject and period, and asks `owed` and `verdict`
what the numbers mean.

Periods are calendar-aligned: a week runs Monday–Sunday, half-months 1–15 and 16–end, quarters start in
January, April, July and October. With `working_days_only`, non-working days are not counting days: records
made on them do not count, `day` periods skip them, and a period without any working day owes nothing.

A post held for part of a period (a chief appointed or replaced mid-period) owes its share:
`at_least × days held ÷ counting days of the period`, rounded half up. A share that rounds to 0 owes nothing,
so a chief appointed on a Sunday does not fail that week.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..org.engine import distance_m  # where a record was made is measured on the org's places

PERIODS = ("day", "week", "half_month", "month", "quarter", "half_year", "year")
_ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """A calendar-aligned span of days, both ends included."""

    per: str
    start: dt.date
    end: dt.date

    @property
    def key(self) -> str:
        """A stable, sortable name: 2026-10-05 for a day or week, 2026-10-a / -b for half-months, 2026-Q4."""
        if self.per == "half_month":
            return f"{self.start:%Y-%m}-{'a' if self.start.day == 1 else 'b'}"
        if self.per == "month":
            return f"{self.start:%Y-%m}"
        if self.per == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        if self.per == "half_year":
            return f"{self.start.year}-H{1 if self.start.month == 1 else 2}"
        if self.per == "year":
            return str(self.start.year)
        return self.start.isoformat()

    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def period_of(per: str, day: dt.date) -> Period:
    """The period of kind `per` that contains `day`."""
    if per == "day":
        return Period(per, day, day)
    if per == "week":
        start = day - dt.timedelta(days=day.weekday())
        return Period(per, start, start + dt.timedelta(days=6))
    last_day = calendar.monthrange(day.year, day.month)[1]
    if per == "half_month":
        if day.day <= 15:
            return Period(per, day.replace(day=1), day.replace(day=15))
        return Period(per, day.replace(day=16), day.replace(day=last_day))
    if per == "month":
        return Period(per, day.replace(day=1), day.replace(day=last_day))
    if per == "quarter":
        first_month = (day.month - 1) // 3 * 3 + 1
        end_month = first_month + 2
        return Period(per, dt.date(day.year, first_month, 1),
                      dt.date(day.year, end_month, calendar.monthrange(day.year, end_month)[1]))
    if per == "half_year":
        if day.month <= 6:
            return Period(per, dt.date(day.year, 1, 1), dt.date(day.year, 6, 30))
        return Period(per, dt.date(day.year, 7, 1), dt.date(day.year, 12, 31))
    if per == "year":
        return Period(per, dt.date(day.year, 1, 1), dt.date(day.year, 12, 31))
    raise ValueError(f"unknown period {per!r}")


def periods_between(per: str, first: dt.date, last: dt.date) -> list[Period]:
    """Every period of kind `per` that overlaps [first, last], whole (not clipped), in order."""
    out: list[Period] = []
    day = first
    while day <= last:
        period = period_of(per, day)
        out.append(period)
        day = period.end + _ONE_DAY
    return out


@dataclass(frozen=True)
class Rule:
    """One patrol rule of a scheme, read from its definition."""

    id: str
    name: Any
    at_least: int
    per: str
    form: str
    tiers: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    posts: tuple[str, ...] = ()
    unit_kinds: tuple[str, ...] = ()
    counted_per: str = "person"
    where: str = "any"
    focus_points: tuple[str, ...] = ()
    working_days_only: bool = False
    remind_before_end: int | None = None
    description: Any = None

    @property
    def per_unit(self) -> bool:
        return self.counted_per == "unit"


def rules_from(scheme: dict, extra_rule_lists: Iterable[list[dict]] = ()) -> list[Rule]:
    """The scheme's rules and those of its patrol-rule files, in definition order."""
    out = []
    for item in [*scheme.get("patrol_rules", []), *(r for rules in extra_rule_lists for r in rules)]:
        who = item.get("who") or {}
        out.append(Rule(
            id=item["id"], name=item.get("name"), description=item.get("description"),
            at_least=int(item["at_least"]), per=item["per"], form=item.get("form") or scheme.get("patrol_form", ""),
            tiers=tuple(who.get("tiers", ())), roles=tuple(who.get("roles", ())), posts=tuple(who.get("posts", ())),
            unit_kinds=tuple(who.get("unit_kinds", ())), counted_per=item.get("counted_per", "person"),
            where=item.get("where", "any"), focus_points=tuple(item.get("focus_points", ())),
            working_days_only=bool(item.get("working_days_only", False)),
            remind_before_end=item.get("remind_before_end")))
    return out


@dataclass(frozen=True)
class CountingDay:
    """A day on which records count, and the period it belongs to."""

    day: dt.date
    period: Period


def counting_days(rule: Rule, first: dt.date, last: dt.date,
                  is_working_day: Callable[[dt.date], bool]) -> list[CountingDay]:
    """The days of the rule's whole periods overlapping [first, last] on which records count."""
    out = []
    for period in periods_between(rule.per, first, last):
        for day in period.days():
            if not rule.working_days_only or is_working_day(day):
                out.append(CountingDay(day, period))
    return out


def owed(at_least: int, held_days: int, period_days: int) -> int:
    """What a subject owes for a period it was bound on `held_days` of its `period_days` counting days."""
    if held_days <= 0 or period_days <= 0:
        return 0
    if held_days >= period_days:
        return at_least
    return math.floor(at_least * held_days / period_days + 0.5)


@dataclass(slots=True)
class Verdict:
    """One subject's standing for one rule and period."""

    rule: Rule
    period: Period
    subject: dict[str, Any]
    count: int
    required: int
    held_days: int
    period_days: int
    remaining_days: int = 0  # counting days left after `today` (0 for a period already over)
    # What a page adds for its reader (e.g. only the posts in their reach); None until then: a month of a
    # city's verdicts would otherwise make tens of thousands of empty dicts for the collector to walk.
    extra: dict[str, Any] | None = None

    @property
    def due(self) -> bool:
        """Whether the subject owed anything in this period."""
        return self.required > 0

    @property
    def met(self) -> bool:
        return self.count >= self.required

    @property
    def short_by(self) -> int:
        return max(self.required - self.count, 0)

    def missed(self, today: dt.date) -> bool:
        """Short in a period that is over: a period still running (or still to come) is not yet due, never missed."""
        return self.period.end < today and self.due and not self.met

    def needs_reminder(self, today: dt.date) -> bool:
        """Still short, the period not over, and within the rule's reminder window (in counting days)."""
        if self.rule.remind_before_end is None or self.met or today > self.period.end or today < self.period.start:
            return False
        if self.remaining_days <= 0:
            return False  # nothing filed now could count any more (a weekend of a working-days rule)
        return self.remaining_days <= self.rule.remind_before_end


def remaining_counting_days(days: Iterable[CountingDay], period: Period, today: dt.date) -> int:
    """Counting days of `period` from `today` (included) to its end."""
    return sum(1 for d in days if d.period == period and d.day >= today)


# -- where a record was made ---------------------------------------------------------------------------

def far_from_area(geometry: dict | None, location: dict | None, limit_m: float) -> dict[str, Any] | None:
    """A flag when a location lies farther than `limit_m` from the area, allowing for the GPS accuracy."""
    if not geometry or not isinstance(location, dict) or location.get("lat") is None or location.get("lng") is None:
        return None
    distance = distance_m(geometry, float(location["lat"]), float(location["lng"]))
    if distance is None:
        return None
    # The phone's own accuracy is allowed for, but no more than the limit: a fix claiming 100 km accuracy
    # must not hide a patrol filed from the office.
    accuracy = min(float(location.get("accuracy") or 0), limit_m)
    if distance - accuracy <= limit_m:
        return None
    return {"distance_m": round(distance), "limit_m": limit_m}
