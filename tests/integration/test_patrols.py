"""Patrol-rule compliance for the rules of seeds 000 (Lidu) and 001 (road chiefs) over October 2026.

October 2026 holds the National Day holiday (1–7 October off, Saturday 10 October a makeup workday): 18
working days. Chiefs change mid-month in both districts; records are counted in SQL on both databases.
"""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from server.extensions import db
from server.forms import service as forms
from server.forms.models import Submission
from server.org.models import Area, Post, Unit
from server.org.posts import appoint
from server.patrols import service
from tests.support.factories import load_demo, load_shipped, make_user

ZONE = ZoneInfo("Asia/Shanghai")
OCT = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
_tokens = itertools.count()


def record(scheme: str, form: str, user, day: dt.date, *, area: str | None = None,  # noqa: ANN001
           unit: str | None = None, hour: int = 10) -> Submission:
    """A stored record of `form` made on `day` (local time), as the forms service stores it."""
    version = forms.form_version(scheme, form)
    area_row = db.session.scalar(db.select(Area).filter_by(scheme_key=scheme, key=area)) if area else None
    unit_row = db.session.scalar(db.select(Unit).filter_by(scheme_key=scheme, key=unit)) if unit else None
    moment = dt.datetime.combine(day, dt.time(hour), ZONE).astimezone(dt.UTC)
    row = Submission(scheme_key=scheme, form_key=form, definition_version_id=version.id, token=f"t{next(_tokens)}",
                     user_id=user.id if user else None, area_id=area_row.id if area_row else None,
                     unit_id=unit_row.id if unit_row else (area_row.unit_id if area_row else None),
                     data={}, submitted_at=moment + dt.timedelta(days=1), occurred_at=moment)
    db.session.add(row)
    db.session.flush()
    return row


def verdicts(scheme: str, rule_id: str, first: dt.date = OCT[0], last: dt.date = OCT[1]) -> list:
    return service.compliance(scheme, service.rule_of(scheme, rule_id), first, last, today=dt.date(2026, 11, 22))


def by_period(rows: list, **subject) -> dict[str, tuple[int, int]]:  # noqa: ANN003
    """{period key: (count, owed)} for the rows whose subject matches."""
    out = {}
    for v in rows:
        if all(_matches(v.subject, k, want) for k, want in subject.items()):
            out[v.period.key] = (v.count, v.required)
    return out


def _matches(subject: dict, key: str, want: object) -> bool:
    if key == "post":
        return any(p.id == want for p in subject.get("posts", []))
    if key == "focus":
        return subject.get("focus") is not None and subject["focus"].key == want
    if key == "unit":
        return subject.get("unit") is not None and subject["unit"].key == want
    return subject.get(key) == want


# -- seed 001: general chief monthly at focus points, first-level weekly on each road, second-level daily ----


@pytest.fixture
def luzhang(ctx):
    load_shipped("luzhang")
    people = {name: make_user(name) for name in ("gc_old", "gc_new", "first", "community", "squad")}
    posts = {
        "gc_old": appoint("luzhang", "general_chief", "Gc_Old", unit_key="east_street", since=dt.date(2026, 1, 1),
                          username="gc_old"),
        "first_renmin": appoint("luzhang", "first_chief_street", "First", area_key="renmin_road",
                                since=dt.date(2026, 1, 1), username="first"),
        "first_binhe": appoint("luzhang", "first_chief_street", "First", area_key="binhe_road",
                               since=dt.date(2026, 1, 1), username="first"),
        "community": appoint("luzhang", "second_chief_community", "Community", area_key="renmin_road_west",
                             since=dt.date(2026, 1, 1), username="community"),
        "squad": appoint("luzhang", "second_chief_squad", "Squad", area_key="binhe_road", since=dt.date(2026, 1, 1),
                         username="squad"),
    }
    # The general chief changes on Thursday 15 October; the old post ends on the 14th.
    posts["gc_new"] = appoint("luzhang", "general_chief", "Gc_New", unit_key="east_street",
                              since=dt.date(2026, 10, 15), username="gc_new")
    db.session.commit()
    return people, posts


