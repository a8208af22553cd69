"""Units, areas and posts: keep them in line with the active scheme, and read them within a user's scope."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_babel import gettext as _

from ..auth import permissions
from ..core.errors import NotFound, PermissionDenied
from ..extensions import db
from .models import Area, Post, Unit


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

        def path_of(row: Any) -> str:
            parts, node = [], row
            while node is not None and len(parts) < 1000:  # a cycle cannot loop forever
                parts.append(str(node.id))
                node = by_id.get(node.parent_id) if node.parent_id else None
            return "/" + "/".join(reversed(parts)) + "/"

        for row in rows:
            row.path = path_of(row)
    db.session.flush()


def list_units(user: Any, scheme_key: str) -> list[Unit]:
    """Active units the user may see, in tree order."""
    if not permissions.can_view_org(user, scheme_key):
        raise PermissionDenied(_("You may not view this district's organisation."))
    scope = permissions.scope_for(user, scheme_key).only("org.view")
    query = db.select(Unit).filter_by(scheme_key=scheme_key, active=True).order_by(Unit.path)
    if scope.unit_ids is not None:
        query = query.where(Unit.id.in_(scope.unit_ids or [-1]))
    return list(db.session.scalars(query))


def get_unit(user: Any, unit_id: int) -> Unit:
    unit = db.session.get(Unit, unit_id)
    if unit is None:
        raise NotFound(_("No such unit."))
    if not permissions.can_view_unit(user, unit):
        raise PermissionDenied(_("You may not view this unit."))
    return unit


def list_areas(user: Any, scheme_key: str, unit: Unit | None = None) -> list[Area]:
    if not permissions.can_view_org(user, scheme_key):
        raise PermissionDenied(_("You may not view this district's areas."))
    scope = permissions.scope_for(user, scheme_key).only("org.view")
    query = db.select(Area).filter_by(scheme_key=scheme_key, active=True).order_by(Area.kind, Area.position)
    if unit is not None:
        query = query.filter_by(unit_id=unit.id)
    areas = list(db.session.scalars(query))
    return [a for a in areas if scope.covers_area(a.id, a.unit_id)]


def get_area(user: Any, area_id: int) -> Area:
    area = db.session.get(Area, area_id)
    if area is None:
        raise NotFound(_("No such area."))
    if not permissions.can_view_area(user, area):
        raise PermissionDenied(_("You may not view this area."))
    return area


def posts_of(*, unit: Unit | None = None, area: Area | None = None, on: dt.date | None = None) -> list[Post]:
    """Posts held on a day (default today) over a unit or an area."""
    on = on or dt.date.today()
    query = db.select(Post).where(Post.started_on <= on, (Post.ended_on.is_(None)) | (Post.ended_on >= on))
    if unit is not None:
        query = query.filter_by(unit_id=unit.id)
    if area is not None:
        query = query.filter_by(area_id=area.id)
    return list(db.session.scalars(query.order_by(Post.tier_key)))
