"""Scoring a period: the units a sheet assesses, their metrics computed from the data (cases, patrol
compliance, records), and their scores, grades, ranks and flags — the dry run an office looks at before
anything is entered or published — and scores combined over longer periods."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import or_

from ..core.cache import memoize
from ..core.errors import DomainError, NotFound
from ..definitions.clock import district_today
from ..definitions.loader import content_key
from ..definitions.models import DefinitionVersion
from ..definitions.service import current_version, scheme_in_force
from ..expressions import compile_expression
from ..extensions import db
from ..org.models import Area, Post, Unit
from ..patrols import engine as patrol_engine
from ..web.i18n import tr
from . import engine
from .engine import Flag, Grade, SheetSpec, UnitScore, Veto
from .models import AssessmentPeriod, AssessmentRevision, AssessmentScore
from .sources import source_of


def sheet_of(scheme_key: str, sheet_id: str) -> tuple[DefinitionVersion, SheetSpec]:
    """The version of a score sheet in force in a district, compiled."""
    version = current_version(scheme_key)
    row = version.member("score_sheet", sheet_id) if version else None
    if row is None:
        raise NotFound(_("This district has no such score sheet."))
    return row, sheet_spec_of_row(row)


@memoize(64, key=content_key)
def _compiled_sheet(definition: dict, digest: str | None = None) -> SheetSpec:
    return engine.sheet_spec(definition)


def sheet_spec_of_row(row: DefinitionVersion) -> SheetSpec:
    """A stored score sheet compiled, once per content hash: a period's page asks for it once per unit shown."""
    return _compiled_sheet(row.data, row.content_hash)


def period_of(sheet: SheetSpec, day: dt.date) -> patrol_engine.Period:
    return patrol_engine.period_of(sheet.period, day)


@dataclass(eq=False)
class Person:
    """A person a sheet assesses (`assessed: {tiers}`): an account holding posts of those tiers, or a post whose
    holder has no account. Scoring reads it where it reads a unit (id, key, name, kind, difficulty)."""

    id: str                  # "user:<id>" or "post:<id>": its key in results and in published scores
    name: str
    kind: str                # the tier of its first post
    unit: Unit | None        # the unit it answers to: its first post's, or that post's area's
    posts: tuple[Post, ...]
    user_id: int | None
    # (area path, first day, last day or None) of each post: its area, or for a post over a unit the unit's areas
    places: tuple[tuple[str, dt.date, dt.date | None], ...]
    post_id: int | None = None  # the post, for a person with no account
    difficulty: None = None

    @property
    def key(self) -> str:
        return self.id


def owner_unit(subject: Any) -> Unit | None:
    """The unit whose readers see a subject's results: the unit itself, or the unit a person answers to."""
    return subject if isinstance(subject, Unit) or subject is None else subject.unit


def person_key(post: Post) -> str:
    """A person's key: their account's, or for a post with no account the post's."""
    return f"user:{post.user_id}" if post.user_id else f"post:{post.id}"


def assessed_people(scheme_key: str, sheet: SheetSpec, period: patrol_engine.Period) -> list[Person]:
    """The holders of posts of the sheet's tiers at any time in the period, in tier order then by name: one
    person per account (all their posts), or per post whose holder has no account. On a sheet with a metric
    counted at places, a person with no place is left out (nothing could ever count against them)."""
    tiers = list(sheet.assessed.get("tiers", []))
    posts = list(db.session.scalars(db.select(Post).where(
        Post.scheme_key == scheme_key, Post.tier_key.in_(tiers), Post.started_on <= period.end,
        or_(Post.ended_on.is_(None), Post.ended_on >= period.start)).order_by(Post.id)))
    areas = {a.id: a for a in db.session.scalars(db.select(Area).where(Area.scheme_key == scheme_key))}
    units = {u.id: u for u in db.session.scalars(db.select(Unit).where(Unit.scheme_key == scheme_key))}
    groups: dict[str, list[Post]] = {}
    for post in posts:
        groups.setdefault(person_key(post), []).append(post)
    by_place = any(source_of(m).counts_at_places(m) for m in sheet.metrics)
    people = []
    for subject_id, held in groups.items():
        held.sort(key=lambda p: (tiers.index(p.tier_key), p.started_on, p.id))
        places = tuple((area.path, post.started_on, post.ended_on) for post in held
                       for area in ([areas[post.area_id]] if post.area_id in areas else
                                    [a for a in areas.values() if post.unit_id and a.unit_id == post.unit_id]))
        if by_place and not places:
            continue
        first = held[0]
        people.append(Person(subject_id, first.holder_name, first.tier_key,  # named as appointed (as on boards)
                             units.get(first.unit_id or _unit_around(areas.get(first.area_id), areas)),
                             tuple(held), first.user_id, places, None if first.user_id else first.id))
    return sorted(people, key=lambda p: (tiers.index(p.kind), p.name, p.id))


