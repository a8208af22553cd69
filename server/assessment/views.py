"""Assessment pages: periods, draft and published scores (by revision), an assessor's marks for a unit's item
with the reason and evidence photos, appeals, publication and corrections."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from flask import Blueprint, abort, flash, g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import BooleanField, DecimalField, HiddenField, MultipleFileField, SelectField, TextAreaField
from wtforms.fields import DateField
from wtforms.validators import InputRequired, NumberRange, Optional

from ..auth import permissions
from ..auth.access import public
from ..core.clock import utcnow
from ..core.errors import Conflict, DomainError, NotFound, PermissionDenied
from ..definitions.clock import district_today
from ..definitions.service import current_version, scheme_or_404
from ..extensions import db
from ..forms import service as forms_service
from ..org.models import Unit
from ..web.forms import Form
from ..web.i18n import tr
from ..web.limits import public_limits
from ..web.params import Paged, by_name, parse_id, parse_search
from . import appeals, bulletins, drafts, engine, publishing, scoring, service
from . import dashboard as leaders
from .models import AssessmentAppeal, AssessmentDraft, AssessmentPeriod

if TYPE_CHECKING:
    from ..auth.models import AnyUser

bp = Blueprint("assessment", __name__, template_folder="templates", url_prefix="/assess")

EVIDENCE = "assessment-"  # upload token prefix: assessment-<period id>-<unit id>


@bp.record_once
def _register(state) -> None:  # noqa: ANN001
    forms_service.UPLOAD_VIEWERS[EVIDENCE] = _may_see_evidence
    forms_service.UPLOAD_HOLDERS[EVIDENCE] = appeals.evidence_in_use


def _may_see_evidence(user: AnyUser, upload: Any) -> bool:
    """Evidence photos are seen by whoever sees that unit's scores, assesses it, or runs the assessment."""
    try:
        period_id, unit_id = (int(x) for x in upload.token[len(EVIDENCE):].split("-")[:2])
    except ValueError:
        return False
    period, unit = db.session.get(AssessmentPeriod, period_id), db.session.get(Unit, unit_id)
    if period is None or unit is None or not getattr(user, "is_authenticated", False):
        return False
    return (upload.user_id == user.id or permissions.can_run_assessment(user, period.scheme_key)
            or permissions.can_assess_unit(user, unit) or permissions.can_view_unit_scores(user, unit))


class OpenForm(Form):
    sheet = SelectField(_l("Score sheet"), validators=[InputRequired()])
    day = DateField(_l("A day in the period"), validators=[InputRequired()])


class StepForm(Form):
    """Open appeals or publish: the page's version, so that a stale page is refused."""

    version = HiddenField()
    reason = TextAreaField(_l("Why (for a correction)"), validators=[Optional()])
    close_appeals = BooleanField(_l("Publish now, closing the appeal window"))
    provisional = BooleanField(_l("I understand: publish these scores as provisional"))


class AppealForm(Form):
    item = SelectField(_l("Item"), validators=[InputRequired()])
    text = TextAreaField(_l("Why the deduction is wrong"), validators=[InputRequired()])


class DecideForm(Form):
    decision = SelectField(_l("Decision"), validators=[InputRequired()])
    note = TextAreaField(_l("Note"), validators=[Optional()])


def _period(period_id: int) -> AssessmentPeriod:
    """The period (if the person may see it); its district is the page's (navigation, breadcrumbs)."""
    row = service.get_period(current_user, period_id)
    g.district = row.scheme_key
    return row


def _decide_form() -> DecideForm:
    form = DecideForm()
    form.decision.choices = [("rejected", _("rejected")), ("upheld", _("upheld"))]
    return form


def _version(form: StepForm) -> int | None:
    return int(form.version.data) if (form.version.data or "").isdigit() else None


@bp.route("/<scheme_key>/", methods=["GET", "POST"])
def periods(scheme_key: str):
    rows = service.list_periods(current_user, scheme_key)
    version = current_version(scheme_key)
    sheets = [(row.key, row) for row in (version.members if version else []) if row.kind == "score_sheet"]
    form = OpenForm()
    form.sheet.choices = [(key, tr(row.data.get("name"))) for key, row in sheets]
    if request.method == "POST" and form.validate_on_submit():
        try:
            period = service.open_period(current_user, scheme_key, form.sheet.data, form.day.data)
        except Conflict as exc:
            flash(str(exc), "error")
        else:
            db.session.commit()
            return redirect(url_for("assessment.period", period_id=period.id), code=303)
    combinations = [(key, c["id"], c.get("name")) for key, row in sheets for c in row.data.get("combine", [])
                    ] if permissions.can_view_all_scores(current_user, scheme_key) else []
    return render_template("assessment/periods.html", scheme_key=scheme_key, periods=rows, form=form,
                           combinations=combinations, can_run=permissions.can_run_assessment(current_user, scheme_key))


