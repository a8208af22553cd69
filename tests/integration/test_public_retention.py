"""Reporters' personal data: kept as long as the scheme says, then erased by `fangan tick`; one reporter's data
exported or erased on request, by their phone or a tracking code. The case itself stays."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from server.audit.models import AuditEntry
from server.core.clock import utcnow
from server.core.errors import PermissionDenied
from server.core.secrets import unseal
from server.definitions.errors import DefinitionsInvalid
from server.definitions.service import activate_scheme_version, check_scheme_files, load_scheme
from server.extensions import db
from server.public.models import PublicReport
from server.public.retention import erase_expired_contacts, erase_reporter, find_reporter
from server.workflow.models import Case
from tests.integration.test_public import _report
from tests.support.factories import demo_files, make_user


def _demo_keeping(days: int | None):
    files = demo_files()
    name = next(k for k in files if k.endswith("scheme.yaml"))
    if days is not None:
        files[name] = files[name].replace("\npublic:\n", f"\npublic:\n  keep_contacts_days: {days}\n", 1)
    version, _ = load_scheme(files)
    activate_scheme_version(version.id)
    db.session.commit()


@pytest.fixture
def district(app):
    app.config["FANGAN_MIN_FILL_SECONDS"] = 0
    with app.app_context():
        _demo_keeping(30)
    yield app
    app.config.pop("FANGAN_MIN_FILL_SECONDS", None)


def _reported(app, client, phone: str, name: str = "张三") -> str:
    response = _report(client, reporter_name=name, reporter_phone=phone)
    assert response.status_code == 303
    return response.headers["Location"].rsplit("/", 1)[1]


def _closed(code: str, days_ago: float) -> None:
    case = db.session.scalar(db.select(PublicReport).filter_by(code=code)).case
    case.state, case.state_kind, case.outcome = "closed", "final", "resolved"
    case.closed_at = utcnow() - dt.timedelta(days=days_ago)
    db.session.commit()


def test_contacts_are_erased_once_the_scheme_says_so(district):
    client = district.test_client()
    old, recent, still_open = (_reported(district, client, phone) for phone in
                               ("13800138001", "13800138002", "13800138003"))
    with district.app_context():
        _closed(old, 31)
        _closed(recent, 29)
        assert erase_expired_contacts() == {"lidu": 1}
        db.session.commit()
        reports = {r.code: r for r in db.session.scalars(db.select(PublicReport))}
        gone = reports[old]
        assert (gone.name_sealed, gone.phone_sealed, gone.phone_masked, gone.address_hash, gone.device_hash) == \
            (None, None, None, None, None)
        assert gone.case.data["description"] == "商户占道堆放货物"  # the case is the district's record
        assert unseal(reports[recent].phone_sealed) == "13800138002"
        assert unseal(reports[still_open].phone_sealed) == "13800138003"
        assert erase_expired_contacts() == {}  # nothing twice
        assert db.session.scalar(db.select(AuditEntry).filter_by(action="public.contacts_expired")) is not None


def test_a_setting_that_would_erase_before_the_follow_up_ends_is_refused(app):
    files = demo_files()
    name = next(k for k in files if k.endswith("scheme.yaml"))
    files[name] = files[name].replace("\npublic:\n", "\npublic:\n  keep_contacts_days: 3\n", 1)
    with app.app_context(), pytest.raises(DefinitionsInvalid, match="keep_contacts_days"):
        check_scheme_files(files)


def test_one_reporter_is_exported_and_erased_on_request(district):
    client = district.test_client()
    first = _reported(district, client, "138-0013-8009")
    second = _reported(district, client, "+86 138 0013 8009", name="张三丰")
    other = _reported(district, client, "13900000000", name="李四")
    with district.app_context():
        office = make_user("office", roles=(("lidu", "office_admin", None),))
        head = make_user("head", roles=(("lidu", "unit_head", "shilong"),))
        with pytest.raises(PermissionDenied):
            find_reporter(head, "lidu", phone="13800138009")
        found = find_reporter(office, "lidu", phone="138 0013 8009")
        assert [r["code"] for r in found.reports] == [first, second]
        assert {r["name"] for r in found.reports} == {"张三", "张三丰"}
        assert find_reporter(office, "lidu", code=other.lower()).reports[0]["phone"] == "13900000000"
        assert erase_reporter(office, "lidu", phone="13800138009") == 2
        db.session.commit()
        assert find_reporter(office, "lidu", phone="13800138009").reports == []  # nothing left to find them by
        by_code = find_reporter(office, "lidu", code=first).reports[0]
        assert by_code["contacts_erased"] and by_code["phone"] is None
        assert unseal(db.session.scalar(db.select(PublicReport).filter_by(code=other)).phone_sealed) == "13900000000"
        assert db.session.scalar(db.select(db.func.count(Case.id))) == 3
    # A tracking code finds its report and every other report left with that report's phone.
    one, two = _reported(district, client, "13700000001"), _reported(district, client, "137 0000 0001")
    with district.app_context():
        office = db.session.scalar(db.select(type(office)).filter_by(username="office"))
        assert erase_reporter(office, "lidu", code=one.lower()) == 2
        db.session.commit()
        assert db.session.scalar(db.select(PublicReport).filter_by(code=two)).phone_sealed is None
        entry = db.session.scalars(db.select(AuditEntry).filter_by(action="public.reporter_erased")).all()[-1]
        assert one not in str(entry.after) and two not in str(entry.after)  # codes are keys: never in the log


def test_the_commands(district):
    client = district.test_client()
    code = _reported(district, client, "13800138077")
    with district.app_context():
        make_user("root", admin=True)
    runner = district.test_cli_runner()
    exported = runner.invoke(args=["reporter", "export", "lidu", "--phone", "13800138077", "--as", "root"])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.output)["reports"][0]["code"] == code
    erased = runner.invoke(args=["reporter", "erase", "lidu", "--code", code, "--as", "root"])
    assert erased.exit_code == 0 and "Erased the contacts of 1 reports" in erased.output


def _request_form(client, **values) -> dict:  # noqa: ANN001, ANN003
    from tests.conftest import csrf_token

    return {"csrf_token": csrf_token(client, "/admin/reporters"), "scheme": "lidu", "phone": "", "code": "", **values}


def test_the_admin_page_finds_downloads_and_erases_a_reporters_data(district):
    from tests.support.factories import login

    public = district.test_client()
    first, second = _reported(district, public, "13900009999", "钱七"), _reported(district, public, "139-0000-9999")
    other = _reported(district, public, "13700007777", "孙八")
    with district.app_context():
        make_user("office", roles=(("lidu", "office_admin", None),))
        make_user("staffer", roles=(("lidu", "staff", "shilong"),))
    office = district.test_client()
    login(office, "office")

    page = office.get("/admin/reporters")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    # Posted, never in a URL: the phone stays out of the access log.
    found = office.post("/admin/reporters", data=_request_form(office, phone="139 0000 9999", action="find"))
    html = found.get_data(as_text=True)
    assert found.status_code == 200 and found.headers["Cache-Control"] == "no-store"
    assert html.count("<tr><td data-label") == 2 and "钱七" in html and "孙八" not in html
    nothing = office.post("/admin/reporters", data=_request_form(office, phone="13100000000", action="find"))
    assert 'data-testid="reporter-none"' in nothing.get_data(as_text=True)
    empty = office.post("/admin/reporters", data=_request_form(office, action="find"))
    assert empty.status_code == 400 and "field-error" in empty.get_data(as_text=True)

    download = office.post("/admin/reporters", data=_request_form(office, code=second.lower(), action="download"))
    assert download.status_code == 200 and download.mimetype == "application/json"
    assert download.headers["Content-Disposition"].startswith("attachment")
    exported = json.loads(download.get_data(as_text=True))
    assert {r["code"] for r in exported["reports"]} == {first, second}

    unconfirmed = office.post("/admin/reporters", data=_request_form(office, phone="13900009999", action="erase"))
    assert unconfirmed.status_code == 400
    with district.app_context():
        assert unseal(db.session.scalar(db.select(PublicReport).filter_by(code=first)).phone_sealed) == "13900009999"
    erased = office.post("/admin/reporters", data=_request_form(office, phone="13900009999", action="erase",
                                                                 confirm="y"))
    assert erased.status_code == 303
    with district.app_context():
        for code in (first, second):
            report = db.session.scalar(db.select(PublicReport).filter_by(code=code))
            assert report.phone_sealed is None and report.name_sealed is None and report.case is not None
        assert db.session.scalar(db.select(PublicReport).filter_by(code=other)).phone_sealed is not None
        actions = [a for (a,) in db.session.execute(db.select(AuditEntry.action).order_by(AuditEntry.id))]
        assert actions.count("public.reporter_erased") == 1 and actions.count("public.reporter_export") >= 3

    # Only the district's managers: staff are refused, and another district is not offered.
    staffer = district.test_client()
    login(staffer, "staffer")
    assert staffer.get("/admin/reporters").status_code == 403
    refused = office.post("/admin/reporters", data=_request_form(office, scheme="chengguan", phone="13700007777",
                                                                 action="erase", confirm="y"))
    assert refused.status_code == 400
    with district.app_context():
        assert db.session.scalar(db.select(PublicReport).filter_by(code=other)).phone_sealed is not None
