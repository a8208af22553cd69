"""Scoring a period: the units a sheet assesses, their metrics computed from the data (cases, patrol
compliance, records), and their scores, grades, ranks and flags — the dry run an office looks at before
anything is entered or published."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from ..audit.service import record_audit
from ..auth import permissions
from ..calendar.clock import district_today
from ..core.database import utcnow
from ..core.errors import Conflict, DomainError, NotFound, PermissionDenied
from ..definitions.models import DefinitionVersion
from ..definitions.service import current_scheme_data, current_version
from ..expressions import compile_expression
from ..extensions import db
from ..org.models import Unit
from ..patrols import engine as patrol_engine
from ..web.i18n import tr
from . import engine
from .engine import Flag, Grade, SheetSpec, UnitScore, Veto
from .models import AssessmentAppeal, AssessmentEntry, AssessmentPeriod, AssessmentRevision, AssessmentScore
from .sources import is_entered, period_bounds, source_of


def sheet_of(scheme_key: str, sheet_id: str) -> tuple[DefinitionVersion, SheetSpec]:
    """The version of a score sheet in force in a district, compiled."""
    version = current_version(scheme_key)
    row = version.member("score_sheet", sheet_id) if version else None
    if row is None:
        raise NotFound(_("This district has no such score sheet."))
    return row, engine.sheet_spec(row.data)


def period_of(sheet: SheetSpec, day: dt.date) -> patrol_engine.Period:
    return patrol_engine.period_of(sheet.period, day)


def assessed_units(scheme_key: str, sheet: SheetSpec) -> list[Unit]:
    """The active units the sheet scores: its unit kinds and its listed units."""
    kinds, keys = sheet.assessed.get("unit_kinds", []), sheet.assessed.get("units", [])
    query = db.select(Unit).where(Unit.scheme_key == scheme_key, Unit.active.is_(True),
                                  or_(Unit.kind.in_(kinds), Unit.key.in_(keys))).order_by(Unit.path)
    return list(db.session.scalars(query))


# -- metrics -------------------------------------------------------------------------------------------------

def metric_values(scheme_key: str, sheet: SheetSpec, period: patrol_engine.Period, units: list[Unit],
                  manual: dict[int, dict[str, Any]] | None = None) -> dict[int, dict[str, Any]]:
    """Every metric of the sheet for every unit: {unit id: {metric id: value}} (None where there is none). Each
    metric's source (`sources.py`) computes it, or assessors entered it (`manual`: the period's marks)."""
    manual = manual or {}
    unit_ids = [u.id for u in units]
    values: dict[int, dict[str, Any]] = {unit_id: {} for unit_id in unit_ids}
    for metric in sheet.metrics:
        source = source_of(metric)
        per_unit = source.compute(scheme_key, metric, period, unit_ids) if source.compute else {}
        for unit_id in unit_ids:
            value = manual.get(unit_id, {}).get(metric["id"]) if source.entered else per_unit.get(unit_id)
            values[unit_id][metric["id"]] = value
    return values


# -- a period's results -------------------------------------------------------------------------------------

@dataclass
class UnitResult:
    unit: Unit
    metrics: dict[str, Any]
    score: UnitScore
    grade: Grade | None = None
    ranks: dict[str, int] = field(default_factory=dict)  # per ranking group
    flags: list[Flag] = field(default_factory=list)
    vetoes: list[Veto] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return engine.shown(self.score.total)


def ranking_groups(scheme_key: str, sheet: SheetSpec, units: list[Unit]) -> dict[str, list[Unit]]:
    """The units of each ranking group the sheet names (scheme `unit_groups`), or all in one group; with
    `by_difficulty`, each group is split by the units' difficulty tier."""
    data = current_scheme_data(scheme_key) or {}
    defined = {g["id"]: g for g in data.get("unit_groups", [])}
    wanted = sheet.ranking.get("groups") or []
    groups: dict[str, list[Unit]] = {}
    for group_id in wanted:
        group = defined.get(group_id, {})
        kinds, keys = group.get("unit_kinds", []), group.get("units", [])
        groups[group_id] = [u for u in units if u.kind in kinds or u.key in keys]
    if not wanted:
        groups["all"] = list(units)
    if sheet.ranking.get("by_difficulty"):
        split: dict[str, list[Unit]] = {}
        for group_id, members in groups.items():
            for unit in members:
                split.setdefault(f"{group_id}:{unit.difficulty or 0}", []).append(unit)
        groups = split
    return groups


