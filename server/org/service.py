"""Units, areas and posts: keep them in line with the active scheme, and read them within a user's scope."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _
from sqlalchemy import func, or_

from ..audit.service import change_stamp, record_audit
from ..auth import permissions
from ..core.cache import memoize
from ..core.errors import DomainError, NotFound, PermissionDenied
from ..definitions.clock import district_today
from ..definitions.service import scheme_activated, scheme_or_404
from ..extensions import db
from . import engine
from .engine import (
    AreaValues,
    Node,
    OrgIndex,
    Problems,
    UnitValues,
    area_problems,
    same_text,
    unit_problems,
    with_other_languages,
)
from .models import Area, Post, Unit

if TYPE_CHECKING:
    from ..auth.models import AnyUser


class OrgInvalid(DomainError):
    """A unit, area or post that cannot be saved: `problems` maps each field to what is wrong with it."""

    def __init__(self, problems: Problems):
        super().__init__("; ".join(f"{name}: {message}" for name, message in problems.items()))
        self.problems = problems


class _UnitTree:
    """The unit tree as `auth` reads it to work out scopes (registered below)."""

    def units_under(self, unit_ids: set[int]) -> set[int]:
        paths = db.session.scalars(db.select(Unit.path).where(Unit.id.in_(unit_ids))).all()
        out: set[int] = set()
        for path in paths:
            out |= set(db.session.scalars(db.select(Unit.id).where(Unit.path.startswith(path))))
        return out

    def areas_of(self, unit_ids: set[int]) -> set[int]:
        return set(db.session.scalars(db.select(Area.id).where(Area.unit_id.in_(unit_ids))))

    def areas_within(self, area_ids: set[int]) -> set[int]:
        paths = db.session.scalars(db.select(Area.path).where(Area.id.in_(area_ids))).all()
        out = set(area_ids)
        for path in paths:
            if path:
                out |= set(db.session.scalars(db.select(Area.id).where(Area.path.startswith(path))))
        return out


permissions.UNIT_TREE.add("units", _UnitTree())


@scheme_activated.connect
def _follow_scheme(scheme_key: str, data: dict) -> dict[str, int]:
    return sync_org(scheme_key, data)


def sync_org(scheme_key: str, scheme: dict) -> dict[str, int]:
    """Upsert the scheme's units and scheme-defined areas by id; retire those it no longer lists."""
    units = {u.key: u for u in db.session.scalars(db.select(Unit).filter_by(scheme_key=scheme_key))}
    seen: set[str] = set()
    counts = {"units_added": 0, "units_retired": 0, "areas_added": 0, "areas_retired": 0}

    def visit_units(items: list[dict], parent: Unit | None) -> None:
        for position, item in enumerate(items):
            unit = units.get(item["id"])
            if unit is None:
                unit = units[item["id"]] = Unit(scheme_key=scheme_key, key=item["id"])
                db.session.add(unit)
                counts["units_added"] += 1
            unit.kind, unit.name, unit.parent, unit.position = item["kind"], item["name"], parent, position
            unit.source = "scheme"
            unit.difficulty, unit.public, unit.active = item.get("difficulty"), item.get("public", True), True
            seen.add(item["id"])
            visit_units(item.get("children", []), unit)

    visit_units(scheme.get("units", []), None)
    for key, unit in units.items():
        if key not in seen and unit.source == "scheme" and unit.active:
            unit.active = False
            counts["units_retired"] += 1
    db.session.flush()

    areas = {a.key: a for a in db.session.scalars(db.select(Area).filter_by(scheme_key=scheme_key))}
    seen_areas: set[str] = set()

    def visit_areas(items: list[dict], parent: Area | None) -> None:
        for position, item in enumerate(items):
            area = areas.get(item["id"])
            if area is None:
                area = areas[item["id"]] = Area(scheme_key=scheme_key, key=item["id"], source="scheme")
                db.session.add(area)
                counts["areas_added"] += 1
            unit = units.get(item.get("unit")) if item.get("unit") else (parent.unit if parent else None)
            area.kind, area.name, area.parent, area.unit, area.position = (
                item["kind"], item["name"], parent, unit, position)
            area.range_from, area.range_to = item.get("from"), item.get("to")
            area.length_m, area.description = item.get("length_m"), item.get("description")
            area.geometry, area.active = item.get("geometry"), True
            seen_areas.add(item["id"])
            visit_areas(item.get("children", []), area)

    visit_areas(scheme.get("areas", []), None)
    for key, area in areas.items():
        if key not in seen_areas and area.source == "scheme" and area.active:
            area.active = False
            counts["areas_retired"] += 1
    set_paths(scheme_key)
    return counts


