"""Browse the unit tree and the areas, within the user's scope."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from ..definitions.service import current_scheme_data
from . import service

bp = Blueprint("org", __name__, template_folder="templates", url_prefix="/org")


@bp.get("/<scheme_key>/units")
def units(scheme_key: str):
    rows = service.list_units(current_user, scheme_key)
    depth_base = min((r.path.count("/") for r in rows), default=0)
    data = current_scheme_data(scheme_key) or {}
    kinds = {k["id"]: k["name"] for k in data.get("unit_kinds", [])}
    return render_template("org/units.html", scheme_key=scheme_key, units=rows, depth_base=depth_base,
                           kinds=kinds, data=data)


@bp.get("/units/<int:unit_id>")
def unit(unit_id: int):
    row = service.get_unit(current_user, unit_id)
    data = current_scheme_data(row.scheme_key) or {}
    return render_template("org/unit.html", unit=row, areas=service.list_areas(current_user, row.scheme_key, row),
                           posts=service.posts_of(unit=row), data=data,
                           tiers={t["id"]: t for t in data.get("tiers", [])})


@bp.get("/<scheme_key>/areas")
def areas(scheme_key: str):
    data = current_scheme_data(scheme_key) or {}
    kinds = {k["id"]: k["name"] for k in data.get("area_kinds", [])}
    return render_template("org/areas.html", scheme_key=scheme_key, kinds=kinds,
                           areas=service.list_areas(current_user, scheme_key))


@bp.get("/areas/<int:area_id>")
def area(area_id: int):
    row = service.get_area(current_user, area_id)
    data = current_scheme_data(row.scheme_key) or {}
    return render_template("org/area.html", area=row, posts=service.posts_of(area=row),
                           tiers={t["id"]: t for t in data.get("tiers", [])},
                           kinds={k["id"]: k["name"] for k in data.get("area_kinds", [])})
