"""Cases: open one from a report, fire transitions atomically with their forms, deadlines and audit; escalate.

Shared by the pages, the CLI (`fangan tick`) and later the JSON API.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from blinker import Namespace
from flask import has_request_context, url_for
from flask_babel import gettext as _
from sqlalchemy import insert, select
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ..audit.service import record_audit
from ..auth import permissions
from ..core.database import insert_returning, utcnow
from ..core.errors import Conflict, NotFound, PermissionDenied
from ..definitions.clock import district_now, district_today, district_zone
from ..definitions.models import DefinitionVersion
from ..definitions.service import DefinitionRef, current_scheme, scheme_in_force
from ..extensions import db
from ..forms import engine as form_engine
from ..forms import service as forms
from ..forms.engine import FormSpec, form_spec_of
from ..forms.models import Submission
from ..org.models import Unit
from ..org.service import area_spots, ids_named, names_text, units_offered, user_units
from ..web.i18n import tr
from . import engine
from .deadlines import extend_deadline, pause_or_resume, start_deadline, stop_deadline
from .models import Case, CaseEvent, Notification, unit_move
from .routing import assign, tier_holders

if TYPE_CHECKING:
    from ..auth.models import AnyUser

# -- definitions, calendar, names ---------------------------------------------------------


log = logging.getLogger(__name__)


# Declared for other parts to add to a case's page: a receiver gets the case and `user`, and returns the
# names it gives the page (the public report's panel: server/public/service.py).
signals = Namespace()
case_page = signals.signal("case-page")
# A case was opened (its first event is written as a row, not through the session): sent with the case, `at`
# and `user_id`, inside the transaction that opened it.
case_opened = signals.signal("case-opened")


def case_page_extras(user: AnyUser, case: Case) -> dict[str, Any]:
    """What other parts show on a case's page, for this user."""
    extras: dict[str, Any] = {}
    for _receiver, given in case_page.send(case, user=user):
        extras.update(given or {})
    return extras


@forms.record_shown.connect
def case_shows_record(submission_id: int, user: AnyUser = None) -> bool:
    """Whoever may see a case sees the photos of its report and of its steps."""
    case_ids = set(db.session.scalars(db.select(Case.id).where(Case.submission_id == submission_id)))
    case_ids |= set(db.session.scalars(db.select(CaseEvent.case_id).where(CaseEvent.submission_id == submission_id)))
    return any(permissions.can_view_case(user, db.session.get(Case, case_id)) for case_id in case_ids)


def workflow_of(case: Case) -> engine.WorkflowSpec:
    return engine.workflow_spec_of(workflow_definition_of(case))


def workflow_definition_of(case: Case) -> DefinitionRef | DefinitionVersion:
    """The version of its workflow a case follows: from the scheme in force when it is that one (no query, as
    for nearly every case), else its stored row."""
    if not has_request_context():  # (`fangan tick`, a job: the district in force is not kept between calls there,
        return case.definition_version  # while the session keeps the stored rows it has read)
    current = current_scheme(case.scheme_key)
    return (current.by_id.get(case.definition_version_id) if current else None) or case.definition_version


def public_state_names(scheme_key: str, version_ids: Iterable[int]) -> dict[tuple[int, str], Any]:
    """(workflow version id, state) → the name the public sees (`public_name`, else its name), for these
    versions of the district's workflows (those in force from memory, older ones read once each)."""
    current = current_scheme(scheme_key)
    out: dict[tuple[int, str], Any] = {}
    for version_id in set(version_ids):
        ref = (current.by_id.get(version_id) if current else None) or db.session.get(DefinitionVersion, version_id)
        if ref is None:
            continue
        for state_id, state in engine.workflow_spec_of(ref).states.items():
            out[(version_id, state_id)] = state.public_name or state.name
    return out


def _category_info(scheme_key: str, category: str | None) -> dict:
    if not category:
        return {}
    return _category_index(scheme_key).get(category, {})


def _category_index(scheme_key: str) -> dict[str, dict]:
    """Every category of the district by id (made once per content of its categories)."""
    from ..definitions.service import categories_key, derived, scheme_categories

    return derived((*categories_key(scheme_key), "index"),
                   lambda: {c["id"]: c for c in reversed(list(_categories(scheme_categories(scheme_key))))})


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


