"""Maps: a board's road, a case's place and position, the queue's cases within reach, the road proposed at a
pin, the public map's approximate reports, the tile servers a page may load from, and the map settings a
definition may give; on both databases."""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re

import pytest
import time_machine
from flask import current_app

from server.core.clock import utcnow
from server.extensions import db
from server.public import service as public
from server.public.engine import approximate
from server.public.models import PublicReport
from tests.support.factories import formdata, load_demo, login, make_user, photo
from tests.support.images import jpeg
from tests.support.schemes import MINI_SCHEME
from tests.support.security import csrf_of
from tests.unit.test_definitions import MINI_FORM, errors_of

ON_NORTH_SEGMENT = (29.7503, 107.30895)  # halfway along Shilong Old Street's north segment (the demo's shapes)
ON_ZHIYUAN_ROAD = (29.76125, 107.298)


@pytest.fixture
def district(ctx):
    load_demo()
    make_user("office", roles=(("lidu", "office_admin", None),))
    make_user("head", roles=(("lidu", "unit_head", "shilong"),))
    db.session.commit()


def _report(at: tuple[float, float] | None, token: str, description: str = "路边堆放建筑垃圾",
            area: str | None = None) -> PublicReport:
    fields = {"location-lat": str(at[0]), "location-lng": str(at[1])} if at else {}
    if area:
        fields["location-area"] = area
    with current_app.test_request_context():  # (a form reads its request)
        result = public.submit_report("lidu", formdata(_token=token, category="random_piling",
                                                       description=description, photos_before=photo(), **fields),
                                      public.Reporter(name="李四", phone="13900139000", address="10.0.0.9"))
    assert isinstance(result, PublicReport), getattr(result, "errors", result)
    db.session.commit()
    return result


def _map_of(page: str) -> dict:
    found = re.search(r'data-map="([^"]*)"', page)
    assert found, "no map on the page"
    return json.loads(html.unescape(found.group(1)))


def test_the_road_or_grid_at_a_pin_is_proposed(client, district):
    answer = client.get(f"/p/lidu/place?lat={ON_NORTH_SEGMENT[0]}&lng={ON_NORTH_SEGMENT[1]}")
    assert answer.status_code == 200 and answer.json["key"] == "shilong_old_street_north"
    assert answer.json["name"] == "石龙老街北段" and answer.json["geometry"]["type"] == "LineString"
    # Picked from the list by its key: the same, to draw it.
    assert client.get("/p/lidu/place?key=shilong_old_street_north").json == answer.json
    assert client.get("/p/lidu/place?key=no_such_road").json == {}
    # Inside the market zone's polygon, away from the street's line: the zone.
    assert client.get("/p/lidu/place?lat=29.7442&lng=107.3130").json["key"] == "shilong_market_zone"
    assert client.get("/p/lidu/place?lat=29.9&lng=107.6").json == {}  # nowhere near anything
    for bad in ("lat=abc&lng=107", "lat=91&lng=107", "lat=nan&lng=107", "lat=29", "lat=1e999&lng=1"):
        refused = client.get("/p/lidu/place?" + bad)
        assert refused.status_code == 400 and "lat" in refused.json["error"]
    assert client.get("/p/no_such/place?lat=1&lng=1").status_code == 404


def test_a_boards_page_draws_its_road_on_no_outside_tiles(client, district):
    page = client.get("/b/lidu/shilong_old_street")
    shown = _map_of(page.get_data(as_text=True))
    road = shown["shapes"]["features"][0]
    assert road["properties"] == {"name": "石龙老街", "key": "shilong_old_street"}
    assert road["geometry"]["type"] == "LineString" and road["geometry"]["coordinates"][0] == [107.308, 29.752]
    assert shown["tiles"] == [] and shown["datum"] == "wgs84"  # the demo draws on a plain background
    assert "img-src 'self' data: blob:;" in page.headers["Content-Security-Policy"]
    assert "vendor/leaflet-1.9.4/leaflet.js" in page.get_data(as_text=True)


