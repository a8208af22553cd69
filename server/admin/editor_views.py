"""Editing a scheme in the browser: each definition in an editor of its own or as its source, every save a draft
version (checked, diffed against the version in force, then activated), and the version's files in and out."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..auth import permissions
from ..core.errors import NotFound, PermissionDenied
from ..definitions import drafts
from ..definitions import service as definitions
from ..definitions.bundle import MAX_UPLOAD_BYTES, available_themes
from ..definitions.clock import district_today
from ..definitions.errors import DefinitionError, DefinitionsInvalid
from ..definitions.loader import MAX_FILE_BYTES, decode_text
from ..definitions.models import SchemeVersion
from ..definitions.schema import SCHEMA_FILES, schema_of
from ..extensions import db, htmx
from ..web.security import framed_by_this_site
from . import service as scheme_admin
from .forms import CsrfForm, SchemeFileForm

bp = Blueprint("editors", __name__, template_folder="templates", url_prefix="/admin/schemes/versions")
MAX_NOTE_CHARS = 500  # SchemeVersion.note


def _version(version_id: int) -> SchemeVersion:
    """The version, if the user may change its scheme."""
    version = definitions.get_scheme_version(version_id)
    if not permissions.can_load_scheme(current_user, definitions.existing_key(version.scheme_key)):
        raise PermissionDenied(_("You may not change this scheme."))
    return version


def _drafted(version: SchemeVersion, created: bool) -> Response:
    db.session.commit()
    if created:
        flash(_("Checked and stored as draft version %(id)s. Review the changes, then activate it.",
                id=version.id), "success")
    else:
        flash(_("This exact scheme is already stored as version %(id)s.", id=version.id), "info")
    return redirect(url_for("admin.scheme_version", version_id=version.id), code=303)


def _schemas(kind: str) -> dict[str, Any]:
    """Every JSON Schema of the language, registries filled in, and which is the kind's (for pickers and key
    completion: a kind's schema refers to others, as the scheme's patrol rules do to patrol_rules.json)."""
    return {"kind": f"{kind}.json", "files": {f"{name}.json": schema_of(name) for name in SCHEMA_FILES}}


@bp.get("/<int:version_id>/download")
def download(version_id: int):
    """The version's files as a zip, each exactly as loaded."""
    version = _version(version_id)
    response = Response(drafts.version_zip(version), mimetype="application/zip")
    response.headers["Content-Disposition"] = f"attachment; filename={version.scheme_key}-v{version.id}.zip"
    return response


@bp.post("/<int:version_id>/file")
def upload_file(version_id: int):
    """One changed (or new) file, applied on top of this version as a draft."""
    version = _version(version_id)
    form = SchemeFileForm()
    errors: list[DefinitionError] = []
    if form.validate_on_submit():
        storage = form.file.data
        data = storage.read(MAX_FILE_BYTES + 1)
        try:
            if len(data) > MAX_FILE_BYTES:
                raise DefinitionsInvalid([DefinitionError(storage.filename or "", 1, "",
                                                          _("The upload is too large."))])
            path = drafts.place_upload(version, storage.filename or "", data)
            draft, created = scheme_admin.save_scheme_file(current_user, version, path, data,
                                                            note=(form.note.data or _("Uploaded %(file)s",
                                                                                      file=path))[:MAX_NOTE_CHARS])
        except DefinitionsInvalid as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            return _drafted(draft, created)
    from .views import version_page

    return version_page(version, file_form=form, file_errors=errors or [
        DefinitionError("(upload)", 1, "", _("Choose a YAML or JSON file."))])


@bp.route("/<int:version_id>/source/<path:path>", methods=["GET", "POST"])
def edit_source(version_id: int, path: str):
    """A file of the version as YAML, in the source editor; saving stores a draft."""
    version = _version(version_id)
    files = drafts.version_files(version)
    if path not in files:
        raise NotFound(_("No such file in this version."))
    text = decode_text(path, files[path])
    errors: list[DefinitionError] = []
    form = CsrfForm()
    if request.method == "POST":
        text = _line_ends_of(files[path], request.form.get("text", ""))
        if form.validate_on_submit():
            try:
                draft, created = scheme_admin.save_scheme_file(
                    current_user, version, path, _with_bom(files[path], text).encode("utf-8"),
                    note=_note(_("Edited %(file)s", file=path)))
            except DefinitionsInvalid as exc:
                db.session.rollback()
                errors = exc.errors
            else:
                return _drafted(draft, created)
    kind = _kind_of(text)
    return render_template("admin/source_editor.html", version=version, path=path, text=text, errors=errors,
                           error_dicts=[e.as_dict() for e in errors], form=form, strings=_strings(),
                           schemas=_schemas(kind) if kind else None,
                           check_url=url_for("editors.check", version_id=version.id)), 400 if errors else 200


