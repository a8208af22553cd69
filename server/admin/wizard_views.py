"""A new district from a template: its name, then its units and roads from a spreadsheet, its tiers and posts, then
the editors. Each step stores a draft version; the district is in force once its version is activated."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from ..auth import permissions
from ..core.errors import PermissionDenied
from ..definitions import drafts
from ..definitions import service as definitions
from ..definitions.errors import DefinitionsInvalid
from ..definitions.models import SchemeVersion
from ..extensions import db
from ..org.spreadsheet import MAX_IMPORT_BYTES, ImportInvalid, SheetError
from ..web.i18n import tr
from . import service as scheme_admin
from .forms import CsrfForm, NewSchemeForm, OrgSheetsForm

bp = Blueprint("wizard", __name__, template_folder="templates", url_prefix="/admin/schemes")


def _text(zh: str, en: str | None) -> str | dict[str, str]:
    return {"zh": zh.strip(), "en": en.strip()} if en and en.strip() else zh.strip()


@bp.route("/new", methods=["GET", "POST"])
def new_scheme():
    """Step 1: a template and the district's id and names."""
    if not permissions.can_load_scheme(current_user, None):
        raise PermissionDenied(_("You may not start a new district."))
    form = NewSchemeForm()
    templates = scheme_admin.shipped_templates()
    form.template.choices = [(key, f"{tr(name)} ({key})") for key, name in templates.items()]
    errors = []
    if form.validate_on_submit():
        try:
            version = scheme_admin.start_scheme(current_user, form.template.data, form.key.data,
                                                _text(form.name_zh.data, form.name_en.data),
                                                _text(form.short_zh.data, form.short_en.data))
        except DefinitionsInvalid as exc:
            db.session.rollback()
            errors = exc.errors
        else:
            db.session.commit()
            flash(_("The district %(key)s is started as a draft.", key=version.scheme_key), "success")
            return redirect(url_for("wizard.setup", version_id=version.id), code=303)
    return render_template("admin/new_scheme.html", form=form, errors=errors), 400 if errors or form.errors else 200


def _setup_page(version: SchemeVersion, sheet_errors: list[SheetError] | None = None, form: OrgSheetsForm | None = None,
                status: int = 200):
    current = definitions.current_version(version.scheme_key)
    data = version.scheme_definition.data
    return render_template("admin/setup.html", version=version, current=current, data=data,
                           named_units=scheme_admin.units_named_elsewhere(data),
                           scheme_path=drafts.definition_file(version, "scheme", version.scheme_key).path,
                           form=form or OrgSheetsForm(), sheet_errors=sheet_errors or [],
                           activate_form=CsrfForm()), status


def _version(version_id: int) -> SchemeVersion:
    version = definitions.get_scheme_version(version_id)
    if not permissions.can_load_scheme(current_user, definitions.existing_key(version.scheme_key)):
        raise PermissionDenied(_("You may not change this scheme."))
    return version


@bp.get("/versions/<int:version_id>/setup")
def setup(version_id: int):
    """The steps of a new district, from this version: where it stands and what is next."""
    return _setup_page(_version(version_id))


@bp.post("/versions/<int:version_id>/organisation")
def organisation(version_id: int):
    """Step 2: the units and roads of an organisation workbook written into the scheme (a new draft)."""
    version = _version(version_id)
    form = OrgSheetsForm()
    if not form.validate_on_submit():
        return _setup_page(version, [SheetError("", None, None, _("Choose a file."))], form, 400)
    storage = form.workbook.data
    data = storage.read(MAX_IMPORT_BYTES + 1)
    try:
        draft, _created = scheme_admin.apply_org_sheets(current_user, version, data, storage.filename or "")
    except ImportInvalid as exc:
        db.session.rollback()
        return _setup_page(version, exc.errors, form, 400)
    except DefinitionsInvalid as exc:
        db.session.rollback()
        lang = "en" if str(get_locale()).startswith("en") else "zh"
        return _setup_page(version, [SheetError(e.file, e.line, e.path, e.message_in(lang)) for e in exc.errors],
                           form, 400)
    db.session.commit()
    flash(_("The units and areas are in draft version %(id)s.", id=draft.id), "success")
    return redirect(url_for("wizard.setup", version_id=draft.id), code=303)
