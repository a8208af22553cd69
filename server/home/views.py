"""The home page (what each person may do in each district) and a district at a glance; the top bar's menu."""

from __future__ import annotations

from flask import Blueprint, render_template
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
from ..definitions.service import compiled_scheme, current_version, list_schemes
from ..extensions import db
from ..org.models import Area, Post, Unit
from ..patrols import service as patrols
from ..web.limits import anonymous_limits

bp = Blueprint("home", __name__, template_folder="templates")


class _Nav:
    """What the top bar offers; worked out only when a page asks."""

    @property
    def manages_schemes(self) -> bool:
        return current_user.is_authenticated and any(can_manage_scheme(current_user, r.key) for r in list_schemes())


@bp.app_context_processor
def _navigation() -> dict:
    return {"nav": _Nav()}


def _public_districts() -> list[dict]:
    """The districts in force and what each opens to the public: reporting, and its public lists."""
    out = []
    for record in list_schemes():
        version = record.current_version
        if version is None:
            continue
        scheme = compiled_scheme(version.scheme_definition)
        settings = scheme.public
        if settings.reporting or settings.exposed_list or settings.praise_list or settings.flags_list \
                or settings.scores_list:
            out.append({"key": record.key, "name": scheme.data.get("name"), "public": settings})
    return out


@bp.get("/")
@public
@anonymous_limits
def index():
    """Staff: what each may do in each district. The public: a way in (report a problem, follow a report, the
    public lists), and the staff's log-in."""
    if not current_user.is_authenticated:
        return render_template("home/landing.html", districts=_public_districts())
    districts = []
    for record in list_schemes():
        version = record.current_version
        if version is None or not can_view_scheme(current_user, record.key):
            continue
        data = compiled_scheme(version.scheme_definition).data
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
    return render_template("home/home.html", districts=districts)


@bp.get("/district/<key>")
def district(key: str):
    """The district at a glance: the chief ladder, patrol rules, forms, workflows and sheets in force."""
    from ..core.errors import NotFound, PermissionDenied

    version = current_version(key)
    if version is None:
        raise NotFound(_("No such district."))
    if not can_view_scheme(current_user, key):
        raise PermissionDenied(_("You have no role in this district."))
    return render_template("home/district.html", version=version, data=compiled_scheme(version.scheme_definition).data)
