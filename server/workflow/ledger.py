"""The ledger (台账) and case figures: which cases count, per unit or area; its workbook and its PDF, made by a
job (server/jobs) that the ledger page starts."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from flask import render_template, url_for
from flask_babel import gettext as _

from ..auth import permissions
from ..core.errors import DomainError, PermissionDenied
from ..core.spreadsheets import XLSX_TYPE, write_xlsx
from ..definitions.clock import district_now, district_zone
from ..definitions.models import DefinitionVersion
from ..extensions import db
from ..jobs.service import JOB_KINDS, JobKind, JobResult, Progress, start_job
from ..org.models import Area, Unit
from ..pdf.engine import render_pdf
from ..web.i18n import tr
from . import engine
from .inboxes import within_reach
from .models import Case, CaseDeadline, CaseEvent

if TYPE_CHECKING:
    from ..auth.models import AnyUser
    from ..jobs.models import Job

EXPORT = "cases.ledger"
FORMATS = ("xlsx", "pdf")


def case_metrics(user: AnyUser, scheme_key: str, start: dt.date, end: dt.date, by: str = "unit"
                 ) -> list[dict[str, Any]]:
    """Per unit (or per area with `by="area"`), cases found in [start, end] and how they ended, with the
    rates the seeds use — in SQL, within the user's reach."""
    if not permissions.can_view_case_metrics(user, scheme_key):
        raise PermissionDenied(_("You may not view this ledger."))
    wide = permissions.case_list_reach(user, scheme_key)
    return ledger_rows(scheme_key, start, end, by, None if wide.district_wide else within_reach(wide))


def uncounted() -> Any:
    """SQL condition: the case sits in a state its workflow version does not count (`counted: false`, by
    default the final states whose outcome is rejected, duplicate or withdrawn).

    Read from the stored workflow versions (a handful), not from the cases: no scan of a city's cases."""
    from sqlalchemy import and_, false, or_, select

    by_states: dict[tuple[str, ...], list[int]] = {}
    for version_id, data in db.session.execute(select(DefinitionVersion.id, DefinitionVersion.data)
                                               .where(DefinitionVersion.kind == "workflow")):
        states = tuple(sorted(s.id for s in engine.workflow_spec(data).states.values() if not s.counted))
        if states:
            by_states.setdefault(states, []).append(version_id)
    parts = [and_(Case.definition_version_id.in_(ids), Case.state.in_(states)) for states, ids in by_states.items()]
    return or_(*parts) if parts else false()


# Which unit a case counts for in the ledger and in case metrics (`counts_for` in a score sheet's metric):
# the unit holding it now, the unit responsible for its place, the unit of whoever reported it, or each unit
# that passed it up to a unit above (上报: a step or an escalation that moved it, CaseEvent.from_unit_id).
COUNTS_FOR = ("holder", "place", "reporter", "escalator")
_TALLIES = ("found", "rectified", "on_time", "closed", "reworked", "reworked_cases", "extended", "reopened")


def counted_unit(query: Any, counts_for: str = "holder", include_below: bool = False) -> tuple[Any, Any]:
    """(the column naming the unit a case counts for, the query joined to reach it).

    For `escalator` with `include_below`, the column already names each unit above the one that passed the case
    up, once per case (a case passed up twice inside a street counts once for the street): callers do not roll
    it up again (`rolled_up`)."""

    if counts_for == "place":
        placed = db.aliased(Area)
        return placed.unit_id, query.outerjoin(placed, placed.id == Case.area_id)
    if counts_for == "reporter":
        return Case.reporter_unit_id, query
    if counts_for == "escalator":
        from sqlalchemy import String, cast, literal, select

        left = db.aliased(Unit)
        # Up means to a unit on the path of the unit it left ("/1/4/9/" holds 4 when 9 passed it to 4). Each
        # (case, unit) once, however often that unit passed the same case up.
        went_up = left.path.like(literal("%/") + cast(CaseEvent.to_unit_id, String) + literal("/%"))
        if include_below:
            above = db.aliased(Unit)  # the unit that passed it up, and every unit on its path
            moves = (select(CaseEvent.case_id, above.id.label("unit_id"))
                     .join(left, left.id == CaseEvent.from_unit_id)
                     .join(above, left.path.like(above.path + literal("%"))).where(went_up).distinct().subquery())
        else:
            moves = (select(CaseEvent.case_id, CaseEvent.from_unit_id.label("unit_id"))
                     .join(left, left.id == CaseEvent.from_unit_id).where(went_up).distinct().subquery())
        return moves.c.unit_id, query.join(moves, moves.c.case_id == Case.id)
    if counts_for != "holder":
        raise ValueError(f"unknown counts_for {counts_for!r}")
    return Case.unit_id, query


