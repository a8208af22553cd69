"""Scoring a period: the units a sheet assesses, their metrics computed from the data (cases, patrol
compliance, records), and their scores, grades, ranks and flags — the dry run an office looks at before
anything is entered or published."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from ..core.errors import NotFound
from ..definitions.models import DefinitionVersion
from ..definitions.service import current_scheme_data, current_version
from ..extensions import db
from ..forms.models import Submission
from ..forms.service import scheme_timezone
from ..org.models import Unit
from ..patrols import engine as patrol_engine
from . import engine
from .engine import Flag, Grade, SheetSpec, UnitScore


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

def _bounds(scheme_key: str, period: patrol_engine.Period) -> tuple[dt.datetime, dt.datetime]:
    zone = scheme_timezone(scheme_key)
    return (dt.datetime.combine(period.start, dt.time(), zone).astimezone(dt.UTC),
            dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC))


def _case_rate(scheme_key: str, metric: dict, period: patrol_engine.Period, unit_ids: list[int]) -> dict[int, Any]:
    from ..workflow.service import ledger_rows

    rate = {"rectified": "rectification_rate", "on_time": "on_time_rate", "closed": "closure_rate"}[
        metric.get("rate", "rectified")]
    rows = ledger_rows(scheme_key, period.start, period.end, categories=metric.get("categories"))
    values = {row["unit"].id: row[rate] for row in rows if row["unit"] is not None}
    return {unit_id: values.get(unit_id) for unit_id in unit_ids}


def _case_count(scheme_key: str, metric: dict, period: patrol_engine.Period, unit_ids: list[int]) -> dict[int, Any]:
    from ..workflow.models import Case

    begin, finish = _bounds(scheme_key, period)
    query = (select(Case.unit_id, func.count(Case.id))
             .where(Case.scheme_key == scheme_key, Case.created_at >= begin, Case.created_at < finish,
                    Case.unit_id.in_(unit_ids)).group_by(Case.unit_id))
    if metric.get("categories"):
        query = query.where(Case.category.in_(metric["categories"]))
    if metric.get("workflow"):
        query = query.where(Case.workflow_key == metric["workflow"])
    if metric.get("state_kinds"):
        query = query.where(Case.state_kind.in_(metric["state_kinds"]))
    counts = dict(db.session.execute(query).all())
    return {unit_id: int(counts.get(unit_id, 0)) for unit_id in unit_ids}


def _form_count(scheme_key: str, metric: dict, period: patrol_engine.Period, unit_ids: list[int]) -> dict[int, Any]:
    begin, finish = _bounds(scheme_key, period)
    query = (select(Submission.unit_id, func.count(Submission.id))
             .where(Submission.scheme_key == scheme_key, Submission.form_key == metric["form"],
                    Submission.occurred_at >= begin, Submission.occurred_at < finish,
                    Submission.unit_id.in_(unit_ids)).group_by(Submission.unit_id))
    counts = dict(db.session.execute(query).all())
    return {unit_id: int(counts.get(unit_id, 0)) for unit_id in unit_ids}


def _patrol_compliance(scheme_key: str, metric: dict, period: patrol_engine.Period,
                       unit_ids: list[int]) -> dict[int, Any]:
    """Missed rule periods (a person-week short, a unit-month short) of the unit's people or of the unit,
    counting the rule periods that end inside the sheet's period."""
    from ..patrols.service import compliance, rule_of

    rule = rule_of(scheme_key, metric["patrol_rule"])
    missed: dict[int, int] = defaultdict(int)
    for verdict in compliance(scheme_key, rule, period.start, period.end):
        if period.start <= verdict.period.end <= period.end and verdict.due and not verdict.met:
            missed[verdict.subject.get("unit_id")] += 1
    return {unit_id: missed.get(unit_id, 0) for unit_id in unit_ids}


# Where each kind of metric comes from. `manual` metrics are entered by assessors; the satisfaction rate
# arrives with public reporting.
METRIC_SOURCES = {
    "case_rate": _case_rate,
    "case_count": _case_count,
    "form_count": _form_count,
    "patrol_compliance": _patrol_compliance,
}


def metric_values(scheme_key: str, sheet: SheetSpec, period: patrol_engine.Period, units: list[Unit],
                  manual: dict[int, dict[str, Any]] | None = None) -> dict[int, dict[str, Any]]:
    """Every metric of the sheet for every unit: {unit id: {metric id: value}} (None where there is none)."""
    manual = manual or {}
    unit_ids = [u.id for u in units]
    values: dict[int, dict[str, Any]] = {unit_id: {} for unit_id in unit_ids}
    for metric in sheet.metrics:
        source = METRIC_SOURCES.get(metric["source"])
        per_unit = source(scheme_key, metric, period, unit_ids) if source else {}
        for unit_id in unit_ids:
            value = per_unit.get(unit_id) if source else manual.get(unit_id, {}).get(metric["id"])
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


def score_period(scheme_key: str, sheet_id: str, day: dt.date,
                 entries: dict[int, dict[str, dict[str, Any]]] | None = None,
                 manual: dict[int, dict[str, Any]] | None = None) -> tuple[patrol_engine.Period, list[UnitResult]]:
    """Every assessed unit's score for the sheet period containing `day`, from the data and the given entries
    ({unit id: {item id: {rule id: number}}}), with grades, ranks within groups and flags."""
    _row, sheet = sheet_of(scheme_key, sheet_id)
    period = period_of(sheet, day)
    units = assessed_units(scheme_key, sheet)
    values = metric_values(scheme_key, sheet, period, units, manual)
    entries = entries or {}
    results = {u.id: UnitResult(u, values[u.id], engine.score_unit(sheet, values[u.id], entries.get(u.id)))
               for u in units}
    for result in results.values():
        result.grade = engine.grade_of(sheet, result.score.total)
    for group_id, members in ranking_groups(scheme_key, sheet, units).items():
        scores = {u.id: results[u.id].score.total for u in members}
        for unit_id, position in engine.rank(scores).items():
            results[unit_id].ranks[group_id] = position
        for unit_id, flags in engine.flags_for(sheet, scores).items():
            results[unit_id].flags.extend(f for f in flags if f not in results[unit_id].flags)
    return period, [results[u.id] for u in units]
