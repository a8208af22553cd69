"""Public pages (no login): report a problem, follow it by its code, answer the follow-up, the district's
lists; and, for moderators, the queue of what the public wrote. Every public endpoint is rate-limited per
address and per device."""

from __future__ import annotations

import io

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter.util import get_remote_address
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from wtforms import BooleanField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from ..auth import permissions
from ..auth.access import public
from ..core.cache import ContentCache
from ..core.errors import Conflict, DomainError, NotFound
from ..definitions.service import scheme_or_404
from ..extensions import db, htmx, limiter
from ..forms import service as forms
from ..forms.models import Upload
from ..forms.uploads import make_thumbnail
from ..forms.views import _formdata, render_page
from ..web.forms import Form
from ..web.i18n import tr
from ..web.limits import DEVICE_COOKIE, device_key, public_limits, public_read_limits, report_limit, with_device
from ..web.maps import allow_images, image_origins, map_data
from ..web.params import parse_coordinate, parse_id
from . import service
from .models import PublicReport

bp = Blueprint("public", __name__, template_folder="templates", url_prefix="/p")
moderation_bp = Blueprint("moderation", __name__, template_folder="templates", url_prefix="/moderation")

def _too_many_reports() -> str:
    return _("You have sent many reports in a short time. Please wait a while before sending another; "
             "for an emergency, call the hotline on the notice board.")


# -- report ------------------------------------------------------------------------------------------------------


def _contact_values() -> dict[str, str]:
    return {"name": (request.form.get("reporter_name") or "").strip()[:100],
            "phone": (request.form.get("reporter_phone") or "").strip()[:40]}


def _render_report(scheme_key: str, page: forms.FormPage, contact: dict[str, str], problems: dict[str, str],
                   stamp: str | None = None):
    url = url_for("public.report", scheme_key=scheme_key)
    response, status = render_page(page, url, extra_template="public/_contact.html", contact=contact,
                                   contact_errors=problems, stamp=stamp or service.form_stamp(), public_page=True,
                                   extra_errors=problems)
    return with_device(current_app.make_response((response, status)))


# The report form's page as a new visitor gets it (from a board's QR code: no login, no message waiting, no
# htmx) is the same page for everyone but three values drawn for each request: the CSRF token, the form's
# token and the signed stamp. It is drawn once per `service.report_page_key` (and language, theme and
# address) and kept with those values marked, then filled in for each visitor: drawing it is most of what the
# page costs, and a QR campaign asks for it thousands of times.
KEPT_PAGES = ContentCache(maxsize=64)
MARKS = {"csrf": "\x00fangan-csrf\x00", "token": "\x00fangan-token\x00", "stamp": "\x00fangan-stamp\x00"}


def _new_report_page(scheme_key: str):
    area = request.args.get("area")
    keep = not (current_user.is_authenticated or session.get("_flashes") or htmx)
    key = ((service.report_page_key(scheme_key, area), str(get_locale()), current_app.config.get("FANGAN_THEME"),
            request.host_url, request.full_path, request.method) if keep else None)
    kept = KEPT_PAGES.get_many([key]).get(key) if keep else None
    if kept is not None:
        html, tile_servers = kept
        allow_images(tile_servers)  # its map's tiles, as when it was drawn
        for name, value in (("csrf", generate_csrf()), ("token", forms.new_token()), ("stamp", service.form_stamp())):
            html = html.replace(MARKS[name], value)
        return with_device(current_app.make_response(html))
    page = service.open_report(scheme_key, area)
    stamp = service.form_stamp()
    response = _render_report(scheme_key, page, {"name": "", "phone": ""}, {}, stamp=stamp)
    if keep and response.status_code == 200:
        html = response.get_data(as_text=True)
        values = {"csrf": generate_csrf(), "token": page.token, "stamp": stamp}
        if all(values[name] in html for name in MARKS):  # each found where the page wrote it, or nothing is kept
            for name, value in values.items():
                html = html.replace(value, MARKS[name])
            KEPT_PAGES.put_many({key: (html, frozenset(image_origins()))})
    return response