@bp.get("/<scheme_key>/combined/<sheet_id>/<combine_id>")
def combined(scheme_key: str, sheet_id: str, combine_id: str):
    """A longer period's score from a `combine` formula (the year from the months and the year-end check),
    with the vetoes read on that period's numbers; `?on=` picks the period (default: the current one)."""

    if not permissions.can_view_all_scores(current_user, scheme_key):
        raise PermissionDenied(_("You may not view this assessment."))
    try:
        day = dt.date.fromisoformat(request.args["on"]) if request.args.get("on") else district_today(scheme_key)
    except ValueError:
        abort(400)
    _row, sheet = scoring.sheet_of(scheme_key, sheet_id)
    rule = next((c for c in sheet.combine if c["id"] == combine_id), None)
    span, rows = scoring.combined_scores(scheme_key, sheet_id, combine_id, day)
    ranks = engine.rank({r.unit.id: r.score for r in rows if r.score is not None})
    rows.sort(key=lambda r: (r.unit.id not in ranks, ranks.get(r.unit.id, 0)))
    names = [sheet_id, *rule.get("sheets", [])]
    titles = {key: tr(row.data.get("name")) for key, row in (
        (m.key, m) for m in current_version(scheme_key).members if m.kind == "score_sheet")}
    banded = engine.combined_bands(sheet, rule)
    paid = banded.funding is not None or any(f.amount is not None for f in banded.flags)
    return render_template("assessment/combined.html", scheme_key=scheme_key, sheet=sheet, rule=rule, span=span,
                           rows=rows, ranks=ranks, names=names, titles=titles, banded=banded, paid=paid,
                           earlier=span.start - dt.timedelta(days=1), later=span.end + dt.timedelta(days=1))


def _visible(period: AssessmentPeriod, rows: list, unit_of: Any) -> list:
    return service.visible(current_user, period, rows, unit_of)


UNITS_SHOWN = 100  # rows of a period's page at once


@bp.get("/period/<int:period_id>")
def period(period_id: int):
    row = _period(period_id)
    sheet = service.sheet_spec_of(row)
    revision = request.args.get("revision", type=int)
    # Ten thousand units are not one page: the rows are found by name and shown a page at a time.
    q = parse_search(request.args.get("q"))
    page = parse_id(request.args.get("page"))
    if row.revision and (revision is None or 1 <= revision <= row.revision):
        scores = _visible(row, scoring.published_scores(row, revision), lambda s: s.subject)
        shown = Paged.of(by_name(scores, q, lambda s: s.subject.name), page, UNITS_SHOWN)
        worked = None
    else:
        scores = None
        worked, shown = drafts.draft_page(current_user, row, q, page, UNITS_SHOWN)
    appeals = _visible(row, list(db.session.scalars(db.select(AssessmentAppeal).filter_by(period_id=row.id)
                                                    .order_by(AssessmentAppeal.id))), lambda a: a.unit)
    ids = {s.subject_id for s in shown.rows if isinstance(s.subject_id, int)}
    units = list(db.session.scalars(db.select(Unit).where(Unit.id.in_(ids)))) if ids else []
    markable = {u.id: service.markable(current_user, row, u) for u in units}
    appealable = ({u.id for u in units if permissions.can_appeal(current_user, u, sheet.appeal_roles)}
                  if row.state == "appeal" else set())
    return render_template("assessment/period.html", period=row, sheet=sheet, scores=scores, worked=worked,
                           shown_rows=shown, q=q, markable=markable, appealable=appealable,
                           today=district_today(row.scheme_key),
                           revision=revision or row.revision, appeals=appeals, step=StepForm(version=row.version),
                           decide=_decide_form(), can_run=permissions.can_run_assessment(current_user, row.scheme_key),
                           appeal_rules={a.id: service.entered_rules(row, a.item_key) for a in appeals
                                         if a.decision is None},
                           shown=service.revision_of(row, revision or row.revision),
                           latest=service.latest_revision(row),
                           unfinished=drafts.unfinished(row) if can_publish(row) else [])


