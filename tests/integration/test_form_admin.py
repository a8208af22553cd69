"""Administrators: preview any form version (nothing stored) and import an XLSForm that then renders."""

from __future__ import annotations

import io
import re

import pytest

from server.definitions.models import DefinitionVersion
from server.definitions.service import load_scheme
from server.extensions import db
from server.forms.models import Submission, Upload
from server.forms.xlsform import import_xlsform
from tests.conftest import csrf_token
from tests.support.factories import load_demo, login, make_user
from tests.support.images import jpeg
from tests.unit.test_xlsform import FULL_CHOICES, FULL_SETTINGS, FULL_SURVEY, HEADERS, row, scheme_with, workbook
from tests.unit.test_xlsform_corpus import CORPUS, xls_workbook


@pytest.fixture
def admin(ctx, client):
    load_demo()
    make_user("root", admin=True)
    login(client, "root")
    return client


def _form_version(key: str) -> DefinitionVersion:
    return db.session.scalar(db.select(DefinitionVersion).filter_by(kind="form", key=key))


def test_preview_validates_and_stores_nothing(admin):
    row_ = _form_version("patrol_log")
    url = f"/admin/definitions/{row_.id}/preview"
    page = admin.get(url).get_data(as_text=True)
    assert "预览" in page and "巡查区域" in page
    token = re.search(r'name="_token" value="([^"]+)"', page).group(1)
    data = {"csrf_token": csrf_token(admin, url), "_token": token, "participants": "0", "_action": "submit",
            "photos": [(io.BytesIO(jpeg()), "a.jpg")]}
    response = admin.post(url, data=data, content_type="multipart/form-data")
    assert response.status_code == 400 and "参加人数至少为1人" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Submission.id))) == 0
    assert db.session.scalar(db.select(db.func.count(Upload.id))) == 0


def test_preview_of_a_version_not_yet_activated(admin):
    files = scheme_with(import_xlsform(workbook(FULL_SURVEY, FULL_CHOICES, FULL_SETTINGS), "fruit.xlsx").definition)
    load_scheme(files)  # stored, not activated
    db.session.commit()
    row_ = _form_version("fruit_survey")
    url = f"/admin/definitions/{row_.id}/preview"
    page = admin.get(url).get_data(as_text=True)
    assert "水果调查" in page and 'name="items-0-item_name"' in page
    assert re.search(r'id="f-details"[^>]*hidden', page)  # relevance: qty > 3
    refreshed = admin.post(url, data={"csrf_token": csrf_token(admin, url), "_token": "t", "qty": "5",
                                      "kind": "apple", "_action": "refresh"}).get_data(as_text=True)
    assert not re.search(r'id="f-details"[^>]*hidden', refreshed)
    extras = re.search(r'id="f-extras".*?</fieldset>', refreshed, re.S).group(0)
    assert 'value="pear"' in extras and 'value="apple"' not in extras  # the choice filter
    checked = admin.post(url, data={"csrf_token": csrf_token(admin, url), "_token": "t", "qty": "500",
                                    "_action": "submit"}).get_data(as_text=True)
    assert "数量须在0到100之间" in checked


