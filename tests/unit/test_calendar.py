"""Unit tests for the working-day calendar (server/calendar): fast, no DB, no Flask."""

from __future__ import annotations

import time as clock
from datetime import UTC, date, datetime, time, timedelta

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.calendar import MAX_SCAN_DAYS, DayOverride, WorkingCalendar, WorkingHours

CAL = WorkingCalendar()


# --- what chinesecalendar 1.11 says about 2026 National Day (verified against the library, not guessed) ---


def test_library_2026_national_day_facts() -> None:
    holidays = [date(2026, 10, d) for d in range(1, 8)]
    assert all(not chinese_calendar.is_workday(d) for d in holidays)
    assert chinese_calendar.is_workday(date(2026, 10, 8))  # Thu 8 Oct: back to work
    # makeup workdays (调休上班) for National Day: Sun 20 Sep and Sat 10 Oct 2026
    assert date(2026, 9, 20).weekday() == 6
    assert chinese_calendar.get_holiday_detail(date(2026, 9, 20)) == (False, "National Day")
    assert date(2026, 10, 10).weekday() == 5
    assert chinese_calendar.get_holiday_detail(date(2026, 10, 10)) == (False, "National Day")
    # Mid-autumn is separate that year: Fri 25 – Sun 27 Sep, so Sun 27 Sep is NOT a makeup day
    assert [chinese_calendar.get_holiday_detail(date(2026, 9, d)) for d in (25, 26, 27)] == [
        (True, "Mid-autumn Festival")
    ] * 3


def test_calendar_agrees_with_library_2026_national_day() -> None:
    first, last = date(2026, 9, 14), date(2026, 10, 18)
    assert CAL.working_days_in(first, last) == chinese_calendar.get_workdays(first, last)
    assert CAL.working_days_in(date(2026, 9, 28), date(2026, 10, 11)) == [
        date(2026, 9, 28),
        date(2026, 9, 29),
        date(2026, 9, 30),
        date(2026, 10, 8),
        date(2026, 10, 9),
        date(2026, 10, 10),
    ]
    assert CAL.knows(date(2026, 10, 1))
    assert CAL.day_name(date(2026, 10, 1)) == "国庆节"
    assert CAL.day_name(date(2026, 9, 25)) == "中秋"


def test_calendar_matches_library_details_2025_2026() -> None:
    day = date(2025, 1, 1)
    while day.year < 2027:
        is_holiday, name = chinese_calendar.get_holiday_detail(day)
        assert CAL.is_working_day(day) is (not is_holiday), day
        assert (CAL.day_name(day) is None) is (name is None), day
        day += timedelta(days=1)


def test_makeup_saturday_10_oct_2026_is_working() -> None:
    saturday = date(2026, 10, 10)
    assert saturday.weekday() == 5
    assert CAL.is_working_day(saturday)
    assert CAL.day_name(saturday) == "国庆节"  # the library names makeup days after their holiday
    assert CAL.is_working_day(date(2026, 9, 20))  # makeup Sunday
    assert not CAL.is_working_day(date(2026, 10, 11))  # the Sunday after is an ordinary rest day
    assert CAL.day_name(date(2026, 10, 11)) is None


def test_deadlines_across_2026_national_day() -> None:
    reported = datetime(2026, 9, 30, 10, 0)  # Wednesday before the holiday
    assert CAL.add_working_days(reported, 1) == datetime(2026, 10, 8, 10, 0)  # Thu 8 Oct, first day back
    assert CAL.add_working_days(reported, 3) == datetime(2026, 10, 10, 10, 0)  # the makeup Saturday counts
    assert CAL.add_working_days(reported, 4) == datetime(2026, 10, 12, 10, 0)  # Sun 11 Oct does not
    # "never beyond a week": 5 working days from 30 Sep ends on Tue 13 Oct
    assert CAL.add_working_days(reported, 5) == datetime(2026, 10, 13, 10, 0)
    assert CAL.working_days_between(reported, datetime(2026, 10, 10, 10, 0)) == pytest.approx(3)
    # reported during the holiday: counting starts Thu 8 Oct 09:00
    assert CAL.add_working_days(datetime(2026, 10, 3, 11, 0), 1) == datetime(2026, 10, 8, 17, 30)


