"""Maps in Chromium, on tiles from a tile server the test starts (tiles it draws itself): a citizen reports a
problem by tapping the map and dragging the pin, the road or grid there is picked for them; the office finds
the case on the queue's map and follows it to its page; the public map shows it once approved; and a district
whose tiles are GCJ-02 (高德, Tencent) has its WGS-84 places moved onto them, as gcoord says and as the
published formula gives."""

from __future__ import annotations

import io
import json
import math
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image, ImageDraw

from server.extensions import db
from server.public.models import PublicReport
from tests.browser.conftest import logged_in, phone_context
from tests.support.postgres import free_port

pytestmark = pytest.mark.browser

ON_NORTH_SEGMENT = (29.7503, 107.30895)  # on Shilong Old Street's north segment (the demo's shapes)
IN_MARKET_ZONE = (29.7445, 107.3128)


class TileServer:
    """Tiles drawn here (a grey square with its z/x/y), counted as they are asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                found = re.fullmatch(r"/tiles/(\d+)/(\d+)/(\d+)\.png", self.path)
                if not found:
                    self.send_error(404)
                    return
                served.asked.append(self.path)
                image = Image.new("RGB", (256, 256), (232, 236, 232))
                ImageDraw.Draw(image).text((8, 8), "/".join(found.groups()), fill=(90, 90, 90))
                body = io.BytesIO()
                image.save(body, "PNG")
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(body.tell()))
                self.end_headers()
                self.wfile.write(body.getvalue())

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/tiles/{{z}}/{{x}}/{{y}}.png"

    def __enter__(self) -> TileServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tiles(live_server) -> Iterator[TileServer]:
    """The site's maps on the test's tile server (and the kept report page drawn again with them)."""
    from server.public.views import KEPT_PAGES

    before = live_server.app.config.get("FANGAN_MAP_TILES")
    with TileServer() as server:
        live_server.app.config["FANGAN_MAP_TILES"] = {"source": "xyz", "url": server.url, "max_zoom": 19}
        KEPT_PAGES.clear()
        yield server
        live_server.app.config["FANGAN_MAP_TILES"] = before
        KEPT_PAGES.clear()


def _tap(page, lat: float, lng: float, selector: str = ".map") -> None:  # noqa: ANN001
    """Click the map at a position (WGS-84 here, the tiles' too)."""
    box = page.locator(selector).bounding_box()
    point = page.evaluate(f"document.querySelector('{selector}').fanganMap.latLngToContainerPoint([{lat}, {lng}])")
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])


