"""The pure scoring engine on hand-built months with known answers: caps, 0.5-point steps at floating-point
edges, assessor entries, weighted categories, several assessors, grades, ranks, flags, streaks, a veto,
combined periods and the money formula around its base score and cap."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from server.assessment import engine
from server.assessment.engine import PeriodResult, ScoringError
from server.expressions import compile_expression

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lidu():
    return engine.sheet_spec(YAML(typ="safe").load((ROOT / "schemes/lidu/score_sheet.yaml").read_text("utf-8")))


def _sheet(**extra) -> engine.SheetSpec:  # noqa: ANN003
    definition = {"id": "s", "name": "s", "period": "month", "total": 100, "assessed": {"unit_kinds": ["c"]},
                  "sections": [{"id": "a", "name": "a", "points": 100, "items": [
                      {"id": "i", "name": "i", "points": 100, "rules": [
                          {"id": "r", "type": "per_occurrence", "points": 1}]}]}]}
    definition.update(extra)
    return engine.sheet_spec(definition)


GOOD_MONTH = {"mechanism_missing": 0, "community_head_missed_weeks": 0, "department_head_missed_weeks": 0,
              "rectification_rate": 1.0, "on_time_rate": 1.0, "campaigns": 1, "hotspots": 1}


def test_a_clean_month_scores_the_full_hundred(lidu):
    score = engine.score_unit(lidu, GOOD_MONTH)
    assert score.total == 100 and score.sections == {"mechanism": 40, "effect": 60}


@pytest.mark.parametrize(("rate", "lost"), [
    (0.95, 0), (0.9501, 0), (0.9499, 0),   # not a whole 0.5-point step below
    (0.945, 2),                             # exactly one step: 0.95 − 0.945 is 0.00499… in binary floats
    (0.9449, 2), (0.94, 4), (0.935, 6), (0.9, 10),  # 0.90 is ten steps, capped with the others at 10
])
def test_rectification_rate_in_half_point_steps(lidu, rate, lost):
    score = engine.score_unit(lidu, {**GOOD_MONTH, "rectification_rate": rate})
    item = score.items["on_the_spot"]
    assert item.deducted == lost and item.score == 10 - lost


def test_item_loses_at_most_its_points(lidu):
    """扣完为止: 10 points of rate steps and 3 entered problems on a 10-point item lose 10, not 16."""
    score = engine.score_unit(lidu, {**GOOD_MONTH, "rectification_rate": 0.9, "on_time_rate": 0.97},
                              entries={"on_the_spot": {"poor_results": 3}})
    rules = {r.rule.id: r.amount for r in score.items["on_the_spot"].rules}
    assert rules == {"poor_results": 3, "rectification_rate_low": 20, "on_time_rate_low": 4, "records_incomplete": 0}
    assert score.items["on_the_spot"].score == 0 and score.total == 90


def test_one_off_and_formula_counts(lidu):
    score = engine.score_unit(lidu, {**GOOD_MONTH, "campaigns": 0, "hotspots": 0, "mechanism_missing": 1,
                                     "community_head_missed_weeks": 3, "department_head_missed_weeks": 1},
                              entries={"hotspots": {"below_quality": 2}, "themed_campaign": {"weak_campaign": 1}})
    assert score.items["themed_campaign"].deducted == 6            # no campaign −5, one weak point −1
    assert score.items["hotspots"].deducted == 9                   # one missing −5, two below quality −2 each
    assert score.items["mechanism_in_place"].deducted == 5         # no mechanism −5
    assert score.items["leadership"].deducted == 8                 # four missed person-weeks −2 each
    assert score.total == 100 - 6 - 9 - 5 - 8


def test_formulas_that_cannot_be_evaluated_name_the_rule(lidu):
    # A month without problems has no rectification rate: nothing to deduct.
    assert engine.score_unit(lidu, {**GOOD_MONTH, "rectification_rate": None}).total == 100
    names = dict(GOOD_MONTH)
    del names["hotspots"]  # `max(1 - hotspots, 0)` cannot be computed without it
    with pytest.raises(ScoringError) as error:
        engine.score_unit(lidu, names)
    assert error.value.where == "hotspots.too_few"
    with pytest.raises(ScoringError):
        engine.score_unit(lidu, GOOD_MONTH, entries={"on_the_spot": {"poor_results": -1}})


def test_small_deductions_add_up_exactly():
    """Seed 003: each pile of rubbish −0.01; 37 piles is −0.37, not −0.37000000000000005."""
    sheet = _sheet(sections=[{"id": "a", "name": "a", "points": 12, "items": [{"id": "rubbish", "name": "r",
                   "points": 12, "rules": [{"id": "piles", "type": "per_occurrence", "points": 0.01, "count": "piles"},
                                           {"id": "late_big", "type": "per_occurrence", "points": 0.02,
                                            "count": "late_big"}]}]}])
    score = engine.score_unit(sheet, {"piles": 37, "late_big": 3})
    assert score.total == D("11.57")


def test_rule_cap_bonus_and_step_above():
    sheet = _sheet(sections=[{"id": "a", "name": "a", "points": 20, "items": [
        {"id": "complaints", "name": "c", "points": 10, "rules": [
            {"id": "each", "type": "per_occurrence", "points": 1, "count": "complaints", "cap": 3},
            {"id": "over", "type": "per_step_above", "points": 1, "value": "response_hours", "threshold": 24,
             "step": 12, "partial_steps": True}]},
        {"id": "praise", "name": "p", "points": 10, "rules": [
            {"id": "praised", "type": "bonus", "points": 0.5, "count": "praises", "cap": 2},
            {"id": "shirk", "type": "one_off", "points": 4}]}]}])
    score = engine.score_unit(sheet, {"complaints": 5, "response_hours": 30, "praises": 6},
                              entries={"praise": {"shirk": 1}})
    assert score.items["complaints"].deducted == 4     # 5 complaints capped at 3, plus a started 12-hour step
    assert score.items["praise"].score == D(10) - 4 + 2  # the bonus (capped at 2) comes on top


def test_weighted_categories():
    """Seed 003: six categories worth 26/26/12/12/12/12, each scored on its own sheet of 100."""
    weights = {"digital": 26, "community": 26, "illegal": 12, "environment": 12, "red_cross": 12, "health": 12}
    sheet = _sheet(sections=[{"id": key, "name": key, "points": 100, "weight": weight, "items": [
        {"id": f"{key}_work", "name": key, "points": 100, "rules": [
            {"id": "lost", "type": "per_occurrence", "points": 1, "count": f"lost_{key}"}]}]}
        for key, weight in weights.items()])
    lost = {"lost_digital": 10, "lost_community": 0, "lost_illegal": 50, "lost_environment": 0,
            "lost_red_cross": 0, "lost_health": 25}
    score = engine.score_unit(sheet, lost)
    assert score.total == D("26") * D("0.9") + 26 + 6 + 12 + 12 + 9  # 88.4
    assert engine.shown(score.total) == D("88.40")


def test_several_assessors():
    assert engine.combine_assessors([("office", D(80)), ("office", D(90))], {}) == 85
    weighted = {"combine": "weighted", "weights": [{"role": "street", "weight": 0.5, "at_least": True},
                                                  {"role": "community", "weight": 1}, {"role": "office", "weight": 1}]}
    # Street 60; communities 80 and 100 (mean 90); office 70. Plain weights would give the street 0.2;
    # it keeps its half, the others share the rest: 0.5·60 + 0.25·90 + 0.25·70.
    marks = [("street", D(60)), ("community", D(80)), ("community", D(100)), ("office", D(70))]
    assert engine.combine_assessors(marks, weighted) == D(70)
    plain = {"combine": "weighted", "weights": [{"role": "street", "weight": 0.5}, {"role": "community", "weight": 1},
                                                {"role": "office", "weight": 1}]}
    assert engine.combine_assessors(marks, plain) == D(76)  # 0.2·60 + 0.4·90 + 0.4·70
    # Only the street and the communities: the street's 0.5 of 1.5 is already a third... raised to a half.
    assert engine.combine_assessors(marks[:3], weighted) == D(75)


@pytest.mark.parametrize(("score", "grade"), [
    (D(100), "excellent"), (D(90), "excellent"), (D("89.995"), "excellent"), (D("89.994"), "good"),
    (D(80), "good"), (D("79.99"), "qualified"), (D(70), "qualified"), (D("69.99"), "unqualified"),
    (D(0), "unqualified"),
])
def test_grade_bands(lidu, score, grade):
    assert engine.grade_of(lidu, score).id == grade


def test_ranks_and_flags_with_ties(lidu):
    scores = {"a": D(95), "b": D("88.5"), "c": D("88.5"), "d": D(72), "e": D(65), "f": D(64)}
    assert engine.rank(scores) == {"a": 1, "b": 2, "c": 2, "d": 4, "e": 5, "f": 6}
    flags = {unit: [f.id for f in fl] for unit, fl in engine.flags_for(lidu, scores).items()}
    # Red flag for the top two: a, and b and c tied for second. Yellow for the last, below 70.
    assert flags == {"a": ["red_flag"], "b": ["red_flag"], "c": ["red_flag"], "d": [], "e": [], "f": ["yellow_flag"]}
    # A last place that scores 70 or more gets no yellow flag.
    assert _flags(lidu, {"a": D(95), "b": D(75), "c": D(74)}) == {"a": ["red_flag"], "b": ["red_flag"], "c": []}
    # A group no larger than a flag's count gets none of it: "top two" of two units would flag everyone.
    assert _flags(lidu, {"a": D(95), "b": D(75)}) == {"a": [], "b": []}


def _flags(sheet, scores):  # noqa: ANN001, ANN202
    return {unit: [f.id for f in fl] for unit, fl in engine.flags_for(sheet, scores).items()}


@pytest.mark.parametrize(("overlap", "expected"), [
    ("top", {"b": ["first"], "c": ["first"]}),
    ("bottom", {"b": ["last"], "c": ["last"]}),
    ("none", {"b": [], "c": []}),
])
def test_a_unit_at_both_ends_keeps_what_flag_overlap_says(overlap, expected):
    # Top three and bottom three of four, b and c tied for second: they are among both; a only at the top,
    # d only at the bottom.
    sheet = _sheet(flag_overlap=overlap, flags=[
        {"id": "first", "name": "前三", "kind": "top", "count": 3},
        {"id": "last", "name": "后三", "kind": "bottom", "count": 3}])
    got = _flags(sheet, {"a": D(95), "b": D(80), "c": D(80), "d": D(60)})
    assert got == {"a": ["first"], **expected, "d": ["last"]}


def test_groups_rank_separately():
    groups = engine.group_scores({"x": D(1), "y": D(2), "z": D(3)}, lambda u: ["odd"] if u != "y" else ["even"])
    assert groups == {"odd": {"x": D(1), "z": D(3)}, "even": {"y": D(2)}}


def _history(scores: list[float], year: int = 2026) -> list[PeriodResult]:
    return [PeriodResult(f"{year}-{i + 1:02d}", year, D(str(s)), None, s >= 70, None) for i, s in enumerate(scores)]


def test_streaks_in_a_row_and_within_the_year():
    sheet = _sheet(streaks=[
        {"id": "admonish", "name": "诫勉谈话", "when": "not passing", "times": 3, "action": "诫勉谈话"},
        {"id": "suspend", "name": "停职检查", "when": "not passing", "times": 6, "action": "停职检查"},
        {"id": "four_a_year", "name": "通报", "when": "score < 70", "times": 4, "consecutive": False,
         "action": "通报批评"}])
    ids = lambda scores: [s.id for s in engine.streaks_hit(sheet, _history(scores))]  # noqa: E731
    assert ids([65, 60]) == []
    assert ids([65, 60, 69]) == ["admonish"]               # the third month in a row
    assert ids([65, 60, 69, 50]) == ["four_a_year"]         # not admonished again; the fourth this year
    assert ids([65, 60, 75, 69]) == []                      # the run was broken
    assert ids([60, 60, 60, 60, 60, 60]) == ["suspend"]
    assert ids([60, 60, 69, 90]) == []                      # a good month triggers nothing
    # A run in a row crosses the new year; the yearly count starts again in January.
    new_year = _history([60, 60], 2025) + _history([60, 60], 2026)
    assert [s.id for s in engine.streaks_hit(sheet, new_year[:3])] == ["admonish"]
    assert [s.id for s in engine.streaks_hit(sheet, new_year)] == []  # 4 in a row; only 2 this year
    assert [s.id for s in engine.streaks_hit(sheet, _history([60, 60, 90, 60, 60]))] == ["four_a_year"]


def test_streaks_that_repeat_fire_while_the_run_lasts():
    sheet = _sheet(streaks=[
        {"id": "last", "name": "末位约谈", "when": "not passing", "times": 2, "repeat": True, "action": "约谈"},
        {"id": "each", "name": "通报", "when": "score < 70", "times": 2, "consecutive": False, "repeat": True,
         "action": "通报批评"}])
    ids = lambda scores: [s.id for s in engine.streaks_hit(sheet, _history(scores))]  # noqa: E731
    assert ids([60]) == []
    assert ids([60, 60]) == ["last", "each"]
    assert ids([60, 60, 60]) == ["last", "each"]             # at least two in a row: again in the third month
    assert ids([60, 60, 60, 90]) == []                       # a good month: nothing
    assert ids([60, 60, 90, 60]) == ["each"]                 # the run broke; the third time this year
    assert ids([60, 90, 60, 90]) == []                       # a good month triggers nothing


def test_veto_fails_the_year_whatever_the_score():
    sheet = _sheet(vetoes=[{"id": "illegal", "name": "新增违建超过20处", "when": "new_illegal_buildings > 20",
                            "period": "year"}])
    assert [v.id for v in engine.vetoed(sheet, {"new_illegal_buildings": 21}, "year")] == ["illegal"]
    assert engine.vetoed(sheet, {"new_illegal_buildings": 20}, "year") == []
    assert engine.vetoed(sheet, {"new_illegal_buildings": 99}, "month") == []  # judged on the year


def test_a_vetoed_unit_holds_no_top_flag_and_the_next_in_line_takes_it(lidu):
    scores = {"a": D(98), "b": D(95), "c": D(90), "d": D(60)}
    flags = engine.flags_for(lidu, scores, barred={"a"})
    # a is vetoed: the two red flags go to b and c; a keeps its rank, and d (below 70) is still last.
    assert {u: [f.id for f in fl] for u, fl in flags.items()} == {
        "a": [], "b": ["red_flag"], "c": ["red_flag"], "d": ["yellow_flag"]}
    assert engine.rank(scores)["a"] == 1
    # A vetoed unit at the bottom still gets the bottom flag.
    flags = engine.flags_for(lidu, {"a": D(98), "b": D(95), "c": D(60)}, barred={"c"})
    assert [f.id for f in flags["c"]] == ["yellow_flag"]


def test_a_veto_takes_the_money_down_as_it_says():
    funding = {"base_amount": 5000, "base_score": 80, "step_points": 1, "step_amount": 100, "floor": 3000,
               "cap": 6000}
    sheet = _sheet(funding=funding, vetoes=[
        {"id": "keep", "name": "k", "when": "x > 1"},
        {"id": "floor", "name": "f", "when": "x > 2", "funding": "floor"},
        {"id": "none", "name": "n", "when": "x > 3", "funding": "none"}])
    assert [v.funding for v in sheet.vetoes] == ["keep", "floor", "none"]
    assert engine.funding(sheet.funding, D(85), sheet.vetoes[:1]) == 5000 + 5 * 100  # kept as earned
    assert engine.funding(sheet.funding, D(95), sheet.vetoes[:2]) == 3000
    assert engine.funding(sheet.funding, D(95), sheet.vetoes) == 0
    # Without a period of its own, a veto counts in the sheet's period.
    assert [v.id for v in engine.vetoed(sheet, {"x": 2}, "month")] == ["keep"]
    assert engine.vetoed(sheet, {"x": 9}, "year") == []


def test_the_failing_grade_is_the_lowest_band_when_it_does_not_pass(lidu):
    assert engine.failing_grade(lidu).passing is False
    assert engine.failing_grade(lidu) == min(lidu.grades, key=lambda g: g.min)
    assert engine.failing_grade(_sheet()) is None  # no grades: a veto still shows, with no band


def test_monthly_average_and_year_end_combined():
    formula = compile_expression("monthly * 0.6 + year_end * 0.4")
    months = [D("91.5"), D(88), D("86.5")]
    average = sum(months) / len(months)  # 88.666…
    assert engine.shown(engine.combine(formula, {"monthly": average, "year_end": D(80)})) == D("85.20")


@pytest.mark.parametrize(("score", "amount"), [
    (D(80), D(10000)),            # at the base score: the base amount
    (D("79.99"), D(10000)),       # just below, but not a whole step below
    (D(78), D(9500)),             # one whole step (2 points) below: −500
    (D("77.99"), D(9500)),
    (D(82), D(10500)),            # one step above: +500
    (D("83.99"), D(10500)),
    (D(96), D(12000)),            # eight steps above would be 14,000: capped at 12,000
    (D(10), D(6000)),             # thirty-five steps below: floored at 6,000
])
def test_money_around_the_base_score(score, amount):
    rule = engine.Funding(base_amount=D(10000), base_score=D(80), step_points=D(2), step_amount=D(500),
                          floor=D(6000), cap=D(12000))
    assert engine.funding(rule, score) == amount


def test_streak_conditions_see_every_flag_and_the_veto():
    sheet = _sheet(streaks=[{"id": "black", "name": "黑旗", "when": "'black' in flags", "times": 2, "action": "约谈"},
                            {"id": "vetoed", "name": "否决", "when": "vetoed", "times": 1, "action": "通报"}])
    history = [PeriodResult("2026-01", 2026, D(60), None, False, 9, ("yellow", "black")),
               PeriodResult("2026-02", 2026, D(61), None, False, 9, ("yellow", "black"), vetoed=True)]
    assert [s.id for s in engine.streaks_hit(sheet, history)] == ["black", "vetoed"]


def test_no_flags_when_everyone_ties_and_never_top_and_bottom(lidu):
    assert all(not f for f in engine.flags_for(lidu, {u: D(100) for u in "abcde"}).values())
    # Three units, top two red and bottom one yellow (below 70): the middle one is not both.
    flags = engine.flags_for(lidu, {"a": D(95), "b": D(65), "c": D(60)})
    assert {u: [f.id for f in fl] for u, fl in flags.items()} == {
        "a": ["red_flag"], "b": ["red_flag"], "c": ["yellow_flag"]}


def test_a_month_never_assessed_breaks_a_run():
    sheet = _sheet(streaks=[{"id": "three", "name": "连续三月", "when": "score < 70", "times": 3, "action": "诫勉"}])

    def month(m: int) -> PeriodResult:
        import calendar
        import datetime as dt

        return PeriodResult(f"2026-{m:02d}", 2026, D(60), None, False, None, starts_on=dt.date(2026, m, 1),
                            ends_on=dt.date(2026, m, calendar.monthrange(2026, m)[1]))

    assert [s.id for s in engine.streaks_hit(sheet, [month(1), month(3), month(4)])] == []  # February missing
    assert [s.id for s in engine.streaks_hit(sheet, [month(2), month(3), month(4)])] == ["three"]


def test_money_lines_round_halves_up_and_totals_add_up():
    sheet = _sheet(metrics=[{"id": "n", "source": "manual"}],
                   charges=[{"id": "c", "name": "有偿整改", "metric": "n", "amount": 0.125}],
                   flags=[{"id": "last", "name": "末位", "kind": "bottom", "count": 1, "amount": -500}])
    lines = engine.money_lines(sheet, None, D(80), (), sheet.flags, {"n": 1})
    assert lines == [{"kind": "flag", "id": "last", "amount": "-500.00"},
                     {"kind": "charge", "id": "c", "count": 1, "amount": "-0.13"}]  # 0.125 → 0.13, not 0.12
    assert engine.money_total(lines) == D("-500.13")


def test_district_totals_add_decimals_and_floats_and_skip_what_is_not_a_number():
    totals = engine.district_totals([{"n": D("1.5"), "x": None}, {"n": 2.5, "x": "a"}, {"n": 1, "flag": True}])
    assert totals == {"n": D(5)}


def test_funding_for_takes_the_first_of_the_units_groups_in_the_schemes_order():
    sheet = _sheet(funding={"base_amount": 1000, "base_score": 90, "step_points": 1, "step_amount": 100,
                            "groups": {"b": {"base_amount": 3000}, "a": {"base_amount": 2000}}})
    assert engine.funding_for(sheet, ["a", "b"]).base_amount == 2000  # the unit's groups decide, not the mapping
    assert engine.funding_for(sheet, ["b", "a"]).base_amount == 3000
    assert engine.funding_for(sheet, ["c"]).base_amount == 1000


def test_area_scores_aggregate_part_by_part():
    """A road's score from its segments': every rule, item, section and the total by the same mean or sum."""
    sheet = _sheet(per_area={"kind": "segment", "roll_up": [{"kind": "road", "aggregate": "sum"}]})
    assert sheet.per_area == engine.PerArea("segment", (engine.RollUp("road", "sum"),), "mean")
    north, south = engine.score_unit(sheet, {}, {"i": {"r": 30}}), engine.score_unit(sheet, {}, {"i": {"r": 5}})
    mean = engine.aggregate_scores([north, south], "mean")
    assert mean.total == D("82.5") and mean.sections == {"a": D("82.5")}
    item = mean.items["i"]
    assert (item.score, item.deducted, item.rules[0].quantity, item.rules[0].amount) == (
        D("82.5"), D("17.5"), D("17.5"), D("17.5"))
    total = engine.aggregate_scores([north, south], "sum")
    assert total.total == D(165) and total.items["i"].deducted == D(35)
    assert engine.aggregate_scores([north], "mean") == engine.aggregate_scores([north], "sum")
    with pytest.raises(ValueError):
        engine.aggregate_scores([], "mean")
    assert _sheet().per_area is None
