"""Cases through the shipped workflow: report, dispatch, rectify, failed check, rework, close; stale pages,
atomicity and escalation exactly once."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest

from server.core.errors import Conflict
from server.definitions.clock import district_zone
from server.extensions import db
from server.forms import service as forms
from server.forms.engine import form_spec
from server.forms.models import Submission
from server.org.models import Unit
from server.workflow import deadlines, escalation, ledger, migration, service
from server.workflow.models import Case, CaseDeadline, CaseEvent, EscalationApplied, Notification
from tests.support.clock import TODAY
from tests.support.factories import formdata, load_demo, make_user, photo, unit_id
from tests.support.jobs import job_file


@pytest.fixture
def people(ctx):
    # Forms are request-bound (CSRF, language): services run inside a request, as they do in the app.
    with ctx.test_request_context():
        yield _people()


def _people() -> dict:
    load_demo()
    return {
        "reporter": make_user("reporter", roles=(("lidu", "staff", "shilong"),)),
        "office": make_user("office", roles=(("lidu", "office_admin", None),)),
        "head": make_user("head", roles=(("lidu", "unit_head", "shilong"),)),
    }


def report(user, size: float = 1.0) -> Case:  # noqa: ANN001
    version = forms.form_version("lidu", "problem_report")
    spec = form_spec(version.data)
    result = forms.post_form(user, "lidu", spec, version, formdata(
        _token=f"report-{size}", category="piled_rubbish", area="shilong_old_street", description="垃圾堆积",
        photos_before=photo(), size_m3=str(size), urgency="normal"))
    assert isinstance(result, Submission), result.errors
    case = service.open_case(user, "lidu", result)
    db.session.commit()
    return case


def fire(user, case: Case, transition: str, **fields):  # noqa: ANN001, ANN003
    data = formdata(_token=f"{transition}-{case.id}-{case.version}-{user.id}", **fields) if fields else None
    result, page = service.fire(user, case.id, transition, case.version, data)
    assert page is None, page.errors if page else None
    db.session.commit()
    return result


def test_walk_with_rework(people):
    case = report(people["reporter"])
    assert case.state == "reported" and case.unit.key == "shilong"
    assert [t.id for t in service.available_actions(people["reporter"], case)] == []
    office_actions = {t.id for t in service.available_actions(people["office"], case)}
    assert {"assign", "reject"} <= office_actions

    case = fire(people["office"], case, "assign", target_unit="shilong", instructions="请一天内清理")
    assert case.state == "assigned" and case.data["handling_unit"] == "shilong"
    running = [d for d in case.deadlines if d.stopped_at is None]
    assert [d.key for d in running] == ["rectify"]

    case = fire(people["head"], case, "rectify", action_taken="已清理", photos_after=photo("after.jpg"),
                finished_at=f"{TODAY}T00:10")
    assert case.state == "rectified" and all(d.stopped_at for d in case.deadlines)

    with pytest.raises(Conflict):  # a "close" with a failed verdict is refused by the guard
        service.fire(people["office"], case.id, "close", case.version,
                     formdata(_token="bad-close", verdict="failed", comment="没清干净"))
    db.session.rollback()

    case = fire(people["office"], case, "rework", verdict="failed", comment="还有残留")
    assert case.state == "assigned" and case.rework_count == 1 and case.data["rework_count"] == 1
    case = fire(people["head"], case, "rectify", action_taken="再次清理", photos_after=photo("again.jpg"),
                finished_at="2026-11-21T10:00")
    case = fire(people["office"], case, "close", verdict="passed")
    assert case.state == "closed" and case.state_kind == "final" and case.closed_at is not None
    assert [e.transition for e in case.events] == [None, "assign", "rectify", "rework", "rectify", "close"]
    assert sum(1 for e in case.events if e.submission_id) == 6  # the report and five forms
    notified = db.session.scalars(db.select(Notification).filter_by(case_id=case.id)).all()
    assert notified


def test_the_unit_a_case_is_handed_to_is_the_one_told(people):
    """A step writes the case once, at its end: what it notifies in between reads where the case goes now."""
    case = report(people["reporter"])
    assert case.unit.key == "shilong"  # routed by its place
    before = set(db.session.scalars(db.select(Notification.id).filter_by(case_id=case.id)))
    case = fire(people["office"], case, "assign", target_unit="zhiyuan")
    told = db.session.scalars(db.select(Notification).where(Notification.case_id == case.id,
                                                            Notification.id.notin_(before))).all()
    assert case.unit_id == unit_id("lidu", "zhiyuan")
    assert {n.unit_id for n in told if n.unit_id} == {unit_id("lidu", "zhiyuan")}


def test_a_time_the_workflow_sets_shows_as_the_district_wall_time(people):
    """`set: {closed_on: now}` stores the district's wall time: the case page shows it as it is, not as UTC."""
    from server.web.i18n import localtime

    case = fire(people["office"], report(people["reporter"]), "assign", target_unit="shilong")
    case = fire(people["head"], case, "rectify", action_taken="已清理", photos_after=photo("after.jpg"),
                finished_at=f"{TODAY}T00:10")
    case = fire(people["office"], case, "close", verdict="passed")
    stored = case.data["closed_on"]  # "2026-11-20T10:00": Beijing's clock when it was closed
    declared = [f for f in case.definition_version.data["fields"] if case.data.get(f["id"]) not in (None, "", [])]
    fields = service.case_details(case)["case_fields"]  # (label, value) of each field with a value, in order
    shown = next(value for (_label, value), f in zip(fields, declared, strict=True) if f["id"] == "closed_on")
    assert localtime(shown, scheme_key="lidu") == stored.replace("T", " ")
    assert localtime(case.closed_at, scheme_key="lidu") == stored.replace("T", " ")  # the same minute


