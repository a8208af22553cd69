"""Patrols through the pages: a patrol filed late and far away, its findings opening cases; the leaders'
compliance page within each reader's reach; the inbox reminder before a period ends."""

from __future__ import annotations

import datetime as dt
import io
import re
from zoneinfo import ZoneInfo

import pytest

from server.core.clock import utcnow
from server.extensions import db
from server.forms import service as forms
from server.forms.engine import form_spec
from server.forms.models import Submission, Upload
from server.org.models import Area
from server.org.posts import appoint
from server.patrols import service
from server.workflow.models import Case
from tests.support.factories import load_demo, load_shipped, login, make_user
from tests.support.images import jpeg

ZONE = ZoneInfo("Asia/Shanghai")
URL = "/f/luzhang/patrol_log/new"


@pytest.fixture
def district(ctx):
    load_shipped("luzhang")
    people = {
        "office": make_user("office", roles=(("luzhang", "road_chief_office", None),)),
        "chief": make_user("chief", roles=(("luzhang", "chief", "east_gate"),)),
        "squad_chief": make_user("squad_chief", roles=(("luzhang", "chief", "east_squad"),)),
        "patroller": make_user("patroller", roles=(("luzhang", "patroller", "river_bank"),)),
    }
    since = dt.date(2026, 1, 1)
    appoint("luzhang", "first_chief_street", "Chief", area_key="renmin_road", since=since, username="chief")
    appoint("luzhang", "first_chief_city", "Squad_Chief", area_key="binhe_road", since=since, username="squad_chief")
    appoint("luzhang", "second_chief_community", "Patroller", area_key="binhe_road", since=since,
            username="patroller")
    db.session.commit()
    return people


