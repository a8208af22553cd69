"""Scoring a score sheet: items and their deduction rules, sections, weights, assessors, and the
results built on scores — grades, rankings, flags, streaks, vetoes, combined periods and money.

Pure module: no Flask, no SQLAlchemy. The service gathers each unit's metric values (from cases, patrols and
records) and the assessors' entries, and calls `score_unit`; then `grade_of`, `rank`, `flags_for`,
`streaks_hit`, `vetoed`, `combine` and `funding` on the scores.

Arithmetic is decimal, so that a rate of 94.5 % against a 95 % threshold in steps of 0.5 points is exactly
one step (binary floats make it 0.999…). Values from expressions are rounded to 10 decimal places first.

Rules of an item (`type`):

* `per_occurrence` — points × count ("each problem −2"); `count` is a formula over the metrics, or else a
  number the assessor enters.
* `per_step_below` / `per_step_above` — points for every whole `step` the `value` lies below (above) the
  `threshold` ("each 0.5 percentage point below 95 % −2"); with `partial_steps: true` a started step counts.
* `one_off` — points once when `when` holds ("no themed campaign this month −5"), or when the assessor ticks it.
* `graded` — points × the count of a quality grade the assessor gives ("quality not met −2 each").
* `bonus` — adds points × count (or once, when `when` holds).

Each rule's total is capped by its own `cap`; an item's deductions together by the item's `cap` (default its
points: it loses no more than it has), so an item never goes below 0; bonuses are added after the cap.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ..expressions import Expression, ExpressionError, compile_expression

DEDUCTIONS = ("per_occurrence", "per_step_below", "per_step_above", "one_off", "graded")
ZERO = Decimal(0)
CENT = Decimal("0.01")


def dec(value: Any) -> Decimal:
    """A number as a Decimal, rounded to 10 places so that float noise (0.1 + 0.2) disappears."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return Decimal(repr(round(value, 10)))
    return Decimal(str(value))


def shown(value: Decimal) -> Decimal:
    """A score as published: two decimal places, halves rounded up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# -- the sheet -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSpec:
    id: str
    type: str
    points: Decimal
    label: Any = None
    count: Expression | None = None
    value: Expression | None = None
    threshold: Decimal | None = None
    step: Decimal | None = None
    partial_steps: bool = False
    when: Expression | None = None
    cap: Decimal | None = None

    @property
    def entered(self) -> bool:
        """Whether an assessor gives this rule's number (no formula computes it)."""
        return self.count is None and self.value is None and self.when is None

    @property
    def is_bonus(self) -> bool:
        return self.type == "bonus"


@dataclass(frozen=True)
class ItemSpec:
    id: str
    name: Any
    points: Decimal
    rules: tuple[RuleSpec, ...] = ()
    cap: Decimal | None = None
    assessor_roles: tuple[str, ...] = ()
    evidence: Any = None
    description: Any = None

    @property
    def deduction_cap(self) -> Decimal:
        return self.cap if self.cap is not None else self.points

    @property
    def manual(self) -> bool:
        return any(r.entered for r in self.rules)


@dataclass(frozen=True)
class SectionSpec:
    id: str
    name: Any
    points: Decimal
    items: tuple[ItemSpec, ...]
    weight: Decimal | None = None


@dataclass(frozen=True)
class Grade:
    id: str
    name: Any
    min: Decimal
    color: str | None = None
    passing: bool = True


@dataclass(frozen=True)
class Flag:
    id: str
    name: Any
    kind: str  # top | bottom
    count: int
    color: str | None = None
    below: Decimal | None = None
    among: str = "ranking"  # ranking (each ranking group) | groups (without the difficulty split) | district
    caps_grade: str | None = None  # a unit holding it gets no better grade than this one (no 优秀 for a last place)
    bars_honours: bool = False  # a unit holding it holds no top flag for the rest of the year
    amount: Decimal | None = None  # money for holding it: a reward, or a fine when negative


