"""Metric sources: where a score sheet's metric (`metrics: [{id, source, …}]`) takes each unit's value for a period.

Each source is one registration, with everything it needs: how the value is computed from the data (none for
`manual`: assessors enter it), the options it reads and those it cannot do without (the scheme check refuses any
other, rather than ignoring it), what a unit's page lists behind the value, and its line in the docs. The
definition schema lists the registered names and `fangan docs` writes the docs table. Other packages register
their own (the public follow-up's `satisfaction_rate` is registered in server/public/service.py).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import func, select

from ..core.errors import DomainError
from ..core.registry import Registry, registry
from ..definitions.clock import district_today, district_zone
from ..definitions.service import categories_within
from ..expressions import ExpressionError, compile_expression
from ..extensions import db
from ..forms.models import Submission
from ..org.models import Area
from ..patrols import engine as patrol_engine

# (scheme key, the metric's definition, the period, the units' ids) → {unit id: value or None}
Compute = Callable[[str, dict, patrol_engine.Period, list[int]], dict[int, Any]]
# (scheme key, the metric's definition, the period, the areas) → {area id: value}, counting what lies at each
# area's place or inside it
AreaCompute = Callable[[str, dict, patrol_engine.Period, list[Area]], dict[int, Any]]
# (scheme key, the metric's definition, the period, the people a sheet assesses) → {person id: value}
PeopleCompute = Callable[[str, dict, patrol_engine.Period, list[Any]], dict[str, Any]]
# (scheme key, the metric's definition, the period, a unit's id) → what the unit's page lists behind its value
# (patrol verdicts missed, for the page's "patrol misses")
Misses = Callable[[str, dict, patrol_engine.Period, int], list[Any]]


@dataclass(frozen=True)
class MetricSource:
    name: str
    compute: Compute | None = None  # None: assessors enter the value (the period's marks)
    reads: frozenset[str] = frozenset()  # options beyond id, name and source; the scheme check refuses others
    needs: tuple[str, ...] = ()  # options a metric of this source must give
    misses: Misses | None = None
    doc: str = ""
    people_doc: str = ""  # what a person's figure is
    by_area: AreaCompute | None = None  # the value for each area (a sheet scored per area); None: it has none
    by_people: PeopleCompute | None = None  # each person's own (a sheet that assesses people); None: it has none
    at_places: Callable[[Mapping[str, Any]], bool] | None = None  # whether a metric counts at a person's places

    def counts_at_places(self, metric: Mapping[str, Any]) -> bool:
        """Whether this metric counts, for a person, what lies at the places of their posts."""
        return bool(self.at_places and self.at_places(metric))

    @property
    def entered(self) -> bool:
        """Entered by assessors rather than computed."""
        return self.compute is None

    def docs(self) -> dict[str, str]:
        options = ", ".join(f"`{o}`" + (" (needed)" if o in self.needs else "") for o in sorted(self.reads))
        return {"`source`": f"`{self.name}`", "per unit and period": self.doc, "options": options or "—",
                "per area": "yes" if self.by_area else "—", "per person": self.people_doc or "—"}


METRIC_SOURCES: Registry[MetricSource] = registry("metric source")


def metric_source(name: str, *, reads: tuple[str, ...] = (), needs: tuple[str, ...] = (), doc: str = "",
                  misses: Misses | None = None, by_area: AreaCompute | None = None,
                  by_people: PeopleCompute | None = None, people_doc: str = "",
                  at_places: Callable[[Mapping[str, Any]], bool] | None = None) -> Callable[[Compute], Compute]:
    """Decorator: register a function computing a metric's values as the metric source `name` (with `by_area`,
    each area's value, for sheets scored per area; with `by_people`, each person's, for sheets assessing
    people, described by `people_doc`)."""

    def decorator(compute: Compute) -> Compute:
        METRIC_SOURCES.add(name, MetricSource(name, compute, frozenset(reads) | frozenset(needs), tuple(needs),
                                              misses, doc, people_doc, by_area, by_people, at_places))
        return compute

    return decorator


def source_of(metric: Mapping[str, Any]) -> MetricSource:
    """The registered source of a metric's definition."""
    return METRIC_SOURCES[metric["source"]]


