"""Case pages: report, inbox, the case with its timeline and the actions this user may take now."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, flash, g, jsonify, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_htmx import make_response as htmx_response
from flask_login import current_user

from ..auth import permissions
from ..core.database import utcnow
from ..core.errors import Conflict, NotFound, PermissionDenied
from ..definitions.clock import district_today
from ..extensions import db, htmx
from ..forms import service as forms
from ..forms.views import _formdata, render_page
from ..patrols import service as patrols
from ..web.i18n import tr
from ..web.maps import place_map
from ..web.params import Paged, by_name, parse_date, parse_id, parse_search
from . import deadlines, inboxes, service
from .ledger import case_metrics, open_cases_by_area
from .ledger import start_ledger_export as start_ledger_export_job

bp = Blueprint("workflow", __name__, template_folder="templates", url_prefix="/cases")


@bp.record_once
def _register_globals(state) -> None:  # noqa: ANN001
    state.app.jinja_env.globals["working_days_left"] = deadlines.working_days_left
    state.app.jinja_env.globals["source_label"] = service.source_label


@bp.get("/<scheme_key>/")
def inbox(scheme_key: str):
    """The case queue: tabs with counts, search, filters, order and pages; an htmx request for the queue gets the
    queue alone."""
    page, choices = service.case_queue(current_user, scheme_key, inboxes.queue_query(request.args))
    context = {"scheme_key": scheme_key, "page": page, "q": page.query, "boxes": inboxes.BOXES,
               "sorts": inboxes.SORTS, "sources": inboxes.SOURCES, "choices": choices, "now": utcnow(),
               "day": dt.timedelta(days=1)}
    if htmx and htmx.target == "queue":
        response = make_response(render_template("workflow/_queue.html", **context))
    else:
        response = make_response(render_template("workflow/inbox.html", **context,
                                                 notifications=inboxes.notifications_for(current_user),
                                                 reminders=patrols.reminders_for(current_user, scheme_key)))
    response.vary.update(("HX-Request", "HX-Target"))  # one address, two answers: caches must tell them apart
    return response


@bp.get("/<scheme_key>/map.geojson")
def queue_map(scheme_key: str):
    """The queue's cases as GeoJSON points (the same tab, search and filters as the list), for its map."""
    answer = jsonify(service.case_queue_map(current_user, scheme_key, inboxes.queue_query(request.args)))
    answer.mimetype = "application/geo+json"
    return answer


@bp.get("/<scheme_key>/heat.geojson")
def case_heat(scheme_key: str):
    """Where the cases within reach opened on the district's days `start` to `end` came from (GeoJSON points,
    for a heat map; this month so far by default)."""
    today = district_today(scheme_key)
    start = parse_date(request.args.get("start", "")) or today.replace(day=1)
    end = parse_date(request.args.get("end", "")) or today
    answer = jsonify(service.case_heat(current_user, scheme_key, start, max(start, end)))
    answer.mimetype = "application/geo+json"
    return answer


@bp.get("/<scheme_key>/areas")
def by_area(scheme_key: str):
    """Where the open cases are: per road, segment or grid, with the overdue ones."""
    if not permissions.can_view_open_cases_by_area(current_user, scheme_key):
        raise PermissionDenied(_("You may not view these cases."))
    return render_template("workflow/areas.html", scheme_key=scheme_key,
                           rows=open_cases_by_area(current_user, scheme_key))


def _ledger_span(values: Any, scheme_key: str) -> tuple[dt.date, dt.date, str]:
    """(start, end, per unit or area) from the ledger's filters; by default this month so far, per unit."""
    today = district_today(scheme_key)
    start = parse_date(values.get("start", "")) or today.replace(day=1)
    end = parse_date(values.get("end", "")) or today
    return start, end, "area" if values.get("by") == "area" else "unit"


LEDGER_ROWS = 100  # units (or areas) of the ledger's page at once


@bp.get("/<scheme_key>/ledger")
def ledger(scheme_key: str):
    """The ledger of a period: per unit, cases found, rectified, on time, closed, and the rates; found by name
    and shown a hundred at a time (a city has thousands of units)."""
    start, end, by = _ledger_span(request.args, scheme_key)
    q = parse_search(request.args.get("q"))
    rows = by_name(case_metrics(current_user, scheme_key, start, end, by), q,
                   lambda r: r["unit"].name if r["unit"] else "")
    shown = Paged.of(rows, parse_id(request.args.get("page")), LEDGER_ROWS)
    return render_template("workflow/ledger.html", scheme_key=scheme_key, rows=shown.rows, shown_rows=shown, q=q,
                           start=start, end=end, by=by)


@bp.post("/<scheme_key>/ledger/export")
def start_ledger_export(scheme_key: str):
    """The ledger as shown (`start`, `end`, `by`) as a workbook or a PDF (`format`): a job, whose page offers
    the file."""
    start, end, by = _ledger_span(request.form, scheme_key)
    job = start_ledger_export_job(current_user, scheme_key, start, end, by, request.form.get("format", "xlsx"))
    db.session.commit()
    return redirect(url_for("jobs.job", job_id=job.id), code=303)