def test_xlsform_import_page(admin):
    url = "/admin/forms/import"
    data = {"csrf_token": csrf_token(admin, url),
            "workbook": (io.BytesIO(workbook(FULL_SURVEY, FULL_CHOICES, FULL_SETTINGS)), "fruit.xlsx")}
    page = admin.post(url, data=data, content_type="multipart/form-data").get_data(as_text=True)
    assert "id: fruit_survey" in page and "visible_if: qty &gt; 3" in page
    assert 'id="left-out"' not in page and "start" in page  # metadata is noted as skipped, not left out

    # What cannot be converted is left out and named, in Chinese on the Chinese page; the rest is there.
    bad = workbook([HEADERS, row("text", "a", "甲"), row("geotrace", "line", "路线")], FULL_CHOICES, FULL_SETTINGS)
    response = admin.post(url, data={"csrf_token": csrf_token(admin, url), "workbook": (io.BytesIO(bad), "bad.xlsx")},
                          content_type="multipart/form-data")
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="left-out"' in text
    assert "survey 表第 3 行（line），type 列：不支持题型 &#39;geotrace&#39;" in text
    assert "- id: a" in text and "id: line" not in text

    # Strict: refused, nothing to copy.
    response = admin.post(url, data={"csrf_token": csrf_token(admin, url), "workbook": (io.BytesIO(bad), "bad.xlsx"),
                                     "strict": "y"}, content_type="multipart/form-data")
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and "kind: form" not in text and "取消勾选" in text

    # An .xls workbook with its attached CSV.
    book = CORPUS["select_from_file"]
    response = admin.post(url, data={"csrf_token": csrf_token(admin, url),
                                     "workbook": (io.BytesIO(xls_workbook(book.survey)), "villages.xls"),
                                     "attachments": [(io.BytesIO(data), name) for name, data in
                                                     book.attachments.items()]},
                          content_type="multipart/form-data")
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "label: 上村" in text and "value: s2" in text
    assert "roads.geojson" in text and "missing.csv" in text  # the two rows left out, with why


def test_imported_cascading_select_narrows_on_the_page(admin):
    book = CORPUS["xls_cascading"]
    load_scheme(scheme_with(import_xlsform(book.data(), "old.xls").definition))
    db.session.commit()
    url = f"/admin/definitions/{_form_version('old_format').id}/preview"
    page = admin.post(url, data={"csrf_token": csrf_token(admin, url), "_token": "t", "street": "xj",
                                 "_action": "refresh"}).get_data(as_text=True)
    community = page[page.index('name="community"'):]
    assert 'value="xj1"' in community and 'value="dj1"' not in community


def test_xlsform_cli(ctx, tmp_path):
    book = tmp_path / "fruit.xlsx"
    book.write_bytes(workbook(FULL_SURVEY, FULL_CHOICES, FULL_SETTINGS))
    result = ctx.test_cli_runner().invoke(args=["form", "import-xlsform", str(book)])
    assert result.exit_code == 0 and "id: fruit_survey" in result.output
    book.write_bytes(workbook([HEADERS, row("text", "a", "甲"), row("geotrace", "line", "路线")], FULL_CHOICES,
                              FULL_SETTINGS))
    result = ctx.test_cli_runner().invoke(args=["form", "import-xlsform", str(book)])
    assert result.exit_code == 0 and "left out: survey row 3 (line), column type" in result.output
    assert "- id: a" in result.output
    result = ctx.test_cli_runner().invoke(args=["form", "import-xlsform", "--strict", str(book)])
    assert result.exit_code == 1 and "survey row 3 (line), column type" in result.output
    assert "- id: a" not in result.output and "--strict: without it" in result.output

    # .xls, with the CSV from WORKBOOK-media/ and one given with --attach
    files = CORPUS["select_from_file"]
    old = tmp_path / "villages.xls"
    old.write_bytes(xls_workbook(files.survey))
    (tmp_path / "villages-media").mkdir()
    (tmp_path / "villages-media" / "villages.csv").write_bytes(files.attachments["villages.csv"])
    (tmp_path / "shops.csv").write_bytes(files.attachments["shops.csv"])
    out = tmp_path / "villages.yaml"
    result = ctx.test_cli_runner().invoke(args=["form", "import-xlsform", str(old), "--attach",
                                                str(tmp_path / "shops.csv"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text("utf-8")
    assert "label: 上村" in text and "label: 二号店" in text
    assert "missing.csv' is not attached" in result.output


def test_a_cascading_select_says_why_it_is_empty(admin):
    load_scheme(scheme_with(import_xlsform(CORPUS["cascading_selects"].data(), "streets.xlsx").definition))
    db.session.commit()
    page = admin.get(f"/admin/definitions/{_form_version('streets').id}/preview").get_data(as_text=True)
    community = page[page.index('id="f-community"'):page.index('id="f-also"')]
    assert "暂无选项：请先填写上面的相关内容。" in community and "<option value=\"dj1\"" not in community
    street = page[page.index('id="f-street"'):page.index('id="f-community"')]
    assert "暂无选项" not in street