def test_stale_page_is_refused_with_who_and_what(people):
    case = report(people["reporter"])
    stale_version = case.version
    fire(people["office"], case, "assign", target_unit="shilong")
    with pytest.raises(Conflict) as info:
        service.fire(people["office"], case.id, "reject", stale_version)
    assert "Office" in info.value.message


def test_a_failure_midway_leaves_nothing_half_written(people, monkeypatch):
    case = report(people["reporter"])
    before = (case.state, case.version, len(case.events))
    counts = (db.session.scalar(db.select(db.func.count(Submission.id))),
              db.session.scalar(db.select(db.func.count(CaseDeadline.id))))

    def boom(*args, **kwargs):  # noqa: ANN002, ANN003
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "record_audit", boom)
    with pytest.raises(RuntimeError):
        service.fire(people["office"], case.id, "assign", case.version,
                     formdata(_token="midway", target_unit="shilong"))
    db.session.rollback()
    db.session.expire_all()
    case = db.session.get(Case, case.id)
    assert (case.state, case.version, len(case.events)) == before
    assert (db.session.scalar(db.select(db.func.count(Submission.id))),
            db.session.scalar(db.select(db.func.count(CaseDeadline.id)))) == counts


def test_deadline_by_size_and_escalation_exactly_once(people):
    small = fire(people["office"], report(people["reporter"], 1.0), "assign", target_unit="shilong")
    big = fire(people["office"], report(people["reporter"], 5.0), "assign", target_unit="shilong")
    small_due = next(d for d in small.deadlines if d.stopped_at is None)
    big_due = next(d for d in big.deadlines if d.stopped_at is None)
    assert big_due.due_at > small_due.due_at
    assert big_due.due_at - big_due.started_at <= dt.timedelta(days=7)
    later = big_due.due_at + dt.timedelta(hours=1)
    first = escalation.tick(later)
    second = escalation.tick(later)
    db.session.commit()
    assert first["applied"] >= 2 and second["applied"] == 0
    db.session.expire_all()
    assert db.session.get(Case, big.id).overdue and db.session.get(Case, small.id).overdue
    assert db.session.scalar(db.select(db.func.count(EscalationApplied.id))) == first["applied"]
    assert db.session.scalar(db.select(CaseEvent).filter_by(case_id=big.id, kind="escalation")) is not None


def test_pages(people, app):
    from tests.support.factories import login

    case = report(people["reporter"])
    client = app.test_client()
    login(client, "office")
    assert f"#{case.id}" in client.get("/cases/lidu/?box=unit").get_data(as_text=True)
    page = client.get(f"/cases/case/{case.id}").get_data(as_text=True)
    assert "交办" in page and "垃圾堆积" in page
    form = client.get(f"/cases/case/{case.id}/do/assign").get_data(as_text=True)
    assert 'name="target_unit"' in form and f'name="case_version" value="{case.version}"' in form
    outsider = make_user("outsider", roles=(("lidu", "unit_head", "zhiyuan"),))
    other = app.test_client()
    login(other, outsider.username)
    assert other.get(f"/cases/case/{case.id}").status_code == 403


def test_stale_post_is_refused_with_a_message(people, app):
    from tests.conftest import csrf_token
    from tests.support.factories import login

    case = report(people["reporter"])
    old = case.version
    fire(people["office"], case, "assign", target_unit="shilong")
    client = app.test_client()
    login(client, "office")
    token = csrf_token(client, f"/cases/case/{case.id}")
    response = client.post(f"/cases/case/{case.id}/do/reject", data={"csrf_token": token, "case_version": old})
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "您查看期间案件已有变化" in page and "Office" in page
    assert db.session.get(Case, case.id).state == "assigned"


