"""Figures a district can publish: staff reports routed by category and place in every shipped workflow, a
year's calendar imported with open deadlines moved, unfinished periods (no missed patrol before its day, no
period opened in the future, provisional publication), upheld appeals that replace the contested marks."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest

from server.assessment import appeals, scoring
from server.assessment import service as assessment
from server.audit.models import AuditEntry
from server.calendar.models import CalendarDay, CalendarYear
from server.core.errors import Conflict, DomainError
from server.definitions.service import activate_scheme_version, load_scheme
from server.extensions import db
from server.forms import service as forms
from server.forms.engine import form_spec
from server.forms.models import Submission
from server.org.models import Unit
from server.workflow import service as workflow
from server.workflow.models import Case
from tests.integration.test_assessment import october  # noqa: F401 - the fixture
from tests.support.clock import TODAY, ZONE, local, month_start
from tests.support.factories import formdata, login, make_user, photo, scheme_files
from tests.support.jobs import job_file, run_started

CALENDAR_2027 = Path(__file__).resolve().parents[1] / "support" / "data" / "calendar-2027.csv"


# -- routing of staff reports -----------------------------------------------------------------------------------

# (scheme, a rule put first, the staff role and unit, (category, area) -> the unit expected)
ROUTED = [
    ("lidu", "when: category == 'piled_rubbish' and area.parent == 'shilong_town' and source == 'staff'\n"
             "    assign_to: {unit: town_office}",
     ("unit_head", "lidu_street"), {("piled_rubbish", "shilong_old_street"): "town_office",
                            ("piled_rubbish", "duanqiao_street"): "duanqiao"}),
    ("luzhang", "when: category == 'event_illegal_structure' and area.unit == 'east_gate'\n"
                "    assign_to: {unit: east_squad}",
     ("chief", "east_street"), {("event_illegal_structure", "renmin_road"): "east_squad",
                                   ("event_exposed_rubbish", "renmin_road"): "east_gate"}),
    ("chengguan", "when: category == 'event_exposed_rubbish' and area.kind == 'grid' and area == 'dongting_grid'\n"
                  "    assign_to: {unit: ting_sanitation}",
     ("community_staff", "xx_street"), {("event_exposed_rubbish", "dongting_grid"): "ting_sanitation",
                                     ("event_illegal_structure", "dongting_grid"): "dongting"}),
]


@pytest.mark.parametrize(("scheme", "rule", "staff", "expected"), ROUTED, ids=[r[0] for r in ROUTED])
def test_a_staff_report_is_routed_by_category_and_place(ctx, scheme, rule, staff, expected):
    files = dict(scheme_files(scheme))
    name = next(n for n in files if n.endswith("scheme.yaml"))
    files[name] = files[name].replace("routing:\n", f"routing:\n  - id: first_rule\n    {rule}\n", 1)
    version, _ = load_scheme(files)
    activate_scheme_version(version.id)
    db.session.commit()
    reporter = make_user("reporter", roles=((scheme, staff[0], staff[1]),))
    with ctx.test_request_context():
        row = forms.form_version(scheme, "problem_report")
        for number, ((category, area), unit) in enumerate(expected.items()):
            result = forms.post_form(reporter, scheme, form_spec(row.data), row, formdata(
                _token=f"r{number}", category=category, area=area, description="问题", photos_before=photo(),
                size_m3="1", urgency="normal"))
            assert isinstance(result, Submission), result.errors
            case = workflow.open_case(reporter, scheme, result)
            assert case.source == "staff"
            assert case.unit.key == unit, (category, area)  # sent where the scheme's rules say


def _lidu_routing_errors(rule: str) -> list[str]:
    """The scheme check's errors for Lidu with `rule` (YAML of one routing rule) put first."""
    from server.definitions.errors import DefinitionsInvalid
    from server.definitions.service import check_scheme_files

    files = dict(scheme_files("lidu"))
    name = next(n for n in files if n.endswith("scheme.yaml"))
    files[name] = files[name].replace("routing:\n", f"routing:\n  - {rule}\n", 1)
    try:
        check_scheme_files(files)
    except DefinitionsInvalid as exc:
        return [str(e) for e in exc.errors]
    return []