@dataclass(frozen=True)
class Streak:
    id: str
    name: Any
    when: Expression
    times: int
    consecutive: bool
    action: Any
    repeat: bool = False  # fire again in every period while the run lasts (or each further time in the year)


@dataclass(frozen=True)
class Veto:
    """A veto: when `when` holds, the unit fails and may not hold a top flag, whatever its score. With a
    `period` longer than the sheet's, `when` is read on that period's numbers so far (the year's buildings)."""

    id: str
    name: Any
    when: Expression
    period: str | None = None
    funding: str = "keep"  # keep | floor | none: what a vetoed unit's money becomes
    over: str = "unit"  # unit: each unit's own numbers | district: the totals of every unit the sheet assesses


@dataclass(frozen=True)
class Charge:
    """有偿整改: each thing `metric` counts for a unit costs `amount`."""

    id: str
    name: Any
    metric: str
    amount: Decimal


@dataclass(frozen=True)
class RollUp:
    """One step of a per-area sheet's roll-up: the scores of the areas below, aggregated into each area of
    `kind` that contains them (segments into their road)."""

    kind: str
    aggregate: str = "mean"  # mean | sum


@dataclass(frozen=True)
class PerArea:
    """A sheet scored on each area of `kind` (segment), rolled up through `roll_up` (road), then into the
    responsible unit by `aggregate`; the unit's total is graded, ranked and flagged like any other."""

    kind: str
    roll_up: tuple[RollUp, ...] = ()
    aggregate: str = "mean"  # mean | sum


@dataclass(frozen=True)
class Funding:
    base_amount: Decimal
    base_score: Decimal
    step_points: Decimal
    step_amount: Decimal
    floor: Decimal | None = None
    cap: Decimal | None = None
    currency: str = "CNY"


@dataclass(frozen=True)
class SheetSpec:
    id: str
    name: Any
    period: str
    total: Decimal
    sections: tuple[SectionSpec, ...]
    metrics: tuple[dict, ...] = ()
    grades: tuple[Grade, ...] = ()
    flags: tuple[Flag, ...] = ()
    streaks: tuple[Streak, ...] = ()
    vetoes: tuple[Veto, ...] = ()
    ranking: dict = field(default_factory=dict)
    assessors: dict = field(default_factory=dict)
    combine: tuple[dict, ...] = ()
    funding: Funding | None = None
    charges: tuple[Charge, ...] = ()
    funding_groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    appeal_days: int = 0
    assessed: dict = field(default_factory=dict)
    appeal_roles: tuple[str, ...] = ()
    flag_overlap: str = "top"  # a unit both among the top and the bottom keeps: top | bottom | none
    per_area: PerArea | None = None  # scored per area and aggregated into the unit

    def items(self) -> Iterable[tuple[SectionSpec, ItemSpec]]:
        for section in self.sections:
            for item in section.items:
                yield section, item

    @property
    def weighted(self) -> bool:
        return any(s.weight is not None for s in self.sections)


def marked_by(sheet: SheetSpec, item_id: str) -> tuple[str, ...]:
    """The roles that mark an item (or a manual metric): the item's `assessor_roles`, else the sheet's
    `assessors.roles`, else the weighted roles; none named means any holder of `assessment.enter`."""
    item = next((i for _s, i in sheet.items() if i.id == item_id), None)
    if item is not None and item.assessor_roles:
        return item.assessor_roles
    return tuple(sheet.assessors.get("roles") or (w["role"] for w in sheet.assessors.get("weights", [])))


def _expr(source: str | None) -> Expression | None:
    return compile_expression(source) if source else None


def _opt(value: Any) -> Decimal | None:
    return None if value is None else dec(value)


def _rule(data: dict) -> RuleSpec:
    return RuleSpec(id=data["id"], type=data["type"], points=dec(data["points"]), label=data.get("label"),
                    count=_expr(data.get("count")), value=_expr(data.get("value")),
                    threshold=_opt(data.get("threshold")), step=_opt(data.get("step")),
                    partial_steps=bool(data.get("partial_steps", False)), when=_expr(data.get("when")),
                    cap=_opt(data.get("cap")))


