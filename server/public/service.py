"""The public side: a report from anyone opens a case routed by place, a tracking code follows it, the reporter
confirms or reopens it and says how satisfied they are, moderators decide what the public sees, and the
district publishes its lists. Shared by the public pages, Open311 and the CLI."""

from __future__ import annotations

import datetime as dt
import functools
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import current_app, url_for
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import bindparam, func, select

from ..assessment.sources import metric_source, period_bounds
from ..audit.service import record_audit
from ..auth import permissions
from ..core.database import insert_returning, utcnow
from ..core.errors import Conflict, DomainError, NotFound, PermissionDenied
from ..core.secrets import fingerprint, seal, unseal
from ..definitions.compiled import NO_PUBLIC, PublicSettings
from ..definitions.service import DefinitionRef, categories_within, current_scheme, scheme_in_force
from ..extensions import db
from ..forms import service as forms
from ..forms.engine import FieldSpec, FormSpec, form_spec_of
from ..forms.models import Submission, Upload
from ..org.models import Area, Unit
from ..org.service import area_at, names_stamp
from ..web.i18n import tr
from ..workflow import routing
from ..workflow import service as workflow
from ..workflow.models import Case
from . import engine
from .models import PublicReport

if TYPE_CHECKING:
    from ..auth.models import AnyUser

# -- the district's public settings ---------------------------------------------------------------------------


def public_settings(scheme_key: str) -> PublicSettings:
    """The scheme's `public` block (the schema's defaults, nothing open, when it has none or is unknown)."""
    scheme = scheme_in_force(scheme_key)
    return scheme.public if scheme else NO_PUBLIC


def require_reporting(scheme_key: str) -> PublicSettings:
    settings = public_settings(scheme_key)
    if not settings.reporting or not settings.report_form:
        raise NotFound(_("This district does not take reports from the public."))
    return settings


def report_form(scheme_key: str) -> tuple[DefinitionRef, FormSpec]:
    settings = require_reporting(scheme_key)
    version = forms.form_definition(scheme_key, settings.report_form)
    return version, form_spec_of(version)


def _area_field(spec: FormSpec) -> FieldSpec | None:
    """The form's first place field: an area field, or a location's road picker (a field that can name an area)."""
    return next((f for f in spec.top_level() if f.kind.names_area), None)


def open_report(scheme_key: str, area_key: str | None = None) -> forms.FormPage:
    """A fresh public report form; from a board's QR link, the board's road is already filled in."""
    version, spec = report_form(scheme_key)
    prefill: dict[str, Any] = {}
    place = _area_field(spec)
    if area_key and place and db.session.scalar(select(Area.id).filter_by(scheme_key=scheme_key, key=area_key,
                                                                          active=True)):
        prefill[place.id] = place.kind.with_area(area_key)
    return forms.open_form(None, scheme_key, spec, version, prefill=prefill)


def report_page_key(scheme_key: str, area_key: str | None = None) -> tuple:
    """What the report form's page for a new visitor shows, besides its per-request tokens: the definitions in
    force, the form's defaults as they stand now (a date's default moves at midnight), the board's road it was
    opened from, and the district's units and places (their names and count: `org.service.names_stamp`)."""
    from ..forms.engine import default_values

    version, spec = report_form(scheme_key)
    current = current_scheme(scheme_key)
    defaults = default_values(spec, forms.form_context(None, scheme_key))
    return (scheme_key, current.version_id if current else None, version.content_hash, area_key or "",
            json.dumps(defaults, sort_keys=True, default=str), *names_stamp())


# -- the anti-bot stamp: the page's own signed render time ---------------------------------------------------------

def _stamps() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="fangan-public-form")


def form_stamp() -> str:
    return _stamps().dumps(round(time.time(), 3))


def check_human(honeypot: str | None, stamp: str | None) -> engine.BotCheck:
    try:
        rendered_at = float(_stamps().loads(stamp)) if stamp else None
    except (BadSignature, TypeError, ValueError):
        rendered_at = None
    return engine.bot_check(honeypot, rendered_at, time.time(),
                            float(current_app.config.get("FANGAN_MIN_FILL_SECONDS", 3)))


# -- reporting ----------------------------------------------------------------------------------------------------

