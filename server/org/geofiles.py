"""Places from map files, pure: GeoJSON, KML and zipped shapefiles read into features (each with its
properties and its geometry as GeoJSON in WGS-84, or what is wrong with it), told apart by their content.

The organisation import then takes them as rows of its `areas` sheet (server/org/places.py): each feature is
checked like a spreadsheet row, by its number in the file.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _

MAX_FEATURES = 20_000
MAX_BYTES = 10 * 1024 * 1024  # a file read at most
MAX_UNZIPPED_BYTES = 50 * 1024 * 1024  # a zip bomb stops here, before a shapefile is read


@dataclass
class Feature:
    """One place of a map file: its number in the file (from 1), its properties, and its geometry (GeoJSON,
    longitude then latitude, two dimensions), or the problem that stops it being one."""

    number: int
    properties: dict[str, Any] = field(default_factory=dict)
    geometry: dict[str, Any] | None = None
    problem: str | None = None


class PlacesUnreadable(ValueError):
    """The file as a whole cannot be read as places (its type, its size, its datum)."""


def read_places(data: bytes, filename: str = "") -> tuple[str, list[Feature]]:
    """(the file's format, its features) of a GeoJSON, KML or zipped shapefile, told by content."""
    if len(data) > MAX_BYTES:
        raise PlacesUnreadable(_("The file is larger than %(mb)s MB.", mb=MAX_BYTES // (1024 * 1024)))
    if not data.strip():
        raise PlacesUnreadable(_("The file is empty."))
    try:
        return _read(data)
    except RecursionError:  # shapes nested without end
        raise PlacesUnreadable(_("The shapes in this file are nested too deeply.")) from None


def _read(data: bytes) -> tuple[str, list[Feature]]:
    if data[:4] == b"PK\x03\x04":
        return "shapefile", _shapefile(data)
    head = data.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip()[:200]
    if head[:1] == b"<":
        return "kml", _kml(data)
    if head[:1] in (b"{", b"["):
        return "geojson", _geojson(data)
    raise PlacesUnreadable(_("This is not a GeoJSON, KML or zipped shapefile (.zip with .shp, .shx and .dbf)."))


# -- GeoJSON ------------------------------------------------------------------------------------------------------

def _geojson(data: bytes) -> list[Feature]:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise PlacesUnreadable(_("Not valid GeoJSON: check the brackets, commas and quotes.")) from None
    if isinstance(document, dict) and document.get("type") == "FeatureCollection":
        items = document.get("features")
    elif isinstance(document, dict) and document.get("type") == "Feature":
        items = [document]
    elif isinstance(document, dict) and "coordinates" in document:
        items = [{"type": "Feature", "properties": {}, "geometry": document}]
    else:
        raise PlacesUnreadable(_("A GeoJSON FeatureCollection, Feature or geometry is expected."))
    if not isinstance(items, list):
        raise PlacesUnreadable(_("A GeoJSON FeatureCollection, Feature or geometry is expected."))
    _not_too_many(len(items))
    crs = document.get("crs") if isinstance(document, dict) else None
    name = str(((crs or {}).get("properties") or {}).get("name") or "")
    if name and not any(part in name.upper() for part in ("4326", "CRS84", "4490")):
        raise PlacesUnreadable(_("The file is in %(crs)s: save it in WGS 84 (EPSG:4326) longitude and latitude.",
                                 crs=name[:80]))
    out = []
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            out.append(Feature(number, problem=_("Not a GeoJSON feature.")))
            continue
        properties = item.get("properties") if isinstance(item.get("properties"), dict) else {}
        out.append(_feature(number, properties, item.get("geometry")))
    return out


def _feature(number: int, properties: dict[str, Any], geometry: Any) -> Feature:
    """A feature with its geometry flattened to two dimensions (heights are dropped)."""
    if not isinstance(geometry, dict) or "coordinates" not in geometry:
        return Feature(number, properties, problem=_("This feature has no geometry."))
    try:
        flat = {"type": geometry.get("type"), "coordinates": _flat(geometry["coordinates"])}
    except (TypeError, IndexError):
        return Feature(number, properties, problem=_("These coordinates are not numbers."))
    return Feature(number, properties, flat)


def _flat(coordinates: Any) -> Any:
    if isinstance(coordinates, list | tuple) and coordinates and isinstance(coordinates[0], int | float):
        return [coordinates[0], coordinates[1]]
    if isinstance(coordinates, list | tuple):
        return [_flat(c) for c in coordinates]
    raise TypeError(coordinates)


# -- KML ------------------------------------------------------------------------------------------------------------

def _kml(data: bytes) -> list[Feature]:
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        raise PlacesUnreadable(_("Not valid KML: the file is not well-formed XML, or it declares entities.")) \
            from None
    marks = [e for e in root.iter() if isinstance(e.tag, str) and e.tag.rsplit("}", 1)[-1] == "Placemark"]
    if not marks:
        raise PlacesUnreadable(_("The KML file has no placemark."))
    _not_too_many(len(marks))
    out = []
    for number, mark in enumerate(marks, 1):
        ns = mark.tag[:mark.tag.index("}") + 1] if mark.tag.startswith("{") else ""  # (KML 2.2, 2.1, Google's…)
        properties: dict[str, Any] = {}
        name = mark.find(ns + "name")
        if name is not None and (name.text or "").strip():
            properties["name"] = name.text.strip()
        for data_item in mark.iter(ns + "Data"):
            value = data_item.find(ns + "value")
            if data_item.get("name"):
                properties[data_item.get("name")] = (value.text or "").strip() if value is not None else ""
        for simple in mark.iter(ns + "SimpleData"):
            if simple.get("name"):
                properties[simple.get("name")] = (simple.text or "").strip()
        geometries = [g for g in (_kml_geometry(child, ns) for child in mark) if g is not None]
        if not geometries:
            out.append(Feature(number, properties, problem=_("This placemark has no point, line or polygon.")))
        elif isinstance(geometries[0], str):
            out.append(Feature(number, properties, problem=geometries[0]))
        else:
            out.append(Feature(number, properties, geometries[0]))
    return out


def _kml_geometry(element: Any, ns: str) -> dict[str, Any] | str | None:
    """A KML geometry element as GeoJSON (a MultiGeometry of one kind as its Multi-; mixed, as what is wrong)."""
    tag = element.tag.removeprefix(ns)
    try:
        if tag == "Point":
            return {"type": "Point", "coordinates": _kml_coordinates(element, ns)[0]}
        if tag == "LineString":
            return {"type": "LineString", "coordinates": _kml_coordinates(element, ns)}
        if tag == "Polygon":
            rings = [_kml_coordinates(b, ns) for b in element.iter(ns + "outerBoundaryIs")]
            rings += [_kml_coordinates(b, ns) for b in element.iter(ns + "innerBoundaryIs")]
            return {"type": "Polygon", "coordinates": rings}
        if tag == "MultiGeometry":
            parts = [g for g in (_kml_geometry(child, ns) for child in element) if isinstance(g, dict)]
            kinds = {p["type"] for p in parts}
            if len(kinds) != 1 or "Point" in kinds:
                return _("A MultiGeometry of lines only, or of polygons only, is expected.")
            return {"type": "Multi" + kinds.pop(), "coordinates": [p["coordinates"] for p in parts]}
    except (ValueError, IndexError):
        return _("These coordinates are not numbers.")
    return None


def _kml_coordinates(element: Any, ns: str) -> list[list[float]]:
    """"lng,lat[,height] lng,lat…" of an element's (first) coordinates, as [[lng, lat], …]."""
    found = element.find(".//" + ns + "coordinates")
    if found is None or not (found.text or "").strip():
        raise ValueError("no coordinates")
    return [[float(part) for part in item.split(",")[:2]] for item in found.text.split()]


# -- shapefiles ----------------------------------------------------------------------------------------------------

def _shapefile(data: bytes) -> list[Feature]:
    try:
        return _read_shapefile(data)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError):
        # a damaged member (its checksum), an unknown compression, an encrypted archive
        raise PlacesUnreadable(_("The zip file is damaged.")) from None


def _read_shapefile(data: bytes) -> list[Feature]:
    import shapefile

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        raise PlacesUnreadable(_("The zip file is damaged.")) from None
    if sum(i.file_size for i in infos) > MAX_UNZIPPED_BYTES:
        raise PlacesUnreadable(_("The zip file is too large once unpacked."))
    parts: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        stem, _dot, suffix = info.filename.rpartition(".")
        if suffix.lower() in ("shp", "shx", "dbf", "prj", "cpg") and not info.filename.startswith("__MACOSX"):
            parts.setdefault(suffix.lower(), info)
    if not {"shp", "shx", "dbf"} <= set(parts):
        raise PlacesUnreadable(_("A zipped shapefile needs its .shp, .shx and .dbf files."))
    if "prj" in parts:
        projection = archive.read(parts["prj"]).decode("utf-8", "replace")
        if projection.lstrip().upper().startswith("PROJCS") or not any(
                word in projection.upper() for word in ("WGS_1984", "WGS 84", "WGS84", "CGCS_2000", "CGCS2000")):
            raise PlacesUnreadable(_("The shapefile is not in WGS 84 longitude and latitude (its .prj says %(prj)s): "
                                     "export it in WGS 84 (EPSG:4326).", prj=projection.strip()[:80]))
    encoding = archive.read(parts["cpg"]).decode("ascii", "replace").strip() if "cpg" in parts else "utf-8"
    try:
        reader = shapefile.Reader(shp=io.BytesIO(archive.read(parts["shp"])),
                                  shx=io.BytesIO(archive.read(parts["shx"])),
                                  dbf=io.BytesIO(archive.read(parts["dbf"])), encoding=encoding or "utf-8",
                                  encodingErrors="replace")
        _not_too_many(len(reader))
        out = []
        for number, record in enumerate(reader.iterShapeRecords(), 1):
            properties = {k: v for k, v in record.record.as_dict().items() if v not in (None, "")}
            shape = record.shape
            if shape.shapeType == shapefile.NULL:
                out.append(Feature(number, properties, problem=_("This feature has no geometry.")))
            else:
                out.append(_feature(number, properties, shape.__geo_interface__))
        return out
    except (shapefile.ShapefileException, LookupError, ValueError, struct.error):
        raise PlacesUnreadable(_("The shapefile is damaged or of a kind that cannot be read.")) from None


def _not_too_many(count: int) -> None:
    if count > MAX_FEATURES:
        raise PlacesUnreadable(_("The file has %(n)s places; at most %(max)s are read at once.", n=count,
                                 max=MAX_FEATURES))
