"""A period's draft as its pages show it.

While a district is small, the draft is worked out on every view, as it stands. At a city's size (more than
`FANGAN_DRAFT_LIVE_UNITS` active units, 500 by default) scoring every unit takes seconds, more than a page may
wait: a job (server/jobs) works it out and keeps it (`AssessmentDraft`), and the pages read what was kept and
say when it was worked out. A view starts that job when nothing is kept yet, when marks have been entered or
changed since, or when what is kept is older than `FANGAN_DRAFT_FRESH_MINUTES` (10): meanwhile the page shows
what it has and says it is being worked out again. The office may ask for it at once ("Work out again").

A published revision is never worked out again: it is read as it was stored (`scoring.published_scores`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, func, insert, select

from ..audit.models import AuditEntry
from ..auth import permissions
from ..core.database import utcnow
from ..core.errors import PermissionDenied
from ..extensions import db
from ..jobs.models import Job
from ..jobs.service import JOB_KINDS, JobKind, JobResult, Progress, start_job
from ..org.models import Unit
from ..org.service import NAME_CHANGES, names_text
from ..web.i18n import tr
from ..web.params import Paged, by_name
from . import engine, service
from .models import AssessmentDraft, AssessmentDraftRow, AssessmentEntry, AssessmentPeriod
from .publishing import period_page
from .scoring import Person, UnitResult
from .sources import is_entered

if TYPE_CHECKING:
    from ..auth.models import AnyUser

DRAFT = "assessment.draft"
LIVE_UNITS = 500        # default `FANGAN_DRAFT_LIVE_UNITS`: up to this many active units, worked out on each view
FRESH_MINUTES = 10      # default `FANGAN_DRAFT_FRESH_MINUTES`: a kept draft is worked out again when older


@dataclass(frozen=True)
class DraftRow:
    """One unit's (or one person's) draft result, as the period's pages show it and a job keeps it."""

    subject_id: int | str        # the unit's id, or "user:<id>" / "post:<id>" for a person
    unit_id: int | None          # the unit assessed; None for a person
    owner_id: int | None         # the unit whose readers see the row: the unit, or the one a person answers to
    name: Any                    # as the unit or person is named (a unit's name may have languages)
    total: Decimal
    grade: str | None
    ranks: dict[str, int]
    flags: list[str]
    vetoes: list[str]
    money: list[dict[str, Any]]
    items: dict[str, dict[str, Any]]
    areas: list[dict[str, Any]]

    @property
    def money_total(self) -> Decimal | None:
        return engine.money_total(self.money) if self.money else None

    def as_json(self) -> dict[str, Any]:
        return {"subject": self.subject_id, "unit": self.unit_id, "owner": self.owner_id, "name": self.name,
                "total": str(self.total), "grade": self.grade, "ranks": self.ranks, "flags": self.flags,
                "vetoes": self.vetoes, "money": self.money, "items": self.items, "areas": self.areas}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DraftRow:
        return cls(data["subject"], data["unit"], data["owner"], data["name"], Decimal(data["total"]), data["grade"],
                   data["ranks"], data["flags"], data["vetoes"], data["money"], data["items"], data["areas"])


def row_of(result: UnitResult) -> DraftRow:
    subject = result.unit
    person = isinstance(subject, Person)
    owner = subject.unit if person else subject
    return DraftRow(subject.id, None if person else subject.id, owner.id if owner is not None else None,
                    subject.name, result.total, result.grade.id if result.grade else None, dict(result.ranks),
                    [f.id for f in result.flags], [v.id for v in result.vetoes], list(result.money),
                    service.result_items(result), [service.area_row(a) for a in result.areas])


@dataclass(frozen=True)
class Draft:
    rows: list[DraftRow]
    worked_at: dt.datetime | None = None  # when a job worked out what is kept; None: worked out for this view
    working: Job | None = None            # the job working it out (again), if one is
    stale: bool = False                   # marks changed since it was worked out, or it is old
    failed: str | None = None             # why the last try to work it out failed, if it did
    count: int = 0                        # the units (or people) it has

    @property
    def kept(self) -> bool:
        return self.worked_at is not None


def visible_rows(user: AnyUser, period: AssessmentPeriod, rows: list[DraftRow]) -> list[DraftRow]:
    """The rows the user may see (`service.visible`), their owner units read in one query (and only when the
    user does not see every unit anyway)."""
    if permissions.can_view_all_scores(user, period.scheme_key):
        return rows
    owners = {r.owner_id for r in rows if r.owner_id is not None}
    query = select(Unit).where(Unit.scheme_key == period.scheme_key)
    if len(owners) <= IN_LIST:
        query = query.where(Unit.id.in_(owners))
    units = {u.id: u for u in db.session.scalars(query) if u.id in owners} if owners else {}
    return service.visible(user, period, [r for r in rows if r.owner_id in units], lambda r: units[r.owner_id])