def is_entered(metric: Mapping[str, Any]) -> bool:
    """Whether assessors enter this metric (a `manual` one)."""
    return source_of(metric).entered


def period_bounds(scheme_key: str, period: patrol_engine.Period) -> tuple[dt.datetime, dt.datetime]:
    """The period's first and after-last instants in UTC, its days taken in the district's zone."""
    zone = district_zone(scheme_key)
    return (dt.datetime.combine(period.start, dt.time(), zone).astimezone(dt.UTC),
            dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC))


# -- cases ---------------------------------------------------------------------------------------------------

_RATES = {"rectified": "rectification_rate", "on_time": "on_time_rate", "closed": "closure_rate",
          "reworked": "rework_rate", "extended": "extension_rate"}


@metric_source("case_rate", reads=("workflow", "categories", "counts_for", "include_below"), needs=("rate",), doc=(
    "`rate: rectified` (rectified ÷ found), `on_time` (on time ÷ rectified), `closed` (closed ÷ found), "
    "`reworked` (返工率: reworked at least once ÷ found) or `extended` (延期率), from the [ledger](cases.md); "
    "optional `categories` and `workflow`; which unit a case counts for (`counts_for`) and whether a unit's "
    "figure takes in the units below it (`include_below`). Rejected, duplicate and withdrawn cases are in none "
    "of them ([which cases count](cases.md#which-cases-count))"))
def _case_rate(scheme_key: str, metric: dict, period: patrol_engine.Period, unit_ids: list[int]) -> dict[int, Any]:
    rate = _RATES[metric.get("rate", "rectified")]
    rows = _ledger(scheme_key, period, tuple(categories_within(scheme_key, metric.get("categories") or ())),
                   metric.get("workflow"), metric.get("counts_for", "holder"), bool(metric.get("include_below")))
    values = {row["unit"].id: row[rate] for row in rows if row["unit"] is not None}
    return {unit_id: values.get(unit_id) for unit_id in unit_ids}


def _ledger(scheme_key: str, period: patrol_engine.Period, categories: tuple[str, ...],
            workflow: str | None = None, counts_for: str = "holder", include_below: bool = False
            ) -> list[dict[str, Any]]:
    """The ledger of the period, once per request for each filter (several rate metrics share it)."""
    from flask import g, has_request_context

    from ..workflow.ledger import ledger_rows
    from ..workflow.models import Case

    key = (scheme_key, period.start, period.end, categories, workflow, counts_for, include_below)
    cache = g.setdefault("_ledgers", {}) if has_request_context() else {}
    if key not in cache:
        cache[key] = ledger_rows(scheme_key, period.start, period.end, categories=list(categories) or None,
                                 where=Case.workflow_key == workflow if workflow else None,
                                 counts_for=counts_for, include_below=include_below)
    return cache[key]


def _case_filters(scheme_key: str, metric: dict, period: patrol_engine.Period) -> list[Any]:
    """The conditions a `case_count` metric puts on cases: opened in the period, its categories, workflow, state
    kinds, and counted states only unless `uncounted`."""
    from ..workflow.ledger import uncounted
    from ..workflow.models import Case

    begin, finish = period_bounds(scheme_key, period)
    where = [Case.scheme_key == scheme_key, Case.created_at >= begin, Case.created_at < finish]
    if metric.get("categories"):
        where.append(Case.category.in_(categories_within(scheme_key, metric["categories"])))
    if metric.get("workflow"):
        where.append(Case.workflow_key == metric["workflow"])
    if metric.get("state_kinds"):
        where.append(Case.state_kind.in_(metric["state_kinds"]))
    if not metric.get("uncounted"):
        where.append(~uncounted())
    return where