def set_paths(scheme_key: str) -> None:
    """Recompute the "/1/4/9/" paths of units and areas, so that subtrees are a prefix match in SQL."""
    for model in (Unit, Area):
        rows = list(db.session.scalars(db.select(model).filter_by(scheme_key=scheme_key)))
        by_id = {row.id: row for row in rows}

        def path_of(row: Any, by_id: dict[int, Any] = by_id) -> str:
            parts, node = [], row
            while node is not None and len(parts) < 1000:  # a cycle cannot loop forever
                parts.append(str(node.id))
                node = by_id.get(node.parent_id) if node.parent_id else None
            return "/" + "/".join(reversed(parts)) + "/"

        for row in rows:
            row.path = path_of(row)
    db.session.flush()


def list_units(user: AnyUser, scheme_key: str, inactive: bool = False) -> list[Unit]:
    """Units the user may see, in tree order; those no longer in use only when asked."""
    if not permissions.can_view_org(user, scheme_key):
        raise PermissionDenied(_("You may not view this district's organisation."))
    scope = permissions.org_view_reach(user, scheme_key)
    query = db.select(Unit).filter_by(scheme_key=scheme_key).order_by(Unit.path)
    if not inactive:
        query = query.filter_by(active=True)
    if scope.unit_ids is not None:
        query = query.where(Unit.id.in_(scope.unit_ids or [-1]))
    return list(db.session.scalars(query))


UNITS_OFFERED = 60  # a city's thousands of units are not one list: past this, the upper levels and a search


# Changes that can rename or add a unit or a place, each written with its audit entry.
NAME_CHANGES = ("unit.create", "unit.edit", "area.create", "area.edit", "org.import", "scheme.load",
                "scheme.activate")


def ids_named(model: type[Unit] | type[Area], scheme_key: str, words: str) -> list[int]:
    """Ids of the district's units or areas (`model`) whose name, in any language, contains the words.

    A city has thousands of each: their names are read once and kept, until a unit or place is added, renamed
    or imported (`names_stamp`: one index read), and ten minutes at most."""
    needle = words.casefold()
    if not needle:
        return []
    names = _kept_names((model.__tablename__, scheme_key, *names_stamp()), lambda: NameIndex(
        db.session.execute(db.select(model.id, model.name).where(model.scheme_key == scheme_key))))
    return names.find(needle)


class NameIndex:
    """Names, case folded, in one text (one search in C over all of them), with each name's id by its start."""

    SEPARATOR = "\x00"  # never in a name: a match never runs from one name into the next

    def __init__(self, rows: Iterable[tuple[int, Any]]) -> None:
        self.ids: list[int] = []
        self.starts: list[int] = []
        texts, at = [], 0
        for row_id, name in rows:
            text = names_text(name).casefold().replace(self.SEPARATOR, " ")
            self.ids.append(row_id)
            self.starts.append(at)
            texts.append(text)
            at += len(text) + 1
        self.text = self.SEPARATOR.join(texts)

    def find(self, needle: str) -> list[int]:
        """The ids of the names that contain `needle` (case folded), each once, in the order they were given."""
        found: list[int] = []
        at = self.text.find(needle) if needle and self.SEPARATOR not in needle else -1
        while at >= 0:
            index = bisect.bisect_right(self.starts, at) - 1
            found.append(self.ids[index])
            following = self.starts[index + 1] if index + 1 < len(self.starts) else len(self.text)
            at = self.text.find(needle, following)
        return found


def names_stamp() -> tuple[Any, ...]:
    """What a kept answer that shows units' or places' names (or counts them) depends on: the newest
    `NAME_CHANGES` audit entry, and the ten minutes it falls in (`audit.service.change_stamp`)."""
    return change_stamp(NAME_CHANGES)


@memoize(64, key=lambda key, make: key)
def _kept_names(key: tuple, make: Any) -> NameIndex:
    return make()


