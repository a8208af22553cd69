"""Seed 003 (城市管理考核十篇) as score sheets in schemes/chengguan, scored on hand-built months whose answers
are worked out by hand in the comments: the six weighted categories of 篇1, the year score (monthly 60 % +
year-end 40 %), the communities' ratings of the sanitation station and the squad (averaged; the street side
at least half), the rubbish-pile deductions of 篇3, grades, flags, streaks, the veto and the money."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from server.assessment import engine
from server.assessment.engine import PeriodResult
from server.definitions.bundle import check_path
from server.expressions import compile_expression

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "schemes" / "chengguan"


def _load(name: str) -> dict:
    return YAML(typ="safe").load((FOLDER / name).read_text("utf-8"))


@pytest.fixture(scope="module")
def monthly() -> engine.SheetSpec:
    return engine.sheet_spec(_load("monthly.yaml"))


@pytest.fixture(scope="module")
def year_end() -> engine.SheetSpec:
    return engine.sheet_spec(_load("year_end.yaml"))


@pytest.fixture(scope="module")
def sanitation() -> engine.SheetSpec:
    return engine.sheet_spec(_load("sanitation_rating.yaml"))


@pytest.fixture(scope="module")
def squad() -> engine.SheetSpec:
    return engine.sheet_spec(_load("squad_rating.yaml"))


@pytest.fixture(scope="module")
def rubbish() -> engine.SheetSpec:
    return engine.sheet_spec(_load("rubbish.yaml"))


def test_the_scheme_validates_with_its_five_sheets():
    bundle = check_path(FOLDER, ROOT)
    assert bundle.id == "chengguan"
    sheets = sorted(m.id for m in bundle.members if m.kind == "score_sheet")
    assert sheets == ["chengguan_monthly", "chengguan_rubbish", "chengguan_sanitation_rating",
                      "chengguan_squad_rating", "chengguan_year_end"]


# -- 篇1: the six categories -----------------------------------------------------------------------------------

# A community with nothing to deduct: every rate at or above its target, no patrol missed, nothing entered.
CLEAN = {"disposal_rate": 0.97, "on_time_rate": 0.95, "missed_patrol_days": 0, "no_dedicated_worker": 0,
         "refuse_room_dirty_rate": 0.05, "new_illegal_buildings": 0, "illegal_not_removed": 0,
         "collection_rate": 0.96}


def test_six_categories_26_26_12_12_12_12(monthly):
    assert [(s.id, s.points, s.weight) for s in monthly.sections] == [
        ("digital", 26, 26), ("community", 26, 26), ("illegal_building", 12, 12), ("environment", 12, 12),
        ("red_cross", 12, 12), ("public_health", 12, 12)]
    score = engine.score_unit(monthly, CLEAN)
    assert score.total == 100
    assert score.sections == {"digital": 26, "community": 26, "illegal_building": 12, "environment": 12,
                              "red_cross": 12, "public_health": 12}


def test_a_community_losing_points_in_several_categories(monthly):
    names = {**CLEAN,
             "disposal_rate": 0.93,            # 2 points below 95 % = 4 steps of 0.5 → −4: disposal 6 of 10
             "on_time_rate": 0.945,            # exactly one 0.5-point step (0.95 − 0.945 in floats is 0.00499…) → −1
             "missed_patrol_days": 3,          # −0.5 each → −1.5: daily_patrol 4.5 of 6
             "refuse_room_dirty_rate": 0.08,   # 3 points above 5 % → −3: refuse_rooms 3 of 6
             "new_illegal_buildings": 2,       # −2 each → −4
             "illegal_not_removed": 1,         # −2 more → new_illegal loses 6: 2 of 8
             "collection_rate": 0.9}           # 5 points below 95 % → −5: rubbish_collection 1 of 6
    entries = {"reporting": {"not_reported": 2},         # −1 each → 4 of 6
               "street_order": {"problems": 5},           # −0.5 each → 7.5 of 10
               "ledger_publicity": {"missing": 1},        # −1 → 3 of 4
               "rivers_and_sites": {"problems": 20},      # −10, but the item has 6: 0 (扣完为止)
               "disinfection": {"week_missed": 1},        # −1 → 5 of 6
               "dirty_corners": {"found": 3}}             # −1.5 → 4.5 of 6
    score = engine.score_unit(monthly, names, entries)
    # digital 6 + 9 + 4 = 19; community 4 + 4.5 + 7.5 + 3 = 19; illegal 2 + 3 = 5; environment 1 + 0 = 1;
    # red cross 12; public health 5 + 4.5 = 9.5. Each counts score ÷ points × weight, here its score.
    assert score.sections == {"digital": 19, "community": 19, "illegal_building": 5, "environment": 1,
                              "red_cross": 12, "public_health": D("9.5")}
    assert score.items["rivers_and_sites"].deducted == 6 and score.items["rivers_and_sites"].score == 0
    assert score.total == D("65.5")                  # 19 + 19 + 5 + 1 + 12 + 9.5
    assert engine.grade_of(monthly, score.total).id == "unqualified"
    assert engine.funding(monthly.funding, score.total) == 3600  # 14 whole points below 80: 5000 − 1400


@pytest.mark.parametrize(("rate", "lost"), [
    (0.95, 0), (0.9451, 0),     # at the target, or less than a whole step below
    (0.945, 1), (0.9401, 1),    # one whole 0.5-point step
    (0.94, 2), (0.9, 10),       # 0.90 is ten steps: the whole 10 points
    (0.5, 10),                  # ninety steps, capped at the item's 10
])
def test_disposal_rate_in_half_point_steps(monthly, rate, lost):
    score = engine.score_unit(monthly, {**CLEAN, "disposal_rate": rate})
    assert score.items["disposal"].deducted == lost and score.total == 100 - lost


def test_a_month_without_cases_has_no_rate_and_loses_nothing_for_it(monthly):
    assert engine.score_unit(monthly, {**CLEAN, "disposal_rate": None, "on_time_rate": None}).total == 100


def test_new_illegal_buildings_are_capped_at_the_item(monthly):
    score = engine.score_unit(monthly, {**CLEAN, "new_illegal_buildings": 5, "illegal_not_removed": 5})
    # 5 × 2 + 5 × 2 = 20, but the item has 8 points: the section keeps only the ledger item's 4.
    assert score.items["new_illegal"].deducted == 8 and score.sections["illegal_building"] == 4
    assert score.total == 92


def test_no_full_time_worker_costs_the_whole_staffing_item(monthly):
    score = engine.score_unit(monthly, {**CLEAN, "no_dedicated_worker": 1})
    assert score.items["staffing"].score == 0 and score.total == 96
    assert engine.score_unit(monthly, {**CLEAN, "no_dedicated_worker": None}).total == 100  # not entered


def test_a_month_that_lands_exactly_on_ninety(monthly):
    # disposal 93 % → −4; on time 94 % → −2; four problems not reported → −4: 100 − 10 = 90, 优秀.
    score = engine.score_unit(monthly, {**CLEAN, "disposal_rate": 0.93, "on_time_rate": 0.94},
                              {"reporting": {"not_reported": 4}})
    assert score.total == 90 and engine.grade_of(monthly, score.total).id == "excellent"


@pytest.mark.parametrize(("score", "grade"), [
    ("100", "excellent"), ("90", "excellent"), ("89.99", "good"), ("80", "good"), ("79.99", "qualified"),
    ("70", "qualified"), ("69.99", "unqualified"), ("69.995", "qualified"),  # published as 70.00
    ("0", "unqualified"),
])
def test_grade_bands_of_pian8(monthly, squad, year_end, score, grade):
    for sheet in (monthly, squad, year_end):
        assert engine.grade_of(sheet, D(score)).id == grade


# -- ranking and flags (篇7 red and yellow banners, 篇9 bottom three) --------------------------------------------

def test_red_banners_for_the_top_two_and_yellow_for_the_last_two(monthly):
    scores = {"dongting": D("95.5"), "xiting": D(93), "nanting": D(88), "beiting": D(88), "tinghu": D(84),
              "tingyuan": D("79.5"), "xinting": D(72), "chunhui": D(69), "binjiang_prep": D(65)}
    assert engine.rank(scores) == {"dongting": 1, "xiting": 2, "nanting": 3, "beiting": 3, "tinghu": 5,
                                   "tingyuan": 6, "xinting": 7, "chunhui": 8, "binjiang_prep": 9}
    flags = {unit: [f.id for f in found] for unit, found in engine.flags_for(monthly, scores).items()}
    assert flags == {"dongting": ["red_flag"], "xiting": ["red_flag"], "nanting": [], "beiting": [], "tinghu": [],
                     "tingyuan": [], "xinting": ["bottom_three"], "chunhui": ["bottom_three", "yellow_flag"],
                     "binjiang_prep": ["bottom_three", "yellow_flag"]}


# -- streaks (篇8 第十条; 篇9) -------------------------------------------------------------------------------------

def _history(sheet: engine.SheetSpec, months: list[tuple[str, tuple[str, ...]]]) -> list[PeriodResult]:
    results = []
    for i, (score, flags) in enumerate(months):
        grade = engine.grade_of(sheet, D(score))
        results.append(PeriodResult(f"2026-{i + 1:02d}", 2026, D(score), grade.id, grade.passing, None, flags))
    return results


def _hit(sheet: engine.SheetSpec, scores: list[str], flags: tuple[str, ...] = ()) -> list[str]:
    return [s.id for s in engine.streaks_hit(sheet, _history(sheet, [(s, flags) for s in scores]))]


def test_three_months_unqualified_is_an_admonishment_and_six_a_suspension(monthly, squad):
    for sheet in (monthly, squad):
        assert _hit(sheet, ["72", "69.5", "65"]) == []                     # two in a row so far
        assert _hit(sheet, ["72", "69.5", "65", "69.99"]) == ["admonishment"]
        assert _hit(sheet, ["69", "69.5", "69.995", "60"]) == []           # 69.995 is published as 70: 合格
        assert _hit(sheet, ["60", "60", "60", "60"]) == []                 # the fourth month is not a new streak
        assert _hit(sheet, ["60"] * 6) == ["suspension"]
        assert _hit(sheet, ["60"] * 7) == []


def test_three_months_in_the_bottom_three_is_an_interview(monthly):
    assert _hit(monthly, ["75", "74", "73"], ("bottom_three",)) == ["interview"]
    assert _hit(monthly, ["65", "64", "63"], ("bottom_three", "yellow_flag")) == ["admonishment", "interview"]
    history = _history(monthly, [("75", ("bottom_three",)), ("85", ()), ("75", ("bottom_three",)),
                                 ("75", ("bottom_three",))])
    assert engine.streaks_hit(monthly, history) == []                    # the run was broken in February


# -- the veto (篇8 第六条) ----------------------------------------------------------------------------------------

def test_more_than_twenty_new_illegal_buildings_in_the_district_vetoes_the_year(monthly):
    # 辖区全年新增违法建设: the street's total over its communities, not each community's own count.
    year = lambda *counts: engine.vetoed(  # noqa: E731
        monthly, engine.district_totals({"new_illegal_buildings": n} for n in counts), "year", over="district")
    assert year(20) == [] and year(8, 7, 5) == []
    assert [v.id for v in year(8, 8, 5)] == ["illegal_buildings"]                # 21 in all, none over 20 alone
    assert engine.vetoed(monthly, {"new_illegal_buildings": 25}, "year") == []  # one unit's count is not read
    assert engine.vetoed(monthly, {"new_illegal_buildings": 25}, "month", over="district") == []  # the year only


# -- the year: monthly 60 % + year-end 40 % (篇1 考核方法3) --------------------------------------------------------

def test_year_end_sheet(year_end):
    score = engine.score_unit(year_end, {"satisfaction": 0.93},
                              {"ledgers": {"missing": 2, "incomplete": 3},   # −4 − 3: 33 of 40
                               "open_check": {"problems": 4},                # −2: 18 of 20
                               "secret_check": {"problems": 6}})             # −3: 17 of 20
    # satisfaction 93 %: two whole points below 95 % → −2: 18 of 20. 33 + 18 + 17 + 18 = 86.
    assert score.sections == {"ledgers": 33, "spot_checks": 35, "appraisal": 18}
    assert score.total == 86


@pytest.mark.parametrize(("satisfaction", "lost"), [
    (0.95, 0), (0.9499, 1),   # a started percentage point counts as a whole one
    (0.94, 1), (0.925, 3), (0.5, 20),
])
def test_appraisal_counts_started_points(year_end, satisfaction, lost):
    assert engine.score_unit(year_end, {"satisfaction": satisfaction}).items["appraisal"].deducted == lost


def test_year_score_is_sixty_percent_monthly_average_and_forty_percent_year_end(monthly):
    (year_total,) = monthly.combine
    assert year_total["period"] == "year"
    formula = compile_expression(year_total["formula"])
    months = [D(s) for s in ("92", "88", "85.5", "90", "79", "86", "88", "91", "84.5", "87", "89", "93")]
    average = sum(months) / len(months)
    assert average == D("87.75")                                       # 1053 ÷ 12
    year = engine.combine(formula, {"chengguan_monthly": average, "chengguan_year_end": D(86)})
    assert year == D("87.05")                                          # 0.6 × 87.75 + 0.4 × 86 = 52.65 + 34.4
    assert engine.grade_of(monthly, year).id == "good"


# -- money (demo amounts; 篇9 ties 城维费 to the scores) --------------------------------------------------------

@pytest.mark.parametrize(("score", "amount"), [
    ("80", 5000),        # at the base score
    ("79.995", 5000),    # published as 80.00
    ("79.99", 5000),     # just below, but not a whole point below
    ("79", 4900),        # one whole point below: −100
    ("78.5", 4900),
    ("80.99", 5000),     # just above, not a whole point
    ("81", 5100),
    ("89.99", 5900),
    ("90", 6000),        # ten points above: exactly the cap
    ("95", 6000),        # would be 6,500: capped
    ("60", 3000),        # twenty points below: exactly the floor
    ("40", 3000),        # would be 1,000: floored
])
def test_funding_around_the_base_score(monthly, score, amount):
    assert engine.funding(monthly.funding, D(score)) == amount


# -- 篇1 考核方法4: the communities rate the sanitation station and the squad --------------------------------------

def _marks(sheet: engine.SheetSpec, raters: list[tuple[str, dict]]) -> dict[str, D]:
    """Each rater's entries scored item by item, then combined item by item as the sheet says."""
    combined = {}
    for _, item in sheet.items():
        marks = [(role, engine.score_item(item, {}, entries.get(item.id)).score) for role, entries in raters]
        combined[item.id] = engine.combine_assessors(marks, sheet.assessors)
    return combined


