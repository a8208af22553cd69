"""Case deadlines in working time: the calendar in force with the scheme's hours, starting, extending,
stopping and pausing a deadline, and moving open deadlines when the calendar changes."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _

from ..audit.service import record_audit
from ..calendar import DayOverride, WorkingCalendar
from ..calendar.service import calendar_changed, calendar_for, hours_of, load_calendar
from ..core.database import utcnow
from ..definitions.clock import district_zone
from ..extensions import db
from ..web.i18n import tr
from . import engine
from .models import Case, CaseDeadline, CaseEvent

log = logging.getLogger(__name__)


@calendar_changed.connect
def move_deadlines(_sender: Any, before: tuple[list[DayOverride], set[int]]) -> int:
    """The calendar changed: each open case's running deadline keeps its working time from its start, counted
    on the new calendar (so extensions and waits stay), and the move is audited. Stopped deadlines keep theirs."""
    overrides, years = before
    moved = 0
    query = (db.select(CaseDeadline).join(Case, Case.id == CaseDeadline.case_id)
             .where(CaseDeadline.stopped_at.is_(None), Case.state_kind != "final").order_by(CaseDeadline.id))
    calendars: dict[str, tuple[WorkingCalendar, WorkingCalendar, ZoneInfo]] = {}
    for deadline in db.session.scalars(query):
        case = deadline.case
        if case.scheme_key not in calendars:
            hours = hours_of(case.scheme_key)
            calendars[case.scheme_key] = (WorkingCalendar(overrides, hours, complete_years=years),
                                          load_calendar(hours), district_zone(case.scheme_key))
        old, new, zone = calendars[case.scheme_key]
        start, due = local_time(deadline.started_at, zone), local_time(deadline.due_at, zone)
        span = [start.date() + dt.timedelta(days=n) for n in range((due.date() - start.date()).days + 1)]
        if len(span) > 3660 or all(old.is_working_day(day) == new.is_working_day(day) for day in span):
            continue  # no day between its start and its due time changed: it stays where it is
        try:
            moved_to = new.add_working_hours(start, old.working_hours_between(start, due))
        except ValueError:
            continue  # a span too long to count: left as it is
        spec = engine.workflow_spec_of(case.definition_version).deadlines.get(deadline.key)
        if spec is not None and spec.max_calendar_days:  # the cap it was started under holds after the move too
            moved_to = min(moved_to, start + dt.timedelta(days=spec.max_calendar_days))
        if moved_to == due.replace(microsecond=0):
            continue
        before_due = deadline.due_at
        deadline.due_at = utc_time(moved_to, zone)
        deadline.calendar_fallback = bool(new.unknown_years(start.date(), moved_to.date()))
        record_audit("case.deadline_moved", "case", case.id, scheme_key=case.scheme_key,
                     before={"deadline": deadline.key, "due_at": before_due.isoformat()},
                     after={"deadline": deadline.key, "due_at": deadline.due_at.isoformat(),
                            "why": "calendar changed"})
        moved += 1
    db.session.flush()
    return moved


def local_time(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def utc_time(local: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return local.replace(tzinfo=zone).astimezone(dt.UTC)


def start_deadline(case: Case, spec: engine.WorkflowSpec, key: str, now: dt.datetime, names: Mapping[str, Any]
                   ) -> None:
    """Start a deadline, due by the working time its formula gives over the case's `names`; a formula that
    gives nothing usable is said on the timeline and in the log, and the step goes ahead."""
    deadline = spec.deadlines.get(key)
    try:
        amount = engine.deadline_amount(deadline, names) if deadline else None
        if amount is not None:
            zone, calendar = district_zone(case.scheme_key), calendar_for(case.scheme_key)
            start = local_time(now, zone)
            unit, value = amount
            try:
                due = (calendar.add_working_days(start, value) if unit == "days"
                       else calendar.add_working_hours(start, value))
            except ValueError as exc:  # beyond what the calendar counts
                raise engine.DeadlineError(str(exc)) from None
    except engine.DeadlineError as exc:
        # The step goes ahead, but the missing deadline is said on the case's timeline and in the log.
        message = _("No deadline %(deadline)s: %(why)s", deadline=tr(deadline.name) or key, why=str(exc))
        log.warning("case %s: deadline %s not started: %s", case.id, key, exc)
        case.events.append(CaseEvent(kind="deadline_error", at=now, note=message, from_state=case.state,
                                     to_state=case.state))
        record_audit("case.deadline_error", "case", case.id, scheme_key=case.scheme_key,
                     after={"deadline": key, "error": str(exc)})
        return
    if amount is None:
        return
    if deadline.max_calendar_days:
        due = min(due, start + dt.timedelta(days=deadline.max_calendar_days))
    for running in case.deadlines:
        if running.key == key and running.stopped_at is None:
            running.stopped_at, running.met = now, None  # restarted (rework): the old clock no longer counts
    case.deadlines.append(CaseDeadline(key=key, started_at=now, due_at=utc_time(due, zone),
                                       calendar_fallback=bool(calendar.unknown_years(start.date(), due.date()))))


def extend_deadline(case: Case, key: str, unit: str, amount: float, now: dt.datetime) -> None:
    """An approved extension: the running deadline is superseded by one due later by working time.

    A new row, not a moved one: escalations apply once per deadline row, so the extended deadline escalates
    again when it, too, is missed. The old row keeps `met = False` if it had already been missed.
    """
    zone, calendar = district_zone(case.scheme_key), calendar_for(case.scheme_key)
    for running in [d for d in case.deadlines if d.key == key and d.stopped_at is None]:
        due = local_time(running.due_at, zone)
        due = calendar.add_working_days(due, amount) if unit == "days" else calendar.add_working_hours(due, amount)
        running.stopped_at = now
        running.met = False if running.met is False else None
        case.deadlines.append(CaseDeadline(
            key=key, started_at=running.started_at, due_at=utc_time(due, zone), paused_at=running.paused_at,
            calendar_fallback=running.calendar_fallback or bool(calendar.unknown_years(due.date(), due.date()))))
        case.overdue = False


def stop_deadline(case: Case, key: str, now: dt.datetime) -> None:
    for running in case.deadlines:
        if running.key == key and running.stopped_at is None:
            running.stopped_at = now
            running.met = now <= running.due_at


def pause_or_resume(case: Case, old_kind: str, new_kind: str, now: dt.datetime) -> None:
    """A waiting state stops the clock; leaving it moves the deadline by the working time spent waiting."""
    if old_kind != "waiting" and new_kind == "waiting":
        for running in case.deadlines:
            if running.stopped_at is None and running.paused_at is None:
                running.paused_at = now
    elif old_kind == "waiting" and new_kind != "waiting":
        zone, calendar = district_zone(case.scheme_key), calendar_for(case.scheme_key)
        for running in case.deadlines:
            if running.stopped_at is None and running.paused_at is not None:
                waited = calendar.working_hours_between(local_time(running.paused_at, zone), local_time(now, zone))
                due = calendar.add_working_hours(local_time(running.due_at, zone), max(waited, 0))
                running.due_at = utc_time(due, zone)
                running.paused_at = None


def working_days_left(case: Case, deadline: CaseDeadline) -> float:
    """Working days from now to the deadline (negative when late), on the district's calendar."""
    zone = district_zone(case.scheme_key)
    return calendar_for(case.scheme_key).working_days_between(local_time(utcnow(), zone),
                                                              local_time(deadline.due_at, zone))
