"""Form pages: fill (with htmx refreshes and a no-JavaScript fallback), records, exports, uploaded files."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..auth import permissions
from ..auth.access import public
from ..core.errors import PermissionDenied
from ..definitions.clock import district_today
from ..definitions.service import scheme_or_404
from ..extensions import db, htmx
from ..web.limits import public_limits
from ..web.params import parse_date, parse_id
from . import export, service
from .engine import form_spec_of
from .fields import live_attrs, option_tags, route_length_m
from .models import Submission
from .uploads import make_thumbnail

bp = Blueprint("forms", __name__, template_folder="templates", url_prefix="/f")


@bp.record_once
def _register_globals(state) -> None:  # noqa: ANN001
    # Macros imported without context still see globals (each field's type, `f.kind`, picks its snippet).
    state.app.jinja_env.globals["live_attrs"] = live_attrs
    state.app.jinja_env.globals["option_tags"] = option_tags
    state.app.jinja_env.globals["LONG_PLACE_LIST"] = service.LONG_LIST
    state.app.jinja_env.globals["route_length"] = route_length_m


def render_page(page: service.FormPage, action_url: str, *, preview: bool = False, status: int | None = None,
                **extra: Any):
    """The whole page, or only the form body for an htmx refresh; `extra` reaches the templates (a page that
    adds its own inputs before the submit button names them `extra_template`)."""
    template = "forms/_body.html" if htmx else "forms/form.html"
    page.action_url = action_url
    if status is None:
        status = 400 if page.errors or extra.get("extra_errors") else 200
    return render_template(template, page=page, action_url=action_url, preview=preview, **extra), status


@bp.get("/<scheme_key>/")
def index(scheme_key: str):
    forms = service.list_forms(current_user, scheme_key)
    if not forms:
        raise PermissionDenied(_("You have no forms to fill in this district."))
    return render_template("forms/index.html", scheme_key=scheme_key, forms=forms,
                           data=scheme_or_404(scheme_key).data)


@bp.get("/<scheme_key>/<form_key>/places")
@public
@public_limits
def places(scheme_key: str, form_key: str):
    """What a place field's search box fills its list with: the places whose name holds what was typed."""
    if not permissions.can_search_places(current_user, scheme_key, form_key):
        raise PermissionDenied(_("You may not fill this form."))
    spec = form_spec_of(service.form_version(scheme_key, form_key))
    typed = next((v for k, v in request.args.items() if k.endswith("-q")), "")
    # The public report form is filled as the public (whoever is logged in): it offers what the public may pick.
    searcher = None if permissions.is_public_report_form(scheme_key, form_key) else current_user
    matches, count = service.search_places(searcher, scheme_key, spec, request.args.get("field", ""), typed)
    return render_template("forms/_places.html", matches=matches, count=count, typed=typed.strip())


@bp.route("/<scheme_key>/<form_key>/new", methods=["GET", "POST"])
def fill(scheme_key: str, form_key: str):
    if not permissions.can_submit_form(current_user, scheme_key):
        raise PermissionDenied(_("You may not fill forms in this district."))
    version = service.form_version(scheme_key, form_key)
    spec = form_spec_of(version)
    url = url_for("forms.fill", scheme_key=scheme_key, form_key=form_key)
    if request.method != "POST":  # GET, and HEAD (which Werkzeug answers wherever GET is allowed)
        return render_page(service.open_form(current_user, scheme_key, spec, version), url)
    action = request.form.get("_action", "submit")[:100]
    result = service.post_form(current_user, scheme_key, spec, version, _formdata(), action,
                               changed=htmx.trigger_name)  # the input whose change asked for a refresh
    db.session.commit()  # a record, or this render's pending uploads (kept for the next try)
    if isinstance(result, Submission):
        flash(_("Saved."), "success")
        return redirect(url_for("forms.record", submission_id=result.id), code=303)
    return render_page(result, url)


def _formdata():  # noqa: ANN202
    from werkzeug.datastructures import CombinedMultiDict

    return CombinedMultiDict([request.files, request.form])


@bp.get("/<scheme_key>/<form_key>/records")
def records(scheme_key: str, form_key: str):
    if not permissions.can_view_submissions(current_user, scheme_key):
        raise PermissionDenied(_("You may not view these records."))
    version = service.form_version(scheme_key, form_key)
    spec = form_spec_of(version)
    filters = _filters()
    rows = service.list_submissions(current_user, scheme_key, form_key, filters)
    fmt = request.args.get("format")
    if fmt in ("csv", "xlsx"):
        data, mimetype = export.export_records(spec, rows, fmt, scheme_key,
                                               service.records_labels(scheme_key, spec, [r.data for r in rows]))
        name = f"{form_key}-{district_today(scheme_key):%Y%m%d}.{fmt}"
        return Response(data, mimetype=mimetype, headers={"Content-Disposition": f"attachment; filename={name}"})
    return render_template("forms/records.html", scheme_key=scheme_key, spec=spec, rows=rows, filters=filters,
                           choices=service.filter_choices(current_user, scheme_key))


def _filters() -> service.RecordFilters:
    def date_arg(name: str) -> dt.date | None:
        return parse_date(request.args.get(name, ""))

    def int_arg(name: str) -> int | None:
        return parse_id(request.args.get(name, ""))

    return service.RecordFilters(start=date_arg("start"), end=date_arg("end"), area_id=int_arg("area"),
                                 unit_id=int_arg("unit"), user_id=int_arg("user"))


@bp.get("/records/<int:submission_id>")
def record(submission_id: int):
    submission = service.get_submission(current_user, submission_id)
    g.district = submission.scheme_key  # the page's district: navigation, breadcrumbs
    spec = form_spec_of(submission.definition_version)
    return render_template("forms/record.html", submission=submission, spec=spec,
                           live=service.live_labels(submission.scheme_key, spec, submission.data or {}))


@bp.get("/uploads/<int:upload_id>")
@bp.get("/uploads/<int:upload_id>/<variant>")
def upload(upload_id: int, variant: str = "full"):
    item = service.get_upload(current_user, upload_id)
    data = service.file_store().read(item.sha256, item.extension)
    if variant == "thumb" and item.mime.startswith("image/"):
        data, mimetype = make_thumbnail(data), "image/jpeg"
    elif variant in ("full", "thumb"):
        mimetype = item.mime
    else:
        abort(404)
    import io

    response = send_file(io.BytesIO(data), mimetype=mimetype, download_name=f"{item.sha256[:12]}.{item.extension}",
                         max_age=3600)
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