def _counted(query: Any, key: Any, metric: dict) -> dict[Any, int]:
    """{key: cases} of a grouped count (`key` a column, or a tuple of them), the metric's `filter` evaluated on
    each case where it has one."""
    if metric.get("filter"):
        return _filtered_case_count(query, key, compile_expression(metric["filter"]), metric["id"])
    width = len(key) if isinstance(key, tuple) else 1
    return {(tuple(row[:width]) if width > 1 else row[0]): int(row[width]) for row in db.session.execute(query).all()}


def _within(areas: list[Area], counts: Mapping[str, int]) -> dict[int, int]:
    """Each area's total of counts kept by area path: what lies at the area or at any area inside it — once,
    for the innermost of `areas` around the place (a segment drawn inside another takes its own)."""
    at = {a.path: a.id for a in areas}
    out = dict.fromkeys(at.values(), 0)
    for path, n in counts.items():
        parts = path.strip("/").split("/")
        for depth in range(len(parts), 0, -1):  # the place itself, then each area around it, inwards first
            area_id = at.get("/" + "/".join(parts[:depth]) + "/")
            if area_id is not None:
                out[area_id] += n
                break
    return out


def _case_count_by_area(scheme_key: str, metric: dict, period: patrol_engine.Period,
                        areas: list[Area]) -> dict[int, Any]:
    from ..workflow.models import Case

    query = (select(Area.path, func.count(Case.id)).select_from(Case).join(Area, Case.area_id == Area.id)
             .where(*_case_filters(scheme_key, metric, period)).group_by(Area.path))
    return _within(areas, _counted(query, Area.path, metric))


def _held_at(scheme_key: str, people: list[Any], counts: Mapping[tuple[str, dt.datetime], int]) -> dict[str, int]:
    """Each person's count of what lies at one of their places (an area path, or inside it) and happened while
    they held the post there — each thing once, and nothing from before they took it over or after they left."""
    zone = district_zone(scheme_key)
    days = [(path, (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).astimezone(zone).date(), n)
            for (path, at), n in counts.items()]
    return {person.id: sum(n for path, day, n in days
                           if any(path.startswith(place) and start <= day and (end is None or day <= end)
                                  for place, start, end in person.places)) for person in people}


def _case_count_by_people(scheme_key: str, metric: dict, period: patrol_engine.Period,
                          people: list[Any]) -> dict[str, Any]:
    from ..workflow.models import Case

    if metric.get("counts_for") == "reporter":  # the cases they reported themselves
        query = (select(Case.reporter_id, func.count(Case.id))
                 .where(*_case_filters(scheme_key, metric, period),
                        Case.reporter_id.in_([p.user_id for p in people if p.user_id])).group_by(Case.reporter_id))
        mine = _counted(query, Case.reporter_id, metric)
        return {p.id: mine.get(p.user_id, 0) if p.user_id else 0 for p in people}
    query = (select(Area.path, Case.created_at, func.count(Case.id)).select_from(Case)
             .join(Area, Case.area_id == Area.id).where(*_case_filters(scheme_key, metric, period))
             .group_by(Area.path, Case.created_at))
    return _held_at(scheme_key, people, _counted(query, (Area.path, Case.created_at), metric))


@metric_source("case_count", reads=("workflow", "categories", "state_kinds", "filter", "uncounted", "counts_for",
                                   "include_below"), by_area=_case_count_by_area, by_people=_case_count_by_people,
               at_places=lambda metric: metric.get("counts_for", "place") == "place",
               people_doc="the cases at the places of their posts (`counts_for: place`, the default for people) "
                          "or that they reported themselves (`counts_for: reporter`)", doc=(
    "cases found, optionally by `categories`, `workflow`, `state_kinds` and a `filter` on each case (its fields, "
    "and `case.overdue`, `case.state`, `case.state_kind`, `case.outcome`, `case.category`, `case.rework_count`, "
    "`case.source`: staff, patrol or public); cases in "
    "states their workflow does not count are left out unless `uncounted: true`; which unit a case counts for "
    "(`counts_for`) and whether a unit's figure takes in the units below it (`include_below`). Per area: the "
    "cases whose place is the area or inside it"))