# --- weekends, clamping, fractions ---


def test_same_time_next_working_day() -> None:
    assert CAL.add_working_days(datetime(2026, 3, 11, 10, 0), 1) == datetime(2026, 3, 12, 10, 0)  # Wed → Thu
    assert CAL.add_working_days(datetime(2026, 3, 13, 10, 0), 1) == datetime(2026, 3, 16, 10, 0)  # Fri → Mon


def test_weekend_report_clamps_to_monday_start() -> None:
    saturday = datetime(2026, 3, 14, 11, 0)
    assert CAL.next_working_moment(saturday) == datetime(2026, 3, 16, 9, 0)
    assert CAL.add_working_days(saturday, 1) == datetime(2026, 3, 16, 17, 30)  # end of Monday, not Tue 09:00
    assert CAL.add_working_days(saturday, 0) == datetime(2026, 3, 16, 9, 0)


def test_before_and_after_hours_clamping() -> None:
    wednesday = date(2026, 3, 11)
    early = datetime.combine(wednesday, time(7, 0))
    assert CAL.add_working_days(early, 1) == datetime(2026, 3, 11, 17, 30)
    assert CAL.add_working_days(datetime.combine(wednesday, time(9, 0)), 1) == datetime(2026, 3, 11, 17, 30)
    late = datetime.combine(wednesday, time(18, 0))
    assert CAL.add_working_days(late, 1) == datetime(2026, 3, 12, 17, 30)
    # the period is [09:00, 17:30): 17:30 itself is already outside
    assert CAL.next_working_moment(datetime.combine(wednesday, time(17, 30))) == datetime(2026, 3, 12, 9, 0)
    assert CAL.next_working_moment(datetime.combine(wednesday, time(17, 29, 59))) == datetime(2026, 3, 11, 17, 29, 59)
    # Friday evening → Monday morning
    assert CAL.next_working_moment(datetime(2026, 3, 13, 20, 0)) == datetime(2026, 3, 16, 9, 0)


def test_fractional_days_and_hours() -> None:
    assert CAL.hours_per_day == 8.5
    assert CAL.add_working_days(datetime(2026, 3, 11, 9, 0), 0.5) == datetime(2026, 3, 11, 13, 15)  # 4.25 h
    # 15:00 + 4.25 h: 2.5 h on Wednesday, 1.75 h on Thursday
    assert CAL.add_working_days(datetime(2026, 3, 11, 15, 0), 0.5) == datetime(2026, 3, 12, 10, 45)
    assert CAL.add_working_hours(datetime(2026, 3, 13, 16, 0), 3) == datetime(2026, 3, 16, 10, 30)  # over weekend
    assert CAL.add_working_hours(datetime(2026, 3, 11, 10, 0), 1 / 3600) == datetime(2026, 3, 11, 10, 0, 1)


def test_results_are_whole_seconds() -> None:
    result = CAL.add_working_hours(datetime(2026, 3, 11, 10, 0, 0, 999_999), 0.0001)  # 0.36 s rounds to 0
    assert result == datetime(2026, 3, 11, 10, 0)
    assert result.microsecond == 0


def test_working_hours_between() -> None:
    wed, thu = datetime(2026, 3, 11, 10, 0), datetime(2026, 3, 12, 10, 0)
    assert CAL.working_hours_between(wed, thu) == 8.5
    assert CAL.working_hours_between(thu, wed) == -8.5
    assert CAL.working_days_between(wed, thu) == 1.0
    assert CAL.working_hours_between(wed, wed) == 0.0
    assert CAL.working_hours_between(datetime(2026, 3, 14, 11, 0), datetime(2026, 3, 16, 17, 30)) == 8.5
    assert CAL.working_hours_between(datetime(2026, 3, 14), datetime(2026, 3, 15, 23, 59)) == 0.0  # weekend
    assert CAL.working_hours_between(datetime(2026, 3, 11, 17, 0), datetime(2026, 3, 11, 23, 0)) == 0.5


