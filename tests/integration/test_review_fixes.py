"""Regressions from the security review: tokens, kept uploads, redirects, case photos, bad input, calendar."""

from __future__ import annotations

import io

import pytest

from server.extensions import db
from server.workflow.models import Case
from tests.conftest import csrf_token
from tests.integration.test_cases import _people, fire, formdata, photo, report
from tests.support.factories import login
from tests.support.images import jpeg


@pytest.fixture
def people(ctx):
    with ctx.test_request_context():
        yield _people()


def test_a_token_cannot_carry_one_case_s_form_to_another(people, app):
    from server.core.errors import Conflict
    from server.workflow import service

    one = fire(people["office"], report(people["reporter"], 1.0), "assign", target_unit="shilong")
    two = fire(people["office"], report(people["reporter"], 2.0), "assign", target_unit="shilong")
    service.fire(people["head"], one.id, "rectify", one.version, formdata(
        _token="RECT", action_taken="ok", photos_after=photo(), finished_at="2026-11-20T15:00"))
    db.session.commit()
    with pytest.raises(Conflict):
        service.fire(people["head"], two.id, "rectify", two.version, formdata(_token="RECT"))
    db.session.rollback()
    assert db.session.get(Case, two.id).state == "assigned"


def test_a_token_of_another_form_is_refused(people, app):
    from server.core.errors import Conflict
    from server.forms import service as forms
    from server.forms.engine import form_spec

    report(people["reporter"])  # made with token "report-1.0"
    version = forms.form_version("lidu", "evidence")
    with pytest.raises(Conflict):
        forms.post_form(people["reporter"], "lidu", form_spec(version.data), version, formdata(_token="report-1.0"))


def test_a_kept_upload_stays_in_its_own_field(ctx, client):
    from server.forms.models import Submission
    from tests.support.factories import load_demo, make_user

    load_demo()
    make_user("chief", roles=(("lidu", "unit_head", "shilong"),))
    login(client, "chief")
    token = csrf_token(client, "/f/lidu/patrol_log/new")
    data = {"csrf_token": token, "_token": "SHARED", "area": "shilong_old_street", "has_problems": "yes",
            "problems-0-problem_description": "", "problems-0-problem_photos": (io.BytesIO(jpeg()), "p.jpg"),
            "_action": "submit"}
    assert client.post("/f/lidu/patrol_log/new", data=data, content_type="multipart/form-data").status_code == 400
    from server.forms.models import Upload

    upload_id = db.session.scalar(db.select(Upload.id))
    again = {"csrf_token": token, "_token": "SHARED", "area": "shilong_old_street", "started_at": "2026-11-20T09:00",
             "participants": "2", "has_problems": "no", "photos": str(upload_id), "_action": "submit"}
    response = client.post("/f/lidu/patrol_log/new", data=again)
    assert response.status_code == 400  # "photos" is required, and the other field's photo does not count
    assert db.session.scalar(db.select(db.func.count(Submission.id))) == 0


@pytest.mark.parametrize("target", ["/\t/evil.example", "/%09/evil.example", "/\n/x", "https://evil.example",
                                    "//evil.example", "/\\evil.example"])
def test_no_open_redirect(ctx, client, target):
    from tests.support.factories import PASSWORD, make_user

    make_user("redirected")
    token = csrf_token(client)
    response = client.post(f"/login?next={target}", data={"username": "redirected", "password": PASSWORD,
                                                          "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_handlers_see_the_report_photos_of_their_case(people, app):
    case = report(people["reporter"])
    upload = case.submission.uploads[0]
    client = app.test_client()
    login(client, "head")
    assert client.get(f"/f/uploads/{upload.id}/thumb").status_code == 200


@pytest.mark.parametrize("url", ["/f/records/99999999999999999999999", "/cases/case/99999999999999999999",
                                 "/org/units/99999999999999999999", "/f/lidu/patrol_log/records?area=%C2%B2",
                                 "/f/lidu/patrol_log/records?user=99999999999999999999999",
                                 "/cases/lidu/ledger?end=9999-12-31&start=0001-01-01",
                                 "/f/lidu/patrol_log/records?start=0001-01-01"])
def test_absurd_input_is_never_a_server_error(people, app, url):
    client = app.test_client()
    login(client, "office")
    assert client.get(url).status_code in (200, 404)


def test_only_system_administrators_edit_the_calendar(people, app):
    client = app.test_client()
    login(client, "office")  # manages the Lidu scheme, but the calendar serves every district
    assert client.get("/admin/calendar").status_code == 403
