"""Scheme administration without a shell: upload, see errors by line, diff, activate."""

from __future__ import annotations

from collections import defaultdict

from flask import Blueprint, Response, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..auth import permissions
from ..core.errors import PermissionDenied
from ..definitions import service
from ..definitions.bundle import MAX_UPLOAD_BYTES, read_upload
from ..definitions.clock import district_today
from ..definitions.errors import DefinitionError, DefinitionsInvalid
from ..definitions.models import SchemeVersion
from ..extensions import db, htmx
from . import service as scheme_admin
from .forms import (
    CalendarImportForm,
    CsrfForm,
    ReporterRequestForm,
    RoleGrantForm,
    SchemeFileForm,
    SchemeUploadForm,
    UserCreateForm,
)

bp = Blueprint("admin", __name__, template_folder="templates", url_prefix="/admin")


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied(_("You are not allowed to do this."))


def _manageable_keys() -> list[str]:
    return [r.key for r in service.list_schemes() if permissions.can_manage_scheme(current_user, r.key)]


@bp.get("/schemes")
def schemes():
    keys = _manageable_keys()
    _require(bool(keys) or permissions.can_load_scheme(current_user, None))
    records = [r for r in service.list_schemes() if r.key in keys]
    versions = [v for v in service.list_scheme_versions() if v.scheme_key in keys]
    return render_template("admin/schemes.html", records=records, versions=versions,
                           can_upload=permissions.can_load_scheme(current_user, None) or bool(keys),
                           can_start=permissions.can_load_scheme(current_user, None))


def _uploaded_files(form: SchemeUploadForm) -> dict[str, str]:
    uploads: list[tuple[str, bytes]] = []
    total = 0
    for storage in form.files.data or []:
        if not storage or not storage.filename:
            continue
        data = storage.read(MAX_UPLOAD_BYTES + 1)
        total += len(data)
        if total > MAX_UPLOAD_BYTES:
            raise DefinitionsInvalid([DefinitionError(storage.filename, 1, "", _("The upload is too large."))])
        uploads.append((storage.filename, data))
    return read_upload(uploads)


@bp.route("/schemes/upload", methods=["GET", "POST"])
def upload_scheme():
    _require(permissions.can_load_scheme(current_user, None) or bool(_manageable_keys()))
    form = SchemeUploadForm()
    errors: list[DefinitionError] = []
    sources: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            sources = _uploaded_files(form)
            if not sources:
                raise DefinitionsInvalid([DefinitionError("(upload)", 1, "", _("Choose at least one file."))])
            version, created = scheme_admin.load_scheme(sources, current_user, note=form.note.data or None)
        except DefinitionsInvalid as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            if created:
                flash(_("Scheme checked and stored as version %(id)s. Review the changes, then activate it.",
                        id=version.id), "success")
            else:
                flash(_("This exact scheme is already stored as version %(id)s.", id=version.id), "info")
            return redirect(url_for("admin.scheme_version", version_id=version.id))
    by_file: dict[str, dict[int, list[DefinitionError]]] = defaultdict(lambda: defaultdict(list))
    for error in errors:
        by_file[error.file][error.line].append(error)
    annotated = [(name, sources.get(name, "").splitlines(), by_file.get(name, {})) for name in
                 sorted(set(sources) | set(by_file))]
    status = 400 if errors or form.errors else 200
    return render_template("admin/upload.html", form=form, errors=errors, annotated=annotated), status


@bp.get("/schemes/versions/<int:version_id>")
def scheme_version(version_id: int):
    version = service.get_scheme_version(version_id)
    _require(permissions.can_manage_scheme(current_user, version.scheme_key)
             or permissions.can_load_scheme(current_user, None))
    return version_page(version)


def version_page(version: SchemeVersion, file_form: SchemeFileForm | None = None,
                 file_errors: list[DefinitionError] | None = None):
    """A version: what it changes against the version in force, its definitions and files, and how to change it."""
    from ..definitions import drafts

    current = service.current_version(version.scheme_key)
    is_current = current is not None and current.id == version.id
    diffs = [] if is_current else service.diff_scheme_versions(current, version)
    editable = permissions.can_load_scheme(current_user, service.existing_key(version.scheme_key))
    return render_template("admin/version.html", version=version, current=current, diffs=diffs,
                           activate_form=CsrfForm(), editable=editable, editors=scheme_admin.EDITORS,
                           files=sorted(drafts.version_files(version)) if editable else [],
                           file_form=file_form or SchemeFileForm(), file_errors=file_errors or []
                           ), 400 if file_errors else 200


