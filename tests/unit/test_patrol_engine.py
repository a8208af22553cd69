"""The pure patrol-rule engine: calendar-aligned periods, counting days, shares owed, reminders, distances."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.patrols import engine
from server.patrols.engine import Period, Rule, Verdict

D = dt.date


@pytest.mark.parametrize(("per", "day", "start", "end"), [
    ("day", D(2026, 10, 3), D(2026, 10, 3), D(2026, 10, 3)),
    ("week", D(2026, 10, 1), D(2026, 9, 28), D(2026, 10, 4)),      # Thursday → Monday–Sunday
    ("week", D(2026, 10, 4), D(2026, 9, 28), D(2026, 10, 4)),      # Sunday closes its week
    ("half_month", D(2026, 2, 15), D(2026, 2, 1), D(2026, 2, 15)),
    ("half_month", D(2026, 2, 16), D(2026, 2, 16), D(2026, 2, 28)),
    ("half_month", D(2028, 2, 20), D(2028, 2, 16), D(2028, 2, 29)),  # leap year
    ("month", D(2026, 12, 31), D(2026, 12, 1), D(2026, 12, 31)),
    ("quarter", D(2026, 11, 22), D(2026, 10, 1), D(2026, 12, 31)),
    ("quarter", D(2026, 3, 31), D(2026, 1, 1), D(2026, 3, 31)),
    ("half_year", D(2026, 6, 30), D(2026, 1, 1), D(2026, 6, 30)),
    ("half_year", D(2026, 7, 1), D(2026, 7, 1), D(2026, 12, 31)),
    ("year", D(2026, 6, 1), D(2026, 1, 1), D(2026, 12, 31)),
])
def test_periods_are_calendar_aligned(per, day, start, end):
    period = engine.period_of(per, day)
    assert (period.start, period.end) == (start, end)


def test_period_keys():
    assert engine.period_of("half_month", D(2026, 10, 20)).key == "2026-10-b"
    assert engine.period_of("quarter", D(2026, 10, 20)).key == "2026-Q4"
    assert engine.period_of("week", D(2026, 10, 20)).key == "2026-10-19"


@given(st.sampled_from(engine.PERIODS), st.dates(D(2000, 1, 1), D(2099, 12, 31)), st.integers(0, 400))
def test_periods_tile_a_range_without_gaps(per, first, span):
    last = first + dt.timedelta(days=span)
    periods = engine.periods_between(per, first, last)
    assert periods[0].start <= first and periods[-1].end >= last
    for before, after in zip(periods, periods[1:], strict=False):
        assert after.start == before.end + dt.timedelta(days=1)
    assert all(engine.period_of(per, p.start) == p == engine.period_of(per, p.end) for p in periods)


def _rule(**kw) -> Rule:  # noqa: ANN003
    return Rule(**{"id": "r", "name": "r", "at_least": 1, "per": "week", "form": "patrol", **kw})


def test_working_days_only_drops_rest_days_and_empty_periods():
    def weekdays(d: dt.date) -> bool:
        return d.weekday() < 5

    days = engine.counting_days(_rule(per="day", working_days_only=True), D(2026, 10, 2), D(2026, 10, 5), weekdays)
    assert [d.day for d in days] == [D(2026, 10, 2), D(2026, 10, 5)]
    week = engine.counting_days(_rule(working_days_only=True), D(2026, 10, 1), D(2026, 10, 1), weekdays)
    assert len(week) == 5 and {d.period for d in week} == {engine.period_of("week", D(2026, 10, 1))}
    every_day = engine.counting_days(_rule(), D(2026, 10, 1), D(2026, 10, 1), weekdays)
    assert len(every_day) == 7


@pytest.mark.parametrize(("at_least", "held", "days", "owed"), [
    (1, 7, 7, 1), (2, 7, 7, 2), (1, 3, 7, 0), (1, 4, 7, 1), (2, 3, 7, 1), (1, 14, 31, 0), (1, 17, 31, 1),
    (1, 0, 7, 0), (3, 5, 0, 0), (1, 9, 7, 1),
])
def test_share_owed_for_part_of_a_period(at_least, held, days, owed):
    assert engine.owed(at_least, held, days) == owed


@given(st.integers(1, 50), st.integers(1, 400), st.data())
def test_shares_never_exceed_the_rule_and_grow_with_time(at_least, days, data):
    held = data.draw(st.integers(0, days))
    share = engine.owed(at_least, held, days)
    assert 0 <= share <= at_least
    assert engine.owed(at_least, min(held + 1, days), days) >= share
    assert engine.owed(at_least, days, days) == at_least


def test_reminder_window():
    rule = _rule(remind_before_end=2)
    week = engine.period_of("week", D(2026, 10, 19))
    short = Verdict(rule, week, {}, count=0, required=1, held_days=7, period_days=7, remaining_days=2)
    assert short.needs_reminder(D(2026, 10, 24))
    assert not Verdict(rule, week, {}, 0, 1, 7, 7, remaining_days=3).needs_reminder(D(2026, 10, 23))
    assert not Verdict(rule, week, {}, 1, 1, 7, 7, remaining_days=1).needs_reminder(D(2026, 10, 25))  # met
    assert not short.needs_reminder(D(2026, 10, 26))  # the period is over
    assert not Verdict(_rule(), week, {}, 0, 1, 7, 7, remaining_days=1).needs_reminder(D(2026, 10, 25))
    # A working-days rule on Saturday: no counting day left, no reminder.
    assert not Verdict(rule, week, {}, 0, 1, 5, 5, remaining_days=0).needs_reminder(D(2026, 10, 24))


def test_rules_from_scheme_and_files():
    scheme = {"patrol_form": "patrol", "patrol_rules": [
        {"id": "a", "name": "A", "who": {"tiers": ["t"]}, "at_least": 2, "per": "week"}]}
    files = [[{"id": "b", "name": "B", "who": {"unit_kinds": ["c"]}, "at_least": 1, "per": "month",
               "counted_per": "unit", "form": "campaign"}]]
    a, b = engine.rules_from(scheme, files)
    assert (a.form, a.tiers, a.where, a.per_unit) == ("patrol", ("t",), "any", False)
    assert (b.form, b.unit_kinds, b.per_unit) == ("campaign", ("c",), True)


ROAD = {"type": "LineString", "coordinates": [[106.55, 29.56], [106.56, 29.56]]}
SQUARE = {"type": "Polygon", "coordinates": [[[106.55, 29.565], [106.552, 29.565], [106.552, 29.567],
                                              [106.55, 29.567], [106.55, 29.565]]]}


def test_distance_to_a_road_and_into_a_square():
    on_road = engine.distance_m(ROAD, 29.56, 106.555)
    assert on_road is not None and on_road < 1
    north = engine.distance_m(ROAD, 29.561, 106.555)  # 0.001° of latitude ≈ 110.6 m
    assert north == pytest.approx(110.6, abs=1)
    assert engine.distance_m(SQUARE, 29.566, 106.551) == 0
    assert engine.distance_m({"type": "Nonsense"}, 29.0, 106.0) is None


def test_far_away_is_flagged_allowing_for_accuracy():
    near = {"lat": 29.561, "lng": 106.555}
    assert engine.far_from_area(ROAD, near, 500) is None
    far = {"lat": 29.57, "lng": 106.555}  # about 1.1 km north
    flag = engine.far_from_area(ROAD, far, 500)
    assert flag is not None and flag["limit_m"] == 500 and 1090 < flag["distance_m"] < 1120
    assert engine.far_from_area(ROAD, {**far, "accuracy": 700}, 700) is None  # the fix itself is that vague
    assert engine.far_from_area(ROAD, {**far, "accuracy": 100_000}, 500) is not None  # but no vaguer than the limit
    assert engine.far_from_area(None, far, 500) is None
    assert engine.far_from_area(ROAD, {"area": "x"}, 500) is None


def test_period_days_helpers():
    period = Period("week", D(2026, 10, 19), D(2026, 10, 25))
    days = engine.counting_days(_rule(), D(2026, 10, 19), D(2026, 10, 19), lambda d: True)
    assert engine.remaining_counting_days(days, period, D(2026, 10, 24)) == 2
