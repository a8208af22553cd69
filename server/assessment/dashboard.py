"""The leaders' dashboard, and what lies behind a unit's deductions."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _
from sqlalchemy import false, func, or_, select

from ..auth import permissions
from ..core.errors import NotFound, PermissionDenied
from ..extensions import db
from ..org.models import Area, Unit
from ..patrols import engine as patrol_engine
from . import engine
from .models import AssessmentPeriod, AssessmentScore
from .scoring import areas_by_unit, assessed_units, latest_published, published_scores
from .service import area_row, bounds_of, draft, sheet_spec_of
from .sources import period_bounds, source_of

if TYPE_CHECKING:
    from ..auth.models import AnyUser


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


def dashboard(user: AnyUser, scheme_key: str, today: dt.date) -> list[DashboardRow]:
    """Per unit in the reader's reach: the latest published score, this month's case rates, overdue cases
    and the patrol periods running now that its people are short on."""
    from ..patrols import service as patrols
    from ..workflow.ledger import ledger_rows
    from ..workflow.models import Case

    if not permissions.can_view_dashboard(user, scheme_key):
        raise PermissionDenied(_("You may not view this district's dashboard."))
    scope = permissions.dashboard_reach(user, scheme_key)
    # The latest published period of each sheet, so that every assessed unit shows its own sheet's score.
    scores: dict[int, tuple[AssessmentScore, AssessmentPeriod]] = {}
    units: dict[int, Unit] = {}
    for period in latest_published(scheme_key):
        if sheet_spec_of(period).assessed.get("tiers"):
            continue  # people's results are on their sheet's pages, not on this per-unit dashboard
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


def behind_deductions(user: AnyUser, period: AssessmentPeriod, unit: Unit) -> dict[str, Any]:
    """The drill-down of one unit's score: each item's deductions by rule, the assessors' marks with their
    reasons and evidence, the unit's cases of the period not rectified or not on time, and its patrol misses."""
    from ..workflow.ledger import uncounted
    from ..workflow.models import Case, CaseDeadline

    if not permissions.can_view_deductions(user, period, unit):
        raise PermissionDenied(_("You may not view this unit's scores."))
    sheet = sheet_spec_of(period)
    if sheet.assessed.get("tiers"):
        raise NotFound(_("This sheet assesses people, not units."))
    published = {s.unit_id: s for s in published_scores(period)} if period.revision else {}
    if unit.id in published:
        items, areas = published[unit.id].items, list(published[unit.id].areas or [])
    else:
        result = next((r for r in draft(period) if r.unit.id == unit.id), None)
        items = {i: {"score": str(engine.shown(r.score)), "deducted": str(r.deducted), "bonus": str(r.bonus),
                     "rules": {x.rule.id: str(x.amount) for x in r.rules}}
                 for i, r in (result.score.items.items() if result else [])}
        areas = [area_row(a) for a in result.areas] if result else []
    if areas:  # a sheet scored per area: each area's score, named
        names = {a.key: a for a in db.session.scalars(db.select(Area).where(
            Area.scheme_key == period.scheme_key, Area.key.in_([row["area"] for row in areas])))}
        areas = [{**row, "name": names[row["area"]].name if row["area"] in names else row["area"]} for row in areas]
    begin, finish = period_bounds(period.scheme_key, bounds_of(period))
    late = select(CaseDeadline.case_id).where(CaseDeadline.met.is_(False))
    if sheet.per_area is not None:  # the cases its areas' scores counted: those at their places
        paths = [a.path for a in areas_by_unit(period.scheme_key, sheet, assessed_units(period.scheme_key, sheet))
                 .get(unit.id, [])]
        whose = Case.area_id.in_(select(Area.id).where(or_(false(), *(Area.path.startswith(p) for p in paths))))
    else:
        whose = Case.unit_id == unit.id
    cases = list(db.session.scalars(db.select(Case).where(
        Case.scheme_key == period.scheme_key, whose, Case.created_at >= begin,
        Case.created_at < finish, ~uncounted(),
        or_(Case.outcome.is_(None), Case.outcome != "resolved", Case.overdue.is_(True),
            Case.id.in_(late))).order_by(Case.id)))
    # What the metrics' sources list behind the unit's values (the patrol periods it missed).
    misses = [miss for metric in sheet.metrics if source_of(metric).misses
              for miss in source_of(metric).misses(period.scheme_key, metric, bounds_of(period), unit.id)]
    entries = [e for e in period.entries if e.unit_id == unit.id]
    return {"sheet": sheet, "items": items, "cases": cases, "misses": misses, "entries": entries, "areas": areas}