@bp.post("/schemes/versions/<int:version_id>/activate")
def activate_version(version_id: int):
    version = service.get_scheme_version(version_id)
    _require(permissions.can_manage_scheme(current_user, version.scheme_key)
             or permissions.can_load_scheme(current_user, None))
    form = CsrfForm()
    if not form.validate_on_submit():
        flash(_("The form has expired. Please try again."), "error")
        return redirect(url_for("admin.scheme_version", version_id=version_id))
    scheme_admin.activate_scheme_version(version_id, current_user)
    db.session.commit()
    flash(_("Version %(id)s is now in force.", id=version_id), "success")
    return redirect(url_for("admin.scheme_version", version_id=version_id))


@bp.get("/definitions/<int:definition_id>")
def definition_source(definition_id: int):
    from ..definitions.models import DefinitionVersion

    row = db.session.get(DefinitionVersion, definition_id)
    if row is None:
        from ..core.errors import NotFound

        raise NotFound(_("No such definition."))
    keys = {v.scheme_key for v in service.list_scheme_versions() if row in v.members}
    _require(any(permissions.can_manage_scheme(current_user, k) for k in keys) or current_user.is_admin)
    return render_template("admin/definition.html", row=row)


# -- users ----------------------------------------------------------------------

def _role_choices() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(scheme:role choices, unit choices) across the schemes in force."""
    from ..org.models import Unit
    from ..web.i18n import tr

    roles, units = [], [("", _("(no unit: only for district-wide roles)"))]
    for record in service.list_schemes():
        scheme = service.scheme_in_force(record.key)
        if scheme is None:
            continue
        roles += [(f"{record.key}:{r.id}", f"{tr(scheme.short_name)} · {tr(r['name'])}") for r in scheme.roles.values()]
        rows = db.session.scalars(db.select(Unit).filter_by(scheme_key=record.key, active=True).order_by(Unit.path))
        units += [(str(u.id), f"{record.key} · {tr(u.name)}") for u in rows]
    return roles, units


def _users_page(shown_password: tuple[str, str] | None = None, create_form: UserCreateForm | None = None,
                status: int = 200):
    from ..auth import service as users

    _require(permissions.can_manage_users(current_user))
    roles, units = _role_choices()
    grant_form = RoleGrantForm()
    grant_form.scheme_role.choices, grant_form.unit.choices = roles, units
    role_names = dict(roles)  # "district:role" → "district · role", as the grant form names them
    return render_template("admin/users.html", users=users.list_users(), create_form=create_form or UserCreateForm(),
                           role_names=role_names,
                           grant_form=grant_form, shown_password=shown_password, action_form=CsrfForm()), status


@bp.get("/users")
def users():
    return _users_page()


@bp.post("/users")
def create_user():
    from ..auth import service as users
    from ..core.errors import Conflict

    _require(permissions.can_manage_users(current_user))
    form = UserCreateForm()
    if form.validate_on_submit():
        try:
            user, password = users.create_user(form.username.data, form.display_name.data,
                                               is_admin=form.is_admin.data, actor=current_user)
        except Conflict as exc:
            form.username.errors.append(exc.message)
        else:
            db.session.commit()
            # Shown in this response only: never stored in the session or a flash message.
            return _users_page(shown_password=(user.username, password))
    return _users_page(create_form=form, status=400)


@bp.post("/users/<int:user_id>/reset-password")
def reset_user_password(user_id: int):
    from ..auth import service as users

    _require(permissions.can_manage_users(current_user))
    if not CsrfForm().validate_on_submit():
        return _users_page(status=400)
    user = users.get_user(user_id)
    password = users.reset_password(user.username, actor=current_user)
    db.session.commit()
    return _users_page(shown_password=(user.username, password))


@bp.post("/users/<int:user_id>/active")
def toggle_user(user_id: int):
    from ..auth import service as users

    _require(permissions.can_manage_users(current_user))
    if CsrfForm().validate_on_submit():
        user = users.get_user(user_id)
        users.set_user_active(user, not user.active, actor=current_user)
        db.session.commit()
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>/roles")
def grant_user_role(user_id: int):
    from ..auth import service as users
    from ..org.models import Unit

    _require(permissions.can_manage_users(current_user))
    roles, units = _role_choices()
    form = RoleGrantForm()
    form.scheme_role.choices, form.unit.choices = roles, units
    if not form.validate_on_submit():
        flash(_("Choose a role."), "error")
        return redirect(url_for("admin.users"))
    scheme_key, role_key = form.scheme_role.data.split(":", 1)
    unit = db.session.get(Unit, int(form.unit.data)) if form.unit.data else None
    if unit is not None and unit.scheme_key != scheme_key:
        flash(_("That unit belongs to another district."), "error")
        return redirect(url_for("admin.users"))
    users.grant_role(users.get_user(user_id), scheme_key, role_key, unit.id if unit else None, actor=current_user)
    db.session.commit()
    flash(_("Role granted."), "success")
    return redirect(url_for("admin.users"))


@bp.post("/roles/<int:assignment_id>/revoke")
def revoke_user_role(assignment_id: int):
    from ..auth import service as users

    _require(permissions.can_manage_users(current_user))
    if CsrfForm().validate_on_submit():
        users.revoke_role(assignment_id, actor=current_user)
        db.session.commit()
        flash(_("Role removed."), "success")
    return redirect(url_for("admin.users"))


# -- form preview and XLSForm import --------------------------------------------------

@bp.route("/definitions/<int:definition_id>/preview", methods=["GET", "POST"])
def preview_form(definition_id: int):
    """Fill any stored form version, active or not, with nothing stored."""
    from ..definitions.models import DefinitionVersion, SchemeVersion
    from ..forms import service as forms
    from ..forms.engine import form_spec_of
    from ..forms.views import render_page

    row = db.session.get(DefinitionVersion, definition_id)
    if row is None or row.kind != "form":
        from ..core.errors import NotFound

        raise NotFound(_("No such definition."))
    keys = set(db.session.scalars(db.select(SchemeVersion.scheme_key).where(SchemeVersion.members.contains(row))))
    _require(permissions.can_manage_forms(current_user) or any(permissions.can_manage_forms(current_user, k)
                                                                for k in keys))
    scheme_key = sorted(keys)[0] if keys else ""
    spec = form_spec_of(row)
    url = url_for("admin.preview_form", definition_id=definition_id)
    if request.method != "POST":  # GET, and HEAD (which Werkzeug answers wherever GET is allowed)
        return render_page(forms.open_form(current_user, scheme_key, spec, row), url, preview=True)
    from ..forms.views import _formdata

    page = forms.post_form(current_user, scheme_key, spec, row, _formdata(), request.form.get("_action", "submit"),
                           store=False, changed=htmx.trigger_name)
    db.session.rollback()  # a preview never stores anything
    return render_page(page, url, preview=True)


@bp.route("/forms/import", methods=["GET", "POST"])
def import_xlsform():
    """Turn an XLSForm workbook into a form definition; what cannot be converted is left out and named by sheet
    and row, in the page's language."""
    from ..forms.xlsform import XlsformError, import_xlsform, to_yaml
    from ..web.i18n import text_language
    from .forms import XlsformUploadForm

    _require(permissions.can_manage_forms(current_user) or bool(_manageable_keys()))
    form = XlsformUploadForm()
    issues, dropped, notes, yaml_text, definition, refused_strictly = [], [], [], None, None, False
    if form.validate_on_submit():
        storage = form.workbook.data
        data = storage.read(MAX_UPLOAD_BYTES + 1)
        attachments: dict[str, bytes] = {}
        total = len(data)
        for upload in form.attachments.data or []:
            if upload and upload.filename:
                content = upload.read(MAX_UPLOAD_BYTES + 1)
                total += len(content)
                attachments[upload.filename] = content
        language = text_language()
        try:
            if total > MAX_UPLOAD_BYTES:
                raise DefinitionsInvalid([DefinitionError(storage.filename, 1, "", _("The upload is too large."))])
            result = import_xlsform(data, storage.filename or "form.xlsx", form_id=form.form_id.data or None,
                                    attachments=attachments, strict=form.strict.data)
            definition = result.definition
            yaml_text = to_yaml(definition)
            dropped = [issue.in_language(language) for issue in result.dropped]
            notes = [issue.in_language(language) for issue in result.notes]
        except XlsformError as exc:
            issues = [issue.in_language(language) for issue in exc.issues]
            refused_strictly = exc.strict
        except DefinitionsInvalid as exc:
            issues = [str(error) for error in exc.errors]
    status = 400 if issues or form.errors else 200
    return render_template("admin/xlsform.html", form=form, issues=issues, dropped=dropped, notes=notes,
                           yaml_text=yaml_text, definition=definition, refused_strictly=refused_strictly), status