def forget_names() -> None:
    """Drop the kept names (tests roll their data back, and SQLite then hands out the same ids again)."""
    _kept_names.cache_clear()


def names_text(text: Any) -> str:
    """Every language of a name (or a definition text), for matching a search in any of them."""
    return " / ".join(str(v) for v in text.values()) if isinstance(text, dict) else str(text or "")


def user_units(reach: permissions.Scope, scheme_key: str) -> Any:
    """SQL: the district's active units a scope reaches."""
    query = db.select(Unit).where(Unit.scheme_key == scheme_key, Unit.active.is_(True))
    return query if reach.district_wide else query.where(Unit.id.in_(list(reach.unit_ids or []) or [-1]))


def units_offered(query: Any, chosen: int | None = None) -> tuple[list[Unit], bool]:
    """The units a page's unit filter lists, of those `query` selects: all when they are few; else the upper
    levels that fit in UNITS_OFFERED (and the one chosen), the others being found by name. Whether some are
    left out."""
    total = db.session.scalar(query.with_only_columns(func.count(Unit.id)).order_by(None))
    if total <= UNITS_OFFERED:
        return list(db.session.scalars(query.order_by(Unit.path))), False
    depth = func.length(Unit.path) - func.length(func.replace(Unit.path, "/", ""))  # "/3/8/": 3 slashes
    levels = db.session.execute(query.with_only_columns(depth, func.count(Unit.id)).group_by(depth)
                                .order_by(depth)).all()
    deepest, offered = None, 0
    for level, count in levels:
        if offered + count > UNITS_OFFERED and deepest is not None:
            break
        deepest, offered = level, offered + count
    shown = list(db.session.scalars(query.where(depth <= deepest).order_by(Unit.path).limit(UNITS_OFFERED)))
    if chosen and chosen not in {u.id for u in shown}:  # the unit filtered by stays shown as chosen
        shown += db.session.scalars(query.where(Unit.id == chosen)).all()
    return sorted(shown, key=lambda u: u.path), True


def get_unit(user: AnyUser, unit_id: int) -> Unit:
    unit = db.session.get(Unit, unit_id)
    if unit is None:
        raise NotFound(_("No such unit."))
    if not permissions.can_view_unit(user, unit):
        raise PermissionDenied(_("You may not view this unit."))
    return unit


def list_areas(user: AnyUser, scheme_key: str, unit: Unit | None = None, inactive: bool = False) -> list[Area]:
    if not permissions.can_view_org(user, scheme_key):
        raise PermissionDenied(_("You may not view this district's areas."))
    scope = permissions.org_view_reach(user, scheme_key)
    query = db.select(Area).filter_by(scheme_key=scheme_key).order_by(Area.kind, Area.position)
    if not inactive:
        query = query.filter_by(active=True)
    if unit is not None:
        query = query.filter_by(unit_id=unit.id)
    areas = list(db.session.scalars(query))
    return [a for a in areas if scope.covers_area(a.id, a.unit_id)]


def get_area(user: AnyUser, area_id: int) -> Area:
    area = db.session.get(Area, area_id)
    if area is None:
        raise NotFound(_("No such area."))
    if not permissions.can_view_area(user, area):
        raise PermissionDenied(_("You may not view this area."))
    return area


def posts_of(*, unit: Unit | None = None, area: Area | None = None, on: dt.date | None = None) -> list[Post]:
    """Posts held on a day (default today) over a unit or an area."""
    place = unit if unit is not None else area
    on = on or district_today(place.scheme_key if place is not None else None)
    query = db.select(Post).where(Post.started_on <= on, (Post.ended_on.is_(None)) | (Post.ended_on >= on))
    if unit is not None:
        query = query.filter_by(unit_id=unit.id)
    if area is not None:
        query = query.filter_by(area_id=area.id)
    return list(db.session.scalars(query.order_by(Post.tier_key)))


# -- editing units and areas ----------------------------------------------------------------------------------

def org_index(scheme_key: str) -> OrgIndex:
    """Every unit and area of a scheme by key, for the checks in `engine`."""
    units = list(db.session.scalars(db.select(Unit).filter_by(scheme_key=scheme_key)))
    unit_keys = {u.id: u.key for u in units}
    areas = list(db.session.scalars(db.select(Area).filter_by(scheme_key=scheme_key)))
    area_keys = {a.id: a.key for a in areas}
    return OrgIndex(
        units={u.key: Node(u.kind, unit_keys.get(u.parent_id)) for u in units},
        areas={a.key: Node(a.kind, area_keys.get(a.parent_id), unit_keys.get(a.unit_id)) for a in areas})