def test_a_report_placed_on_the_map_found_on_the_queues_map_and_the_public_map(browser, live_server, tiles):
    url = live_server.url
    live_server.app.config["FANGAN_MIN_FILL_SECONDS"] = 1
    context = phone_context(browser)
    citizen = context.new_page()
    citizen.set_default_timeout(20_000)
    errors: list[str] = []
    citizen.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    # From the board's QR code: the road is picked, and the map shows it.
    citizen.goto(url + "/p/lidu/report?area=shilong_old_street")
    citizen.wait_for_selector(".map[data-map-ready] img.leaflet-tile-loaded")
    citizen.wait_for_selector(".map path.map-shape")
    assert tiles.asked, "the map asked the test's tile server for nothing"
    # A tap on the street: the pin goes there and the street's segment is picked below.
    _tap(citizen, *ON_NORTH_SEGMENT)
    area = citizen.locator("select[name='location-area']")
    citizen.wait_for_function("() => document.querySelector(\"select[name='location-area']\").value"
                              " === 'shilong_old_street_north'")
    assert abs(float(citizen.locator("[data-geo-lat]").input_value()) - ON_NORTH_SEGMENT[0]) < 0.0002
    # Dragged to the market: the zone is picked instead, and the position follows the pin. (Both in sight first:
    # a pin dragged to the map's edge pans it, as a person would want, and the test would lose its aim.)
    citizen.evaluate(f"document.querySelector('.map').fanganMap.fitBounds([[{ON_NORTH_SEGMENT[0]}, "
                     f"{ON_NORTH_SEGMENT[1]}], [{IN_MARKET_ZONE[0]}, {IN_MARKET_ZONE[1]}]], {{padding: [70, 70]}})")
    citizen.wait_for_timeout(400)
    pin = citizen.locator(".map .leaflet-marker-icon").bounding_box()
    box = citizen.locator(".map").bounding_box()
    target = citizen.evaluate(f"document.querySelector('.map').fanganMap.latLngToContainerPoint("
                              f"[{IN_MARKET_ZONE[0]}, {IN_MARKET_ZONE[1]}])")
    citizen.mouse.move(pin["x"] + pin["width"] / 2, pin["y"] + pin["height"] - 2)
    citizen.mouse.down()
    citizen.mouse.move(box["x"] + target["x"], box["y"] + target["y"], steps=12)
    citizen.mouse.up()
    citizen.wait_for_function("() => document.querySelector(\"select[name='location-area']\").value"
                              " === 'shilong_market_zone'")
    lat, lng = (float(citizen.locator(s).input_value()) for s in ("[data-geo-lat]", "[data-geo-lng]"))
    assert abs(lat - IN_MARKET_ZONE[0]) < 0.0003 and abs(lng - IN_MARKET_ZONE[1]) < 0.0003
    assert area.input_value() == "shilong_market_zone"
    citizen.get_by_label("问题类别").select_option("street_stalls")
    citizen.get_by_label("问题描述").fill("市场门口流动摊贩占道")
    citizen.get_by_label("电话").fill("13812345679")
    citizen.wait_for_timeout(1100)
    citizen.get_by_role("button", name="提交举报").click()
    citizen.wait_for_url(re.compile(r".*/p/track/[0-9A-Z]{10}$"))
    code = citizen.url.rsplit("/", 1)[1]
    with live_server.app.app_context():
        report = db.session.scalar(db.select(PublicReport).filter_by(code=code))
        number, case_id = report.id, report.case_id
        where = report.case.submission.location
        assert abs(where["lat"] - lat) < 1e-6 and abs(where["lng"] - lng) < 1e-6 and "accuracy" not in where
        assert report.case.area.key == "shilong_market_zone"
        db.session.remove()
    assert not [e for e in errors if "Content Security Policy" in e], errors

    # The office opens the queue's map: the case is a pin there, and its popup leads to the case.
    office_ctx, office = logged_in(browser, live_server, "office")
    office.goto(url + "/cases/lidu/?box=all&q=" + str(case_id))
    office.get_by_text("这些案件的地图").click()
    office.wait_for_selector(".queue-map .map[data-points='1']")
    office.locator(".queue-map .leaflet-marker-icon").first.click()
    office.locator(".leaflet-popup-content a", has_text=f"#{case_id}").click()
    office.wait_for_url(f"{url}/cases/case/{case_id}")
    office.wait_for_selector(".map[data-map-ready] .leaflet-marker-icon")  # the case's own map: its pin
    office.goto(url + "/assess/lidu/dashboard")  # the leaders' heat map of this month's cases
    office.wait_for_selector("#heat .map[data-points] canvas.leaflet-heatmap-layer")
    assert int(office.locator("#heat .map").get_attribute("data-points")) >= 1
    office.wait_for_selector("#open-map .map[data-points] .leaflet-marker-icon")  # and its open cases, as pins
    office.goto(url + "/moderation/lidu/")
    card = office.locator("article", has_text=f"举报 #{number}")
    card.get_by_label("处理结果").select_option("approved")
    card.get_by_role("button", name="保存").click()
    office.wait_for_url(url + "/moderation/lidu/")

    # Anyone can now see it on the public map, roughly where it was, and follow it to its page.
    citizen.goto(url + "/p/lidu/map")
    citizen.wait_for_selector(".map[data-points]")
    assert int(citizen.locator(".map").get_attribute("data-points")) >= 1
    shown = citizen.evaluate("""() => {
        const found = [];
        document.querySelector('.map').fanganMap.eachLayer(l => { if (l.getLatLng && l.options.title) found.push(
            [l.getLatLng().lat, l.getLatLng().lng, l.options.title]); });
        return found; }""")
    near = [p for p in shown if abs(p[0] - lat) < 0.001 and abs(p[1] - lng) < 0.001]
    assert near and all((p[0], p[1]) != (lat, lng) for p in near)  # close, never exact
    office_ctx.close()
    context.close()


# The published GCJ-02 formula (the one 高德 and Tencent use), written out here: gcoord's answer is checked
# against it, not against itself.
def _gcj02(lat: float, lng: float) -> tuple[float, float]:
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = lng - 105.0, lat - 35.0
    d_lat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
             + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
             + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
             + (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0)
    d_lng = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
             + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
             + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
             + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - ee * math.sin(rad) ** 2
    d_lat = (d_lat * 180.0) / ((a * (1 - ee)) / (magic * math.sqrt(magic)) * math.pi)
    d_lng = (d_lng * 180.0) / (a / math.sqrt(magic) * math.cos(rad) * math.pi)
    return lat + d_lat, lng + d_lng