def _assigned_at(people, local: dt.datetime, size: float) -> Case:  # noqa: ANN001
    """A case whose rectification clock started at a given China-time moment."""
    from zoneinfo import ZoneInfo

    case = report(people["reporter"], size)
    case = fire(people["office"], case, "assign", target_unit="shilong")
    deadline = next(d for d in case.deadlines if d.stopped_at is None)
    db.session.delete(deadline)
    case.deadlines.remove(deadline)
    start = local.replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    deadlines.start_deadline(case, service.workflow_of(case), "rectify", start, service.case_names(case))
    db.session.commit()
    return case


def _due_local(case: Case) -> dt.datetime:
    from zoneinfo import ZoneInfo

    deadline = next(d for d in case.deadlines if d.stopped_at is None)
    return deadline.due_at.astimezone(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)


def test_deadlines_across_national_day_2026_and_its_makeup_saturday(people):
    # Wed 30 Sep 2026 10:00: the holiday runs 1–7 Oct; Sat 10 Oct is a makeup workday.
    small = _assigned_at(people, dt.datetime(2026, 9, 30, 10, 0), 1.0)
    assert _due_local(small) == dt.datetime(2026, 10, 8, 10, 0)
    big = _assigned_at(people, dt.datetime(2026, 9, 30, 10, 0), 5.0)
    assert _due_local(big) == dt.datetime(2026, 10, 10, 10, 0)  # three working days: the makeup Saturday counts
    assert not any(d.calendar_fallback for d in big.deadlines)


def test_a_year_the_calendar_does_not_know_falls_back_and_warns(people, app):
    from tests.support.factories import login

    case = _assigned_at(people, dt.datetime(2026, 12, 31, 16, 0), 5.0)
    deadline = next(d for d in case.deadlines if d.stopped_at is None)
    assert deadline.calendar_fallback  # 2027 is unknown: Monday to Friday were counted
    assert _due_local(case) == dt.datetime(2027, 1, 5, 16, 0)  # Fri 1 Jan counts as a working day
    client = app.test_client()
    login(client, "office")
    assert "工作日历未收录" in client.get(f"/cases/case/{case.id}").get_data(as_text=True)


def test_administrator_holidays_override_the_calendar(people, app):
    from tests.conftest import csrf_token
    from tests.support.factories import login

    make_user("root", admin=True)
    client = app.test_client()
    login(client, "root")
    token = csrf_token(client, "/admin/calendar")
    for day in ("2027-01-01", "2027-01-04"):
        response = client.post("/admin/calendar", data={"csrf_token": token, "day": day, "name": "元旦"})
        assert response.status_code == 302
    page = client.get("/admin/calendar").get_data(as_text=True)
    assert "2027-01-04" in page and "元旦" in page
    case = _assigned_at(people, dt.datetime(2026, 12, 31, 16, 0), 5.0)
    assert _due_local(case) == dt.datetime(2027, 1, 7, 16, 0)  # 1 and 4 Jan are holidays now
    assert any(d.calendar_fallback for d in case.deadlines)  # two rows do not make 2027 known…
    assert client.post("/admin/calendar/year/2027", data={"csrf_token": token, "complete": "y"}).status_code == 303
    db.session.expire_all()
    case = _assigned_at(people, dt.datetime(2026, 12, 31, 16, 0), 5.5)
    assert _due_local(case) == dt.datetime(2027, 1, 7, 16, 0)
    assert not any(d.calendar_fallback for d in case.deadlines)  # …until the year is marked complete


def test_the_ledger_is_paged_and_found_by_name(people, app, monkeypatch):
    """A city's ledger has thousands of units: a page at a time, and a unit found by its name."""
    from server.web.i18n import tr
    from server.workflow import views
    from tests.support.factories import login

    fire(people["office"], report(people["reporter"]), "assign", target_unit="shilong")
    fire(people["office"], report(people["reporter"]), "assign", target_unit="zhiyuan")
    db.session.commit()
    names = sorted(tr(r["unit"].name) for r in ledger.case_metrics(people["office"], "lidu", TODAY.replace(day=1),
                                                                     TODAY + dt.timedelta(days=1)))
    assert len(names) == 2
    monkeypatch.setattr(views, "LEDGER_ROWS", 1)
    client = app.test_client()
    login(client, "office")
    first = client.get("/cases/lidu/ledger").get_data(as_text=True)
    second = client.get("/cases/lidu/ledger?page=2").get_data(as_text=True)
    assert 'rel="next"' in first and 'rel="prev"' not in first and 'rel="prev"' in second
    assert sum(name in first for name in names) == 1 and sum(name in second for name in names) == 1
    assert {n for n in names if n in first} != {n for n in names if n in second}
    found = client.get(f"/cases/lidu/ledger?q={names[1][1:]}").get_data(as_text=True)
    assert names[1] in found and names[0] not in found