def _flags(items: Iterable[Mapping[str, Any]]) -> tuple[Flag, ...]:
    return tuple(Flag(f["id"], f.get("name"), f["kind"], int(f["count"]), f.get("color"), _opt(f.get("below")),
                      f.get("among", "ranking"), f.get("caps_grade"), f.get("bars_honours") == "year",
                      _opt(f.get("amount")))
                 for f in items)


def _streaks(items: Iterable[Mapping[str, Any]]) -> tuple[Streak, ...]:
    return tuple(Streak(s["id"], s.get("name"), compile_expression(s["when"]), int(s["times"]),
                        bool(s.get("consecutive", True)), s.get("action"), bool(s.get("repeat", False)))
                 for s in items)


def _funding(funding: Mapping[str, Any] | None) -> Funding | None:
    if not funding:
        return None
    return Funding(dec(funding["base_amount"]), dec(funding["base_score"]), dec(funding["step_points"]),
                   dec(funding["step_amount"]), _opt(funding.get("floor")), _opt(funding.get("cap")),
                   funding.get("currency", "CNY"))


def _grades(bands: Iterable[Mapping[str, Any]]) -> tuple[Grade, ...]:
    return tuple(sorted((Grade(g["id"], g.get("name"), dec(g["min"]), g.get("color"), g.get("passing", True))
                         for g in bands), key=lambda g: g.min, reverse=True))


def sheet_spec(definition: dict) -> SheetSpec:
    """The compiled sheet of a score-sheet definition (already checked against its schema)."""
    sections = tuple(SectionSpec(
        id=s["id"], name=s.get("name"), points=dec(s["points"]), weight=_opt(s.get("weight")),
        items=tuple(ItemSpec(id=i["id"], name=i.get("name"), points=dec(i["points"]), cap=_opt(i.get("cap")),
                             rules=tuple(_rule(r) for r in i.get("rules", [])),
                             assessor_roles=tuple(i.get("assessor_roles", ())), evidence=i.get("evidence"),
                             description=i.get("description"))
                    for i in s["items"]))
        for s in definition["sections"])
    funding = definition.get("funding")
    return SheetSpec(
        id=definition["id"], name=definition.get("name"), period=definition["period"], total=dec(definition["total"]),
        sections=sections, metrics=tuple(definition.get("metrics", ())),
        grades=_grades(definition.get("grades", [])),
        flags=_flags(definition.get("flags", [])),
        flag_overlap=definition.get("flag_overlap", "top"),
        streaks=_streaks(definition.get("streaks", [])),
        vetoes=tuple(Veto(v["id"], v.get("name"), compile_expression(v["when"]), v.get("period"),
                          v.get("funding", "keep"), v.get("over", "unit"))
                     for v in definition.get("vetoes", [])),
        ranking=dict(definition.get("ranking") or {}), assessors=dict(definition.get("assessors") or {}),
        combine=tuple(definition.get("combine", ())),
        funding=_funding(funding),
        funding_groups=dict((funding or {}).get("groups") or {}),
        charges=tuple(Charge(c["id"], c.get("name"), c["metric"], dec(c["amount"]))
                      for c in definition.get("charges", [])),
        appeal_days=int(definition.get("appeal_days", 0)), assessed=dict(definition.get("assessed") or {}),
        appeal_roles=tuple(definition.get("appeal_roles", ())), per_area=_per_area(definition.get("per_area")))


def _per_area(spec: Mapping[str, Any] | None) -> PerArea | None:
    if not spec:
        return None
    return PerArea(spec["kind"], tuple(RollUp(r["kind"], r.get("aggregate", "mean")) for r in spec.get("roll_up", [])),
                   spec.get("aggregate", "mean"))


# -- one unit's score ------------------------------------------------------------------------------------------


