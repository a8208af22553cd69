"""Long work off the request (#18): the organisation's export and import, the ledger's files, a bulletin's PDF and
a period's publication are jobs. Each is started from the page that offers it (a POST with its CSRF token, refused
at once to whoever may not do what it stands for), followed on its job's page as it reports its progress, and ends
with its file read back, or what it did, or every problem it found with nothing changed."""

from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest
from pypdf import PdfReader

from server.assessment import service as assessment
from server.assessment.models import AssessmentPeriod, AssessmentRevision
from server.audit.models import AuditEntry
from server.extensions import db
from server.jobs.models import Job
from server.jobs.service import jobs_folder
from server.org.models import Area, Unit
from server.org.posts import appoint
from tests.integration.test_assessment import OCTOBER, october  # noqa: F401 - the fixture
from tests.integration.test_org_admin import _edited, _snapshot
from tests.support.clock import TODAY
from tests.support.factories import give_missing_marks, load_demo, login, make_user
from tests.support.jobs import Finished, job_file, run_job_from, run_started, start, watched

IMPORT_PAGE = "/org/lidu/import"


def _client(app, username: str):  # noqa: ANN001, ANN202
    client = app.test_client()
    login(client, username)
    return client


def _jobs() -> int:
    return db.session.scalar(db.select(db.func.count(Job.id)))


def _audits() -> int:
    return db.session.scalar(db.select(db.func.count(AuditEntry.id)))


def _upload_left(finished: Finished) -> bool:
    """Whether the upload a job was started with is still kept (it goes when the job ends, however it ends)."""
    name = db.session.get(Job, finished.job_id).params["_upload"]
    return (jobs_folder() / name).exists()


def _progress(steps) -> list[tuple[int, int]]:  # noqa: ANN001
    return [(s.done, s.total) for s in steps]


def _shown(step) -> bool:  # noqa: ANN001
    """The job's page said how far it was, in words and on its bar, and kept asking."""
    percent = int(100 * step.done / step.total)
    return (f"正在处理：{step.done} / {step.total}" in step.part and f'value="{percent}"' in step.part
            and 'hx-trigger="every 1s"' in step.part)


@pytest.fixture
def org(ctx):
    load_demo()
    appoint("lidu", "segment_keeper", "张三", area_key="shilong_old_street", phone="13900000002",
            duties=["每天巡查"], since=TODAY - dt.timedelta(days=40))
    make_user("office", roles=(("lidu", "office_admin", None),))
    make_user("head", roles=(("lidu", "unit_head", "shilong"),))
    db.session.commit()
    return ctx


# -- the organisation ---------------------------------------------------------------------------------------------

def test_the_organisation_exports_as_a_job_sheet_by_sheet(org):
    office = _client(org, "office")
    page = office.get(IMPORT_PAGE).get_data(as_text=True)
    assert 'action="/org/lidu/export"' in page and 'method="post"' in page  # the page's buttons
    with watched(office, "org.export") as steps:
        workbook = run_job_from(office, "/org/lidu/export", {"format": "xlsx"}, token_from=IMPORT_PAGE)
    assert _progress(steps) == [(1, 4), (2, 4), (3, 4)] and all(_shown(s) for s in steps)  # read, then written
    assert workbook.name == "lidu-org.xlsx" and workbook.mimetype.endswith("spreadsheetml.sheet")
    assert "返回表格导入导出页面" in workbook.page  # the job's page leads back to where it was asked
    book = openpyxl.load_workbook(io.BytesIO(workbook.content), read_only=True)
    assert book.sheetnames == ["units", "areas", "posts"]
    posts = list(book["posts"].values)
    assert posts[0][:4] == ("tier", "area", "unit", "holder_name") and any(r[3] == "张三" for r in posts[1:])
    with watched(office, "org.export") as steps:
        sheet = run_job_from(office, "/org/lidu/export", {"format": "csv", "sheet": "areas"}, token_from=IMPORT_PAGE)
    assert _progress(steps) == [(1, 2)] and sheet.name == "lidu-areas.csv"
    assert "shilong_old_street" in sheet.content.decode("utf-8-sig")
    # A sheet that does not exist is refused at once, not by a job.
    before = _jobs()
    assert start(office, "/org/lidu/export", {"format": "csv", "sheet": "people"}, token_from=IMPORT_PAGE
                 ).status_code == 400
    assert _jobs() == before