def test_routing_conditions_that_can_never_match_are_refused(ctx):
    errors = _lidu_routing_errors("{id: odd, when: area.road == 'x', assign_to: {unit: town_office}}")
    assert any("area.road" in e and "routing" in e for e in errors), errors


# -- a year's calendar --------------------------------------------------------------------------------------------


@pytest.fixture
def lidu_people(ctx):
    from tests.support.factories import load_demo

    with ctx.test_request_context():
        load_demo()
        yield {"reporter": make_user("reporter", roles=(("lidu", "staff", "shilong"),)),
               "office": make_user("office", roles=(("lidu", "office_admin", None),)),
               "head": make_user("head", roles=(("lidu", "unit_head", "shilong"),)),
               "admin": make_user("root", admin=True)}


def _assigned(people, token: str) -> Case:  # noqa: ANN001
    row = forms.form_version("lidu", "problem_report")
    result = forms.post_form(people["reporter"], "lidu", form_spec(row.data), row, formdata(
        _token=token, category="piled_rubbish", area="shilong_old_street", description="垃圾", photos_before=photo(),
        size_m3="1", urgency="normal"))
    case = workflow.open_case(people["reporter"], "lidu", result)
    case, page = workflow.fire(people["office"], case.id, "assign", case.version,
                               formdata(_token=f"a-{token}", target_unit="shilong"))
    assert page is None
    db.session.commit()
    return case


def _due(case: Case) -> dt.datetime:
    return next(d for d in case.deadlines if d.stopped_at is None).due_at.astimezone(ZONE).replace(tzinfo=None)


def test_2027_deadlines_after_the_year_is_imported(lidu_people, app, time_machine):
    people = lidu_people
    time_machine.move_to(local(dt.date(2026, 12, 31), 10), tick=False)  # Thursday, the day before 元旦
    new_year = _assigned(people, "ny")
    assert _due(new_year) == dt.datetime(2027, 1, 1, 10)  # 2027 unknown: Friday counts, 元旦 or not
    assert next(d for d in new_year.deadlines if d.stopped_at is None).calendar_fallback
    time_machine.move_to(local(dt.date(2027, 2, 4), 10), tick=False)  # Thursday, before the Spring Festival
    festival = _assigned(people, "sf")
    assert _due(festival) == dt.datetime(2027, 2, 5, 10)
    done = _assigned(people, "done")
    stopped_due = next(d for d in done.deadlines if d.stopped_at is None).due_at
    workflow.fire(people["head"], done.id, "rectify", done.version, formdata(
        _token="rect", action_taken="已清理", photos_after=photo(), finished_at="2027-02-04T11:00"))
    db.session.commit()

    # The administrator previews the file, then imports it.
    client = app.test_client()
    login(client, "root")
    page = client.get("/admin/calendar/import").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    preview = client.post("/admin/calendar/import", data={
        "csrf_token": token, "action": "preview", "upload": (io.BytesIO(CALENDAR_2027.read_bytes()), "2027.csv")},
        content_type="multipart/form-data")
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "2027-02-12" in html and "春节" in html
    assert db.session.scalar(db.select(db.func.count(CalendarDay.day))) == 0  # a preview stores nothing
    content = re.search(r'name="content"[^>]*value="([^"]*)"', html).group(1)
    done_import = client.post("/admin/calendar/import", data={
        "csrf_token": token, "action": "import", "content": content, "filename": "2027.csv"})
    assert done_import.status_code == 303, done_import.get_data(as_text=True)[-1500:]
    db.session.expire_all()
    assert db.session.get(CalendarYear, 2027).complete
    assert _due(db.session.get(Case, new_year.id)) == dt.datetime(2027, 1, 4, 10)  # after 元旦
    assert _due(db.session.get(Case, festival.id)) == dt.datetime(2027, 2, 15, 10)  # after 春节
    assert not next(d for d in db.session.get(Case, festival.id).deadlines if d.stopped_at is None).calendar_fallback
    stopped = [d for d in db.session.get(Case, done.id).deadlines if d.stopped_at is not None]
    assert [d.due_at for d in stopped] == [stopped_due]  # a stopped deadline keeps its own
    moved = db.session.scalars(db.select(AuditEntry).filter_by(action="case.deadline_moved")).all()
    assert {int(e.object_id) for e in moved} == {new_year.id, festival.id}
    # A new case across the festival counts on the imported year at once.
    festival_two = _assigned(people, "sf2")
    assert _due(festival_two) == dt.datetime(2027, 2, 15, 10)
    page = client.get("/admin/calendar").get_data(as_text=True)
    assert "尚未收录 2027" not in page