def _line_ends_of(old: bytes, text: str) -> str:
    """The edited text with the file's own line ends (a browser sends a text area's lines ended by CR LF)."""
    text = text.replace("\r\n", "\n")
    return text.replace("\n", "\r\n") if b"\r\n" in old else text


def _with_bom(old: bytes, text: str) -> str:
    """The edited text, with the byte-order mark the file had (a browser's textarea drops it)."""
    return ("\ufeff" if old.startswith(b"\xef\xbb\xbf") and not text.startswith("\ufeff") else "") + text


def _kind_of(text: str) -> str | None:
    from ..definitions.loader import parse_text
    from ..definitions.schema import KINDS

    data = parse_text("check", text).data
    kind = data.get("kind") if isinstance(data, dict) else None
    return kind if kind in KINDS else None


@bp.route("/<int:version_id>/edit/<kind>/<key>", methods=["GET", "POST"])
def edit_definition(version_id: int, kind: str, key: str):
    """A definition in its editor (forms, score sheets, workflows, patrol rules); saving stores a draft."""
    version = _version(version_id)
    if kind not in scheme_admin.EDITORS:
        return redirect(url_for("editors.edit_source", version_id=version.id,
                                path=drafts.definition_file(version, kind, key).path))
    source = drafts.definition_file(version, kind, key)
    data, errors = source.data, []
    form = CsrfForm()
    if request.method == "POST":
        data = _posted_data(source.data)
        if form.validate_on_submit() and data == source.data:
            flash(_("Nothing was changed."), "info")
            return redirect(url_for("admin.scheme_version", version_id=version.id), code=303)
        if form.validate_on_submit():
            try:
                draft, created = scheme_admin.save_definition(
                    current_user, version, kind, key, data,
                    note=_note(_("Edited %(kind)s %(key)s", kind=kind, key=key)))
            except DefinitionsInvalid as exc:
                db.session.rollback()
                errors = exc.errors
            else:
                return _drafted(draft, created)
    return render_template("admin/definition_editor.html", version=version, source=source, form=form,
                           editor={"kind": kind, "key": key, "file": source.path, "data": data,
                                   "errors": [e.as_dict() for e in errors],
                                   "names": _names(version), "strings": _strings(),
                                   "check_url": url_for("editors.check", version_id=version.id),
                                   "preview_url": url_for("editors.preview_form", version_id=version.id)
                                   if kind == "form" else None,
                                   "board_preview_url": url_for("editors.preview_board", version_id=version.id)
                                   if kind == "board" else None,
                                   "dry_run_url": url_for("editors.dry_run", version_id=version.id)
                                   if kind == "score_sheet" else None,
                                   "last_month": (district_today(version.scheme_key).replace(day=1)
                                                  - dt.timedelta(days=1)).strftime("%Y-%m")},
                           schemas=_schemas(kind), errors=errors), 400 if errors else 200


def _field_types() -> list[dict[str, Any]]:
    """The registered field types as the form editor offers them: name, title, and what the editor shows for them
    (fields inside it, choices to write)."""
    from ..forms.fields import FIELD_TYPES

    return [{"name": name, "title": _(t.title), "nested": t.holds_rows or t.transparent,
             "choices": t.needs_choices and t.live_choices is None}
            for name, t in ((n, FIELD_TYPES[n]) for n in FIELD_TYPES.names())]


