"""Where a case goes: the names a routing condition reads, the scheme's routing rules, and assignment."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ..auth.models import User
from ..core.cache import memoize
from ..definitions.service import scheme_in_force
from ..expressions import Expression, ExpressionError, compile_expression
from ..extensions import db
from ..org.models import Post, Unit
from .models import Case

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
    scheme = scheme_in_force(case.scheme_key)
    rules = scheme.routing if scheme else ()
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
            post = next(iter(tier_holders(case, target["tier"], by_unit=False)), None)
            if post is not None:
                return post.unit or (post.area.unit if post.area else None), post.user
    return None, None


def tier_holders(case: Case, tier_key: str, by_unit: bool = True) -> list[Post]:
    """Who holds tier `tier_key` over the case's place today: the posts over its area, else over the nearest
    area above it (a road's post for a case on its segment); with `by_unit`, else the posts over its unit."""
    from ..definitions.clock import district_today

    today = district_today(case.scheme_key)
    held = db.select(Post).filter_by(scheme_key=case.scheme_key, tier_key=tier_key).where(
        Post.started_on <= today, (Post.ended_on.is_(None)) | (Post.ended_on >= today))
    if case.area is not None:
        # The area's path ("/3/8/") lists it and the areas above it, outermost first: nearest is last.
        chain = [int(part) for part in (case.area.path or "").strip("/").split("/") if part.isdigit()] or [case.area_id]
        posts = list(db.session.scalars(held.where(Post.area_id.in_(chain)).order_by(Post.id)))
        for area_id in reversed(chain):
            nearest = [p for p in posts if p.area_id == area_id]
            if nearest:
                return nearest
    if by_unit and case.unit_id is not None:
        return list(db.session.scalars(held.where(Post.unit_id == case.unit_id, Post.area_id.is_(None))
                                       .order_by(Post.id)))
    return []


def assign(case: Case, how: str, value: Any) -> None:
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
        # The ids too, at once: a step writes the case in one flush at its end, and what it does meanwhile
        # (notify the unit it was handed to, find the tier over it) reads them.
        case.unit_id = case.unit.id if case.unit is not None else None
        case.assignee_id = user.id if user is not None else None


def route_case(case: Case) -> None:
    """Assign a case by the scheme's routing rules (category and place), as a public report is."""
    assign(case, "routing", None)
