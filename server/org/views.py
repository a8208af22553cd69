"""Browse the unit tree, the areas and the posts within the user's scope; edit them, import and export them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..auth import permissions
from ..core.errors import PermissionDenied
from ..definitions.clock import district_today
from ..definitions.service import scheme_or_404
from ..extensions import db
from ..web.i18n import tr
from ..web.maps import map_data, shapes_of
from . import places, service, spreadsheet_jobs
from . import posts as post_service
from .engine import AreaValues, PostValues, UnitValues, parse_geometry, text_of, text_parts
from .forms import AppointForm, AreaForm, ImportForm, PlacesForm, PostEditForm, PostEndForm, UnitForm
from .geofiles import PlacesUnreadable
from .service import OrgInvalid
from .spreadsheet import MAX_IMPORT_BYTES, SHEETS, ImportInvalid

bp = Blueprint("org", __name__, template_folder="templates", url_prefix="/org")


def _inactive_too() -> bool:
    return request.args.get("inactive") == "1"


@bp.get("/<scheme_key>/units")
def units(scheme_key: str):
    rows = service.list_units(current_user, scheme_key, inactive=_inactive_too())
    depth_base = min((r.path.count("/") for r in rows), default=0)
    scheme = scheme_or_404(scheme_key)
    kinds = {k.id: k["name"] for k in scheme.unit_kinds.values()}
    return render_template("org/units.html", scheme_key=scheme_key, units=rows, depth_base=depth_base,
                           kinds=kinds, data=scheme.data, inactive=_inactive_too(),
                           can_manage=permissions.can_manage_org_in(current_user, scheme_key),
                           can_import=permissions.can_import_org(current_user, scheme_key),
                           manageable={r.id for r in rows if permissions.can_manage_unit(current_user, r)})


@bp.get("/units/<int:unit_id>")
def unit(unit_id: int):
    row = service.get_unit(current_user, unit_id)
    scheme = scheme_or_404(row.scheme_key)
    return render_template("org/unit.html", unit=row, areas=service.list_areas(current_user, row.scheme_key, row),
                           posts=service.posts_of(unit=row), data=scheme.data, tiers=scheme.tiers,
                           can_manage=permissions.can_manage_unit(current_user, row))


@bp.get("/<scheme_key>/areas")
def areas(scheme_key: str):
    kinds = {k.id: k["name"] for k in scheme_or_404(scheme_key).area_kinds.values()}
    rows = service.list_areas(current_user, scheme_key, inactive=_inactive_too())
    return render_template("org/areas.html", scheme_key=scheme_key, kinds=kinds, areas=rows, inactive=_inactive_too(),
                           can_manage=permissions.can_manage_org_in(current_user, scheme_key),
                           manageable={a.id for a in rows if permissions.can_manage_area(current_user, a)})


@bp.get("/areas/<int:area_id>")
def area(area_id: int):
    row = service.get_area(current_user, area_id)
    scheme = scheme_or_404(row.scheme_key)
    return render_template("org/area.html", area=row, posts=service.posts_of(area=row), tiers=scheme.tiers,
                           kinds={k.id: k["name"] for k in scheme.area_kinds.values()},
                           can_manage=permissions.can_manage_area(current_user, row))


# -- editing ------------------------------------------------------------------------------------------------------

def _tree_label(row: Any, base: int) -> str:
    return "　" * max(row.path.count("/") - base, 0) + f"{tr(row.name)} ({row.key})"


def _tree_choices(rows: list[Any], blank: str) -> list[tuple[str, str]]:
    base = min((r.path.count("/") for r in rows), default=0)
    return [("", blank)] + [(r.key, _tree_label(r, base) + ("" if r.active else " — " + _("not in use")))
                            for r in rows]


def _kind_choices(kinds: list[dict]) -> list[tuple[str, str]]:
    return [(k["id"], f"{tr(k['name'])} ({k['id']})") for k in kinds]


def _show_problems(form: Any, problems: dict[str, str]) -> None:
    """Put a service's problems next to the fields they are about."""
    for name, message in problems.items():
        target = getattr(form, name, None) or getattr(form, f"{name}_zh", None)
        if target is not None and hasattr(target, "errors"):
            target.errors = [*target.errors, message]
        else:
            form.form_errors.append(message)


def _status(form: Any) -> int:
    return 400 if form.errors else 200


def _save(form: Any, action: Callable[[], Any], message: str, target: Callable[[Any], str]) -> Response | None:
    """Run a service action for a submitted form: committed, flashed and redirected to `target(result)`, or
    its problems put next to the fields (None: show the form again)."""
    try:
        result = action()
    except OrgInvalid as exc:
        _show_problems(form, exc.problems)
        return None
    db.session.commit()
    flash(message, "success")
    return redirect(target(result))