class ScoringError(ValueError):
    """A formula of the sheet could not be evaluated on a unit's numbers (names the rule)."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")
        self.where = where


@dataclass(frozen=True)
class RuleResult:
    rule: RuleSpec
    quantity: Decimal      # occurrences, steps, 1 for a one-off that applies, 0 when it does not
    amount: Decimal        # points lost (or gained, for a bonus), after the rule's own cap
    value: Decimal | None = None  # the metric a step rule compared


@dataclass(frozen=True)
class ItemResult:
    item: ItemSpec
    rules: tuple[RuleResult, ...]
    deducted: Decimal      # after the item's cap
    bonus: Decimal
    score: Decimal


@dataclass(frozen=True)
class UnitScore:
    items: Mapping[str, ItemResult]
    sections: Mapping[str, Decimal]
    total: Decimal


def _evaluate(expression: Expression, names: Mapping[str, Any], where: str) -> Any:
    try:
        return expression.evaluate(names)
    except ExpressionError as error:
        raise ScoringError(where, str(error)) from None


def _number(value: Any, where: str) -> Decimal:
    if value is None:
        raise ScoringError(where, "no value")
    try:
        return dec(value)
    except (ValueError, ArithmeticError) as error:
        raise ScoringError(where, f"not a number: {value!r}") from error


def steps_past(value: Decimal, threshold: Decimal, step: Decimal, below: bool, partial: bool) -> Decimal:
    """Whole (or, with `partial`, started) steps by which `value` lies below (above) `threshold`."""
    gap = (threshold - value) if below else (value - threshold)
    if gap <= 0:
        return ZERO
    ratio = gap / step
    whole = ratio.to_integral_value(rounding="ROUND_FLOOR")
    return whole + (1 if partial and ratio != whole else 0)


def score_rule(rule: RuleSpec, names: Mapping[str, Any], entered: Any, where: str) -> RuleResult:
    """What one rule takes (or gives) given the unit's metric names and the assessor's entry for it."""
    value = None
    if rule.type in ("per_step_below", "per_step_above"):
        raw = _evaluate(rule.value, names, where) if rule.value is not None else entered
        if raw is None:
            return RuleResult(rule, ZERO, ZERO)
        value = _number(raw, where)
        quantity = steps_past(value, rule.threshold or ZERO, rule.step or Decimal(1), rule.type == "per_step_below",
                              rule.partial_steps)
    elif rule.when is not None and rule.count is None:
        quantity = Decimal(1) if _evaluate(rule.when, names, where) else ZERO
    elif rule.count is not None:
        quantity = _number(_evaluate(rule.count, names, where), where)
        if rule.when is not None and not _evaluate(rule.when, names, where):
            quantity = ZERO
    else:  # entered by the assessor: a count, or a tick for a one-off
        quantity = ZERO if entered in (None, "") else _number(entered, where)
        if rule.type == "one_off":
            quantity = Decimal(1) if quantity else ZERO
    if quantity < 0:
        raise ScoringError(where, f"a negative count ({quantity})")
    amount = rule.points * quantity
    if rule.cap is not None:
        amount = min(amount, rule.cap)
    return RuleResult(rule, quantity, amount, value)


def score_item(item: ItemSpec, names: Mapping[str, Any], entries: Mapping[str, Any] | None = None) -> ItemResult:
    """An item's score: its points, less its deductions up to its cap, plus its bonuses."""
    entries = entries or {}
    results = tuple(score_rule(rule, names, entries.get(rule.id), f"{item.id}.{rule.id}") for rule in item.rules)
    deducted = min(sum((r.amount for r in results if not r.rule.is_bonus), ZERO), item.deduction_cap)
    bonus = sum((r.amount for r in results if r.rule.is_bonus), ZERO)
    return ItemResult(item, results, deducted, bonus, max(item.points - deducted, ZERO) + bonus)


