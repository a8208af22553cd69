"""A citizen in a city district of many roads finds hers by typing a few characters of its name, picks it
from the list the search fills, and reports; the page never carried the whole list."""

from __future__ import annotations

import io
import re
import threading

import pytest
from PIL import Image
from werkzeug.serving import make_server

from server.extensions import db
from server.public.models import PublicReport
from tests.browser.conftest import phone_context
from tests.conftest import make_app
from tests.support.factories import add_roads, load_demo
from tests.support.postgres import free_port

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def city_server(tmp_path_factory):
    """A server of its own (the shared one keeps the demo's four roads): the demo with 300 more roads."""
    folder = tmp_path_factory.mktemp("city")
    app = make_app(f"sqlite:///{folder / 'city.sqlite'}", folder, FANGAN_MIN_FILL_SECONDS=0)
    with app.app_context():
        load_demo()
        names = ["人民路", "人民东路"] + [f"第{i}号路" for i in range(298)]
        add_roads(names)
        db.session.commit()
        db.session.remove()
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)
    with app.app_context():
        db.engine.dispose()


def test_a_citizen_finds_her_road_by_name(browser, city_server):
    app, url = city_server
    context = phone_context(browser, service_workers="block")
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    searches: list[str] = []
    page.on("request", lambda r: searches.append(r.url) if "/places" in r.url else None)
    response = page.goto(url + "/p/lidu/report")
    assert "第297号路" not in response.text()  # the page does not carry the 300 roads
    places = page.locator("select[name='location-area']")
    assert places.locator("option").count() == 1
    page.get_by_label("按名称查找道路或网格").fill("人民")
    page.get_by_role("option", name="人民东路").wait_for(state="attached")  # the search filled the list
    assert places.locator("option").count() == 3  # "2 个地点相符" and the two roads
    assert searches and all("csrf_token" not in s and "_token" not in s for s in searches)  # only what was typed
    places.select_option("road_001")
    page.get_by_label("问题类别").select_option("street_stalls")
    page.get_by_label("问题描述").fill("早餐摊占用人行道")
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), "orange").save(buffer, "JPEG")
    page.get_by_label("现场照片").set_input_files({"name": "p.jpg", "mimeType": "image/jpeg",
                                                 "buffer": buffer.getvalue()})
    page.get_by_role("button", name="提交举报").click()
    page.wait_for_url(re.compile(r".*/p/track/[0-9A-Z]{10}$"))
    with app.app_context():
        report = db.session.scalar(db.select(PublicReport).order_by(PublicReport.id.desc()))
        assert report.case.area.key == "road_001"
        db.session.remove()
    assert not [e for e in errors if "Content Security Policy" in e], errors
    context.close()