def test_the_tile_servers_named_are_let_into_the_pages_with_maps_only(app, client, district):
    before = app.config.get("FANGAN_MAP_TILES")
    app.config["FANGAN_MAP_TILES"] = {"source": "xyz", "url": "http://127.0.0.1:9/t/{z}/{x}/{y}.png",
                                      "datum": "gcj02", "attribution": "<script>x</script>测试"}
    try:
        page = client.get("/b/lidu/zhiyuan_road")
        assert "img-src 'self' data: blob: http://127.0.0.1:9;" in page.headers["Content-Security-Policy"]
        shown = _map_of(page.get_data(as_text=True))
        assert shown["datum"] == "gcj02" and shown["tiles"][0]["url"] == "http://127.0.0.1:9/t/{z}/{x}/{y}.png"
        assert "<script>x</script>" not in page.get_data(as_text=True)  # the credit is escaped in the attribute
        assert "127.0.0.1:9" not in client.get("/p/track").headers["Content-Security-Policy"]  # no map there
        from server.public.views import KEPT_PAGES

        KEPT_PAGES.clear()
        drawn, kept = (client.get("/p/lidu/report") for _ in range(2))  # the second is the page kept
        for answer in (drawn, kept):
            assert "img-src 'self' data: blob: http://127.0.0.1:9;" in answer.headers["Content-Security-Policy"]
            assert _map_of(answer.get_data(as_text=True))["pick"]["list"] == "location-area"
    finally:
        app.config["FANGAN_MAP_TILES"] = before


def test_a_broken_site_tile_source_stops_the_app_with_what_is_wrong():
    from server.web.maps import site_tiles

    with pytest.raises(ValueError, match="'style' is not read by the 'xyz' tile source"):
        site_tiles('{"source": "xyz", "url": "https://t.example/{z}/{x}/{y}.png", "style": "vector"}')
    with pytest.raises(ValueError, match="is not one of"):
        site_tiles({"source": "google"})
    assert site_tiles("") is None and site_tiles('{"source": "none"}') == {"source": "none"}


def test_a_cases_page_shows_its_place_and_where_it_was_reported(client, district):
    report = _report(ON_NORTH_SEGMENT, "tok-case-map")
    login(client, "office")
    shown = _map_of(client.get(f"/cases/case/{report.case_id}").get_data(as_text=True))
    assert shown["point"] == {"lat": 29.7503, "lng": 107.30895, "label": "报告的位置"}
    assert [f["properties"]["key"] for f in shown["shapes"]["features"]] == ["shilong_old_street_north"]


def test_the_queues_map_shows_the_tabs_cases_in_reach_filtered_as_the_list(client, district):
    in_shilong = _report(ON_NORTH_SEGMENT, "tok-q1")
    on_zhiyuan = _report(ON_ZHIYUAN_ROAD, "tok-q2", description="井盖破损")
    placed_only = _report(None, "tok-q3", area="shilong_market_zone")  # no position: shown on its place
    login(client, "office")
    every = client.get("/cases/lidu/map.geojson?box=all")
    assert every.mimetype == "application/geo+json"
    points = {f["properties"]["url"]: f for f in every.json["features"]}
    assert set(points) == {f"/cases/case/{r.case_id}" for r in (in_shilong, on_zhiyuan, placed_only)}
    assert points[f"/cases/case/{in_shilong.case_id}"]["geometry"]["coordinates"] == [107.30895, 29.7503]
    lng, lat = points[f"/cases/case/{placed_only.case_id}"]["geometry"]["coordinates"]
    assert 29.744 < lat < 29.7458 and 107.311 < lng < 107.3135  # inside the market zone
    assert points[f"/cases/case/{in_shilong.case_id}"]["properties"]["title"].startswith(f"#{in_shilong.case_id} ")
    assert {f["properties"]["tone"] for f in every.json["features"]} <= {"ok", "soon", "late", "done"}
    searched = client.get("/cases/lidu/map.geojson?box=all&q=井盖").json["features"]
    assert [f["properties"]["url"] for f in searched] == [f"/cases/case/{on_zhiyuan.case_id}"]
    head = current_app.test_client()
    login(head, "head")  # Shilong's head: not Zhiyuan's case
    mine = {f["properties"]["url"] for f in head.get("/cases/lidu/map.geojson?box=all").json["features"]}
    assert f"/cases/case/{on_zhiyuan.case_id}" not in mine and f"/cases/case/{in_shilong.case_id}" in mine
    page = client.get("/cases/lidu/?box=all&q=井盖").get_data(as_text=True)
    assert _map_of(page)["points_url"] == "/cases/lidu/map.geojson?box=all&q=%E4%BA%95%E7%9B%96&sort=time_left"