def rolled_up(counts_for: str, include_below: bool) -> bool:
    """Whether `counted_unit` has already spread the cases over the units above (then `with_below` must not)."""
    return include_below and counts_for == "escalator"


def with_below(scheme_key: str, per_unit: dict[Any, dict[str, int]]) -> dict[Any, dict[str, int]]:
    """Tallies per unit with those of every unit below it added in (`include_below`): each unit's tallies go
    to itself and to each unit on its path ("/1/4/9/"), so the work grows with the units that have cases."""
    ids = [u for u in per_unit if u is not None]
    rows = db.session.execute(db.select(Unit.id, Unit.path).where(Unit.id.in_(ids))).all() if ids else []
    paths = {row_id: path for row_id, path in rows}
    out: dict[Any, dict[str, int]] = {}
    for unit_id, counts in per_unit.items():
        path = paths.get(unit_id) or ""
        for holder in [int(part) for part in path.strip("/").split("/") if part.isdigit()] or [unit_id]:
            total = out.setdefault(holder, dict.fromkeys(counts, 0))
            for key, value in counts.items():
                total[key] += value
    return out


def ledger_rows(scheme_key: str, start: dt.date, end: dt.date, by: str = "unit", where: Any = None,
                categories: list[str] | None = None, counts_for: str = "holder",
                include_below: bool = False) -> list[dict[str, Any]]:
    """The ledger's counts and rates, for the whole district (or `where`); shared by pages and assessment.

    Per unit, a case counts for the unit `counts_for` names (see COUNTS_FOR); with `include_below`, a unit's
    figures take in the cases of every unit below it, and its rates are worked out from those sums."""
    from sqlalchemy import and_, exists, func, select
    from sqlalchemy import case as when

    zone = district_zone(scheme_key)
    begin = dt.datetime.combine(start, dt.time(), zone)
    finish = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone)
    resolved = Case.outcome == "resolved"
    missed = exists(select(CaseDeadline.id).where(CaseDeadline.case_id == Case.id, CaseDeadline.met.is_(False)))
    query = select(Case.id)
    if by == "area":
        group = Case.area_id
    else:
        group, query = counted_unit(query, counts_for, include_below)
    query = (query.with_only_columns(
                    group, func.count(Case.id).label("found"),
                    func.sum(when((resolved, 1), else_=0)).label("rectified"),
                    func.sum(when((and_(resolved, ~missed, Case.overdue.is_(False)), 1), else_=0)).label("on_time"),
                    func.sum(when((Case.state_kind == "final", 1), else_=0)).label("closed"),
                    func.sum(Case.rework_count).label("reworked"),
                    func.sum(when((Case.rework_count > 0, 1), else_=0)).label("reworked_cases"),
                    func.sum(when((Case.extension_count > 0, 1), else_=0)).label("extended"),
                    func.sum(when((Case.reopen_count > 0, 1), else_=0)).label("reopened"),
                    maintain_column_froms=True)
             .where(Case.scheme_key == scheme_key, Case.created_at >= begin, Case.created_at < finish,
                    ~uncounted())
             .group_by(group))
    if where is not None:
        query = query.where(where)
    if categories:
        query = query.where(Case.category.in_(categories))
    tallies = {place_id: {k: int(v or 0) for k, v in zip(_TALLIES, values, strict=True)}
               for place_id, *values in db.session.execute(query)}
    if include_below and by != "area" and not rolled_up(counts_for, include_below):
        tallies = with_below(scheme_key, tallies)
    model = Area if by == "area" else Unit
    places = {p.id: p for p in db.session.scalars(db.select(model).filter_by(scheme_key=scheme_key))}
    rows = [{"unit": places.get(place_id), **_rates(counts)} for place_id, counts in tallies.items()]
    rows.sort(key=lambda r: (getattr(r["unit"], "path", None) or getattr(r["unit"], "key", None) or "~"))
    return rows


