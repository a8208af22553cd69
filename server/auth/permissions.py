"""Every permission in one place: named `can_<verb>_<noun>` functions over a user's scope.

A user's scope in a scheme comes from the roles they hold (assigned, or given by the tier of a post
they hold today): `district` roles reach every unit, `subtree` roles their unit and everything under
it, `posted` roles only the units and areas of their assignments and posts. System administrators
reach everything.

Services call these functions, and restrict their lists with the `*_reach` functions (the scope one
action reaches); no other module names a capability (tests/unit/test_permissions_in_one_place.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from flask import g, has_request_context

from ..core.registry import Registry, registry
from ..definitions.clock import district_today
from ..definitions.compiled import Role, Tier
from ..definitions.service import scheme_in_force

if TYPE_CHECKING:
    from .models import AnyUser

CAPABILITIES = (
    "scheme.manage", "org.view", "org.manage", "audit.view",
    "form.submit", "form.view_all",
    "case.report", "case.handle", "case.dispatch", "case.view_all",
    "patrol.file", "patrol.view_compliance",
    "assessment.enter", "assessment.publish", "assessment.view",
    "board.manage", "dashboard.view", "moderation.manage",
)


@dataclass(frozen=True)
class Reach:
    """Where one capability reaches: `units is None` means the whole district."""

    units: frozenset[int] | None
    areas: frozenset[int] | None


@dataclass(frozen=True)
class Scope:
    """What one user may do in one scheme, and where, capability by capability.

    Each capability reaches only as far as the roles that grant it: a community head who is also a
    district-wide assessor may assess everywhere but handle cases only in the community.
    `unit_ids`/`area_ids` are the union over all capabilities (None: somewhere district-wide).
    """

    scheme_key: str
    reach: Mapping[str, Reach]

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(self.reach)

    def has(self, capability: str) -> bool:
        return capability in self.reach

    def only(self, capability: str) -> Scope:
        """This scope cut down to one capability (empty when the user does not hold it)."""
        return Scope(self.scheme_key, {capability: self.reach[capability]} if capability in self.reach else {})

    def preferring(self, wide: str, narrow: str) -> Scope:
        """Where `wide` reaches when the user holds it anywhere, else where `narrow` does."""
        return self.only(wide) if self.has(wide) else self.only(narrow)

    def among(self, capabilities: Collection[str]) -> Scope:
        """This scope cut down to those of `capabilities` the user holds: where any of them reaches."""
        return Scope(self.scheme_key, {c: self.reach[c] for c in capabilities if c in self.reach})

    @property
    def unit_ids(self) -> frozenset[int] | None:
        if any(r.units is None for r in self.reach.values()):
            return None
        return frozenset().union(*(r.units for r in self.reach.values())) if self.reach else frozenset()

    @property
    def area_ids(self) -> frozenset[int] | None:
        if any(r.units is None for r in self.reach.values()):
            return None
        return frozenset().union(*(r.areas or frozenset() for r in self.reach.values())) if self.reach else frozenset()

    @property
    def district_wide(self) -> bool:
        return bool(self.reach) and self.unit_ids is None

    def covers_unit(self, unit_id: int | None) -> bool:
        units = self.unit_ids
        return bool(self.reach) and (units is None or (unit_id is not None and unit_id in units))

    def covers_area(self, area_id: int | None, unit_id: int | None = None) -> bool:
        if not self.reach:
            return False
        units, areas = self.unit_ids, self.area_ids
        if units is None:
            return True
        return (area_id is not None and areas is not None and area_id in areas) or (
            unit_id is not None and unit_id in units)


def _scheme_roles(scheme_key: str) -> tuple[Mapping[str, Role], Mapping[str, Tier]]:
    scheme = scheme_in_force(scheme_key)
    return (scheme.roles, scheme.tiers) if scheme else ({}, {})


class UnitTree(Protocol):
    """What scopes need to know of the unit tree; `org` registers it (auth stands below org)."""

    def units_under(self, unit_ids: set[int]) -> set[int]:
        """The units given and every unit below them."""

    def areas_of(self, unit_ids: set[int]) -> set[int]:
        """The areas those units are responsible for."""

    def areas_within(self, area_ids: set[int]) -> set[int]:
        """The areas given and every area inside them (a road's segments), whichever unit heads them."""


UNIT_TREE: Registry[UnitTree] = registry("unit tree")


def _tree() -> UnitTree:
    return UNIT_TREE.require()["units"]


def _subtree_ids(unit_ids: set[int]) -> set[int]:
    return _tree().units_under(unit_ids) if unit_ids else set()


def _areas_of_units(unit_ids: set[int]) -> set[int]:
    return _tree().areas_of(unit_ids) if unit_ids else set()


def _areas_within(area_ids: set[int]) -> set[int]:
    return _tree().areas_within(area_ids) if area_ids else set()


def compute_scope(user: AnyUser, scheme_key: str, today: dt.date | None = None) -> Scope:
    """Work out a user's scope in a scheme from roles, posts and the current scheme version."""
    if user is None or not getattr(user, "is_authenticated", False):
        return Scope(scheme_key, {})
    if user.is_admin:
        return Scope(scheme_key, {cap: Reach(None, None) for cap in CAPABILITIES})
    reaches: dict[str, list[Reach]] = {}
    for _role_key, capabilities, reach in _grants(user, scheme_key, today):
        for capability in capabilities:
            reaches.setdefault(capability, []).append(reach)
    return Scope(scheme_key, {cap: _merge(items) for cap, items in reaches.items()})


def _held(user: AnyUser, scheme_key: str, today: dt.date, tiers: dict) -> list[tuple[str, int | None, int | None]]:
    """(role, unit, area) for each role the user holds: assigned at a unit, or by a post held today."""
    held: list[tuple[str, int | None, int | None]] = [
        (a.role_key, a.unit_id, None) for a in user.roles if a.scheme_key == scheme_key
    ]
    for post in user.posts:
        if post.scheme_key == scheme_key and post.holds_on(today):
            tier = tiers.get(post.tier_key)
            tier_role = tier.role if tier else None
            if tier_role:
                held.append((tier_role, post.unit_id or (post.area.unit_id if post.area else None), post.area_id))
    return held


def _grants(user: AnyUser, scheme_key: str, today: dt.date | None = None) -> list[tuple[str, list[str], Reach]]:
    """(role, its capabilities, where it reaches) for each role the user holds, assigned or by a post today."""
    today = today or district_today(scheme_key)
    roles, tiers = _scheme_roles(scheme_key)
    out = []
    for role_key, unit_id, area_id in _held(user, scheme_key, today, tiers):
        role = roles.get(role_key)
        if role is None:
            continue  # a role the current scheme no longer defines grants nothing
        reach = _reach_of(role.scope, unit_id, area_id)
        if reach is not None:
            out.append((role_key, list(role.capabilities), reach))
    return out


def roles_reaching(user: AnyUser, unit: Any, capability: str) -> frozenset[str]:
    """The roles in which the user holds `capability` over this unit (a rating sheet asks who marks)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return frozenset()
    if has_request_context():
        grants = g.setdefault("_grants", {}).setdefault((user.id, unit.scheme_key), None)
        if grants is None:
            grants = g._grants[(user.id, unit.scheme_key)] = _grants(user, unit.scheme_key)
    else:
        grants = _grants(user, unit.scheme_key)
    return frozenset(role_key for role_key, capabilities, reach in grants
                     if capability in capabilities and (reach.units is None or unit.id in reach.units))


def _reach_of(kind: str | None, unit_id: int | None, area_id: int | None) -> Reach | None:
    if kind == "district":
        return Reach(None, None)
    if kind == "subtree" and unit_id is not None:
        units = _subtree_ids({unit_id})
        return Reach(frozenset(units), frozenset(_areas_of_units(units)))
    if kind == "posted":
        if area_id is not None:  # a post over a road reaches its segments too, whoever heads them
            return Reach(frozenset(), frozenset(_areas_within({area_id})))
        if unit_id is not None:
            return Reach(frozenset({unit_id}), frozenset(_areas_of_units({unit_id})))
    return None  # a subtree or posted role with no unit reaches nothing


def _merge(items: list[Reach]) -> Reach:
    if any(r.units is None for r in items):
        return Reach(None, None)
    return Reach(frozenset().union(*(r.units for r in items)), frozenset().union(*(r.areas or frozenset()
                                                                                      for r in items)))


def scope_for(user: AnyUser, scheme_key: str) -> Scope:
    """The user's scope, computed once per request."""
    if not has_request_context():
        return compute_scope(user, scheme_key)
    cache = g.setdefault("_scopes", {})
    key = (getattr(user, "id", None), scheme_key)
    if key not in cache:
        cache[key] = compute_scope(user, scheme_key)
    return cache[key]


# -- named permissions: one per guarded action --------------------------------

def can_load_scheme(user: AnyUser, scheme_key: str | None) -> bool:
    """Loading a new district is for system administrators; a new version of one for its managers."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if user.is_admin:
        return True
    return scheme_key is not None and can_manage_scheme(user, scheme_key)


def can_manage_scheme(user: AnyUser, scheme_key: str) -> bool:
    return scope_for(user, scheme_key).only("scheme.manage").district_wide


def can_answer_reporters(user: AnyUser, scheme_key: str) -> bool:
    """Find, export or erase one public reporter's personal data when they ask: the district's scheme managers
    and system administrators."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_admin or can_manage_scheme(user, scheme_key))


def can_view_scheme(user: AnyUser, scheme_key: str) -> bool:
    """See a district at all: any role in it."""
    return bool(scope_for(user, scheme_key).capabilities)


def can_view_org(user: AnyUser, scheme_key: str) -> bool:
    return scope_for(user, scheme_key).has("org.view")


def org_view_reach(user: AnyUser, scheme_key: str) -> Scope:
    """Where the lists of units and areas reach: the user's `org.view`."""
    return scope_for(user, scheme_key).only("org.view")


def can_view_unit(user: AnyUser, unit: Any) -> bool:
    return scope_for(user, unit.scheme_key).only("org.view").covers_unit(unit.id)


def can_view_area(user: AnyUser, area: Any) -> bool:
    return scope_for(user, area.scheme_key).only("org.view").covers_area(area.id, area.unit_id)


def can_manage_org(user: AnyUser, unit: Any) -> bool:
    return scope_for(user, unit.scheme_key).only("org.manage").covers_unit(unit.id)


def can_manage_org_in(user: AnyUser, scheme_key: str) -> bool:
    """Somewhere in the district: opens the organisation forms (each change is then checked on its own)."""
    return scope_for(user, scheme_key).has("org.manage")


def can_manage_unit(user: AnyUser, unit: Any) -> bool:
    return can_manage_org(user, unit)


def can_add_unit(user: AnyUser, scheme_key: str, parent: Any) -> bool:
    """Under a unit one manages; a unit at the top of the tree needs the whole district."""
    scope = scope_for(user, scheme_key).only("org.manage")
    return scope.covers_unit(parent.id) if parent is not None else scope.district_wide


def can_manage_area(user: AnyUser, area: Any) -> bool:
    return scope_for(user, area.scheme_key).only("org.manage").covers_area(area.id, area.unit_id)


def can_add_area(user: AnyUser, scheme_key: str, unit: Any, parent: Any) -> bool:
    """For a unit one manages, inside an area one manages; an area of no unit needs the whole district."""
    scope = scope_for(user, scheme_key).only("org.manage")
    if scope.district_wide:
        return True
    return (unit is not None and scope.covers_unit(unit.id)
            and (parent is None or scope.covers_area(parent.id, parent.unit_id)))


def can_view_post(user: AnyUser, post: Any) -> bool:
    scope = scope_for(user, post.scheme_key).only("org.view")
    return scope.covers_area(post.area_id, post.unit_id) if post.area_id else scope.covers_unit(post.unit_id)


def can_manage_post(user: AnyUser, post: Any) -> bool:
    """Over an area and a unit both within one's reach: a post's account gets the tier's role from its unit."""
    return can_appoint_post(user, post.scheme_key, post.area, post.unit)


def can_link_account(user: AnyUser, scheme_key: str, tier_key: str) -> bool:
    """Whether linking an account to a post of this tier gives no more than the manager's own reach: a tier
    whose role reaches the whole district needs a district-wide organisation manager."""
    roles, tiers = _scheme_roles(scheme_key)
    tier = tiers.get(tier_key)
    role = roles.get(tier.role) if tier and tier.role else None
    return role is None or role.scope != "district" or scope_for(user, scheme_key).only("org.manage").district_wide


def can_appoint_post(user: AnyUser, scheme_key: str, area: Any, unit: Any) -> bool:
    """Over an area or a unit one manages (both, when the post names both)."""
    scope = scope_for(user, scheme_key).only("org.manage")
    if area is None and unit is None:
        return scope.district_wide
    return ((area is None or scope.covers_area(area.id, area.unit_id))
            and (unit is None or scope.covers_unit(unit.id)))


def can_import_org(user: AnyUser, scheme_key: str) -> bool:
    """A spreadsheet may touch any unit, area or post: the whole district's organisation managers only."""
    return scope_for(user, scheme_key).only("org.manage").district_wide


def can_export_org(user: AnyUser, scheme_key: str) -> bool:
    """The export lists every post with its contact: the same people who may import."""
    return can_import_org(user, scheme_key)


def can_run_assessment(user: AnyUser, scheme_key: str) -> bool:
    """Open periods, decide appeals, publish and correct: the district's assessment office."""
    return scope_for(user, scheme_key).only("assessment.publish").district_wide


def score_reach(user: AnyUser, scheme_key: str) -> frozenset[int] | None:
    """The most units whose scores the user may see (viewing or marking them), None for every unit: a first cut
    before the exact checks (`can_view_unit_scores`, `can_assess_unit`)."""
    return scope_for(user, scheme_key).among(("assessment.view", "assessment.enter", "assessment.publish")).unit_ids


def can_view_all_scores(user: AnyUser, scheme_key: str) -> bool:
    """Every unit's draft and published scores, appeals and the bulletin: the office and district-wide readers.
    Marking reaches no further than the units one marks (a community rater sees the station, not its rivals)."""
    scope = scope_for(user, scheme_key)
    return scope.only("assessment.publish").district_wide or scope.only("assessment.view").district_wide


def can_view_assessment(user: AnyUser, scheme_key: str) -> bool:
    """Open the assessment pages: score readers, assessors and the office, wherever they reach."""
    return bool(scope_for(user, scheme_key).among(("assessment.view", "assessment.enter", "assessment.publish"))
                .capabilities)


def assessor_roles(user: AnyUser, unit: Any) -> frozenset[str]:
    """The roles in which the user marks this unit (`assessment.enter` over it)."""
    return roles_reaching(user, unit, "assessment.enter")


def can_view_deductions(user: AnyUser, period: Any, unit: Any) -> bool:
    """What lies behind a unit's score: the office, the unit's assessors and score readers, and dashboard
    readers over it."""
    return (can_run_assessment(user, period.scheme_key) or can_assess_unit(user, unit)
            or can_view_unit_scores(user, unit) or dashboard_reach(user, period.scheme_key).covers_unit(unit.id))


def can_view_dashboard(user: AnyUser, scheme_key: str) -> bool:
    """The district's dashboard: holders of `dashboard.view`, for the units in their reach."""
    return scope_for(user, scheme_key).has("dashboard.view")


def dashboard_reach(user: AnyUser, scheme_key: str) -> Scope:
    """The units the dashboard shows the user: their `dashboard.view`."""
    return scope_for(user, scheme_key).only("dashboard.view")


def can_search_places(user: AnyUser, scheme_key: str, form_key: str) -> bool:
    """Find a road or grid by name for a form's place field (its search box): anyone with a role in the district;
    the public only for the district's public report form, while reporting is open."""
    return is_public_report_form(scheme_key, form_key) or (
        bool(getattr(user, "is_authenticated", False)) and can_view_scheme(user, scheme_key))


def is_public_report_form(scheme_key: str, form_key: str) -> bool:
    """The form the public reports on in this district, while reporting is open (filled as the public)."""
    scheme = scheme_in_force(scheme_key)
    return bool(scheme and scheme.public.reporting and scheme.public.report_form == form_key)


def can_view_job(user: AnyUser, job: Any) -> bool:
    """A job's progress and result (a batch of boards, an export): whoever started it, and system administrators."""
    return bool(getattr(user, "is_authenticated", False)) and (
        job.user_id == getattr(user, "id", None) or bool(getattr(user, "is_admin", False)))


def can_list_boards(user: AnyUser, scheme_key: str) -> bool:
    """The staff's list of the district's boards (each board itself is public): anyone with a role in it."""
    return can_view_scheme(user, scheme_key)


def can_print_boards(user: AnyUser, scheme_key: str) -> bool:
    """Print every notice board of the district at once: `board.manage`, and system administrators."""
    return scope_for(user, scheme_key).has("board.manage") or bool(getattr(user, "is_admin", False))


def can_moderate(user: AnyUser, scheme_key: str) -> bool:
    """Check public reports' text and photos before they show publicly: `moderation.manage`, district-wide."""
    return scope_for(user, scheme_key).only("moderation.manage").district_wide


def can_contact_reporter(user: AnyUser, case: Any) -> bool:
    """See a public reporter's name and phone in clear, to call them back: dispatchers over the case."""
    return scope_for(user, case.scheme_key).only("case.dispatch").covers_area(case.area_id, case.unit_id)


def is_dispatchers_step(capabilities: Collection[str]) -> bool:
    """Whether a workflow step that asks for these capabilities is the dispatcher's (`case.dispatch`)."""
    return "case.dispatch" in capabilities


def can_dispatch_cases(user: AnyUser, scheme_key: str) -> bool:
    """Hand new cases to units (a dispatcher, whose home page counts what waits for dispatch): `case.dispatch`."""
    return scope_for(user, scheme_key).has("case.dispatch")


def can_report_case(user: AnyUser, scheme_key: str) -> bool:
    """Report a problem, and so open a case: `case.report`."""
    return scope_for(user, scheme_key).has("case.report")


def can_view_cases(user: AnyUser, scheme_key: str) -> bool:
    """The case pages of a district: reporters, handlers, dispatchers and readers of every case in reach."""
    return bool(scope_for(user, scheme_key).among(("case.report", "case.handle", "case.dispatch", "case.view_all"))
                .capabilities)


def case_view_reach(user: AnyUser, scheme_key: str) -> Scope:
    """Where the user sees cases besides their own: their `case.view_all`, `case.handle` or `case.dispatch`."""
    return scope_for(user, scheme_key).among(("case.view_all", "case.handle", "case.dispatch"))


def can_view_case(user: AnyUser, case: Any) -> bool:
    """Its reporter and assignee, and anyone whose `case.view_all`, `case.handle` or `case.dispatch` reaches it."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if user.id in (case.reporter_id, case.assignee_id):
        return True
    return case_view_reach(user, case.scheme_key).covers_area(case.area_id, case.unit_id)


def case_list_reach(user: AnyUser, scheme_key: str) -> Scope:
    """Where the inbox, the ledger and the map of open cases reach: `case.view_all` where held, else
    `case.handle`."""
    return scope_for(user, scheme_key).preferring("case.view_all", "case.handle")


def can_view_case_metrics(user: AnyUser, scheme_key: str) -> bool:
    """The ledger of found, rectified and on-time cases: `case.view_all` or `case.handle`."""
    scope = scope_for(user, scheme_key)
    return scope.has("case.view_all") or scope.has("case.handle")


def can_view_open_cases_by_area(user: AnyUser, scheme_key: str) -> bool:
    """Where the open cases are, area by area: the same people as the ledger."""
    return can_view_case_metrics(user, scheme_key)


def capabilities_over_case(user: AnyUser, case: Any) -> frozenset[str]:
    """The capabilities the user holds over the case's place (a workflow step's `who: capabilities`)."""
    scope = scope_for(user, case.scheme_key)
    return frozenset(c for c in scope.capabilities if scope.only(c).covers_area(case.area_id, case.unit_id))


def roles_over_case(user: AnyUser, case: Any) -> frozenset[str]:
    """The roles the user holds that reach the case, assigned or given by a post held today (a tier's role):
    a role held elsewhere does not act here."""
    if user is None or not getattr(user, "is_authenticated", False):
        return frozenset()
    roles, tiers = _scheme_roles(case.scheme_key)

    def reaches(role_key: str, unit_id: int | None, area_id: int | None) -> bool:
        role = roles.get(role_key)
        reach = _reach_of(role.scope if role else None, unit_id, area_id)
        if reach is None:
            return False
        if reach.units is None:
            return True
        return (case.unit_id is not None and case.unit_id in reach.units) or (
            case.area_id is not None and case.area_id in (reach.areas or frozenset()))

    held = _held(user, case.scheme_key, district_today(case.scheme_key), tiers)
    return frozenset(role_key for role_key, unit_id, area_id in held if reaches(role_key, unit_id, area_id))


def can_handle_case_unit(user: AnyUser, case: Any) -> bool:
    """Handle the cases of the case's unit: `case.handle` over it (the workflow's `assignee_unit`)."""
    return case.unit_id is not None and scope_for(user, case.scheme_key).only("case.handle").covers_unit(case.unit_id)


def can_dispatch_above_case(user: AnyUser, case: Any) -> bool:
    """Dispatch the cases of the unit above the case's unit: for a case assigned to a unit, the tier above."""
    parent_id = case.unit.parent_id if case.unit is not None else None
    return parent_id is not None and scope_for(user, case.scheme_key).only("case.dispatch").covers_unit(parent_id)