def test_ledger_rates_in_sql(people, app):

    from openpyxl import load_workbook

    from tests.support.factories import login

    done = fire(people["office"], report(people["reporter"], 1.0), "assign", target_unit="shilong")
    done = fire(people["head"], done, "rectify", action_taken="ok", photos_after=photo(),
                finished_at=f"{TODAY}T00:10")
    fire(people["office"], done, "close", verdict="passed")
    late = fire(people["office"], report(people["reporter"], 2.0), "assign", target_unit="shilong")
    escalation.tick(next(d for d in late.deadlines if d.stopped_at is None).due_at + dt.timedelta(hours=1))
    late = fire(people["head"], late, "rectify", action_taken="late", photos_after=photo(),
                finished_at=f"{TODAY}T00:10")
    fire(people["office"], late, "close", verdict="passed")
    report(people["reporter"], 3.0)  # still open
    db.session.commit()
    today = TODAY
    (row,) = ledger.case_metrics(people["office"], "lidu", today.replace(day=1), today + dt.timedelta(days=1))
    assert row["unit"].key == "shilong"
    assert (row["found"], row["rectified"], row["on_time"], row["closed"]) == (3, 2, 1, 2)
    assert row["rectification_rate"] == 2 / 3 and row["on_time_rate"] == 0.5 and row["reopened"] == 0
    (by_area,) = ledger.case_metrics(people["office"], "lidu", today.replace(day=1), today + dt.timedelta(days=1),
                                      by="area")
    assert by_area["unit"].key == "shilong_old_street" and by_area["found"] == 3
    client = app.test_client()
    login(client, "office")
    page = client.get("/cases/lidu/ledger").get_data(as_text=True)
    assert "66.7%" in page and "50.0%" in page
    # The exports are jobs, started from the ledger's page: the ledger as shown, its file on the job's page.
    exported = job_file(client, "/cases/lidu/ledger/export", {"format": "xlsx"}, token_from="/cases/lidu/ledger")
    sheet = load_workbook(io.BytesIO(exported)).active
    assert sheet.cell(2, 2).value == 3
    from pypdf import PdfReader

    from tests.unit.test_pdf import embedded_fonts

    pdf = job_file(client, "/cases/lidu/ledger/export", {"format": "pdf"}, token_from="/cases/lidu/ledger")
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "整改率" in text and "石龙社区" in text and "66.7%" in text
    assert any("WenQuanYi" in font or "CJK" in font for font in embedded_fonts(pdf))


def test_open_cases_by_area(people, app):
    from tests.support.factories import login

    report(people["reporter"])
    report(people["reporter"], 2.0)
    rows = ledger.open_cases_by_area(people["office"], "lidu")
    assert [(r["area"].key, r["open"]) for r in rows] == [("shilong_old_street", 2)]
    client = app.test_client()
    login(client, "office")
    page = client.get("/cases/lidu/areas").get_data(as_text=True)
    assert "石龙老街" in page


def test_an_approved_extension_moves_the_deadline_and_counts(people):
    case = fire(people["office"], report(people["reporter"]), "assign", target_unit="shilong")
    due = next(d for d in case.deadlines if d.stopped_at is None).due_at
    case = fire(people["head"], case, "request_extension", extra_days="2", reason="清运车辆不足")
    assert case.data["extension_days"] == 2
    case = fire(people["office"], case, "approve_extension")
    moved = next(d for d in case.deadlines if d.stopped_at is None).due_at
    from server.calendar.service import calendar_for

    hours = calendar_for("lidu").working_hours_between(
        deadlines.local_time(due, district_zone("lidu")), deadlines.local_time(moved, district_zone("lidu")))
    assert hours == pytest.approx(2 * 8.5)
    assert case.extension_count == 1
    today = TODAY
    (row,) = ledger.case_metrics(people["office"], "lidu", today - dt.timedelta(days=1), today + dt.timedelta(days=1))
    assert row["extended"] == 1 and row["extension_rate"] == 1.0