@dataclass
class Reporter:
    """Who sent a report, as far as the public side knows: nothing of it is stored in clear."""

    name: str | None = None
    phone: str | None = None
    channel: str = "web"  # web | open311 | api
    client: str | None = None
    address: str | None = None
    device: str | None = None
    email: str | None = None  # Open311's `email`
    media_url: str | None = None  # Open311's `media_url`: a photo on the client's server


def contact_problems(reporter: Reporter) -> dict[str, str]:
    problems = {}
    if reporter.name and len(reporter.name) > 50:
        problems["name"] = _("A name of at most 50 characters, please.")
    if reporter.phone and not engine.valid_phone(reporter.phone):
        problems["phone"] = _("A phone number of digits, please (spaces, dashes and a leading + are fine).")
    if reporter.email and not engine.valid_email(reporter.email):
        problems["email"] = _("An e-mail address like name@example.com, of at most 200 characters, please.")
    if reporter.media_url and not engine.valid_media_url(reporter.media_url):
        problems["media_url"] = _("media_url must be an http or https address of at most 2000 characters.")
    return problems


def submit_report(scheme_key: str, formdata: Any, reporter: Reporter,
                  action: str = "submit") -> forms.FormPage | PublicReport:
    """Check and store a public report and open its case, routed by place, in the caller's transaction.

    Returns the form page again (with the person's data and field errors) until it is right. The same form
    sent twice gives the first report back.
    """
    version, spec = report_form(scheme_key)
    result = forms.post_form(None, scheme_key, spec, version, formdata, action)
    if not isinstance(result, Submission):
        return result
    if result.resent:  # the same form sent again: its report, once the first sending made one
        existing = db.session.scalar(select(PublicReport).join(Case, Case.id == PublicReport.case_id)
                                     .where(Case.submission_id == result.id))
        if existing is not None:
            return existing
    _locate(scheme_key, result)
    category = result.data.get("category")
    case = workflow.open_case(None, scheme_key, result, workflow.workflow_for_category(scheme_key, category),
                              source="public")
    if case.unit_id is None:
        routing.route_case(case)
    report = db.session.scalars(insert_returning(PublicReport), [{
        "scheme_key": scheme_key, "case_id": case.id, "code": _unused_code(), "channel": reporter.channel,
        "client": reporter.client, "address_hash": fingerprint(reporter.address) if reporter.address else None,
        "device_hash": fingerprint(reporter.device) if reporter.device else None,
        "name_sealed": seal(engine.public_text(reporter.name, 50) or None),
        "phone_sealed": seal(reporter.phone.strip() if reporter.phone else None),
        "phone_masked": engine.mask_phone(reporter.phone),
        "email_sealed": seal(reporter.email.strip() if reporter.email else None),
        "media_url": reporter.media_url.strip() if reporter.media_url else None}]).one()
    record_audit("public.report", "case", case.id, scheme_key=scheme_key,
                 after={"channel": reporter.channel, "client": reporter.client, "unit_id": case.unit_id})
    return report


@functools.cache
def _code_taken() -> Any:
    return select(PublicReport.id).where(PublicReport.code == bindparam("code"))


def _unused_code() -> str:
    for _attempt in range(5):
        code = engine.new_code()
        with db.session.no_autoflush:  # what is pending cannot hold a code: it is flushed later, with the rest
            taken = db.session.scalar(_code_taken(), {"code": code})
        if not taken:
            return code
    raise Conflict(_("Please send the report again."))  # 45 random bits: practically never


def _locate(scheme_key: str, submission: Submission) -> None:
    """A report without a road picked takes the road or area its position lies in (or nearest to)."""
    where = submission.location if isinstance(submission.location, dict) else {}
    if submission.area_id is not None or where.get("lat") is None or where.get("lng") is None:
        if submission.area_id is not None and submission.unit_id is None:
            area = db.session.get(Area, submission.area_id)
            submission.unit_id = area.unit_id if area else None
        return
    within = public_settings(scheme_key).locate_within_m
    area = area_at(scheme_key, float(where["lat"]), float(where["lng"]), within)
    if area is not None:
        submission.area_id, submission.unit_id = area.id, area.unit_id or submission.unit_id