def test_custom_working_hours() -> None:
    cal = WorkingCalendar(hours=WorkingHours(time(8, 0), time(12, 0)))
    assert cal.hours_per_day == 4
    assert cal.add_working_days(datetime(2026, 3, 11, 10, 0), 1) == datetime(2026, 3, 12, 10, 0)
    assert cal.add_working_days(datetime(2026, 3, 11, 13, 0), 0.5) == datetime(2026, 3, 12, 10, 0)


@pytest.mark.parametrize(
    ("start", "end"),
    [(time(17, 30), time(9, 0)), (time(9, 0), time(9, 0)), (time(9, 0, 0, 500), time(17, 0))],
)
def test_invalid_working_hours(start: time, end: time) -> None:
    with pytest.raises(ValueError):
        WorkingHours(start, end)


@settings(max_examples=200, deadline=None, database=None)
@given(
    start=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2031, 12, 31)),
    hours=st.floats(min_value=0, max_value=200, allow_nan=False),
)
def test_between_inverts_add(start: datetime, hours: float) -> None:
    end = CAL.add_working_hours(start, hours)
    assert end >= CAL.next_working_moment(start) >= start.replace(microsecond=0)
    assert end.microsecond == 0
    # start loses its microseconds and hours are rounded to the second: at most ~1.5 s of difference
    assert CAL.working_hours_between(start, end) == pytest.approx(hours, abs=1 / 2000)
    assert CAL.working_hours_between(end, start) == pytest.approx(-hours, abs=1 / 2000)


@settings(max_examples=100, deadline=None, database=None)
@given(
    start=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)),
    days=st.integers(min_value=0, max_value=30),
)
def test_days_are_hours_per_day(start: datetime, days: int) -> None:
    result = CAL.add_working_days(start, days)
    assert result == CAL.add_working_hours(start, days * 8.5)
    assert CAL.is_working_day(result.date())  # a deadline always falls on a working day


@given(
    origin=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)),
    span=st.floats(min_value=0.01, max_value=80, allow_nan=False),
    before=st.sampled_from([0, 0.25, 1, 2, 8.5, 9, 24, 40]),
    back=st.integers(min_value=0, max_value=14 * 24 * 3600),
)
def test_earliest_start_is_where_adding_first_reaches_the_end(origin: datetime, span: float, before: float,
                                                             back: int) -> None:
    """When a due-soon warning falls due: from `earliest_start(due, h)` on, h working hours reach the deadline,
    and never before it (across weekends, national days and their make-up Saturdays)."""
    due = CAL.add_working_hours(origin, span)  # a deadline, as deadlines are made
    moment = CAL.earliest_start(due, before)
    probe = due - timedelta(seconds=back)
    assert (CAL.add_working_hours(probe, before) >= due) == (probe >= moment)
    if before:
        assert CAL.add_working_hours(moment - timedelta(seconds=1), before) < due


def test_earliest_start_over_national_day_2026() -> None:
    """Due 9:30 on Thursday 8 October 2026, the first working day after the holiday: two working hours before
    reach back to 16:00 on Wednesday 30 September: half an hour on the 8th, an hour and a half before the
    holiday."""
    due = datetime(2026, 10, 8, 9, 30)
    assert CAL.earliest_start(due, 2) == datetime(2026, 9, 30, 16, 0)
    assert CAL.add_working_hours(datetime(2026, 9, 30, 16, 0), 2) == due


# --- years chinesecalendar does not know ---