@bp.route("/<scheme_key>/report", methods=["GET", "POST"])
def report(scheme_key: str):
    """Report a problem: the workflow's report form, and a case opened from it in the same transaction."""
    url = url_for("workflow.report", scheme_key=scheme_key)
    if request.method != "POST":  # GET, and HEAD (which Werkzeug answers wherever GET is allowed)
        version, spec = service.report_form(current_user, scheme_key)
        return render_page(forms.open_form(current_user, scheme_key, spec, version), url)
    reported = service.report_case(current_user, scheme_key, _formdata(), request.form.get("_action", "submit")[:100],
                                   changed=htmx.trigger_name)
    db.session.commit()  # the case, or this render's uploads kept for the next try
    if reported.case is None:
        return render_page(reported.page, url)
    flash(_("Reported: case #%(id)s.", id=reported.case.id), "success")
    return redirect(url_for("workflow.case", case_id=reported.case.id), code=303)


@bp.get("/case/<int:case_id>")
def case(case_id: int):
    item = service.get_case(current_user, case_id)
    g.district = item.scheme_key  # the page's district: navigation, breadcrumbs
    spec = service.workflow_of(item)
    extras = {"public_report": None, "reporter": None, "followup": None, **service.case_page_extras(current_user, item)}
    actions = service.available_actions(current_user, item)
    # The first step with a form that neither refuses nor returns the case is on the page itself: dispatching,
    # rectifying or verifying takes this one page.
    step = next((t for t in actions if t.form and not spec.ending(t)), None)
    try:
        page = service.step_form(current_user, item, step, url_for("workflow.act", case_id=case_id,
                                                                  transition_id=step.id)) if step else None
    except NotFound:  # its form is not in the version in force: the step's own page says so, not the case's
        step = page = None
    return render_template("workflow/case.html", case=item, spec=spec, **extras, **service.case_details(item),
                           actions=actions, step=step, page=page, version=item.version,
                           confirms={t.id: service.step_confirmation(item, t) for t in actions},
                           calendar_warning=any(d.calendar_fallback for d in item.deadlines),
                           place=place_map(item.scheme_key, [item.area], item.submission.location
                                           if item.submission else None, _("The reported position")))


def _back_to_case(case_id: int, message: str, category: str = "error"):
    """Back to the case page with a message; an htmx request is told to load it as a whole page."""
    flash(message, category)
    target = url_for("workflow.case", case_id=case_id)
    if htmx:
        return htmx_response(redirect=target)
    return redirect(target, code=303)


@bp.route("/case/<int:case_id>/do/<transition_id>", methods=["GET", "POST"])
def act(case_id: int, transition_id: str):
    item = service.get_case(current_user, case_id)
    g.district = item.scheme_key  # the page's district: navigation, breadcrumbs
    spec = service.workflow_of(item)
    expected_version = parse_id(request.form.get("case_version", "")) if request.method == "POST" else None
    if expected_version is not None and expected_version != item.version:
        # A page opened before someone else acted: say who did what, whatever is possible now.
        return _back_to_case(case_id, service.stale_message(item))
    transition = spec.transition(transition_id)
    if transition is None or transition not in service.available_actions(current_user, item):
        raise PermissionDenied(_("You cannot do this to this case now."))
    url = url_for("workflow.act", case_id=case_id, transition_id=transition_id)
    confirm = service.step_confirmation(item, transition)
    if request.method != "POST":  # GET, and HEAD (which Werkzeug answers wherever GET is allowed)
        return render_template("workflow/act.html", case=item, spec=spec, transition=transition,
                               page=service.step_form(current_user, item, transition, url),
                               action_url=url, version=item.version, confirm=confirm)
    try:
        item, page = service.fire(current_user, case_id, transition_id, expected_version,
                                  _formdata() if transition.form else None,
                                  request.form.get("_action", "submit")[:100], changed=htmx.trigger_name)
    except Conflict as exc:
        db.session.rollback()
        return _back_to_case(case_id, exc.message)
    if page is not None:
        db.session.commit()  # the form's pending uploads only
        page.action_url = url
        status = 400 if page.errors else 200
        return render_template("workflow/act.html", case=item, spec=spec, transition=transition, page=page,
                               action_url=url, version=expected_version or item.version, confirm=confirm), status
    db.session.commit()
    if not permissions.can_view_case(current_user, item):
        # The step passed the case on beyond the user's reach (up to the street, to another unit): say where it
        # went, on the inbox, rather than answer the redirect with a 403.
        where = tr(item.unit.name) if item.unit is not None else _("another unit")
        flash(_("Done. Case #%(id)s is now with %(unit)s, outside what you can see.", id=item.id, unit=where),
              "success")
        return redirect(url_for("workflow.inbox", scheme_key=item.scheme_key), code=303)
    flash(_("Done."), "success")
    return redirect(url_for("workflow.case", case_id=case_id), code=303)