def _unit_around(area: Area | None, areas: dict[int, Area]) -> int | None:
    """The unit responsible for an area: its own, or the nearest area's around it."""
    while area is not None and area.unit_id is None:
        area = areas.get(area.parent_id) if area.parent_id else None
    return area.unit_id if area is not None else None


def people_as_published(period: AssessmentPeriod) -> list[Person]:
    """The people of a period's published revision, as published (a correction scores these and no others)."""
    return [Person(str(s.subject_id), s.person_name or "", "", s.answers_to, (), s.user_id, (), s.post_id)
            for s in published_scores(period)]


def assessed_units(scheme_key: str, sheet: SheetSpec, period: patrol_engine.Period | None = None) -> list[Any]:
    """The active units the sheet scores: its unit kinds and its listed units (on a sheet scored per area,
    those of them with an area to score); on a sheet that assesses people, the people holding its tiers in
    `period` (default: the sheet's period containing the district's today)."""
    if sheet.assessed.get("tiers"):
        return assessed_people(scheme_key, sheet, period or period_of(sheet, district_today(scheme_key)))
    kinds, keys = sheet.assessed.get("unit_kinds", []), sheet.assessed.get("units", [])
    query = db.select(Unit).where(Unit.scheme_key == scheme_key, Unit.active.is_(True),
                                  or_(Unit.kind.in_(kinds), Unit.key.in_(keys))).order_by(Unit.path)
    units = list(db.session.scalars(query))
    if sheet.per_area is not None:
        having = areas_by_unit(scheme_key, sheet, units)
        units = [u for u in units if u.id in having]
    return units