def test_unknown_year_falls_back_to_monday_to_friday() -> None:
    assert not CAL.knows(date(2027, 5, 3))
    assert not CAL.knows(date(2003, 5, 3))  # the library starts in 2004
    assert CAL.knows(date(2004, 1, 1))
    assert CAL.unknown_years(date(2026, 12, 1), date(2028, 1, 1)) == [2027, 2028]
    assert CAL.unknown_years(date(2002, 6, 1), date(2005, 1, 1)) == [2002, 2003]
    assert CAL.unknown_years(date(2027, 1, 1), date(2026, 1, 1)) == []
    # 1 Oct 2027 is a Friday: probably a holiday, but nobody has told us yet
    assert CAL.is_working_day(date(2027, 10, 1))
    assert not CAL.is_working_day(date(2027, 10, 2))
    assert CAL.day_name(date(2027, 10, 1)) is None
    assert CAL.add_working_days(datetime(2027, 10, 1, 10, 0), 1) == datetime(2027, 10, 4, 10, 0)
    assert CAL.add_working_days(datetime(2030, 6, 7, 16, 0), 1) == datetime(2030, 6, 10, 16, 0)  # Fri → Mon
    assert CAL.working_days_in(date(2030, 6, 3), date(2030, 6, 9)) == [date(2030, 6, d) for d in range(3, 8)]


def test_deadline_across_new_year_into_unknown_year() -> None:
    start = datetime(2026, 12, 31, 10, 0)  # Thursday
    end = CAL.add_working_days(start, 2)
    assert end == datetime(2027, 1, 4, 10, 0)  # Fri 1 Jan 2027 counts: the fallback knows no New Year's Day
    assert CAL.unknown_years(start, end) == [2027]


# administrator-entered 2027 rows for the test; not the official 2027 schedule
OVERRIDES_2027 = [
    *(DayOverride(date(2027, 10, d), False, "国庆节") for d in range(1, 8)),
    DayOverride(date(2027, 9, 25), True, "国庆节调休"),  # a Saturday
]


def test_a_few_rows_do_not_make_a_year_known() -> None:
    cal = WorkingCalendar(OVERRIDES_2027)
    assert not cal.is_working_day(date(2027, 10, 4))  # the rows apply…
    assert not cal.knows(date(2027, 3, 1))  # …but the year still warns until it is marked complete
    assert cal.unknown_years(date(2026, 1, 1), date(2028, 12, 31)) == [2027, 2028]


def test_a_year_marked_complete_is_known() -> None:
    cal = WorkingCalendar(OVERRIDES_2027, complete_years=[2027])
    assert cal.knows(date(2027, 10, 1))
    assert cal.knows(date(2027, 3, 1))  # the whole year is trusted once marked complete
    assert not cal.knows(date(2028, 3, 1))
    assert cal.unknown_years(date(2026, 1, 1), date(2028, 12, 31)) == [2028]
    assert not cal.is_working_day(date(2027, 10, 4))  # a Monday inside the holiday
    assert cal.day_name(date(2027, 10, 4)) == "国庆节"
    assert cal.is_working_day(date(2027, 3, 1))  # other days: Monday–Friday
    # Thu 30 Sep + 1 working day skips 1–7 Oct; Fri 8 Oct 2027 is a normal weekday
    assert cal.add_working_days(datetime(2027, 9, 30, 10, 0), 1) == datetime(2027, 10, 8, 10, 0)


def test_makeup_workday_override_makes_saturday_working() -> None:
    saturday = date(2027, 9, 25)
    assert saturday.weekday() == 5
    assert not CAL.is_working_day(saturday)
    cal = WorkingCalendar(OVERRIDES_2027)
    assert cal.is_working_day(saturday)
    assert cal.day_name(saturday) == "国庆节调休"
    assert cal.add_working_days(datetime(2027, 9, 24, 10, 0), 1) == datetime(2027, 9, 25, 10, 0)


# --- overrides beat the library ---


def test_override_declares_library_workday_a_holiday() -> None:
    tuesday = date(2026, 3, 10)
    assert tuesday.weekday() == 1 and CAL.is_working_day(tuesday)
    cal = WorkingCalendar([DayOverride(tuesday, False, "防汛停工")])
    assert not cal.is_working_day(tuesday)
    assert cal.day_name(tuesday) == "防汛停工"
    assert cal.add_working_days(datetime(2026, 3, 9, 10, 0), 1) == datetime(2026, 3, 11, 10, 0)
    assert cal.working_hours_between(datetime(2026, 3, 9, 10, 0), datetime(2026, 3, 11, 10, 0)) == 8.5


