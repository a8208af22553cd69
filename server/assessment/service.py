"""Running a period: opening it, assessors' marks, the draft, publication, corrections and revisions.
Scoring is in scoring.py, appeals in appeals.py, bulletins in bulletins.py, the dashboard in dashboard.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from ..audit.service import record_audit
from ..auth import permissions
from ..core.database import utcnow
from ..core.errors import Conflict, DomainError, NotFound, PermissionDenied
from ..core.text import clean_text
from ..definitions.clock import district_today
from ..extensions import db
from ..org.models import Unit
from ..patrols import engine as patrol_engine
from ..web.i18n import tr
from . import engine
from .engine import SheetSpec
from .models import AssessmentAppeal, AssessmentEntry, AssessmentPeriod, AssessmentRevision, AssessmentScore
from .scoring import (
    AreaResult,
    Person,
    UnitResult,
    assessed_units,
    metric_values,
    owner_unit,
    people_as_published,
    period_of,
    published_scores,
    score_units,
    sheet_of,
    sheet_spec_of_row,
)
from .sources import is_entered

if TYPE_CHECKING:
    from ..auth.models import AnyUser

# -- metrics -------------------------------------------------------------------------------------------------


# -- a period's results -------------------------------------------------------------------------------------


# -- the process: open, enter, appeal, publish, correct -------------------------------------------------------

METRIC_ITEM = "metric:"  # entries for a `manual` metric are kept under "metric:<id>"


def sheet_spec_of(period: AssessmentPeriod) -> SheetSpec:
    """The sheet a period is scored on: the version it was opened with, whatever is in force now."""
    return sheet_spec_of_row(period.definition_version)




def item_of(period: AssessmentPeriod, item_id: str) -> Any:
    """The item (or, for "metric:<id>", the manual metric's definition) a mark is for."""
    sheet = sheet_spec_of(period)
    if item_id.startswith(METRIC_ITEM):
        metric = next((m for m in sheet.metrics if m["id"] == item_id[len(METRIC_ITEM):]
                       and is_entered(m)), None)
        if metric is None:
            raise NotFound(_("This sheet has no such item."))
        return metric
    item = next((i for _s, i in sheet.items() if i.id == item_id), None)
    if item is None:
        raise NotFound(_("This sheet has no such item."))
    return item


def entered_rules(period: AssessmentPeriod, item_id: str) -> list[tuple[str, Any]]:
    """(rule id, label) of what an assessor enters for an item; ("value", name) for a manual metric."""
    item = item_of(period, item_id)
    if isinstance(item, dict):
        return [("value", item.get("name"))]
    return [(r.id, r.label) for r in item.rules if r.entered]


def my_entry(user: AnyUser, period: AssessmentPeriod, unit: Unit, item_id: str) -> AssessmentEntry | None:
    return db.session.scalar(db.select(AssessmentEntry).filter_by(period_id=period.id, unit_id=unit.id,
                                                                  item_key=item_id, assessor_id=user.id,
                                                                  superseded_in=None))


def bounds_of(period: AssessmentPeriod) -> patrol_engine.Period:
    return patrol_engine.Period(sheet_spec_of(period).period, period.starts_on, period.ends_on)


def expect_version(period: AssessmentPeriod, version: int | None) -> None:
    if version is not None and version != period.version:
        raise Conflict(_("This assessment changed while you were looking at it. Look at it again."))


def open_period(user: AnyUser, scheme_key: str, sheet_id: str, day: dt.date) -> AssessmentPeriod:
    """Open the sheet's period containing `day` under the sheet version in force now."""
    if not permissions.can_run_assessment(user, scheme_key):
        raise PermissionDenied(_("You may not run this district's assessment."))
    row, sheet = sheet_of(scheme_key, sheet_id)
    bounds = period_of(sheet, day)
    if bounds.start > district_today(scheme_key):
        raise Conflict(_("The period %(period)s has not begun: it opens from %(day)s.", period=bounds.key,
                         day=bounds.start.isoformat()))
    existing = db.session.scalar(db.select(AssessmentPeriod).filter_by(
        scheme_key=scheme_key, sheet_key=sheet_id, period_key=bounds.key))
    if existing is not None:
        raise Conflict(_("The period %(period)s is already open.", period=bounds.key))
    period = AssessmentPeriod(scheme_key=scheme_key, sheet_key=sheet_id, definition_version=row,
                              period_key=bounds.key, starts_on=bounds.start, ends_on=bounds.end, state="open",
                              opened_by_id=getattr(user, "id", None))
    db.session.add(period)
    db.session.flush()
    record_audit("assessment.open", "assessment_period", period.id, user=user, scheme_key=scheme_key,
                 after={"sheet": sheet_id, "period": bounds.key, "version": row.id})
    return period


def _check_reader(user: AnyUser, scheme_key: str) -> None:
    if not permissions.can_view_assessment(user, scheme_key):
        raise PermissionDenied(_("You may not view this assessment."))


def get_period(user: AnyUser, period_id: int) -> AssessmentPeriod:
    period = db.session.get(AssessmentPeriod, period_id)
    if period is None:
        raise NotFound(_("No such assessment period."))
    _check_reader(user, period.scheme_key)
    return period


def list_periods(user: AnyUser, scheme_key: str) -> list[AssessmentPeriod]:
    """A district's periods, latest first: for anyone who reads, marks or runs its assessment."""
    _check_reader(user, scheme_key)
    return list(db.session.scalars(db.select(AssessmentPeriod).filter_by(scheme_key=scheme_key)
                                   .order_by(AssessmentPeriod.starts_on.desc(), AssessmentPeriod.sheet_key)))


def visible(user: AnyUser, period: AssessmentPeriod, rows: list, unit_of: Callable[[Any], Unit]) -> list:
    """The rows (scores, draft results, appeals) of units the user may see: all of them for the office and
    district-wide readers, else those of units they may view or mark."""
    if permissions.can_view_all_scores(user, period.scheme_key):
        return rows
    shown = []
    for row in rows:
        unit = owner_unit(unit_of(row))  # a person's results: those who see the unit they answer to
        if unit is not None and (permissions.can_view_unit_scores(user, unit) or assesses(user, period, unit)):
            shown.append(row)
    return shown


def enter_marks(user: AnyUser, period: AssessmentPeriod, unit: Unit, item_id: str, values: dict[str, Any],
                reason: str = "", evidence: list[int] | None = None) -> AssessmentEntry:
    """An assessor's numbers for the rules of an item that assessors enter (or the value of a `manual`
    metric, as item "metric:<id>"), with the reason and evidence; entering again replaces one's own."""
    latest = latest_revision(period)
    if period.state not in ("open", "appeal") and not (latest is not None and latest.provisional):
        raise Conflict(_("Marks are entered while the period is open."))
    if unit.scheme_key != period.scheme_key or not permissions.can_assess_unit(user, unit):
        raise PermissionDenied(_("You may not assess this unit."))
    sheet = sheet_spec_of(period)
    clean = checked_values(sheet, item_id, values)
    role = _assessor_role(user, unit, sheet, item_id)
    if any(v != 0 for v in clean.values()) and not clean_text(reason, 2000):
        raise DomainError(_("Give the reason for a deduction."))
    entry = db.session.scalar(db.select(AssessmentEntry).filter_by(
        period_id=period.id, unit_id=unit.id, item_key=item_id, assessor_id=user.id, superseded_in=None))
    before = dict(entry.values) if entry else None
    if entry is None:
        entry = AssessmentEntry(period=period, unit=unit, item_key=item_id, assessor_id=user.id)
        db.session.add(entry)
    entry.role_key = role
    entry.values, entry.reason, entry.evidence = clean, clean_text(reason, 2000), list(evidence or []) or None
    entry.entered_at = utcnow()
    db.session.flush()
    record_audit("assessment.enter", "assessment_entry", entry.id, user=user, scheme_key=period.scheme_key,
                 before={"values": before} if before is not None else None,
                 after={"unit": unit.key, "item": item_id, "values": clean})
    return entry


def checked_values(sheet: SheetSpec, item_id: str, values: dict[str, Any]) -> dict[str, float]:
    if item_id.startswith(METRIC_ITEM):
        metric = next((m for m in sheet.metrics if m["id"] == item_id[len(METRIC_ITEM):]), None)
        if metric is None or not is_entered(metric):
            raise NotFound(_("This sheet has no such item."))
        allowed = {"value"}
    else:
        item = next((i for _s, i in sheet.items() if i.id == item_id), None)
        if item is None:
            raise NotFound(_("This sheet has no such item."))
        allowed = {r.id for r in item.rules if r.entered}
    clean = {}
    for key, raw in values.items():
        if key not in allowed:
            raise DomainError(_("%(rule)s is not entered by assessors.", rule=key))
        if raw in (None, ""):
            continue  # left blank: nothing entered (not 0, which for a rate would be the harshest value)
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise DomainError(_("%(rule)s: a number, please.", rule=key)) from None
        if not math.isfinite(number) or number < 0 or number > 100_000:
            raise DomainError(_("%(rule)s: a number from 0 to 100000.", rule=key))
        clean[key] = number
    return clean


def _assessor_role(user: AnyUser, unit: Unit, sheet: SheetSpec, item_id: str) -> str | None:
    """The role the assessor marks in (for weighted assessors); the roles the sheet or item names limit who may."""
    wanted = engine.marked_by(sheet, item_id.removeprefix(METRIC_ITEM))
    if not permissions.can_assess_unit(user, unit, wanted):
        raise PermissionDenied(_("This item is marked by other assessors."))
    held = sorted(permissions.assessor_roles(user, unit))
    return next((r for r in held if r in wanted), held[0] if held else None)


def markable(user: AnyUser, period: AssessmentPeriod, unit: Unit) -> list[tuple[str, Any]]:
    """The items and manual metrics (as "metric:<id>") the user may mark for a unit: until publication, those
    of their roles; once published, every one for the office, to correct."""
    sheet = sheet_spec_of(period)
    entries = _markable_entries(sheet)
    if period.state == "published" and permissions.can_run_assessment(user, period.scheme_key):
        return entries  # the office corrects any of them
    latest = latest_revision(period)
    provisional = latest is not None and latest.provisional  # marks are still being given: as while open
    if period.state not in ("open", "appeal") and not provisional:  # marks may be put right while units appeal
        return []
    return [(key, name) for key, name in entries
            if permissions.can_assess_unit(user, unit, engine.marked_by(sheet, key.removeprefix(METRIC_ITEM)))]


def assesses(user: AnyUser, period: AssessmentPeriod, unit: Unit) -> bool:
    """Whether the user marks anything of this sheet for the unit (what an assessor's page lists)."""
    sheet = sheet_spec_of(period)
    keys = [i.id for _s, i in sheet.items() if i.manual] + [m["id"] for m in sheet.metrics if is_entered(m)]
    return any(permissions.can_assess_unit(user, unit, engine.marked_by(sheet, key)) for key in keys)


def draft(period: AssessmentPeriod, sheet: SheetSpec | None = None,
          metrics: dict[int, dict[str, Any]] | None = None,
          area_metrics: dict[int, dict[str, dict[str, Any]]] | None = None,
          progress: Callable[[int, int], None] | None = None) -> list[UnitResult]:
    """The period's scores as they stand: the data, and every assessor's entries combined per item.

    With `sheet`, the same period scored on another version of the sheet (entries for items or rules it no
    longer has are left out). `progress` is told as it goes (`scoring.score_units`).
    """
    sheet = sheet or sheet_spec_of(period)
    items = {i.id: i for _s, i in sheet.items()}
    units = assessed_units(period.scheme_key, sheet, bounds_of(period))
    if metrics is not None and sheet.assessed.get("tiers"):
        units = people_as_published(period)  # a correction: the people published, on their numbers then
    entries: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    item_scores: dict[int, dict[str, Decimal]] = defaultdict(dict)
    manual: dict[int, dict[str, Any]] = defaultdict(dict)
    by_item: dict[tuple[int, str], list[AssessmentEntry]] = defaultdict(list)
    for entry in period.entries:
        if entry.superseded_in is not None:
            continue
        if entry.item_key.startswith(METRIC_ITEM):
            manual[entry.unit_id].setdefault(entry.item_key[len(METRIC_ITEM):], []).append(entry.values["value"])
        elif entry.item_key in items:
            by_item[(entry.unit_id, entry.item_key)].append(entry)
    for unit_id, values in manual.items():
        manual[unit_id] = {k: sum(v) / len(v) for k, v in values.items()}
    bounds = bounds_of(period)
    several = any(len(group) > 1 for group in by_item.values())
    names = metric_values(period.scheme_key, sheet, bounds, units, manual) if several else {}
    for (unit_id, item_id), group in by_item.items():
        known = {r.id for r in items[item_id].rules}
        if len(group) == 1:
            entries[unit_id][item_id] = {k: v for k, v in group[0].values.items() if k in known}
        else:  # several assessors: each one's item score, combined as the sheet says
            marks = [(e.role_key or "", engine.score_item(
                items[item_id], names.get(unit_id, {}), {k: v for k, v in e.values.items() if k in known}).score)
                for e in group]
            item_scores[unit_id][item_id] = engine.combine_assessors(marks, sheet.assessors)
    return score_units(period.scheme_key, sheet, bounds, units, entries=entries, item_scores=item_scores,
                       manual=manual, metrics=metrics, area_metrics=area_metrics, progress=progress)


def missing_marks(period: AssessmentPeriod) -> list[tuple[Unit, str]]:
    """(unit, manual metric id) for each hand-entered metric no assessor has given a value for yet."""
    sheet = sheet_spec_of(period)
    manual = [m["id"] for m in sheet.metrics if is_entered(m)]
    if not manual:
        return []
    given = {(e.unit_id, e.item_key[len(METRIC_ITEM):]) for e in period.entries
             if e.superseded_in is None and e.item_key.startswith(METRIC_ITEM)}
    return [(unit, metric) for unit in assessed_units(period.scheme_key, sheet, bounds_of(period)) for metric in manual
            if (unit.id, metric) not in given]


def unfinished(period: AssessmentPeriod, today: dt.date | None = None,
               missing: tuple[int, str] | None = None) -> list[str]:
    """Why scores of this period would not be final yet: it has not ended, or marks are missing. `missing`:
    how many marks are missing and the first one named, when already known (a kept draft counts them)."""
    today = today or district_today(period.scheme_key)
    reasons = []
    if today <= period.ends_on:
        reasons.append(_("The period runs until %(day)s.", day=period.ends_on.isoformat()))
    if missing is None:
        marks = missing_marks(period)
        missing = (len(marks), f"{tr(marks[0][0].name)}: {marks[0][1]}") if marks else (0, "")
    if missing[0]:
        reasons.append(_("%(num)s hand-entered marks are missing (%(first)s…).", num=missing[0], first=missing[1]))
    return reasons


def revision_of(period: AssessmentPeriod, number: int | None) -> AssessmentRevision | None:
    """A published revision of the period, or None."""
    if not number or not period.revision:
        return None
    return db.session.scalar(db.select(AssessmentRevision).filter_by(period_id=period.id, number=number))


def latest_revision(period: AssessmentPeriod) -> AssessmentRevision | None:
    return revision_of(period, period.revision)


def check_publish(user: AnyUser, period: AssessmentPeriod, version: int | None = None, reason: str = "", *,
                  close_appeals: bool = False, today: dt.date | None = None,
                  provisional: bool = False) -> tuple[bool, list[str]]:
    """Refuse a publication that may not happen now (see `publish`); else (whether it closes the appeal window
    early, why its scores would be provisional). Quick: the period page asks it before it queues the
    publication, a job (publishing.py), and `publish` asks it again."""
    if not permissions.can_run_assessment(user, period.scheme_key):
        raise PermissionDenied(_("You may not publish this district's assessment."))
    expect_version(period, version)
    today = today or district_today(period.scheme_key)
    waiting = not period.revision and sheet_spec_of(period).appeal_days and (
        period.state == "open" or (period.appeal_until is not None and today <= period.appeal_until))
    if waiting and not close_appeals:
        raise Conflict(_("Units may still appeal (until the window closes): publish after it, or close it now."))
    undecided = db.session.scalar(db.select(func.count(AssessmentAppeal.id)).where(
        AssessmentAppeal.period_id == period.id, AssessmentAppeal.decision.is_(None)))
    if undecided:
        raise Conflict(_("Decide the %(num)s open appeals first.", num=undecided))
    reasons = unfinished(period, today)
    if reasons and not provisional:
        raise Conflict(" ".join([*reasons, _("Publish it as provisional, or wait.")]))
    previous = latest_revision(period)
    if previous is not None and not previous.provisional and not reason.strip():
        raise DomainError(_("Say why the published scores are corrected."))
    return bool(waiting), reasons


def publish(user: AnyUser, period: AssessmentPeriod, version: int | None = None, reason: str = "", *,
            close_appeals: bool = False, today: dt.date | None = None,
            provisional: bool = False, progress: Callable[[int, int], None] | None = None) -> AssessmentRevision:
    """Freeze the period's scores as a new revision: the first publication, or a correction (with why).

    A sheet with `appeal_days` is first published once its appeal window has passed; `close_appeals` publishes
    before (or without) it, and the audit log says so. A revision is never changed afterwards; the period
    shows the latest, and the earlier ones stay readable.

    Before the period ends, or with hand-entered marks missing, scores are refused unless `provisional`: the
    user says they know. A provisional revision is marked so on every page, PDF and API answer, and the
    final publication after it needs no correction reason and recomputes from the data.

    `progress(done, steps)` is told as the metrics are computed and once the scores are worked out, before
    anything is written (a job's progress commits).
    """
    waiting, reasons = check_publish(user, period, version, reason, close_appeals=close_appeals, today=today,
                                     provisional=provisional)
    previous = latest_revision(period)
    final_after_provisional = previous is not None and previous.provisional
    # A correction changes marks, not the data: the numbers taken at publication stay (cases closed since
    # then do not move other units' scores). A provisional publication froze nothing: the data are read again.
    kept = published_scores(period) if previous is not None and not final_after_provisional else None
    frozen = {s.subject_id: dict(s.metrics) for s in kept} if kept is not None else None
    frozen_areas = ({s.unit_id: {row["area"]: row["metrics"] for row in s.areas if "metrics" in row}
                     for s in kept if s.areas} if kept is not None else None)
    results = draft(period, metrics=frozen, area_metrics=frozen_areas, progress=progress)
    sheet = sheet_spec_of(period)
    history = _history(period)
    revision = AssessmentRevision(period=period, number=period.revision + 1, reason=clean_text(reason, 2000),
                                  published_by_id=user.id, provisional=bool(reasons))
    db.session.add(revision)
    for r in results:
        items = result_items(r)
        vetoes, grade = [v.id for v in r.vetoes], r.grade
        now = engine.PeriodResult(period.period_key, period.starts_on.year, r.total, grade.id if grade else None,
                                  bool(grade.passing) if grade else True, min(r.ranks.values(), default=None),
                                  tuple(f.id for f in r.flags), bool(vetoes), period.starts_on, period.ends_on)
        actions = [{"id": s.id, "name": s.name, "action": s.action}
                   for s in engine.streaks_hit(sheet, [*history.get(r.unit.id, []), now])]
        person = r.unit if isinstance(r.unit, Person) else None
        subject = ({"user_id": person.user_id, "post_id": person.post_id, "person_name": person.name,
                    "answers_to_id": person.unit.id if person.unit else None} if person else {"unit_id": r.unit.id})
        revision.scores.append(AssessmentScore(
            **subject, total=r.total, grade=grade.id if grade else None,
            passing=grade.passing if grade else None, ranks=r.ranks, flags=[f.id for f in r.flags],
            items=items, metrics={k: v for k, v in r.metrics.items()}, vetoes=vetoes, actions=actions,
            funding=r.funding, money=r.money, areas=[area_row(a) for a in r.areas] or None))
    period.revision, period.state = revision.number, "published"
    try:
        db.session.flush()
    except (StaleDataError, IntegrityError):
        raise Conflict(_("This assessment changed while you were looking at it. Look at it again.")) from None
    record_audit("assessment.publish", "assessment_period", period.id, user=user, scheme_key=period.scheme_key,
                 after={"revision": revision.number, "reason": revision.reason or None,
                        "appeals_closed_early": bool(waiting) or None,
                        "provisional": " ".join(reasons) if reasons else None})
    return revision


def result_items(result: UnitResult) -> dict[str, dict[str, Any]]:
    """A result's items as published: each item's score, what was deducted and added, and every rule's amount."""
    return {item_id: {"score": str(engine.shown(res.score)), "deducted": str(res.deducted), "bonus": str(res.bonus),
                      "rules": {x.rule.id: str(x.amount) for x in res.rules}}
            for item_id, res in result.score.items.items()}


def area_row(row: AreaResult) -> dict[str, Any]:
    """An area's score as published: its key, kind, where it rolls up, total and item scores, and a scored
    area's numbers (kept, so that a correction does not read the data again)."""
    out = {"area": row.area.key, "kind": row.area.kind, "depth": row.depth,
           "parent": row.parent.key if row.parent is not None else None, "total": str(row.total),
           "items": {item_id: str(engine.shown(res.score)) for item_id, res in row.score.items.items()}}
    if row.depth == 0:
        out["metrics"] = dict(row.metrics)
    return out


def _history(period: AssessmentPeriod) -> dict[Any, list[engine.PeriodResult]]:
    """Each unit's (or person's) published results of the same sheet's earlier periods, oldest first (for streaks)."""
    earlier = db.session.scalars(db.select(AssessmentPeriod).where(
        AssessmentPeriod.scheme_key == period.scheme_key, AssessmentPeriod.sheet_key == period.sheet_key,
        AssessmentPeriod.starts_on < period.starts_on, AssessmentPeriod.revision > 0)
        .order_by(AssessmentPeriod.starts_on))
    out: dict[Any, list[engine.PeriodResult]] = defaultdict(list)
    for row in earlier:
        for score in published_scores(row):
            out[score.subject_id].append(engine.PeriodResult(
                row.period_key, row.starts_on.year, Decimal(score.total), score.grade, bool(score.passing),
                min(score.ranks.values(), default=None), tuple(score.flags), bool(score.vetoes), row.starts_on,
                row.ends_on))
    return out


def check_correction(user: AnyUser, period: AssessmentPeriod, item_id: str, values: dict[str, Any],
                     reason: str) -> dict[str, float]:
    """Whether the office may correct this published period now, with these marks and a reason: the marks
    checked (a correction publishes the whole district again, as a job: it is refused at once instead)."""
    if not permissions.can_run_assessment(user, period.scheme_key):
        raise PermissionDenied(_("You may not correct this district's assessment."))
    if period.state != "published":
        raise Conflict(_("Only a published period is corrected; change the marks while it is open."))
    if not reason.strip():
        raise DomainError(_("Say why the published scores are corrected."))
    return checked_values(sheet_spec_of(period), item_id, values)


def correct(user: AnyUser, period: AssessmentPeriod, unit: Unit, item_id: str, values: dict[str, Any],
            reason: str) -> AssessmentRevision:
    """Correct a published period: the office's marks for an item replace the others', and a new revision
    is published with the reason; the published one before it stays as it was."""
    clean = check_correction(user, period, item_id, values, reason)
    replace_marks(user, period, unit.id, item_id, clean, clean_text(reason, 2000))
    previous = latest_revision(period)  # a correction of provisional results stays provisional while unfinished
    return publish(user, period, reason=reason, provisional=bool(previous and previous.provisional))


def replace_marks(user: AnyUser, period: AssessmentPeriod, unit_id: int, item_id: str, clean: dict[str, float],
                   reason: str) -> None:
    """The office's marks for an item of a unit replace everyone's: the others are kept, superseded."""
    for entry in [e for e in period.entries if e.unit_id == unit_id and e.item_key == item_id
                  and e.superseded_in is None]:
        entry.superseded_in = period.revision  # kept: revision n was made with it (0: none published)
    db.session.flush()
    db.session.expire(period, ["entries"])
    db.session.add(AssessmentEntry(period_id=period.id, unit_id=unit_id, item_key=item_id, assessor_id=user.id,
                                   role_key=None, values=clean, reason=reason))
    db.session.flush()
    db.session.expire(period, ["entries"])


# -- bulletins ---------------------------------------------------------------------------------------------------


# -- the leaders' dashboard ------------------------------------------------------------------------------------


# -- longer periods --------------------------------------------------------------------------------------------


# -- the marks grid: units × items, for an assessor ---------------------------------------------------------------

@dataclass
class MarksGrid:
    """What an assessor marks in a period, as a grid: a row per unit they mark, a column per number entered."""

    units: list[Unit]
    columns: list[tuple[str, str, Any, Any]]      # (item key, rule id, item name, rule label), in sheet order
    allowed: dict[int, set[str]]                  # per unit: the item keys this assessor marks
    values: dict[tuple[int, str, str], Any]       # (unit id, item key, rule id) → the number entered
    reasons: dict[int, str]                       # per unit: the reasons given (one per row)


def marks_grid(user: AnyUser, period: AssessmentPeriod) -> MarksGrid:
    """The assessor's own marks of the period for every unit they may mark, before publication (or while
    published results are provisional). Corrections after publication go item by item."""
    sheet = sheet_spec_of(period)
    if sheet.assessed.get("tiers"):
        raise NotFound(_("This sheet assesses people, not units."))
    units, allowed = [], {}
    for unit in assessed_units(period.scheme_key, sheet, bounds_of(period)):
        keys = {key for key, _name in markable(user, period, unit)}
        if keys and not (period.state == "published" and not _provisional(period)):
            units.append(unit)
            allowed[unit.id] = keys
    if not units:
        raise PermissionDenied(_("You have nothing to mark in this period."))
    wanted = set().union(*allowed.values())
    columns = [(key, rule, name, label) for key, name in _markable_entries(sheet) if key in wanted
               for rule, label in entered_rules(period, key)]
    mine = list(db.session.scalars(db.select(AssessmentEntry).filter_by(
        period_id=period.id, assessor_id=user.id, superseded_in=None)))
    values = {(e.unit_id, e.item_key, rule): value for e in mine for rule, value in (e.values or {}).items()}
    reasons: dict[int, list[str]] = defaultdict(list)
    for e in mine:
        if e.reason and e.reason not in reasons[e.unit_id]:
            reasons[e.unit_id].append(e.reason)
    return MarksGrid(units, columns, allowed, values, {u: "；".join(r) for u, r in reasons.items()})


def _provisional(period: AssessmentPeriod) -> bool:
    latest = latest_revision(period)
    return latest is not None and latest.provisional


def _markable_entries(sheet: SheetSpec) -> list[tuple[str, Any]]:
    """Every item an assessor enters numbers for, and every manual metric (as "metric:<id>"), in sheet order."""
    return [(i.id, i.name) for _s, i in sheet.items() if i.manual] + [
        (METRIC_ITEM + m["id"], m.get("name")) for m in sheet.metrics if is_entered(m)]


def enter_marks_grid(user: AnyUser, period: AssessmentPeriod, grid: MarksGrid,
                     typed: dict[tuple[int, str, str], str], reasons: dict[int, str]) -> dict[int, str]:
    """Enter every changed row of the grid in one go; the problems by unit (nothing is entered when any row
    has one: the caller rolls back). A row's reason goes with each item changed in it; evidence given item
    by item is kept."""
    problems: dict[int, str] = {}
    for unit in grid.units:
        # The row shows its items' reasons together: unless that text was edited, each item keeps its own.
        typed_reason = clean_text(reasons.get(unit.id), 2000)
        edited = typed_reason != clean_text(grid.reasons.get(unit.id), 2000)
        for key in sorted(grid.allowed[unit.id]):
            rules = [rule for item, rule, _n, _l in grid.columns if item == key]
            new = {rule: (typed.get((unit.id, key, rule)) or "").strip() for rule in rules}
            old = {rule: grid.values.get((unit.id, key, rule)) for rule in rules}
            if all(_same_number(new[r], old[r]) for r in rules) and not edited:
                continue
            if not any(new.values()) and not any(v is not None for v in old.values()):
                continue  # nothing entered, nothing before
            mine = my_entry(user, period, unit, key)
            reason = typed_reason if edited or not (mine and mine.reason) else mine.reason
            try:
                with db.session.begin_nested():
                    enter_marks(user, period, unit, key, new, reason, list(mine.evidence or []) if mine else [])
            except DomainError as exc:
                problems.setdefault(unit.id, str(exc))
    return problems


def _same_number(typed: str, before: Any) -> bool:
    if typed == "":
        return before is None
    try:
        return before is not None and float(typed) == float(before)
    except ValueError:
        return False


def marks_effect(period: AssessmentPeriod, typed: dict[str, dict[str, str]]) -> tuple[Decimal, Decimal]:
    """What a row's numbers take and give by themselves, per item key → {rule: number}: (deducted, bonus) —
    the live total of a grid row. Manual metrics feed other rules and are not counted here."""
    sheet = sheet_spec_of(period)
    items = {i.id: i for _s, i in sheet.items()}
    deducted = bonus = Decimal(0)
    for key, numbers in typed.items():
        item = items.get(key)
        if item is None:
            continue
        entered = dataclasses.replace(item, rules=tuple(r for r in item.rules if r.entered))
        clean = {}
        for rule, raw in numbers.items():
            try:
                clean[rule] = float(raw) if raw not in (None, "") else None
            except ValueError:
                continue
            if clean[rule] is not None and not (math.isfinite(clean[rule]) and 0 <= clean[rule] <= 100_000):
                clean[rule] = None
        result = engine.score_item(entered, {}, clean)
        deducted += result.deducted
        bonus += result.bonus
    return deducted, bonus