@bp.get("/period/<int:period_id>/draft")
def draft_status(period_id: int):
    """How the working out of a kept draft goes: the part of the period's page htmx asks for every two seconds.
    Once the job has finished, the page is loaded again (`HX-Refresh`) to show what it worked out."""
    row = _period(period_id)
    kept = db.session.get(AssessmentDraft, row.id)
    state = drafts.draft_progress(row, kept.worked_at if kept is not None else None)
    response = make_response(render_template("assessment/_draft_status.html", period=row, state=state,
                                             can_run=permissions.can_run_assessment(current_user, row.scheme_key),
                                             form=Form()))
    if state.working is None:
        response.headers["HX-Refresh"] = "true"
    return response


@bp.post("/period/<int:period_id>/draft")
def draft_again(period_id: int):
    """The office works the kept draft out again now (cases closed since count at once)."""
    row = _period(period_id)
    if not Form().validate_on_submit():
        abort(400)
    drafts.work_out_again(current_user, row)
    db.session.commit()
    flash(_("The draft is being worked out again."), "success")
    return redirect(url_for("assessment.period", period_id=row.id), code=303)


def can_publish(row: AssessmentPeriod) -> bool:
    """Whether the publish form belongs on the page: first publication, or the final one after a provisional."""
    if not permissions.can_run_assessment(current_user, row.scheme_key):
        return False
    latest = service.latest_revision(row)
    return row.state != "published" or (latest is not None and latest.provisional)


@bp.post("/period/<int:period_id>/<action>")
def step(period_id: int, action: str):
    row = _period(period_id)
    form = StepForm()
    if not form.validate_on_submit():
        abort(400)
    if action == "appeals":
        appeals.open_appeals(current_user, row, _version(form))
        message = _("Units may appeal until %(day)s.", day=row.appeal_until.isoformat())
    elif action == "publish":  # the whole district scored and frozen: a job, whose page leads back here
        job = publishing.start_publish(current_user, row, _version(form), form.reason.data or "",
                                       close_appeals=bool(form.close_appeals.data),
                                       provisional=bool(form.provisional.data))
        db.session.commit()
        return redirect(url_for("jobs.job", job_id=job.id), code=303)
    else:
        raise NotFound(_("No such step."))
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("assessment.period", period_id=row.id), code=303)


def _unit_of(row: AssessmentPeriod, unit_id: int) -> Unit:
    unit = db.session.get(Unit, unit_id)
    if unit is None or unit.scheme_key != row.scheme_key:
        raise NotFound(_("No such unit."))
    return unit


def _marks_form(fields: list[tuple[str, str]], data: dict | None) -> Form:
    class MarksForm(Form):
        reason = TextAreaField(_l("Reason"), validators=[Optional()])
        evidence = MultipleFileField(_l("Evidence photos"))

    for name, label in fields:
        setattr(MarksForm, f"r_{name}", DecimalField(tr(label) or name, places=None,
                                                      validators=[Optional(), NumberRange(0)]))
    return MarksForm(data=data)


@bp.route("/period/<int:period_id>/unit/<int:unit_id>/<item_id>", methods=["GET", "POST"])
def marks(period_id: int, unit_id: int, item_id: str):
    """An assessor's marks for one item of one unit (or the value of a manual metric)."""
    row = _period(period_id)
    unit = _unit_of(row, unit_id)
    rules = service.entered_rules(row, item_id)
    if item_id not in dict(service.markable(current_user, row, unit)):
        raise PermissionDenied(_("You may not mark this item for this unit."))
    mine = service.my_entry(current_user, row, unit, item_id)
    data = {f"r_{k}": v for k, v in (mine.values if mine else {}).items()}
    if mine:
        data["reason"] = mine.reason
    form = _marks_form(rules, data if request.method == "GET" else None)
    # Once published the office corrects (a new revision, with why); provisional results are corrected by the
    # office too, while the other assessors still give their marks as before publication.
    latest = service.latest_revision(row)
    correcting = row.state == "published" and (not (latest is not None and latest.provisional)
                                               or permissions.can_run_assessment(current_user, row.scheme_key))
    if form.validate_on_submit():
        values = {name: getattr(form, f"r_{name}").data for name, _label in rules}
        try:  # who may mark here was checked above, before any file is kept
            evidence = [] if correcting else [
                forms_service.store_upload(current_user, f, f"{EVIDENCE}{row.id}-{unit.id}", item_id).id
                for f in form.evidence.data or [] if getattr(f, "filename", "")]
            if correcting:  # the whole district published again: a job, whose page leads back to the period
                job = publishing.start_correction(current_user, row, unit.id, item_id, values,
                                                  form.reason.data or "")
                db.session.commit()
                return redirect(url_for("jobs.job", job_id=job.id), code=303)
            else:
                service.enter_marks(current_user, row, unit, item_id, values, form.reason.data or "",
                                    [*(mine.evidence or [] if mine else []), *evidence])
        except (PermissionDenied, NotFound, Conflict):
            raise
        except DomainError as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
        else:
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("assessment.period", period_id=row.id), code=303)
    return render_template("assessment/marks.html", period=row, unit=unit, item_id=item_id, rules=rules,
                           form=form, entry=mine, correcting=correcting,
                           item=service.item_of(row, item_id)), 400 if form.errors else 200


