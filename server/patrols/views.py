"""Patrol compliance for leaders: who met and who missed each rule in the period of a chosen day."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, render_template, request
from flask_login import current_user

from ..definitions.clock import district_today
from ..definitions.service import scheme_or_404
from ..web.i18n import localtime, tr
from ..web.maps import map_data
from ..web.params import Paged, parse_date, parse_id
from . import service

bp = Blueprint("patrols", __name__, template_folder="templates", url_prefix="/patrols")


ROWS_SHOWN = 100  # people or units a rule's list shows at once


@bp.get("/<scheme_key>/")
def compliance(scheme_key: str):
    """Each rule's current (or chosen) period: who has not patrolled enough, per tier and unit."""
    scheme = scheme_or_404(scheme_key)
    on = parse_date(request.args.get("on")) or district_today(scheme_key)
    show_all = request.args.get("show") == "all"
    tier = request.args.get("tier") or None
    unit_id = parse_id(request.args.get("unit"))
    report = service.compliance_report(current_user, scheme_key, on, only_short=not show_all, tier=tier,
                                       unit_id=unit_id)
    # A city's rule binds thousands: each rule's list is shown a page at a time (`rule` and `page` turn one).
    opened, page = request.args.get("rule"), parse_id(request.args.get("page"))
    pages = {r.rule.id: Paged.of(r.rows, page if r.rule.id == opened else 1, ROWS_SHOWN) for r in report}
    service.load_places(v for shown in pages.values() for v in shown.rows)
    return render_template("patrols/compliance.html", scheme_key=scheme_key, data=scheme.data, on=on, report=report,
                           pages=pages, show_all=show_all, tier=tier, unit_id=unit_id,
                           tiers=scheme.tiers,
                           units_offered=service.units_in_reach(current_user, scheme_key, unit_id),
                           previous=on - dt.timedelta(days=7), following=on + dt.timedelta(days=7))


@bp.get("/<scheme_key>/routes")
def routes(scheme_key: str):
    """The routes recorded on patrols this week (or the week of `on`), and which roads they passed."""
    scheme_or_404(scheme_key)
    on = parse_date(request.args.get("on")) or district_today(scheme_key)
    week = service.routes_of_week(current_user, scheme_key, on)
    shapes = {"type": "FeatureCollection", "features": [
        *({"type": "Feature", "geometry": r.area.geometry,
           "properties": {"name": tr(r.area.name), "tone": "walked" if r.times else "unwalked"}} for r in week.roads),
        *({"type": "Feature", "geometry": route,
           "properties": {"name": f"{record.user.display_name if record.user else ''} "
                                  f"{localtime(record.occurred_at, scheme_key=scheme_key)}",
                          "tone": "route"}} for record, route in week.routes)]}
    return render_template("patrols/routes.html", scheme_key=scheme_key, week=week, on=on,
                           walked_m=service.WALKED_M, along_m=service.WALKED_ALONG_M,
                           place=map_data(scheme_key, shapes=shapes, wheel=True),
                           previous=on - dt.timedelta(days=7), following=on + dt.timedelta(days=7))