def _initial(data: dict[str, Any]) -> dict[str, Any] | None:
    """What a form shows first; a submitted form shows only what was submitted."""
    return None if request.method == "POST" else data


def _unit_form(choices: service.OrgChoices, **data: Any) -> UnitForm:
    form = UnitForm(data=_initial(data))
    form.kind.choices = _kind_choices(choices.unit_kinds)
    form.parent.choices = _tree_choices(choices.units, _("(none: at the top)"))
    return form


def _unit_values(form: UnitForm, key: str) -> UnitValues:
    return UnitValues(key=key, kind=form.kind.data, name=text_of(form.name_zh.data, form.name_en.data),
                      parent=form.parent.data or None, difficulty=form.difficulty.data, active=bool(form.active.data))


@bp.route("/<scheme_key>/units/new", methods=["GET", "POST"])
def new_unit(scheme_key: str):
    choices = service.org_choices(current_user, scheme_key)
    form = _unit_form(choices, parent=request.args.get("parent", ""), active=True)
    if form.validate_on_submit():
        values = _unit_values(form, form.key.data.strip())
        done = _save(form, lambda: service.create_unit(current_user, scheme_key, values), _("Unit saved."),
                     lambda row: url_for("org.unit", unit_id=row.id))
        if done is not None:
            return done
    return render_template("org/unit_form.html", form=form, scheme_key=scheme_key, unit=None), _status(form)


@bp.route("/units/<int:unit_id>/edit", methods=["GET", "POST"])
def edit_unit(unit_id: int):
    row = service.get_unit(current_user, unit_id)
    choices = service.org_choices(current_user, row.scheme_key)
    zh, en = text_parts(row.name)
    form = _unit_form(choices, kind=row.kind, parent=row.parent.key if row.parent else "", name_zh=zh, name_en=en,
                      difficulty=row.difficulty, active=row.active)
    del form.key
    if form.validate_on_submit():
        done = _save(form, lambda: service.edit_unit(current_user, row, _unit_values(form, row.key)),
                     _("Unit saved."),
                     lambda _row: url_for("org.unit", unit_id=row.id))
        if done is not None:
            return done
    return render_template("org/unit_form.html", form=form, scheme_key=row.scheme_key, unit=row), _status(form)


def _area_form(choices: service.OrgChoices, **data: Any) -> AreaForm:
    form = AreaForm(data=_initial(data))
    form.kind.choices = _kind_choices(choices.area_kinds)
    form.parent.choices = _tree_choices(choices.areas, _("(none: at the top)"))
    form.unit.choices = _tree_choices(choices.units, _("(no unit)"))
    return form


def _drawing(scheme_key: str, choices: service.OrgChoices, area: Any, parent_key: str | None) -> dict[str, Any]:
    """The area form's map: the shapes around the area, and its own drawn into the geometry input."""
    return map_data(scheme_key, shapes=shapes_of(service.areas_around(scheme_key, area, parent_key or None)),
                    draw={"input": "geometry", "kind_input": "kind",
                          "kinds": {k.id: k.get("geometry") or "any" for k in choices.area_kinds}}, wheel=True)


def _area_values(form: AreaForm, key: str) -> AreaValues | None:
    geometry, problem = parse_geometry(form.geometry.data)
    if problem:
        form.geometry.errors = [*form.geometry.errors, problem]
        return None
    return AreaValues(key=key, kind=form.kind.data, name=text_of(form.name_zh.data, form.name_en.data),
                      parent=form.parent.data or None, unit=form.unit.data or None,
                      range_from=text_of(form.from_zh.data, form.from_en.data),
                      range_to=text_of(form.to_zh.data, form.to_en.data), length_m=form.length_m.data,
                      geometry=geometry, description=text_of(form.description_zh.data, form.description_en.data),
                      active=bool(form.active.data))


@bp.route("/<scheme_key>/areas/new", methods=["GET", "POST"])
def new_area(scheme_key: str):
    choices = service.org_choices(current_user, scheme_key)
    form = _area_form(choices, parent=request.args.get("parent", ""), unit=request.args.get("unit", ""), active=True)
    if form.validate_on_submit() and (values := _area_values(form, form.key.data.strip())) is not None:
        done = _save(form, lambda: service.create_area(current_user, scheme_key, values),
                     _("Area saved."),
                     lambda row: url_for("org.area", area_id=row.id))
        if done is not None:
            return done
    return render_template("org/area_form.html", form=form, scheme_key=scheme_key, area=None,
                           drawing=_drawing(scheme_key, choices, None, form.parent.data)), _status(form)