def score_units(scheme_key: str, sheet: SheetSpec, period: patrol_engine.Period, units: list[Unit], *,
                entries: dict[int, dict[str, dict[str, Any]]] | None = None,
                item_scores: dict[int, dict[str, Decimal]] | None = None,
                manual: dict[int, dict[str, Any]] | None = None,
                metrics: dict[int, dict[str, Any]] | None = None) -> list[UnitResult]:
    """Every unit's score for a period from the data (or from `metrics` already taken), the assessors'
    numbers ({unit id: {item: {rule: n}}}) or combined item scores, with grades, ranks within groups and flags."""
    values = metrics if metrics is not None else metric_values(scheme_key, sheet, period, units, manual)
    entries, item_scores = entries or {}, item_scores or {}
    results = {}
    for u in units:
        names = {**values.get(u.id, {}), **(manual or {}).get(u.id, {})}
        try:
            score = engine.score_unit(sheet, names, entries.get(u.id), item_scores.get(u.id))
        except engine.ScoringError as exc:
            raise DomainError(_("%(unit)s cannot be scored: %(problem)s", unit=tr(u.name), problem=str(exc))) from None
        results[u.id] = UnitResult(u, names, score)
    longer = _longer_metrics(scheme_key, sheet, period, units)
    failing = engine.failing_grade(sheet)
    for result in results.values():
        result.vetoes = _vetoes(sheet, sheet.period, result.metrics, result.unit)
        for per, numbers in longer.items():
            result.vetoes += _vetoes(sheet, per, numbers.get(result.unit.id, {}), result.unit)
        result.grade = engine.grade_of(sheet, result.score.total)
        if result.vetoes and failing is not None:
            result.grade = failing  # a veto fails the unit whatever the score
    barred = {unit_id for unit_id, r in results.items() if r.vetoes}
    for group_id, members in ranking_groups(scheme_key, sheet, units).items():
        scores = {u.id: results[u.id].score.total for u in members}
        for unit_id, position in engine.rank(scores).items():
            results[unit_id].ranks[group_id] = position
        for unit_id, flags in engine.flags_for(sheet, scores, barred).items():
            results[unit_id].flags.extend(f for f in flags if f not in results[unit_id].flags)
    return [results[u.id] for u in units]


def _vetoes(sheet: SheetSpec, per: str, names: dict[str, Any], unit: Unit) -> list[Veto]:
    try:
        return engine.vetoed(sheet, names, per)
    except engine.ScoringError as exc:
        raise DomainError(_("%(unit)s cannot be scored: %(problem)s", unit=tr(unit.name), problem=str(exc))) from None


def _longer_metrics(scheme_key: str, sheet: SheetSpec, period: patrol_engine.Period,
                    units: list[Unit]) -> dict[str, dict[int, dict[str, Any]]]:
    """For vetoes read over a longer period (the year), the metrics they name over that period so far:
    {period kind: {unit id: {metric id: value}}}. The scheme check keeps these to metrics from the data."""
    out = {}
    for per, vetoes in engine.longer_vetoes(sheet).items():
        named = set().union(*(v.when.names for v in vetoes))
        span = patrol_engine.period_of(per, period.start)
        so_far = patrol_engine.Period(per, span.start, min(span.end, period.end))
        narrowed = replace(sheet, metrics=tuple(m for m in sheet.metrics if m["id"] in named))
        out[per] = metric_values(scheme_key, narrowed, so_far, units)
    return out


def score_period(scheme_key: str, sheet_id: str, day: dt.date,
                 entries: dict[int, dict[str, dict[str, Any]]] | None = None,
                 manual: dict[int, dict[str, Any]] | None = None) -> tuple[patrol_engine.Period, list[UnitResult]]:
    """A dry run of the sheet in force for the period containing `day`: nothing is stored."""
    _row, sheet = sheet_of(scheme_key, sheet_id)
    period = period_of(sheet, day)
    return period, score_units(scheme_key, sheet, period, assessed_units(scheme_key, sheet), entries=entries,
                               manual=manual)


# -- the process: open, enter, appeal, publish, correct -------------------------------------------------------

METRIC_ITEM = "metric:"  # entries for a `manual` metric are kept under "metric:<id>"


def sheet_spec_of(period: AssessmentPeriod) -> SheetSpec:
    """The sheet a period is scored on: the version it was opened with, whatever is in force now."""
    return engine.sheet_spec(period.definition_version.data)


_spec = sheet_spec_of


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


def my_entry(user: Any, period: AssessmentPeriod, unit: Unit, item_id: str) -> AssessmentEntry | None:
    return db.session.scalar(db.select(AssessmentEntry).filter_by(period_id=period.id, unit_id=unit.id,
                                                                  item_key=item_id, assessor_id=user.id,
                                                                  superseded_in=None))


def _bounds_of(period: AssessmentPeriod) -> patrol_engine.Period:
    return patrol_engine.Period(_spec(period).period, period.starts_on, period.ends_on)


