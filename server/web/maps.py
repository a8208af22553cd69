"""Maps on the app's pages: what a map element carries (its tiles and their datum, where it opens, what it
shows), the site's tile source where a scheme gives none, and the tile servers a page's images may come from.

The tiles are the scheme's (`map: tiles:`), else the site's (FANGAN_MAP_TILES), else none: the places are then
drawn on a plain background, which needs no network. Positions stay in WGS-84 here; the browser converts them
into the tiles' datum for display, and a pin moved by hand back (static/js/map.js).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask, current_app, g

from ..definitions.compiled import NO_MAP
from ..definitions.maps import datum_of, tile_layers, tile_origins, tiles_problems
from ..definitions.schema import load_schema
from ..definitions.service import scheme_in_force
from .i18n import tr

_IMAGES = "fangan_map_origins"  # in g: tile servers this page's images may come from


def map_data(scheme_key: str | None, **shown: Any) -> dict[str, Any]:
    """What a map element carries (as JSON): the tile layers, their datum, where it opens, and `shown` (the
    place's shape, a point, a URL of points...). The page then lets its images come from the tile servers."""
    scheme = scheme_in_force(scheme_key) if scheme_key else None
    settings = scheme.map if scheme is not None else NO_MAP
    tiles = settings.tiles or current_app.config.get("FANGAN_MAP_TILES") or None
    layers = [{**layer, "attribution": tr(layer["attribution"]) if layer["attribution"] else ""}
              for layer in tile_layers(tiles, current_app.config.get("FANGAN_TIANDITU_KEY"))]
    allow_images(tile_origins(layers))
    return {"tiles": layers, "datum": datum_of(tiles), "center": settings.center, "zoom": settings.zoom, **shown}


def shapes_of(areas: Iterable[Any]) -> dict[str, Any]:
    """The places that have a shape, as GeoJSON (WGS-84), each named in the reader's language."""
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": area.geometry, "properties": {"name": tr(area.name), "key": area.key}}
        for area in areas if area is not None and area.geometry]}


def place_map(scheme_key: str, areas: Iterable[Any] = (), location: Mapping[str, Any] | None = None,
              label: str = "") -> dict[str, Any] | None:
    """A small map of a place (its areas' shapes, and a position as a pin), or None with nothing to draw."""
    shapes = shapes_of(areas)
    point = ({"lat": float(location["lat"]), "lng": float(location["lng"]), "label": label}
             if isinstance(location, Mapping) and location.get("lat") is not None and location.get("lng") is not None
             else None)
    if not shapes["features"] and point is None:
        return None
    return map_data(scheme_key, shapes=shapes, point=point)


def site_tiles(value: Any) -> dict[str, Any] | None:
    """The site's tile source (FANGAN_MAP_TILES: a mapping, or its JSON), checked as a scheme's would be."""
    if value in (None, "", {}):
        return None
    tiles = json.loads(value) if isinstance(value, str) else dict(value)
    import jsonschema

    schema = load_schema("scheme")
    problems = [e.message for e in jsonschema.Draft202012Validator(
        {**schema["$defs"]["tiles"], "$defs": schema["$defs"]}).iter_errors(tiles)]
    problems += [f"{'.'.join(path) or 'tiles'}: {problem.in_language('en')}" for path, problem in tiles_problems(tiles)]
    if problems:
        raise ValueError("FANGAN_MAP_TILES: " + "; ".join(problems))
    return tiles


def allow_images(origins: Iterable[str]) -> None:
    """Let this page's images come from these tile servers too."""
    g.setdefault(_IMAGES, set()).update(origins)


def image_origins() -> set[str]:
    """The tile servers the maps on this page load from."""
    return g.get(_IMAGES) or set()


def once(name: str) -> bool:
    """True the first time a page asks for `name` (a page with two maps loads the map's scripts once)."""
    asked = g.setdefault("fangan_once", set())
    first = name not in asked
    asked.add(name)
    return first


def init_app(app: Flask) -> None:
    """Check the site's tile source at start, and give templates `map_data` and `once`."""
    app.config["FANGAN_MAP_TILES"] = site_tiles(app.config.get("FANGAN_MAP_TILES"))
    app.jinja_env.globals.update(map_data=map_data, once=once)


def with_images_from(policy: str, origins: set[str]) -> str:
    """A Content-Security-Policy whose img-src also lets these origins in."""
    if not origins:
        return policy
    return policy.replace("img-src 'self' data: blob:", "img-src 'self' data: blob: " + " ".join(sorted(origins)), 1)