@dataclass(frozen=True)
class OrgChoices:
    """What the admin forms of a scheme offer: kinds, tiers, units and areas (in tree order)."""

    data: dict
    unit_kinds: list[dict]
    area_kinds: list[dict]
    tiers: list[dict]
    units: list[Unit]
    areas: list[Area]


def org_choices(user: AnyUser, scheme_key: str) -> OrgChoices:
    """The choices of the organisation forms, for someone who may manage some of it."""
    if not permissions.can_manage_org_in(user, scheme_key):
        raise PermissionDenied(_("You may not change this district's organisation."))
    scheme = scheme_or_404(scheme_key)
    units = list(db.session.scalars(db.select(Unit).filter_by(scheme_key=scheme_key).order_by(Unit.path)))
    areas = list(db.session.scalars(db.select(Area).filter_by(scheme_key=scheme_key).order_by(Area.path)))
    return OrgChoices(scheme.data, list(scheme.unit_kinds.values()), list(scheme.area_kinds.values()),
                      list(scheme.tiers.values()), units, areas)


def _by_key(model: type, scheme_key: str, key: str | None) -> Any:
    if key is None:
        return None
    return db.session.scalar(db.select(model).filter_by(scheme_key=scheme_key, key=key))


def set_unit_values(unit: Unit, values: UnitValues, parent: Unit | None) -> tuple[dict, dict]:
    """Copy values onto a unit; returns (before, after) of the fields that changed, for the audit log."""
    before, after = {}, {}
    current = {"kind": unit.kind, "parent": unit.parent.key if unit.parent else None,
               "difficulty": unit.difficulty, "active": unit.active}
    wanted = {"kind": values.kind, "parent": values.parent, "difficulty": values.difficulty,
              "active": values.active}
    for name, value in wanted.items():
        if current[name] != value:
            before[name], after[name] = current[name], value
    if not same_text(unit.name, values.name):
        name = with_other_languages(values.name, unit.name)
        before["name"], after["name"] = unit.name, name
        unit.name = name
    unit.kind, unit.difficulty, unit.active = values.kind, values.difficulty, values.active
    if "parent" in after or unit.id is None:
        unit.parent = parent
    return before, after


def set_area_values(area: Area, values: AreaValues, parent: Area | None, unit: Unit | None) -> tuple[dict, dict]:
    """Copy values onto an area; returns (before, after) of the fields that changed, for the audit log."""
    before, after = {}, {}
    plain = {"kind": (area.kind, values.kind), "parent": (area.parent.key if area.parent else None, values.parent),
             "unit": (area.unit.key if area.unit else None, values.unit),
             "length_m": (area.length_m, values.length_m), "geometry": (area.geometry, values.geometry),
             "active": (area.active, values.active)}
    for name, (old, new) in plain.items():
        if old != new:
            before[name], after[name] = old, new
    for name, attr in (("name", "name"), ("from", "range_from"), ("to", "range_to"),
                       ("description", "description")):
        new = with_other_languages(getattr(values, attr), getattr(area, attr))
        if not same_text(getattr(area, attr), new):
            before[name], after[name] = getattr(area, attr), new
            setattr(area, attr, new)
    area.kind, area.length_m, area.active = values.kind, values.length_m, values.active
    if "geometry" in after:
        area.geometry = values.geometry
    if "parent" in after or area.id is None:
        area.parent = parent
    if "unit" in after or area.id is None:
        area.unit = unit
    return before, after


def _refuse(problems: Problems) -> None:
    if problems:
        raise OrgInvalid(problems)


