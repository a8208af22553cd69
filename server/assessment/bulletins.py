"""What a period publishes: the bulletin (its page, and its PDF made by a job), a comparison with another scheme
version, the public flags."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flask import render_template, url_for
from flask_babel import gettext as _

from ..auth import permissions
from ..core.errors import Conflict, NotFound, PermissionDenied
from ..core.spreadsheets import XLSX_TYPE, write_xlsx
from ..definitions.clock import district_today
from ..definitions.service import scheme_in_force
from ..extensions import db
from ..jobs.service import JOB_KINDS, JobKind, JobResult, Progress, start_job
from ..org.models import Unit
from ..pdf.engine import render_pdf
from ..web.i18n import tr
from . import charts
from .engine import Grade
from .models import AssessmentPeriod, AssessmentRevision, AssessmentScore
from .scoring import latest_published, published_scores, sheet_spec_of_row
from .service import draft, get_period, sheet_spec_of, visible

if TYPE_CHECKING:
    from ..auth.models import AnyUser
    from ..jobs.models import Job

BULLETIN_PDF = "assessment.bulletin_pdf"


def bulletin(period: AssessmentPeriod, revision: int | None = None, earlier: int = 5) -> dict[str, Any]:
    """What a bulletin shows for a published revision: rankings per group, flags, grade counts, the
    change since the previous period and the group averages over the last periods."""
    if not period.revision:
        raise Conflict(_("This period is not published yet."))
    sheet = sheet_spec_of(period)
    scores = published_scores(period, revision)
    scheme = scheme_in_force(period.scheme_key)
    group_names = {key: group.get("name") for key, group in scheme.unit_groups.items()} if scheme else {}
    before = list(db.session.scalars(db.select(AssessmentPeriod).where(
        AssessmentPeriod.scheme_key == period.scheme_key, AssessmentPeriod.sheet_key == period.sheet_key,
        AssessmentPeriod.starts_on < period.starts_on, AssessmentPeriod.revision > 0)
        .order_by(AssessmentPeriod.starts_on.desc()).limit(earlier)))[::-1]
    previous = {s.subject_id: Decimal(s.total) for s in published_scores(before[-1])} if before else {}
    groups: dict[str, list[AssessmentScore]] = defaultdict(list)
    for score in scores:
        for group_id in score.ranks:
            groups[group_id].append(score)
    order = list(sheet.ranking.get("groups") or [])
    ranking = [{"id": group_id, "name": group_names.get(group_id.split(":")[0]),
                "rows": sorted(rows, key=lambda s, g=group_id: (s.ranks[g], s.unit.path if s.unit else "",
                                                                 s.person_name or ""))}
               for group_id, rows in sorted(groups.items(), key=lambda kv: (
                   order.index(kv[0].split(":")[0]) if kv[0].split(":")[0] in order else len(order), kv[0]))]
    grade_counts = [(g, sum(1 for s in scores if s.grade == g.id)) for g in sheet.grades]
    flagged = [(f, [s for s in scores if f.id in s.flags]) for f in sheet.flags]
    consequences = streak_actions(scores)
    history = [*before, period]
    trend_labels = [p.period_key for p in history]
    trend = []
    for group_id, rows in groups.items():
        members = {s.subject_id for s in rows}
        series = []
        for row in history:
            totals = [Decimal(s.total) for s in (scores if row is period else published_scores(row))
                      if s.subject_id in members]
            series.append(sum(totals) / len(totals) if totals else None)
        trend.append((group_names.get(group_id.split(":")[0]), series))
    return {"period": period, "sheet": sheet, "scores": scores, "ranking": ranking, "grade_counts": grade_counts,
            "flagged": flagged, "consequences": consequences, "previous": previous, "trend_labels": trend_labels,
            "trend": trend,
            "revision": revision or period.revision,
            "provisional": bool(db.session.scalar(db.select(AssessmentRevision.provisional).filter_by(
                period_id=period.id, number=revision or period.revision)))}


def bulletin_for(user: AnyUser, period: AssessmentPeriod, revision: int | None = None
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bulletin as the person sees it, and its charts (SVG, and the data ECharts draws on the page): for
    those who see every unit's scores."""
    data = bulletin(period, revision)
    data["scores"] = visible(user, period, data["scores"], lambda s: s.subject)
    if len(data["scores"]) < len(published_scores(period, data["revision"])):
        raise PermissionDenied(_("The bulletin is for those who see every unit's scores."))
    grade_colour = {grade.id: grade.color for grade in data["sheet"].grades}
    top = float(data["sheet"].total)
    bars, bar_data = {}, {}
    for group in data["ranking"]:
        rows = [(tr(s.subject.name), s.total, grade_colour.get(s.grade)) for s in group["rows"]]
        title = tr(group["name"]) if group["name"] else ""
        bars[group["id"]] = charts.bar_chart(rows, top=top, title=title)
        bar_data[group["id"]] = charts.bar_data(rows, top=top, title=title)
    series = [(tr(name) or "", values) for name, values in data["trend"]]
    trend = charts.line_chart(data["trend_labels"], series, low=50, high=top)
    return data, {"bars": bars, "trend": trend, "bar_data": bar_data,
                  "trend_data": charts.line_data(data["trend_labels"], series, low=50, high=top)}