def test_shipped_category_list_extends_the_scheme_and_feeds_deadlines(people):
    from server.definitions.service import scheme_categories
    from server.forms.service import choice_source
    from server.workflow import engine

    ids = [c["id"] for c in scheme_categories("lidu")]
    assert "event_city_environment" in ids and "environment" in ids  # the list's and Lidu's own
    spec = form_spec(forms.form_version("lidu", "problem_report").data)
    values = [v for v, *_label in choice_source(people["reporter"], "lidu")(spec.by_id["category"], {})]
    assert "part_street_lamp" in values and "piled_rubbish" in values  # the list's and Lidu's own
    # Lidu's own stand for the list's: 积存垃圾 replaces 积存垃圾渣土, and 暴露垃圾 has the very same name.
    assert "event_piled_rubbish" not in values and "event_exposed_rubbish" not in values
    assert "event_dirty_road" in values and "event_city_environment" in values  # the rest of that group stays
    case = report(people["reporter"])
    case.category = "part_street_lamp"
    names = service.case_names(case)
    assert names["category_working_days"] == 3 and names["category_class"] == "part"
    deadline = engine.DeadlineSpec("d", "d", working_days=engine.compile_expression(
        "coalesce(category_working_days, 1)"))
    assert engine.deadline_amount(deadline, names) == ("days", 3.0)


def test_open_cases_keep_their_version_until_migrated(people):
    from pathlib import Path

    from server.definitions.service import activate_scheme_version, load_scheme
    from tests.support.factories import ROOT, demo_files

    old = report(people["reporter"])
    old = fire(people["office"], old, "assign", target_unit="shilong")
    old = fire(people["head"], old, "rectify", action_taken="ok", photos_after=photo(), finished_at=f"{TODAY}T00:10")
    assert old.state == "rectified"
    files = dict(demo_files())
    text = (Path(ROOT) / "workflow_definitions" / "discover_assign_rectify_close.yaml").read_text("utf-8")
    files["lidu/workflow.yaml"] = text.replace("id: rectified", "id: to_verify").replace(
        "from: rectified", "from: to_verify").replace("to: rectified", "to: to_verify")
    version, _ = load_scheme(files)
    activate_scheme_version(version.id)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Case, old.id).state == "rectified"  # still on the version it was opened under
    target, rows = migration.migration_preview("lidu", "discover_assign_rectify_close")
    assert [(r["case"].id, r["old"], r["new"]) for r in rows] == [(old.id, "rectified", None)]
    with pytest.raises(Conflict):
        migration.migrate_cases(people["office"], "lidu", "discover_assign_rectify_close")
    db.session.rollback()
    moved = migration.migrate_cases(people["office"], "lidu", "discover_assign_rectify_close",
                                  {"rectified": "to_verify"})
    db.session.commit()
    case = db.session.get(Case, old.id)
    assert moved == 1 and case.state == "to_verify" and case.definition_version_id == target.id
    # The new version's escalations: the next tick looks at each running deadline anew.
    assert all(d.check_at == d.started_at for d in case.deadlines if d.stopped_at is None)
    assert "close" in [t.id for t in service.available_actions(people["office"], case)]
    assert case.events[-1].kind == "migrated"


def test_the_tier_above_the_assignee_may_decide_an_extension(people):
    from server.org.models import Area, Post
    from tests.support.factories import make_user

    area = db.session.scalar(db.select(Area).filter_by(key="shilong_old_street"))
    keeper = make_user("keeper")
    boss = make_user("boss")
    today = TODAY - dt.timedelta(days=1)
    db.session.add(Post(scheme_key="lidu", tier_key="segment_keeper", user=keeper, holder_name="K", area=area,
                        started_on=today))
    db.session.add(Post(scheme_key="lidu", tier_key="community_head", user=boss, holder_name="B", area=area,
                        started_on=today))
    db.session.commit()
    case = fire(people["office"], report(people["reporter"]), "assign", target_unit="shilong")
    case.assignee = keeper
    db.session.commit()
    relations = service.actor_for(boss, case).relations
    assert "tier_above_assignee" in relations
    assert "tier_above_assignee" not in service.actor_for(keeper, case).relations