@bp.route("/areas/<int:area_id>/edit", methods=["GET", "POST"])
def edit_area(area_id: int):
    import json

    row = service.get_area(current_user, area_id)
    choices = service.org_choices(current_user, row.scheme_key)
    texts = {f"{name}_{lang}": part for name, value in (("name", row.name), ("from", row.range_from),
                                                        ("to", row.range_to), ("description", row.description))
             for lang, part in zip(("zh", "en"), text_parts(value), strict=True)}
    form = _area_form(choices, kind=row.kind, parent=row.parent.key if row.parent else "",
                      unit=row.unit.key if row.unit else "", length_m=row.length_m, active=row.active,
                      geometry=json.dumps(row.geometry, ensure_ascii=False) if row.geometry else "", **texts)
    del form.key
    if form.validate_on_submit() and (values := _area_values(form, row.key)) is not None:
        done = _save(form, lambda: service.edit_area(current_user, row, values),
                     _("Area saved."),
                     lambda _row: url_for("org.area", area_id=row.id))
        if done is not None:
            return done
    return render_template("org/area_form.html", form=form, scheme_key=row.scheme_key, area=row,
                           drawing=_drawing(row.scheme_key, choices, row, form.parent.data)), _status(form)


# -- posts ------------------------------------------------------------------------------------------------------

@bp.get("/<scheme_key>/posts")
def posts(scheme_key: str):
    scheme = scheme_or_404(scheme_key)
    tier = request.args.get("tier") or None
    area_key = request.args.get("area") or None
    state = request.args.get("state") if request.args.get("state") in ("current", "past") else "all"
    area_rows = service.list_areas(current_user, scheme_key)
    chosen = next((a for a in area_rows if a.key == area_key), None)
    rows = service.list_posts(current_user, scheme_key, tier=tier, area=chosen, state=state)
    warnings = service.post_count_warnings(scheme_key) if permissions.can_manage_org_in(current_user, scheme_key) \
        else []
    return render_template("org/posts.html", scheme_key=scheme_key, posts=rows, data=scheme.data, areas=area_rows,
                           warnings=warnings,
                           tiers=scheme.tiers, tier=tier, area_key=area_key,
                           state=state, today=district_today(scheme_key),
                           can_manage=permissions.can_manage_org_in(current_user, scheme_key),
                           manageable={p.id for p in rows if permissions.can_manage_post(current_user, p)})


def _lines(text: str | None) -> tuple[str, ...]:
    return tuple(line.strip() for line in (text or "").splitlines() if line.strip())


@bp.route("/<scheme_key>/posts/new", methods=["GET", "POST"])
def new_post(scheme_key: str):
    choices = service.org_choices(current_user, scheme_key)
    form = AppointForm(data=_initial({
        "tier": request.args.get("tier", ""), "area": request.args.get("area", ""),
        "unit": request.args.get("unit", ""), "started_on": district_today(scheme_key)}))
    form.tier.choices = [(t["id"], f"{tr(t['name'])} ({t['id']})") for t in choices.tiers]
    form.area.choices = _tree_choices(choices.areas, _("(none: over the unit)"))
    form.unit.choices = _tree_choices(choices.units, _("(the area's unit)"))
    if form.validate_on_submit():
        values = PostValues(tier=form.tier.data, holder_name=form.holder_name.data.strip(),
                            area=form.area.data or None, unit=form.unit.data or None,
                            username=(form.username.data or "").strip() or None, title=form.title.data or None,
                            phone=form.phone.data or None, duties=_lines(form.duties.data),
                            started_on=form.started_on.data)
        done = _save(form, lambda: post_service.appoint_post(current_user, scheme_key, values),
                     _("%(name)s is appointed.", name=values.holder_name),
                     lambda _row: url_for("org.posts", scheme_key=scheme_key, tier=values.tier, area=values.area or ""))
        if done is not None:
            return done
    return render_template("org/post_form.html", form=form, scheme_key=scheme_key, post=None), _status(form)


def _posts_of(post: Any) -> str:
    """The posts list, filtered to this post's tier and area."""
    return url_for("org.posts", scheme_key=post.scheme_key, tier=post.tier_key, area=post.area.key if post.area else "")


@bp.route("/posts/<int:post_id>/edit", methods=["GET", "POST"])
def edit_post(post_id: int):
    row = post_service.get_managed_post(current_user, post_id)
    form = PostEditForm(data=_initial({
        "username": row.user.username if row.user else "", "title": row.title, "phone": row.phone,
        "duties": "\n".join(row.duties or [])}))
    if form.validate_on_submit():
        done = _save(form, lambda: post_service.edit_post(
            current_user, row, title=form.title.data, phone=form.phone.data, duties=list(_lines(form.duties.data)),
            username=(form.username.data or "").strip() or None), _("Post saved."), lambda _row: _posts_of(row))
        if done is not None:
            return done
    return render_template("org/post_form.html", form=form, scheme_key=row.scheme_key, post=row,
                           tiers=scheme_or_404(row.scheme_key).tiers,
                           ), _status(form)


