"""A new district from a template: the id and names, then its units and roads from a spreadsheet, each step a
draft; activated, it is a district of its own."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook

from server.definitions.models import SchemeVersion
from server.definitions.service import current_version
from server.extensions import db
from server.org.models import Area, Unit
from tests.conftest import csrf_token
from tests.support.factories import login, make_user


@pytest.fixture
def admin(ctx, client):
    make_user("root", admin=True)
    login(client, "root")
    return client


def _workbook(units: list[list], areas: list[list]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "units"
    for row in [["key", "kind", "parent", "name_zh", "name_en"], *units]:
        sheet.append(row)
    sheet = book.create_sheet("areas")
    for row in [["key", "kind", "parent", "unit", "name_zh", "name_en", "from_zh", "to_zh", "length_m"], *areas]:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _version_in(response) -> int:  # noqa: ANN001
    return int(response.headers["Location"].split("/versions/", 1)[1].split("/", 1)[0])


def test_a_new_district_from_a_template_with_its_own_units_and_roads(admin):
    page = "/admin/schemes/new"
    response = admin.post(page, data={"csrf_token": csrf_token(admin, page), "template": "lidu", "key": "xinqiao",
                                      "name_zh": "新桥街道马路办公", "name_en": "", "short_zh": "新桥街道",
                                      "short_en": "Xinqiao"})
    assert response.status_code == 303, response.get_data(as_text=True)
    first = _version_in(response)
    version = db.session.get(SchemeVersion, first)
    assert version.scheme_key == "xinqiao" and version.activated_at is None
    assert version.scheme_definition.data["name"] == "新桥街道马路办公"
    assert version.scheme_definition.data["short_name"] == {"zh": "新桥街道", "en": "Xinqiao"}
    files = {f.path: f.content.decode() for f in version.files}
    assert files["scheme.yaml"].startswith("# 新桥街道")  # the template's comments come along, names changed
    # Nor on its boards and score sheets (the template's places go with its units and roads, below).
    assert version.member("board", "lidu_road_board").data["subtitle"]["zh"].startswith("新桥街道")
    assert version.member("score_sheet", "lidu_monthly").data["name"]["zh"].startswith("新桥街道")
    assert "issued_by" not in version.scheme_definition.data

    # The same id again is refused by name.
    again = admin.post(page, data={"csrf_token": csrf_token(admin, page), "template": "lidu", "key": "xinqiao",
                                   "name_zh": "甲", "short_zh": "甲"})
    assert again.status_code == 400 and "xinqiao" in again.get_data(as_text=True)

    # Units and roads from the organisation workbook.
    setup = f"/admin/schemes/versions/{first}/setup"
    page_text = admin.get(setup).get_data(as_text=True)
    assert "<code>town_office</code>" in page_text  # the template's routing names it: the sheet should keep it
    units = [["xinqiao_street", "street", None, "新桥街道办事处", None],
             ["town_office", "office", "xinqiao_street", "城镇综合管理办公室", None],
             ["xinqiao_community", "community", "xinqiao_street", "新桥社区", None]]
    areas = [["xinqiao_zone", "town", None, "xinqiao_community", "新桥片区", None, None, None, None],
             ["bridge_road", "road", "xinqiao_zone", "xinqiao_community", "新桥路", None, "桥头", "菜场", 640]]
    response = admin.post(f"/admin/schemes/versions/{first}/organisation",
                          data={"csrf_token": csrf_token(admin, setup),
                                "workbook": (io.BytesIO(_workbook(units, areas)), "org.xlsx")},
                          content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)
    second = _version_in(response)
    data = db.session.get(SchemeVersion, second).scheme_definition.data
    assert [u["id"] for u in data["units"]] == ["xinqiao_street"]
    assert [c["id"] for c in data["units"][0]["children"]] == ["town_office", "xinqiao_community"]
    road = data["areas"][0]["children"][0]
    assert road == {"id": "bridge_road", "kind": "road", "name": "新桥路", "unit": "xinqiao_community",
                    "from": "桥头", "to": "菜场", "length_m": 640}

    # A sheet with problems is refused by sheet, row and column, every problem at once, and nothing is stored.
    count = db.session.scalar(db.select(db.func.count(SchemeVersion.id)))
    bad = _workbook([["a", "street", "nowhere", "甲", None], ["b", "village", None, "乙", None]],
                    [["r", "road", None, "someone", "某路", None, None, None, None]])
    response = admin.post(f"/admin/schemes/versions/{second}/organisation",
                          data={"csrf_token": csrf_token(admin, setup), "workbook": (io.BytesIO(bad), "org.xlsx")},
                          content_type="multipart/form-data")
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and "nowhere" in body and "village" in body and "someone" in body
    assert body.count("第 2 行") == 2 and "第 3 行" in body  # units row 2 and 3, areas row 2
    assert db.session.scalar(db.select(db.func.count(SchemeVersion.id))) == count

    # Activated, the district has the sheet's units and roads.
    admin.post(f"/admin/schemes/versions/{second}/activate", data={"csrf_token": csrf_token(admin, setup)})
    assert current_version("xinqiao").id == second
    assert db.session.scalar(db.select(Area).filter_by(scheme_key="xinqiao", key="bridge_road")) is not None
    assert db.session.scalar(db.select(db.func.count(Unit.id)).filter_by(scheme_key="xinqiao")) == 3


def test_only_system_administrators_start_districts(ctx, client):
    from tests.support.factories import load_demo

    load_demo()
    make_user("office", roles=(("lidu", "office_admin", None),))
    login(client, "office")
    assert client.get("/admin/schemes/new").status_code == 403