def can_assess_unit(user: AnyUser, unit: Any, roles: Collection[str] = ()) -> bool:
    """Enter an assessor's marks for a unit within one's `assessment.enter` reach; when the sheet or item
    names the `roles` that mark it, in one of those roles."""
    if not scope_for(user, unit.scheme_key).only("assessment.enter").covers_unit(unit.id):
        return False
    return not roles or user.is_admin or bool(roles_reaching(user, unit, "assessment.enter") & set(roles))


def can_view_unit_scores(user: AnyUser, unit: Any) -> bool:
    """See a unit's draft and published scores: `assessment.view` over the unit."""
    return scope_for(user, unit.scheme_key).only("assessment.view").covers_unit(unit.id)


def can_appeal(user: AnyUser, unit: Any, roles: Collection[str] = ()) -> bool:
    """Appeal a unit's draft scores: its own people (a role or post held at the unit, with `assessment.view`
    over it), or holders of the sheet's `appeal_roles` reaching it. District-wide readers and the office, who
    see every unit, do not appeal for one."""
    if not can_view_unit_scores(user, unit):
        return False
    scheme_roles, tiers = _scheme_roles(unit.scheme_key)
    viewing = {key for key, role in scheme_roles.items() if "assessment.view" in role.capabilities}
    held = _held(user, unit.scheme_key, district_today(unit.scheme_key), tiers)
    if any(role_key in viewing and unit_id == unit.id for role_key, unit_id, _area in held):
        return True
    return bool(roles and roles_reaching(user, unit, "assessment.view") & set(roles))


