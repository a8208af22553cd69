"""Sheets that assess people (`assessed: {tiers}`): each holder of a post of the tiers is scored on their own
numbers, ranked, graded, flagged, given streaks and published like a unit, and awarded over the year; on both
databases."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import yaml

from server.api import service as api
from server.assessment import appeals, scoring, service
from server.assessment.models import AssessmentPeriod
from server.auth.models import User
from server.core.errors import Conflict
from server.definitions.errors import DefinitionsInvalid
from server.definitions.models import DefinitionVersion
from server.definitions.service import activate_scheme_version, load_scheme
from server.extensions import db
from server.org.models import Area
from server.org.posts import appoint
from server.workflow.models import Case
from tests.support.clock import NOW, TODAY
from tests.support.factories import demo_files, login, make_user
from tests.support.jobs import job_file

SHEET = {
    "kind": "score_sheet", "id": "keeper_monthly", "name": {"zh": "路段巡查责任人月度考核", "en": "Keepers"},
    "period": "month", "total": 100, "assessed": {"tiers": ["segment_keeper"]},
    "metrics": [{"id": "problems", "name": "责任区问题数", "source": "case_count"},
                {"id": "reported", "name": "本人上报数", "source": "case_count", "counts_for": "reporter"}],
    "sections": [{"id": "duty", "name": "履职", "points": 100, "items": [
        {"id": "order", "name": "责任区秩序", "points": 60, "rules": [
            {"id": "per_problem", "type": "per_occurrence", "points": 10, "count": "problems"}]},
        {"id": "finding", "name": "发现上报", "points": 40, "rules": [
            {"id": "none_reported", "type": "one_off", "points": 10, "when": "reported == 0"}]}]}],
    "grades": [{"id": "good", "name": "好", "min": 85}, {"id": "fair", "name": "中", "min": 60},
               {"id": "poor", "name": "差", "min": 0, "passing": False}],
    "flags": [{"id": "best", "name": "最佳责任人", "kind": "top", "count": 1},
              {"id": "last", "name": "末位", "kind": "bottom", "count": 1}],
    "streaks": [{"id": "last_twice", "name": "连续两月末位", "when": "'last' in flags", "times": 2,
                 "action": "约谈"}],
    "combine": [{"id": "keeper_year", "name": "年度优秀责任人", "period": "year", "formula": "keeper_monthly",
                 "grades": "none", "flags": [{"id": "keeper_of_year", "name": "年度优秀", "kind": "top", "count": 1}]}],
}
LAST_MONTH = TODAY.replace(day=1) - dt.timedelta(days=1)


def _files(sheet: dict | None = None) -> dict[str, str]:
    files = demo_files()
    path = "schemes/lidu/scheme.yaml"
    files[path] = files[path].replace("score_sheets: [lidu_monthly]", "score_sheets: [lidu_monthly, keeper_monthly]")
    files["schemes/lidu/keeper_monthly.yaml"] = yaml.safe_dump(sheet or SHEET, allow_unicode=True)
    return files


@pytest.fixture
def district(ctx):
    version, _ = load_scheme(_files())
    activate_scheme_version(version.id)
    make_user("zhangsan")
    make_user("wangwu")
    since = LAST_MONTH.replace(day=1)
    # 张三 keeps two places under one account; 李四 has no account; 王五 keeps Duanqiao Street.
    appoint("lidu", "segment_keeper", "张三", area_key="shilong_old_street_north", username="zhangsan", since=since)
    appoint("lidu", "segment_keeper", "张三", area_key="shilong_market_zone", username="zhangsan", since=since)
    appoint("lidu", "segment_keeper", "李四", area_key="zhiyuan_road", since=since)
    appoint("lidu", "segment_keeper", "王五", area_key="duanqiao_street", username="wangwu", since=since)
    workflow = db.session.scalar(db.select(DefinitionVersion).filter_by(kind="workflow",
                                                                        key="discover_assign_rectify_close"))
    areas = {a.key: a for a in db.session.scalars(db.select(Area).filter_by(scheme_key="lidu"))}
    zhangsan = db.session.scalar(db.select(User.id).filter_by(username="zhangsan"))

    def case(area: str, at: dt.datetime, reporter: int | None = None) -> None:
        db.session.add(Case(scheme_key="lidu", workflow_key=workflow.key, definition_version_id=workflow.id,
                            state="assigned", state_kind="open", data={}, category="other", reporter_id=reporter,
                            unit_id=areas[area].unit_id, area_id=areas[area].id, created_at=at))

    for at in (NOW, dt.datetime.combine(LAST_MONTH, dt.time(4), dt.UTC)):  # the same both months
        case("shilong_old_street_north", at)
        case("shilong_old_street_north", at)
        case("shilong_market_zone", at)
        case("zhiyuan_road", at, reporter=zhangsan)  # 张三 reported it: on 李四's road
    db.session.commit()
    return areas


def _by_name(day: dt.date = TODAY) -> dict[str, scoring.UnitResult]:
    _period, results = scoring.score_period("lidu", "keeper_monthly", day)
    return {r.unit.name: r for r in results}


def test_each_person_is_scored_on_their_own_numbers(district):
    results = _by_name()
    assert set(results) == {"张三", "李四", "王五"}
    zhang, li, wang = results["张三"], results["李四"], results["王五"]
    # 张三: three problems at his two places (−30), and he reported one: 70. 李四 has no account, so he
    # reported none (−10) and one problem on his road (−10): 80. 王五: nothing on his street, reported none: 90.
    assert (zhang.metrics, zhang.total) == ({"problems": 3, "reported": 1}, Decimal(70))
    assert (li.metrics, li.total) == ({"problems": 1, "reported": 0}, Decimal(80))
    assert (wang.metrics, wang.total) == ({"problems": 0, "reported": 0}, Decimal(90))
    assert (wang.ranks, li.ranks, zhang.ranks) == ({"all": 1}, {"all": 2}, {"all": 3})
    assert [f.id for f in wang.flags] == ["best"] and [f.id for f in zhang.flags] == ["last"]
    assert (wang.grade.id, zhang.grade.id) == ("good", "fair")
    assert zhang.unit.id.startswith("user:") and li.unit.id.startswith("post:") and len(zhang.unit.posts) == 2
    assert zhang.unit.unit.key == "shilong"  # the unit he answers to


def test_published_with_streaks_and_read_by_their_units(district, client):
    office = make_user("office", admin=True)
    draft = service.open_period(office, "lidu", "keeper_monthly", TODAY)
    db.session.commit()
    login(client, "office")
    listed = client.get(f"/assess/period/{draft.id}").get_data(as_text=True)
    assert "张三" in listed and "李四" in listed and "70.00" in listed
    db.session.delete(draft)
    db.session.commit()
    previous = service.open_period(office, "lidu", "keeper_monthly", LAST_MONTH)
    service.publish(office, previous, today=TODAY)
    period = service.open_period(office, "lidu", "keeper_monthly", TODAY)
    service.publish(office, period, provisional=True)
    db.session.commit()
    period = db.session.get(AssessmentPeriod, period.id)
    scores = {s.person_name: s for s in scoring.published_scores(period)}
    zhang, li = scores["张三"], scores["李四"]
    assert zhang.unit_id is None and zhang.user_id is not None and zhang.post_id is None
    assert li.user_id is None and li.post_id is not None and li.answers_to.key == "zhiyuan"
    assert Decimal(zhang.total) == Decimal(70) and zhang.flags == ["last"]
    assert [a["id"] for a in zhang.actions] == ["last_twice"]  # last in both months: 约谈
    # The bulletin names people; a reader of Shilong sees 张三's result, not 王五's.
    page = client.get(f"/assess/period/{period.id}")
    assert page.status_code == 200 and "张三" in page.get_data(as_text=True)
    bulletin = f"/assess/period/{period.id}/bulletin"
    pdf = job_file(client, f"{bulletin}.pdf", token_from=bulletin)
    assert pdf.startswith(b"%PDF")
    assert client.get(f"/assess/period/{period.id}/unit/{li.answers_to_id}").status_code == 404
    yearly = client.get("/assess/lidu/combined/keeper_monthly/keeper_year")
    assert yearly.status_code == 200 and "王五" in yearly.get_data(as_text=True)
    bulletin = client.get(f"/assess/period/{period.id}/bulletin").get_data(as_text=True)
    assert "张三" in bulletin and "王五" in bulletin and "约谈" in bulletin
    make_user("shilong_reader", roles=(("lidu", "unit_head", "shilong"),))
    shown = service.visible(make_user("x"), period, scoring.published_scores(period), lambda s: s.subject)
    assert shown == []
    reader = db.session.scalar(db.select(User).filter_by(username="shilong_reader"))
    shown = service.visible(reader, period, scoring.published_scores(period), lambda s: s.subject)
    assert [s.person_name for s in shown] == ["张三"]
    # The API gives the person and the unit they answer to.
    _client, token = api.create_client("office-system", "office")
    db.session.commit()
    answer = client.get(f"/api/v1/assessment/periods/{period.id}/scores",
                        headers={"Authorization": f"Bearer {token}"}).get_json()
    row = next(s for s in answer["scores"] if s["person"] and s["person"]["name"] == "张三")
    assert row["unit"] == "shilong" and row["person"]["id"].startswith("user:") and row["total"] == 70
    # The year's award goes to the best person over the months published.
    _span, year = scoring.combined_scores("lidu", "keeper_monthly", "keeper_year", TODAY)
    best = [r.unit.name for r in year if [f.id for f in r.flags] == ["keeper_of_year"]]
    assert best == ["王五"]


@pytest.mark.parametrize(("change", "message"), [
    ({"assessed": {"tiers": ["segment_keeper"], "unit_kinds": ["community"]}}, "units or people"),
    ({"assessed": {"tiers": ["no_such_tier"]}}, "unknown tier 'no_such_tier'"),
    ({"metrics": [{"id": "problems", "name": "x", "source": "manual"},
                  {"id": "reported", "name": "y", "source": "case_count"}]}, "no figure per person"),
    ({"metrics": [{"id": "problems", "name": "x", "source": "case_count", "counts_for": "holder"},
                  {"id": "reported", "name": "y", "source": "case_count"}]}, "a case counts for a person"),
    ({"metrics": [{"id": "problems", "name": "x", "source": "patrol_compliance",
                   "patrol_rule": "themed_campaign_monthly"},
                  {"id": "reported", "name": "y", "source": "case_count"}]}, "is counted per unit"),
    ({"metrics": [{"id": "problems", "name": "x", "source": "patrol_compliance",
                   "patrol_rule": "community_head_weekly"},
                  {"id": "reported", "name": "y", "source": "case_count"}]}, "none of which this sheet assesses"),
    ({"ranking": {"by_difficulty": True}}, "ranked all together"),
    ({"combine": [{"id": "y", "name": "y", "period": "year", "formula": "keeper_monthly + lidu_monthly",
                   "sheets": ["lidu_monthly"], "grades": "none"}]}, "'lidu_monthly' assesses units"),
    ({"appeal_days": 3}, "people's appeals"),
])
def test_a_people_sheet_that_cannot_work_is_refused(ctx, change, message):
    with pytest.raises(DefinitionsInvalid) as raised:
        load_scheme(_files({**SHEET, **change}))
    assert message in str(raised.value), str(raised.value)


def test_a_persons_missed_patrols_are_their_own(ctx):
    """A person rule's missed weeks count for the person who missed them (an account, or a post with none)."""
    from server.assessment.sources import _missed_verdicts
    from server.patrols.engine import Period

    sheet = {**SHEET, "assessed": {"tiers": ["community_head"]}, "streaks": [], "combine": [],
             "metrics": [{"id": "problems", "name": "缺巡", "source": "patrol_compliance",
                          "patrol_rule": "community_head_weekly"},
                         {"id": "reported", "name": "本人上报数", "source": "case_count", "counts_for": "reporter"}]}
    version, _ = load_scheme(_files(sheet))
    activate_scheme_version(version.id)
    make_user("shilong_head")
    since = LAST_MONTH.replace(day=1) - dt.timedelta(days=7)
    appoint("lidu", "community_head", "石龙书记", area_key="shilong_town", username="shilong_head", since=since)
    appoint("lidu", "community_head", "致远书记", unit_key="zhiyuan", since=since)
    db.session.commit()
    month = Period("month", LAST_MONTH.replace(day=1), LAST_MONTH)
    missed = _missed_verdicts("lidu", {"patrol_rule": "community_head_weekly"}, month)
    weeks = {name: sum(1 for v in missed if v.subject["name"] == name) for name in ("Shilong_Head", "致远书记")}
    assert weeks["Shilong_Head"] >= 3 and weeks["致远书记"] == weeks["Shilong_Head"]  # nobody patrolled
    results = {r.unit.name: r for r in scoring.score_period("lidu", "keeper_monthly", LAST_MONTH)[1]}
    assert results["石龙书记"].metrics["problems"] == weeks["Shilong_Head"]
    assert results["致远书记"].metrics["problems"] == weeks["致远书记"]
    assert results["致远书记"].unit.id.startswith("post:") and results["致远书记"].unit.unit.key == "zhiyuan"