def test_sanitation_station_is_the_average_of_the_communities_marks(sanitation):
    raters = [
        ("community_rater", {"sweeping": {"problems": 2}, "facilities": {"problems": 1}}),   # 36+30+18+10 = 94
        ("community_rater", {"collection": {"problems": 3}, "cooperation": {"ignored": 1}}),  # 40+24+20+8 = 92
        ("community_rater", {"sweeping": {"problems": 5}, "collection": {"problems": 1}}),    # 30+28+20+10 = 88
    ]
    items = _marks(sanitation, raters)
    # sweeping (36+40+30)/3, collection (30+24+28)/3, facilities (18+20+20)/3, cooperation (10+8+10)/3
    assert items == {"sweeping": D(106) / 3, "collection": D(82) / 3, "facilities": D(58) / 3,
                     "cooperation": D(28) / 3}
    score = engine.score_unit(sanitation, {}, item_scores=items)
    assert abs(score.total - D(274) / 3) < D("1e-20")                 # (94 + 92 + 88) / 3 = 91.333…
    assert engine.shown(score.total) == D("91.33")


SQUAD_COMMUNITIES = [
    ("community_rater", {"daily_patrol": {"problems": 1}, "street_order": {"problems": 2}}),        # 28+26+25+15 = 94
    ("community_rater", {"illegal_building": {"problems": 1}, "cooperation": {"ignored": 1}}),     # 30+30+20+12 = 92
    ("community_rater", {"daily_patrol": {"problems": 3}, "street_order": {"problems": 1}}),        # 24+28+25+15 = 92
]
BRIGADE = ("brigade_assessor", {"daily_patrol": {"problems": 5}, "street_order": {"problems": 3},
                                "illegal_building": {"problems": 2}})                              # 20+24+15+15 = 74