def test_the_heat_map_weighs_every_case_opened_in_the_days_within_reach(client, district):
    from server.definitions.clock import district_today

    _report(ON_NORTH_SEGMENT, "tok-h1")
    _report(ON_ZHIYUAN_ROAD, "tok-h2")
    login(client, "office")
    today = district_today("lidu")
    heat = client.get(f"/cases/lidu/heat.geojson?start={today.replace(day=1)}&end={today}").json["features"]
    assert sorted(f["geometry"]["coordinates"] for f in heat) == [[107.298, 29.76125], [107.30895, 29.7503]]
    assert all(f["properties"] == {} for f in heat)  # where, and nothing else
    before = today.replace(day=1) - dt.timedelta(days=1)
    assert client.get(f"/cases/lidu/heat.geojson?start={before}&end={before}").json["features"] == []
    head = current_app.test_client()
    login(head, "head")
    assert [f["geometry"]["coordinates"] for f in head.get("/cases/lidu/heat.geojson").json["features"]] == [
        [107.30895, 29.7503]]  # Shilong's only
    dashboard = client.get("/assess/lidu/dashboard").get_data(as_text=True)
    assert _map_of(dashboard)["heat"] is True and "leaflet-heat-0.2.0.js" in dashboard


def test_the_public_map_shows_approved_reports_roughly_and_nothing_personal(client, district):
    from server.auth.models import User

    approved = _report(ON_NORTH_SEGMENT, "tok-p1", description="私人信息不应出现")
    _report(ON_ZHIYUAN_ROAD, "tok-p2")  # waiting for a moderator: not shown
    office = db.session.scalar(db.select(User).filter_by(username="office"))
    public.moderate(office, approved, "approved")
    db.session.commit()
    answer = client.get("/p/lidu/map.geojson")
    (feature,) = answer.json["features"]
    assert feature["geometry"]["coordinates"] == list(reversed(approximate(*ON_NORTH_SEGMENT, 100)))
    assert feature["geometry"]["coordinates"] != [ON_NORTH_SEGMENT[1], ON_NORTH_SEGMENT[0]]
    assert feature["properties"]["url"] == f"/p/report/{approved.id}" and feature["properties"]["tone"] == "ok"
    body = answer.get_data(as_text=True)
    assert not any(secret in body for secret in ("李四", "13900139000", "私人信息", approved.code, "29.7503"))
    page = client.get("/p/lidu/map").get_data(as_text=True)
    assert _map_of(page)["points_url"] == "/p/lidu/map.geojson"
    with time_machine.travel(utcnow() + dt.timedelta(days=91), tick=False):
        assert client.get("/p/lidu/map.geojson").json["features"] == []  # older than the district's 90 days


def test_a_district_without_a_public_map_has_none(app, client, district):
    from server.definitions.service import scheme_in_force

    assert scheme_in_force("lidu").map.public_map
    assert client.get("/p/no_such_district/map").status_code == 404
    assert client.get("/p/no_such_district/map.geojson").status_code == 404


def test_map_settings_that_can_never_take_effect_are_errors():
    scheme = MINI_SCHEME + "map:\n  tiles: {source: xyz, url: 'https://t.example/{z}/{x}/{y}.png', key: abcdefgh1}\n"
    said = errors_of({"schemes/mini/scheme.yaml": scheme, "schemes/mini/log.yaml": MINI_FORM})
    assert len(said) == 1 and said[0].startswith("schemes/mini/scheme.yaml line ")
    assert "map.tiles.key: 'key' is not read by the 'xyz' tile source, so it can never take effect" in said[0]
    wrong = MINI_SCHEME + "map:\n  center: [129.7, 107.3]\n  tiles: {source: google}\n"
    said = errors_of({"schemes/mini/scheme.yaml": wrong, "schemes/mini/log.yaml": MINI_FORM})
    assert any("map.center[0]: 129.7 is not a latitude: the center is [latitude, longitude]" in s for s in said)
    assert any("map.tiles.source: 'google' is not one of 'none', 'tianditu', 'xyz', 'wmts'" in s for s in said)


