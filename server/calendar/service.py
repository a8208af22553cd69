"""The administrator's calendar: the table of holidays and makeup workdays, years marked complete, and the
import of a whole year from the State Council's notice (a table or an iCalendar file, docs/calendar.md).

When the table changes, `calendar_changed` is sent with the calendar as it was: the workflow package listens
and moves the running deadlines of open cases (stopped ones keep theirs).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from blinker import Namespace
from flask_babel import gettext as _

from ..audit.service import record_audit
from ..auth import permissions
from ..core.clock import utcnow
from ..core.errors import PermissionDenied
from ..extensions import db
from .engine import DEFAULT_HOURS, DayOverride, WorkingCalendar, WorkingHours
from .importer import CalendarTable, RowError, read_calendar
from .models import CalendarDay, CalendarYear

if TYPE_CHECKING:
    from ..auth.models import AnyUser

signals = Namespace()
calendar_changed = signals.signal("calendar-changed")
"""Sent after the table changed, with `before`: the (overrides, complete years) in force until then."""


def calendar_state() -> tuple[list[DayOverride], set[int]]:
    """The table's rows and the years marked complete."""
    overrides = [DayOverride(row.day, row.working, row.name) for row in db.session.scalars(db.select(CalendarDay))]
    years = set(db.session.scalars(db.select(CalendarYear.year).where(CalendarYear.complete.is_(True))))
    return overrides, years


def calendar_for(scheme_key: str) -> WorkingCalendar:
    """The working calendar in force, with the scheme's working hours."""
    return load_calendar(hours_of(scheme_key))


def hours_of(scheme_key: str) -> WorkingHours:
    """The scheme's working hours (`calendar.workday_start` and `workday_end`), 09:00 to 17:30 by default."""
    from ..definitions.compiled import DEFAULT_CALENDAR
    from ..definitions.service import scheme_in_force

    scheme = scheme_in_force(scheme_key)
    hours = scheme.calendar if scheme else DEFAULT_CALENDAR
    return WorkingHours(hours.workday_start, hours.workday_end)


def load_calendar(hours: WorkingHours = DEFAULT_HOURS) -> WorkingCalendar:
    """The working calendar in force: chinesecalendar, the administrator's table and the complete years."""
    overrides, years = calendar_state()
    return WorkingCalendar(overrides, hours, complete_years=years)


@dataclass
class YearChange:
    """What importing a file does to one year of the table."""

    year: int
    added: list[DayOverride]
    changed: list[tuple[DayOverride, DayOverride]]  # (before, after)
    removed: list[DayOverride]
    holidays: int
    workdays: int
    was_complete: bool


@dataclass
class CalendarImport:
    table: CalendarTable
    years: list[YearChange]
    moved_cases: int = 0

    @property
    def errors(self) -> list[RowError]:
        return self.table.errors

    @property
    def ok(self) -> bool:
        return not self.table.errors


def preview_calendar_import(user: AnyUser, data: bytes, filename: str) -> CalendarImport:
    """Read a file and say, year by year, what it would change; nothing is stored. `user` None: the CLI."""
    if user is not None and not permissions.can_edit_calendar(user):
        raise PermissionDenied(_("Only administrators change the calendar."))
    table = read_calendar(data, filename)
    overrides, complete = calendar_state()
    current = {o.day: o for o in overrides}
    years = []
    for year in table.years:
        new = {d: o for d, o in table.days.items() if d.year == year}
        old = {d: o for d, o in current.items() if d.year == year}
        years.append(YearChange(
            year=year,
            added=[new[d] for d in sorted(set(new) - set(old))],
            changed=[(old[d], new[d]) for d in sorted(set(new) & set(old))
                     if (old[d].working, old[d].name) != (new[d].working, new[d].name)],
            removed=[old[d] for d in sorted(set(old) - set(new))],
            holidays=sum(1 for o in new.values() if not o.working), workdays=sum(1 for o in new.values() if o.working),
            was_complete=year in complete))
    return CalendarImport(table, years)