# -- tracking -----------------------------------------------------------------------------------------------------

def find_report(code: str | None) -> PublicReport:
    clean = engine.code_to_look_up(code)
    report = db.session.scalar(select(PublicReport).filter_by(code=clean)) if clean else None
    if report is None:
        raise NotFound(_("No report has this code. Check it and try again."))
    return report


@dataclass
class Step:
    at: dt.datetime
    state: str


def status_of(report: PublicReport) -> dict[str, Any]:
    """What anyone with the code may see: the public name of the state, the responsible unit, the deadline,
    the timeline, and (once approved by a moderator) the description and the photos before and after.
    Never the reporter, the internal notes or who did what."""
    case = report.case
    spec = workflow.workflow_of(case)
    state = spec.states.get(case.state)
    running = [d for d in case.deadlines if d.stopped_at is None]
    steps, last = [], None
    for event in case.events:
        target = spec.states.get(event.to_state) if event.to_state else None
        name = (target.public_name or target.name) if target else None
        if name and name != last:
            steps.append(Step(event.at, name))
            last = name
    approved = report.moderation == "approved"
    settings = public_settings(report.scheme_key)
    return {
        "id": report.id, "case": case, "state": (state.public_name or state.name) if state else case.state,
        "state_kind": case.state_kind, "outcome": case.outcome,
        "status": engine.open311_status(case.state_kind),
        "unit": case.unit.name if case.unit else None,
        "area": case.area.name if case.area else None,
        "category": case.category, "deadline": min((d.due_at for d in running), default=None),
        "steps": steps, "approved": approved, "moderation": report.moderation,
        "description": case.data.get("description") if approved else None,
        "photos_before": public_photo_ids(case, "before") if approved else [],
        "photos_after": public_photo_ids(case, "after") if approved else [],
        "reply": public_reply(case, spec) if approved else None,
        "followup": followup_state(report), "actions": workflow.public_actions(case),
        "satisfaction": settings.satisfaction,
        "created_at": report.created_at, "updated_at": case.updated_at,
    }


def public_reply(case: Case, flow: Any = None) -> str | None:
    """The latest official reply: the text of a field a step's form marks `public` (what was done, 处理结果),
    written by staff on a later step than the report itself; None while there is none. A step that sends the
    work back (`counts_as: rework`, `reopen`) withdraws the reply before it: what was found not done is not
    the answer."""
    flow = flow or workflow.workflow_of(case)
    reply = None
    for event in case.events:
        step = flow.transition(event.transition) if event.transition else None
        if step is not None and step.counts_as & {"rework", "reopen"}:
            reply = None
        if event.submission is None or event.submission_id == case.submission_id:
            continue
        spec = form_spec_of(event.submission.definition_version)
        for f in spec.top_level():
            value = event.submission.data.get(f.id)
            if f.public and not f.kind.is_file and isinstance(value, str) and value.strip():
                reply = value.strip()
    return reply


def public_photo_ids(case: Case, which: str) -> list[int]:
    """Upload ids of the photos a workflow's forms mark `public` (before: the report; after: later steps)."""
    ids: list[int] = []
    report_spec = form_spec_of(case.submission.definition_version) if case.submission else None
    if which == "before" and report_spec is not None:
        for f in report_spec.top_level():
            if f.kind.is_file and f.public:
                ids += [int(i) for i in case.submission.data.get(f.id) or []]
    if which == "after":
        for event in case.events:
            if event.submission is None or event.submission_id == case.submission_id:
                continue  # the report itself is "before"
            spec = form_spec_of(event.submission.definition_version)
            for f in spec.top_level():
                if f.kind.is_file and f.public:
                    ids += [int(i) for i in event.submission.data.get(f.id) or []]
    return ids


def find_public_report(report_id: int) -> PublicReport:
    """A report by its number, which anyone may know (Open311 lists them all): it grants reading, never acting."""
    report = db.session.get(PublicReport, report_id)
    if report is None:
        raise NotFound(_("No such report."))
    return report