def _hidden(page: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', page).group(1)


def test_late_far_patrol_is_flagged_and_its_finding_opens_a_case(district, client):
    login(client, "chief")
    page = client.get(URL).get_data(as_text=True)
    started = (utcnow().astimezone(ZONE) - dt.timedelta(days=2)).replace(hour=21, minute=0, second=0, microsecond=0)
    data = {
        "csrf_token": _hidden(page, "csrf_token"), "_token": _hidden(page, "_token"), "_action": "submit",
        "area": "renmin_road", "started_at": started.strftime("%Y-%m-%dT%H:%M"), "participants": "1",
        # About 4.4 km north of the road (its geometry runs along latitude 29.56).
        "location-lat": "29.6", "location-lng": "106.555", "location-accuracy": "20",
        "findings": "巡查人民路", "has_problems": "yes",
        "problems-0-problem_category": "event_exposed_rubbish", "problems-0-problem_description": "路边暴露垃圾",
        "problems-0-problem_fixed_on_spot": "yes",
        "problems-1-problem_category": "event_piled_rubbish", "problems-1-problem_description": "建筑垃圾堆放",
        "problems-1-problem_size_m3": "4", "problems-1-problem_fixed_on_spot": "no",
        "photos": [(io.BytesIO(jpeg()), "patrol.jpg")],
        "problems-1-problem_photos": [(io.BytesIO(jpeg(color="blue")), "pile.jpg")],
    }
    response = client.post(URL, data=data, content_type="multipart/form-data")
    assert response.status_code == 303, re.findall(r"href=\"#f-[^<]*<", response.get_data(as_text=True))
    patrol = db.session.scalar(db.select(Submission).filter_by(form_key="patrol_log"))
    # Counted when it happened, not when it arrived.
    assert patrol.occurred_at == started.astimezone(dt.UTC)
    assert patrol.flags["far_from_area"]["limit_m"] == 300 and 4300 < patrol.flags["far_from_area"]["distance_m"] < 4500
    # Only the problem not settled on the spot becomes a case, its report filled from the patrol.
    cases = db.session.scalars(db.select(Case)).all()
    assert len(cases) == 1
    case = cases[0]
    report = db.session.get(Submission, case.submission_id)
    assert report.form_key == "problem_report" and report.source_id == patrol.id
    assert report.data["category"] == "event_piled_rubbish" and report.data["description"] == "建筑垃圾堆放"
    assert report.data["size_m3"] == 4 and report.data["area"] == "renmin_road"
    assert report.data["urgency"] == "normal"  # the report form's default
    pile = report.data["photos_before"]
    given = db.session.get(Upload, pile[0])
    assert len(pile) == 1 and given.submission_id == report.id
    assert given.sha256 in {u.sha256 for u in patrol.uploads}  # the same stored photo
    assert case.unit.key == "east_gate" and case.category == "event_piled_rubbish"
    # The case page shows the photo it was given as its before photo, and where the case came from.
    case_page = client.get(f"/cases/case/{case.id}").get_data(as_text=True)
    assert f"/f/uploads/{pile[0]}" in case_page and f"/f/records/{patrol.id}" in case_page
    assert client.get(f"/f/uploads/{pile[0]}").status_code == 200
    record_page = client.get(f"/f/records/{patrol.id}").get_data(as_text=True)
    assert "4" in record_page and "m)" in record_page and "tag changed" in record_page
    # A resend of the same form neither stores the patrol again nor opens another case.
    again = client.post(URL, data={**data, "photos": [(io.BytesIO(jpeg()), "patrol.jpg")],
                                   "problems-1-problem_photos": [(io.BytesIO(jpeg()), "pile.jpg")]},
                        content_type="multipart/form-data")
    assert again.status_code == 303
    assert db.session.scalar(db.select(db.func.count(Case.id))) == 1


def test_compliance_page_within_each_readers_reach(district, client):
    login(client, "office")
    page = client.get("/patrols/luzhang/?show=all")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "一级路长每周对责任路段检查不少于一次" in html and "Chief" in html and "Squad_Chief" in html
    assert "社区二级路长" in html
    client.post("/logout", data={"csrf_token": _hidden(client.get("/").get_data(as_text=True), "csrf_token")})

    login(client, "chief")
    html = client.get("/patrols/luzhang/?show=all").get_data(as_text=True)
    assert "\">Chief</td>" in html and "Squad_Chief" not in html and "Patroller" not in html
    tier_only = client.get("/patrols/luzhang/?show=all&tier=first_chief_city").get_data(as_text=True)
    assert "\">Chief</td>" not in tier_only and "\">Squad_Chief</td>" not in tier_only


def test_a_rules_long_list_is_shown_a_page_at_a_time(district, client, monkeypatch):
    """A city's rule binds thousands: each rule's list shows ROWS_SHOWN at once, and its pager turns that rule's
    pages only, keeping the filters."""
    from server.patrols import views

    login(client, "office")
    whole = client.get("/patrols/luzhang/?show=all").get_data(as_text=True)
    monkeypatch.setattr(views, "ROWS_SHOWN", 1)
    html = client.get("/patrols/luzhang/?show=all").get_data(as_text=True)
    rows = lambda page: page.count('<td data-label="记录">')  # noqa: E731 - one a row
    assert rows(html) < rows(whole) and 'rel="next"' in html
    link = re.search(r'rel="next" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    rule = re.search(r"rule=(\w+)", link).group(1)
    assert "show=all" in link and "page=2" in link and link.endswith("#rule-" + rule)
    second = client.get(link).get_data(as_text=True)
    section = lambda page: page.split(f'id="rule-{rule}"')[1].split("</section>")[0]  # noqa: E731
    assert 'rel="prev"' in section(second) and rows(section(second)) == 1
    assert section(second) != section(html)  # that rule's second row; the other rules still at their first


def test_a_city_of_units_lists_the_upper_levels_in_the_filter(district, client, monkeypatch):
    """Past UNITS_OFFERED the unit filter lists the upper levels (and the unit chosen), and says so."""
    from server.org import service as org_service
    from server.org.models import Unit

    login(client, "office")
    options = lambda page: re.findall(r'<option value="(\d+)"', page.split('id="unit"')[1].split("</select>")[0])  # noqa: E731
    every = options(client.get("/patrols/luzhang/").get_data(as_text=True))
    top = db.session.scalars(db.select(Unit).filter_by(scheme_key="luzhang", active=True)).all()
    shallow = min(u.path.count("/") for u in top)
    upper = {str(u.id) for u in top if u.path.count("/") == shallow}
    assert len(every) == len(top) > len(upper)
    monkeypatch.setattr(org_service, "UNITS_OFFERED", len(upper))
    html = client.get("/patrols/luzhang/").get_data(as_text=True)
    assert set(options(html)) == upper and "此处列出上级单位" in html
    deep = next(u for u in top if u.path.count("/") > shallow)
    chosen = client.get(f"/patrols/luzhang/?unit={deep.id}").get_data(as_text=True)
    assert set(options(chosen)) == upper | {str(deep.id)} and f'<option value="{deep.id}" selected>' in chosen


def test_compliance_page_refused_without_the_capability(district, client):
    assert client.get("/patrols/luzhang/").status_code in (302, 303)  # anonymous: to the login page
    login(client, "patroller")
    assert client.get("/patrols/luzhang/").status_code == 403


def test_reminder_before_the_week_ends(district, client, time_machine):
    # Saturday 24 October 2026 in Beijing: two days of the week left, the rule's reminder window.
    time_machine.move_to(dt.datetime(2026, 10, 24, 10, tzinfo=ZONE))
    login(client, "chief")
    html = client.get("/cases/luzhang/").get_data(as_text=True)
    assert "巡查提醒" in html or "Patrol reminders" in html
    assert "0 / 1" not in html and "人民路" in html
    # Once the chief has patrolled the road this week, the reminder goes.
    friday = dt.datetime(2026, 10, 23, 2, tzinfo=dt.UTC)
    db.session.add(Submission(
        scheme_key="luzhang", form_key="patrol_log", token="done-this-week", user_id=district["chief"].id,
        definition_version_id=forms.form_version("luzhang", "patrol_log").id,
        area_id=db.session.scalar(db.select(Area.id).filter_by(scheme_key="luzhang", key="renmin_road")), data={},
        occurred_at=friday, submitted_at=friday))
    db.session.commit()
    assert service.reminders_for(district["chief"], "luzhang") == []
    html = client.get("/cases/luzhang/").get_data(as_text=True)
    assert "巡查提醒" not in html and "Patrol reminders" not in html
    # Earlier in the week there is no reminder yet.
    time_machine.move_to(dt.datetime(2026, 10, 28, 10, tzinfo=ZONE))
    assert service.reminders_for(district["chief"], "luzhang") == []


def test_record_time_is_trusted_back_to_the_previous_month_only(district):
    spec = form_spec(forms.form_version("luzhang", "patrol_log").data)
    arrived = dt.datetime(2026, 11, 1, 1, 0, tzinfo=dt.UTC)  # 09:00 on 1 November in Shanghai
    at = lambda text: forms.record_time(spec, {"started_at": text}, "luzhang", arrived)  # noqa: E731
    assert at("2026-10-01T00:00") == dt.datetime(2026, 9, 30, 16, 0, tzinfo=dt.UTC)  # the previous month: kept
    assert at("2026-09-30T23:59") == arrived  # before it: the arrival time
    assert at("2026-11-02T08:00") == dt.datetime(2026, 11, 2, 0, 0, tzinfo=dt.UTC)  # within a day ahead
    assert at("2026-11-02T10:00") == arrived  # more than a day ahead
    assert at("not a time") == arrived


def test_a_unit_head_without_a_post_files_for_their_unit(ctx, client):
    """The themed campaign names its areas only inside a repeat: it counts for the filer's one unit."""
    load_demo()
    make_user("zhiyuan_head", roles=(("lidu", "unit_head", "zhiyuan"),))
    login(client, "zhiyuan_head")
    url = "/f/lidu/themed_campaign/new"
    page = client.get(url).get_data(as_text=True)
    data = {"csrf_token": _hidden(page, "csrf_token"), "_token": _hidden(page, "_token"), "_action": "submit",
            "theme": "占道经营整治", "started_on": "2026-11-02", "campaign_areas-0-campaign_area": "zhiyuan_road",
            "problems_found": "3", "problems_fixed": "2", "description": "集中整治",
            "photos_before": [(io.BytesIO(jpeg()), "b.jpg")], "photos_after": [(io.BytesIO(jpeg()), "a.jpg")]}
    response = client.post(url, data=data, content_type="multipart/form-data")
    assert response.status_code == 303, re.findall(r"href=\"#f-[^<]*<", response.get_data(as_text=True))
    record = db.session.scalar(db.select(Submission).filter_by(form_key="themed_campaign"))
    assert record.unit.key == "zhiyuan" and record.post_id is None


def test_a_chief_of_two_communities_is_shown_to_each_with_only_its_post(ctx, client):
    load_demo()
    make_user("both")
    make_user("zhiyuan_head", roles=(("lidu", "unit_head", "zhiyuan"),))
    since = dt.date(2026, 1, 1)
    appoint("lidu", "community_head", "Both", area_key="shilong_town", since=since, username="both")
    appoint("lidu", "community_head", "Both", area_key="zhiyuan_road", since=since, username="both")
    db.session.commit()
    login(client, "zhiyuan_head")
    html = client.get("/patrols/lidu/?show=all").get_data(as_text=True)
    section = html.split('id="rule-community_head_weekly"')[1].split("</section>")[0]
    assert '">Both</td>' in section and "致远路" in section and "石龙场镇" not in section