def test_an_area_is_drawn_among_its_neighbours_and_kept_to_its_kinds_shape(client, district):
    login(client, "office")
    page = client.get("/org/lidu/areas/new?parent=shilong_town").get_data(as_text=True)
    drawing = _map_of(page)
    assert drawing["draw"] == {"input": "geometry", "kind_input": "kind",
                               "kinds": {"town": "polygon", "road": "line", "segment": "line", "zone": "polygon"}}
    around = {f["properties"]["key"] for f in drawing["shapes"]["features"]}
    assert around == {"shilong_town", "shilong_old_street", "shilong_market_zone"}  # the parent and its children
    assert "vendor/geoman-2.20.2/leaflet-geoman.min.js" in page
    square = ('{"type": "Polygon", "coordinates": [[[107.31, 29.746], [107.311, 29.746], [107.311, 29.747], '
              '[107.31, 29.746]]]}')
    answer = client.post("/org/lidu/areas/new?parent=shilong_town", data={
        "csrf_token": csrf_of(client, "/org/lidu/areas/new"), "key": "back_lane", "kind": "road",
        "parent": "shilong_town", "name_zh": "后巷", "geometry": square, "active": "y"})
    said = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "road类区域应绘制为 LineString / MultiLineString，而不是 Polygon。" in said
    assert html.escape(square, quote=False) in said or "&#34;Polygon&#34;" in said  # the drawing is kept


def _geojson(*features: tuple[dict, dict | None]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": properties, "geometry": geometry} for properties, geometry in features]},
        ensure_ascii=False).encode()


def test_places_from_a_map_file_are_previewed_row_by_row_then_imported(client, district):
    from server.org.models import Area
    from tests.support.jobs import run_started, start

    login(client, "office")
    new_line = {"type": "LineString", "coordinates": [[107.310, 29.7460], [107.312, 29.7466]]}
    moved = {"type": "LineString", "coordinates": [[107.3081, 29.7521], [107.3119, 29.7451]]}
    square = {"type": "Polygon", "coordinates": [[[107.31, 29.746], [107.311, 29.746], [107.311, 29.747],
                                                  [107.31, 29.746]]]}
    wrong = _geojson(({"id": "back_lane", "名称": "后巷"}, new_line), ({"key": "shilong_old_street"}, moved),
                     ({"key": "odd_square", "name": "方块"}, square), ({"key": "nowhere"}, None))
    form = {"kind": "road", "parent": "shilong_town", "key_property": "", "name_property": ""}
    preview = start(client, "/org/lidu/places", {**form, "upload": (io.BytesIO(wrong), "roads.geojson")},
                    token_from="/org/lidu/places", content_type="multipart/form-data")
    page = preview.get_data(as_text=True)
    assert preview.status_code == 400 and "预览：从GeoJSON文件读取了 4 个地点" in page
    assert "road类区域应绘制为 LineString / MultiLineString，而不是 Polygon。" in page  # feature 3, by its number
    assert "geometry: 该要素没有几何图形。" in page  # feature 4
    assert 'name="rows"' not in page  # nothing to import while a row is wrong
    assert len(_map_of(page)["shapes"]["features"]) == 3
    right = _geojson(({"id": "back_lane", "名称": "后巷"}, new_line), ({"key": "shilong_old_street"}, moved))
    preview = start(client, "/org/lidu/places", {**form, "upload": (io.BytesIO(right), "roads.geojson")},
                    token_from="/org/lidu/places", content_type="multipart/form-data")
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200 and page.count("field-error") == 0
    rows = html.unescape(re.search(r'name="rows" value="([^"]*)"', page).group(1))
    assert rows.startswith("key,kind,parent,unit,name_zh")
    finished = run_started(client, start(client, "/org/lidu/places", {"rows": rows}, token_from="/org/lidu/places"))
    assert "导入" in finished.page
    db.session.expire_all()
    lane = db.session.scalar(db.select(Area).filter_by(scheme_key="lidu", key="back_lane"))
    assert (lane.kind, lane.parent.key, lane.name, lane.geometry) == ("road", "shilong_town", {"zh": "后巷"}, new_line)
    street = db.session.scalar(db.select(Area).filter_by(scheme_key="lidu", key="shilong_old_street"))
    assert street.geometry == moved and street.name == {"zh": "石龙老街", "en": "Shilong Old Street"}  # kept
    unreadable = start(client, "/org/lidu/places", {**form, "upload": (io.BytesIO(b"key,name\n"), "roads.csv")},
                       token_from="/org/lidu/places", content_type="multipart/form-data")
    assert unreadable.status_code == 400 and "这不是 GeoJSON、KML" in unreadable.get_data(as_text=True)