def test_the_cli_imports_a_calendar_and_refuses_a_broken_one(lidu_people, app, tmp_path):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["calendar", "import", str(CALENDAR_2027), "--dry-run"])
    assert result.exit_code == 0 and "2027: 11 holidays, 2 makeup workdays" in result.output
    assert db.session.scalar(db.select(db.func.count(CalendarDay.day))) == 0
    broken = tmp_path / "broken.csv"
    broken.write_text("start,end,kind\n2027-01-01,2027-01-03,放假\n2027-02-30,,放假\n", encoding="utf-8")
    result = runner.invoke(args=["calendar", "import", str(broken)])
    assert result.exit_code == 1 and "row 3" in result.output
    assert db.session.scalar(db.select(db.func.count(CalendarDay.day))) == 0  # nothing half-written
    result = runner.invoke(args=["calendar", "import", str(CALENDAR_2027)])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(db.select(db.func.count(CalendarDay.day))) == 13
    assert "complete" in runner.invoke(args=["calendar", "list"]).output


def test_a_hand_entered_day_leaves_the_year_warning_until_it_is_complete(lidu_people, app):
    client = app.test_client()
    login(client, "root")
    page = client.get("/admin/calendar").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    assert client.post("/admin/calendar", data={"csrf_token": token, "day": "2027-10-01", "name": "国庆节"}
                       ).status_code == 302
    assert "2027" in client.get("/admin/calendar").get_data(as_text=True).split("<section")[0]
    assert client.post("/admin/calendar/year/2027", data={"csrf_token": token, "complete": "y"}).status_code == 303
    assert "2027" not in client.get("/admin/calendar").get_data(as_text=True).split("<section")[0]


# -- periods that are not over -------------------------------------------------------------------------------


def test_a_draft_counts_only_rule_periods_that_have_ended(october, time_machine):  # noqa: F811
    zhiyuan = db.session.scalar(db.select(Unit).filter_by(scheme_key="lidu", key="zhiyuan"))
    nov = dt.date(2026, 11, 1)

    def missed() -> int:
        _period, results = scoring.score_period("lidu", "lidu_monthly", nov)
        return next(r for r in results if r.unit.id == zhiyuan.id).metrics["community_head_missed_weeks"]

    time_machine.move_to(local(dt.date(2026, 11, 5), 10))  # a Thursday: only the week to 1 November is over
    assert missed() == 1
    time_machine.move_to(local(dt.date(2026, 11, 9), 10))  # Monday: the week to Sunday 8 November too
    assert missed() == 2
    time_machine.move_to(local(dt.date(2026, 12, 1), 0, 30))  # the month is over (still 30 November in UTC)
    assert missed() == 5  # the weeks ending 1, 8, 15, 22 and 29 November


def test_daily_rule_periods_still_to_come_are_not_due():
    from server.patrols.engine import Period, Rule, Verdict

    rule = Rule(id="daily", name="daily", at_least=1, per="day", form="patrol_log")
    fifth = dt.date(2026, 10, 5)
    verdicts = [Verdict(rule, Period("day", d, d), {}, 0, 1, 1, 1)
                for d in (dt.date(2026, 10, n) for n in range(1, 32))]
    assert [v.period.start.day for v in verdicts if v.missed(fifth)] == [1, 2, 3, 4]