def create_unit(user: AnyUser, scheme_key: str, values: UnitValues) -> Unit:
    """Add a unit (source "manual") under a parent the user manages."""
    data = scheme_or_404(scheme_key).data
    parent = _by_key(Unit, scheme_key, values.parent)
    if not permissions.can_add_unit(user, scheme_key, parent):
        raise PermissionDenied(_("You may not add a unit there."))
    index = org_index(scheme_key)
    taken = values.key in index.units
    problems = unit_problems(values, data, index.with_unit(values))
    if taken:
        problems["key"] = _("There is already a unit %(key)s.", key=values.key)
    _refuse(problems)
    position = db.session.scalar(db.select(db.func.count(Unit.id)).filter_by(
        scheme_key=scheme_key, parent_id=parent.id if parent else None)) or 0
    unit = Unit(scheme_key=scheme_key, key=values.key, source="manual", position=position)
    after = set_unit_values(unit, values, parent)[1]
    db.session.add(unit)
    db.session.flush()
    set_paths(scheme_key)
    record_audit("unit.create", "unit", unit.id, user=user, scheme_key=scheme_key,
                 after={"key": unit.key, **after, "name": unit.name})
    return unit


def edit_unit(user: AnyUser, unit: Unit, values: UnitValues) -> Unit:
    """Change a unit's kind, name, parent, difficulty or state; its key stays."""
    values = UnitValues(unit.key, values.kind, values.name, values.parent, values.difficulty, values.active)
    parent = _by_key(Unit, unit.scheme_key, values.parent)
    if not permissions.can_manage_unit(user, unit):
        raise PermissionDenied(_("You may not change this unit."))
    moved = (parent.id if parent else None) != unit.parent_id
    if moved and not permissions.can_add_unit(user, unit.scheme_key, parent):
        raise PermissionDenied(_("You may not move this unit there."))
    index = org_index(unit.scheme_key)
    _refuse(unit_problems(values, scheme_or_404(unit.scheme_key).data, index.with_unit(values)))
    before, after = set_unit_values(unit, values, parent)
    if after:
        db.session.flush()
        if "parent" in after:
            set_paths(unit.scheme_key)
        record_audit("unit.edit", "unit", unit.id, user=user, scheme_key=unit.scheme_key, before=before, after=after)
    return unit


def create_area(user: AnyUser, scheme_key: str, values: AreaValues) -> Area:
    """Add an area (source "manual") for a unit the user manages."""
    data = scheme_or_404(scheme_key).data
    parent, unit = _by_key(Area, scheme_key, values.parent), _by_key(Unit, scheme_key, values.unit)
    if not permissions.can_add_area(user, scheme_key, unit, parent):
        raise PermissionDenied(_("You may not add an area there."))
    index = org_index(scheme_key)
    taken = values.key in index.areas
    problems = area_problems(values, data, index.with_area(values))
    if taken:
        problems["key"] = _("There is already an area %(key)s.", key=values.key)
    _refuse(problems)
    position = db.session.scalar(db.select(db.func.count(Area.id)).filter_by(
        scheme_key=scheme_key, parent_id=parent.id if parent else None)) or 0
    area = Area(scheme_key=scheme_key, key=values.key, source="manual", position=position)
    after = set_area_values(area, values, parent, unit)[1]
    db.session.add(area)
    db.session.flush()
    set_paths(scheme_key)
    record_audit("area.create", "area", area.id, user=user, scheme_key=scheme_key,
                 after={"key": area.key, **after, "name": area.name})
    return area


def edit_area(user: AnyUser, area: Area, values: AreaValues) -> Area:
    """Change an area's kind, name, parent, unit, range, length, geometry or state; its key stays."""
    values = AreaValues(area.key, values.kind, values.name, values.parent, values.unit, values.range_from,
                        values.range_to, values.length_m, values.geometry, values.description, values.active)
    parent, unit = _by_key(Area, area.scheme_key, values.parent), _by_key(Unit, area.scheme_key, values.unit)
    if not permissions.can_manage_area(user, area):
        raise PermissionDenied(_("You may not change this area."))
    moved = (parent.id if parent else None, unit.id if unit else None) != (area.parent_id, area.unit_id)
    if moved and not permissions.can_add_area(user, area.scheme_key, unit, parent):
        raise PermissionDenied(_("You may not move this area there."))
    index = org_index(area.scheme_key)
    _refuse(area_problems(values, scheme_or_404(area.scheme_key).data, index.with_area(values)))
    before, after = set_area_values(area, values, parent, unit)
    if after:
        db.session.flush()
        if "parent" in after:
            set_paths(area.scheme_key)
        record_audit("area.edit", "area", area.id, user=user, scheme_key=area.scheme_key, before=before, after=after)
    return area