def score_unit(sheet: SheetSpec, names: Mapping[str, Any],
               entries: Mapping[str, Mapping[str, Any]] | None = None,
               item_scores: Mapping[str, Decimal] | None = None) -> UnitScore:
    """A unit's score on the sheet.

    `names`: the metric values; `entries`: per item, the assessor's numbers per rule; `item_scores`: item
    scores already combined from several assessors (they replace the computed score of those items).
    With weighted sections (categories), each section counts `score ÷ points × weight`.
    """
    entries, item_scores = entries or {}, item_scores or {}
    items: dict[str, ItemResult] = {}
    sections: dict[str, Decimal] = {}
    total = ZERO
    for section in sheet.sections:
        section_score = ZERO
        for item in section.items:
            result = score_item(item, names, entries.get(item.id))
            if item.id in item_scores:
                score = dec(item_scores[item.id])
                result = ItemResult(item, result.rules, max(item.points - score, ZERO), ZERO, score)
            items[item.id] = result
            section_score += result.score
        sections[section.id] = section_score
        total += section_score / section.points * section.weight if section.weight is not None else section_score
    return UnitScore(items, sections, total)


def aggregate_scores(scores: Sequence[UnitScore], how: str) -> UnitScore:
    """Scores of several areas made one (a road's from its segments, a unit's from its roads): each rule's
    quantity and amount, each item's deduction, bonus and score, each section and the total, by their `mean`
    or their `sum` — so the parts still add up to the whole."""
    if not scores:
        raise ValueError("no scores to aggregate")

    def agg(values: Iterable[Decimal]) -> Decimal:
        values = list(values)
        return sum(values, ZERO) / (len(values) if how == "mean" else 1)

    first = scores[0]
    items = {}
    for item_id, result in first.items.items():
        parts = [s.items[item_id] for s in scores]
        rules = tuple(RuleResult(rule.rule, agg(p.rules[i].quantity for p in parts),
                                 agg(p.rules[i].amount for p in parts))
                      for i, rule in enumerate(result.rules))
        items[item_id] = ItemResult(result.item, rules, agg(p.deducted for p in parts), agg(p.bonus for p in parts),
                                    agg(p.score for p in parts))
    return UnitScore(items, {k: agg(s.sections[k] for s in scores) for k in first.sections},
                     agg(s.total for s in scores))


# -- several assessors ---------------------------------------------------------------------------------------


def combine_assessors(marks: Sequence[tuple[str, Decimal]], assessors: Mapping[str, Any]) -> Decimal:
    """One item score from several assessors' (role, score) marks.

    `average` (default): the mean of all marks. `weighted`: the mean within each role, weighted by the roles'
    weights among those present; a role marked `at_least` keeps at least its weight's share (a street's
    rating is at least 50 % of a squad's score) and the others share the rest in proportion.
    """
    if not marks:
        raise ValueError("no marks")
    if assessors.get("combine", "average") != "weighted":
        return sum((dec(m) for _, m in marks), ZERO) / len(marks)
    by_role: dict[str, list[Decimal]] = {}
    for role, mark in marks:
        by_role.setdefault(role, []).append(dec(mark))
    weights = {w["role"]: (dec(w["weight"]), bool(w.get("at_least"))) for w in assessors.get("weights", [])}
    present = {role: weights.get(role, (Decimal(1), False)) for role in by_role}
    total_weight = sum((w for w, _ in present.values()), ZERO)
    shares = {role: w / total_weight for role, (w, _) in present.items()}
    # An `at_least` weight is a share of the whole (0.5: at least half; the scheme check keeps it within 0–1).
    fixed = {role: w for role, (w, at_least) in present.items() if at_least and shares[role] < w}
    if fixed and len(fixed) < len(present) and sum(fixed.values(), ZERO) <= 1:
        rest = Decimal(1) - sum(fixed.values(), ZERO)
        others = {r: w for r, (w, _) in present.items() if r not in fixed}
        others_total = sum(others.values(), ZERO)
        shares = {**fixed, **{r: rest * w / others_total for r, w in others.items()}}
    return sum((shares[r] * sum(ms, ZERO) / len(ms) for r, ms in by_role.items()), ZERO)