def test_general_chief_changed_mid_month(luzhang):
    people, posts = luzhang
    assert db.session.get(Post, posts["gc_old"].id).ended_on == dt.date(2026, 10, 14)
    record("luzhang", "patrol_log", people["gc_old"], dt.date(2026, 10, 3), area="station_square")
    record("luzhang", "patrol_log", people["gc_new"], dt.date(2026, 10, 12), area="night_market")  # not yet chief
    record("luzhang", "patrol_log", people["gc_new"], dt.date(2026, 10, 20), area="station_square")
    record("luzhang", "patrol_log", people["gc_new"], dt.date(2026, 10, 21), area="renmin_road")  # no focus point
    rows = verdicts("luzhang", "general_chief_monthly")
    # Held 14 of 31 days: a share of 0.45 rounds to nothing owed; the successor (17 days) owes the month.
    assert by_period(rows, user_id=people["gc_old"].id, focus="station_square") == {"2026-10": (1, 0)}
    assert by_period(rows, user_id=people["gc_old"].id, focus="night_market") == {"2026-10": (0, 0)}
    assert by_period(rows, user_id=people["gc_new"].id, focus="station_square") == {"2026-10": (1, 1)}
    assert by_period(rows, user_id=people["gc_new"].id, focus="night_market") == {"2026-10": (0, 1)}
    missed = [(v.subject["name"], v.subject["focus"].key) for v in rows if v.due and not v.met]
    assert missed == [("Gc_New", "night_market")]


def test_first_level_chief_each_road_every_week(luzhang):
    people, posts = luzhang
    for monday in (dt.date(2026, 9, 28), dt.date(2026, 10, 5), dt.date(2026, 10, 12), dt.date(2026, 10, 19),
                   dt.date(2026, 10, 26)):
        # A segment of the road counts for the road.
        record("luzhang", "patrol_log", people["first"], monday + dt.timedelta(days=2), area="renmin_road_east")
    record("luzhang", "patrol_log", people["first"], dt.date(2026, 10, 13), area="binhe_road")
    record("luzhang", "patrol_log", people["first"], dt.date(2026, 10, 14), area="binhe_road")
    rows = verdicts("luzhang", "first_chief_weekly")
    weeks = ["2026-09-28", "2026-10-05", "2026-10-12", "2026-10-19", "2026-10-26"]
    assert by_period(rows, post=posts["first_renmin"].id) == {w: (1, 1) for w in weeks}
    assert by_period(rows, post=posts["first_binhe"].id) == {
        w: ((2, 1) if w == "2026-10-12" else (0, 1)) for w in weeks}


def test_community_chief_every_working_day(luzhang):
    people, posts = luzhang
    day = dt.date(2026, 10, 1)
    while day <= OCT[1]:
        if day != dt.date(2026, 10, 16):  # a missed Friday
            record("luzhang", "patrol_log", people["community"], day, area="renmin_road_west")
        day += dt.timedelta(days=1)
    rows = by_period(verdicts("luzhang", "community_chief_daily"), post=posts["community"].id)
    # Holidays and weekends are no periods at all; the makeup Saturday (10 October) is one.
    assert len(rows) == 18
    assert "2026-10-03" not in rows and "2026-10-17" not in rows and rows["2026-10-10"] == (1, 1)
    assert [k for k, (count, owed) in rows.items() if count < owed] == ["2026-10-16"]


def test_squad_chief_every_day_holidays_included(luzhang):
    people, posts = luzhang
    for day in range(1, 8):
        record("luzhang", "patrol_log", people["squad"], dt.date(2026, 10, day), area="binhe_road", hour=23)
    rows = by_period(verdicts("luzhang", "squad_chief_daily"), post=posts["squad"].id)
    assert len(rows) == 31
    assert sum(1 for count, owed in rows.values() if count >= owed) == 7
    # 23:00 local on 7 October is 15:00 UTC: it counts for the 7th, not for the 8th.
    assert rows["2026-10-07"] == (1, 1) and rows["2026-10-08"] == (0, 1)