def _expect(period: AssessmentPeriod, version: int | None) -> None:
    if version is not None and version != period.version:
        raise Conflict(_("This assessment changed while you were looking at it. Look at it again."))


def open_period(user: Any, scheme_key: str, sheet_id: str, day: dt.date) -> AssessmentPeriod:
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


def _check_reader(user: Any, scheme_key: str) -> None:
    if not permissions.can_view_assessment(user, scheme_key):
        raise PermissionDenied(_("You may not view this assessment."))


def get_period(user: Any, period_id: int) -> AssessmentPeriod:
    period = db.session.get(AssessmentPeriod, period_id)
    if period is None:
        raise NotFound(_("No such assessment period."))
    _check_reader(user, period.scheme_key)
    return period


def list_periods(user: Any, scheme_key: str) -> list[AssessmentPeriod]:
    """A district's periods, latest first: for anyone who reads, marks or runs its assessment."""
    _check_reader(user, scheme_key)
    return list(db.session.scalars(db.select(AssessmentPeriod).filter_by(scheme_key=scheme_key)
                                   .order_by(AssessmentPeriod.starts_on.desc(), AssessmentPeriod.sheet_key)))


def visible(user: Any, period: AssessmentPeriod, rows: list, unit_of: Callable[[Any], Unit]) -> list:
    """The rows (scores, draft results, appeals) of units the user may see: all of them for the office and
    district-wide readers, else those of units they may view or mark."""
    if permissions.can_view_all_scores(user, period.scheme_key):
        return rows
    return [r for r in rows if permissions.can_view_unit_scores(user, unit_of(r)) or assesses(user, period, unit_of(r))]


def enter_marks(user: Any, period: AssessmentPeriod, unit: Unit, item_id: str, values: dict[str, Any],
                reason: str = "", evidence: list[int] | None = None) -> AssessmentEntry:
    """An assessor's numbers for the rules of an item that assessors enter (or the value of a `manual`
    metric, as item "metric:<id>"), with the reason and evidence; entering again replaces one's own."""
    latest = latest_revision(period)
    if period.state not in ("open", "appeal") and not (latest is not None and latest.provisional):
        raise Conflict(_("Marks are entered while the period is open."))
    if unit.scheme_key != period.scheme_key or not permissions.can_assess_unit(user, unit):
        raise PermissionDenied(_("You may not assess this unit."))
    sheet = _spec(period)
    clean = _checked_values(sheet, item_id, values)
    role = _assessor_role(user, unit, sheet, item_id)
    if any(v != 0 for v in clean.values()) and not reason.strip():
        raise DomainError(_("Give the reason for a deduction."))
    entry = db.session.scalar(db.select(AssessmentEntry).filter_by(
        period_id=period.id, unit_id=unit.id, item_key=item_id, assessor_id=user.id, superseded_in=None))
    before = dict(entry.values) if entry else None
    if entry is None:
        entry = AssessmentEntry(period=period, unit=unit, item_key=item_id, assessor_id=user.id)
        db.session.add(entry)
    entry.role_key = role
    entry.values, entry.reason, entry.evidence = clean, reason.strip()[:2000], list(evidence or []) or None
    entry.entered_at = utcnow()
    db.session.flush()
    record_audit("assessment.enter", "assessment_entry", entry.id, user=user, scheme_key=period.scheme_key,
                 before={"values": before} if before is not None else None,
                 after={"unit": unit.key, "item": item_id, "values": clean})
    return entry


def _checked_values(sheet: SheetSpec, item_id: str, values: dict[str, Any]) -> dict[str, float]:
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


def _assessor_role(user: Any, unit: Unit, sheet: SheetSpec, item_id: str) -> str | None:
    """The role the assessor marks in (for weighted assessors); the roles the sheet or item names limit who may."""
    wanted = engine.marked_by(sheet, item_id.removeprefix(METRIC_ITEM))
    if not permissions.can_assess_unit(user, unit, wanted):
        raise PermissionDenied(_("This item is marked by other assessors."))
    held = sorted(permissions.assessor_roles(user, unit))
    return next((r for r in held if r in wanted), held[0] if held else None)