def case_form_names(case: Case) -> dict[str, Any]:
    """What a step's form may read of its case (`case.*`): its unit and `chain` (that unit and every unit above it,
    nearest first: an escalation offers only these), its area, category and state."""
    chain, unit = [], case.unit
    while unit is not None and len(chain) < 32:
        chain.append(unit.key)
        unit = unit.parent
    return {"unit": case.unit.key if case.unit else None, "chain": chain,
            "area": case.area.key if case.area else None, "category": case.category, "state": case.state}


def actor_for(user: AnyUser, case: Case) -> engine.Actor:
    """What this user holds over this case: capabilities reaching it, roles, tiers and relations."""
    if not getattr(user, "is_authenticated", False):
        return engine.Actor()
    capabilities = permissions.capabilities_over_case(user, case)
    roles = permissions.roles_over_case(user, case)
    today = district_today(case.scheme_key)
    posts = [p for p in user.posts if p.scheme_key == case.scheme_key and p.holds_on(today)]
    # A post over an area holds its tier over every area inside it (a road's segments): the case's area path
    # ("/3/8/") names the areas it lies in.
    within = set((case.area.path or "").strip("/").split("/")) if case.area is not None else set()
    tiers = frozenset(p.tier_key for p in posts if (p.area_id is not None and (
        p.area_id == case.area_id or str(p.area_id) in within))
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
        took = (frozenset(e.transition for e in case.events if e.user_id == user.id and e.transition)
                if "events" in case.__dict__ else frozenset(db.session.scalars(  # only their own steps' names
                    select(CaseEvent.transition).where(CaseEvent.case_id == case.id, CaseEvent.user_id == user.id,
                                                       CaseEvent.transition.is_not(None)))))
    return engine.Actor(capabilities, roles, tiers, frozenset(relations), took)


def _is_tier_above_assignee(user: AnyUser, case: Case, today: dt.date, my_tiers: set[str]) -> bool:
    """True if the user holds the tier the assignee's tier reports to (the chief ladder), or, for a case
    assigned to a unit, may dispatch cases of the unit above it."""
    scheme = scheme_in_force(case.scheme_key)
    parent_of = {key: tier.reports_to for key, tier in scheme.tiers.items()} if scheme else {}
    if case.assignee is not None:
        held = {p.tier_key for p in case.assignee.posts if p.scheme_key == case.scheme_key and p.holds_on(today)
                and (p.area_id in (case.area_id, None) or p.unit_id == case.unit_id)}
        if {parent_of.get(t) for t in held} & my_tiers:
            return True
    return permissions.can_dispatch_above_case(user, case)


def get_case(user: AnyUser, case_id: int) -> Case:
    case = db.session.get(Case, case_id)
    if case is None:
        raise NotFound(_("No such case."))
    if not permissions.can_view_case(user, case):
        raise PermissionDenied(_("You may not view this case."))
    return case


def available_actions(user: AnyUser, case: Case) -> list[engine.TransitionSpec]:
    spec = workflow_of(case)
    return engine.available(spec, case.state, actor_for(user, case), case_names(case))


def step_form(user: AnyUser, case: Case, transition: engine.TransitionSpec, action_url: str) -> Any:
    """The empty form a step asks for (None for a step without one), posting to `action_url`."""
    if not transition.form:
        return None
    row = _form_row(case, transition.form)
    page = forms.open_form(user, case.scheme_key, form_spec_of(row), row, case=case_form_names(case))
    page.action_url = action_url
    return page


def step_confirmation(case: Case, transition: engine.TransitionSpec) -> str | None:
    """What to ask before a step that ends a case or hands it back (None: the step asks nothing)."""
    ending = workflow_of(case).ending(transition)
    if ending == "ends":
        return _("%(step)s ends case #%(id)s. Go on?", step=tr(transition.name), id=case.id)
    if ending == "returns":
        return _("%(step)s hands case #%(id)s back. Go on?", step=tr(transition.name), id=case.id)
    return None


# -- routing and assignment -----------------------------------------------------------------


# -- opening and firing -----------------------------------------------------------------------


def workflow_definition(scheme_key: str, workflow_key: str | None = None) -> DefinitionRef:
    """The version of a workflow (default: the scheme's) in force, as plain data."""
    current = current_scheme(scheme_key)
    key = workflow_key or (current.compiled.default_workflow if current else None)
    row = current.member("workflow", key) if current and key else None
    if row is None:
        raise NotFound(_("This district has no such workflow."))
    return row


def workflow_version(scheme_key: str, workflow_key: str | None = None) -> DefinitionVersion:
    """The version of a workflow in force (the stored row)."""
    return db.session.get(DefinitionVersion, workflow_definition(scheme_key, workflow_key).id)


def _apply_plan(case: Case, spec: engine.WorkflowSpec, plan: engine.Plan, user: AnyUser, now: dt.datetime) -> None:
    old_kind = case.state_kind
    case.data = {**case.data, **{k: engine_json(v) for k, v in plan.changes.items()}}
    case.state, case.state_kind = plan.target, plan.target_kind
    for how, value in plan.assign:
        assign(case, how, value)
    names = LazyNames(lambda: case_names(case))  # read only if a deadline's formula asks
    for key in plan.stop:
        stop_deadline(case, key, now)
    for key in plan.start:
        start_deadline(case, spec, key, now, names)
    for key, unit, amount in plan.extend:
        extend_deadline(case, key, unit, amount, now)
    pause_or_resume(case, old_kind, plan.target_kind, now)
    case.outcome = spec.states[plan.target].outcome if plan.target_kind == "final" else None
    if plan.target_kind == "final":
        case.closed_at = now
    elif old_kind == "final":
        case.closed_at = None
    notify(case, plan.notify, _("Case #%(id)s: %(state)s", id=case.id or "",
                                  state=tr(spec.states[plan.target].name)))
    case.updated_at, case.updated_by_id = now, getattr(user, "id", None)


def engine_json(value: Any) -> Any:
    from ..forms.engine import to_json

    return to_json(value)


CASE_SOURCES = ("staff", "patrol", "public")


def reporting_unit_id(user: AnyUser, submission: Submission) -> int | None:
    """The reporter's own unit: their post's when they filed it under a post (its unit, or its area's), else the
    one unit of their roles; None for the public or someone with roles in several units."""
    if not getattr(user, "is_authenticated", False):
        return None
    post = submission.post if submission.post_id else None
    if post is not None:
        return post.unit_id or (post.area.unit_id if post.area else None)
    return getattr(forms.unit_of_filer(user, submission.scheme_key), "id", None)


def open_case(user: AnyUser, scheme_key: str, submission: Submission, workflow_key: str | None = None,
              source: str = "staff") -> Case:
    """Open a case from a report: initial state, the workflow's on-create effects (routing, deadlines).

    `source` says where it came from (CASE_SOURCES), for routing conditions and lists."""
    row = workflow_definition(scheme_key, workflow_key)
    spec = engine.workflow_spec_of(row)
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
        "reporter_unit_id": reporting_unit_id(user, submission),
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
    case_opened.send(case, at=now, user_id=getattr(user, "id", None))
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


def report_form(user: AnyUser, scheme_key: str) -> tuple[DefinitionVersion, FormSpec]:
    """The form this user reports a problem with (the scheme's workflow's `report_form`, in force), if they
    may report in this district."""
    if not permissions.can_report_case(user, scheme_key):
        raise PermissionDenied(_("You may not report problems in this district."))
    version = forms.form_version(scheme_key, workflow_version(scheme_key).data.get("report_form"))
    return version, form_spec_of(version)


def report_case(user: AnyUser, scheme_key: str, formdata: Any, action: str = "submit", *, store: bool = True,
                changed: str | None = None) -> Reported:
    """Report a problem, as the report page and the JSON API both do: the report form's record and the case
    opened from it, in the caller's one transaction. A resend of a report that already opened its case gives
    that case; a form with errors comes back as its page (`store=False` checks without storing)."""
    version, spec = report_form(user, scheme_key)
    result = forms.post_form(user, scheme_key, spec, version, formdata, action, store=store, changed=changed)
    if not isinstance(result, Submission):
        return Reported(page=result)
    case = db.session.scalar(db.select(Case).filter_by(submission_id=result.id))
    if case is not None:
        return Reported(case=case)
    return Reported(case=open_case(user, scheme_key, result), created=True)


@forms.record_stored.connect
def _open_cases_from_stored(submission: Submission, user: AnyUser = None, spec: Any = None) -> None:
    open_cases_from_record(user, spec, submission)


def open_cases_from_record(user: AnyUser, spec: Any, submission: Submission) -> list[Case]:
    """The cases a just-stored record opens by its form's `opens_cases` (a patrol's findings), pre-filled.

    Each case gets its own report (a record of the workflow's report form, made from this one) so that the
    case pages, the ledger and routing treat it like any other report. Safe to call twice.
    """
    context = forms.form_context(user, submission.scheme_key)
    if not form_engine.opening_rows(spec, submission.data, context):
        return []  # nothing to open: a district without a case workflow still takes patrols
    row = workflow_version(submission.scheme_key, spec.opens_cases.workflow)
    report_version = forms.form_version(submission.scheme_key, row.data.get("report_form"))
    report_spec = form_spec_of(report_version)
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


def fire(user: AnyUser, case_id: int, transition_id: str, expected_version: int | None, formdata: Any = None,
         action: str = "submit", *, changed: str | None = None) -> tuple[Case, forms.FormPage | None]:
    """Fire a transition; returns (case, None) when done, or (case, page) when its form needs correcting.

    Everything (the form's record, the state, the fields, deadlines, timeline and audit) goes into the
    caller's one transaction; a stale version or a failure anywhere leaves nothing behind.
    """
    case = _locked_case(user, case_id)
    if expected_version is not None and expected_version != case.version:
        raise Conflict(stale_message(case))
    spec = workflow_of(case)
    transition = spec.transition(transition_id)
    if transition is None or transition not in available_actions(user, case):
        raise PermissionDenied(_("You cannot do this to this case now."))
    submission = None
    names = case_names(case)
    if transition.form:
        form_row = _form_row(case, transition.form)
        form = form_spec_of(form_row)
        if formdata is None:
            raise Conflict(_("This step needs its form."))
        result = forms.post_form(user, case.scheme_key, form, form_row, formdata, action, case=case_form_names(case),
                                 changed=changed)
        if not isinstance(result, Submission):
            return case, result
        submission = result
        if getattr(submission, "resent", False) and _submission_used(submission.id):  # (a new one cannot be)
            raise Conflict(_("This form was already used. Open it again."))
        names = {**names, **submission.data}
        if not engine.guard_holds(transition, names):
            raise Conflict(_("The answers do not allow this step."))
    return _apply_transition(case, spec, transition, names, user, submission), None


def _submission_used(submission_id: int) -> bool:
    count = db.func.count
    return bool(db.session.scalar(db.select(count(CaseEvent.id)).where(CaseEvent.submission_id == submission_id))
                or db.session.scalar(db.select(count(Case.id)).where(Case.submission_id == submission_id)))


def lock_case(case: Case | int) -> Case | None:
    """The case row (a case, or its id) locked for this transaction and read afresh: of two people acting on a
    case at once, the second waits for the first to commit, then sees the new version and is told the case
    changed (PostgreSQL; on SQLite a write transaction already holds the database). None: no such case."""
    # NO KEY UPDATE: rows that only point at the case (its events, notifications) can still be added meanwhile.
    # Its unit comes in the same statement (every step reads it), unlocked: only the case's row is locked.
    case_id = case if isinstance(case, int) else case.id
    return db.session.scalars(select(Case).where(Case.id == case_id).options(joinedload(Case.unit))
                              .with_for_update(key_share=True, of=Case)
                              .execution_options(populate_existing=True)).one_or_none()


def _locked_case(user: AnyUser, case_id: int) -> Case:
    """A case to act on: locked and read in one statement, then checked like `get_case` (a refusal rolls back
    with the request, and the lock with it)."""
    case = lock_case(case_id)
    if case is None:
        raise NotFound(_("No such case."))
    if not permissions.can_view_case(user, case):
        raise PermissionDenied(_("You may not view this case."))
    return case


def _apply_transition(case: Case, spec: engine.WorkflowSpec, transition: engine.TransitionSpec, names: dict,
                      user: AnyUser, submission: Submission | None = None, note: str | None = None) -> Case:
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
    old_unit = case.unit
    with db.session.no_autoflush:  # one UPDATE of the case, at the end (reading its deadlines would flush it)
        _apply_plan(case, spec, plan, user, now)
    # Added beside the case, not through `case.events`: that would read the whole timeline first.
    db.session.add(CaseEvent(case=case, kind="transition", transition=transition.id, at=now, note=note,
                             user_id=getattr(user, "id", None), from_state=old_state, to_state=case.state,
                             submission_id=submission.id if submission else None,
                             changes={k: engine_json(v) for k, v in plan.changes.items()} or None,
                             **unit_move(old_unit, case.unit)))
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


def _form_row(case: Case, form_key: str) -> DefinitionRef:
    current = current_scheme(case.scheme_key)
    ref = current.member("form", form_key) if current else None
    if ref is None:
        raise NotFound(_("No such form."))
    return ref


# Who a `notify` name reaches: {"user_id": …} or {"unit_id": …} for each recipient.
Recipients = Callable[[Case, str], list[dict[str, int | None]]]
RECIPIENTS: dict[str, Recipients] = {
    "assignee": lambda case, _key: [{"user_id": case.assignee_id}],
    "reporter": lambda case, _key: [{"user_id": case.reporter_id}],
    "assignee_unit": lambda case, _key: [{"unit_id": case.unit_id}],
    "tier_above_assignee": lambda case, _key: [{"unit_id": case.unit.parent_id if case.unit is not None else None}],
    # {unit: k}: a fixed unit of the district.
    "unit": lambda case, key: [{"unit_id": db.session.scalar(db.select(Unit.id).filter_by(
        scheme_key=case.scheme_key, key=key))}],
    # {tier: t}: the holders of the tier over the case's place (nearest above), else over its unit: the person
    # when the post has an account, else the post's unit.
    "tier": lambda case, key: [{"user_id": p.user_id} if p.user_id else
                               {"unit_id": p.unit_id or (p.area.unit_id if p.area else None)}
                               for p in tier_holders(case, key)],
}


def notify(case: Case, names: set[str], message: str) -> None:
    """Notifications of a step or an escalation, to each name of its `notify` (see RECIPIENTS)."""
    for name in sorted(names):
        kind, _sep, key = name.partition(":")
        for target in RECIPIENTS[kind](case, key) if kind in RECIPIENTS else ():
            if any(target.values()):
                db.session.add(Notification(case_id=case.id, message=message, **target))


# -- escalation (`fangan tick`) -------------------------------------------------------------------


# -- metrics and the ledger -------------------------------------------------------------------------


# -- moving open cases to a newer workflow version ------------------------------------------------------


# -- the case queue ----------------------------------------------------------------------------------------------

@dataclass
class QueueChoices:
    """What the queue's filters and search know of a district: names of categories, places, states and units."""

    initial: list[tuple[str, str]]    # (workflow, state): where cases wait for the dispatcher
    labels: dict[str, Any]            # category id → name
    states: dict[str, Any]            # state id → name (over the district's workflows)
    units: list[Unit]                 # the units the filter offers: those the user reaches, the upper ones first
    text_fields: tuple[str, ...] = ()  # the case fields whose text the search reads (its description…)
    looks: dict[str, RowLook] = dataclasses.field(default_factory=dict)  # workflow → how its rows look
    more_units: bool = False          # the user reaches more units than the filter offers (found by the search)


@dataclass(frozen=True)
class RowLook:
    """How a workflow's cases show in the queue (its `queue:`): the field read as the row's line, and the
    choices that tag a row, with their labels."""

    line: str | None = None
    flags: tuple[tuple[str, Mapping[Any, Any]], ...] = ()  # (field, {flagged value: label})

    def apply(self, row: Any) -> None:
        data = row.data or {}
        text = data.get(self.line) if self.line else None
        row.line = str(text) if text not in (None, "") else ""
        row.flags = tuple(labels[data[name]] for name, labels in self.flags
                          if isinstance(data.get(name), str) and data[name] in labels)


def _categories(items: list[dict]) -> Iterator[dict]:
    """Every category of a tree, parents before their children."""
    for item in items:
        yield item
        yield from _categories(item.get("children") or [])


def category_labels(scheme_key: str) -> dict[str, Any]:
    """Each category of the district (national and its own) by id, with its name (translatable)."""
    from ..definitions.service import scheme_categories

    return {c["id"]: c.get("name") for c in _categories(scheme_categories(scheme_key))}


def source_label(source: str) -> str:
    """Where a case came from, in words (CASE_SOURCES)."""
    return {"staff": _("Staff"), "patrol": _("Patrol"), "public": _("Public")}.get(source, source)


def district_workflows(scheme_key: str) -> dict[str, engine.WorkflowSpec]:
    """The workflows a district's cases run on: its own, its default and those its categories name."""
    from ..definitions.service import scheme_categories

    scheme = scheme_in_force(scheme_key)
    keys = dict.fromkeys([*(scheme.data.get("workflows") or [] if scheme else []),
                          *([scheme.default_workflow] if scheme and scheme.default_workflow else [])])

    keys.update(dict.fromkeys(c["workflow"] for c in _categories(scheme_categories(scheme_key)) if c.get("workflow")))
    specs = {}
    for key in keys:
        try:
            specs[key] = engine.workflow_spec_of(workflow_definition(scheme_key, key))
        except NotFound:
            continue
    return specs


def waiting_for_dispatch(flows: Mapping[str, engine.WorkflowSpec]) -> list[tuple[str, str]]:
    """(workflow, state) pairs where cases wait for the dispatcher: where new cases land (the initial state), and
    every state a transition leaves from that a `case.dispatch` holder takes and that hands the case to a unit
    (待派遣 after registration, a case handed back)."""
    pairs = {(key, spec.initial) for key, spec in flows.items()}
    for key, spec in flows.items():
        for t in spec.transitions:
            if permissions.is_dispatchers_step(t.who.capabilities) and any(e.kind == "assign" for e in t.effects):
                pairs |= {(key, state) for state in t.sources}
    return sorted(pairs)


def _report_forms(scheme_key: str, flows: Mapping[str, engine.WorkflowSpec]) -> dict[str, FormSpec]:
    """Each workflow's report form in force (those whose form is missing are left out)."""
    out = {}
    for key, spec in flows.items():
        if spec.report_form:
            try:
                out[key] = form_spec_of(forms.form_version(scheme_key, spec.report_form))
            except NotFound:
                continue
    return out


def _text_fields(reports: Mapping[str, FormSpec]) -> tuple[str, ...]:
    """The case fields that hold free text: the text fields of the workflows' report forms."""
    names: dict[str, None] = {}
    for form in reports.values():
        names.update(dict.fromkeys(f.id for f in form_engine.value_fields(form.fields) if f.kind.free_text))
    return tuple(names)


def _row_look(spec: engine.WorkflowSpec, report: FormSpec | None) -> RowLook:
    """How a workflow's rows look: its `queue:`, else the report form's first field of several lines (or of
    one) as the line."""
    fields = list(form_engine.value_fields(report.fields)) if report else []
    by_id = {f.id: f for f in fields}
    line = spec.queue_line or next((f.id for f in fields if f.kind.long_text),
                                   next((f.id for f in fields if f.kind.free_text), None))
    flags = tuple((name, {value: label for value, label in by_id[name].choices if value in values})
                  for name, values in spec.queue_flags if name in by_id)
    return RowLook(line, flags)


def queue_choices(user: AnyUser, scheme_key: str, chosen_unit: int | None = None) -> QueueChoices:
    labels = category_labels(scheme_key)
    flows = district_workflows(scheme_key)
    initial = waiting_for_dispatch(flows)
    states = {s.id: s.name for spec in flows.values() for s in spec.states.values()}
    units, more = units_offered(user_units(permissions.case_list_reach(user, scheme_key), scheme_key), chosen_unit)
    reports = _report_forms(scheme_key, flows)
    return QueueChoices(initial, labels, states, units, _text_fields(reports),
                        {key: _row_look(spec, reports.get(key)) for key, spec in flows.items()}, more)


def queue_counts(user: AnyUser, scheme_key: str) -> dict[str, int]:
    """How many cases each tab of the queue holds for this person (their home page's figures)."""
    from . import inboxes

    return inboxes.tab_counts(user, scheme_key, waiting_for_dispatch(district_workflows(scheme_key)))


def case_queue(user: AnyUser, scheme_key: str, query: Any) -> tuple[Any, QueueChoices]:
    """A page of the case queue and the names its filters offer."""
    from . import inboxes

    if not permissions.can_view_scheme(user, scheme_key):
        raise PermissionDenied(_("You have no role in this district."))

    choices = queue_choices(user, scheme_key, query.unit)
    page = inboxes.queue(user, scheme_key, query, *_queue_search(scheme_key, query, choices))
    plain = RowLook()
    for row in page.rows:
        choices.looks.get(row.workflow_key, plain).apply(row)
        row.category_name = choices.labels.get(row.category, row.category or "")
        row.state_name = choices.states.get(row.state, row.state)
    return page, choices


def _queue_search(scheme_key: str, query: Any, choices: QueueChoices) -> tuple[Any, ...]:
    """What a queue's search reads besides the query: each workflow's first state, the categories' names, the
    text fields, and the places and units named by the words (read only for a search: a city has thousands)."""
    from ..org.models import Area

    words = query.q if query.q and not query.q.removeprefix("#").isdigit() else ""
    return (choices.initial, {k: names_text(v) for k, v in choices.labels.items()}, choices.text_fields,
            ids_named(Area, scheme_key, words), ids_named(Unit, scheme_key, words))


def case_queue_map(user: AnyUser, scheme_key: str, query: Any) -> dict[str, Any]:
    """The queue's cases on a map, as GeoJSON: the tab's, searched and filtered as the list is, each at its
    reported position (or on its place's shape), coloured by how it stands (late, due within a day, running,
    closed) and linked to its page."""
    from . import inboxes

    if not permissions.can_view_scheme(user, scheme_key):
        raise PermissionDenied(_("You have no role in this district."))
    choices = queue_choices(user, scheme_key, query.unit)
    points = inboxes.queue_points(user, scheme_key, query, *_queue_search(scheme_key, query, choices))
    now = utcnow()
    return _points_geojson(points, lambda p: {
        "title": " · ".join(w for w in (f"#{p.id}", tr(choices.labels.get(p.category, p.category or "")),
                                        tr(choices.states.get(p.state, p.state))) if w),
        "url": url_for("workflow.case", case_id=p.id), "tone": _tone(p, now)})


def case_heat(user: AnyUser, scheme_key: str, first: dt.date, last: dt.date) -> dict[str, Any]:
    """Where the problems of the district's days [first, last] came from, as GeoJSON points for a heat map:
    every case within the user's reach opened then, open or closed, at its reported position (or on its
    place's shape), without anything about it but where."""
    from ..definitions.clock import day_bounds
    from . import inboxes

    if not permissions.can_view_scheme(user, scheme_key):
        raise PermissionDenied(_("You have no role in this district."))
    since, until = day_bounds(first, last, scheme_key)
    return _points_geojson(inboxes.opened_points(user, scheme_key, since, until), lambda _p: {})


def _points_geojson(points: list[Any], properties: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """Cases as GeoJSON points: each at its reported position, or on its place's shape where it has none."""
    spots = area_spots({p.area_id for p in points if (p.lat is None or p.lng is None) and p.area_id})
    features = []
    for p in points:
        at = (p.lat, p.lng) if p.lat is not None and p.lng is not None else spots.get(p.area_id)
        if at is None or not (-90 <= at[0] <= 90 and -180 <= at[1] <= 180):
            continue
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [at[1], at[0]]},
                         "properties": properties(p)})
    return {"type": "FeatureCollection", "features": features}