def public_photo(report_id: int, upload_id: int) -> Upload:
    """A photo of a report, for anyone, once approved: the stored copy has no EXIF. Addressed by the report's
    number, so a photo's address never carries the tracking code."""
    status = status_of(find_public_report(report_id))
    if upload_id not in status["photos_before"] + status["photos_after"]:
        raise NotFound(_("No such photo."))
    upload = db.session.get(Upload, upload_id)
    if upload is None:
        raise NotFound(_("No such photo."))
    return upload


# -- the follow-up: solved or not, and how satisfied --------------------------------------------------------

def followup_state(report: PublicReport) -> dict[str, Any]:
    case = report.case
    days = public_settings(report.scheme_key).followup_days
    since = (utcnow() - case.closed_at).total_seconds() / 86400 if case.closed_at else None
    return {"open": engine.followup_open(case.state_kind, case.outcome, since, int(days),
                                         report.followup_at is not None),
            "answered": report.followup_at is not None, "confirmed": report.confirmed,
            "satisfaction": report.satisfaction,
            "can_reopen": any("reopen" in t.counts_as for t in workflow.public_actions(case))}


def answer_followup(report: PublicReport, solved: bool, satisfaction: str | None, note: str = "",
                    expected_version: int | None = None) -> PublicReport:
    """The reporter's one answer: solved (confirmed) or not (the workflow's reopen step, when it has one),
    and how satisfied; refused once answered or after the window."""
    # Two answers sent at once: the case, then the report, are locked and read afresh before the check.
    workflow.lock_case(report.case)
    db.session.refresh(report, with_for_update={"key_share": True})
    state = followup_state(report)
    if not state["open"]:
        raise Conflict(_("This report cannot be answered now: it is not solved yet, the time to answer has "
                         "passed, or it was answered already."))
    choices = {c["value"] for c in public_settings(report.scheme_key).satisfaction}
    if choices and satisfaction not in choices:
        raise DomainError(_("Say how satisfied you are."))
    if not solved:
        step = next((t for t in workflow.public_actions(report.case) if "reopen" in t.counts_as), None)
        if step is None:
            raise Conflict(_("This district's workflow does not reopen cases from the public."))
        workflow.fire_public(report.case, step.id, expected_version,
                             note=_("The reporter says the problem is not solved."))
    report.confirmed = "solved" if solved else "reopened"
    report.satisfaction = satisfaction if choices else None
    report.followup_note = engine.public_text(note, 1000) or None
    report.followup_at = utcnow()
    db.session.flush()
    record_audit("public.followup", "case", report.case_id, scheme_key=report.scheme_key,
                 after={"confirmed": report.confirmed, "satisfaction": report.satisfaction})
    return report


def take_public_step(report: PublicReport, transition_id: str, expected_version: int | None) -> Case:
    """Another step the workflow lets the reporter take (withdraw a report not yet registered). Reopening is
    only ever the follow-up's answer: once, in its window, with the satisfaction."""
    step = next((t for t in workflow.public_actions(report.case) if t.id == transition_id), None)
    if step is None or "reopen" in step.counts_as:
        raise PermissionDenied(_("You cannot do this to this case now."))
    return workflow.fire_public(report.case, transition_id, expected_version)


@metric_source("satisfaction_rate", reads=("workflow", "categories"), doc=(
    "the share of the public's follow-up answers given in the period that count as satisfied (the scheme's "
    "`public.satisfaction` choices marked `satisfied`), by the unit of each case; optional `workflow` and "
    "`categories`; none without answers"))
def satisfaction_rates(scheme_key: str, metric: dict, period: Any, unit_ids: list[int]) -> dict[int, Any]:
    """Assessment metric `satisfaction_rate`: per unit, the share of follow-up answers given in the period
    that count as satisfied (None without answers); `workflow` and `categories` narrow the cases."""
    begin, finish = period_bounds(scheme_key, period)
    satisfied = {c["value"] for c in public_settings(scheme_key).satisfaction if c.get("satisfied")}
    query = (select(Case.unit_id, PublicReport.satisfaction).join(Case, Case.id == PublicReport.case_id)
             .where(PublicReport.scheme_key == scheme_key, PublicReport.satisfaction.is_not(None),
                    PublicReport.followup_at >= begin, PublicReport.followup_at < finish,
                    Case.unit_id.in_(unit_ids)))
    if metric.get("workflow"):
        query = query.where(Case.workflow_key == metric["workflow"])
    if metric.get("categories"):
        query = query.where(Case.category.in_(categories_within(scheme_key, metric["categories"])))
    answers: dict[int, list[str]] = defaultdict(list)
    for unit_id, answer in db.session.execute(query):
        answers[unit_id].append(answer)
    return {unit_id: engine.satisfaction_rate(answers.get(unit_id, []), satisfied) for unit_id in unit_ids}