# -- results built on scores ---------------------------------------------------------------------------------


def grade_of(sheet: SheetSpec, score: Decimal) -> Grade | None:
    """The band the published (two-place) score falls in: the highest whose `min` it reaches."""
    value = shown(score)
    return next((g for g in sheet.grades if value >= g.min), None)


def capped_grade(sheet: SheetSpec, grade: Grade | None, flags: Iterable[Flag]) -> Grade | None:
    """The grade after the flags' `caps_grade`: no better than the lowest cap among the flags held."""
    caps = [g for f in flags if f.caps_grade for g in sheet.grades if g.id == f.caps_grade]
    if grade is None or not caps:
        return grade
    cap = min(caps, key=lambda g: g.min)
    return cap if grade.min > cap.min else grade


def combined_bands(sheet: SheetSpec, rule: Mapping[str, Any]) -> SheetSpec:
    """The sheet as a `combine` rule grades, flags and funds its results: with the rule's own `grades`, with
    none (`grades: none`), or with the sheet's (the scheme check allows that only when the formula is on the
    sheet's scale); with the rule's own `flags` and `funding` only (a month's flags and money are not a
    year's)."""
    bands = sheet.grades if "grades" not in rule else _grades([] if rule["grades"] == "none" else rule["grades"])
    funding = rule.get("funding")
    return replace(sheet, grades=bands, flags=_flags(rule.get("flags", ())), funding=_funding(funding),
                   funding_groups=dict((funding or {}).get("groups") or {}), charges=(),
                   flag_overlap=rule.get("flag_overlap", sheet.flag_overlap), streaks=_streaks(rule.get("streaks", ())))


def failing_grade(sheet: SheetSpec) -> Grade | None:
    """The lowest band, if it does not pass: where a veto puts a unit whatever its score."""
    return sheet.grades[-1] if sheet.grades and not sheet.grades[-1].passing else None


def rank(scores: Mapping[Any, Decimal]) -> dict[Any, int]:
    """Competition ranking on published scores: equal scores share a rank (1, 2, 2, 4)."""
    ordered = sorted(scores.items(), key=lambda kv: shown(kv[1]), reverse=True)
    ranks: dict[Any, int] = {}
    previous, previous_rank = None, 0
    for position, (unit, score) in enumerate(ordered, start=1):
        value = shown(score)
        ranks[unit] = previous_rank if value == previous else position
        previous, previous_rank = value, ranks[unit]
    return ranks


def flags_for(sheet: SheetSpec, scores: Mapping[Any, Decimal], barred: Iterable[Any] = (),
              flags: Sequence[Flag] | None = None) -> dict[Any, list[Flag]]:
    """Flags of one group (the sheet's flags, or `flags`): the top N and bottom M (ties at the edge share the
    flag). `barred` units (vetoed) hold no top flag; the top places go to the next units in line. A group no
    larger than a flag's count gets none of it: in a group of two, "top two" would flag everyone. A unit both
    at the top and at the bottom keeps what `sheet.flag_overlap` says (`settle_overlap`)."""
    flags = sheet.flags if flags is None else flags
    barred = set(barred)
    ranks = rank(scores)
    eligible = rank({u: s for u, s in scores.items() if u not in barred})
    size = len(scores)
    ordered = sorted(ranks.values())
    out: dict[Any, list[Flag]] = {unit: [] for unit in scores}
    if len(set(ranks.values())) <= 1:
        return out  # everyone equal (a month without data): nobody stands out either way
    for flag in flags:
        if size <= flag.count:
            continue
        for unit, position in ranks.items():
            if flag.kind == "top":
                hit = unit in eligible and eligible[unit] <= flag.count
            else:  # bottom: within the last `count` places, counted from the end with ties
                worse = size - bisect.bisect_right(ordered, position)
                hit = worse < flag.count
                if flag.below is not None:
                    hit = hit and shown(scores[unit]) < flag.below
            if hit:
                out[unit].append(flag)
    return settle_overlap(sheet, out)