def import_calendar(user: AnyUser, data: bytes, filename: str) -> CalendarImport:
    """Replace each year the file covers with the file's rows, mark those years complete, and move the running
    deadlines of open cases to the new calendar. Nothing is stored when the file has an error."""
    result = preview_calendar_import(user, data, filename)
    if not result.ok:
        return result
    before = calendar_state()
    for change in result.years:
        for old in change.removed:
            db.session.delete(db.session.get(CalendarDay, old.day))
        for new in result.table.overrides():
            if new.day.year != change.year:
                continue
            row = db.session.get(CalendarDay, new.day) or CalendarDay(day=new.day)
            row.working, row.name = new.working, new.name
            db.session.add(row)
        year = db.session.get(CalendarYear, change.year) or CalendarYear(year=change.year)
        year.complete, year.source, year.updated_at = True, (filename or "")[:200], utcnow()
        db.session.add(year)
        record_audit("calendar.import", "calendar_year", str(change.year), user=user,
                     after={"holidays": change.holidays, "workdays": change.workdays, "added": len(change.added),
                            "changed": len(change.changed), "removed": len(change.removed),
                            "file": (filename or "")[:200]})
    db.session.flush()
    result.moved_cases = notify_calendar_changed(before)
    return result


def set_year_complete(user: AnyUser, year: int, complete: bool) -> CalendarYear:
    """Mark a year of the table complete (its warning goes) or not."""
    if user is not None and not permissions.can_edit_calendar(user):
        raise PermissionDenied(_("Only administrators change the calendar."))
    before = calendar_state()
    row = db.session.get(CalendarYear, year) or CalendarYear(year=year)
    row.complete, row.updated_at = complete, utcnow()
    db.session.add(row)
    db.session.flush()
    record_audit("calendar.year", "calendar_year", str(year), user=user, after={"complete": complete})
    notify_calendar_changed(before)
    return row


def set_calendar_day(user: AnyUser, day: dt.date, working: bool, name: str = "") -> CalendarDay:
    """Enter one holiday or makeup workday by hand; open cases' deadlines follow."""
    if user is not None and not permissions.can_edit_calendar(user):
        raise PermissionDenied(_("Only administrators change the calendar."))
    before = calendar_state()
    row = db.session.get(CalendarDay, day) or CalendarDay(day=day)
    row.working, row.name = working, name.strip()[:100]
    db.session.add(row)
    db.session.flush()
    record_audit("calendar.set", "calendar_day", day.isoformat(), user=user,
                 after={"working": row.working, "name": row.name})
    notify_calendar_changed(before)
    return row


def delete_calendar_day(user: AnyUser, day: dt.date) -> None:
    """Remove one row of the table; open cases' deadlines follow."""
    if user is not None and not permissions.can_edit_calendar(user):
        raise PermissionDenied(_("Only administrators change the calendar."))
    row = db.session.get(CalendarDay, day)
    if row is None:
        return
    before = calendar_state()
    db.session.delete(row)
    db.session.flush()
    record_audit("calendar.delete", "calendar_day", day.isoformat(), user=user)
    notify_calendar_changed(before)


def calendar_rows() -> list[CalendarDay]:
    return list(db.session.scalars(db.select(CalendarDay).order_by(CalendarDay.day.desc())))


@dataclass
class YearRow:
    year: int
    holidays: int
    workdays: int
    complete: bool
    builtin: bool  # chinesecalendar knows it


def calendar_years(today: dt.date) -> list[YearRow]:
    """Each year of the table, plus this year and the next, with whether the calendar knows it in full."""
    overrides, complete = calendar_state()
    builtin = WorkingCalendar()
    years = sorted({o.day.year for o in overrides} | complete | {today.year, today.year + 1}, reverse=True)
    return [YearRow(year, sum(1 for o in overrides if o.day.year == year and not o.working),
                    sum(1 for o in overrides if o.day.year == year and o.working), year in complete,
                    builtin.knows(dt.date(year, 1, 1))) for year in years]


def notify_calendar_changed(before: tuple[list[DayOverride], set[int]]) -> int:
    """Tell the listeners (open cases' deadlines) the table changed; returns how many cases they moved."""
    return sum(int(moved or 0) for _receiver, moved in calendar_changed.send(None, before=before))


def unknown_years_ahead(today: dt.date) -> list[int]:
    """This year and the next, where neither chinesecalendar nor a complete year of the table knows them."""
    return load_calendar().unknown_years(today, today.replace(month=1, day=1).replace(year=today.year + 1))