def markable(user: Any, period: AssessmentPeriod, unit: Unit) -> list[tuple[str, Any]]:
    """The items and manual metrics (as "metric:<id>") the user may mark for a unit: until publication, those
    of their roles; once published, every one for the office, to correct."""
    sheet = sheet_spec_of(period)
    entries = [(i.id, i.name) for _s, i in sheet.items() if i.manual] + [
        (METRIC_ITEM + m["id"], m.get("name")) for m in sheet.metrics if is_entered(m)]
    if period.state == "published" and permissions.can_run_assessment(user, period.scheme_key):
        return entries  # the office corrects any of them
    latest = latest_revision(period)
    provisional = latest is not None and latest.provisional  # marks are still being given: as while open
    if period.state not in ("open", "appeal") and not provisional:  # marks may be put right while units appeal
        return []
    return [(key, name) for key, name in entries
            if permissions.can_assess_unit(user, unit, engine.marked_by(sheet, key.removeprefix(METRIC_ITEM)))]


def assesses(user: Any, period: AssessmentPeriod, unit: Unit) -> bool:
    """Whether the user marks anything of this sheet for the unit (what an assessor's page lists)."""
    sheet = sheet_spec_of(period)
    keys = [i.id for _s, i in sheet.items() if i.manual] + [m["id"] for m in sheet.metrics if is_entered(m)]
    return any(permissions.can_assess_unit(user, unit, engine.marked_by(sheet, key)) for key in keys)


def draft(period: AssessmentPeriod, sheet: SheetSpec | None = None,
          metrics: dict[int, dict[str, Any]] | None = None) -> list[UnitResult]:
    """The period's scores as they stand: the data, and every assessor's entries combined per item.

    With `sheet`, the same period scored on another version of the sheet (entries for items or rules it no
    longer has are left out).
    """
    sheet = sheet or _spec(period)
    items = {i.id: i for _s, i in sheet.items()}
    units = assessed_units(period.scheme_key, sheet)
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
    bounds = _bounds_of(period)
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
                       manual=manual, metrics=metrics)


def open_appeals(user: Any, period: AssessmentPeriod, version: int | None = None,
                 today: dt.date | None = None) -> AssessmentPeriod:
    """Show units their draft scores and let them appeal for the sheet's `appeal_days` working days."""
    from ..workflow.deadlines import calendar_for

    if not permissions.can_run_assessment(user, period.scheme_key):
        raise PermissionDenied(_("You may not run this district's assessment."))
    _expect(period, version)
    if period.state != "open":
        raise Conflict(_("Only an open period goes to appeal."))

    today = today or district_today(period.scheme_key)
    days = _spec(period).appeal_days
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


def file_appeal(user: Any, period: AssessmentPeriod, unit: Unit, item_id: str, text: str,
                today: dt.date | None = None) -> AssessmentAppeal:
    """A unit asks for a deduction to be looked at again (a review or appeal), within the appeal window."""

    spec = _spec(period)
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