def _strings() -> dict[str, Any]:
    """The editors' words, in the page's language."""
    return {
        "line": _("line"), "errors_found": _("There are errors: they are shown beside the fields."),
        "no_errors": _("No errors: the scheme checks out."), "drag": _("Drag to move"), "remove": _("Remove"),
        "remove_confirm": _("Remove"), "patrol_rules": _("Patrol rules"), "rule_name": _("Rule"), "who": _("Who"),
        "at_least": _("At least"), "per_label": _("Per"), "remind": _("Remind days before the end"),
        "add_rule": _("Add a rule"),
        "per": {"day": _("day"), "week": _("week"), "half_month": _("half month"), "month": _("month"),
                "quarter": _("quarter"), "year": _("year")},
        "fields": _("Fields"), "preview": _("Preview on a phone"), "id": _("Id"), "type": _("Type"),
        "label": _("Label"), "required": _("Required"), "hint": _("Hint"), "visible_if": _("Shown only when"),
        "required_if": _("Required when"), "repeat_fields": _("Fields of each repeat"),
        "group_fields": _("Fields of the group"), "add_field": _("Add a field"),
        "choices": _("Choices (one a line: value, then name)"), "field": _("field"), "filled": _("is filled"),
        "empty": _("is empty"), "comparison": _("comparison"), "value": _("value"), "use_rule": _("Use this rule"),
        "sections": _("Sections and items"), "total": _("Total"), "sections_sum": _("the sections add up to"),
        "items_sum": _("its items add up to"), "name": _("Name"), "points": _("Points"),
        "rule_type": _("Kind of rule"), "count": _("Count (a formula; empty: the assessor enters it)"),
        "add_deduction": _("Add a deduction rule"), "add_item": _("Add an item"),
        "rule_types": {"per_occurrence": _("points per occurrence"), "per_step_below": _("points per step below"),
                       "per_step_above": _("points per step above"), "one_off": _("points once"),
                       "graded": _("points per grade"), "bonus": _("bonus points")},
        "diagram": _("Diagram"), "states": _("States"), "transitions": _("Transitions"), "state_kind": _("Kind"),
        "state_kinds": {"open": _("open"), "waiting": _("waiting"), "final": _("final")},
        "from": _("From"), "to": _("To"), "add_state": _("Add a state"), "add_transition": _("Add a transition"),
        "diagram_failed": _("The diagram cannot be drawn as it is."),
        "tiers": _("Tiers of chiefs"), "reports_to": _("Reports to"), "top": _("(the top)"), "held_by": _("Held by"),
        "role": _("Role"), "unit_kinds": _("Units whose people hold it"), "add_tier": _("Add a tier"),
        "units": _("Units"), "add_unit": _("Add a unit"), "add_child": _("Add below"), "areas": _("Areas"),
        "areas_hint": _("Roads, segments, zones and grids. Their shapes are drawn on the organisation's area pages "
                        "and kept here as they are."),
        "add_area": _("Add an area"), "categories": _("Problem categories"), "working_days": _("Working days"),
        "default_workflow": _("(the default workflow)"), "public": _("Offered to the public"),
        "add_category": _("Add a category"), "dry_run": _("Try it on a past month"),
        "dry_run_button": _("Work out the scores"), "month": _("Month"),
        "board": _("The board"), "board_title": _("Title ({area} is the road's name)"), "subtitle": _("Subtitle"),
        "board_tiers": _("Tiers shown, in this order"), "shows": _("Shown on the board"),
        "show": {"range": _("the range (from, to)"), "unit": _("the responsible unit"), "duties": _("duties"),
                 "qr_code": _("the QR code"), "report_link": _("how to report"), "printed_on": _("the date printed")},
        "sizes": _("Printed sizes"), "width_mm": _("Width (mm)"), "height_mm": _("Height (mm)"),
        "add_size": _("Add a size"), "phone": _("Supervision phone"), "footer": _("Footer"),
        "poster": _("The board on a road of the district"),
        "check": _("Check"), "message": _("Message"), "constraint": _("constraint"), "constraints": _("Constraints"),
        "add_constraint": _("Add a constraint"), "value_must_be": _("The value must be"),
        "add_section": _("Add a section"), "checking": _("Checking…"),
        "id_locked": _("Other definitions may name this id: rename it in the source, with everything that names it."),
        "choice_value": _("value stored"), "add_choice": _("Add a choice"), "rule_value": _("Value (a formula)"),
        "threshold": _("Threshold"), "step": _("Step"), "when": _("When (a condition)"), "cap": _("At most"),
    }


def _posted_data(fallback: Any) -> Any:
    try:
        data = json.loads(request.form.get("data") or "null")
    except (ValueError, RecursionError):
        return fallback
    return data if isinstance(data, dict) else fallback


def _json_body() -> dict:
    """The request's JSON object (or its form), {} for anything else: nothing a client sends makes this fail."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        body = None
    if body is None:
        body = request.form.to_dict()
    return body if isinstance(body, dict) else {}


def _note(default: str) -> str:
    return (request.form.get("note") or default)[:MAX_NOTE_CHARS]


def _names(version: SchemeVersion) -> dict[str, list]:
    """What pickers offer: the version's roles, tiers, forms and patrol rules, by id and name."""
    scheme = version.scheme_definition.data

    def pairs(items: Any) -> list:
        if isinstance(items, dict):
            items = [{"id": k, **(v if isinstance(v, dict) else {})} for k, v in items.items()]
        return [[i.get("id"), i.get("name", i.get("id"))] for i in items or [] if isinstance(i, dict)]

    return {"roles": pairs(scheme.get("roles")), "tiers": pairs(scheme.get("tiers")),
            "forms": [[m.key, m.data.get("name", m.key)] for m in version.members if m.kind == "form"],
            "workflows": [[m.key, m.data.get("name", m.key)] for m in version.members if m.kind == "workflow"],
            "field_types": _field_types(),
            "unit_kinds": pairs(scheme.get("unit_kinds")), "area_kinds": pairs(scheme.get("area_kinds"))}


