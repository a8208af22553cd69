"""Map files read into places: GeoJSON, KML and zipped shapefiles told apart by content, heights dropped,
each feature's problem named by its number, and files that are not in WGS-84 or are hostile refused whole."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
import shapefile

from server.org.geofiles import MAX_FEATURES, PlacesUnreadable, read_places

ROAD = [[107.308, 29.752], [107.3099, 29.7486]]
WGS84_PRJ = ('GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],'
             'PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]')


def _zipped_shapefile(prj: str | None = WGS84_PRJ, *, lines: list | None = None) -> bytes:
    shp, shx, dbf = io.BytesIO(), io.BytesIO(), io.BytesIO()
    with shapefile.Writer(shp=shp, shx=shx, dbf=dbf, shapeType=shapefile.POLYLINE, encoding="utf-8") as writer:
        writer.field("key", "C", size=40)
        writer.field("名称", "C", size=40)
        for key, name, line in lines or [("back_lane", "后巷", ROAD)]:
            writer.line([line])
            writer.record(key, name)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for suffix, part in (("shp", shp), ("shx", shx), ("dbf", dbf)):
            archive.writestr(f"roads/roads.{suffix}", part.getvalue())
        if prj is not None:
            archive.writestr("roads/roads.prj", prj)
        archive.writestr("roads/roads.cpg", "UTF-8")
    return out.getvalue()


def test_geojson_features_and_a_bare_geometry():
    collection = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"key": "a", "name": "甲路"},
         "geometry": {"type": "LineString", "coordinates": [[107.3, 29.7, 245.0], [107.31, 29.71, 250.0]]}},
        {"type": "Feature", "properties": {"key": "b"}, "geometry": None},
        "not a feature"]}
    fmt, features = read_places(json.dumps(collection).encode())
    assert fmt == "geojson"
    assert features[0].properties == {"key": "a", "name": "甲路"}
    assert features[0].geometry == {"type": "LineString", "coordinates": [[107.3, 29.7], [107.31, 29.71]]}
    assert [(f.number, f.problem) for f in features[1:]] == [(2, "This feature has no geometry."),
                                                             (3, "Not a GeoJSON feature.")]
    _fmt, (bare,) = read_places(b'\xef\xbb\xbf {"type": "Point", "coordinates": [107.3, 29.7]}')
    assert bare.geometry == {"type": "Point", "coordinates": [107.3, 29.7]}


def test_a_geojson_file_in_a_projected_crs_is_refused_whole():
    projected = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:3857"}},
                 "features": []}
    with pytest.raises(PlacesUnreadable, match="EPSG:3857"):
        read_places(json.dumps(projected).encode())


def test_kml_placemarks_with_their_data_and_shapes():
    kml = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document>
  <Placemark><name>后巷</name><ExtendedData><Data name="key"><value>back_lane</value></Data></ExtendedData>
    <LineString><coordinates>107.308,29.752,0 107.3099,29.7486,0</coordinates></LineString></Placemark>
  <Placemark><name>集市</name><Polygon><outerBoundaryIs><LinearRing><coordinates>
    107.311,29.744 107.3135,29.744 107.3135,29.7458 107.311,29.744</coordinates></LinearRing></outerBoundaryIs>
  </Polygon></Placemark>
  <Placemark><name>两段</name><MultiGeometry><LineString><coordinates>1,2 3,4</coordinates></LineString>
    <LineString><coordinates>5,6 7,8</coordinates></LineString></MultiGeometry></Placemark>
  <Placemark><name>空</name></Placemark>
</Document></kml>"""
    fmt, features = read_places(kml.encode())
    assert fmt == "kml"
    assert features[0].properties == {"name": "后巷", "key": "back_lane"}
    assert features[0].geometry == {"type": "LineString", "coordinates": ROAD}
    assert features[1].geometry["type"] == "Polygon" and len(features[1].geometry["coordinates"][0]) == 4
    assert features[2].geometry == {"type": "MultiLineString", "coordinates": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]}
    assert features[3].problem == "This placemark has no point, line or polygon."


def test_kml_that_declares_entities_is_refused():
    bomb = b'<?xml version="1.0"?><!DOCTYPE k [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><kml>&b;</kml>'
    with pytest.raises(PlacesUnreadable, match="entities"):
        read_places(bomb)


def test_a_zipped_shapefile_with_its_attributes():
    fmt, (feature,) = read_places(_zipped_shapefile())
    assert fmt == "shapefile"
    assert feature.properties == {"key": "back_lane", "名称": "后巷"}
    assert feature.geometry == {"type": "LineString", "coordinates": ROAD}


def test_a_shapefile_not_in_wgs84_or_without_its_parts_is_refused():
    projected = 'PROJCS["CGCS2000_3_Degree_GK_CM_108E",GEOGCS["GCS_China_Geodetic_Coordinate_System_2000"]]'
    with pytest.raises(PlacesUnreadable, match="not in WGS 84"):
        read_places(_zipped_shapefile(projected))
    partial = io.BytesIO()
    with zipfile.ZipFile(partial, "w") as archive:
        archive.writestr("roads.shp", b"x")
    with pytest.raises(PlacesUnreadable, match=r"\.shp, \.shx and \.dbf"):
        read_places(partial.getvalue())
    with pytest.raises(PlacesUnreadable, match="damaged"):
        read_places(b"PK\x03\x04 not really a zip")


def test_what_is_no_map_file_and_too_many_places():
    for text in (b"", b"   ", b"key,name\nroad,Road", b"\x89PNG\r\n"):
        with pytest.raises(PlacesUnreadable):
            read_places(text)
    many = {"type": "FeatureCollection", "features": [{}] * (MAX_FEATURES + 1)}
    with pytest.raises(PlacesUnreadable, match="at most"):
        read_places(json.dumps(many).encode())


def test_damaged_deep_or_oversized_files_are_refused_with_a_reason():
    good = bytearray(_zipped_shapefile())
    at = good.index(b"roads/roads.shp") + 40  # inside the first member's data: its checksum fails
    good[at] ^= 0xFF
    with pytest.raises(PlacesUnreadable):
        read_places(bytes(good))
    deep = b'{"type": "Point", "coordinates": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(PlacesUnreadable):
        read_places(deep)
    with pytest.raises(PlacesUnreadable, match="larger than"):
        read_places(b"{" + b" " * (10 * 1024 * 1024) + b"}")
    older = b'<kml xmlns="http://earth.google.com/kml/2.1"><Placemark><name>A</name><Point><coordinates>107.3,29.7' \
            b'</coordinates></Point></Placemark></kml>'
    _fmt, (feature,) = read_places(older)  # an older KML namespace reads the same
    assert feature.geometry == {"type": "Point", "coordinates": [107.3, 29.7]}
    with pytest.raises(PlacesUnreadable, match="no placemark"):
        read_places(b"<kml xmlns='http://www.opengis.net/kml/2.2'><Document/></kml>")