def _patrol(client, route: object, area: str = "shilong_old_street") -> object:  # noqa: ANN001
    from server.definitions.clock import district_zone

    page = client.get("/f/lidu/patrol_log/new").get_data(as_text=True)
    started = utcnow().astimezone(district_zone("lidu")).replace(second=0, microsecond=0)
    return client.post("/f/lidu/patrol_log/new", content_type="multipart/form-data", data={
        "csrf_token": re.search(r'name="csrf_token" value="([^"]*)"', page).group(1),
        "_token": re.search(r'name="_token" value="([^"]*)"', page).group(1), "_action": "submit",
        "area": area, "started_at": started.strftime("%Y-%m-%dT%H:%M"), "participants": "1",
        "route": route if isinstance(route, str) else json.dumps(route), "findings": "巡查", "has_problems": "no",
        "photos": [(io.BytesIO(jpeg()), "patrol.jpg")]})


def test_a_route_recorded_on_a_patrol_shows_the_roads_walked_this_week(client, district):
    from server.forms.models import Submission
    from server.org.posts import appoint

    appoint("lidu", "segment_keeper", "张三", area_key="shilong_old_street", username="keeper")
    make_user("keeper", roles=(("lidu", "staff", "shilong"),))
    db.session.commit()
    keeper = current_app.test_client()
    login(keeper, "keeper")
    # Along the north segment, a few metres off its centre line.
    along = {"type": "LineString", "coordinates": [[107.30805, 29.75195], [107.3090, 29.7503], [107.30985, 29.7487]]}
    sent = _patrol(keeper, along)
    assert sent.status_code == 303, sent.get_data(as_text=True)[-3000:]
    record = db.session.scalar(db.select(Submission).filter_by(form_key="patrol_log"))
    assert record.data["route"] == along
    shown = keeper.get(f"/f/records/{record.id}").get_data(as_text=True)
    assert "3 个位置" in shown and _map_of(shown)["shapes"]["features"][0]["geometry"] == along
    # Bad routes: the form comes back with what was typed; a single position is no route yet.
    refused = _patrol(keeper, "{not json")
    assert refused.status_code == 400 and "无法读取路线" in refused.get_data(as_text=True)
    crossing = {"type": "LineString", "coordinates": [[107.3, 29.7], [200, 29.7]]}
    assert _patrol(keeper, crossing).status_code == 400
    with_heights = {"type": "LineString", "coordinates": [[107.3, 29.7, 300], [107.301, 29.7, 301]]}
    assert _patrol(keeper, with_heights).status_code == 400  # positions are two numbers, as the phone sends them
    assert _patrol(keeper, {"type": "LineString", "coordinates": [[107.3, 29.7]]}).status_code == 303
    login(client, "office")
    page = client.get("/patrols/lidu/routes").get_data(as_text=True)
    rows = re.findall(r'<tr><td data-label="道路">([^<]*)</td>\s*<td data-label="路线">([^<]*)<', page)
    walked = {name: times for name, times in rows if times.strip().isdigit()}
    assert walked == {"石龙老街": "1", "石龙老街北段": "1"}  # the street and its north segment; not the south one
    assert "石龙老街南段" in page and "2 / 7" not in page
    tones = [f["properties"]["tone"] for f in _map_of(page)["shapes"]["features"]]
    assert tones.count("route") == 1 and tones.count("walked") == 2
    head = current_app.test_client()
    login(head, "head")  # Shilong's head sees Shilong's roads only
    assert "致远路" not in head.get("/patrols/lidu/routes").get_data(as_text=True)
    assert "致远路" in page
    # Places without a line (none, a polygon, heights) are no roads here, and break nothing.
    from server.org.models import Area

    odd = {"zhiyuan_road": None, "duanqiao_street": {"type": "Point", "coordinates": [107.32, 29.738]},
           "longqiao_road": {"type": "LineString", "coordinates": [[107.295, 29.73, 12], [107.309, 29.725, 15]]}}
    for key, geometry in odd.items():
        db.session.scalar(db.select(Area).filter_by(scheme_key="lidu", key=key)).geometry = geometry
    db.session.commit()
    again = client.get("/patrols/lidu/routes")
    assert again.status_code == 200 and "致远路" not in again.get_data(as_text=True)