# -- working-day calendar ------------------------------------------------------------------

@bp.route("/calendar", methods=["GET", "POST"])
def calendar():
    """Holidays and makeup workdays that override and extend the built-in Chinese calendar."""
    from ..calendar import service as calendar
    from .forms import CalendarDayForm

    _require(permissions.can_edit_calendar(current_user))  # the calendar serves every district on the server
    form = CalendarDayForm()
    if form.validate_on_submit():
        calendar.set_calendar_day(current_user, form.day.data, bool(form.working.data), form.name.data or "")
        db.session.commit()
        flash(_("Saved."), "success")
        return redirect(url_for("admin.calendar"))
    today = district_today()
    return render_template("admin/calendar.html", form=form, years=calendar.calendar_years(today),
                           rows=calendar.calendar_rows(), unknown=calendar.unknown_years_ahead(today),
                           delete_form=CsrfForm()), 400 if form.errors else 200


@bp.post("/calendar/year/<int:year>")
def calendar_year(year: int):
    """Mark a year of the table complete (its warning goes) or not."""
    from ..calendar import service as calendar

    _require(permissions.can_edit_calendar(current_user))
    if CsrfForm().validate_on_submit() and 1900 < year < 2200:
        calendar.set_year_complete(current_user, year, request.form.get("complete") == "y")
        db.session.commit()
    return redirect(url_for("admin.calendar"), code=303)


