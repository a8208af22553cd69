"""Changing a scheme in the browser without a browser: a version's zip, one file uploaded on top, the source
edited, a definition saved from its editor's data, the checks as one types. Every save is a draft."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from server.definitions.models import SchemeVersion
from server.definitions.service import current_version
from server.extensions import db
from tests.conftest import csrf_token
from tests.support.factories import DEMO, load_demo, login, make_user


@pytest.fixture
def office(ctx, client):
    version = load_demo()
    make_user("office", roles=(("lidu", "office_admin", None),))
    login(client, "office")
    return client, version.id


def _post(client, url: str, data: dict, page: str):
    return client.post(url, data={"csrf_token": csrf_token(client, page), **data},
                       content_type="multipart/form-data")


def test_the_zip_holds_the_files_as_loaded(office):
    client, version = office
    response = client.get(f"/admin/schemes/versions/{version}/download")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    files = zipfile.ZipFile(io.BytesIO(response.data))
    assert {name: files.read(name) for name in files.namelist()} == {
        p.name: p.read_bytes() for p in DEMO.iterdir() if p.suffix == ".yaml"}


def test_one_file_uploaded_goes_on_top_of_the_version_as_a_draft(office):
    client, version = office
    page = f"/admin/schemes/versions/{version}"
    board = (DEMO / "board.yaml").read_bytes().replace(b"\n", b"\n# \xe5\x85\xac\xe7\xa4\xba\n", 1)
    response = _post(client, f"{page}/file", {"file": (io.BytesIO(board), "board.yaml")}, page)
    assert response.status_code == 303
    draft = db.session.get(SchemeVersion, int(response.headers["Location"].rsplit("/", 1)[1]))
    assert draft.based_on_id == version and draft.activated_at is None
    assert current_version("lidu").id == version  # a draft, not in force
    assert {f.path: f.content for f in draft.files}["board.yaml"] == board
    assert len(draft.files) == 3

    # A broken file is refused with its line, and nothing is stored.
    broken = (DEMO / "score_sheet.yaml").read_bytes().replace(b"total: 100", b"total: 90")
    response = _post(client, f"{page}/file", {"file": (io.BytesIO(broken), "score_sheet.yaml")}, page)
    assert response.status_code == 400
    assert "score_sheet.yaml" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(SchemeVersion.id))) == 2


def test_the_source_editor_keeps_what_was_typed_when_it_is_refused(office):
    client, version = office
    url = f"/admin/schemes/versions/{version}/source/scheme.yaml"
    text = (DEMO / "scheme.yaml").read_text("utf-8").replace("per: week", "per: fortnight", 1)
    response = _post(client, url, {"text": text}, url)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "fortnight" in body and "patrol_rules[0].per" in body
    fixed = text.replace("per: fortnight", "per: month", 1)
    response = _post(client, url, {"text": fixed, "note": "按月"}, url)
    assert response.status_code == 303
    draft = db.session.get(SchemeVersion, int(response.headers["Location"].rsplit("/", 1)[1]))
    assert draft.note == "按月"
    assert {f.path: f.content for f in draft.files}["scheme.yaml"] == fixed.encode()


def test_checks_as_one_types_name_the_path(office):
    client, version = office
    page = f"/admin/schemes/versions/{version}/edit/scheme/lidu"
    token = csrf_token(client, page)
    data = json.loads(client.get(page).get_data(as_text=True).split('id="editor-config">', 1)[1]
                      .split("</script>", 1)[0])["data"]
    data["patrol_rules"][0]["at_least"] = 0
    response = client.post(f"/admin/schemes/versions/{version}/check", json={"kind": "scheme", "key": "lidu",
                                                                            "data": data},
                           headers={"X-CSRFToken": token})
    errors = response.get_json()["errors"]
    assert [e["path"] for e in errors] == ["patrol_rules[0].at_least"] and errors[0]["file"] == "scheme.yaml"
    data["patrol_rules"][0]["at_least"] = 2
    response = client.post(f"/admin/schemes/versions/{version}/check", json={"kind": "scheme", "key": "lidu",
                                                                            "data": data},
                           headers={"X-CSRFToken": token})
    assert response.get_json() == {"ok": True, "errors": []}
    # Saving the editor's data writes one line and stores a draft.
    response = _post(client, page, {"data": json.dumps(data)}, page)
    assert response.status_code == 303
    draft = db.session.get(SchemeVersion, int(response.headers["Location"].rsplit("/", 1)[1]))
    old = (DEMO / "scheme.yaml").read_text("utf-8").splitlines()
    new = {f.path: f.content for f in draft.files}["scheme.yaml"].decode().splitlines()
    assert [(a, b) for a, b in zip(old, new, strict=True) if a != b] == [("    at_least: 1", "    at_least: 2")]


def test_a_draft_cannot_take_another_schemes_id(office):
    client, version = office
    url = f"/admin/schemes/versions/{version}/source/scheme.yaml"
    text = (DEMO / "scheme.yaml").read_text("utf-8").replace("id: lidu\n", "id: lidu2\n", 1)
    response = _post(client, url, {"text": text}, url)
    assert response.status_code == 400
    assert "lidu2" in response.get_data(as_text=True)


def test_others_may_not_edit(ctx, client):
    version = load_demo()
    make_user("head", roles=(("lidu", "unit_head", "shilong"),))
    login(client, "head")
    assert client.get(f"/admin/schemes/versions/{version.id}/edit/scheme/lidu").status_code == 403
    assert client.get(f"/admin/schemes/versions/{version.id}/download").status_code == 403


def _editor_data(client, page: str) -> dict:
    return json.loads(client.get(page).get_data(as_text=True).split('id="editor-config">', 1)[1]
                      .split("</script>", 1)[0])


def test_a_score_sheet_is_tried_on_a_past_month_before_it_is_saved(office):
    import re

    client, version = office
    page = f"/admin/schemes/versions/{version}/edit/score_sheet/lidu_monthly"
    config = _editor_data(client, page)
    token = csrf_token(client, page)

    def totals(data: dict) -> dict[str, str]:
        response = client.post(f"/admin/schemes/versions/{version}/dry-run", json={"data": data, "month": "2026-10"},
                               headers={"X-CSRFToken": token})
        assert response.status_code == 200
        body = response.get_data(as_text=True)
        assert "2026-10-01" in body and "2026-10-31" in body
        return dict(re.findall(r"<td>[^<]*</td><td>([^<]+)</td><td>([\d.]+)</td>", body))

    def differences(data: dict) -> list[str]:
        response = client.post(f"/admin/schemes/versions/{version}/dry-run", json={"data": data, "month": "2026-10"},
                               headers={"X-CSRFToken": token})
        return re.findall(r"<strong>([-+][\d.]+)</strong>", response.get_data(as_text=True))

    before = totals(config["data"])
    assert before and all(float(t) <= 100 for t in before.values())
    sheet = config["data"]
    sheet["sections"][0]["items"][0]["points"] = 10
    sheet["sections"][0]["items"].append({"id": "ledger", "name": "台账规范", "points": 5, "rules": [
        {"id": "always", "type": "one_off", "points": 5, "when": "1 == 1"}]})
    after = totals(sheet)
    assert {unit: float(before[unit]) - float(after[unit]) for unit in before} == {unit: 5.0 for unit in before}
    assert differences(sheet) == ["-5.00"] * len(before)  # beside the sheet as it is in the version
    # A month not ended yet is not tried.
    response = client.post(f"/admin/schemes/versions/{version}/dry-run", json={"data": sheet, "month": "2030-01"},
                           headers={"X-CSRFToken": token})
    assert "2030-01-01" not in response.get_data(as_text=True)
    # A sheet that does not check out is not tried: its problems are said.
    sheet["total"] = 90
    response = client.post(f"/admin/schemes/versions/{version}/dry-run", json={"data": sheet, "month": "2026-10"},
                           headers={"X-CSRFToken": token})
    assert "各部分合计" in response.get_data(as_text=True)  # said in the page's language
    assert db.session.scalar(db.select(db.func.count(SchemeVersion.id))) == 1


def test_previews_draw_unsaved_definitions_in_a_frame_of_this_site_only(office):
    client, version = office
    page = f"/admin/schemes/versions/{version}/edit/board/lidu_road_board"
    board = _editor_data(client, page)["data"]
    board["title"] = "{area}·路长公示（试）"
    response = _post(client, f"/admin/schemes/versions/{version}/preview-board", {"data": json.dumps(board)}, page)
    assert response.status_code == 200 and "路长公示（试）" in response.get_data(as_text=True)
    assert "frame-ancestors 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"

    form_page = f"/admin/schemes/versions/{version}/edit/form/patrol_log"
    form = _editor_data(client, form_page)["data"]
    form["fields"].append({"id": "team_leader", "type": "text", "label": "带队人员"})
    response = _post(client, f"/admin/schemes/versions/{version}/preview-form", {"data": json.dumps(form)}, form_page)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "带队人员" in body and 'class="topbar"' not in body
    # A half-written form is said to be unfinished, not a server error.
    response = _post(client, f"/admin/schemes/versions/{version}/preview-form", {"data": '{"fields": 3}'}, form_page)
    assert response.status_code == 200
    # Other pages are never framed.
    assert "frame-ancestors 'none'" in client.get(form_page).headers["Content-Security-Policy"]
    assert db.session.scalar(db.select(db.func.count(SchemeVersion.id))) == 1


def test_the_preview_answers_its_own_requests_with_the_form_being_edited(office):
    client, version = office
    form_page = f"/admin/schemes/versions/{version}/edit/form/patrol_log"
    form = _editor_data(client, form_page)["data"]
    form["fields"].append({"id": "team_leader", "type": "text", "label": "带队人员", "visible_if": "participants > 5"})
    text = json.dumps(form)
    url = f"/admin/schemes/versions/{version}/preview-form"
    first = _post(client, url, {"data": text}, form_page).get_data(as_text=True)
    assert 'name="_definition"' in first and "带队人员" in first
    # The frame's own refresh (htmx) sends its fields and the definition back: the page is drawn again with them.
    refreshed = _post(client, url, {"_definition": text, "_action": "refresh", "participants": "8"}, form_page)
    body = refreshed.get_data(as_text=True)
    assert refreshed.status_code in (200, 400) and "带队人员" in body and 'value="8"' in body
    assert db.session.scalar(db.select(db.func.count(SchemeVersion.id))) == 1


def test_a_browsers_line_ends_do_not_rewrite_the_whole_file(office):
    client, version = office
    url = f"/admin/schemes/versions/{version}/source/board.yaml"
    text = (DEMO / "board.yaml").read_text("utf-8").replace("12319", "12345")
    response = _post(client, url, {"text": text.replace("\n", "\r\n")}, url)  # as a browser sends a text area
    assert response.status_code == 303
    draft = db.session.get(SchemeVersion, int(response.headers["Location"].rsplit("/", 1)[1]))
    assert {f.path: f.content for f in draft.files}["board.yaml"] == text.encode()


def test_nothing_sent_to_the_editors_takes_the_server_down(office):
    client, version = office
    page = f"/admin/schemes/versions/{version}/edit/scheme/lidu"
    token = csrf_token(client, page)
    headers = {"X-CSRFToken": token}
    check = f"/admin/schemes/versions/{version}/check"
    deep: dict = {}
    node = deep
    for _ in range(400):
        node["x"] = {}
        node = node["x"]
    for body in ([1], "x", 5, {"kind": "scheme", "key": "lidu", "data": deep},
                 {"kind": "nope", "key": "nope", "data": {}}, {"path": "scheme.yaml", "text": "\ud800"},
                 {"path": "../etc/passwd", "text": "x"}):
        response = client.post(check, data=json.dumps(body), content_type="application/json", headers=headers)
        assert response.status_code < 500, body if not isinstance(body, dict) or "data" not in body else "deep"
    response = client.post(check, data="[" * 100_000, content_type="application/json", headers=headers)
    assert response.status_code < 500
    dry = f"/admin/schemes/versions/{version}/dry-run"
    for body in ([1], {"data": [1]}, {"data": "x"}, {"month": "9999-12"}, {"month": "0001-01"}):
        assert client.post(dry, json=body, headers=headers).status_code < 500, body
    for name in ("..", "/", "a\\..\\board.yaml", ".hidden.yaml", "notes.txt", "x" * 600 + ".yaml"):
        response = _post(client, f"/admin/schemes/versions/{version}/file",
                         {"file": (io.BytesIO(b"kind: board\n"), name), "note": "n" * 2000},
                         f"/admin/schemes/versions/{version}")
        assert response.status_code == 400, name
    response = _post(client, page, {"data": json.dumps(deep), "note": "n" * 2000}, page)
    assert response.status_code == 400
    assert db.session.scalar(db.select(db.func.count(SchemeVersion.id))) == 1