def settle_overlap(sheet: SheetSpec, flags: dict[Any, list[Flag]]) -> dict[Any, list[Flag]]:
    """A unit flagged both at the top and at the bottom (a small group, ties at both ends, flags counted in
    different groups) keeps its top flags (`flag_overlap: top`, the default), its bottom flags (`bottom`) or
    neither (`none`)."""
    out = {}
    for unit, held in flags.items():
        kinds = {f.kind for f in held}
        if kinds == {"top", "bottom"}:
            keep = {"top": "top", "bottom": "bottom"}.get(sheet.flag_overlap)
            held = [f for f in held if f.kind == keep]
        out[unit] = held
    return out


@dataclass(frozen=True)
class PeriodResult:
    """One unit's published result for one period, as streak conditions see it."""

    period: str  # "2026-10"
    year: int
    score: Decimal
    grade: str | None
    passing: bool
    rank: int | None
    flags: tuple[str, ...] = ()
    vetoed: bool = False
    starts_on: dt.date | None = None  # with both dates known, a period missing in between breaks a run
    ends_on: dt.date | None = None

    def names(self) -> dict[str, Any]:
        """What a streak's `when` may name: `flag` is the first flag, `flags` all of them (`'red' in flags`)."""
        return {"score": float(self.score), "grade": self.grade, "passing": self.passing, "rank": self.rank,
                "flags": list(self.flags), "flag": self.flags[0] if self.flags else None, "vetoed": self.vetoed}


def streaks_hit(sheet: SheetSpec, history: Sequence[PeriodResult]) -> list[Streak]:
    """The streak rules the latest period (last in `history`, oldest first) completes.

    In a row: the condition held in exactly `times` periods running up to now (so an admonishment after three
    months is not repeated in the fourth; a six-month rule is a streak of its own). Within the year: the
    condition now holds for the `times`-th time this year. With `repeat`, "at least": the rule fires in every
    period from the `times`-th on, while the run lasts (or each further time in the year).
    """

    def reached(count: int, streak: Streak) -> bool:
        return count == streak.times or (streak.repeat and count >= streak.times)

    if not history:
        return []
    latest = history[-1]
    hit = []
    for streak in sheet.streaks:
        def holds(result: PeriodResult, streak: Streak = streak) -> bool:
            return bool(_evaluate(streak.when, result.names(), f"streaks.{streak.id}"))

        if not holds(latest):
            continue
        if streak.consecutive:
            run, after = 0, None
            for result in reversed(history):
                if not holds(result) or (after is not None and _gap(result, after)):
                    break
                run, after = run + 1, result
            if reached(run, streak):
                hit.append(streak)
        elif reached(sum(1 for r in history if r.year == latest.year and holds(r)), streak):
            hit.append(streak)
    return hit


def _gap(before: PeriodResult, after: PeriodResult) -> bool:
    """Whether a period lies between two results (a month never assessed breaks a run)."""
    if before.ends_on is None or after.starts_on is None:
        return False
    return (after.starts_on - before.ends_on).days > 1


def vetoed(sheet: SheetSpec, names: Mapping[str, Any], period: str | None = None, over: str = "unit") -> list[Veto]:
    """The vetoes of period kind `period` (those without one count in every period) read `over` one unit's
    numbers (or the district's totals) whose condition holds."""
    return [v for v in sheet.vetoes if (v.period or sheet.period) == (period or sheet.period) and v.over == over
            and _evaluate(v.when, names, f"vetoes.{v.id}")]