def test_squad_from_the_communities_averaged_and_the_brigade(squad):
    # Communities alone: their average is the score, (94 + 92 + 92) / 3 = 278/3 = 92.67.
    alone = engine.score_unit(squad, {}, item_scores=_marks(squad, SQUAD_COMMUNITIES))
    assert engine.shown(alone.total) == D("92.67")
    # With the brigade: half the communities' average, half the brigade's: (278/3 + 74) / 2 = 83.33, 良好.
    both = engine.score_unit(squad, {}, item_scores=_marks(squad, [*SQUAD_COMMUNITIES, BRIGADE]))
    assert abs(both.total - (D(278) / 3 + 74) / 2) < D("1e-20")
    assert engine.shown(both.total) == D("83.33")
    assert engine.grade_of(squad, both.total).id == "good"


def test_the_street_side_keeps_at_least_half_of_the_squads_score(squad):
    community = next(w for w in squad.assessors["weights"] if w["role"] == "community_rater")
    assert community == {"role": "community_rater", "weight": 0.5, "at_least": True}
    # Were the brigade given weight 3, plain shares would leave the communities 0.5 / 3.5 = 1/7;
    # `at_least` keeps them at one half, so the score stays 83.33.
    heavier = {"combine": "weighted", "weights": [community, {"role": "brigade_assessor", "weight": 3}]}
    marks = [("community_rater", D(94)), ("community_rater", D(92)), ("community_rater", D(92)),
             ("brigade_assessor", D(74))]
    assert engine.shown(engine.combine_assessors(marks, heavier)) == D("83.33")
    plain = {"combine": "weighted", "weights": [{**community, "at_least": False},
                                                {"role": "brigade_assessor", "weight": 3}]}
    assert engine.shown(engine.combine_assessors(marks, plain)) == D("76.67")  # 278/21 + 444/7 = 1610/21