@bp.post("/<int:version_id>/check")
def check(version_id: int):
    """Check an edit without storing it: the errors of every file, as JSON (for the editors, as one types)."""
    version = _version(version_id)
    body = _json_body()
    try:
        if isinstance(body.get("data"), dict):
            source = drafts.definition_file(version, str(body.get("kind")), str(body.get("key")))
            changed = {source.path: drafts.rewritten(source, body["data"])}
        else:
            path, text = str(body.get("path") or ""), str(body.get("text") or "")
            if path not in drafts.version_files(version) or len(text) > MAX_UPLOAD_BYTES:
                raise NotFound(_("No such file in this version."))
            try:
                changed = {path: text.encode("utf-8")}
            except UnicodeEncodeError as exc:
                raise DefinitionsInvalid([DefinitionError(path, 1, "", _("The text is not valid."))]) from exc
        drafts.check_draft(version, changed)
    except DefinitionsInvalid as exc:
        return {"ok": False, "errors": [e.as_dict() for e in exc.errors]}
    return {"ok": True, "errors": []}


@bp.post("/<int:version_id>/dry-run")
def dry_run(version_id: int):
    """An edited score sheet tried on a past month (the editor's dry run); nothing is stored."""
    from ..core.errors import DomainError

    version = _version(version_id)
    body = _json_body()
    this_month = district_today(version.scheme_key).replace(day=1)
    month = str(body.get("month") or "")
    day = this_month - dt.timedelta(days=1)  # last month, unless a past month is asked for
    if re.fullmatch(r"(19[7-9]\d|2[01]\d\d)-(0[1-9]|1[0-2])", month):
        day = dt.date.fromisoformat(f"{month}-01")
    if day >= this_month:
        return render_template("admin/_dry_run.html", problems=[_("Choose a month that has ended.")], rows=[],
                               period=None)
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    try:
        period, rows = scheme_admin.dry_run_sheet(current_user, version, data, day)
    except DefinitionsInvalid as exc:
        return render_template("admin/_dry_run.html", problems=exc.errors, rows=[], period=None)
    except DomainError as exc:
        return render_template("admin/_dry_run.html", problems=[exc.message], rows=[], period=None)
    return render_template("admin/_dry_run.html", problems=[], rows=rows, period=period)


@bp.post("/<int:version_id>/preview-board")
def preview_board(version_id: int):
    """An unsaved board on one of the district's roads, as the public and the printed poster show it."""
    from ..boards import service as boards
    from ..web.theming import render_themed

    version = _version(version_id)
    try:
        data = json.loads(request.form.get("data") or "{}")
        roads = boards.boards_of(version.scheme_key, limit=1)
        if not roads or not isinstance(data, dict):
            raise LookupError("no road to show the board on")
        if data.get("theme") not in available_themes(definitions.project_root()):
            data.pop("theme", None)  # only an installed theme is drawn (a preview never looks one up by any name)
        shown = boards.board_for(version.scheme_key, roads[0], board=data)
        url = url_for("boards.board", scheme_key=version.scheme_key, area_key=roads[0].key, _external=True)
        response = render_themed(shown["theme"], "boards/board.html", b=shown, qr=boards.qr_svg(url), url=url,
                                 scheme_key=version.scheme_key, as_on=None, place=None, framed=True)
    except Exception:  # noqa: BLE001 - a half-written board cannot be drawn: say so in the frame, never crash
        db.session.rollback()
        response = render_template("admin/preview_unavailable.html", framed=True), 200
    return framed_by_this_site(response)


@bp.post("/<int:version_id>/preview-form")
def preview_form(version_id: int):
    """An unsaved form, as a phone shows it (the editor's live preview); nothing is stored."""
    from ..forms import service as forms
    from ..forms.engine import form_spec
    from ..forms.views import _formdata, render_page

    version = _version(version_id)
    try:
        inside = "_definition" in request.form  # the preview's own refresh, repeat row or check
        text = request.form.get("_definition" if inside else "data") or "{}"
        spec = form_spec(json.loads(text), "")
        if inside:
            page = forms.post_form(current_user, version.scheme_key, spec, None, _formdata(),
                                   request.form.get("_action", "submit"), store=False, changed=htmx.trigger_name)
            db.session.rollback()  # a preview never stores anything
        else:
            page = forms.open_form(current_user, version.scheme_key, spec, None)
        response = render_page(page, url_for("editors.preview_form", version_id=version.id), preview=True,
                               framed=True, extra_template="admin/_preview_definition.html",
                               definition_json=text)
    except Exception:  # noqa: BLE001 - a half-written form cannot be drawn: say so in the frame, never crash
        db.session.rollback()
        response = render_template("admin/preview_unavailable.html", framed=True), 200
    return framed_by_this_site(response)
