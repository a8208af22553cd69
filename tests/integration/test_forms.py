"""Filling forms over HTTP: logic, errors that keep what was typed, uploads, one record per token, records."""

from __future__ import annotations

import io
import re
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from server.extensions import db
from server.forms.models import Submission, Upload
from tests.support.factories import load_demo, login, make_user
from tests.support.images import huge_png, jpeg

URL = "/f/lidu/patrol_log/new"


@pytest.fixture
def chief(ctx, client):
    load_demo()
    make_user("chief", roles=(("lidu", "unit_head", "shilong"),))
    login(client, "chief")
    return client


def _page(client, url: str = URL) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _hidden(page: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', page).group(1)


def _base(page: str, **extra) -> dict:
    data = {"csrf_token": _hidden(page, "csrf_token"), "_token": _hidden(page, "_token"),
            "area": "shilong_old_street", "started_at": "2026-11-20T09:00", "participants": "2",
            "has_problems": "no", "findings": "路面整洁", "_action": "submit"}
    data.update(extra)
    return data


def _post(client, data: dict, files: dict[str, list[tuple[bytes, str]]] | None = None, url: str = URL):
    payload = dict(data)
    for name, items in (files or {}).items():
        payload[name] = [(io.BytesIO(content), filename) for content, filename in items]
    return client.post(url, data=payload, content_type="multipart/form-data")


def test_form_list_and_defaults(chief):
    assert "巡查日志" in _page(chief, "/f/lidu/")
    page = _page(chief)
    assert 'name="_token"' in page and 'value="1"' in page  # participants default
    assert 'capture="environment"' in page and 'accept="image/*"' in page
    assert "石龙老街" in page and "致远路" not in page  # areas within the chief's scope only


def test_valid_submission_is_stored_once_with_version(chief):
    page = _page(chief)
    data = _base(page)
    first = _post(chief, data, {"photos": [(jpeg(), "a.jpg")]})
    assert first.status_code == 303
    second = _post(chief, data, {"photos": [(jpeg(), "a.jpg")]})  # a double tap / resend
    assert second.status_code == 303 and second.headers["Location"] == first.headers["Location"]
    rows = db.session.scalars(db.select(Submission)).all()
    assert len(rows) == 1
    record = rows[0]
    assert record.form_key == "patrol_log" and record.definition_version.key == "patrol_log"
    assert record.area.key == "shilong_old_street" and record.unit.key == "shilong"
    assert record.data["participants"] == 2 and record.data["found_problems"] == 0
    assert "problems" not in record.data  # hidden: not stored
    assert len(record.data["photos"]) == 1
    assert db.session.get(Upload, record.data["photos"][0]).submission_id == record.id
    shown = chief.get(first.headers["Location"]).get_data(as_text=True)
    assert "路面整洁" in shown and "石龙老街" in shown


def test_errors_keep_everything_typed_and_uploaded(chief):
    page = _page(chief)
    data = _base(page, participants="0", findings="我写的内容", ended_at="2026-11-20T08:00")
    response = _post(chief, data, {"photos": [(jpeg(), "scene.jpg")]})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'class="error-summary"' in html
    assert "参加人数至少为1人" in html and "结束时间不能早于开始时间" in html
    assert "我写的内容" in html and 'value="0"' in html
    upload = db.session.scalar(db.select(Upload))
    assert f'value="{upload.id}" checked' in html  # the photo is kept, not asked for again
    assert db.session.scalar(db.select(db.func.count(Submission.id))) == 0
    fixed = _base(page, participants="3", ended_at="2026-11-20T10:00", photos=str(upload.id))
    assert _post(chief, fixed).status_code == 303
    record = db.session.scalar(db.select(Submission))
    assert record.data["photos"] == [upload.id]


def test_required_if_and_repeat_rows(chief):
    page = _page(chief)
    # the browser sends the (until now hidden) empty first row
    data = _base(page, has_problems="yes", **{"problems-0-problem_description": "", "problems-0-problem_category": ""})
    response = _post(chief, data, {"photos": [(jpeg(), "a.jpg")]})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(r'href="#f-problems.0.problem_category">问题类别 \(1\)</a>', html)
    upload_id = db.session.scalar(db.select(Upload.id))
    data = _base(page, has_problems="yes", photos=str(upload_id), **{
        "problems-0-problem_category": "piled_rubbish", "problems-0-problem_description": "堆了一堆",
        "problems-0-problem_size_m3": "2.5", "problems-0-problem_fixed_on_spot": "no"})
    added = _post(chief, {**data, "_action": "add:problems"})
    assert added.status_code == 200 and 'name="problems-1-problem_description"' in added.get_data(as_text=True)
    assert _post(chief, data).status_code == 303
    record = db.session.scalar(db.select(Submission))
    assert record.data["found_problems"] == 1
    assert record.data["problems"][0]["problem_size_m3"] == 2.5
    shown = chief.get(f"/f/records/{record.id}").get_data(as_text=True)
    row = shown.split('class="repeat-row"', 1)[1].split("</div>", 1)[0]
    assert "积存垃圾" in row and "piled_rubbish" not in row  # a row's category by its name, not its code
    assert "2026-11-20 09:00" in shown and "2026-11-20T09:00" not in shown  # a moment as people write it


def test_step_and_choice_checks(chief):
    page = _page(chief)
    upload = _post(chief, _base(page, participants="0"), {"photos": [(jpeg(), "a.jpg")]})
    upload_id = db.session.scalar(db.select(Upload.id))
    assert upload.status_code == 400
    data = _base(page, has_problems="yes", photos=str(upload_id), area="zhiyuan_road", **{
        "problems-0-problem_category": "not_a_category", "problems-0-problem_description": "x",
        "problems-0-problem_size_m3": "0.25"})
    html = _post(chief, data).get_data(as_text=True)
    assert html.count("不是有效的选项") + html.count("Not a valid choice") >= 2  # area out of scope, bad category
    assert "0.1" in html  # step


@pytest.mark.parametrize(("content", "name", "fragment"), [
    (b"MZ\x90\x00" + b"\x00" * 200, "photo.jpg", "不是照片"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "photo.png", "不是照片"),
    (huge_png(), "big.png", "像素"),
    (jpeg(800, 600)[:1500], "cut.jpg", "损坏"),
])
def test_disguised_files_are_refused_with_a_field_error(chief, content, name, fragment):
    page = _page(chief)
    response = _post(chief, _base(page), {"photos": [(content, name)]})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert fragment in html and name in html
    assert db.session.scalar(db.select(db.func.count(Upload.id))) == 0


def test_refresh_shows_dependent_fields_without_saving(chief):
    page = _page(chief)
    assert re.search(r'id="f-problems"[^>]*hidden', page)
    response = _post(chief, _base(page, has_problems="yes", _action="refresh"))
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and not re.search(r'id="f-problems"[^>]*hidden', html)
    assert "error-summary" not in html
    htmx = chief.post(URL, data=_base(page, has_problems="yes", _action="refresh"), headers={"HX-Request": "true"})
    body = htmx.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="form-body"') and "<html" not in body
    assert db.session.scalar(db.select(db.func.count(Submission.id))) == 0


def test_records_list_export_and_scope(chief, app):
    page = _page(chief)
    _post(chief, _base(page, findings="=HYPERLINK(\"http://x\")"), {"photos": [(jpeg(), "a.jpg")]})
    listing = chief.get("/f/lidu/patrol_log/records").get_data(as_text=True)
    assert "#1" in listing or "/f/records/" in listing
    xlsx = chief.get("/f/lidu/patrol_log/records?format=xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    header = [c.value for c in sheet[1]]
    assert "巡查情况" in header
    assert sheet.cell(2, header.index("巡查情况") + 1).value.startswith("'=")  # formula defused
    # Choices as people read them: the road by its name, 否 rather than `no`.
    assert sheet.cell(2, header.index("巡查区域") + 1).value == "石龙老街"
    assert sheet.cell(2, header.index("是否发现问题") + 1).value == "否"
    csv = chief.get("/f/lidu/patrol_log/records?format=csv").data.decode("utf-8-sig")
    assert "巡查情况" in csv.splitlines()[0]
    # Times are the district's, and the header says which: not the server's UTC.
    record = db.session.scalar(db.select(Submission))
    shown = record.submitted_at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert "提交时间（Asia/Shanghai, UTC+08:00）" in header and sheet.cell(2, header.index(
        "提交时间（Asia/Shanghai, UTC+08:00）") + 1).value == shown
    assert shown in csv.splitlines()[1]
    admin = app.test_client()
    make_user("root", admin=True)
    login(admin, "root")
    audit = admin.get("/admin/audit/").get_data(as_text=True)
    assert "Asia/Shanghai, UTC+08:00" in audit and record.submitted_at.astimezone(
        ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M") in audit
    # someone of another community sees neither the record nor its photo
    make_user("other", roles=(("lidu", "unit_head", "zhiyuan"),))
    other = app.test_client()
    login(other, "other")
    record = db.session.scalar(db.select(Submission))
    assert other.get(f"/f/records/{record.id}").status_code == 403
    assert other.get(f"/f/uploads/{record.data['photos'][0]}/thumb").status_code == 403
    assert "/f/records/" not in other.get("/f/lidu/patrol_log/records").get_data(as_text=True)
    assert chief.get(f"/f/uploads/{record.data['photos'][0]}/thumb").status_code == 200


def test_people_without_form_rights_are_refused(ctx, client):
    load_demo()
    make_user("assessor1", roles=(("lidu", "assessor", None),))
    login(client, "assessor1")
    assert client.get(URL).status_code == 403


def test_photo_evidence_is_kept_and_the_served_copy_has_no_exif(chief):
    from PIL import Image

    from tests.unit.test_uploads import _exif_with_gps

    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), "gray").save(buffer, "JPEG", exif=_exif_with_gps("N", "E"))
    page = _page(chief)
    response = _post(chief, _base(page), {"photos": [(buffer.getvalue(), "gps.jpg")]})
    assert response.status_code == 303
    record = db.session.scalar(db.select(Submission))
    upload = db.session.get(Upload, record.data["photos"][0])
    assert upload.evidence["gps"]["lat"] > 33 and upload.evidence["taken_at"].startswith("2024-05-01")
    shown = chief.get(response.headers["Location"]).get_data(as_text=True)
    assert "2024-05-01 12:34:56" in shown and "151.2" in shown
    served = Image.open(io.BytesIO(chief.get(f"/f/uploads/{upload.id}").data))
    assert not served.getexif()


def test_choice_filter_roads_of_the_chosen_street(ctx):
    from server.forms.engine import form_spec
    from server.forms.service import choice_source

    load_demo()
    admin = make_user("root2", admin=True)
    spec = form_spec({"kind": "form", "id": "x", "name": "x", "fields": [
        {"id": "street", "type": "single_choice", "choices_from": "units", "unit_kinds": ["community"]},
        {"id": "road", "type": "area", "area_kinds": ["road"], "choice_filter": "choice.unit == street"}]})
    source = choice_source(admin, "lidu")
    streets = [value for value, _label in source(spec.by_id["street"], {})]
    assert streets == ["zhiyuan", "duanqiao", "shilong", "longqiao"]
    roads = [value for value, _label in source(spec.by_id["road"], {"street": "shilong"})]
    assert roads == ["shilong_old_street"]
    assert source(spec.by_id["road"], {"street": None}) == []


def test_a_record_shows_labels_not_codes(ctx, client):
    """A record's page names a category and a road by their names, and a plain choice by its label."""
    from server.forms import service
    from server.forms.engine import form_spec
    from tests.support.factories import formdata, photo

    load_demo()
    chief = make_user("labels", roles=(("lidu", "staff", "shilong"),))
    with ctx.test_request_context():
        version = service.form_version("lidu", "problem_report")
        record = service.post_form(chief, "lidu", form_spec(version.data), version, formdata(
            _token="labels-1", category="piled_rubbish", area="shilong_old_street", description="门口垃圾",
            urgency="urgent", urgency_reason="挡住学校门口", size_m3="1", photos_before=photo()))
        assert isinstance(record, Submission), record
        db.session.commit()
    login(client, "labels")
    page = client.get(f"/f/records/{record.id}").get_data(as_text=True)
    assert "石龙老街" in page and "shilong_old_street" not in page
    assert "垃圾" in page and ">piled_rubbish<" not in page and "piled_rubbish" not in page.split("<main", 1)[1]
    assert "urgent" not in page.split("<main", 1)[1]