def test_unlinked_chief_is_listed_as_missing(luzhang):
    appoint("luzhang", "second_chief_sanitation", "环卫 王师傅", area_key="binhe_road", since=dt.date(2026, 10, 1))
    rows = verdicts("luzhang", "squad_chief_daily", dt.date(2026, 10, 20), dt.date(2026, 10, 20))
    names = {v.subject["name"]: (v.count, v.required) for v in rows}
    assert names["环卫 王师傅"] == (0, 1)


# -- seed 000: leaders weekly, deputies twice a week, a themed campaign and a hot-spot case a month ----------


@pytest.fixture
def lidu(ctx):
    load_demo()
    people = {name: make_user(name) for name in ("director", "deputy", "head_old", "head_new", "dept")}
    posts = {
        "director": appoint("lidu", "main_leader", "Director", unit_key="lidu_street", since=dt.date(2026, 1, 1),
                            username="director"),
        "deputy": appoint("lidu", "deputy_leader", "Deputy", unit_key="lidu_street", since=dt.date(2026, 1, 1),
                          username="deputy"),
        "dept": appoint("lidu", "department_head", "Dept", unit_key="safety_office", since=dt.date(2026, 1, 1),
                        username="dept"),
        "head_old": appoint("lidu", "community_head", "Head_Old", area_key="shilong_town",
                            since=dt.date(2026, 1, 1), username="head_old"),
    }
    # Shilong's community head changes on Thursday 22 October.
    posts["head_new"] = appoint("lidu", "community_head", "Head_New", area_key="shilong_town",
                                since=dt.date(2026, 10, 22), username="head_new")
    db.session.commit()
    return people, posts


def test_deputy_twice_a_week(lidu):
    people, _posts = lidu
    record("lidu", "patrol_log", people["deputy"], dt.date(2026, 10, 13), area="zhiyuan_road")
    record("lidu", "patrol_log", people["deputy"], dt.date(2026, 10, 19), area="zhiyuan_road")
    record("lidu", "patrol_log", people["deputy"], dt.date(2026, 10, 25), area="duanqiao_street")
    rows = by_period(verdicts("lidu", "deputy_leader_weekly"), user_id=people["deputy"].id)
    assert rows["2026-10-12"] == (1, 2) and rows["2026-10-19"] == (2, 2) and rows["2026-10-05"] == (0, 2)


def test_community_head_changed_mid_week(lidu):
    people, _posts = lidu
    record("lidu", "patrol_log", people["head_old"], dt.date(2026, 10, 20), area="shilong_old_street_north")
    record("lidu", "patrol_log", people["head_new"], dt.date(2026, 10, 24), area="shilong_market_zone")
    record("lidu", "patrol_log", people["head_new"], dt.date(2026, 10, 21), area="shilong_market_zone")  # too early
    record("lidu", "patrol_log", people["head_old"], dt.date(2026, 10, 28), area="shilong_old_street")  # too late
    rows = verdicts("lidu", "community_head_weekly")
    old = by_period(rows, user_id=people["head_old"].id)
    new = by_period(rows, user_id=people["head_new"].id)
    # Week 19–25 October: 3 days for the old head (owes nothing), 4 for the new one (owes one).
    assert old["2026-10-19"] == (1, 0) and new["2026-10-19"] == (1, 1)
    assert "2026-10-26" not in old and new["2026-10-26"] == (0, 1)
    assert old["2026-10-12"] == (0, 1) and "2026-10-12" not in new


def test_main_leader_and_department_head_weekly_across_the_holiday(lidu):
    people, _posts = lidu
    record("lidu", "patrol_log", people["director"], dt.date(2026, 10, 4), area="zhiyuan_road")  # a holiday Sunday
    record("lidu", "patrol_log", people["dept"], dt.date(2026, 10, 10), area="zhiyuan_road")  # a makeup Saturday
    director = by_period(verdicts("lidu", "main_leader_weekly"), user_id=people["director"].id)
    dept = by_period(verdicts("lidu", "department_head_weekly"), user_id=people["dept"].id)
    assert director["2026-09-28"] == (1, 1) and director["2026-10-05"] == (0, 1)
    assert dept["2026-10-05"] == (1, 1) and dept["2026-09-28"] == (0, 1)