# -- 篇3: rubbish piles --------------------------------------------------------------------------------------------

NO_PILES = {"piles_found": 0, "late_small_piles": 0, "late_big_piles": 0}


def test_rubbish_37_piles_and_3_big_ones_late(rubbish):
    score = engine.score_unit(rubbish, {**NO_PILES, "piles_found": 37, "late_big_piles": 3})
    assert score.total == D("99.57")              # 37 × 0.01 + 3 × 0.02 = 0.43, exactly


def test_rubbish_every_rule_of_pian3(rubbish):
    score = engine.score_unit(rubbish, {"piles_found": 37, "late_small_piles": 2, "late_big_piles": 3},
                              {"rubbish": {"two_notices": 1, "media": 1, "district_leaders": 1, "city_leaders": 1}})
    amounts = {r.rule.id: r.amount for r in score.items["rubbish"].rules}
    assert amounts == {"found": D("0.37"), "late_small": D("0.02"), "late_big": D("0.06"), "two_notices": D("0.03"),
                       "media": D("0.2"), "district_leaders": D("0.3"), "city_leaders": D("0.5")}
    assert score.total == D("98.52")              # 100 − 1.48


def test_rubbish_deductions_stop_at_zero(rubbish):
    assert engine.score_unit(rubbish, {**NO_PILES, "piles_found": 20000}).total == 0   # −200, capped at 100