@bp.route("/<scheme_key>/report", methods=["GET", "POST"])
@public
@public_read_limits("GET", "HEAD")
@limiter.limit(report_limit, methods=["POST"], error_message=_too_many_reports)
@limiter.limit(report_limit, methods=["POST"], key_func=device_key, error_message=_too_many_reports)
def report(scheme_key: str):
    """Report a problem; from a board's QR code (`?area=`), the board's road is filled in."""
    if request.method != "POST":  # GET, and HEAD (which Werkzeug answers wherever GET is allowed)
        return _new_report_page(scheme_key)
    action = request.form.get("_action", "submit")[:100]
    contact = _contact_values()
    if action != "submit":  # a refresh of the questions that depend on earlier answers
        _version, spec = service.report_form(scheme_key)
        page = forms.post_form(None, scheme_key, spec, _version, _formdata(), action, changed=htmx.trigger_name)
        db.session.commit()
        return _render_report(scheme_key, page, contact, {})
    human = service.check_human(request.form.get("website"), request.form.get("_stamp"))
    reporter = service.Reporter(name=contact["name"] or None, phone=contact["phone"] or None,
                                address=get_remote_address(), device=request.cookies.get(DEVICE_COOKIE))
    problems = service.contact_problems(reporter)
    if not human.ok:
        problems["form"] = (_("Please take a moment to check the report before sending it.")
                            if human.reason == "too_fast" else
                            _("This form is out of date. Check your answers and send it again."))
    if problems:  # nothing is stored: the form again, with what was typed
        _version, spec = service.report_form(scheme_key)
        # A person's photos are kept for the next try; a script's (it filled the hidden field) are not.
        page = forms.post_form(None, scheme_key, spec, _version, _formdata(), "refresh",
                               store=human.reason != "honeypot")
        db.session.commit()  # the photos sent with it are kept for the next try
        return _render_report(scheme_key, page, contact, problems)
    result = service.submit_report(scheme_key, _formdata(), reporter)
    code = result.code if isinstance(result, PublicReport) else None  # read before the commit expires it
    db.session.commit()
    if code is None:
        return _render_report(scheme_key, result, contact, {})
    flash(_("Thank you. Your report is in; keep its code to follow it: %(code)s", code=code), "success")
    return redirect(url_for("public.track", code=code), code=303)


# -- tracking ------------------------------------------------------------------------------------------------------


class FollowupForm(Form):
    solved = SelectField(_l("Is the problem solved?"), validators=[InputRequired()])
    satisfaction = SelectField(_l("How satisfied are you with how it was handled?"), validators=[Optional()])
    note = TextAreaField(_l("Anything to add (not shown publicly)"), validators=[Optional(), Length(max=1000)])
    version = HiddenField()


class StepForm(Form):
    version = HiddenField()


class LookupForm(Form):
    code = StringField(_l("Tracking code"), validators=[InputRequired(), Length(max=32)])


def _followup_form(status: dict) -> FollowupForm:
    form = FollowupForm()
    form.solved.choices = [("yes", _("Yes, it is solved")), ("no", _("No, it is not solved"))]
    if not status["followup"]["can_reopen"]:
        form.solved.choices = form.solved.choices[:1]
    form.satisfaction.choices = [(c["value"], tr(c["label"])) for c in status["satisfaction"]]
    return form


@bp.route("/track", methods=["GET", "POST"])
@public
@public_limits
def lookup():
    form = LookupForm()
    if form.validate_on_submit():
        code = service.engine.code_to_look_up(form.code.data)
        if code is not None:
            return redirect(url_for("public.track", code=code), code=303)
        form.code.errors = [*form.code.errors, _("This is not a tracking code: check it and try again.")]
    return render_template("public/lookup.html", form=form), 400 if form.errors else 200


@bp.get("/track/<code>")
@public
@public_limits
def track(code: str):
    item = service.find_report(code)
    status = service.status_of(item)
    return render_template("public/track.html", s=status, code=item.code, followup=_followup_form(status),
                           step=StepForm(version=item.case.version))


@bp.get("/report/<int:report_id>")
@public
@public_limits
def view_report(report_id: int):
    """A report as anyone may read it (from the exposure list or Open311): no follow-up, no steps, no code."""
    status = service.status_of(service.find_public_report(report_id))
    return render_template("public/track.html", s=status, code=None)


@bp.post("/track/<code>/followup")
@public
@public_limits
@limiter.limit(report_limit, error_message=_too_many_reports)
def followup(code: str):
    item = service.find_report(code)
    status = service.status_of(item)
    form = _followup_form(status)
    if form.validate_on_submit():
        try:
            service.answer_followup(item, form.solved.data == "yes", form.satisfaction.data or None,
                                    form.note.data or "", parse_id(form.version.data or ""))
        except Conflict as exc:
            db.session.rollback()
            flash(str(exc), "error")
        except DomainError as exc:
            db.session.rollback()
            form.satisfaction.errors = [*form.satisfaction.errors, str(exc)]
            return render_template("public/track.html", s=status, code=item.code, followup=form,
                                   step=StepForm(version=item.case.version)), 400
        else:
            db.session.commit()
            flash(_("Thank you for your answer."), "success")
        return redirect(url_for("public.track", code=item.code), code=303)
    return render_template("public/track.html", s=status, code=item.code, followup=form,
                           step=StepForm(version=item.case.version)), 400


@bp.post("/track/<code>/do/<transition_id>")
@public
@public_limits
@limiter.limit(report_limit, error_message=_too_many_reports)
def step(code: str, transition_id: str):
    item = service.find_report(code)
    form = StepForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        service.take_public_step(item, transition_id, parse_id(form.version.data or ""))
    except Conflict as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(_("Done."), "success")
    return redirect(url_for("public.track", code=item.code), code=303)


