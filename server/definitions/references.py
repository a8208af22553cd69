"""Cross-reference checks run after the schema: ids exist, are unique, states connect, expressions name known fields."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from ..core.registry import registry
from ..core.suggestions import close_matches
from ..expressions import ExpressionError, check_expression, compile_expression
from .errors import N_, DefinitionError, Said, _noun, expression_problem_zh, hint, noun, said, say
from .loader import SourceDocument
from .maps import tiles_problems

# Names every form expression may use besides its own fields: who fills it, when, for which period.
FORM_CONTEXT_NAMES = frozenset({"user.*", "today", "now", "period.*", "scheme.*"})
# Names a case expression may use besides the workflow's and its forms' fields (engine concepts, not scheme names).
CASE_CONTEXT_NAMES = frozenset({
    "category", "category_working_days", "category_class",
    "area", "unit", "state", "reporter", "assignee", "created_at", "today", "now",
    "user.*", "case.*", "area.*", "unit.*",
})
ROUTING_NAMES = frozenset({"category", "area", "area.key", "area.kind", "area.unit", "area.parent", "unit", "source",
                           "form.*"})
PERIOD_ORDER = ("month", "quarter", "half_year", "year")

# Every metric has these; the options each metric source reads besides them are the source's (`reads` in
# server/assessment/sources.py): anything else would be silently ignored, so it is refused.
METRIC_COMMON = frozenset({"id", "name", "source"})
STREAK_NAMES = frozenset({"score", "grade", "rank", "flag", "flags", "passing", "vetoed"})

Path = list[str | int]


def _walk_tree(items: Any, path: Path, key: str = "children") -> Iterator[tuple[Path, dict]]:
    """Yield (path, item) for every dict in a list and its nested `key` lists."""
    if not isinstance(items, list):
        return
    for i, item in enumerate(items):
        if isinstance(item, dict):
            yield [*path, i], item
            yield from _walk_tree(item.get(key), [*path, i, key], key)


def _level(fields: Any, path: Path, field_types: dict[str, Any]) -> Iterator[tuple[Path, dict, Any]]:
    """(path, field, its type) of the fields whose values sit at one level: sections are transparent, a repeat's
    rows are a level below."""
    for i, f in enumerate(fields if isinstance(fields, list) else []):
        if not isinstance(f, dict):
            continue
        kind = field_types.get(f.get("type"))
        yield [*path, i], f, kind
        if kind is not None and kind.transparent:
            yield from _level(f.get("fields"), [*path, i, "fields"], field_types)


def _expression_names(source: Any) -> set[str]:
    """The names an expression reads (none when it does not compile: `expr` reports that)."""
    try:
        return set(compile_expression(source).names) if isinstance(source, str) else set()
    except ExpressionError:
        return set()


def _may_contain(outer: str, inner: str, kind_parents: dict) -> bool:
    """Whether an area of kind `outer` may contain one of kind `inner` at any depth, as the area kinds'
    `parent_kinds` allow (a kind naming none may sit inside any)."""
    seen: set[str] = set()
    todo = [inner]
    while todo:
        parents = kind_parents.get(todo.pop())
        if not isinstance(parents, list) or outer in parents:
            return True
        todo.extend(p for p in parents if p not in seen)
        seen.update(parents)
    return False


def _declared_around(kind: str, kind_parents: dict) -> set[str]:
    """The kinds an area of `kind` sits inside by the `parent_kinds` declared along the way (a segment's road and
    town): an area of one of them never sits inside one of `kind` too."""
    seen: set[str] = set()
    todo = [kind]
    while todo:
        parents = kind_parents.get(todo.pop())
        for parent in parents if isinstance(parents, list) else ():
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _hint(name: str, known: Iterable[str]) -> Any:
    """The closest known name, as words in either language (" (did you mean …?)"), or nothing."""
    found = close_matches(name, known, n=1)
    return hint(found[0] if found else None)


def _either(words: list[str]) -> Said | str:
    """"a or b or c" in either language."""
    out: Said | str = words[0]
    for more in words[1:]:
        out = say(N_("%(one)s or %(other)s"), one=out, other=more)
    return out


# The nouns a reference names, for the catalogue (said in Chinese on the Chinese page).
REFERENCE_NOUNS = [
    _noun("reference", "area kind"), _noun("reference", "area"), _noun("reference", "board"),
    _noun("reference", "case field"), _noun("reference", "category list"),
    _noun("reference", "category of the category lists"), _noun("reference", "category"),
    _noun("reference", "charge"), _noun("reference", "deadline"), _noun("reference", "escalation"),
    _noun("reference", "field"), _noun("reference", "flag"), _noun("reference", "form"),
    _noun("reference", "grade"), _noun("reference", "item"), _noun("reference", "metric"),
    _noun("reference", "patrol rule"), _noun("reference", "role"), _noun("reference", "routing rule"),
    _noun("reference", "rules"), _noun("reference", "score sheet"), _noun("reference", "section"),
    _noun("reference", "size"), _noun("reference", "state"), _noun("reference", "tier"),
    _noun("reference", "transition"), _noun("reference", "unit group"), _noun("reference", "unit kind"),
    _noun("reference", "unit"), _noun("reference", "workflow"), _noun("reference", "roles"),
    _noun("reference", "tiers"), _noun("reference", "units"), _noun("reference", "unit kinds"),
    _noun("reference", "area kinds"), _noun("reference", "latitude"), _noun("reference", "longitude"),
]


class ReferenceChecker:
    """Check one scheme's documents against each other; collects errors instead of stopping."""

    def __init__(self, scheme: SourceDocument | None, documents: dict[tuple[str, str], SourceDocument],
                 built_in: frozenset[tuple[str, str]] = frozenset(), themes: frozenset[str] | None = None):
        self.scheme = scheme
        self.documents = documents
        self.built_in = built_in  # definitions shipped with the product: they may not name a district's roles
        self.themes = themes  # installed themes (folders under themes/); None: not checked
        self.errors: list[DefinitionError] = []
        self.unit_rules: set[str] = set()  # patrol rules counted per unit (no person misses them)
        self.rule_tiers: dict[str, set[str]] = {}  # patrol rules binding the holders of these tiers only

    # -- helpers -----------------------------------------------------------
    def err(self, doc: SourceDocument, path: Path, message: str, zh: str = "") -> None:
        self.errors.append(doc.error(path, message, zh))

    def ids(self, doc: SourceDocument, entries: Iterable[tuple[Path, dict]], what: str) -> set[str]:
        """Collect ids, reporting duplicates at the second occurrence."""
        seen: set[str] = set()
        for path, item in entries:
            value = item.get("id")
            if not isinstance(value, str):
                continue
            if value in seen:
                self.err(doc, [*path, "id"], *said(N_("duplicate %(what)s id '%(id)s'"), what=noun(what), id=value))
            seen.add(value)
        return seen

    def ref(self, doc: SourceDocument, path: Path, value: Any, known: set[str], what: str) -> None:
        for i, v in enumerate(_as_list(value)):
            if isinstance(v, str) and v not in known:
                p = [*path, i] if isinstance(value, list) else path
                self.err(doc, p, *said(N_("unknown %(what)s '%(name)s'%(hint)s"), what=noun(what), name=v,
                                       hint=_hint(v, known)))

    def expr(self, doc: SourceDocument, path: Path, source: Any, names: Iterable[str]) -> None:
        if not isinstance(source, str):
            return
        for problem in check_expression(source, names):
            if problem.startswith("unknown name"):
                self.err(doc, path, problem, expression_problem_zh(problem))
            # other problems (syntax, forbidden operators, unknown functions) were reported by the schema check

    def ref_theme(self, doc: SourceDocument, value: Any) -> None:
        if self.themes is not None and isinstance(value, str) and value not in self.themes:
            self.err(doc, ["theme"], *said(N_("unknown theme '%(name)s'%(hint)s: installed themes are %(themes)s"),
                                           name=value, hint=_hint(value, self.themes),
                                           themes=", ".join(sorted(self.themes))))

    def _combined_reaches_the_total(self, doc: SourceDocument, d: dict, path: Path, combo: dict,
                                    sheet_names: set[Any]) -> None:
        """A combination graded with the sheet's own bands must reach exactly the sheet's total when every sheet
        it names is at full marks: `monthly * 0.4` reaches 40 of 100 and would grade every unit as failing."""
        totals = {}
        for name in sheet_names:
            other = d if name == d.get("id") else getattr(self.documents.get(("score_sheet", name)), "data", None)
            if not isinstance(other, dict) or not isinstance(other.get("total"), int | float):
                return  # reported elsewhere (an unknown sheet, a sheet without a total)
            totals[name] = other["total"]
        if combo.get("aggregate") == "sum":
            self.err(doc, [*path, "grades"], *said(N_("a sum over the period is not on the sheet's scale: give "
                                                      "the combination grades of its own, or grades: none")))
            return
        try:
            reach = compile_expression(combo.get("formula") or "").evaluate(totals)
        except ExpressionError:
            return  # the formula's own problem is reported by the schema check
        if isinstance(reach, int | float) and abs(reach - d["total"]) > 1e-6:
            self.err(doc, [*path, "grades"], *said(N_(
                "the formula reaches %(reach)s when every sheet it names is at full marks, not the sheet's total of "
                "%(total)s: the sheet's grade bands would grade it wrongly; give the combination grades of its own, "
                "or grades: none"), reach=f"{reach:g}", total=f"{d['total']:g}"))

    def available(self, kind: str) -> set[str]:
        return {i for (k, i) in self.documents if k == kind}

    # -- scheme ------------------------------------------------------------
    def check(self) -> list[DefinitionError]:
        s = self.scheme
        if s is None or not isinstance(s.data, dict):
            return self.errors
        d = s.data
        unit_kinds = self.ids(s, _walk_tree(d.get("unit_kinds"), ["unit_kinds"], "-"), "unit kind")
        units = self.ids(s, _walk_tree(d.get("units"), ["units"]), "unit")
        area_kinds = self.ids(s, _walk_tree(d.get("area_kinds"), ["area_kinds"], "-"), "area kind")
        areas = self.ids(s, _walk_tree(d.get("areas"), ["areas"]), "area")
        roles = self.ids(s, _walk_tree(d.get("roles"), ["roles"], "-"), "role")
        tiers = self.ids(s, _walk_tree(d.get("tiers"), ["tiers"], "-"), "tier")
        for path, tier in _walk_tree(d.get("tiers"), ["tiers"], "-"):
            for key in ("covers", "holders"):
                rule = tier.get(key) if isinstance(tier.get(key), dict) else {}
                low, high = rule.get("min"), rule.get("max")
                if isinstance(low, int) and isinstance(high, int) and low > high:
                    self.err(s, [*path, key], *said(N_("min %(low)s is more than max %(high)s: no number of posts "
                                                       "can meet it"), low=low, high=high))
        groups = self.ids(s, _walk_tree(d.get("unit_groups"), ["unit_groups"], "-"), "unit group")
        categories = self.ids(s, _walk_tree(d.get("categories"), ["categories"]), "category")
        self.ref(s, ["category_lists"], d.get("category_lists"), self.available("category_list"), "category list")
        list_categories: set[str] = set()
        for list_id in _as_list(d.get("category_lists")):
            listed = self.documents.get(("category_list", list_id))
            if listed is not None and isinstance(listed.data, dict):
                list_categories |= self.ids(listed, _walk_tree(listed.data.get("categories"), ["categories"]),
                                            "category")
                categories |= list_categories
                for path, cat in _walk_tree(listed.data.get("categories"), ["categories"]):
                    self.ref(listed, [*path, "workflow"], cat.get("workflow"), self.available("workflow"), "workflow")
        self.ids(s, _walk_tree(d.get("routing"), ["routing"], "-"), "routing rule")

        forms, workflows = self.available("form"), set(_as_list(d.get("workflows")))
        sheets, boards = set(_as_list(d.get("score_sheets"))), set(_as_list(d.get("boards")))
        self.ref(s, ["forms"], d.get("forms"), self.available("form"), "form")
        self.ref(s, ["workflows"], d.get("workflows"), self.available("workflow"), "workflow")
        self.ref(s, ["score_sheets"], d.get("score_sheets"), self.available("score_sheet"), "score sheet")
        self.ref(s, ["boards"], d.get("boards"), self.available("board"), "board")
        self.ref(s, ["default_workflow"], d.get("default_workflow"), workflows, "workflow")
        self.ref_theme(s, d.get("theme"))
        self.ref(s, ["patrol_form"], d.get("patrol_form"), forms, "form")
        public = d.get("public") if isinstance(d.get("public"), dict) else {}
        self.ref(s, ["public", "report_form"], public.get("report_form"), forms, "form")
        keep, follow = public.get("keep_contacts_days"), public.get("followup_days", 15)
        if isinstance(keep, int) and isinstance(follow, int) and keep < follow:
            self.err(s, ["public", "keep_contacts_days"], *said(N_(
                "keep_contacts_days (%(keep)s) is shorter than followup_days (%(follow)s): reporters would be "
                "called back after their contacts are erased"), keep=keep, follow=follow))
        self._check_case_openings(s, d, workflows)
        self._check_map(s, d)

        for path, unit in _walk_tree(d.get("units"), ["units"]):
            self.ref(s, [*path, "kind"], unit.get("kind"), unit_kinds, "unit kind")
        for path, kind in _walk_tree(d.get("area_kinds"), ["area_kinds"], "-"):
            self.ref(s, [*path, "parent_kinds"], kind.get("parent_kinds"), area_kinds, "area kind")
            self.ref(s, [*path, "board"], kind.get("board"), boards, "board")
        kind_parents = {k.get("id"): k.get("parent_kinds") for _, k in _walk_tree(d.get("area_kinds"), [], "-")}
        self._check_areas(s, d.get("areas"), ["areas"], None, area_kinds, units, kind_parents)
        for path, group in _walk_tree(d.get("unit_groups"), ["unit_groups"], "-"):
            self.ref(s, [*path, "units"], group.get("units"), units, "unit")
            self.ref(s, [*path, "unit_kinds"], group.get("unit_kinds"), unit_kinds, "unit kind")
        self._check_tiers(s, d, tiers, roles, unit_kinds, area_kinds)
        for path, cat in _walk_tree(d.get("categories"), ["categories"]):
            self.ref(s, [*path, "workflow"], cat.get("workflow"), self.available("workflow"), "workflow")
            # Only a category of the lists can be replaced: any other id would never leave a picker.
            self.ref(s, [*path, "replaces"], cat.get("replaces"), list_categories, "category of the category lists")
        for path, rule in _walk_tree(d.get("routing"), ["routing"], "-"):
            target = rule.get("assign_to") if isinstance(rule.get("assign_to"), dict) else {}
            self.ref(s, [*path, "assign_to", "unit"], target.get("unit"), units, "unit")
            self.ref(s, [*path, "assign_to", "tier"], target.get("tier"), tiers, "tier")
            self.expr(s, [*path, "when"], rule.get("when"), ROUTING_NAMES)
            held = next((t for _p, t in _walk_tree(d.get("tiers"), [], "-") if t.get("id") == target.get("tier")),
                        None)
            if held is not None and held.get("unit_kinds") and not held.get("area_kinds"):
                # Routing to a tier looks for the holder over the case's area: a tier held over units only has none.
                self.err(s, [*path, "assign_to", "tier"], *said(N_(
                    "tier '%(tier)s' is held over units, not areas: routing to it can never find a holder over a "
                    "case's place (give the tier area_kinds, or route to a unit)"), tier=held["id"]))

        rule_ids = self._check_patrol_rules(s, d, tiers, roles, unit_kinds, areas, forms)
        context = {"unit_kinds": unit_kinds, "units": units, "roles": roles, "tiers": tiers, "groups": groups,
                   "forms": forms, "workflows": workflows, "categories": categories, "patrol_rules": rule_ids,
                   "area_kinds": area_kinds, "kind_parents": kind_parents}
        for (kind, def_id), doc in sorted(self.documents.items()):
            if doc is self.scheme or not isinstance(doc.data, dict):
                continue
            if kind == "form":
                self.check_form(doc)
            elif kind == "workflow":
                # Every workflow's graph and expressions are checked; roles and tiers only where the scheme uses it.
                self.check_workflow(doc, context, uses_scheme=def_id in workflows)
            elif kind == "score_sheet" and def_id in sheets:
                self.check_sheet(doc, context)
            elif kind == "board" and def_id in boards:
                self.ref(doc, ["tiers"], doc.data.get("tiers"), tiers, "tier")
                self.ids(doc, _walk_tree(doc.data.get("sizes"), ["sizes"], "-"), "size")
                self.ref_theme(doc, doc.data.get("theme"))
        return self.errors

    def _check_map(self, s: SourceDocument, d: dict) -> None:
        settings = d.get("map") if isinstance(d.get("map"), dict) else {}
        center = settings.get("center")
        if isinstance(center, list) and len(center) == 2:
            for index, (value, limit) in enumerate(zip(center, (90, 180), strict=True)):
                if isinstance(value, int | float) and not -limit <= value <= limit:
                    self.err(s, ["map", "center", index], *said(N_(
                        "%(value)s is not a %(what)s: the center is [latitude, longitude], from -90 to 90 and from "
                        "-180 to 180"), value=value, what=noun("latitude" if index == 0 else "longitude")))
        tiles = settings.get("tiles")
        if isinstance(tiles, dict):
            for path, problem in tiles_problems(tiles):
                self.err(s, ["map", "tiles", *path], problem.in_language("en"), problem.in_language("zh"))

    def _check_areas(self, s: SourceDocument, items: Any, path: Path, parent_kind: str | None,
                     area_kinds: set[str], units: set[str], kind_parents: dict) -> None:
        if not isinstance(items, list):
            return
        for i, area in enumerate(items):
            if not isinstance(area, dict):
                continue
            p = [*path, i]
            kind = area.get("kind")
            self.ref(s, [*p, "kind"], kind, area_kinds, "area kind")
            self.ref(s, [*p, "unit"], area.get("unit"), units, "unit")
            allowed = kind_parents.get(kind)
            if parent_kind and isinstance(allowed, list) and parent_kind not in allowed:
                self.err(s, [*p, "kind"], *said(N_("an area of kind '%(kind)s' cannot sit inside one of kind "
                                                   "'%(parent)s'"), kind=kind, parent=parent_kind))
            self._check_areas(s, area.get("children"), [*p, "children"], kind, area_kinds, units, kind_parents)

    def _check_tiers(self, s: SourceDocument, d: dict, tiers: set[str], roles: set[str],
                     unit_kinds: set[str], area_kinds: set[str]) -> None:
        parent: dict[str, str] = {}
        for path, tier in _walk_tree(d.get("tiers"), ["tiers"], "-"):
            self.ref(s, [*path, "reports_to"], tier.get("reports_to"), tiers, "tier")
            self.ref(s, [*path, "role"], tier.get("role"), roles, "role")
            self.ref(s, [*path, "unit_kinds"], tier.get("unit_kinds"), unit_kinds, "unit kind")
            self.ref(s, [*path, "area_kinds"], tier.get("area_kinds"), area_kinds, "area kind")
            if isinstance(tier.get("id"), str) and isinstance(tier.get("reports_to"), str):
                parent[tier["id"]] = tier["reports_to"]
        for path, tier in _walk_tree(d.get("tiers"), ["tiers"], "-"):
            seen, current = set(), tier.get("id")
            while current in parent:
                if current in seen:
                    self.err(s, [*path, "reports_to"], *said(N_("tier '%(tier)s' reports to itself through a loop"),
                                                             tier=tier.get("id")))
                    break
                seen.add(current)
                current = parent[current]

    def _check_case_openings(self, s: SourceDocument, d: dict, workflows: set[str]) -> None:
        """A form of the scheme that opens cases needs a workflow of the scheme to open them in."""
        used = set(_as_list(d.get("forms"))) | {d.get("patrol_form")}
        for form_id in sorted(f for f in used if isinstance(f, str)):
            doc = self.documents.get(("form", form_id))
            opening = doc.data.get("opens_cases") if doc is not None and isinstance(doc.data, dict) else None
            if not isinstance(opening, dict):
                continue
            workflow = opening.get("workflow") or d.get("default_workflow")
            if workflow is None:
                self.err(s, ["forms"], *said(N_("form '%(form)s' opens cases, but the scheme has no "
                                                "default_workflow"), form=form_id))
            elif workflow not in workflows:
                self.err(doc, ["opens_cases", "workflow"], *said(N_("workflow '%(workflow)s' is not among the "
                                                                    "scheme's workflows"), workflow=workflow))

    def _check_patrol_rules(self, s: SourceDocument, d: dict, tiers: set[str], roles: set[str],
                            unit_kinds: set[str], areas: set[str], forms: set[str]) -> set[str]:
        sources: list[tuple[SourceDocument, Path, Any]] = [(s, ["patrol_rules"], d.get("patrol_rules"))]
        sources += [(doc, ["rules"], doc.data.get("rules")) for (k, _), doc in sorted(self.documents.items())
                    if k == "patrol_rules" and isinstance(doc.data, dict)]
        seen: set[str] = set()
        for doc, base, rules in sources:
            for path, rule in _walk_tree(rules, base, "-"):
                rid = rule.get("id")
                if isinstance(rid, str):
                    if rid in seen:
                        self.err(doc, [*path, "id"], *said(N_("duplicate %(what)s id '%(id)s'"),
                                                           what=noun("patrol rule"), id=rid))
                    seen.add(rid)
                who = rule.get("who") if isinstance(rule.get("who"), dict) else {}
                self.ref(doc, [*path, "who", "tiers"], who.get("tiers"), tiers, "tier")
                self.ref(doc, [*path, "who", "roles"], who.get("roles"), roles, "role")
                self.ref(doc, [*path, "who", "unit_kinds"], who.get("unit_kinds"), unit_kinds, "unit kind")
                self.ref(doc, [*path, "form"], rule.get("form"), forms, "form")
                self.ref(doc, [*path, "focus_points"], rule.get("focus_points"), areas, "area")
                if rule.get("where") == "focus_points" and not rule.get("focus_points"):
                    self.err(doc, [*path, "focus_points"],
                             *said(N_("where: focus_points needs a list of focus_points")))
                if rule.get("form") is None and d.get("patrol_form") is None:
                    self.err(doc, path, *said(N_("no form given and the scheme has no patrol_form")))
                if rule.get("counted_per") == "unit" and isinstance(rid, str):
                    self.unit_rules.add(rid)
                if isinstance(rid, str) and set(who) == {"tiers"} and isinstance(who["tiers"], list):
                    self.rule_tiers[rid] = set(who["tiers"])
        return seen

    # -- forms -------------------------------------------------------------
    def form_fields(self, form_id: str | None) -> set[str]:
        doc = self.documents.get(("form", form_id)) if form_id else None
        if doc is None or not isinstance(doc.data, dict):
            return set()
        return {f.get("id") for _, f in _walk_tree(doc.data.get("fields"), [], "fields") if f.get("id")}

    def check_form(self, doc: SourceDocument) -> None:
        # What a field type is comes from the field type registry (server/forms/fields.py), never its name.
        field_types = registry("field type").require()
        entries = list(_walk_tree(doc.data.get("fields"), ["fields"], "fields"))
        names = self.ids(doc, entries, "field")
        # A step's form acts on a case and may read it (case.unit, case.chain, case.area…).
        allowed = names | FORM_CONTEXT_NAMES | ({"case.*"} if doc.data.get("purpose") == "case_action" else set())
        for path, f in entries:
            ftype = f.get("type")
            kind = field_types.get(ftype)  # None: the schema check named the unknown type
            container = kind is not None and (kind.transparent or kind.holds_rows)
            for key in ("required_if", "visible_if", "calculate", "default_from"):
                self.expr(doc, [*path, key], f.get(key), allowed)
            self.expr(doc, [*path, "choice_filter"], f.get("choice_filter"), allowed | {"choice.*"})
            self._check_static_filter(doc, path, f)
            for i, c in enumerate(_as_list(f.get("constraints"))):
                if isinstance(c, dict):
                    self.expr(doc, [*path, "constraints", i, "check"], c.get("check"), allowed | {"value"})
            if kind is not None and kind.needs_choices and not (f.get("choices") or f.get("choices_from")):
                self.err(doc, path, *said(N_("field '%(id)s' of type %(type)s needs 'choices' or 'choices_from'"),
                                          id=f.get("id"), type=ftype))
            if container and not f.get("fields"):
                self.err(doc, path, *said(N_("field '%(id)s' of type %(type)s needs 'fields'"), id=f.get("id"),
                                          type=ftype))
            if f.get("fields") and not container:
                self.err(doc, [*path, "fields"], *said(N_("only sections and repeat groups have 'fields'")))
            if "repeat_count" in f:
                self._check_repeat_count(doc, path, f, kind, allowed)
            lo, hi = f.get("min"), f.get("max")
            if isinstance(lo, int | float) and isinstance(hi, int | float) and lo > hi:
                self.err(doc, [*path, "min"], *said(N_("min %(low)s is greater than max %(high)s"), low=lo, high=hi))
            values = [c.get("value") for c in _as_list(f.get("choices")) if isinstance(c, dict)]
            for i, v in enumerate(values):
                if v in values[:i]:
                    self.err(doc, [*path, "choices", i, "value"], *said(N_("duplicate choice value '%(value)s'"),
                                                                        value=v))
            if "default" in f and kind is not None:
                # A default the field's input cannot show (a time of "half past nine") is its type's to judge.
                problem = kind.check_default(f["default"], values if f.get("choices") else None)
                if problem is not None:
                    self.err(doc, [*path, "default"], problem.in_language("en"), problem.in_language("zh"))
        types = {f.get("id"): f.get("type") for _, f in entries}
        kinds = {field_id: field_types.get(ftype) for field_id, ftype in types.items()}
        when = doc.data.get("record_time")
        if when is not None and not getattr(kinds.get(when), "is_moment", False):
            self.err(doc, ["record_time"], *said(N_("record_time '%(name)s' is not a date or datetime field of this "
                                                    "form"), name=when))
        self._check_case_opening(doc, types, kinds, allowed)
        self._check_calculate_on(doc, doc.data.get("fields"), ["fields"], set(types), set(), field_types)
        mapping = doc.data.get("open311")
        if isinstance(mapping, dict):
            # The field types each standard Open311 argument can take (their `open311_arguments`).
            wanted = {key: [name for name, kind in field_types.items() if key in kind.open311_arguments]
                      for key in mapping}
            for key, field_id in mapping.items():
                if field_id not in types:
                    self.err(doc, ["open311", key], *said(N_("unknown field '%(name)s' of this form"), name=field_id))
                elif wanted[key] and types[field_id] not in wanted[key]:
                    self.err(doc, ["open311", key], *said(N_("'%(name)s' is a %(type)s field; %(key)s needs "
                                                             "%(wanted)s"), name=field_id, type=types[field_id],
                                                          key=key, wanted=_either(wanted[key])))

    def _check_static_filter(self, doc: SourceDocument, path: Path, f: dict) -> None:
        """A `choice_filter` over the field's own `choices` reads `choice.value`, `choice.label` and the keys of
        the choices' `data`: a key no choice has would never hold, and the field would offer nothing."""
        choices = [c for c in _as_list(f.get("choices")) if isinstance(c, dict)]
        if not choices or not isinstance(f.get("choice_filter"), str):
            return
        keys = {"value", "label"} | {k for c in choices if isinstance(c.get("data"), dict) for k in c["data"]}
        for name in sorted(_expression_names(f["choice_filter"])):
            parts = name.split(".")
            if parts[0] == "choice" and len(parts) > 1 and parts[1] not in keys:
                self.err(doc, [*path, "choice_filter"], *said(
                    N_("no choice of '%(id)s' has '%(key)s' in its data%(hint)s: the filter would keep none"),
                    id=f.get("id"), key=parts[1], hint=_hint(parts[1], keys)))

    def _check_calculate_on(self, doc: SourceDocument, fields: Any, path: Path, known: set[str], outer: set[str],
                            field_types: dict[str, Any]) -> None:
        """`calculate_on` names fields holding a value of the same row (or an enclosing row) or of the record,
        never the field itself, and takes effect only with a `calculate`. `outer`: the ids an enclosing level
        offers."""
        level = list(_level(fields, path, field_types))
        here = outer | {f.get("id") for _, f, kind in level
                        if isinstance(f.get("id"), str) and kind is not None and kind.has_value
                        and not kind.holds_rows}
        for field_path, f, kind in level:
            listed = f.get("calculate_on")
            if listed is not None and f.get("calculate") is None:
                self.err(doc, [*field_path, "calculate_on"],
                         *said(N_("'calculate_on' takes effect only with 'calculate'")))
            for i, name in enumerate(_as_list(listed)):
                if not isinstance(name, str):
                    continue
                if name == f.get("id"):
                    self.err(doc, [*field_path, "calculate_on", i],
                             *said(N_("field '%(name)s' cannot be calculated when it changes itself"), name=name))
                elif name not in known:
                    self.err(doc, [*field_path, "calculate_on", i], *said(
                        N_("unknown %(what)s '%(name)s'%(hint)s"), what=noun("field"), name=name,
                        hint=_hint(name, here)))
                elif name not in here:
                    self.err(doc, [*field_path, "calculate_on", i], *said(N_(
                        "'%(name)s' is not a field with a value of this row or of the record"), name=name))
            if kind is not None and kind.holds_rows:
                self._check_calculate_on(doc, f.get("fields"), [*field_path, "fields"], known, here, field_types)

    def _check_repeat_count(self, doc: SourceDocument, path: Path, f: dict, kind: Any, allowed: set[str]) -> None:
        """`repeat_count`: on a repeat group only, never with min_repeat/max_repeat (the count decides, so they
        could never take effect), and read from outside its own rows."""
        if kind is not None and not kind.holds_rows:
            self.err(doc, [*path, "repeat_count"], *said(N_("only repeat groups have 'repeat_count'")))
            return
        for key in ("min_repeat", "max_repeat"):
            if key in f:
                self.err(doc, [*path, key], *said(N_("'%(key)s' cannot be used with 'repeat_count': the group "
                                                     "always has as many rows as repeat_count says"), key=key))
        source = f.get("repeat_count")
        self.expr(doc, [*path, "repeat_count"], source, allowed)
        inside = {child.get("id") for _, child in _walk_tree(f.get("fields"), [], "fields")}
        for name in sorted(_expression_names(source) & inside):
            self.err(doc, [*path, "repeat_count"], *said(N_("repeat_count of '%(id)s' reads '%(name)s', a field of "
                                                            "its own rows"), id=f.get("id"), name=name))

    def _check_case_opening(self, doc: SourceDocument, types: dict[str, Any], kinds: dict[str, Any],
                            allowed: set[str]) -> None:
        opening = doc.data.get("opens_cases")
        if not isinstance(opening, dict):
            return
        group = opening.get("for_each")
        if group is not None and not getattr(kinds.get(group), "holds_rows", False):
            self.err(doc, ["opens_cases", "for_each"], *said(N_("'%(name)s' is not a repeat group of this form"),
                                                             name=group))
        self.expr(doc, ["opens_cases", "when"], opening.get("when"), allowed)
        for target, source in (opening.get("fill") or {}).items():
            if source not in types:
                self.err(doc, ["opens_cases", "fill", target], *said(N_("unknown field '%(name)s' of this form"),
                                                                     name=source))

    # -- workflows ---------------------------------------------------------
    def check_workflow(self, doc: SourceDocument, ctx: dict[str, set[str]], uses_scheme: bool = True) -> None:
        d = doc.data
        built_in = ("workflow", d.get("id")) in self.built_in
        states = self.ids(doc, _walk_tree(d.get("states"), ["states"], "-"), "state")
        transitions = list(_walk_tree(d.get("transitions"), ["transitions"], "-"))
        self.ids(doc, transitions, "transition")
        deadlines = self.ids(doc, _walk_tree(d.get("deadlines"), ["deadlines"], "-"), "deadline")
        fields = self.ids(doc, _walk_tree(d.get("fields"), ["fields"], "-"), "field")
        self.ids(doc, _walk_tree(d.get("escalations"), ["escalations"], "-"), "escalation")
        forms = ctx["forms"]
        self.ref(doc, ["report_form"], d.get("report_form"), forms, "form")
        self.ref(doc, ["initial"], d.get("initial"), states, "state")
        case_names = fields | self.form_fields(d.get("report_form")) | CASE_CONTEXT_NAMES
        self._check_queue(doc, d, fields | self.form_fields(d.get("report_form")))
        kinds = {st.get("id"): st.get("kind") for _, st in _walk_tree(d.get("states"), [], "-")}
        edges: dict[str, set[str]] = {s: set() for s in states}
        for path, t in transitions:
            sources = _as_list(t.get("from"))
            self.ref(doc, [*path, "from"], t.get("from"), states, "state")
            self.ref(doc, [*path, "to"], t.get("to"), states, "state")
            for src in sources:
                if src in edges and isinstance(t.get("to"), str):
                    edges[src].add(t["to"])
            who = t.get("who") if isinstance(t.get("who"), dict) else {}
            for key in ("roles", "tiers"):
                if built_in and who.get(key):
                    self.err(doc, [*path, "who", key], *said(N_(
                        "a built-in workflow cannot name a district's %(what)s: use 'capabilities' or 'relations' "
                        "(or copy it into the scheme folder)"), what=noun(key)))
                elif uses_scheme:
                    self.ref(doc, [*path, "who", key], who.get(key), ctx[key], key[:-1])
            self._check_not_by(doc, path, t, who, transitions)
            self.ref(doc, [*path, "form"], t.get("form"), forms, "form")
            names = case_names | self.form_fields(t.get("form"))
            self.expr(doc, [*path, "guard"], t.get("guard"), names)
            self._check_effects(doc, [*path, "effects"], t.get("effects"), deadlines, fields, names, ctx, uses_scheme)
        self._check_effects(doc, ["on_create"], d.get("on_create"), deadlines, fields, case_names, ctx, uses_scheme)
        for path, dl in _walk_tree(d.get("deadlines"), ["deadlines"], "-"):
            for key in ("working_days", "working_hours"):
                self.expr(doc, [*path, key], dl.get(key), case_names)
                self._constant_deadline(doc, [*path, key], dl.get(key), key.removeprefix("working_"))
            if not (dl.get("working_days") or dl.get("working_hours")):
                self.err(doc, path, *said(N_("a deadline needs 'working_days' or 'working_hours'")))
        for path, esc in _walk_tree(d.get("escalations"), ["escalations"], "-"):
            self.ref(doc, [*path, "deadline"], esc.get("deadline"), deadlines, "deadline")
            self._check_recipients(doc, [*path, "notify"], esc.get("notify"), ctx, uses_scheme, built_in)
        initial = d.get("initial")
        if initial in states:
            reached, queue = {initial}, deque([initial])
            while queue:
                for nxt in edges.get(queue.popleft(), ()):
                    if nxt not in reached:
                        reached.add(nxt)
                        queue.append(nxt)
            for path, st in _walk_tree(d.get("states"), ["states"], "-"):
                if st.get("id") in states and st.get("id") not in reached:
                    self.err(doc, [*path, "id"], *said(N_("state '%(state)s' cannot be reached from '%(initial)s'"),
                                                       state=st["id"], initial=initial))
        for path, st in _walk_tree(d.get("states"), ["states"], "-"):
            sid = st.get("id")
            if sid in edges and kinds.get(sid) != "final" and not edges[sid]:
                self.err(doc, [*path, "id"], *said(N_("state '%(state)s' is not final but no transition leaves it"),
                                                   state=sid))
        if not any(k == "final" for k in kinds.values()):
            self.err(doc, ["states"], *said(N_("a workflow needs at least one state of kind 'final'")))

    def _check_queue(self, doc: SourceDocument, d: dict, case_fields: set[str]) -> None:
        """`queue:` names the case's own fields; its flags name choice fields of the report form, and values
        among their choices (a tag that can never show is a mistake)."""
        queue = d.get("queue") if isinstance(d.get("queue"), dict) else {}
        self.ref(doc, ["queue", "line"], queue.get("line"), case_fields, "field")
        report = self.documents.get(("form", d.get("report_form"))) if d.get("report_form") else None
        choices = {f.get("id"): {c.get("value") for c in f["choices"] if isinstance(c, dict)}
                   for _, f in _walk_tree(report.data.get("fields") if report and isinstance(report.data, dict)
                                          else [], [], "fields")
                   if isinstance(f.get("choices"), list)}
        for i, flag in enumerate(queue.get("flags") or []):
            if not isinstance(flag, dict):
                continue
            field = flag.get("field")
            if field not in choices:
                self.err(doc, ["queue", "flags", i, "field"],
                         *said(N_("'%(name)s' is not a field of the report form with its own choices"), name=field))
                continue
            for j, value in enumerate(flag.get("values") or []):
                if value not in choices[field]:
                    self.err(doc, ["queue", "flags", i, "values", j],
                             *said(N_("'%(value)s' is not a choice of '%(name)s'"), value=value, name=field))

    def _check_recipients(self, doc: SourceDocument, path: Path, items: Any, ctx: dict[str, set[str]],
                          uses_scheme: bool, built_in: bool) -> None:
        """`notify: [{unit: k}, {tier: t}]` names the district's units and tiers: they must exist, and a built-in
        workflow (shared by every district) may not name them."""
        for i, item in enumerate(_as_list(items)):
            if not isinstance(item, dict):
                continue
            for key, known in (("unit", ctx["units"]), ("tier", ctx["tiers"])):
                if key not in item:
                    continue
                if built_in:
                    self.err(doc, [*path, i, key], *said(N_(
                        "a built-in workflow cannot name a district's %(what)s: use a relation (assignee, "
                        "assignee_unit, tier_above_assignee, reporter), or copy it into the scheme folder"),
                        what=noun(key)))
                elif uses_scheme:
                    self.ref(doc, [*path, i, key], item[key], known, key)

    def _check_not_by(self, doc: SourceDocument, path: Path, t: dict, who: dict, transitions: list) -> None:
        """Four eyes names steps of this workflow, and never refuses everyone `who` lets in."""
        not_by = t.get("not_by") if isinstance(t.get("not_by"), dict) else {}
        step_ids = {tr.get("id") for _p, tr in transitions if isinstance(tr, dict)}
        self.ref(doc, [*path, "not_by", "steps"], not_by.get("steps"), step_ids, "transition")
        refused = set(_as_list(not_by.get("relations")))
        allowed = set(_as_list(who.get("relations")))
        if refused & allowed:
            self.err(doc, [*path, "not_by", "relations"],
                     *said(N_("'who' lets %(relations)s take this step and 'not_by' refuses them: one of the two can "
                              "never take effect"), relations=", ".join(sorted(refused & allowed))))

    def _constant_deadline(self, doc: SourceDocument, path: Path, source: Any, unit: str) -> None:
        """A deadline formula that names nothing gives the same amount for every case: check it now."""
        from .deadlines import DeadlineError, checked_amount

        if not isinstance(source, str):
            return
        try:
            expression = compile_expression(source)
        except ExpressionError:
            return  # reported by the schema check
        if expression.names:
            return  # depends on the case: checked on each case, an error shows there
        try:
            checked_amount(unit, expression.evaluate({}))
        except ExpressionError as exc:
            self.err(doc, path, *said(N_("this deadline can never be computed: %(problem)s"), problem=exc.message))
        except DeadlineError as exc:
            self.err(doc, path, *said(N_("this deadline can never be used: %(problem)s"), problem=str(exc)))

    def _check_effects(self, doc: SourceDocument, base: Path, effects: Any, deadlines: set[str], fields: set[str],
                       names: set[str], ctx: dict[str, set[str]], uses_scheme: bool) -> None:
        for i, effect in enumerate(_as_list(effects)):
            if not isinstance(effect, dict):
                continue
            ep = [*base, i]
            self.ref(doc, [*ep, "start_deadline"], effect.get("start_deadline"), deadlines, "deadline")
            self.ref(doc, [*ep, "stop_deadline"], effect.get("stop_deadline"), deadlines, "deadline")
            extend = effect.get("extend_deadline") if isinstance(effect.get("extend_deadline"), dict) else {}
            self.ref(doc, [*ep, "extend_deadline", "deadline"], extend.get("deadline"), deadlines, "deadline")
            for key in ("working_days", "working_hours"):
                self.expr(doc, [*ep, "extend_deadline", key], extend.get(key), names)
            self._check_recipients(doc, [*ep, "notify"], effect.get("notify"), ctx, uses_scheme,
                                   ("workflow", doc.data.get("id")) in self.built_in)
            assign = effect.get("assign") if isinstance(effect.get("assign"), dict) else {}
            if uses_scheme:
                self.ref(doc, [*ep, "assign", "unit"], assign.get("unit"), ctx["units"], "unit")
            self.ref(doc, [*ep, "assign", "field"], assign.get("field"), names - CASE_CONTEXT_NAMES, "case field")
            if isinstance(effect.get("set"), dict):
                for key, source in effect["set"].items():
                    if key not in fields:
                        self.err(doc, [*ep, "set", key], *said(N_("unknown case field '%(name)s'%(hint)s (declare it "
                                                                  "under 'fields')"), name=key,
                                                               hint=_hint(key, fields)))
                    self.expr(doc, [*ep, "set", key], source, names)

    # -- score sheets ------------------------------------------------------
    def _check_per_area(self, doc: SourceDocument, spec: dict, ctx: dict, metric_sources: Any,
                        items: list[tuple[list, dict]]) -> None:
        """A sheet scored per area: kinds that exist and can contain one another, and numbers every area has."""
        kinds = [spec.get("kind")] + [r.get("kind") for r in _as_list(spec.get("roll_up")) if isinstance(r, dict)]
        paths = [["per_area", "kind"]] + [["per_area", "roll_up", i, "kind"] for i in range(len(kinds) - 1)]
        for path, kind in zip(paths, kinds, strict=True):
            self.ref(doc, path, kind, ctx["area_kinds"], "area kind")
        for path, outer, inner in zip(paths[1:], kinds[1:], kinds, strict=False):
            if outer not in ctx["area_kinds"] or inner not in ctx["area_kinds"]:
                continue
            if outer == inner:
                self.err(doc, path, *said(N_("'%(kind)s' would roll up into its own kind: name each kind once, "
                                             "innermost first"), kind=inner))
            elif not _may_contain(outer, inner, ctx["kind_parents"]) \
                    or inner in _declared_around(outer, ctx["kind_parents"]):
                self.err(doc, path, *said(N_("an area of kind '%(outer)s' never contains one of kind '%(inner)s' "
                                             "(the scheme's area_kinds parent_kinds say so): nothing would roll up "
                                             "into it"), outer=outer, inner=inner))
        by_area = sorted(name for name, source in metric_sources.items() if source.by_area is not None)
        for path, m in _walk_tree(doc.data.get("metrics"), ["metrics"], "-"):
            source = metric_sources.get(m.get("source"))
            if source is not None and source.by_area is None:
                self.err(doc, [*path, "source"], *said(N_(
                    "this sheet is scored per area and a '%(source)s' metric has no value per area (per area: "
                    "%(sources)s)"), source=m.get("source"), sources=", ".join(by_area)))
            for key in ("counts_for", "include_below"):
                if key in m:
                    self.err(doc, [*path, key], *said(N_("this sheet is scored per area: each case counts for the "
                                                         "area of its place, so '%(key)s' can never take effect"),
                                                      key=key))
        for path, item in items:
            for i, rule in enumerate(_as_list(item.get("rules"))):
                if isinstance(rule, dict) and not any(k in rule for k in ("count", "value", "when")):
                    self.err(doc, [*path, "rules", i], *said(N_(
                        "this sheet is scored per area from the data: a rule an assessor enters by hand has no area "
                        "to be entered for (give it a count, value or when)")))

    def _check_people_sheet(self, doc: SourceDocument, ctx: dict, metric_sources: Any,
                            items: list[tuple[list, dict]]) -> None:
        """A sheet assessing the holders of posts: numbers each person has, and no unit-only setting."""
        d = doc.data
        if d["assessed"].get("unit_kinds") or d["assessed"].get("units"):
            self.err(doc, ["assessed"], *said(N_("a sheet assesses units or people (tiers), not both: make two "
                                                 "sheets")))
        for key, template in (
                ("per_area", N_("this sheet assesses people: people are not scored per area")),
                ("appeal_days", N_("this sheet assesses people: people's appeals are not taken yet: their numbers "
                                   "come from the data")),
                ("appeal_roles", N_("this sheet assesses people: people's appeals are not taken yet"))):
            if d.get(key):
                self.err(doc, [key], *said(template))
        ranking = d.get("ranking") if isinstance(d.get("ranking"), dict) else {}
        for key in ("groups", "by_difficulty"):
            if ranking.get(key):
                self.err(doc, ["ranking", key], *said(N_("this sheet assesses people: they are in no unit group and "
                                                         "have no difficulty, so they are ranked all together")))
        funding = d.get("funding") if isinstance(d.get("funding"), dict) else {}
        if funding.get("groups"):
            self.err(doc, ["funding", "groups"], *said(N_("this sheet assesses people: they are in no unit group")))
        with_people = sorted(name for name, source in metric_sources.items() if source.by_people is not None)
        for path, m in _walk_tree(d.get("metrics"), ["metrics"], "-"):
            source = metric_sources.get(m.get("source"))
            if source is not None and source.by_people is None:
                self.err(doc, [*path, "source"], *said(N_(
                    "this sheet assesses people and a '%(source)s' metric has no figure per person (per person: "
                    "%(sources)s)"), source=m.get("source"), sources=", ".join(with_people)))
            if m.get("counts_for") not in (None, "place", "reporter"):
                self.err(doc, [*path, "counts_for"], *said(N_(
                    "this sheet assesses people: a case counts for a person at the places of their posts (place) or "
                    "when they reported it (reporter)")))
            if "include_below" in m:
                self.err(doc, [*path, "include_below"], *said(N_(
                    "this sheet assesses people: there are no units below a person, so 'include_below' can never "
                    "take effect")))
            if m.get("patrol_rule") in self.unit_rules:
                self.err(doc, [*path, "patrol_rule"], *said(N_(
                    "patrol rule '%(rule)s' is counted per unit: no person misses it (use a rule counted per "
                    "person)"), rule=m["patrol_rule"]))
            bound = self.rule_tiers.get(m.get("patrol_rule"))
            if bound is not None and not bound & set(_as_list(d["assessed"].get("tiers"))):
                self.err(doc, [*path, "patrol_rule"], *said(N_(
                    "patrol rule '%(rule)s' binds the tiers %(tiers)s, none of which this sheet assesses: nobody "
                    "here misses it"), rule=m["patrol_rule"], tiers=", ".join(sorted(bound))))
        for path, item in items:
            for i, rule in enumerate(_as_list(item.get("rules"))):
                if isinstance(rule, dict) and not any(k in rule for k in ("count", "value", "when")):
                    self.err(doc, [*path, "rules", i], *said(N_(
                        "this sheet assesses people from the data: a rule an assessor enters by hand cannot be "
                        "entered for a person yet (give it a count, value or when)")))

    def check_sheet(self, doc: SourceDocument, ctx: dict[str, set[str]]) -> None:
        d = doc.data
        assessors = d.get("assessors") if isinstance(d.get("assessors"), dict) else {}
        fixed = 0.0
        for i, w in enumerate(_as_list(assessors.get("weights"))):
            if isinstance(w, dict) and w.get("at_least") and isinstance(w.get("weight"), int | float):
                fixed += w["weight"]
                if w["weight"] > 1:
                    self.err(doc, ["assessors", "weights", i, "weight"],
                             *said(N_("an at_least weight is a share of the whole, from 0 to 1 (0.5: at least half)")))
        if fixed > 1:
            self.err(doc, ["assessors", "weights"], *said(N_("the at_least shares add up to more than 1")))
        self.ref(doc, ["assessors", "roles"], assessors.get("roles"), ctx["roles"], "role")
        self.ref(doc, ["appeal_roles"], doc.data.get("appeal_roles"), ctx["roles"], "role")
        for i, w in enumerate(_as_list(assessors.get("weights"))):
            if isinstance(w, dict):
                self.ref(doc, ["assessors", "weights", i, "role"], w.get("role"), ctx["roles"], "role")
        assessed = d.get("assessed") if isinstance(d.get("assessed"), dict) else {}
        self.ref(doc, ["assessed", "unit_kinds"], assessed.get("unit_kinds"), ctx["unit_kinds"], "unit kind")
        self.ref(doc, ["assessed", "units"], assessed.get("units"), ctx["units"], "unit")
        self.ref(doc, ["assessed", "tiers"], assessed.get("tiers"), ctx["tiers"], "tier")
        # What a metric source reads and needs comes from its registration (server/assessment/sources.py).
        metric_sources = registry("metric source").require()
        metrics = self.ids(doc, _walk_tree(d.get("metrics"), ["metrics"], "-"), "metric")
        for path, m in _walk_tree(d.get("metrics"), ["metrics"], "-"):
            self.ref(doc, [*path, "form"], m.get("form"), ctx["forms"], "form")
            self.ref(doc, [*path, "workflow"], m.get("workflow"), ctx["workflows"], "workflow")
            self.ref(doc, [*path, "patrol_rule"], m.get("patrol_rule"), ctx["patrol_rules"], "patrol rule")
            self.ref(doc, [*path, "categories"], m.get("categories"), ctx["categories"], "category")
            source = metric_sources.get(m.get("source"))  # None: the schema check named the unknown source
            for needs in source.needs if source is not None else ():
                if not m.get(needs):
                    self.err(doc, path, *said(N_("a metric with source '%(source)s' needs '%(key)s'"),
                                              source=m.get("source"), key=needs))
            takes = source.reads if source is not None else None
            for key in sorted(set(m) - METRIC_COMMON - (takes or set())) if takes is not None else ():
                reads = say(N_(" (it reads %(keys)s)"), keys=", ".join(sorted(takes))) if takes else ""
                self.err(doc, [*path, key], *said(N_("a metric with source '%(source)s' does not read "
                                                     "'%(key)s'%(reads)s"), source=m.get("source"), key=key,
                                                  reads=reads))
        sections = list(_walk_tree(d.get("sections"), ["sections"], "-"))
        self.ids(doc, sections, "section")
        items = [(p + ["items", i], it) for p, sec in sections for i, it in enumerate(_as_list(sec.get("items")))
                 if isinstance(it, dict)]
        if isinstance(d.get("per_area"), dict):
            self._check_per_area(doc, d["per_area"], ctx, metric_sources, items)
        if assessed.get("tiers"):
            self._check_people_sheet(doc, ctx, metric_sources, items)
        self.ids(doc, items, "item")
        section_total = 0.0
        for path, sec in sections:
            points = sec.get("points") if isinstance(sec.get("points"), int | float) else 0
            section_total += points
            item_sum = sum(it.get("points", 0) for it in _as_list(sec.get("items"))
                           if isinstance(it, dict) and isinstance(it.get("points"), int | float))
            if points and round(item_sum, 6) != round(points, 6):
                self.err(doc, [*path, "points"], *said(N_("section has %(points)s points but its items add up to "
                                                          "%(sum)s"), points=f"{points:g}", sum=f"{item_sum:g}"))
        total = d.get("total")
        weights = [sec.get("weight") for _p, sec in sections]
        if any(w is not None for w in weights):
            # Weighted categories: each section is scored on its own points and counts by its weight.
            if any(w is None for w in weights):
                self.err(doc, ["sections"], *said(N_("either every section has a weight or none has")))
            elif isinstance(total, int | float) and round(sum(weights), 6) != round(total, 6):
                self.err(doc, ["total"], *said(N_("total is %(total)s but the section weights add up to %(sum)s"),
                                               total=f"{total:g}", sum=f"{sum(weights):g}"))
        elif isinstance(total, int | float) and sections and round(section_total, 6) != round(total, 6):
            self.err(doc, ["total"], *said(N_("total is %(total)s but the sections add up to %(sum)s"),
                                           total=f"{total:g}", sum=f"{section_total:g}"))
        names = metrics
        for path, item in items:
            self.ref(doc, [*path, "assessor_roles"], item.get("assessor_roles"), ctx["roles"], "role")
            for i, rule in enumerate(_as_list(item.get("rules"))):
                if not isinstance(rule, dict):
                    continue
                rp = [*path, "rules", i]
                for key in ("count", "value", "when"):
                    self.expr(doc, [*rp, key], rule.get(key), names)
                kind = rule.get("type")
                if kind in ("per_step_below", "per_step_above"):
                    for key in ("value", "threshold", "step"):
                        if key not in rule:
                            self.err(doc, rp, *said(N_("a %(kind)s rule needs '%(key)s'"), kind=kind, key=key))
                if kind == "one_off" and "when" not in rule:
                    self.err(doc, rp, *said(N_("a one_off rule needs 'when' (or use per_occurrence for an "
                                               "assessor's count)")))
            self.ids(doc, [([*path, "rules", i], r) for i, r in enumerate(_as_list(item.get("rules")))
                           if isinstance(r, dict)], "rule")
        grades = list(_walk_tree(d.get("grades"), ["grades"], "-"))
        self.ids(doc, grades, "grade")
        self.ids(doc, _walk_tree(d.get("flags"), ["flags"], "-"), "flag")
        grade_ids = {g.get("id") for _p, g in grades if isinstance(g.get("id"), str)}
        metric_ids = {m.get("id") for _p, m in _walk_tree(d.get("metrics"), ["metrics"], "-")}
        for path, charge in _walk_tree(d.get("charges"), ["charges"], "-"):
            self.ref(doc, [*path, "metric"], charge.get("metric"), metric_ids, "metric")
        self.ids(doc, _walk_tree(d.get("charges"), ["charges"], "-"), "charge")
        funding = d.get("funding") if isinstance(d.get("funding"), dict) else {}
        if isinstance(funding.get("groups"), dict):
            for key in funding["groups"]:
                self.ref(doc, ["funding", "groups", key], key, ctx["groups"], "unit group")
        for path, flag in _walk_tree(d.get("flags"), ["flags"], "-"):
            self.ref(doc, [*path, "caps_grade"], flag.get("caps_grade"), grade_ids, "grade")
        ranking = d.get("ranking") if isinstance(d.get("ranking"), dict) else {}
        self.ref(doc, ["ranking", "groups"], ranking.get("groups"), ctx["groups"], "unit group")
        for path, streak in _walk_tree(d.get("streaks"), ["streaks"], "-"):
            self.expr(doc, [*path, "when"], streak.get("when"), STREAK_NAMES)
        manual = {m.get("id") for _p, m in _walk_tree(d.get("metrics"), ["metrics"], "-")
                  if getattr(metric_sources.get(m.get("source")), "entered", False)}
        funding = d.get("funding") if isinstance(d.get("funding"), dict) else None
        for path, veto in _walk_tree(d.get("vetoes"), ["vetoes"], "-"):
            self.expr(doc, [*path, "when"], veto.get("when"), names)
            per = veto.get("period")
            if per in PERIOD_ORDER and d.get("period") in PERIOD_ORDER and per != d.get("period"):
                if PERIOD_ORDER.index(per) < PERIOD_ORDER.index(d["period"]):
                    self.err(doc, [*path, "period"], *said(N_("a %(period)s sheet cannot veto over a shorter period "
                                                              "(%(per)s)"), period=d["period"], per=per))
                used = sorted(_expression_names(veto.get("when")) & manual)
                if used:
                    self.err(doc, [*path, "when"], *said(N_(
                        "a veto over a longer period (%(per)s) reads metrics from the data; %(metrics)s is entered "
                        "by hand each %(period)s"), per=per, metrics=", ".join(used), period=d["period"]))
            if veto.get("funding") in ("floor", "none") and funding is None:
                self.err(doc, [*path, "funding"], *said(N_("the sheet has no funding for a veto to take away")))
            elif veto.get("funding") == "floor" and funding is not None and "floor" not in funding:
                self.err(doc, [*path, "funding"], *said(N_("the sheet's funding has no floor")))
        for path, combo in _walk_tree(d.get("combine"), ["combine"], "-"):
            sheet_names = {d.get("id")} | set(_as_list(combo.get("sheets")))
            self.ref(doc, [*path, "sheets"], combo.get("sheets"), self.available("score_sheet"), "score sheet")
            for other in _as_list(combo.get("sheets")):
                named = self.documents.get(("score_sheet", other))
                theirs = named.data.get("assessed") if named is not None and isinstance(named.data, dict) else None
                if isinstance(theirs, dict) and bool(theirs.get("tiers")) != bool(assessed.get("tiers")):
                    template = (N_("'%(name)s' assesses people and this sheet units: no one has a score in both")
                                if theirs.get("tiers") else
                                N_("'%(name)s' assesses units and this sheet people: no one has a score in both"))
                    self.err(doc, [*path, "sheets"], *said(template, name=other))
            self.expr(doc, [*path, "formula"], combo.get("formula"), {n for n in sheet_names if isinstance(n, str)})
            if d.get("grades") and "grades" not in combo:
                self._combined_reaches_the_total(doc, d, path, combo, sheet_names)
