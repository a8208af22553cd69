"""Home, language switch and health check."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..auth.access import public
from ..auth.permissions import (
    can_manage_scheme,
    can_submit_form,
    can_view_assessment,
    can_view_cases,
    can_view_compliance,
    can_view_dashboard,
    can_view_org,
    can_view_scheme,
)
from ..definitions.service import current_version, list_schemes
from ..extensions import db
from ..org.models import Area, Post, Unit
from ..patrols import service as patrols

bp = Blueprint("web", __name__, template_folder="templates")


class _Nav:
    """What the top bar offers; worked out only when a page asks."""

    @property
    def manages_schemes(self) -> bool:
        return current_user.is_authenticated and any(can_manage_scheme(current_user, r.key) for r in list_schemes())


@bp.app_context_processor
def _navigation() -> dict:
    return {"nav": _Nav()}


def _safe_next(target: str | None) -> str:
    """Only a same-site path: never an open redirect (browsers drop tabs and newlines, so refuse them too)."""
    from urllib.parse import urlsplit

    if (not target or any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in target) or "\\" in target
            or not target.startswith("/") or target.startswith("//")):
        return url_for("web.home")
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else url_for("web.home")


@bp.get("/")
def home():
    districts = []
    for record in list_schemes():
        version = record.current_version
        if version is None or not can_view_scheme(current_user, record.key):
            continue
        data = version.scheme_definition.data
        counts = {
            "units": db.session.scalar(db.select(db.func.count(Unit.id)).filter_by(scheme_key=record.key, active=True)),
            "areas": db.session.scalar(db.select(db.func.count(Area.id)).filter_by(scheme_key=record.key, active=True)),
            "posts": db.session.scalar(db.select(db.func.count(Post.id)).filter_by(scheme_key=record.key)),
        }
        districts.append({"record": record, "version": version, "data": data, "counts": counts,
                          "can_manage": can_manage_scheme(current_user, record.key),
                          "can_fill": can_submit_form(current_user, record.key),
                          "can_cases": can_view_cases(current_user, record.key),
                          "can_view_org": can_view_org(current_user, record.key),
                          "can_compliance": can_view_compliance(current_user, record.key),
                          "can_dashboard": can_view_dashboard(current_user, record.key),
                          "can_assess": can_view_assessment(current_user, record.key),
                          "reminders": patrols.reminders_for(current_user, record.key)})
    return render_template("web/home.html", districts=districts)


@bp.get("/district/<key>")
def district(key: str):
    """The district at a glance: the chief ladder, patrol rules, forms, workflows and sheets in force."""
    from ..core.errors import NotFound, PermissionDenied

    version = current_version(key)
    if version is None:
        raise NotFound(_("No such district."))
    if not can_view_scheme(current_user, key):
        raise PermissionDenied(_("You have no role in this district."))
    return render_template("web/district.html", version=version, data=version.scheme_definition.data)


@bp.route("/lang/<code>", methods=["POST"])
@public
def set_language(code: str):
    if code in current_app.config["FANGAN_LANGUAGES"]:
        session["lang"] = code
    return redirect(_safe_next(request.form.get("next")))


@bp.get("/sw.js")
@public
def service_worker():
    """The offline service worker, served from the root so that it may control the form pages."""
    from flask import send_from_directory

    response = send_from_directory(current_app.static_folder, "sw.js", mimetype="text/javascript", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.get("/healthz")
@public
def healthz():
    db.session.execute(db.text("SELECT 1"))
    return {"status": "ok"}
