"""Live choice sources: where a choice field's options come from when its definition says `choices_from: <name>`
(and where area and location fields take their areas from).

Each source is one registration: how its candidates are loaded (all of them, or only the keys picked, for a
check), which field option narrows them by kind, what a `choice_filter` reads of a candidate (`choice.*`) and its
line in the docs. The definition schema lists the registered names (`fangan docs` writes the docs table).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func
from sqlalchemy.orm import aliased, joinedload

from ..auth.models import RoleAssignment, User
from ..core.registry import Registry, registry
from ..definitions.service import (
    categories_key,
    derived,
    scheme_categories,
    scheme_in_force,
    scheme_picker_categories,
)
from ..extensions import db
from ..org.models import Area, Unit
from ..web.i18n import text_language, tr


@dataclass
class ChoiceContext:
    """What a source may read while one form is filled."""

    scheme_key: str
    scope: Any = None  # the filler's reach for filling forms (None: the public, who see the whole district)
    seen_areas: dict[str, Area] | None = None  # collects the areas loaded, by key (the record's area is found there)


# (context, only these keys or None for all, with related keys) → candidates: dicts with at least `value` and
# `label`; keys starting with "_" are the source's own and never reach a choice filter.
Loader = Callable[[ChoiceContext, "frozenset[str] | None", bool], list[dict[str, Any]]]


@dataclass(frozen=True)
class ChoiceSource:
    name: str
    load: Loader
    by_key: bool = False  # loads only the keys asked for (a check of picked values needs no full list)
    kinds_from: str | None = None  # the field option (`unit_kinds`, `area_kinds`) that keeps candidates by `kind`
    reads: tuple[str, ...] = ("value", "label")  # what a choice_filter reads of a candidate as `choice.*`
    doc: str = ""
    # (context, kinds or ()) → how many candidates there are, counted in the database; for sources that can be
    # thousands long (a page then offers a search instead of the list: see `LongList`).
    count: Callable[[ChoiceContext, tuple[str, ...]], int] | None = None

    def docs(self) -> dict[str, str]:
        return {"`choices_from`": f"`{self.name}`", "choices": self.doc,
                "narrowed by": f"`{self.kinds_from}`" if self.kinds_from else "—",
                "a `choice_filter` reads": ", ".join(f"`choice.{name}`" for name in self.reads)}


CHOICE_SOURCES: Registry[ChoiceSource] = registry("choice source")


class LongList(list):
    """A list of choices too long to send: only the rows of the values picked are held, and `len()` is how many
    choices there are (what the page says beside its search)."""

    def __init__(self, picked: list[Any], total: int) -> None:
        super().__init__(picked)
        self.total = total

    def __len__(self) -> int:
        return self.total


def choice_source(name: str, *, by_key: bool = False, kinds_from: str | None = None,
                  reads: tuple[str, ...] = ("value", "label"), doc: str = "",
                  count: Callable[[ChoiceContext, tuple[str, ...]], int] | None = None) -> Callable[[Loader], Loader]:
    """Decorator: register a loader as the live choice source `name`."""

    def decorator(load: Loader) -> Loader:
        CHOICE_SOURCES.add(name, ChoiceSource(name, load, by_key=by_key, kinds_from=kinds_from, reads=reads, doc=doc,
                                              count=count))
        return load

    return decorator


@functools.cache
def _places_query(model: Any, related: bool, by_key: bool) -> Any:
    """A district's active units or areas (with their parents, and an area's unit, when `related`), all or
    those of the `keys` given: built once per kind of question, the district and keys come as parameters."""
    query = db.select(model).where(model.scheme_key == bindparam("scheme_key"), model.active.is_(True))
    if related:
        query = query.options(*(joinedload(r) for r in ((Unit.parent,) if model is Unit else (Area.unit, Area.parent))))
    if by_key:
        query = query.where(model.key.in_(bindparam("keys", expanding=True)))
    return query.order_by(*((Unit.path,) if model is Unit else (Area.kind, Area.position)))


@functools.cache
def _all_areas() -> Any:
    """Every active area of a district with its unit's and parent's keys: columns, not objects."""
    unit, parent = aliased(Unit), aliased(Area)
    return (db.select(Area.key, Area.name, Area.kind, unit.key, parent.key, Area.id, Area.unit_id)
            .outerjoin(unit, unit.id == Area.unit_id).outerjoin(parent, parent.id == Area.parent_id)
            .where(Area.scheme_key == bindparam("scheme_key"), Area.active.is_(True))
            .order_by(Area.kind, Area.position))


def _params(context: ChoiceContext, wanted: frozenset[str] | None) -> dict[str, Any]:
    return {"scheme_key": context.scheme_key, "keys": sorted(wanted or ())}


@choice_source("units", by_key=True, kinds_from="unit_kinds", reads=("value", "label", "kind", "parent"),
               doc="the district's units (streets, communities, departments, squads)")
def _units(context: ChoiceContext, wanted: frozenset[str] | None, related: bool) -> list[dict[str, Any]]:
    units = db.session.scalars(_places_query(Unit, related, wanted is not None), _params(context, wanted))
    return [{"value": u.key, "label": tr(u.name), "kind": u.kind,
             "parent": u.parent.key if related and u.parent else None} for u in units]


def _count_areas(context: ChoiceContext, kinds: tuple[str, ...]) -> int:
    query = db.select(func.count(Area.id)).where(Area.scheme_key == context.scheme_key, Area.active.is_(True))
    return db.session.scalar(query.where(Area.kind.in_(kinds)) if kinds else query)


@choice_source("areas", by_key=True, kinds_from="area_kinds", reads=("value", "label", "kind", "unit", "parent"),
               count=_count_areas,
               doc="the district's areas (roads, segments, grids) within the filler's reach; what `area` and "
                   "`location` fields always list")
def _areas(context: ChoiceContext, wanted: frozenset[str] | None, related: bool) -> list[dict[str, Any]]:
    if wanted is None:  # every place of the district, as plain columns: thousands of them in a city
        found = db.session.execute(_all_areas(), _params(context, None))
        rows = [{"value": key, "label": tr(name), "kind": kind, "unit": unit, "parent": parent, "_id": id_,
                 "_unit_id": unit_id} for key, name, kind, unit, parent, id_, unit_id in found]
    else:  # the few picked: as objects, which the record stored next takes its area from
        areas = db.session.scalars(_places_query(Area, related, True), _params(context, wanted)).all()
        if context.seen_areas is not None:
            context.seen_areas.update((a.key, a) for a in areas)
        rows = [{"value": a.key, "label": tr(a.name), "kind": a.kind,
                 "unit": a.unit.key if related and a.unit else None,
                 "parent": a.parent.key if related and a.parent else None, "_id": a.id, "_unit_id": a.unit_id}
                for a in areas]
    scope = context.scope
    if scope is not None and not scope.district_wide:
        rows = [r for r in rows if scope.covers_area(r["_id"], r["_unit_id"])]
    return rows


@choice_source("people", doc="the active people holding a role in the district")
def _people(context: ChoiceContext, wanted: frozenset[str] | None, related: bool) -> list[dict[str, Any]]:
    users = db.session.scalars(db.select(User).join(RoleAssignment).filter(
        RoleAssignment.scheme_key == context.scheme_key, User.active.is_(True)).distinct().order_by(User.username))
    return [{"value": u.username, "label": u.display_name} for u in users]


def _flat_categories(items: list[dict], parent: dict | None = None, group: str | None = None) -> list[dict]:
    """Each category as a choice, a sub-category after its parent (`大类 · 小类`); `_group` names the top-level
    category it sits under and `_short` its own name, for pickers grouped by 大类."""
    out = []
    for item in items:
        label = f"{tr(parent['name'])} · {tr(item['name'])}" if parent else tr(item["name"])
        # A top-level category with sub-categories heads its own group (picked when none of them fits).
        own = group or (tr(item["name"]) if item.get("children") else None)
        out.append({"value": item["id"], "label": label, "parent": parent["id"] if parent else None,
                    "_group": own, "_short": tr(item["name"])})
        out += _flat_categories(item.get("children", []), item, group or tr(item["name"]))
    return out


@choice_source("categories", by_key=True, reads=("value", "label", "parent"),
               doc="the scheme's problem categories, a sub-category after its parent (`大类 · 小类`); a picker "
                   "leaves out the lists' categories the district's own stand for (`replaces`, or the same name)")
def _categories(context: ChoiceContext, wanted: frozenset[str] | None, related: bool) -> list[dict[str, Any]]:
    # Labels depend on the language only: kept by the categories' content hashes and the language. A full
    # list is what a picker offers; checking or naming chosen values looks among every category.
    picker = wanted is None
    return derived((*categories_key(context.scheme_key), "choices", picker, text_language()),
                   lambda: _flat_categories((scheme_picker_categories if picker else scheme_categories)(
                       context.scheme_key)))


@choice_source("tiers", doc="the scheme's chief tiers (总路长, 一级路长 …)")
def _tiers(context: ChoiceContext, wanted: frozenset[str] | None, related: bool) -> list[dict[str, Any]]:
    scheme = scheme_in_force(context.scheme_key)
    return [{"value": t.id, "label": tr(t["name"])} for t in scheme.tiers.values()] if scheme else []