def start_bulletin_pdf(user: AnyUser, period: AssessmentPeriod, revision: int | None = None) -> Job:
    """Queue the bulletin's PDF (a published revision: the latest by default)."""
    if not period.revision:
        raise Conflict(_("This period is not published yet."))
    number = revision if revision and 1 <= revision <= period.revision else period.revision
    return start_job(user, BULLETIN_PDF, period.scheme_key, {"period": period.id, "revision": number})


def print_bulletin(job: Job, user: AnyUser, progress: Progress) -> JobResult:
    """The bulletin's PDF: read and laid out, then the reading ended before WeasyPrint draws it."""
    period = get_period(user, job.params["period"])
    data, drawn = bulletin_for(user, period, job.params["revision"])
    progress(1, 3)
    html = render_template("assessment/bulletin_print.html", b=data, charts=drawn,
                           printed=district_today(period.scheme_key))
    progress(2, 3)
    name = f"bulletin-{period.sheet_key}-{period.period_key}-r{data['revision']}.pdf"
    return JobResult(render_pdf(html), name, "application/pdf")


def _bulletin_page(job: Job) -> tuple[str, str]:
    return _("the bulletin"), url_for("assessment.bulletin", period_id=job.params["period"],
                                      revision=job.params["revision"])


JOB_KINDS.add(BULLETIN_PDF, JobKind(title=lambda: _("Bulletin (PDF)"),
                                    may_start=lambda user, scheme_key, _params: permissions.can_view_all_scores(
                                        user, scheme_key),
                                    run=print_bulletin, origin=_bulletin_page))


@dataclass
class Comparison:
    """One unit on the period's sheet and on another version of it."""

    unit: Unit
    before: Decimal | None  # None: not scored on that version (a sheet scored per area: no area of the kind)
    after: Decimal | None
    rank_before: int | None
    rank_after: int | None
    grade_before: Grade | None
    grade_after: Grade | None

    @property
    def change(self) -> Decimal | None:
        return self.after - self.before if self.after is not None and self.before is not None else None


def compare_versions(user: AnyUser, period: AssessmentPeriod, scheme_version_id: int) -> list[Comparison]:
    """A dry run of another stored version of the period's sheet on this period's data and marks: unit by unit,
    how the score, grade and rank would change. Nothing is stored."""
    row = compared_sheet(user, period, scheme_version_id)
    before = {r.unit.id: r for r in draft(period)}
    after = {r.unit.id: r for r in draft(period, sheet_spec_of_row(row))}
    out = []
    for unit_id in [*before, *(u for u in after if u not in before)]:
        old, new = before.get(unit_id), after.get(unit_id)
        unit = (old or new).unit
        out.append(Comparison(unit, old.total if old else None, new.total if new else None,
                              min(old.ranks.values(), default=None) if old else None,
                              min(new.ranks.values(), default=None) if new else None,
                              old.grade if old else None, new.grade if new else None))
    return out


def compared_sheet(user: AnyUser, period: AssessmentPeriod, scheme_version_id: int) -> Any:
    """The other version's sheet a dry run scores the period on, for the office only."""
    from ..definitions.service import get_scheme_version

    if not permissions.can_run_assessment(user, period.scheme_key):
        raise PermissionDenied(_("You may not run this district's assessment."))
    version = get_scheme_version(scheme_version_id)
    row = version.member("score_sheet", period.sheet_key) if version.scheme_key == period.scheme_key else None
    if row is None:
        raise NotFound(_("That scheme version has no such score sheet."))
    return row


