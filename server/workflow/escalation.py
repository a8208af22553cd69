"""`fangan tick`: due and overdue escalations applied once each, and notifications delivered to the
gateway."""

from __future__ import annotations

import datetime as dt
import logging
import socket

from flask_babel import gettext as _
from sqlalchemy.orm import contains_eager

from ..audit.service import record_audit
from ..calendar.service import calendar_for
from ..core.database import insert_unless_taken, utcnow
from ..definitions.clock import district_zone
from ..extensions import db
from ..web.i18n import tr
from . import engine
from .deadlines import local_time, utc_time
from .models import Case, CaseDeadline, CaseEvent, EscalationApplied, unit_move
from .service import notify, workflow_of

log = logging.getLogger(__name__)


def tick(now: dt.datetime | None = None, batch: int = 200, after_id: int = 0) -> dict[str, int]:
    """Apply due escalations once each; safe on many hosts at once (row locks, SKIP LOCKED, unique keys).

    Looks only at running deadlines whose `check_at` has come (an index): new or moved ones, and those with an
    escalation falling due; each is then given the moment to be looked at next, or none when nothing is left.
    One batch of ids above `after_id`; `last_id` in the result is where the next batch starts (the CLI commits
    between batches).
    """
    now = now or utcnow()
    counts = {"checked": 0, "applied": 0, "last_id": after_id}
    host = socket.gethostname()[:100]
    # The case is locked with its deadline, and one somebody is acting on is skipped (the next tick takes it):
    # a step locks the case first, so the two never wait on each other in opposite orders.
    query = (db.select(CaseDeadline).join(Case, Case.id == CaseDeadline.case_id)
             .where(CaseDeadline.check_at <= now, CaseDeadline.stopped_at.is_(None),
                    CaseDeadline.paused_at.is_(None), CaseDeadline.id > after_id)
             .options(contains_eager(CaseDeadline.case))
             .order_by(CaseDeadline.id).limit(batch).with_for_update(skip_locked=True, of=(CaseDeadline, Case)))
    deadlines = db.session.scalars(query).all()
    done: dict[int, set[str]] = {}
    applied_before = (db.select(EscalationApplied.deadline_id, EscalationApplied.escalation)
                      .where(EscalationApplied.deadline_id.in_([d.id for d in deadlines])))
    for deadline_id, name in db.session.execute(applied_before) if deadlines else ():
        done.setdefault(deadline_id, set()).add(name)
    for deadline in deadlines:
        counts["checked"] += 1
        counts["last_id"] = deadline.id
        try:
            with db.session.begin_nested():
                counts["applied"] += _handle(deadline, done.get(deadline.id, set()), host, now)
        except Exception:  # noqa: BLE001 - one broken deadline must not stop the district's escalations
            log.exception("deadline %s of case %s could not be handled; looked at again in an hour",
                          deadline.id, deadline.case_id)
            deadline.check_at = now + dt.timedelta(hours=1)
    db.session.flush()
    return counts


def _handle(deadline: CaseDeadline, applied: set[str], host: str, now: dt.datetime) -> int:
    """Apply what is due of one deadline's escalations, and set when to look at it next; how many applied."""
    case = deadline.case
    spec = workflow_of(case)
    mine = [e for e in spec.escalations if e.deadline == deadline.key]
    count = 0
    for escalation in mine:
        if escalation.id in applied or not _is_due(escalation, deadline, case, now):
            continue
        # The unique key refuses a second application without an error: another host that got here first
        # (its row lock released) leaves nothing to return.
        taken = db.session.execute(insert_unless_taken(EscalationApplied, "deadline_id", "escalation"), [
            {"deadline_id": deadline.id, "escalation": escalation.id, "host": host, "applied_at": now}]).all()
        applied.add(escalation.id)
        if taken:
            _escalate(case, deadline, escalation, spec, now)
            count += 1
    deadline.check_at = _next_check(deadline, case, [e for e in mine if e.id not in applied], now)
    return count


def _falls_due(escalation: engine.EscalationSpec, deadline: CaseDeadline, case: Case) -> dt.datetime:
    """From when an escalation applies: an overdue one once the deadline has passed, a due-soon one from the
    moment its working hours before reach the deadline."""
    if escalation.when == "overdue":
        return deadline.due_at
    zone = district_zone(case.scheme_key)
    start = calendar_for(case.scheme_key).earliest_start(local_time(deadline.due_at, zone),
                                                         escalation.working_hours_before)
    return utc_time(start, zone)


def _next_check(deadline: CaseDeadline, case: Case, left: list[engine.EscalationSpec],
                now: dt.datetime) -> dt.datetime | None:
    """When to look at a deadline again: when the first escalation left falls due (a due-soon warning whose
    deadline has passed never will), or at the next tick if that moment has come without it being due."""
    moments = [_falls_due(e, deadline, case) for e in left if e.when == "overdue" or now <= deadline.due_at]
    return max(min(moments), now + dt.timedelta(seconds=1)) if moments else None


def _is_due(escalation: engine.EscalationSpec, deadline: CaseDeadline, case: Case, now: dt.datetime) -> bool:
    if escalation.when == "overdue":
        return now > deadline.due_at
    zone, calendar = district_zone(case.scheme_key), calendar_for(case.scheme_key)
    warn_from = calendar.add_working_hours(local_time(now, zone), escalation.working_hours_before)
    return utc_time(warn_from, zone) >= deadline.due_at and now <= deadline.due_at


def _escalate(case: Case, deadline: CaseDeadline, escalation: engine.EscalationSpec, spec: engine.WorkflowSpec,
              now: dt.datetime) -> None:
    name = tr(spec.deadlines[deadline.key].name) if deadline.key in spec.deadlines else deadline.key
    if "mark_overdue" in escalation.actions:
        case.overdue = True
    if "count_missed" in escalation.actions:
        deadline.met = False
    before = case.unit
    if "reassign_up" in escalation.actions and case.unit is not None and case.unit.parent is not None:
        case.unit, case.assignee = case.unit.parent, None
        case.unit_id, case.assignee_id = case.unit.id if case.unit is not None else None, None
    message = (_("Case #%(id)s is overdue: %(deadline)s", id=case.id, deadline=name) if escalation.when == "overdue"
               else _("Case #%(id)s is due soon: %(deadline)s", id=case.id, deadline=name))
    if "notify" in escalation.actions:
        notify(case, set(escalation.notify) or {"assignee_unit"}, message)
    case.events.append(CaseEvent(kind="escalation", transition=escalation.id, at=now, note=message,
                                 from_state=case.state, to_state=case.state, **unit_move(before, case.unit)))
    record_audit("case.escalate", "case", case.id, scheme_key=case.scheme_key,
                 after={"escalation": escalation.id, "deadline": deadline.key})
