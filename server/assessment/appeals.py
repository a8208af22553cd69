"""Appeals: the window a period opens, who may appeal, and the office's decision."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _
from sqlalchemy import select

from ..audit.service import record_audit
from ..auth import permissions
from ..core.database import utcnow
from ..core.errors import Conflict, DomainError, NotFound, PermissionDenied
from ..definitions.clock import district_today
from ..extensions import db
from ..org.models import Unit
from .models import AssessmentAppeal, AssessmentEntry, AssessmentPeriod
from .service import checked_values, entered_rules, expect_version, replace_marks, sheet_spec_of

if TYPE_CHECKING:
    from ..auth.models import AnyUser


def open_appeals(user: AnyUser, period: AssessmentPeriod, version: int | None = None,
                 today: dt.date | None = None) -> AssessmentPeriod:
    """Show units their draft scores and let them appeal for the sheet's `appeal_days` working days."""
    from ..calendar.service import calendar_for

    if not permissions.can_run_assessment(user, period.scheme_key):
        raise PermissionDenied(_("You may not run this district's assessment."))
    expect_version(period, version)
    if period.state != "open":
        raise Conflict(_("Only an open period goes to appeal."))
    if sheet_spec_of(period).assessed.get("tiers"):
        raise Conflict(_("People's results are not appealed: their numbers come from the data."))

    today = today or district_today(period.scheme_key)
    days = sheet_spec_of(period).appeal_days
    start = dt.datetime.combine(today, dt.time(9))
    period.appeal_until = calendar_for(period.scheme_key).add_working_days(start, days).date() if days else today
    period.state = "appeal"
    db.session.flush()
    record_audit("assessment.appeals", "assessment_period", period.id, user=user, scheme_key=period.scheme_key,
                 after={"until": period.appeal_until.isoformat()})
    return period


def appeals_open(period: AssessmentPeriod, today: dt.date | None = None) -> bool:
    """Whether units may still appeal: the period is in its appeal window, and the window has not passed."""
    today = today or district_today(period.scheme_key)
    return period.state == "appeal" and not (period.appeal_until and today > period.appeal_until)


def evidence_in_use(uploads: list[Any]) -> set[int]:
    """Which of these evidence uploads some assessor's marks name (the rest were never saved with marks)."""
    ids = {u.id for u in uploads}
    if not ids:
        return set()
    used: set[int] = set()
    for evidence in db.session.scalars(select(AssessmentEntry.evidence).where(AssessmentEntry.evidence.is_not(None))):
        used |= {int(i) for i in evidence or [] if str(i).isdigit()} & ids
    return used


def file_appeal(user: AnyUser, period: AssessmentPeriod, unit: Unit, item_id: str, text: str,
                today: dt.date | None = None) -> AssessmentAppeal:
    """A unit asks for a deduction to be looked at again (a review or appeal), within the appeal window."""

    spec = sheet_spec_of(period)
    if spec.assessed.get("tiers"):
        raise Conflict(_("People's results are not appealed: their numbers come from the data."))
    if unit.scheme_key != period.scheme_key or not permissions.can_appeal(user, unit, spec.appeal_roles):
        raise PermissionDenied(_("You may not appeal for this unit."))
    if not appeals_open(period, today):
        raise Conflict(_("The appeal window of this period is closed."))
    if not text.strip():
        raise DomainError(_("Say why the deduction is wrong."))
    if item_id not in {i.id for _s, i in spec.items()}:
        raise NotFound(_("This sheet has no such item."))
    if db.session.scalar(select(AssessmentEntry.id).where(
            AssessmentEntry.period_id == period.id, AssessmentEntry.unit_id == unit.id,
            AssessmentEntry.item_key == item_id, AssessmentEntry.assessor_id == user.id).limit(1)) is not None:
        raise DomainError(_("You marked this item for this unit: you may not appeal against your own marks."))
    appeal = AssessmentAppeal(period_id=period.id, unit_id=unit.id, item_key=item_id, text=text.strip()[:4000],
                              filed_by_id=user.id)
    db.session.add(appeal)
    db.session.flush()
    record_audit("assessment.appeal", "assessment_appeal", appeal.id, user=user, scheme_key=period.scheme_key,
                 after={"unit": unit.key, "item": item_id})
    return appeal


def decide_appeal(user: AnyUser, appeal: AssessmentAppeal, decision: str, note: str = "",
                  values: dict[str, Any] | None = None) -> AssessmentAppeal:
    """The office upholds or rejects an appeal. Upholding an appeal against an item assessors mark takes the
    corrected marks (`values`, by rule id): they replace every assessor's contested marks for that unit and
    item, rather than being averaged with them; the replaced marks stay on record."""
    period = db.session.get(AssessmentPeriod, appeal.period_id)
    if not permissions.can_run_assessment(user, period.scheme_key):
        raise PermissionDenied(_("You may not decide appeals."))
    if decision not in ("upheld", "rejected") or appeal.decision is not None:
        raise Conflict(_("This appeal has been decided."))
    if decision == "upheld" and entered_rules(period, appeal.item_key):
        clean = checked_values(sheet_spec_of(period), appeal.item_key, values or {})
        if not clean:
            raise DomainError(_("Enter the corrected marks that replace the contested ones."))
        replace_marks(user, period, appeal.unit_id, appeal.item_key, clean,
                       note.strip()[:2000] or _("Appeal upheld."))
    appeal.decision, appeal.note = decision, note.strip()[:2000] or None
    appeal.decided_by_id, appeal.decided_at = user.id, utcnow()
    db.session.flush()
    record_audit("assessment.decide", "assessment_appeal", appeal.id, user=user, scheme_key=period.scheme_key,
                 after={"decision": decision})
    return appeal