def test_override_declares_library_holiday_a_workday() -> None:
    cal = WorkingCalendar([DayOverride(date(2026, 10, 7), True)])
    assert cal.is_working_day(date(2026, 10, 7))
    assert cal.day_name(date(2026, 10, 7)) is None  # the override row has no name and wins entirely
    assert cal.add_working_days(datetime(2026, 9, 30, 10, 0), 1) == datetime(2026, 10, 7, 10, 0)


def test_later_duplicate_override_wins_and_datetimes_normalise() -> None:
    day = date(2026, 3, 10)
    cal = WorkingCalendar([DayOverride(day, False, "a"), DayOverride(datetime(2026, 3, 10, 8, 0), True, "b")])
    assert cal.is_working_day(day)
    assert cal.is_working_day(datetime(2026, 3, 10, 23, 0))
    assert cal.overrides == (DayOverride(day, True, "b"),)


def test_without_builtin_only_overrides_and_weekdays() -> None:
    cal = WorkingCalendar(use_builtin=False)
    assert cal.is_working_day(date(2026, 10, 1))  # Thursday
    assert not cal.is_working_day(date(2026, 10, 10))  # the library's makeup Saturday is not known
    assert not cal.knows(date(2026, 10, 1))
    assert cal.day_name(date(2026, 10, 1)) is None


# --- speed and guards ---


def test_long_spans_are_fast() -> None:
    for start in (datetime(2025, 1, 2, 10, 0), datetime(2030, 1, 2, 10, 0)):
        cal = WorkingCalendar()
        began = clock.perf_counter()
        end = cal.add_working_days(start, 300)
        elapsed = clock.perf_counter() - began
        assert elapsed < 1.0  # a guard against counting day by day the slow way; speed is for bench/
        assert end.time() == time(10, 0)
        assert len(cal.working_days_in(start.date() + timedelta(days=1), end.date())) == 300
        began = clock.perf_counter()
        assert cal.working_days_between(start, end) == pytest.approx(300)
        assert clock.perf_counter() - began < 1.0


def test_year_of_working_days() -> None:
    start = datetime(2025, 1, 2, 10, 0)
    end = CAL.add_working_days(start, 365)
    assert CAL.working_days_between(start, end) == pytest.approx(365)


@pytest.mark.parametrize("amount", [-1, -0.001, float("nan"), float("inf"), float("-inf")])
def test_bad_amounts_raise(amount: float) -> None:
    with pytest.raises(ValueError):
        CAL.add_working_days(datetime(2026, 3, 11, 10, 0), amount)
    with pytest.raises(ValueError):
        CAL.add_working_hours(datetime(2026, 3, 11, 10, 0), amount)


def test_loops_are_capped() -> None:
    with pytest.raises(ValueError, match="calendar days"):
        CAL.add_working_days(datetime(2026, 3, 11, 10, 0), 5000)  # needs ~19 years
    # a table that makes every day a holiday must not hang the clamping scan
    start = date(2030, 1, 1)
    everything_off = [DayOverride(start + timedelta(days=i), False) for i in range(MAX_SCAN_DAYS + 10)]
    with pytest.raises(ValueError, match="no working day"):
        WorkingCalendar(everything_off).add_working_days(datetime(2030, 1, 1, 10, 0), 1)
    with pytest.raises(ValueError, match="span"):
        CAL.working_days_in(date(1900, 1, 1), date(2100, 1, 1))
    with pytest.raises(ValueError):
        CAL.add_working_days(datetime(9999, 12, 31, 10, 0), 2)  # end of the calendar, not OverflowError


def test_aware_datetimes_and_wrong_types_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        CAL.add_working_days(datetime(2026, 3, 11, 10, 0, tzinfo=UTC), 1)
    with pytest.raises(TypeError):
        CAL.add_working_days(date(2026, 3, 11), 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        WorkingCalendar(hours=(time(9), time(17)))  # type: ignore[arg-type]
