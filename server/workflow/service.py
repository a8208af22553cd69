"""Cases: open one from a report, fire transitions atomically with their forms, deadlines and audit; escalate.

Shared by the pages, the CLI (`fangan tick`) and later the JSON API.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from ..audit.service import record_audit
from ..auth import permissions
from ..auth.models import User
from ..calendar import DayOverride, WorkingCalendar, WorkingHours
from ..calendar.clock import district_now, district_today, district_zone
from ..calendar.service import calendar_changed, load_calendar
from ..core.cache import memoize
from ..core.database import insert_returning, utcnow
from ..core.errors import Conflict, NotFound, PermissionDenied
from ..core.spreadsheets import write_xlsx
from ..definitions.models import DefinitionVersion
from ..definitions.service import DefinitionRef, current_scheme, current_scheme_data
from ..expressions import Expression, ExpressionError, compile_expression
from ..extensions import db
from ..forms import engine as form_engine
from ..forms import service as forms
from ..forms.engine import FormSpec, form_spec
from ..forms.models import Submission
from ..org.models import Area, Post, Unit
from ..web.i18n import tr
from . import engine
from .models import Case, CaseDeadline, CaseEvent, EscalationApplied, Notification

# -- definitions, calendar, names ---------------------------------------------------------


log = logging.getLogger(__name__)


def workflow_of(case: Case) -> engine.WorkflowSpec:
    return engine.workflow_spec(case.definition_version.data)



def calendar_for(scheme_key: str) -> WorkingCalendar:
    """The working calendar in force, with the scheme's working hours."""
    return load_calendar(_hours_of(scheme_key))


def _hours_of(scheme_key: str) -> WorkingHours:
    hours = (current_scheme_data(scheme_key) or {}).get("calendar") or {}
    return WorkingHours(dt.time.fromisoformat(hours.get("workday_start", "09:00")),
                        dt.time.fromisoformat(hours.get("workday_end", "17:30")))


@calendar_changed.connect
def move_deadlines(_sender: Any, before: tuple[list[DayOverride], set[int]]) -> int:
    """The calendar changed: each open case's running deadline keeps its working time from its start, counted
    on the new calendar (so extensions and waits stay), and the move is audited. Stopped deadlines keep theirs."""
    overrides, years = before
    moved = 0
    query = (db.select(CaseDeadline).join(Case, Case.id == CaseDeadline.case_id)
             .where(CaseDeadline.stopped_at.is_(None), Case.state_kind != "final").order_by(CaseDeadline.id))
    calendars: dict[str, tuple[WorkingCalendar, WorkingCalendar, ZoneInfo]] = {}
    for deadline in db.session.scalars(query):
        case = deadline.case
        if case.scheme_key not in calendars:
            hours = _hours_of(case.scheme_key)
            calendars[case.scheme_key] = (WorkingCalendar(overrides, hours, complete_years=years),
                                          load_calendar(hours), district_zone(case.scheme_key))
        old, new, zone = calendars[case.scheme_key]
        start, due = _local(deadline.started_at, zone), _local(deadline.due_at, zone)
        try:
            moved_to = new.add_working_hours(start, old.working_hours_between(start, due))
        except ValueError:
            continue  # a span too long to count: left as it is
        if moved_to == due.replace(microsecond=0):
            continue
        before_due = deadline.due_at
        deadline.due_at = _utc(moved_to, zone)
        deadline.calendar_fallback = bool(new.unknown_years(start.date(), moved_to.date()))
        record_audit("case.deadline_moved", "case", case.id, scheme_key=case.scheme_key,
                     before={"deadline": deadline.key, "due_at": before_due.isoformat()},
                     after={"deadline": deadline.key, "due_at": deadline.due_at.isoformat(),
                            "why": "calendar changed"})
        moved += 1
    db.session.flush()
    return moved


