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
