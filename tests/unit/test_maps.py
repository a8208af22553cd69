"""Tile sources (which settings each reads, the layers a browser loads, the origins a page lets its images come
from) and the public map's approximate positions."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.definitions.maps import datum_of, tile_layers, tile_origins, tiles_problems
from server.public.engine import METRES_A_DEGREE, approximate


def _problems(tiles: dict) -> list[tuple[list[str], str]]:
    return [(path, problem.in_language("en")) for path, problem in tiles_problems(tiles)]


def test_each_source_reads_only_its_own_settings():
    assert _problems({"source": "none"}) == []
    assert _problems({"source": "tianditu", "key": "0123456789abcdef", "style": "imagery"}) == []
    assert _problems({"source": "xyz", "url": "https://tiles.example/{z}/{x}/{y}.png", "datum": "gcj02"}) == []
    said = _problems({"source": "xyz", "url": "https://tiles.example/{z}/{x}/{y}.png", "key": "0123456789"})
    assert said == [(["key"], "'key' is not read by the 'xyz' tile source, so it can never take effect (it reads: "
                              "attribution, datum, max_zoom, subdomains, url)")]
    assert _problems({"source": "none", "max_zoom": 12})[0][0] == ["max_zoom"]
    assert _problems({"source": "tianditu", "datum": "gcj02"})[0][0] == ["datum"]  # 天地图 is CGCS2000, always


def test_what_a_source_cannot_do_without():
    assert _problems({"source": "xyz"}) == [([], "the 'xyz' tile source needs 'url'")]
    assert [m for _p, m in _problems({"source": "wmts", "url": "https://wmts.example/service"})] == [
        "the 'wmts' tile source needs 'layer'", "the 'wmts' tile source needs 'matrix_set'"]
    assert _problems({"source": "xyz", "url": "https://t.example/{z}/{x}.png"}) == [
        (["url"], "an xyz tile URL needs {y}")]
    assert _problems({"source": "xyz", "url": "https://tms.example/{z}/{x}/{-y}.png"}) == []  # rows from the south
    assert _problems({"source": "xyz", "url": "https://t{s}.example/{z}/{x}/{y}.png"}) == [
        (["url"], "the tile URL has {s}: give the values it takes as 'subdomains'")]


def test_tianditu_is_its_map_and_its_names_with_the_districts_key_or_the_sites():
    vector = tile_layers({"source": "tianditu", "key": "abcdef0123456789"})
    paths = [layer["url"].split(".tianditu.gov.cn/")[1].split("?")[0] for layer in vector]
    assert paths == ["vec_w/wmts", "cva_w/wmts"]
    assert all("tk=abcdef0123456789" in layer["url"] and "TILEMATRIX={z}&TILEROW={y}&TILECOL={x}" in layer["url"]
               for layer in vector)
    imagery = tile_layers({"source": "tianditu", "style": "imagery"}, tianditu_key="sitekey123")
    assert ["LAYER=img&" in imagery[0]["url"], "LAYER=cia&" in imagery[1]["url"]] == [True, True]
    assert "tk=sitekey123" in imagery[0]["url"]
    assert tile_layers({"source": "tianditu"}) == []  # no key anywhere: the plain background, not broken tiles
    assert tile_origins(vector) == {f"https://t{n}.tianditu.gov.cn" for n in range(8)}
    assert datum_of({"source": "tianditu"}) == "wgs84"


def test_xyz_and_wmts_layers_and_their_origins():
    xyz = tile_layers({"source": "xyz", "url": "http://127.0.0.1:8123/{z}/{x}/{y}.png", "max_zoom": 16,
                       "attribution": "<b>us</b>"})
    assert xyz == [{"url": "http://127.0.0.1:8123/{z}/{x}/{y}.png", "subdomains": "", "max_zoom": 16,
                    "attribution": "<b>us</b>"}]  # (the browser shows the credit as text)
    assert tile_origins(xyz) == {"http://127.0.0.1:8123"}
    wmts = tile_layers({"source": "wmts", "url": "https://gis.example/wmts?token=1", "layer": "roads",
                        "matrix_set": "EPSG:3857"})
    assert wmts[0]["url"] == ("https://gis.example/wmts?token=1&SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=roads"
                              "&STYLE=default&TILEMATRIXSET=EPSG:3857&FORMAT=image/png&TILEMATRIX={z}&TILEROW={y}"
                              "&TILECOL={x}")
    assert tile_layers(None) == tile_layers({"source": "none"}) == [] and tile_origins([]) == set()
    assert datum_of({"source": "xyz", "datum": "gcj02"}) == "gcj02" and datum_of(None) == "wgs84"


@given(st.floats(-80, 80), st.floats(-179.9, 179.9), st.sampled_from([10, 50, 100, 500, 2000]))
def test_a_public_position_is_its_squares_centre(lat, lng, metres):
    at_lat, at_lng = approximate(lat, lng, metres)
    # Within the square: at most half a side away along each axis (and a little for the rounding to 6 places).
    assert abs(at_lat - lat) * METRES_A_DEGREE <= metres / 2 + 0.2
    assert abs(at_lng - lng) * METRES_A_DEGREE * math.cos(math.radians(at_lat)) <= metres / 2 + 0.2
    assert approximate(at_lat, at_lng, metres) == (at_lat, at_lng)  # the centre is its own square's


def test_neighbours_in_one_square_share_its_centre_and_a_square_away_do_not():
    one = approximate(29.74861, 107.30991, 100)
    assert approximate(29.74862, 107.30992, 100) == one
    assert approximate(29.74861 + 100 / METRES_A_DEGREE, 107.30991, 100) != one
    assert one != (29.74861, 107.30991)


@pytest.mark.parametrize("bad", [{"source": "xyz", "url": "javascript:alert(1)//{z}{x}{y}"}])
def test_a_tile_url_is_an_address(bad):
    import jsonschema

    from server.definitions.schema import load_schema

    schema = load_schema("scheme")
    errors = list(jsonschema.Draft202012Validator({**schema["$defs"]["tiles"], "$defs": schema["$defs"]})
                  .iter_errors(bad))
    assert [e.validator for e in errors] == ["pattern"]


def _square(x0: float, y0: float, size: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x0 + size, y0], [x0 + size, y0 + size], [x0, y0 + size],
                                                [x0, y0]]]}


def test_the_place_of_a_position_is_framed_by_the_shape_that_holds_it():
    from server.org.engine import place_of

    town1, town2 = _square(107.300, 29.740, 0.010), _square(107.310, 29.740, 0.010)  # side by side, ~1 km each
    road1 = {"type": "LineString", "coordinates": [[107.3020, 29.7400], [107.3020, 29.7500]]}  # inside town 1
    road2 = {"type": "LineString", "coordinates": [[107.3105, 29.7400], [107.3105, 29.7500]]}  # inside town 2
    zone = _square(107.3030, 29.7430, 0.001)  # a grid inside town 1
    areas = [("town1", town1, "/1/"), ("town2", town2, "/2/"), ("road1", road1, "/1/3/"), ("road2", road2, "/2/4/"),
             ("zone", zone, "/1/5/")]
    # 50 m inside town 1, its own road ~190 m away and town 2's road ~150 m: town 1's road, never town 2's.
    assert place_of(areas, 29.745, 107.30395, 200) == "road1"
    # Inside town 1 with no line near: the town itself.
    assert place_of(areas, 29.7485, 107.3080, 100) == "town1"
    # Inside the zone: the zone, though a road is within reach outside it.
    assert place_of(areas, 29.7435, 107.3035, 200) == "zone"
    # Near the zone but not in it: the zone is no candidate (a shape must hold the point); town 1's road is.
    assert place_of(areas, 29.7428, 107.3034, 200) == "road1"
    # In no shape at all: the nearest line within reach, else nothing.
    assert place_of(areas, 29.7390, 107.3021, 200) == "road1"
    assert place_of(areas, 29.7000, 107.3000, 200) is None
    # 50 m inside town 1 near the boundary: its own road 174 m away beats town 2's at 164 m.
    near_border = [("town1", town1, "/1/"), ("town2", town2, "/2/"),
                   ("road1", {"type": "LineString", "coordinates": [[107.3077, 29.740], [107.3077, 29.750]]}, "/1/3/"),
                   ("road2", {"type": "LineString", "coordinates": [[107.3112, 29.740], [107.3112, 29.750]]}, "/2/4/")]
    assert place_of(near_border, 29.745, 107.3095, 200) == "road1"