def _rates(t: dict[str, int]) -> dict[str, Any]:
    found, rectified = t["found"], t["rectified"]
    return {**t,
            "rework_rate": t["reworked_cases"] / found if found else None,
            "extension_rate": t["extended"] / found if found else None,
            "rectification_rate": rectified / found if found else None,
            "on_time_rate": t["on_time"] / rectified if rectified else None,
            "closure_rate": t["closed"] / found if found else None}


def ledger_xlsx(rows: list[dict[str, Any]], start: dt.date, end: dt.date) -> bytes:
    """The ledger as a workbook, one sheet named by its dates."""
    header = [_("Unit"), _("Found"), _("Rectified"), _("Rectified on time"), _("Closed"), _("Reworked"),
              _("Rectification rate"), _("On-time rate"), _("Closure rate"), _("Extension rate"), _("Rework rate")]
    body = [[tr(r["unit"].name) if r["unit"] else _("not assigned"), r["found"], r["rectified"], r["on_time"],
             r["closed"], r["reworked_cases"],
             *(round(r[k], 4) if r[k] is not None else None
               for k in ("rectification_rate", "on_time_rate", "closure_rate", "extension_rate", "rework_rate"))]
            for r in rows]
    return write_xlsx({f"{start:%Y%m%d}-{end:%Y%m%d}": [header, *body]})


def open_cases_by_area(user: AnyUser, scheme_key: str) -> list[dict[str, Any]]:
    """Open cases per area (with how many are overdue), within the user's scope: the case map list."""
    from sqlalchemy import case as when
    from sqlalchemy import func, select

    wide = permissions.case_list_reach(user, scheme_key)
    query = (select(Case.area_id, func.count(Case.id), func.sum(when((Case.overdue.is_(True), 1), else_=0)))
             .where(Case.scheme_key == scheme_key, Case.state_kind != "final").group_by(Case.area_id))
    if not wide.district_wide:
        query = query.where(within_reach(wide))
    areas = {a.id: a for a in db.session.scalars(db.select(Area).filter_by(scheme_key=scheme_key))}
    rows = [{"area": areas.get(area_id), "open": count, "overdue": int(overdue or 0)}
            for area_id, count, overdue in db.session.execute(query)]
    return sorted(rows, key=lambda r: (-r["open"], r["area"].key if r["area"] else "~"))


# -- the ledger's files, as a job ------------------------------------------------------------------------------

def start_ledger_export(user: AnyUser, scheme_key: str, start: dt.date, end: dt.date, by: str, fmt: str) -> Job:
    """Queue the ledger of [start, end] per unit or area as a workbook (xlsx) or a PDF to print."""
    if fmt not in FORMATS:
        raise DomainError(_("Export the ledger as XLSX or PDF."))
    return start_job(user, EXPORT, scheme_key, {"start": start.isoformat(), "end": end.isoformat(),
                                                "by": "area" if by == "area" else "unit", "format": fmt})


def export_ledger(job: Job, user: AnyUser, progress: Progress) -> JobResult:
    """The ledger's file: its figures read (one statement) and its page laid out, then the reading ended before
    the file is drawn (no transaction waits on WeasyPrint)."""
    params, scheme_key = job.params, job.scheme_key
    start, end = dt.date.fromisoformat(params["start"]), dt.date.fromisoformat(params["end"])
    rows = case_metrics(user, scheme_key, start, end, params["by"])
    name = f"ledger-{start:%Y%m%d}-{end:%Y%m%d}.{params['format']}"
    if params["format"] == "pdf":
        html = render_template("workflow/ledger_print.html", scheme_key=scheme_key, rows=rows, start=start, end=end,
                               printed=district_now(scheme_key))
        progress(1, 2)
        return JobResult(render_pdf(html), name, "application/pdf")
    progress(1, 2)
    return JobResult(ledger_xlsx(rows, start, end), name, XLSX_TYPE)


def _ledger_page(job: Job) -> tuple[str, str]:
    params = job.params
    return _("the ledger"), url_for("workflow.ledger", scheme_key=job.scheme_key, start=params["start"],
                                end=params["end"], by=params["by"])


JOB_KINDS.add(EXPORT, JobKind(title=lambda: _("Ledger export"),
                              may_start=lambda user, scheme_key, _params: permissions.can_view_case_metrics(
                                  user, scheme_key),
                              run=export_ledger, origin=_ledger_page))