def test_an_extended_deadline_escalates_again_when_it_is_missed(people):
    case = fire(people["office"], report(people["reporter"]), "assign", target_unit="shilong")
    first = next(d for d in case.deadlines if d.stopped_at is None)
    late = first.due_at + dt.timedelta(hours=1)
    assert escalation.tick(late)["applied"] >= 1
    db.session.commit()
    assert db.session.get(Case, case.id).overdue
    case = fire(people["head"], db.session.get(Case, case.id), "request_extension", extra_days="2", reason="车辆不足")
    case = fire(people["office"], case, "approve_extension")
    assert not case.overdue
    extended = next(d for d in case.deadlines if d.stopped_at is None)
    assert extended.id != first.id and extended.due_at > first.due_at
    assert first.met is False  # it had been missed before the extension: that stays on record
    assert escalation.tick(first.due_at + dt.timedelta(hours=2))["applied"] == 0  # not due again yet
    again = escalation.tick(extended.due_at + dt.timedelta(hours=1))
    db.session.commit()
    assert again["applied"] == 1  # the overdue escalation, once, for the extended deadline
    assert escalation.tick(extended.due_at + dt.timedelta(hours=2))["applied"] == 0
    db.session.expire_all()
    assert db.session.get(Case, case.id).overdue
    applied = db.session.scalars(db.select(EscalationApplied.deadline_id).filter_by(escalation="rectify_overdue"))
    assert sorted(applied) == sorted([first.id, extended.id])


def test_a_rejected_case_changes_no_rate(people):
    done = fire(people["office"], report(people["reporter"], 1.0), "assign", target_unit="shilong")
    done = fire(people["head"], done, "rectify", action_taken="ok", photos_after=photo(), finished_at=f"{TODAY}T00:10")
    fire(people["office"], done, "close", verdict="passed")
    report(people["reporter"], 2.0)  # still open
    span = (TODAY - dt.timedelta(days=1), TODAY + dt.timedelta(days=1))
    (before,) = ledger.case_metrics(people["office"], "lidu", *span)
    duplicate = fire(people["office"], report(people["reporter"], 3.0), "reject", reason="重复上报")
    assert duplicate.state_kind == "final" and duplicate.outcome == "rejected"
    (after,) = ledger.case_metrics(people["office"], "lidu", *span)
    keys = ("found", "rectified", "on_time", "closed", "rectification_rate", "on_time_rate", "closure_rate",
            "rework_rate", "extension_rate")
    assert {k: after[k] for k in keys} == {k: before[k] for k in keys}
    assert (after["found"], after["closed"], after["closure_rate"]) == (2, 1, 0.5)


def test_the_rework_rate_on_the_ledger_and_its_exports(people, app):
    from openpyxl import load_workbook

    from tests.support.factories import login

    case = fire(people["office"], report(people["reporter"], 1.0), "assign", target_unit="shilong")
    case = fire(people["head"], case, "rectify", action_taken="ok", photos_after=photo(), finished_at=f"{TODAY}T00:10")
    case = fire(people["office"], case, "rework", verdict="failed", comment="还有残留")
    report(people["reporter"], 2.0)
    (row,) = ledger.case_metrics(people["office"], "lidu", TODAY - dt.timedelta(days=1), TODAY + dt.timedelta(days=1))
    assert (row["reworked_cases"], row["rework_rate"]) == (1, 0.5)
    client = app.test_client()
    login(client, "office")
    span = f"start={TODAY - dt.timedelta(days=1)}&end={TODAY + dt.timedelta(days=1)}"
    page = client.get(f"/cases/lidu/ledger?{span}").get_data(as_text=True)
    assert "返工率" in page and "50.0%" in page
    form = {"start": str(TODAY - dt.timedelta(days=1)), "end": str(TODAY + dt.timedelta(days=1)), "format": "xlsx"}
    sheet = load_workbook(io.BytesIO(job_file(client, "/cases/lidu/ledger/export", form,
                                              token_from=f"/cases/lidu/ledger?{span}"))).active
    header = [c.value for c in sheet[1]]
    assert sheet.cell(2, header.index("返工率") + 1).value == 0.5


def test_whoever_rectified_does_not_verify(people):
    """Four eyes (the shipped workflows' `not_by`): a dispatcher who rectified a case himself may not close or
    send it back; another dispatcher may."""
    from server.core.errors import PermissionDenied

    both = make_user("both", roles=(("lidu", "office_admin", None), ("lidu", "unit_head", "shilong")))
    case = fire(people["office"], report(people["reporter"]), "assign", target_unit="shilong")
    case = fire(both, case, "rectify", action_taken="已清理", photos_after=photo("after.jpg"),
                finished_at=f"{TODAY}T00:10")
    assert {t.id for t in service.available_actions(both, case)} & {"close", "rework"} == set()
    assert {"close", "rework"} <= {t.id for t in service.available_actions(people["office"], case)}
    with pytest.raises(PermissionDenied):
        service.fire(both, case.id, "close", case.version, formdata(_token="self-close", verdict="passed"))
    db.session.rollback()
    assert fire(people["office"], case, "close", verdict="passed").state == "closed"