def test_an_import_is_a_job_that_reports_each_row(org):
    office = _client(org, "office")
    exported = job_file(office, "/org/lidu/export", {"format": "xlsx"}, token_from=IMPORT_PAGE)
    content = _edited(exported, {"units": [{"key": "team_a", "kind": "department", "parent": "lidu_street",
                                            "name_zh": "甲组"}]})
    with watched(office, "org.import") as steps:
        finished = run_started(office, _send(office, content, "lidu-org.xlsx"))
    assert _progress(steps) == [(1, 3), (2, 3)] and all(_shown(s) for s in steps)  # read, checked; then written
    assert "导入完成：新增单位 1 个" in finished.page and finished.name == "lidu-import-report.xlsx"
    report = list(openpyxl.load_workbook(io.BytesIO(finished.content), read_only=True)["report"].values)
    assert report[0] == ("表", "行", "编码", "结果")
    added = [r for r in report[1:] if r[2] == "team_a"]
    assert added and added[0][0] == "units" and added[0][3] == "新增" and isinstance(added[0][1], int)
    assert any(r[0] == "posts" and "张三" in r[2] and r[3] == "未变" for r in report[1:])
    unit = db.session.scalar(db.select(Unit).filter_by(scheme_key="lidu", key="team_a"))
    assert unit is not None and unit.parent.key == "lidu_street" and unit.source == "import"
    assert not _upload_left(finished)  # the upload went with the job


def test_an_import_with_problems_changes_nothing_and_lists_them(org):
    office = _client(org, "office")
    exported = job_file(office, "/org/lidu/export", {"format": "xlsx"}, token_from=IMPORT_PAGE)
    before, audits = _snapshot(), _audits()
    content = _edited(exported, {
        "units": [{"key": "fine_unit", "kind": "department", "parent": "lidu_street", "name_zh": "好部门"},
                  {"key": "odd_unit", "kind": "village", "name_zh": "村"}],
        "posts": [{"tier": "emperor", "area": "zhiyuan_road", "holder_name": "皇帝", "started_on": "2026-01-01"}]})
    finished = run_started(office, _send(office, content, "lidu-org.xlsx"))
    assert finished.content is None  # failed: no report, the problems on the page
    assert "表格中有 2 处问题，未做任何修改。" in finished.page
    assert "<li>units, 第 " in finished.page and ", kind: " in finished.page and "<li>posts, 第 " in finished.page
    db.session.expire_all()
    assert _snapshot() == before and _audits() == audits  # not the fine row either: all of it or nothing
    assert db.session.scalar(db.select(Job.state).where(Job.id == finished.job_id)) == "failed"
    assert not _upload_left(finished)
    # A file that cannot be read at all is refused by the page, as before: no job.
    jobs = _jobs()
    refused = _send(office, b"PK\x03\x04 not a zip at all", "lidu-org.xlsx")
    assert refused.status_code == 400 and "不是 Excel" in refused.get_data(as_text=True)  # said on the page
    assert _send(office, "key,kind\n石龙,street\n".encode("gbk"), "units.csv").status_code == 400
    assert _jobs() == jobs