@pytest.fixture
def office(october):  # noqa: F811
    return make_user("office", roles=(("lidu", "office_admin", None),))


def test_a_period_in_the_future_cannot_be_opened(office):
    later = month_start(TODAY, 1)
    with pytest.raises(Conflict):
        assessment.open_period(office, "lidu", "lidu_monthly", later)


def test_publishing_before_the_end_needs_the_provisional_path(office, app, time_machine):
    time_machine.move_to(local(dt.date(2026, 10, 20), 10))
    period = assessment.open_period(office, "lidu", "lidu_monthly", dt.date(2026, 10, 1))
    with pytest.raises(Conflict) as refused:
        assessment.publish(office, period, period.version, close_appeals=True)
    assert "2026-10-31" in str(refused.value)
    first = assessment.publish(office, period, period.version, close_appeals=True, provisional=True)
    db.session.commit()
    assert first.provisional and period.revision == 1
    # Shown as provisional on the page, the bulletin, its PDF and the API.
    client = app.test_client()
    login(client, "office")
    assert "暂定" in client.get(f"/assess/period/{period.id}").get_data(as_text=True)
    assert "暂定" in client.get(f"/assess/period/{period.id}/bulletin").get_data(as_text=True)
    from pypdf import PdfReader

    bulletin = f"/assess/period/{period.id}/bulletin"
    pdf = job_file(client, f"{bulletin}.pdf", token_from=bulletin)
    assert "暂定" in "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    from server.api.service import create_client

    _client_row, secret = create_client("results-test", office.username)
    db.session.commit()
    answer = client.get(f"/api/v1/assessment/periods/{period.id}/scores",
                        headers={"Authorization": f"Bearer {secret}"}).get_json()
    assert answer["provisional"] is True and answer["period"]["provisional"] is True
    assert "暂定" in client.get("/assess/lidu/").get_data(as_text=True)  # the list of periods says so too
    # After the month, with every hand-entered mark given, the final publication replaces it, with no
    # correction reason asked.
    time_machine.move_to(local(dt.date(2026, 11, 2), 10))
    with pytest.raises(Conflict):  # the month is over, but marks are still missing
        assessment.publish(office, period, period.version)
    for unit, metric in assessment.missing_marks(period):
        assessment.enter_marks(office, period, unit, f"metric:{metric}", {"value": 0})
    assert assessment.unfinished(period) == []
    final = assessment.publish(office, period, period.version)
    db.session.commit()
    assert not final.provisional and period.revision == 2
    answer = client.get(f"/api/v1/assessment/periods/{period.id}/scores",
                        headers={"Authorization": f"Bearer {secret}"}).get_json()
    assert answer["provisional"] is False and answer["revision"] == 2
    assert "暂定" not in client.get(f"/assess/period/{period.id}").get_data(as_text=True)
    with pytest.raises(DomainError):  # a correction of a final publication still says why
        assessment.publish(office, period, period.version)


def test_the_publish_button_asks_before_a_provisional_publication(office, app, time_machine):
    time_machine.move_to(local(dt.date(2026, 10, 20), 10))
    period = assessment.open_period(office, "lidu", "lidu_monthly", dt.date(2026, 10, 1))
    db.session.commit()
    client = app.test_client()
    login(client, "office")
    page = client.get(f"/assess/period/{period.id}").get_data(as_text=True)
    assert "2026-10-31" in page and 'name="provisional"' in page
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    data = {"csrf_token": token, "version": str(period.version), "close_appeals": "y"}
    refused = client.post(f"/assess/period/{period.id}/publish", data=data)
    assert refused.status_code == 409 and "暂定结果" in refused.get_data(as_text=True)  # the message says how
    assert db.session.get(type(period), period.id).revision == 0
    done = client.post(f"/assess/period/{period.id}/publish", data={**data, "provisional": "y"})
    assert "已发布为暂定结果（第1版）" in run_started(client, done).page  # a job: its page says what it did
    db.session.expire_all()
    assert db.session.get(type(period), period.id).revision == 1