@bp.route("/calendar/import", methods=["GET", "POST"])
def calendar_import():
    """Upload a year's table, see what it changes year by year, then confirm: nothing is stored before."""
    import base64
    import binascii

    from ..calendar import service as calendar
    from ..calendar.importer import MAX_BYTES

    _require(permissions.can_edit_calendar(current_user))
    form = CalendarImportForm()
    preview = None
    if request.method == "POST" and form.validate_on_submit():
        upload = form.upload.data
        if upload is not None and getattr(upload, "filename", ""):
            data, name = upload.read(MAX_BYTES + 1), upload.filename
        else:
            try:
                data = base64.b64decode(form.content.data or "", validate=True)
            except (binascii.Error, ValueError):
                data = b""
            name = form.filename.data or ""
        if request.form.get("action") == "import" and data:
            result = calendar.import_calendar(current_user, data, name)
            if result.ok:
                db.session.commit()
                flash(_("%(years)s imported and marked complete; %(cases)s open cases got new deadlines.",
                        years=", ".join(str(y.year) for y in result.years), cases=result.moved_cases), "success")
                return redirect(url_for("admin.calendar"), code=303)
            db.session.rollback()
            preview = result
        else:
            preview = calendar.preview_calendar_import(current_user, data, name)
        form.content.data, form.filename.data = base64.b64encode(data).decode(), name
    status = 400 if preview is not None and not preview.ok else 200
    return render_template("admin/calendar_import.html", form=form, preview=preview), status


@bp.post("/calendar/<day>/delete")
def delete_calendar_day(day: str):
    import datetime as dt

    from ..calendar import service as calendar

    _require(permissions.can_edit_calendar(current_user))
    if CsrfForm().validate_on_submit():
        try:
            calendar.delete_calendar_day(current_user, dt.date.fromisoformat(day))
        except ValueError:
            pass  # not a date: nothing to delete
        db.session.commit()
    return redirect(url_for("admin.calendar"))

@bp.route("/reporters", methods=["GET", "POST"])
def reporters():
    """A public reporter's request about their personal data: find their reports by phone or tracking code, see
    and download what is kept (JSON), or erase their contacts. Posted, never in a URL: a phone number or a code in
    a query string would reach the access logs."""
    from ..public import retention
    from ..web.i18n import tr

    keys = [r for r in service.list_schemes() if permissions.can_answer_reporters(current_user, r.key)]
    _require(bool(keys))
    form = ReporterRequestForm()
    form.scheme.choices = [(r.key, f"{tr(r.current_version.name) if r.current_version else r.key} ({r.key})")
                           for r in keys]
    found = None
    if form.validate_on_submit():
        wanted = {"phone": (form.phone.data or "").strip() or None, "code": (form.code.data or "").strip() or None}
        action = request.form.get("action", "find")
        if action == "erase" and not form.confirm.data:
            form.confirm.errors = [*form.confirm.errors, _("Tick the box to erase.")]
        elif action == "erase":
            count = retention.erase_reporter(current_user, form.scheme.data, **wanted)
            db.session.commit()
            flash(_("The contacts of %(count)s report(s) were erased.", count=count), "success")
            return redirect(url_for("admin.reporters"), code=303)
        else:
            found = retention.find_reporter(current_user, form.scheme.data, **wanted)
            db.session.commit()  # the audit line of the export
            if action == "download":
                import json

                body = json.dumps({"district": found.scheme_key, "phone": found.phone, "reports": found.reports},
                                  ensure_ascii=False, indent=2)
                response = Response(body, mimetype="application/json")
                response.headers["Content-Disposition"] = f"attachment; filename=reporter-{found.scheme_key}.json"
                response.headers["Cache-Control"] = "no-store"
                return response
    response = make_response(render_template("admin/reporters.html", form=form, found=found),
                             400 if form.errors else 200)
    response.headers["Cache-Control"] = "no-store"  # a reporter's contacts are never kept by a browser or proxy
    return response