# A dry run scores every unit twice: past a large district's size it is a job, whose file lists every unit.
COMPARE = "assessment.comparison"


def start_comparison(user: AnyUser, period: AssessmentPeriod, scheme_version_id: int) -> Job:
    compared_sheet(user, period, scheme_version_id)  # refused at once if it may not run
    return start_job(user, COMPARE, period.scheme_key, {"period": period.id, "version": scheme_version_id})


def run_comparison(job: Job, user: AnyUser, progress: Progress) -> JobResult:
    period = get_period(user, job.params["period"])
    progress(0, 1)
    rows = compare_versions(user, period, job.params["version"])
    header = [_("Unit"), _("Score now"), _("Score then"), _("Change"), _("Rank now"), _("Rank then"),
              _("Grade now"), _("Grade then")]
    table = [header, *([tr(r.unit.name), r.before, r.after, r.change, r.rank_before, r.rank_after,
                        tr(r.grade_before.name) if r.grade_before else "", tr(r.grade_after.name) if r.grade_after
                        else ""] for r in rows)]
    moved = sum(1 for r in rows if r.change)
    regraded = sum(1 for r in rows if (r.grade_before and r.grade_before.id) != (r.grade_after and r.grade_after.id))
    name = f"comparison-{period.sheet_key}-{period.period_key}-v{job.params['version']}.xlsx"
    return JobResult(write_xlsx({period.period_key: table}), name, XLSX_TYPE,
                     summary=_("%(n)s units scored on both versions: %(moved)s change their score, %(regraded)s "
                               "their grade.", n=len(rows), moved=moved, regraded=regraded))


def _comparison_page(job: Job) -> tuple[str, str]:
    return _("the comparison"), url_for("assessment.compare", period_id=job.params["period"],
                                        version=job.params["version"])


JOB_KINDS.add(COMPARE, JobKind(title=lambda: _("Trying another version of the sheet"),
                               may_start=lambda user, scheme_key, _params: permissions.can_run_assessment(
                                   user, scheme_key),
                               run=run_comparison, origin=_comparison_page))


def streak_actions(scores: list[AssessmentScore]) -> list[tuple[dict[str, Any], list[AssessmentScore]]]:
    """The streak rules a published revision completed, each with its action and the units it applies to, in
    the sheet's order of first appearance."""
    by_id: dict[str, tuple[dict[str, Any], list[AssessmentScore]]] = {}
    for score in scores:
        for action in score.actions or []:
            by_id.setdefault(action["id"], (action, []))[1].append(score)
    return list(by_id.values())


def public_scores(scheme_key: str) -> list[dict[str, Any]]:
    """For the public page: each sheet's last published period, its ranking groups with the public units'
    scores, grades and ranks (`public.scores_list`)."""
    scheme = scheme_in_force(scheme_key)
    if scheme is None or not scheme.public.scores_list:
        raise NotFound(_("This district does not publish its scores."))
    out = []
    for period in latest_published(scheme_key):
        if sheet_spec_of(period).assessed.get("tiers"):
            continue  # people's results are not on the public lists
        shown = bulletin(period, earlier=0)
        groups = [{**group, "rows": [s for s in group["rows"] if s.unit and s.unit.public]}  # units only
                  for group in shown["ranking"]]
        out.append({"sheet": shown["sheet"], "period": period, "provisional": shown["provisional"],
                    "groups": [g for g in groups if g["rows"]]})
    return out


def public_flags(scheme_key: str) -> list[dict[str, Any]]:
    """For the public page: each sheet's last published period and, per flag, the public units holding it."""
    scheme = scheme_in_force(scheme_key)
    if scheme is None or not scheme.public.flags_list:
        raise NotFound(_("This district does not publish its flags."))
    out = []
    for period in latest_published(scheme_key):
        sheet = sheet_spec_of(period)
        if sheet.assessed.get("tiers"):
            continue  # people's results are not on the public lists
        scores = [s for s in published_scores(period) if s.unit and s.unit.public]  # (units only: no people)
        flags = [(f, [s.unit for s in scores if f.id in s.flags]) for f in sheet.flags]
        out.append({"sheet": sheet, "period": period, "flags": [(f, units) for f, units in flags if units],
                    "consequences": [(a, [s.unit for s in held]) for a, held in streak_actions(scores)]})
    return out
