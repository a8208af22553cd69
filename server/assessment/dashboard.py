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
from . import charts, drafts
from .models import AssessmentPeriod, AssessmentScore
from .scoring import areas_by_unit, assessed_units, latest_published, published_scores
from .service import bounds_of, sheet_spec_of
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
    ranks: list[tuple[Any, int]]  # (ranking group's name or None, position) as published


def dashboard(user: AnyUser, scheme_key: str, today: dt.date, now: dt.datetime) -> list[DashboardRow]:
    """Per unit in the reader's reach: the latest published score, this month's case rates, overdue cases
    and the patrol periods running now that its people are short on."""
    from ..definitions.service import scheme_in_force
    from ..patrols import service as patrols
    from ..workflow.inboxes import overdue_now
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
        Case.scheme_key == scheme_key, overdue_now(now), Case.state_kind != "final").group_by(Case.unit_id))
        .all())
    short: dict[int, int] = defaultdict(int)
    for rule in patrols.rules_of(scheme_key):
        current = patrol_engine.period_of(rule.per, today)
        for v in patrols.compliance(scheme_key, rule, current.start, current.end, today):
            if v.due and not v.met:
                for unit_id in set(v.subject.get("unit_ids") or [v.subject.get("unit_id")]):
                    short[unit_id] += 1
    scheme = scheme_in_force(scheme_key)
    group_names = {key: group.get("name") for key, group in scheme.unit_groups.items()} if scheme else {}
    rows = []
    for unit in units:
        (score, period), row = scores.get(unit.id, (None, None)), ledger.get(unit.id, {})
        ranks = [(group_names.get(group.split(":")[0]), n) for group, n in (score.ranks if score else {}).items()]
        rows.append(DashboardRow(unit, Decimal(score.total) if score else None, score.grade if score else None,
                                 period, int(row.get("found", 0)), row.get("rectification_rate"),
                                 row.get("on_time_rate"), int(overdue.get(unit.id, 0)), short.get(unit.id, 0),
                                 ranks))
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
    worked_at = None  # a draft kept by a job: when it was worked out
    if unit.id in published:
        items, areas = published[unit.id].items, list(published[unit.id].areas or [])
    else:
        result, worked = drafts.draft_row(user, period, unit.id)
        items, areas, worked_at = (result.items, list(result.areas), worked.worked_at) if result else ({}, [], None)
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
    return {"sheet": sheet, "items": items, "cases": cases, "misses": misses, "entries": entries, "areas": areas,
            "worked_at": worked_at}


# -- the leaders' overview: figures, trends, breakdowns and the lists to act on ---------------------------------

@dataclass
class Figure:
    """One headline figure: this month so far against the same days of last month (None: not compared)."""

    key: str
    label: str
    now: float | int | None
    before: float | int | None
    rate: bool = False
    better: str = "up"  # which way is good: up, down
    compared: bool = True  # False: a figure of now (overdue cases), with no "last month"

    @property
    def change(self) -> float | None:
        if self.now is None or self.before is None:
            return None
        return self.now - self.before


@dataclass
class Overview:
    month_from: dt.date
    today: dt.date
    last_from: dt.date
    last_to: dt.date
    figures: list[Figure]
    trend: list[tuple[dt.date, dt.date, dict[str, Any]]]   # (first, last day counted, tallies) per month
    by_category: list[tuple[str, int]]
    by_source: list[tuple[str, int]]
    overdue: list[Any]        # open overdue cases, oldest deadline first, with .due_at
    overdue_total: int
    short: list[Any]          # patrols.RuleReport of each rule's period running today, those short
    may_see_patrols: bool
    category_names: dict[str, Any]