def test_an_upheld_appeal_replaces_the_contested_mark(office, time_machine):
    time_machine.move_to(local(dt.date(2026, 11, 2), 10))
    shilong = db.session.scalar(db.select(Unit).filter_by(scheme_key="lidu", key="shilong"))
    assessor = make_user("assessor1", roles=(("lidu", "assessor", None),))
    head = make_user("head", roles=(("lidu", "unit_head", "shilong"),))
    period = assessment.open_period(office, "lidu", "lidu_monthly", dt.date(2026, 10, 1))

    def total() -> Decimal:
        return next(r.total for r in assessment.draft(period) if r.unit.id == shilong.id)

    base = total()
    assessment.enter_marks(assessor, period, shilong, "hotspots", {"below_quality": 2}, "两个案例资料不全")
    assert total() == base - 4
    appeals.open_appeals(office, period, period.version, today=dt.date(2026, 11, 2))
    appeal = appeals.file_appeal(head, period, shilong, "hotspots", "只有一个不全", today=dt.date(2026, 11, 3))
    with pytest.raises(DomainError):  # upheld without the corrected mark: refused, nothing changes
        appeals.decide_appeal(office, appeal, "upheld", "成立")
    assert appeal.decision is None and total() == base - 4
    appeals.decide_appeal(office, appeal, "upheld", "复核只有一个不全", {"below_quality": "1"})
    # The corrected mark replaces the contested one (−2), not averaged with it (−3).
    assert total() == base - 2
    assert appeal.decision == "upheld"


def test_the_appeal_form_goes_when_appeals_close_and_keeps_a_late_text(office, app, time_machine):
    time_machine.move_to(local(dt.date(2026, 11, 2), 10))
    period = assessment.open_period(office, "lidu", "lidu_monthly", dt.date(2026, 10, 1))
    appeals.open_appeals(office, period, period.version)
    db.session.commit()
    make_user("head", roles=(("lidu", "unit_head", "shilong"),))
    shilong = db.session.scalar(db.select(Unit.id).filter_by(scheme_key="lidu", key="shilong"))
    client = app.test_client()
    login(client, "head")
    url = f"/assess/period/{period.id}/appeal/{shilong}"
    page = client.get(url).get_data(as_text=True)
    assert 'name="text"' in page
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    time_machine.move_to(local(period.appeal_until, 23, 50))
    login(client, "head")  # the session of two days ago has expired
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)
    time_machine.move_to(local(period.appeal_until + dt.timedelta(days=1), 0, 30))  # it closed while they typed
    late = client.post(url, data={"csrf_token": token, "item": "hotspots", "text": "迟到的申诉理由"})
    html = late.get_data(as_text=True)
    assert late.status_code == 409 and "迟到的申诉理由" in html and 'name="text"' not in html
    assert 'name="text"' not in client.get(url).get_data(as_text=True)
    assert f"/appeal/{shilong}" not in client.get(f"/assess/period/{period.id}").get_data(as_text=True)
    # A page left open overnight: its form token has expired, nothing is stored, and the text is still shown.
    time_machine.move_to(local(period.appeal_until + dt.timedelta(days=1), 9))  # 9 hours on: the 8-hour token is old
    stale = client.post(url, data={"csrf_token": token, "item": "hotspots", "text": "隔夜的申诉理由<b>"})
    assert stale.status_code == 400 and "隔夜的申诉理由&lt;b&gt;" in stale.get_data(as_text=True)


# -- settings that validate but would do nothing ---------------------------------------------------------------

WORKFLOW = Path(__file__).resolve().parents[2] / "workflow_definitions" / "discover_assign_rectify_close.yaml"
FORMULA = "    working_days: 1 if coalesce(size_m3, 0) < 3 else 3\n"