def metric_values(scheme_key: str, sheet: SheetSpec, period: patrol_engine.Period, units: list[Unit],
                  manual: dict[int, dict[str, Any]] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> dict[int, dict[str, Any]]:
    """Every metric of the sheet for every unit: {unit id: {metric id: value}} (None where there is none). Each
    metric's source (`sources.py`) computes it, or assessors entered it (`manual`: the period's marks). On a
    sheet scored per area, a unit's figure is the sum of its areas' (what lies at their places).

    `progress(done, steps)` is told as each metric is computed (`scoring_steps`: one a metric, then two more)."""
    if sheet.per_area is not None:
        by_unit = areas_by_unit(scheme_key, sheet, units)
        values = area_metric_values(scheme_key, sheet, period, [a for areas in by_unit.values() for a in areas])
        return {u.id: _summed(sheet, [values[a.id] for a in by_unit.get(u.id, [])]) for u in units}
    if sheet.assessed.get("tiers"):  # people: each metric's source has their own figure
        return _by_subject(sheet, units, lambda m: source_of(m).by_people(scheme_key, m, period, units))
    manual = manual or {}
    unit_ids = [u.id for u in units]
    values: dict[int, dict[str, Any]] = {unit_id: {} for unit_id in unit_ids}
    for done, metric in enumerate(sheet.metrics, 1):
        source = source_of(metric)
        per_unit = source.compute(scheme_key, metric, period, unit_ids) if source.compute else {}
        for unit_id in unit_ids:
            value = manual.get(unit_id, {}).get(metric["id"]) if source.entered else per_unit.get(unit_id)
            values[unit_id][metric["id"]] = value
        if progress is not None:
            progress(done, scoring_steps(sheet))
    return values


def scoring_steps(sheet: SheetSpec) -> int:
    """The steps a job scoring a period shows: one a metric, the scores worked out, and what it then writes."""
    return len(sheet.metrics) + 2


# -- sheets scored per area ------------------------------------------------------------------------------------

def _active_areas(scheme_key: str) -> dict[int, Area]:
    return {a.id: a for a in db.session.scalars(db.select(Area).where(
        Area.scheme_key == scheme_key, Area.active.is_(True)))}


def areas_by_unit(scheme_key: str, sheet: SheetSpec, units: list[Unit]) -> dict[int, list[Area]]:
    """For a sheet scored per area, each assessed unit's active areas of the scored kind, in tree order: those
    it is responsible for or a unit below it is (an area without a unit of its own takes the one of the
    nearest area around it); an area goes to the nearest assessed unit above its responsible one."""
    if sheet.per_area is None:
        return {}
    kind = sheet.per_area.kind
    every = _active_areas(scheme_key)
    paths = dict(db.session.execute(db.select(Unit.id, Unit.path).where(Unit.scheme_key == scheme_key)).all())
    assessed = {u.id for u in units}
    out: dict[int, list[Area]] = {}
    for area in every.values():
        if area.kind != kind:
            continue
        holder, cursor = area.unit_id, area
        while holder is None and cursor.parent_id in every:
            cursor = every[cursor.parent_id]
            holder = cursor.unit_id
        chain = [int(x) for x in (paths.get(holder) or "").strip("/").split("/") if x] if holder else []
        unit_id = next((u for u in reversed(chain) if u in assessed), None)
        if unit_id is not None:
            out.setdefault(unit_id, []).append(area)
    return {unit_id: sorted(areas, key=lambda a: _tree_order(a, every)) for unit_id, areas in out.items()}


def area_metric_values(scheme_key: str, sheet: SheetSpec, period: patrol_engine.Period,
                       areas: list[Area]) -> dict[int, dict[str, Any]]:
    """Every metric of a sheet scored per area for every area: {area id: {metric id: value}}."""
    return _by_subject(sheet, areas, lambda m: source_of(m).by_area(scheme_key, m, period, areas))


def _by_subject(sheet: SheetSpec, subjects: list[Any], compute: Any) -> dict[Any, dict[str, Any]]:
    """{subject id: {metric id: value}} from `compute(metric)`, which gives each metric's {subject id: value}
    (None where a subject has none); nothing is asked for no subjects."""
    values: dict[Any, dict[str, Any]] = {s.id: {} for s in subjects}
    for metric in sheet.metrics:
        got = compute(metric) if subjects else {}
        for subject in subjects:
            values[subject.id][metric["id"]] = got.get(subject.id)
    return values


def _summed(sheet: SheetSpec, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """A unit's metrics from its areas': their sums (None where no area has a value)."""
    out = {}
    for metric in sheet.metrics:
        given = [p[metric["id"]] for p in parts if p.get(metric["id"]) is not None]
        out[metric["id"]] = sum(given) if given else None
    return out


@dataclass
class AreaResult:
    """One area's score on a sheet scored per area: a scored area's own, or one aggregated from those inside it."""

    area: Area
    score: UnitScore
    depth: int  # 0: the scored kind; 1: the first roll_up kind…
    metrics: dict[str, Any] = field(default_factory=dict)  # a scored area's numbers
    parent: Area | None = None  # where it rolls up (None: into the unit)

    @property
    def total(self) -> Decimal:
        return engine.shown(self.score.total)


def score_areas(scheme_key: str, sheet: SheetSpec, period: patrol_engine.Period, units: list[Unit],
                frozen: dict[int, dict[str, dict[str, Any]]] | None = None
                ) -> dict[int, tuple[UnitScore, dict[str, Any], list[AreaResult]]]:
    """A sheet scored per area: each area of the scored kind on its own numbers, aggregated through the
    roll_up kinds, then into each unit. {unit id: (its score, its summed metrics, the area rows in tree
    order)}; units with no area are left out.

    `frozen` ({unit id: {area key: numbers}}, what a publication stored): a correction scores those same areas
    on those numbers, whatever was drawn, retired or found since."""
    spec = sheet.per_area
    if spec is None:
        return {}
    by_unit = areas_by_unit(scheme_key, sheet, units)
    values = area_metric_values(scheme_key, sheet, period, [a for areas in by_unit.values() for a in areas])
    every = _active_areas(scheme_key)
    if frozen:
        stored = {a.key: a for a in db.session.scalars(db.select(Area).where(
            Area.scheme_key == scheme_key, Area.key.in_([k for kept in frozen.values() for k in kept])))}
        for unit_id, kept in frozen.items():
            if unit_id in {u.id for u in units}:
                by_unit[unit_id] = sorted((stored[k] for k in kept if k in stored),
                                          key=lambda a: _tree_order(a, {**every, **stored}))
                values.update({stored[k].id: dict(numbers) for k, numbers in kept.items() if k in stored})
    out = {}
    for unit_id, areas in by_unit.items():
        if not areas:
            continue
        level: list[AreaResult] = []
        for area in areas:
            try:
                score = engine.score_unit(sheet, values[area.id])
            except engine.ScoringError as exc:
                raise DomainError(_("%(unit)s cannot be scored: %(problem)s", unit=tr(area.name),
                                    problem=str(exc))) from None
            level.append(AreaResult(area, score, 0, values[area.id]))
        rows = list(level)
        for depth, step in enumerate(spec.roll_up, start=1):
            groups: dict[int, list[AreaResult]] = {}
            passing: list[AreaResult] = []
            for row in level:
                outer = _around(row.area, step.kind, every)
                if outer is None:
                    passing.append(row)  # not inside any area of that kind: it stands for one
                else:
                    row.parent = outer
                    groups.setdefault(outer.id, []).append(row)
            aggregated = [AreaResult(every[outer_id], engine.aggregate_scores([r.score for r in inner], step.aggregate),
                                     depth) for outer_id, inner in groups.items()]
            rows.extend(aggregated)
            level = aggregated + passing
        total = engine.aggregate_scores([r.score for r in level], spec.aggregate)
        rows.sort(key=lambda r: _tree_order(r.area, {**every, r.area.id: r.area}))
        out[unit_id] = (total, _summed(sheet, [values[a.id] for a in areas]), rows)
    return out


def _tree_order(area: Area, every: dict[int, Area]) -> tuple[tuple[int, int], ...]:
    """Where an area comes in the scheme's tree: its own and its ancestors' positions, outermost first."""
    chain = []
    cursor: Area | None = area
    while cursor is not None:
        chain.append((cursor.position, cursor.id))
        cursor = every.get(cursor.parent_id) if cursor.parent_id else None
    return tuple(reversed(chain))


def _around(area: Area, kind: str, every: dict[int, Area]) -> Area | None:
    """The nearest area of `kind` containing `area`."""
    cursor = every.get(area.parent_id) if area.parent_id else None
    while cursor is not None and cursor.kind != kind:
        cursor = every.get(cursor.parent_id) if cursor.parent_id else None
    return cursor


@dataclass
class UnitResult:
    unit: Unit
    metrics: dict[str, Any]
    score: UnitScore
    grade: Grade | None = None
    ranks: dict[str, int] = field(default_factory=dict)  # per ranking group
    flags: list[Flag] = field(default_factory=list)
    vetoes: list[Veto] = field(default_factory=list)
    funding: Decimal | None = None  # what the sheet's funding gives for the score (its group's amounts)
    money: list[dict[str, Any]] = field(default_factory=list)  # the money ledger's lines (engine.money_lines)
    areas: list[AreaResult] = field(default_factory=list)  # a sheet scored per area: the areas behind the score

    @property
    def total(self) -> Decimal:
        return engine.shown(self.score.total)

    @property
    def money_total(self) -> Decimal | None:
        return engine.money_total(self.money) if self.money else None


def ranking_groups(scheme_key: str, sheet: SheetSpec, units: list[Unit],
                   by_difficulty: bool | None = None) -> dict[str, list[Unit]]:
    """The units of each ranking group the sheet names (scheme `unit_groups`), or all in one group; with
    `by_difficulty`, each group is split by the units' difficulty tier."""
    wanted = sheet.ranking.get("groups") or []
    member = unit_groups_of(scheme_key, units) if wanted else {}
    groups = {group_id: [u for u in units if group_id in member[u.id]] for group_id in wanted}
    if not wanted:
        groups["all"] = list(units)
    if sheet.ranking.get("by_difficulty") if by_difficulty is None else by_difficulty:
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
                metrics: dict[int, dict[str, Any]] | None = None,
                area_metrics: dict[int, dict[str, dict[str, Any]]] | None = None,
                progress: Callable[[int, int], None] | None = None) -> list[UnitResult]:
    """Every unit's score for a period from the data (or from `metrics` already taken), the assessors'
    numbers ({unit id: {item: {rule: n}}}) or combined item scores, with grades, ranks within groups and flags.
    A sheet scored per area scores each area (on `area_metrics` already taken: {unit id: {area key: numbers}})
    and aggregates. `progress(done, steps)` is told as the metrics are computed and once the scores are
    worked out (before anything is written: a job's progress commits)."""
    per_area = score_areas(scheme_key, sheet, period, units, area_metrics) if sheet.per_area is not None else None
    if per_area is not None:
        units = [u for u in units if u.id in per_area]  # a unit with no area to score has no score
        values = {unit_id: summed for unit_id, (_score, summed, _rows) in per_area.items()}
    else:
        values = (metrics if metrics is not None
                  else metric_values(scheme_key, sheet, period, units, manual, progress=progress))
    entries, item_scores = entries or {}, item_scores or {}
    results = {}
    for u in units:
        names = {**values.get(u.id, {}), **(manual or {}).get(u.id, {})}
        if per_area is not None:
            results[u.id] = UnitResult(u, names, per_area[u.id][0], areas=per_area[u.id][2])
            continue
        try:
            score = engine.score_unit(sheet, names, entries.get(u.id), item_scores.get(u.id))
        except engine.ScoringError as exc:
            raise DomainError(_("%(unit)s cannot be scored: %(problem)s", unit=tr(u.name), problem=str(exc))) from None
        results[u.id] = UnitResult(u, names, score)
    longer = _longer_metrics(scheme_key, sheet, period, units)
    failing = engine.failing_grade(sheet)
    on_all = district_vetoes(sheet, sheet.period, [r.metrics for r in results.values()])
    for per, numbers in longer.items():
        on_all += district_vetoes(sheet, per, [numbers.get(u.id, {}) for u in units])
    for result in results.values():
        result.vetoes = _vetoes(sheet, sheet.period, result.metrics, result.unit)
        for per, numbers in longer.items():
            result.vetoes += _vetoes(sheet, per, numbers.get(result.unit.id, {}), result.unit)
        result.vetoes += on_all
        result.grade = engine.grade_of(sheet, result.score.total)
        if result.vetoes and failing is not None:
            result.grade = failing  # a veto fails the unit whatever the score
    barred = {unit_id for unit_id, r in results.items() if r.vetoes} | barred_this_year(scheme_key, sheet, period)
    ranked = ranking_groups(scheme_key, sheet, units)
    for group_id, members in ranked.items():
        for unit_id, position in engine.rank({u.id: results[u.id].score.total for u in members}).items():
            results[unit_id].ranks[group_id] = position
    totals = {u.id: results[u.id].score.total for u in units}
    for unit_id, flags in flag_units(scheme_key, sheet, units, totals, barred, ranked).items():
        results[unit_id].flags.extend(flags)
        if not (results[unit_id].vetoes and failing):  # (a veto's failing grade stands)
            results[unit_id].grade = engine.capped_grade(sheet, results[unit_id].grade, flags)
    if sheet.funding is not None or sheet.charges or any(f.amount is not None for f in sheet.flags):
        groups = unit_groups_of(scheme_key, units)
        for result in results.values():
            rule = engine.funding_for(sheet, groups.get(result.unit.id, ()))
            result.money = engine.money_lines(sheet, rule, result.score.total, result.vetoes, result.flags,
                                              result.metrics)
            result.funding = next((Decimal(m["amount"]) for m in result.money if m["kind"] == "funding"), None)
    if progress is not None:
        progress(scoring_steps(sheet) - 1, scoring_steps(sheet))
    return [results[u.id] for u in units]


def unit_groups_of(scheme_key: str, units: list[Unit]) -> dict[int, list[str]]:
    """The scheme's unit groups (`unit_groups`: by kind or by name) each unit belongs to."""
    scheme = scheme_in_force(scheme_key)
    out: dict[int, list[str]] = {u.id: [] for u in units}
    for group_id, group in (scheme.unit_groups.items() if scheme else ()):
        kinds, keys = group.get("unit_kinds", []), group.get("units", [])
        for unit in units:
            if isinstance(unit, Unit) and (unit.kind in kinds or unit.key in keys):
                out[unit.id].append(group_id)
    return out


def flag_units(scheme_key: str, sheet: SheetSpec, units: list[Unit], scores: dict[int, Decimal],
               barred: set[int], ranked: dict[str, list[Unit]] | None = None) -> dict[int, list[engine.Flag]]:
    """Each unit's flags: each flag is counted among the units its `among` names (the ranking groups, the
    groups without the difficulty split, or the whole district); then a unit at both ends keeps what
    `flag_overlap` says. Units without a score (`scores`) take no part."""
    held: dict[int, list[engine.Flag]] = {u.id: [] for u in units}
    for among in dict.fromkeys(f.among for f in sheet.flags):
        flags = [f for f in sheet.flags if f.among == among]
        groups = (ranked or ranking_groups(scheme_key, sheet, units) if among == "ranking"
                  else {"all": units} if among == "district"
                  else ranking_groups(scheme_key, sheet, units, by_difficulty=False))
        for members in groups.values():
            group = {u.id: scores[u.id] for u in members if u.id in scores}
            for unit_id, got in engine.flags_for(sheet, group, barred, flags).items():
                held[unit_id].extend(f for f in got if f not in held[unit_id])
    return engine.settle_overlap(sheet, held)


def barred_this_year(scheme_key: str, sheet: SheetSpec, period: patrol_engine.Period) -> set[int]:
    """Units that held a flag with `bars_honours: year` in an earlier published period of this sheet this year:
    they hold no top flag for the rest of the year (the next unit in line takes it)."""
    barring = {f.id for f in sheet.flags if f.bars_honours}
    if not barring:
        return set()
    earlier = db.session.scalars(db.select(AssessmentPeriod).where(
        AssessmentPeriod.scheme_key == scheme_key, AssessmentPeriod.sheet_key == sheet.id,
        AssessmentPeriod.revision > 0, AssessmentPeriod.starts_on >= period.start.replace(month=1, day=1),
        AssessmentPeriod.starts_on < period.start))
    return {score.subject_id for row in earlier for score in published_scores(row)
            if barring & set(score.flags or [])}


def district_vetoes(sheet: SheetSpec, per: str, per_unit: list[dict[str, Any]]) -> list[Veto]:
    """The vetoes `over: district` that hold on the totals of every assessed unit: they veto every unit."""
    if not any(v.over == "district" for v in sheet.vetoes):
        return []
    try:
        return engine.vetoed(sheet, engine.district_totals(per_unit), per, over="district")
    except engine.ScoringError as exc:
        raise DomainError(_("The district cannot be scored: %(problem)s", problem=str(exc))) from None


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
    return period, score_units(scheme_key, sheet, period, assessed_units(scheme_key, sheet, period), entries=entries,
                               manual=manual)


@dataclass
class CombinedScore:
    unit: Unit
    averages: dict[str, Decimal | None]  # sheet id → average published score over the period
    score: Decimal | None                # None when a sheet named has no published score for the unit
    grade: Grade | None
    vetoes: list[Veto] = field(default_factory=list)  # read on the whole period's numbers (the year's)
    provisional: bool = False  # a score it averages is from provisional results
    flags: list[engine.Flag] = field(default_factory=list)  # the combination's own `flags`
    funding: Decimal | None = None  # the combination's own `funding`
    money: list[dict[str, Any]] = field(default_factory=list)  # its money ledger (funding, flags' amounts)

    @property
    def money_total(self) -> Decimal | None:
        return engine.money_total(self.money) if self.money else None
    rank: int | None = None
    actions: list[engine.Streak] = field(default_factory=list)  # the combination's `streaks` this period completes


def combined_scores(scheme_key: str, sheet_id: str, combine_id: str, day: dt.date, *,
                    with_streaks: bool = True, barred_before: set[int] | None = None
                    ) -> tuple[patrol_engine.Period, list[CombinedScore]]:
    """A sheet's `combine` formula over the longer period containing `day` (the year score from the monthly
    average and the year-end check): each sheet id stands for the unit's average published score in it (or
    their sum, `aggregate: sum`), graded with the combination's own `grades`, none, or the sheet's."""
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
            totals[period.sheet_key][score.subject_id].append(Decimal(score.total))
            if period.provisional:
                unsure.add(score.subject_id)
    formula = compile_expression(rule["formula"])
    units = assessed_units(scheme_key, sheet, span)
    numbers = _longer_metrics(scheme_key, sheet, span, units).get(span.per, {})
    banded = engine.combined_bands(sheet, rule)  # its own bands, none, or the sheet's
    failing = engine.failing_grade(banded)
    on_all = district_vetoes(sheet, span.per, [numbers.get(u.id, {}) for u in units]) if numbers else []
    summed = rule.get("aggregate") == "sum"
    out = []
    for unit in units:
        averages = {name: ((sum(v) if summed else sum(v) / len(v)) if (v := totals[name].get(unit.id)) else None)
                    for name in names}
        # Two places, halves up, like every published score: what is shown is what is graded and ranked.
        score = (engine.shown(engine.combine(formula, averages, f"combine.{combine_id}"))
                 if all(a is not None for a in averages.values()) else None)
        vetoes = (_vetoes(sheet, span.per, numbers.get(unit.id, {}), unit) if unit.id in numbers else []) + on_all
        grade = engine.grade_of(banded, score) if score is not None else None
        out.append(CombinedScore(unit, averages, score, failing if vetoes and failing else grade, vetoes,
                                 unit.id in unsure))
    # Ranked, flagged and funded directly: the combination's own flags (with their consequences) and money.
    scores = {r.unit.id: r.score for r in out if r.score is not None}
    if barred_before is None and any(f.bars_honours for f in banded.flags):
        barred_before = _combined_barred(scheme_key, sheet_id, combine_id, banded, span)
    barred = {r.unit.id for r in out if r.vetoes} | (barred_before or set())
    flags = flag_units(scheme_key, banded, units, scores, barred)
    paid = banded.funding is not None or any(f.amount is not None for f in banded.flags)
    groups = unit_groups_of(scheme_key, units) if paid else {}
    for row in out:
        row.flags = flags.get(row.unit.id, [])
        if row.score is not None and not (row.vetoes and failing):  # (a veto's failing grade stands)
            row.grade = engine.capped_grade(banded, row.grade, row.flags)
        if paid and row.score is not None:
            row.money = engine.money_lines(banded, engine.funding_for(banded, groups.get(row.unit.id, ())),
                                           row.score, row.vetoes, row.flags, {})
            row.funding = next((Decimal(m["amount"]) for m in row.money if m["kind"] == "funding"), None)
    ranks = engine.rank(scores)
    for row in out:
        row.rank = ranks.get(row.unit.id)
    if with_streaks and banded.streaks:
        _combined_streaks(scheme_key, sheet_id, combine_id, banded, span, out)
    return span, out


def _combined_streaks(scheme_key: str, sheet_id: str, combine_id: str, banded: SheetSpec,
                      span: patrol_engine.Period, rows: list[CombinedScore]) -> None:
    """The combination's streaks over its own earlier periods (last place two quarters in a row): the results of
    as many periods before this one as the longest run needs (or the year's, for a count within the year)."""
    back = max(s.times if s.consecutive else 4 for s in banded.streaks)
    spans = [span]
    while len(spans) < back + 1:  # a run as long as the longest rule needs, across years
        spans.append(patrol_engine.period_of(span.per, spans[-1].start - dt.timedelta(days=1)))
    history: dict[int, list[engine.PeriodResult]] = defaultdict(list)
    for earlier in reversed(spans[1:]):
        _s, results = combined_scores(scheme_key, sheet_id, combine_id, earlier.start, with_streaks=False)
        for row in results:
            if row.score is not None:
                history[row.unit.id].append(_period_result(earlier, row))
    for row in rows:
        if row.score is not None:
            row.actions = engine.streaks_hit(banded, [*history[row.unit.id], _period_result(span, row)])


def _combined_barred(scheme_key: str, sheet_id: str, combine_id: str, banded: SheetSpec,
                     span: patrol_engine.Period) -> set[int]:
    """Units that held a flag with `bars_honours: year` in an earlier period of the combination this year, each
    period worked out in turn with the bars of the ones before it."""
    barring = {f.id for f in banded.flags if f.bars_honours}
    earlier, cursor = [], span
    while True:
        cursor = patrol_engine.period_of(span.per, cursor.start - dt.timedelta(days=1))
        if cursor.start.year != span.start.year:
            break
        earlier.append(cursor)
    barred: set[int] = set()
    for before in reversed(earlier):
        _s, rows = combined_scores(scheme_key, sheet_id, combine_id, before.start, with_streaks=False,
                                   barred_before=set(barred))
        barred |= {row.unit.id for row in rows if barring & {f.id for f in row.flags}}
    return barred


def _period_result(span: patrol_engine.Period, row: CombinedScore) -> engine.PeriodResult:
    return engine.PeriodResult(span.key, span.start.year, row.score, row.grade.id if row.grade else None,
                               bool(row.grade.passing) if row.grade else True, row.rank,
                               tuple(f.id for f in row.flags), bool(row.vetoes), span.start, span.end)


def published_scores(period: AssessmentPeriod, revision: int | None = None) -> list[AssessmentScore]:
    """A published revision's scores (default the latest), in unit order."""
    number = revision or period.revision
    row = db.session.scalar(db.select(AssessmentRevision).filter_by(period_id=period.id, number=number))
    return list(row.scores) if row else []


def latest_published(scheme_key: str) -> list[AssessmentPeriod]:
    """Each of the scheme's sheets' latest published period (sheets never published are left out)."""
    periods = []
    scheme = scheme_in_force(scheme_key)
    for sheet_id in scheme.score_sheets if scheme else ():
        period = db.session.scalar(db.select(AssessmentPeriod).where(
            AssessmentPeriod.scheme_key == scheme_key, AssessmentPeriod.sheet_key == sheet_id,
            AssessmentPeriod.revision > 0).order_by(AssessmentPeriod.starts_on.desc()).limit(1))
        if period is not None:
            periods.append(period)
    return periods
