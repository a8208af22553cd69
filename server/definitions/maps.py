"""The map's tile sources, pure: which settings each source reads, the layers a browser loads, and the datum
their tiles are drawn in (positions are stored in WGS-84 and converted for display: docs/maps.md).

A source reads only its own settings: any other one could never take effect, so `tiles_problems` names it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from .errors import N_, Said, say

# The settings each source reads (besides `source`); `required` those it cannot do without.
READS: dict[str, frozenset[str]] = {
    "none": frozenset(),
    "tianditu": frozenset({"style", "key", "max_zoom", "attribution"}),
    "xyz": frozenset({"url", "subdomains", "datum", "max_zoom", "attribution"}),
    "wmts": frozenset({"url", "subdomains", "layer", "matrix_set", "format", "layer_style", "datum", "max_zoom",
                       "attribution"}),
}
REQUIRED: dict[str, tuple[str, ...]] = {"xyz": ("url",), "wmts": ("url", "layer", "matrix_set")}

# 天地图's WMTS in Web Mercator (`_w`), as Leaflet's URL template: eight hosts, the layer named twice.
TIANDITU_URL = ("https://t{s}.tianditu.gov.cn/%(layer)s_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                "&LAYER=%(layer)s&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
                "&TILECOL={x}&tk=%(key)s")
TIANDITU_LAYERS = {"vector": ("vec", "cva"), "imagery": ("img", "cia")}  # the map, then its names on top
TIANDITU_CREDIT = "© 天地图"
DATUMS = ("wgs84", "cgcs2000", "gcj02")


def tiles_problems(tiles: Mapping[str, Any]) -> Iterator[tuple[list[str], Said | str]]:
    """(path under `tiles`, problem) for each setting the source needs and lacks, or reads not at all."""
    source = tiles.get("source")
    if source not in READS:
        return
    for key in tiles:
        if key != "source" and key not in READS[source]:
            yield [key], say(N_("'%(key)s' is not read by the '%(source)s' tile source, so it can never take "
                                "effect (it reads: %(reads)s)"), key=key, source=source,
                             reads=", ".join(sorted(READS[source])) or "-")
    for key in REQUIRED.get(source, ()):
        if not tiles.get(key):
            yield [], say(N_("the '%(source)s' tile source needs '%(key)s'"), source=source, key=key)
    if source == "xyz" and isinstance(tiles.get("url"), str):
        url = tiles["url"].replace("{-y}", "{y}")  # ({-y}: rows counted from the south, as TMS servers do)
        for part in ("{z}", "{x}", "{y}"):
            if part not in url:
                yield ["url"], say(N_("an xyz tile URL needs %(part)s"), part=part)
    if "{s}" in str(tiles.get("url", "")) and not tiles.get("subdomains"):
        yield ["url"], say(N_("the tile URL has {s}: give the values it takes as 'subdomains'"))


def tile_layers(tiles: Mapping[str, Any] | None, tianditu_key: str | None = None) -> list[dict[str, Any]]:
    """The layers a browser loads, bottom first: each a Leaflet URL template with its hosts, highest zoom and
    credit. None (no tiles, or 天地图 without a key): the places are drawn on a plain background."""
    source = (tiles or {}).get("source", "none")
    max_zoom = int((tiles or {}).get("max_zoom") or 18)
    credit = (tiles or {}).get("attribution")
    if source == "tianditu":
        key = (tiles or {}).get("key") or tianditu_key
        if not key:
            return []
        return [{"url": TIANDITU_URL % {"layer": layer, "key": key}, "subdomains": "01234567",
                 "max_zoom": min(max_zoom, 18), "attribution": credit or TIANDITU_CREDIT}
                for layer in TIANDITU_LAYERS[(tiles or {}).get("style") or "vector"]]
    if source == "xyz":
        return [{"url": tiles["url"], "subdomains": tiles.get("subdomains") or "", "max_zoom": max_zoom,
                 "attribution": credit}]
    if source == "wmts":
        query = (f"SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER={tiles['layer']}"
                 f"&STYLE={tiles.get('layer_style') or 'default'}&TILEMATRIXSET={tiles['matrix_set']}"
                 f"&FORMAT={tiles.get('format') or 'image/png'}&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}")
        url = tiles["url"] + ("&" if "?" in tiles["url"] else "?") + query
        return [{"url": url, "subdomains": tiles.get("subdomains") or "", "max_zoom": max_zoom,
                 "attribution": credit}]
    return []


def datum_of(tiles: Mapping[str, Any] | None) -> str:
    """The datum the browser draws in: GCJ-02 where the tiles say so; WGS-84 otherwise (天地图's CGCS2000
    differs from it by centimetres)."""
    datum = (tiles or {}).get("datum") or "wgs84"
    return "wgs84" if datum == "cgcs2000" else datum


def tile_origins(layers: list[dict[str, Any]]) -> set[str]:
    """The origins the layers' tiles come from (a page showing them lets its images come from there)."""
    out = set()
    for layer in layers:
        for host in layer.get("subdomains") or " ":
            parts = urlsplit(layer["url"].replace("{s}", host.strip()))
            if parts.netloc:
                out.add(f"{parts.scheme or 'https'}://{parts.netloc}")
    return out