def _tone(p: Any, now: dt.datetime) -> str:
    """How a case stands, as a map's pin shows it: closed, late, due within a day, or running."""
    if p.state_kind == "final":
        return "done"
    if p.overdue or (p.due_at is not None and p.due_at < now):
        return "late"
    return "soon" if p.due_at is not None and p.due_at <= now + dt.timedelta(days=1) else "ok"


# -- the case page -----------------------------------------------------------------------------------------------

def case_details(case: Case) -> dict[str, Any]:
    """What the case page shows of a case beyond its state: the report's values as people read them (labels of
    choices, names of places) and the case's own fields (the unit it was handed to, the dispatcher's
    instructions, an extension's reason) with their labels."""
    report = form_spec_of(case.submission.definition_version) if case.submission else None
    live = forms.live_labels(case.scheme_key, report, case.submission.data or {}) if report else {}
    declared = case.definition_version.data.get("fields") or []
    units = {u.key: u.name for u in db.session.scalars(db.select(Unit).where(
        Unit.scheme_key == case.scheme_key,
        Unit.key.in_([str(case.data.get(f["id"])) for f in declared if f.get("type") == "unit"])))}
    fields = []
    for field in declared:
        value = (case.data or {}).get(field["id"])
        if value in (None, "", []):
            continue
        shown = units.get(str(value), value) if field.get("type") == "unit" else value
        if field.get("type") in ("datetime", "date") and isinstance(value, str):
            try:  # shown in the district's time, like every other time on the page
                shown = dt.datetime.fromisoformat(value) if field["type"] == "datetime" else value
            except ValueError:
                shown = value
            if isinstance(shown, dt.datetime) and shown.tzinfo is None:
                # A workflow's `now` (and a form's datetime) is the district's wall time, stored without a zone.
                shown = shown.replace(tzinfo=district_zone(case.scheme_key))
        fields.append((field.get("label") or field["id"], shown))
    return {"report_spec": report, "report_live": live, "case_fields": fields}