def test_a_step_that_moves_the_case_records_where_it_went(people):
    case = report(people["reporter"])
    assert case.unit.key == "shilong"
    case = fire(people["office"], case, "assign", target_unit="zhiyuan", instructions="转智远社区")
    moved = case.events[-1]
    assert case.unit.key == "zhiyuan"
    assert (moved.from_unit_id, moved.to_unit_id) == (unit_id("lidu", "shilong"), unit_id("lidu", "zhiyuan"))
    assert all(e.from_unit_id is None for e in case.events[:-1])  # the steps before it left it where it was


def test_a_step_that_passes_the_case_beyond_reach_lands_on_the_inbox_with_a_message(people, app, monkeypatch):
    """After his own step moved the case out of his reach (up to the street, to another unit), the handler is
    told where it went on his inbox, not answered with a 403 by the case page."""
    from tests.conftest import csrf_token
    from tests.support.factories import login

    case = fire(people["office"], report(people["reporter"]), "assign", target_unit="shilong", instructions="请处理")
    real_fire = service.fire

    def passing_on(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        item, page = real_fire(*args, **kwargs)
        # As a step that hands the case to another unit would (assign: {tier_above: true}, a dispatcher's
        # field): the case and its place leave Shilong.
        item.unit = db.session.scalar(db.select(Unit).filter_by(scheme_key="lidu", key="zhiyuan"))
        item.area = None
        return item, page

    monkeypatch.setattr(service, "fire", passing_on)
    client = app.test_client()
    login(client, "head")
    token = csrf_token(client, f"/cases/case/{case.id}")
    response = client.post(f"/cases/case/{case.id}/do/send_back", data={"csrf_token": token,
                                                                        "case_version": case.version,
                                                                        "reason": "不属本单位职责"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/cases/lidu/")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"#{case.id}" in page and "致远社区" in page
    assert client.get(f"/cases/case/{case.id}").status_code == 403  # indeed out of reach now


def test_the_assignee_reads_the_dispatchers_instructions(people, app):
    """The 交办 record is part of the case: whoever may see the case reads it (it answered 403 before);
    someone who may not see the case still may not."""
    from tests.support.factories import login

    case = fire(people["office"], report(people["reporter"]), "assign", target_unit="shilong",
                instructions="今天下班前清理完毕")
    dispatch = next(e.submission_id for e in case.events if e.transition == "assign")
    head = app.test_client()
    login(head, "head")
    page = head.get(f"/f/records/{dispatch}")
    assert page.status_code == 200 and "今天下班前清理完毕" in page.get_data(as_text=True)
    outsider = make_user("far_away", roles=(("lidu", "unit_head", "zhiyuan"),))
    other = app.test_client()
    login(other, outsider.username)
    assert other.get(f"/f/records/{dispatch}").status_code == 403


def test_the_case_page_has_what_the_handler_needs(people, app):
    """Category, place and urgency by name, the description, the position with a navigation link, the
    dispatcher's instructions and the unit it was handed to, the deadline: all on the case page."""
    from tests.support.factories import login

    version = forms.form_version("lidu", "problem_report")
    result = forms.post_form(people["reporter"], "lidu", form_spec(version.data), version, formdata(
        _token="where", category="piled_rubbish", area="shilong_old_street", description="北口垃圾堆积",
        photos_before=photo(), size_m3="1", urgency="normal", **{"location-lat": "29.68", "location-lng": "107.21",
                                                                  "location-accuracy": "12"}))
    assert isinstance(result, Submission), result.errors
    case = service.open_case(people["reporter"], "lidu", result)
    db.session.commit()
    case = fire(people["office"], case, "assign", target_unit="shilong", instructions="下班前清理完毕")
    head = app.test_client()
    login(head, "head")
    page = head.get(f"/cases/case/{case.id}").get_data(as_text=True)
    assert "积存垃圾" in page and "石龙老街" in page and "北口垃圾堆积" in page
    assert 'href="geo:29.68,107.21' in page
    assert "下班前清理完毕" in page and "石龙社区" in page  # the instructions and the unit handed to
    shown = re.sub(r'data-map="[^"]*"', "", page.split("<main", 1)[1])  # (its map's data names places by key)
    assert "shilong_old_street" not in shown and ">piled_rubbish<" not in page


def test_the_handling_shows_times_as_people_read_them(people, app):
    from tests.support.factories import login

    case = fire(people["office"], report(people["reporter"]), "assign", target_unit="shilong")
    case = fire(people["head"], case, "rectify", action_taken="ok", photos_after=photo(), finished_at=f"{TODAY}T00:10")
    case = fire(people["office"], case, "close", verdict="passed")
    assert case.data.get("closed_on")
    client = app.test_client()
    login(client, "office")
    page = client.get(f"/cases/case/{case.id}").get_data(as_text=True)
    handling = page.split("办理情况", 1)[1].split("</section>", 1)[0]
    assert "销号时间" in handling and "+00:00" not in handling and "T" not in handling.split("<dd>")[-1][:20]


def _form_of(page: str, form_id: str = "fangan-form") -> str:
    start = page.index(f'id="{form_id}"')
    return page[page.rindex("<form", 0, start):page.index("</form>", start)]


def test_the_dispatcher_assigns_from_the_case_page(people, app):
    """The first step with a form is on the case page itself: read the report, pick the unit, write the
    instructions, send — one page. Rejecting is a step of its own that asks first."""
    import re

    from tests.support.factories import login

    case = report(people["reporter"])
    db.session.commit()
    client = app.test_client()
    login(client, "office")
    page = client.get(f"/cases/case/{case.id}").get_data(as_text=True)
    form = _form_of(page)
    assert f'action="/cases/case/{case.id}/do/assign"' in form and 'name="target_unit"' in form
    assert 'name="instructions"' in form and "data-confirm" not in form  # assigning asks nothing more
    assert 'href="#step-form"' in page  # the button at the top leads down to it
    reject = re.search(rf'<a class="button" href="/cases/case/{case.id}/do/reject">', page)
    assert reject, "不予交办 is a link to its own page, not the primary button"
    token = re.search(r'name="_token" value="([^"]+)"', form).group(1)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    sent = client.post(f"/cases/case/{case.id}/do/assign", data={
        "csrf_token": csrf, "_token": token, "case_version": str(case.version), "_action": "submit",
        "target_unit": "shilong", "instructions": "下班前清理完毕"})
    assert sent.status_code == 303 and sent.headers["Location"].endswith(f"/cases/case/{case.id}")
    db.session.expire_all()
    assert db.session.get(Case, case.id).state == "assigned"
    refused = client.get(f"/cases/case/{report(people['reporter']).id}/do/reject").get_data(as_text=True)
    assert "data-confirm=" in refused and "不予交办" in refused  # it ends the case: asked before it is sent


def test_the_handler_rectifies_from_the_case_page(people, app):
    from tests.support.factories import login

    case = fire(people["office"], report(people["reporter"]), "assign", target_unit="shilong")
    db.session.commit()
    head = app.test_client()
    login(head, "head")
    page = head.get(f"/cases/case/{case.id}").get_data(as_text=True)
    form = _form_of(page)
    assert '/do/rectify"' in form and 'name="photos_after"' in form and 'name="action_taken"' in form
    assert "fangan.js" in page  # photos, places and live rules work as on any form
    send_back = service.step_confirmation(case, service.workflow_of(case).transition("send_back"))
    assert send_back and "退回" in send_back and f"#{case.id}" in send_back  # handing it back asks first
    assert service.step_confirmation(case, service.workflow_of(case).transition("rectify")) is None


def test_a_calendar_change_moves_only_the_deadlines_whose_days_changed_and_keeps_their_cap(people, monkeypatch):
    """A holiday entered far away moves no deadline (not even one capped by max_calendar_days, whose working
    time would look different); holidays inside its span move it later, but never past its cap."""
    import dataclasses

    from server.calendar.service import set_calendar_day
    from server.workflow import engine

    real = engine.workflow_spec

    def capped(definition: dict, digest: str | None = None) -> engine.WorkflowSpec:  # rectify, capped at a week
        spec = real(definition, digest)
        return dataclasses.replace(spec, deadlines={k: dataclasses.replace(d, max_calendar_days=7)
                                                    for k, d in spec.deadlines.items()})

    monkeypatch.setattr(engine, "workflow_spec", capped)

    admin = make_user("root", admin=True)
    big = fire(people["office"], report(people["reporter"], 5.0), "assign", target_unit="shilong")
    deadline = next(d for d in big.deadlines if d.stopped_at is None)
    started, due = deadline.started_at, deadline.due_at
    far = (due + dt.timedelta(days=60)).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    set_calendar_day(admin, far, working=False, name="远处的假日")
    db.session.commit()
    db.session.refresh(deadline)
    assert deadline.due_at == due  # nothing between its start and its due time changed
    local_start = started.astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    for n in range(1, 6):  # five days of its span become holidays
        set_calendar_day(admin, local_start + dt.timedelta(days=n), working=False, name="临时假日")
    db.session.commit()
    db.session.refresh(deadline)
    assert due < deadline.due_at <= started + dt.timedelta(days=7)  # later, within its seven calendar days