def test_themed_campaign_and_hotspot_per_unit_per_month(lidu):
    people, _posts = lidu
    record("lidu", "themed_campaign", people["head_old"], dt.date(2026, 10, 9), unit="shilong")
    record("lidu", "hotspot_case", people["head_old"], dt.date(2026, 10, 30), unit="shilong")
    record("lidu", "hotspot_case", people["dept"], dt.date(2026, 11, 2), unit="safety_office")  # next month
    campaigns = verdicts("lidu", "themed_campaign_monthly")
    hotspots = verdicts("lidu", "hotspot_monthly")
    assert by_period(campaigns, unit="shilong") == {"2026-10": (1, 1)}
    assert by_period(campaigns, unit="zhiyuan") == {"2026-10": (0, 1)}
    assert by_period(hotspots, unit="shilong") == {"2026-10": (1, 1)}
    assert by_period(hotspots, unit="safety_office") == {"2026-10": (0, 1)}
    kinds = {v.subject["unit"].kind for v in campaigns}
    assert kinds == {"community", "department", "office"}  # the street itself is not bound


def test_cli_lists_who_is_short(lidu, app):
    people, _posts = lidu
    record("lidu", "patrol_log", people["deputy"], dt.date(2026, 10, 13), area="zhiyuan_road")
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["patrol", "compliance", "lidu", "--on", "2026-10-14",
                                                "--rule", "deputy_leader_weekly", "--all"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split("\t") == ["rule", "period", "subject", "records", "owed", "status"]
    assert "deputy_leader_weekly\t2026-10-12\tDeputy\t1\t2\tshort" in lines


def test_unit_reminder_in_the_last_days_of_the_month(lidu):
    people, _posts = lidu
    head = make_user("zhiyuan_head", roles=(("lidu", "unit_head", "zhiyuan"),))
    record("lidu", "themed_campaign", head, dt.date(2026, 10, 9), unit="zhiyuan")
    assert service.reminders_for(head, "lidu", dt.date(2026, 10, 26)) == []  # six days left: not yet
    due = service.reminders_for(head, "lidu", dt.date(2026, 10, 27))
    # The campaign is done; the hot-spot case is not.
    assert [(v.rule.id, v.unit_key, v.remaining_days) for v in due] == [("hotspot_monthly", "zhiyuan", 5)]
    # The deputy, short of two patrols this week, is reminded on Saturday, not before.
    assert service.reminders_for(people["deputy"], "lidu", dt.date(2026, 10, 23)) == []
    deputy = service.reminders_for(people["deputy"], "lidu", dt.date(2026, 10, 24))
    assert [(v.rule.id, v.count, v.required) for v in deputy] == [("deputy_leader_weekly", 0, 2)]


def test_a_role_held_in_two_units_counts_a_record_once(ctx):
    """A rule binding a role: someone holding it in two units is bound twice a day, and counted once."""
    from server.auth.service import grant_role
    from server.definitions.service import activate_scheme_version, load_scheme
    from tests.support.factories import demo_files, unit_id

    files = dict(demo_files())
    name = next(n for n in files if n.endswith("scheme.yaml"))
    files[name] = files[name].replace("patrol_rules:\n", "patrol_rules:\n  - id: staff_daily\n"
                                      "    name: {zh: 巡查员每天巡查, en: Staff patrol daily}\n"
                                      "    who: {roles: [staff]}\n    at_least: 1\n    per: day\n"
                                      "    where: each\n", 1)
    version, _ = load_scheme(files)
    activate_scheme_version(version.id)
    staff = make_user("two_units", roles=(("lidu", "staff", "shilong"),))
    grant_role(staff, "lidu", "staff", unit_id("lidu", "zhiyuan"))
    record("lidu", "patrol_log", staff, dt.date(2026, 10, 20), area="zhiyuan_road")
    db.session.commit()
    rows = verdicts("lidu", "staff_daily", dt.date(2026, 10, 20), dt.date(2026, 10, 20))
    assert [(v.subject["name"], v.count, v.required) for v in rows] == [("Two_Units", 1, 1)]


def test_a_rule_binds_a_named_post_and_its_successor(ctx):
    """`who: {posts: [...]}`: the post keeps its name when its holder changes."""
    from server.definitions.service import activate_scheme_version, load_scheme
    from tests.support.factories import demo_files

    files = dict(demo_files())
    name = next(n for n in files if n.endswith("scheme.yaml"))
    files[name] = files[name].replace("patrol_rules:\n", "patrol_rules:\n  - id: market_keeper_daily\n"
                                      "    name: {zh: 市场片区每天巡查, en: Market zone daily}\n"
                                      "    who: {posts: [market_keeper]}\n    at_least: 1\n    per: day\n", 1)
    version, _ = load_scheme(files)
    activate_scheme_version(version.id)
    old, new = make_user("old_keeper"), make_user("new_keeper")
    appoint("lidu", "segment_keeper", "Old", area_key="shilong_market_zone", since=dt.date(2026, 1, 1),
            username="old_keeper", key="market_keeper")
    appoint("lidu", "segment_keeper", "Other", area_key="zhiyuan_road", since=dt.date(2026, 1, 1))
    successor = appoint("lidu", "segment_keeper", "New", area_key="shilong_market_zone",
                        since=dt.date(2026, 10, 21), username="new_keeper")
    assert successor.key == "market_keeper"
    record("lidu", "patrol_log", old, dt.date(2026, 10, 20), area="shilong_market_zone")
    record("lidu", "patrol_log", new, dt.date(2026, 10, 21), area="shilong_market_zone")
    db.session.commit()
    rows = verdicts("lidu", "market_keeper_daily", dt.date(2026, 10, 20), dt.date(2026, 10, 22))
    assert [(v.period.key, v.subject["name"], v.count, v.required) for v in rows] == [
        ("2026-10-20", "Old_Keeper", 1, 1), ("2026-10-21", "New_Keeper", 1, 1), ("2026-10-22", "New_Keeper", 0, 1)]


def test_reminders_are_worked_out_once_per_change_of_data(lidu, monkeypatch):
    """The queue's page shows them on every view: kept until a counted record, or a change of posts, roles,
    units, areas, calendar or scheme comes in — not on every login or case step."""
    from server.audit.service import record_audit

    people, _posts = lidu
    head = make_user("zhiyuan_head", roles=(("lidu", "unit_head", "zhiyuan"),))
    calls = []
    real = service.my_patrols
    monkeypatch.setattr(service, "my_patrols", lambda *a, **k: calls.append(1) or real(*a, **k))
    day = dt.date(2026, 10, 27)
    first = service.reminders_for(head, "lidu", day)
    assert service.reminders_for(head, "lidu", day) == first and len(calls) == 1  # kept
    assert {r.rule.id for r in first} == {"themed_campaign_monthly", "hotspot_monthly"}
    record("lidu", "themed_campaign", head, dt.date(2026, 10, 9), unit="zhiyuan")
    db.session.commit()
    after = service.reminders_for(head, "lidu", day)
    assert len(calls) == 2 and {r.rule.id for r in after} == {"hotspot_monthly"}  # the new record counted
    record_audit("user.login", "user", head.id, user=head)  # the district's ordinary traffic moves nothing
    record_audit("case.transition", "case", 1, user=head, scheme_key="lidu")
    db.session.commit()
    assert service.reminders_for(head, "lidu", day) == after and len(calls) == 2
    appoint("lidu", "segment_keeper", "Someone", area_key="zhiyuan_road", since=dt.date(2026, 10, 1))
    db.session.commit()
    assert service.reminders_for(head, "lidu", day) == after and len(calls) == 3  # a post changed: again
    service.reminders_for(head, "lidu", day + dt.timedelta(days=1))
    assert len(calls) == 4  # another day: worked out again
