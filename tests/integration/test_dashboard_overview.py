"""The leaders' dashboard: this month so far against the same days of last month, six months of cases, this
month's cases by category and source, the overdue cases and who is short of patrols — within the reader's
reach; on both databases."""

from __future__ import annotations

import datetime as dt

import pytest

from server.assessment import charts, dashboard
from server.definitions.models import DefinitionVersion
from server.definitions.service import activate_scheme_version, load_scheme
from server.extensions import db
from server.org.models import Area
from server.workflow.models import Case, CaseDeadline
from tests.support.clock import NOW, ZONE
from tests.support.factories import demo_files, login, make_user

# A fixed "today" five days into a month: the figures compare 1–5 of this month with 1–5 of the last.
TODAY = dt.date(NOW.year + 1, 3, 5)
AT = dt.datetime.combine(TODAY, dt.time(15), ZONE).astimezone(dt.UTC)


def _on(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), ZONE).astimezone(dt.UTC)


@pytest.fixture
def district(ctx):
    """The demo district, its unit heads allowed the dashboard for their own units."""
    files = demo_files()
    files["schemes/lidu/scheme.yaml"] = files["schemes/lidu/scheme.yaml"].replace(
        "capabilities: [org.view, form.submit, case.report, case.handle, patrol.file, patrol.view_compliance,\n"
        "                   assessment.view]",
        "capabilities: [org.view, form.submit, case.report, case.handle, patrol.file, patrol.view_compliance,\n"
        "                   assessment.view, dashboard.view]")
    assert "dashboard.view]" in files["schemes/lidu/scheme.yaml"].split("id: unit_head")[1].split("id: staff")[0]
    version, _ = load_scheme(files)
    activate_scheme_version(version.id)
    make_user("leader", roles=(("lidu", "leader", None),))
    make_user("head", roles=(("lidu", "unit_head", "shilong"),))
    make_user("staff", roles=(("lidu", "staff", "shilong"),))
    db.session.commit()
    return {a.key: a for a in db.session.scalars(db.select(Area).filter_by(scheme_key="lidu"))}


def _case(area: Area, created: dt.datetime, *, category: str = "other", source: str = "staff",
          outcome: str | None = None, due: dt.datetime | None = None, met: bool | None = None,
          closed: dt.datetime | None = None) -> Case:
    workflow = db.session.scalar(db.select(DefinitionVersion).filter_by(kind="workflow",
                                                                        key="discover_assign_rectify_close"))
    case = Case(scheme_key="lidu", workflow_key=workflow.key, definition_version_id=workflow.id,
                state="closed" if outcome else "assigned", state_kind="final" if outcome else "open",
                outcome=outcome, data={"description": "问题"}, category=category, area_id=area.id,
                unit_id=area.unit_id, source=source, created_at=created,
                closed_at=(closed or created + dt.timedelta(hours=2)) if outcome else None)
    db.session.add(case)
    db.session.flush()
    if due is not None:
        db.session.add(CaseDeadline(case_id=case.id, key="rectify", started_at=created, due_at=due,
                                    stopped_at=None if met is None else due, met=met))
    return case


def _user(name: str):
    from server.auth.models import User

    return db.session.scalar(db.select(User).filter_by(username=name))


def test_month_so_far_against_the_same_days_of_last_month(district):
    road, other = district["shilong_old_street"], district["zhiyuan_road"]
    first = TODAY.replace(day=1)
    for day in (1, 3, 5):  # three this month, two of them rectified (one late)
        _case(road, _on(first.replace(day=day)), category="piled_rubbish", source="public",
              outcome="resolved" if day < 5 else None, due=_on(first.replace(day=day), 20),
              met=None if day == 5 else day == 1)
    before = dt.date(first.year, first.month - 1, 1)
    _case(other, _on(before.replace(day=2)), outcome="resolved")    # last month, within its first five days
    # Opened on last month's 3rd but rectified on its 20th: not yet rectified at this point of last month.
    _case(other, _on(before.replace(day=3)), outcome="resolved", closed=_on(before.replace(day=20)))
    _case(other, _on(before.replace(day=5), 14))                    # the fifth, before now's time of day: within
    _case(other, _on(before.replace(day=5), 16))                    # later in the day than now: not yet
    _case(other, _on(before.replace(day=6), 0))                     # the sixth: not compared with a month so far
    _case(other, _on(before.replace(day=20)))
    db.session.commit()
    view = dashboard.overview(_user("leader"), "lidu", TODAY, AT)
    figures = {f.key: f for f in view.figures}
    assert (view.last_from, view.last_to) == (before, before.replace(day=5))
    assert (figures["found"].now, figures["found"].before, figures["found"].change) == (3, 3, 0)
    assert (figures["rectified"].now, figures["rectified"].before) == (2, 1)  # like for like: by the 5th, 15:00
    assert figures["rectification_rate"].now == pytest.approx(2 / 3)
    assert figures["rectification_rate"].before == pytest.approx(1 / 3)
    assert figures["on_time_rate"].now == pytest.approx(1 / 2)  # of the rectified: one in time, one late
    assert (figures["public"].now, figures["public"].before) == (3, 0)
    # The trend: six months, the last one so far; last month counted whole.
    assert [t[0] for t in view.trend][-2:] == [before, first] and view.trend[-1][1] == TODAY
    assert view.trend[-2][2]["found"] == 6 and view.trend[-1][2]["found"] == 3 and len(view.trend) == 6
    assert view.trend[-2][2]["rectified"] == 2  # the whole month as it stands now: the 3rd's case counts
    assert view.by_category == [("积存垃圾", 3)]  # by name, in the reader's language
    assert [n for _label, n in view.by_source] == [3]