@bp.route("/period/<int:period_id>/marks", methods=["GET", "POST"])
def marks_grid(period_id: int):
    """An assessor's marks for every unit at once: a row per unit, a column per number, a reason per row, and
    what the row's marks take as they are typed."""
    row = _period(period_id)
    grid = service.marks_grid(current_user, row)
    typed, reasons, problems = None, None, {}
    form = StepForm()
    if request.method == "POST":  # CSRF is checked for every POST (CSRFProtect)
        typed = {(u.id, key, rule): request.form.get(f"m-{u.id}-{key}-{rule}", "")[:20]
                 for u in grid.units for key, rule, _name, _label in grid.columns if key in grid.allowed[u.id]}
        reasons = {u.id: request.form.get(f"reason-{u.id}", "")[:2000] for u in grid.units}
        problems = service.enter_marks_grid(current_user, row, grid, typed, reasons)
        if not problems:
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("assessment.marks_grid", period_id=row.id), code=303)
        db.session.rollback()
    values = typed if typed is not None else {k: "" if v is None else _plain(v) for k, v in grid.values.items()}
    totals = {u.id: service.marks_effect(row, _row_numbers(grid, u.id, values)) for u in grid.units}
    return render_template("assessment/marks_grid.html", period=row, grid=grid, values=values, form=form,
                           reasons=reasons if reasons is not None else grid.reasons, problems=problems,
                           totals=totals), 400 if problems else 200


@bp.get("/period/<int:period_id>/marks/<int:unit_id>/total")
def marks_total(period_id: int, unit_id: int):
    """A grid row's total as typed (htmx): what its marks take and give, worked out by the scoring engine."""
    row = _period(period_id)
    grid = service.marks_grid(current_user, row)
    if unit_id not in grid.allowed:
        raise PermissionDenied(_("You may not mark this unit."))
    typed = {(unit_id, key, rule): request.args.get(f"m-{unit_id}-{key}-{rule}", "")[:20]
             for key, rule, _name, _label in grid.columns if key in grid.allowed[unit_id]}
    return render_template("assessment/_marks_total.html", period=row, unit_id=unit_id,
                           total=service.marks_effect(row, _row_numbers(grid, unit_id, typed)))


def _plain(value: Any) -> str:
    """A stored number as typed: 2.0 shows as 2."""
    number = float(value)
    return str(int(number)) if number.is_integer() else str(number)


def _row_numbers(grid: service.MarksGrid, unit_id: int, values: dict) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for key, rule, _name, _label in grid.columns:
        if key in grid.allowed.get(unit_id, ()):
            out.setdefault(key, {})[rule] = values.get((unit_id, key, rule), "")
    return out


@bp.route("/period/<int:period_id>/appeal/<int:unit_id>", methods=["GET", "POST"])
def appeal(period_id: int, unit_id: int):
    row = _period(period_id)
    unit = _unit_of(row, unit_id)
    if not permissions.can_appeal(current_user, unit, service.sheet_spec_of(row).appeal_roles):  # the page too
        raise PermissionDenied(_("You may not appeal for this unit."))
    form = AppealForm()
    form.item.choices = [(i.id, tr(i.name)) for _s, i in service.sheet_spec_of(row).items()]
    closed = False
    if form.validate_on_submit():
        try:
            appeals.file_appeal(current_user, row, unit, form.item.data, form.text.data)
        except (PermissionDenied, NotFound):
            raise
        except Conflict:  # the window closed while they typed: the page says so and keeps their text to copy
            closed = True
        except DomainError as exc:
            form.form_errors.append(str(exc))
        else:
            db.session.commit()
            flash(_("Appeal filed."), "success")
            return redirect(url_for("assessment.period", period_id=row.id), code=303)
    closed = closed or not appeals.appeals_open(row)
    status = 409 if closed and request.method == "POST" else 400 if form.errors else 200
    return render_template("assessment/appeal.html", period=row, unit=unit, form=form, closed=closed), status