IN_LIST = 500  # more units than this are read with the district's rather than listed in the query


def is_large(period: AssessmentPeriod) -> bool:
    """Whether the period's draft is worked out by a job and kept, rather than on each view."""
    most = int(current_app.config.get("FANGAN_DRAFT_LIVE_UNITS", LIVE_UNITS))
    return bool(db.session.scalar(select(func.count()).select_from(
        select(Unit.id).where(Unit.scheme_key == period.scheme_key, Unit.active.is_(True)).limit(most + 1)
        .subquery())) > most)


# Changes to who is assessed and whose readers see them (units, posts, roles), each written with its audit entry.
WHO_CHANGES = (*NAME_CHANGES, "post.appoint", "post.edit", "post.end", "user.grant_role", "user.revoke_role")


def basis_of(period: AssessmentPeriod) -> str:
    """What the period's draft stands on: its marks (entries given, changed or superseded), the period's own
    changes (its state, appeals opened) and who is assessed (units, posts and roles: `WHO_CHANGES`)."""
    count, last_id, last_at = db.session.execute(
        select(func.count(), func.max(AssessmentEntry.id), func.max(AssessmentEntry.entered_at))
        .where(AssessmentEntry.period_id == period.id)).one()
    superseded = db.session.scalar(select(func.count()).where(AssessmentEntry.period_id == period.id,
                                                              AssessmentEntry.superseded_in.is_not(None)))
    who = db.session.scalar(select(func.max(AuditEntry.id)).where(AuditEntry.action.in_(WHO_CHANGES)))
    stamp = last_at.isoformat() if isinstance(last_at, dt.datetime) else last_at
    return f"v{period.version}:e{count}:{last_id}:{superseded}:{stamp}:o{who}"


