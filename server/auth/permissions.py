"""Every permission in one place: named `can_<verb>_<noun>` functions over a user's scope.

A user's scope in a scheme comes from the roles they hold (assigned, or given by the tier of a post
they hold today): `district` roles reach every unit, `subtree` roles their unit and everything under
it, `posted` roles only the units and areas of their assignments and posts. System administrators
reach everything.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask import g, has_request_context

from ..extensions import db

CAPABILITIES = (
    "scheme.manage", "org.view", "org.manage", "audit.view",
    "form.submit", "form.view_all",
    "case.report", "case.handle", "case.dispatch", "case.view_all",
    "patrol.file", "patrol.view_compliance",
    "assessment.enter", "assessment.publish", "assessment.view",
    "board.manage", "dashboard.view", "moderation.manage",
)


@dataclass(frozen=True)
class Scope:
    """What one user may do in one scheme, and where. `unit_ids is None` means the whole district."""

    scheme_key: str
    capabilities: frozenset[str]
    unit_ids: frozenset[int] | None
    area_ids: frozenset[int] | None

    @property
    def district_wide(self) -> bool:
        return self.unit_ids is None

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    def covers_unit(self, unit_id: int | None) -> bool:
        return self.unit_ids is None or (unit_id is not None and unit_id in self.unit_ids)

    def covers_area(self, area_id: int | None, unit_id: int | None = None) -> bool:
        if self.unit_ids is None:
            return True
        return (area_id is not None and self.area_ids is not None and area_id in self.area_ids) or (
            unit_id is not None and unit_id in self.unit_ids
        )


EMPTY = frozenset()


def _scheme_roles(scheme_key: str) -> tuple[dict[str, dict], dict[str, dict]]:
    from ..definitions.service import current_scheme_data

    data = current_scheme_data(scheme_key) or {}
    roles = {r["id"]: r for r in data.get("roles", [])}
    tiers = {t["id"]: t for t in data.get("tiers", [])}
    return roles, tiers


def _subtree_ids(unit_ids: set[int]) -> set[int]:
    from ..org.models import Unit

    if not unit_ids:
        return set()
    paths = db.session.scalars(db.select(Unit.path).where(Unit.id.in_(unit_ids))).all()
    out: set[int] = set()
    for path in paths:
        out |= set(db.session.scalars(db.select(Unit.id).where(Unit.path.startswith(path))))
    return out


def _areas_of_units(unit_ids: set[int]) -> set[int]:
    from ..org.models import Area

    if not unit_ids:
        return set()
    return set(db.session.scalars(db.select(Area.id).where(Area.unit_id.in_(unit_ids))))


def compute_scope(user: Any, scheme_key: str, today: dt.date | None = None) -> Scope:
    """Work out a user's scope in a scheme from roles, posts and the current scheme version."""
    if user is None or not getattr(user, "is_authenticated", False):
        return Scope(scheme_key, EMPTY, frozenset(), frozenset())
    if user.is_admin:
        return Scope(scheme_key, frozenset(CAPABILITIES), None, None)
    today = today or dt.date.today()
    roles, tiers = _scheme_roles(scheme_key)
    grants: list[tuple[str, int | None, int | None]] = [  # (role, unit, area)
        (a.role_key, a.unit_id, None) for a in user.roles if a.scheme_key == scheme_key
    ]
    for post in user.posts:
        if post.scheme_key == scheme_key and post.holds_on(today):
            tier_role = tiers.get(post.tier_key, {}).get("role")
            if tier_role:
                grants.append((tier_role, post.unit_id or (post.area.unit_id if post.area else None), post.area_id))
    capabilities: set[str] = set()
    district = False
    subtree_roots: set[int] = set()
    units: set[int] = set()
    areas: set[int] = set()
    for role_key, unit_id, area_id in grants:
        role = roles.get(role_key)
        if role is None:
            continue  # a role the current scheme no longer defines grants nothing
        capabilities |= set(role.get("capabilities", []))
        scope = role.get("scope")
        if scope == "district":
            district = True
        elif scope == "subtree" and unit_id is not None:
            subtree_roots.add(unit_id)
        elif scope == "posted":
            if unit_id is not None and area_id is None:
                units.add(unit_id)
            if area_id is not None:
                areas.add(area_id)
    if district:
        return Scope(scheme_key, frozenset(capabilities), None, None)
    units |= _subtree_ids(subtree_roots)
    areas |= _areas_of_units(units)
    return Scope(scheme_key, frozenset(capabilities), frozenset(units), frozenset(areas))


def scope_for(user: Any, scheme_key: str) -> Scope:
    """The user's scope, computed once per request."""
    if not has_request_context():
        return compute_scope(user, scheme_key)
    cache = g.setdefault("_scopes", {})
    key = (getattr(user, "id", None), scheme_key)
    if key not in cache:
        cache[key] = compute_scope(user, scheme_key)
    return cache[key]


# -- named permissions: one per guarded action --------------------------------

def can_load_scheme(user: Any, scheme_key: str | None) -> bool:
    """Loading a new district is for system administrators; a new version of one for its managers."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if user.is_admin:
        return True
    return scheme_key is not None and can_manage_scheme(user, scheme_key)


def can_manage_scheme(user: Any, scheme_key: str) -> bool:
    scope = scope_for(user, scheme_key)
    return scope.has("scheme.manage") and scope.district_wide


def can_view_scheme(user: Any, scheme_key: str) -> bool:
    return bool(scope_for(user, scheme_key).capabilities)


def can_view_org(user: Any, scheme_key: str) -> bool:
    return scope_for(user, scheme_key).has("org.view")


def can_view_unit(user: Any, unit: Any) -> bool:
    scope = scope_for(user, unit.scheme_key)
    return scope.has("org.view") and scope.covers_unit(unit.id)


def can_view_area(user: Any, area: Any) -> bool:
    scope = scope_for(user, area.scheme_key)
    return scope.has("org.view") and scope.covers_area(area.id, area.unit_id)


def can_manage_org(user: Any, unit: Any) -> bool:
    scope = scope_for(user, unit.scheme_key)
    return scope.has("org.manage") and scope.covers_unit(unit.id)


def can_view_audit(user: Any, scheme_key: str) -> bool:
    scope = scope_for(user, scheme_key)
    return scope.has("audit.view") and scope.district_wide


def can_manage_users(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_admin)


def can_submit_form(user: Any, scheme_key: str) -> bool:
    return scope_for(user, scheme_key).has("form.submit")


def can_view_submissions(user: Any, scheme_key: str) -> bool:
    """Anyone who may fill forms sees their own records; `form.view_all` adds those of units in scope."""
    scope = scope_for(user, scheme_key)
    return scope.has("form.submit") or scope.has("form.view_all")


def can_view_submission(user: Any, submission: Any) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if submission.user_id == user.id:
        return True
    scope = scope_for(user, submission.scheme_key)
    return scope.has("form.view_all") and scope.covers_unit(submission.unit_id)


def can_manage_forms(user: Any, scheme_key: str | None = None) -> bool:
    """Preview any definition, import XLSForms: scheme managers and system administrators."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_admin or (scheme_key and can_manage_scheme(user, scheme_key)))