@bp.post("/appeal/<int:appeal_id>/decide")
def decide(appeal_id: int):
    appeal_row = db.session.get(AssessmentAppeal, appeal_id)
    if appeal_row is None:
        raise NotFound(_("No such appeal."))
    form = _decide_form()
    if not form.validate_on_submit():
        abort(400)
    row = service.get_period(current_user, appeal_row.period_id)
    values = {key: request.form.get(f"r_{key}", "") for key, _label in service.entered_rules(row, appeal_row.item_key)}
    try:
        appeals.decide_appeal(current_user, appeal_row, form.decision.data, form.note.data or "", values)
    except DomainError as exc:
        if isinstance(exc, (PermissionDenied, NotFound, Conflict)):
            raise
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
    return redirect(url_for("assessment.period", period_id=appeal_row.period_id), code=303)


@bp.get("/period/<int:period_id>/bulletin")
def bulletin(period_id: int):
    data, drawn = bulletins.bulletin_for(current_user, _period(period_id), request.args.get("revision", type=int))
    return render_template("assessment/bulletin.html", b=data, charts=drawn)


@bp.post("/period/<int:period_id>/bulletin.pdf")
def bulletin_pdf(period_id: int):
    """The bulletin's PDF, drawn by a job whose page then offers the file."""
    job = bulletins.start_bulletin_pdf(current_user, _period(period_id), request.form.get("revision", type=int))
    db.session.commit()
    return redirect(url_for("jobs.job", job_id=job.id), code=303)


@bp.get("/period/<int:period_id>/compare")
def compare(period_id: int):
    """Try another stored version of the sheet on this period before activating it."""
    from ..definitions.service import list_scheme_versions

    row = _period(period_id)
    if not permissions.can_run_assessment(current_user, row.scheme_key):
        raise PermissionDenied(_("You may not run this district's assessment."))
    versions = [v for v in list_scheme_versions(row.scheme_key) if v.member("score_sheet", row.sheet_key)]
    chosen = request.args.get("version", type=int)
    large = drafts.is_large(row)  # every unit scored twice: a job, whose file lists them
    rows = bulletins.compare_versions(current_user, row, chosen) if chosen and not large else None
    return render_template("assessment/compare.html", period=row, versions=versions, chosen=chosen, rows=rows,
                           large=large, form=Form())


@bp.post("/period/<int:period_id>/compare")
def start_compare(period_id: int):
    """A large district's dry run, as a job whose page then offers every unit's comparison as a workbook."""
    row = _period(period_id)
    if not Form().validate_on_submit():
        abort(400)
    job = bulletins.start_comparison(current_user, row, request.form.get("version", type=int) or 0)
    db.session.commit()
    return redirect(url_for("jobs.job", job_id=job.id), code=303)


@bp.get("/<scheme_key>/scores")
@public
@public_limits
def public_scores(scheme_key: str):
    """Each sheet's last published scores and grades by ranking group, when the scheme publishes them
    (`public.scores_list`); public units only."""
    return render_template("assessment/scores.html", scheme_key=scheme_key, boards=bulletins.public_scores(scheme_key))


@bp.get("/<scheme_key>/flags")
@public
@public_limits
def public_flags(scheme_key: str):
    """The red and black flags (and the other flags) of each sheet's last published period, when the scheme
    publishes them (`public.flags_list`); names of public units only, no scores."""
    return render_template("assessment/flags.html", scheme_key=scheme_key, boards=bulletins.public_flags(scheme_key))


@bp.get("/<scheme_key>/dashboard")
def dashboard(scheme_key: str):
    """For leaders: the month's figures against the last, six months of cases, cases by category and source,
    the overdue cases, who is short of patrols now, and per unit the latest published score, this month's
    case rates, overdue cases and patrols short, each with its drill-down."""
    today = district_today(scheme_key)
    now = utcnow()
    rows = leaders.dashboard(current_user, scheme_key, today, now)
    view = leaders.overview(current_user, scheme_key, today, now)
    ranked = sorted((r for r in rows if r.score is not None), key=lambda r: (-r.score, r.unit.path))
    return render_template("assessment/dashboard.html", scheme_key=scheme_key, rows=rows, ranked=ranked,
                           view=view, charts=leaders.overview_charts(view, ranked),
                           tiers=scheme_or_404(scheme_key).tiers)


@bp.get("/period/<int:period_id>/unit/<int:unit_id>")
def unit_detail(period_id: int, unit_id: int):
    """What lies behind a unit's score: deductions by rule, the marks and their evidence, cases, patrol misses."""
    row = _period(period_id)
    unit = _unit_of(row, unit_id)
    return render_template("assessment/unit.html", period=row, unit=unit,
                           d=leaders.behind_deductions(current_user, row, unit))