def test_a_keeper_is_counted_only_for_the_days_they_held_the_post(district):
    """赵六 takes Duanqiao Street over on the 15th: a problem found there on the 3rd is 王五's, not his."""
    appoint("lidu", "segment_keeper", "赵六", area_key="duanqiao_street", since=LAST_MONTH.replace(day=15))
    appoint("lidu", "segment_keeper", "无处可管", since=LAST_MONTH.replace(day=1))  # over nothing at all
    workflow = db.session.scalar(db.select(DefinitionVersion).filter_by(kind="workflow",
                                                                        key="discover_assign_rectify_close"))
    db.session.add(Case(scheme_key="lidu", workflow_key=workflow.key, definition_version_id=workflow.id,
                        state="assigned", state_kind="open", data={}, category="other",
                        unit_id=district["duanqiao_street"].unit_id, area_id=district["duanqiao_street"].id,
                        created_at=dt.datetime.combine(LAST_MONTH.replace(day=3), dt.time(4), dt.UTC)))
    db.session.commit()
    results = _by_name(LAST_MONTH)
    assert results["王五"].metrics["problems"] == 1 and results["赵六"].metrics["problems"] == 0
    assert "无处可管" not in results  # nothing could ever count against them: not assessed


def test_a_correction_scores_the_people_published_and_an_account_keeps_the_history(district):
    office = make_user("office", admin=True)
    period = service.open_period(office, "lidu", "keeper_monthly", LAST_MONTH)
    service.publish(office, period, today=TODAY)
    db.session.commit()
    # Appointed afterwards, back-dated into the period: the correction neither fails nor adds them.
    appoint("lidu", "segment_keeper", "新人", area_key="longqiao_road", since=LAST_MONTH.replace(day=1))
    db.session.commit()
    service.publish(office, period, reason="a correction", today=TODAY)
    db.session.commit()
    published = {s.person_name: s for s in scoring.published_scores(period)}
    assert set(published) == {"张三", "李四", "王五"} and Decimal(published["李四"].total) == Decimal(80)
    # 李四 is given an account: his published months are his account's from now on.
    li = make_user("lisi")
    published["李四"].post.user_id = li.id
    db.session.commit()
    assert published["李四"].subject_id == f"user:{li.id}"
    now = service.open_period(office, "lidu", "keeper_monthly", TODAY)
    assert f"user:{li.id}" in service._history(now)
    # People's results are not appealed.
    with pytest.raises(Conflict):
        appeals.open_appeals(office, now)