# -- moderation ---------------------------------------------------------------------------------------------------

def moderation_queue(user: AnyUser, scheme_key: str, state: str = "pending", limit: int = 100) -> list[PublicReport]:
    if not permissions.can_moderate(user, scheme_key):
        raise PermissionDenied(_("You may not moderate this district's public reports."))
    return list(db.session.scalars(select(PublicReport).filter_by(scheme_key=scheme_key, moderation=state)
                                   .order_by(PublicReport.id).limit(limit)))


def moderate(user: AnyUser, report: PublicReport, decision: str, expose: bool = False, note: str = "") -> PublicReport:
    """Approve (the text and photos may show publicly, and on the exposure list when `expose`) or reject."""
    if not permissions.can_moderate(user, report.scheme_key):
        raise PermissionDenied(_("You may not moderate this district's public reports."))
    if decision not in ("approved", "rejected"):
        raise DomainError(_("Approve or reject."))
    before = {"moderation": report.moderation, "exposed": report.exposed}
    report.moderation, report.exposed = decision, bool(expose and decision == "approved")
    report.moderated_by_id, report.moderated_at = user.id, utcnow()
    report.moderation_note = engine.public_text(note, 1000) or None
    db.session.flush()
    record_audit("public.moderate", "case", report.case_id, user=user, scheme_key=report.scheme_key,
                 before=before, after={"moderation": decision, "exposed": report.exposed})
    return report


def reporter_contact(user: AnyUser, report: PublicReport) -> dict[str, str | None]:
    """The reporter's name and phone: in clear for those who call reporters back (dispatchers of the case's
    unit), masked for everyone else."""
    if permissions.can_contact_reporter(user, report.case):
        return {"name": unseal(report.name_sealed), "phone": unseal(report.phone_sealed),
                "email": unseal(report.email_sealed), "masked": False}
    return {"name": engine.mask_name(unseal(report.name_sealed)), "phone": report.phone_masked,
            "email": engine.mask_email(unseal(report.email_sealed)), "masked": True}


def followup_summary(report: PublicReport) -> str | None:
    """The reporter's answer in words (solved or not, and the satisfaction label), for the case page."""
    if report.followup_at is None:
        return None
    from ..web.i18n import tr

    labels = {c["value"]: tr(c["label"]) for c in public_settings(report.scheme_key).satisfaction}
    parts = [_("solved") if report.confirmed == "solved" else _("not solved")]
    if report.satisfaction:
        parts.append(labels.get(report.satisfaction, report.satisfaction))
    return ", ".join(parts)


def report_of_case(case: Case) -> PublicReport | None:
    return db.session.scalar(select(PublicReport).filter_by(case_id=case.id))


@workflow.case_page.connect
def _case_page_panel(case: Case, user: AnyUser = None) -> dict[str, Any]:
    """The case page's public report panel: the report, the reporter's contact for those who call back, and
    the answer to the follow-up."""
    report = report_of_case(case)
    if report is None:
        return {}
    return {"public_report": report, "reporter": reporter_contact(user, report), "followup": followup_summary(report)}


# -- the district's public lists ------------------------------------------------------------------------------------

# -- maps --------------------------------------------------------------------------------------------------------

def place_at(scheme_key: str, lat: float, lng: float) -> dict[str, str] | None:
    """The road or area a position lies in (or the nearest within the district's `locate_within_m`): its key,
    name and shape, which anyone may see on its board. What a form's map proposes as its pin moves."""
    scheme = scheme_in_force(scheme_key)
    if scheme is None:
        raise NotFound(_("No such district."))
    area = area_at(scheme_key, lat, lng, scheme.public.locate_within_m)
    return _place(area) if area is not None else None