@bp.route("/posts/<int:post_id>/end", methods=["GET", "POST"])
def end_post(post_id: int):
    row = post_service.get_managed_post(current_user, post_id)
    form = PostEndForm(data=_initial({"ended_on": row.ended_on or district_today(row.scheme_key)}))
    if form.validate_on_submit():
        done = _save(form, lambda: post_service.end_post(current_user, row, form.ended_on.data),
                     _("The post of %(name)s ends on %(day)s.", name=row.holder_name,
                       day=form.ended_on.data.isoformat()), lambda _row: _posts_of(row))
        if done is not None:
            return done
    return render_template("org/post_end.html", form=form, post=row,
                           tiers=scheme_or_404(row.scheme_key).tiers,
                           ), _status(form)


# -- spreadsheets ------------------------------------------------------------------------------------------------------

@bp.route("/<scheme_key>/import", methods=["GET", "POST"])
def import_spreadsheet(scheme_key: str):
    """Upload a workbook or one CSV sheet: a file that cannot be read is refused here; its rows are checked and
    written by a job, whose page lists every problem by sheet, row and column, or says what was imported."""
    if not permissions.can_import_org(current_user, scheme_key):
        raise PermissionDenied(_("You may not import this district's organisation."))
    form = ImportForm()
    form.sheet.choices = [("", _("(from the file name)"))] + [(s, s) for s in SHEETS]
    errors = []
    if form.validate_on_submit():
        storage = form.upload.data
        try:
            job = spreadsheet_jobs.start_import(current_user, scheme_key, storage.read(MAX_IMPORT_BYTES + 1),
                                                storage.filename or "upload", sheet=form.sheet.data or None)
        except ImportInvalid as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            return redirect(url_for("jobs.job", job_id=job.id), code=303)
    return render_template("org/import.html", form=form, scheme_key=scheme_key, errors=errors, sheets=SHEETS,
                           data=scheme_or_404(scheme_key).data), 400 if errors or form.errors else 200


@bp.route("/<scheme_key>/places", methods=["GET", "POST"])
def import_places(scheme_key: str):
    """Places from a map file: every feature checked as a row of the `areas` sheet and shown, with its
    problems and on a map, before anything is written; the import is then the spreadsheet import's job."""
    if not permissions.can_import_org(current_user, scheme_key):
        raise PermissionDenied(_("You may not import this district's organisation."))
    choices = service.org_choices(current_user, scheme_key)
    form = PlacesForm()
    form.kind.choices = [("", _("(each place's own kind property)")), *_kind_choices(choices.area_kinds)]
    form.parent.choices = _tree_choices(choices.areas, _("(none: at the top)"))
    if request.form.get("rows"):  # the preview's rows, confirmed: checked again, and written, by the import job
        job = spreadsheet_jobs.start_import(current_user, scheme_key, request.form["rows"].encode("utf-8"),
                                            "areas.csv", sheet="areas")
        db.session.commit()
        return redirect(url_for("jobs.job", job_id=job.id), code=303)
    preview = None
    if form.validate_on_submit():
        storage = form.upload.data
        try:
            preview = places.preview_places(current_user, scheme_key, storage.read(MAX_IMPORT_BYTES + 1),
                                            storage.filename or "", kind=form.kind.data or "",
                                            parent=form.parent.data or "", key_property=form.key_property.data,
                                            name_property=form.name_property.data)
        except PlacesUnreadable as exc:
            form.upload.errors = [*form.upload.errors, str(exc)]
    shapes = ({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": r.geometry,
         "properties": {"name": f"{r.number}. {r.row.get('name_zh') or r.row.get('key') or ''}"}}
        for r in preview.rows if r.geometry]} if preview else None)
    return render_template("org/places.html", form=form, scheme_key=scheme_key, preview=preview,
                           kinds={k.id: tr(k["name"]) for k in choices.area_kinds},
                           data=scheme_or_404(scheme_key).data,
                           drawing=map_data(scheme_key, shapes=shapes, wheel=True) if preview else None,
                           ), 400 if form.errors or (preview and preview.problems) else 200


@bp.post("/<scheme_key>/export")
def start_export(scheme_key: str):
    """The export (`format`: xlsx, or csv with its `sheet`) as a job, whose page shows it sheet by sheet and then
    offers the file."""
    job = spreadsheet_jobs.start_export(current_user, scheme_key, request.form.get("format", "xlsx"),
                                        request.form.get("sheet") or None)
    db.session.commit()
    return redirect(url_for("jobs.job", job_id=job.id), code=303)