def test_a_short_month_is_compared_whole(district):
    """On 31 March, last month's first 31 days are all of February."""
    view = dashboard.overview(_user("leader"), "lidu", dt.date(TODAY.year, 3, 31), AT)
    assert (view.last_from, view.last_to) == (dt.date(TODAY.year, 2, 1), dt.date(TODAY.year, 3, 1) - dt.timedelta(1))
    january = dashboard.overview(_user("leader"), "lidu", dt.date(TODAY.year, 1, 5), AT)
    assert (january.last_from, january.last_to) == (dt.date(TODAY.year - 1, 12, 1), dt.date(TODAY.year - 1, 12, 5))
    assert january.trend[0][0] == dt.date(TODAY.year - 1, 8, 1)  # six months back across the new year


def test_overdue_cases_longest_first_and_within_reach(district):
    road, other = district["shilong_old_street"], district["zhiyuan_road"]
    late = _case(road, _on(TODAY - dt.timedelta(days=9)), due=AT - dt.timedelta(days=3))
    later = _case(road, _on(TODAY - dt.timedelta(days=9)), due=AT - dt.timedelta(days=5))
    _case(road, _on(TODAY - dt.timedelta(days=2)), due=AT + dt.timedelta(days=1))        # not yet due
    elsewhere = _case(other, _on(TODAY - dt.timedelta(days=9)), due=AT - dt.timedelta(hours=1))
    paused = _case(road, _on(TODAY - dt.timedelta(days=9)), due=AT - dt.timedelta(days=1))
    paused.deadlines[0].paused_at = AT - dt.timedelta(days=2)  # waiting on the reporter: not overdue
    db.session.commit()
    leader = dashboard.overview(_user("leader"), "lidu", TODAY, AT)
    assert [c.id for c, _due in leader.overdue] == [later.id, late.id, elsewhere.id] and leader.overdue_total == 3
    head = dashboard.overview(_user("head"), "lidu", TODAY, AT)  # the head of shilong: only its cases
    assert {c.id for c, _due in head.overdue} == {later.id, late.id} and head.overdue_total == 2
    assert {f.key: f.now for f in head.figures}["found"] == 1  # the one opened on the 3rd; the rest last month
    rows = {r.unit.key: r for r in dashboard.dashboard(_user("leader"), "lidu", TODAY, AT)}
    assert rows[road.unit.key].overdue == 2  # the same condition on the per-unit table


def test_the_page_names_who_is_short_of_patrols_and_refuses_others(district, app):
    db.session.commit()
    client = app.test_client()
    login(client, "leader")
    page = client.get("/assess/lidu/dashboard").get_data(as_text=True)
    assert 'data-figure="found"' in page and 'id="overdue"' in page and 'id="patrols-short"' in page
    short = page[page.index('id="patrols-short"'):]
    short = short[:short.index("</section>")]
    assert "每月开展“马路办公”专题治理" in short and "石龙社区" in short and "0 / 1" in short  # named, with counts
    staff = app.test_client()
    login(staff, "staff")
    assert staff.get("/assess/lidu/dashboard").status_code == 403


def test_long_labels_are_never_cut():
    name = "城镇综合管理办公室下属第三网格化管理服务中心"
    svg = charts.bar_chart([(name, 80, None), ("短", 60, None)])
    left = charts.text_width(name, 13) + 12
    assert f'x="{int(left) - 6}"' in svg  # the labels' column is as wide as the longest label
    width = int(svg.split('viewBox="0 0 ')[1].split(" ")[0])
    assert width >= left + 200  # and the bars keep their span
    assert charts.text_width("ab", 10) == pytest.approx(12) and charts.text_width("城管", 10) == 20
    line = charts.line_chart(["1", "2"], [(name, [1, 2])], high=2)
    assert int(line.split('viewBox="0 0 ')[1].split(" ")[0]) >= 40 + charts.text_width(name, 12)