def place_named(scheme_key: str, key: str) -> dict[str, Any] | None:
    """A road or area by its key, with its shape: what a form's map shows when it is picked from the list."""
    area = db.session.scalar(select(Area).where(Area.scheme_key == scheme_key, Area.key == key[:64],
                                                Area.active.is_(True)))
    return _place(area) if area is not None else None


def _place(area: Area) -> dict[str, Any]:
    return {"key": area.key, "name": tr(area.name), "geometry": area.geometry}


PUBLIC_MAP_LIMIT = 5000  # reports a public map shows at most (the newest)


def public_map_points(scheme_key: str, today: dt.datetime | None = None) -> dict[str, Any]:
    """The public map's reports: those a moderator approved, of the district's `public_map_days`, each at the
    centre of its `public_map_precision_m` square, with its category and public state and a link to its page.
    No one's name, phone, description or exact position."""
    scheme = scheme_in_force(scheme_key)
    if scheme is None or not scheme.map.public_map:
        raise NotFound(_("This district publishes no map."))
    settings = scheme.map
    since = (today or utcnow()) - dt.timedelta(days=settings.public_map_days)
    lat, lng = Submission.location["lat"].as_float().label("lat"), Submission.location["lng"].as_float().label("lng")
    rows = db.session.execute(
        select(PublicReport.id, Case.category, Case.state, Case.state_kind, Case.definition_version_id, lat, lng)
        .join(Case, Case.id == PublicReport.case_id).join(Submission, Submission.id == Case.submission_id)
        .where(PublicReport.scheme_key == scheme_key, PublicReport.moderation == "approved",
               PublicReport.created_at >= since, lat.is_not(None), lng.is_not(None))
        .order_by(PublicReport.id.desc()).limit(PUBLIC_MAP_LIMIT)).all()
    labels = workflow.category_labels(scheme_key)
    states = workflow.public_state_names(scheme_key, {row.definition_version_id for row in rows})
    features = []
    for row in rows:
        if row.lat is None or row.lng is None or not (-90 <= row.lat <= 90 and -180 <= row.lng <= 180):
            continue
        at_lat, at_lng = engine.approximate(row.lat, row.lng, settings.public_map_precision_m)
        state = states.get((row.definition_version_id, row.state)) or row.state
        words = " · ".join(w for w in (tr(labels.get(row.category)) if row.category else "", tr(state)) if w)
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [at_lng, at_lat]},
                         "properties": {"title": words, "url": url_for("public.view_report", report_id=row.id),
                                        "tone": "done" if row.state_kind == "final" else "ok"}})
    return {"type": "FeatureCollection", "features": features}


def exposed(scheme_key: str, limit: int = 50) -> list[dict[str, Any]]:
    """The exposure list: problems moderators chose to show, newest first, with their state."""
    if not public_settings(scheme_key).exposed_list:
        raise NotFound(_("This district publishes no such list."))
    rows = db.session.scalars(select(PublicReport).filter_by(scheme_key=scheme_key, moderation="approved",
                                                             exposed=True)
                              .order_by(PublicReport.id.desc()).limit(limit))
    return [status_of(r) for r in rows]


def praised(scheme_key: str, today: dt.date | None = None, limit: int = 10) -> tuple[int, list[dict[str, Any]]]:
    """The praise list: units by the satisfied answers of their reporters over the last days."""
    settings = public_settings(scheme_key)
    if not settings.praise_list:
        raise NotFound(_("This district publishes no such list."))
    days = settings.praise_days
    satisfied = [c["value"] for c in settings.satisfaction if c.get("satisfied")]
    since = utcnow() - dt.timedelta(days=days)
    rows = db.session.execute(
        select(Case.unit_id, func.count(PublicReport.id))
        .join(Case, Case.id == PublicReport.case_id)
        .where(PublicReport.scheme_key == scheme_key, PublicReport.followup_at >= since,
               PublicReport.satisfaction.in_(satisfied or [""]), Case.unit_id.is_not(None))
        .group_by(Case.unit_id).order_by(func.count(PublicReport.id).desc()).limit(limit)).all()
    units = {u.id: u for u in db.session.scalars(select(Unit).where(Unit.id.in_([r[0] for r in rows] or [-1])))}
    return days, [{"unit": units[unit_id], "count": count} for unit_id, count in rows if unit_id in units]