# -- posts, current and past ------------------------------------------------------------------------------------

def list_posts(user: AnyUser, scheme_key: str, *, tier: str | None = None, area: Area | None = None,
               state: str = "all", today: dt.date | None = None) -> list[Post]:
    """Posts the user may see, current and past (`state`: all, current or past), newest first per place."""
    if not permissions.can_view_org(user, scheme_key):
        raise PermissionDenied(_("You may not view this district's organisation."))
    today = today or district_today(scheme_key)
    query = db.select(Post).filter_by(scheme_key=scheme_key)
    if tier:
        query = query.filter_by(tier_key=tier)
    if area is not None:
        query = query.filter_by(area_id=area.id)
    if state == "current":
        query = query.where(Post.started_on <= today, Post.ended_on.is_(None) | (Post.ended_on >= today))
    elif state == "past":
        query = query.where(Post.ended_on < today)
    posts = list(db.session.scalars(query.order_by(Post.tier_key, Post.area_id, Post.unit_id,
                                                   Post.started_on.desc(), Post.id.desc())))
    return [p for p in posts if permissions.can_view_post(user, p)]


def get_post(user: AnyUser, post_id: int) -> Post:
    post = db.session.get(Post, post_id)
    if post is None:
        raise NotFound(_("No such post."))
    if not permissions.can_view_post(user, post):
        raise PermissionDenied(_("You may not view this post."))
    return post


def area_at(scheme_key: str, lat: float, lng: float, within_m: float = 200) -> Area | None:
    """The active area with a geometry that a point lies in or lies near (within `within_m`), the most specific
    first (`engine.place_of`)."""
    rows = db.session.scalars(db.select(Area).where(Area.scheme_key == scheme_key, Area.active.is_(True),
                                                    Area.geometry.is_not(None)))
    return engine.place_of([(a, a.geometry, a.path) for a in rows], lat, lng, within_m)


AROUND = 300  # shapes shown around an area being drawn, at most


def areas_around(scheme_key: str, area: Area | None = None, parent_key: str | None = None) -> list[Area]:
    """The shapes around an area being drawn, to see and snap to: its parent's, its siblings' and its
    children's (a new area's, under the parent chosen; at the top, the top-level areas)."""
    parent = area.parent if area is not None else _by_key(Area, scheme_key, parent_key)
    near = [Area.parent_id == parent.id, Area.id == parent.id] if parent is not None else [Area.parent_id.is_(None)]
    if area is not None:
        near.append(Area.parent_id == area.id)
    query = (db.select(Area).where(Area.scheme_key == scheme_key, Area.geometry.is_not(None), or_(*near))
             .order_by(Area.path).limit(AROUND))
    if area is not None:
        query = query.where(Area.id != area.id)
    return list(db.session.scalars(query))


def area_spots(area_ids: Iterable[int]) -> dict[int, tuple[float, float]]:
    """A point on each area's shape (lat, lng): where a map shows what belongs to the area and has no position
    of its own."""
    wanted = [i for i in area_ids if i]
    if not wanted:
        return {}
    rows = db.session.execute(db.select(Area.id, Area.geometry).where(Area.id.in_(wanted), Area.geometry.is_not(None)))
    return {area_id: spot for area_id, geometry in rows if (spot := engine.spot_of(geometry)) is not None}


def post_count_warnings(scheme_key: str, scheme: Mapping[str, Any] | None = None,
                        today: dt.date | None = None) -> list[engine.CountWarning]:
    """Where today's posts break a tier's `covers` or `holders` (of the scheme in force, or of `scheme` being
    checked before it is loaded)."""
    scheme = scheme if scheme is not None else scheme_or_404(scheme_key).data
    today = today or district_today(scheme_key)
    areas = {key: kind for key, kind in db.session.execute(
        db.select(Area.key, Area.kind).filter_by(scheme_key=scheme_key, active=True)).all()}
    posts = db.session.execute(
        db.select(Post.tier_key, Post.holder_name, Area.key).outerjoin(Area, Area.id == Post.area_id)
        .where(Post.scheme_key == scheme_key, Post.started_on <= today,
               (Post.ended_on.is_(None)) | (Post.ended_on >= today))).all()
    return engine.post_count_warnings(scheme, [(tier, holder, area) for tier, holder, area in posts], areas)