def _case_count(scheme_key: str, metric: dict, period: patrol_engine.Period, unit_ids: list[int]) -> dict[int, Any]:
    from ..workflow.ledger import counted_unit, rolled_up, with_below
    from ..workflow.models import Case

    counts_for, below = metric.get("counts_for", "holder"), bool(metric.get("include_below"))
    unit, query = counted_unit(select(Case.id), counts_for, below)
    query = (query.with_only_columns(unit, func.count(Case.id), maintain_column_froms=True)
             .where(*_case_filters(scheme_key, metric, period), unit.is_not(None)).group_by(unit))
    if not below or rolled_up(counts_for, below):
        query = query.where(unit.in_(unit_ids))
    counts = _counted(query, unit, metric)
    if below and not rolled_up(counts_for, below):
        counts = {u: t["n"] for u, t in with_below(scheme_key, {u: {"n": int(n)} for u, n in counts.items()}).items()}
    return {unit_id: int(counts.get(unit_id, 0)) for unit_id in unit_ids}


def _filtered_case_count(query: Any, unit: Any, condition: Any, metric_id: str) -> dict[Any, int]:
    """Counts of the cases the metric's `filter` keeps, evaluated on each case: its fields (`size_m3`), and
    `case.overdue`, `case.state`, `case.state_kind`, `case.outcome`, `case.category`, `case.rework_count`,
    `case.source` (staff, patrol or public)."""
    from ..workflow.models import Case

    keys = unit if isinstance(unit, tuple) else (unit,)  # one column, or several (a place and a time)
    rows = db.session.execute(query.with_only_columns(
        *keys, Case.data, Case.state, Case.state_kind, Case.outcome, Case.category, Case.overdue,
        Case.rework_count, Case.source, maintain_column_froms=True).group_by(None)).all()
    counts: dict[Any, int] = defaultdict(int)
    for row in rows:
        unit_id = tuple(row[:len(keys)]) if len(keys) > 1 else row[0]
        data, state, kind, outcome, category, overdue, rework, source = row[len(keys):]
        names = {**(data or {}), "category": category, "state": state,
                 "case": {"state": state, "state_kind": kind, "outcome": outcome, "category": category,
                          "overdue": bool(overdue), "rework_count": rework, "source": source or "staff"}}
        try:
            if condition.evaluate(names):
                counts[unit_id] += 1
        except ExpressionError as exc:
            raise DomainError(_("The filter of %(metric)s cannot be evaluated: %(problem)s", metric=metric_id,
                                problem=str(exc))) from None
    return dict(counts)


# -- records and patrols -------------------------------------------------------------------------------------

def _form_count_by_area(scheme_key: str, metric: dict, period: patrol_engine.Period,
                        areas: list[Area]) -> dict[int, Any]:
    begin, finish = period_bounds(scheme_key, period)
    query = (select(Area.path, func.count(Submission.id)).select_from(Submission)
             .join(Area, Submission.area_id == Area.id)
             .where(Submission.scheme_key == scheme_key, Submission.form_key == metric["form"],
                    Submission.occurred_at >= begin, Submission.occurred_at < finish).group_by(Area.path))
    return _within(areas, {path: int(n) for path, n in db.session.execute(query).all()})


def _form_count_by_people(scheme_key: str, metric: dict, period: patrol_engine.Period,
                          people: list[Any]) -> dict[str, Any]:
    begin, finish = period_bounds(scheme_key, period)
    query = (select(Submission.user_id, func.count(Submission.id))
             .where(Submission.scheme_key == scheme_key, Submission.form_key == metric["form"],
                    Submission.occurred_at >= begin, Submission.occurred_at < finish,
                    Submission.user_id.in_([p.user_id for p in people if p.user_id])).group_by(Submission.user_id))
    mine = {user_id: int(n) for user_id, n in db.session.execute(query).all()}
    return {p.id: mine.get(p.user_id, 0) if p.user_id else 0 for p in people}