@pytest.mark.parametrize(("overdue", "size", "small", "big"), [
    (True, 2.9, True, False), (True, 3, False, True), (True, None, True, False),  # no size given: small
    (False, 5, False, False),                                                     # cleared in time: neither
])
def test_late_piles_split_at_3_cubic_metres_like_the_workflow_deadline(rubbish, overdue, size, small, big):
    filters = {m["id"]: compile_expression(m["filter"]) for m in rubbish.metrics if m.get("filter")}
    case = {"case": {"overdue": overdue}, "size_m3": size}
    assert bool(filters["late_small_piles"].evaluate(case)) is small
    assert bool(filters["late_big_piles"].evaluate(case)) is big
    # The digital_city workflow gives 1 working day under 3 m³ and 3 from 3 m³ up: the same border.
    workflow = YAML(typ="safe").load((ROOT / "workflow_definitions/digital_city.yaml").read_text("utf-8"))
    handle = next(d for d in workflow["deadlines"] if d["id"] == "handle")
    days = compile_expression(handle["working_days"]).evaluate({"urgency": "normal", "size_m3": size})
    if overdue:  # a late pile is small exactly when its deadline was one working day
        assert (days == 1, days == 3) == (small, big)


def test_the_scheme_check_refuses_metric_options_a_source_ignores_and_vetoes_it_cannot_read(tmp_path):
    import shutil

    from server.definitions.errors import DefinitionsInvalid

    folder = tmp_path / "chengguan"
    shutil.copytree(FOLDER, folder)
    monthly = folder / "monthly.yaml"
    text = monthly.read_text("utf-8")
    text = text.replace("    rate: on_time\n    workflow: digital_city\n",
                        "    rate: on_time\n    workflow: digital_city\n    state_kinds: [final]\n", 1)
    text = text.replace("    when: new_illegal_buildings > 20\n    period: year\n",
                        "    when: new_illegal_buildings + collection_rate > 20\n    period: year\n    funding: none\n")
    monthly.write_text(text, "utf-8")
    year_end = folder / "year_end.yaml"
    year_end.write_text(year_end.read_text("utf-8") + "vetoes:\n  - {id: v, name: v, when: satisfaction < 0.5, "
                        "period: month}\n", "utf-8")
    with pytest.raises(DefinitionsInvalid) as caught:
        check_path(folder, ROOT)
    messages = "\n".join(str(e) for e in caught.value.errors)
    assert ("a metric with source 'case_rate' does not read 'state_kinds' (it reads categories, counts_for, "
            "include_below, rate, workflow)"
            in messages)
    assert "collection_rate is entered by hand each month" in messages
    assert "a year sheet cannot veto over a shorter period (month)" in messages
    # Money a veto takes away must exist: the monthly sheet has funding, so `none` is fine there.
    assert "no funding for a veto" not in messages