def test_places_are_moved_onto_gcj02_tiles_and_a_pin_moved_back(browser, live_server, tiles):
    live_server.app.config["FANGAN_MAP_TILES"] = {"source": "xyz", "url": tiles.url, "datum": "gcj02"}
    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.goto(live_server.url + "/b/lidu/shilong_old_street")
    page.wait_for_selector(".map[data-map-ready]")
    # A known point both ways: Shilong Old Street's north end, WGS-84 → GCJ-02 (about 500 m off) and back.
    there = page.evaluate("gcoord.transform([107.308, 29.752], gcoord.WGS84, gcoord.GCJ02)")
    expected = _gcj02(29.752, 107.308)
    assert abs(there[1] - expected[0]) < 1e-6 and abs(there[0] - expected[1]) < 1e-6
    assert 300 < math.dist(there, (107.308, 29.752)) * 111_000 < 800
    back = page.evaluate(f"gcoord.transform([{there[0]}, {there[1]}], gcoord.GCJ02, gcoord.WGS84)")
    assert abs(back[0] - 107.308) < 1e-5 and abs(back[1] - 29.752) < 1e-5  # within a metre
    # The road as drawn on those tiles starts where the formula puts its first point.
    first = page.evaluate("""() => { let p = null; document.querySelector('.map').fanganMap.eachLayer(l => {
        if (l.getLatLngs && !p) { const ll = l.getLatLngs(); p = [ll[0].lat, ll[0].lng]; } }); return p; }""")
    assert abs(first[0] - expected[0]) < 1e-6 and abs(first[1] - expected[1]) < 1e-6
    page.close()


def test_the_office_draws_a_new_road_on_the_map(browser, live_server, tiles):
    url = live_server.url
    context, office = logged_in(browser, live_server, "office")
    office.set_viewport_size({"width": 1100, "height": 900})
    office.goto(url + "/org/lidu/areas/new?parent=shilong_town")
    office.wait_for_selector(".map[data-map-ready] path.map-around")  # the town and its streets, to snap to
    office.get_by_label("编码").fill("market_back_lane")
    office.get_by_label("类别", exact=True).select_option("road")
    office.get_by_label("名称（中文）").fill("市场后巷")
    office.locator(".leaflet-pm-icon-polyline").click()
    points = [(29.7460, 107.3100), (29.7466, 107.3120), (29.7474, 107.3140)]
    for lat, lng in points:
        _tap(office, lat, lng)
        office.wait_for_timeout(150)
    office.get_by_role("button", name="保存").click()  # saved while still drawing: held back, and said why
    office.wait_for_selector("[data-draw-unfinished]:not([hidden])")
    assert office.url.endswith("/org/lidu/areas/new?parent=shilong_town")
    _tap(office, *points[-1])  # the last point again: the line is finished
    office.wait_for_function("() => document.querySelector('.map').dataset.drawn === 'LineString'")
    drawn = office.locator("#geometry").input_value()
    assert '"type":"LineString"' in drawn
    office.get_by_role("button", name="保存").click()
    office.wait_for_url(re.compile(r".*/org/areas/\d+$"))
    with live_server.app.app_context():
        from server.org.models import Area

        lane = db.session.scalar(db.select(Area).filter_by(scheme_key="lidu", key="market_back_lane"))
        coordinates = lane.geometry["coordinates"]
        db.session.remove()
    assert lane.geometry["type"] == "LineString" and len(coordinates) == 3
    for (lat, lng), (x, y) in zip(points, coordinates, strict=True):
        assert abs(y - lat) < 0.0001 and abs(x - lng) < 0.0001  # where it was drawn, in WGS-84
    context.close()


def test_a_patrol_records_its_route_from_the_phones_positions(browser, live_server):
    from server.auth.models import User
    from server.org.posts import appoint
    from tests.support.factories import make_user

    with live_server.app.app_context():  # (the live server is the session's: the walker may be there already)
        if db.session.scalar(db.select(User.id).filter_by(username="walker")) is None:
            make_user("walker", roles=(("lidu", "staff", "shilong"),))
            appoint("lidu", "segment_keeper", "李走", area_key="shilong_old_street_north", username="walker")
            db.session.commit()
        db.session.remove()
    context, page = logged_in(browser, live_server, "walker")
    context.grant_permissions(["geolocation"], origin=live_server.url)
    path = [(29.7520, 107.3080), (29.7512, 107.3084), (29.7503, 107.30895), (29.7494, 107.3094)]
    context.set_geolocation({"latitude": path[0][0], "longitude": path[0][1], "accuracy": 8})
    page.goto(live_server.url + "/f/lidu/patrol_log/new")
    page.get_by_role("button", name="记录我的路线").click()
    for lat, lng in path[1:]:
        page.wait_for_timeout(400)
        context.set_geolocation({"latitude": lat, "longitude": lng, "accuracy": 8})
    page.wait_for_function("() => JSON.parse(document.querySelector('[data-route-input]').value || '{}')"
                           ".coordinates?.length === 4")
    page.get_by_role("button", name="停止记录").click()
    assert "已记录路线：4 个位置" in page.locator("[data-route-status]").inner_text()
    route = json.loads(page.locator("[data-route-input]").input_value())
    assert route["coordinates"][0] == [path[0][1], path[0][0]] and route["type"] == "LineString"
    context.set_geolocation({"latitude": 29.74, "longitude": 107.32, "accuracy": 8})  # stopped: not recorded
    page.wait_for_timeout(400)
    assert len(json.loads(page.locator("[data-route-input]").input_value())["coordinates"]) == 4
    context.close()