def test_only_the_organisation_managers_export_and_import(org):
    head = _client(org, "head")
    jobs = _jobs()
    assert start(head, "/org/lidu/export", {"format": "xlsx"}, token_from="/org/lidu/units").status_code == 403
    assert start(head, IMPORT_PAGE, {"sheet": "units", "upload": (io.BytesIO(b"key,kind\nx,street\n"), "units.csv")},
                 token_from="/org/lidu/units", content_type="multipart/form-data").status_code == 403
    assert _jobs() == jobs
    # Someone else's job is not theirs to follow or fetch.
    office = _client(org, "office")
    mine = run_job_from(office, "/org/lidu/export", {"format": "xlsx"}, token_from=IMPORT_PAGE)
    assert head.get(f"/jobs/{mine.job_id}").status_code == 403
    assert head.get(f"/jobs/{mine.job_id}/result").status_code == 403


def _send(client, content: bytes, name: str, sheet: str = ""):  # noqa: ANN001, ANN202
    return start(client, IMPORT_PAGE, {"sheet": sheet, "upload": (io.BytesIO(content), name)},
                 token_from=IMPORT_PAGE, content_type="multipart/form-data")


# -- the ledger ---------------------------------------------------------------------------------------------------

def test_the_ledger_exports_as_a_job(org):
    office = _client(org, "office")
    ledger = f"/cases/lidu/ledger?start={TODAY.replace(day=1)}&end={TODAY}&by=area"
    page = office.get(ledger).get_data(as_text=True)
    assert 'action="/cases/lidu/ledger/export"' in page and 'name="by" value="area"' in page  # as shown
    form = {"start": str(TODAY.replace(day=1)), "end": str(TODAY), "by": "area"}
    with watched(office, "cases.ledger") as steps:
        workbook = run_job_from(office, "/cases/lidu/ledger/export", {**form, "format": "xlsx"}, token_from=ledger)
    assert _progress(steps) == [(1, 2)] and _shown(steps[0])
    book = openpyxl.load_workbook(io.BytesIO(workbook.content))
    assert book.sheetnames == [f"{TODAY.replace(day=1):%Y%m%d}-{TODAY:%Y%m%d}"]
    assert [c.value for c in book.active[1]][:3] == ["单位", "发现问题", "已整改"]
    assert f'href="/cases/lidu/ledger?start={TODAY.replace(day=1)}' in workbook.page  # back to the ledger
    printed = run_job_from(office, "/cases/lidu/ledger/export", {**form, "format": "pdf"}, token_from=ledger)
    assert printed.mimetype == "application/pdf" and printed.name == f"ledger-{TODAY.replace(day=1):%Y%m%d}-" \
        f"{TODAY:%Y%m%d}.pdf"
    assert "台账" in "".join(p.extract_text() for p in PdfReader(io.BytesIO(printed.content)).pages)
    # Those who do not see the ledger do not export it.
    make_user("assessor", roles=(("lidu", "assessor", None),))
    jobs = _jobs()
    assessor = _client(org, "assessor")
    assert start(assessor, "/cases/lidu/ledger/export", {**form, "format": "xlsx"},
                 token_from="/account/password").status_code == 403
    assert _jobs() == jobs


# -- assessment ---------------------------------------------------------------------------------------------------

@pytest.fixture
def office_user(october):  # noqa: F811
    user = make_user("office", roles=(("lidu", "office_admin", None),))
    make_user("head", roles=(("lidu", "unit_head", "shilong"),))
    make_user("assessor", roles=(("lidu", "assessor", None),))
    db.session.commit()
    return user


def test_a_bulletins_pdf_is_a_job(office_user, app):
    period = assessment.open_period(office_user, "lidu", "lidu_monthly", OCTOBER)
    give_missing_marks(office_user, period)
    assessment.publish(office_user, period, close_appeals=True)
    db.session.commit()
    office = _client(app, "office")
    bulletin = f"/assess/period/{period.id}/bulletin"
    assert f'action="{bulletin}.pdf"' in office.get(bulletin).get_data(as_text=True)
    with watched(office, "assessment.bulletin_pdf") as steps:
        printed = run_job_from(office, f"{bulletin}.pdf", {"revision": "1"}, token_from=bulletin)
    assert _progress(steps) == [(1, 3), (2, 3)] and all(_shown(s) for s in steps)  # read, laid out; then drawn
    assert printed.name == "bulletin-lidu_monthly-2026-10-r1.pdf" and f'href="{bulletin}?revision=1"' in printed.page
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(printed.content)).pages).replace(" ", "")
    assert "石龙社区" in text and "88.00" in text
    head, jobs = _client(app, "head"), _jobs()
    assert start(head, f"{bulletin}.pdf", token_from="/account/password").status_code == 403
    assert _jobs() == jobs


