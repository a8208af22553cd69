"""A district of a city's size: past LONG_LIST places, a place field is a search by name (htmx fills the list as
one types) instead of thousands of options sent to every phone; without JavaScript the name typed is sent with
the form, one match is taken and several are offered to pick from, the rest of what was typed kept."""

from __future__ import annotations

import io
import re

import pytest

from server.extensions import db
from server.forms.service import LONG_LIST
from server.public.models import PublicReport
from tests.integration.test_public import _photo
from tests.support.factories import add_roads, load_demo, login, make_user


@pytest.fixture
def city(app):
    """The demo district with 120 more roads, two of them 人民路 and 人民东路."""
    app.config["FANGAN_MIN_FILL_SECONDS"] = 0
    with app.app_context():
        load_demo()
        names = ["人民路", "人民东路"] + [f"第{i}号路" for i in range(118)]
        add_roads(names)
        make_user("staffer", roles=(("lidu", "staff", "shilong"),))
        db.session.commit()
    yield app
    app.config.pop("FANGAN_MIN_FILL_SECONDS", None)


def _fields(html: str) -> dict[str, str]:
    return {name: re.search(rf'name="{name}"[^>]*value="([^"]*)"', html).group(1)
            for name in ("csrf_token", "_token", "_stamp")}


def _send(client, **values) -> tuple[int, str]:  # noqa: ANN001, ANN003
    form = _fields(client.get("/p/lidu/report").get_data(as_text=True))
    data = {**form, "_action": "submit", "website": "", "category": "random_piling", "location-area": "",
            "description": "商户占道堆放货物", "photos_before": (io.BytesIO(_photo()), "p.jpg"), **values}
    response = client.post("/p/lidu/report", data=data, content_type="multipart/form-data")
    return response.status_code, response.get_data(as_text=True)


def test_the_public_form_sends_a_search_not_every_road(city):
    page = city.test_client().get("/p/lidu/report").get_data(as_text=True)
    assert 'name="location-area-q"' in page and 'hx-get="/f/lidu/public_report/places?field=location"' in page
    assert "第117号路" not in page and '<option value="road_0' not in page  # not the 124 roads
    assert re.search(r"共 1[23]\d 条道路和网格", page)  # the demo's places and the 120 roads
    board = city.test_client().get("/p/lidu/report?area=road_001").get_data(as_text=True)
    assert '<option value="road_001" selected>人民东路</option>' in board  # a board's road stays picked


def test_a_page_counts_the_places_and_reads_only_the_one_picked(city, monkeypatch):
    """Showing the form costs the same with 120 roads as with 12,000: the places are counted in the database,
    and only a picked one is read; a staff form of a unit's reach still lists what is theirs."""
    from server.forms import choices

    asked: list[str] = []
    every, some = choices._all_areas, choices._places_query
    monkeypatch.setattr(choices, "_all_areas", lambda: asked.append("every place") or every())
    monkeypatch.setattr(choices, "_places_query", lambda *a: asked.append("the picked") or some(*a))
    anonymous = city.test_client()
    assert re.search(r"共 1[23]\d 条道路和网格", anonymous.get("/p/lidu/report").get_data(as_text=True))
    assert asked == []  # counted, not read
    board = anonymous.get("/p/lidu/report?area=road_001").get_data(as_text=True)
    assert '<option value="road_001" selected>人民东路</option>' in board and asked == ["the picked"]


def test_only_place_fields_come_as_a_count(city):
    """The place fields (area, location) draw a search past LONG_LIST: they get the count and what is picked. A
    choice field listing the places (`choices_from: areas`) draws every option, so it gets them all."""
    from server.forms import builder
    from server.forms.engine import form_spec
    from server.forms.service import choice_source

    with city.test_request_context():
        admin = make_user("root", admin=True)
        spec = form_spec({"kind": "form", "id": "x", "name": "x", "fields": [
            {"id": "listed", "type": "single_choice", "choices_from": "areas"},
            {"id": "road", "type": "area"}]})
        form = builder.bind(spec)
        shown = builder.apply_choices(spec, form, {"road": "road_001"}, {}, choice_source(admin, "lidu"))
        assert len(shown["listed"]) == len(list(shown["listed"])) > LONG_LIST
        assert len(shown["road"]) == len(shown["listed"]) and [v for v, _l in shown["road"]] == ["road_001"]


def test_the_search_box_finds_places_by_name(city):
    anonymous = city.test_client()
    found = anonymous.get("/f/lidu/public_report/places?field=location&location-area-q=人民").get_data(as_text=True)
    assert "2 个地点相符" in found and ">人民路</option>" in found and ">人民东路</option>" in found
    one = anonymous.get("/f/lidu/public_report/places?field=location&location-area-q=人民东").get_data(as_text=True)
    assert '<option value="road_001" selected>人民东路</option>' in one
    many = anonymous.get("/f/lidu/public_report/places?field=location&location-area-q=号路").get_data(as_text=True)
    assert many.count("<option") == 31 and "显示前 30 个" in many  # 118 match: the first 30, and it says so
    none = anonymous.get("/f/lidu/public_report/places?field=location&location-area-q=%3Cb%3E").get_data(as_text=True)
    assert "没有名为“&lt;b&gt;”的地点" in none
    assert anonymous.get("/f/lidu/patrol_log/places?field=area&area-q=人民").status_code == 403  # not public
    assert anonymous.get("/f/lidu/public_report/places?field=description&x-q=人").status_code == 404
    staff = city.test_client()
    login(staff, "staffer")
    assert ">人民路</option>" in staff.get("/f/lidu/problem_report/places?field=area&area-q=人民").get_data(
        as_text=True)


def test_without_javascript_a_typed_name_is_taken_or_offered(city):
    client = city.test_client()
    status, page = _send(client, **{"location-area-q": "人民"})
    assert status == 400 and "有 2 个地点与“人民”相符，请选择一个。" in page
    assert 'value="人民"' in page and "商户占道堆放货物" in page  # what was typed is kept
    assert '<option value="road_000">人民路</option>' in page and '<option value="road_001">人民东路</option>' in page
    status, _page = _send(client, **{"location-area-q": "人民东"})
    assert status == 303
    with city.app_context():
        report = db.session.scalar(db.select(PublicReport).order_by(PublicReport.id.desc()))
        assert report.case.area.key == "road_001"
    status, _page = _send(client, **{"location-area-q": "人民", "location-area": "road_000"})
    assert status == 303  # picked from the list: the pick wins over the words
    status, page = _send(client, **{"location-area-q": "无此路"})
    assert status == 400 and "没有名为“无此路”的地点。" in page


def test_a_short_list_stays_a_list(app):
    with app.app_context():
        load_demo()
    page = app.test_client().get("/p/lidu/report").get_data(as_text=True)
    assert 'name="location-area-q"' not in page and '<option value="zhiyuan_road"' in page
    assert LONG_LIST > 4


def test_the_public_forms_search_is_the_publics_whoever_is_logged_in(city):
    """Logged in without a role in the district (or with a narrower reach), the public report form's search
    still offers what the public may pick: the form is filled as the public."""
    from tests.support.factories import make_user

    with city.app_context():
        make_user("outsider")
        db.session.commit()
    client = city.test_client()
    login(client, "outsider")
    found = client.get("/f/lidu/public_report/places?field=location&location-area-q=人民东")
    assert found.status_code == 200 and ">人民东路</option>" in found.get_data(as_text=True)
