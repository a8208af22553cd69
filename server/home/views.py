"""The home page (what each person may do in each district) and a district at a glance; the top bar's menu."""

from __future__ import annotations

from functools import cached_property

from flask import Blueprint, g, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..assessment import dashboard as leaders
from ..auth.access import public
from ..auth.permissions import (
    can_dispatch_cases,
    can_list_boards,
    can_manage_scheme,
    can_submit_form,
    can_view_assessment,
    can_view_cases,
    can_view_compliance,
    can_view_dashboard,
    can_view_org,
    can_view_scheme,
)
from ..core.clock import utcnow
from ..definitions.clock import district_today
from ..definitions.service import compiled_scheme, current_version, list_schemes
from ..extensions import db
from ..org.models import Area, Post, Unit
from ..patrols import service as patrols
from ..web.limits import anonymous_limits
from ..workflow import service as cases

bp = Blueprint("home", __name__, template_folder="templates")


class _Nav:
    """What the top bar offers; worked out only when a page asks."""

    @cached_property
    def manages_schemes(self) -> bool:
        """Whether any of the person's districts (those they hold a role or a post in) lets them manage its scheme."""
        if not current_user.is_authenticated:
            return False
        keys = {a.scheme_key for a in current_user.roles} | {p.scheme_key for p in current_user.posts}
        return any(can_manage_scheme(current_user, key) for key in keys)

    @cached_property
    def district(self) -> str | None:
        """The district the page is about (its `scheme_key`), else the one district the person works in."""
        if not current_user.is_authenticated:
            return None
        # A page about one object (a case, a record, a period) names its district in `g.district`.
        key = (request.view_args or {}).get("scheme_key") or g.get("district")
        if isinstance(key, str) and current_version(key) is not None and can_view_scheme(current_user, key):
            return key
        mine = [r.key for r in list_schemes() if r.current_version is not None and can_view_scheme(current_user, r.key)]
        return mine[0] if len(mine) == 1 else None

    @cached_property
    def links(self) -> list[tuple[str, str, bool]]:
        """The district's sections this person may open, as (label, url, whether the page is in it)."""
        key = self.district
        if key is None:
            return []
        sections = [
            (can_view_cases, _("Cases"), "workflow.inbox", "workflow."),
            (can_submit_form, _("Forms"), "forms.index", "forms."),
            (can_view_compliance, _("Patrols"), "patrols.compliance", "patrols."),
            (can_view_assessment, _("Assessment"), "assessment.periods", "assessment."),
            (can_view_dashboard, _("Dashboard"), "assessment.dashboard", "assessment.dashboard"),
            (can_list_boards, _("Notice boards"), "boards.index", "boards."),
            (can_view_org, _("Organisation"), "org.units", "org."),
        ]
        endpoint = request.endpoint or ""
        shown = [(label, target, prefix) for allowed, label, target, prefix in sections if allowed(current_user, key)]
        # The page is in the section with the longest prefix it starts with (the dashboard, not assessment).
        best = max((len(prefix) for _l, _t, prefix in shown if endpoint.startswith(prefix)), default=0)
        return [(label, url_for(target, scheme_key=key), bool(best) and endpoint.startswith(prefix)
                 and len(prefix) == best) for label, target, prefix in shown]


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
        opened = (settings.reporting and settings.report_form, settings.exposed_list, settings.praise_list,
                  settings.flags_list, settings.scores_list)
        if any(opened):
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
                          "patrols": patrols.my_patrols(current_user, record.key),
                          "figures": (leaders.headline(current_user, record.key, district_today(record.key),
                                                       utcnow())
                                      if can_view_dashboard(current_user, record.key) else None),
                          "today": district_today(record.key),
                          "can_dispatch": can_dispatch_cases(current_user, record.key),
                          "queue": (cases.queue_counts(current_user, record.key)
                                    if can_view_cases(current_user, record.key) else None)})
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
