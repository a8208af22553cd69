"""Cases through the shipped workflow: report, dispatch, rectify, failed check, rework, close; stale pages,
atomicity and escalation exactly once."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from werkzeug.datastructures import FileStorage, MultiDict

from server.core.errors import Conflict
from server.extensions import db
from server.forms import service as forms
from server.forms.engine import form_spec
from server.forms.models import Submission
from server.workflow import service
from server.workflow.models import Case, CaseDeadline, CaseEvent, EscalationApplied, Notification
from tests.support.factories import load_demo, make_user
from tests.support.images import jpeg


def formdata(**fields) -> MultiDict:  # noqa: ANN003
    data = MultiDict()
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            data.add(key, item)
    return data


def photo(name: str = "p.jpg") -> FileStorage:
    return FileStorage(io.BytesIO(jpeg()), filename=name, content_type="image/jpeg")


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
    data = formdata(_token=f"{transition}-{case.version}-{user.id}", **fields) if fields else None
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
                finished_at="2026-11-20T15:00")
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
    first = service.tick(later)
    second = service.tick(later)
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