def _lidu_with_deadline(formula: str) -> dict[str, str]:
    files = dict(scheme_files("lidu"))
    text = WORKFLOW.read_text(encoding="utf-8")
    assert FORMULA in text
    files["lidu/discover_assign_rectify_close.yaml"] = text.replace(FORMULA, f"    working_days: {formula}\n")
    return files


@pytest.mark.parametrize(("formula", "words"), [
    ("1 / 0", "never be computed"), ("-1", "minimum"), ("\"'three'\"", "text"), ("5000", "maximum"),
    ("2 - 3", "negative"), ("2000 + 1", "more than")])
def test_a_deadline_that_can_never_work_is_refused_with_its_path(ctx, formula, words):
    from server.definitions.errors import DefinitionsInvalid
    from server.definitions.service import check_scheme_files

    with pytest.raises(DefinitionsInvalid) as caught:
        check_scheme_files(_lidu_with_deadline(formula))
    problems = [str(e) for e in caught.value.errors]
    line = WORKFLOW.read_text(encoding="utf-8").split(FORMULA)[0].count("\n") + 1  # the formula's own line
    assert any("deadlines[0].working_days" in p and words in p and f"line {line}:" in p for p in problems), problems


def test_a_plain_number_of_working_days_is_accepted(ctx):
    from server.definitions.service import check_scheme_files

    check_scheme_files(_lidu_with_deadline("3"))  # `working_days: 3`, a number, not text


def test_a_deadline_that_fails_on_a_case_says_so_on_the_case(lidu_people, app):
    version, _ = load_scheme(_lidu_with_deadline("10 / coalesce(size_m3, 0)"))  # divides by zero for size 0
    activate_scheme_version(version.id)
    db.session.commit()
    people = lidu_people
    row = forms.form_version("lidu", "problem_report")
    with app.test_request_context():
        result = forms.post_form(people["reporter"], "lidu", form_spec(row.data), row, formdata(
            _token="zero", category="piled_rubbish", area="shilong_old_street", description="垃圾",
            photos_before=photo(), size_m3="0", urgency="normal"))
        case = workflow.open_case(people["reporter"], "lidu", result)
        case, page = workflow.fire(people["office"], case.id, "assign", case.version,
                                   formdata(_token="a-zero", target_unit="shilong"))
        assert page is None
        db.session.commit()
    assert case.state == "assigned" and not [d for d in case.deadlines if d.stopped_at is None]
    client = app.test_client()
    login(client, "office")
    html = client.get(f"/cases/case/{case.id}").get_data(as_text=True)
    assert "division by zero" in html or "除" in html, html[-3000:]
    assert db.session.scalar(db.select(AuditEntry).filter_by(action="case.deadline_error")) is not None


def test_a_metric_naming_a_major_class_counts_its_minor_classes(ctx):
    from server.definitions.service import categories_within
    from tests.support.factories import load_shipped

    load_shipped("chengguan")
    within = categories_within("chengguan", ["event_city_environment"])
    assert "event_city_environment" in within and "event_exposed_rubbish" in within
    assert "event_illegal_structure" in within and "part_roads_traffic" not in within


def test_the_command_line_refuses_a_tier_over_a_kind_the_page_refuses(lidu_people, app):
    result = app.test_cli_runner().invoke(args=["post", "appoint", "lidu", "community_head", "某书记",
                                                "--area", "shilong_old_street_north"])
    assert result.exit_code != 0 and "segment" in result.output + str(result.exception)
    result = app.test_cli_runner().invoke(args=["post", "appoint", "lidu", "community_head", "某书记",
                                                "--area", "shilong_old_street"])
    assert result.exit_code == 0, result.output


def test_routing_to_a_tier_held_over_units_only_is_refused(ctx):
    errors = _lidu_routing_errors("{id: to_leader, assign_to: {tier: main_leader}}")
    assert any("routing[0].assign_to.tier" in e and "held over units" in e for e in errors), errors
    # a tier held over roads and segments can be routed to
    assert _lidu_routing_errors("{id: to_keeper, assign_to: {tier: segment_keeper}}") == []