@metric_source("form_count", needs=("form",), by_area=_form_count_by_area, by_people=_form_count_by_people,
               people_doc="the records of `form` they made themselves (a post with no account has none)",
               doc="records of `form` made in the period (by their record time), e.g. themed campaigns. Per area: "
                   "the records whose place is the area or inside it")
def _form_count(scheme_key: str, metric: dict, period: patrol_engine.Period, unit_ids: list[int]) -> dict[int, Any]:
    begin, finish = period_bounds(scheme_key, period)
    query = (select(Submission.unit_id, func.count(Submission.id))
             .where(Submission.scheme_key == scheme_key, Submission.form_key == metric["form"],
                    Submission.occurred_at >= begin, Submission.occurred_at < finish,
                    Submission.unit_id.in_(unit_ids)).group_by(Submission.unit_id))
    counts = dict(db.session.execute(query).all())
    return {unit_id: int(counts.get(unit_id, 0)) for unit_id in unit_ids}


def _missed_verdicts(scheme_key: str, metric: dict, period: patrol_engine.Period) -> list[Any]:
    """The rule periods of the metric's patrol rule that end inside `period`, are over by the district's today
    and were missed (a person-week short, a unit-month short)."""
    from ..patrols.service import compliance, rule_of

    rule = rule_of(scheme_key, metric["patrol_rule"])
    today = district_today(scheme_key)
    return [v for v in compliance(scheme_key, rule, period.start, period.end, today)
            if period.start <= v.period.end <= period.end and v.missed(today)]


def _patrol_misses(scheme_key: str, metric: dict, period: patrol_engine.Period, unit_id: int) -> list[Any]:
    return [v for v in _missed_verdicts(scheme_key, metric, period)
            if unit_id in (v.subject.get("unit_ids") or [v.subject.get("unit_id")])]


def _patrol_compliance_by_people(scheme_key: str, metric: dict, period: patrol_engine.Period,
                                 people: list[Any]) -> dict[str, Any]:
    missed: dict[str, int] = defaultdict(int)
    for verdict in _missed_verdicts(scheme_key, metric, period):
        subject = verdict.subject
        if subject.get("user_id"):
            missed[f"user:{subject['user_id']}"] += 1
        elif subject.get("posts"):
            missed[f"post:{subject['posts'][0].id}"] += 1
    return {p.id: missed.get(p.id, 0) for p in people}


@metric_source("patrol_compliance", needs=("patrol_rule",), reads=("include_below",), misses=_patrol_misses,
               by_people=_patrol_compliance_by_people,
               people_doc="the rule periods of a person rule they missed themselves", doc=(
    "rule periods of `patrol_rule` missed by the unit's people (a person-week short) or by the unit, counting "
    "the rule periods that end inside the sheet's period and are over by the district's today — see "
    "[patrols](patrols.md); with `include_below`, a unit's figure takes in the misses of the units below it"))
def _patrol_compliance(scheme_key: str, metric: dict, period: patrol_engine.Period,
                       unit_ids: list[int]) -> dict[int, Any]:
    from ..workflow.ledger import with_below

    missed: dict[int, int] = defaultdict(int)
    for verdict in _missed_verdicts(scheme_key, metric, period):
        missed[verdict.subject.get("unit_id")] += 1
    if metric.get("include_below"):
        rolled = with_below(scheme_key, {u: {"n": n} for u, n in missed.items() if u is not None})
        return {unit_id: rolled.get(unit_id, {"n": 0})["n"] for unit_id in unit_ids}
    return {unit_id: missed.get(unit_id, 0) for unit_id in unit_ids}


METRIC_SOURCES.add("manual", MetricSource("manual", doc="entered by assessors (the period's marks)"))
