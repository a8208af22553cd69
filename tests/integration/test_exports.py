"""Every export through its real route, with formulas and invisible characters planted in what its readers
typed or named: form records (XLSX and CSV), the case ledger (by unit and by area), the organisation (XLSX
and each sheet as CSV, imported back unchanged) and Open311's XML. Read back, no cell is a formula, every
text is still there, and a form named with characters a sheet title cannot hold still exports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import xml.etree.ElementTree as ET

import openpyxl
import pytest

from server.auth.models import User
from server.auth.service import create_user, grant_role
from server.definitions.service import activate_scheme_version, load_scheme
from server.extensions import db
from server.forms import service as forms
from server.forms.engine import form_spec
from server.forms.models import Submission
from server.org.models import Area, Post, Unit
from server.org.posts import appoint
from server.public.models import PublicReport
from server.workflow import service as workflow
from tests.support.clock import TODAY
from tests.support.factories import PASSWORD, ROOT, demo_files, formdata, login, make_user, photo, unit_id
from tests.support.jobs import Finished, job_file, run_job_from

UNIT = '=HYPERLINK("http://x","石龙社区")'
AREA = "@SUM(1)石龙\a老街"  # an invisible BEL in a road's name
FORM_NAME = "a/b:c*?[x]"
LABEL = '=HYPERLINK("http://x","巡查情况")'
ANSWERS = ['=HYPERLINK("http://x","点我")', "+1", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1", "巡\x07查",
           "路面\x1b整洁"]
STARTS = ("=", "+", "-", "@", "\t", "\r")


def _yaml(text: str) -> str:
    """A YAML double-quoted string (JSON's escapes are YAML's)."""
    return json.dumps(text, ensure_ascii=True)


def _district() -> None:
    """The demo district with a formula for a community's name, an invisible character in a road's, and its
    patrol log named and labelled with what a sheet title and a header cannot take as they are."""
    files = dict(demo_files())
    scheme = files["schemes/lidu/scheme.yaml"]
    files["schemes/lidu/scheme.yaml"] = (
        scheme.replace("name: {zh: 石龙社区, en: Shilong Community}", f"name: {{zh: {_yaml(UNIT)}, en: Shilong}}")
        .replace("name: {zh: 石龙老街, en: Shilong Old Street}", f"name: {{zh: {_yaml(AREA)}, en: Old Street}}"))
    assert files["schemes/lidu/scheme.yaml"] != scheme
    form = (ROOT / "form_definitions" / "patrol_log.yaml").read_text("utf-8")
    files["schemes/lidu/patrol_log.yaml"] = (
        form.replace("name: {zh: 巡查日志, en: Patrol log}", f"name: {_yaml(FORM_NAME)}")
        .replace("label: {zh: 巡查情况, en: Findings}", f"label: {{zh: {_yaml(LABEL)}, en: {_yaml(LABEL)}}}"))
    version, _ = load_scheme(files)
    activate_scheme_version(version.id)
    db.session.commit()


@pytest.fixture
def district(app):
    # Forms are request-bound (CSRF, language): services run inside a request, as they do in the app.
    with app.test_request_context():
        _district()
        chief, _ = create_user("chief", "-2+3张\x1b三", PASSWORD)
        grant_role(chief, "lidu", "unit_head", unit_id("lidu", "shilong"))
        make_user("office", roles=(("lidu", "office_admin", None),))
        db.session.commit()
        yield app


def _patrol(user, findings: str, n: int) -> Submission:  # noqa: ANN001
    version = forms.form_version("lidu", "patrol_log")
    result = forms.post_form(user, "lidu", form_spec(version.data), version, formdata(
        _token=f"patrol-{n}", area="shilong_old_street", started_at=f"{TODAY}T09:00", participants="2",
        has_problems="no", findings=findings, photos=photo()))
    assert isinstance(result, Submission), result.errors
    db.session.commit()
    return result


def _client(app, username: str):  # noqa: ANN001
    client = app.test_client()
    login(client, username)
    return client


def _texts(rows) -> list[str]:  # noqa: ANN001
    return [v for row in rows for v in row if isinstance(v, str)]


def _no_formula(book: openpyxl.Workbook) -> list[str]:
    """Every text of the workbook, after checking that none is a formula or would become one."""
    texts = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(STARTS), (sheet.title, cell.coordinate, cell.value)
                    texts.append(cell.value)
    return texts


def _csv(data: bytes) -> list[list[str]]:
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    for value in _texts(rows):
        assert not value.startswith(STARTS), value
    return rows


def _has(texts: list[str], *parts: str) -> bool:
    return all(any(part in text for text in texts) for part in parts)


def test_form_records_export(district):
    chief = db.session.scalar(db.select(User).filter_by(username="chief"))
    stored = [_patrol(chief, answer, n).data["findings"] for n, answer in enumerate(ANSWERS)]
    assert "巡\x07查" in stored and "路面\x1b整洁" in stored  # kept as typed: the export is what must cope
    client = _client(district, "chief")
    response = client.get("/f/lidu/patrol_log/records?format=xlsx")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["a_b_c___x_"]  # the form's name, as Excel takes it
    texts = _no_formula(book)
    header = [c.value for c in book.active[1]]
    assert "'" + LABEL in header
    assert _has(texts, "'" + UNIT, "'@SUM(1)石龙老街", "'-2+3张三", "'=HYPERLINK(\"http://x\",\"点我\")", "'+1",
                "'-2+3", "'@SUM(A1:A2)", "巡查", "路面整洁")
    assert not any(ch in text for text in texts for ch in "\x07\x1b")

    rows = _csv(client.get("/f/lidu/patrol_log/records?format=csv").data)
    assert "'" + LABEL in rows[0]
    assert _has(_texts(rows), "'" + UNIT, "'@SUM(1)石龙老街", "'-2+3张三", "'+1", "'-2+3", "巡查", "路面整洁")
    assert not any(ch in text for text in _texts(rows) for ch in "\x07\x1b")


def test_ledger_export(district):
    version = forms.form_version("lidu", "problem_report")
    reporter = make_user("reporter", roles=(("lidu", "staff", "shilong"),))
    result = forms.post_form(reporter, "lidu", form_spec(version.data), version, formdata(
        _token="report", category="piled_rubbish", area="shilong_old_street", description="=1+1",
        photos_before=photo(), size_m3="1", urgency="normal"))
    assert isinstance(result, Submission), result.errors
    workflow.open_case(reporter, "lidu", result)
    db.session.commit()
    client = _client(district, "office")
    for by, name in (("unit", "'" + UNIT), ("area", "'@SUM(1)石龙老街")):
        span = {"by": by, "start": TODAY.replace(day=1).isoformat(), "end": TODAY.isoformat()}
        exported = job_file(client, "/cases/lidu/ledger/export", {**span, "format": "xlsx"},
                            token_from="/cases/lidu/ledger")
        book = openpyxl.load_workbook(io.BytesIO(exported))
        assert book.sheetnames == [f"{TODAY.replace(day=1):%Y%m%d}-{TODAY:%Y%m%d}"]
        texts = _no_formula(book)
        assert name in texts, texts
        assert book.active.cell(2, 2).value == 1  # numbers stay numbers


def test_org_export_and_import_back(district):
    appoint("lidu", "segment_keeper", "-2+3张三", area_key="shilong_old_street", phone="+8613900000002",
            duties=[*ANSWERS[:4], "每天\x07巡查"], since=TODAY - dt.timedelta(days=40))
    db.session.commit()
    client = _client(district, "office")
    workbook = _org_export(client)
    texts = _no_formula(openpyxl.load_workbook(io.BytesIO(workbook)))
    assert _has(texts, "'" + UNIT, "'@SUM(1)石龙老街", "'-2+3张三", "'+8613900000002", "'=HYPERLINK(\"http://x\",\"点我\")",
                "每天巡查")
    before = _org()
    assert _upload(client, workbook, "org.xlsx").content is not None  # imported: its report
    for sheet in ("units", "areas", "posts"):
        exported = _org_export(client, sheet)
        assert _has(_texts(_csv(exported)), *{"units": ["'" + UNIT], "areas": ["'@SUM(1)石龙老街"],
                                              "posts": ["'-2+3张三", "'=HYPERLINK(\"http://x\",\"点我\")\n+1\n"]}[sheet])
        assert _upload(client, exported, f"{sheet}.csv", sheet).content is not None
    db.session.expire_all()
    # What the export read back is what was there, less the invisible characters it dropped.
    assert _org() == [[value.replace("\a", "") if isinstance(value, str) else value for value in row]
                      for row in before]


def _org() -> list[list]:
    unit = db.session.scalar(db.select(Unit).filter_by(scheme_key="lidu", key="shilong"))
    area = db.session.scalar(db.select(Area).filter_by(scheme_key="lidu", key="shilong_old_street"))
    post = db.session.scalar(db.select(Post).filter_by(scheme_key="lidu", tier_key="segment_keeper",
                                                       area_id=area.id).order_by(Post.id.desc()))
    return [[unit.name["zh"]], [area.name["zh"]], [post.holder_name, post.phone, *post.duties]]


def _org_export(client, sheet: str | None = None) -> bytes:  # noqa: ANN001
    form = {"format": "csv", "sheet": sheet} if sheet else {"format": "xlsx"}
    return job_file(client, "/org/lidu/export", form, token_from="/org/lidu/import")


def _upload(client, content: bytes, name: str, sheet: str = "") -> Finished:  # noqa: ANN001
    """The import page's form sent, and the import run by a worker."""
    return run_job_from(client, "/org/lidu/import", {"sheet": sheet, "upload": (io.BytesIO(content), name)},
                        token_from="/org/lidu/import", content_type="multipart/form-data")


def _xml(data: bytes) -> ET.Element:
    return ET.fromstring(data)  # noqa: S314 - our own response, parsed to check it is XML at all


def test_open311_xml_with_invisible_characters(district):
    client = district.test_client()
    response = client.post("/open311/v2/requests.json", data={
        "service_code": "street_stalls", "address_id": "shilong_old_street", "description": "占道\x07经营\x1b"})
    assert response.status_code == 200, response.data
    request_id = response.get_json()[0]["service_request_id"]
    report = db.session.get(PublicReport, int(request_id))
    report.moderation = "approved"
    db.session.commit()
    root = _xml(client.get(f"/open311/v2/requests/{request_id}.xml").data)
    request = root.find("request")
    assert request.findtext("description") == "占道经营" and request.findtext("address") == "@SUM(1)石龙老街"
    answer = client.get(f"/open311/v2/requests/{request_id}.json").get_json()[0]
    assert answer["description"] == "占道\x07经营\x1b" and answer["address"] == AREA  # JSON escapes them
    error = client.get("/open311/v2/services/no%07such.xml")
    assert error.status_code == 404 and "nosuch" in _xml(error.data).find("error").findtext("description")