def draft_page(user: AnyUser, period: AssessmentPeriod, q: str = "", page: int | None = None,
               per_page: int = 100) -> tuple[Draft, Paged[DraftRow]]:
    """The period's draft for its page, and the page of rows asked for (found by name with `q`): worked out
    now, or read from what a job kept (a page at a time), a job being started if what is kept is out of date."""
    if not is_large(period):
        rows = visible_rows(user, period, [row_of(r) for r in service.draft(period)])
        return Draft(rows), Paged.of(by_name(rows, q, lambda r: r.name), page, per_page)
    draft = kept_draft(user, period)
    query = select(AssessmentDraftRow).where(AssessmentDraftRow.period_id == period.id)
    if q:
        query = query.where(AssessmentDraftRow.names.contains(q.casefold(), autoescape=True))
    if permissions.can_view_all_scores(user, period.scheme_key):
        total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        pages = max(1, -(-total // per_page))
        page = min(max(page or 1, 1), pages)
        rows = db.session.scalars(query.order_by(AssessmentDraftRow.position)
                                  .offset((page - 1) * per_page).limit(per_page))
        return draft, Paged([DraftRow.from_json(r.data) for r in rows], page, pages, total)
    reach = permissions.score_reach(user, period.scheme_key)
    if reach is not None:  # a first cut in the query; the exact check after
        query = query.where(AssessmentDraftRow.owner_id.in_(reach))
    rows = [DraftRow.from_json(r.data) for r in db.session.scalars(query.order_by(AssessmentDraftRow.position))]
    return draft, Paged.of(visible_rows(user, period, rows), page, per_page)


def draft_row(user: AnyUser, period: AssessmentPeriod, unit_id: int) -> tuple[DraftRow | None, Draft]:
    """One unit's draft result (its items and areas, for what lies behind its deductions)."""
    if not is_large(period):
        return next((row_of(r) for r in service.draft(period) if r.unit.id == unit_id), None), Draft([])
    draft = kept_draft(user, period)
    row = db.session.scalar(select(AssessmentDraftRow).where(AssessmentDraftRow.period_id == period.id,
                                                             AssessmentDraftRow.unit_id == unit_id).limit(1))
    return (DraftRow.from_json(row.data) if row is not None else None), draft


def kept_draft(user: AnyUser, period: AssessmentPeriod) -> Draft:
    """How the kept draft stands (its rows are read by the page): a job is started if it is out of date."""
    kept = db.session.get(AssessmentDraft, period.id)
    fresh = kept is not None and kept.basis == basis_of(period) and utcnow() - kept.worked_at < _fresh_for()
    state = draft_progress(period, kept.worked_at if kept is not None else None)
    # A try that failed is not made again on every view (the page polls): after a while, or by the office.
    tried = state.failed is not None and utcnow() - state.failed_at < _fresh_for()
    working = state.working
    if not fresh and working is None and not tried:
        working = start_job(user, DRAFT, period.scheme_key, {"period": period.id})
        db.session.commit()  # a view that starts the work: handed to a worker once committed
    return Draft([], state.worked_at, working, stale=not fresh, failed=None if working else state.failed,
                 count=kept.units if kept is not None else 0)


def unfinished(period: AssessmentPeriod) -> list[str]:
    """Why the period's scores would not be final yet (`service.unfinished`); with a kept draft, the missing
    hand-entered marks are counted over its rows in the database."""
    if not is_large(period) or db.session.get(AssessmentDraft, period.id) is None:
        return service.unfinished(period)
    sheet = service.sheet_spec_of(period)
    count, first = 0, ""
    for metric in (m["id"] for m in sheet.metrics if is_entered(m)):
        given = select(AssessmentEntry.unit_id).where(
            AssessmentEntry.period_id == period.id, AssessmentEntry.superseded_in.is_(None),
            AssessmentEntry.item_key == service.METRIC_ITEM + metric)
        lacking = select(AssessmentDraftRow).where(AssessmentDraftRow.period_id == period.id,
                                                   AssessmentDraftRow.unit_id.is_not(None),
                                                   AssessmentDraftRow.unit_id.not_in(given))
        n = db.session.scalar(select(func.count()).select_from(lacking.subquery())) or 0
        if n and not count:
            row = db.session.scalar(lacking.order_by(AssessmentDraftRow.position).limit(1))
            first = f"{tr(row.data['name'])}: {metric}"
        count += n
    return service.unfinished(period, missing=(count, first))


@dataclass(frozen=True)
class DraftState:
    worked_at: dt.datetime | None
    working: Job | None
    failed: str | None
    failed_at: dt.datetime


def draft_progress(period: AssessmentPeriod, worked_at: dt.datetime | None = None) -> DraftState:
    """How the kept draft stands: when it was worked out, the job working on it, or why the last one failed."""
    job = db.session.scalar(select(Job).where(Job.kind == DRAFT, Job.scheme_key == period.scheme_key,
                                              Job.params["period"].as_integer() == period.id)
                            .order_by(Job.id.desc()).limit(1))
    failed = job is not None and job.state == "failed" and (worked_at is None or job.created_at > worked_at)
    return DraftState(worked_at, job if job is not None and not job.finished else None,
                      job.note if failed else None,
                      (job.finished_at or job.created_at) if failed else utcnow())


def _fresh_for() -> dt.timedelta:
    return dt.timedelta(minutes=int(current_app.config.get("FANGAN_DRAFT_FRESH_MINUTES", FRESH_MINUTES)))


def work_out_again(user: AnyUser, period: AssessmentPeriod) -> Job:
    """The office asks for the draft now (cases closed meanwhile count at once): the job working it out."""
    if not permissions.can_run_assessment(user, period.scheme_key):
        raise PermissionDenied(_("You may not run this assessment."))
    return draft_progress(period).working or start_job(user, DRAFT, period.scheme_key, {"period": period.id})


def run_draft(job: Job, user: AnyUser, progress: Progress) -> JobResult:
    period = service.get_period(user, job.params["period"])
    read_at = utcnow()  # the draft is as of now: "worked out at" this time
    basis = basis_of(period)  # before the marks are read: marks entered meanwhile leave it out of date
    progress(0, 1)
    rows = [row_of(r) for r in service.draft(period, progress=progress)]
    # One draft per period: a second job for it waits here for the first one's commit; a job that read the
    # marks before the draft kept now was read keeps nothing (it would put older marks under a later time).
    db.session.execute(select(AssessmentPeriod.id).where(AssessmentPeriod.id == period.id).with_for_update())
    kept = db.session.get(AssessmentDraft, period.id, populate_existing=True)
    if kept is not None and kept.worked_at > read_at:
        return JobResult(None, summary=_("A draft worked out since is kept."))
    if kept is None:
        kept = AssessmentDraft(period_id=period.id)
        db.session.add(kept)
    kept.basis, kept.worked_at, kept.units = basis, read_at, len(rows)
    db.session.execute(delete(AssessmentDraftRow).where(AssessmentDraftRow.period_id == period.id))
    if rows:
        db.session.execute(insert(AssessmentDraftRow), [
            {"period_id": period.id, "position": n, "unit_id": r.unit_id, "owner_id": r.owner_id,
             "names": names_text(r.name).casefold(), "data": r.as_json()} for n, r in enumerate(rows)])
    return JobResult(None, summary=_("The draft of %(n)s units is worked out.", n=len(rows)))


JOB_KINDS.add(DRAFT, JobKind(title=lambda: _("Working out a period's draft"),
                             may_start=lambda user, scheme_key, _params: permissions.can_view_assessment(
                                 user, scheme_key),
                             run=run_draft, origin=period_page))