def _local(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def _utc(local: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return local.replace(tzinfo=zone).astimezone(dt.UTC)


def _category_info(scheme_key: str, category: str | None) -> dict:
    from ..definitions.service import scheme_categories

    def find(items: list[dict]) -> dict | None:
        for item in items:
            if item["id"] == category:
                return item
            found = find(item.get("children", []))
            if found is not None:
                return found
        return None

    return (find(scheme_categories(scheme_key)) or {}) if category else {}


def workflow_for_category(scheme_key: str, category: str | None) -> str | None:
    """The workflow a category names, or the nearest parent category's (None: the scheme's default)."""
    from ..definitions.service import scheme_categories

    def walk(items: list[dict], inherited: str | None) -> str | None | bool:
        for item in items:
            here = item.get("workflow") or inherited
            if item["id"] == category:
                return here
            found = walk(item.get("children", []), here)
            if found is not False:
                return found
        return False

    found = walk(scheme_categories(scheme_key), None) if category else False
    return None if found is False else found


class LazyNames(Mapping):
    """A mapping made on its first read."""

    def __init__(self, make: Callable[[], Mapping[str, Any]]) -> None:
        self._make, self._made = make, None

    def _names(self) -> Mapping[str, Any]:
        if self._made is None:
            self._made = self._make()
        return self._made

    def __getitem__(self, key: str) -> Any:
        return self._names()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


def case_names(case: Case) -> dict[str, Any]:
    """Names a workflow expression sees: the case's fields plus the engine's own."""
    area = case.area
    unit = case.unit
    info = _category_info(case.scheme_key, case.category)
    return {
        **case.data,
        "category": case.category, "state": case.state,
        "category_working_days": info.get("working_days"), "category_class": info.get("class"),
        "area": area.key if area else None, "unit": unit.key if unit else None,
        "case": {"id": case.id, "state": case.state, "category": case.category, "rework_count": case.rework_count},
        "today": district_today(case.scheme_key),
        "now": district_now(case.scheme_key).replace(tzinfo=None, microsecond=0),
    }


# -- who may act --------------------------------------------------------------------------


def actor_for(user: Any, case: Case) -> engine.Actor:
    """What this user holds over this case: capabilities reaching it, roles, tiers and relations."""
    if not getattr(user, "is_authenticated", False):
        return engine.Actor()
    capabilities = permissions.capabilities_over_case(user, case)
    roles = permissions.roles_over_case(user, case)
    today = district_today(case.scheme_key)
    posts = [p for p in user.posts if p.scheme_key == case.scheme_key and p.holds_on(today)]
    tiers = frozenset(p.tier_key for p in posts if (p.area_id is not None and p.area_id == case.area_id)
                      or (p.area_id is None and p.unit_id is not None and p.unit_id == case.unit_id))
    relations = set()
    if case.reporter_id == user.id:
        relations.add("reporter")
    if case.assignee_id == user.id:
        relations.add("assignee")
    if permissions.can_handle_case_unit(user, case):
        relations.add("assignee_unit")
    if _is_tier_above_assignee(user, case, today, {p.tier_key for p in posts}):
        relations.add("tier_above_assignee")
    took = frozenset()
    if any(t.not_by.steps for t in workflow_of(case).transitions):  # the timeline is read only when asked
        took = frozenset(e.transition for e in case.events if e.user_id == user.id and e.transition)
    return engine.Actor(capabilities, roles, tiers, frozenset(relations), took)


def _is_tier_above_assignee(user: Any, case: Case, today: dt.date, my_tiers: set[str]) -> bool:
    """True if the user holds the tier the assignee's tier reports to (the chief ladder), or, for a case
    assigned to a unit, may dispatch cases of the unit above it."""
    data = current_scheme_data(case.scheme_key) or {}
    parent_of = {t["id"]: t.get("reports_to") for t in data.get("tiers", [])}
    if case.assignee is not None:
        held = {p.tier_key for p in case.assignee.posts if p.scheme_key == case.scheme_key and p.holds_on(today)
                and (p.area_id in (case.area_id, None) or p.unit_id == case.unit_id)}
        if {parent_of.get(t) for t in held} & my_tiers:
            return True
    return permissions.can_dispatch_above_case(user, case)


def get_case(user: Any, case_id: int) -> Case:
    case = db.session.get(Case, case_id)
    if case is None:
        raise NotFound(_("No such case."))
    if not permissions.can_view_case(user, case):
        raise PermissionDenied(_("You may not view this case."))
    return case


def available_actions(user: Any, case: Case) -> list[engine.TransitionSpec]:
    spec = workflow_of(case)
    return engine.available(spec, case.state, actor_for(user, case), case_names(case))


# -- routing and assignment -----------------------------------------------------------------


ROUTING_PLACE = {
    "area": lambda area: area.key, "area.key": lambda area: area.key, "area.kind": lambda area: area.kind,
    "area.unit": lambda area: area.unit.key if area.unit else None,
    "area.parent": lambda area: area.parent.key if area.parent else None,
}


def routing_names(case: Case, wanted: Collection[str] | None = None) -> dict[str, Any]:
    """What a routing condition sees (docs/expressions.md): the category, the place with its kind, its unit
    and the area above it, the unit the case was reported from, where it came from, and the report's fields.
    With `wanted`, only those names (a report's routing loads no row its conditions do not read)."""
    def needed(name: str) -> bool:
        return wanted is None or name in wanted

    names: dict[str, Any] = {"category": case.category, "source": case.source or "staff", "form": case.data}
    places = [name for name in ROUTING_PLACE if needed(name)]
    area = case.area if places and case.area_id is not None else None
    names.update({name: ROUTING_PLACE[name](area) if area is not None else None for name in places})
    if needed("unit"):
        names["unit"] = case.unit.key if case.unit_id is not None and case.unit else None
    return names


@memoize(256)
def _condition(source: str) -> Expression:
    return compile_expression(source)


def _route(case: Case) -> tuple[Unit | None, User | None]:
    """The unit (and person) the scheme's first matching routing rule gives; (None, None) to leave it as is."""
    rules = (current_scheme_data(case.scheme_key) or {}).get("routing", [])
    conditions = {}
    for rule in rules:
        if rule.get("when"):
            try:
                conditions[rule["id"]] = _condition(rule["when"])
            except ExpressionError:
                continue  # refused when the scheme is checked
    wanted = {name for condition in conditions.values() for name in condition.names}
    names = routing_names(case, wanted) if conditions else {}
    for rule in rules:
        if rule.get("when"):
            try:
                if rule["id"] not in conditions or not conditions[rule["id"]].evaluate(names):
                    continue
            except ExpressionError:
                continue
        target = rule["assign_to"]
        if target.get("area_unit"):
            area = case.area if case.area_id is not None else None
            if area is not None and area.unit_id is not None:
                # Already the area's unit (a public report placed by its road): nothing to load or change.
                same = area.unit_id == case.unit_id and case.assignee_id is None
                return (None, None) if same else (area.unit, None)
            continue
        if target.get("unit"):
            return db.session.scalar(db.select(Unit).filter_by(scheme_key=case.scheme_key, key=target["unit"])), None
        if target.get("tier") and case.area_id is not None:
            post = db.session.scalar(db.select(Post).filter_by(scheme_key=case.scheme_key, tier_key=target["tier"],
                                                               area_id=case.area_id, ended_on=None))
            if post is not None:
                return post.unit or (case.area.unit if case.area else None), post.user
    return None, None


def _assign(case: Case, how: str, value: Any) -> None:
    if how == "routing":
        unit, user = _route(case)
    elif how == "unit":
        unit, user = db.session.scalar(db.select(Unit).filter_by(scheme_key=case.scheme_key, key=value)), None
    elif how == "field":
        unit = db.session.scalar(db.select(Unit).filter_by(scheme_key=case.scheme_key, key=value)) if value else None
        user = None
    elif how == "tier_above":
        unit = case.unit.parent if case.unit is not None else None
        user = None
    elif how == "reporter":
        unit, user = case.unit, case.reporter
    else:
        return
    if unit is not None or user is not None:
        case.unit = unit if unit is not None else case.unit
        case.assignee = user


# -- deadlines ----------------------------------------------------------------------------------


def _start_deadline(case: Case, spec: engine.WorkflowSpec, key: str, now: dt.datetime) -> None:
    deadline = spec.deadlines.get(key)
    try:
        amount = engine.deadline_amount(deadline, case_names(case)) if deadline else None
        if amount is not None:
            zone, calendar = district_zone(case.scheme_key), calendar_for(case.scheme_key)
            start = _local(now, zone)
            unit, value = amount
            try:
                due = (calendar.add_working_days(start, value) if unit == "days"
                       else calendar.add_working_hours(start, value))
            except ValueError as exc:  # beyond what the calendar counts
                raise engine.DeadlineError(str(exc)) from None
    except engine.DeadlineError as exc:
        # The step goes ahead, but the missing deadline is said on the case's timeline and in the log.
        message = _("No deadline %(deadline)s: %(why)s", deadline=tr(deadline.name) or key, why=str(exc))
        log.warning("case %s: deadline %s not started: %s", case.id, key, exc)
        case.events.append(CaseEvent(kind="deadline_error", at=now, note=message, from_state=case.state,
                                     to_state=case.state))
        record_audit("case.deadline_error", "case", case.id, scheme_key=case.scheme_key,
                     after={"deadline": key, "error": str(exc)})
        return
    if amount is None:
        return
    if deadline.max_calendar_days:
        due = min(due, start + dt.timedelta(days=deadline.max_calendar_days))
    for running in case.deadlines:
        if running.key == key and running.stopped_at is None:
            running.stopped_at, running.met = now, None  # restarted (rework): the old clock no longer counts
    case.deadlines.append(CaseDeadline(key=key, started_at=now, due_at=_utc(due, zone),
                                       calendar_fallback=bool(calendar.unknown_years(start.date(), due.date()))))


def _extend_deadline(case: Case, key: str, unit: str, amount: float, now: dt.datetime) -> None:
    """An approved extension: the running deadline is superseded by one due later by working time.

    A new row, not a moved one: escalations apply once per deadline row, so the extended deadline escalates
    again when it, too, is missed. The old row keeps `met = False` if it had already been missed.
    """
    zone, calendar = district_zone(case.scheme_key), calendar_for(case.scheme_key)
    for running in [d for d in case.deadlines if d.key == key and d.stopped_at is None]:
        due = _local(running.due_at, zone)
        due = calendar.add_working_days(due, amount) if unit == "days" else calendar.add_working_hours(due, amount)
        running.stopped_at = now
        running.met = False if running.met is False else None
        case.deadlines.append(CaseDeadline(
            key=key, started_at=running.started_at, due_at=_utc(due, zone), paused_at=running.paused_at,
            calendar_fallback=running.calendar_fallback or bool(calendar.unknown_years(due.date(), due.date()))))
        case.overdue = False


def _stop_deadline(case: Case, key: str, now: dt.datetime) -> None:
    for running in case.deadlines:
        if running.key == key and running.stopped_at is None:
            running.stopped_at = now
            running.met = now <= running.due_at


def _pause_or_resume(case: Case, old_kind: str, new_kind: str, now: dt.datetime) -> None:
    """A waiting state stops the clock; leaving it moves the deadline by the working time spent waiting."""
    if old_kind != "waiting" and new_kind == "waiting":
        for running in case.deadlines:
            if running.stopped_at is None and running.paused_at is None:
                running.paused_at = now
    elif old_kind == "waiting" and new_kind != "waiting":
        zone, calendar = district_zone(case.scheme_key), calendar_for(case.scheme_key)
        for running in case.deadlines:
            if running.stopped_at is None and running.paused_at is not None:
                waited = calendar.working_hours_between(_local(running.paused_at, zone), _local(now, zone))
                running.due_at = _utc(calendar.add_working_hours(_local(running.due_at, zone), max(waited, 0)), zone)
                running.paused_at = None


# -- opening and firing -----------------------------------------------------------------------


def workflow_definition(scheme_key: str, workflow_key: str | None = None) -> DefinitionRef:
    """The version of a workflow (default: the scheme's) in force, as plain data."""
    current = current_scheme(scheme_key)
    data = current.scheme.data if current else {}
    key = workflow_key or data.get("default_workflow")
    row = current.member("workflow", key) if current and key else None
    if row is None:
        raise NotFound(_("This district has no such workflow."))
    return row


def workflow_version(scheme_key: str, workflow_key: str | None = None) -> DefinitionVersion:
    """The version of a workflow in force (the stored row)."""
    return db.session.get(DefinitionVersion, workflow_definition(scheme_key, workflow_key).id)


def _apply_plan(case: Case, spec: engine.WorkflowSpec, plan: engine.Plan, user: Any, now: dt.datetime) -> None:
    old_kind = case.state_kind
    case.data = {**case.data, **{k: engine_json(v) for k, v in plan.changes.items()}}
    case.state, case.state_kind = plan.target, plan.target_kind
    for how, value in plan.assign:
        _assign(case, how, value)
    for key in plan.stop:
        _stop_deadline(case, key, now)
    for key in plan.start:
        _start_deadline(case, spec, key, now)
    for key, unit, amount in plan.extend:
        _extend_deadline(case, key, unit, amount, now)
    _pause_or_resume(case, old_kind, plan.target_kind, now)
    case.outcome = spec.states[plan.target].outcome if plan.target_kind == "final" else None
    if plan.target_kind == "final":
        case.closed_at = now
    elif old_kind == "final":
        case.closed_at = None
    _notify(case, plan.notify, _("Case #%(id)s: %(state)s", id=case.id or "",
                                  state=tr(spec.states[plan.target].name)))
    case.updated_at, case.updated_by_id = now, getattr(user, "id", None)


def engine_json(value: Any) -> Any:
    from ..forms.engine import to_json

    return to_json(value)


CASE_SOURCES = ("staff", "patrol", "public")


def open_case(user: Any, scheme_key: str, submission: Submission, workflow_key: str | None = None,
              source: str = "staff") -> Case:
    """Open a case from a report: initial state, the workflow's on-create effects (routing, deadlines).

    `source` says where it came from (CASE_SOURCES), for routing conditions and lists."""
    row = workflow_definition(scheme_key, workflow_key)
    spec = engine.workflow_spec(row.data)
    data = dict(submission.data)
    now = utcnow()
    kind = spec.kind_of(spec.initial)
    # Every field is given its value now (a workflow without on-create effects leaves the case as inserted),
    # and the row is inserted at once rather than through a flush.
    case = db.session.scalars(insert_returning(Case), [{
        "scheme_key": scheme_key, "workflow_key": spec.id, "definition_version_id": row.id, "state": spec.initial,
        "state_kind": kind, "data": data, "category": _category_of(data), "area_id": submission.area_id,
        "source": source,
        "unit_id": submission.unit_id, "reporter_id": getattr(user, "id", None), "submission_id": submission.id,
        "outcome": spec.states[spec.initial].outcome if kind == "final" else None,
        "closed_at": now if kind == "final" else None, "created_at": now, "updated_at": now,
        "updated_by_id": getattr(user, "id", None), "version": 1}]).one()
    # A new case's deadlines start empty: said here, adding to them loads nothing.
    set_committed_value(case, "deadlines", [])
    if spec.on_create:  # after the insert: the effects' expressions may name the case's id
        # The case's names are worked out (loading its area and unit) only if an effect reads them.
        plan = engine.plan_effects(spec, spec.on_create, spec.initial, LazyNames(lambda: case_names(case)))
        _apply_plan(case, spec, plan, user, now)
    # The first event is inserted as a row (cheaper than a flush); the timeline is read again when wanted.
    db.session.connection().execute(insert(CaseEvent.__table__), [{
        "case_id": case.id, "kind": "opened", "at": now, "user_id": getattr(user, "id", None),
        "to_state": case.state, "submission_id": submission.id}])
    db.session.expire(case, ["events"])  # read again when wanted
    record_audit("case.open", "case", case.id, user=user, scheme_key=scheme_key,
                 after={"state": case.state, "unit_id": case.unit_id})
    return case


@dataclass
class Reported:
    """What reporting a problem gave: the case (`created` unless the same report was sent again), or the
    form's page back with its errors."""

    case: Case | None = None
    page: forms.FormPage | None = None
    created: bool = False


def report_form(user: Any, scheme_key: str) -> tuple[DefinitionVersion, FormSpec]:
    """The form this user reports a problem with (the scheme's workflow's `report_form`, in force), if they
    may report in this district."""
    if not permissions.can_report_case(user, scheme_key):
        raise PermissionDenied(_("You may not report problems in this district."))
    version = forms.form_version(scheme_key, workflow_version(scheme_key).data.get("report_form"))
    return version, form_spec(version.data)


def report_case(user: Any, scheme_key: str, formdata: Any, action: str = "submit", *, store: bool = True
                ) -> Reported:
    """Report a problem, as the report page and the JSON API both do: the report form's record and the case
    opened from it, in the caller's one transaction. A resend of a report that already opened its case gives
    that case; a form with errors comes back as its page (`store=False` checks without storing)."""
    version, spec = report_form(user, scheme_key)
    result = forms.post_form(user, scheme_key, spec, version, formdata, action, store=store)
    if not isinstance(result, Submission):
        return Reported(page=result)
    case = db.session.scalar(db.select(Case).filter_by(submission_id=result.id))
    if case is not None:
        return Reported(case=case)
    return Reported(case=open_case(user, scheme_key, result), created=True)


def open_cases_from_record(user: Any, spec: Any, submission: Submission) -> list[Case]:
    """The cases a just-stored record opens by its form's `opens_cases` (a patrol's findings), pre-filled.

    Each case gets its own report (a record of the workflow's report form, made from this one) so that the
    case pages, the ledger and routing treat it like any other report. Safe to call twice.
    """
    context = forms.form_context(user, submission.scheme_key)
    if not form_engine.opening_rows(spec, submission.data, context):
        return []  # nothing to open: a district without a case workflow still takes patrols
    row = workflow_version(submission.scheme_key, spec.opens_cases.workflow)
    report_version = forms.form_version(submission.scheme_key, row.data.get("report_form"))
    report_spec = form_spec(report_version.data)
    cases = []
    for index, data in form_engine.case_reports(spec, submission.data, report_spec, context):
        token = f"finding-{submission.id}-{index}"
        if db.session.scalar(db.select(Submission.id).filter_by(token=token)) is not None:
            continue
        area = forms.first_area(report_spec, data, submission.scheme_key) or submission.area
        location = next((data[f.id] for f in report_spec.top_level()
                         if f.kind.gives_location and isinstance(data.get(f.id), dict)), None)
        report = Submission(scheme_key=submission.scheme_key, form_key=report_spec.id,
                            definition_version_id=report_version.id, token=token, user_id=submission.user_id,
                            post_id=submission.post_id, area_id=area.id if area else None,
                            unit_id=(area.unit_id if area and area.unit_id else submission.unit_id), data=data,
                            location=location, submitted_at=submission.submitted_at,
                            occurred_at=submission.occurred_at, source_id=submission.id)
        db.session.add(report)
        db.session.flush()
        _give_files(report, report_spec)
        cases.append(open_case(user, submission.scheme_key, report, spec.opens_cases.workflow, source="patrol"))
    return cases


def _give_files(report: Submission, report_spec: Any) -> None:
    """The report gets its own rows for the photos it was given (same stored content), so that the case
    shows them as its before photos and they follow the case's permissions."""
    from ..forms.models import Upload

    data = dict(report.data)
    for f in report_spec.top_level():
        if not f.kind.is_file or not isinstance(data.get(f.id), list):
            continue
        copies = []
        for upload in db.session.scalars(db.select(Upload).where(Upload.id.in_([int(i) for i in data[f.id]]))):
            copy = Upload(sha256=upload.sha256, extension=upload.extension, mime=upload.mime, size=upload.size,
                          width=upload.width, height=upload.height, original_name=upload.original_name,
                          evidence=upload.evidence, token=report.token, field_path=f.id, user_id=upload.user_id,
                          submission_id=report.id)
            db.session.add(copy)
            copies.append(copy)
        db.session.flush()
        data[f.id] = [c.id for c in copies]
    report.data = data


def _category_of(data: dict) -> str | None:
    for key in ("category", "problem_category"):
        if isinstance(data.get(key), str):
            return data[key]
    return None


def stale_message(case: Case) -> str:
    last = case.events[-1] if case.events else None
    who = last.user.display_name if last and last.user else _("someone")
    when = last.at.astimezone(district_zone(case.scheme_key)).strftime("%Y-%m-%d %H:%M") if last else ""
    spec = workflow_of(case)
    state = tr(spec.states[case.state].name) if case.state in spec.states else case.state
    return _("This case changed while you were looking at it: %(who)s moved it to “%(state)s” at %(when)s. "
             "Look at it again before acting.", who=who, state=state, when=when)


def fire(user: Any, case_id: int, transition_id: str, expected_version: int | None, formdata: Any = None,
         action: str = "submit") -> tuple[Case, forms.FormPage | None]:
    """Fire a transition; returns (case, None) when done, or (case, page) when its form needs correcting.

    Everything (the form's record, the state, the fields, deadlines, timeline and audit) goes into the
    caller's one transaction; a stale version or a failure anywhere leaves nothing behind.
    """
    case = lock_case(get_case(user, case_id))
    if expected_version is not None and expected_version != case.version:
        raise Conflict(stale_message(case))
    spec = workflow_of(case)
    transition = spec.transition(transition_id)
    if transition is None or transition not in available_actions(user, case):
        raise PermissionDenied(_("You cannot do this to this case now."))
    submission = None
    names = case_names(case)
    if transition.form:
        form_row = case.definition_version and _form_row(case, transition.form)
        form = form_spec(form_row.data)
        if formdata is None:
            raise Conflict(_("This step needs its form."))
        result = forms.post_form(user, case.scheme_key, form, form_row, formdata, action)
        if not isinstance(result, Submission):
            return case, result
        submission = result
        used = db.session.scalar(db.select(db.func.count(CaseEvent.id)).where(CaseEvent.submission_id == submission.id))
        if used or db.session.scalar(db.select(db.func.count(Case.id)).where(Case.submission_id == submission.id)):
            raise Conflict(_("This form was already used. Open it again."))
        names = {**names, **submission.data}
        if not engine.guard_holds(transition, names):
            raise Conflict(_("The answers do not allow this step."))
    return _apply_transition(case, spec, transition, names, user, submission), None


def lock_case(case: Case) -> Case:
    """The case row locked for this transaction and read afresh: of two people acting on a case at once, the
    second waits for the first to commit, then sees the new version and is told the case changed (PostgreSQL;
    on SQLite a write transaction already holds the database)."""
    # NO KEY UPDATE: rows that only point at the case (its events, notifications) can still be added meanwhile.
    return db.session.scalars(select(Case).where(Case.id == case.id).with_for_update(key_share=True)
                              .execution_options(populate_existing=True)).one()


def _apply_transition(case: Case, spec: engine.WorkflowSpec, transition: engine.TransitionSpec, names: dict,
                      user: Any, submission: Submission | None = None, note: str | None = None) -> Case:
    now = utcnow()
    plan = engine.plan_transition(spec, transition, names)
    before = {"state": case.state, "version": case.version}
    if submission is not None:
        case.data = {**case.data, **{f"{transition.id}__{k}": v for k, v in submission.data.items()}}
    old_state = case.state
    if "rework" in transition.counts_as:
        case.rework_count += 1
    if "extension" in transition.counts_as:
        case.extension_count += 1
    if spec.kind_of(old_state) == "final" or "reopen" in transition.counts_as:
        case.reopen_count += 1  # a closed case opened again
    _apply_plan(case, spec, plan, user, now)
    case.events.append(CaseEvent(kind="transition", transition=transition.id, user_id=getattr(user, "id", None),
                                 from_state=old_state, to_state=case.state, at=now, note=note,
                                 submission_id=submission.id if submission else None,
                                 changes={k: engine_json(v) for k, v in plan.changes.items()} or None))
    try:
        db.session.flush()
    except Exception as exc:
        from sqlalchemy.exc import OperationalError
        from sqlalchemy.orm.exc import StaleDataError

        # PostgreSQL's deadlock (40P01) and serialization (40001) refusals: another writer won, as with a version.
        lost = isinstance(exc, OperationalError) and getattr(exc.orig, "sqlstate", None) in ("40P01", "40001")
        if isinstance(exc, StaleDataError) or lost:
            case_id = case.id
            db.session.rollback()
            raise Conflict(stale_message(db.session.get(Case, case_id))) from exc
        raise
    record_audit("case.transition", "case", case.id, user=user, scheme_key=case.scheme_key, before=before,
                 after={"state": case.state, "transition": transition.id, "version": case.version,
                        "by": "public_reporter" if user is None else None})
    return case


# The public reporter holds nothing but the tracking code: the workflow says what that allows
# (`who: {relations: [public_reporter]}`), and only steps without a form can be taken from a public page.
PUBLIC_REPORTER = engine.Actor(relations=frozenset({"public_reporter"}))


def public_actions(case: Case) -> list[engine.TransitionSpec]:
    """The steps the workflow lets the public reporter take now (reopen, withdraw), without a form."""
    spec = workflow_of(case)
    return [t for t in engine.available(spec, case.state, PUBLIC_REPORTER, case_names(case)) if t.form is None]


def fire_public(case: Case, transition_id: str, expected_version: int | None, note: str | None = None) -> Case:
    """Take a step as the case's public reporter (the caller has checked the tracking code)."""
    case = lock_case(case)
    if expected_version is not None and expected_version != case.version:
        raise Conflict(stale_message(case))
    spec = workflow_of(case)
    transition = next((t for t in public_actions(case) if t.id == transition_id), None)
    if transition is None:
        raise PermissionDenied(_("You cannot do this to this case now."))
    return _apply_transition(case, spec, transition, case_names(case), None, note=note)


def route_case(case: Case) -> None:
    """Assign a case by the scheme's routing rules (category and place), as a public report is."""
    _assign(case, "routing", None)


def _form_row(case: Case, form_key: str) -> DefinitionVersion:
    current = current_scheme(case.scheme_key)
    ref = current.member("form", form_key) if current else None
    if ref is None:
        raise NotFound(_("No such form."))
    return db.session.get(DefinitionVersion, ref.id)


def _notify(case: Case, relations: set[str], message: str) -> None:
    for relation in sorted(relations):
        if relation == "assignee" and case.assignee_id:
            db.session.add(Notification(user_id=case.assignee_id, case_id=case.id, message=message))
        elif relation == "reporter" and case.reporter_id:
            db.session.add(Notification(user_id=case.reporter_id, case_id=case.id, message=message))
        elif relation == "assignee_unit" and case.unit_id:
            db.session.add(Notification(unit_id=case.unit_id, case_id=case.id, message=message))
        elif relation == "tier_above_assignee" and case.unit is not None and case.unit.parent_id:
            db.session.add(Notification(unit_id=case.unit.parent_id, case_id=case.id, message=message))


# -- escalation (`fangan tick`) -------------------------------------------------------------------


def tick(now: dt.datetime | None = None, batch: int = 200, after_id: int = 0) -> dict[str, int]:
    """Apply due escalations once each; safe on many hosts at once (row locks, SKIP LOCKED, unique keys).

    Looks at one batch of running deadlines with ids above `after_id`; `last_id` in the result is where the
    next batch starts (the CLI commits between batches).
    """
    now = now or utcnow()
    counts = {"checked": 0, "applied": 0, "last_id": after_id}
    host = socket.gethostname()[:100]
    horizon = now + dt.timedelta(days=3)  # due-soon warnings look ahead; exact checks below
    # The case is locked with its deadline, and one somebody is acting on is skipped (the next tick takes it):
    # a step locks the case first, so the two never wait on each other in opposite orders.
    query = (db.select(CaseDeadline).join(Case, Case.id == CaseDeadline.case_id)
             .where(CaseDeadline.stopped_at.is_(None), CaseDeadline.paused_at.is_(None),
                    CaseDeadline.due_at <= horizon, CaseDeadline.id > after_id)
             .order_by(CaseDeadline.id).limit(batch).with_for_update(skip_locked=True, of=(CaseDeadline, Case)))
    for deadline in db.session.scalars(query).all():
        counts["checked"] += 1
        counts["last_id"] = deadline.id
        case = deadline.case
        spec = workflow_of(case)
        for escalation in spec.escalations:
            if escalation.deadline != deadline.key or not _is_due(escalation, deadline, case, now):
                continue
            try:
                with db.session.begin_nested():
                    db.session.add(EscalationApplied(deadline_id=deadline.id, escalation=escalation.id, host=host,
                                                     applied_at=now))
                    db.session.flush()
            except IntegrityError:
                continue  # another host applied it first
            _escalate(case, deadline, escalation, spec, now)
            counts["applied"] += 1
    db.session.flush()
    return counts


def _is_due(escalation: engine.EscalationSpec, deadline: CaseDeadline, case: Case, now: dt.datetime) -> bool:
    if escalation.when == "overdue":
        return now > deadline.due_at
    zone, calendar = district_zone(case.scheme_key), calendar_for(case.scheme_key)
    warn_from = calendar.add_working_hours(_local(now, zone), escalation.working_hours_before)
    return _utc(warn_from, zone) >= deadline.due_at and now <= deadline.due_at


def _escalate(case: Case, deadline: CaseDeadline, escalation: engine.EscalationSpec, spec: engine.WorkflowSpec,
              now: dt.datetime) -> None:
    name = tr(spec.deadlines[deadline.key].name) if deadline.key in spec.deadlines else deadline.key
    if "mark_overdue" in escalation.actions:
        case.overdue = True
    if "count_missed" in escalation.actions:
        deadline.met = False
    if "reassign_up" in escalation.actions and case.unit is not None and case.unit.parent is not None:
        case.unit, case.assignee = case.unit.parent, None
    message = (_("Case #%(id)s is overdue: %(deadline)s", id=case.id, deadline=name) if escalation.when == "overdue"
               else _("Case #%(id)s is due soon: %(deadline)s", id=case.id, deadline=name))
    if "notify" in escalation.actions:
        _notify(case, set(escalation.notify) or {"assignee_unit"}, message)
    case.events.append(CaseEvent(kind="escalation", transition=escalation.id, at=now, note=message,
                                 from_state=case.state, to_state=case.state))
    record_audit("case.escalate", "case", case.id, scheme_key=case.scheme_key,
                 after={"escalation": escalation.id, "deadline": deadline.key})


# -- lists ------------------------------------------------------------------------------------------


def inbox(user: Any, scheme_key: str, box: str, limit: int = 200) -> list[Case]:
    """mine | unit | due_soon | overdue — open cases within the user's scope."""
    query = db.select(Case).where(Case.scheme_key == scheme_key, Case.state_kind != "final")
    if box == "mine":
        query = query.where((Case.assignee_id == user.id) | (Case.reporter_id == user.id))
    else:
        wide = permissions.case_list_reach(user, scheme_key)
        if not wide.district_wide:
            query = query.where(_within(wide))
        if box == "due_soon":
            soon = utcnow() + dt.timedelta(days=1)
            query = query.where(Case.id.in_(db.select(CaseDeadline.case_id).where(
                CaseDeadline.stopped_at.is_(None), CaseDeadline.due_at <= soon, CaseDeadline.due_at >= utcnow())))
        elif box == "overdue":
            query = query.where(Case.overdue.is_(True) | Case.id.in_(db.select(CaseDeadline.case_id).where(
                CaseDeadline.stopped_at.is_(None), CaseDeadline.due_at < utcnow())))
    return list(db.session.scalars(query.order_by(Case.id.desc()).limit(limit)))


def _within(scope: permissions.Scope):  # noqa: ANN202
    """SQL condition: cases of the units or the areas a (non-district) scope reaches."""
    units, areas = list(scope.unit_ids or []) or [-1], list(scope.area_ids or []) or [-1]
    return Case.unit_id.in_(units) | Case.area_id.in_(areas)


def notifications_for(user: Any, limit: int = 50) -> list[Notification]:
    unit_ids = [a.unit_id for a in user.roles if a.unit_id] + [p.unit_id for p in user.posts if p.unit_id]
    mine = (Notification.user_id == user.id) | Notification.unit_id.in_(unit_ids or [-1])
    query = db.select(Notification).where(mine)
    return list(db.session.scalars(query.order_by(Notification.id.desc()).limit(limit)))



# -- metrics and the ledger -------------------------------------------------------------------------


def case_metrics(user: Any, scheme_key: str, start: dt.date, end: dt.date, by: str = "unit") -> list[dict[str, Any]]:
    """Per unit (or per area with `by="area"`), cases found in [start, end] and how they ended, with the
    rates the seeds use — in SQL, within the user's reach."""
    wide = permissions.case_list_reach(user, scheme_key)
    return ledger_rows(scheme_key, start, end, by, None if wide.district_wide else _within(wide))


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


def working_days_left(case: Case, deadline: CaseDeadline) -> float:
    """Working days from now to the deadline (negative when late), on the district's calendar."""
    zone = district_zone(case.scheme_key)
    return calendar_for(case.scheme_key).working_days_between(_local(utcnow(), zone), _local(deadline.due_at, zone))


def deliver_notifications(config: dict[str, Any], batch: int = 100, max_attempts: int = 5) -> dict[str, int]:
    """Send undelivered notifications through the configured hooks; each is sent once (row locks)."""
    from .hooks import HOOKS, active_hooks

    counts = {"delivered": 0, "failed": 0}
    names = active_hooks(config)
    if not names:
        return counts
    query = (db.select(Notification).where(Notification.delivered_at.is_(None), Notification.attempts < max_attempts)
             .order_by(Notification.id).limit(batch).with_for_update(skip_locked=True))
    for note in db.session.scalars(query).all():
        payload = {"id": note.id, "case_id": note.case_id, "user": note.user_id, "unit": note.unit_id,
                   "message": note.message, "created_at": note.created_at.isoformat()}
        try:
            for name in names:
                HOOKS[name](config, payload)
        except Exception:  # noqa: BLE001 - a gateway's failure is retried on the next tick, never raised
            note.attempts += 1
            counts["failed"] += 1
        else:
            note.delivered_at = utcnow()
            counts["delivered"] += 1
    db.session.flush()
    return counts


def open_cases_by_area(user: Any, scheme_key: str) -> list[dict[str, Any]]:
    """Open cases per area (with how many are overdue), within the user's scope: the case map list."""
    from sqlalchemy import case as when
    from sqlalchemy import func, select

    wide = permissions.case_list_reach(user, scheme_key)
    query = (select(Case.area_id, func.count(Case.id), func.sum(when((Case.overdue.is_(True), 1), else_=0)))
             .where(Case.scheme_key == scheme_key, Case.state_kind != "final").group_by(Case.area_id))
    if not wide.district_wide:
        query = query.where(_within(wide))
    areas = {a.id: a for a in db.session.scalars(db.select(Area).filter_by(scheme_key=scheme_key))}
    rows = [{"area": areas.get(area_id), "open": count, "overdue": int(overdue or 0)}
            for area_id, count, overdue in db.session.execute(query)]
    return sorted(rows, key=lambda r: (-r["open"], r["area"].key if r["area"] else "~"))


# -- moving open cases to a newer workflow version ------------------------------------------------------


def migration_preview(scheme_key: str, workflow_key: str, mapping: dict[str, str] | None = None
                      ) -> tuple[DefinitionVersion, list[dict[str, Any]]]:
    """Open cases of a workflow kept on older versions, each with the state it would take in the version in force.

    States with the same id map to themselves; `mapping` names the others (old id → new id).
    """
    target = workflow_version(scheme_key, workflow_key)
    spec = engine.workflow_spec(target.data)
    mapping = mapping or {}
    cases = db.session.scalars(db.select(Case).where(
        Case.scheme_key == scheme_key, Case.workflow_key == workflow_key, Case.state_kind != "final",
        Case.definition_version_id != target.id).order_by(Case.id))
    rows = []
    for case in cases:
        new_state = mapping.get(case.state) or (case.state if case.state in spec.states else None)
        rows.append({"case": case, "old": case.state, "new": new_state if new_state in spec.states else None})
    return target, rows


def migrate_cases(user: Any, scheme_key: str, workflow_key: str, mapping: dict[str, str] | None = None) -> int:
    """Move every open case of a workflow to the version in force; refuses if any state has no mapping."""
    if not permissions.can_manage_scheme(user, scheme_key) and not getattr(user, "is_admin", False):
        raise PermissionDenied(_("You may not migrate cases of this district."))
    target, rows = migration_preview(scheme_key, workflow_key, mapping)
    unmapped = sorted({r["old"] for r in rows if r["new"] is None})
    if unmapped:
        raise Conflict(_("Say which state these become first: %(states)s", states=", ".join(unmapped)))
    spec = engine.workflow_spec(target.data)
    now = utcnow()
    for row in rows:
        case = row["case"]
        before = {"version": case.definition_version_id, "state": case.state}
        case.definition_version_id, case.state = target.id, row["new"]
        case.state_kind = spec.kind_of(row["new"])
        case.events.append(CaseEvent(kind="migrated", user_id=getattr(user, "id", None), from_state=row["old"],
                                     to_state=row["new"], at=now, changes=before))
        record_audit("case.migrate", "case", case.id, user=user, scheme_key=scheme_key, before=before,
                     after={"version": target.id, "state": row["new"]})
    db.session.flush()
    return len(rows)
