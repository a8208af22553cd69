"""Flags counted among their own units: rank by difficulty tier, flag across the district (or each group)."""

from __future__ import annotations

import copy

from server.assessment import engine, scoring
from server.definitions.models import DefinitionVersion
from server.extensions import db
from server.org.models import Unit
from server.patrols.engine import Period
from tests.support.clock import TODAY
from tests.support.factories import load_demo

GOOD = {"mechanism_missing": 0, "community_head_missed_weeks": 0, "department_head_missed_weeks": 0,
        "rectification_rate": 1.0, "on_time_rate": 1.0, "campaigns": 1, "hotspots": 1}


def _results(ctx, **change):  # noqa: ANN001, ANN003, ANN202
    load_demo()
    row = db.session.scalar(db.select(DefinitionVersion).filter_by(kind="score_sheet"))
    definition = copy.deepcopy(row.data)
    definition["ranking"] = {"by_difficulty": True}
    definition.update(change)
    sheet = engine.sheet_spec(definition)
    units = list(db.session.scalars(db.select(Unit).filter_by(scheme_key="lidu", kind="community")
                                    .order_by(Unit.key)))
    assert len(units) == 4
    for position, unit in enumerate(units):  # two difficulty tiers of two communities each
        unit.difficulty = 1 + position % 2
    # Scores fall with the weeks a community head missed: the first community best, the last worst.
    metrics = {u.id: {**GOOD, "community_head_missed_weeks": i} for i, u in enumerate(units)}
    period = Period("month", TODAY.replace(day=1), TODAY)
    results = scoring.score_units("lidu", sheet, period, units, metrics=metrics)
    scores = [r.score.total for r in results]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 4, scores
    return [[f.id for f in r.flags] for r in results]


FLAGS = [{"id": "red_flag", "name": "红旗", "kind": "top", "count": 1},
         {"id": "yellow_flag", "name": "黄旗", "kind": "bottom", "count": 1}]


def test_by_difficulty_alone_flags_within_each_tier(ctx):
    # Each tier holds two communities: its better one is red, its worse one yellow.
    assert _results(ctx, flags=FLAGS) == [["red_flag"], ["red_flag"], ["yellow_flag"], ["yellow_flag"]]


def test_flags_among_the_district_while_ranking_by_difficulty(ctx):
    flags = [{**f, "among": "district"} for f in FLAGS]
    assert _results(ctx, flags=flags) == [["red_flag"], [], [], ["yellow_flag"]]


def test_groups_are_not_split_by_difficulty_for_flags_among_groups(ctx):
    flags = [{**f, "among": "groups"} for f in FLAGS]  # no ranking.groups: one group of all assessed units
    assert _results(ctx, flags=flags) == [["red_flag"], [], [], ["yellow_flag"]]


def test_a_tier_of_two_does_not_make_both_red(ctx):
    flags = [{"id": "red_flag", "name": "红旗", "kind": "top", "count": 2}]
    assert _results(ctx, flags=flags) == [[], [], [], []]  # "top two" of a tier of two would be everyone


def test_a_last_place_gets_no_excellent_grade(ctx):
    flags = [{"id": "red_flag", "name": "红旗", "kind": "top", "count": 1, "among": "district"},
             {"id": "last", "name": "末位", "kind": "bottom", "count": 1, "among": "district",
              "caps_grade": "good"}]
    load_demo()
    row = db.session.scalar(db.select(DefinitionVersion).filter_by(kind="score_sheet"))
    sheet = engine.sheet_spec({**copy.deepcopy(row.data), "flags": flags})
    units = list(db.session.scalars(db.select(Unit).filter_by(scheme_key="lidu", kind="community")
                                    .order_by(Unit.key)))
    # Everyone excellent (100 … 97), so the last place is excellent by score alone.
    metrics = {u.id: {**GOOD, "community_head_missed_weeks": i} for i, u in enumerate(units)}
    results = scoring.score_units("lidu", sheet, Period("month", TODAY.replace(day=1), TODAY), units, metrics=metrics)
    grades = [(r.grade.id, [f.id for f in r.flags]) for r in results]
    assert all(r.score.total >= 90 for r in results), [r.score.total for r in results]
    assert grades[-1] == ("good", ["last"]) and grades[0] == ("excellent", ["red_flag"])
    assert {g for g, _f in grades[1:-1]} == {"excellent"}


def test_a_flag_that_bars_honours_keeps_the_red_flag_from_a_unit_for_the_rest_of_the_year(ctx):
    from server.assessment.models import AssessmentPeriod, AssessmentRevision, AssessmentScore

    flags = [{"id": "red_flag", "name": "流动红旗", "kind": "top", "count": 1, "among": "district",
              "bars_honours": "year"}]  # a banner no unit may win twice in a year
    load_demo()
    row = db.session.scalar(db.select(DefinitionVersion).filter_by(kind="score_sheet"))
    definition = {**copy.deepcopy(row.data), "flags": flags}
    sheet = engine.sheet_spec(definition)
    units = list(db.session.scalars(db.select(Unit).filter_by(scheme_key="lidu", kind="community")
                                    .order_by(Unit.key)))
    best = units[0]
    earlier = AssessmentPeriod(scheme_key="lidu", sheet_key=sheet.id, definition_version=row, period_key="e",
                               starts_on=TODAY.replace(month=1, day=1), ends_on=TODAY.replace(month=1, day=31),
                               state="published", revision=1)
    revision = AssessmentRevision(period=earlier, number=1)
    revision.scores.append(AssessmentScore(unit_id=best.id, total=100, grade=None, passing=True, ranks={},
                                           flags=["red_flag"], items={}, metrics={}))
    db.session.add_all([earlier, revision])
    db.session.flush()
    metrics = {u.id: {**GOOD, "community_head_missed_weeks": i} for i, u in enumerate(units)}
    march = Period("month", TODAY.replace(month=3, day=1), TODAY.replace(month=3, day=31))  # later that year
    results = scoring.score_units("lidu", sheet, march, units, metrics=metrics)
    # The best unit won it in January: in March it goes to the next in line.
    assert [[f.id for f in r.flags] for r in results] == [[], ["red_flag"], [], []]


def test_a_cap_must_name_one_of_the_sheets_grades(ctx):
    from server.definitions.errors import DefinitionsInvalid
    from server.definitions.service import check_scheme_files
    from tests.support.factories import demo_files

    files = demo_files()
    name = next(n for n in files if n.endswith("score_sheet.yaml"))
    assert "    below: 70\n" in files[name]
    files[name] = files[name].replace("    below: 70\n", "    below: 70\n    caps_grade: godo\n", 1)
    try:
        check_scheme_files(files)
    except DefinitionsInvalid as exc:
        assert any(e.path == "flags[1].caps_grade" and "unknown grade 'godo'" in e.message for e in exc.errors)
    else:
        raise AssertionError("an unknown grade was accepted")
    files[name] = files[name].replace("caps_grade: godo", "caps_grade: good")
    check_scheme_files(files)