def _months_back(day: dt.date, n: int) -> dt.date:
    """The first day of the month `n` months before `day`'s."""
    month = day.year * 12 + day.month - 1 - n
    return dt.date(month // 12, month % 12 + 1, 1)


@dataclass(frozen=True)
class Window:
    """Cases opened in [begin, end), and how they stood at `end`: the same span of two months, like for like."""

    begin: dt.datetime
    end: dt.datetime
    first: dt.date   # the days shown
    last: dt.date


def _month_so_far(today: dt.date, now: dt.datetime, zone: Any) -> tuple[Window, Window]:
    """This month up to now, and last month up to the same moment (the same day and time; all of it when it is
    shorter): a month not over is only compared with as much of the month before, opened *and* handled by
    then — a case of last month's 3rd rectified on the 20th does not count as rectified against today's 5th."""
    local = now.astimezone(zone)
    this = Window(dt.datetime.combine(today.replace(day=1), dt.time(), zone), now, today.replace(day=1), today)
    first = _months_back(today, 1)
    month_end = today.replace(day=1) - dt.timedelta(days=1)
    if today.day > month_end.day:  # 31 March against February: all of February
        end, last = dt.datetime.combine(today.replace(day=1), dt.time(), zone), month_end
    else:
        last = first.replace(day=today.day)
        end = dt.datetime.combine(last, local.time(), zone)
    return this, Window(dt.datetime.combine(first, dt.time(), zone), end, first, last)


def _tally(scheme_key: str, window: Window, where: Any, as_of: dt.datetime | None = None) -> dict[str, Any]:
    """Cases opened in the window and counted (as the ledger counts), those rectified by `as_of` (the window's
    end unless given) and those rectified in time; the rates worked from the counts."""
    from sqlalchemy import and_, exists
    from sqlalchemy import case as when

    from ..workflow.ledger import uncounted
    from ..workflow.models import Case, CaseDeadline

    resolved = and_(Case.outcome == "resolved", Case.closed_at.is_not(None), Case.closed_at < (as_of or window.end))
    missed = exists(select(CaseDeadline.id).where(CaseDeadline.case_id == Case.id, CaseDeadline.met.is_(False)))
    found, rectified, on_time = db.session.execute(select(
        func.count(Case.id), func.sum(when((resolved, 1), else_=0)),
        func.sum(when((and_(resolved, ~missed, Case.overdue.is_(False)), 1), else_=0))).where(
        Case.scheme_key == scheme_key, ~uncounted(), Case.created_at >= window.begin, Case.created_at < window.end,
        *([where] if where is not None else []))).one()
    found, rectified, on_time = int(found or 0), int(rectified or 0), int(on_time or 0)
    return {"found": found, "rectified": rectified, "on_time": on_time,
            "rectification_rate": rectified / found if found else None,
            "on_time_rate": on_time / rectified if rectified else None}


def _headline(scheme_key: str, this: Window, last: Window, where: Any, open_late: list[Any]) -> list[Figure]:
    """The month so far against as much of the last, and the cases overdue now."""
    from ..workflow.models import Case

    now, before = _tally(scheme_key, this, where), _tally(scheme_key, last, where)
    overdue_total = db.session.scalar(select(func.count(Case.id)).where(*open_late)) or 0
    return [
        Figure("found", _("Cases found"), now["found"], before["found"], better="down"),
        Figure("rectified", _("Rectified"), now["rectified"], before["rectified"]),
        Figure("rectification_rate", _("Rectification rate"), now["rectification_rate"],
               before["rectification_rate"], rate=True),
        Figure("on_time_rate", _("On-time rate"), now["on_time_rate"], before["on_time_rate"], rate=True),
        Figure("overdue", _("Overdue now"), overdue_total, None, better="down", compared=False),
    ]


def _reach(user: AnyUser, scheme_key: str, now: dt.datetime) -> tuple[Any, list[Any]]:
    """The SQL condition of the cases in the reader's `dashboard.view` (None: the district), and of those of
    them open and overdue now."""
    from ..workflow import inboxes
    from ..workflow.models import Case

    if not permissions.can_view_dashboard(user, scheme_key):
        raise PermissionDenied(_("You may not view this district's dashboard."))
    scope = permissions.dashboard_reach(user, scheme_key)
    where = None if scope.district_wide else inboxes.within_reach(scope)
    return where, [Case.scheme_key == scheme_key, Case.state_kind != "final", inboxes.overdue_now(now),
                   *([where] if where is not None else [])]


def headline(user: AnyUser, scheme_key: str, today: dt.date, now: dt.datetime) -> list[Figure]:
    """A leader's figures for their home page: the dashboard's first ones, within the same reach."""
    from ..definitions.clock import district_zone

    where, open_late = _reach(user, scheme_key, now)
    return _headline(scheme_key, *_month_so_far(today, now, district_zone(scheme_key)), where, open_late)


def overview(user: AnyUser, scheme_key: str, today: dt.date, now: dt.datetime) -> Overview:
    """What a leader reads first: the month's figures against the last, six months of cases, this month's cases
    by category and by source, the overdue cases and who is short of patrols in the periods running today —
    all within the units of the reader's `dashboard.view`."""
    from ..definitions.clock import district_zone
    from ..patrols import service as patrols
    from ..web.i18n import tr
    from ..workflow import inboxes
    from ..workflow import service as cases
    from ..workflow.ledger import uncounted
    from ..workflow.models import Case

    where, open_late = _reach(user, scheme_key, now)
    zone = district_zone(scheme_key)
    this, last = _month_so_far(today, now, zone)

    def opened(window: Window) -> list[Any]:
        return [Case.scheme_key == scheme_key, ~uncounted(), Case.created_at >= window.begin,
                Case.created_at < window.end, *([where] if where is not None else [])]

    def public(window: Window) -> int:
        return db.session.scalar(select(func.count(Case.id)).where(*opened(window), Case.source == "public"))

    figures = _headline(scheme_key, this, last, where, open_late)
    overdue_total = next(f.now for f in figures if f.key == "overdue")
    figures.insert(-1, Figure("public", _("Public reports"), public(this), public(last), better="down"))
    may_see_patrols = permissions.can_view_compliance(user, scheme_key)
    short = [r for r in patrols.compliance_report(user, scheme_key, today, only_short=True) if r.rows] \
        if may_see_patrols else []
    if may_see_patrols:
        figures.append(Figure("patrols_short", _("Short of patrols now"), sum(len(r.rows) for r in short), None,
                              better="down", compared=False))
    trend = []  # whole months as they stand now (rectified since counts, as in the ledger); this one so far
    for back in range(5, -1, -1):
        first, following = _months_back(today, back), _months_back(today, back - 1)
        window = Window(dt.datetime.combine(first, dt.time(), zone),
                        now if back == 0 else dt.datetime.combine(following, dt.time(), zone),
                        first, today if back == 0 else following - dt.timedelta(days=1))
        trend.append((first, window.last, _tally(scheme_key, window, where, as_of=now)))
    labels = cases.category_labels(scheme_key)
    by_category = sorted(((tr(labels.get(key) or key) if key else _("No category"), n) for key, n in
                          db.session.execute(select(Case.category, func.count(Case.id))
                                             .where(*opened(this)).group_by(Case.category))),
                         key=lambda pair: (-pair[1], pair[0]))
    by_source = [(cases.source_label(key), n) for key, n in sorted(db.session.execute(
        select(Case.source, func.count(Case.id)).where(*opened(this)).group_by(Case.source)))]
    due = inboxes.due_at().label("due_at")
    overdue = list(db.session.execute(select(Case, due).where(*open_late)
                                      .order_by(due.is_(None), due, Case.id).limit(OVERDUE_SHOWN)))
    return Overview(this.first, today, last.first, last.last, figures, trend, by_category, by_source,
                    overdue, overdue_total, short, may_see_patrols, labels)


OVERDUE_SHOWN = 20


def overview_charts(view: Overview, ranked: list[DashboardRow]) -> dict[str, tuple[Any, dict]]:
    """The overview's charts, each as (server-drawn SVG, ECharts data): cases by month (this one so far),
    this month's cases by category and by source, and the latest scores, best first."""
    from ..web.i18n import tr

    months = [first.strftime("%Y-%m") if last.day == _month_end(last) or last != view.today
              else _("%(month)s (to day %(day)s)", month=first.strftime("%Y-%m"), day=last.day)
              for first, last, _tallies in view.trend]
    found = [t["found"] for _first, _last, t in view.trend]
    lines = [(_("Cases found"), found), (_("Rectified"), [t["rectified"] for _first, _last, t in view.trend])]
    high = float(max([*found, 1]))

    def counts(pairs: list[tuple[str, int]], title: str) -> tuple[Any, dict]:
        bars = [(label, n, None) for label, n in pairs]
        return charts.bar(bars, top=float(max([n for _label, n in pairs] + [1])), title=title)

    return {"trend": charts.line(months, lines, high=high, title=_("Cases by month")),
            "category": counts(view.by_category, _("Cases by category this month")),
            "source": counts(view.by_source, _("Cases by source this month")),
            "scores": charts.bar([(tr(r.unit.name), r.score, None) for r in ranked], title=_("Latest scores"))}


def _month_end(day: dt.date) -> int:
    return (_months_back(day, -1) - dt.timedelta(days=1)).day