def can_view_compliance(user: AnyUser, scheme_key: str) -> bool:
    """Who met and who missed the patrol rules, for the units in the user's reach."""
    return scope_for(user, scheme_key).has("patrol.view_compliance")


def compliance_reach(user: AnyUser, scheme_key: str) -> Scope:
    """The units whose patrol compliance the user sees: their `patrol.view_compliance`."""
    return scope_for(user, scheme_key).only("patrol.view_compliance")


def can_view_audit(user: AnyUser, scheme_key: str) -> bool:
    return scope_for(user, scheme_key).only("audit.view").district_wide


def can_manage_users(user: AnyUser) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_admin)


def can_edit_calendar(user: AnyUser) -> bool:
    """The working-day calendar is the site's (every district's deadlines): system administrators only."""
    return can_manage_users(user)


def can_submit_form(user: AnyUser, scheme_key: str) -> bool:
    return scope_for(user, scheme_key).has("form.submit")


def form_submit_reach(user: AnyUser, scheme_key: str) -> Scope | None:
    """The places a user may file forms for (None for someone not logged in): their `form.submit`."""
    if not getattr(user, "is_authenticated", False):
        return None
    return scope_for(user, scheme_key).only("form.submit")


def submission_view_reach(user: AnyUser, scheme_key: str) -> Scope:
    """Whose records the user sees besides their own: the units of their `form.view_all`."""
    return scope_for(user, scheme_key).only("form.view_all")


def submission_filter_reach(user: AnyUser, scheme_key: str) -> Scope:
    """The units, areas and people the records filters offer: `form.view_all` where held, else `form.submit`."""
    return scope_for(user, scheme_key).preferring("form.view_all", "form.submit")


def can_view_submissions(user: AnyUser, scheme_key: str) -> bool:
    """Anyone who may fill forms sees their own records; `form.view_all` adds those of units in scope."""
    scope = scope_for(user, scheme_key)
    return scope.has("form.submit") or scope.has("form.view_all")


def can_view_submission(user: AnyUser, submission: Any) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if submission.user_id == user.id:
        return True
    return scope_for(user, submission.scheme_key).only("form.view_all").covers_unit(submission.unit_id)


def can_manage_forms(user: AnyUser, scheme_key: str | None = None) -> bool:
    """Preview any definition, import XLSForms: scheme managers and system administrators."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_admin or (scheme_key and can_manage_scheme(user, scheme_key)))