@bp.get("/report/<int:report_id>/photo/<int:upload_id>")
@public
@public_limits
def photo(report_id: int, upload_id: int):
    """A report's photo, once approved: re-encoded at upload, so no EXIF (place, phone model) is left."""
    item = service.public_photo(report_id, upload_id)
    data = make_thumbnail(forms.file_store().read(item.sha256, item.extension), size=1280)
    response = send_file(io.BytesIO(data), mimetype="image/jpeg", max_age=600)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# -- the district's lists ---------------------------------------------------------------------------------------


@bp.get("/<scheme_key>/place")
@public
@public_limits
def place_at(scheme_key: str):
    """The road or area at a position (`lat`, `lng`) or of a key (`key`), for a form's map (JSON: key, name and
    shape; empty where there is none)."""
    if "key" in request.args:
        scheme_or_404(scheme_key)
        return jsonify(service.place_named(scheme_key, request.args["key"]) or {})
    lat, lng = parse_coordinate(request.args.get("lat"), 90), parse_coordinate(request.args.get("lng"), 180)
    if lat is None or lng is None:
        return jsonify(error=_("lat from -90 to 90 and lng from -180 to 180, as numbers.")), 400
    return jsonify(service.place_at(scheme_key, lat, lng) or {})


@bp.get("/<scheme_key>/map")
@public
@public_limits
def public_map(scheme_key: str):
    """The public map of reported problems, where the district publishes one."""
    scheme = scheme_or_404(scheme_key)
    if not scheme.map.public_map:
        raise NotFound(_("This district publishes no map."))
    return render_template("public/map.html", scheme_key=scheme_key, data=scheme.data, settings=scheme.map,
                           place=map_data(scheme_key, points_url=url_for("public.public_map_points",
                                                                         scheme_key=scheme_key), wheel=True))


@bp.get("/<scheme_key>/map.geojson")
@public
@public_limits
def public_map_points(scheme_key: str):
    """The public map's reports as GeoJSON points (approximate positions, nothing personal)."""
    answer = jsonify(service.public_map_points(scheme_key))
    answer.mimetype = "application/geo+json"
    return answer


@bp.get("/<scheme_key>/exposed")
@public
@public_limits
def exposed(scheme_key: str):
    return render_template("public/exposed.html", scheme_key=scheme_key, rows=service.exposed(scheme_key))


@bp.get("/<scheme_key>/praised")
@public
@public_limits
def praised(scheme_key: str):
    days, rows = service.praised(scheme_key)
    return render_template("public/praised.html", scheme_key=scheme_key, rows=rows, days=days)


# -- moderation (logged in) ---------------------------------------------------------------------------------------


class ModerateForm(Form):
    decision = SelectField(_l("Decision"), validators=[InputRequired()])
    expose = BooleanField(_l("Show on the exposure list"))
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=1000)])


def _moderate_form(report_id: int) -> ModerateForm:
    form = ModerateForm(prefix=f"r{report_id}")  # one form per report on the page, each with its own ids
    form.decision.choices = [("approved", _("Approve: may show publicly")), ("rejected", _("Reject: never shown"))]
    return form


@moderation_bp.get("/<scheme_key>/")
def queue(scheme_key: str):
    state = request.args.get("state", "pending")
    if state not in ("pending", "approved", "rejected"):
        state = "pending"
    rows = service.moderation_queue(current_user, scheme_key, state)
    return render_template("public/moderation.html", scheme_key=scheme_key, rows=rows, state=state,
                           statuses={r.id: service.status_of(r) for r in rows},
                           # What approval will make public besides the report: the official reply so far.
                           replies={r.id: service.public_reply(r.case) for r in rows},
                           forms={r.id: _moderate_form(r.id) for r in rows},
                           contacts={r.id: service.reporter_contact(current_user, r) for r in rows},
                           can_see=permissions.can_moderate(current_user, scheme_key))


@moderation_bp.post("/report/<int:report_id>")
def decide(report_id: int):
    item = db.session.get(PublicReport, report_id)
    if item is None:
        abort(404)
    form = _moderate_form(report_id)
    if form.validate_on_submit():
        service.moderate(current_user, item, form.decision.data, form.expose.data, form.note.data or "")
        db.session.commit()
        flash(_("Saved."), "success")
    else:
        flash(_("Choose a decision."), "error")
    return redirect(url_for("moderation.queue", scheme_key=item.scheme_key), code=303)


@moderation_bp.get("/report/<int:report_id>/photo/<int:upload_id>")
def moderation_photo(report_id: int, upload_id: int):
    """The photos of a report waiting for moderation, for moderators only."""
    item = db.session.get(PublicReport, report_id)
    if item is None or not permissions.can_moderate(current_user, item.scheme_key):
        abort(404)
    ids = service.public_photo_ids(item.case, "before") + service.public_photo_ids(item.case, "after")
    upload = db.session.get(Upload, upload_id) if upload_id in ids else None
    if upload is None:
        abort(404)
    data = make_thumbnail(forms.file_store().read(upload.sha256, upload.extension), size=1280)
    return send_file(io.BytesIO(data), mimetype="image/jpeg", max_age=0)