def district_totals(per_unit: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Each metric added up over the units (numbers only; a unit without a value adds nothing): what a veto
    `over: district` reads (the district's new illegal buildings in the year)."""
    totals: dict[str, Any] = {}
    for names in per_unit:
        for key, value in names.items():
            if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
                totals[key] = totals.get(key, Decimal(0)) + dec(value)
    return totals


def longer_vetoes(sheet: SheetSpec) -> dict[str, list[Veto]]:
    """The vetoes read over a longer period than the sheet's, by that period (`year` on a monthly sheet)."""
    out: dict[str, list[Veto]] = {}
    for veto in sheet.vetoes:
        if veto.period and veto.period != sheet.period:
            out.setdefault(veto.period, []).append(veto)
    return out


def combine(formula: Expression, averages: Mapping[str, Decimal], where: str = "combine") -> Decimal:
    """A longer period's score from sheets' average scores (`lidu_monthly * 0.6 + lidu_year_end * 0.4`)."""
    return _number(_evaluate(formula, {k: float(v) for k, v in averages.items()}, where), where)


def funding_for(sheet: SheetSpec, groups: Iterable[str]) -> Funding | None:
    """The sheet's funding for a unit in these unit groups (in the scheme's `unit_groups` order): the first of
    them that `funding.groups` names overrides the amounts it gives. (Not the order of `funding.groups`: a
    mapping's order is not kept by every database.)"""
    if sheet.funding is None:
        return None
    for group in groups:
        given = sheet.funding_groups.get(group)
        if given:
            return replace(sheet.funding, **{k: dec(v) for k, v in given.items()})
    return sheet.funding


def money_lines(sheet: SheetSpec, rule: Funding | None, score: Decimal, vetoes: Sequence[Veto],
                flags: Iterable[Flag], metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One unit's money for a period, line by line: its funding, each flag's reward or fine, each charge (有偿
    整改). Amounts are strings of two decimal places (stored as they are published)."""
    lines: list[dict[str, Any]] = []
    if rule is not None:
        lines.append({"kind": "funding", "id": "funding", "amount": funding(rule, score, vetoes)})
    for flag in flags:
        if flag.amount is not None:
            lines.append({"kind": "flag", "id": flag.id, "amount": flag.amount})
    for charge in sheet.charges:
        count = metrics.get(charge.metric)
        if isinstance(count, int | float | Decimal) and not isinstance(count, bool) and count:
            lines.append({"kind": "charge", "id": charge.id, "count": count, "amount": -charge.amount * dec(count)})
    return [{**line, "amount": str(line["amount"].quantize(CENT, rounding=ROUND_HALF_UP))} for line in lines]


def money_total(lines: Iterable[Mapping[str, Any]]) -> Decimal:
    return sum((Decimal(line["amount"]) for line in lines), Decimal(0)).quantize(CENT, rounding=ROUND_HALF_UP)


def funding(rule: Funding, score: Decimal, vetoes: Sequence[Veto] = ()) -> Decimal:
    """The money a score earns: the base amount, plus (minus) the step amount for every whole `step_points`
    the published score lies above (below) the base score, then held between the floor and the cap. A veto
    may take it down to the floor, or to nothing."""
    if any(v.funding == "none" for v in vetoes):
        return Decimal(0)
    if any(v.funding == "floor" for v in vetoes) and rule.floor is not None:
        return rule.floor
    value = shown(score)
    if value >= rule.base_score:
        steps = ((value - rule.base_score) / rule.step_points).to_integral_value(rounding="ROUND_FLOOR")
    else:
        steps = -((rule.base_score - value) / rule.step_points).to_integral_value(rounding="ROUND_FLOOR")
    amount = rule.base_amount + steps * rule.step_amount
    if rule.floor is not None:
        amount = max(amount, rule.floor)
    if rule.cap is not None:
        amount = min(amount, rule.cap)
    return amount


def group_scores(scores: Mapping[Any, Decimal], group_of: Callable[[Any], Iterable[Any]]) -> dict[Any, dict]:
    """Scores split into ranking groups; a unit may sit in several groups (or none)."""
    out: dict[Any, dict] = {}
    for unit, score in scores.items():
        for group in group_of(unit):
            out.setdefault(group, {})[unit] = score
    return out
