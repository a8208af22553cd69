"""Pure checks of units, areas and posts: keys, kinds, parents without loops, GeoJSON geometry, who holds what.

No database and no request: the caller passes an `OrgIndex` of what exists (built from the database, and
for an import overlaid with the sheet's rows), so the same checks serve the admin pages, the spreadsheet
import and fast unit tests. Problems are `{field: message}`; messages go through gettext, so they are
English outside a request and in the page's language inside one.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from flask_babel import gettext as _

KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
KEY_MAX = 64
NAME_MAX = 4000
GEOMETRY_TYPES = ("Point", "LineString", "MultiLineString", "Polygon", "MultiPolygon")
MAX_GEOMETRY_CHARS = 1_000_000

Text = dict[str, str] | str | None
Problems = dict[str, str]


# -- texts: {"zh": …, "en": …} or a plain string ----------------------------------------------------------

def text_of(zh: str | None, en: str | None) -> dict[str, str] | None:
    """A bilingual text from its two halves; None when both are empty."""
    parts = {lang: value.strip() for lang, value in (("zh", zh), ("en", en)) if value and value.strip()}
    return parts or None


def text_parts(value: Text) -> tuple[str, str]:
    """(zh, en) of a stored text; a plain string counts as Chinese (it shows in both languages)."""
    if value is None:
        return "", ""
    if isinstance(value, dict):
        return str(value.get("zh") or ""), str(value.get("en") or "")
    return str(value), ""


def with_other_languages(new: Text, old: Text) -> Text:
    """`new` (its Chinese and English: what the organisation's pages and sheets edit) with the other languages
    `old` had (an imported `fr` or `bo`): editing one language keeps the rest. A text cleared stays cleared."""
    others = {k: v for k, v in old.items() if k not in ("zh", "en") and v} if isinstance(old, dict) else {}
    if not others or not new or (isinstance(new, dict) and set(new) - {"zh", "en"}):
        return new
    return {**(new if isinstance(new, dict) else {"zh": new}), **others}


def same_text(a: Text, b: Text) -> bool:
    """Whether two texts read the same: a plain string and `{"zh": <the same string>}` do."""
    return text_parts(a) == text_parts(b)


# -- values and what exists ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class UnitValues:
    key: str
    kind: str
    name: dict[str, str] | None
    parent: str | None = None
    difficulty: int | None = None
    active: bool = True


@dataclass(frozen=True)
class AreaValues:
    key: str
    kind: str
    name: dict[str, str] | None
    parent: str | None = None
    unit: str | None = None
    range_from: dict[str, str] | None = None
    range_to: dict[str, str] | None = None
    length_m: float | None = None
    geometry: dict | None = None
    description: dict[str, str] | None = None
    active: bool = True


@dataclass(frozen=True)
class PostValues:
    tier: str
    holder_name: str
    area: str | None = None
    unit: str | None = None
    username: str | None = None
    title: str | None = None
    phone: str | None = None
    duties: tuple[str, ...] = ()
    started_on: dt.date | None = None
    ended_on: dt.date | None = None


@dataclass(frozen=True)
class Node:
    """A unit or area as far as the checks care: its kind, parent key and (for areas) unit key."""

    kind: str
    parent: str | None = None
    unit: str | None = None


@dataclass
class OrgIndex:
    """The units and areas of one scheme, by key."""

    units: dict[str, Node] = field(default_factory=dict)
    areas: dict[str, Node] = field(default_factory=dict)

    def with_unit(self, values: UnitValues) -> OrgIndex:
        return replace(self, units={**self.units, values.key: Node(values.kind, values.parent)})

    def with_area(self, values: AreaValues) -> OrgIndex:
        return replace(self, areas={**self.areas, values.key: Node(values.kind, values.parent, values.unit)})


@dataclass(frozen=True)
class PostState:
    """The latest post of a tier over an area (or a unit): who, since when, with what contact."""

    id: int
    holder_name: str
    started_on: dt.date
    ended_on: dt.date | None = None
    username: str | None = None
    title: str | None = None
    phone: str | None = None
    duties: tuple[str, ...] = ()
    unit: str | None = None


# -- checks -------------------------------------------------------------------------------------------------

def key_problem(key: str) -> str | None:
    if not key:
        return _("This field is required.")
    if len(key) > KEY_MAX or not KEY_RE.match(key):
        return _("Use lower-case letters, digits and _ only, starting with a letter (at most 64).")
    return None


def in_loop(parents: Mapping[str, Node], key: str) -> bool:
    """Whether following parents up from `key` comes back to it."""
    seen: set[str] = set()
    node = parents.get(key)
    while node is not None and node.parent is not None:
        if node.parent == key:
            return True
        if node.parent in seen:
            return False  # a loop higher up, which is not this row's doing
        seen.add(node.parent)
        node = parents.get(node.parent)
    return False


def _kinds(scheme: Mapping, name: str) -> dict[str, dict]:
    return {k["id"]: k for k in scheme.get(name, []) if isinstance(k, dict) and "id" in k}


def _name_problem(name: Text) -> str | None:
    zh, en = text_parts(name)
    if not zh and not en:
        return _("Give a name in Chinese or English.")
    if len(zh) > NAME_MAX or len(en) > NAME_MAX:
        return _("At most %(num)s characters.", num=NAME_MAX)
    return None


def unit_problems(values: UnitValues, scheme: Mapping, index: OrgIndex) -> Problems:
    """What is wrong with a unit, given an index that already holds it as it would be."""
    problems: Problems = {}
    if problem := key_problem(values.key):
        problems["key"] = problem
    if values.kind not in _kinds(scheme, "unit_kinds"):
        problems["kind"] = _("The scheme has no unit kind %(kind)s.", kind=values.kind or "—")
    if problem := _name_problem(values.name):
        problems["name"] = problem
    if values.parent is not None:
        if values.parent == values.key:
            problems["parent"] = _("A unit cannot be inside itself.")
        elif values.parent not in index.units:
            problems["parent"] = _("There is no unit %(key)s.", key=values.parent)
        elif in_loop(index.units, values.key):
            problems["parent"] = _("%(key)s is inside this unit: that would make a loop.", key=values.parent)
    if values.difficulty is not None and not 1 <= values.difficulty <= 9:
        problems["difficulty"] = _("A whole number from 1 to 9.")
    return problems


def area_problems(values: AreaValues, scheme: Mapping, index: OrgIndex) -> Problems:
    """What is wrong with an area, given an index that already holds it as it would be."""
    problems: Problems = {}
    kinds = _kinds(scheme, "area_kinds")
    if problem := key_problem(values.key):
        problems["key"] = problem
    kind = kinds.get(values.kind)
    if kind is None:
        problems["kind"] = _("The scheme has no area kind %(kind)s.", kind=values.kind or "—")
    if problem := _name_problem(values.name):
        problems["name"] = problem
    if values.parent is not None:
        parent = index.areas.get(values.parent)
        if values.parent == values.key:
            problems["parent"] = _("An area cannot be inside itself.")
        elif parent is None:
            problems["parent"] = _("There is no area %(key)s.", key=values.parent)
        elif in_loop(index.areas, values.key):
            problems["parent"] = _("%(key)s is inside this area: that would make a loop.", key=values.parent)
        elif kind is not None and kind.get("parent_kinds") and parent.kind not in kind["parent_kinds"]:
            problems["parent"] = _("An area of kind %(kind)s cannot be inside one of kind %(parent)s.",
                                   kind=values.kind, parent=parent.kind)
    if values.unit is not None and values.unit not in index.units:
        problems["unit"] = _("There is no unit %(key)s.", key=values.unit)
    if values.length_m is not None and (not math.isfinite(values.length_m) or values.length_m < 0):
        problems["length_m"] = _("A length in metres, 0 or more.")
    drawn = (values.geometry or {}).get("type")
    wanted = (kind or {}).get("geometry")
    if drawn and wanted in SHAPES_OF_KIND and drawn not in SHAPES_OF_KIND[wanted]:
        problems["geometry"] = _("An area of kind %(kind)s is drawn as %(types)s, not as %(given)s.",
                                 kind=values.kind, types=" / ".join(SHAPES_OF_KIND[wanted]), given=drawn)
    return problems


# What an area kind's `geometry` lets its areas be drawn as (`none`, the schema's default, leaves it open).
SHAPES_OF_KIND = {"point": ("Point",), "line": ("LineString", "MultiLineString"),
                  "polygon": ("Polygon", "MultiPolygon")}


def parse_geometry(text: str | None) -> tuple[dict | None, str | None]:
    """A GeoJSON geometry from its text: (geometry, None), or (None, what is wrong). Empty text is no geometry."""
    text = (text or "").strip()
    if not text:
        return None, None
    if len(text) > MAX_GEOMETRY_CHARS:
        return None, _("The geometry is too long.")
    try:
        data = json.loads(text)
    except ValueError:
        return None, _("Not valid GeoJSON: check the brackets, commas and quotes.")
    return check_geometry(data)


def spot_of(geometry: Any) -> tuple[float, float] | None:
    """A point on a shape (lat, lng), inside it for a polygon; None for what is not a shape."""
    import shapely.geometry

    try:
        point = shapely.geometry.shape(geometry).representative_point()
    except (ValueError, TypeError, AttributeError, KeyError, shapely.errors.ShapelyError):
        return None
    return (round(point.y, 6), round(point.x, 6)) if not point.is_empty else None


def check_geometry(data: Any) -> tuple[dict | None, str | None]:
    """A GeoJSON geometry object with longitude/latitude numbers, checked by shapely."""
    import shapely.geometry
    from shapely.validation import explain_validity

    if not isinstance(data, dict) or data.get("type") not in GEOMETRY_TYPES or "coordinates" not in data:
        return None, _("A GeoJSON geometry of type %(types)s, with coordinates.", types=", ".join(GEOMETRY_TYPES))
    if not _lng_lat_numbers(data["coordinates"]):
        return None, _("Coordinates must be numbers: longitude from -180 to 180, then latitude from -90 to 90.")
    try:
        shape = shapely.geometry.shape(data)
    except Exception:  # noqa: BLE001 - shapely raises many kinds of error for bad shapes; all mean the same here
        return None, _("These coordinates do not make a %(type)s.", type=data["type"])
    if shape.is_empty:
        return None, _("The geometry has no coordinates.")
    if not shape.is_valid:
        return None, _("The geometry is not valid: %(reason)s", reason=explain_validity(shape))
    return {"type": data["type"], "coordinates": data["coordinates"]}, None


def _lng_lat_numbers(coordinates: Any) -> bool:
    if not isinstance(coordinates, list) or not coordinates:
        return False
    if all(isinstance(c, int | float) and not isinstance(c, bool) for c in coordinates):
        return (len(coordinates) in (2, 3) and all(math.isfinite(c) for c in coordinates)
                and -180 <= coordinates[0] <= 180 and -90 <= coordinates[1] <= 90)
    return all(_lng_lat_numbers(c) for c in coordinates)


def post_problems(values: PostValues, scheme: Mapping, index: OrgIndex,
                  usernames: Container[str] | None = None) -> Problems:
    """What is wrong with a post row or form, whatever it leads to."""
    problems: Problems = {}
    if values.tier not in _kinds(scheme, "tiers"):
        problems["tier"] = _("The scheme has no tier %(tier)s.", tier=values.tier or "—")
    if not values.holder_name:
        problems["holder_name"] = _("This field is required.")
    elif len(values.holder_name) > 100:
        problems["holder_name"] = _("At most %(num)s characters.", num=100)
    if values.area is not None and values.area not in index.areas:
        problems["area"] = _("There is no area %(key)s.", key=values.area)
    if values.unit is not None and values.unit not in index.units:
        problems["unit"] = _("There is no unit %(key)s.", key=values.unit)
    if values.area is None and values.unit is None:
        problems["area"] = _("Name the area or the unit this post is over.")
    if values.title and len(values.title) > 200:
        problems["title"] = _("At most %(num)s characters.", num=200)
    if values.phone and len(values.phone) > 40:
        problems["phone"] = _("At most %(num)s characters.", num=40)
    if values.username and usernames is not None and values.username not in usernames:
        problems["username"] = _("There is no user %(name)s.", name=values.username)
    if values.started_on and values.ended_on and values.ended_on < values.started_on:
        problems["ended_on"] = _("The post cannot end before it starts.")
    return problems


def tier_problems(values: PostValues, scheme: Mapping, index: OrgIndex) -> Problems:
    """Whether the tier may be held over this area or unit (its `area_kinds` and `unit_kinds`)."""
    tier = _kinds(scheme, "tiers").get(values.tier)
    if tier is None:
        return {}
    area, unit = index.areas.get(values.area or ""), index.units.get(values.unit or "")
    if area is not None and tier.get("area_kinds") and area.kind not in tier["area_kinds"]:
        return {"area": _("A post of tier %(tier)s cannot be over an area of kind %(kind)s.",
                          tier=values.tier, kind=area.kind)}
    if area is None and unit is not None and tier.get("unit_kinds") and unit.kind not in tier["unit_kinds"]:
        return {"unit": _("A post of tier %(tier)s cannot be over a unit of kind %(kind)s.",
                          tier=values.tier, kind=unit.kind)}
    return {}


def several_tiers(scheme: Mapping) -> frozenset[str]:
    """Tiers several people hold over the same area or unit at once (`several: true`)."""
    return frozenset(t["id"] for t in scheme.get("tiers", []) if t.get("several"))


def same_holder(values: PostValues, latest: PostState) -> bool:
    """The same person: the same name, and the same account when both name one."""
    if values.holder_name != latest.holder_name:
        return False
    return not (values.username and latest.username) or values.username == latest.username


def plan_post(values: PostValues, latest: PostState | None, today: dt.date) -> tuple[str, Problems]:
    """What a post row does to the latest post of its tier there: `unchanged`, `update` or `appoint`.

    The same holder updates contact, title, duties, account and end date; another holder is appointed from
    `started_on` (default today), which ends the current post the day before, so history is kept. A post that
    has already ended stays as it was: its holder named again is appointed anew.
    """
    ended = latest is not None and latest.ended_on is not None and latest.ended_on < today
    if latest is not None and same_holder(values, latest) and not ended:
        if values.started_on is not None and values.started_on != latest.started_on:
            return "update", {"started_on": _(
                "%(name)s has held this post since %(day)s: keep that date, or name the new holder.",
                name=latest.holder_name, day=latest.started_on.isoformat())}
        if values.ended_on is not None and values.ended_on < latest.started_on:
            return "update", {"ended_on": _("The post cannot end before it starts.")}
        changed = (values.title or None, values.phone or None, values.duties, values.username or None,
                   values.ended_on) != (latest.title or None, latest.phone or None, latest.duties,
                                        latest.username or None, latest.ended_on)
        if values.unit is not None and values.unit != latest.unit:
            changed = True
        return ("update" if changed else "unchanged"), {}
    return "appoint", appointment_problems(values, latest, today)


def appointment_problems(values: PostValues, latest: PostState | None, today: dt.date) -> Problems:
    """A new holder starts after the latest one did (from `started_on`, default today)."""
    since = values.started_on or today
    if latest is not None and since <= latest.started_on:
        return {"started_on": _("%(name)s has held this post since %(day)s: the new holder must start later.",
                                name=latest.holder_name, day=latest.started_on.isoformat())}
    if values.ended_on is not None and values.ended_on < since:
        return {"ended_on": _("The post cannot end before it starts.")}
    return {}


def place_of(areas: list[tuple[Any, dict, str]], lat: float, lng: float, within_m: float) -> Any | None:
    """The area a point belongs to, from (area, GeoJSON geometry, tree path "/1/4/9/") candidates.

    The deepest area whose shape holds the point (a grid inside its zone) frames the answer; the roads and
    other lines or points within `within_m` metres of it — a report taken from the pavement beside a road's
    centre line — compete with it when they lie inside it (or anywhere, when no shape holds the point). Of
    those, an area is passed over when one inside it is a candidate too (a segment before its road, a road
    before the town around it); then the nearest, then the deepest wins. A shape that does not hold the point
    is no candidate however near. None when nothing is near."""
    holding, near = [], []
    for area, geometry, path in areas:
        distance = distance_m(geometry, lat, lng)
        if distance is None:
            continue
        if distance == 0 and _is_polygon(geometry):
            holding.append((distance, path, area))
        elif distance <= within_m and not _is_polygon(geometry):
            near.append((distance, path, area))
    frame = max(holding, key=lambda c: c[1].count("/"))[1] if holding else None
    candidates = ([c for c in holding if c[1] == frame] + [c for c in near if c[1].startswith(frame)]
                  if frame is not None else near)
    paths = [path for _d, path, _a in candidates]
    specific = [c for c in candidates if not any(p != c[1] and p.startswith(c[1]) for p in paths)]
    if not specific:
        return None
    return min(specific, key=lambda c: (c[0], -c[1].count("/")))[2]


def _is_polygon(geometry: Any) -> bool:
    return isinstance(geometry, dict) and geometry.get("type") in ("Polygon", "MultiPolygon")


# -- distances ----------------------------------------------------------------------------------------------

_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LNG_EQUATOR = 111_320.0


def distance_m(geometry: dict, lat: float, lng: float) -> float | None:
    """Metres from (lat, lng) to a GeoJSON geometry (lng/lat coordinates); 0 inside a polygon.

    Uses a flat projection centred on the point, which is accurate to well under 1 % at the few kilometres
    that matter here. None when the geometry cannot be read.
    """
    import shapely
    from shapely.errors import ShapelyError
    from shapely.geometry import Point, shape

    try:
        geom = shape(geometry)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError, ShapelyError):
        return None
    if geom.is_empty:
        return None
    scale_x = _M_PER_DEG_LNG_EQUATOR * math.cos(math.radians(lat))

    def project(coords: Any) -> Any:  # an (n, 2) array of lng, lat
        return (coords - (lng, lat)) * (scale_x, _M_PER_DEG_LAT)

    return float(shapely.transform(geom, project).distance(Point(0, 0)))


# -- how many: areas a holder covers, holders an area needs ------------------------------------------------------

@dataclass(frozen=True)
class CountWarning:
    """A tier's `covers` or `holders` broken by the posts held today."""

    tier: str
    what: str  # covers: a holder's areas | holders: an area's holders
    subject: str  # the holder's name, or the area's key
    count: int
    low: int | None
    high: int | None

    def message(self) -> str:
        wanted = (f"{self.low}–{self.high}" if self.low is not None and self.high is not None
                  else f"≥ {self.low}" if self.low is not None else f"≤ {self.high}")
        if self.what == "covers":
            return _("%(holder)s holds tier %(tier)s over %(count)s areas; the scheme says %(wanted)s.",
                     holder=self.subject, tier=self.tier, count=self.count, wanted=wanted)
        return _("Area %(area)s has %(count)s holder(s) of tier %(tier)s; the scheme says %(wanted)s.",
                 area=self.subject, tier=self.tier, count=self.count, wanted=wanted)


def _outside(count: int, rule: Mapping) -> bool:
    return count < rule.get("min", 0) or ("max" in rule and count > rule["max"])


def post_count_warnings(scheme: Mapping, held: list[tuple[str, str, str | None]],
                        areas: Mapping[str, str]) -> list[CountWarning]:
    """Where the posts held today break a tier's `covers` (areas per holder) or `holders` (holders per area).

    `held`: (tier, holder, area key or None) of each post held today; `areas`: each active area's key → kind."""
    out = []
    for tier_id, tier in _kinds(scheme, "tiers").items():
        mine = [(holder, area) for t, holder, area in held if t == tier_id and area]
        covers, needs = tier.get("covers") or {}, tier.get("holders") or {}
        if covers:
            per_holder: dict[str, int] = {}
            for holder, _area in mine:
                per_holder[holder] = per_holder.get(holder, 0) + 1
            out += [CountWarning(tier_id, "covers", holder, n, covers.get("min"), covers.get("max"))
                    for holder, n in sorted(per_holder.items()) if _outside(n, covers)]
        if needs:
            kinds = tier.get("area_kinds") or []
            per_area: dict[str, int] = {}
            for _holder, area in mine:
                per_area[area] = per_area.get(area, 0) + 1
            out += [CountWarning(tier_id, "holders", key, per_area.get(key, 0), needs.get("min"), needs.get("max"))
                    for key, kind in sorted(areas.items())
                    if (not kinds or kind in kinds) and _outside(per_area.get(key, 0), needs)]
    return out