def decide_appeal(user: Any, appeal: AssessmentAppeal, decision: str, note: str = "",
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
        clean = _checked_values(_spec(period), appeal.item_key, values or {})
        if not clean:
            raise DomainError(_("Enter the corrected marks that replace the contested ones."))
        _replace_marks(user, period, appeal.unit_id, appeal.item_key, clean,
                       note.strip()[:2000] or _("Appeal upheld."))
    appeal.decision, appeal.note = decision, note.strip()[:2000] or None
    appeal.decided_by_id, appeal.decided_at = user.id, utcnow()
    db.session.flush()
    record_audit("assessment.decide", "assessment_appeal", appeal.id, user=user, scheme_key=period.scheme_key,
                 after={"decision": decision})
    return appeal


def missing_marks(period: AssessmentPeriod) -> list[tuple[Unit, str]]:
    """(unit, manual metric id) for each hand-entered metric no assessor has given a value for yet."""
    sheet = _spec(period)
    manual = [m["id"] for m in sheet.metrics if is_entered(m)]
    if not manual:
        return []
    given = {(e.unit_id, e.item_key[len(METRIC_ITEM):]) for e in period.entries
             if e.superseded_in is None and e.item_key.startswith(METRIC_ITEM)}
    return [(unit, metric) for unit in assessed_units(period.scheme_key, sheet) for metric in manual
            if (unit.id, metric) not in given]


def unfinished(period: AssessmentPeriod, today: dt.date | None = None) -> list[str]:
    """Why scores of this period would not be final yet: it has not ended, or marks are missing."""
    today = today or district_today(period.scheme_key)
    reasons = []
    if today <= period.ends_on:
        reasons.append(_("The period runs until %(day)s.", day=period.ends_on.isoformat()))
    missing = missing_marks(period)
    if missing:
        reasons.append(_("%(num)s hand-entered marks are missing (%(first)s…).", num=len(missing),
                         first=f"{tr(missing[0][0].name)}: {missing[0][1]}"))
    return reasons


def revision_of(period: AssessmentPeriod, number: int | None) -> AssessmentRevision | None:
    """A published revision of the period, or None."""
    if not number or not period.revision:
        return None
    return db.session.scalar(db.select(AssessmentRevision).filter_by(period_id=period.id, number=number))


def latest_revision(period: AssessmentPeriod) -> AssessmentRevision | None:
    return revision_of(period, period.revision)


def publish(user: Any, period: AssessmentPeriod, version: int | None = None, reason: str = "", *,
            close_appeals: bool = False, today: dt.date | None = None,
            provisional: bool = False) -> AssessmentRevision:
    """Freeze the period's scores as a new revision: the first publication, or a correction (with why).

    A sheet with `appeal_days` is first published once its appeal window has passed; `close_appeals` publishes
    before (or without) it, and the audit log says so. A revision is never changed afterwards; the period
    shows the latest, and the earlier ones stay readable.

    Before the period ends, or with hand-entered marks missing, scores are refused unless `provisional`: the
    user says they know. A provisional revision is marked so on every page, PDF and API answer, and the
    final publication after it needs no correction reason and recomputes from the data.
    """

    if not permissions.can_run_assessment(user, period.scheme_key):
        raise PermissionDenied(_("You may not publish this district's assessment."))
    _expect(period, version)
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
    final_after_provisional = previous is not None and previous.provisional
    if previous is not None and not final_after_provisional and not reason.strip():
        raise DomainError(_("Say why the published scores are corrected."))
    # A correction changes marks, not the data: the numbers taken at publication stay (cases closed since
    # then do not move other units' scores). A provisional publication froze nothing: the data are read again.
    frozen = ({s.unit_id: dict(s.metrics) for s in published_scores(period)}
              if previous is not None and not final_after_provisional else None)
    results = draft(period, metrics=frozen)
    sheet = sheet_spec_of(period)
    history = _history(period)
    revision = AssessmentRevision(period=period, number=period.revision + 1, reason=reason.strip()[:2000],
                                  published_by_id=user.id, provisional=bool(reasons))
    db.session.add(revision)
    for r in results:
        items = {item_id: {"score": str(engine.shown(res.score)), "deducted": str(res.deducted),
                           "bonus": str(res.bonus), "rules": {x.rule.id: str(x.amount) for x in res.rules}}
                 for item_id, res in r.score.items.items()}
        vetoes, grade = [v.id for v in r.vetoes], r.grade
        now = engine.PeriodResult(period.period_key, period.starts_on.year, r.total, grade.id if grade else None,
                                  bool(grade.passing) if grade else True, min(r.ranks.values(), default=None),
                                  tuple(f.id for f in r.flags), bool(vetoes), period.starts_on, period.ends_on)
        actions = [{"id": s.id, "name": s.name, "action": s.action}
                   for s in engine.streaks_hit(sheet, [*history.get(r.unit.id, []), now])]
        revision.scores.append(AssessmentScore(
            unit_id=r.unit.id, total=r.total, grade=grade.id if grade else None,
            passing=grade.passing if grade else None, ranks=r.ranks, flags=[f.id for f in r.flags],
            items=items, metrics={k: v for k, v in r.metrics.items()}, vetoes=vetoes, actions=actions,
            funding=engine.funding(sheet.funding, r.total, r.vetoes) if sheet.funding else None))
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


def _history(period: AssessmentPeriod) -> dict[int, list[engine.PeriodResult]]:
    """Each unit's published results of the same sheet's earlier periods, oldest first (for streaks)."""
    earlier = db.session.scalars(db.select(AssessmentPeriod).where(
        AssessmentPeriod.scheme_key == period.scheme_key, AssessmentPeriod.sheet_key == period.sheet_key,
        AssessmentPeriod.starts_on < period.starts_on, AssessmentPeriod.revision > 0)
        .order_by(AssessmentPeriod.starts_on))
    out: dict[int, list[engine.PeriodResult]] = defaultdict(list)
    for row in earlier:
        for score in published_scores(row):
            out[score.unit_id].append(engine.PeriodResult(
                row.period_key, row.starts_on.year, Decimal(score.total), score.grade, bool(score.passing),
                min(score.ranks.values(), default=None), tuple(score.flags), bool(score.vetoes), row.starts_on,
                row.ends_on))
    return out


def correct(user: Any, period: AssessmentPeriod, unit: Unit, item_id: str, values: dict[str, Any],
            reason: str) -> AssessmentRevision:
    """Correct a published period: the office's marks for an item replace the others', and a new revision
    is published with the reason; the published one before it stays as it was."""
    if not permissions.can_run_assessment(user, period.scheme_key):
        raise PermissionDenied(_("You may not correct this district's assessment."))
    if period.state != "published":
        raise Conflict(_("Only a published period is corrected; change the marks while it is open."))
    if not reason.strip():
        raise DomainError(_("Say why the published scores are corrected."))
    clean = _checked_values(_spec(period), item_id, values)
    _replace_marks(user, period, unit.id, item_id, clean, reason.strip()[:2000])
    previous = latest_revision(period)  # a correction of provisional results stays provisional while unfinished
    return publish(user, period, reason=reason, provisional=bool(previous and previous.provisional))


def _replace_marks(user: Any, period: AssessmentPeriod, unit_id: int, item_id: str, clean: dict[str, float],
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


def published_scores(period: AssessmentPeriod, revision: int | None = None) -> list[AssessmentScore]:
    """A published revision's scores (default the latest), in unit order."""
    number = revision or period.revision
    row = db.session.scalar(db.select(AssessmentRevision).filter_by(period_id=period.id, number=number))
    return list(row.scores) if row else []


# -- bulletins ---------------------------------------------------------------------------------------------------

def bulletin(period: AssessmentPeriod, revision: int | None = None, earlier: int = 5) -> dict[str, Any]:
    """What a bulletin shows for a published revision: rankings per group, flags, grade counts, the
    change since the previous period and the group averages over the last periods."""
    if not period.revision:
        raise Conflict(_("This period is not published yet."))
    sheet = sheet_spec_of(period)
    scores = published_scores(period, revision)
    data = current_scheme_data(period.scheme_key) or {}
    group_names = {g["id"]: g.get("name") for g in data.get("unit_groups", [])}
    before = list(db.session.scalars(db.select(AssessmentPeriod).where(
        AssessmentPeriod.scheme_key == period.scheme_key, AssessmentPeriod.sheet_key == period.sheet_key,
        AssessmentPeriod.starts_on < period.starts_on, AssessmentPeriod.revision > 0)
        .order_by(AssessmentPeriod.starts_on.desc()).limit(earlier)))[::-1]
    previous = {s.unit_id: Decimal(s.total) for s in published_scores(before[-1])} if before else {}
    groups: dict[str, list[AssessmentScore]] = defaultdict(list)
    for score in scores:
        for group_id in score.ranks:
            groups[group_id].append(score)
    order = list(sheet.ranking.get("groups") or [])
    ranking = [{"id": group_id, "name": group_names.get(group_id.split(":")[0]),
                "rows": sorted(rows, key=lambda s, g=group_id: (s.ranks[g], s.unit.path))}
               for group_id, rows in sorted(groups.items(), key=lambda kv: (
                   order.index(kv[0].split(":")[0]) if kv[0].split(":")[0] in order else len(order), kv[0]))]
    grade_counts = [(g, sum(1 for s in scores if s.grade == g.id)) for g in sheet.grades]
    flagged = [(f, [s for s in scores if f.id in s.flags]) for f in sheet.flags]
    history = [*before, period]
    trend_labels = [p.period_key for p in history]
    trend = []
    for group_id, rows in groups.items():
        members = {s.unit_id for s in rows}
        series = []
        for row in history:
            totals = [Decimal(s.total) for s in (scores if row is period else published_scores(row))
                      if s.unit_id in members]
            series.append(sum(totals) / len(totals) if totals else None)
        trend.append((group_names.get(group_id.split(":")[0]), series))
    return {"period": period, "sheet": sheet, "scores": scores, "ranking": ranking, "grade_counts": grade_counts,
            "flagged": flagged, "previous": previous, "trend_labels": trend_labels, "trend": trend,
            "revision": revision or period.revision,
            "provisional": bool(db.session.scalar(db.select(AssessmentRevision.provisional).filter_by(
                period_id=period.id, number=revision or period.revision)))}


@dataclass
class Comparison:
    """One unit on the period's sheet and on another version of it."""

    unit: Unit
    before: Decimal
    after: Decimal
    rank_before: int | None
    rank_after: int | None
    grade_before: Grade | None
    grade_after: Grade | None

    @property
    def change(self) -> Decimal:
        return self.after - self.before


def compare_versions(user: Any, period: AssessmentPeriod, scheme_version_id: int) -> list[Comparison]:
    """A dry run of another stored version of the period's sheet on this period's data and marks: unit by unit,
    how the score, grade and rank would change. Nothing is stored."""
    from ..definitions.service import get_scheme_version

    if not permissions.can_run_assessment(user, period.scheme_key):
        raise PermissionDenied(_("You may not run this district's assessment."))
    version = get_scheme_version(scheme_version_id)
    row = version.member("score_sheet", period.sheet_key) if version.scheme_key == period.scheme_key else None
    if row is None:
        raise NotFound(_("That scheme version has no such score sheet."))
    before = {r.unit.id: r for r in draft(period)}
    after = {r.unit.id: r for r in draft(period, engine.sheet_spec(row.data))}
    out = []
    for unit_id in [*before, *(u for u in after if u not in before)]:
        old, new = before.get(unit_id), after.get(unit_id)
        unit = (old or new).unit
        out.append(Comparison(unit, old.total if old else Decimal(0), new.total if new else Decimal(0),
                              min(old.ranks.values(), default=None) if old else None,
                              min(new.ranks.values(), default=None) if new else None,
                              old.grade if old else None, new.grade if new else None))
    return out


def public_flags(scheme_key: str) -> list[dict[str, Any]]:
    """For the public page: each sheet's last published period and, per flag, the public units holding it."""
    data = current_scheme_data(scheme_key)
    if not data or not (data.get("public") or {}).get("flags_list"):
        raise NotFound(_("This district does not publish its flags."))
    out = []
    for sheet_id in data.get("score_sheets", []):
        period = db.session.scalar(db.select(AssessmentPeriod).where(
            AssessmentPeriod.scheme_key == scheme_key, AssessmentPeriod.sheet_key == sheet_id,
            AssessmentPeriod.revision > 0).order_by(AssessmentPeriod.starts_on.desc()).limit(1))
        if period is None:
            continue
        sheet = sheet_spec_of(period)
        scores = [s for s in published_scores(period) if s.unit.public]
        flags = [(f, [s.unit for s in scores if f.id in s.flags]) for f in sheet.flags]
        out.append({"sheet": sheet, "period": period, "flags": [(f, units) for f, units in flags if units]})
    return out


# -- the leaders' dashboard ------------------------------------------------------------------------------------

@dataclass
class DashboardRow:
    unit: Unit
    score: Decimal | None
    grade: str | None
    period: AssessmentPeriod | None
    found: int
    rectification_rate: float | None
    on_time_rate: float | None
    overdue: int
    patrols_short: int


def dashboard(user: Any, scheme_key: str, today: dt.date) -> list[DashboardRow]:
    """Per unit in the reader's reach: the latest published score, this month's case rates, overdue cases
    and the patrol periods running now that its people are short on."""
    from ..patrols import service as patrols
    from ..workflow.ledger import ledger_rows
    from ..workflow.models import Case

    if not permissions.can_view_dashboard(user, scheme_key):
        raise PermissionDenied(_("You may not view this district's dashboard."))
    scope = permissions.dashboard_reach(user, scheme_key)
    data = current_scheme_data(scheme_key) or {}
    # The latest published period of each sheet, so that every assessed unit shows its own sheet's score.
    scores: dict[int, tuple[AssessmentScore, AssessmentPeriod]] = {}
    units: dict[int, Unit] = {}
    for sheet_id in data.get("score_sheets", []):
        period = db.session.scalar(db.select(AssessmentPeriod).where(
            AssessmentPeriod.scheme_key == scheme_key, AssessmentPeriod.sheet_key == sheet_id,
            AssessmentPeriod.revision > 0).order_by(AssessmentPeriod.starts_on.desc()).limit(1))
        if period is None:
            continue
        for score in published_scores(period):
            scores.setdefault(score.unit_id, (score, period))
        units.update({u.id: u for u in assessed_units(scheme_key, sheet_spec_of(period))})
    if not units:
        units = {u.id: u for u in db.session.scalars(db.select(Unit).filter_by(scheme_key=scheme_key, active=True))}
    units = sorted(units.values(), key=lambda u: u.path)
    units = [u for u in units if scope.covers_unit(u.id)]
    month = patrol_engine.period_of("month", today)
    ledger = {r["unit"].id: r for r in ledger_rows(scheme_key, month.start, month.end) if r["unit"] is not None}
    overdue = dict(db.session.execute(select(Case.unit_id, func.count(Case.id)).where(
        Case.scheme_key == scheme_key, Case.overdue.is_(True), Case.state_kind != "final").group_by(Case.unit_id))
        .all())
    short: dict[int, int] = defaultdict(int)
    for rule in patrols.rules_of(scheme_key):
        current = patrol_engine.period_of(rule.per, today)
        for v in patrols.compliance(scheme_key, rule, current.start, current.end, today):
            if v.due and not v.met:
                for unit_id in set(v.subject.get("unit_ids") or [v.subject.get("unit_id")]):
                    short[unit_id] += 1
    rows = []
    for unit in units:
        (score, period), row = scores.get(unit.id, (None, None)), ledger.get(unit.id, {})
        rows.append(DashboardRow(unit, Decimal(score.total) if score else None, score.grade if score else None,
                                 period, int(row.get("found", 0)), row.get("rectification_rate"),
                                 row.get("on_time_rate"), int(overdue.get(unit.id, 0)), short.get(unit.id, 0)))
    return rows


def behind_deductions(user: Any, period: AssessmentPeriod, unit: Unit) -> dict[str, Any]:
    """The drill-down of one unit's score: each item's deductions by rule, the assessors' marks with their
    reasons and evidence, the unit's cases of the period not rectified or not on time, and its patrol misses."""
    from ..workflow.ledger import uncounted
    from ..workflow.models import Case, CaseDeadline

    if not permissions.can_view_deductions(user, period, unit):
        raise PermissionDenied(_("You may not view this unit's scores."))
    sheet = sheet_spec_of(period)
    published = {s.unit_id: s for s in published_scores(period)} if period.revision else {}
    if unit.id in published:
        items = published[unit.id].items
    else:
        result = next((r for r in draft(period) if r.unit.id == unit.id), None)
        items = {i: {"score": str(engine.shown(r.score)), "deducted": str(r.deducted), "bonus": str(r.bonus),
                     "rules": {x.rule.id: str(x.amount) for x in r.rules}}
                 for i, r in (result.score.items.items() if result else [])}
    begin, finish = period_bounds(period.scheme_key, _bounds_of(period))
    late = select(CaseDeadline.case_id).where(CaseDeadline.met.is_(False))
    cases = list(db.session.scalars(db.select(Case).where(
        Case.scheme_key == period.scheme_key, Case.unit_id == unit.id, Case.created_at >= begin,
        Case.created_at < finish, ~uncounted(),
        or_(Case.outcome.is_(None), Case.outcome != "resolved", Case.overdue.is_(True),
            Case.id.in_(late))).order_by(Case.id)))
    # What the metrics' sources list behind the unit's values (the patrol periods it missed).
    misses = [miss for metric in sheet.metrics if source_of(metric).misses
              for miss in source_of(metric).misses(period.scheme_key, metric, _bounds_of(period), unit.id)]
    entries = [e for e in period.entries if e.unit_id == unit.id]
    return {"sheet": sheet, "items": items, "cases": cases, "misses": misses, "entries": entries}


# -- longer periods --------------------------------------------------------------------------------------------

@dataclass
class CombinedScore:
    unit: Unit
    averages: dict[str, Decimal | None]  # sheet id → average published score over the period
    score: Decimal | None                # None when a sheet named has no published score for the unit
    grade: Grade | None
    vetoes: list[Veto] = field(default_factory=list)  # read on the whole period's numbers (the year's)
    provisional: bool = False  # a score it averages is from provisional results


def combined_scores(scheme_key: str, sheet_id: str, combine_id: str, day: dt.date) -> tuple[
        patrol_engine.Period, list[CombinedScore]]:
    """A sheet's `combine` formula over the longer period containing `day` (the year score from the monthly
    average and the year-end check): each sheet id stands for the unit's average published score in it."""
    _row, sheet = sheet_of(scheme_key, sheet_id)
    rule = next((c for c in sheet.combine if c["id"] == combine_id), None)
    if rule is None:
        raise NotFound(_("This score sheet has no such combination."))
    span = patrol_engine.period_of(rule["period"], day)
    names = [sheet_id, *rule.get("sheets", [])]
    totals: dict[str, dict[int, list[Decimal]]] = {name: defaultdict(list) for name in names}
    periods = db.session.scalars(db.select(AssessmentPeriod).where(
        AssessmentPeriod.scheme_key == scheme_key, AssessmentPeriod.sheet_key.in_(names),
        AssessmentPeriod.revision > 0, AssessmentPeriod.starts_on >= span.start,
        AssessmentPeriod.ends_on <= span.end))
    unsure: set[int] = set()
    for period in periods:
        for score in published_scores(period):
            totals[period.sheet_key][score.unit_id].append(Decimal(score.total))
            if period.provisional:
                unsure.add(score.unit_id)
    formula = compile_expression(rule["formula"])
    units = assessed_units(scheme_key, sheet)
    numbers = _longer_metrics(scheme_key, sheet, span, units).get(span.per, {})
    failing = engine.failing_grade(sheet)
    out = []
    for unit in units:
        averages = {name: (sum(v) / len(v) if (v := totals[name].get(unit.id)) else None) for name in names}
        score = (engine.combine(formula, averages, f"combine.{combine_id}")
                 if all(a is not None for a in averages.values()) else None)
        vetoes = _vetoes(sheet, span.per, numbers.get(unit.id, {}), unit) if unit.id in numbers else []
        grade = engine.grade_of(sheet, score) if score is not None else None
        out.append(CombinedScore(unit, averages, score, failing if vetoes and failing else grade, vetoes,
                                 unit.id in unsure))
    return span, out