def _publish(client, period: AssessmentPeriod, **form: str):  # noqa: ANN001, ANN202
    page = f"/assess/period/{period.id}"
    return start(client, f"{page}/publish", {"version": str(period.version), **form}, token_from=page)


def test_publishing_a_period_is_a_job(office_user, app):
    period = assessment.open_period(office_user, "lidu", "lidu_monthly", OCTOBER)
    give_missing_marks(office_user, period)
    db.session.commit()
    office, jobs = _client(app, "office"), _jobs()
    # What the page can tell at once it tells at once: the appeal window is open, so no job.
    refused = _publish(office, period)
    assert refused.status_code == 409 and _jobs() == jobs
    assessor = _client(app, "assessor")
    assert _publish(assessor, period, close_appeals="y").status_code == 403 and _jobs() == jobs
    with watched(office, "assessment.publication") as steps:
        published: Finished = run_started(office, _publish(office, period, close_appeals="y"))
    # A step a metric computed, one when every unit is scored; then frozen (the job's end).
    steps_in_all = len(assessment.sheet_spec_of(period).metrics) + 2
    assert _progress(steps) == [(n, steps_in_all) for n in range(1, steps_in_all)] and all(map(_shown, steps))
    assert "已发布（第1版）。" in published.page and published.content is None
    assert "/result" not in published.page and f'href="/assess/period/{period.id}"' in published.page
    db.session.expire_all()
    period = db.session.get(AssessmentPeriod, period.id)
    assert period.revision == 1 and period.state == "published"
    assert "88.00" in office.get(f"/assess/period/{period.id}").get_data(as_text=True)


def test_two_publications_from_one_page_make_one_revision(office_user, app):
    """Pressed twice (or from two tabs): both pass the page's check, the first job publishes, the second finds the
    period changed under it and says so."""
    period = assessment.open_period(office_user, "lidu", "lidu_monthly", OCTOBER)
    give_missing_marks(office_user, period)
    db.session.commit()
    office = _client(app, "office")
    first, second = (_publish(office, period, close_appeals="y") for _ in range(2))
    assert first.status_code == second.status_code == 303
    run_started(office, first)  # (runs both: the queue takes what is waiting)
    page = office.get(second.headers["Location"]).get_data(as_text=True)
    assert "考核情况在您查看期间已有变动" in page
    assert db.session.scalar(db.select(db.func.count(AssessmentRevision.id)).filter_by(period_id=period.id)) == 1
    assert {*db.session.scalars(db.select(Job.state).where(Job.kind == "assessment.publication"))} == {"done", "failed"}


def test_a_job_that_writes_and_then_fails_keeps_nothing(org):
    """The import's writes are committed with its result: a failure after them (here, the result cannot be kept)
    leaves the organisation as it was."""
    from unittest import mock

    office = _client(org, "office")
    exported = job_file(office, "/org/lidu/export", {"format": "xlsx"}, token_from=IMPORT_PAGE)
    content = _edited(exported, {"areas": [{"key": "new_lane", "kind": "road", "parent": "shilong_town",
                                            "unit": "shilong", "name_zh": "新巷"}]})
    before = _snapshot()
    with mock.patch("pathlib.Path.replace", side_effect=OSError("disk full")):
        finished = run_started(office, _send(office, content, "lidu-org.xlsx"))
    assert finished.content is None and "日志" in finished.page
    db.session.expire_all()
    assert _snapshot() == before
    assert db.session.scalar(db.select(Area).filter_by(scheme_key="lidu", key="new_lane")) is None
