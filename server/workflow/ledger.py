"""The ledger (台账) and case figures: which cases count, per unit or area, and the workbook."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _

from ..auth import permissions
from ..core.spreadsheets import write_xlsx
from ..definitions.clock import district_zone
from ..definitions.models import DefinitionVersion
from ..extensions import db
from ..org.models import Area, Unit
from ..web.i18n import tr
from . import engine
from .inboxes import within_reach
from .models import Case, CaseDeadline

if TYPE_CHECKING:
    from ..auth.models import AnyUser


def case_metrics(user: AnyUser, scheme_key: str, start: dt.date, end: dt.date, by: str = "unit"
                 ) -> list[dict[str, Any]]:
    """Per unit (or per area with `by="area"`), cases found in [start, end] and how they ended, with the
    rates the seeds use — in SQL, within the user's reach."""
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


def ledger_rows(scheme_key: str, start: dt.date, end: dt.date, by: str = "unit", where: Any = None,
                categories: list[str] | None = None) -> list[dict[str, Any]]:
    """The ledger's counts and rates, for the whole district (or `where`); shared by pages and assessment."""
    from sqlalchemy import and_, exists, func, select
    from sqlalchemy import case as when

    zone = district_zone(scheme_key)
    begin = dt.datetime.combine(start, dt.time(), zone)
    finish = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone)
    resolved = Case.outcome == "resolved"
    missed = exists(select(CaseDeadline.id).where(CaseDeadline.case_id == Case.id, CaseDeadline.met.is_(False)))
    group = Case.area_id if by == "area" else Case.unit_id
    query = (select(group, func.count(Case.id).label("found"),
                    func.sum(when((resolved, 1), else_=0)).label("rectified"),
                    func.sum(when((and_(resolved, ~missed, Case.overdue.is_(False)), 1), else_=0)).label("on_time"),
                    func.sum(when((Case.state_kind == "final", 1), else_=0)).label("closed"),
                    func.sum(Case.rework_count).label("reworked"),
                    func.sum(when((Case.rework_count > 0, 1), else_=0)).label("reworked_cases"),
                    func.sum(when((Case.extension_count > 0, 1), else_=0)).label("extended"),
                    func.sum(when((Case.reopen_count > 0, 1), else_=0)).label("reopened"))
             .where(Case.scheme_key == scheme_key, Case.created_at >= begin, Case.created_at < finish,
                    ~uncounted())
             .group_by(group))
    if where is not None:
        query = query.where(where)
    if categories:
        query = query.where(Case.category.in_(categories))
    model = Area if by == "area" else Unit
    places = {p.id: p for p in db.session.scalars(db.select(model).filter_by(scheme_key=scheme_key))}
    rows = []
    for (place_id, found, rectified, on_time, closed, reworked, reworked_cases, extended,
         reopened) in db.session.execute(query):
        rectified, on_time, closed = int(rectified or 0), int(on_time or 0), int(closed or 0)
        reworked_cases = int(reworked_cases or 0)
        rows.append({"unit": places.get(place_id), "found": found, "rectified": rectified, "on_time": on_time,
                     "reopened": int(reopened or 0), "reworked_cases": reworked_cases,
                     "rework_rate": reworked_cases / found if found else None,
                     "closed": closed, "reworked": int(reworked or 0), "extended": int(extended or 0),
                     "extension_rate": int(extended or 0) / found if found else None,
                     "rectification_rate": rectified / found if found else None,
                     "on_time_rate": on_time / rectified if rectified else None,
                     "closure_rate": closed / found if found else None})
    rows.sort(key=lambda r: (getattr(r["unit"], "path", None) or getattr(r["unit"], "key", None) or "~"))
    return rows


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
